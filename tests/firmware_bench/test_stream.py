"""Stream replay: the streaming resampler equals resample_poly; streamed windows equal the offline
windows (stated tolerances); odd chunk sizes, dropouts, gaps, impossible rates, flat streams."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from sqtool.core import SqtoolError
from sqtool.data import preprocess as pp
from sqtool.data.record import Record
from sqtool.data.synthetic import synth_record
from sqtool.firmware_bench import stream
from sqtool.firmware_bench.stream import StreamingResampler, StreamSpec, WindowStream, replay

CH = ("ppg", "acc_x", "acc_y", "acc_z")


@pytest.fixture(scope="module")
def rec():
    return synth_record(duration_s=40.0, fs=125.0, seed=3)


def _stream_all(x, fs_in, fs_out, sizes):
    r = StreamingResampler(fs_in, fs_out, x.shape[0])
    out, i, k = [], 0, 0
    while i < x.shape[1]:
        out.append(r.push(x[:, i:i + sizes[k % len(sizes)]]))
        i += sizes[k % len(sizes)]
        k += 1
    n_out = -(-x.shape[1] * r.up // r.down)
    out.append(r.flush(n_out))
    return np.concatenate(out, axis=1)


@settings(max_examples=12, deadline=None)
@given(sizes=st.lists(st.integers(1, 400), min_size=1, max_size=4),
       rates=st.sampled_from([(125.0, 40.0), (100.0, 40.0), (25.0, 40.0), (256.0, 40.0), (40.0, 40.0)]))
def test_streaming_resampler_equals_resample_poly(sizes, rates):
    x = np.random.default_rng(len(sizes)).standard_normal((2, 1501))
    up, down = pp.resample_ratio(*rates)
    ref = resample_poly(x, up, down, axis=1) if up != down else x
    got = _stream_all(x, *rates, sizes)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-10)


@pytest.mark.parametrize("mode,band", [("none", None), ("causal", pp.DEFAULT_BAND), ("window", pp.DEFAULT_BAND)])
def test_streamed_windows_equal_offline(rec, mode, band):
    spec = StreamSpec(channels=CH, band=band, filter=mode)
    res = replay(rec, spec, chunk=37)                       # 37 divides neither the hop (250) nor the window
    if mode == "causal":
        sig, _ = pp.record_signals(rec, CH, 40.0, band, causal=True)
        off = pp.normalise(np.moveaxis(pp.sliding_windows(sig, 320, 80), 0, 1), "minmax")
    else:
        off = pp.make_windows(rec, channels=CH, fs=40.0, window_s=8.0, hop_s=2.0, norm="minmax", band=band).x
    assert res.x.shape == off.shape and res.x.dtype == np.float32
    np.testing.assert_array_equal(res.t0, np.arange(len(off)) * 2.0)
    d = np.abs(res.x - off).max(axis=(1, 2))
    # record edges: see stream.py docstring; the causal filter starts in its first sample's steady state, and the
    # offline first sample (whole-record mean removed, zero padded) is not the stream's: 1.6e-3 apart 2 s later
    inner = d[1:-1] if mode == "none" else d[2:-1] if mode == "causal" else d[4:-4]
    assert inner.max() < (1e-4 if mode != "window" else 3e-2), inner.max()


@pytest.mark.parametrize("mode,band", [("window", pp.DEFAULT_BAND), ("causal", pp.DEFAULT_BAND), ("none", None),
                                       ("window", (0.05, 1.0))])
def test_chunking_does_not_change_windows(mode, band):
    """One sample a push, odd chunks, replay's default blocks (REPLAY_CHUNK, predict's): the same windows, raw
    windows and dropout shares to the bit, a dropout included."""
    r = synth_record(duration_s=40.0, fs=125.0, seed=3)
    r.signals["ppg"] = r.signals["ppg"].copy()
    r.signals["ppg"][1300:1400] = np.nan
    spec = StreamSpec(channels=CH, band=band, filter=mode, context_s=pp.zero_phase_context(band))
    a = replay(r, spec, chunk=1)
    assert stream.REPLAY_CHUNK > 1
    for b in (replay(r, spec, chunk=[3, 250, 7, 1000]), replay(r, spec)):
        for k in ("x", "raw", "t0", "flagged"):
            assert np.array_equal(getattr(a, k), getattr(b, k)), k


def test_truth_alignment_and_latency(rec):
    res = replay(rec, StreamSpec(channels=CH), chunk=25)
    lab = rec.labels["hr"]
    n = min(len(res), len(lab))
    np.testing.assert_allclose(res.truth[:n], lab.values[:n])
    assert 4.0 <= res.latency_s < 5.0                       # 4 s filter look-ahead + resampler


def test_dropouts_and_gaps_are_held_and_flagged(rec):
    spec = StreamSpec(channels=CH)
    clean = replay(rec, spec, chunk=25)
    r2 = synth_record(duration_s=40.0, fs=125.0, seed=3)
    r2.signals["ppg"] = r2.signals["ppg"].copy()
    r2.signals["ppg"][1300:1400] = np.nan                   # a dropout inside windows 3..5
    bad = replay(r2, spec, chunk=25)
    assert np.isfinite(bad.x).all()
    hit = (bad.t0 * 125 <= 1399) & (bad.t0 * 125 + 1000 > 1300)
    assert (bad.flagged[hit] > 0).all() and (bad.flagged[~hit] == 0).all()
    gap = replay(rec, spec, chunk=25, gaps={2000: 300})     # 2.4 s never received
    assert len(gap) == len(clean)                           # windows stay aligned with the truth
    np.testing.assert_array_equal(gap.t0, clean.t0)
    hit = (gap.t0 * 125 <= 2299) & (gap.t0 * 125 + 1000 > 2000)
    assert np.allclose(gap.flagged[hit].max(), 300 / 1000)
    far = gap.t0 * 125 + 1000 + 8 * 125 < 2000             # windows well before the gap are untouched
    np.testing.assert_allclose(gap.x[far], clean.x[far], atol=1e-6)


def test_impossible_rate_is_refused():
    rec = Record("x", "s", "r", {"ppg": np.random.default_rng(0).standard_normal(5000)}, {"ppg": 12.5})
    with pytest.raises(SqtoolError, match="cannot resample 12.5 Hz"):   # Nyquist below the 8 Hz band
        replay(rec, StreamSpec(channels=("ppg",)))
    with pytest.raises(SqtoolError, match="resample"):                  # not a usable up/down ratio
        WindowStream(StreamSpec(channels=("ppg",), band=None), fs_in=1e-7)
    with pytest.raises(SqtoolError, match="not whole numbers of samples"):
        WindowStream(StreamSpec(channels=("ppg",)), fs_in=125.0 * np.sqrt(2))


def test_a_clock_off_its_whole_hz_rate_streams_at_that_rate():
    """A smartwatch's timestamps give 19.58 Hz: an 8 s window is no whole number of its samples, which a device
    stream refuses; `at_stream_rate` resamples the recording to 20 Hz (time kept), whose windows are the ones the
    same signal sampled at 20 Hz gives; a whole rate, or one whose windows are whole samples, stays as it is."""
    from sqtool.firmware_bench.stream import at_stream_rate

    def rec(fs):
        t = np.arange(int(60 * fs)) / fs
        return Record("x", "s", "r", {"ppg": np.sin(2 * np.pi * 1.3 * t) + 0.4 * np.sin(2 * np.pi * 0.25 * t)},
                      {"ppg": fs})
    spec = StreamSpec(channels=("ppg",))
    off, nominal = rec(19.581367), rec(20.0)
    with pytest.raises(SqtoolError, match="not whole numbers of samples at the device rate 19.5814 Hz"):
        replay(off, spec)
    whole = at_stream_rate(off, spec)
    assert whole.fs == {"ppg": 20.0} and whole.meta["resampled_from_hz"] == {"ppg": 19.581367}
    a, b = replay(whole, spec), replay(nominal, spec)
    np.testing.assert_array_equal(a.t0, b.t0)
    inner = slice(2, -2)                                   # the resampler's edges aside
    assert np.abs(a.x[inner] - b.x[inner]).max() < 0.02
    assert at_stream_rate(nominal, spec) is nominal
    half = rec(12.5)                                       # 8 s and 2 s are whole samples at 12.5 Hz: left as is
    assert at_stream_rate(half, spec) is half


def test_flat_and_saturated_streams_give_defined_windows():
    n = 125 * 20
    for sig in (np.zeros(n), np.full(n, 4095.0)):
        rec = Record("x", "s", "r", {"ppg": sig}, {"ppg": 125.0})
        res = replay(rec, StreamSpec(channels=("ppg",)), chunk=50)
        assert np.isfinite(res.x).all()
        np.testing.assert_allclose(res.x, 0.5, atol=1e-6)   # minmax of a flat window: 0.5 (contract)


def test_short_record_is_refused():
    rec = Record("x", "s", "r", {"ppg": np.random.default_rng(0).standard_normal(500)}, {"ppg": 125.0})
    with pytest.raises(SqtoolError, match="shorter than one"):
        replay(rec, StreamSpec(channels=("ppg",)))


def test_stream_spec_takes_the_model_band():
    from sqtool.firmware_bench.stream import DEFAULT_BAND, StreamSpec
    base = {"fs": 40.0, "window_s": 30.0, "hop_s": 10.0, "channels": ["ppg"], "norm": "minmax"}
    assert StreamSpec.from_model_cfg(base).band == tuple(DEFAULT_BAND)            # older files
    rr = StreamSpec.from_model_cfg({**base, "band": [0.05, 8.0]})
    assert rr.band == (0.05, 8.0) and rr.context_s == (60.0, 30.0)
    nested = StreamSpec.from_model_cfg({**base, "model_cfg": {"band": [0.05, 8.0]}})
    assert nested.band == (0.05, 8.0)
    assert StreamSpec.from_model_cfg({**base, "band": None}).band is None


def test_recordings_shorter_than_a_window_are_left_out_in_one_place():
    """predict and both benches leave out a recording shorter than one window (report.long_enough): its reason
    kept, one line each; an error only when none is left (the reason itself for one, else the count); another
    error still stops unless the caller skips it too (the spectral bench: a missing channel)."""
    from sqtool.firmware_bench.report import left_out_lines, long_enough
    spec = StreamSpec(channels=("ppg",))
    rng = np.random.default_rng(0)
    short = Record("x", "s", "r1", {"ppg": rng.standard_normal(500)}, {"ppg": 125.0})
    long = Record("x", "s", "r2", {"ppg": rng.standard_normal(125 * 20)}, {"ppg": 125.0})
    kept, left = long_enough([short, long], lambda r: replay(r, spec), spec.window_s)
    assert [k.record_id for k in kept] == ["r2"] and left == ["x/r1: 4.0 s is shorter than one 8 s window"]
    assert left_out_lines(left) == ["WARNING: left out x/r1: 4.0 s is shorter than one 8 s window"]
    assert left_out_lines(left, "bench") == ["bench: left out x/r1: 4.0 s is shorter than one 8 s window"]
    with pytest.raises(SqtoolError, match=r"^x/r1: 4.0 s is shorter than one 8 s window$"):
        long_enough([short], lambda r: replay(r, spec), spec.window_s)
    with pytest.raises(SqtoolError, match=r"^--data d: no recording is as long as one 8 s window \(2 recordings, "
                                          r"e.g. x/r1: .*; x/r1: "):
        long_enough([short, short], lambda r: replay(r, spec), spec.window_s, "d")

    def no_channel(r):
        raise SqtoolError(f"{r.record_id}: no acc")
    with pytest.raises(SqtoolError, match="r2: no acc"):
        long_enough([long], no_channel, spec.window_s)
    with pytest.raises(SqtoolError, match=r"^--data records: no recording the model can use \(2 recordings, e.g. "
                                          r"r2: no acc; x/r1: 4.0 s is shorter"):
        long_enough([long, short], lambda r: no_channel(r) if r is long else replay(r, spec), spec.window_s,
                    skip=SqtoolError)
