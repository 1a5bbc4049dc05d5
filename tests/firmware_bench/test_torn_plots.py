"""Bench's plots, predict's per-recording plot and export's parity_windows.npz go through core's atomic writers: a
writer killed mid-write (here: one that writes half a file, then raises) leaves no file at the destination, where a
plain savefig / np.savez left a torn one that reads as the artifact."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from tests.export.export_fixtures import make_spec_int8_run  # noqa: E402


def _tear(write, target, *a, **k):
    """What a writer killed mid-write leaves: `write` renders the whole file, half of it lands in `target` (a path or
    a file object), then it fails (a kill, a full disk)."""
    import io
    buf = io.BytesIO()
    write(buf, *a, **k)
    half = buf.getvalue()[:len(buf.getvalue()) // 2]
    if hasattr(target, "write"):
        target.write(half)
    else:
        Path(target).write_bytes(half)
    raise OSError(28, "No space left on device")


def _torn_savefig(monkeypatch):
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, fname, *a, **k: _tear(
        lambda buf, *a, **k: real(self, buf, *a, **{**k, "format": "png"}), fname, *a, **k))


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_torn_bench_plot_leaves_no_file(tmp_path, monkeypatch):
    from sqtool.firmware_bench.report import _plots
    _torn_savefig(monkeypatch)
    with pytest.raises(OSError):
        _plots(tmp_path, {"series": {"latency_ms": {"c_host": [0.5, 0.7, 0.6]}}})
    assert _left(tmp_path) == []                          # no latency.png, no temp file
    monkeypatch.undo()
    assert _plots(tmp_path, {"series": {"latency_ms": {"c_host": [0.5, 0.7, 0.6]}}}) == ["latency.png"]
    assert (tmp_path / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_torn_predict_plot_leaves_no_file(tmp_path, monkeypatch):
    from sqtool.firmware_bench.predict import _plot
    t = np.arange(10.0)
    o = {"hr_bpm": 70 + t, "lo_bpm": 65 + t, "hi_bpm": 75 + t, "flagged": np.zeros(10, bool)}
    _torn_savefig(monkeypatch)
    with pytest.raises(OSError):
        _plot(tmp_path / "a.png", "a", t, o, 71 + t, "c_pipeline", {"hr_bpm": "BPM"})
    assert _left(tmp_path) == []


def test_a_torn_parity_windows_file_leaves_no_file(tmp_path, monkeypatch):
    from sqtool.export.cli import ExportConfig, export
    run = make_spec_int8_run(tmp_path / "run", "spec_student_xs", n_heldout=0, n_calib=16)
    real = np.savez

    def torn(file, *a, **arrays):                         # the parity windows' write (x alone) is cut off
        return real(file, *a, **arrays) if set(arrays) != {"x"} else _tear(real, file, *a, **arrays)
    monkeypatch.setattr(np, "savez", torn)
    out = tmp_path / "out"
    with pytest.raises(OSError):
        export(ExportConfig(model=str(run), out=str(out), target=["onnx"], random_windows=4, progress=False))
    assert not (out / "parity_windows.npz").exists()
    assert not [p.name for p in out.iterdir() if "parity_windows" in p.name]      # nor a temp file beside it
