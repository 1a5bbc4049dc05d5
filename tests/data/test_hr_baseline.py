"""The causal tracker and the classic spectral baseline (TROIKA-like): artifact suppression with the
accelerometer must pick the cardiac peak over a stronger motion peak; tracking must hold through
gated windows and re-acquire after a wrong lock."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.synthetic import synth_record
from sqtool.data.hr_baseline import baseline_hr, estimate
from sqtool.firmware_bench.report import hr_metrics
from sqtool.data.hr_tracker import HrTracker, TrackerCfg, track

FS = 125.0


def test_tracker_holds_limits_and_reacquires():
    t = HrTracker(TrackerCfg(max_step_bpm=5, alpha=1.0, reset_after=3))
    assert np.isnan(t.update(np.nan))
    assert t.update(80) == 80
    assert t.update(150, ok=False) == 80                # gated out: hold
    assert t.update(100) == 85                          # slew limited (+5)
    assert t.update(100) == 90                          # still limited, 2nd push up
    assert t.update(100) == 100                         # 3rd push the same way: re-acquire
    assert t.update(99) == 99                           # small change passes (alpha 1)
    out = track(np.array([np.nan, 70, 71, 300, 72]), np.array([True, True, True, True, True]))
    assert np.isnan(out[0]) and out[3] == pytest.approx(out[2])     # out-of-range estimate ignored
    assert np.all(np.isfinite(out[1:]))


def _windows(hr_bpm, motion_bpm, n=12, motion_amp=3.0, seed=0):
    """Wrist-like windows: cardiac sine + a STRONGER motion sine the accelerometer also sees."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(8 * FS)) / FS
    ppg, acc = [], []
    for i in range(n):
        ph = rng.uniform(0, 2 * np.pi, 2)
        m = motion_amp * np.sin(2 * np.pi * motion_bpm / 60 * t + ph[1])
        ppg.append(np.sin(2 * np.pi * hr_bpm / 60 * t + ph[0]) + m + 0.1 * rng.standard_normal(t.size))
        acc.append(np.stack([m + 0.05 * rng.standard_normal(t.size), 0.5 * m, 0.2 * rng.standard_normal(t.size)]))
    return np.array(ppg), np.array(acc)


def test_accelerometer_suppression_finds_the_heart_not_the_arm():
    ppg, acc = _windows(hr_bpm=120, motion_bpm=90)
    with_acc = estimate(ppg, acc, FS)
    without = estimate(ppg, None, FS)
    assert np.abs(with_acc["hr"] - 120).max() < 3.0
    assert with_acc["suppressed"].all()
    assert np.abs(without["hr"] - 90).max() < 3.0      # PPG alone locks onto the stronger motion peak


def test_baseline_on_a_synthetic_wrist_recording():
    rec = synth_record(duration_s=120.0, fs=FS, hr_bpm=[70, 110], artifacts=0.1, seed=2)
    lab = rec.labels["hr"]
    m = hr_metrics(baseline_hr(rec, lab.times)["hr"], lab.values)
    assert m["coverage"] == 1.0 and m["mae"] < 6.0, m


def test_baseline_bad_windows():
    with pytest.raises(SqtoolError, match="baseline"):
        estimate(np.zeros((3, 10)), None, FS)
    flat = estimate(np.zeros((3, 1000)), np.zeros((3, 3, 1000)), FS)   # all-zero stream: no estimate
    assert np.isnan(flat["hr"]).all()


_PPG, _ACC = _windows(hr_bpm=120, motion_bpm=90, n=5)                  # ppg (5, T), acc (5, 3, T)


