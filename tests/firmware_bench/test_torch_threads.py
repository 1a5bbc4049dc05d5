"""Library calls leave torch's process-wide thread count as they found it (audit find_lib 4): `export()` and the
torch runtimes behind `predict(runtime="torch")` / bench run torch on one thread (their numbers and latencies as
before) and put the caller's count back when they return."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from export_fixtures import make_int8_run

from sqtool.export.cli import ExportConfig, export
from sqtool.firmware_bench import runtimes as R

CALLER = 3                      # a thread count the calls would overwrite (they use 1)


@pytest.fixture()
def caller_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(CALLER)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_int8_run(tmp_path_factory.mktemp("thr") / "quantize", n_heldout=4)


@pytest.fixture(scope="module")
def onnx_export(run):
    return export(ExportConfig(model=str(run), target=["onnx"], out=str(run.parent / "export"), progress=False))


def _spy_load_model(monkeypatch, seen: list):
    import sqtool.models as M
    real = M.load_model
    monkeypatch.setattr(M, "load_model", lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])


def test_export_uses_one_thread_and_restores_the_callers(tmp_path, run, caller_threads, monkeypatch):
    seen: list[int] = []
    _spy_load_model(monkeypatch, seen)
    export(ExportConfig(model=str(run), target=["onnx"], out=str(tmp_path / "export"), progress=False))
    assert seen and set(seen) == {1}                                 # torch ran on one thread inside
    assert torch.get_num_threads() == CALLER


def test_torch_runtime_uses_one_thread_and_restores_the_callers(tmp_path, onnx_export, caller_threads, monkeypatch):
    seen: list[int] = []
    _spy_load_model(monkeypatch, seen)
    art = R.load_artifacts(onnx_export["out"])
    rt = R.make_runtime("torch_student", art, tmp_path)
    assert seen == [1] and torch.get_num_threads() == CALLER         # loaded on one thread, count back
    model = rt.model
    rt.model = lambda x: (seen.append(torch.get_num_threads()), model(x))[1]
    C, T = R.window_shape(art.metadata)
    y = rt.run_batch(np.zeros((2, C, T), np.float32))
    assert y.shape[0] == 2 and seen[1:] == [1, 1]                    # each window's forward on one thread
    assert torch.get_num_threads() == CALLER


def test_quantize_puts_the_callers_thread_count_back(tmp_path, caller_threads):
    """quantize_run trains on cfg.threads (1 here), then the caller's count is back (it used to stay at 1)."""
    make_int8_run(tmp_path / "quantize", n_heldout=4)
    assert torch.get_num_threads() == CALLER
