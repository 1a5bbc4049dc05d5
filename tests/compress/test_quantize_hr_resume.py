"""`sqtool quantize --resume RUN` for spectral students: killed during QAT, the run reuses its student_float.pt
(no float training), redoes calibration + QAT and ends with the same model.pt, bit for bit, as an uninterrupted
run; a student_float.pt made with another config is refused."""
import json

import pytest
import torch

import sqtool.compress.hr_qat as HQ
import sqtool.models.hr_bins as HB
from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint


def _args(teacher, out):
    return ["quantize", "--model", str(teacher), "--student", "spec_student_xs", "--data", "synthetic",
            "--epochs", "1", "--qat-epochs", "1", "--no-progress", "--out", str(out)]


def _count_float_training(monkeypatch) -> list:
    calls, real = [], HB.train_bins

    def train(*a, **kw):
        calls.append(1)
        return real(*a, **kw)
    monkeypatch.setattr(HB, "train_bins", train)                     # QAT calls hr_qat's own reference
    return calls


def _results_on_stdout(capsys, run) -> None:
    """stdout carries the results: the held-out line, `report:` and `next:`; stderr none of them."""
    io = capsys.readouterr()
    out = io.out.strip().splitlines()
    assert out[-3].startswith("held-out MAE (mean of subjects): teacher ") and out[-3].endswith(f" -> {run}"), out
    assert out[-3].split(" -> ")[0].endswith(("BPM", "held-out subjects)", "held-out subject)")), out   # a flag last
    assert out[-2:] == [f"report: {run / 'report.md'}", f"next: sqtool export --model {run} --target onnx,tflite,c"]
    assert "next:" not in io.err and "held-out MAE" not in io.err


