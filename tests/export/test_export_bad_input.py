"""Bad input: every refusal is one clear line, nothing half-written; a parity failure exits non-zero."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.export.cli import ExportConfig, export
from sqtool.export.intgraph import check_supported
from sqtool.models import create_model
from sqtool.core.checkpoint import save_checkpoint


def _cli(capsys, *args):
    rc = main(["export", *args])
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A tiny float teacher fine-tuned for HR (kind teacher_task) with PPG-only held-out windows."""
    d = tmp_path_factory.mktemp("teacher")
    torch.manual_seed(0)
    t = create_model("resnet1d_siamq_tiny", task="hr", window_s=8.0, hop_s=2.0, outputs=("hr_bpm",), units=("bpm",),
                     target_mean=(90.0,), target_std=(30.0,)).eval()
    save_checkpoint(d / "model.pt", kind="teacher_task", model_cfg=t.cfg.to_dict(), state_dict=t.state_dict())
    rng = np.random.default_rng(0)
    np.savez(d / "heldout.npz", x=rng.random((6, 1, 320), dtype=np.float32), y=np.full((6, 1), 80, np.float32))
    return d


@pytest.mark.parametrize("model, task", [("spec_student_xs", "hr"), ("resnet1d_siamq_tiny", "TASK")])
def test_a_pretraining_run_is_refused_before_any_folder(tmp_path, capsys, model, task):
    """A spectral SimSiam pretrain run exported with exit 0, its card saying "Heart rate (BPM) every 2 s", and then
    predict, bench and load_model each refused it another way (a time-domain one: 'heldout.npz not found'). One line
    now, naming the fine-tune to run first, and no folder."""
    from sqtool.models import get_model_cfg
    m = create_model(get_model_cfg(model).replace(task="pretrain"))
    save_checkpoint(tmp_path / "pt" / "model.pt", kind="teacher_pretrain", model_cfg=m.cfg.to_dict(),
                    state_dict=m.state_dict())
    rc, err = _cli(capsys, "--model", str(tmp_path / "pt"), "--target", "onnx", "--out", str(tmp_path / "e"))
    assert rc == 1 and len(err.splitlines()) == 1 and not (tmp_path / "e").exists()
    assert "is a pretraining run (a SimSiam encoder, no task output): fine-tune it first (sqtool train finetune " \
           f"--task {task} --init {tmp_path / 'pt'} --data DATA, then sqtool quantize) and export that" in err


def test_checkpoint_without_metadata(tmp_path, capsys):
    torch.save({"state_dict": {}}, tmp_path / "model.pt")
    rc, err = _cli(capsys, "--model", str(tmp_path), "--target", "onnx")
    assert rc != 0 and "lacks sqtool metadata" in err and len(err.splitlines()) == 1


