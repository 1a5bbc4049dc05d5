"""Task metrics and subject-level bootstrap confidence intervals.

Skill: `trivial_predictions` / `oof_trivial` (training-fold mean, or base rate as a constant logit),
`skill_test` (model - trivial in MAE or AUROC, `skill_metric`, its t-interval and p over the subjects,
`paired_metric_test`; "no skill" unless the model is better, the CI excludes zero and p < 0.05),
`prediction_spread`, `skill_block` (one model beside the trivial and classic predictors: the skill block of a
fine-tune's and, per model, of a quantize run's metrics.json), `skill_unit`, `skill_line` (a command's last line).
`classic_flag` / `classic_text`: the model against a task's classic method (`sqtool.data.classic.classic_oof`).

Regression: mean absolute error per output (in the output's unit); `mape`, the mean absolute percentage error
(% of the reference) that bench reports beside it for heart rate. Classification (binary): weighted F1
at threshold 0.5 on the probability, and AUROC (rank statistic, ties averaged). Confidence intervals
resample SUBJECTS with replacement (windows of one subject are correlated, so resampling windows would
give intervals that are far too narrow) and take the 2.5 / 97.5 percentiles of the metric (`bootstrap_ci`). A
DIFFERENCE between two predictors, where a claim rests on it, gets a t-interval and a p over the subjects instead
(`paired_metric_test`, `paired_subject_test`): with 5-12 subjects the percentile bootstrap is too narrow.

numpy/scipy only: the compress and bench stages reuse these without torch.
"""
from __future__ import annotations

import numpy as np

from sqtool.core.io import nan_if_none
from sqtool.core.progress import unit_text


def datasets_of(subject_keys) -> list[str]:
    """The sorted datasets that "dataset:subject" keys name (keys without a dataset part are skipped)."""
    return sorted({str(k).split(":")[0] for k in subject_keys or () if ":" in str(k)})

REGRESSION_TASKS = ("hr", "rr", "bp")
FEW_SUBJECTS = 5            # fewer held-out subjects show no skill in any metric: "not shown" (`too_few_subjects`)
# the models a quantize run scores on its held-out subjects (its metrics.json keys) and how every report names them
QUANTIZE_MODELS = (("teacher", "teacher float"), ("student_float", "student float"), ("student_int8", "student int8"))
CLASSIFICATION_TASKS = ("af", "quality")
CLASS_NAMES = {"af": ("non-AF", "AF"), "quality": ("poor", "good")}    # (label 0, label 1)


# why a one-class held-out set measures no skill: the tail of heldout_one_class's warning, which the result line omits
ONE_CLASS_WHY = ("weighted F1 / accuracy score that class alone and AUROC is undefined, so the held-out figures are not "
                 "a measure of skill; hold out subjects with both classes (--heldout-subjects)")


def heldout_one_class(task: str, y_heldout: np.ndarray) -> str | None:
    """The warning when a classification task's held-out windows hold one class only (e.g. a held-out patient
    with no AF): weighted F1 and accuracy then score the majority class alone (a constant predictor gets 1.000)
    and AUROC is undefined, so the held-out figure says nothing about skill. None when both classes are there
    (or for a regression task). quantize's held-out set and a front-end fine-tune's (af_beats) alike."""
    if task not in CLASSIFICATION_TASKS or not len(y_heldout):
        return None
    y = np.asarray(y_heldout, float).reshape(len(y_heldout), -1)
    pos = int(np.sum(y[:, 0] > 0.5))
    if 0 < pos < len(y):
        return None
    return f"the held-out windows hold one class only ({pos} of {len(y)} {CLASS_NAMES[task][1]}): {ONE_CLASS_WHY}"


def too_few_subjects(n: int | None, few: int = FEW_SUBJECTS) -> bool:
    """The one rule of a verdict over held-out subjects (quantize, bench, the model card): fewer than `few` of them
    (`FEW_SUBJECTS`; never fewer than 2) cannot show skill, nor a worse model, in any metric: a t-interval on 1-3
    degrees of freedom, a clustered DeLong variance from 2-4 clusters (2 patients gave p < 0.05 on one good and one
    chance-level patient), MAE's swap test at p >= 2 / 2^S. `skill_test(few=)` applies it to the verdict,
    `skill_line` / `classic_flag` to a verdict read back (a metrics.json from before the rule). few 0: 2."""
    return n is not None and n < max(few, 2)


# the range of each metric: an interval of it, or of a difference of two (`clip_interval`), lies inside
METRIC_RANGE = {"auroc": (0.0, 1.0), "f1_weighted": (0.0, 1.0), "accuracy": (0.0, 1.0), "mae": (0.0, np.inf)}


def clip_interval(lo, hi, metric: str | None, diff: bool = False) -> tuple[float, float]:
    """(lo, hi) clipped to the range of `metric` (`METRIC_RANGE`; "mae_sbp" is a MAE), or with `diff` to the range
    of a difference of two values of it (AUROC: [-1, 1]; MAE's: unbounded). A t-interval over 2-4 subjects runs past
    them (an AUROC difference's over 2 subjects: -2.615, +2.538); the clipped one covers the truth at least as often.
    NaN stays NaN."""
    a, b = METRIC_RANGE.get("mae" if str(metric).startswith("mae") else str(metric), (-np.inf, np.inf))
    if diff:
        a, b = a - b, b - a
    lo, hi = (nan_if_none(v) for v in (lo, hi))
    return float(np.clip(lo, a, b)), float(np.clip(hi, a, b))


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(y, float))))


