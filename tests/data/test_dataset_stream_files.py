"""A CSV recording of one file per stream (session/ppg.csv at 64 Hz + session/acc.csv at 32 Hz, each with its own
time column, as wearables and loggers write them): channels with `file:` in dataset.yaml are read from the stream
file beside the recording's own, aligned on the shared clock and cut to the overlap, each at its own rate. Before,
such data had to be converted to NPZ by hand (one line said so)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file
from tests.data.bad_files import assert_one_line_and_listed

T0_MS = 1_700_000_000_000.0          # epoch milliseconds: the two files share a wall clock
SECONDS = 60


def _signals(k: int):
    """(ppg at 64 Hz, hr per ppg sample, acc (3, N) at 32 Hz in m/s^2) of session k, SECONDS long."""
    tp, ta = np.arange(64 * SECONDS) / 64, np.arange(32 * SECONDS) / 32
    hr = 70.0 + 5 * k + 0 * tp
    ppg = np.round(np.sin(2 * np.pi * hr / 60 * tp), 6)
    acc = np.round(np.stack([0.3 * np.sin(ta + k), 0.2 * np.cos(ta), 9.81 + 0.1 * np.sin(2 * ta)]), 6)
    return ppg, hr, acc


def _csv(path: Path, header: str, cols) -> None:
    np.savetxt(path, np.column_stack(cols), delimiter=",", header=header, comments="", fmt="%.6f")


YAML = """format: csv
root: rec
files: "**/ppg.csv"
time_column: t
time_unit: ms
subject: {{pattern: "^(?P<subject>[^/]+)/"}}
channels:
  ppg: green
  acc_x: {{file: "{acc}", column: x, unit: m/s^2{extra}}}
  acc_y: {{file: "{acc}", column: y, unit: m/s^2{extra}}}
  acc_z: {{file: "{acc}", column: z, unit: m/s^2{extra}}}
labels:
  hr: {{column: hr}}
