"""A custom regression label in % (audit of a researcher's spo2 label): the last lines of finetune and quantize give
MAE's unit after each value, quantize's metrics.json has the task's `units`, report.md words the student's relative
MAE by its sign with `int8 - float` in the unit; a verdict that too few subjects cannot show skill says to hold out
more (`sqtool bench` runs heart rate only); and where the default student's strides do not divide the window,
quantize names the student that stands in, why, and holds it to the default's budget."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.compress.cli import QuantizeConfig, check_budget
from sqtool.compress.distill import stand_in, student_cfg_from_teacher
from sqtool.compress.report import _relative, heldout_skill
from sqtool.core import SqtoolError
from sqtool.core.metrics import FEW_SUBJECTS, skill_block, skill_unit, trivial_predictions
from sqtool.models.registry import get_model_cfg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from test_custom_label import write_project  # noqa: E402


@pytest.fixture(scope="module")
def spo2_runs(tmp_path_factory):
    """(fine-tune dir, its stdout, quantize dir, its stdout) of a spo2 label in %, fine-tuned on 30 s windows at
    40 Hz (1200 samples: cnn1d_student_s's total stride 32 does not divide them)."""
    import contextlib
    import io
    root = tmp_path_factory.mktemp("spo2")
    data = write_project(root / "ox")
    ft, q = root / "ft", root / "q"
    outs = []
    for argv in (["train", "finetune", "--task", "spo2", "--data", str(data), "--epochs", "1", "--folds", "2",
                  "--window-s", "30", "--bootstrap", "20", "--out", str(ft), "--no-progress"],
                 ["quantize", "--model", str(ft), "--epochs", "1", "--qat-epochs", "1", "--batch-size", "8",
                  "--out", str(q), "--no-progress"]):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(argv) == 0
        outs.append(buf.getvalue())
    return ft, outs[0], q, outs[1]


def test_the_last_lines_carry_the_labels_unit(spo2_runs):
    _, ft_out, q_dir, q_out = spo2_runs
    last = ft_out.strip().splitlines()[-1]
    assert re.match(r"spo2: mae model \d+\.\d{3} % vs trivial \d+\.\d{3} % \(difference [-+]\d+\.\d{3} %, "
                    r"95 % CI [-+]\d+\.\d{3}, [-+]\d+\.\d{3} %", last), last
    triv = ft_out.strip().splitlines()[-2]                                      # the fine-tune's trivial row too
    assert re.match(r"spo2: trivial mae \d+\.\d{3} %; classic n/a", triv), triv
    m = json.loads((q_dir / "metrics.json").read_text())
    assert m["units"] == ["%"]                                                   # as finetune's metrics.json
    lines = q_out.strip().splitlines()
    assert lines[-4].startswith(f"spo2: trivial mae {m['skill']['trivial']['mae']:.3f} % (fitted on "), lines[-4]
    assert lines[-1].startswith(f"spo2: student int8 mae model {m['student_int8']['metrics']['mae']:.3f} % vs "
                                f"trivial {m['skill']['trivial']['mae']:.3f} % (difference "), lines[-1]
    # one held-out subject cannot show skill: where the model is better, the verdict says to hold out more (not to
    # run `sqtool bench`); where it is not, that it does not beat the trivial predictor (which one: from the run)
    better = m["skill"]["models"]["student_int8"]["skill"]["diff"] < 0
    assert lines[-1].endswith(": NO SKILL shown (1 subject cannot show it: more subjects)" if better else
                              ": NO SKILL (does not beat the trivial predictor)"), lines[-1]


def test_the_report_gives_int8_minus_float_its_unit_and_words_the_relative_mae_by_its_sign(spo2_runs):
    _, _, q_dir, _ = spo2_runs
    m = json.loads((q_dir / "metrics.json").read_text())
    report = (q_dir / "report.md").read_text()
    d = m["deltas"]
    rel = d["float_vs_teacher_rel"]
    side = "above" if rel > 0 else "below"
    assert (f"int8 - float: {d['int8_minus_float']:.3f} %; student float MAE {abs(rel) * 100:.1f} % {side} "
            "the teacher's") in report
    assert "student float vs teacher" not in report
    assert _relative("mae", 0.731) == "student float MAE 73.1 % above the teacher's"
    assert _relative("auroc", -0.05) == "student float auroc 5.0 % below the teacher's"


def test_the_stand_in_student_is_named_on_stdout_and_held_to_the_defaults_budget(spo2_runs):
    _, _, q_dir, q_out = spo2_runs
    m = json.loads((q_dir / "metrics.json").read_text())
    why = ("cnn1d_student_xs, not the default cnn1d_student_s: its total stride 32 does not divide the window's 1200 "
           "samples (30 s at 40 Hz)")
    assert m["student"]["name"] == "cnn1d_student_xs" and m["student_choice"] == why
    assert f"student: {why} (held to cnn1d_student_s's budget)" in q_out.splitlines()
    assert m["budget"]["of"] == "cnn1d_student_s"
    assert {k: v["limit"] for k, v in m["budget"]["checks"].items()} == {"int8_weights": 16_000, "macs": 1_000_000}
    report = (q_dir / "report.md").read_text()
    assert f"Student {why}; held to cnn1d_student_s's budget." in report
    assert "no budget registered for this student" not in report


def test_a_stand_in_over_the_defaults_budget_is_refused_and_an_asked_student_is_no_stand_in():
    teacher = get_model_cfg("cnn1d_student_s").replace(fs=120.0, window_s=30.0, channels=("ppg",),
                                                         outputs=("spo2",), units=("%",), task="spo2")
    assert stand_in(teacher)[0] == "cnn1d_student_s" and stand_in(teacher, "cnn1d_student_xs") is None
    scfg = student_cfg_from_teacher(teacher, "")                    # 3600 samples: xs, ~1.2 M MACs
    assert scfg.name == "cnn1d_student_xs"
    with pytest.raises(SqtoolError, match=r"does not fit the default cnn1d_student_s's budget: MACs per window"):
        check_budget(scfg, QuantizeConfig(), budget_of="cnn1d_student_s")
    assert check_budget(scfg, QuantizeConfig())["checks"] == {}      # asked for by name: no registered budget
    fits = get_model_cfg("cnn1d_student_s").replace(channels=("ppg",))   # 8 s at 40 Hz: the default fits
    assert stand_in(fits) is None


def test_skill_unit_is_maes_shared_unit_only():
    assert skill_unit("mae", ["%"]) == "%" and skill_unit("mae", ("mmHg", "mmHg")) == "mmHg"
    assert skill_unit("mae", ["bpm", "logit"]) == "BPM" and skill_unit("mae", ["a", "b"]) == ""
    assert skill_unit("auroc", ["logit"]) == "" and skill_unit("mae", None) == ""


def test_quantizes_skill_block_is_the_shared_block_per_model():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"s{i}" for i in range(6)], 10)
    y = rng.uniform(90, 100, (60, 1))
    preds = {"student_float": y + rng.normal(0, 1, y.shape), "student_int8": y + rng.normal(0, 2, y.shape)}
    c = (y + 0.5, "stand-in")
    sk = heldout_skill("rr", y + 1, y, groups, preds, n_boot=50, classic=c)
    triv = trivial_predictions("rr", y + 1, len(y))
    for k, p in preds.items():
        b = skill_block("rr", y, groups, p, triv, c, n_boot=50, few=FEW_SUBJECTS)     # held out: the rule
        assert sk["models"][k] == {key: b[key] for key in ("skill", "spread", "vs_classic")}
        assert (sk["trivial"], sk["classic"]["metrics"]) == (b["trivial"], b["classic"]["metrics"])
    b = skill_block("rr", y, groups, preds["student_int8"], triv, c, n_boot=50)
    assert (sk["flag"], sk["classic_flag"]) == (b["flag"], b["classic_flag"])
