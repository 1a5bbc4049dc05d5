"""Verdicts over a few held-out subjects (an audit: quantize's summary line and report.md said "NO SKILL (does not
beat the trivial predictor)" for an af student at AUROC 0.78 against 0.50 over 2 held-out patients, where the model
card of the same run said "NO SKILL shown (2 subjects cannot show it)"; bench's held-out line alike): a model better
than the trivial predictor on fewer than FEW_SUBJECTS subjects is "not shown", in quantize and bench as in the card."""
from __future__ import annotations

import numpy as np

from sqtool.compress.report import heldout_skill, skill_lines
from sqtool.firmware_bench.cli import skill_vs
from sqtool.firmware_bench.report import Target


def _two_patients():
    """Two held-out patients, each with both classes; the model ranks AF above the rest on one patient only."""
    rng = np.random.default_rng(0)
    y = np.tile([0.0, 1.0], 40)[:, None]                                              # (80, 1)
    groups = np.repeat(["p1", "p2"], 40)
    good = y[:40, 0] * 2 + rng.normal(0, 1, 40)
    poor = rng.normal(0, 1, 40)
    return y, groups, np.concatenate([good, poor])[:, None]


def test_quantizes_lines_say_not_shown_over_two_subjects():
    y, groups, logit = _two_patients()
    sk = heldout_skill("af", np.tile([0.0, 0.0, 1.0], 30)[:, None], y, groups,
                       {"student_float": logit, "student_int8": logit}, n_boot=20)
    assert sk["models"]["student_int8"]["skill"]["skill"] is False
    assert sk["models"]["student_int8"]["skill"]["model"] > 0.5                        # better on the point value
    last = skill_lines("af", sk)[-1]
    assert last.endswith("NO SKILL shown (2 subjects cannot show it: more subjects)"), last


def test_benchs_held_out_line_says_not_shown_over_two_subjects():
    y, groups, logit = _two_patients()
    target = Target("logit_af", "logit", "af", "the 'rhythm' label", kind="class", window_s=10.0)
    out = skill_vs(target, {"task": "af"}, {"primary": "onnx_float"}, {"onnx_float": logit[:, 0]},
                   np.zeros(len(y)), None, y[:, 0], groups)
    assert out["vs_trivial"]["skill"] is False and out["vs_trivial"]["model"] > 0.5, out
    assert out["line"].endswith("NO SKILL shown (2 subjects cannot show it: more subjects)"), out["line"]