"""


def _streams(tmp_path: Path, sessions=("s01", "s02", "s03"), acc_late_s: float = 1.0, acc_short_s: float = 3.0,
             acc="acc.csv", extra="", acc_time=True) -> Path:
    """A dataset of sessions <s>/ppg.csv (t in ms, green, hr) + <s>/acc.csv (t, x, y, z): the accelerometer starts
    `acc_late_s` after the PPG and stops `acc_short_s` before it."""
    for k, s in enumerate(sessions):
        d = tmp_path / "rec" / s
        d.mkdir(parents=True)
        ppg, hr, acc3 = _signals(k)
        tp = T0_MS + 1000 * np.arange(ppg.size) / 64
        _csv(d / "ppg.csv", "t,green,hr", [tp, ppg, hr])
        a, b = int(32 * acc_late_s), acc3.shape[1] - int(32 * acc_short_s)
        ta = T0_MS + 1000 * np.arange(acc3.shape[1]) / 32
        _csv(d / acc.replace("{stem}", "ppg"), "t,x,y,z" if acc_time else "x,y,z",
             ([ta[a:b]] if acc_time else []) + list(acc3[:, a:b]))
    y = tmp_path / "dataset.yaml"
    y.write_text(YAML.format(acc=acc, extra=extra))
    return y


def _npz_twin(tmp_path: Path, sessions=("s01", "s02", "s03"), late_s: float = 1.0, short_s: float = 3.0) -> Path:
    """The same recordings as one NPZ each, cut by hand to the time both streams cover."""
    root = tmp_path / "npz"
    for k, s in enumerate(sessions):
        ppg, hr, acc3 = _signals(k)
        p0, p1 = int(64 * late_s), ppg.size - int(64 * short_s)
        a0, a1 = int(32 * late_s), acc3.shape[1] - int(32 * short_s)
        (root / s).mkdir(parents=True)
        np.savez(root / s / "ppg.npz", ppg=ppg[p0:p1], hr=hr[p0:p1], acc_x=acc3[0, a0:a1], acc_y=acc3[1, a0:a1],
                 acc_z=acc3[2, a0:a1], fs_ppg=64.0, fs_hr=64.0, fs_acc_x=32.0, fs_acc_y=32.0, fs_acc_z=32.0,
                 start_time=T0_MS / 1000 + late_s)
    y = tmp_path / "npz.yaml"
    y.write_text('format: npz\nroot: npz\nfiles: "**/ppg.npz"\nsubject: {pattern: "^(?P<subject>[^/]+)/"}\n'
                 "channels:\n  ppg: ppg\n" + "".join(f"  acc_{a}: {{column: acc_{a}, unit: m/s^2}}\n" for a in "xyz")
                 + "labels:\n  hr: {column: hr}\n")
    return y


def test_a_recording_split_into_stream_files_reads_as_the_same_data_in_one_npz(tmp_path):
    streams = load_dataset_file(_streams(tmp_path)).records()
    twins = load_dataset_file(_npz_twin(tmp_path)).records()
    assert [r.record_id for r in streams] == [r.record_id for r in twins] == ["s01/ppg", "s02/ppg", "s03/ppg"]
    for r, w in zip(streams, twins):
        assert r.subject == w.subject and r.fs == w.fs == {"ppg": 64.0, "acc_x": 32.0, "acc_y": 32.0, "acc_z": 32.0}
        assert list(r.signals) == list(w.signals)
        for ch in r.signals:                                       # the ppg cut to where the acc has begun
            np.testing.assert_allclose(r.signals[ch], w.signals[ch], rtol=0, atol=1e-12, err_msg=ch)
        assert r.meta["start_time"] == w.meta["start_time"] == "2023-11-14T22:13:21.000Z"   # T0 + 1 s
        assert r.meta["stream_files"] == ["acc.csv"]
        np.testing.assert_array_equal(r.labels["hr"].times, w.labels["hr"].times)
        np.testing.assert_allclose(r.labels["hr"].values, w.labels["hr"].values)


def test_streams_without_time_columns_start_together_and_keep_the_shorter_span(tmp_path):
    """acc.csv without a time column, its channel's own fs: it starts with the PPG (no clock to align them on); the
    recording ends where the shorter stream ends."""
    y = _streams(tmp_path, sessions=("s01",), acc_late_s=0, acc_short_s=10, extra=", fs: 32", acc_time=False)
    rec = load_dataset_file(y).records()[0]
    ppg, _, acc3 = _signals(0)
    assert len(rec.signals["ppg"]) == 64 * 50 and len(rec.signals["acc_x"]) == 32 * 50
    np.testing.assert_allclose(rec.signals["ppg"], ppg[:64 * 50], atol=1e-12)
    np.testing.assert_allclose(rec.signals["acc_z"], acc3[2, :32 * 50] / 9.80665, atol=1e-12)


def test_a_stem_named_stream_file_and_a_glob_over_every_csv(tmp_path):
    """`{stem}` is the recording file's name; `files: "**/*.csv"` matching the stream files too reads each
    recording once (a stream file is no recording of its own)."""
    y = _streams(tmp_path, acc="{stem}_acc.csv")
    y.write_text(y.read_text().replace('files: "**/ppg.csv"', 'files: "**/*.csv"'))
    recs = load_dataset_file(y).records()
    assert [r.record_id for r in recs] == ["s01/ppg", "s02/ppg", "s03/ppg"]
    assert recs[0].meta["stream_files"] == ["ppg_acc.csv"] and recs[0].fs["acc_x"] == 32.0


def test_a_stream_file_named_by_the_recordings_folder(tmp_path):
    """`{folder}` is the recording's folder from root (s01): stream files kept apart, acc/s01.csv beside rec/s01/ppg.csv,
    read as the ones in the session folder are; `data pairs --resume` checks that file (`unit_files`). Before,
    `{folder}` was left as written: stream file not found."""
    from sqtool.data.dataset_reader import dataset_units, unit_files
    y = _streams(tmp_path, sessions=("s01", "s02"))
    beside = load_dataset_file(y).records()
    (tmp_path / "acc").mkdir()
    for s in ("s01", "s02"):
        (tmp_path / "rec" / s / "acc.csv").rename(tmp_path / "acc" / f"{s}.csv")
    y.write_text(y.read_text().replace('file: "acc.csv"', 'file: "../../acc/{folder}.csv"'))
    ds = load_dataset_file(y)
    apart = ds.records()
    for r, w in zip(apart, beside):
        assert r.meta["stream_files"] == [f"../../acc/{r.subject}.csv"]
        for ch in w.signals:
            np.testing.assert_array_equal(r.signals[ch], w.signals[ch])
    assert unit_files(ds, dataset_units(ds)[0]) == [tmp_path / "rec" / "s01" / "ppg.csv", tmp_path / "acc" / "s01.csv"]


def test_folder_for_a_recording_in_root_is_one_line(tmp_path, capsys):
    """`{folder}` of a recording in root itself (rec/ppg.csv beside rec/s01/ppg.csv) was ".": "../../acc/{folder}.csv"
    read acc/..csv, "stream file not found" naming a file nobody wrote. Now one line naming the recording: {folder}
    needs recordings in sub-folders."""
    y = _streams(tmp_path, sessions=("s01",))
    (tmp_path / "acc").mkdir()
    (tmp_path / "rec" / "s01" / "acc.csv").rename(tmp_path / "acc" / "s01.csv")
    (tmp_path / "rec" / "ppg.csv").write_bytes((tmp_path / "rec" / "s01" / "ppg.csv").read_bytes())
    y.write_text(y.read_text().replace('file: "acc.csv"', 'file: "../../acc/{folder}.csv"'))
    assert_one_line_and_listed(y, f"{tmp_path / 'rec' / 'ppg.csv'}: file '../../acc/{{folder}}.csv': {{folder}} is a "
                                  f"recording's folder under root ({tmp_path / 'rec'}), and this recording is in root "
                                  "itself: {folder} needs recordings in sub-folders", capsys)


def test_folder_named_stream_files_in_root_are_no_recordings(tmp_path):
    """... while a file in root that the glob matches and that is a sub-folder recording's `{folder}` stream file
    (rec/s01_acc.csv of rec/s01/ppg.csv) is that stream file, not a recording refused for having no folder."""
    y = _streams(tmp_path, sessions=("s01", "s02"))
    for s in ("s01", "s02"):
        (tmp_path / "rec" / s / "acc.csv").rename(tmp_path / "rec" / f"{s}_acc.csv")
    y.write_text(y.read_text().replace('file: "acc.csv"', 'file: "../{folder}_acc.csv"')
                 .replace('"**/ppg.csv"', '"**/*.csv"'))
    recs = load_dataset_file(y).records()
    assert [r.meta["stream_files"] for r in recs] == [["../s01_acc.csv"], ["../s02_acc.csv"]]


def test_data_inspect_on_a_stream_file_dataset(tmp_path, capsys):
    y = _streams(tmp_path)
    assert main(["data", "inspect", "--data", str(y), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "records 3, subjects 3" in out and "(record length 56.0..56.0 s)" in out
    assert "channels: ppg @ 64 Hz, acc_x @ 32 Hz, acc_y @ 32 Hz, acc_z @ 32 Hz" in out


def test_data_inspect_lists_each_recording_with_its_stream_files_and_the_acc_conversion(tmp_path, capsys):
    """A user checking the dataset file: inspect printed counts and rates only; now each recording (id, subject,
    length, channels at their rates, start, the stream files it was assembled from) and how the accelerometer's
    declared unit became g, in the text and the JSON."""
    import json
    y = _streams(tmp_path, sessions=("s01", "s02"))
    y.write_text(y.read_text().replace("column: z, unit: m/s^2", "column: z, unit: m/s^2, gain: 2"))
    assert main(["data", "inspect", "--data", str(y), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  accelerometer: acc_x, acc_y: value in m/s^2, / 9.80665 -> g; acc_z: value x 2 in m/s^2, / 9.80665 " \
        "-> g" in out
    at = out.index("  recordings (2):")
    assert out[at + 1].split() == ["record", "subject", "length", "channels", "start", "gravity", "stream", "files"]
    assert out[at + 2].split() == ["s01/ppg", "s01", "56.0", "s", "ppg", "64", "Hz;", "acc_x,", "acc_y,", "acc_z", "32",
                                   "Hz", "2023-11-14T22:13:21.000Z", "+z", "100", "%", "acc.csv"]
    assert out[at + 3].startswith("    s02/ppg  s02 ")
    assert main(["data", "inspect", "--data", str(y), "--no-progress", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    g = s["recordings"][1].pop("gravity")                 # 9.81 m/s^2 x gain 2 on z: the watch lay face up
    assert g["axis"] == "+z" and g["share"] == 1.0 and abs(g["mean_g"][2] - 2.0) < 0.01
    lag = s["recordings"][1].pop("clock_lag")           # its hr label against its PPG (data.clocklag): a flat rate
    assert lag["verdict"] == "undetermined" and "flat heart rate" in lag["why"]
    assert s["recordings"][1] == {"record": "s02/ppg", "subject": "s02", "duration_s": 56.0,
                                  "fs": {"ppg": 64.0, "acc_x": 32.0, "acc_y": 32.0, "acc_z": 32.0},
                                  "start_time": "2023-11-14T22:13:21.000Z", "stream_files": ["acc.csv"],
                                  "source": str(tmp_path / "rec" / "s02" / "ppg.csv")}
    assert s["dataset_file"]["acc"] == [
        {"channels": ["acc_x", "acc_y"], "unit": "m/s^2", "gain": 1.0, "offset": 0.0, "to_g": 1 / 9.80665},
        {"channels": ["acc_z"], "unit": "m/s^2", "gain": 2.0, "offset": 0.0, "to_g": 1 / 9.80665}]


def _break(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """A dataset with a bad stream (session s02's; the rate: every session's) and the start of its one error
    line."""
    extra = ", fs: 50" if kind == "rate" else ""
    y = _streams(tmp_path, extra=extra)
    acc, ppg = tmp_path / "rec" / "s02" / "acc.csv", tmp_path / "rec" / "s02" / "ppg.csv"
    if kind == "missing":
        acc.unlink()
        return y, f"{ppg}: channel 'acc_x': stream file {acc} not found (channels.acc_x.file: 'acc.csv'"
    if kind == "no_overlap":                               # another session's file: an hour later
        rows = acc.read_text().splitlines()
        acc.write_text("\n".join([rows[0]] + [f"{float(r.split(',')[0]) + 3.6e6:.6f},{r.split(',', 1)[1]}"
                                              for r in rows[1:]]) + "\n")
        return y, f"{acc}: its times 3601..3657 s do not overlap the recording's 0..60 s (from the first row of ppg.csv)"
    if kind == "column":
        acc.write_text(acc.read_text().replace("t,x,y,z", "t,q,y,z", 1))
        return y, f"{acc}: channel 'acc_x': column 'x' missing (has t, q, y, z)"
    if kind == "backwards":
        rows = acc.read_text().splitlines()
        rows[100], rows[101] = rows[101], rows[100]
        acc.write_text("\n".join(rows) + "\n")
        return y, f"{acc}: column 't': time column goes backwards by 0.03125 s at row 101"
    if kind == "rate":                                     # every stream at 32 Hz: the first file read says it
        return y, f"{tmp_path / 'rec' / 's01' / 'acc.csv'}: channels.acc_x.fs 50 Hz disagrees with the time column 't' (32 Hz); wrong sampling rate"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "no_overlap", "column", "backwards", "rate"])
def test_each_bad_stream_is_one_line_naming_its_file(kind, tmp_path, capsys):
    assert_one_line_and_listed(*_break(kind, tmp_path), capsys)


@pytest.mark.parametrize("channel, line", [
    ("{file: acc.csv, column: x, time_column: ts}\nformat_npz", "a stream file of its own is for format csv"),
    ("{column: x, time_column: ts}", "channels.acc_x: time_column is for a channel read from a stream file"),
    ("{file: acc.csv, column: x, time_unit: min}", "channels.acc_x.time_unit must be s, ms or us, got 'min'"),
    ("{file: 3, column: x}", "channels.acc_x.file: expected text, got 3 (a number)"),
])
def test_stream_keys_are_checked_when_the_file_is_read(tmp_path, channel, line):
    fmt = "npz" if "format_npz" in channel else "csv"
    (tmp_path / "dataset.yaml").write_text(f"format: {fmt}\nchannels:\n  ppg: green\n  acc_x: "
                                           f"{channel.split(chr(10))[0]}\n")
    with pytest.raises(SqtoolError, match=line.replace("(", r"\(").replace(")", r"\)")):
        load_dataset_file(tmp_path / "dataset.yaml")


def test_finetune_smoke_on_stream_files(tmp_path, capsys, monkeypatch):
    """`train finetune --task hr` on such a dataset: the 32 Hz accelerometer resampled to the PPG's 64 Hz, as for
    an NPZ of mixed rates (one note line), the hr label read from the PPG file's column."""
    import json
    y = _streams(tmp_path, sessions=("s01", "s02", "s03", "s04"))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", str(y), "--folds", "2",
                 "--epochs", "1", "--progress", "false", "--out", "runs/hr"]) == 0
    cap = capsys.readouterr()
    assert "e.g. s01/ppg: acc_x, acc_y, acc_z 32 Hz -> 64 Hz" in cap.out + cap.err
    m = json.loads((tmp_path / "runs/hr/metrics.json").read_text())
    assert m["subjects"] == 3 and len(m["heldout_subjects"]) == 1


