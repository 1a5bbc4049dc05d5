"""`data pairs` on a dataset.yaml whose recordings are one CSV per stream (session/ppg.csv + session/acc.csv, each
with its own time column, the accelerometer slower and starting later): the miner reads each recording through the
one assembly every command uses (`dataset_reader.read_unit`: streams aligned on their clock, cut to their overlap),
so its pairs are those of the same data written as one CSV per recording; and a resume notices a stream file
rewritten since the kill, as it does the recording's own file."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.pairs import PairsConfig, mine_pairs
from sqtool.data.shards import ShardWriter
from sqtool.data.synthetic import synth_record

T0_MS = 1_700_000_000_000.0     # epoch milliseconds: both stream files on one wall clock
FS, K, LEAD = 125.0, 5, 150     # PPG rate; the accelerometer every K-th PPG sample (25 Hz), from PPG sample LEAD on
SESSIONS = {"p01_a": 0, "p01_b": 1, "p02_a": 2}     # session -> seed (subject p01 twice, p02 once)


def _csv(path: Path, header: str, rows) -> None:
    with open(path, "w") as f:
        f.write(header + "\n")
        for row in rows:
            f.write(",".join("" if v is None else f"{v:.6f}" for v in row) + "\n")


def _write(root: Path) -> tuple[Path, Path]:
    """(streams/dataset.yaml, single/dataset.yaml): the same 300 s sessions as ppg.csv + acc.csv per session folder,
    and as one CSV per session holding the time the streams share (the accelerometer on every K-th row)."""
    for name, seed in SESSIONS.items():
        r = synth_record(300, fs=FS, artifacts=0.3, seed=seed)
        ppg, acc = r.signals["ppg"], [r.signals[a] for a in ("acc_x", "acc_y", "acc_z")]
        t = T0_MS + np.arange(ppg.size) * 1000.0 / FS
        d = root / "streams" / name
        d.mkdir(parents=True)
        _csv(d / "ppg.csv", "t,green", zip(t, ppg))
        _csv(d / "acc.csv", "t,x,y,z", zip(*(v[LEAD::K] for v in (t, *acc))))
        m = (ppg.size - LEAD) // K * K                    # the overlap: to where the last acc sample's period ends
        rows = [(t[i], ppg[i], *((a[i] for a in acc) if (i - LEAD) % K == 0 else (None,) * 3))
                for i in range(LEAD, LEAD + m)]
        (root / "single").mkdir(exist_ok=True)
        _csv(root / "single" / f"{name}.csv", "t,green,x,y,z", rows)
    head = "name: watch\nformat: csv\ntime_column: t\ntime_unit: ms\n"
    (root / "streams" / "dataset.yaml").write_text(
        head + 'files: "**/ppg.csv"\nsubject: {pattern: "^(?P<subject>p[0-9]+)_"}\nchannels:\n  ppg: green\n'
        + "".join(f"  acc_{a}: {{file: acc.csv, column: {a}, unit: g}}\n" for a in "xyz"))
    (root / "single" / "dataset.yaml").write_text(
        head + 'files: "*.csv"\nsubject: {pattern: "^(?P<subject>p[0-9]+)_"}\nchannels:\n  ppg: green\n'
        + "".join(f"  acc_{a}: {{column: {a}, unit: g, fs: {FS / K:g}}}\n" for a in "xyz"))
    return root / "streams" / "dataset.yaml", root / "single" / "dataset.yaml"


@pytest.fixture(scope="module")
def two_layouts(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("pairs_streams"))


def _pairs(out: Path) -> tuple[dict, list]:
    """(index.json less its shard hashes, [(pairs, {meta array: values})] per shard)."""
    index = json.loads((out / "index.json").read_text())
    shards = [(np.load(out / e["file"]), dict(np.load(out / e["meta"]))) for e in index["shards"]]
    for e in index["shards"]:
        e.pop("sha256")
    return index, shards


@pytest.mark.parametrize("opts", [dict(channels=["ppg", "acc_x"], own_model=True), dict(model="spec_teacher_m")],
                         ids=["time_domain_ppg_acc", "spectral"])
def test_stream_files_mine_the_pairs_of_one_csv_per_recording(two_layouts, tmp_path, opts):
    """The accelerometer read from acc.csv (25 Hz, 1.2 s after the PPG began) and the PPG from ppg.csv give the
    pairs, windows, partners and qualities of the one-CSV recordings: the time-domain pairs carry acc_x, the
    spectral ones are mined from the PPG and accelerometer spectra."""
    streams, single = two_layouts
    got = {}
    for ds in (streams, single):
        out = tmp_path / ds.parent.name
        m = mine_pairs(PairsConfig(input=[str(ds)], out=str(out), workers=1, **opts), progress=False)
        assert m["records"] == 3 and m["subjects"] == 2 and m["real_pairs"] > 0
        got[ds.parent.name] = _pairs(out)
    (ia, sa), (ib, sb) = got["streams"], got["single"]
    assert ia == ib
    assert ia["counts"]["watch"]["good"] > 0 and ia["counts"]["watch"]["poor"] > 0
    for (xa, ma), (xb, mb) in zip(sa, sb):
        assert np.array_equal(xa, xb)
        assert ma.keys() == mb.keys() and all(np.array_equal(ma[k], mb[k]) for k in ma)


def test_a_stream_file_rewritten_since_the_kill_refuses_the_resume(two_layouts, tmp_path, monkeypatch):
    """The resume fingerprint covers the stream files a recording is assembled from, not only the file `files:`
    matches: an acc.csv rewritten between the kill and --resume would be mined again into other pairs."""
    streams = Path(shutil.copytree(two_layouts[0].parent, tmp_path / "streams")) / "dataset.yaml"
    flush = ShardWriter.flush

    def interrupted(self):
        flush(self)
        raise KeyboardInterrupt
    monkeypatch.setattr(ShardWriter, "flush", interrupted)
    cfg = dict(input=[str(streams)], out=str(tmp_path / "cut"), workers=1, shard_mb=0.01, channels=["ppg", "acc_x"],
               own_model=True)
    with pytest.raises(KeyboardInterrupt):
        mine_pairs(PairsConfig(**cfg), progress=False)
    monkeypatch.setattr(ShardWriter, "flush", flush)
    f = streams.parent / "p02_a" / "acc.csv"               # a later session's: not mined yet
    st = f.stat()
    f.write_text(f.read_text().replace("0.", "1."))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(SqtoolError, match="inputs changed since it started"):
        mine_pairs(PairsConfig(**cfg), progress=False, resume=True)


def test_data_quality_scores_stream_files_as_one_csv_per_recording(two_layouts, capsys):
    """`data quality`, which reads the accelerometer too (its motion flag), scores the stream-file sessions as the
    one-CSV ones: the same windows, scores and good counts (a record id is the session's ppg.csv, there)."""
    from sqtool.cli import main
    got = []
    for ds in two_layouts:
        assert main(["data", "quality", "--data", str(ds), "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["per_record"]
        got.append([{**r, "record": r["record"].removesuffix("/ppg")} for r in rows])
    assert got[0] == got[1] and all(r["motion"] for r in got[0]) and sum(r["good"] for r in got[0]) > 0
