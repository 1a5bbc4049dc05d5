"""The time-domain chain holds its evaluation subjects out of the teacher, as the spectral one does: `train finetune`
(resnet1d, any task) leaves the held-out subjects (`data.heldout`'s rule) out of its folds and final fit and records
them; `sqtool quantize` evaluates on the teacher's recorded set by default, refuses one the teacher trained on, and
warns for a teacher that held none out or recorded nothing (tiny synthetic runs)."""
import json

import numpy as np
import pytest

import sqtool.train.finetune as FT
from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint, save_checkpoint

TINY = ["train", "finetune", "--task", "hr", "--model", "resnet1d_siamq_tiny", "--data", "synthetic", "--folds", "2",
        "--epochs", "1", "--batch-size", "16", "--max-records", "4", "--bootstrap", "20", "--progress", "false"]
QUANTIZE = ["quantize", "--epochs", "1", "--qat-epochs", "1", "--batch-size", "16", "--no-progress"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """(run folder, stdout, {fit: windows}) of a tiny time-domain hr teacher on 4 synthetic subjects: the last
    (0.2 x 4, rounded) held out, 3 in its folds and final fit."""
    import contextlib
    import io
    d, said, seen = tmp_path_factory.mktemp("td") / "teacher", io.StringIO(), {}
    real = FT._fit
    FT._fit = lambda m, x, *a, **kw: seen.setdefault(kw.get("desc"), len(x)) and real(m, x, *a, **kw)
    try:
        with contextlib.redirect_stdout(said):
            assert main(TINY + ["--out", str(d)]) == 0
    finally:
        FT._fit = real
    return d, said.getvalue(), seen


def test_the_fine_tune_leaves_its_held_out_subjects_out_of_every_fit_and_records_them(teacher):
    d, out, seen = teacher
    m = json.loads((d / "metrics.json").read_text())
    assert m["heldout_subjects"] == ["syn003"] and "--heldout-fraction" in m["heldout_rule"] and m["subjects"] == 3
    assert "syn003" not in {r["subject"] for r in m["per_subject"]}
    with np.load(d / "oof_predictions.npz") as z:
        assert "syn003" not in set(z["groups"].tolist()) and len(z["groups"]) == m["windows"]
    assert seen["hr final"] == m["windows"] and max(seen.values()) == m["windows"]   # training windows only
    assert load_checkpoint(d / "model.pt")["train_cfg"]["heldout_subjects"] == ["syn003"]
    assert [ln for ln in out.splitlines() if "held out" in ln] == [
        "held out of every fold and of model.pt (the last 0.2 of the sorted subjects (--heldout-fraction)): syn003; "
        "quantize evaluates on them, never trained on"]


def test_quantize_takes_the_teachers_held_out_subjects_and_says_they_are_held_out(teacher, tmp_path, capsys):
    from sqtool.export.kit import teacher_saw
    d = teacher[0]
    capsys.readouterr()
    assert main(QUANTIZE + ["--model", str(d), "--out", str(tmp_path / "q")]) == 0
    assert "WARNING" not in capsys.readouterr().out
    q = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert q["heldout_subjects"] == ["syn003"] and q["heldout_in_teacher"] is False and q["heldout_note"] is None
    assert q["teacher_heldout_subjects"] == ["syn003"]                              # no 'optimistic' teacher note
    assert not [w for w in q["warnings"] if not w.startswith("calibration set is small")]   # (the teacher's 4 records)
    assert q["teacher"]["out_of_fold"] is None            # the teacher's folds never predicted them: model.pt did
    assert teacher_saw(q) is None                         # the card: never in fine-tuning or quantization
    report = (tmp_path / "q" / "report.md").read_text()
    warned = [ln for ln in report.split("## Warnings")[-1].splitlines() if ln.startswith("- ")] \
        if "## Warnings" in report else []
    assert all("calibration set is small" in ln for ln in warned)                 # none of the held-out subjects
    assert "synthetic; held out of the teacher's fine-tuning too)" in report
    student = load_checkpoint(tmp_path / "q" / "model.pt")
    assert student["heldout_subjects"] == ["synthetic:syn003"] and "synthetic:syn003" not in student["train_subjects"]

    assert main(QUANTIZE + ["--model", str(d), "--heldout-subjects", "syn000", "--out", str(tmp_path / "r")]) == 1
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("sqtool: error:")]
    assert len(err) == 1 and "--heldout-subjects syn000: teacher" in err[0]    # (after quantize's per-item lines)
    assert "was fine-tuned on it (it held out syn003)" in err[0] and not (tmp_path / "r").exists()


