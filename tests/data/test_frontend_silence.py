"""Step 5's silence rule (data.frontend): a channel whose resampled samples span at most QUIET counts over a
window (a stuck sensor, a still accelerometer axis at the device's fixed gain) is coded as silence, not as the
band-pass's rounding dead band (a constant input settles at up to +-12 LSB of DC) scaled to full range by block
floating point, which showed a full-height peak at 30-33 BPM. A stuck PPG sensor beside a live one then gives
exactly the codes of a dead (all-zero) one, i.e. the live sensor's alone up to the normalisation's rounding."""
from __future__ import annotations

import numpy as np
import pytest

from frontend_stream import stream
from sqtool.data.frontend import QUIET, FrontEndCfg, bin_bpm, design, quiet_rows, spectra, to_int16

FS = 125.0
CFG2 = FrontEndCfg(n_ppg=2)
TAB = design(CFG2)                                  # the tables do not depend on n_ppg or n_channels


def _t(seconds: float, fs: float = FS) -> np.ndarray:
    return np.arange(int(fs * seconds)) / fs


def _live_ppg(seconds: float = 120.0) -> np.ndarray:
    return np.round(3000 * np.sin(2 * np.pi * 1.5 * _t(seconds))).astype(np.int16)     # 90 BPM


def _after(t0: np.ndarray, s: float) -> np.ndarray:
    """Windows that start once the input has been still for the FIR's span (24 taps < 0.25 s)."""
    return t0 >= s + 0.25


@pytest.mark.parametrize("level", [-32768, -1234, 0, 1234, 32767])
def test_a_sensor_stuck_after_being_alive_adds_nothing(level):
    ppg = _live_ppg()
    stuck = ppg.copy()
    stuck[int(FS * 10):] = level                                      # ppg2 sticks at 10 s
    dead = np.zeros_like(ppg)
    acc = np.zeros((3, ppg.size), np.int16)
    got, t0, _ = spectra(CFG2, np.vstack([ppg, stuck, acc]), tables=TAB)
    want, _, _ = spectra(CFG2, np.vstack([ppg, dead, acc]), tables=TAB)
    one, _, _ = spectra(FrontEndCfg(), np.vstack([ppg, acc]), tables=TAB)
    late = _after(t0, 10.0)
    assert late.sum() > 40
    assert np.array_equal(got[late], want[late])                      # exactly a dead sensor's codes
    assert np.abs(got[late].astype(int) - one[late].astype(int)).max() <= 1   # the live one's, up to rounding
    b = bin_bpm(CFG2)
    assert (got[late][:, b <= 36, 0] < 0).all()                        # no fake peak at 30-36 BPM
    assert (got[late][..., 0].argmax(axis=1) == np.argmin(abs(b - 90))).all()


@pytest.mark.parametrize("n_channels", [4, 2])
def test_a_still_accelerometer_at_the_fixed_gain_is_silent(n_channels):
    """A swing, then a still wrist: gravity on z, noise of about one count at 4096 counts / g."""
    rng = np.random.default_rng(0)
    t = _t(120.0)
    a = np.zeros((3, t.size))
    a[:, t < 10] = 0.5 * np.sin(2 * np.pi * 2.5 * t[t < 10])
    a[2] += 1.0
    a += rng.normal(0, 1.0 / 4096, a.shape)
    cfg = FrontEndCfg(n_channels=n_channels)
    x = np.vstack([_live_ppg(), to_int16(a, cfg.gain_acc)])
    codes, t0, _ = spectra(cfg, x, tables=TAB)
    late = _after(t0, 10.0)
    assert late.sum() > 40 and (codes[late][..., 1:] == -127).all()
    assert (codes[~late][..., 1:].max(axis=1) == 127).all()           # the swing itself is coded
    assert (codes[..., 0].max(axis=1) == 127).all()                   # the live ppg untouched