def test_the_readmes_stream_files_example_reads_such_sessions(tmp_path):
    import re
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"<!-- stream-files-yaml -->\s*```yaml\n(.*?)```", readme, re.S)
    assert block, "README lost its stream-files dataset.yaml example"
    _streams(tmp_path)
    (tmp_path / "rec" / "dataset.yaml").write_text(block.group(1))
    recs = load_dataset_file(tmp_path / "rec" / "dataset.yaml").records()
    assert [(r.subject, r.fs["ppg"], r.fs["acc_z"], len(r.signals["ppg"])) for r in recs] == \
        [(s, 64.0, 32.0, 64 * 56) for s in ("s01", "s02", "s03")]


def test_a_stream_file_in_milliseconds_is_told_to_say_so_on_its_channel(tmp_path):
    """The PPG file's times in seconds, the accelerometer's stream file's in ms: the hint said to add time_unit: ms
    to the dataset file's top level, which would misread the PPG file; it names the channel's key."""
    d = tmp_path / "rec" / "s01"
    d.mkdir(parents=True)
    ppg, hr, acc3 = _signals(0)
    _csv(d / "ppg.csv", "t,green,hr", [np.arange(ppg.size) / 64, ppg, hr])
    _csv(d / "acc.csv", "t,x,y,z", [1000 * np.arange(acc3.shape[1]) / 32, *acc3])
    y = tmp_path / "dataset.yaml"
    y.write_text(YAML.format(acc="acc.csv", extra="").replace("time_unit: ms\n", ""))
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(y).records()
    msg = str(e.value)
    assert "acc.csv" in msg and "add time_unit: ms to channels.acc_" in msg and "\n" not in msg, msg


