"""`sqtool export` keeps library chatter off the console and ends with the report and the next command.

The lines that used to reach stderr: Brevitas's "fast_hadamard_transform package not found" UserWarning
(importing brevitas.graph / brevitas.export), LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate"
(printed by C++ on fd 2), torch TracerWarnings while tracing for ONNX, and onnxruntime's "Removing
initializer" warnings."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from export_fixtures import make_run

NOISE = ("fast_hadamard_transform", "XNNPACK", "Removing initializer", "TracerWarning", "requires_grad=True",
         "UserWarning")


@pytest.fixture(scope="module")
def spec_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("spec") / "quantize", "spec_student_xs", n_heldout=4)


def test_export_console_has_no_library_noise(spec_run, tmp_path):
    out = tmp_path / "exp"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}   # warnings as a user sees them
    r = subprocess.run([sys.executable, "-m", "sqtool.cli", "export", "--model", str(spec_run), "--target",
                        "onnx,tflite", "--out", str(out)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    for noise in NOISE:
        assert noise not in r.stderr, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-2] == f"report: {out / 'export_report.md'}"
    assert lines[-1].startswith(f"next: sqtool bench --model {out} --data ")
    # the device rate a spectral export is built for is said when --device-fs did not choose it
    assert "note: built for a 125 Hz device (the model config's frontend.fs_in" in r.stdout


def test_quiet_fd2_keeps_other_lines(capfd):
    from sqtool.core.noise import quiet_fd2
    with quiet_fd2():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\nreal problem\n")
    err = capfd.readouterr().err
    assert "XNNPACK" not in err and "real problem" in err


def test_bin_training_does_not_warn_about_grad_scalars():
    import torch
    from sqtool.models import create_model, get_model_cfg
    from sqtool.models.hr_bins import BinTrainCfg, train_bins
    from sqtool.models.spectral import bin_grid
    cfg = get_model_cfg("spec_student_xs")
    bins = bin_grid(cfg)
    torch.manual_seed(0)
    x = np.random.default_rng(0).uniform(-1, 1, (8, len(cfg.channels), len(bins))).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train_bins(create_model("spec_student_xs"), x, np.full(8, 90.0), bins, BinTrainCfg(epochs=1, batch_size=4))
