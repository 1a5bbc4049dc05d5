"""Empatica E4 exports (BVP.csv at 64 Hz, ACC.csv at 32 Hz in 1/64 g; no column names, row 1 the start in UTC s, row 2
the rate) read through a dataset file of `format: e4`: each file a stream of the recording, aligned on the headers'
clock and cut to the overlap as stream files with time columns are. Before, `format: e4` was an unknown format and
such files read as CSVs whose header row was the start time."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file
from tests.data.bad_files import assert_one_line_and_listed

T0 = 1_500_000_000.0                # UTC s: 2017-07-14T02:40:00Z
SECONDS = 60


def _e4(path: Path, t0: float, fs: float, cols) -> None:
    """An E4 file: row 1 the start per column, row 2 the rate per column, then the samples (E4 writes ', ')."""
    cols = np.atleast_2d(cols)
    head = [", ".join([f"{t0:.6f}"] * len(cols)), ", ".join([f"{fs:.6f}"] * len(cols))]
    body = [", ".join(f"{v:.6f}" if not float(v).is_integer() else f"{int(v)}" for v in row) for row in cols.T]
    path.write_text("\n".join(head + body) + "\n")


def _signals(k: int):
    """(bvp at 64 Hz, acc (3, N) at 32 Hz in 1/64 g counts) of session k, SECONDS long."""
    tp, ta = np.arange(64 * SECONDS) / 64, np.arange(32 * SECONDS) / 32
    bvp = np.round(50 * np.sin(2 * np.pi * (70 + 5 * k) / 60 * tp), 6)
    acc = np.round(64 * np.stack([0.3 * np.sin(ta + k), 0.2 * np.cos(ta), 0.95 + 0.05 * np.sin(2 * ta)]))
    return bvp, acc


def _sessions(tmp_path: Path, sessions=("S1", "S2"), acc_late_s: int = 2, acc_short_s: int = 3,
              yaml: str | None = None) -> Path:
    """Sessions rec/<s>/BVP.csv + rec/<s>/ACC.csv: the accelerometer starts `acc_late_s` after the BVP (its row 1
    says so) and stops `acc_short_s` before it."""
    for k, s in enumerate(sessions):
        d = tmp_path / "rec" / s
        d.mkdir(parents=True)
        bvp, acc = _signals(k)
        _e4(d / "BVP.csv", T0, 64, bvp)
        _e4(d / "ACC.csv", T0 + acc_late_s, 32, acc[:, 32 * acc_late_s: acc.shape[1] - 32 * acc_short_s])
    y = tmp_path / "dataset.yaml"
    y.write_text(yaml if yaml is not None else
                 'format: e4\nroot: rec\nsubject: {pattern: "^(?P<subject>[^/]+)/"}\n')
    return y


def _npz_twin(tmp_path: Path, sessions=("S1", "S2"), late_s: int = 2, short_s: int = 3) -> Path:
    """The same recordings as one NPZ each, cut by hand to the time both streams cover, acc in g."""
    root = tmp_path / "npz"
    for k, s in enumerate(sessions):
        bvp, acc = _signals(k)
        (root / s).mkdir(parents=True)
        a = acc[:, 32 * late_s: acc.shape[1] - 32 * short_s] / 64
        np.savez(root / s / "BVP.npz", ppg=bvp[64 * late_s: bvp.size - 64 * short_s], acc_x=a[0], acc_y=a[1],
                 acc_z=a[2], fs_ppg=64.0, fs_acc_x=32.0, fs_acc_y=32.0, fs_acc_z=32.0, start_time=T0 + late_s)
    y = tmp_path / "npz.yaml"
    y.write_text('format: npz\nroot: npz\nfiles: "**/BVP.npz"\nsubject: {pattern: "^(?P<subject>[^/]+)/"}\n')
    return y


def test_an_e4_session_reads_as_the_same_data_in_one_npz(tmp_path):
    """BVP at 64 Hz from T0, ACC at 32 Hz from T0 + 2 s (its own row 1) to 3 s before the BVP's end: cut to the
    overlap on the headers' clock, each at its rate, the accelerometer's 1/64 g counts in g."""
    e4 = load_dataset_file(_sessions(tmp_path)).records()
    twins = load_dataset_file(_npz_twin(tmp_path)).records()
    assert [r.record_id for r in e4] == [r.record_id for r in twins] == ["S1/BVP", "S2/BVP"]
    for r, w in zip(e4, twins):
        assert r.subject == w.subject and r.fs == w.fs == {"ppg": 64.0, "acc_x": 32.0, "acc_y": 32.0, "acc_z": 32.0}
        for ch in w.signals:
            np.testing.assert_allclose(r.signals[ch], w.signals[ch], rtol=0, atol=1e-12, err_msg=ch)
        assert r.meta["start_time"] == w.meta["start_time"] == "2017-07-14T02:40:02.000Z"   # T0 + 2 s
        assert r.meta["stream_files"] == ["ACC.csv"] and r.duration() == SECONDS - 5


def test_channels_left_out_are_e4s_bvp_and_acc_in_1_64_g(tmp_path):
    """`format: e4` alone reads BVP.csv's column as ppg and ACC.csv's three as acc_x, acc_y, acc_z in 1/64 g:
    the same records as the channels written out; a BVP file alone is `channels: {ppg: 0}`."""
    spelled = ('format: e4\nroot: rec\nsubject: {pattern: "^(?P<subject>[^/]+)/"}\nchannels:\n  ppg: 0\n'
               + "".join(f"  acc_{a}: {{file: ACC.csv, column: {i}, unit: 1/64 g}}\n" for i, a in enumerate("xyz")))
    y = _sessions(tmp_path)
    short = load_dataset_file(y)
    assert {k: (c.file, c.column, c.unit) for k, c in short.channels.items()} == {
        "ppg": (None, 0, ""), "acc_x": ("ACC.csv", 0, "1/64 g"), "acc_y": ("ACC.csv", 1, "1/64 g"),
        "acc_z": ("ACC.csv", 2, "1/64 g")}
    (tmp_path / "long.yaml").write_text(spelled)
    for r, w in zip(short.records(), load_dataset_file(tmp_path / "long.yaml").records()):
        for ch in r.signals:
            np.testing.assert_array_equal(r.signals[ch], w.signals[ch])
    (tmp_path / "bvp.yaml").write_text(spelled.split("  acc_x")[0])
    (rec, _) = load_dataset_file(tmp_path / "bvp.yaml").records()
    assert list(rec.signals) == ["ppg"] and rec.duration() == SECONDS and rec.meta["start_time"].endswith(":00.000Z")


def test_an_hr_label_file_counts_from_the_cut_recording_start(tmp_path):
    """Labels of an E4 recording: a file per recording ("{record}" is S1/BVP), its starts in seconds from the
    recording's first sample, i.e. from where both streams have begun."""
    y = _sessions(tmp_path, sessions=("S1",))
    (tmp_path / "hr" / "S1").mkdir(parents=True)
    (tmp_path / "hr" / "S1" / "BVP.csv").write_text("start,hr\n" + "".join(f"{t},{70 + t}\n" for t in range(0, 48, 2)))
    y.write_text(y.read_text() + 'labels:\n  hr: {file: "hr/{record}.csv"}\n')
    (rec,) = load_dataset_file(y).records()
    assert rec.labels["hr"].times[:3].tolist() == [0.0, 2.0, 4.0] and rec.labels["hr"].values[:3].tolist() == [70, 72, 74]


