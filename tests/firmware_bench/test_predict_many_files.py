"""`sqtool predict` / `sqtool bench` over a folder of many short recordings (a wearable's spot checks): what they do
once per run is not done once per recording. Counted, not timed."""
from __future__ import annotations

import os
from pathlib import Path

from fwb_helpers import write_wrist_npz

from sqtool.firmware_bench.predict import PredictConfig, predict


def _folder(root: Path, n: int) -> Path:
    data = root / f"data{n}"
    data.mkdir()
    for k in range(n):
        write_wrist_npz(data / f"r{k:02d}.npz", seconds=12, hr_bpm=70 + 5 * k, seed=k, ppg2=True)
    return data


def test_predict_writes_its_csvs_without_a_fsync_or_folder_scan_each(spec_export_dir, tmp_path, monkeypatch):
    """The per-recording CSVs are written atomically (temp file, rename) into the run folder this run holds, with
    one sync before summary.json: 2 and 6 recordings cost the same fsyncs and scans of the run folder for
    orphaned temp files (each scan lists the folder: quadratic in its files), and nothing else changes."""
    fsyncs, scans, real_fsync, real_glob = [], [], os.fsync, Path.glob
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    monkeypatch.setattr(Path, "glob", lambda self, pat: scans.append(self.name) or real_glob(self, pat))
    counts = {}
    for n in (2, 6):
        data = _folder(tmp_path, n)
        fsyncs.clear(), scans.clear()
        out = tmp_path / f"pred{n}"
        res = predict(PredictConfig(model=str(spec_export_dir), data=str(data), runtime="c", out=str(out),
                                    plots="none", progress=False))
        assert [r["csv"] for r in res["recordings"]] == [f"r{k:02d}.csv" for k in range(n)]
        assert all((out / f"r{k:02d}.csv").read_text().startswith("time_s,") for k in range(n))
        assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
        counts[n] = (len(fsyncs), scans.count(out.name))
    assert counts[6] == counts[2], counts


def test_bench_checks_the_c_pipeline_with_one_reference_for_every_recording(spec_export_dir, tmp_path, monkeypatch):
    """The C pipeline's row compares each recording's push with the Python integer reference; the reference (its
    front-end tables designed, its decoder set up) is made once per device rate, not per recording, and each
    recording still starts from a fresh state: every hop equal."""
    import sqtool.export.pipeline as pipeline
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    made, real_init = [], pipeline.PipelineRef.__init__
    monkeypatch.setattr(pipeline.PipelineRef, "__init__", lambda self, *a, **k: made.append(1) or
                        real_init(self, *a, **k))
    res = run_bench(BenchConfig(model=str(spec_export_dir), data=str(_folder(tmp_path, 3)), runtime=["c_pipeline"],
                                out=str(tmp_path / "bench"), progress=False))
    row = next(r for r in res["runtimes"] if r["runtime"] == "c_pipeline")
    assert row["status"] == "ok" and row["calls"] == 3 and row["exact_hops_pct"] == 100.0
    assert len(made) == 1