@pytest.mark.parametrize("fs_in,amp", [(25.0, 1), (50.0, 1), (125.0, 1), (125.0, 2), (256.0, 1), (256.0, 2)])
def test_a_level_with_a_few_counts_of_noise_is_silent_at_every_rate(fs_in, amp):
    rng = np.random.default_rng(int(fs_in) + amp)
    cfg = FrontEndCfg(fs_in=fs_in, n_channels=1)
    t = _t(90.0, fs_in)
    x = np.where(t < 10, 20000 * np.sin(2 * np.pi * 1.2 * t), -7000) + rng.integers(-amp, amp + 1, t.size)
    codes, t0, _ = spectra(cfg, x[None].astype(np.int16))
    late = _after(t0, 10.0)
    assert late.sum() > 30 and (codes[late] == -127).all()


def test_the_floor_is_a_few_counts_of_span():
    w = np.full((2, 1, 128), -7000, np.int16)
    w[0, 0, ::2] = QUIET - 7000                                        # span QUIET: quiet
    w[1, 0, ::2] = QUIET + 1 - 7000                                    # span QUIET + 1: a signal
    assert quiet_rows(w)[:, 0].tolist() == [True, False]
    t = _t(60.0)                                                       # a 6-count tone is a signal
    x = np.round(6 * np.sin(2 * np.pi * 1.5 * t) + 500).astype(np.int16)[None]
    codes, _, _ = spectra(FrontEndCfg(n_channels=1), x)
    assert (codes[2:, :, 0].argmax(axis=1) == np.argmin(abs(bin_bpm(CFG2) - 90))).all()


@pytest.mark.parametrize("chunks", [[1, 250, 3], [999], [100_000]])
def test_streaming_equals_offline_through_quiet_and_live_stretches(chunks):
    rng = np.random.default_rng(5)
    n = int(FS * 60)
    x = np.round(rng.standard_normal((5, n)) * 3000).astype(np.int16)
    for c, (a, b) in enumerate([(0, 20), (15, 40), (5, 9), (30, 60), (0, 60)]):   # stuck spans (s) per row
        x[c, int(FS * a):int(FS * b)] = 1000 * c - 2000 + rng.integers(-1, 2, int(FS * b) - int(FS * a))
    gap = rng.random(n) < 0.02
    spec, _, _ = spectra(CFG2, x, gap, tables=TAB)
    ws = stream(x, gap, chunks, CFG2, TAB)
    assert np.array_equal(np.stack([w.spec for w in ws]), spec)
    silent = (spec == -127).all(axis=1)                                # (W, C)
    assert silent.any() and not silent.all()


@pytest.mark.parametrize("chunks", [[1, 250, 3], [100_000]])
def test_a_window_reports_its_ppg_quiet_when_every_ppg_sensor_is_quiet(chunks):
    """ppg_quiet (the pipeline's do-not-score signal): every PPG row quiet over the window, whatever the axes do;
    streaming (FrontEndWindow.ppg_quiet) == offline (spectra(..., ppg_quiet=True))."""
    rng = np.random.default_rng(7)
    n = int(FS * 60)
    x = np.round(rng.standard_normal((5, n)) * 3000).astype(np.int16)
    x[0, int(FS * 10):int(FS * 50)] = 1200                            # ppg stuck 10-50 s
    x[1, int(FS * 20):int(FS * 40)] = 32767                           # ppg2 railed 20-40 s
    x[4, int(FS * 20):int(FS * 40)] = 0                               # an axis dead too: it does not matter
    spec, t0, _, quiet = spectra(CFG2, x, None, tables=TAB, ppg_quiet=True)
    both = _after(t0, 20.0) & (t0 + 8.0 <= 40.0)                      # windows inside 20-40 s
    assert both.sum() >= 5 and np.array_equal(quiet, both)
    ws = stream(x, None, chunks, CFG2, TAB)
    assert [w.ppg_quiet for w in ws] == quiet.tolist()
    _, t1, _, q1 = spectra(FrontEndCfg(), x[[0, 2, 3, 4]], None, tables=TAB, ppg_quiet=True)
    assert np.array_equal(q1, _after(t1, 10.0) & (t1 + 8.0 <= 50.0))  # one sensor: that one alone
    assert not spectra(FrontEndCfg(), np.vstack([x[2:3], np.zeros((3, n), np.int16)]), tables=TAB,
                       ppg_quiet=True)[3].any()                       # a live ppg beside still axes: scored
