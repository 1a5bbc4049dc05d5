"""One rule for every held-out verdict (an audit: `sqtool bench` on an af model over 2 held-out patients said "skill"
from the clustered DeLong test, where quantize and the model card say fewer than FEW_SUBJECTS subjects cannot show
it; `core.metrics.too_few_subjects`), and intervals inside the metric's range (the 2-patient t(1) interval of an AUROC
difference printed "95 % CI -2.615, +2.538"; `core.metrics.clip_interval`)."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.compress.report import heldout_skill, skill_lines
from sqtool.core.metrics import FEW_SUBJECTS, paired_metric_test, skill_line, skill_test
from sqtool.firmware_bench.cli import skill_vs
from sqtool.firmware_bench.report import Target

AF = Target("logit_af", "logit", "af", "the 'rhythm' label", kind="class", window_s=10.0)
RR = Target("rr_bpm", "breaths/min", "respiratory rate", "the breath marks", window_s=32.0)
NOT_SHOWN = "NO SKILL shown ({} subjects cannot show it: more subjects)"


def _af(n_subj: int, seed: int = 0):
    """n_subj patients, each with both classes, a model that ranks AF above the rest on every one."""
    rng = np.random.default_rng(seed)
    y = np.tile([0.0, 1.0], 20 * n_subj)[:, None]                                   # (N, 1)
    groups = np.repeat([f"p{i}" for i in range(n_subj)], 40)
    return y, groups, (4 * y - 2) + rng.normal(0, 1, y.shape)


def _rr(n_subj: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"s{i}" for i in range(n_subj)], 30)
    y = 15 + 3 * rng.standard_normal((len(groups), 1))
    return y, groups, y + 0.3 * rng.standard_normal(y.shape)


def test_af_over_two_held_out_patients_is_not_shown_in_bench_and_quantize():
    y, groups, logit = _af(2)
    assert skill_test("af", y, logit, np.zeros_like(y), groups, n_boot=20)["skill"]   # DeLong alone: p 0.003
    out = skill_vs(AF, {"task": "af"}, {"primary": "onnx_float"}, {"onnx_float": logit[:, 0]},
                   np.zeros(len(y)), None, y[:, 0], groups)
    assert out["vs_trivial"]["skill"] is False and out["vs_trivial"]["min_subjects"] == FEW_SUBJECTS
    assert out["line"].endswith(NOT_SHOWN.format(2)), out["line"]
    sk = heldout_skill("af", np.tile([0.0, 1.0], 30)[:, None], y, groups, {"student_int8": logit}, n_boot=20)
    assert sk["models"]["student_int8"]["skill"]["skill"] is False and sk["flag"] == "no skill"
    assert skill_lines("af", sk)[-1].endswith(NOT_SHOWN.format(2))


def test_af_over_enough_held_out_patients_shows_skill_in_bench():
    y, groups, logit = _af(FEW_SUBJECTS)
    out = skill_vs(AF, {"task": "af"}, {"primary": "onnx_float"}, {"onnx_float": logit[:, 0]},
                   np.zeros(len(y)), None, y[:, 0], groups)
    assert out["vs_trivial"]["skill"] and out["line"].endswith(": skill"), out["line"]


def test_rr_held_out_verdicts_follow_the_same_rule():
    y, groups, pred = _rr(3)
    out = skill_vs(RR, {"task": "rr"}, {"primary": "onnx_float"}, {"onnx_float": pred[:, 0]},
                   np.full(len(y), 25.0), None, y[:, 0], groups)
    assert out["vs_trivial"]["skill"] is False and out["line"].endswith(NOT_SHOWN.format(3)), out["line"]
    # a held-out verdict read back from a file written before the rule (skill true over 3 subjects): not shown
    stored = {**out["vs_trivial"], "skill": True, "min_subjects": None}
    assert skill_line("rr", stored, few=FEW_SUBJECTS).endswith(NOT_SHOWN.format(3))
    y, groups, pred = _rr(12)
    out = skill_vs(RR, {"task": "rr"}, {"primary": "onnx_float"}, {"onnx_float": pred[:, 0]},
                   np.full(len(y), 25.0), None, y[:, 0], groups)
    assert out["vs_trivial"]["skill"] and out["line"].endswith(": skill"), out["line"]


def test_an_auroc_difference_interval_stays_in_minus_one_one():
    rng = np.random.default_rng(0)                     # one patient well ranked, one at chance: t(1) is very wide
    y = np.tile([0.0, 1.0], 40)[:, None]
    groups = np.repeat(["p1", "p2"], 40)
    logit = np.concatenate([y[:40] * 2 + rng.normal(0, 1, (40, 1)), rng.normal(0, 1, (40, 1))])
    t = paired_metric_test("af", y, logit, np.zeros_like(y), groups)
    assert t["ci95"] == [-1.0, 1.0] and 0 < t["diff"] < 1
    s = skill_test("af", y, logit, np.zeros_like(y), groups, n_boot=20)
    assert s["diff_ci95"] == [-1.0, 1.0]
    old = {**s, "diff_ci95": [-2.615, 2.538]}          # read back from a metrics.json written before the clip
    assert "95 % CI -1.000, +1.000, p" in skill_line("af", old)


def test_clip_interval_keeps_each_metric_in_its_range():
    from sqtool.core.metrics import clip_interval
    assert clip_interval(-2.6, 2.5, "auroc", diff=True) == (-1.0, 1.0)
    assert clip_interval(-0.2, 1.3, "auroc") == (0.0, 1.0)
    assert clip_interval(-0.5, 3.0, "mae") == (0.0, 3.0) and clip_interval(-0.5, 3.0, "mae_sbp") == (0.0, 3.0)
    assert clip_interval(-7.0, 3.0, "mae", diff=True) == (-7.0, 3.0)            # a MAE difference: any sign
    assert all(np.isnan(v) for v in clip_interval(None, float("nan"), "auroc", diff=True))


@pytest.mark.parametrize("n", [1, 2, 4])
def test_classic_comparison_over_few_subjects_is_a_point_comparison(n):
    from sqtool.core.metrics import classic_flag
    vs = {"metric": "auroc", "better": "higher", "model": 0.6, "reference": 0.9, "diff": -0.3,
          "diff_ci95": [-0.5, -0.1], "p": 0.01, "subjects": n, "min_subjects": FEW_SUBJECTS}
    flag = classic_flag(vs)
    assert flag.startswith("worse than the classic method") and "point comparison" in flag
