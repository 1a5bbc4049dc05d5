"""Beat intervals of PPG windows, their irregularity features, and the classic AF rule.

    F = interval_features(x, fs)            # x (N, T) windows -> F (N, len(FEATURES)) float
    rule = fit_af_rule(F_train, y_train)    # threshold on normalised RMSSD chosen on training windows
    score = af_rule_score(F, rule)          # (N,) logit-like score; > 0 means AF

Beats: peaks of the 0.5-5 Hz band of each window (at least 0.33 s apart, prominence 0.3 std), refined
to sub-sample time by a parabola. From the inter-beat intervals (IBI, s):
    n_beats, mean_ibi, nrmssd (RMSSD / mean IBI), cv (SDNN / mean IBI), pnn_rel (share of successive
    differences > 12.5 % of the mean IBI), sampen (sample entropy of the IBIs, m=1, r=0.2 std; 2.5 when
    undefined), tpr (turning point ratio), mad_rel (median |dIBI| / median IBI), range_rel ((max - min) /
    mean), amp_cv (coefficient of variation of the beat amplitudes); and three from the waveform, not the
    beats: spec_entropy (normalised entropy of the 0.5-5 Hz power spectrum), peak_share (share of that
    power within +-0.15 Hz of its peak) and acf_peak (the largest autocorrelation at lags 0.33-2 s): a
    regular rhythm has a sharp spectral line and a high autocorrelation peak. Against ectopic beats (one
    short-long pair among regular ones): nrmssd_trim (RMSSD / mean without the 2 largest |dIBI|),
    iqr_rel (interquartile range of the IBIs / median) and amp_nrmssd (RMSSD of the beat amplitudes /
    their mean); ratio_hist_0..8 (share of successive IBI ratios ibi[k+1] / ibi[k] in RATIO_EDGES bins:
    an ectopic beat gives a short-long pair among ratios near 1, AF a broad spread), regular_share (share
    of IBIs within 5 % of the median) and ratio_near_1 (share of ratios within 5 % of 1).
Ectopy-aware (ECTOPY_FEATURES; a premature beat = a short interval (< 0.88 x median) followed by a long
one (> 1.08 x median), `ectopic_mask`): ectopic_share (share of intervals in such pairs), nrmssd_clean
(RMSSD / mean over the successive differences that touch no ectopic interval: PAC/PVC become regular, AF
stays irregular), km3_resid (within / total sum of squares of the exact 1-D 3-means of the IBIs: a few
discrete lengths vs a continuum), sd1_sd2 (Poincare), cosen (coefficient of sample entropy, Lake &
Moorman 2011: SampEn with a 30 ms tolerance + ln(0.06) - ln(mean IBI)), dev10_share (share of IBIs > 10 %
from the median), hist_entropy_clean (entropy of the histogram of IBI / median in 0.05 bins after removing
ectopic intervals), amp_ibi_corr (correlation of beat amplitude with its preceding IBI), pattern_share
(share of IBIs within 10 % of the median or in an ectopic pair) and ibi_acf1..3 (autocorrelation of the
IBI series at lags 1-3: bigeminy / trigeminy repeat, AF does not).
Pulse shape (MORPH_FEATURES, `_morphology_features`; beats cut at the troughs of the 0.5-8 Hz band, 0.25-2 s
long, each resampled to 40 points and standardised): shape_corr_mean / _min / _sd (correlation of each beat with
the window's median beat: a rhythm whose filling varies from beat to beat, as in AF, or whose ventricles beat
apart from the atria, as in VT, changes the pulse's shape), peak_phase_sd (spread of the systolic peak's place
within the beat), amp_len_corr (a beat's amplitude, peak minus its lowest point, against its length: a beat left
longer decays further, and in AF a longer filling also gives a larger pulse) and beat_amp_cv (spread of those
amplitudes).
AF makes the intervals irregularly irregular (high nrmssd, pnn, sampen); ectopic beats (PVC, PAC) make
them irregular too, but with one outlier per few beats (lower mad_rel / sampen): the features keep both.

The classic rule (Dash et al. 2009 / Bashar et al. style, reduced to one statistic): AF when nrmssd
exceeds a threshold; the threshold maximises Youden's J on the TRAINING windows only. A window with
fewer than 4 beats gets nrmssd = NaN -> score -inf (not AF). numpy/scipy only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sqtool.core import SqtoolError

BASE_FEATURES = ("n_beats", "mean_ibi", "nrmssd", "cv", "pnn_rel", "sampen", "tpr", "mad_rel", "range_rel", "amp_cv",
                 "spec_entropy", "peak_share", "acf_peak", "nrmssd_trim", "iqr_rel", "amp_nrmssd",
                 *(f"ratio_hist_{i}" for i in range(9)), "regular_share", "ratio_near_1")
ECTOPY_FEATURES = ("ectopic_share", "nrmssd_clean", "km3_resid", "sd1_sd2", "cosen", "dev10_share",
                   "hist_entropy_clean", "amp_ibi_corr", "pattern_share", "ibi_acf1", "ibi_acf2", "ibi_acf3")
MORPH_FEATURES = ("shape_corr_mean", "shape_corr_min", "shape_corr_sd", "peak_phase_sd", "amp_len_corr",
                  "beat_amp_cv")
FEATURES = (*BASE_FEATURES, *ECTOPY_FEATURES, *MORPH_FEATURES)
RATIO_EDGES = (0.0, 0.6, 0.75, 0.85, 0.95, 1.05, 1.15, 1.3, 1.6, 10.0)   # successive IBI ratio bins


def _band(x: np.ndarray, fs: float, hi_hz: float = 5.0) -> np.ndarray:
    """x band-passed to 0.5-`hi_hz` Hz (zero phase, 2nd-order Butterworth; hi capped below Nyquist)."""
    from scipy import signal
    sos = signal.butter(2, (0.5, min(hi_hz, 0.45 * fs)), btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(x, np.float64))


def beat_times(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Peak times (s) and peak - trough amplitudes of one PPG window (T,)."""
    from scipy import signal
    xf = _band(x, fs)
    pk, props = signal.find_peaks(xf, distance=max(1, int(0.33 * fs)), prominence=0.3 * np.std(xf))
    if len(pk) == 0:
        return np.zeros(0), np.zeros(0)
    i = np.clip(pk, 1, len(xf) - 2)
    a, b, c = xf[i - 1], xf[i], xf[i + 1]
    den = a - 2 * b + c
    off = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(den == 0, 1, den), 0.0)
    return (i + np.clip(off, -0.5, 0.5)) / fs, props["prominences"]


