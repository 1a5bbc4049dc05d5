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