def mape(y: np.ndarray, pred: np.ndarray) -> float | None:
    """Mean absolute percentage error: the mean over the windows of |pred - y| / y x 100, in % of the reference (how
    wearable heart-rate validations state accuracy beside MAE, per activity condition). None when there is no
    window or a reference is not above 0 (a percentage of it means nothing: a signed or zero-based quantity)."""
    y, pred = np.asarray(y, float).ravel(), np.asarray(pred, float).ravel()
    if not y.size or not (y > 0).all():
        return None
    return float(np.mean(np.abs(pred - y) / y) * 100.0)


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative); NaN if one class only."""
    y = np.asarray(y).ravel().astype(bool)
    s = np.asarray(score, float).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata
    ranks = rankdata(s)                                    # average ranks over ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def f1_weighted(y: np.ndarray, pred_label: np.ndarray) -> float:
    """F1 per class, averaged with weights = class support (sklearn's 'weighted')."""
    y = np.asarray(y).ravel().astype(int)
    p = np.asarray(pred_label).ravel().astype(int)
    total, out = len(y), 0.0
    for c in np.unique(y):
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        f1 = 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
        out += f1 * np.sum(y == c) / total
    return float(out)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, float)))


def task_metrics(task: str, y: np.ndarray, pred: np.ndarray, outputs: tuple[str, ...] = ()) -> dict:
    """Point metrics. `pred` are regression values in target units or classification logits."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    y, pred = y.reshape(len(y), -1), pred.reshape(len(pred), -1)
    if task in CLASSIFICATION_TASKS:
        prob = sigmoid(pred[:, 0])
        return {"f1_weighted": f1_weighted(y[:, 0], prob > 0.5), "auroc": auroc(y[:, 0], prob),
                "accuracy": float(np.mean((prob > 0.5) == (y[:, 0] > 0.5))),
                "n": int(len(y)), "positives": int(np.sum(y[:, 0] > 0.5))}
    names = outputs or tuple(f"y{i}" for i in range(y.shape[1]))
    out = {f"mae_{n}": mae(y[:, i], pred[:, i]) for i, n in enumerate(names)}
    out["mae"] = mae(y, pred)
    out["n"] = int(len(y))
    return out


MIN_BOOTSTRAP_SUBJECTS = 5      # below it a percentile bootstrap of subjects is their range: 2 give {A,A},{A,B},{B,B}


def bootstrap_ci(task: str, y: np.ndarray, pred: np.ndarray, groups: np.ndarray, outputs=(),
                 n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """{metric: [lo, hi]} from resampling subjects (groups) with replacement."""
    y, pred, groups = np.asarray(y), np.asarray(pred), np.asarray(groups)
    subjects = np.unique(groups)
    idx_of = {s: np.flatnonzero(groups == s) for s in subjects}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n_boot):
        pick = rng.choice(subjects, size=len(subjects), replace=True)
        idx = np.concatenate([idx_of[s] for s in pick])
        m = task_metrics(task, y[idx], pred[idx], outputs)
        for k, v in m.items():
            if k not in ("n", "positives") and np.isfinite(v):
                samples.setdefault(k, []).append(v)
    return {k: [float(np.percentile(v, 100 * alpha / 2)), float(np.percentile(v, 100 * (1 - alpha / 2)))]
            for k, v in samples.items()}


def uncertainty_scores(pred: np.ndarray, lo: np.ndarray, hi: np.ndarray, conf: np.ndarray, y: np.ndarray,
                       keep: float = 0.8, slack: float = 0.5, span: float | None = None) -> dict:
    """How well a prediction's uncertainty tracks its error, on the windows with a finite truth and prediction:
    interval_coverage (share of windows with lo - slack <= y <= hi + slack; slack = half a 1-unit bin),
    interval_width_median, and confidence gating: mae_all, mae_top (the `keep` share of windows with the highest
    `conf`) and gating_reduction = 1 - mae_top / mae_all (0.3 = keeping the most confident windows cuts the
    error 30 %). With `span` (a conf calibrated as 1 - expected |error| / span): expected_error_stated, the mean
    of (1 - conf) x span, to set beside mae_all (calibration in the large). None values when no window qualifies."""
    pred, lo, hi, conf, y = (np.asarray(a, float).ravel() for a in (pred, lo, hi, conf, y))
    if not len(pred) == len(lo) == len(hi) == len(conf) == len(y):
        raise ValueError(f"uncertainty_scores: lengths differ ({len(pred)}, {len(lo)}, {len(hi)}, {len(conf)}, "
                         f"{len(y)})")
    ok = np.isfinite(y) & np.isfinite(pred) & np.isfinite(lo) & np.isfinite(hi) & np.isfinite(conf)
    out = {"n": int(ok.sum()), "keep": keep, "interval_coverage": None, "interval_width_median": None,
           "mae_all": None, "mae_top": None, "gating_reduction": None}
    if span is not None:
        out["expected_error_stated"] = None
    if not ok.any():
        return out
    y, e = y[ok], np.abs(pred[ok] - y[ok])
    kept = conf[ok] >= np.quantile(conf[ok], round(1 - keep, 12))          # ties at the threshold are kept
    out.update(interval_coverage=float(np.mean((y >= lo[ok] - slack) & (y <= hi[ok] + slack))),
               interval_width_median=float(np.median(hi[ok] - lo[ok])), mae_all=float(e.mean()),
               mae_top=float(e[kept].mean()))
    out["gating_reduction"] = float(1 - out["mae_top"] / out["mae_all"]) if out["mae_all"] > 0 else 0.0
    if span is not None:
        out["expected_error_stated"] = float(np.mean((1 - conf[ok]) * span))
    return out


def bootstrap_mean_ci(values, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """(lo, hi) of the mean of the finite `values` by resampling them one by one with replacement (NaN when empty):
    for independent values (subjects, patients); one subject's windows: `batch_means_ci`."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    m = v[np.random.default_rng(seed).integers(0, v.size, (n_boot, v.size))].mean(axis=1)
    return float(np.percentile(m, 100 * alpha / 2)), float(np.percentile(m, 100 * (1 - alpha / 2)))