def sample_entropy(v: np.ndarray, m: int = 1, r: float = 0.2, tol: float | None = None) -> float:
    """Sample entropy of a short series (Richman & Moorman 2000): -ln(A / B), B and A the pairs of templates of
    length m and m + 1 within `tol` (Chebyshev distance; r x std, or `tol` in the series' unit), over the same
    n - m template starts for both lengths, self-matches excluded; 2.5 when no template matches."""
    v = np.asarray(v, float)
    n = len(v)
    if n < m + 3 or (tol is None and np.std(v) == 0):
        return 0.0 if n >= m + 3 else 2.5
    tol = r * np.std(v) if tol is None else tol

    def count(mm):
        t = np.stack([v[i:n - m + i] for i in range(mm)], 1)    # (n - m, mm): the same n - m templates for m, m + 1
        d = np.max(np.abs(t[:, None, :] - t[None, :, :]), axis=2)
        return (np.sum(d <= tol) - len(t)) / 2
    b, a = count(m), count(m + 1)
    return float(-np.log(a / b)) if a > 0 and b > 0 else 2.5


def _waveform_features(x: np.ndarray, fs: float) -> tuple[float, float, float]:
    xf = _band(x, fs)
    xf = xf - xf.mean()
    f = np.fft.rfftfreq(4 * len(xf), 1 / fs)
    p = np.abs(np.fft.rfft(xf * np.hanning(len(xf)), 4 * len(xf))) ** 2
    band = (f >= 0.5) & (f <= 5.0)
    f, p = f[band], p[band]
    if p.sum() <= 0:
        return np.nan, np.nan, np.nan
    q = p / p.sum()
    ent = float(-(q * np.log(q + 1e-15)).sum() / np.log(len(q)))
    share = float(q[np.abs(f - f[np.argmax(q)]) <= 0.15].sum())
    ac = np.correlate(xf, xf, "full")[len(xf) - 1:]
    ac = ac / ac[0] if ac[0] > 0 else ac
    lags = slice(int(0.33 * fs), min(len(ac), int(2.0 * fs) + 1))
    return ent, share, float(ac[lags].max())


