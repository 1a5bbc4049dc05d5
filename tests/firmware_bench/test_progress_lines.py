"""`sqtool export` prints one line per artifact as it is written (path, size, parity), `sqtool bench` one line
per runtime as it finishes (and the baseline), both on stderr; stdout ends with `report:` and `next:`.
`--no-progress` silences bars only: the per-item lines stay (README "Progress")."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from sqtool.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "export"))


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory):
    import torch
    from export_fixtures import make_int8_run
    torch.set_num_threads(1)
    return make_int8_run(tmp_path_factory.mktemp("prog") / "quantize", n_heldout=6)


def test_export_then_bench_print_a_line_per_item_and_the_next_command(int8_run, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(["export", "--model", str(int8_run), "--target", "onnx,tflite", "--out", str(exp),
                 "--no-progress"]) == 0
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.startswith("export: ")]
    files = [re.match(r"export: (\S+)  ", ln).group(1) for ln in lines]
    assert files == [str(exp / f) for f in ("model_float.onnx", "model_float_batch.onnx", "model_int8.onnx",
                                           "model_float.tflite", "model_int8.tflite", "MODEL_CARD.md",
                                           "INTEGRATION.md")], cap.err
    for ln, f in zip(lines, files):
        size = (Path(f).stat().st_size / 1024)
        assert re.search(rf"  {size:.1f} KB  " + (r"written$" if f.endswith(".md") else r"parity ok \("), ln), ln
    assert "max " in lines[2] and "LSB" in lines[2] and "L2 rel err" in lines[0]
    import yaml
    r = yaml.safe_load((exp / "config.yaml").read_text())["resolved"]            # what the run used
    assert r["model"] == "model.pt" and r["heldout"] == "heldout.npz"        # outside the shipped folder: names only
    assert r["targets"] == ["onnx", "tflite"] and r["parity_windows"] == 6
    out = cap.out.strip().splitlines()
    assert out[-2] == f"report: {exp / 'export_report.md'}"
    assert out[-1].startswith(f"next: sqtool bench --model {exp} --data ")

    b = tmp_path / "bench"
    assert main(["bench", "--model", str(exp), "--data", "synthetic", "--max-records", "1",
                 "--runtime", "onnx_float,tflm_int8", "--out", str(b), "--no-progress"]) == 0
    cap = capsys.readouterr()
    rl = [ln for ln in cap.err.splitlines() if ln.startswith("bench: ")]
    assert [ln.split(":")[1].strip() for ln in rl] == ["onnx_float", "tflm_int8", "baseline"], cap.err
    for ln in rl:
        assert re.search(r": ok, (\d+ windows, )?MAE \d+\.\d\d BPM", ln), ln
    assert re.search(r"tflm_int8: ok, \d+ windows, MAE .* BPM, \d+\.\d+ ms/window \(\d+\.\d s\)", rl[1])
    out = cap.out.strip().splitlines()
    assert out[-2] == f"report: {b / 'bench.md'}"
    assert out[-1].startswith("next: ")
    r = yaml.safe_load((b / "config.yaml").read_text())["resolved"]
    assert r["model"] == str(exp) and r["records"] == 1 and r["runtimes"] == ["onnx_float", "tflm_int8"]
    md = (b / "bench.md").read_text()
    assert "```" not in md
    for col in ("| MAE BPM", "| RMSE BPM", "| bias BPM", "| file KB", "| file loaded", "per subject"):
        assert col in md, col
    assert "size KB" not in md                                       # one meaning per column
    for f in ("bland_altman.png", "hr_over_time.png", "latency.png"):
        assert (b / f).is_file() and f"![{f}]({f})" in md
