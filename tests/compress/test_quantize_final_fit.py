"""A final fit for shipping (`sqtool quantize --heldout-fraction 0 --estimate-from RUN`): the spectral student trains on
every subject, measures no held-out figure of its own, and carries the held-out figures of the run of the same recipe
that held subjects out as an estimate, said to be one in its report, its last line and the export's model card.
Options that would make the estimate another model's are refused in one line before any folder is made (tiny
synthetic runs)."""
import json

import pytest

from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint

FINETUNE = ["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic", "--folds", "2",
            "--epochs", "1", "--max-records", "4", "--progress", "false"]
QUANTIZE = ["quantize", "--student", "spec_student_xs", "--data", "synthetic", "--epochs", "1", "--qat-epochs", "1",
            "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A teacher holding the last subject out (eval_teacher) and its quantize run (eval); teachers fine-tuned on every
    subject (--heldout-fraction 0) for 1 epoch (all_teacher) and for 2 (all_teacher_2ep: another recipe); a quantize
    run of all_teacher (leaky: its held-out subjects were in its teacher)."""
    d = tmp_path_factory.mktemp("final")
    assert main(FINETUNE + ["--out", str(d / "t_eval")]) == 0
    assert main(FINETUNE + ["--heldout-fraction", "0", "--out", str(d / "t_all")]) == 0
    assert main(QUANTIZE + ["--model", str(d / "t_eval"), "--out", str(d / "q_eval")]) == 0
    assert main([*FINETUNE[:FINETUNE.index("--epochs") + 1], "2", *FINETUNE[FINETUNE.index("--epochs") + 2:],
                 "--heldout-fraction", "0", "--out", str(d / "t_all_2ep")]) == 0
    assert main(QUANTIZE + ["--model", str(d / "t_all"), "--out", str(d / "q_leaky")]) == 0   # its teacher saw them
    return {"eval_teacher": d / "t_eval", "all_teacher": d / "t_all", "eval": d / "q_eval",
            "all_teacher_2ep": d / "t_all_2ep", "leaky": d / "q_leaky"}


def test_a_final_fit_trains_on_every_subject_and_quotes_its_estimate(runs, tmp_path, capsys):
    capsys.readouterr()
    q = tmp_path / "q_all"
    assert main(QUANTIZE + ["--model", str(runs["all_teacher"]), "--heldout-fraction", "0",
                            "--estimate-from", str(runs["eval"]), "--out", str(q)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    ev = json.loads((runs["eval"] / "metrics.json").read_text())
    e = ev["mae_bpm"]
    assert out[-3] == (f"final fit on every subject (4): no held-out figure; held-out estimate (from "
                       f"{runs['eval'].resolve()}): teacher {e['teacher']:.2f}, float {e['float']:.2f}, int8 "
                       f"{e['int8']:.2f} BPM -> {q}")
    ck = load_checkpoint(q / "model.pt")
    keys = [f"synthetic:syn00{i}" for i in range(4)]
    assert ck["heldout_subjects"] == [] and ck["train_subjects"] == keys
    m = json.loads((q / "metrics.json").read_text())
    assert m["final_fit"] is True and m["mae_bpm"] is None and m["heldout_subjects"] == []
    assert m["estimate"]["metrics"]["mae_bpm"] == e and m["estimate"]["metrics"]["heldout_subjects"] == ["synthetic:syn003"]
    assert m["heldout_note"] is None and not (q / "heldout.npz").exists()      # no held-out window to write
    import numpy as np
    with np.load(q / "parity.npz") as z:                   # export's parity windows: training ones, no subject ids
        assert sorted(z.files) == ["x", "y"] and len(z["x"]) == len(z["y"]) > 0
    report = (q / "report.md").read_text()
    assert "a final fit" in report and f"int8 decoded MAE **{e['int8']:.2f} BPM**" in report
    assert "measured on that run's models, not on this one" in report

    assert main(["export", "--model", str(q), "--target", "onnx", "--out", str(tmp_path / "e")]) == 0
    assert "parity windows: parity.npz, training windows of the run (a final fit holds no subject out" in capsys.readouterr().out
    rep = json.loads((tmp_path / "e" / "export_report.json").read_text())
    assert any(r.get("mae_bpm") is not None for r in rep["rows"])           # parity on windows with a truth
    card = (tmp_path / "e" / "MODEL_CARD.md").read_text()
    assert "- trained on 4 subjects, every subject (a final fit" in card
    assert "## Held-out estimate (the same recipe, run with subjects held out)" in card
    assert "an estimate of this model's error on new subjects, not a measurement of it" in card
    assert f"int8 (that run's student, this model's recipe), decoded: MAE {e['int8']:.2f} BPM" in card
    assert "the shipped model" not in card and "## Held-out metrics" not in card and "see Held-out metrics" not in card
    assert "measured by the quantize run `q_eval` (its folder name" in card and str(runs["eval"]) not in card


def test_a_final_fit_without_an_estimate_says_it_measured_none(runs, tmp_path, capsys):
    q = tmp_path / "q"
    capsys.readouterr()
    assert main(QUANTIZE + ["--model", str(runs["all_teacher"]), "--heldout-fraction", "0", "--out", str(q)]) == 0
    assert "quote the held-out figures of this recipe's run that held subjects out (--estimate-from RUN)" in \
        capsys.readouterr().out
    assert "No held-out estimate given" in (q / "report.md").read_text()


@pytest.mark.parametrize("extra, says", [
    (["--estimate-from", "EVAL"], "--estimate-from goes with --heldout-fraction 0"),
    (["--heldout-fraction", "0", "--estimate-from", "EVAL", "--qat-epochs", "2"],
     "another recipe (qat_epochs 1 there, 2 here)"),
    (["--heldout-fraction", "0", "--estimate-from", "TEACHER"], "not a spectral heart-rate quantize run"),
    (["--heldout-fraction", "0", "--estimate-from", "NOWHERE"], "not a quantize run folder"),
    (["--heldout-fraction", "0", "--heldout-subjects", "syn000"], "give it without --heldout-subjects"),
    (["--heldout-fraction", "0", "--estimate-from", "EVAL", "--calibrate-on", "synthetic"],
     "the --estimate-from run calibrated on every training subject"),
    (["--heldout-fraction", "0", "--estimate-from", "LEAKY"], "were not held out of its teacher's fine-tuning too"),
    (["--heldout-fraction", "0", "--estimate-from", "OTHER_TEACHER"], "another recipe (teacher epochs 1 there, 2 here)"),
    (["--heldout-fraction", "0", "--max-records", "3", "--estimate-from", "EVAL"], "another recipe (max_records 4 "
                                                                                  "there, 3 here"),
])
def test_options_that_would_estimate_another_model_are_one_line(runs, tmp_path, capsys, extra, says):
    where = {"EVAL": str(runs["eval"]), "TEACHER": str(runs["eval_teacher"]), "NOWHERE": str(tmp_path / "nowhere"),
             "LEAKY": str(runs["leaky"]), "OTHER_TEACHER": str(runs["eval"])}
    teacher = runs["all_teacher_2ep"] if "OTHER_TEACHER" in extra else runs["all_teacher"]
    extra = [where.get(a, a) for a in extra]
    capsys.readouterr()
    assert main(QUANTIZE + ["--model", str(teacher), *extra, "--out", str(tmp_path / "q")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert not (tmp_path / "q").exists()


def test_a_final_fit_of_a_teacher_that_held_subjects_out_is_one_line(runs, tmp_path, capsys):
    """--heldout-fraction 0 on a teacher that held subjects out would train the student on subjects its teacher never
    saw and call the model a fit on every subject: refused, naming the fine-tune to run."""
    capsys.readouterr()
    assert main(QUANTIZE + ["--model", str(runs["eval_teacher"]), "--heldout-fraction", "0", "--out",
                            str(tmp_path / "q")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "held out synthetic:syn003; fine-tune it on every subject too" in err[0], err
    assert not (tmp_path / "q").exists()


def test_options_given_at_their_defaults_are_the_same_recipe(runs, tmp_path):
    """--alpha 0.5 and --epochs 1 spelled out where the estimate run took them by default (or the reverse) are one
    recipe: accepted."""
    q = tmp_path / "q"
    assert main(QUANTIZE + ["--model", str(runs["all_teacher"]), "--heldout-fraction", "0", "--alpha", "0.5",
                            "--inner-epochs", "1", "--estimate-from", str(runs["eval"]), "--out", str(q)]) == 0
    assert json.loads((q / "metrics.json").read_text())["estimate"]["run"] == str(runs["eval"].resolve())


def test_the_recipe_check_resolves_each_kinds_own_defaults():
    """final_fit resolves --epochs 0 / --alpha None to each quantize path's own defaults (kept beside them)."""
    from sqtool.compress import final_fit as F
    from sqtool.compress.cli import TIME_KD
    from sqtool.compress.quantize_hr import SPEC_EPOCHS, SPEC_KD
    assert F.SPEC_DEFAULTS == {"epochs": SPEC_EPOCHS, "alpha": SPEC_KD}
    assert F.TIME_DEFAULTS == {"epochs": 20, "alpha": TIME_KD}
    assert F._resolved({"epochs": 0, "alpha": None}, F.TIME_DEFAULTS)["alpha"] == TIME_KD


def test_an_estimate_that_is_not_a_measure_of_skill_is_one_line(tmp_path):
    """A time-domain estimate run whose held-out windows hold one class (its figures flagged NOT A MEASURE OF
    SKILL) is refused, naming why, before anything else is compared."""
    from types import SimpleNamespace as NS

    from sqtool.compress.final_fit import load_estimate
    from sqtool.core import SqtoolError
    run = tmp_path / "q_eval"
    run.mkdir()
    (run / "config.yaml").write_text("config: {epochs: 1}\n")
    (run / "metrics.json").write_text(json.dumps({
        "task": "af", "primary_metric": "f1", "heldout_subjects": ["p01"], "heldout_in_teacher": False,
        "heldout_one_class": "the held-out windows hold one class only (0 of 12 AF)", "student_int8": {"metrics": {}}}))
    with pytest.raises(SqtoolError, match=r"not a measure of skill \(the held-out windows hold one class only"):
        load_estimate(NS(estimate_from=str(run), task="af"), "cnn1d_student_s", {}, spectral=False)
