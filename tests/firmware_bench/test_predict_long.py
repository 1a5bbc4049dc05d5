"""`sqtool predict` on long recordings: what it holds per recording is bounded by its windows, not its samples (the
float signals and int16 device samples are released once the front end has run), the network runs NET_WINDOWS
windows at a time, and the CSV is the very same as in one piece."""
from __future__ import annotations

import json

import numpy as np
import pytest
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


def _small_blocks(monkeypatch):
    """The blocks a day-long recording is worked in, made small enough for a test recording to span many."""
    import sqtool.data.frontend as F
    import sqtool.data.hr_spectra as H
    monkeypatch.setattr(S, "PUSH_SAMPLES", 1 << 14, raising=False)
    monkeypatch.setattr(H, "HOLD_BLOCK", 1 << 14, raising=False)
    monkeypatch.setattr(F, "INT16_BLOCK", 1 << 14, raising=False)


def _prepared(spec_export_dir, path, gains, cache):
    art = load_artifacts(str(spec_export_dir))
    md = art.metadata
    return S.prepare(next(S.iter_load(path)), md["model_cfg"], cache, S.export_ppg_sensors(art),
                     S.has_acc_resampler(md), gains)


@pytest.mark.parametrize("gains", ["robust", None])
def test_a_longer_recording_costs_about_its_own_size_more(spec_export_dir, tmp_path, monkeypatch, gains):
    """The front end's memory grows with the recording by about its float samples, not many times them: from 90 s to
    360 s of a 125 Hz wrist recording (PPG with a gap, acc x, y, z) the traced peak of `spectral.prepare` grows by
    under 3x the samples added (0.8x; was 10.6x: a (C, N) float copy, whole-recording int64 flags and the band-pass's
    Python ints), robust and device gains alike. What a day at 64 Hz costs: README, predict."""
    import tracemalloc
    _small_blocks(monkeypatch)
    cache = {}
    _prepared(spec_export_dir, write_wrist_npz(tmp_path / "warm.npz", seconds=20), gains, cache)   # imports, tables
    peaks, raw = [], []
    for seconds in (90, 360):
        path = _with_gap(tmp_path / f"r{seconds}.npz", seconds=seconds)
        raw.append(sum(v.nbytes for v in next(S.iter_load(path)).signals.values()))
        tracemalloc.start()
        try:
            _prepared(spec_export_dir, path, gains, cache)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert (peaks[1] - peaks[0]) < 3 * (raw[1] - raw[0]), (peaks, raw)


def test_the_recording_in_blocks_is_the_whole_recordings(spec_export_dir, tmp_path, monkeypatch):
    """prepare's device samples (row by row, held and quantised in blocks, the rows never stacked) and its codes
    (the streaming front end, PUSH_SAMPLES at a time) are the whole recording's to the bit: one block each, and the
    whole-recording `spectra` / `flagged_q15` of the same samples."""
    import dataclasses

    from sqtool.data.frontend import flagged_q15, spectra
    from sqtool.export.pipeline import scores
    path = _with_gap(tmp_path / "a.npz", seconds=300)
    for gains in ("robust", None):
        whole = _prepared(spec_export_dir, path, gains, {})
        with monkeypatch.context() as m:
            _small_blocks(m)
            blocks = _prepared(spec_export_dir, path, gains, {})
        assert np.array_equal(blocks.x16, whole.x16) and np.array_equal(blocks.gap, whole.gap)
        for k in ("codes", "t0", "flagged_q15", "valid"):
            assert np.array_equal(getattr(blocks, k), getattr(whole, k)), k
        fe, tab = S.check_rate(load_artifacts(str(spec_export_dir)).metadata["model_cfg"], whole.fs_in, "a")
        fe = dataclasses.replace(fe, n_ppg=whole.n_ppg)                 # the export's sensors (ppg repeated)
        codes, t0, _, quiet = spectra(fe, whole.x16, whole.gap, tables=tab, ppg_quiet=True)
        fq = flagged_q15(fe, whole.gap, whole.x16.shape[1], tables=tab)
        assert np.array_equal(codes, whole.codes) and np.array_equal(t0, whole.t0)
        assert np.array_equal(fq, whole.flagged_q15) and np.array_equal(scores(fq, quiet), whole.valid)
        assert whole.gap.sum() == 6 * 125 and (~whole.valid).any()


def test_a_spectral_export_is_checked_without_torch(spec_export_dir):
    """predict's checks of a spectral heart-rate export (`load_export`: its front family, its filter) load no model
    registry, and its provenance lines (a synthetic-only model on other data) no checkpoint module: both import
    torch, 190 MB resident that the spectral path never uses (an hour's recording peaked at 0.36 GB for it)."""
    import subprocess
    import sys
    code = ("import sys; from sqtool.firmware_bench import predict as P, provenance as V; "
            f"P.load_export(P.PredictConfig(model={str(spec_export_dir)!r}, data='x')); "
            "assert V.synthetic_warning({'troika:s1'}, {'synthetic:syn000'}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
