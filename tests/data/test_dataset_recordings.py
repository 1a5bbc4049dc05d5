"""--recordings PATTERN (predict, bench): a dataset file read for some of its recordings only, labels, subjects and
checks as for all; and a recording of a dataset file given alone (a stream-file layout's session/ppg.csv, whose
columns carry the device's names) is refused naming the dataset.yaml above it and the --recordings that picks it."""
from __future__ import annotations

import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import DataRef, load_dataset_file, pick_recordings, picks, resolve_data
from sqtool.data.dataset_reader import described_above
from tests.data.test_dataset_stream_files import _streams


def test_a_pattern_picks_a_recordings_id_or_a_leading_folder_of_it():
    assert picks(("s6_walk",), "s6_walk/ppg") and picks(("s6_*",), "s6_run/ppg") and picks(("*/ppg",), "s2_walk/ppg")
    assert picks(("s6_walk/ppg",), "s6_walk/ppg") and picks(("x", "s2*"), "s2_walk/ppg")
    assert not picks(("s6_walk",), "s6_walk2/ppg") and not picks(("ppg",), "s6_walk/ppg")
    assert not picks(("S6_walk",), "s6_walk/ppg")                            # case-sensitive, as record ids are


def test_a_dataset_file_reads_the_recordings_picked_only(tmp_path):
    y = _streams(tmp_path)
    every = load_dataset_file(y).records()
    ref = pick_recordings(resolve_data(str(y)), ["s02"])
    got = ref.dataset.records()
    assert [r.record_id for r in every] == ["s01/ppg", "s02/ppg", "s03/ppg"]
    assert [r.record_id for r in got] == ["s02/ppg"] and got[0].subject == "s02"
    same = next(r for r in every if r.record_id == "s02/ppg")
    assert set(got[0].signals) == set(same.signals) and (got[0].signals["ppg"] == same.signals["ppg"]).all()
    assert [r.record_id for r in ref.dataset.iter_records()] == ["s02/ppg"]                # one at a time: the same
    assert [r.record_id for r in pick_recordings(resolve_data(str(y)), ["s01", "s03/*"]).dataset.records()] == \
        ["s01/ppg", "s03/ppg"]
    assert pick_recordings(resolve_data(str(y)), []).dataset.recordings == ()               # none given: every one


def test_an_exclusion_of_a_recording_not_picked_is_no_unknown_name(tmp_path):
    y = _streams(tmp_path)
    y.write_text(y.read_text() + "exclude: {s03/ppg: strap off}\n")
    assert [r.record_id for r in pick_recordings(resolve_data(str(y)), ["s0[12]"]).dataset.records()] == \
        ["s01/ppg", "s02/ppg"]


def test_a_pattern_that_picks_nothing_and_a_folder_given_are_one_line(tmp_path):
    y = _streams(tmp_path)
    with pytest.raises(SqtoolError) as e:
        pick_recordings(resolve_data(str(y)), ["s9*"]).dataset.records()
    assert str(e.value) == (f"--recordings s9*: no recording of {y} is picked (3 recordings, e.g. s01/ppg, s02/ppg, "
                            "s03/ppg: a pattern matches a recording's id or a leading folder of it, e.g. s01)")
    with pytest.raises(SqtoolError, match=r"^--recordings s01: picks recordings of a dataset file .*; --data \S+rec "
                                          r"is no dataset file: give the recording or folder itself as --data$"):
        pick_recordings(resolve_data(str(tmp_path / "rec")), ["s01"])
    with pytest.raises(SqtoolError, match="--data synthetic is synthetic$"):
        pick_recordings(DataRef("synthetic"), ["s01"])


def test_a_recording_given_alone_names_the_dataset_file_above_it(tmp_path, monkeypatch):
    """The session's ppg.csv, its acc.csv (a stream file of it) and the session folder: each names the dataset.yaml
    whose root holds it and the pattern that picks it; a file under no dataset file's root names none."""
    _streams(tmp_path)
    monkeypatch.chdir(tmp_path)
    said = "(dataset.yaml in a folder above describes it: give --data dataset.yaml --recordings {})"
    assert described_above("rec/s02/ppg.csv") == said.format("s02/ppg")
    assert described_above(tmp_path / "rec" / "s02" / "acc.csv") == said.format("s02")
    assert described_above("rec/s02") == said.format("s02")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.csv").write_text("t,green\n0,1\n")
    assert described_above("other/x.csv") == "" and described_above("") == ""
