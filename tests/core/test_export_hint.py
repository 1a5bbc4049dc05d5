"""The `export it first` hint a run folder gets where an export folder is read (predict, bench) names targets its
checkpoint takes: an audit followed `sqtool export --model runs/hr --target onnx,tflite,c` from a fine-tune's
(float teacher_task) predict error, and export refused it (the C target is int8 only: run sqtool quantize)."""
from __future__ import annotations

from pathlib import Path

import torch
import yaml

from sqtool.cli import main
from sqtool.core.checkpoint import save_checkpoint
from sqtool.core.runs import export_first_hint


def _run(d: Path, command: str, kind: str | None) -> Path:
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"sqtool_version": "0", "created": "x", "command": command,
                                                   "config": {}}))
    (d / "metrics.json").write_text("{}\n")
    if kind:
        save_checkpoint(d / "model.pt", kind=kind, model_cfg={"name": "tiny"}, state_dict={"w": torch.zeros(2)})
    return d


def test_a_float_fine_tune_is_told_onnx_tflite_and_quantize_for_c(tmp_path, capsys):
    ft = _run(tmp_path / "hr", "train/finetune", "teacher_task")
    hint = export_first_hint(ft)
    assert hint.startswith(f"export it first: sqtool export --model {ft} --target onnx,tflite (a float teacher_task")
    assert f"sqtool quantize --model {ft} first" in hint and "onnx,tflite,c" not in hint
    assert main(["predict", "--model", str(ft), "--data", "synthetic", "--out", str(tmp_path / "p")]) == 1
    assert f"--target onnx,tflite (a float" in capsys.readouterr().err


def test_an_int8_run_keeps_the_c_target(tmp_path):
    from sqtool.core.runs import checkpoint_kind
    q = _run(tmp_path / "q", "quantize", "student_int8")
    assert checkpoint_kind(q) == "student_int8"
    assert export_first_hint(q) == f"export it first: sqtool export --model {q} --target onnx,tflite,c"
    unread = _run(tmp_path / "q2", "quantize", None)              # no model.pt: read as its command writes it
    assert checkpoint_kind(unread) is None
    assert export_first_hint(unread).endswith("--target onnx,tflite,c")
    assert "--target onnx,tflite (a float" in export_first_hint(_run(tmp_path / "f", "train/finetune", None))
    assert export_first_hint(_run(tmp_path / "b", "bench", None)) is None


def test_a_model_over_a_fixed_front_end_is_told_its_own_targets(tmp_path, capsys):
    """af_beats ships float ONNX only: its hint used to name onnx,tflite, which export then refused."""
    from sqtool.models import get_model_cfg
    ft = tmp_path / "af"
    _run(ft, "train/finetune", None)
    save_checkpoint(ft / "model.pt", kind="teacher_task", model_cfg=get_model_cfg("af_beats").to_dict(),
                    state_dict={"w": torch.zeros(2)})
    assert main(["predict", "--model", str(ft), "--data", "synthetic", "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert f"export it first: sqtool export --model {ft} --target onnx --precision float (af_beats ships float, " \
           "as onnx only)" in err, err
