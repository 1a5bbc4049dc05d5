"""`sqtool.load_model(export).stream(fs)` for every export that is not a spectral heart-rate model (a TaskStream):
the rows of the windows each chunk completed, concatenated with finish()'s, are `TaskModel.predict`'s on the whole
recording to the bit, whatever the chunks (1 sample, 7, a window boundary inside a chunk, random sizes), with NaN
gaps, at the model's rate and one it resamples from, on the "window" and the "causal" band-pass, a heart-rate model's
tracker carried over the chunks; its memory stays flat; bad input one line each."""
from __future__ import annotations

import numpy as np
import pytest
from fwb_helpers import assert_streams_as_predict, chunked
from test_predict_targets import export_student

import sqtool
from sqtool.core import SqtoolError
from sqtool.data.tasks import task_model_cfg
from sqtool.models import get_model_cfg


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    """Untrained int8 students on the PPG alone, exported with their C: af (10 s windows, tiles short recordings),
    rr (30 s windows, a 0.05 Hz band: 60 s / 30 s of filter context), quality trained on the causal band-pass."""
    def mc(task, **kw):
        return task_model_cfg(task, get_model_cfg("cnn1d_student_xs"), channels=("ppg",)).replace(**kw)
    root = tmp_path_factory.mktemp("task_stream")
    return {"af": export_student(root / "af", mc("af"), ["c"]),
            "rr": export_student(root / "rr", mc("rr"), ["c"]),
            "quality_causal": export_student(root / "q", mc("quality", band_phase="causal"), ["c"])}


def _recording(seconds: float, fs: float, acc: bool = False, seed: int = 0):
    """A pulse with breathing, noise and NaN gaps (a 1.5 s dropout, a lone sample, the first samples); acc (N, 3)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fs))) / fs
    ppg = 100 * np.sin(2 * np.pi * 1.3 * t) + 30 * np.sin(2 * np.pi * 0.25 * t) + 5 * rng.standard_normal(t.size) + 500
    ppg[:3] = np.nan
    if seconds > 50:
        ppg[int(30 * fs):int(31.5 * fs)] = np.nan
        ppg[int(50 * fs)] = np.nan
    a = 0.2 * np.sin(2 * np.pi * 1.3 * t[:, None] + np.arange(3)) + 0.01 * rng.standard_normal((t.size, 3))
    return ppg, (a if acc else None)


def _chunkings(fs: float, window_s: float, one: bool = True) -> list[list[int]]:
    """1 sample (where `one`), 7, a window and a bit (a window boundary inside every chunk), random sizes 1..400."""
    w = int(round(window_s * fs)) + 3
    return [*([[1]] if one else []), [7], [w], list(np.random.default_rng(3).integers(1, 400, 60))]


@pytest.mark.parametrize("name, fs", [("af", 125.0), ("af", 40.0), ("rr", 64.0), ("quality_causal", 125.0)])
def test_the_rows_are_predicts_whatever_the_chunks(students, name, fs):
    m = sqtool.load_model(students[name])
    assert isinstance(m, sqtool.TaskModel)
    ppg, _ = _recording(100.0, fs)
    assert_streams_as_predict(m, ppg, None, fs, _chunkings(fs, m.window_s, one=fs == 125.0))
    m.close()


def test_a_heart_rate_model_reading_acc_streams_its_tracker(export_dir):
    """The conftest's time-domain hr student (ppg, acc_x, acc_y, acc_z): hr_bpm, hr_tracked_bpm (the tracker carried
    from chunk to chunk) and the rest as predict's, the accelerometer pushed beside the PPG."""
    m = sqtool.load_model(export_dir)
    assert m.needs_acc
    ppg, acc = _recording(80.0, 125.0, acc=True)
    assert_streams_as_predict(m, ppg, acc, 125.0, _chunkings(125.0, m.window_s, one=False))
    assert "hr_tracked_bpm" in m.predict(ppg, acc, fs=125.0).columns
    m.close()


def test_rows_come_as_the_windows_complete_and_finish_gives_the_last(students):
    """A chunk gives the windows it completed, t_end_s counted from the stream's first sample; the "window" filter's
    look-ahead holds the last ones until finish(); after finish a push is one line, reset() starts over."""
    m = sqtool.load_model(students["af"])
    ppg, _ = _recording(60.0, 40.0)
    want = m.predict(ppg, fs=40.0)
    with m.stream(40.0) as s:
        first = s.push(ppg[:400])                                        # 10 s: one window, its look-ahead not yet
        assert len(first) == 0 and list(first.columns) == ["p_af", "flagged"]
        got = s.push(ppg[400:])
        assert 0 < len(got) < len(want) and got.t_end_s[0] == pytest.approx(m.window_s)
        last = s.finish()
        assert len(got) + len(last) == len(want)
        with pytest.raises(SqtoolError, match=r"^TaskStream.push: the stream is finished \(reset\(\) starts the next "
                                              r"recording\)$"):
            s.push(ppg[:10])
        with pytest.raises(SqtoolError, match=r"^TaskStream.finish: the stream is finished"):
            s.finish()
        s.reset()
        again = [s.push(ppg[a:b]) for a, b in chunked(len(ppg), [333])] + [s.finish()]
    assert np.array_equal(np.concatenate([r.p_af for r in again]), want.p_af)
    with pytest.raises(SqtoolError, match=r"^TaskStream.push: the stream is closed"):
        s.push(ppg[:10])
    m.close()