def test_spectral_quantize_resumes_after_float_training_bit_exact(spectral_teacher, tmp_path, monkeypatch, capsys):
    capsys.readouterr()
    assert main([a for a in _args(spectral_teacher, tmp_path / "full") if a != "--no-progress"]) == 0   # lines on
    _results_on_stdout(capsys, tmp_path / "full")
    m = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert m["recorded_rates"]["ppg"] == m["device_fs"] == 125.0        # synthetic at 125 Hz: no --device-fs said

    real_qat = HQ.qat_bins

    def killed(*a, **kw):
        raise KeyboardInterrupt                                      # Ctrl-C / a kill during QAT
    monkeypatch.setattr(HQ, "qat_bins", killed)
    run = tmp_path / "killed"
    assert main(_args(spectral_teacher, run)) == 130
    assert (run / "student_float.pt").is_file() and not (run / "model.pt").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"sqtool: interrupted; continue with: sqtool quantize --resume {run}"
    assert main(_args(spectral_teacher, run)) == 1                       # the same --out again: told to resume it
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"continue it with `sqtool quantize --resume {run}`, or use --force" in err[0]
    monkeypatch.setattr(HQ, "qat_bins", real_qat)

    calls = _count_float_training(monkeypatch)
    assert main(["quantize", "--resume", str(run), "--no-progress"]) == 0
    assert calls == []                                               # the float student was reused
    _results_on_stdout(capsys, run)
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert a["float_reused"] is False and b["float_reused"] is True
    assert a["mae_bpm"] == b["mae_bpm"] and a["per_subject"] == b["per_subject"]
    for name in ("model.pt", "student_float.pt"):
        sa = load_checkpoint(tmp_path / "full" / name)["state_dict"]
        sb = load_checkpoint(run / name)["state_dict"]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name

    capsys.readouterr()                                              # another float config: refused, not reused
    assert main(["quantize", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "changed config (epochs: 1 -> 2)" in err[0] and "--qat-epochs" in err[0], err


def test_quantize_resume_needs_a_quantize_run(tmp_path, capsys):
    assert main(["quantize", "--resume", str(tmp_path / "nope")]) == 1
    assert "cannot resume" in capsys.readouterr().err


def test_quantize_refuses_an_unknown_calibration_students_value_in_one_line(spectral_teacher, tmp_path, capsys):
    assert main(_args(spectral_teacher, tmp_path / "q") + ["--calibration-students", "everyone"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sqtool: error: --calibration-students must be one of subjects, inner, got 'everyone'"]


def test_a_kill_while_choosing_the_decoder_keeps_the_finished_students(spectral_teacher, tmp_path, monkeypatch):
    """Killed after the decoder's inner students were trained: --resume reads their saved logits back (no inner
    training again) and chooses the same decoder as an uninterrupted run."""
    assert main(_args(spectral_teacher, tmp_path / "full")) == 0
    real_select = HB.select_decoder

    def killed(*a, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(HB, "select_decoder", killed)
    run = tmp_path / "killed"
    assert main(_args(spectral_teacher, run)) == 130
    saved = sorted((run / "decoder_inner").glob("fold_*.npz"))
    assert saved and not (run / "decoder.json").exists()
    monkeypatch.setattr(HB, "select_decoder", real_select)

    calls = _count_float_training(monkeypatch)
    assert main(["quantize", "--resume", str(run), "--no-progress"]) == 0
    assert len(calls) == 1                                           # the float student only: no inner student
    a = json.loads((tmp_path / "full" / "decoder.json").read_text())
    b = json.loads((run / "decoder.json").read_text())
    assert a == b


def test_the_library_entry_returns_the_run_dir_and_the_run_entry_its_metrics_too(spectral_teacher, tmp_path):
    """quantize_hr(cfg, ck) returns the run dir, as compress.cli.quantize; quantize_hr_run the run dir and the
    metrics it wrote (as quantize_run)."""
    from pathlib import Path

    from sqtool.compress.cli import QuantizeConfig
    from sqtool.compress.quantize_hr import quantize_hr, quantize_hr_run
    cfg = QuantizeConfig(teacher=str(spectral_teacher), student="spec_student_xs", data_root="synthetic", epochs=1,
                         qat_epochs=1, inner_epochs=1, decoder_on="teacher", out=str(tmp_path / "a"))
    ck = load_checkpoint(spectral_teacher, expect_kind="teacher_task")
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        run = quantize_hr(cfg, ck)
        assert torch.get_num_threads() == 3                 # the caller's count back (it stayed at cfg.threads)
    finally:
        torch.set_num_threads(before)
    assert isinstance(run, Path) and run == tmp_path / "a" and (run / "model.pt").is_file()
    run_b, metrics = quantize_hr_run(QuantizeConfig(**{**cfg.__dict__, "out": str(tmp_path / "b")}), ck)
    saved = json.loads((run_b / "metrics.json").read_text())
    assert run_b == tmp_path / "b" and set(metrics) == set(saved) and metrics["student"] == saved["student"]


def test_a_spectral_teachers_student_defaults_to_spec_student_s_and_refuses_a_time_domain_one(
        spectral_teacher, tmp_path, capsys):
    """An explicit --student cnn1d_student_s is refused (it was silently replaced by spec_student_s, the spectral
    default, while config.yaml said cnn1d_student_s); no --student is spec_student_s, which config.yaml resolves."""
    import yaml
    assert main(["quantize", "--model", str(spectral_teacher), "--student", "cnn1d_student_s", "--data", "synthetic",
                 "--no-progress", "--out", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        "is a spectral heart-rate model: --student cnn1d_student_s (cnn1d_student) is not a student for it, a "
        "spec_cnn model is; students that fit it: spec_student_s, spec_student_xs (default spec_student_s)"), err
    assert not (tmp_path / "bad").exists()
    run = tmp_path / "q"
    assert main([a for a in _args(spectral_teacher, run) if a not in ("--student", "spec_student_xs")]) == 0
    c = yaml.safe_load((run / "config.yaml").read_text())
    assert c["config"]["student"] == "" and c["resolved"]["student"] == "spec_student_s"
    assert load_checkpoint(run / "model.pt")["model_cfg"]["name"] == "spec_student_s"


def test_a_summed_accelerometer_teachers_default_student_reads_its_channels(tmp_path, capsys):
    """A teacher reading (ppg, acc) with no --student: quantize distils into spec_student_s_accsum (spec_student_s
    reads four channels and was refused: 'differ in channels'), fine-tune's next line names no student that cannot
    read it, and the students listed as fitting a spectral teacher are students (the registry's role), never
    spec_teacher_m."""
    import yaml

    from sqtool.compress.distill import fitting_students
    from sqtool.models import get_model_cfg, list_models
    teacher = tmp_path / "t"
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs_accsum", "--data", "synthetic",
                 "--folds", "2", "--epochs", "1", "--max-records", "3", "--no-progress", "--out", str(teacher)]) == 0
    assert f"next: sqtool quantize --model {teacher}\n" in capsys.readouterr().out
    run = tmp_path / "q"
    assert main(["quantize", "--model", str(teacher), "--data", "synthetic", "--epochs", "1", "--qat-epochs", "1",
                 "--no-progress", "--out", str(run)]) == 0, capsys.readouterr().err
    c = yaml.safe_load((run / "config.yaml").read_text())
    assert c["config"]["student"] == "" and c["resolved"]["student"] == "spec_student_s_accsum"
    assert load_checkpoint(run / "model.pt")["model_cfg"]["channels"] == ["ppg", "acc"]
    assert fitting_students(get_model_cfg("spec_teacher_m")) == ["spec_student_s", "spec_student_xs"]
    assert fitting_students(get_model_cfg("spec_teacher_m_accsum")) == ["spec_student_s_accsum", "spec_student_xs_accsum"]
    assert set(list_models(role="teacher")) | set(list_models(role="student")) == set(list_models())   # all stated


def test_a_torn_teacher_oof_logits_is_one_line_naming_it(spectral_teacher, tmp_path, capsys):
    """A truncated oof_logits.npz in the teacher's run (a copy cut short, a full disk) is one line naming the file
    and the command that writes it again, not 'BadZipFile: File is not a zip file'; no quantize folder is left."""
    import shutil
    teacher = tmp_path / "teacher run"
    shutil.copytree(spectral_teacher, teacher)
    oof = teacher / "oof_logits.npz"
    oof.write_bytes(oof.read_bytes()[:oof.stat().st_size // 2])
    capsys.readouterr()
    assert main(_args(teacher, tmp_path / "q")) == 1
    err = capsys.readouterr().err.splitlines()                  # (--no-progress keeps the per-item lines)
    assert [ln for ln in err if ln.startswith("sqtool: error:")] == [err[-1]]
    assert err[-1] == (f"sqtool: error: {oof} is corrupt or not an .npz archive (BadZipFile): write it again with "
                       f"`sqtool train finetune --resume '{teacher}'`")
    assert not (tmp_path / "q").exists()


def test_quantize_on_a_killed_finetune_says_it_is_unfinished(spectral_teacher, tmp_path, capsys):
    """A fine-tune killed after its folds (oof_logits.npz there, no model.pt, no metrics.json): quantize says that
    run did not finish and how to continue it, not 'checkpoint .../model.pt not found'."""
    import shutil
    teacher = tmp_path / "killed ft"
    shutil.copytree(spectral_teacher, teacher)
    (teacher / "model.pt").unlink()
    (teacher / "metrics.json").unlink()
    capsys.readouterr()
    assert main(_args(teacher, tmp_path / "q")) == 1
    assert capsys.readouterr().err == (f"sqtool: error: {teacher} has no model.pt: an unfinished `sqtool train finetune` "
                                       f"run (killed?): continue it with `sqtool train finetune --resume '{teacher}'`\n")
    assert not (tmp_path / "q").exists()


def test_a_resume_refused_for_another_teacher_writes_nothing(tmp_path, monkeypatch, capsys):
    """Killed during QAT, its teacher then fine-tuned again into the same folder: `quantize --resume` trained the
    decoder's inner students again and rewrote config.yaml, decoder_inner/ and decoder.json, and only then said
    'student_float.pt was made with another config, teacher or data'; the folder mixed two teachers' files. The
    check comes first now: one line, and every file of the run as it was."""
    teacher = tmp_path / "teacher"
    ft = ["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic", "--folds", "2",
          "--max-records", "3", "--out", str(teacher)]
    assert main(ft + ["--epochs", "1"]) == 0
    monkeypatch.setattr(HQ, "qat_bins", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    run = tmp_path / "q"
    assert main(_args(teacher, run)) == 130 and (run / "student_float.pt").is_file()
    monkeypatch.undo()
    assert main(ft + ["--epochs", "2", "--force"]) == 0                      # another teacher, same folder
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["quantize", "--resume", str(run), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (f"student_float.pt was made with other inputs: its teacher {teacher / 'model.pt'} was rewritten since it "
            "started (sha256 ") in err[-1], err                                  # names the teacher
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()} == before



def test_quantize_refuses_an_unfinished_pretrain_as_student_init(spectral_teacher, tmp_path, capsys):
    """--student-init RUN of a pretrain --force'd and killed before its first checkpoint (the earlier run's model.pt,
    this run's config.yaml, no metrics.json: core.runs.unfinish) started the student from the earlier run's
    encoder. Refused, one line naming the run, before anything is written."""
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.models import create_model, get_model_cfg
    pt = tmp_path / "pt"
    mc = get_model_cfg("spec_student_xs")
    save_checkpoint(pt / "model.pt", kind="teacher_pretrain", model_cfg=mc.to_dict(),
                    state_dict=create_model(mc).state_dict())                  # the earlier run's: an encoder that fits
    (pt / "config.yaml").write_text("command: train/pretrain\nconfig: {}\n")  # the killed run's
    capsys.readouterr()
    assert main(_args(spectral_teacher, tmp_path / "q") + ["--student-init", str(pt)]) == 1
    assert capsys.readouterr().err == (f"sqtool: error: {pt} has no metrics.json: an unfinished `sqtool train "
                                       "pretrain` run (killed?): run `sqtool train pretrain` into it again with "
                                       "--force\n")
    assert not (tmp_path / "q").exists()
