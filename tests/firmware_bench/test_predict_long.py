"""`sqtool predict` on long recordings: what it holds per recording is bounded by its windows, not its samples (the
float signals and int16 device samples are released once the front end has run), the network runs NET_WINDOWS
windows at a time, and the CSV is the very same as in one piece."""
from __future__ import annotations

import json

import numpy as np
from fwb_helpers import write_wrist_npz

import sqtool.export.pipeline as pipeline
from sqtool.firmware_bench import predict as P
from sqtool.firmware_bench import spectral as S
from sqtool.firmware_bench.runtimes import load_artifacts


def _with_gap(path, seconds: float = 60.0):
    """A 125 Hz wrist recording with a 6 s gap (NaN PPG) at 20-26 s: windows held, one flagged."""
    write_wrist_npz(path, seconds=seconds)
    z = dict(np.load(path))
    z["ppg"][20 * 125:26 * 125] = np.nan
    np.savez(path, **z)
    return path


def test_the_network_in_blocks_writes_the_whole_runs_csv(spec_export_dir, tmp_path, monkeypatch):
    """NET_WINDOWS = 3 (a test-only knob: blocks end inside the recording, across its gap) and flatness in blocks of
    2 windows give the CSV and summary the network in one call gives, byte for byte; the network ran in blocks."""
    data = tmp_path / "data"
    data.mkdir()
    _with_gap(data / "a.npz")
    write_wrist_npz(data / "b.npz", seconds=30, hr_bpm=120, seed=1)

    def run(out):
        res = P.predict(P.PredictConfig(model=str(spec_export_dir), data=str(data), out=str(out), runtime="c",
                                        plots="none", progress=False))
        return res, {r["csv"]: (out / r["csv"]).read_bytes() for r in res["recordings"]}

    whole, whole_csv = run(tmp_path / "whole")
    calls = []
    real = S.run_window_runtime
    monkeypatch.setattr(P, "NET_WINDOWS", 3)
    monkeypatch.setattr(pipeline, "FLAT_BLOCK", 2)
    monkeypatch.setattr(S, "run_window_runtime", lambda rt, codes: calls.append(len(codes)) or real(rt, codes))
    blocks, blocks_csv = run(tmp_path / "blocks")
    assert blocks_csv == whole_csv
    assert [r["windows"] for r in whole["recordings"]] == [27, 12] and max(calls) == 3 and sum(calls) == 39
    assert json.dumps(blocks["recordings"]) == json.dumps(whole["recordings"])      # gaps, seconds, medians
    assert "ppg" in blocks["recordings"][0]["gaps"] and blocks["recordings"][0]["flagged_windows"] >= 1


def test_prepared_recordings_keep_their_windows_not_their_samples(spec_export_dir, tmp_path):
    """Once its front end has run, a recording the C pipeline will not push keeps no int16 samples and no float
    signals (a folder's recordings are not all held until the network runs); its seconds and gaps are said as
    before. One the pipeline may push (its rate) keeps its int16 samples for it."""
    _with_gap(tmp_path / "a.npz", seconds=30)
    art = load_artifacts(str(spec_export_dir))
    records = list(S.iter_load(tmp_path / "a.npz"))
    for runtime, kept in (("c", False), ("", True)):                # c: the Python front end; "": the pipeline
        cfg = P.PredictConfig(model=str(spec_export_dir), data=str(tmp_path), runtime=runtime, progress=False)
        rec = P.prepare_spectral(cfg, art, list(records))["recs"][0]
        assert all(np.size(v) == 0 for v in rec.record.signals.values())
        assert (rec.x16 is not None) == kept and rec.seconds == 30.0
        assert P.gaps_of(rec)["gaps"] == records[0].gap_text() and "ppg" in rec.gaps


def test_a_recording_is_let_go_before_the_next_is_read(spec_export_dir, tmp_path):
    """Records read lazily (a folder of day-long files): when the reader reads the next one, predict holds nothing
    of the one before (its float signals: 1.3 GB at the peak of reading a day at 64 Hz), through the readers'
    generators, the front end's loop and its bar."""
    import gc
    import weakref
    data = tmp_path / "data"
    data.mkdir()
    for k in range(3):
        write_wrist_npz(data / f"r{k}.npz", seconds=20, seed=k)
    refs, alive = [], []

    def reading():
        for r in S.iter_load(data):
            gc.collect()
            alive.extend(ref() is not None for ref in refs)             # the earlier records' signals
            refs.append(weakref.ref(r.signals["ppg"]))
            yield r
            del r

    cfg = P.PredictConfig(model=str(spec_export_dir), data=str(data), runtime="c", progress=True)
    recs = P.prepare_spectral(cfg, load_artifacts(str(spec_export_dir)), reading())["recs"]
    assert len(recs) == 3 and alive == [False] * 3
