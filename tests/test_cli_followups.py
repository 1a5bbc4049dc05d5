"""Follow-ups of the session-40 CLI audit: predict, quantize and train refuse a missing required option as a usage
error and a taken --out before reading any model or data; predict's --runtime help lists what it accepts; quantize
refuses the time-domain-only options on a spectral teacher, says what to do with a pretraining checkpoint and shows
its WARNING line on stderr too; export's PARITY FAILED line explains a failure on the double-rounding rows alone."""
from __future__ import annotations

import dataclasses
import re

import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.core.checkpoint import save_checkpoint
from sqtool.models import get_model_cfg


def _ckpt(path, kind: str, model: str):
    return save_checkpoint(path, kind=kind, model_cfg=get_model_cfg(model).to_dict(), state_dict={})


def _taken(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "x.txt").write_text("mine")
    return out


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


# ----------------------------------------------------------------------------- predict

def test_predict_without_model_is_a_usage_error_for_any_task(capsys):
    assert main(["predict", "--data", "synthetic"]) == 2
    err = _one_line(capsys)
    assert err.startswith("sqtool: error: predict: --model EXPORT is required") and "--help)" in err


def test_predict_library_without_model_names_any_task(tmp_path):
    from sqtool.firmware_bench.predict import PredictConfig, predict
    with pytest.raises(SqtoolError, match=r"any task's model") as e:
        predict(PredictConfig(data="synthetic", out=str(tmp_path / "p")))
    assert e.value.code == 2 and "heart-rate model" not in str(e.value)


def test_predict_runtime_help_lists_every_name_it_accepts():
    from sqtool.firmware_bench.predict import CHOICES, TIME_DOMAIN, PredictConfig
    text = next(f for f in dataclasses.fields(PredictConfig) if f.name == "runtime").metadata["help"]
    words = set(re.findall(r"[a-z0-9_]+", text))
    assert {*CHOICES, *TIME_DOMAIN} - {"pipeline"} <= words        # pipeline: c_pipeline's short spelling


def test_predict_warnings_use_the_shared_stderr_rule():
    import sqtool.firmware_bench.predict as P
    assert not hasattr(P, "_one_stream")                           # core.say.one_stream, not a copy


# ----------------------------------------------------------------------------- quantize

def test_quantize_without_model_is_a_usage_error(capsys):
    assert main(["quantize", "--data", "synthetic"]) == 2
    assert _one_line(capsys).startswith("sqtool: error: quantize: --model RUN is required")


def test_quantize_checks_out_before_reading_the_teacher(tmp_path, capsys):
    out = _taken(tmp_path)
    assert main(["quantize", "--model", str(tmp_path / "no_such_run"), "--out", str(out)]) == 1
    err = _one_line(capsys)
    assert "exists and is not empty" in err and "no_such_run" not in err


@pytest.mark.parametrize("flags, named", [
    (["--width-mult", "0.25", "--fs", "25", "--stretch", "0.3"], "--fs, --width-mult, --stretch"),
    (["--channels", "ppg"], "--channels"), (["--depth-delta", "1"], "--depth-delta"),
    (["--no-quality-head"], "--quality-head"), (["--feature-weight", "0.1"], "--feature-weight"),
    (["--quality-weight", "0.5"], "--quality-weight"), (["--quality-label", "sqi"], "--quality-label"),
    (["--quality-err", "5"], "--quality-err"),
    (["--lr", "0.01", "--qat-lr", "0.001"], "--lr, --qat-lr"), (["--weight-decay", "0"], "--weight-decay"),
    (["--allow-over-budget"], "--allow-over-budget"), (["--max-macs", "100"], "--max-macs"),
])
def test_quantize_refuses_time_domain_options_on_a_spectral_teacher(tmp_path, capsys, flags, named):
    ck = _ckpt(tmp_path / "teacher.pt", "teacher_task", "spec_teacher_m")
    out = tmp_path / "q"
    assert main(["quantize", "--model", str(ck), *flags, "--out", str(out)]) == 1
    err = _one_line(capsys)
    assert f"error: {named}: time-domain students only" in err and "is spectral" in err
    assert not out.exists()


def test_quantize_spectral_defaults_pass_the_option_check(tmp_path):
    from sqtool.compress.cli import QuantizeConfig, check_spectral_options
    from sqtool.core.checkpoint import load_checkpoint
    ck = load_checkpoint(_ckpt(tmp_path / "teacher.pt", "teacher_task", "spec_teacher_m"))
    check_spectral_options(QuantizeConfig(teacher=ck["path"], channels=()), ck)     # a tuple from a file: as []


