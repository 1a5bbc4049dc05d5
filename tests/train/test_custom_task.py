"""`train finetune --task NAME --data FILE.yaml` on a custom label NAME of the file, then quantize, export --target
onnx and predict from the checkpoints alone: the NAME column in the label's unit, with its truth and MAE."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sqtool.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from test_custom_label import write_project  # noqa: E402


def test_finetune_quantize_export_predict_a_custom_label(tmp_path, capsys):
    data = write_project(tmp_path / "ox")
    ft, q, ex, pr = (str(tmp_path / n) for n in ("ft", "q", "ex", "pr"))
    assert main(["train", "finetune", "--task", "spo2", "--data", str(data), "--epochs", "1", "--folds", "2",
                 "--bootstrap", "20", "--out", ft, "--no-progress"]) == 0
    out = capsys.readouterr().out
    m = json.loads((Path(ft) / "metrics.json").read_text())
    assert m["units"] == ["%"] and m["kind"] == "regression"
    assert f"spo2 (2-fold by subject, 3 subjects, 24 windows): MAE {m['mae']:.2f} % [95 % CI" in out
    y = np.load(Path(ft) / "oof_predictions.npz")["y"]
    assert "spo2: trivial mae" in out and "classic n/a (no classic method for a custom label)" in out
    assert m["skill"]["trivial"]["mae"] > 0 and m["skill"]["classic"]["name"] is None and y.shape == (24, 1)
    assert main(["quantize", "--model", ft, "--epochs", "1", "--qat-epochs", "1", "--batch-size", "16",
                 "--out", q]) == 0
    out = capsys.readouterr().out
    assert "held-out spo2: teacher MAE" in out and " % | int8 MAE" in out
    assert "| model | mae (%) |" in (Path(q) / "report.md").read_text()
    assert main(["export", "--model", q, "--target", "onnx", "--out", ex]) == 0
    capsys.readouterr()
    assert main(["predict", "--model", ex, "--data", str(data), "--runtime", "onnx", "--out", pr]) == 0
    out = capsys.readouterr().out
    assert "MAE" in out and "% vs truth" in out
    head = (Path(pr) / "s04_rest.csv").read_text().splitlines()[0].split(",")
    assert "spo2" in head and "truth_spo2" in head
    assert json.loads((Path(pr) / "summary.json").read_text())["truth_units"]["spo2"] == "%"


@pytest.mark.parametrize("task, says", [("spo3", "unknown task 'spo3'"), ("sbp", "unknown task 'sbp'")])
def test_finetune_refuses_a_task_the_file_lacks_in_one_line(tmp_path, capsys, task, says):
    data = write_project(tmp_path / "ox")
    assert main(["train", "finetune", "--task", task, "--data", str(data), "--out", str(tmp_path / "ft")]) != 0
    err = capsys.readouterr().err.strip()
    assert says in err and "custom regression label" in err and len(err.splitlines()) == 1


def test_a_custom_task_without_its_dataset_file_is_one_line(tmp_path, capsys):
    assert main(["train", "finetune", "--task", "spo2", "--data", "synthetic", "--out", str(tmp_path / "ft")]) != 0
    assert "unknown task 'spo2'" in capsys.readouterr().err