@pytest.mark.parametrize("template, where", [("hr/{folder}.csv", "hr/P01/S1.csv"),
                                             ("rec/{record}/../hr.csv", "rec/P01/S1/hr.csv")])
def test_an_hr_label_file_named_by_the_session_folder(tmp_path, template, where):
    """`{stem}` is BVP for every E4 recording: `{folder}` (the recording's folder from root, P01/S1) names a label
    file per session, and `{record}/../` (P01/S1/BVP/..) reaches its folder. Before, `{folder}` was left as written
    (file not found) and the path was normalised before `{record}` was filled ("rec/hr.csv": not found)."""
    y = _sessions(tmp_path, sessions=("P01/S1",), yaml='format: e4\nroot: rec\nlabels:\n  hr: {file: "%s"}\n' % template)
    (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / where).write_text("start,hr\n" + "".join(f"{t},{70 + t}\n" for t in range(0, 48, 2)))
    (rec,) = load_dataset_file(y).records()
    assert rec.subject == "S1" and rec.labels["hr"].values[:3].tolist() == [70, 72, 74]


def test_a_label_file_named_by_folder_of_a_session_in_root_is_one_line(tmp_path):
    """An E4 session exported straight into root (rec/BVP.csv) has no folder: "hr/{folder}.csv" read hr/..csv
    ("label file not found"). Now one line naming the recording: {folder} needs recordings in sub-folders."""
    y = _sessions(tmp_path, sessions=("P01/S1",), yaml='format: e4\nroot: rec\nlabels:\n  hr: {file: "hr/{folder}.csv"}\n')
    for f in ("BVP.csv", "ACC.csv"):
        (tmp_path / "rec" / f).write_bytes((tmp_path / "rec" / "P01" / "S1" / f).read_bytes())
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(y).records()
    line = str(e.value)
    assert line.startswith(f"{tmp_path / 'rec' / 'BVP.csv'}: file ") and "\n" not in line, line
    assert line.endswith("this recording is in root itself: {folder} needs recordings in sub-folders (move it into "
                         "one, or narrow files: to the sub-folders' recordings)"), line