def test_a_stream_file_in_seconds_beside_a_top_level_ms_is_told_to_set_it_on_every_channel_of_that_file(tmp_path):
    """The PPG file's times in ms (top-level time_unit: ms), the accelerometer's stream file's in seconds: the hint
    said to drop time_unit: ms from channels.acc_x, which has none (the top level's, the PPG file's, is right); it
    says to add time_unit: s to each channel read from that file, and the file so written reads."""
    d = tmp_path / "rec" / "s01"
    d.mkdir(parents=True)
    ppg, hr, acc3 = _signals(0)
    _csv(d / "ppg.csv", "t,green,hr", [T0_MS + 1000 * np.arange(ppg.size) / 64, ppg, hr])
    _csv(d / "acc.csv", "t,x,y,z", [T0_MS / 1000 + np.arange(acc3.shape[1]) / 32, *acc3])
    y = tmp_path / "dataset.yaml"
    y.write_text(YAML.format(acc="acc.csv", extra=""))
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(y).records()
    msg = str(e.value)
    assert "acc.csv" in msg and "\n" not in msg, msg
    assert "they look like seconds (32 Hz); add time_unit: s to channels.acc_x, channels.acc_y, channels.acc_z in " \
        "dataset.yaml (the column is in seconds; the top level's time_unit: ms is the recording file's)" in msg, msg
    y.write_text(YAML.format(acc="acc.csv", extra=", time_unit: s"))
    (rec,) = load_dataset_file(y).records()
    assert rec.fs["acc_x"] == 32 and rec.fs["ppg"] == 64


