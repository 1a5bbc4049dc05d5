"""Preprocessing: windowing (count, alignment, coverage), resampling, band-pass, normalisation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqtool.core import SqtoolError
from sqtool.data.preprocess import (StreamingBandpass, bandpass, make_windows, normalise, resample,
                                    resample_ratio, resampled_length, sliding_windows, window_starts)
from sqtool.data.record import Record


def _record(signals: dict, fs: dict, rid="r0") -> Record:
    return Record(dataset="test", subject="s0", record_id=rid, signals=signals, fs=fs)


# ----------------------------------------------------------------------------- windows

@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 5000), win=st.integers(1, 600), hop=st.integers(1, 400))
def test_window_starts_count_alignment_coverage(n, win, hop):
    s = window_starts(n, win, hop)
    expected = 0 if n < win else (n - win) // hop + 1
    assert s.size == expected
    if s.size:
        assert s[0] == 0
        assert np.all(np.diff(s) == hop)                 # aligned on the hop grid
        assert s[-1] + win <= n                          # every window is complete
        assert n - (s[-1] + win) < hop                   # coverage: no room for one more window


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 400), win=st.integers(1, 50), hop=st.integers(1, 50), c=st.integers(1, 3))
def test_sliding_windows_equals_slicing(n, win, hop, c):
    x = np.arange(c * n, dtype=np.float64).reshape(c, n)
    w = sliding_windows(x, win, hop)                    # (C, W, T)
    starts = window_starts(n, win, hop)
    assert w.shape == (c, starts.size, win)
    for i, s in enumerate(starts):
        np.testing.assert_array_equal(w[:, i], x[:, s:s + win])


def test_window_starts_refuses_bad_sizes():
    with pytest.raises(SqtoolError):
        window_starts(100, 0, 10)
    with pytest.raises(SqtoolError):
        window_starts(100, 10, 0)


@pytest.mark.parametrize("n", [1000, 1249, 1250, 37936])
def test_spcup_alignment_native_and_40hz(n):
    """Window i = samples [250 i, 250 i + 1000) at 125 Hz = [80 i, 80 i + 320) at 40 Hz, t0 = 2 i s."""
    fs = 125.0
    t = np.arange(n) / fs
    x = np.sin(2 * np.pi * 0.21 * t) + 0.05 * t                    # slow: survives resampling exactly
    rec = _record({"ppg": x}, {"ppg": fs})
    n_spcup = (n - 1000) // 250 + 1
    w125 = make_windows(rec, ("ppg",), fs=None, window_s=8, hop_s=2, norm="none", band=None)
    assert len(w125) == n_spcup
    np.testing.assert_allclose(w125.t0, 2.0 * np.arange(n_spcup))
    for i in (0, n_spcup - 1):
        np.testing.assert_allclose(w125.x[i, 0], x[250 * i: 250 * i + 1000], rtol=1e-6, atol=1e-6)
    w40 = make_windows(rec, ("ppg",), fs=40.0, window_s=8, hop_s=2, norm="none", band=None)
    assert w40.x.shape == (n_spcup, 1, 320)
    np.testing.assert_allclose(w40.t0, 2.0 * np.arange(n_spcup))
    for i in range(n_spcup):
        tt = 2.0 * i + np.arange(320) / 40.0
        truth = np.sin(2 * np.pi * 0.21 * tt) + 0.05 * tt
        inner = slice(40, 280) if i in (0, n_spcup - 1) else slice(0, 320)   # record edges: FIR transient
        np.testing.assert_allclose(w40.x[i, 0, inner], truth[inner], atol=0.01)


def test_make_windows_shapes_norm_and_metadata():
    fs = 125.0
    rng = np.random.default_rng(0)
    n = int(95 * fs)
    sig = {"ppg": rng.standard_normal(n), "acc_x": rng.standard_normal(n)}
    rec = _record(sig, {"ppg": fs, "acc_x": fs}, rid="abc")
    w = make_windows(rec, ("ppg", "acc_x"), fs=40.0, window_s=30, hop_s=None, norm="minmax")
    assert w.x.dtype == np.float32 and w.x.shape == (3, 2, 1200)
    assert w.subject == "s0" and w.record_id == "abc" and w.fs == 40.0 and w.channels == ("ppg", "acc_x")
    np.testing.assert_allclose(w.t0, [0, 30, 60])
    np.testing.assert_allclose(w.x.min(axis=-1), 0, atol=1e-6)
    np.testing.assert_allclose(w.x.max(axis=-1), 1, atol=1e-6)
    wz = make_windows(rec, ("ppg",), fs=40.0, window_s=10, hop_s=5, norm="zscore")
    np.testing.assert_allclose(wz.x.mean(axis=-1), 0, atol=1e-4)
    np.testing.assert_allclose(wz.x.std(axis=-1), 1, atol=1e-3)


def test_make_windows_channels_at_different_rates_are_resampled():
    ppg = np.sin(2 * np.pi * 1.2 * np.arange(64 * 40) / 64)
    acc = np.sin(2 * np.pi * 1.2 * np.arange(32 * 40) / 32)
    rec = _record({"ppg": ppg, "acc_x": acc}, {"ppg": 64.0, "acc_x": 32.0})
    w = make_windows(rec, ("ppg", "acc_x"), fs=40.0, window_s=8, hop_s=8, norm="zscore", band=(0.5, 8))
    assert w.x.shape == (5, 2, 320)
    # the same 1.2 Hz sine in both channels, both at 40 Hz now: nearly identical windows (inner part)
    assert np.corrcoef(w.x[2, 0], w.x[2, 1])[0, 1] > 0.99
    with pytest.raises(SqtoolError, match="different rates"):
        make_windows(rec, ("ppg", "acc_x"), fs=None, window_s=8)


@pytest.mark.parametrize("bad, match", [
    ("nan", "no finite sample"), ("short", "shorter than"), ("missing", "missing"), ("rate", "sampling rate"),
])
def test_make_windows_bad_input(bad, match):
    fs = 125.0
    x = np.sin(np.arange(int(40 * fs)) * 0.1)
    rec = _record({"ppg": x.copy()}, {"ppg": fs})
    channels = ("ppg",)
    if bad == "nan":
        rec.signals["ppg"][:] = np.nan
    elif bad == "short":
        rec.signals["ppg"] = x[: int(20 * fs)]
    elif bad == "missing":
        channels = ("ppg", "acc_x")
    elif bad == "rate":
        rec.fs["ppg"] = 0.0
    with pytest.raises(SqtoolError, match=match):
        make_windows(rec, channels, fs=40.0, window_s=30)


def test_make_windows_refuses_fractional_window():
    rec = _record({"ppg": np.random.default_rng(0).standard_normal(4000)}, {"ppg": 125.0})
    with pytest.raises(SqtoolError, match="whole number"):
        make_windows(rec, ("ppg",), fs=40.0, window_s=8.01, hop_s=2)
    with pytest.raises(SqtoolError, match="normalisation"):
        make_windows(rec, ("ppg",), fs=40.0, window_s=8, norm="l2")


# ----------------------------------------------------------------------------- resampling

RATES = [25.0, 30.0, 40.0, 64.0, 100.0, 117.1875, 125.0, 200.0, 240.0, 256.0, 1000.0]


@settings(max_examples=40, deadline=None)
@given(fs_in=st.sampled_from(RATES), fs_out=st.sampled_from(RATES), n=st.integers(1, 3000),
       c=st.floats(-1e4, 1e4))
def test_resample_length_and_dc(fs_in, fs_out, n, c):
    up, down = resample_ratio(fs_in, fs_out)
    assert abs(up / down - fs_out / fs_in) <= 1e-4 * fs_out / fs_in
    y = resample(np.full(n, c), fs_in, fs_out)
    assert y.size == resampled_length(n, fs_in, fs_out) == -(-n * up // down)
    np.testing.assert_allclose(y, c, atol=1e-9 * max(1.0, abs(c)))       # DC preserved exactly


@settings(max_examples=30, deadline=None)
@given(fs_in=st.sampled_from(RATES), fs_out=st.sampled_from(RATES), frac=st.floats(0.02, 0.3),
       phase=st.floats(0, 6.28))
def test_resample_preserves_sine_below_nyquist(fs_in, fs_out, frac, phase):
    f = frac * min(fs_in, fs_out)                     # well inside both pass-bands
    dur = 20.0
    x = np.sin(2 * np.pi * f * np.arange(int(dur * fs_in)) / fs_in + phase)
    y = resample(x, fs_in, fs_out)
    t = np.arange(y.size) / fs_out
    inner = (t > 2.0) & (t < dur - 2.0)               # away from the record edges
    np.testing.assert_allclose(y[inner], np.sin(2 * np.pi * f * t[inner] + phase), atol=0.02)


@pytest.mark.parametrize("fs_in, fs_out", [(0, 40), (-125, 40), (125, 0), (float("nan"), 40),
                                           (float("inf"), 40), (1e6, 40), (0.001, 40)])
def test_resample_refuses_bad_rates(fs_in, fs_out):
    with pytest.raises(SqtoolError):
        resample(np.ones(100), fs_in, fs_out)


# ----------------------------------------------------------------------------- band-pass, normalise

def _amp(y, fs):
    return float(np.sqrt(2) * y[int(2 * fs): -int(2 * fs)].std())


def test_bandpass_passes_pulse_band_and_rejects_the_rest():
    fs = 40.0
    t = np.arange(int(60 * fs)) / fs
    assert _amp(bandpass(np.sin(2 * np.pi * 1.5 * t), fs), fs) == pytest.approx(1.0, abs=0.05)
    assert _amp(bandpass(np.sin(2 * np.pi * 0.05 * t), fs), fs) < 0.05
    assert _amp(bandpass(np.sin(2 * np.pi * 15 * t), fs), fs) < 0.05
    with pytest.raises(SqtoolError, match="Nyquist"):
        bandpass(t, 10.0, 0.5, 8.0)
    with pytest.raises(SqtoolError):
        bandpass(t, fs, 5.0, 2.0)


def test_streaming_bandpass_equals_causal_whole_signal():
    fs = 125.0
    x = np.random.default_rng(1).standard_normal(5000)
    whole = bandpass(x, fs, causal=True)
    f = StreamingBandpass(fs)
    pieces = np.concatenate([f(c) for c in np.array_split(x, [7, 250, 251, 3000])])
    np.testing.assert_allclose(pieces, whole, atol=1e-10)


def test_bandpass_short_input_does_not_fail():
    y = bandpass(np.arange(5.0), 40.0)
    assert y.shape == (5,) and np.all(np.isfinite(y))


@pytest.mark.parametrize("method", ["minmax", "zscore"])
def test_normalise_flat_window_is_defined(method):
    w = np.stack([np.full(50, 3.0), np.linspace(-1, 1, 50)])[:, None, :]   # (W=2, C=1, T)
    y = normalise(w, method)
    assert np.all(np.isfinite(y))
    assert np.all(y[0] == (0.5 if method == "minmax" else 0.0))
    with pytest.raises(SqtoolError):
        normalise(w, "max")


def test_windows_holding_a_gap_are_left_out_and_counted():
    """NaN/Inf samples (gaps) are filled for the whole-record resampler and filter, and the windows holding one
    are left out (meta["nonfinite_windows"]); a record without gaps gives the very same windows as before."""
    from sqtool.data.preprocess import fill_gaps, nonfinite_windows
    fs = 125.0
    x = np.sin(2 * np.pi * 1.2 * np.arange(int(60 * fs)) / fs) + 0.1 * np.random.default_rng(0).standard_normal(
        int(60 * fs))
    clean = _record({"ppg": x.copy()}, {"ppg": fs})
    w0 = make_windows(clean, ("ppg",), fs=40.0, window_s=8, hop_s=2)
    assert len(w0) == 27 and w0.meta == {}
    gap = _record({"ppg": x.copy()}, {"ppg": fs})
    gap.signals["ppg"][int(21 * fs):int(22 * fs)] = np.nan                # 21-22 s: windows starting 14..20 s
    gap.signals["ppg"][int(50.5 * fs)] = np.inf                          # one sample at 50.5 s: 44..50 s
    w = make_windows(gap, ("ppg",), fs=40.0, window_s=8, hop_s=2)
    lost = {14.0, 16.0, 18.0, 20.0, 44.0, 46.0, 48.0, 50.0}
    assert w.meta["nonfinite_windows"] == 8 and set(w0.t0) - set(w.t0) == lost and len(w) == 19
    assert np.isfinite(w.x).all()
    assert nonfinite_windows(gap, ["ppg"], w0.t0, 8).sum() == 8
    assert not nonfinite_windows(clean, ["ppg"], w0.t0, 8).any()
    np.testing.assert_array_equal(fill_gaps(np.array([np.nan, 1.0, np.nan, 3.0, np.inf])), [1, 1, 2, 3, 3])
