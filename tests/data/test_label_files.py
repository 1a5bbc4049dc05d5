"""Per-recording label files (labels.hr / labels.rr: {file: ...}) against the recording they label: rows whose
window runs past the signal's end, files that cover part of the recording, times in milliseconds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file

FS = 50.0
SECONDS = 60.0                      # each recording: 60 s, windows 8 s every 2 s -> starts 0..52 s (27 windows)
YAML = ("format: csv\nroot: rec\nfiles: '*.csv'\ntime_column: time\nchannels: {ppg: ppg}\n"
        "windows: {window_s: 8, hop_s: 2}\nlabels: {rr: {file: 'rr/{stem}.csv'}}\n")


def recordings(tmp_path: Path, stems=("p1_icu", "p2_icu"), ms: bool = False) -> None:
    """60 s CSVs `time,ppg` under rec/, the time column in seconds or (ms) milliseconds."""
    (tmp_path / "rec").mkdir()
    n = int(SECONDS * FS)
    t = np.arange(n) / FS
    for i, stem in enumerate(stems):
        ppg = np.sin(2 * np.pi * 1.1 * t) + 0.01 * np.random.default_rng(i).standard_normal(n)
        np.savetxt(tmp_path / "rec" / f"{stem}.csv", np.column_stack([t * (1000 if ms else 1), ppg]), delimiter=",",
                   header="time,ppg", comments="", fmt="%.5f")


def label_file(tmp_path: Path, stem: str, times, head="time,rr") -> Path:
    (tmp_path / "rr").mkdir(exist_ok=True)
    p = tmp_path / "rr" / f"{stem}.csv"
    p.write_text(head + "\n" + "".join(f"{t:g},{16 + (i % 5)}\n" for i, t in enumerate(times)))
    return p


def dataset(tmp_path: Path, extra: str = "", yaml: str = YAML) -> Path:
    p = tmp_path / "dataset.yaml"
    p.write_text(yaml + extra)
    return p


def one_line_error(p: Path) -> str:
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(p).records()
    assert "\n" not in str(e.value)
    return str(e.value)


def test_a_per_second_file_to_the_signals_end_is_read_its_last_rows_left_out_and_counted(tmp_path, capsys):
    """A monitor's 1 Hz export, rows 0..60 s for a 60 s recording: the rows after 52 s start windows that run past
    the end; they are left out and counted, not the recording refused ('spans 0.00..68.00 s but the signal is
    60.00 s')."""
    recordings(tmp_path)
    for stem in ("p1_icu", "p2_icu"):
        label_file(tmp_path, stem, range(61))
    ds = load_dataset_file(dataset(tmp_path))
    recs = ds.records()
    lab = recs[0].labels["rr"]
    assert lab.times[-1] == 52.0 and np.isfinite(lab.values).all() and len(lab) == 53     # rows 0..52 s
    assert recs[0].meta["label_rows_past_end"] == {"rr": 8}                                  # 53..60 s
    assert ds.report["label_rows_past_end"] == 16
    assert "warning" not in capsys.readouterr().err                  # the normal case for such a file: no line


def test_a_label_file_running_far_past_the_end_is_one_line(tmp_path):
    """Rows to 100 s for a 60 s recording (more than one window past its end): another recording's file, refused
    with a line saying so."""
    recordings(tmp_path)
    label_file(tmp_path, "p1_icu", range(61))
    label_file(tmp_path, "p2_icu", range(101))
    m = one_line_error(dataset(tmp_path))
    assert str(tmp_path / "rr" / "p2_icu.csv") in m and "rows run to 100.00 s" in m
    assert "more than one 8 s window past the end of the 60.00 s signal" in m and "another recording" in m


def test_windows_outside_a_partial_label_file_are_counted_without_a_value_and_said(tmp_path, capsys):
    """p1's label file covers 0..18 s of its 60 s recording (the head of another recording's file): its windows at
    20..52 s are windows without a value, left out and counted (they vanished uncounted: 27 scored windows became
    10 without a word), and, losing over half of them, one warning line names the file and the count. p2's file
    stops at 50 s: its 52 s window is counted too, without a line."""
    from sqtool.core import ModelCfg
    from sqtool.data.dataset_tasks import load_task_from_dataset
    from sqtool.data.tasks import task_model_cfg
    recordings(tmp_path)
    label_file(tmp_path, "p1_icu", range(19))
    label_file(tmp_path, "p2_icu", range(51))
    ds = load_dataset_file(dataset(tmp_path))
    capsys.readouterr()
    recs = ds.records()
    said = [ln for ln in capsys.readouterr().err.splitlines() if "sqtool: warning:" in ln]
    assert len(said) == 1 and str(tmp_path / "rr" / "p1_icu.csv") in said[0]
    assert "cover 0..18 s of the 60.00 s recording" in said[0] and "17 of its 27 windows" in said[0]
    p1, p2 = (r.labels["rr"] for r in recs)
    assert np.isnan(p1.values).sum() == 17 and np.array_equal(p1.times[np.isnan(p1.values)], np.arange(20, 53, 2))
    assert np.isnan(p2.values).sum() == 1 and p2.times[-1] == 52.0
    assert recs[0].meta["label_windows_without_row"] == {"rr": 17}
    cfg = task_model_cfg("rr", ModelCfg(name="t", family="resnet1d"), window_s=8.0, hop_s=2.0)
    td = load_task_from_dataset("rr", ds, cfg)
    assert td.meta["missing_target_windows"] == 18                      # 17 + 1, counted as the README says
    assert np.sum(td.record_ids == "p1_icu") == 10 and np.sum(td.record_ids == "p2_icu") == 26


def test_label_file_times_in_milliseconds_are_one_complete_line_with_the_fix(tmp_path):
    """A hospital export: the recordings' time column and the label files' times both in ms, the yaml saying
    time_unit: ms (the recordings' time column's unit). The label file was read in seconds ('rows are 1000 s apart
    ... Set windows.hop_s (and window_s) to the label file's', cut off): one line saying the times look like
    milliseconds and how to say so; labels.rr.time_unit: ms then reads them."""
    recordings(tmp_path, ms=True)
    for stem in ("p1_icu", "p2_icu"):
        label_file(tmp_path, stem, [1000 * t for t in range(61)])
    p = dataset(tmp_path, yaml=YAML.replace("time_column: time\n", "time_column: time\ntime_unit: ms\n"))
    m = one_line_error(p)
    assert str(tmp_path / "rr" / "p1_icu.csv") in m and "rows run to 60000.00 s" in m
    assert "look like milliseconds (rows to 60.00 s)" in m and "label-file times are read in seconds" in m
    assert "time_unit: ms in labels.rr of dataset.yaml" in m and "the recordings' time column" in m
    p.write_text(p.read_text().replace("{file: 'rr/{stem}.csv'}", "{file: 'rr/{stem}.csv', time_unit: ms}"))
    lab = load_dataset_file(p).records()[0].labels["rr"]
    assert lab.times[0] == 0.0 and lab.times[-1] == 52.0 and np.isfinite(lab.values).all()


def test_a_spacing_that_looks_like_milliseconds_says_so_and_the_line_is_complete(tmp_path):
    """Rows 1000 'seconds' apart inside a long recording reach the spacing check: the spacing looking like ms, its
    line says label-file times are in seconds and how to say ms (it advised hop_s 1000, cut off at 'the label file's');
    another spacing gets the hop fix, now a complete sentence, and no such hint."""
    from sqtool.data.dataset_reader import on_window_grid
    recordings(tmp_path)
    ds = load_dataset_file(dataset(tmp_path))
    f = tmp_path / "rr" / "p1_icu.csv"
    with pytest.raises(SqtoolError) as e:
        on_window_grid(np.arange(0.0, 20001.0, 1000.0), ds, f, "rr", None)     # refused before any note
    m = str(e.value)
    assert m.startswith(f"{f}: label rows are 1000 s apart") and "Set windows.hop_s" not in m
    assert "look like milliseconds (1 s apart)" in m and m.endswith("time_unit: ms in labels.rr of dataset.yaml")
    with pytest.raises(SqtoolError) as e:
        on_window_grid(np.arange(0.0, 41.0, 4.0), ds, f, "rr", None)
    assert str(e.value).endswith("to the label file's spacing (4 s)") and "milliseconds" not in str(e.value)


def test_time_unit_is_a_label_files_key_only(tmp_path):
    recordings(tmp_path)
    p = dataset(tmp_path, yaml=YAML.replace("{rr: {file: 'rr/{stem}.csv'}}", "{rr: {column: ppg, time_unit: ms}}"))
    m = one_line_error(p)
    assert "labels.rr: time_unit is for a label file's times" in m
    p.write_text(YAML.replace("{file: 'rr/{stem}.csv'}", "{file: 'rr/{stem}.csv', time_unit: min}"))
    assert "labels.rr.time_unit must be s, ms or us, got 'min'" in one_line_error(p)


def _no_time_recording(tmp_path: Path, fs_said: float, seconds: float = 300.0, fs_true: float = 50.0) -> Path:
    """One `ppg` CSV without a time column, sampled at fs_true for `seconds`, its dataset file saying fs: fs_said,
    and a per-window rr file whose rows cover the true duration (starts 0..seconds - 8, every 2 s)."""
    (tmp_path / "rec").mkdir()
    t = np.arange(int(seconds * fs_true)) / fs_true
    np.savetxt(tmp_path / "rec" / "p1_icu.csv", np.sin(2 * np.pi * 1.1 * t)[:, None], header="ppg", comments="",
               fmt="%.5f")
    label_file(tmp_path, "p1_icu", np.arange(0.0, seconds - 8 + 1e-9, 2.0))
    return dataset(tmp_path, yaml=YAML.replace("time_column: time\n", f"fs: {fs_said:g}\n"))


def test_a_rate_said_half_too_low_is_named_by_the_label_files_span(tmp_path, capsys):
    """fs: 25 said for 50 Hz samples without a time column: the recording reads 600 s, its label rows cover 0..292 s
    (300 s with the last window). The warning only asked 'is it this recording's label file?' (the audit's 58 BPM
    while running at 111); it now says the recording lasts 2x its labels' span, that fs: 25 may be wrong and that
    50 Hz would fit."""
    load_dataset_file(_no_time_recording(tmp_path, 25.0)).records()
    said = [ln for ln in capsys.readouterr().err.splitlines() if "sqtool: warning:" in ln]
    assert len(said) == 1 and "rows cover 0..292 s of the 600.00 s recording" in said[0]
    assert "lasts 2.00x its label rows' span (0..300 s): fs: 25 (Hz) in dataset.yaml may be wrong, 50 Hz would fit " \
           "(x2" in said[0]


def test_a_rate_said_twice_too_high_is_named_in_the_one_line(tmp_path):
    """fs: 100 said for 50 Hz samples: the recording reads 150 s and its label rows run to 292 s, refused as
    'another recording's file?' only; the line now names the rate that would fit, 50 Hz (x0.5)."""
    m = one_line_error(_no_time_recording(tmp_path, 100.0))
    assert "rows run to 292.00 s, more than one 8 s window past the end of the 150.00 s signal" in m
    assert "lasts 0.50x its label rows' span (0..300 s): fs: 100 (Hz) in dataset.yaml may be wrong, 50 Hz would " \
           "fit (x0.5" in m


def test_no_rate_hint_where_a_time_column_measures_the_rate_or_the_span_is_not_near_a_factor_of_two(tmp_path, capsys):
    """A time column measures the rate (a label file covering half its recording is then only the file's question);
    a said rate with a label file covering 40 % of the recording (ratio 2.5, beyond SPAN_RATIO_TOL of 2) is not
    said to be wrong either."""
    from sqtool.data.dataset_reader import SPAN_RATIO_TOL
    assert SPAN_RATIO_TOL == 0.05
    recordings(tmp_path)                                               # 60 s, time column
    label_file(tmp_path, "p1_icu", np.arange(0.0, 23.0, 2.0))           # 0..22 s + 8: 30 s, half of 60 s
    label_file(tmp_path, "p2_icu", np.arange(0.0, 53.0, 2.0))
    load_dataset_file(dataset(tmp_path)).records()
    err = capsys.readouterr().err
    assert "cover 0..22 s of the 60.00 s recording" in err and "may be wrong" not in err
    other = tmp_path / "other"
    other.mkdir()
    p = _no_time_recording(other, 25.0, seconds=300.0)
    label_file(other, "p1_icu", np.arange(0.0, 232.0, 2.0))            # 0..230 s + 8 of 600 s: 2.52x
    load_dataset_file(p).records()
    err = capsys.readouterr().err
    assert "cover 0..230 s of the 600.00 s recording" in err and "may be wrong" not in err


def test_windows_centred_outside_the_label_windows_are_counted_when_the_tasks_windows_differ(tmp_path, capsys):
    """The file's windows 8 s every 2 s (rows 0..52 s: centres 4..56 s), the task's 6 s every 2 s (centres 3..57
    s): the first and the last window of each recording have no label window around their centre; they were
    left out without a count (an own-data audit: 46 windows became 44 per subject, missing_target_windows absent).
    Now counted, with the one warning line."""
    from sqtool.core import ModelCfg
    from sqtool.data.dataset_tasks import load_task_from_dataset
    from sqtool.data.tasks import task_model_cfg
    recordings(tmp_path)
    for stem in ("p1_icu", "p2_icu"):
        label_file(tmp_path, stem, range(0, 53, 2))
    ds = load_dataset_file(dataset(tmp_path))
    cfg = task_model_cfg("rr", ModelCfg(name="t", family="resnet1d"), window_s=6.0, hop_s=2.0)
    capsys.readouterr()
    td = load_task_from_dataset("rr", ds, cfg)
    assert len(td) == 2 * 26 and td.meta["missing_target_windows"] == 4        # 28 windows each, 2 outside
    assert not np.isin(td.t0, [0.0, 54.0]).any()
    assert "4 windows of 2 recording(s) have no rr target" in capsys.readouterr().err


@pytest.mark.parametrize("fs_said, seconds, fits", [(500.0, 300.0, "50 Hz would fit (x0.1"),
                                                    (5.0, 120.0, "50 Hz would fit (x10")])
def test_a_rate_said_ten_times_off_is_named_too(tmp_path, capsys, fs_said, seconds, fits):
    """fs: 500 said for 50 Hz samples (the audit's fs_typo2.yaml): the recording reads 30 s, its rows run to 292 s;
    the line asked only 'the label file of another recording?', the rate being looked for at x2 and x0.5 alone. Any
    round factor (x10, x0.1, ..., x1000) is now named, with the rate that fits; fs: 5 the other way round (a
    warning: the label rows cover a tenth of the recording)."""
    p = _no_time_recording(tmp_path, fs_said, seconds=seconds)
    if fs_said > 50:
        m = one_line_error(p)
        assert "more than one 8 s window past the end of the 30.00 s signal" in m
    else:
        load_dataset_file(p).records()
        m = next(ln for ln in capsys.readouterr().err.splitlines() if "sqtool: warning:" in ln)
    assert f"fs: {fs_said:g} (Hz) in dataset.yaml may be wrong, {fits}" in m


def test_negative_label_times_are_one_line_naming_the_label_file(tmp_path):
    """Label rows at -4 and -2 s (the audit's lab_neg.yaml): the line named the recording ('record p1_icu: label
    'rr' spans -4.00..60.00 s but the signal is 60.00 s; labels do not match the signal length'), not the label
    file, nor that the times were negative. Now: the file, its first negative row and time, and that label-file
    times count from the recording's first sample."""
    recordings(tmp_path)
    label_file(tmp_path, "p1_icu", np.arange(-4.0, 53.0, 2.0), head="start,rr")
    label_file(tmp_path, "p2_icu", np.arange(0.0, 53.0, 2.0))
    m = one_line_error(dataset(tmp_path))
    assert m.startswith(f"{tmp_path / 'rr' / 'p1_icu.csv'}: label 'rr' row 1 starts at -4 s (column 'start'; 2 rows "
                        "before 0 s): label-file times are seconds from recording p1_icu's first sample")
    assert "signal length" not in m


def test_a_label_files_own_column_names_are_given_in_the_dataset_file(tmp_path):
    """A team's label files headed `t_s,breaths` (no start/time, no rr column): one line listing the file's columns
    and how to name them; start_column / value_column read them; either given without a file is one line."""
    recordings(tmp_path)
    for stem in ("p1_icu", "p2_icu"):
        label_file(tmp_path, stem, np.arange(0.0, 53.0, 2.0), head="t_s,breaths")
    m = one_line_error(dataset(tmp_path))
    assert "label file needs a start column (start/time) and a value column (rr); it has t_s, breaths" in m
    assert "start_column: ..., value_column: ..." in m
    named = YAML.replace("{file: 'rr/{stem}.csv'}", "{file: 'rr/{stem}.csv', start_column: T_S, value_column: breaths}")
    assert named != YAML
    rec = load_dataset_file(dataset(tmp_path, yaml=named)).records()[0]
    assert np.array_equal(rec.labels["rr"].values[:3], [16, 17, 18])
    bad = YAML.replace("{file: 'rr/{stem}.csv'}", "{column: ppg, value_column: breaths}")
    assert "value_column names a column of a label file (labels.rr.file)" in one_line_error(dataset(tmp_path, yaml=bad))


@pytest.mark.parametrize("stamp, late", [("end", 8.0), ("centre", 4.0)])
def test_rows_stamped_at_their_windows_end_or_centre_are_warned_of_and_read_with_stamp(tmp_path, capsys, stamp, late):
    """A device that writes each window's value when the window ends: rows at 8..60 s for windows starting 0..52 s.
    Read as starts, every value is a window late with no other sign; the reader says so once, and `stamp: end`
    reads the same values at the starts a start-stamped file gives."""
    recordings(tmp_path)
    for stem in ("p1_icu", "p2_icu"):
        label_file(tmp_path, stem, [t + late for t in range(0, 53, 2)])
    recs = load_dataset_file(dataset(tmp_path)).records()
    err = capsys.readouterr().err
    assert f"label 'rr' files look stamped at their window's {stamp}: in 2 of 2 files the first row is at {late:g} s" \
        in err and f"say stamp: {stamp} in labels.rr of dataset.yaml" in err
    assert recs[0].labels["rr"].times[~np.isnan(recs[0].labels["rr"].values)][0] == late    # read late
    fixed = load_dataset_file(dataset(tmp_path, yaml=YAML.replace("'rr/{stem}.csv'}", f"'rr/{{stem}}.csv', stamp: "
                                                                  f"{stamp}}}"))).records()
    assert "stamped" not in capsys.readouterr().err
    lab = fixed[0].labels["rr"]
    assert list(lab.times) == list(range(0, 53, 2)) and np.isfinite(lab.values).all()
    assert list(lab.values[:5]) == [16, 17, 18, 19, 20]                  # the first row is the first window's


def test_start_stamped_rows_are_no_warning_and_a_bad_stamp_is_one_line(tmp_path, capsys):
    recordings(tmp_path)
    for stem in ("p1_icu", "p2_icu"):
        label_file(tmp_path, stem, range(0, 53, 2))
    load_dataset_file(dataset(tmp_path)).records()
    assert "stamped" not in capsys.readouterr().err
    bad = YAML.replace("'rr/{stem}.csv'}", "'rr/{stem}.csv', stamp: middle}")
    with pytest.raises(SqtoolError, match=r"labels.rr.stamp must be one of start, centre, center, end .* got 'middle'"):
        load_dataset_file(dataset(tmp_path, yaml=bad))
    col = YAML.replace("{file: 'rr/{stem}.csv'}", "{column: ppg, stamp: end}")
    with pytest.raises(SqtoolError, match=r"labels.rr: stamp is for a label file's rows \(labels.rr.file\)"):
        load_dataset_file(dataset(tmp_path, yaml=col))


def test_rows_off_the_window_grid_by_a_constant_phase_are_told_the_shift_not_another_hop(tmp_path):
    """Per-second rows at 0.5, 1.5, ... s: no hop_s puts a window start on them; the error used to ask for hop_s
    1 s, and at hop_s 1 s asked for it again."""
    recordings(tmp_path)
    for stem in ("p1_icu", "p2_icu"):
        label_file(tmp_path, stem, [t + 0.5 for t in range(60)])
    for hop in (2, 1):
        msg = one_line_error(dataset(tmp_path, yaml=YAML.replace("hop_s: 2", f"hop_s: {hop}")))
        assert "Every row lies 0.5 s after a multiple of 1 s, off the windows' grid" in msg
        assert msg.endswith("shift the times by -0.5 s") and "Set windows.hop_s" not in msg


EPOCH = 1772355600.0                # 2026-03-01T09:00:00Z


def clock_recordings(tmp_path: Path) -> None:
    """60 s CSVs whose time column is the watch's clock, seconds since 1970 (start_time from it)."""
    (tmp_path / "rec").mkdir()
    t = np.arange(int(SECONDS * FS)) / FS
    for stem in ("p1_icu", "p2_icu"):
        np.savetxt(tmp_path / "rec" / f"{stem}.csv", np.column_stack([EPOCH + t, np.sin(2 * np.pi * 1.1 * t)]),
                   delimiter=",", header="time,ppg", comments="", fmt="%.5f")


def test_label_times_on_the_recordings_clock_are_told_and_read_with_origin_clock(tmp_path):
    """A label file exported with the watch's own wall-clock times (rows 0..52 s after its start): it was 'rows run
    to 1772355652.00 s ... the label file of another recording?'; now the line names the clock and the key."""
    clock_recordings(tmp_path)
    (tmp_path / "rr").mkdir()
    for stem in ("p1_icu", "p2_icu"):
        (tmp_path / "rr" / f"{stem}.csv").write_text("time,rr\n" + "".join(
            f"{EPOCH + t:.3f},{16 + (i % 5)}\n" for i, t in enumerate(range(0, 53, 2))))
    msg = one_line_error(dataset(tmp_path))
    assert "its times look like wall-clock times on the recording's clock (rows from 2026-03-01T09:00:00+00:00, " \
           "the recording starts 2026-03-01T09:00:00" in msg and msg.endswith("say origin: clock in labels.rr of "
                                                                             "dataset.yaml")
    recs = load_dataset_file(dataset(tmp_path, yaml=YAML.replace("'rr/{stem}.csv'}", "'rr/{stem}.csv', origin: clock}"))
                             ).records()
    lab = recs[0].labels["rr"]
    assert list(lab.times) == list(range(0, 53, 2)) and list(lab.values[:3]) == [16, 17, 18]


def test_a_label_file_of_date_times_with_semicolons_is_read_on_the_recordings_clock(tmp_path):
    """A monitor's per-window export as a European spreadsheet writes it: `time;rr` rows of ISO date-times (the
    instants of the recording's epoch clock, Z) are read with origin: clock as their epoch numbers are (they were
    refused: 'time;rr' read as one column, date-times not numbers); without origin: clock, one line asks for it."""
    from datetime import datetime, timezone
    clock_recordings(tmp_path)
    (tmp_path / "rr").mkdir()
    for stem in ("p1_icu", "p2_icu"):
        (tmp_path / "rr" / f"{stem}.csv").write_text("time;rr\n" + "".join(
            f"{datetime.fromtimestamp(EPOCH + t, timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')};{16 + (i % 5)}\n"
            for i, t in enumerate(range(0, 53, 2))))
    msg = one_line_error(dataset(tmp_path))
    assert "column 'time' holds date-times ('2026-03-01T09:00:00Z'), wall-clock times: say origin: clock" in msg, msg
    recs = load_dataset_file(dataset(tmp_path, yaml=YAML.replace("'rr/{stem}.csv'}", "'rr/{stem}.csv', origin: clock}"))
                             ).records()
    lab = recs[0].labels["rr"]
    assert list(lab.times) == list(range(0, 53, 2)) and list(lab.values[:3]) == [16, 17, 18]


def test_origin_clock_needs_a_recording_with_a_clock(tmp_path):
    recordings(tmp_path)                                        # time column from 0 s: no wall clock
    for stem in ("p1_icu", "p2_icu"):
        label_file(tmp_path, stem, range(0, 53, 2))
    msg = one_line_error(dataset(tmp_path, yaml=YAML.replace("'rr/{stem}.csv'}", "'rr/{stem}.csv', origin: clock}")))
    assert "has origin: clock but recording p1_icu has no wall clock" in msg


def test_a_said_rate_that_the_label_span_contradicts_is_one_warning(tmp_path, capsys):
    """64 Hz recordings (no time column) said as fs: 50 read 1.28x longer than their per-second label series: every
    label after the first sits at the wrong time, with no word; now one warning names the rate that fits."""
    (tmp_path / "rec").mkdir()
    t = np.arange(int(SECONDS * 64)) / 64
    for stem in ("p1_icu", "p2_icu"):
        np.savetxt(tmp_path / "rec" / f"{stem}.csv", np.sin(2 * np.pi * 1.1 * t)[:, None], header="ppg", comments="",
                   fmt="%.5f")
        label_file(tmp_path, stem, range(61))                   # 0..60 s, one row a second
    plain = YAML.replace("time_column: time\n", "")
    load_dataset_file(dataset(tmp_path, yaml=plain + "fs: 50\n")).records()
    err = capsys.readouterr().err
    assert "label 'rr': in 2 of 2 recordings the recording lasts 1.28x its label rows' span (0..60 s): fs: 50 (Hz) " \
           "in dataset.yaml may be wrong, 64 Hz would fit" in err and err.count("warning") == 1
    load_dataset_file(dataset(tmp_path, yaml=plain + "fs: 64\n")).records()
    assert "may be wrong" not in capsys.readouterr().err


def test_a_stretch_without_rows_longer_than_a_window_is_no_value_not_interpolated(tmp_path, capsys):
    """A day's label file with no rows while the watch was off the wrist or the recording had a gap: every window in
    the hole got a truth interpolated between the rows on either side (two hours apart in a 24 h recording: 3,597
    gap windows and 2,400 off-wrist ones scored against made-up truth, predict's MAE 7.05 BPM instead of 2.94).
    Windows in a stretch without rows longer than a window have no value now (NaN, counted, one warning line); a
    row or three missing in a row are still interpolated. Found by a helper's sweep."""
    recordings(tmp_path)
    times = [t for t in range(0, 53, 2) if not 10 <= t <= 30]               # rows at 0..8 and 32..52 s: 22 s hole
    label_file(tmp_path, "p1_icu", times)
    label_file(tmp_path, "p2_icu", [t for t in range(0, 53, 2) if t != 20])    # one row missing: 4 s apart
    ds = load_dataset_file(dataset(tmp_path))
    capsys.readouterr()
    p1, p2 = (r.labels["rr"] for r in ds.records())
    err = capsys.readouterr().err
    assert np.array_equal(np.sort(p1.times[np.isnan(p1.values)]), np.arange(10, 31, 2))
    assert ds.records()[0].meta["label_windows_without_row"] == {"rr": 11}
    assert "11 of its windows lie in 1 stretch(es) without rows longer than a 8 s window (the first at 10 s)" in err
    assert np.isfinite(p2.values).all()                                    # the one missing row: interpolated
    from sqtool.data.tasks import _label_at_centres
    y, ok = _label_at_centres(p1, np.arange(0.0, 53.0, 2.0), 8.0)
    assert np.isnan(y[(np.arange(0, 53, 2) >= 10) & (np.arange(0, 53, 2) <= 30)]).all()
    assert np.isfinite(y[np.arange(0, 53, 2) < 10]).all() and np.isfinite(y[np.arange(0, 53, 2) > 30]).all()


def test_label_file_warnings_are_one_line_per_cause_over_the_files_and_inspect_lists_each(tmp_path, capsys):
    """A watch's 13 label files, each with a row or two missing and a stretch without rows, made 18 warning lines
    before every command's own (inspect, finetune, quantize, bench, predict). Now one line per cause names the
    count of files, the windows in all and the first two files; data inspect lists every file's own line."""
    from sqtool.cli import main
    stems = ("p1_icu", "p2_icu", "p3_icu")
    recordings(tmp_path, stems)
    for k, stem in enumerate(stems):          # one row missing at 4 s (interpolated); none 20..40 s (a stretch)
        label_file(tmp_path, stem, [t for t in range(0, 53, 2) if t != 4 and not 20 <= t <= 30 + 2 * k])
    p = dataset(tmp_path)
    capsys.readouterr()
    load_dataset_file(p).records()
    said = [ln for ln in capsys.readouterr().err.splitlines() if "sqtool: warning:" in ln]
    assert len(said) == 2, said
    interp, holes = said
    assert "label 'rr': 3 of 3 label files have window starts without a row of their own" in interp
    assert "3 windows in all, e.g. rr/p1_icu.csv (1 of 27 starts), rr/p2_icu.csv (1 of 27 starts), ..." in interp
    assert "3 of 3 label files have stretches without rows longer than a 8 s window" in holes
    assert "21 windows in all, e.g. rr/p1_icu.csv (6 windows in 1 stretch(es) from 20 s), rr/p2_icu.csv (7 " in holes
    assert all(f"sqtool data inspect --data {p}" in ln for ln in said) and "p3_icu" not in interp + holes
    assert main(["data", "inspect", "--data", str(p), "--progress", "false"]) == 0
    each = [ln for ln in capsys.readouterr().err.splitlines() if "sqtool: warning:" in ln]
    assert len(each) == 6 and sum(str(tmp_path / "rr" / "p3_icu.csv") in ln for ln in each) == 2


@pytest.mark.parametrize("head, scale", [("time [s],rr [br/min]", 1), ("start,rr\ns,breaths/min", 1),
                                         ("time (ms),rr (brpm)", 1000), ("start;rr\nms;1/min", 1000)])
def test_units_in_a_label_files_names_or_units_row_are_read_as_a_recordings(tmp_path, head, scale):
    """A label file beside recordings whose columns carry units reads them too: `time [s],rr [br/min]` (was 'label
    file needs a start column (time)'), a units row under `start,rr` (was 'row 1 is not a number'), a time unit
    there read as the file's time_unit (ms: its rows at 0, 2000, ... ms read as 0, 2, ... s)."""
    recordings(tmp_path)
    sep = ";" if ";" in head else ","
    for stem in ("p1_icu", "p2_icu"):
        (tmp_path / "rr").mkdir(exist_ok=True)
        (tmp_path / "rr" / f"{stem}.csv").write_text(head + "\n" + "".join(
            f"{t * scale:g}{sep}{16 + (i % 5)}\n" for i, t in enumerate(np.arange(0.0, 53.0, 2.0))))
    lab = load_dataset_file(dataset(tmp_path)).records()[0].labels["rr"]
    assert lab.times[-1] == 52.0 and np.array_equal(lab.values[:3], [16, 17, 18]) and np.isfinite(lab.values).all()


@pytest.mark.parametrize("head, extra, says", [
    ("time [ms],rr", "", None),
    ("time [ms],rr", "labels: {rr: {file: 'rr/{stem}.csv', time_unit: ms}}\n", None),
    ("time [ms],rr", "labels: {rr: {file: 'rr/{stem}.csv', time_unit: s}}\n",
     "time column 'time [ms]': its name says ms but dataset.yaml says time_unit: s in labels.rr; make them agree"),
    ("time,rr\nms,mmHg", "", "column 'rr': its units row says mmHg, but label rr is in breaths/min; make them agree"),
    ("time,spo2 [%]", "labels: {spo2: {file: 'rr/{stem}.csv', unit: '%'}}\n", None),
    ("time,spo2 [mmHg]", "labels: {spo2: {file: 'rr/{stem}.csv', unit: '%'}}\n",
     "column 'spo2 [mmHg]': its name says mmHg, but label spo2 is in % (labels.spo2.unit)"),
])
def test_a_label_files_units_agree_with_the_dataset_files_or_are_one_line(tmp_path, head, extra, says):
    """A label file's time unit agrees with labels.<name>.time_unit where both are given, its value column's unit
    with the label's own (hr bpm, rr breaths/min, a custom label's unit:); else one line naming both."""
    recordings(tmp_path)
    for stem in ("p1_icu", "p2_icu"):
        label_file(tmp_path, stem, np.arange(0.0, 53000.0, 2000.0) if "ms" in head else np.arange(0.0, 53.0, 2.0),
                   head=head)
    yaml = YAML.replace("labels: {rr: {file: 'rr/{stem}.csv'}}\n", extra) if extra else YAML
    if says is None:
        rec = load_dataset_file(dataset(tmp_path, yaml=yaml)).records()[0]
        lab = rec.labels["spo2" if "spo2" in head else "rr"]
        assert lab.times[-1] == 52.0 and np.array_equal(lab.values[:3], [16, 17, 18])
    else:
        assert says in one_line_error(dataset(tmp_path, yaml=yaml))
