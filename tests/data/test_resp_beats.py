"""Respiratory spectra + classic RR on synthetic PPG with known breathing; beat-interval features and
the AF rule on regular vs irregular synthetic pulses; the classic predictors out of fold."""
import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.beats import FEATURES, af_rule_score, fit_af_rule, interval_features, sample_entropy
from sqtool.data.resp import RR_BINS, classic_rr, resp_spectra


def _ppg(beat_t, fs, dur, rr_hz=0.0, am=0.0, bw=0.0):
    t = np.arange(int(dur * fs)) / fs
    x = np.zeros_like(t)
    for b in beat_t:
        x += np.exp(-0.5 * ((t - b) / 0.08) ** 2)
    resp = np.sin(2 * np.pi * rr_hz * t)
    return x * (1 + am * resp) + bw * resp


def test_classic_rr_finds_the_breathing_rate():
    fs, dur = 40.0, 30.0
    xs, truth = [], []
    for rr_bpm in (9.0, 15.0, 24.0):
        beats = np.arange(0.3, dur, 60 / 72)
        xs.append(_ppg(beats, fs, dur, rr_bpm / 60, am=0.2, bw=0.3))
        truth.append(rr_bpm)
    S = resp_spectra(np.stack(xs), fs)
    assert S.shape == (3, 4, len(RR_BINS)) and S.max() <= 1.0 + 1e-6
    assert np.abs(classic_rr(S) - np.array(truth)).max() <= 1.0
    with pytest.raises(SqtoolError):
        resp_spectra(np.zeros((2, 40)), fs)


def test_interval_features_and_af_rule_separate_regular_from_irregular():
    fs, dur, rng = 100.0, 10.0, np.random.default_rng(0)
    xs, y = [], []
    for i in range(20):
        if i % 2:
            ibi = rng.uniform(0.45, 1.1, 30)                   # irregularly irregular
        else:
            ibi = np.full(30, 0.8) + 0.01 * rng.standard_normal(30)
        xs.append(_ppg(np.cumsum(ibi), fs, dur))
        y.append(i % 2)
    F = interval_features(np.stack(xs), fs)
    y = np.array(y, float)
    assert F.shape == (20, len(FEATURES))
    nr = F[:, FEATURES.index("nrmssd")]
    assert nr[y == 1].min() > nr[y == 0].max()
    rule = fit_af_rule(F, y)
    assert ((af_rule_score(F, rule) > -1e-9) == (y == 1)).all()
    with pytest.raises(SqtoolError):
        fit_af_rule(F, np.zeros(20))
    assert sample_entropy(np.arange(10.0)) >= 0


def test_classic_oof_on_synthetic_tasks():
    from sqtool.data.tasks import load_task, subject_folds
    from sqtool.train.skill import classic_oof
    td = load_task("af", "synthetic", max_records=4)
    folds = subject_folds(td.groups, 2)
    pred, name = classic_oof("af", td, folds)
    assert pred.shape == (len(td), 1) and np.isfinite(pred).all() and "RMSSD" in name
    assert classic_oof("bp", td, folds)[0] is None