@pytest.mark.parametrize("acc, fs, match", [
    (_ACC[0, 0], FS, r"acc windows must be \(W, 3, T\)"),                 # 1-D
    (_ACC.transpose(0, 2, 1), FS, r"acc windows must be \(W, 3, T\)"),    # (W, T, 3)
    (_ACC[:3], FS, r"acc windows must be \(W, 3, T\)"),                   # 3 windows for 5 of ppg
    (_ACC, 0, r"fs: sampling rate must be in"),
    (_ACC, -125.0, r"fs: sampling rate must be in"),
    (_ACC, float("nan"), r"fs: sampling rate must be finite"),
    (_ACC, "125", r"fs must be the sampling rate in Hz as a number"),
    (_ACC, 5.0, r"fs must be above 8 Hz for the 0.5-4 Hz band-pass"),        # band above Nyquist
], ids=["acc 1-D", "acc (W,T,3)", "fewer acc windows", "fs 0", "fs negative", "fs nan", "fs str", "fs too low"])
def test_baseline_refuses_bad_acc_or_fs_with_one_line(acc, fs, match):
    """Array callers' slips get one SqtoolError naming the argument and the shape/range wanted, not a numpy or
    scipy error from deep inside the filter."""
    with pytest.raises(SqtoolError, match=match) as e:
        estimate(_PPG, acc, fs)
    assert "baseline: " in str(e.value) and "\n" not in str(e.value)


def test_hr_metrics():
    m = hr_metrics(np.array([60, 72, np.nan, 100]), np.array([60, 70, 80, np.nan]))
    assert m["n"] == 3 and m["coverage"] == pytest.approx(2 / 3)
    assert m["mae"] == pytest.approx(1.0) and m["gt10"] == 0.0


def test_baseline_window_past_the_end_is_nan_not_an_error():
    """At 125 Hz with N mod 250 in 243..249 the front end emits one window more than the raw recording holds in
    full (its last model sample is in a few raw samples early): that window's baseline is NaN, the others are as
    without it, and the whole recording keeps its baseline."""
    from sqtool.data.hr_spectra import record_spectra
    from sqtool.data.record import Label, Record
    from sqtool.models import get_model_cfg
    n = 37995                                            # 37995 mod 250 = 245
    t = np.arange(n) / FS
    rng = np.random.default_rng(0)
    sig = {"ppg": np.sin(2 * np.pi * 1.5 * t) + 0.1 * rng.standard_normal(n),
           **{a: 0.1 * rng.standard_normal(n) for a in ("acc_x", "acc_y", "acc_z")}}
    W = (n - 1000) // 250 + 1                            # the 8 s / 2 s windows the recording holds in full
    rec = Record("mine", "a", "a1", sig, {c: FS for c in sig},
                 {"hr": Label(values=np.full(W, 90.0), times=np.arange(W) * 2.0, unit="bpm", kind="window",
                              window_s=8.0)})
    t0 = record_spectra(rec, get_model_cfg("spec_student_s")).t0
    assert len(t0) == W + 1                              # the front end's extra window
    o = baseline_hr(rec, t0, 8.0)
    ref = baseline_hr(rec, t0[:-1], 8.0)
    assert np.isnan(o["hr"][-1]) and np.isnan(o["raw"][-1]) and not o["suppressed"][-1]
    assert np.array_equal(o["hr"][:-1], ref["hr"]) and np.abs(ref["hr"] - 90).max() < 3.0
    with pytest.raises(SqtoolError, match="beyond the end"):     # a window starting past the end: wrong t0
        baseline_hr(rec, np.array([0.0, n / FS]), 8.0)


def test_baseline_averages_the_ppg_sensors_normalised_spectra_when_asked():
    """Two PPG sensors (as TROIKA's ppg, ppg2): the first (at 1000x the gain) reads a stronger 80 BPM artifact than
    the 120 BPM heart, the second the heart clearly. ppg_sensors ("ppg",) reads the first alone (the artifact);
    ("ppg", "ppg2") the mean of both spectra, each scaled to its max (so the first's gain does not outweigh the
    second), finds the heart. A recording with one of the sensors reads that one."""
    import dataclasses

    from sqtool.data.record import Record
    from sqtool.data.hr_baseline import BaselineCfg
    n = int(40 * FS)
    t = np.arange(n) / FS
    rng = np.random.default_rng(1)
    heart, artifact = np.sin(2 * np.pi * 2.0 * t), np.sin(2 * np.pi * 80 / 60 * t + 1.0)
    sig = {"ppg": 1000 * (0.8 * heart + artifact + 0.05 * rng.standard_normal(n)),
           "ppg2": heart + 0.3 * artifact + 0.05 * rng.standard_normal(n)}
    rec = Record("mine", "a", "a1", sig, {c: FS for c in sig})
    t0 = np.arange(0.0, 32.1, 2.0)
    first = baseline_hr(rec, t0, 8.0, BaselineCfg())["raw"]
    both = baseline_hr(rec, t0, 8.0, BaselineCfg(ppg_sensors=("ppg", "ppg2")))["raw"]
    assert np.abs(first - 80).max() < 2.0 and np.abs(both - 120).max() < 2.0
    one = dataclasses.replace(rec, signals={"ppg": sig["ppg"]}, fs={"ppg": FS})
    assert np.array_equal(baseline_hr(one, t0, 8.0, BaselineCfg(ppg_sensors=("ppg", "ppg2")))["raw"], first)


