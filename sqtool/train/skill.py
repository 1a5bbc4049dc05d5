"""Skill block of a fine-tune report: the model beside the trivial predictor and the task's classic method
(`sqtool.data.classic.classic_oof`), out of fold, on a TaskData (`skill_report`); the block and its verdicts are
`core.metrics.skill_block` / `skill_test` / `classic_flag`, which quantize's held-out report shares."""
from __future__ import annotations

import numpy as np

from sqtool.core.metrics import skill_block, source_trivial
from sqtool.data.classic import classic_oof


def skill_report(task: str, td, pred: np.ndarray, folds, outputs=(), n_boot: int = 1000, seed: int = 0,
                 classic: bool = True, classic_front: np.ndarray | None = None) -> dict:
    """Model vs trivial vs classic on the same out-of-fold windows: the block every fine-tune report
    carries (`metrics.json["skill"]`): `core.metrics.skill_block` with the out-of-fold trivial predictor
    (`source_trivial`: each fold's training mean or base rate, per source where the windows come from several
    datasets: quality's trivial floor is each source's base rate) and the out-of-fold classic method.

    {trivial: metrics, classic: {name, metrics, ci95} or {name: None, why}, spread: prediction spread,
     skill: `core.metrics.skill_test` (model vs trivial; flag "no skill"), vs_classic: the same paired test
     against the classic predictor (skill = the model beats it), flag: "" or "no skill", classic_flag: "" or
     "worse than the classic method" (`classic_flag`)}."""
    classic_pred = classic_oof(task, td, folds, front=classic_front) if classic else (None, "not computed")
    src = td.meta.get("source") if isinstance(td.meta.get("source"), np.ndarray) else None
    return skill_block(task, td.y, td.groups, pred, source_trivial(task, td.y, src, folds), classic_pred, outputs,
                       n_boot=n_boot, seed=seed)
