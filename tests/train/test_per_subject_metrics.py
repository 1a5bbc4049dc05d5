"""Fine-tune reports each held-out subject's own metric beside the pooled one (audit find_clin 6): MAE per subject
(per output too), AUROC per patient where both classes are present (else which class only), their mean over
subjects with a t-interval over them; metrics.json, per_subject.csv and one stdout line. Pooled numbers unchanged."""
import csv
import json

import numpy as np
import pytest

from sqtool.core.metrics import auroc, t_interval, task_metrics
from sqtool.train.finetune import per_subject_metrics


def test_regression_rows_are_each_subjects_mae_and_the_mean_has_a_t_interval_over_subjects():
    rng = np.random.default_rng(0)
    groups = np.array(["a"] * 30 + ["b"] * 5 + ["c"] * 10)
    y = rng.uniform(90, 160, (45, 2))
    err = np.where(groups == "b", 10.0, 1.0)[:, None] * np.array([2.0, 1.0])     # b: few windows, big errors
    rows, mean = per_subject_metrics("bp", y, y + err, groups, ("sbp", "dbp"))
    assert [r["subject"] for r in rows] == ["a", "b", "c"] and [r["windows"] for r in rows] == [30, 5, 10]
    assert [r["mae_sbp"] for r in rows] == pytest.approx([2, 20, 2]) and rows[1]["mae"] == pytest.approx(15)
    assert mean["metric"] == "mae" and mean["mae"] == pytest.approx((1.5 + 15 + 1.5) / 3) and mean["subjects"] == 3
    assert mean["mae_sbp"] == pytest.approx(8) and mean["mae_dbp"] == pytest.approx(4)
    lo, hi = t_interval([1.5, 15, 1.5])                       # 3 subjects: t(2), wide; a MAE's interval from 0
    assert lo < 0 and mean["ci95"] == pytest.approx([0.0, hi]) and hi > 15
    assert task_metrics("bp", y, y + err, ("sbp", "dbp"))["mae"] != pytest.approx(mean["mae"])   # pooled differs


def test_classification_auroc_per_patient_only_with_both_classes():
    rng = np.random.default_rng(1)
    groups = np.array(["p1"] * 20 + ["p2"] * 20 + ["p3"] * 10 + ["p4"] * 8)
    y = np.r_[np.tile([0, 1], 10), np.tile([1, 0, 0, 0], 5), np.zeros(10), np.ones(8)][:, None]
    pred = (2 * y - 1) + rng.normal(0, 1.5, y.shape)
    rows, mean = per_subject_metrics("af", y, pred, groups)
    by = {r["subject"]: r for r in rows}
    for s in ("p1", "p2"):
        i = groups == s
        assert by[s]["auroc"] == pytest.approx(auroc(y[i, 0], pred[i, 0])) and "one_class" not in by[s]
    assert by["p3"]["auroc"] is None and by["p3"]["one_class"] == "non-AF only" and by["p3"]["positives"] == 0
    assert by["p4"]["auroc"] is None and by["p4"]["one_class"] == "AF only"
    assert mean["metric"] == "auroc" and mean["subjects"] == 2 and mean["one_class"] == ["p3", "p4"]
    assert mean["auroc"] == pytest.approx((by["p1"]["auroc"] + by["p2"]["auroc"]) / 2)
    _, q = per_subject_metrics("quality", y, pred, groups)
    assert q["one_class"] == ["p3", "p4"]
    keep = groups != "p2"                                   # one patient with both classes: no interval, JSON null
    _, m1 = per_subject_metrics("af", y[keep], pred[keep], groups[keep])
    assert m1["subjects"] == 1 and m1["ci95"] is None and "NaN" not in __import__("json").dumps(m1)


def test_finetune_writes_the_per_subject_rows_and_prints_their_mean(af_finetune):
    tmp_path, stdout = af_finetune
    m = json.loads((tmp_path / "metrics.json").read_text())
    with np.load(tmp_path / "oof_predictions.npz") as z:
        y, pred, groups = z["y"], z["pred"], z["groups"]
    assert m["metrics"] == pytest.approx(task_metrics("af", y, pred))               # the pooled figures stay
    assert [r["subject"] for r in m["per_subject"]] == sorted(set(groups.tolist()))
    assert sum(r["windows"] for r in m["per_subject"]) == m["windows"]
    with open(tmp_path / "per_subject.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["subject"] for r in table] == [r["subject"] for r in m["per_subject"]]
    ps = m["per_subject_mean"]
    line = next(ln for ln in stdout.splitlines() if ln.startswith("per subject: "))
    assert ps["one_class"] == [r["subject"] for r in m["per_subject"] if r["auroc"] is None]
    assert ps["subjects"] + len(ps["one_class"]) == m["subjects"]
    assert line.startswith(f"per subject: mean of {ps['subjects']} subjects' AUROC " if ps["subjects"] else
                           "per subject: no AUROC, every subject's windows hold one class only")
    assert line.endswith(f"(rows: {tmp_path / 'per_subject.csv'})")


def test_the_per_subject_line_names_the_outputs_and_the_one_class_subjects():
    from sqtool.train.cli import _per_subject_line
    bp = {"metric": "mae", "mae": 15.9, "ci95": [12.0, 19.5], "mae_sbp": 18.1, "mae_dbp": 13.7, "subjects": 12,
          "one_class": []}
    assert _per_subject_line("bp", bp, ["sbp", "dbp"], "R") == (
        "per subject: mean of 12 subjects' MAE 15.90 mmHg [95 % CI 12, 19.5] (mean of SBP 18.1 and DBP 13.7) "
        "(rows: R/per_subject.csv)")
    af = {"metric": "auroc", "auroc": 0.71, "ci95": [0.6, 0.8], "subjects": 4, "one_class": ["p3", "p4"]}
    assert _per_subject_line("af", af, [], "R") == (
        "per subject: mean of 4 subjects' AUROC 0.710 [95 % CI 0.6, 0.8]; 2 subjects with one class only, "
        "no AUROC (p3, p4) (rows: R/per_subject.csv)")
    one = {**af, "auroc": 0.823, "ci95": None, "subjects": 1}              # one patient with both classes
    assert _per_subject_line("af", one, [], "R") == (
        "per subject: one subject's AUROC 0.823 (no CI: one subject); 2 subjects with one class only, no AUROC "
        "(p3, p4) (rows: R/per_subject.csv)")
    none = {**af, "auroc": None, "ci95": [float("nan")] * 2, "subjects": 0}
    assert _per_subject_line("af", none, [], "R") == ("per subject: no AUROC, every subject's windows hold one "
                                                     "class only (rows: R/per_subject.csv)")
