"""quantize's held-out evaluation of a time-domain task puts the trivial predictor (fitted on the run's training
subjects only), the classic row, the spread of each model's predictions and its skill verdict beside the models, in
metrics.json, report.md and the command's last line (audit: an rr student that output one constant for every
recording read as '-44.9 % vs the teacher'); and `--task` defaults to the teacher's task."""
import json

import numpy as np
import pytest
import yaml

from sqtool.cli import main
from sqtool.compress.cli import QuantizeConfig, print_results, quantize
from sqtool.compress.report import heldout_skill
from sqtool.core import SqtoolError

from compress_fixtures import RR_TEACHER, make_teacher, synthetic_rr_task

HELD = ["syn004", "syn005"]
FAST = dict(epochs=1, qat_epochs=1, batch_size=32, heldout_subjects=HELD)


@pytest.fixture(scope="module")
def rr_task():
    return synthetic_rr_task()


@pytest.fixture(scope="module")
def rr_teacher(tmp_path_factory, rr_task):
    return make_teacher(tmp_path_factory.mktemp("rr_teacher") / "model.pt", rr_task, steps=20, **RR_TEACHER)


@pytest.fixture(scope="module")
def rr_run(tmp_path_factory, rr_teacher, rr_task):
    """An rr quantize run without --task: the teacher's task."""
    return quantize(QuantizeConfig(teacher=str(rr_teacher), out=str(tmp_path_factory.mktemp("q") / "rr"), **FAST),
                    data=rr_task)


def test_task_defaults_to_the_teachers(rr_run):
    m = json.loads((rr_run / "metrics.json").read_text())
    assert m["task"] == "rr" and m["primary_metric"] == "mae"
    assert yaml.safe_load((rr_run / "config.yaml").read_text())["config"]["task"] == "rr"   # what --resume reads


