"""Skill block of a fine-tune report: the model beside the trivial predictor and the task's classic method
(`sqtool.data.classic.classic_oof`), out of fold, on a TaskData (`skill_report`); the verdicts are
`core.metrics.skill_test` / `classic_flag`."""
from __future__ import annotations

import numpy as np

from sqtool.core.metrics import (bootstrap_ci, classic_flag, oof_trivial, prediction_spread, skill_test,
                                 task_metrics)
from sqtool.data.classic import classic_oof


def skill_report(task: str, td, pred: np.ndarray, folds, outputs=(), n_boot: int = 1000, seed: int = 0,
                 classic: bool = True) -> dict:
    """Model vs trivial vs classic on the same out-of-fold windows: the block every fine-tune report
    carries (`metrics.json["skill"]`).

    {trivial: metrics, classic: {name, metrics, ci95} or {name: None, why}, spread: prediction spread,
     skill: `core.metrics.skill_test` (model vs trivial; flag "no skill"), vs_classic: the same paired test
     against the classic predictor (skill = the model beats it), flag: "" or "no skill", classic_flag: "" or
     "worse than the classic method" (`classic_flag`)}."""
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