def ectopic_mask(ibi: np.ndarray, short: float = 0.88, long: float = 1.08) -> np.ndarray:
    """(len(ibi),) bool: intervals of a premature-beat pattern, a short interval (< `short` x the median)
    followed by a long one (> `long` x the median, the compensatory pause); both are flagged."""
    ibi = np.asarray(ibi, float)
    m = np.median(ibi)
    hit = (ibi[:-1] < short * m) & (ibi[1:] > long * m)
    out = np.zeros(len(ibi), bool)
    out[:-1] |= hit
    out[1:] |= hit
    return out


def _kmeans3_resid(v: np.ndarray) -> float:
    """Within-cluster / total sum of squares of the best split of the sorted 1-D values into 3 runs
    (exact 1-D 3-means): ~0 for a few discrete interval lengths (sinus + ectopic short/long), high for a
    continuum (AF)."""
    v = np.sort(np.asarray(v, float))
    n = len(v)
    tss = ((v - v.mean()) ** 2).sum()
    if n < 4 or tss <= 0:
        return np.nan if n < 4 else 0.0
    c1, c2 = np.concatenate([[0.0], np.cumsum(v)]), np.concatenate([[0.0], np.cumsum(v * v)])

    def sse(a, b):                                   # v[a:b]
        k = b - a
        return c2[b] - c2[a] - (c1[b] - c1[a]) ** 2 / k
    best = min(sse(0, i) + sse(i, j) + sse(j, n) for i in range(1, n - 1) for j in range(i + 1, n))
    return float(best / tss)


def _morphology_features(x: np.ndarray, fs: float) -> list[float]:
    """MORPH_FEATURES of one window (NaN with fewer than 3 whole beats)."""
    from scipy import signal
    xf = _band(x, fs, 8.0)
    tr, _ = signal.find_peaks(-xf, distance=max(1, int(0.33 * fs)), prominence=0.3 * np.std(xf))
    beats = [xf[a:b] for a, b in zip(tr[:-1], tr[1:]) if 0.25 * fs <= b - a <= 2.0 * fs]
    if len(beats) < 3:
        return [np.nan] * len(MORPH_FEATURES)
    shapes = np.stack([np.interp(np.linspace(0, len(b) - 1, 40), np.arange(len(b)), b) for b in beats])  # (K, 40)
    shapes = (shapes - shapes.mean(1, keepdims=True)) / (shapes.std(1, keepdims=True) + 1e-9)
    med = np.median(shapes, 0)
    c = shapes @ ((med - med.mean()) / (med.std() + 1e-9)) / 40.0         # correlation with the median beat
    amp = np.array([b.max() - b.min() for b in beats])
    length = np.array([len(b) for b in beats], float)
    coupling = float(np.corrcoef(amp, length)[0, 1]) if amp.std() > 0 and length.std() > 0 else 0.0
    return [float(c.mean()), float(c.min()), float(c.std()), float(np.std(shapes.argmax(1) / 40.0)), coupling,
            float(amp.std() / amp.mean()) if amp.mean() > 0 else np.nan]


def _ectopy_features(ibi: np.ndarray, amp: np.ndarray) -> list[float]:
    """ECTOPY_FEATURES of one window's intervals (>= 3) and beat amplitudes (len(ibi) + 1)."""
    mu, med = ibi.mean(), np.median(ibi)
    ect = ectopic_mask(ibi)
    d = np.diff(ibi)
    keep = ~(ect[1:] | ect[:-1])                   # successive differences touching no ectopic interval
    nr_clean = np.sqrt(np.mean(d[keep] ** 2)) / mu if keep.sum() >= 2 else 0.0
    x1, x2 = ibi[:-1], ibi[1:]
    sd1, sd2 = np.std((x2 - x1) / np.sqrt(2)), np.std((x2 + x1) / np.sqrt(2))
    cosen = sample_entropy(ibi, 1, tol=0.03) + np.log(2 * 0.03) - np.log(mu)
    clean = ibi[~ect] / med if (~ect).sum() >= 2 else ibi / med
    h = np.histogram(clean, bins=np.arange(0.3, 2.05, 0.05))[0]
    q = h[h > 0] / h.sum()
    a = amp[1:]
    corr = float(np.corrcoef(ibi, a)[0, 1]) if np.std(ibi) > 0 and np.std(a) > 0 else 0.0
    # share of the intervals explained by "regular, or one short-long pair": an interval is patterned when
    # it is within 10 % of the median or part of an ectopic pair
    pattern = np.mean((np.abs(ibi / med - 1) < 0.1) | ect)
    c = ibi - mu
    den = (c * c).sum()
    acf = [float((c[:-k] * c[k:]).sum() / den) if den > 0 and len(c) > k + 1 else 0.0 for k in (1, 2, 3)]
    return [float(ect.mean()), float(nr_clean), _kmeans3_resid(ibi), float(sd1 / sd2) if sd2 > 0 else np.nan,
            float(cosen), float(np.mean(np.abs(ibi / med - 1) > 0.1)), float(-(q * np.log(q)).sum()), corr,
            float(pattern), *acf]


