"""A stream of channels at different rates (PPG at 50 Hz, accelerometer at 25 Hz, as many wrist devices sample):
`record.channel_matrix` resamples the other channels to the PPG's rate on the host, as the device upsamples its
slower accelerometer, instead of refusing the recording ('a stream needs one device rate', no fix)."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.preprocess import resample
from sqtool.data.record import Record, channel_matrix, resampled_note, stream_rate

CH = ["ppg", "acc_x", "acc_y", "acc_z"]


def _record(fs_acc: float = 25.0, seconds: float = 40.0) -> Record:
    t50, ta = np.arange(int(seconds * 50)) / 50, np.arange(int(seconds * fs_acc)) / fs_acc
    sig = {"ppg": np.sin(2 * np.pi * 1.5 * t50), **{f"acc_{a}": 0.2 * np.sin(2 * np.pi * 1.3 * ta + k) + (k == 2)
                                                    for k, a in enumerate("xyz")}}
    return Record("mine", "s1", "r1", sig, {"ppg": 50.0, **{f"acc_{a}": fs_acc for a in "xyz"}})


def test_the_slower_accelerometer_is_resampled_to_the_ppgs_rate():
    rec = _record()
    assert stream_rate(rec, CH) == (50.0, {"acc_x": 25.0, "acc_y": 25.0, "acc_z": 25.0})
    x, fs = channel_matrix(rec, CH)                                               # (4, 2000)
    assert fs == 50.0 and x.shape == (4, 2000)
    assert np.array_equal(x[0], rec.signals["ppg"])
    assert np.allclose(x[1], resample(rec.signals["acc_x"], 25.0, 50.0))           # the project's polyphase resampler
    t = np.arange(2000) / 50
    inner = slice(100, 1900)                                                      # away from the FIR's edges
    assert np.max(np.abs(x[1, inner] - 0.2 * np.sin(2 * np.pi * 1.3 * t[inner]))) < 1e-3
    assert channel_matrix(_record(50.0), CH)[1] == 50.0 and not stream_rate(_record(50.0), CH)[1]


def test_a_gap_stays_a_gap_at_the_new_rate():
    """NaN samples (dropouts) are filled for the FIR, so they do not spread over its length, and NaN again where
    they were: the stream holds the same gap."""
    rec = _record()
    rec.signals["acc_y"][400:425] = np.nan                                        # 16.0..17.0 s at 25 Hz
    x, _ = channel_matrix(rec, CH)
    gap = np.flatnonzero(np.isnan(x[2]))
    assert np.array_equal(gap, np.arange(800, 850)) and np.isfinite(x[[0, 1, 3]]).all()   # 16.0..17.0 s


@pytest.mark.parametrize("fs_in, fs_out", [(100.0, 64.0), (128.0, 25.0), (25.0, 64.0)])
def test_every_one_sample_gap_survives_the_rate_change(fs_in, fs_out):
    """A faster accelerometer brought down to the PPG's rate (100 -> 64 Hz): a one-sample gap between two output
    samples' sources was interpolated away (gaps at inputs 2, 5, 8, 11 of 1..11 lost); every one now marks the output
    sample after it, and none marks more than the outputs up to the next input (upsampling 25 -> 64 Hz as before)."""
    from sqtool.data.preprocess import resample_keeping_gaps
    n = int(fs_in * 4)
    for i in range(1, 40):
        x = np.sin(np.arange(n) / 7.0)
        x[i] = np.nan
        y = resample_keeping_gaps(x, fs_in, fs_out)
        hit = np.flatnonzero(np.isnan(y))
        assert hit.size >= 1, i                                        # the gap is still a gap
        t_hit = hit / fs_out
        assert (t_hit >= i / fs_in - 1e-9).all() and (t_hit < (i + 1) / fs_in + 1 / fs_out).all(), (i, hit)


def test_a_ratio_no_polyphase_filter_takes_is_one_line_with_the_fix():
    """A ratio whose fraction (denominator <= 1000) needs up-sampling by over 10,000 (`resample_ratio` refuses it):
    the line says which channel, both rates and what to do."""
    rec = _record(25.0)
    rec.fs.update({f"acc_{a}": 50.0 / 10.0007 for a in "xyz"})
    with pytest.raises(SqtoolError) as e:
        channel_matrix(rec, CH)
    m = str(e.value)
    assert m.startswith("mine/r1: channel 'acc_x' at 4.99965 Hz cannot be resampled to the PPG's 50 Hz (resample:")
    assert m.endswith("resample 'acc_x' to 50 Hz before (or give the recording one rate)") and "\n" not in m


def test_the_note_names_the_recordings_and_rates():
    one, mixed = _record(50.0), _record(25.0)
    assert resampled_note([(one, CH)]) is None
    assert resampled_note([(one, CH), (mixed, CH)]) == (
        "note: 1 recording with channels at another rate than the PPG: resampled to the PPG's rate on the host "
        "(polyphase, as a device upsamples a slower accelerometer), e.g. r1: acc_x, acc_y, acc_z 25 Hz -> 50 Hz")


def test_the_integer_note_says_what_ran_per_channel_and_warns_on_a_rate_the_device_does_not_run():
    """An export with the kit's accelerometer resampler (made for 25 Hz here): a recording at 25 Hz says the integer
    filter ran; one at 12.5 Hz still runs it (designed for 12.5) and the line warns that the device does not; another
    channel at another rate (a second PPG) went through the float filter and the line says so (it said 'integer'
    for every channel, and nothing about a rate other than the export's)."""
    mixed = _record(25.0)
    ok = resampled_note([(mixed, CH)], True, 25.0)
    assert "by the export's integer accelerometer resampler" in ok and "WARNING" not in ok
    slow = _record(12.5)
    line = resampled_note([(slow, CH)], True, 25.0)
    assert "\n" not in line and line.endswith(
        ". WARNING: the export's device resamples an accelerometer at 25 Hz (export --device-acc-fs); these "
        "recordings' 12.5 Hz go through the integer filter designed for their own rate, one that device does not "
        "run: export for this rate")
    two = _record(25.0)
    two.signals["ppg2"], two.fs["ppg2"] = two.signals["acc_x"].copy(), 25.0
    assert "the accelerometer by the export's integer resampler (bit-exact with its C, as the device does), other " \
           "channels by the float polyphase filter" in resampled_note([(two, ["ppg", "ppg2", *CH[1:]])], True, 25.0)
    assert "WARNING" not in resampled_note([(slow, CH)], False, 25.0)           # the float path: no device filter


def test_training_says_it_once_for_a_dataset_of_such_recordings():
    """A fine-tune (and quantize) reads a dataset's heart-rate recordings through `dataset_spectra`: a slower
    accelerometer brought to the PPG's rate is one note line for the whole dataset, as predict and bench say it
    (the README's promise; training said nothing)."""
    from sqtool.data.dataset_tasks import dataset_spectra
    from sqtool.data.record import Label
    from sqtool.models import get_model_cfg

    class _Ds:                                                   # the part of a DatasetFile dataset_spectra reads
        name, report = "mine", {}

        def require_label(self, label):
            pass

        def records(self, log=None):
            for i in range(2):
                rec = _record(25.0)
                rec.record_id, rec.subject = f"r{i}", f"s{i}"
                rec.labels["hr"] = Label(np.full(16, 90.0), np.arange(16) * 2.0 + 4.0, "bpm")
                yield rec

    lines = []
    out = dataset_spectra(_Ds(), get_model_cfg("spec_student_xs"), log=lines.append)
    assert len(out) == 2
    assert [ln for ln in lines if "another rate than the PPG" in ln] == [
        "note: 2 recordings with channels at another rate than the PPG: resampled to the PPG's rate on the host "
        "(polyphase, as a device upsamples a slower accelerometer), e.g. r0: acc_x, acc_y, acc_z 25 Hz -> 50 Hz"]