def t_interval(values, alpha: float = 0.05) -> tuple[float, float]:
    """(lo, hi): the t-interval of the mean of a few independent finite values (subjects' MAEs or paired
    differences; NaN with fewer than 2). With 5-20 subjects a percentile bootstrap of the mean is too narrow: it
    ignores that the spread is itself estimated from so few (a 95 % one excludes a true zero ~15 % of the time at 5)."""
    v = np.asarray(values, np.float64)
    return ratio_t_interval(v, np.ones(v.size), alpha)                   # equal weights: s / sqrt(n)


def _patterns(n: int, exact_up_to: int, draws: int, seed: int) -> tuple[np.ndarray, bool]:
    """(patterns (P, n) bool, exact): every one of the 2^n patterns of n subjects' flips / swaps when n <=
    exact_up_to, else `draws` seeded random ones. With them a permutation p is k / P (exact) or (k + 1) / (P + 1)."""
    if n <= exact_up_to:
        return ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(bool), True
    return np.random.default_rng(seed).random((draws, n)) < 0.5, False


def _perm_p(k: int, n_patterns: int, exact: bool) -> float:
    return k / n_patterns if exact else (k + 1) / (n_patterns + 1)


def paired_subject_test(diffs, alpha: float = 0.05, seed: int = 0) -> dict:
    """Paired per-subject differences (A - B, one per subject): their mean, its t-interval, and the two-sided
    sign-flip permutation p (exact over all 2^n sign patterns up to n = 16, else 100,000 seeded draws; the
    smallest p 5 subjects can give is 2/32 = 0.0625). `shown` (a difference is claimed) only where p < alpha and
    the interval excludes zero."""
    d = np.asarray(diffs, np.float64)
    d = d[np.isfinite(d)]
    n = d.size
    out = {"n": int(n), "mean": float(d.mean()) if n else float("nan"), "ci95": [float("nan")] * 2,
           "p": float("nan"), "shown": False,
           "method": "t-interval over subjects, sign-flip permutation p"}
    if n < 2:
        return out
    out["ci95"] = list(t_interval(d, alpha))
    flips, exact = _patterns(n, 16, 100_000, seed)
    null = np.abs(np.where(flips, -d, d).mean(axis=1))                    # (P,) every pattern's |mean|
    out["p"] = _perm_p(int((null >= abs(d.mean()) - 1e-12).sum()), len(flips), exact)
    out["shown"] = bool(out["p"] < alpha and (out["ci95"][0] > 0 or out["ci95"][1] < 0))
    return out


def _mae_diff_by_subject(y2, a2, b2, groups) -> tuple[np.ndarray, np.ndarray]:
    """(mean_s (S,), n_s (S,)): each subject's mean over its windows of |A error| - |B error| (averaged over the k
    outputs of (N, k) predictions), and its window count; sum(mean_s x n_s) / N is MAE(A) - MAE(B) pooled."""
    _, g = np.unique(np.asarray(groups), return_inverse=True)                # (N,) subject index
    S = int(g.max()) + 1 if g.size else 0
    d = (np.abs(a2 - y2) - np.abs(b2 - y2)).mean(axis=1)                    # (N,) each window's difference
    n_s = np.bincount(g, minlength=S).astype(float)                          # (S,) windows per subject
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(g, d, S) / n_s, n_s


