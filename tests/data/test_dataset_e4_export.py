"""Empatica E4 exports read as they come. A folder of E4 session files without a dataset.yaml (one sub-folder per
session, or one session folder) reads as `format: e4` with its defaults, one note line saying so; before, every file
was a plain CSV refused with the "format: e4" line (or, sub-folders, a name clash of S1/ACC and S2/ACC). And with
`format: e4`, a `files:` glob matching a session's other files ("**/*.csv": EDA.csv, TEMP.csv, HR.csv, IBI.csv,
tags.csv) reads each session once, from its BVP.csv; before, each of those was a recording of its own (EDA as ppg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file
from sqtool.data.readers import detect_kind, read_dataset
from tests.data.test_dataset_e4 import T0, _e4, _sessions, write_real_e4_session

NOTE = "an Empatica E4 export ({n}: BVP.csv and ACC.csv with E4 header rows), read as format: e4 (README: Empatica E4)"


def _other_files(d: Path, seconds: int = 60) -> None:
    """The rest of an E4 Connect session: EDA and TEMP at 4 Hz, HR at 1 Hz from 10 s, IBI, tags, info.txt (varying
    values: read as a recording, none would be a flat line and refused)."""
    t = np.arange(4 * seconds) / 4
    _e4(d / "EDA.csv", T0, 4, np.round(0.3 + 0.01 * np.sin(t), 6))
    _e4(d / "TEMP.csv", T0, 4, np.round(33 + 0.1 * np.cos(t / 7), 6))
    _e4(d / "HR.csv", T0 + 10, 1, 70.0 + np.arange(seconds - 10) % 5)
    (d / "IBI.csv").write_text(f"{T0:.6f}, IBI\n1.500000,0.800000\n2.300000,0.800000\n")
    (d / "tags.csv").write_text(f"{T0 + 30:.2f}\n")
    (d / "info.txt").write_text("Empatica E4 session export\n")


def _export(tmp_path: Path, sessions=("S1", "S2")) -> Path:
    """rec/<session>/ with every E4 file (`_sessions`' BVP and ACC, `_other_files`); dataset.yaml beside rec/ says
    `format: e4` and nothing else."""
    _sessions(tmp_path, sessions=sessions, yaml="format: e4\nroot: rec\n")
    for s in sessions:
        _other_files(tmp_path / "rec" / s)
    return tmp_path / "rec"


def _same(got, want) -> None:
    assert [(r.record_id, r.subject, r.fs) for r in got] == [(r.record_id, r.subject, r.fs) for r in want]
    for r, w in zip(got, want):
        assert r.meta["start_time"] == w.meta["start_time"] and r.meta["stream_files"] == w.meta["stream_files"]
        for ch in w.signals:
            np.testing.assert_array_equal(r.signals[ch], w.signals[ch], err_msg=ch)


def test_a_bare_folder_of_e4_sessions_reads_as_its_format_e4_dataset_file(tmp_path, capsys):
    rec = _export(tmp_path)
    want = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert detect_kind(rec) == "e4"
    _same(read_dataset(rec), want)
    assert [(r.record_id, r.subject, r.dataset) for r in read_dataset(rec)] == [("S1/BVP", "S1", "e4"),
                                                                                ("S2/BVP", "S2", "e4")]
    err = capsys.readouterr().err
    assert err.count(NOTE.format(n="2 sessions")) == 1, err          # once per folder, however often it is listed


def test_one_session_folder_reads_as_its_session(tmp_path, capsys):
    rec = _export(tmp_path, sessions=("S1",))
    (got,) = read_dataset(rec / "S1")
    (want,) = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert (got.record_id, got.subject) == ("BVP", "S1")           # in root: the folder's name is its subject
    for ch in want.signals:
        np.testing.assert_array_equal(got.signals[ch], want.signals[ch])
    assert main(["data", "inspect", "--data", str(rec / "S1"), "--no-progress"]) == 0
    cap = capsys.readouterr()
    assert f"note: {rec / 'S1'}: {NOTE.format(n='1 session')}" in cap.err
    assert "  recordings (1):" in cap.out and "Empatica E4 file" not in cap.out + cap.err


def test_data_inspect_of_a_bare_e4_folder_lists_its_sessions(tmp_path, capsys):
    rec = _export(tmp_path)
    assert main(["data", "inspect", "--data", str(rec), "--no-progress"]) == 0
    cap = capsys.readouterr()
    out = cap.out.splitlines()
    assert [line.split()[:3] for line in out[out.index("  recordings (2):") + 2:][:2]] == \
        [["S1/BVP", "S1", "55.0"], ["S2/BVP", "S2", "55.0"]]
    assert "skipped" not in cap.out and cap.err.count("note: ") == 1


@pytest.mark.parametrize("extra, kind", [("notes.csv", "csv"), ("S1/hr_reference.csv", "csv"),
                                         ("S1/BVP.npz", "holds 7 CSV and 1 NPZ recordings")])
def test_a_folder_with_other_recordings_is_read_as_before(tmp_path, extra, kind):
    """Any CSV (or NPZ) that is not one of E4's session files: no E4 export, read as it was (its E4 files refused
    as plain CSVs, each with the "format: e4" line; CSV beside NPZ one line)."""
    rec = _export(tmp_path, sessions=("S1",))
    (rec / extra).write_text("time,ppg\n0,1\n0.01,2\n") if extra.endswith(".csv") else \
        np.savez(rec / extra, ppg=np.arange(640.0), fs=64.0)
    try:
        got = detect_kind(rec)
    except SqtoolError as e:
        got = str(e)
    assert got == kind or kind in got


def test_a_bvp_without_e4_header_rows_is_no_e4_export(tmp_path):
    """BVP.csv and ACC.csv written by another logger (column names, no start and rate rows): a plain CSV folder."""
    d = tmp_path / "rec" / "S1"
    d.mkdir(parents=True)
    (d / "BVP.csv").write_text("time,ppg\n" + "".join(f"{i / 64},{np.sin(i / 9):.4f}\n" for i in range(640)))
    (d / "ACC.csv").write_text("time,x,y,z\n" + "".join(f"{i / 32},0,0,64\n" for i in range(320)))
    assert detect_kind(tmp_path / "rec") == "csv"


def test_one_e4_file_alone_is_still_refused_as_a_plain_csv(tmp_path, capsys):
    bvp = _export(tmp_path, sessions=("S1",)) / "S1" / "BVP.csv"
    assert main(["data", "inspect", "--data", str(bvp), "--fs", "64", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "not samples: give its session folder as --data (E4 files alone read as an E4 export)" in err
    assert "Traceback" not in err


def test_a_reader_option_on_a_bare_e4_folder_is_one_line(tmp_path, capsys):
    rec = _export(tmp_path, sessions=("S1",))
    assert main(["data", "inspect", "--data", str(rec), "--fs", "64", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"{rec}: an Empatica E4 export: each file's header rows give its start and rate; drop --fs" in err
    assert "Traceback" not in err


def test_two_session_folders_of_one_name_name_the_dataset_yaml_to_write(tmp_path):
    rec = _export(tmp_path, sessions=("P01/S1", "P02/S1"))
    with pytest.raises(SqtoolError) as e:
        read_dataset(rec)
    assert str(e.value).startswith(f"{rec / 'dataset.yaml'}: P01/S1 and P02/S1 would be one subject, 'S1'")


def test_a_glob_over_every_csv_reads_each_session_once_from_its_bvp(tmp_path, capsys):
    """`files: "**/*.csv"` with format e4: the sessions the default glob ("**/BVP.csv") reads, the same data; the
    other files said in one note line and in the report (data inspect --json: dataset_file.not_recordings)."""
    _export(tmp_path)
    want = load_dataset_file(tmp_path / "dataset.yaml").records()
    y = tmp_path / "all.yaml"
    y.write_text('format: e4\nroot: rec\nfiles: "**/*.csv"\n')
    ds = load_dataset_file(y)
    _same(ds.records(), want)
    _same(list(ds.iter_records()), want)
    assert ds.report["not_recordings"] == ["ACC.csv", "EDA.csv", "HR.csv", "IBI.csv", "TEMP.csv", "tags.csv"]
    err = capsys.readouterr().err
    assert err.count("note: ") == 1 and (f"note: {y}: format e4: 12 files matching '**/*.csv' are a session's other "
                                         "E4 files (ACC.csv, EDA.csv, HR.csv, IBI.csv, TEMP.csv, tags.csv), not "
                                         "recordings: each session is read from its BVP.csv") in err, err
    assert main(["data", "inspect", "--data", str(y), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "  recordings (2):" in out and "skipped" not in out


def test_a_glob_file_in_a_folder_without_a_bvp_stays_a_recording(tmp_path):
    """Only files beside a BVP.csv stand for its session: a renamed export (ppg.csv + ACC.csv, channels said) reads
    as before."""
    d = tmp_path / "rec" / "S1"
    d.mkdir(parents=True)
    _e4(d / "ppg.csv", T0, 64, np.round(50 * np.sin(np.arange(64 * 30) / 9), 6))
    _e4(d / "ACC.csv", T0, 32, np.tile([[0], [0], [64]], 32 * 30))
    y = tmp_path / "dataset.yaml"
    y.write_text('format: e4\nroot: rec\nfiles: "**/*.csv"\n')
    ds = load_dataset_file(y)
    assert [r.record_id for r in ds.records()] == ["S1/ppg"] and "not_recordings" not in ds.report


# ----------------------------------------------------------------------------- a real recording, converted

@pytest.mark.realdata
def test_a_real_e4_export_gives_the_same_heart_rate_bare_through_a_glob_and_its_dataset_file(data_root, tmp_path):
    """wrist_exercise s3_walk as an E4 export with every E4 file (`write_real_e4_session`, `_other_files`): read as
    a bare folder, through `files: "**/*.csv"` and through a plain `format: e4` dataset.yaml, one recording S1/BVP
    each and the spectral baseline's heart rate on it identical (54 windows)."""
    from sqtool.data.hr_baseline import baseline_hr
    d = tmp_path / "rec" / "S1"
    write_real_e4_session(data_root, d)
    _other_files(d, seconds=120)
    (tmp_path / "dataset.yaml").write_text("format: e4\nroot: rec\n")
    (tmp_path / "all.yaml").write_text('format: e4\nroot: rec\nfiles: "**/*.csv"\n')
    (want,) = load_dataset_file(tmp_path / "dataset.yaml").records()
    t0 = np.arange(0, want.duration() - 8 + 1e-9, 2.0)
    hr = baseline_hr(want, t0)["hr"]
    assert np.isfinite(hr).all() and len(hr) == 54
    for got in (read_dataset(tmp_path / "rec"), load_dataset_file(tmp_path / "all.yaml").records()):
        assert [(r.record_id, r.subject) for r in got] == [("S1/BVP", "S1")]
        np.testing.assert_array_equal(baseline_hr(got[0], t0)["hr"], hr)


def test_acc_fs_on_a_bare_e4_folder_names_the_e4_header(tmp_path):
    """predict / bench --acc-fs on a bare E4 folder: refused (each E4 file's header rows state its rate) in one line
    naming that header, not only the NPZ / WFDB / dataset.yaml places a rate can come from."""
    from sqtool.firmware_bench.spectral import reader_options
    rec = _export(tmp_path, sessions=("S1",))
    with pytest.raises(SqtoolError, match=r"--acc-fs 32: .* holds e4 recordings, .*an E4 file's header rows"):
        reader_options(32.0, rec)
