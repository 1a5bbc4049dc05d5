"""Gaps said by channel: a slower stream written into a faster file's rows (blank cells between its values) is named
as such, in `data inspect` and in the line that leaves a recording out of training (it blamed the truth)."""
from __future__ import annotations

import numpy as np

from sqtool.data.hr_spectra import record_spectra, with_truth
from sqtool.data.readers.summary import format_summary, summarise
from sqtool.data.record import Label, Record
from sqtool.models import get_model_cfg

FS = 50.0


def watch(sparse_acc: bool) -> Record:
    """60 s at 50 Hz: a 1.2 Hz pulse, three acc axes whose cells are blank on every other row (a 25 Hz stream)."""
    t = np.arange(int(60 * FS)) / FS
    acc = 0.01 * np.sin(2 * np.pi * 0.3 * t)
    if sparse_acc:
        acc = np.where(np.arange(t.size) % 2 == 0, acc, np.nan)
    sig = {"ppg": np.sin(2 * np.pi * 1.2 * t), "acc_x": acc.copy(), "acc_y": acc.copy(), "acc_z": 1 + acc}
    starts = np.arange(0, 53, 2.0)
    lab = Label(values=np.full(starts.size, 72.0), times=starts, unit="bpm", kind="window", window_s=8.0)
    return Record(dataset="mine", subject="s1", record_id="s1/run", signals=sig, fs=dict.fromkeys(sig, FS),
                  labels={"hr": lab})


def test_an_interleaved_slower_stream_is_named_by_channel():
    text = watch(True).gap_text()
    assert text.startswith("acc_x 1,500 of 3,000 samples; acc_y 1,500 of 3,000 samples; acc_z 1,500 of 3,000")
    assert text.endswith("acc_x, acc_y, acc_z: one value every 2 rows, a 25 Hz stream in 50 Hz rows? fill the "
                         "blanks, or say its rate in the dataset file (channels.acc_x: {column: ..., fs: 25}) or, "
                         "for a CSV without one, with predict / bench --acc-fs 25")
    assert watch(False).gap_text() == ""


def test_a_recording_whose_every_window_holds_a_gap_is_left_out_naming_the_channels_not_the_truth():
    r = record_spectra(watch(True), get_model_cfg("spec_student_xs"))
    kept, left = with_truth([r], 8.0)
    assert kept == [] and left[0].startswith(f"mine/s1/run: every one of its {len(r.y)} windows holds NaN/Inf "
                                             "samples (gaps: acc_x 1,500 of 3,000 samples;")
    assert left[0].endswith("(channels.acc_x: {column: ..., fs: 25}) or, for a CSV without one, with predict / "
                            "bench --acc-fs 25), so none has heart-rate truth")
    r = record_spectra(watch(False), get_model_cfg("spec_student_xs"))
    assert with_truth([r], 8.0)[0] == [r]


def test_inspect_names_the_first_gapped_records_channels():
    s = summarise("mine", records=[watch(False), watch(True)])
    assert "; e.g. s1/run: acc_x 1,500 of 3,000 samples;" in format_summary(s)