def test_checkpoint_with_incomplete_metadata(int8_run, tmp_path):
    ck = torch.load(int8_run / "model.pt", weights_only=True)
    cfg = dict(ck["model_cfg"])
    cfg.pop("channels")
    save_checkpoint(tmp_path / "model.pt", kind="student_int8", model_cfg=cfg, state_dict=ck["state_dict"])
    shutil.copy(int8_run / "heldout.npz", tmp_path / "heldout.npz")
    with pytest.raises(SqtoolError, match="lacks metadata.*'channels'"):
        export(ExportConfig(model=str(tmp_path), out=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()                     # refused before anything was written


def test_teacher_for_int8_targets_is_refused(teacher_run, capsys):
    rc, err = _cli(capsys, "--model", str(teacher_run), "--target", "c")
    assert rc != 0 and "teacher_task" in err and "student_int8" in err and len(err.splitlines()) == 1
    rc, err = _cli(capsys, "--model", str(teacher_run), "--target", "onnx", "--precision", "int8")
    assert rc != 0 and "--precision float" in err


def test_teacher_float_onnx_works_and_tflite_names_the_op(teacher_run, tmp_path, capsys):
    res = export(ExportConfig(model=str(teacher_run), target=["onnx"], out=str(tmp_path / "o")))
    assert res["failed"] == [] and {r["artifact"] for r in res["rows"]} == {"ONNX float", "ONNX float (batch axis)"}
    assert not (tmp_path / "o" / "model_int8.onnx").exists()
    rc, err = _cli(capsys, "--model", str(teacher_run), "--target", "tflite", "--out", str(tmp_path / "t"))
    assert rc != 0 and "layer 'encoder'" in err and "SiamQuality" in err


def test_unsupported_op_names_layer_and_op(int8_run):
    from sqtool.models import ModelCfg
    ck = torch.load(int8_run / "model.pt", weights_only=True)
    q = create_model(ModelCfg.from_dict(ck["model_cfg"]))
    q.fc = torch.nn.Linear(16, 2)
    with pytest.raises(SqtoolError, match="layer 'fc' op Linear"):
        check_supported(q)
    q = create_model(ModelCfg.from_dict(ck["model_cfg"]))
    q.blocks[1].act = torch.nn.Sigmoid()
    with pytest.raises(SqtoolError, match="layer 'blocks.1.act' op Sigmoid"):
        check_supported(q)


def test_existing_output_dir_needs_force(int8_run, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    rc, err = _cli(capsys, "--model", str(int8_run), "--target", "c", "--out", str(out))
    assert rc != 0 and "--force" in err
    rc, _ = _cli(capsys, "--model", str(int8_run), "--target", "c", "--out", str(out), "--force", "--max-windows", "4")
    assert rc == 0 and (out / "c" / "sq_model.c").is_file()


def test_a_forced_re_export_removes_the_previous_exports_files_it_did_not_write(int8_run, tmp_path, capsys):
    """An audit re-exported another model into a folder with --force (--target onnx): the earlier model's TFLite, C
    and kit stayed beside the new metadata and card (readers refused them, but the folder ships two models). They
    are now removed (before the new export writes anything), with one note line; a file of the user's own or one
    edited since is kept."""
    import json
    out = tmp_path / "out"
    rc, _ = _cli(capsys, "--model", str(int8_run), "--target", "tflite,c", "--out", str(out), "--max-windows", "4")
    assert rc == 0 and (out / "model_int8.tflite").is_file() and (out / "c" / "sq_model.c").is_file()
    (out / "mine.txt").write_text("x")                       # never in a manifest: kept
    (out / "c" / "sq_model.h").write_text("/* edited */")    # edited since that export: kept
    rc = main(["export", "--model", str(int8_run), "--target", "onnx", "--out", str(out), "--force",
               "--max-windows", "4"])
    text = capsys.readouterr().out
    assert rc == 0
    assert not (out / "model_int8.tflite").exists() and not (out / "c" / "sq_model.c").exists()
    assert (out / "mine.txt").is_file() and (out / "c" / "sq_model.h").read_text() == "/* edited */"
    assert "note: removed " in text and "of the previous export in" in text and "model_int8.tflite" in text
    assert "; kept 1 file of the previous export edited since it wrote it: c/sq_model.h (yours now, not this " \
           "model's)" in text                              # named: it stays beside the new model
    listed = {f["path"] for f in json.loads((out / "manifest.json").read_text())["files"]}
    assert all((out / rel).is_file() for rel in listed) and "model_int8.onnx" in listed


def test_parity_failure_exits_nonzero_and_keeps_report(int8_run, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["export", "--model", str(int8_run), "--target", "onnx", "--precision", "float", "--out", str(out),
               "--tol-float-l2", "0", "--max-windows", "4"])
    text = capsys.readouterr().out
    assert rc == 3 and "PARITY FAILED" in text
    assert (out / "export_report.md").is_file() and "FAILED" in (out / "export_report.md").read_text()
    assert (out / "model_float.onnx.FAILED").is_file()


def test_missing_or_malformed_heldout(int8_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(int8_run, run)
    (run / "heldout.npz").unlink()
    with pytest.raises(SqtoolError, match="held-out windows .* not found"):
        export(ExportConfig(model=str(run), target=["c"], out=str(tmp_path / "o1")))
    np.savez(run / "heldout.npz", x=np.zeros((3, 1, 320), np.float32))
    with pytest.raises(SqtoolError, match=r"shape \(3, 1, 320\).*\(N, 4, 320\)"):
        export(ExportConfig(model=str(run), target=["c"], out=str(tmp_path / "o2")))


def test_unknown_target(int8_run, capsys):
    rc, err = _cli(capsys, "--model", str(int8_run), "--target", "coreml")
    assert rc != 0 and "unknown target coreml" in err


@pytest.mark.parametrize("target", ["c", "onnx"])
def test_a_prefix_for_a_time_domain_model_is_refused_before_any_folder(int8_run, tmp_path, capsys, target):
    """`export --model q_td --target c --device-fs 64 --prefix hr2` exited 0 with sq_* symbols while config.yaml
    recorded prefix hr2: --prefix renames a spectral model's C pipeline only, so it is one line now, no folder."""
    out = tmp_path / "tdp"
    rc, err = _cli(capsys, "--model", str(int8_run), "--target", target, "--device-fs", "64", "--prefix", "hr2",
                   "--out", str(out))
    assert rc == 1 and len(err.splitlines()) == 1 and not out.exists()
    assert "--prefix hr2: for the C target of a spectral model (its pipeline's symbol prefix); a time-domain " \
           "model's C keeps sq_*" in err
