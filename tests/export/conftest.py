"""Session fixtures of the export tests: a small self-made student_int8 run and one full export of it."""
from __future__ import annotations

import pytest
import torch

from export_fixtures import make_int8_run

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def int8_run(tmp_path_factory):
    """compress-like run dir: cnn1d_student_xs trained 40 steps on synthetic PPG, calibrated, 24 held-out windows."""
    return make_int8_run(tmp_path_factory.mktemp("run") / "quantize", n_heldout=24, steps=40)


@pytest.fixture(scope="session")
def full_export(int8_run, tmp_path_factory):
    from sqtool.export.cli import ExportConfig, export
    return export(ExportConfig(model=str(int8_run), out=str(tmp_path_factory.mktemp("exp") / "out"), explain=True))


@pytest.fixture(scope="session")
def hospital(tmp_path_factory):
    """(root, run, export folder, export result) of a fake hospital's own data under root/home/alice, exported
    with the default --subjects auto to a folder outside it (privacy_fixtures)."""
    from privacy_fixtures import export_hospital
    root = tmp_path_factory.mktemp("hospital")
    return (root, *export_hospital(root))
