"""quantize on a classification task whose held-out windows hold one class only (a held-out patient with no AF)
says the held-out figure is not a measure of skill, in metrics.json, report.md and the result line, instead of
showing 'weighted F1 1.000' as if it were skill (audit find_clin 4)."""
import json

import numpy as np
import pytest

from sqtool.compress.cli import QuantizeConfig, heldout_one_class, quantize, result_line

from compress_fixtures import make_teacher

AF_TEACHER = dict(task="af", outputs=("logit_af",), units=("logit",), target_mean=(0.0,), target_std=(1.0,))


@pytest.fixture(scope="module")
def af_task(hr_task):
    """The synthetic windows labelled AF (1) for subjects syn000-syn002 on alternate windows, never for the others."""
    from sqtool.data.tasks import TaskData
    g = hr_task.groups
    y = ((np.isin(g, ["syn000", "syn001", "syn002"])) & (np.arange(len(g)) % 2 == 0)).astype(np.float32)[:, None]
    return TaskData(hr_task.x, y, g, hr_task.t0, hr_task.record_ids, "af", dict(hr_task.meta))


def test_a_one_class_heldout_set_is_flagged_in_metrics_report_and_result_line(tmp_path, af_task, capsys):
    t = make_teacher(tmp_path / "t" / "model.pt", None, **AF_TEACHER)
    d = quantize(QuantizeConfig(teacher=str(t), task="af", out=str(tmp_path / "q"), epochs=1, qat_epochs=0,
                                batch_size=32, heldout_subjects=["syn005"]), data=af_task)
    m = json.loads((d / "metrics.json").read_text())
    assert m["heldout_one_class"].startswith("the held-out windows hold one class only (0 of 57 AF)")
    assert m["warnings"][0] == m["heldout_one_class"]
    assert m["student_float"]["metrics"]["positives"] == 0                     # the numbers themselves unchanged
    line = result_line(m)
    assert line.startswith("held-out af: teacher weighted F1 ")
    assert line.endswith(" (NOT A MEASURE OF SKILL: the held-out windows hold one class only (0 of 57 AF))"), line
    report = (d / "report.md").read_text()
    assert "**Not a measure of skill: the held-out windows hold one class only (0 of 57 AF)" in report


def test_both_classes_or_a_regression_task_give_no_warning():
    assert heldout_one_class("af", np.array([[0.0], [1.0], [0.0]])) is None
    assert heldout_one_class("hr", np.full((5, 1), 80.0)) is None
    assert heldout_one_class("quality", np.ones((4, 1))).startswith(
        "the held-out windows hold one class only (4 of 4 good)")
    m = {"task": "hr", "primary_metric": "mae", "teacher": {"metrics": {"mae": 8.108}},
         "student_float": {"metrics": {"mae": 9.0}}, "student_int8": {"metrics": {"mae": 9.251}},
         "heldout_one_class": None}
    assert "SKILL" not in result_line(m)


def test_no_held_out_windows_give_no_warning():
    assert heldout_one_class("af", np.zeros((0, 1))) is None          # (it raised numpy's reshape ValueError)


def test_the_result_line_keeps_a_reason_that_holds_a_colon(monkeypatch):
    """The result line shows the warning's whole short reason, everything before its ONE_CLASS_WHY tail: a ':' inside
    the reason (a class name, a 'dataset:subject' key) no longer cuts it (it was cut at the first ':')."""
    from sqtool.compress.cli import ONE_CLASS_WHY
    from sqtool.core import metrics as M
    m = {"task": "af", "primary_metric": "f1_weighted", "teacher": {"metrics": {"f1_weighted": 1.0}},
         "student_float": {"metrics": {"f1_weighted": 1.0}}, "student_int8": {"metrics": {"f1_weighted": 1.0}}}
    monkeypatch.setitem(M.CLASS_NAMES, "af", ("non-AF", "AF: paroxysmal"))
    m["heldout_one_class"] = heldout_one_class("af", np.ones((3, 1)))
    assert m["heldout_one_class"].endswith(f"(3 of 3 AF: paroxysmal): {ONE_CLASS_WHY}")
    assert result_line(m).endswith(" (NOT A MEASURE OF SKILL: the held-out windows hold one class only "
                                   "(3 of 3 AF: paroxysmal))")
    m["heldout_one_class"] = f"the held-out windows of troika:07 hold one class only (0 of 5 AF): {ONE_CLASS_WHY}"
    assert result_line(m).endswith(" (NOT A MEASURE OF SKILL: the held-out windows of troika:07 hold one class only "
                                   "(0 of 5 AF))")