def paired_mae_test(y, pred_a, pred_b, groups, n_perm: int = 10_000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Two predictors of the same windows, paired by subject (`groups`): MAE(A) - MAE(B) over the pooled windows
    (every output of an (N, k) prediction), and its two-sided permutation p under "the two are exchangeable within
    a subject": every subject's predictions of A and B swapped or not (exact over all 2^S patterns up to S = 12
    subjects, p = k / 2^S; else n_perm seeded patterns, (k + 1) / (n_perm + 1)). Swapping a subject flips the sign
    of its share of the pooled difference (its summed window differences / N), so a pattern's difference is a
    signed sum of the shares: one pass over the patterns, not two MAEs each. Valid with few subjects, where a
    percentile bootstrap of subjects gives p-values far too small (12 subjects, no difference: p < 0.05/64 about 9
    times as often as it should). ci95: the difference's t-interval over the subjects, the window-weighted mean of
    their mean differences with its delete-one-subject jackknife variance (`ratio_t_interval`); NaN where p is.
    AUROC has `paired_auroc_test` (a pooled ranking of a mixture of two models' scores would measure their
    scales)."""
    y2, a2, b2 = (np.asarray(v, float).reshape(len(v), -1) for v in (y, pred_a, pred_b))
    mean_s, n_s = _mae_diff_by_subject(y2, a2, b2, groups)
    S = mean_s.size
    obs = float(mae(y2, a2) - mae(y2, b2)) if y2.size else float("nan")
    out = {"subjects": S, "diff": obs, "p": float("nan"), "ci95": [float("nan")] * 2}
    if S < 2 or not np.isfinite(obs):
        return out
    out["ci95"] = list(ratio_t_interval(mean_s, n_s, alpha, jackknife=True))
    share = mean_s * n_s / n_s.sum()                                         # (S,) each subject's share of obs
    swaps, exact = _patterns(S, 12, n_perm, seed)                          # (P, S)
    null = np.abs(np.where(swaps, -share, share).sum(axis=1))              # (P,) every pattern's |difference|
    tie = 1e-12 + 1e-9 * abs(obs)                  # obs and a pattern's sum round differently (4.9e-13 at 2e6 windows)
    out["p"] = _perm_p(int((null >= abs(obs) - tie).sum()), len(swaps), exact)
    return out


def auroc_placements(y, score) -> np.ndarray:
    """(N,) each window's DeLong placement (structural component) under one model's pooled ranking: a positive's
    share of the negatives scored below it, a negative's share of the positives scored above it (ties half);
    their mean over the positives, and over the negatives, is the AUROC. NaN without both classes."""
    from scipy.stats import rankdata
    y = np.asarray(y).ravel().astype(bool)
    s = np.asarray(score, float).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(y.size, np.nan)
    r_all = rankdata(s)                                                      # mid-ranks over all windows
    v = np.empty(y.size)
    v[y] = (r_all[y] - rankdata(s[y])) / n_neg
    v[~y] = 1.0 - (r_all[~y] - rankdata(s[~y])) / n_pos
    return v


def paired_auroc_test(y, score_a, score_b, groups) -> dict:
    """AUROC(A) - AUROC(B) of two scores of the same windows, and its two-sided p with the subjects as clusters
    (Obuchowski's clustered DeLong test): each model's DeLong placements within its own pooled ranking give every
    window's influence on its AUROC ((placement - AUROC) / n_pos on a positive, / n_neg on a negative), their
    A - B differences are summed per subject, and the difference's variance is S / (S - 1) x the sum of the
    squared subject sums; p from t with S - 1 degrees of freedom. No model's scores are mixed with the other's (a
    swap of raw scores would rank one model's logits among another's), and B may be a constant (0.5 everywhere).
    (A sign-flip of per-subject placement sums was tried first and rejected true nulls ~30 % of the time: a
    positive's and a negative's placements carry the same difference twice.)"""
    from scipy import stats
    y = np.asarray(y).ravel().astype(bool)
    va, vb = auroc_placements(y, score_a), auroc_placements(y, score_b)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    _, g = np.unique(np.asarray(groups), return_inverse=True)
    S = int(g.max()) + 1 if g.size else 0
    out = {"diff": float("nan"), "p": float("nan"), "subjects": S}
    if n_pos == 0 or n_neg == 0 or S < 2:
        return out
    diff = float(va[y].mean() - vb[y].mean())                              # = AUROC(A) - AUROC(B)
    infl = np.where(y, (va - vb - diff) / n_pos, (va - vb - diff) / n_neg)  # (N,) each window's influence
    d = np.bincount(g, infl, S)                                            # (S,) per-subject sums, sum 0
    se = float(np.sqrt(S / (S - 1) * (d ** 2).sum()))
    p = 1.0 if se == 0 and diff == 0 else 0.0 if se == 0 else float(2 * stats.t.sf(abs(diff) / se, S - 1))
    out.update(diff=diff, p=p, se=se)
    return out


def paired_metric_test(task: str, y, pred_a, pred_b, groups, n_perm: int = 10_000, seed: int = 0,
                       alpha: float = 0.05) -> dict:
    """The paired test over subjects of two predictors of the same windows in the task's skill metric
    (`skill_metric`): MAE by swapping them within subjects (`paired_mae_test`), AUROC by the clustered
    DeLong test on the first output (`paired_auroc_test`). Returns {subjects, diff (A - B), p, ci95, ...}, ci95 the
    difference's t-interval over the subjects, from the same subjects-as-units reading as p: MAE, the pooled
    difference as the window-weighted mean of each subject's mean |error| difference (`ratio_t_interval`, its
    jackknife variance over subjects); AUROC, diff +- t(S - 1) x the clustered DeLong standard error. (A percentile
    bootstrap of 5-12 subjects, used before, is too narrow: it ignores that the spread is estimated from so few.)
    The AUROC interval is clipped to [-1, 1] (`clip_interval`). NaN with fewer than 2 subjects or a NaN difference. Coverage of the MAE interval in simulation: 93-96 % at 3-12
    subjects of uneven size, skewed error scales and heavy-tailed errors, where a subject's window count is
    unrelated to its error; 86-88 % where subjects with more windows also err more (the linearised variance 76-80 %,
    the bootstrap ~72 %)."""
    from scipy import stats
    y2, a2, b2 = (np.asarray(v, float).reshape(len(v), -1) for v in (y, pred_a, pred_b))
    if skill_metric(task)[0] == "mae":
        return paired_mae_test(y2, a2, b2, groups, n_perm=n_perm, seed=seed, alpha=alpha)
    out = paired_auroc_test(y2[:, 0], a2[:, 0], b2[:, 0], groups)
    out["ci95"] = [float("nan")] * 2
    if np.isfinite(out["diff"]) and "se" in out:
        h = float(stats.t.ppf(1 - alpha / 2, out["subjects"] - 1)) * out["se"]
        out["ci95"] = list(clip_interval(out["diff"] - h, out["diff"] + h, "auroc", diff=True))   # within [-1, 1]
    return out


BLOCK_S = 60.0     # one batch of a subject's windows for the interval of its MAE: a minute of them


def block_windows(hop_s: float, block_s: float = BLOCK_S) -> int:
    """How many consecutive windows (one every `hop_s` seconds) make one batch of `block_s` seconds."""
    return max(1, int(round(block_s / float(hop_s))))


def ratio_t_interval(means, weights, alpha: float = 0.05, jackknife: bool = False) -> tuple[float, float]:
    """(lo, hi): the t-interval of sum(w m) / sum(w) over a few independent units (subjects, or batches of one
    subject's windows) with means `means` and sizes `weights`, t with u - 1 degrees of freedom. Variance: the ratio
    estimator's linearisation u / (u - 1) * sum(w^2 (m - mean)^2) / sum(w)^2 (equal weights: the textbook
    s / sqrt(u)), or with `jackknife` the delete-one-unit jackknife (u - 1) / u * sum((r_-i - r_.)^2), for units
    whose sizes may track their values (subjects: one who errs more often has more windows too), where the
    linearisation undercovers (simulated differences, 3-12 subjects: sizes proportional to error scale, linearised
    73-81 % for a nominal 95 %, jackknife 86-89 %; sizes uneven but unrelated, linearised 90-93 %, jackknife 93-95 %).
    Equal weights: the two are the same. NaN with fewer than 2 units."""
    from scipy import stats
    m, w = np.asarray(means, np.float64), np.asarray(weights, np.float64)
    ok = np.isfinite(m) & (w > 0)
    m, w = m[ok], w[ok]
    u = m.size
    if u < 2:
        return float("nan"), float("nan")
    mean = float((w * m).sum() / w.sum())
    if jackknife:
        loo = ((w * m).sum() - w * m) / (w.sum() - w)                          # (u,) the ratio without unit i
        se = float(np.sqrt((u - 1) / u * ((loo - loo.mean()) ** 2).sum()))
    else:
        se = float(np.sqrt(u / (u - 1) * ((w * (m - mean)) ** 2).sum()) / w.sum())
    h = float(stats.t.ppf(1 - alpha / 2, u - 1)) * se
    return mean - h, mean + h


def batch_means_ci(values, block: int, groups=None, alpha: float = 0.05) -> tuple[float, float]:
    """(lo, hi) of the mean of the finite values of a serially correlated sequence (one value per window, in time
    order within each of `groups`, a subject's recordings; None: one recording) by batch means: each recording's
    windows cut into consecutive batches of `block` (its last partial batch joins the one before; a recording
    shorter than a batch is one), each batch's mean over its finite windows (doubtful-truth NaN left out), and the
    t-interval of their window-weighted mean (`ratio_t_interval`, batches - 1 degrees of freedom). Overlapping
    windows share samples and a tracker that locks onto a wrong frequency errs for minutes, so single windows are
    not independent (resampling them gives intervals far too narrow), and a bootstrap of the ~5 one-minute blocks
    of a 5-minute recording undercovers too (~85 % for a nominal 95 % in simulation); the t over batch means holds
    ~92-95 % where errors are correlated over well under a minute (AR(1) up to phi 0.9 at one window per 2 s), less
    where they persist longer (phi 0.97: ~81 %; rare minute-long lock-ons: ~60 %: no interval from 150 windows
    sees those). Fewer than 2 batches with a finite window: batches halved until there are 2 (or single windows);
    `batch_means` says which batches were used."""
    means, sizes, _ = batch_means(values, block, groups)
    return ratio_t_interval(means, sizes, alpha)


def batch_means(values, block: int, groups=None) -> tuple[list[float], list[int], int]:
    """(batch means, their finite windows, the batch length used) of `batch_means_ci`: the length is `block`, or
    less where it was halved to give 2 batches, so a report can state the batches its interval really rests on."""
    v = np.asarray(values, np.float64).ravel()
    g = np.zeros(v.size, int) if groups is None else np.asarray(groups).ravel()
    if g.size != v.size:
        raise ValueError(f"batch_means_ci: {v.size} values, {g.size} groups")
    keys = list(dict.fromkeys(g.tolist()))                               # recordings in order of appearance
    b = max(1, int(block))
    while True:
        means, sizes = [], []
        for key in keys:
            seg = v[g == key]
            n_b = max(1, seg.size // b)
            for part in np.split(seg, np.arange(1, n_b) * b):           # the last batch takes the remainder
                fin = part[np.isfinite(part)]
                if fin.size:
                    means.append(float(fin.mean()))
                    sizes.append(int(fin.size))
        if len(means) >= 2 or b == 1:
            return means, sizes, b
        b = max(1, b // 2)


def mae_batch_ci(abs_err, block: int, groups=None) -> tuple[float, float]:
    """The 95 % interval of one subject's MAE from its windows' absolute errors (`batch_means_ci`), its lower end
    clipped at 0 (a t-interval over 4-5 one-minute batches of a 5-minute recording is wide and symmetric)."""
    lo, hi = batch_means_ci(abs_err, block, groups)
    return (max(0.0, lo) if np.isfinite(lo) else lo), hi


def primary_metric(task: str) -> str:
    return {"af": "f1_weighted", "quality": "auroc"}.get(task, "mae")


# ----------------------------------------------------------------------------- skill: model vs trivial

def trivial_predictions(task: str, y_train: np.ndarray, n: int) -> np.ndarray:
    """The trivial predictor for `n` test windows, fitted on the training targets only: the training mean
    per output (regression, target units), or the training base rate as a constant logit (classification:
    AUROC 0.5 and the majority class at threshold 0.5). Shape (n, k)."""
    y = np.asarray(y_train, float)
    if y.size == 0:
        from sqtool.core.errors import SqtoolError
        raise SqtoolError("trivial predictor: no training targets")
    y = y.reshape(len(y), -1)
    if task in CLASSIFICATION_TASKS:
        p = float(np.clip(np.mean(y[:, 0] > 0.5), 1e-3, 1 - 1e-3))
        return np.full((n, 1), np.log(p / (1 - p)))
    return np.repeat(y.mean(0, keepdims=True), n, axis=0)


def oof_trivial(task: str, y: np.ndarray, folds) -> np.ndarray:
    """Out-of-fold trivial predictions: each test window gets its training folds' mean (regression).
    Classification: ONE constant logit for every window, the median over folds of the training base-rate
    logits: a constant score has AUROC 0.5 by definition, while per-fold constants would rank the windows
    by their fold's training base rate, which is anti-correlated with the held-out fold's (pooled AUROC
    below 0.5, an artefact that flatters any model); the majority class at threshold 0.5 is unchanged
    unless the folds disagree on it."""
    y = np.asarray(y, float).reshape(len(y), -1)
    out = np.full((len(y), 1 if task in CLASSIFICATION_TASKS else y.shape[1]), np.nan)
    for tr, te in folds:
        out[te] = trivial_predictions(task, y[tr], len(te))
    if task in CLASSIFICATION_TASKS:
        out[:] = np.median([trivial_predictions(task, y[tr], 1)[0, 0] for tr, _ in folds])
    return out


def source_trivial(task: str, y: np.ndarray, source: np.ndarray | None, folds) -> np.ndarray:
    """Out-of-fold trivial predictions that know each window's source (`source`: (N,) dataset names; None: the
    pooled `oof_trivial`): `oof_trivial` within each source (classification: the source's training-fold base rate
    as ONE constant logit per source, the median over folds; regression: the source's training-fold mean). Pooled
    over sources with different base rates a score that knows only the source ranks windows by dataset (quality:
    AUROC ~0.93-0.96), so that, not 0.5, is the floor of a pooled AUROC; within one source it is a constant (AUROC
    0.5). A source missing from some fold's training windows keeps the pooled `oof_trivial`. folds: [(train_idx,
    test_idx)] index arrays."""
    out = oof_trivial(task, y, folds)
    if source is None:
        return out
    y, source = np.asarray(y, float), np.asarray(source)
    for s in np.unique(source):
        m = source == s
        pos = np.cumsum(m) - 1                                       # (N,) index among the source's windows
        sub = [(pos[np.asarray(tr)[m[tr]]], pos[np.asarray(te)[m[te]]]) for tr, te in folds]
        if all(len(tr) for tr, _ in sub):
            out[m] = oof_trivial(task, y[m], sub)
    return out


def skill_metric(task: str) -> tuple[str, str]:
    """(metric, 'lower' | 'higher') the skill test compares: MAE for regression, AUROC for classification.
    Not weighted F1 for classification: F1 of a constant (majority-class) predictor follows the base rate
    of each bootstrap resample (on 12 AF patients its CI spans ~0.33-0.79), so the test could not see skill
    that AUROC, 0.5 for ANY constant score, shows plainly; F1 is still reported beside it."""
    return ("auroc", "higher") if task in CLASSIFICATION_TASKS else ("mae", "lower")


def prediction_spread(task: str, pred: np.ndarray, y: np.ndarray | None = None) -> dict:
    """Spread of the predictions: std per output (regression, in units; classification, of the
    probability), and its ratio to the targets' std when `y` is given. A head that predicts one value for
    every input has spread ~0."""
    p = np.asarray(pred, float).reshape(len(pred), -1)
    if task in CLASSIFICATION_TASKS:
        p = sigmoid(p[:, :1])
    out = {"pred_std": [float(v) for v in p.std(0)]}
    if y is not None:
        ys = np.asarray(y, float).reshape(len(y), -1)[:, :p.shape[1]].std(0)
        out["target_std"] = [float(v) for v in ys]
        out["ratio"] = [float(a / b) if b > 0 else float("nan") for a, b in zip(p.std(0), ys)]
    return out


def skill_test(task: str, y: np.ndarray, pred: np.ndarray, trivial: np.ndarray, groups: np.ndarray,
               outputs=(), n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, few: int = 0) -> dict:
    """Does `pred` beat the `trivial` predictions? The paired test over SUBJECTS of the difference in the task's
    skill metric (`skill_metric`: MAE or AUROC on the pooled windows; model - trivial): `paired_metric_test`, i.e.
    for MAE the swap of the two predictors within subjects (exact up to 12 subjects, else n_boot draws) with the
    t-interval of the subjects' window-weighted differences, for AUROC the clustered DeLong test and its t-interval
    (swapping a constant score into a model's ranking would measure scales: the af classic rule got p 0.16 that
    way). A percentile bootstrap of the subjects, used before for the CI, is too narrow with 5-12 subjects.

    `trivial` may be any reference predictor (the classic one too). Returns {metric, better, model,
    reference, diff, diff_ci95, p, subjects, min_subjects (`few`), skill (bool), flag ("" or "no skill")}.
    No skill when the model is not better than the trivial predictor, when the CI of the difference includes
    zero, or when p >= alpha (MAE: 5 subjects or fewer can never show skill, 2 / 2^5 > 0.05; one subject never),
    or over fewer than `few` subjects (`too_few_subjects`: held-out verdicts pass FEW_SUBJECTS; 0: 2)."""
    metric, better = skill_metric(task)
    y, pred, trivial, groups = np.asarray(y), np.asarray(pred), np.asarray(trivial), np.asarray(groups)
    m_model = task_metrics(task, y, pred, outputs)[metric]
    m_triv = task_metrics(task, y, trivial, outputs)[metric]
    test = paired_metric_test(task, y, pred, trivial, groups, n_perm=n_boot, seed=seed, alpha=alpha)
    diff, (lo, hi), p = m_model - m_triv, test["ci95"], test["p"]
    sign = -1.0 if better == "lower" else 1.0                   # > 0 = model better
    skill = bool(not too_few_subjects(test["subjects"], few) and np.isfinite(diff) and sign * diff > 0 and np.isfinite(lo)
                 and (hi < 0 if better == "lower" else lo > 0) and p < alpha)
    return {"metric": metric, "better": better, "model": float(m_model), "reference": float(m_triv),
            "diff": float(diff), "diff_ci95": [float(lo), float(hi)], "p": float(p), "subjects": int(test["subjects"]),
            "min_subjects": int(max(few, 2)), "skill": skill, "flag": "" if skill else "no skill"}


def skill_block(task: str, y: np.ndarray, groups: np.ndarray, pred: np.ndarray, trivial: np.ndarray,
                classic: tuple = (None, "not computed"), outputs=(), n_boot: int = 1000, seed: int = 0,
                few: int = 0) -> dict:
    """One model beside the trivial predictor and the task's classic method on the same windows: the skill block of
    a fine-tune's metrics.json (out of fold, `train.skill.skill_report`) and, per model, of a quantize run's
    (held out, `compress.report.heldout_skill`).

    `y` (N, k) targets, `groups` (N,) subjects, `pred` / `trivial` (N, k) in units (logits for classification),
    `classic`: (its (N, k) predictions, name) or (None, why).
    {trivial: metrics, spread: `prediction_spread`, skill: `skill_test` (model vs trivial; flag "no skill"),
     trivial_ci95, classic: {name, metrics, ci95} or {name: None, why}, vs_classic: the same paired test against
     the classic predictor (absent without one), flag: "" or "no skill", classic_flag: "" or "worse than the
     classic method" (`classic_flag`)}."""
    ref = reference_block(task, y, groups, trivial, classic, outputs, n_boot=n_boot, seed=seed)
    mod = model_block(task, y, groups, pred, trivial, classic[0], outputs, n_boot=n_boot, seed=seed, few=few)
    return {"trivial": ref["trivial"], "spread": mod["spread"], "skill": mod["skill"],
            "trivial_ci95": ref["trivial_ci95"], "classic": ref["classic"],
            **{k: mod[k] for k in ("vs_classic", "flag", "classic_flag") if k in mod}}


def reference_block(task: str, y: np.ndarray, groups: np.ndarray, trivial: np.ndarray,
                    classic: tuple = (None, "not computed"), outputs=(), n_boot: int = 1000, seed: int = 0) -> dict:
    """What every model scored on the same windows is compared with (`skill_block`): {trivial: metrics,
    trivial_ci95, classic: {name, metrics, ci95} or {name: None, why}}; computed once for several models."""
    y = np.asarray(y, float)
    c, name = classic
    return {"trivial": task_metrics(task, y, trivial, outputs),
            "trivial_ci95": bootstrap_ci(task, y, trivial, groups, outputs, n_boot=n_boot, seed=seed),
            "classic": {"name": None, "why": name} if c is None else {
                "name": name, "metrics": task_metrics(task, y, c, outputs),
                "ci95": bootstrap_ci(task, y, c, groups, outputs, n_boot=n_boot, seed=seed)}}


def model_block(task: str, y: np.ndarray, groups: np.ndarray, pred: np.ndarray, trivial: np.ndarray,
                classic_pred: np.ndarray | None = None, outputs=(), n_boot: int = 1000, seed: int = 0,
                few: int = 0) -> dict:
    """One model's part of `skill_block`: {spread, skill (vs the trivial predictor), vs_classic (with a classic
    method), flag, classic_flag}; `few`: `skill_test`'s (held out: FEW_SUBJECTS)."""
    y = np.asarray(y, float)
    out = {"spread": prediction_spread(task, pred, y),
           "skill": skill_test(task, y, pred, trivial, groups, outputs, n_boot=n_boot, seed=seed, few=few)}
    if classic_pred is not None:
        out["vs_classic"] = skill_test(task, y, pred, classic_pred, groups, outputs, n_boot=n_boot, seed=seed, few=few)
    out["flag"] = out["skill"]["flag"]
    out["classic_flag"] = classic_flag(out.get("vs_classic"))
    return out


def skill_unit(metric: str, units=()) -> str:
    """The unit of a skill metric of a model with output `units` (metrics.json's "units"): MAE is in its outputs'
    unit (one unit shared by every regression output: "%", "BPM", "mmHg", spelled as printed, `progress.unit_text`;
    "" where they differ or there is none); AUROC and F1 have none."""
    if metric != "mae":
        return ""
    found = {str(u) for u in (units or ()) if u and u != "logit"}
    return unit_text(found.pop()) if len(found) == 1 else ""


def swap_test_cannot_show(metric: str, subjects: int | None, alpha: float = 0.05) -> bool:
    """True where MAE's within-subject swap test cannot give p < alpha however large the difference (its smallest
    p is 2 / 2^S: 5 subjects or fewer at 0.05), and the t(S - 1) interval spans zero whatever the model does: a
    verdict there rests on the point value, and says so (`skill_line`, `classic_flag`)."""
    return metric == "mae" and subjects is not None and 2 / 2 ** subjects >= alpha


def skill_line(task: str, s: dict, label: str = "", unit: str = "", few: int = 0) -> str:
    """One line for a command's end: the model against the trivial predictor, flagged 'NO SKILL'. `label`
    names the metric when the command's headline reports it another way (e.g. 'pooled mae': skill_test pools
    the windows, a headline may average subjects); default: the metric's name. `unit` (`skill_unit`: MAE's, e.g.
    "%") follows the model's, the trivial's and the difference's value. `s` as skill_test returns it, or read back
    from a metrics.json or an export's metadata, where a NaN is null (None): the same line either way. Where the
    subjects are too few to show skill the verdict says to add subjects: "bench more" for heart rate (`sqtool
    bench` measures it on more recordings), "more subjects" for the other tasks (a fine-tune's test is out of fold
    over every subject, quantize's over the held-out ones). `few`: fewer subjects than this cannot show skill in any
    metric either (`too_few_subjects`: held-out verdicts, FEW_SUBJECTS), said the same way, a "skill" read back from a
    file written before the rule included; `s`'s own min_subjects (`skill_test(few=)`) counts too; 0: only MAE's
    swap test's limit. The CI is clipped to the metric's range (`clip_interval`)."""
    model, ref, diff = (nan_if_none(v) for v in (s["model"], s["reference"], s["diff"]))
    lo, hi = clip_interval(*s["diff_ci95"], s.get("metric"), diff=True)
    n = s.get("subjects")
    few = max(few, s.get("min_subjects") or 0)
    better = np.isfinite(diff) and (diff < 0 if s.get("better", "lower") == "lower" else diff > 0)
    more = "bench more" if task == "hr" else "more subjects"
    if s["skill"] and not too_few_subjects(n, few):
        verdict = "skill"
    elif not np.isfinite(diff):                                  # e.g. AUROC over windows of one class
        verdict = f"NO SKILL shown (its {s.get('metric')} is undefined on these windows)"
    elif better and (swap_test_cannot_show(s.get("metric"), n) or too_few_subjects(n, few)):
        verdict = f"NO SKILL shown ({n} subject{'' if n == 1 else 's'} cannot show it: {more})"
    else:
        verdict = "NO SKILL (does not beat the trivial predictor)"
    p = f", p {s['p']:.3g}" if s.get("p") is not None and np.isfinite(s["p"]) else ""
    u = f" {unit}" if unit else ""
    ci = (f"95 % CI {lo:+.3f}, {hi:+.3f}{u}" if np.isfinite(lo) and np.isfinite(hi) else
          "no CI: one subject" if n == 1 else "no CI")
    return (f"{task}: {label or s['metric']} model {model:.3f}{u} vs trivial {ref:.3f}{u} (difference "
            f"{diff:+.3f}{u}, {ci}{p}): {verdict}")


WORSE_THAN_CLASSIC = "worse than the classic method"


def classic_flag(vs: dict | None, alpha: float = 0.05) -> str:
    """"" or WORSE_THAN_CLASSIC from the paired test model vs classic (`skill_test`'s dict, None when there is no
    classic): flagged when the model is worse, the 95 % CI of the difference over subjects excludes zero and the
    paired p over the subjects is below alpha (the same evidence `skill_test` asks of skill). A worse point value
    is still flagged, saying so, where the subjects cannot give a CI (one subject: "... (point comparison, no CI)")
    or cannot give a p below alpha (MAE's within-subject swap on 5 subjects or fewer: "... (point comparison: 4
    subjects cannot show it)"; any metric under the test's min_subjects, `too_few_subjects`): a warning should not
    vanish because the test set is small."""
    if not vs or not np.isfinite(vs["diff"]):
        return ""
    lower = vs["better"] == "lower"
    if not (vs["diff"] > 0 if lower else vs["diff"] < 0):
        return ""
    lo, hi = vs["diff_ci95"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{WORSE_THAN_CLASSIC} (point comparison, no CI)"
    p, n = vs.get("p"), vs.get("subjects")
    if swap_test_cannot_show(vs.get("metric"), n, alpha) or too_few_subjects(n, vs.get("min_subjects") or 0):
        return f"{WORSE_THAN_CLASSIC} (point comparison: {n} subjects cannot show it)"
    if not worse_by_ci(vs):
        return ""
    return WORSE_THAN_CLASSIC if p is None or not np.isfinite(p) or p < alpha else ""


def worse_by_ci(t: dict) -> bool:
    """The paired test `t` (`skill_test`'s dict) says worse: its difference's 95 % CI lies wholly on the worse side
    (above 0 where lower is better, below where higher is)."""
    lo, hi = clip_interval(*(t.get("diff_ci95") or [None, None]), t.get("metric"), diff=True)
    lower = t.get("better", "lower") == "lower"
    return bool(np.isfinite(lo) and np.isfinite(hi) and (lo > 0 if lower else hi < 0))


def classic_text(vs: dict | None, label: str = "", flag: str | None = None, unit: str = "") -> str:
    """The model-vs-classic verdict to append to a command's last line (`skill_line`), from the paired test
    against the classic method (`vs`: a skill block's "vs_classic", None without a classic) and its flag (None:
    `classic_flag(vs)`; a metrics.json's stored "classic_flag" where its NaNs were read back as null): "" unless
    flagged, else '; WORSE THAN THE CLASSIC METHOD: auroc 0.595 vs classic 0.775 (difference -0.180, 95 % CI -0.300,
    -0.050, p 0.004)', the flag's qualifier kept where it has one ('; WORSE THAN THE CLASSIC METHOD (point
    comparison: 4 subjects cannot show it): mae ...'; no CI at all: '(difference ..., a point comparison: no CI over
    subjects)'); `unit` (`skill_unit`) follows the values as in `skill_line`."""
    flag = classic_flag(vs) if flag is None else flag
    if not flag or not vs:
        return ""
    lo, hi = clip_interval(*vs["diff_ci95"], vs.get("metric"), diff=True)
    p = vs.get("p")
    u = f" {unit}" if unit else ""
    if np.isfinite(lo) and np.isfinite(hi):
        ci = f"95 % CI {lo:+.3f}, {hi:+.3f}{u}" + (f", p {p:.3g}" if p is not None and np.isfinite(p) else "")
        qual = flag[len(WORSE_THAN_CLASSIC):]                      # "" or " (point comparison: ...)"
    else:
        ci, qual = "a point comparison: no CI over subjects", ""
    return (f"; {WORSE_THAN_CLASSIC.upper()}{qual}: {label or vs['metric']} {vs['model']:.3f}{u} vs classic "
            f"{vs['reference']:.3f}{u} (difference {vs['diff']:+.3f}{u}, {ci})")
