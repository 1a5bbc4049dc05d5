"""Files in different folders that the default subject rule (a file's name) would make one subject are refused,
in a dataset.yaml and in a bare folder, naming the two files and the rule to write; with a rule they read."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file
from sqtool.data.dataset_reader import dataset_units
from sqtool.data.readers import read_dataset

YAML = "format: csv\nroot: rec\nfiles: '*/*.csv'\ntime_column: time\nchannels: {ppg: ppg}\n"


def layout(root: Path, names: dict[str, list[str]]) -> Path:
    """root/<folder>/<name>.csv: 20 s of PPG at 64 Hz each."""
    t = np.arange(0, 20, 1 / 64)
    for folder, files in names.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for n in files:
            np.savetxt(root / folder / f"{n}.csv", np.c_[t, np.sin(2 * np.pi * 1.2 * t)], delimiter=",",
                       header="time,ppg", comments="", fmt="%.6f")
    return root


def refused(fn) -> str:
    with pytest.raises(SqtoolError) as e:
        fn()
    return str(e.value)


PEOPLE = {"P01": ["walk", "run"], "P02": ["walk", "run"]}        # one folder per person, activities as names


def test_a_dataset_file_without_a_subject_rule_is_refused_where_names_repeat_across_folders(tmp_path):
    layout(tmp_path / "rec", PEOPLE)
    (tmp_path / "dataset.yaml").write_text(YAML)
    ds = load_dataset_file(tmp_path / "dataset.yaml")
    msg = refused(ds.records)
    assert msg.startswith(f"{tmp_path / 'dataset.yaml'}: P01/run and P02/run would be one subject, 'run' (no "
                          "subject rule: the default is the file's name; 2 names in more than one folder)")
    assert "subject: {pattern: '^(?P<subject>[^/]+)/'} (the first folder)" in msg and "\n" not in msg
    assert refused(lambda: dataset_units(load_dataset_file(tmp_path / "dataset.yaml"))) == msg   # the miner's path


@pytest.mark.parametrize("rule, subjects", [("{pattern: '^(?P<subject>[^/]+)/'}", {"P01", "P02"}),
                                            ("{pattern: '(?P<subject>[^/.]+)[.][^/]*$'}", {"walk", "run"})])
def test_either_suggested_rule_reads_the_same_layout(tmp_path, rule, subjects):
    """The two rules the message offers, as written there, parse and name the subjects they say."""
    layout(tmp_path / "rec", PEOPLE)
    (tmp_path / "dataset.yaml").write_text(YAML + f"subject: {rule}\n")
    recs = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert {r.subject for r in recs} == subjects and len(recs) == 4


def test_names_unique_across_folders_keep_the_default(tmp_path):
    layout(tmp_path / "rec", {"day1": ["alice"], "day2": ["bob"]})
    (tmp_path / "dataset.yaml").write_text(YAML)
    assert sorted(r.subject for r in load_dataset_file(tmp_path / "dataset.yaml").records()) == ["alice", "bob"]


def test_a_bare_folder_is_refused_the_same_way_and_a_flat_one_reads(tmp_path):
    root = layout(tmp_path / "bare", PEOPLE)
    msg = refused(lambda: read_dataset(root))
    assert msg.startswith(f"{root}: P01/run.csv and P02/run.csv would be one subject, 'run'")
    assert "in a dataset.yaml beside the recordings" in msg
    flat = layout(tmp_path / "flat", {".": ["s1", "s2"]})
    assert sorted(r.subject for r in read_dataset(flat)) == ["s1", "s2"]


def test_a_bare_folder_a_dataset_file_describes_is_refused_naming_that_file(tmp_path):
    """`predict --data my_watch/recordings` (the README's bare-folder line) on subject folders: the refusal names
    my_watch/dataset.yaml, whose root: is that folder and whose subject rule reads it; a file whose root is another
    folder is not named."""
    root = layout(tmp_path / "my_watch" / "recordings", PEOPLE)
    (tmp_path / "my_watch" / "dataset.yaml").write_text(YAML.replace("root: rec", "root: recordings")
                                                        + "subject: {pattern: '^(?P<subject>[^/]+)/'}\n")
    msg = refused(lambda: read_dataset(root))
    assert msg.startswith(f"{root}: P01/run.csv and P02/run.csv would be one subject, 'run'") and "\n" not in msg
    assert msg.endswith(f"; or give --data {tmp_path / 'my_watch' / 'dataset.yaml'}, which describes this folder "
                        "(its root:) and reads it through its subject rule, stream files and labels")
    assert {r.subject for r in load_dataset_file(tmp_path / "my_watch" / "dataset.yaml").records()} == {"P01", "P02"}
    (tmp_path / "my_watch" / "dataset.yaml").write_text(YAML)             # root: rec, another folder
    assert "--data" not in refused(lambda: read_dataset(root))