def test_a_teacher_holding_none_out_or_an_older_one_is_said_to_have_trained_on_them(tmp_path, capsys):
    """--heldout-fraction 0: every subject in the teacher (said in its line), quantize holds out by the shared rule
    with a WARNING (heldout_in_teacher true); a teacher fine-tuned before the time-domain fine-tune held subjects
    out (its train_cfg: the options' defaults, no rule) 'may have' (null), as the spectral chain says."""
    all_in = tmp_path / "all_in"
    assert main(TINY + ["--heldout-fraction", "0", "--out", str(all_in)]) == 0
    assert "held out: none (--heldout-fraction 0: none)" in capsys.readouterr().out
    assert json.loads((all_in / "metrics.json").read_text())["subjects"] == 4
    assert main(QUANTIZE + ["--model", str(all_in), "--out", str(tmp_path / "q1")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("WARNING: teacher ") and "held no subject out (--heldout-fraction 0)" in out[0]
    q = json.loads((tmp_path / "q1" / "metrics.json").read_text())
    assert q["heldout_in_teacher"] is True and q["heldout_note"] in q["warnings"]
    assert "held out of the teacher's fine-tuning too" not in (tmp_path / "q1" / "report.md").read_text()
    assert q["heldout_subjects"] == ["syn003"]      # the rule on quantize's data, the teacher's --max-records 4

    old = tmp_path / "old"                              # a teacher from before: the options' defaults, no record
    old.mkdir()
    ck = load_checkpoint(all_in / "model.pt")
    tcfg = {**{k: v for k, v in ck["train_cfg"].items() if k != "heldout_rule"}, "heldout_subjects": [],
            "heldout_fraction": None}
    save_checkpoint(old / "model.pt", kind="teacher_task", model_cfg=ck["model_cfg"], state_dict=ck["state_dict"],
                    train_cfg=tcfg)
    assert main(QUANTIZE + ["--model", str(old), "--out", str(tmp_path / "q2")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("WARNING: teacher ") and "recorded no held-out subjects" in out[0]
    q = json.loads((tmp_path / "q2" / "metrics.json").read_text())
    assert q["heldout_in_teacher"] is None and q["heldout_note"] in q["warnings"]


def test_hold_out_takes_the_files_split_read_with_the_task_data(monkeypatch):
    """A dataset file's test subjects come with the task data (`split_test`, from the recordings its loader read):
    the fine-tune does not read every recording of the file a second time to learn them."""
    from types import SimpleNamespace as NS

    from sqtool.data.tasks import TaskData
    g = np.repeat([f"s0{i}" for i in range(1, 5)], 3)
    td = TaskData(np.zeros((12, 1, 4), np.float32), np.zeros((12, 1), np.float32), g, np.zeros(12), g, "hr",
                  {"split_test": ["s04"]})
    monkeypatch.setattr("sqtool.data.dataset_tasks.dataset_of",
                        lambda data: pytest.fail(f"{data} read again for its split"))
    kept, held, how = FT.hold_out(NS(heldout_subjects=[], heldout_fraction=None), td, "my_watch/dataset.yaml")
    assert held == ["s04"] and "split" in how and sorted(kept.subjects) == ["s01", "s02", "s03"]


def test_a_time_domain_final_fit_trains_on_every_subject_and_quotes_its_estimate(teacher, tmp_path, capsys):
    """`quantize --heldout-fraction 0 --estimate-from RUN` for a time-domain student, as for a spectral one: every
    subject in the student, no held-out figure of its own, RUN's held-out figures as its stated estimate, parity.npz
    for export; a teacher that held subjects out, or an estimate run whose own teacher saw them, is one line."""
    d = teacher[0]
    assert main(QUANTIZE + ["--model", str(d), "--out", str(tmp_path / "q_eval")]) == 0
    all_in = tmp_path / "all_in"
    assert main(TINY + ["--heldout-fraction", "0", "--out", str(all_in)]) == 0
    capsys.readouterr()
    q = tmp_path / "q_all"
    assert main(QUANTIZE + ["--model", str(all_in), "--heldout-fraction", "0", "--estimate-from",
                            str(tmp_path / "q_eval"), "--out", str(q)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    ev = json.loads((tmp_path / "q_eval" / "metrics.json").read_text())
    m = json.loads((q / "metrics.json").read_text())
    assert m["final_fit"] and m["heldout_subjects"] == [] and len(m["train_subjects"]) == 4   # the teacher's 4
    assert m["estimate"]["metrics"]["student_int8"]["metrics"] == ev["student_int8"]["metrics"]
    mae = ev["student_int8"]["metrics"]["mae"]
    assert out[-3].startswith("final fit on every subject (4): no held-out figure; held-out estimate (from ")
    flag = f" ({ev['flag'].upper()} in that run)" if ev.get("flag") else ""     # the estimate run's verdict, carried
    assert f"| int8 MAE {mae:.2f} BPM{flag} -> {q}" in out[-3]
    assert load_checkpoint(q / "model.pt")["heldout_subjects"] == [] and (q / "parity.npz").is_file()
    assert "measured on that run's models, not on this one" in (q / "report.md").read_text()
    assert main(["export", "--model", str(q), "--target", "onnx", "--out", str(tmp_path / "e")]) == 0
    assert "parity windows: parity.npz" in capsys.readouterr().out
    card = (tmp_path / "e" / "MODEL_CARD.md").read_text()      # the shipped card quotes the estimate, said to be one
    assert "## Held-out estimate (the same recipe, run with subjects held out)" in card
    assert "quantize run `q_eval`" in card and f" {mae:.3f} " in card and "(that run's; this model's recipe)" in card
    assert "`parity.npz` here holds input windows" in (tmp_path / "e" / "INTEGRATION.md").read_text()

    for model, est, says in ((d, None, "held out syn003; fine-tune it on every subject too"),
                             (all_in, q, "not a time-domain hr quantize run with held-out subjects")):
        args = QUANTIZE + ["--model", str(model), "--heldout-fraction", "0", "--out", str(tmp_path / "no")]
        assert main(args + (["--estimate-from", str(est)] if est else [])) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err
        assert not (tmp_path / "no").exists()


def test_held_out_subjects_whose_ppg_the_init_was_pretrained_on_are_not_called_never_trained_on(tmp_path, capsys):
    """Pairs mined from every subject (syn003 too), an encoder pretrained on them, a fine-tune from it holding syn003
    out: the line said 'never trained on' where the encoder had syn003's unlabelled PPG; it now says held out of
    supervised training only, naming the subject, and how to mine pairs without it."""
    pairs, pt = tmp_path / "pairs", tmp_path / "pt"
    assert main(["data", "pairs", "--data", "synthetic", "--synthetic-subjects", "4", "--workers", "1",
                 "--no-progress", "--out", str(pairs)]) == 0
    assert "synthetic/syn003" in json.loads((pairs / "index.json").read_text())["subjects"]
    assert main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--pairs", str(pairs), "--epochs", "1",
                 "--batch-size", "8", "--val-fraction", "0", "--progress", "false", "--out", str(pt)]) == 0
    capsys.readouterr()
    assert main(TINY + ["--init", str(pt), "--out", str(tmp_path / "ft")]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("held out")]
    assert line == ["held out of every fold and of model.pt (the last 0.2 of the sorted subjects (--heldout-fraction)): "
                    "syn003; quantize evaluates on them, held out of supervised training only: the --init encoder's "
                    "self-supervised pretraining had the unlabelled PPG of syn003 (mine pairs without them: `data "
                    "pairs` leaves out a dataset file's split.test; --exclude-subjects names others)"]
