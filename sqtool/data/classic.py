"""The classic (non-learned or one-threshold) predictor of each downstream task, out of fold, on a TaskData: the
row every fine-tune (`train.skill.skill_report`) and quantize report puts beside the model and the trivial
predictor.

    pred, name = classic_oof("rr", td, folds)     # (N, k) in the task's units / logits, or (None, reason)

What a practitioner would ship without a deep model, computed on the SAME windows the model sees
(`TaskData.x` at `td.meta["fs"]`), so every report can put it beside the model and the trivial predictor:

    hr       the project's spectral baseline (`data.hr_baseline`) as far as these windows allow: the PPG spectrum's
             peak in 40-210 BPM with its peak tracking, each recording's windows in time order (`td.record_ids`,
             `td.t0`; without them each window alone, its own peak). No accelerometer subtraction: the TaskData
             windows are the PPG a time-domain model reads. No training; a window before the recording's first
             peak (flat PPG) takes its fold's training mean, as `NestedBaseline` does. The spectral heart-rate fine-tune and
             quantize put the full baseline (accelerometer notch chosen on the training subjects,
             `hr_baseline.NestedBaseline`) beside the model, and `sqtool bench` has it as its baseline row.
    rr       `sqtool.data.resp.classic_rr`: peak of the fused baseline-wander + RIIV spectrum in 0.1-0.7 Hz.
             No training. Needs a band reaching below 0.1 Hz (the rr task's 0.05-8 Hz) and windows >= 10 s.
    af       normalised RMSSD of the beat intervals (`sqtool.data.beats`) above a threshold chosen on the
             training folds (Youden's J); the score log(nrmssd / threshold) is used as the logit.
    quality  the project's signal quality index (`sqtool.data.quality.quality_score`, > 0.5 good) as the
             score, logit = 10 (sqi - 0.5). No training. NOTE: the TROIKA windows of the quality task are
             LABELLED by this index (on the raw 125 Hz signals, with the accelerometer), so on that source
             the classic is close to circular (here it sees the model's normalised 40 Hz PPG windows only).
    bp       none: no classic cuffless-BP estimator without a per-subject calibration; (None, reason).
    custom   a dataset file's own regression label (`data.tasks.task_spec`): none; (None, reason).

numpy/scipy only.
"""
from __future__ import annotations

import numpy as np

from sqtool.core import SqtoolError


def classic_oof(task: str, td, folds, front: np.ndarray | None = None) -> tuple[np.ndarray | None, str]:
    """(out-of-fold classic predictions (N, k), the method's name) or (None, why there is none). `front`: what the
    classic reads, when the caller has it for these windows already (rr: `resp.resp_spectra` on `resp.RR_BINS`, af:
    `beats.interval_features`; a model over that front end has), not computed again."""
    fs = float(td.meta.get("fs", 40.0))
    x = td.x
    if task == "rr":
        from sqtool.data.resp import MIN_WINDOW_S, classic_rr, resp_spectra
        band = td.meta.get("band")
        if band is not None and band[0] is not None and band[0] > 0.1:
            return None, f"input band starts at {band[0]:g} Hz: the respiratory modulation is filtered out"
        if x.shape[-1] < MIN_WINDOW_S * fs:
            return None, f"windows shorter than {MIN_WINDOW_S:g} s"
        S = front if front is not None else resp_spectra(x[:, 0], fs)
        return classic_rr(S)[:, None], "RIIV + baseline spectral fusion, 0.1-0.7 Hz peak"
    if task == "af":
        from sqtool.data.beats import af_rule_score, fit_af_rule, interval_features
        F = front if front is not None else interval_features(x[:, 0], fs)
        out = np.full((len(x), 1), np.nan)
        for tr, te in folds:
            try:
                rule = fit_af_rule(F[tr], td.y[tr, 0])
            except SqtoolError:
                return None, "a training fold lacks AF or non-AF windows"
            out[te, 0] = af_rule_score(F[te], rule)
        return out, "normalised RMSSD of beat intervals > threshold (Youden on training folds)"
    if task == "hr":
        pred, name = _ppg_spectral_hr(x[:, 0], fs, getattr(td, "record_ids", None), getattr(td, "t0", None))
        if pred is not None:                 # no peak yet (a recording's first flat windows): the training mean
            for tr, te in folds:
                te = np.asarray(te)[np.isnan(pred[te, 0])]
                pred[te, 0] = np.nanmean(td.y[tr, 0]) if len(tr) else np.nan
        return pred, name
    if task == "quality":
        from sqtool.data.quality import quality_score
        q = quality_score(x[:, 0].astype(np.float64), fs)
        return (10.0 * (np.asarray(q, float) - 0.5))[:, None], "signal quality index (data.quality, > 0.5 good)"
    if task == "bp":
        return None, "no classic cuffless BP estimator without per-subject calibration"
    return None, "no classic method for a custom label"      # a dataset file's own label (data.tasks.task_spec)


def _ppg_spectral_hr(ppg: np.ndarray, fs: float, record_ids, t0) -> tuple[np.ndarray | None, str]:
    """ppg (N, T) windows at fs -> (the baseline's tracked HR (N, 1), its name), or (None, why) when the rate or
    the window length cannot carry the baseline's 0.5-4 Hz band. Each recording's windows are tracked in time
    order (the tracker is causal over them); windows of no known recording or start each stand alone."""
    from sqtool.data.hr_baseline import BaselineCfg, estimate
    cfg = BaselineCfg()
    if fs <= 2 * cfg.band[1]:
        return None, f"windows at {fs:g} Hz: the spectral baseline's {cfg.band[1]:g} Hz band edge needs more"
    if ppg.shape[-1] < 2 * fs:
        return None, "windows shorter than 2 s"
    n = len(ppg)
    out = np.full((n, 1), np.nan)
    if record_ids is None or t0 is None or len(record_ids) != n or len(t0) != n:
        for i in range(n):                                       # no order known: each window is its own record
            out[i, 0] = estimate(ppg[i:i + 1], None, fs, cfg)["raw"][0]
        return out, "PPG spectral peak 40-210 BPM per window (data.hr_baseline without accelerometer)"
    rid, t0 = np.asarray(record_ids).astype(str), np.asarray(t0, np.float64)
    for r in dict.fromkeys(rid.tolist()):
        idx = np.flatnonzero(rid == r)
        idx = idx[np.argsort(t0[idx], kind="stable")]            # (W,) this recording's windows in time order
        out[idx, 0] = estimate(ppg[idx], None, fs, cfg)["hr"]
    return out, "PPG spectral peak 40-210 BPM + peak tracking (data.hr_baseline without accelerometer)"