def _features(t: np.ndarray, amp: np.ndarray) -> np.ndarray:
    out = np.full(len(FEATURES), np.nan)
    out[0] = len(t)
    if len(t) < 4:
        return out
    ibi = np.diff(t)
    d = np.diff(ibi)
    mu = ibi.mean()
    out[1] = mu
    out[2] = np.sqrt(np.mean(d ** 2)) / mu
    out[3] = ibi.std() / mu
    out[4] = np.mean(np.abs(d) > 0.125 * mu)
    out[5] = sample_entropy(ibi)
    out[6] = np.mean((ibi[1:-1] - ibi[:-2]) * (ibi[1:-1] - ibi[2:]) > 0) if len(ibi) >= 3 else np.nan
    out[7] = np.median(np.abs(d)) / np.median(ibi)
    out[8] = (ibi.max() - ibi.min()) / mu
    out[9] = amp.std() / amp.mean() if amp.mean() > 0 else np.nan
    ad = np.sort(np.abs(d))
    out[13] = np.sqrt(np.mean(ad[:-2] ** 2)) / mu if len(ad) > 3 else np.nan
    q1, q3 = np.percentile(ibi, [25, 75])
    out[14] = (q3 - q1) / np.median(ibi)
    out[15] = np.sqrt(np.mean(np.diff(amp) ** 2)) / amp.mean() if amp.mean() > 0 else np.nan
    r = ibi[1:] / ibi[:-1]
    out[16:25] = np.histogram(r, RATIO_EDGES)[0] / len(r)
    out[25] = np.mean(np.abs(ibi / np.median(ibi) - 1) < 0.05)
    out[26] = np.mean(np.abs(r - 1) < 0.05)
    out[len(BASE_FEATURES):len(BASE_FEATURES) + len(ECTOPY_FEATURES)] = _ectopy_features(ibi, amp)
    return out


def interval_features(x: np.ndarray, fs: float) -> np.ndarray:
    """Windows (N, T) or (N, 1, T) -> (N, len(FEATURES)) beat-interval features (NaN where < 4 beats)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, 0]
    if x.ndim != 2 or x.shape[1] < 3 * fs:
        raise SqtoolError(f"interval_features: windows must be (N, T) with T >= 3 s at {fs:g} Hz, got {x.shape}")
    if not len(x):
        return np.zeros((0, len(FEATURES)))
    out = np.stack([_features(*beat_times(w, fs)) for w in x])
    out[:, 10:13] = [_waveform_features(w, fs) for w in x]
    out[:, -len(MORPH_FEATURES):] = [_morphology_features(w, fs) for w in x]
    return out


@dataclass
class AfRule:
    feature: str
    threshold: float


def fit_af_rule(F: np.ndarray, y: np.ndarray, feature: str = "nrmssd") -> AfRule:
    """The threshold on `feature` maximising Youden's J (sensitivity + specificity - 1) on training windows."""
    v = np.asarray(F, float)[:, FEATURES.index(feature)]
    y = np.asarray(y).reshape(-1) > 0.5
    ok = np.isfinite(v)
    if y[ok].all() or not y[ok].any():
        raise SqtoolError("fit_af_rule: the training windows need both AF and non-AF with >= 4 beats")
    cand = np.unique(v[ok])
    best, thr = -np.inf, float(cand[0])
    for c in cand:
        pred = ok & (v >= c)
        j = pred[y].mean() + (~pred[~y]).mean() - 1
        if j > best:
            best, thr = j, float(c)
    return AfRule(feature, thr)


def af_rule_score(F: np.ndarray, rule: AfRule) -> np.ndarray:
    """(N,) score: log(feature / threshold), > 0 = AF at the rule's threshold (used as a logit); windows with
    < 4 beats get -20 (not AF)."""
    v = np.asarray(F, float)[:, FEATURES.index(rule.feature)]
    s = np.log(np.maximum(v, 1e-9) / max(rule.threshold, 1e-9))
    return np.where(np.isfinite(v), s, -20.0)
