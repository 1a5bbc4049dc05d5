"""quantize's live training log RUN/log.csv (core.trainlog, fine-tune's columns): a row per epoch of each student it
trains (fit: "distill" the float student, "qat" its int8 twin, a spectral student's decoder students "inner k distill"
/ "calibration k distill"); a run killed in QAT and resumed logs as an uninterrupted run (the QAT rows of the killed
try dropped, the reused students' kept); --tensorboard writes each fit's scalars into RUN/tb/<fit>."""
import dataclasses
import json
import sys
from pathlib import Path

import pytest

import sqtool.compress.distill as D
import sqtool.compress.hr_qat as HQ
import sqtool.models.hr_bins as HB
from sqtool.cli import main
from sqtool.compress.cli import QuantizeConfig, quantize
from sqtool.core.trainlog import FINETUNE_COLUMNS, LOG_FILE, read_log

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from test_trainlog import kill_after_rows, log_rows  # noqa: E402


def test_time_domain_quantize_logs_each_epoch_and_a_resume_redoes_the_qat_rows(hr_teacher, hr_task, tmp_path,
                                                                                monkeypatch):
    cfg = QuantizeConfig(teacher=str(hr_teacher), out=str(tmp_path / "full"), epochs=2, qat_epochs=2,
                         batch_size=32, heldout_subjects=["syn005"])
    full = quantize(cfg, data=hr_task)
    assert (full / LOG_FILE).read_text().splitlines()[0] == ",".join(FINETUNE_COLUMNS)
    rows = read_log(full / LOG_FILE)
    assert [(r["fit"], r["epoch"]) for r in rows] == [("distill", "1"), ("distill", "2"), ("qat", "1"), ("qat", "2")]
    m = json.loads((full / "metrics.json").read_text())
    hist = m["student_float"]["history"] + m["student_int8"]["history"]
    assert [float(r["loss"]) for r in rows] == [h["loss"] for h in hist] and all(float(r["lr"]) > 0 for r in rows)
    assert all(r["val_loss"] == r["val_metric"] == r["metric"] == "" for r in rows)   # no held-out part: fits on all

    kill_after_rows(monkeypatch, D, 3)               # QAT's first epoch logged, then a kill mid-QAT
    run = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        quantize(dataclasses.replace(cfg, out=str(run)), data=hr_task)
    assert [r["fit"] for r in read_log(run / LOG_FILE)] == ["distill", "distill", "qat"]
    monkeypatch.undo()
    quantize(dataclasses.replace(cfg, out=str(run)), data=hr_task, resume_dir=run)
    assert log_rows(run) == log_rows(full)           # the float student's rows kept, QAT's once


def _args(teacher, out):
    return ["quantize", "--model", str(teacher), "--student", "spec_student_xs", "--data", "synthetic",
            "--epochs", "1", "--qat-epochs", "2", "--no-progress", "--out", str(out)]


def test_spectral_quantize_logs_its_decoder_students_and_a_resume_redoes_the_qat_rows(spectral_teacher, tmp_path,
                                                                                      monkeypatch):
    pytest.importorskip("torch.utils.tensorboard")
    assert main(_args(spectral_teacher, tmp_path / "full") + ["--tensorboard"]) == 0
    fits = [(r["fit"], r["epoch"]) for r in read_log(tmp_path / "full" / LOG_FILE)]
    inner = sorted({f for f, _ in fits if f.startswith("inner ")})
    assert inner and fits == [(f, "1") for f in inner] + [("distill", "1"), ("qat", "1"), ("qat", "2")]
    assert {p.name for p in (tmp_path / "full" / "tb").iterdir()} == {
        f.replace(" ", "_") for f, _ in fits}        # a TensorBoard run per fit
    rows = read_log(tmp_path / "full" / LOG_FILE)    # an inner student's held-out subjects scored after each epoch
    assert all(r["metric"] == "argmax_mae_bpm" and float(r["val_loss"]) > 0 and float(r["val_metric"]) >= 0
               for r in rows if r["fit"].startswith("inner "))
    assert all(r["val_loss"] == r["metric"] == "" for r in rows if not r["fit"].startswith("inner "))

    real = HQ.train_bins

    def qat_killed_after_one_epoch(*a, **kw):        # QAT's first epoch logged, then a kill
        def log(ep, loss, lr):
            a[-1](ep, loss, lr)
            raise KeyboardInterrupt
        return real(*a[:-1], log)
    monkeypatch.setattr(HQ, "train_bins", qat_killed_after_one_epoch)
    run = tmp_path / "killed"
    assert main(_args(spectral_teacher, run)) == 130
    assert read_log(run / LOG_FILE)[-1]["fit"] == "qat"
    monkeypatch.undo()
    assert main(["quantize", "--resume", str(run), "--no-progress"]) == 0
    assert log_rows(run) == log_rows(tmp_path / "full")


def test_force_into_an_earlier_quantize_run_starts_a_new_log(hr_teacher, hr_task, tmp_path):
    cfg = QuantizeConfig(teacher=str(hr_teacher), out=str(tmp_path / "run"), epochs=1, qat_epochs=1,
                         batch_size=32, heldout_subjects=["syn005"])
    quantize(cfg, data=hr_task)
    quantize(dataclasses.replace(cfg, force=True, qat_epochs=0), data=hr_task)
    assert [r["fit"] for r in read_log(tmp_path / "run" / LOG_FILE)] == ["distill"]


@pytest.fixture(scope="module")
def teacher_of_3(tmp_path_factory):
    """A spectral teacher of 3 training subjects (4 synthetic records, one held out): room for 2 or 3 inner folds."""
    d = tmp_path_factory.mktemp("ft3") / "teacher"
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic", "--folds",
                 "2", "--epochs", "1", "--max-records", "4", "--progress", "false", "--out", str(d)]) == 0
    return d


def test_a_resume_with_fewer_inner_folds_drops_the_earlier_trys_other_inner_students_rows(teacher_of_3, tmp_path,
                                                                                        monkeypatch):
    """Killed with --inner-folds 3 once its decoder students were trained, resumed with --inner-folds 2: the log is
    an uninterrupted --inner-folds 2 run's (before: the killed try's "inner 3 distill" rows stayed beside them)."""
    def args(out, inner):
        return ["quantize", "--model", str(teacher_of_3), "--student", "spec_student_xs", "--data", "synthetic",
                "--epochs", "1", "--qat-epochs", "1", "--inner-folds", inner, "--no-progress", "--out", str(out)]
    assert main(args(tmp_path / "whole", "2")) == 0
    assert sorted({r["fit"] for r in read_log(tmp_path / "whole" / LOG_FILE)}) == [
        "distill", "inner 1 distill", "inner 2 distill", "qat"]

    real, calls = HB.train_bins, []

    def killed_at_the_float_student(*a, **kw):      # the 3 inner students trained, then a kill
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a, **kw)
    monkeypatch.setattr(HB, "train_bins", killed_at_the_float_student)
    run = tmp_path / "killed"
    assert main(args(run, "3")) == 130
    assert "inner 3 distill" in {r["fit"] for r in read_log(run / LOG_FILE)}
    monkeypatch.undo()
    assert main(["quantize", "--resume", str(run), "--inner-folds", "2", "--no-progress"]) == 0
    assert log_rows(run) == log_rows(tmp_path / "whole")