def test_another_task_is_refused_in_one_line(rr_teacher, rr_task, tmp_path, capsys):
    with pytest.raises(SqtoolError, match=r"fine-tuned for task 'rr', not 'hr' \(pass --task rr"):
        quantize(QuantizeConfig(teacher=str(rr_teacher), task="hr", out=str(tmp_path / "o"), **FAST), data=rr_task)
    assert not (tmp_path / "o").exists()
    assert main(["quantize", "--model", str(rr_teacher), "--task", "hr", "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fine-tuned for task 'rr', not 'hr'" in err
    with pytest.raises(SystemExit):
        main(["quantize", "--help"])
    assert "default: the teacher's own task" in " ".join(capsys.readouterr().out.split())


def test_the_trivial_predictor_is_the_training_subjects_mean(rr_run, rr_task):
    m = json.loads((rr_run / "metrics.json").read_text())
    held = np.isin(rr_task.groups, HELD)
    y_tr, y_te = rr_task.y[~held, 0], rr_task.y[held, 0]
    sk = m["skill"]
    assert sk["trivial"]["mae"] == pytest.approx(np.mean(np.abs(y_te - y_tr.mean())), rel=1e-6)
    assert sk["trivial_fit"]["windows"] == int((~held).sum())
    from sqtool.data.classic import classic_oof
    c, name = classic_oof("rr", rr_task, [(np.flatnonzero(~held), np.flatnonzero(held))])
    assert sk["classic"]["name"] == name and name.startswith("RIIV")           # the fine-tune's classic method
    assert sk["classic"]["metrics"]["mae"] == pytest.approx(np.mean(np.abs(c[held, 0] - y_te)), rel=1e-6)
    for k in ("teacher", "student_float", "student_int8"):
        t, sp = sk["models"][k]["skill"], sk["models"][k]["spread"]
        assert t["model"] == pytest.approx(m[k]["metrics"]["mae"], rel=1e-5)      # the same windows as the table
        assert t["reference"] == pytest.approx(sk["trivial"]["mae"])
        assert t["subjects"] == 2 and not t["skill"] and t["flag"] == "no skill"    # 2 subjects cannot show skill
        assert sp["target_std"][0] == pytest.approx(y_te.std(), rel=1e-5)
        assert sp["ratio"][0] == pytest.approx(sp["pred_std"][0] / sp["target_std"][0])
        assert sk["models"][k]["vs_classic"]["reference"] == pytest.approx(sk["classic"]["metrics"]["mae"])
    assert m["flag"] == "no skill"


def test_report_and_last_line_carry_the_verdict(rr_run, capsys):
    m = json.loads((rr_run / "metrics.json").read_text())
    report = (rr_run / "report.md").read_text()
    triv = m["skill"]["trivial"]["mae"]
    assert f"| trivial: the training subjects' mean ({m['train_windows']} windows) | {triv:.3f} |" in report
    classic = m["skill"]["classic"]
    assert f"| classic: {classic['name']} | {classic['metrics']['mae']:.3f} |" in report
    int8_row = next(r for r in report.splitlines() if r.startswith("| student int8 (fake-quant) |"))
    assert "**NO SKILL**" in int8_row
    print_results(rr_run, m)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith(f"rr: student int8 mae model {m['student_int8']['metrics']['mae']:.3f} breaths/min "
                              f"vs trivial {triv:.3f} breaths/min") and "NO SKILL" in out[-1]
    assert out[-4].startswith(f"rr: trivial mae {triv:.3f} breaths/min (fitted on {m['train_windows']} training "
                              f"windows); classic mae {classic['metrics']['mae']:.3f} breaths/min ({classic['name']}); "
                              "prediction std: "
                              "teacher float ")
    worse = m["skill"]["models"]["student_int8"]["vs_classic"]
    assert ("WORSE THAN THE CLASSIC METHOD" in out[-1]) == (worse["diff"] > 0)  # 2 subjects: flagged on the point


def test_heldout_skill_fits_the_trivial_predictor_on_training_targets_only():
    groups = np.repeat([f"s{i}" for i in range(6)], 4)
    y = np.full((24, 1), 20.0) + np.tile([[-1.0], [1.0]], (12, 1))            # held-out targets: 19 / 21
    exact, constant = y.copy(), np.full((24, 1), 20.0)
    sk = heldout_skill("rr", np.full((50, 1), 10.0), y, groups, {"student_int8": exact, "student_float": constant},
                       ("rr_bpm",), n_boot=200)
    assert sk["trivial"]["mae"] == pytest.approx(10.0)                        # the training mean, never 20
    assert sk["models"]["student_int8"]["skill"]["skill"] and sk["flag"] == ""
    flat = sk["models"]["student_float"]
    assert flat["spread"]["pred_std"] == [0.0] and flat["skill"]["skill"]      # a constant closer than the trivial one
    classic = heldout_skill("rr", np.full((50, 1), 10.0), y, groups, {"student_int8": exact}, ("rr_bpm",),
                            n_boot=200, classic=(y + 2.0, "stand-in"))["classic"]
    assert classic["name"] == "stand-in" and classic["metrics"]["mae"] == pytest.approx(2.0)


def test_held_out_quality_from_two_sources_is_judged_against_each_sources_base_rate():
    """A sweep's quality run: held-out windows of two sources (94 % / 8 % good) scored by a model that knows only
    the source read 'skill' against 0.5; the floor is each source's training base rate, as the fine-tune's."""
    rng = np.random.default_rng(0)
    src_tr = np.repeat(["mw_ppg", "troika"], 200)
    y_tr = np.concatenate([rng.random(200) < 0.94, rng.random(200) < 0.08]).astype(float)[:, None]
    src = np.repeat(["mw_ppg", "troika"], [60, 140])
    y = np.concatenate([rng.random(60) < 0.94, rng.random(140) < 0.08]).astype(float)[:, None]
    groups = np.concatenate([np.repeat([f"m{i}" for i in range(6)], 10), np.repeat([f"t{i}" for i in range(7)], 20)])
    knows_source = np.where(src == "mw_ppg", 2.0, -2.0)[:, None] + 0.01 * rng.standard_normal((200, 1))
    pooled = heldout_skill("quality", y_tr, y, groups, {"student_int8": knows_source}, ("p_good",), n_boot=200)
    assert pooled["trivial"]["auroc"] == pytest.approx(0.5) and pooled["flag"] == ""     # one constant: 'skill'
    sk = heldout_skill("quality", y_tr, y, groups, {"student_int8": knows_source}, ("p_good",), n_boot=200,
                       source_train=src_tr, source=src)
    assert sk["trivial"]["auroc"] > 0.8 and sk["flag"] == "no skill"
    assert "source" in sk["trivial_fit"]["on"]
