"""A time-domain fine-tune's float teacher exports as it is (the README: "int8 student or float teacher, any target"):
it said "held-out windows .../heldout.npz not found" (only quantize wrote parity windows). The fine-tune writes
parity.npz (seeded training windows with their truth, no subject ids) and export checks its artifacts on them."""
from __future__ import annotations

import json

import numpy as np

from sqtool.cli import main


def test_a_time_domain_finetune_exports_on_its_own_parity_windows(tmp_path, capsys):
    ft = tmp_path / "ft"
    assert main(["train", "finetune", "--task", "hr", "--model", "resnet1d_siamq_tiny", "--data", "synthetic",
                 "--max-records", "3", "--folds", "2", "--epochs", "1", "--progress", "false", "--out", str(ft)]) == 0
    with np.load(ft / "parity.npz") as z:
        assert set(z.files) == {"x", "y"} and z["x"].ndim == 3 and len(z["x"]) == len(z["y"]) > 0
    capsys.readouterr()
    assert main(["export", "--model", str(ft), "--target", "onnx", "--out", str(tmp_path / "e")]) == 0
    report = json.loads((tmp_path / "e" / "export_report.json").read_text())
    assert (tmp_path / "e" / "model_float.onnx").is_file() and (tmp_path / "e" / "parity.npz").is_file()
    assert "parity windows: parity.npz, training windows of the run" in capsys.readouterr().out + json.dumps(report)
