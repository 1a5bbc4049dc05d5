"""Synthetic PPG: deterministic, labels true to the generator, artifacts where the flags say."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.preprocess import bandpass
from sqtool.data.readers import check_record
from sqtool.data.synthetic import corrupt, synth_corpus, synth_record


def test_deterministic_by_seed():
    a = synth_record(60, seed=3)
    b = synth_record(60, seed=3)
    c = synth_record(60, seed=4)
    for ch in a.signals:
        np.testing.assert_array_equal(a.signals[ch], b.signals[ch])
    assert not np.array_equal(a.signals["ppg"], c.signals["ppg"])
    ca, cb = synth_corpus(3, 30, seed=1), synth_corpus(3, 30, seed=1)
    assert [r.subject for r in ca] == ["syn000", "syn001", "syn002"]
    for ra, rb in zip(ca, cb):
        np.testing.assert_array_equal(ra.signals["ppg"], rb.signals["ppg"])


def test_the_embedded_bench_recordings_are_no_training_corpus_subjects():
    """`bench --data synthetic` scored syn000-syn003 of a 4-subject corpus, other recordings than the demo's training
    syn000-syn003 under the same names: the bench called them "seen in training". Its recordings are now eval000...,
    from their own random stream: no name and no signal of a training corpus (any size, seeds 0-2)."""
    from sqtool.firmware_bench.spectral import synthetic_records
    ev = synthetic_records()
    assert [r.subject for r in ev] == ["eval000", "eval001", "eval002", "eval003"]
    for seed in range(3):
        for n in (4, 8):
            train = synth_corpus(n, 120.0, seed=seed, af_fraction=0.0)
            assert not {r.subject for r in train} & {r.subject for r in ev}
            assert not any(np.allclose(a.signals["ppg"], b.signals["ppg"]) for a in train for b in ev)


def test_record_structure_and_label_conventions():
    dur, fs = 100.0, 125.0
    r = synth_record(dur, fs=fs, seed=0)
    check_record(r)                                             # the readers' checks pass
    assert set(r.signals) == {"ppg", "acc_x", "acc_y", "acc_z"}
    assert all(len(x) == int(dur * fs) for x in r.signals.values()) and set(r.fs.values()) == {fs}
    hr = r.labels["hr"]
    n_win = int((dur - 8) // 2) + 1                             # TROIKA: 8 s windows, 2 s hop, start times
    assert hr.kind == "window" and hr.window_s == 8 and hr.unit == "bpm" and len(hr) == n_win
    np.testing.assert_allclose(hr.times, 2.0 * np.arange(n_win))
    assert r.labels["rr"].kind == "window" and len(r.labels["rr"]) == n_win
    assert r.labels["rhythm"].classes == ("sinus", "af") and int(r.labels["rhythm"].values) == 0
    art = r.labels["artifact"]
    assert art.kind == "flags" and art.fs == fs and art.values.shape == (int(dur * fs),)


def _spectral_hr(x, fs):
    x = bandpass(x, fs, 0.5, 4.0)
    n = 1 << 15
    f = np.fft.rfftfreq(n, 1 / fs)
    p = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size), n)) ** 2
    band = (f > 0.6) & (f < 3.5)
    return 60 * f[band][np.argmax(p[band])]


@pytest.mark.parametrize("hr", [50.0, 72.0, 130.0])
def test_heart_rate_is_what_the_label_says(hr):
    fs = 125.0
    r = synth_record(120, fs=fs, hr_bpm=hr, artifacts=0.0, seed=1)
    lab = r.labels["hr"]
    assert np.median(np.abs(lab.values - hr)) < 0.03 * hr       # the label follows the requested rate
    x = r.signals["ppg"]
    for i in (0, len(lab) // 2, len(lab) - 1):                   # and the waveform has that rate
        s = int(lab.times[i] * fs)
        est = _spectral_hr(x[s: s + int(8 * fs)], fs)
        assert abs(est - lab.values[i]) < 5.0


def test_time_varying_hr_and_respiration():
    fs = 64.0
    r = synth_record(240, fs=fs, hr_bpm=[60, 120], rr_bpm=12, artifacts=0.0, seed=2, bw=0.4)
    hr = r.labels["hr"].values
    assert hr[0] < 70 and hr[-1] > 110 and np.all(np.diff(np.convolve(hr, np.ones(5) / 5, "valid")) > -2)
    np.testing.assert_allclose(r.labels["rr"].values, 12.0)
    # respiratory baseline modulation: the 0.1-0.5 Hz peak of the PPG is at 12 / 60 = 0.2 Hz
    x = r.signals["ppg"] - r.signals["ppg"].mean()
    f = np.fft.rfftfreq(x.size, 1 / fs)
    p = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    band = (f > 0.1) & (f < 0.5)
    assert abs(f[band][np.argmax(p[band])] - 0.2) < 0.02


def test_af_is_irregular_and_sinus_is_not():
    cv = {}
    for rhythm in ("sinus", "af"):
        r = synth_record(300, rhythm=rhythm, hr_bpm=80, artifacts=0.0, seed=5)
        rr = np.diff(r.meta["beats"])
        cv[rhythm] = float(np.std(np.diff(rr)) / np.mean(rr))         # successive-difference irregularity
        assert int(r.labels["rhythm"].values) == ("sinus", "af").index(rhythm)
    assert cv["af"] > 3 * cv["sinus"]
    corpus = synth_corpus(8, 20, seed=0, af_fraction=0.25)
    assert sum(int(r.labels["rhythm"].values) for r in corpus) == 2


def test_artifacts_are_flagged_and_motion_shows_in_the_accelerometer():
    fs = 125.0
    r = synth_record(600, fs=fs, artifacts=0.3, seed=7)
    flags = r.labels["artifact"].values.astype(bool)
    assert 0.1 < flags.mean() < 0.7
    acc = np.stack([r.signals[a] for a in ("acc_x", "acc_y", "acc_z")])
    mag = np.linalg.norm(acc, axis=0)
    e = np.abs(bandpass(mag, fs, 0.5, 8.0))
    assert e[flags].mean() > 10 * e[~flags].mean()                  # motion bursts live in the acc
    clean = synth_record(600, fs=fs, artifacts=0.0, seed=7)
    assert clean.labels["artifact"].values.sum() == 0


def test_clipping_and_dropouts_are_flat_where_flagged():
    fs = 100.0
    r = synth_record(300, fs=fs, artifacts=0.0, clip_rate=0.2, dropout_rate=0.1, noise=0.0, seed=3)
    x = r.signals["ppg"]
    flags = r.labels["artifact"].values.astype(bool)
    assert flags.mean() > 0.1
    flat = np.abs(np.diff(x)) < 1e-12                               # saturated or stuck samples
    assert flat[flags[1:]].mean() > 0.3 and flat[~flags[1:]].mean() < 0.01


@pytest.mark.parametrize("kind", ["motion", "clip", "dropout", "wander"])
def test_corrupt_changes_the_window_where_flagged(kind):
    rng = np.random.default_rng(0)
    x = np.sin(2 * np.pi * 1.2 * np.arange(1200) / 40)
    y, flags = corrupt(x, 40.0, rng, kind=kind)
    assert y.shape == x.shape and flags.sum() > 0.3 * x.size
    assert np.abs(y - x)[flags.astype(bool)].mean() > 0.1


def test_bad_arguments():
    with pytest.raises(SqtoolError):
        synth_record(10, rhythm="vt")
    with pytest.raises(SqtoolError):
        synth_record(10, artifacts=1.5)
    with pytest.raises(SqtoolError):
        synth_record(10, hr_bpm=[70, -1])
    with pytest.raises(SqtoolError):
        synth_corpus(0)
    with pytest.raises(SqtoolError):
        corrupt(np.ones(100), 40.0, np.random.default_rng(0), kind="nope")