def _dated_session(tmp_path: Path, ppg_zone: str, acc_zone: str | None, shift_h: float = 0.0) -> Path:
    """Session s01 with date-time time columns: ppg.csv's written in `ppg_zone` ("" none: a local time; "+01:00";
    "Z"), acc.csv's in `acc_zone`, or as epoch milliseconds (None); the accelerometer starts 1 s after the PPG.
    `shift_h`: the PPG's clock reads that many hours ahead of UTC (local time, or its offset's)."""
    import pandas as pd
    d = tmp_path / "rec" / "s01"
    d.mkdir(parents=True)
    ppg, hr, acc3 = _signals(0)
    utc = pd.Timestamp(T0_MS / 1000, unit="s", tz="UTC")

    def stamps(n: int, fs: float, zone: str, late_s: float = 0.0, hours: float = 0.0) -> list[str]:
        t = (utc + pd.Timedelta(hours=hours) + pd.to_timedelta(late_s + np.arange(n) / fs, unit="s")).tz_localize(None)
        return [x.isoformat(timespec="microseconds") + zone for x in t]
    a = 32                                                         # the accelerometer's first second left out
    (d / "ppg.csv").write_text("t,green,hr\n" + "".join(f"{t},{x:.6f},{h:.6f}\n" for t, x, h in zip(
        stamps(ppg.size, 64, ppg_zone, hours=shift_h), ppg, hr)))
    ta = stamps(acc3.shape[1] - a, 32, acc_zone, 1.0) if acc_zone is not None else \
        [f"{T0_MS + 1000 * (i + a) / 32:.3f}" for i in range(acc3.shape[1] - a)]
    (d / "acc.csv").write_text("t,x,y,z\n" + "".join(f"{t},{x:.6f},{y:.6f},{z:.6f}\n" for t, x, y, z in zip(
        ta, *acc3[:, a:])))
    y = tmp_path / "dataset.yaml"
    y.write_text(YAML.format(acc="acc.csv", extra=""))
    return y


