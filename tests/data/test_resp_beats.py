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
    from sqtool.data.classic import classic_oof
    td = load_task("af", "synthetic", max_records=4)
    folds = subject_folds(td.groups, 2)
    pred, name = classic_oof("af", td, folds)
    assert pred.shape == (len(td), 1) and np.isfinite(pred).all() and "RMSSD" in name
    assert classic_oof("bp", td, folds)[0] is None


def _ectopic_vs_af_windows(n, rng, fs=100.0, dur=10.0):
    """n windows of isolated premature beats (regular 0.8 s with a short-long pair every 4-6 beats) and n
    irregularly irregular ones with the same spread of intervals."""
    xs, y = [], []
    for i in range(2 * n):
        if i % 2:
            ibi = rng.uniform(0.5, 1.1, 30)
        else:
            ibi = np.full(30, 0.8) + 0.005 * rng.standard_normal(30)
            k = int(rng.integers(1, 3))
            while k < 28:
                ibi[k], ibi[k + 1] = 0.5, 1.1              # premature beat + compensatory pause
                k += int(rng.integers(4, 7))
        xs.append(_ppg(np.cumsum(ibi) + 0.2, fs, dur))
        y.append(i % 2)
    return np.stack(xs), np.array(y, float)


def test_ectopy_features_tell_isolated_premature_beats_from_af():
    from sqtool.data.beats import ECTOPY_FEATURES, ectopic_mask
    m = ectopic_mask(np.array([0.8, 0.8, 0.5, 1.1, 0.8, 0.8]))
    assert m.tolist() == [False, False, True, True, False, False]
    x, y = _ectopic_vs_af_windows(8, np.random.default_rng(1))
    F = interval_features(x, 100.0)
    assert F.shape == (16, len(FEATURES)) and set(ECTOPY_FEATURES) <= set(FEATURES)
    col = {f: F[:, FEATURES.index(f)] for f in FEATURES}
    ect, af = y == 0, y == 1
    assert col["ectopic_share"][ect].min() > 0.15
    assert np.median(col["nrmssd_clean"][ect]) < 0.5 * np.median(col["nrmssd_clean"][af])
    assert col["pattern_share"][ect].min() > col["pattern_share"][af].max()
    assert np.median(col["hist_entropy_clean"][ect]) < np.median(col["hist_entropy_clean"][af])
    assert np.isfinite(col["cosen"]).all() and np.isfinite(col["km3_resid"]).all()


def test_pulse_shape_features_see_beats_change_shape():
    """MORPH_FEATURES on PPG-like pulses (fast rise, slow decay): identical beats correlate with their median beat
    (~1, the systolic peak always in one place); beats whose shape alternates (a late hump on every second one)
    move the peak; irregular intervals (beats cut short or left to decay) lower the correlation and couple the
    amplitude (peak minus trough) to the beat's length."""
    from sqtool.data.beats import MORPH_FEATURES
    fs, dur = 100.0, 10.0
    t = np.arange(int(dur * fs)) / fs
    col = {n: FEATURES.index(n) for n in MORPH_FEATURES}

    def train(beats, humps):
        x = np.zeros_like(t)
        for b, h in zip(beats, humps):
            s = np.maximum(t - b, 0.0)
            x += (s / 0.12) * np.exp(1 - s / 0.12) + h * np.exp(-0.5 * ((s - 0.35) / 0.04) ** 2)
        return x

    regular = np.arange(0.3, dur, 0.8)
    ibi = np.random.default_rng(0).uniform(0.5, 1.2, 20)
    irregular = 0.3 + np.concatenate([[0.0], np.cumsum(ibi)])
    irregular = irregular[irregular < dur - 0.3]
    F = interval_features(np.stack([train(regular, [0.0] * len(regular)), train(regular, [0.0, 0.8] * len(regular)),
                                    train(irregular, [0.0] * len(irregular))]), fs)
    same, alternating, uneven = F[:, [col[n] for n in MORPH_FEATURES]]
    assert np.isfinite(F[:, [col[n] for n in MORPH_FEATURES]]).all()
    assert same[0] > 0.98 and same[3] < 0.02                          # shape_corr_mean, peak_phase_sd
    assert alternating[3] > 0.1 and alternating[0] < same[0]
    assert uneven[0] < same[0] - 0.03 and uneven[4] > 0.2               # amp_len_corr


def _sampen_brute(v, m, tol):
    """Richman & Moorman (2000) by hand: templates of length m and m + 1 starting at i = 0 .. n - m - 1 (the same
    starts for both), pairs i < j within tol (max abs difference), SampEn = -ln(A / B)."""
    n = len(v)
    B = sum(max(abs(v[i + k] - v[j + k]) for k in range(m)) <= tol for i in range(n - m) for j in range(i + 1, n - m))
    A = sum(max(abs(v[i + k] - v[j + k]) for k in range(m + 1)) <= tol
            for i in range(n - m) for j in range(i + 1, n - m))
    return -np.log(A / B) if A > 0 and B > 0 else 2.5


def test_sample_entropy_is_the_textbook_definition():
    """n - m templates of length m + 1, as of length m (one too few for m + 1 biased SampEn and cosen upward)."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        n, m = int(rng.integers(6, 16)), int(rng.integers(1, 3))
        v = rng.uniform(0.5, 1.1, n)
        for tol in (None, 0.03, 0.1):
            ref = _sampen_brute(v, m, 0.2 * np.std(v) if tol is None else tol)
            assert sample_entropy(v, m, tol=tol) == pytest.approx(ref, rel=1e-12), (trial, n, m, tol)
