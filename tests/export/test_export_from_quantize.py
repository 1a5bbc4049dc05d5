"""Contract with the compress stage: `sqtool export` takes a real `sqtool quantize` run dir (QAT model)."""
from __future__ import annotations

import pytest
import torch

from sqtool.models import create_model
from sqtool.core.checkpoint import save_checkpoint


def test_export_of_a_quantize_run(tmp_path):
    quantize_mod = pytest.importorskip("sqtool.compress.cli")
    torch.manual_seed(0)
    t = create_model("resnet1d_siamq_tiny", task="hr", window_s=8.0, hop_s=2.0, outputs=("hr_bpm",), units=("bpm",),
                     target_mean=(90.0,), target_std=(30.0,)).eval()
    save_checkpoint(tmp_path / "teacher.pt", kind="teacher_task", model_cfg=t.cfg.to_dict(), state_dict=t.state_dict())
    qcfg = quantize_mod.QuantizeConfig(teacher=str(tmp_path / "teacher.pt"), data_root="synthetic",
                                       student="cnn1d_student_xs", epochs=1, qat_epochs=1, out=str(tmp_path / "run"))
    run = quantize_mod.quantize(qcfg, log=lambda *a, **k: None)
    from sqtool.export.cli import ExportConfig, export
    res = export(ExportConfig(model=str(run), target=["tflite", "c"], out=str(tmp_path / "exp"), max_windows=32))
    assert res["failed"] == [], res["summary"]
    rows = {r["artifact"]: r for r in res["rows"]}
    assert rows["TFLite Micro"]["exact_vs_pct"] == 100.0
    assert rows["C single rounding (host gcc)"]["exact_vs_pct"] == 100.0
    assert rows["C single rounding (host gcc)"]["max_lsb"] <= 1
    assert res["metadata"]["quant_scheme"] == "int8_w_per_channel_a_per_tensor"
