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
                         "blanks, or give it its own file (channels.acc_x.fs)")
    assert watch(False).gap_text() == ""


def test_a_recording_whose_every_window_holds_a_gap_is_left_out_naming_the_channels_not_the_truth():
    r = record_spectra(watch(True), get_model_cfg("spec_student_xs"))
    kept, left = with_truth([r], 8.0)
    assert kept == [] and left[0].startswith(f"mine/s1/run: every one of its {len(r.y)} windows holds NaN/Inf "
                                             "samples (gaps: acc_x 1,500 of 3,000 samples;")
    assert left[0].endswith("(channels.acc_x.fs)), so none has heart-rate truth")
    r = record_spectra(watch(False), get_model_cfg("spec_student_xs"))
    assert with_truth([r], 8.0)[0] == [r]


def test_inspect_names_the_first_gapped_records_channels():
    s = summarise("mine", records=[watch(False), watch(True)])
    assert "; e.g. s1/run: acc_x 1,500 of 3,000 samples;" in format_summary(s)
