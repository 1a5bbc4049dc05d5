"""Fixtures of the firmware_bench tests: the cross toolchain (absent -> skip locally, FAIL under CI=true),
the tiny test-only C model, and one real export (cnn1d_student_xs int8 -> TFLite + generated C)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fwb_helpers import CROSS, need_tools

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "export"))   # export_fixtures (make_int8_run)


@pytest.fixture(scope="session")
def cross_tools():
    need_tools(*CROSS)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    """A real export of a small int8 student (synthetic training, 40 steps): metadata.json,
    model_int8.tflite, c/sq_model.[ch], with the compress-like run dir (checkpoints) next to it."""
    import torch

    from sqtool.export.cli import ExportConfig, export
    from export_fixtures import make_int8_run
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fwb")
    run = make_int8_run(root / "quantize", n_heldout=12, steps=40)
    res = export(ExportConfig(model=str(run), target=["tflite", "c"], out=str(root / "export")))
    return Path(res["out"])


@pytest.fixture(scope="session")
def spec_export_dir(tmp_path_factory):
    """A real export of an untrained spectral model (spec_student_xs, BN statistics set, calibrated on synthetic
    spectra): ONNX, TFLite, the network's C and the whole C pipeline (c/sq_pipeline.c), next to its
    compress-like run dir (model.pt, student_float.pt), which its manifest.json names."""
    import torch

    from sqtool.export.cli import ExportConfig, export
    from export_fixtures import make_spec_int8_run
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fwb_spec")
    run = make_spec_int8_run(root / "quantize", "spec_student_xs", n_heldout=0, n_calib=16)
    res = export(ExportConfig(model=str(run), out=str(root / "export"), random_windows=8))
    assert res["failed"] == [], res["summary"]
    return Path(res["out"])



@pytest.fixture(scope="session")
def acc_export(spec_export_dir, tmp_path_factory):
    """spec_export_dir's model exported again for a device whose accelerometer runs at 62.5 Hz beside a 125 Hz PPG
    (`export --device-acc-fs`: the kit's accelerometer resampler, metadata acc_resampler)."""
    import json

    from sqtool.cli import main
    out = tmp_path_factory.mktemp("acc_rs") / "export"
    assert main(["export", "--model", str(spec_export_dir.parent / "quantize"), "--target", "c", "--device-acc-fs",
                 "62.5", "--random-windows", "8", "--out", str(out)]) == 0
    assert json.loads((out / "metadata.json").read_text())["acc_resampler"]["fs_acc_in"] == 62.5
    return out