def test_data_inspect_shows_the_e4_recordings_and_the_acc_conversion(tmp_path, capsys):
    import json
    y = _sessions(tmp_path)
    assert main(["data", "inspect", "--data", str(y), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  channels: ppg @ 64 Hz, acc_x @ 32 Hz, acc_y @ 32 Hz, acc_z @ 32 Hz" in out
    assert "  accelerometer: acc_x, acc_y, acc_z: value in 1/64 g, / 64 -> g" in out
    at = out.index("  recordings (2):")
    assert out[at + 2].split() == ["S1/BVP", "S1", "55.0", "s", "ppg", "64", "Hz;", "acc_x,", "acc_y,", "acc_z", "32",
                                   "Hz", "2017-07-14T02:40:02.000Z", "+z", "100", "%", "ACC.csv"]
    assert main(["data", "inspect", "--data", str(y), "--no-progress", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["dataset_file"]["format"] == "e4"
    assert s["dataset_file"]["acc"] == [{"channels": ["acc_x", "acc_y", "acc_z"], "unit": "1/64 g", "gain": 1.0,
                                         "offset": 0.0, "to_g": 1 / 64}]


def test_without_a_subject_rule_a_session_is_its_folders_subject(tmp_path, capsys):
    """Every E4 recording is a BVP.csv: its file's name, the default subject elsewhere, named one subject "BVP" for
    one session and refused several (one name in two folders). The default is now its session folder's name, and
    `data inspect` lists it so."""
    y = _sessions(tmp_path, sessions=("S1", "S2", "S3"), yaml="format: e4\nroot: rec\n")
    assert [(r.record_id, r.subject) for r in load_dataset_file(y).records()] == \
        [("S1/BVP", "S1"), ("S2/BVP", "S2"), ("S3/BVP", "S3")]
    assert main(["data", "inspect", "--data", str(y), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[out.index("  recordings (3):") + 2].split()[:2] == ["S1/BVP", "S1"]


def test_one_session_folder_name_in_two_folders_without_a_rule_is_one_line(tmp_path):
    """P01/S1 and P02/S1 would both be subject S1 by default: refused, naming both and the rule that says which
    folder is the person (as for one file name in two folders); with that rule they read as P01 and P02."""
    y = _sessions(tmp_path, sessions=("P01/S1", "P02/S1"), yaml="format: e4\nroot: rec\n")
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(y).records()
    assert str(e.value).startswith(f"{y}: P01/S1 and P02/S1 would be one subject, 'S1' (no subject rule: the default "
                                   "is the folder's name;") and "subject: {pattern: '^(?P<subject>[^/]+)/'}" in \
        str(e.value) and "\n" not in str(e.value)
    y.write_text("format: e4\nroot: rec\nsubject: {pattern: '^(?P<subject>[^/]+)/'}\n")
    assert [r.subject for r in load_dataset_file(y).records()] == ["P01", "P02"]


def _break(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """A dataset whose S2/ACC.csv (or BVP.csv) is bad in one way, and its one error line's start."""
    y = _sessions(tmp_path)
    acc, bvp = tmp_path / "rec" / "S2" / "ACC.csv", tmp_path / "rec" / "S2" / "BVP.csv"
    rows = acc.read_text().splitlines()
    if kind == "rates_differ":
        rows[1] = "32.000000, 32.000000, 16.000000"
        acc.write_text("\n".join(rows) + "\n")
        return y, f"{acc}: row 2 (sample rate) differs between its columns (32, 32, 16); an E4 file's columns share " \
            "one sample rate"
    if kind == "starts_differ":
        rows[0] = f"{T0:.6f}, {T0 + 1:.6f}, {T0:.6f}"
        acc.write_text("\n".join(rows) + "\n")
        return y, f"{acc}: row 1 (start time) differs between its columns"
    if kind == "text_header":
        acc.write_text("\n".join(["x, y, z"] + rows[2:]) + "\n")
        return y, f"{acc}: row 1 (start time) holds 'x', not a number; an E4 file gives row 1 its start (UTC " \
            "seconds since 1970) and row 2 its sample rate (Hz)"
    if kind == "text_rate":
        rows[1] = "32.000000, 32.000000, Hz"
        acc.write_text("\n".join(rows) + "\n")
        return y, f"{acc}: row 2 (sample rate) holds 'Hz', not a number"
    if kind == "blank_start_cell":
        rows[0] = f"{T0:.6f}, , {T0:.6f}"
        acc.write_text("\n".join(rows) + "\n")
        return y, f"{acc}: row 1 (start time) holds '', not a number"
    if kind in ("nan_start", "nan_rate"):                # every column NaN: was "differs between its columns"
        row = kind == "nan_rate"
        rows[row] = "nan, nan, nan"
        acc.write_text("\n".join(rows) + "\n")
        what = "sample rate" if row else "start time"
        return y, f"{acc}: row {row + 1} ({what}) holds 'nan', not a number; an E4 file gives row 1 its start"
    if kind == "empty":
        acc.write_text("")
        return y, f"{acc}: file is empty"
    if kind == "blank":
        acc.write_text("\n\n")
        return y, f"{acc}: empty; an E4 file gives row 1 its start"
    if kind == "headers_only":
        acc.write_text("\n".join(rows[:2]) + "\n")
        return y, f"{acc}: no samples after its two header rows (start time, sample rate)"
    if kind == "ms_start":
        bvp.write_text(bvp.read_text().replace(f"{T0:.6f}", f"{T0 * 1000:.0f}", 1))
        return y, f"{bvp}: row 1 (start time) 1.5e+12 is not UTC seconds since 1970 (milliseconds?"
    if kind == "zero_rate":
        rows[1] = "0, 0, 0"
        acc.write_text("\n".join(rows) + "\n")
        return y, f"{acc}: row 2 (sample rate): sampling rate must be in (0, "
    if kind == "text_sample":
        rows[10] = "3, oops, 60"
        acc.write_text("\n".join(rows) + "\n")
        return y, f"{acc}: row 11 column 1 is not a number ('oops')"
    if kind == "fewer_columns":
        acc.write_text("\n".join(rows[:2] + [r.rsplit(",", 1)[0] for r in rows[2:]]) + "\n")
        return y, f"{acc}: its samples have 2 columns but its header rows 3"
    if kind == "ibi":
        acc.write_text(f"{T0:.6f}, IBI\n1.5, 0.8\n2.3, 0.8\n")
        return y, f"{acc}: an E4 IBI file (row 1 'start, IBI', then a time offset and interval per beat), not samples"
    if kind == "no_overlap":                               # another session's accelerometer: an hour later
        acc.write_text(acc.read_text().replace(f"{T0 + 2:.6f}", f"{T0 + 3602:.6f}"))
        return y, f"{acc}: its times 3602..3657 s do not overlap the recording's 0..60 s (from the first row of BVP.csv)"
    if kind == "missing":
        acc.unlink()
        return y, f"{bvp}: channel 'acc_x': stream file {acc} not found"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["rates_differ", "starts_differ", "text_header", "text_rate", "nan_start", "nan_rate",
                                  "blank_start_cell", "empty", "blank", "headers_only",
                                  "ms_start", "zero_rate", "text_sample", "fewer_columns", "ibi", "no_overlap",
                                  "missing"])
def test_each_bad_e4_file_is_one_line_naming_it(kind, tmp_path, capsys):
    assert_one_line_and_listed(*_break(kind, tmp_path), capsys)


@pytest.mark.parametrize("text, line", [
    ("fs: 64\n", "format e4: each file's own header rows give its start and rate (row 1: UTC seconds since 1970, "
                 "row 2: Hz); remove 'fs'"),
    ("time_column: t\n", "remove 'time_column'"),
    ("channels:\n  ppg: 0\n  acc_x: {file: ACC.csv, column: 0, time_column: t}\n",
     "channels.acc_x: time_column: an E4 file's header rows give its start and rate; remove it"),
    ("channels:\n  ppg: 0\n  acc_x: {file: ACC.csv, column: 0, unit: counts}\n",
     "channels.acc_x.unit: unknown accelerometer unit 'counts' (known: g, mg, m/s^2, 1/64 g)"),
])
def test_e4_keys_are_checked_when_the_file_is_read(tmp_path, text, line):
    (tmp_path / "dataset.yaml").write_text("format: e4\n" + text)
    with pytest.raises(SqtoolError, match=re.escape(line)):
        load_dataset_file(tmp_path / "dataset.yaml")


def test_a_channel_fs_that_disagrees_with_the_header_is_one_line(tmp_path):
    y = _sessions(tmp_path, sessions=("S1",))
    y.write_text(y.read_text() + "channels:\n  ppg: {column: 0, fs: 64}\n  acc_x: {file: ACC.csv, column: 0, fs: 50}\n")
    with pytest.raises(SqtoolError, match=re.escape(f"{tmp_path / 'rec' / 'S1' / 'ACC.csv'}: channels.acc_x.fs 50 Hz "
                                                    "disagrees with the file's header (32 Hz); wrong sampling rate")):
        load_dataset_file(y).records()


def test_the_readmes_e4_example_reads_such_sessions(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"<!-- e4-yaml -->\s*```yaml\n(.*?)```", readme, re.S)
    assert block, "README lost its Empatica E4 dataset.yaml example"
    _sessions(tmp_path, sessions=("P01/S1", "P01/S2", "P02/S1"), yaml=block.group(1))
    (tmp_path / "dataset.yaml").rename(tmp_path / "rec" / "dataset.yaml")
    recs = load_dataset_file(tmp_path / "rec" / "dataset.yaml").records()
    assert [(r.record_id, r.subject, r.fs["ppg"], r.fs["acc_z"], len(r.signals["ppg"])) for r in recs] == \
        [(f"{s}/BVP", s[:3], 64.0, 32.0, 64 * 55) for s in ("P01/S1", "P01/S2", "P02/S1")]


# ----------------------------------------------------------------------------- a real recording, converted

def write_real_e4_session(data_root: Path, d: Path, late: int = 3, early: int = 2):
    """wrist_exercise s3_walk's first 2 min (256 Hz PPG, acc in g) written into session folder `d` as an E4 export:
    BVP.csv resampled to 64 Hz from T0, ACC.csv to 32 Hz in whole 1/64 g counts starting `late` s later and ending
    `early` s earlier. Returns (ppg (N,), acc (N, 3) in g, both 256 Hz; bvp 64 Hz, acc32 (N / 8, 3) 32 Hz)."""
    from scipy.signal import resample_poly

    from sqtool.data.readers import wrist_exercise as W
    edf = data_root / "wrist_exercise" / "edf" / "s3_walk.edf"
    if not edf.is_file():
        pytest.skip(f"{edf} absent")
    x = W._read_edf(edf).p_signal[:256 * 120]
    ppg, acc = x[:, 1], x[:, 5:8] / W.G                        # (N,) raw PPG, (N, 3) acc in g, 256 Hz
    bvp, acc32 = resample_poly(ppg, 1, 4), resample_poly(acc, 1, 8, axis=0)        # 64 Hz, (N / 8, 3) 32 Hz
    d.mkdir(parents=True)
    _e4(d / "BVP.csv", T0, 64, bvp)
    _e4(d / "ACC.csv", T0 + late, 32, np.round(64 * acc32[32 * late: len(acc32) - 32 * early]).T)
    return ppg, acc, bvp, acc32


@pytest.mark.realdata
def test_a_real_wrist_recording_converted_to_e4_reads_back_and_gives_the_same_heart_rate(data_root, tmp_path):
    """wrist_exercise s3_walk's first 2 min (256 Hz PPG, acc in g) written as an E4 export: BVP resampled to 64 Hz,
    ACC to 32 Hz in whole 1/64 g counts starting 3 s later and ending 2 s earlier. Read through `format: e4`, the PPG
    is the resampled source (to its 6 written decimals), the acc within half a count, and the spectral baseline's
    heart rate on it is the source's at 256 Hz over the same span (measured: median difference 0.001 BPM, the
    largest 0.39, over 54 windows)."""
    from sqtool.data.hr_baseline import baseline_hr
    from sqtool.data.record import Record
    late, early = 3, 2
    ppg, acc, bvp, acc32 = write_real_e4_session(data_root, tmp_path / "rec" / "S1", late, early)
    (tmp_path / "dataset.yaml").write_text('format: e4\nroot: rec\nsubject: {pattern: "^(?P<subject>[^/]+)/"}\n')
    (rec,) = load_dataset_file(tmp_path / "dataset.yaml").records()
    n = 64 * (120 - late - early)
    assert rec.fs["ppg"] == 64 and len(rec.signals["ppg"]) == n and len(rec.signals["acc_x"]) == n // 2
    np.testing.assert_allclose(rec.signals["ppg"], bvp[64 * late: 64 * late + n], rtol=0, atol=5e-7)
    for i, a in enumerate(("acc_x", "acc_y", "acc_z")):
        np.testing.assert_allclose(rec.signals[a], acc32[32 * late: 32 * late + n // 2, i], rtol=0, atol=0.5 / 64 + 1e-9)
    span = slice(256 * late, 256 * (120 - early))
    src = Record("wrist_exercise", "s3", "s3_walk", {"ppg": ppg[span], **{a: acc[span, i] for i, a in
                 enumerate(("acc_x", "acc_y", "acc_z"))}}, dict.fromkeys(("ppg", "acc_x", "acc_y", "acc_z"), 256.0))
    t0 = np.arange(0, n / 64 - 8 + 1e-9, 2.0)
    got, want = baseline_hr(rec, t0)["hr"], baseline_hr(src, t0)["hr"]
    assert np.isfinite(got).all() and np.isfinite(want).all() and len(got) == 54
    diff = np.abs(got - want)
    assert np.median(diff) < 0.1 and diff.max() < 1.0, diff


def test_an_e4_file_read_as_a_plain_csv_is_one_line_pointing_to_format_e4(tmp_path, capsys):
    """An E4 file given to `data inspect --fs 64` (or `predict`, or a `format: csv` dataset file) without names: its
    start and rate rows were read as the first two samples (a 1.5e9 spike and a 64 at the PPG's head), silently.
    Now one line saying what the file is and how to read it."""
    from sqtool.data.readers import read_csv
    _sessions(tmp_path, sessions=("S1",))
    bvp = tmp_path / "rec" / "S1" / "BVP.csv"
    line = (f"{bvp}: an Empatica E4 file (row 1 its start, 2017-07-14T02:40:00.000Z; row 2 its rate, 64 Hz), not "
            "samples: give its session folder as --data (E4 files alone read as an E4 export), or read it through a "
            "dataset.yaml of format: e4 (README: Empatica E4)")
    with pytest.raises(SqtoolError, match=re.escape(line)):
        read_csv(bvp, fs=64)
    assert main(["data", "inspect", "--data", str(bvp), "--fs", "64", "--no-progress"]) == 1
    assert line in capsys.readouterr().err
    (tmp_path / "csv.yaml").write_text('format: csv\nroot: rec\nfiles: "**/BVP.csv"\nfs: 64\nchannels: {ppg: 0}\n')
    with pytest.raises(SqtoolError, match=re.escape(line)):
        load_dataset_file(tmp_path / "csv.yaml").records()