@pytest.mark.parametrize("acc_zone, shift_h", [(None, 0.0), (None, 1.0), ("+01:00", 1.0)])
def test_local_date_times_beside_instants_are_refused_naming_both_files(tmp_path, acc_zone, shift_h):
    """ppg.csv's date-times carry no time zone (a local clock, `shift_h` ahead of UTC), acc.csv's times are epoch
    milliseconds (or date-times with an offset): the local times were read as UTC, the streams aligned `shift_h`
    apart, silently wherever they still overlapped (a local clock that reads UTC, shift 0, cannot be told from one
    that does not). Now one line naming both files and the fix."""
    y = _dated_session(tmp_path, "", acc_zone, shift_h)
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(y).records()
    msg, rec = str(e.value), tmp_path / "rec" / "s01"
    assert "\n" not in msg and msg.startswith(f"{rec / 'acc.csv'}: its time column 't' holds "), msg
    assert f"but {rec / 'ppg.csv'}'s 't' holds date-times without a time zone (local time)" in msg
    assert "give both files the same kind of time column, or the date-times their UTC offset" in msg


@pytest.mark.parametrize("ppg_zone, acc_zone, shift_h", [("+01:00", "Z", 1.0), ("+01:00", None, 1.0), ("", "", 0.0)])
def test_date_times_in_different_zones_align_as_instants(tmp_path, ppg_zone, acc_zone, shift_h):
    """Date-times with offsets in different zones (the PPG's written at +01:00, the accelerometer's in UTC or as epoch
    ms) are compared as instants, and two local clocks as one clock: the accelerometer's late start cuts the
    PPG's first second, as in the NPZ twin."""
    y = _dated_session(tmp_path, ppg_zone, acc_zone, shift_h)
    (rec,) = load_dataset_file(y).records()
    ppg, _, acc3 = _signals(0)
    n = len(rec.signals["ppg"])
    assert n == 64 * 59 and len(rec.signals["acc_x"]) == 32 * 59
    np.testing.assert_allclose(rec.signals["ppg"], ppg[64:64 + n], atol=1e-12)
    np.testing.assert_allclose(rec.signals["acc_z"], acc3[2, 32:32 + 32 * 59] / 9.80665, atol=1e-12)


def test_streams_beginning_apart_are_one_warning_naming_the_recording_the_files_and_the_offset(tmp_path, capsys):
    """acc.csv 3 s after ppg.csv's first row: the recording starts at acc.csv's, and label-file times count from
    there, silently (the README said so; a watch team's file counted from the PPG's first row read its truth 3 s
    off). One warning line names the recording, both files, the offset and what the times count from; two such
    recordings are one line (the count, an example); files within a quarter of hop_s of each other say nothing."""
    y = _streams(tmp_path / "one", sessions=("s01",), acc_late_s=3.0)
    capsys.readouterr()
    load_dataset_file(y).records()
    said = [ln for ln in capsys.readouterr().err.splitlines() if "sqtool: warning:" in ln]
    assert len(said) == 1 and "recording s01/ppg: its files begin 3.00 s apart (acc.csv 3.00 s after ppg.csv's " \
                              "first row): it starts at acc.csv's first row, and its label files' times" in said[0]
    assert "not from ppg.csv's" in said[0]
    y = _streams(tmp_path / "two", sessions=("s01", "s02"), acc_late_s=3.0)
    load_dataset_file(y).records()
    said = [ln for ln in capsys.readouterr().err.splitlines() if "sqtool: warning:" in ln]
    assert len(said) == 1 and "2 of 2 recordings have files beginning more than 0.5 s apart" in said[0] \
        and "e.g. s01/ppg: acc.csv 3.00 s after ppg.csv, s02/ppg: acc.csv 3.00 s after ppg.csv" in said[0]
    load_dataset_file(_streams(tmp_path / "near", acc_late_s=0.25)).records()
    assert "warning" not in capsys.readouterr().err
