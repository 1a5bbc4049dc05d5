"""A dataset file of a built-in layout under a name of its own (`format: troika`, `name: wrist_troika`): its
records take the file's name, so the subject keys (wrist_troika:01) are the ones `data pairs` labels its statistics
with, `--exclude-subjects` and the file's split match, and `data inspect` shows. The shipped files, whose names are
their layouts', read exactly what their reader reads (the benchmarks' subject keys and data)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.data.dataset_file import builtin_names, load_builtin, load_dataset_file
from sqtool.data.record import subject_key
from sqtool.data.shards import read_index

pytestmark = pytest.mark.realdata


def _wrist_troika(data_root, tmp_path, extra: str = ""):
    """A copy of three TROIKA training recordings and the extra one (DATA_S04_T01) under its own dataset file."""
    src, rec = data_root / "troika", tmp_path / "wt" / "rec"
    (rec / "Training_data").mkdir(parents=True)
    (rec / "Extra_TrainingData").mkdir()
    for i in ("01", "02", "03"):
        kind = "TYPE01" if i == "01" else "TYPE02"
        for f in (f"DATA_{i}_{kind}.mat", f"DATA_{i}_{kind}_BPMtrace.mat"):
            shutil.copy(src / "Training_data" / f, rec / "Training_data" / f)
    for f in ("DATA_S04_T01.mat", "BPM_S04_T01.mat"):
        shutil.copy(src / "Extra_TrainingData" / f, rec / "Extra_TrainingData" / f)
    p = tmp_path / "wt" / "dataset.yaml"
    p.write_text("name: wrist_troika\nformat: troika\nroot: rec\nlabels: {hr: {reader: hr}}\n"
                 "exclude: {DATA_S04_T01: likely SP Cup test subject S04}\n" + extra)
    return p


def test_records_take_the_files_name_and_its_exclusion_still_applies(data_root, tmp_path):
    ds = load_dataset_file(_wrist_troika(data_root, tmp_path))
    recs = ds.records()
    assert {r.dataset for r in recs} == {"wrist_troika"}
    assert sorted(subject_key(r.dataset, r.subject) for r in recs) == ["wrist_troika:01", "wrist_troika:02",
                                                                       "wrist_troika:03"]
    assert list(ds.report["excluded"]) == ["DATA_S04_T01"]                # by record id, whatever the name
    from sqtool.data.dataset_reader import dataset_units, read_unit       # the pair miner's path, one file at a time
    ctx: dict = {}
    one = [r for u in dataset_units(ds, ctx) for r in read_unit(ds, u, ctx)[0]]
    assert {r.dataset for r in one} == {"wrist_troika"} and len(one) == 3


def test_the_files_split_holds_its_subjects_out(data_root, tmp_path):
    from sqtool.data.heldout import file_split, heldout_keys
    ds = load_dataset_file(_wrist_troika(data_root, tmp_path, "split: {test: ['03']}\n"))
    recs = ds.records()
    split = file_split(ds, recs)
    assert split == ["03"]                                  # [] before: the records were named troika
    keys = {subject_key(r.dataset, r.subject) for r in recs}
    assert heldout_keys(keys, split=split, dataset=ds.name)[0] == ["wrist_troika:03"]


def test_pairs_exclude_subjects_by_the_files_name(data_root, tmp_path, capsys):
    p = _wrist_troika(data_root, tmp_path)
    out = tmp_path / "p"
    assert main(["data", "pairs", "--data", str(p), "--model", "spec_teacher_m", "--workers", "1", "--no-progress",
                 "--exclude-subjects", "wrist_troika:01", "--out", str(out)]) == 0
    assert "no recording of that subject" not in capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert list(m["datasets"]) == ["wrist_troika"]
    assert m["datasets"]["wrist_troika"]["heldout_subjects"] == ["wrist_troika:01"]
    assert set(read_index(out)[1]["subjects"]) == {"wrist_troika/02", "wrist_troika/03"}


def test_inspect_shows_the_files_name(data_root, tmp_path, capsys):
    p = _wrist_troika(data_root, tmp_path)
    assert main(["data", "inspect", "--data", str(p), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kind"] == "wrist_troika" and s["dataset_file"]["format"] == "troika"


@pytest.mark.parametrize("name", builtin_names())
def test_shipped_files_read_what_their_reader_reads(data_root, name):
    """Under its own name a shipped file's records are its reader's, unchanged: the same dataset name, subject keys,
    record ids, signals and labels (less its exclude list), so no benchmark's subjects or figures move."""
    from sqtool.data.readers import read_dataset
    ds = load_builtin(name, data_root)
    mine = ds.records()
    raw = [r for r in read_dataset(ds.root, kind=ds.format) if str(r.record_id) not in ds.exclude]
    assert [(r.dataset, subject_key(r.dataset, r.subject), r.record_id) for r in mine] == \
        [(name, subject_key(name, r.subject), r.record_id) for r in raw]
    assert {r.dataset for r in raw} == {name}
    for a, b in zip(mine, raw):
        assert a.signals.keys() == b.signals.keys() and a.fs == b.fs
        assert all(np.array_equal(a.signals[c], b.signals[c], equal_nan=True) for c in a.signals)
        for k, lab in b.labels.items():
            if k not in ds.labels:                          # a task label the file names is its reader label's copy
                assert np.array_equal(np.asarray(a.labels[k].values, float), np.asarray(lab.values, float),
                                      equal_nan=True)
