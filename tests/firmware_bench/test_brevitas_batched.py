"""brevitas_int8 runs a bench's windows in batches, one Brevitas forward per BREVITAS_BATCH windows (it ran two forwards
a window: ~12 ms a window, 17 of a 1,000-file bench's 21.5 minutes), and gives the float outputs and int8 codes of
one window at a time bit for bit: the bench's exact % compares the single-rounding runtimes with it."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.export.intgraph import brevitas_int_outputs
from sqtool.export.metadata import to_units
from sqtool.firmware_bench import runtimes as R


def _windows(md: dict, n: int) -> np.ndarray:
    """(n, C, T) windows as the bench feeds them: a spectral model's codes / 127, a time-domain model's normalised
    samples."""
    C, T = R.window_shape(md)
    rng = np.random.default_rng(0)
    if R.is_spectral(md):
        return (rng.integers(-127, 128, (n, C, T)) / 127.0).astype(np.float32)
    return rng.standard_normal((n, C, T)).astype(np.float32)


def _one_at_a_time(rt, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What brevitas_int8 gave window by window: the float forward of each window in units, and Brevitas's integer
    outputs of its last layer at batch 1."""
    import torch
    xs = np.ascontiguousarray(x[:, rt.ch_idx])
    with torch.no_grad():
        y = np.concatenate([to_units(rt.model(torch.from_numpy(xs[i:i + 1])).numpy(), rt.units_md)
                            for i in range(len(xs))])
    outs = brevitas_int_outputs(rt.model, xs)
    return y, (outs["head"] if "head" in outs else outs["fc"]).reshape(len(x), -1)


@pytest.mark.parametrize("export", ["export_dir", "spec_export_dir"])
def test_brevitas_int8_in_batches_equals_one_window_at_a_time(export, request, tmp_path, monkeypatch):
    """300 windows in batches of 128 (the last one part full): 3 forwards, not 600, and the float outputs and the
    int8 codes equal those of one window at a time in every bit; one latency per window, a batch's time shared."""
    from sqtool.core.runs import torch_threads
    monkeypatch.setattr(R, "BREVITAS_BATCH", 128)
    art = R.load_artifacts(request.getfixturevalue(export))
    rt = R.make_runtime("brevitas_int8", art, tmp_path)
    x = _windows(art.metadata, 300)
    forwards = []
    hook = rt.model.register_forward_pre_hook(lambda _m, a: forwards.append(len(a[0])))
    y = rt.run_batch(x)
    hook.remove()
    assert forwards == [128, 128, 44]
    with torch_threads(1):                                    # as the runtime runs
        y1, q1 = _one_at_a_time(rt, x)
    assert rt.int8_outputs.dtype == np.int8 and np.array_equal(rt.int8_outputs, q1)
    assert y.dtype == np.float64 and np.array_equal(y, y1)
    lat = np.asarray(rt.latencies_s)
    assert len(lat) == 300 and len(set(lat[:128])) == 1 and len(set(lat[256:])) == 1
    assert "batches of 128" in rt.info()["latency_note"]