def test_quantize_of_a_pretraining_checkpoint_says_fine_tune_it_first(tmp_path, capsys):
    ck = _ckpt(tmp_path / "pre.pt", "teacher_pretrain", "resnet1d_siamq_tiny")
    assert main(["quantize", "--model", str(ck), "--out", str(tmp_path / "q")]) == 1
    err = _one_line(capsys)
    assert "is a teacher_pretrain checkpoint; expected teacher_task: fine-tune it first: sqtool train finetune " \
           f"--init {ck} --task TASK" in err


def test_quantize_warning_goes_to_stderr_too(tmp_path, capsys):
    from sqtool.compress.cli import print_results
    print_results(tmp_path, {"heldout_note": "held-out subjects in the teacher", "task": "hr",
                             "mae_bpm": {"teacher": 1.0, "float": 2.0, "int8": 3.0}})
    cap = capsys.readouterr()
    assert "WARNING: held-out subjects in the teacher" in cap.out
    assert cap.err.strip() == "WARNING: held-out subjects in the teacher"   # captured: another file


# ----------------------------------------------------------------------------- train

def test_train_finetune_checks_out_before_reading_init(tmp_path, capsys):
    out = _taken(tmp_path)
    assert main(["train", "finetune", "--init", str(tmp_path / "no_such_run"), "--task", "hr", "--data",
                 "synthetic", "--out", str(out)]) == 1
    err = _one_line(capsys)
    assert "exists and is not empty" in err and "no_such_run" not in err


def test_train_pretrain_checks_out_before_opening_pairs(tmp_path, capsys):
    out = _taken(tmp_path)
    assert main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--pairs", str(tmp_path / "no_pairs"),
                 "--out", str(out)]) == 1
    err = _one_line(capsys)
    assert "exists and is not empty" in err and "no_pairs" not in err


# ----------------------------------------------------------------------------- export

def test_export_parity_failed_on_double_rounding_alone_says_why(tmp_path):
    from sqtool.data.tasks import task_model_cfg
    from sqtool.export.cli import ExportConfig, export
    from tests.export.export_fixtures import make_int8_run
    mc = task_model_cfg("af", get_model_cfg("cnn1d_student_xs"), channels=("ppg",))
    run = make_int8_run(tmp_path / "quantize", mc, n_heldout=4, seed=0)      # untrained: 5 LSB off, double rounding
    exp = export(ExportConfig(model=str(run), target=["c"], out=str(tmp_path / "export")))
    assert exp["failed"] == ["numpy reference (double rounding)", "C double rounding (host gcc)"], exp["summary"]
    last = exp["summary"].splitlines()[-1]
    assert last.startswith("PARITY FAILED: numpy reference (double rounding), C double rounding (host gcc)")
    assert last.endswith(". These runtimes round twice (TFLite's reference kernels, TFLM, the C kit's "
                         "SQ_SINGLE_ROUNDING 0) and differ from the QAT model's single rounding by up to 5 LSB on "
                         "this model; the C kit with SQ_SINGLE_ROUNDING 1 and onnxruntime match it; `--tol-lsb 5` "
                         "accepts it")


@pytest.mark.parametrize("single_lsb, twin_pct, failed", [
    (1, 100.0, ["TFLite Micro"]),                                    # a single-rounding row is not exact
    (0, 75.0, ["TFLite Micro"]),                                     # off its numpy twin: not the rounding
    (0, 100.0, ["TFLite Micro", "ONNX int8 (onnxruntime integer kernels)"]),    # a single-rounding runtime failed
])
def test_export_double_rounding_note_only_where_it_is_the_whole_story(single_lsb, twin_pct, failed):
    from sqtool.export.cli import double_rounding_note
    rows = [{"artifact": "C single rounding (host gcc)", "max_lsb": single_lsb},
            {"artifact": "TFLite Micro", "max_lsb": 4, "exact_vs_pct": twin_pct, "delta_mae_bpm": None},
            {"artifact": "ONNX int8 (onnxruntime integer kernels)", "max_lsb": 4}]
    assert double_rounding_note(rows, failed, 0.1) == ""
    assert "`--tol-lsb 4` accepts it" in double_rounding_note(
        [dict(rows[0], max_lsb=0), dict(rows[1], exact_vs_pct=100.0)], ["TFLite Micro"], 0.1)
