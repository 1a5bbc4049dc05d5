"""The fixed-point front end's numpy reference (sqtool/data/frontend.py): streaming == offline for any
chunking, the spectrum finds a pure tone, gaps are held and counted, extreme inputs stay in range,
the quantised filters match their float designs, and the integer bounds hold."""
from __future__ import annotations

import numpy as np
import pytest

from frontend_stream import stream
from sqtool.core import SqtoolError
from sqtool.data.frontend import (FrontEnd, FrontEndCfg, bin_bpm, design, flagged_q15, spectra, to_int16,
                                  window_codes)

CFG = FrontEndCfg()
TAB = design(CFG)


def _noise(n, C=4, seed=0, full=True):
    rng = np.random.default_rng(seed)
    if full:
        return rng.integers(-32768, 32768, size=(C, n)).astype(np.int16)
    return np.round(rng.standard_normal((C, n)) * 3000).astype(np.int16)


def _stream(x, gap, chunks, cfg=CFG):
    return stream(x, gap, chunks, cfg, TAB if cfg is CFG else None)


@pytest.mark.parametrize("chunks", [[1], [7, 1, 250, 3], [999], [10_000]])
def test_streaming_equals_offline_for_any_chunking(chunks):
    n = 6000
    x = _noise(n, full=False)
    gap = (np.random.default_rng(1).random(n) < 0.05).astype(np.uint8)
    spec, t0, fl = spectra(CFG, x, gap, tables=TAB)
    ws = _stream(x, gap, chunks)
    assert len(ws) == spec.shape[0] == (((n * 16 + 124) // 125) - 128) // 32 + 1
    assert np.array_equal(np.stack([w.spec for w in ws]), spec)
    assert [w.index for w in ws] == list(range(len(ws)))
    assert np.allclose([w.t0_s for w in ws], t0) and np.allclose(t0, 2.0 * np.arange(len(ws)))
    assert np.allclose([w.flagged for w in ws], fl)
    assert [w.flagged_q15 for w in ws] == flagged_q15(CFG, gap, n, tables=TAB).tolist()
    assert spec.dtype == np.int8 and spec.shape[1:] == (201, 4)


def test_offline_blocks_change_nothing(monkeypatch):
    """spectra() resamples and codes a long recording block by block (bounded memory): any block sizes give
    the same codes and flags as one block."""
    import sqtool.data.frontend as fe
    x = _noise(9000, full=False, seed=3)
    gap = (np.random.default_rng(4).random(9000) < 0.02).astype(np.uint8)
    whole = spectra(CFG, x, gap, tables=TAB)
    monkeypatch.setattr(fe, "BLOCK_OUTPUTS", 97)
    monkeypatch.setattr(fe, "BLOCK_WINDOWS", 5)
    blocks = spectra(CFG, x, gap, tables=TAB)
    assert whole[0].shape[0] > 3 * 5 and all(np.array_equal(a, b) for a, b in zip(whole, blocks))
    ws = _stream(x, gap, [9000])                                  # one push of the whole stream, in blocks too
    assert np.array_equal(np.stack([w.spec for w in ws]), whole[0])


def test_reset_restarts_the_stream():
    x = _noise(3000, full=False, seed=3)
    fe = FrontEnd(CFG, TAB)
    a = fe.push(x)
    fe.push(_noise(500, seed=4))
    fe.reset()
    b = fe.push(x)
    assert len(a) == len(b) > 0 and all(np.array_equal(u.spec, v.spec) for u, v in zip(a, b))


@pytest.mark.parametrize("fs_in", [125.0, 256.0])
def test_pure_tone_at_90_bpm_peaks_at_its_bin(fs_in):
    cfg = FrontEndCfg(fs_in=fs_in)
    t = np.arange(int(40 * fs_in)) / fs_in
    x = np.round(np.stack([a * np.sin(2 * np.pi * 1.5 * t + p) for a, p in
                           [(9000, 0), (300, 1), (20000, 2), (5, 3)]])).astype(np.int16)
    spec, _, _ = spectra(cfg, x)
    bpm = bin_bpm(cfg)
    for w in range(3, spec.shape[0]):                 # after the band-pass transient
        for c in range(4):
            assert spec[w, :, c].max() == 127
            assert bpm[int(np.argmax(spec[w, :, c]))] == 90.0
            assert spec[w, list(bpm).index(90.0), c] == 127
            assert spec[w, :, c].min() == -127        # far bins: nothing


def test_gaps_are_held_and_counted():
    n = 4000
    x = _noise(n, full=False, seed=5)
    gap = np.zeros(n, dtype=np.uint8)
    gap[:3] = 1                                      # before any good sample: 0
    gap[1500:1620] = 1
    bad = x.copy()
    bad[:, gap.astype(bool)] = 32767                 # garbage under the flags
    held = x.copy()
    held[:, :3] = 0
    held[:, 1500:1620] = x[:, 1499:1500]
    a, _, fl = spectra(CFG, bad, gap, tables=TAB)
    b, _, fl0 = spectra(CFG, held, None, tables=TAB)
    assert np.array_equal(a, b)
    assert not np.any(fl0)
    # window i owns inputs [250 i - 7, 250 i + 992] (window 0: [0, 992])
    for i, f in enumerate(fl):
        lo, hi = max(250 * i - 7, 0), 250 * i + 992
        expect = int(gap[lo:hi + 1].sum()) / (hi + 1 - lo)
        assert f == pytest.approx(expect)
    assert fl[0] == pytest.approx(3 / 993) and fl.max() > 0.1


def test_all_zero_and_saturated_inputs():
    n = 3000
    z, _, fl = spectra(CFG, np.zeros((4, n), np.int16), tables=TAB)
    assert z.shape[0] > 0 and np.all(z == -127) and not np.any(fl)
    for x in (np.full((4, n), 32767, np.int16), np.full((4, n), -32768, np.int16),
              np.where(np.arange(n) % 2, 32767, -32768).astype(np.int16)[None].repeat(4, 0),
              np.where((np.arange(n) // 40) % 2, 32767, -32768).astype(np.int16)[None].repeat(4, 0)):
        s, _, _ = spectra(CFG, x, tables=TAB)
        assert s.dtype == np.int8 and s.min() >= -127 and s.max() <= 127
        assert np.all((s.max(axis=1) == 127) | (s.max(axis=1) == -127))   # max bin 127 unless all zero
    # a full-scale 1.5 Hz square wave (40 samples high, 40 low at 125 Hz = 1.5625 Hz) peaks at 94 BPM
    sq = np.where((np.arange(n) // 40) % 2, 32767, -32768).astype(np.int16)[None].repeat(4, 0)
    s, _, _ = spectra(CFG, sq, tables=TAB)
    assert abs(bin_bpm(CFG)[int(np.argmax(s[-1, :, 0]))] - 93.75) <= 1


def test_fir_phases_have_exact_dc_gain_and_constant_passes_exactly():
    assert np.all(TAB.fir.astype(np.int64).sum(axis=1) == 32768)
    assert np.abs(TAB.fir.astype(np.int64)).sum(axis=1).max() <= 65535       # int32 accumulation proof
    from sqtool.data.frontend import _fir_outputs
    P = TAB.fir.shape[1]
    x = np.full((1, 500), -12345, np.int16)
    y = _fir_outputs(np.concatenate([np.zeros((1, P - 1), np.int16), x], 1), -(P - 1), 0, 60, TAB)
    assert np.all(y[0, 4:] == -12345)                 # every phase, once the history is full


@pytest.mark.parametrize("fs_in", [125.0, 256.0])
def test_fir_keeps_the_band_and_rejects_what_folds_onto_it(fs_in):
    from scipy import signal as sps
    cfg = FrontEndCfg(fs_in=fs_in)
    tab = TAB if fs_in == CFG.fs_in else design(cfg)
    w, h = sps.freqz(tab.fir_float, worN=16384, fs=tab.up * fs_in)
    db = 20 * np.log10(np.abs(h) + 1e-12)
    assert np.all(np.abs(db[(w >= 0.5) & (w <= 4.0)]) < 3.0)                 # passband (droop at 4 Hz)
    assert db[(w >= 12.0) & (w <= 20.0)].max() < -20                          # folds onto 0..4 Hz
    assert db[(w >= 20.0) & (w <= fs_in / 2)].max() < -40


def test_quantised_biquads_match_the_float_design():
    from scipy import signal as sps
    one = float(1 << CFG.iir_frac_bits)
    q = TAB.sos.astype(np.float64) / one
    sos_q = np.column_stack([q[:, :3], np.ones(len(q)), q[:, 3:]])
    f = np.linspace(0.2, 7.9, 400)
    _, hf = sps.sosfreqz(TAB.sos_float, worN=f, fs=CFG.fs)
    _, hq = sps.sosfreqz(sos_q, worN=f, fs=CFG.fs)
    assert np.max(np.abs(20 * np.log10(np.abs(hq)) - 20 * np.log10(np.abs(hf)))) < 1e-3
    # the integer filter itself: a 1.5 Hz tone at 16 Hz through the DF1 cascade vs float sosfilt
    from sqtool.data.frontend import _biquads
    t = np.arange(16 * 30) / 16.0
    x = np.round(10000 * np.sin(2 * np.pi * 1.5 * t)).astype(np.int16)[None]
    st = [[[0, 0, 0, 0] for _ in range(TAB.sos.shape[0])]]
    yi = _biquads(x, st, TAB, CFG.iir_frac_bits)[0].astype(np.float64)
    yf = sps.sosfilt(TAB.sos_float, x[0].astype(np.float64))
    assert np.max(np.abs(yi - yf)) < 10 and np.sqrt(np.mean((yi - yf) ** 2)) < 2   # LSBs of 10000


def test_no_overflow_on_full_scale_noise_and_worst_case_window():
    assert TAB.dft_bound < 2**31
    # worst case for each bin: |x| = XMAX with the sign of cos
    hann = TAB.hann.astype(np.int64)
    for b in (0, 60, 200):
        xw = (TAB.xmax * np.sign(TAB.ct[:, b]) * hann + (1 << 14)) >> 15
        re = int(xw @ TAB.ct[:, b])
        assert 0 < re <= TAB.dft_bound < 2**31
    # full-scale noise: the FIR's int64 sums stay within int32, the pipeline stays in range
    x = _noise(8000, seed=7)
    P = TAB.fir.shape[1]
    buf = np.concatenate([np.zeros((4, P - 1), np.int16), x], 1).astype(np.int64)
    m = np.arange((8000 * 16 + 124) // 125)
    cols = ((m * 125) // 16 + P - 1)[:, None] - np.arange(P)[None]
    acc = (buf[:, cols] * TAB.fir[(m * 125) % 16].astype(np.int64)[None]).sum(2)
    assert np.abs(acc).max() < 2**31
    s, _, _ = spectra(CFG, x, tables=TAB)
    assert s.min() >= -127 and np.all(s.max(axis=1) == 127)
    w = np.full((1, 4, 128), -32768, np.int16)          # block floating point: the -32768 corner
    assert np.all(window_codes(w, CFG, TAB)[0].max(axis=0) == 127)


def test_cfg_roundtrip_and_refusals():
    d = CFG.to_dict()
    assert d["phase"] == "causal" and d["filter_order"] == 2 and d["band"] == [0.5, 4.0]
    assert FrontEndCfg.from_dict(d) == CFG
    with pytest.raises(SqtoolError, match="unknown key"):
        FrontEndCfg.from_dict({"nope": 1})
    for bad in (dict(fs=200.0), dict(bins_bpm=(30.0, 230.0, 0.7)), dict(window_s=8.03),
                dict(n_channels=3), dict(band=(4.0, 0.5)), dict(bins_bpm=(30.0, 500.0, 1.0))):
        with pytest.raises(SqtoolError):
            design(FrontEndCfg(**bad))
    with pytest.raises(SqtoolError, match="int16"):
        spectra(CFG, np.zeros((4, 100), np.float32))
    with pytest.raises(SqtoolError, match="C=4"):
        FrontEnd(CFG, TAB).push(np.zeros((1, 100), np.int16))


def test_to_int16_gains_and_saturation():
    x = np.array([[0.0, 1.0, -1.0, 1e9], [0.0, 1.0, -9.0, 0.5]])
    q = to_int16(x, gains=(8.0, 4096.0))
    assert q.dtype == np.int16 and q.tolist() == [[0, 8, -8, 32767], [0, 4096, -32768, 2048]]
    assert to_int16(x[:1]).tolist() == [[0, 8, -8, 32767]]                      # default ppg gain
    r = to_int16(np.sin(np.linspace(0, 50, 5000))[None] * 0.01, gains="robust")
    assert 7900 <= np.abs(r).max() <= 8100
    with pytest.raises(SqtoolError):
        to_int16(np.array([[np.nan, 1.0]]))
    with pytest.raises(SqtoolError):
        to_int16(x, gains=(1.0, 2.0, 3.0))


# ----------------------------------------------------------------------------- acc axes summed (n_channels = 2)

def _swing(direction, n=125 * 40, cad_bpm=84.0, seed=0):
    """int16 (1 + 3, n): a 110 BPM pulse, and an arm swing at cad_bpm along `direction` (acc in g)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 125.0
    ppg = np.sin(2 * np.pi * 110 / 60 * t) + 0.05 * rng.standard_normal(n)
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    acc = 0.8 * d[:, None] * np.sin(2 * np.pi * cad_bpm / 60 * t) + 0.002 * rng.standard_normal((3, n))
    return to_int16(np.vstack([ppg * 1000, acc]), gains=(8.0, 4096.0, 4096.0, 4096.0))


def test_summed_acc_channel_is_the_swing_whatever_the_axes_orientation():
    """n_channels = 2: one acc channel, the three axes' powers on one scale and summed. A swing along the watch
    face (one axis still) and the same swing turned to any direction give the same acc codes up to rounding,
    with the peak at the cadence; the per-axis front end shows a still axis as its own normalised noise."""
    cfg = FrontEndCfg(n_channels=2, bins_bpm=(30.0, 229.5, 1.5))
    bins = bin_bpm(cfg)
    assert cfg.n_inputs == 4 and cfg.to_dict()["channels"] == ["ppg", "acc"]
    flat = spectra(cfg, _swing([1.0, 1.0, 0.0]))[0]                       # (W, F, 2)
    assert flat.shape[2] == 2
    for k, d in enumerate(([0.0, 0.0, 1.0], [1.0, -2.0, 0.5], [0.3, 0.3, -3.0])):
        turned = spectra(cfg, _swing(d))[0]
        assert np.abs(turned[..., 1].astype(int) - flat[..., 1]).max() <= 3, k
        assert np.array_equal(turned[..., 0], flat[..., 0])                # the ppg channel: untouched
    assert np.all(np.abs(bins[flat[..., 1].argmax(axis=1)] - 84.0) <= 1.5)
    axes = spectra(FrontEndCfg(bins_bpm=(30.0, 229.5, 1.5)), _swing([1.0, 1.0, 0.0]))[0]
    assert np.all(axes[..., 3].max(axis=1) == 127) and np.abs(bins[axes[..., 3].argmax(axis=1)] - 84.0).min() > 3
    axes_ppg = spectra(FrontEndCfg(bins_bpm=(30.0, 229.5, 1.5)), _swing([1.0, 1.0, 0.0]))[0][..., 0]
    assert np.array_equal(axes_ppg, flat[..., 0])


def test_summed_acc_weighs_each_axis_by_its_true_power():
    """Block floating point scales each axis to its own max before the DFT; the sum undoes it: an axis 64x
    weaker (its own spectrum coded to 127 like the others') adds 1/4096 of the power, a dead axis nothing."""
    cfg = FrontEndCfg(n_channels=2)
    bins = bin_bpm(cfg)
    t = np.arange(125 * 30) / 125.0
    strong = 8000 * np.sin(2 * np.pi * 90 / 60 * t)
    weak = 125 * np.sin(2 * np.pi * 150 / 60 * t)
    x = np.round(np.vstack([strong, strong, weak, 0 * t])).astype(np.int16)
    acc = spectra(cfg, x)[0][..., 1]                                      # (W, F)
    at = lambda bpm: acc[:, int(np.argmin(np.abs(bins - bpm)))]            # noqa: E731
    assert np.all(at(90) == 127) and np.all(at(150) <= -126)
    alone = spectra(cfg, np.vstack([x[:1], np.zeros_like(x[1:3]), x[2:3]]))[0][..., 1]
    assert np.all(alone[:, int(np.argmin(np.abs(bins - 150)))] == 127)    # the weak swing, alone, is its own max


@pytest.mark.parametrize("n_channels", [4, 2])
def test_axes_are_read_alike_and_each_on_its_own_order_and_sign(n_channels):
    """INTEGRATION.md's "Accelerometer axes": the front end treats x, y, z alike and each on its own. Permuted axes give
    the same codes bit for bit, in the permuted channels (n_channels 4: the network's three acc channels; 2: the one
    summed channel, unchanged); a negated axis changes only the integer rounding of a power spectrum (a few codes, by
    a few LSB), never the ppg channel; an axis at another gain gives its own channel's codes up to rounding."""
    cfg = FrontEndCfg(n_channels=n_channels, bins_bpm=(30.0, 229.5, 1.5))
    x = _swing([1.0, -2.0, 0.5])                                            # ppg + a swing on all three axes
    x[1:] = np.clip(x[1:].astype(int) + np.round(np.random.default_rng(3).normal(0, 300, x[1:].shape)),
                    -32768, 32767).astype(np.int16)                          # each axis its own noise
    codes = spectra(cfg, x)[0]                                              # (W, F, C)
    order = [2, 0, 1]
    turned = spectra(cfg, np.vstack([x[:1], x[1:][order]]))[0]
    want = codes[..., [0, *(1 + np.asarray(order))]] if n_channels == 4 else codes
    assert np.array_equal(turned, want)
    moved = []
    for axis in range(3):
        neg = x.copy()
        neg[1 + axis] = np.clip(-neg[1 + axis].astype(int), -32768, 32767)
        flipped = spectra(cfg, neg)[0]
        d = np.abs(flipped.astype(int) - codes)
        assert np.array_equal(flipped[..., 0], codes[..., 0]) and d.max() <= 4 and d.mean() < 0.02, (axis, d.max())
        moved.append(int(d.max()))
    assert max(moved) >= 1                      # not bit-identical: the rounding is not symmetric in the sign
    if n_channels == 4:                                                     # units: each axis scaled on its own
        scaled = x.copy()
        scaled[2] = np.round(scaled[2] / 4.0).astype(np.int16)
        d = np.abs(spectra(cfg, scaled)[0].astype(int) - codes)
        assert np.array_equal(d[..., [0, 1, 3]], 0 * d[..., [0, 1, 3]]) and d[..., 2].max() <= 4


def test_robust_int16_works_row_by_row():
    """to_int16(x, "robust") of a long recording: the same samples as the whole-matrix formula (a saturating level
    dropped, shared acc gain), its temporaries one row's (a day at 64 Hz: 44 MB a row), not all rows' at once."""
    import tracemalloc
    rng = np.random.default_rng(0)
    x = np.stack([100 * rng.standard_normal(400_000) + 2e5 * (c == 0) for c in range(4)])     # (4, N): ppg with DC
    med = np.median(x, axis=1, keepdims=True)                                                # the formula, whole
    dev = np.percentile(np.abs(x - med), 99.9, axis=1)
    dev[1:] = dev[1:].max()
    g = 8000.0 / dev
    ref = np.clip(np.round(np.where((np.abs(x * g[:, None]).max(axis=1) > 32767)[:, None], x - med, x)
                           * g[:, None]), -32768, 32767).astype(np.int16)
    tracemalloc.start()
    try:
        y = to_int16(x, "robust", share=[1, 2, 3])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(y, ref)
    assert peak < 6 * x[0].nbytes                  # the (4, N) int16 result and a row's temporaries (was 12 rows)