def test_a_recording_shorter_than_a_window_gets_predicts_row_at_finish(students):
    """af tiles a recording shorter than its window (metadata short_records "tile"), as predict does: finish() gives
    that one row; rr refuses such a recording in predict, and its stream gives none."""
    af, rr = sqtool.load_model(students["af"]), sqtool.load_model(students["rr"])
    ppg, _ = _recording(6.0, 125.0)
    want = af.predict(ppg, fs=125.0)
    with af.stream(125.0) as s:
        assert all(len(s.push(ppg[a:b])) == 0 for a, b in chunked(len(ppg), [7]))
        got = s.finish()
    assert len(want) == 1 and np.array_equal(got.t_end_s, want.t_end_s) and np.array_equal(got.p_af, want.p_af)
    with rr.stream(125.0) as s:
        s.push(ppg)
        assert len(s.finish()) == 0
    af.close()
    rr.close()


def test_memory_stays_flat_over_hours(students):
    """The stream holds its window and the filter's context, never the history (nor a latency per window): the
    second hour adds nothing to what the first left allocated."""
    import tracemalloc
    m = sqtool.load_model(students["af"])
    chunk, _ = _recording(10.0, 125.0)
    s = m.stream(125.0)
    s.push(chunk)
    tracemalloc.start()
    try:
        for _ in range(360):
            s.push(chunk)
        hour1 = tracemalloc.get_traced_memory()[0]
        for _ in range(360):
            s.push(chunk)
        hour2 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert hour2 - hour1 < 4096, (hour1, hour2)
    m.close()


@pytest.mark.parametrize("make, match", [
    (lambda m: m.stream(0.0), r"^TaskModel.stream: fs: sampling rate must be in \(0, 10000\] Hz, got 0.0$"),
    (lambda m: m.stream(-125.0), r"^TaskModel.stream: fs: sampling rate must be in \(0, 10000\] Hz, got -125.0$"),
    (lambda m: m.stream(None), r"^TaskModel.stream: fs must be the sampling rate in Hz \(a number\), got None$"),
    (lambda m: m.stream(12.0), r"^TaskModel.stream: fs 12 Hz: cannot resample 12 Hz to the model's 40 Hz input: "
                               r"the device rate's Nyquist frequency 6 Hz is below the model's band \(8 Hz\).*; at the "
                               r"model's own 40 Hz a device streams as is$"),
    (lambda m: m.stream(39.35), r"^TaskModel.stream: fs 39.35 Hz: 10 s / 10 s windows are not whole numbers of "
                                r"samples at the device rate 39.35 Hz \(predict resamples such a recording to whole "
                                r"Hz over all of it, which a stream cannot\): resample it to a whole-Hz rate on the "
                                r"device; at the model's own 40 Hz a device streams as is$"),
    (lambda m: m.stream(125.0).push(np.zeros((2, 50))), r"^TaskStream.push: ppg must be \(n,\) or \(n, S\) for the "
                                                        r"model's S = 1 sensor column\(s\) \(ppg\), "
                                                        r"got shape \(2, 50\)$"),
    (lambda m: m.stream(125.0).push(np.zeros((1, 50))), r"got shape \(1, 50\) \(channels-first\? pass ppg.T\)$"),
    (lambda m: m.stream(125.0).push(np.zeros(5) * 1j), r"^TaskStream.push: ppg must hold real numbers"),
    (lambda m: m.stream(125.0).push(np.zeros(5), np.zeros((3, 5))), r"^TaskStream.push: acc must be \(5, 3\), x, y, "
                                                                    r"z .*got shape \(3, 5\) \(channels-first\? pass "
                                                                    r"acc.T\)$"),
], ids=["fs_zero", "fs_negative", "fs_none", "below_band", "not_whole_samples", "two_columns", "channels_first",
        "complex", "acc_shape"])
def test_bad_input_is_one_line(students, make, match):
    m = sqtool.load_model(students["af"])
    with pytest.raises(SqtoolError, match=match) as e:
        make(m)
    assert "\n" not in str(e.value)
    m.close()


def test_a_model_reading_acc_wants_it_at_the_ppgs_rate(export_dir):
    """A chunk without acc is one line; an accelerometer at its own rate is refused (predict resamples it over the
    whole recording, its mean removed first: no stream matches that), with what to do."""
    m = sqtool.load_model(export_dir)
    with pytest.raises(SqtoolError, match=r"^TaskStream.push: this model reads the accelerometer: pass acc, \(50, 3\) "
                                          r"x, y, z in g$"):
        m.stream(125.0).push(np.zeros(50))
    with pytest.raises(SqtoolError, match=r"^TaskModel.stream: acc_fs 25 Hz differs from fs 125 Hz: predict resamples "
                                          r"such an accelerometer over the whole recording, which a stream cannot "
                                          r"match; resample acc to 125 Hz on the device") as e:
        m.stream(125.0, acc_fs=25.0)
    assert "\n" not in str(e.value)
    with pytest.raises(SqtoolError, match=r"^TaskStream.push: acc must be \(50, 3\)"):
        m.stream(125.0).push(np.zeros(50), np.zeros((49, 3)))
    m.close()


def test_the_mcu_runtime_does_not_stream(students):
    m = sqtool.load_model(students["af"], runtime="mcu")
    with pytest.raises(SqtoolError, match=r"^TaskModel.stream: runtime mcu_m4 does not stream \(its QEMU starts once "
                                          r"a call\): load_model\(export, runtime='c'\)"):
        m.stream(125.0)
    assert sqtool.TaskStream is sqtool.api.TaskStream and "TaskStream" in sqtool.__all__ and \
        "TaskStream" in sqtool.api.__all__


def test_a_runtime_the_export_lacks_is_one_line_when_the_stream_opens(students):
    """The af student has no ONNX file: stream() says so at once. It was said at the first window, after predict
    --data - had printed its CSV header (and started the run) on every row before it."""
    m = sqtool.load_model(students["af"], runtime="onnx")
    with pytest.raises(SqtoolError, match=r"has no model_int8.onnx"):
        m.stream(125.0)
    m.close()
