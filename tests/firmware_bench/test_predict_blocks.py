"""predict's time-domain path (`sqtool predict`, `TaskModel.predict`: `prepare_time_domain`) replays a recording
through the model's stream in blocks of samples, not one sample a push, and its rows are those of the one-sample
replay to the bit (NaN gaps and window boundaries inside blocks); a model called again and again (a server's
predict per request, a stream's pushes) lets its runtimes' per-window latencies go, so its memory stays flat."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz
from test_api_task_stream import _recording
from test_predict_targets import export_student

import sqtool
from sqtool.data.tasks import task_model_cfg
from sqtool.firmware_bench import runtimes as R
from sqtool.firmware_bench import stream
from sqtool.models import get_model_cfg


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    """Untrained int8 students on the PPG alone with their C: af (10 s windows and hops), rr (30 s windows, 10 s
    hops, a 0.05 Hz band: 60 s / 30 s of filter context)."""
    root = tmp_path_factory.mktemp("blocks")
    return {t: export_student(root / t, task_model_cfg(t, get_model_cfg("cnn1d_student_xs"), channels=("ppg",)),
                              ["c"]) for t in ("af", "rr")}


def _pushes(monkeypatch) -> list[np.ndarray]:
    """Every chunk pushed into a WindowStream from now on, (C, n) each, in order."""
    seen = []
    push = stream.WindowStream.push

    def spy(self, chunk):
        seen.append(np.array(chunk, np.float64).reshape(self.C, -1))
        return push(self, chunk)
    monkeypatch.setattr(stream.WindowStream, "push", spy)
    return seen


@pytest.mark.parametrize("name, fs", [("af", 125.0), ("rr", 64.0), ("hr", 125.0)])
def test_predict_pushes_blocks_with_the_rows_of_one_sample_a_push(students, export_dir, monkeypatch, name, fs):
    m = sqtool.load_model(export_dir if name == "hr" else students[name])   # hr: conftest's, ppg + acc, 2 s hops
    ppg, acc = _recording(100.0, fs, acc=m.needs_acc)     # NaN: the first 3 samples, 30-31.5 s, one at 50 s
    seen = _pushes(monkeypatch)
    got = m.predict(ppg, acc, fs=fs)
    sizes = np.array([c.shape[1] for c in seen])
    assert sizes.sum() == len(ppg) and len(seen) <= len(ppg) / 500, sizes[:5]      # blocks, not samples
    hop = int(round(fs * float(m._art.metadata["hop_s"])))
    ends = np.cumsum(sizes)
    assert any((a // hop) < ((b - 1) // hop) for a, b in zip(ends - sizes, ends))  # a window boundary inside a block
    assert any(np.isnan(c).any() and np.isfinite(c).any() for c in seen)          # a gap inside a block

    seen.clear()                                          # predict again, the stream fed one sample a push
    monkeypatch.setattr(stream, "replay", functools.partial(stream.replay, chunk=1))
    one = m.predict(ppg, acc, fs=fs)
    assert len(seen) == len(ppg) and len(one) == len(got) > 0
    assert np.array_equal(one.t_end_s, got.t_end_s) and list(one.columns) == list(got.columns)
    for c in got.columns:
        assert np.array_equal(one[c], got[c], equal_nan=True), c
    m.close()


def _latencies(model) -> list[int]:
    """The per-window latencies each of the model's built runtimes holds (an inner network's too)."""
    rts = [r for rt in model._runners.values() for r in (rt, getattr(rt, "inner", None)) if isinstance(r, R.Runtime)]
    assert rts
    return [len(r.latencies_s) for r in rts]


def test_repeated_task_predicts_keep_no_latencies(students):
    m = sqtool.load_model(students["af"])
    ppg, _ = _recording(60.0, 125.0)
    for _ in range(4):
        assert len(m.predict(ppg, fs=125.0)) == 6
        assert _latencies(m) == [0]
    with m.stream(125.0) as s:                            # the stream's pushes too (its own rows: test_api_task_stream)
        s.push(ppg)
        assert _latencies(m) == [0]
    m.close()


def test_repeated_hr_predicts_and_pushes_keep_no_latencies(spec_export_dir, tmp_path):
    """A spectral heart-rate model on an int8 network on the host (runtime c: its latencies timed per window), the
    same: predict per call, a stream per push."""
    z = np.load(write_wrist_npz(tmp_path / "w.npz", seconds=40.0))
    ppg, acc = z["ppg"], np.stack([z[f"acc_{a}"] for a in "xyz"], 1)
    m = sqtool.load_model(spec_export_dir, runtime="c")
    for _ in range(3):
        assert len(m.predict(ppg, acc, fs=125.0)) > 0
        assert _latencies(m) == [0]
    s = m.stream(125.0)
    for a in range(0, len(ppg), 1250):
        s.push(ppg[a:a + 1250], acc[a:a + 1250])
        assert _latencies(m) == [0]
    m.close()


def test_a_front_end_runtime_forgets_its_networks_latencies_too(tmp_path):
    """rr_spec / af_beats run a float network inside `runtimes.FrontEnd`: both lists go; bench's runtimes, used
    alone, keep theirs (test_runtimes)."""
    inner = R.Runtime(object(), tmp_path)
    fe = R.FrontEnd(inner)
    inner.latencies_s += [1e-3] * 5
    fe.latencies_s += [2e-3] * 5
    fe.forget_latencies()
    assert inner.latencies_s == [] and fe.latencies_s == []
