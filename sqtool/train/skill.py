"""Skill block of a fine-tune report: classic (non-learned or one-threshold) predictors of the downstream
tasks, out of fold, on a TaskData, beside the trivial predictor and the skill test (`skill_report`).

    pred, name = classic_oof("rr", td, folds)     # (N, k) in the task's units / logits, or (None, reason)

What a practitioner would ship without a deep model, computed on the SAME windows the model sees
(`TaskData.x` at `td.meta["fs"]`), so every report can put it beside the model and the trivial predictor:

    hr       none here: the project's spectral baseline (`firmware_bench.baseline`, spectrum peak with
             accelerometer suppression and peak tracking) is a later stage that train may not import
             (tests/test_layering.py); it is the `baseline` row of `sqtool bench` on the same windows.
    rr       `sqtool.data.resp.classic_rr`: peak of the fused baseline-wander + RIIV spectrum in 0.1-0.7 Hz.
             No training. Needs a band reaching below 0.1 Hz (the rr task's 0.05-8 Hz) and windows >= 10 s.
    af       normalised RMSSD of the beat intervals (`sqtool.data.beats`) above a threshold chosen on the
             training folds (Youden's J); the score log(nrmssd / threshold) is used as the logit.
    quality  the project's signal quality index (`sqtool.data.quality.quality_score`, > 0.5 good) as the
             score, logit = 10 (sqi - 0.5). No training. NOTE: the TROIKA windows of the quality task are
             LABELLED by this index (on the raw 125 Hz signals, with the accelerometer), so on that source
             the classic is close to circular (here it sees the model's normalised 40 Hz PPG windows only).
    bp       none: no classic cuffless-BP estimator without a per-subject calibration; (None, reason).

numpy/scipy only.
"""
from __future__ import annotations

import numpy as np

from sqtool.core import SqtoolError
from sqtool.core.metrics import swap_test_cannot_show


def classic_oof(task: str, td, folds) -> tuple[np.ndarray | None, str]:
    """(out-of-fold classic predictions (N, k), the method's name) or (None, why there is none)."""
    fs = float(td.meta.get("fs", 40.0))
    x = td.x
    if task == "rr":
        from sqtool.data.resp import classic_rr, resp_spectra
        band = td.meta.get("band")
        if band is not None and band[0] is not None and band[0] > 0.1:
            return None, f"input band starts at {band[0]:g} Hz: the respiratory modulation is filtered out"
        if x.shape[-1] < 10 * fs:
            return None, "windows shorter than 10 s"
        return classic_rr(resp_spectra(x[:, 0], fs))[:, None], "RIIV + baseline spectral fusion, 0.1-0.7 Hz peak"
    if task == "af":
        from sqtool.data.beats import af_rule_score, fit_af_rule, interval_features
        F = interval_features(x[:, 0], fs)
        out = np.full((len(td), 1), np.nan)
        for tr, te in folds:
            try:
                rule = fit_af_rule(F[tr], td.y[tr, 0])
            except SqtoolError:
                return None, "a training fold lacks AF or non-AF windows"
            out[te, 0] = af_rule_score(F[te], rule)
        return out, "normalised RMSSD of beat intervals > threshold (Youden on training folds)"
    if task == "hr":
        return None, "the spectral baseline is the baseline row of sqtool bench (firmware_bench.baseline)"
    if task == "quality":
        from sqtool.data.quality import quality_score
        q = quality_score(x[:, 0].astype(np.float64), fs)
        return (10.0 * (np.asarray(q, float) - 0.5))[:, None], "signal quality index (data.quality, > 0.5 good)"
    if task == "bp":
        return None, "no classic cuffless BP estimator without per-subject calibration"
    raise SqtoolError(f"classic_oof: unknown task '{task}'")


