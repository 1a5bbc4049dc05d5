"""`data inspect` and `data quality` of a dataset file hold one recording at a time: a sweep's 134 h corpus (200 NPZ
files of 20-60 min at 125 Hz, PPG + accelerometer) described by a dataset.yaml peaked at 2.0 GB in `data inspect`,
every recording read into one list before the summary, against 87 MB for the same folder without the dataset.yaml
(read file by file); a hospital corpus ten times larger would not fit. Now 106 MB. The checks over the whole file
(skipped and excluded files, split, the report) still come, after the last recording."""
from __future__ import annotations

import json
import weakref

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.data import dataset_reader
from sqtool.data.dataset_file import load_dataset_file

N_FILES = 6


def _corpus(root):
    rec = root / "rec"
    rec.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(125 * 60) / 125.0
    for i in range(N_FILES):
        ppg = np.sin(2 * np.pi * 1.2 * t) + 0.05 * rng.standard_normal(t.size)
        np.savez(rec / f"P{i // 2:02d}_r{i % 2}.npz", ppg=ppg, fs=125.0)
    np.savez(rec / "P09_flat.npz", ppg=np.zeros(t.size), fs=125.0)          # a bad file: listed, not read twice
    (root / "dataset.yaml").write_text(
        "name: ward\nformat: npz\nroot: rec\nchannels:\n  ppg: ppg\n"
        "subject:\n  pattern: \"^(?P<subject>P\\\\d+)_\"\nexclude:\n  P02_r1: lead off\nsplit:\n  test: [P01]\n")
    return root / "dataset.yaml"


@pytest.fixture
def live(monkeypatch):
    """The most recordings' signals alive at once while a command runs."""
    state = {"alive": 0, "peak": 0}
    read_one = dataset_reader._read_one

    def counted(*a, **kw):
        rec = read_one(*a, **kw)
        state["alive"] += 1
        state["peak"] = max(state["peak"], state["alive"])
        weakref.finalize(rec.signals["ppg"], lambda: state.__setitem__("alive", state["alive"] - 1))
        return rec
    monkeypatch.setattr(dataset_reader, "_read_one", counted)
    return state


def test_inspect_of_a_dataset_file_holds_one_recording_at_a_time(tmp_path, capsys, live):
    yaml = _corpus(tmp_path / "ward")
    assert main(["data", "inspect", "--data", str(yaml), "--no-progress", "--skip-bad", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["records"] == N_FILES - 1 and s["subjects"] == 3                 # P02_r1 excluded
    assert len(s["skipped"]) == 1 and "P09_flat" in s["skipped"][0]
    assert s["dataset_file"]["excluded"] == {"P02_r1": "lead off"}
    assert s["dataset_file"]["split"] == {"train": ["P00", "P02"], "test": ["P01"]}
    assert live["peak"] <= 2, f"{live['peak']} recordings in memory at once"


def test_quality_of_a_dataset_file_holds_one_recording_at_a_time(tmp_path, capsys, live):
    yaml = _corpus(tmp_path / "ward")
    (tmp_path / "ward" / "rec" / "P09_flat.npz").unlink()
    assert main(["data", "quality", "--data", str(yaml), "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == N_FILES - 1
    assert live["peak"] <= 2, f"{live['peak']} recordings in memory at once"


def test_iter_records_gives_what_records_gives(tmp_path):
    yaml = _corpus(tmp_path / "ward")
    whole, one_by_one = load_dataset_file(yaml), load_dataset_file(yaml)
    a = whole.records(on_error="skip")
    b = list(one_by_one.iter_records(on_error="skip"))
    assert [r.record_id for r in a] == [r.record_id for r in b] == ["P00_r0", "P00_r1", "P01_r0", "P01_r1", "P02_r0"]
    assert all(np.array_equal(x.signals["ppg"], y.signals["ppg"]) for x, y in zip(a, b))
    assert whole.report == one_by_one.report