@pytest.fixture(scope="module")
def synthetic_corpus():
    from sqtool.data.hr_spectra import hr_corpus
    from sqtool.models import get_model_cfg
    return hr_corpus("synthetic", ("synthetic",), get_model_cfg("spec_student_xs"), synthetic_subjects=4, seed=0)


def test_a_notch_grid_is_each_notch_alone(synthetic_corpus):
    from sqtool.data.hr_baseline import NOTCHES, BaselineCfg, baseline_grid
    r = synthetic_corpus[0]
    grid = baseline_grid(r.source, r.t0, 8.0, NOTCHES)
    for n in NOTCHES:                                  # one read and one set of spectra: the same numbers
        one = baseline_hr(r.source, r.t0, 8.0, BaselineCfg(notch_bpm=n))
        for k in one:
            np.testing.assert_array_equal(grid[n][k], one[k])


def test_the_nested_baseline_chooses_on_training_recordings_only(synthetic_corpus):
    from sqtool.data.hr_baseline import NOTCHES, BaselineCfg, NestedBaseline
    corpus = synthetic_corpus
    keys = sorted({r.key for r in corpus})
    groups = [{k} for k in keys]                       # leave one subject out
    nb = NestedBaseline([("ppg",)], 8.0)
    oof, chosen = nb.out_of_fold(corpus, groups)
    assert set(oof) == {r.record_id for r in corpus} and len(chosen) == len(keys)

    def mae(r, n):
        h = baseline_hr(r.source, r.t0, 8.0, BaselineCfg(notch_bpm=n))["hr"]
        ok = np.isfinite(h) & np.isfinite(r.y)
        return np.abs(h[ok] - r.y[ok]).mean()
    for g, c in zip(groups, chosen):
        train = [r for r in corpus if r.key not in g]
        scores = {n: np.mean([mae(r, n) for r in train]) for n in NOTCHES}     # computed here, independently
        assert c["subjects"] == sorted(g) and c["notch_bpm"] == min(scores, key=scores.get)
        for r in (r for r in corpus if r.key in g):   # the held-out subject read at the others' choice
            np.testing.assert_array_equal(
                oof[r.record_id], baseline_hr(r.source, r.t0, 8.0, BaselineCfg(notch_bpm=c["notch_bpm"]))["hr"])


def test_a_recording_without_its_raw_record_is_one_line(synthetic_corpus):
    import dataclasses
    from sqtool.data.hr_baseline import NestedBaseline
    r = dataclasses.replace(synthetic_corpus[0], source=None)
    with pytest.raises(SqtoolError, match="no raw recording kept"):
        NestedBaseline([("ppg",)]).hr(r, 0.0, ("ppg",))


def _classic_task_windows(fs=40.0, hr=75.0, burst_bpm=132.0, n=30, seed=0):
    """A TaskData-like set of one recording's 8 s PPG windows every 2 s at `hr`, a stronger sine at `burst_bpm` for
    6 s in the middle (what a per-window peak takes and the tracker must hold through), windows SHUFFLED."""
    from types import SimpleNamespace
    rng = np.random.default_rng(seed)
    t = np.arange(int((8 + 2 * (n - 1)) * fs)) / fs
    x = np.sin(2 * np.pi * hr / 60 * t) + 0.05 * rng.standard_normal(t.size)
    burst = (t >= 30) & (t < 36)
    x[burst] += 1.4 * np.sin(2 * np.pi * burst_bpm / 60 * t[burst])
    t0 = 2.0 * np.arange(n)
    w = np.stack([x[int(s * fs):int(s * fs) + int(8 * fs)] for s in t0])[:, None]     # (n, 1, T)
    order = rng.permutation(n)
    return SimpleNamespace(x=w[order], y=np.full((n, 1), hr), t0=t0[order], record_ids=np.array(["r"] * n),
                           meta={"fs": fs}), order