def skill_report(task: str, td, pred: np.ndarray, folds, outputs=(), n_boot: int = 1000, seed: int = 0,
                 classic: bool = True) -> dict:
    """Model vs trivial vs classic on the same out-of-fold windows: the block every fine-tune report
    carries (`metrics.json["skill"]`).

    {trivial: metrics, classic: {name, metrics, ci95} or {name: None, why}, spread: prediction spread,
     skill: `core.metrics.skill_test` (model vs trivial; flag "no skill"), vs_classic: the same paired test
     against the classic predictor (skill = the model beats it), flag: "" or "no skill", classic_flag: "" or
     "worse than the classic method" (`classic_flag`)}."""
    from sqtool.core.metrics import bootstrap_ci, oof_trivial, prediction_spread, skill_test, task_metrics
    y = td.y
    triv = oof_trivial(task, y, folds)
    out = {"trivial": task_metrics(task, y, triv, outputs), "spread": prediction_spread(task, pred, y),
           "skill": skill_test(task, y, pred, triv, td.groups, outputs, n_boot=n_boot, seed=seed)}
    out["trivial_ci95"] = bootstrap_ci(task, y, triv, td.groups, outputs, n_boot=n_boot, seed=seed)
    c, name = classic_oof(task, td, folds) if classic else (None, "not computed")
    if c is None:
        out["classic"] = {"name": None, "why": name}
    else:
        out["classic"] = {"name": name, "metrics": task_metrics(task, y, c, outputs),
                          "ci95": bootstrap_ci(task, y, c, td.groups, outputs, n_boot=n_boot, seed=seed)}
        out["vs_classic"] = skill_test(task, y, pred, c, td.groups, outputs, n_boot=n_boot, seed=seed)
    out["flag"] = out["skill"]["flag"]
    out["classic_flag"] = classic_flag(out.get("vs_classic"))
    return out


WORSE_THAN_CLASSIC = "worse than the classic method"


def classic_flag(vs: dict | None, alpha: float = 0.05) -> str:
    """"" or WORSE_THAN_CLASSIC from the paired test model vs classic (`skill_test`'s dict, None when there is no
    classic): flagged when the model is worse, the 95 % CI of the difference over subjects excludes zero and the
    paired p over the subjects is below alpha (the same evidence `skill_test` asks of skill). A worse point value
    is still flagged, saying so, where the subjects cannot give a CI (one subject: "... (point comparison, no CI)")
    or cannot give a p below alpha (MAE's within-subject swap on 5 subjects or fewer: "... (point comparison: 4
    subjects cannot show it)"): a warning should not vanish because the test set is small."""
    if not vs or not np.isfinite(vs["diff"]):
        return ""
    lower = vs["better"] == "lower"
    if not (vs["diff"] > 0 if lower else vs["diff"] < 0):
        return ""
    lo, hi = vs["diff_ci95"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{WORSE_THAN_CLASSIC} (point comparison, no CI)"
    p, n = vs.get("p"), vs.get("subjects")
    if swap_test_cannot_show(vs.get("metric"), n, alpha):                     # before the CI: t(1..4) is wide
        return f"{WORSE_THAN_CLASSIC} (point comparison: {n} subjects cannot show it)"
    if not (lo > 0 if lower else hi < 0):
        return ""
    return WORSE_THAN_CLASSIC if p is None or not np.isfinite(p) or p < alpha else ""


def classic_text(sk: dict, label: str = "") -> str:
    """The model-vs-classic verdict to append to a command's last line (`core.metrics.skill_line`): "" unless
    the skill block is flagged (`classic_flag`), else '; WORSE THAN THE CLASSIC METHOD: auroc 0.595 vs classic 0.775
    (difference -0.180, 95 % CI -0.300, -0.050, p 0.004)', the flag's qualifier kept where it has one ('; WORSE THAN
    THE CLASSIC METHOD (point comparison: 4 subjects cannot show it): mae ...'; no CI at all: '(difference ..., a
    point comparison: no CI over subjects)')."""
    flag, vs = sk.get("classic_flag", ""), sk.get("vs_classic")
    if not flag or not vs:
        return ""
    lo, hi = vs["diff_ci95"]
    p = vs.get("p")
    if np.isfinite(lo) and np.isfinite(hi):
        ci = f"95 % CI {lo:+.3f}, {hi:+.3f}" + (f", p {p:.3g}" if p is not None and np.isfinite(p) else "")
        qual = flag[len(WORSE_THAN_CLASSIC):]                      # "" or " (point comparison: ...)"
    else:
        ci, qual = "a point comparison: no CI over subjects", ""
    return (f"; {WORSE_THAN_CLASSIC.upper()}{qual}: {label or vs['metric']} {vs['model']:.3f} vs classic "
            f"{vs['reference']:.3f} (difference {vs['diff']:+.3f}, {ci})")
