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


def test_a_time_domain_model_lets_each_recordings_signals_and_windows_go(export_dir, tmp_path, monkeypatch):
    """A time-domain model's prepared recordings keep their windows, not their float signals (gaps said first), and
    the network runs them in blocks of NET_WINDOWS windows across recordings (one here: the MCU's one QEMU run),
    letting each recording's (W, C, T) windows go: none held once it has run. Blocks of 7 windows, ending inside
    and between recordings, give the same CSVs."""
    import numpy as np

    from sqtool.firmware_bench import predict as P
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench import spectral as S
    data = tmp_path / "data"
    data.mkdir()
    for k in range(3):
        write_wrist_npz(data / f"r{k}.npz", seconds=20 + 5 * k, seed=k)
    z = dict(np.load(data / "r1.npz"))
    z["ppg"][500:700] = np.nan                                      # a gap, said from the released recording
    np.savez(data / "r1.npz", **z)
    batches, real = [], R.make_runtime

    def spied(name, art, work):
        rt = real(name, art, work)
        run = rt.run_batch
        rt.run_batch = lambda x: batches.append(x.copy()) or run(x)
        return rt
    monkeypatch.setattr(R, "make_runtime", spied)
    cfg = P.PredictConfig(model=str(export_dir), data=str(data), runtime="c", out=str(tmp_path / "p"),
                          plots="none", progress=False)
    art = R.load_artifacts(str(export_dir))
    prep = P.prepare_time_domain(cfg, art, S.iter_load(data))
    recs = prep["recs"]
    assert all(np.size(v) == 0 for r in recs for v in r.record.signals.values())
    assert "ppg" in recs[1].gaps and recs[0].gaps == ""
    windows = np.concatenate([r.x for r in recs])
    P.run_time_domain(art, prep, tmp_path)
    assert all(r.x is None for r in recs)
    assert len(batches) == 1 and np.array_equal(batches[0], windows)
    res = P.predict(cfg)
    assert [r["windows"] for r in res["recordings"]] == [len(r.t0) for r in recs]
    assert "ppg" in res["recordings"][1]["gaps"] and "gaps" not in res["recordings"][0]
    batches.clear()
    monkeypatch.setattr(P, "NET_WINDOWS", 7)
    sevens = P.predict(P.PredictConfig(**{**cfg.__dict__, "out": str(tmp_path / "p7")}))
    assert [len(b) for b in batches] == [7] * (len(windows) // 7) + [len(windows) % 7] * bool(len(windows) % 7)
    assert all((tmp_path / "p" / r["csv"]).read_bytes() == (tmp_path / "p7" / r["csv"]).read_bytes()
               for r in sevens["recordings"])


def test_a_spectral_network_runs_once_for_a_folder_of_short_recordings(spec_export_dir, tmp_path, monkeypatch):
    """The network's blocks of NET_WINDOWS windows run on across recordings: 4 short recordings are one call (the
    MCU's QEMU started once, not per recording), and the CSVs are those of blocks of 5 windows, which end inside
    and between recordings."""
    from sqtool.firmware_bench import predict as P
    from sqtool.firmware_bench import spectral as S
    data = _folder(tmp_path, 4)
    calls, real = [], S.run_window_runtime
    monkeypatch.setattr(S, "run_window_runtime", lambda rt, codes: calls.append(len(codes)) or real(rt, codes))

    def csvs(out):
        res = predict(PredictConfig(model=str(spec_export_dir), data=str(data), runtime="c", out=str(out),
                                    plots="none", progress=False))
        return [(out / r["csv"]).read_bytes() for r in res["recordings"]]

    one = csvs(tmp_path / "one")
    assert calls == [4 * 3]                                            # 4 recordings of 3 windows each
    calls.clear()
    monkeypatch.setattr(P, "NET_WINDOWS", 5)
    assert csvs(tmp_path / "fives") == one and calls == [5, 5, 2]


def test_bench_draws_hr_over_time_for_the_first_recordings_only(spec_export_dir, tmp_path, monkeypatch):
    """hr_over_time.png has a panel for each of the first report.PANELS recordings (a thousand spot checks made a
    1500 x 86,840 px image); bench.md says how many of how many, bench.json keeps every recording's figures."""
    import sqtool.core
    from sqtool.firmware_bench import report
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    drawn, real = {}, sqtool.core.atomic_savefig
    monkeypatch.setattr(sqtool.core, "atomic_savefig", lambda fig, path, **k: drawn.__setitem__(
        Path(path).name, sum(ax.axison for ax in fig.axes)) or real(fig, path, **k))
    monkeypatch.setattr(report, "PANELS", 2, raising=False)
    res = run_bench(BenchConfig(model=str(spec_export_dir), data=str(_folder(tmp_path, 3)), runtime=["c"],
                                out=str(tmp_path / "bench"), progress=False))
    assert drawn["hr_over_time.png"] == 2
    assert "hr_over_time.png: the first 2 of 3 recordings" in (tmp_path / "bench" / "bench.md").read_text()
    assert len(next(r for r in res["runtimes"] if r["runtime"] == "c_host")["per_record"]) == 3


def test_bench_holds_one_recordings_signals_at_a_time(spec_export_dir, tmp_path, monkeypatch):
    """The spectral bench reads a folder one recording at a time and keeps its windows, not its samples: the classic
    baseline runs on each recording as it is read, when no other recording's float signals are held (all of them
    were, read whole before the front end: 2.31 GB at 1,000 spot checks), and the C pipeline pushes the int16
    samples read back from a scratch file (none held in memory, the file gone after), still equal to the Python reference on every hop."""
    import weakref

    from sqtool.data import hr_baseline as B
    from sqtool.firmware_bench import spectral as S
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    read, held, pushed, scratch = [], [], [], []                # read: a weak reference to each record read
    real_prepare, real_baseline, real_row = S.prepare, B.baseline_hr, S._pipeline_row

    def prepare(record, *a, **k):
        read.append(weakref.ref(record))
        return real_prepare(record, *a, **k)

    def baseline(record, *a, **k):
        held.append(sum(any(len(v) for v in r().signals.values()) for r in read if r() is not None))
        return real_baseline(record, *a, **k)

    def pipeline_row(row, art, recs, *a, **k):
        pushed.append([r.x16 is None and r.gap is None for r in recs])          # read back as each is pushed
        scratch.extend(getattr(r, "samples_file", None) for r in recs)
        return real_row(row, art, recs, *a, **k)
    monkeypatch.setattr(S, "prepare", prepare)
    monkeypatch.setattr(B, "baseline_hr", baseline)
    monkeypatch.setattr(S, "_pipeline_row", pipeline_row)
    res = run_bench(BenchConfig(model=str(spec_export_dir), data=str(_folder(tmp_path, 6)),
                                runtime=["torch_student", "c_pipeline"], out=str(tmp_path / "bench"), progress=False))
    assert len(held) == 6 and max(held) <= 2, held             # this one (and the last one's, not yet collected)
    assert pushed == [[True] * 6]
    row = next(r for r in res["runtimes"] if r["runtime"] == "c_pipeline")
    assert row["status"] == "ok" and row["exact_hops_pct"] == 100.0 and res["baseline"]["status"] == "ok"
    assert [r["record_id"] for r in res["records"]] == [f"r{k:02d}" for k in range(6)]
    assert len(scratch) == 6 and not any(f is None or f.exists() for f in scratch)      # the scratch folder went after the runtimes


def test_time_domain_bench_holds_one_recordings_signals_at_a_time(tmp_path, monkeypatch):
    """The time-domain bench reads a folder one recording at a time and keeps its windows, not its samples: the
    classic baseline runs on each recording as it is streamed, when no other recording's float signals or device-rate
    windows (ReplayResult.raw, 4x its samples) are held (all of them were, read whole before the stream and kept to
    the end: 3.0 GB at 1,000 spot checks), and c_window is fed the device samples read back
    from a scratch file (the file gone after), its input codes still the stream's; the report as before (sorted by
    recording)."""
    import weakref

    from test_predict_targets import export_student

    from sqtool.data import hr_baseline as B
    from sqtool.firmware_bench import stream as St
    from sqtool.firmware_bench import window_fw as W
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    from sqtool.models import get_model_cfg
    exp = export_student(tmp_path / "e", get_model_cfg("cnn1d_student_xs"), ["c"], device_fs=125.0)
    read, raws, held, fed = [], [], [], []                      # weak references to each record, raw windows made
    real_replay, real_baseline, real_run = St.replay, B.baseline_hr, W.run_window_fw

    def replay(record, *a, **k):
        read.append(weakref.ref(record))
        rp = real_replay(record, *a, **k)
        raws.append(weakref.ref(rp.raw))
        return rp

    def baseline(record, *a, **k):
        held.append((sum(any(len(v) for v in r().signals.values()) for r in read if r() is not None),
                     sum(w() is not None for w in raws)))
        return real_baseline(record, *a, **k)

    def run_window_fw(fw, streams, *a, **k):
        fed.append((type(streams).__name__, len(streams), list(getattr(streams, "files", ()))))
        return real_run(fw, streams, *a, **k)
    monkeypatch.setattr(St, "replay", replay)
    monkeypatch.setattr(B, "baseline_hr", baseline)
    monkeypatch.setattr(W, "run_window_fw", run_window_fw)
    data = tmp_path / "data"
    data.mkdir()
    for k in (3, 0, 5, 1, 4, 2):
        write_wrist_npz(data / f"r{k:02d}.npz", seconds=12 + 4 * k, hr_bpm=70 + 5 * k, seed=k)
    res = run_bench(BenchConfig(model=str(exp), data=str(data), runtime=["c_host", "c_window"],
                                out=str(tmp_path / "bench"), progress=False))
    assert len(held) == 6 and max(n for n, _ in held) <= 2, held    # this one (and the last one's, not yet collected)
    assert max(n for _, n in held) == 1, held
    assert len(fed) == 1 and fed[0][:2] == ("OnDisk", 6) and not any(f.exists() for f in fed[0][2])
    rows = {r["runtime"]: r for r in res["runtimes"]}
    assert rows["c_window"]["status"] == "ok" and rows["c_window"]["front_end"]["codes_equal_pct"] >= 99.5
    assert res["baseline"]["status"] == "ok" and res["provenance"]["records"] == 6
    assert [s["record_id"] for s in res["series"]["records"]] == [f"r{k:02d}" for k in range(6)]