def test_hr_classic_on_task_windows_tracks_each_recording_in_time_order():
    """The hr task's classic row (`data.classic.classic_oof`): the baseline's spectral peak and tracking over each
    recording's PPG windows in time order, whatever order the TaskData holds them in; without record ids / starts,
    each window's own peak, which the burst captures."""
    from types import SimpleNamespace
    from sqtool.data.classic import classic_oof
    td, order = _classic_task_windows()
    pred, name = classic_oof("hr", td, [])
    assert pred.shape == (30, 1) and "tracking" in name
    assert np.abs(pred[:, 0] - 75.0).max() < 3.0                    # held through the burst
    alone, name1 = classic_oof("hr", SimpleNamespace(x=td.x, y=td.y, meta=td.meta), [])
    assert "per window" in name1 and np.abs(alone[:, 0] - 132.0).min() < 3.0     # some window took the burst
    two = SimpleNamespace(x=np.concatenate([td.x, td.x]), y=np.concatenate([td.y, td.y]), meta=td.meta,
                          t0=np.concatenate([td.t0, td.t0]), record_ids=np.array(["a"] * 30 + ["b"] * 30))
    both, _ = classic_oof("hr", two, [])                            # two recordings, each tracked on its own
    np.testing.assert_array_equal(both[:30], pred)
    np.testing.assert_array_equal(both[30:], pred)
    flat = SimpleNamespace(**{**vars(td), "x": np.where(td.t0[:, None, None] < 1, 0.0, td.x),
                              "y": np.arange(30.0)[:, None]})                  # the first window: no peak yet
    first = int(np.argmin(td.t0))
    raw, _ = classic_oof("hr", flat, [])
    assert np.isnan(raw[first, 0]) and np.isfinite(np.delete(raw[:, 0], first)).all()
    tr = np.delete(np.arange(30), first)[:20]
    filled, _ = classic_oof("hr", flat, [(tr, np.array([first]))])             # its fold's training mean
    assert filled[first, 0] == pytest.approx(tr.mean())
    slow = SimpleNamespace(x=td.x[:, :, ::8], y=td.y, t0=td.t0, record_ids=td.record_ids, meta={"fs": 5.0})
    none, why = classic_oof("hr", slow, [])
    assert none is None and "5 Hz" in why


def test_a_days_window_spectra_take_memory_of_the_kept_band_not_of_the_whole_fft(monkeypatch):
    """bench on a 24 h recording at 64 Hz peaked at 15 GB RSS (predict 1.5 GB): the baseline held every window's
    zero-padded spectrum (8192 points) of the PPG and three axes at once, 0.6 GB per hour of signal. It computes them
    SPECTRA_CHUNK windows at a time now, keeping the band only: the same numbers, memory that grows with the kept
    bins. Found by a helper's sweep."""
    import tracemalloc

    from sqtool.data import hr_baseline as B
    rng = np.random.default_rng(0)
    B.spectra(rng.standard_normal((4, 512)), None, 64.0, B.BaselineCfg())          # imports, outside the count
    ppg, acc = rng.standard_normal((1800, 2, 512)), rng.standard_normal((1800, 3, 512))
    tracemalloc.start()
    got = B.spectra(ppg, acc, 64.0, B.BaselineCfg())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 150e6                                          # was 573 MB for these 1800 windows (1 h)
    monkeypatch.setattr(B, "SPECTRA_CHUNK", 10 ** 9)             # all at once: the same numbers, bit for bit
    want = B.spectra(ppg, acc, 64.0, B.BaselineCfg())
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