def _merged_csv(tmp_path, held: bool):
    """A watch's one CSV: epoch-ms times at 64 Hz, PPG on every row, a 32 Hz accelerometer on every other row (blank
    between its values; held: repeated on the row after), and its dataset file saying the accelerometer's rate as
    the gap text asks."""
    import pandas as pd
    n = 64 * 40
    t = np.arange(n) / 64
    acc32 = 0.1 * np.sin(2 * np.pi * 0.3 * np.arange(n // 2) / 32) + 1.0
    acc = np.repeat(acc32, 2) if held else np.where(np.arange(n) % 2 == 0, np.repeat(acc32, 2), np.nan)
    (tmp_path / "rec").mkdir()
    pd.DataFrame({"timestamp": 1767225600000 + np.round(t * 1000).astype(np.int64), "ppg": np.sin(2 * np.pi * t),
                  "az": acc}).to_csv(tmp_path / "rec" / "s1_run.csv", index=False)
    (tmp_path / "dataset.yaml").write_text("name: mine\nformat: csv\nroot: rec\ntime_column: timestamp\n"
                                           "time_unit: ms\nchannels:\n  ppg: ppg\n  acc_z: {column: az, fs: 32}\n")
    return acc32


def test_a_slower_stream_in_every_other_row_is_read_at_the_rate_its_channel_says(tmp_path):
    """channels.acc_z.fs: 32 in a 64 Hz file whose acc cells are blank on every other row (what the gap text asks
    for) reads the 32 Hz samples; it was refused as 'disagrees with the time column; wrong sampling rate'. A column
    with a value on every row at fs 32 is one line, not every other sample dropped."""
    import pytest

    from sqtool.core import SqtoolError
    from sqtool.data.dataset_file import load_dataset_file
    acc32 = _merged_csv(tmp_path, held=False)
    rec, = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert rec.fs == {"ppg": 64.0, "acc_z": 32.0} and rec.signals["ppg"].size == 2560
    assert np.array_equal(rec.signals["acc_z"], acc32) and rec.gap_text() == ""
    (tmp_path / "rec" / "s1_run.csv").unlink()
    (tmp_path / "rec").rmdir()
    _merged_csv(tmp_path, held=True)
    with pytest.raises(SqtoolError, match=r"s1_run.csv: channels.acc_z.fs 32 Hz is one value every 2 rows of the "
                                          r"time column's 64 Hz, but the column has values between them \(1,280 "
                                          r"rows, the first at 0.015625 s\); .* leave its fs out$"):
        load_dataset_file(tmp_path / "dataset.yaml").records()


def test_a_slower_stream_said_at_another_rate_names_the_rate_its_rows_give(tmp_path):
    """fs: 25 for the 32 Hz accelerometer on every other 64 Hz row: 'disagrees with the time column (64 Hz); wrong
    sampling rate', no word of the rate the rows hold. Now the line ends with it."""
    import pytest

    from sqtool.core import SqtoolError
    from sqtool.data.dataset_file import load_dataset_file
    _merged_csv(tmp_path, held=False)
    y = tmp_path / "dataset.yaml"
    y.write_text(y.read_text().replace("fs: 32", "fs: 25"))
    with pytest.raises(SqtoolError, match=r"channels.acc_z.fs 25 Hz disagrees with the time column 'timestamp' "
                                          r"\(64 Hz\); wrong sampling rate \(its column has one value every 2 rows: "
                                          r"a 32 Hz stream\?\)"):
        load_dataset_file(y).records()


def test_streams_stamped_on_rows_of_their_own_are_refused_saying_how_to_write_them(tmp_path):
    """A logger's merged CSV: PPG rows at 64 Hz and accelerometer rows at 50 Hz, each stamped by its own clock, one
    time column (about 114 rows a second). It was 'channels.ppg.fs 64 Hz disagrees with the time column (114 Hz);
    wrong sampling rate', which no rate fixes; now the line says what is read and how to write it."""
    import pandas as pd
    import pytest

    from sqtool.core import SqtoolError
    from sqtool.data.dataset_file import load_dataset_file
    tp, ta = np.arange(64 * 30) / 64, np.arange(50 * 30) / 50
    df = pd.concat([pd.DataFrame({"t": tp, "ppg": np.sin(2 * np.pi * tp)}),
                    pd.DataFrame({"t": ta, "az": 1 + 0.1 * np.sin(ta)})]).sort_values("t", kind="stable")
    (tmp_path / "rec").mkdir()
    df.to_csv(tmp_path / "rec" / "s1_run.csv", index=False)
    y = tmp_path / "dataset.yaml"
    y.write_text("format: csv\nroot: rec\ntime_column: t\nchannels: {ppg: {column: ppg, fs: 64}, acc_z: {column: az, "
                 "fs: 50}}\n")
    with pytest.raises(SqtoolError, match=r"channels.ppg.fs 64 Hz disagrees with the time column 't' \(114 Hz\); "
                                          r"wrong sampling rate \(its column has a value on 56 % of the rows: "
                                          r"streams stamped on rows of their own, interleaved, are not read; .* "
                                          r"write each recording as an NPZ with one array and fs_<channel> per "
                                          r"channel\)"):
        load_dataset_file(y).records()
