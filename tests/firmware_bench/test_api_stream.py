"""`HrModel.stream(fs, gains=G).push(ppg, acc)`: a live stream's heart rate, chunk by chunk. Whatever the chunks (1
sample, 7, 125, random sizes, a window boundary inside a chunk), the windows pushed out are those of one push and
those of `HrModel.predict(..., gains=G)` on the whole recording, to the bit, on the C pipeline and on the Python
integer front end + C network + fixed-point decoder; reset() starts over; bad chunks are one SqtoolError line each."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz

import sqtool
from sqtool.core import SqtoolError
from sqtool.data.frontend import to_int16

FIELDS = ("t_end_s", "hr_bpm", "lo_bpm", "hi_bpm", "confidence", "flagged", "no_pulse")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")


@pytest.fixture(scope="module")
def wrist(tmp_path_factory):
    """(ppg (N, 2), acc (N, 3), fs) of 60 s, with a 6 s PPG dropout (NaN) in the middle: two PPG sensors and an
    accelerometer, as the fixture export reads."""
    z = np.load(write_wrist_npz(tmp_path_factory.mktemp("wrist") / "w.npz", seconds=60.0, ppg2=True))
    ppg = np.stack([z["ppg"], z["ppg2"]], 1)
    ppg[3000:3750, 0] = np.nan
    return ppg, np.stack([z[f"acc_{a}"] for a in "xyz"], 1), float(z["fs"])


@pytest.fixture(scope="module", params=["", "c"], ids=["c_pipeline", "c_host_single"])
def model(request, spec_export_dir):
    if shutil.which("gcc") is None:
        pytest.skip("no host gcc")
    m = sqtool.load_model(spec_export_dir, runtime=request.param)
    yield m
    m.close()


def chunked(n: int, sizes) -> list[tuple[int, int]]:
    """[(a, b)] cutting n samples into chunks of the given sizes, cycled."""
    out, a, k = [], 0, 0
    while a < n:
        b = min(n, a + int(sizes[k % len(sizes)]))
        out.append((a, b))
        a, k = b, k + 1
    return out


def streamed(stream, ppg, acc, cuts) -> dict:
    """Every chunk pushed; the windows' fields concatenated."""
    res = [stream.push(ppg[a:b], None if acc is None else acc[a:b]) for a, b in cuts]
    return {f: np.concatenate([getattr(r, f) for r in res]) for f in FIELDS}


def same(got: dict, ref) -> None:
    assert len(ref) > 0
    for f in FIELDS:
        assert np.array_equal(got[f], getattr(ref, f)), f


CHUNKS = {"one_push": [10 ** 9], "1": [1], "7": [7], "125": [125],
          "random": list(np.random.default_rng(1).integers(1, 700, 200)),
          "boundary_inside": [1000 + 3, 250, 249, 251]}      # 8 s = 1000 samples, hops of 250: a boundary mid-chunk


@pytest.mark.parametrize("sizes", CHUNKS.values(), ids=CHUNKS.keys())
def test_any_chunking_gives_predicts_windows(model, wrist, sizes):
    ppg, acc, fs = wrist
    ref = model.predict(ppg, acc, fs, gains=None)
    assert ref.runtime == ("c_pipeline" if model._cfg.runtime == "" else "c_host_single")
    assert ref.flagged.any() and not ref.flagged.all()                     # the dropout's windows are flagged
    with model.stream(fs) as s:
        got = streamed(s, ppg, acc, chunked(len(ppg), sizes))
    same(got, ref)


def test_the_streams_gains_are_the_devices_not_the_recordings(model, wrist):
    """gains=None is the export's default device gains; numbers are counts per unit per channel; gains=1 takes int16
    device counts; predict's default stays the robust per-recording gains."""
    ppg, acc, fs = wrist
    g = np.array([40.0, 90.0, 2000.0, 2000.0, 2000.0])
    ref = model.predict(ppg, acc, fs, gains=g)
    same(streamed(model.stream(fs, gains=g), ppg, acc, chunked(len(ppg), [333])), ref)
    x16 = to_int16(np.nan_to_num(np.hstack([ppg, acc]).T) * 1.0, g).T                    # (N, 5) int16 counts
    p16 = np.where(np.isnan(ppg), np.nan, x16[:, :2])                                    # the dropout kept
    same(streamed(model.stream(fs, gains=1), p16, x16[:, 2:], chunked(len(ppg), [77])), ref)
    assert not np.array_equal(model.predict(ppg, acc, fs).hr_bpm, model.predict(ppg, acc, fs, gains=None).hr_bpm)
    assert np.array_equal(model.predict(ppg, acc, fs).hr_bpm, model.predict(ppg, acc, fs, gains="robust").hr_bpm)


def test_counts_wider_than_int16_under_the_streams_gains_are_said_once(model, wrist, capsys):
    """An 18-bit optical front end's counts (DC ~120,000) under the stream's default gains: every PPG sample is read
    as int16's rail and every window flagged; one note line says so and what to give, once a stream (reset: again),
    as predict says it (before: said nowhere). Counts that fit say nothing."""
    ppg, acc, fs = wrist
    wide = 120000 + 40 * ppg
    s = model.stream(fs)
    res = streamed(s, wide, acc, chunked(len(ppg), [500]))
    err = [ln for ln in capsys.readouterr().err.splitlines() if "past int16" in ln]
    assert len(err) == 1 and res["flagged"][1:].all(), err                # every window but the first
    assert err[0].startswith("sqtool: note: HrModel.stream sample 1: with gains ")
    assert "100 % of ppg's, 100 % of ppg2's samples are past int16's +-32767" in err[0] and "below 1" in err[0]
    s.reset()
    s.push(wide[:10], acc[:10])
    assert "past int16" in capsys.readouterr().err
    streamed(model.stream(fs), ppg, acc, chunked(len(ppg), [500]))
    assert "past int16" not in capsys.readouterr().err


def test_a_chunk_reports_the_windows_it_completed(model, wrist):
    ppg, acc, fs = wrist
    s = model.stream(fs)
    assert len(s.push(ppg[:900], acc[:900])) == 0                          # 8 s = 1000 samples not yet there
    first = s.push(ppg[900:1000], acc[900:1000])
    assert list(first.t_end_s) == [8.0] and first.runtime == model.predict(ppg, acc, fs).runtime
    assert list(s.push(ppg[1000:1500], acc[1000:1500]).t_end_s) == [10.0, 12.0]
    assert len(s.push(ppg[:0], acc[:0])) == 0                              # an empty chunk: nothing


def test_reset_starts_over(model, wrist):
    ppg, acc, fs = wrist
    fresh = streamed(model.stream(fs), ppg, acc, chunked(len(ppg), [500]))
    s = model.stream(fs)
    streamed(s, ppg[::-1].copy(), acc[::-1].copy(), chunked(3333, [100]))  # another signal, a part of a window
    s.reset()
    again = streamed(s, ppg, acc, chunked(len(ppg), [500]))
    for f in FIELDS:
        assert np.array_equal(again[f], fresh[f]), f


def test_the_stream_holds_the_device_state_not_the_history(spec_export_dir, wrist):
    """The Python path's buffers stay the size of a window however long the stream runs."""
    ppg, acc, fs = wrist
    m = sqtool.load_model(spec_export_dir, runtime="c")
    s = m.stream(fs)

    def held() -> int:
        return sum(v.nbytes for v in vars(s.fe).values() if isinstance(v, np.ndarray)) + len(s.flat)
    for _ in range(3):                                                     # 3 min: past the no-pulse run's windows
        streamed(s, ppg, acc, chunked(len(ppg), [250]))
    after_3 = held()
    for _ in range(5):
        streamed(s, ppg, acc, chunked(len(ppg), [250]))
    assert held() == after_3 < 20_000
    m.close()


WRONG = {
    "ppg_channels_first": (dict(ppg=lambda p: p.T), r"ppg must be \(n,\) or \(n, S\) for S <= 2 sensors \(ppg, ppg2\), "
                           r"got shape \(2, 250\) \(channels-first\? pass ppg.T\)"),
    "ppg_too_many": (dict(ppg=lambda p: np.hstack([p, p])), r"got shape \(250, 4\)"),
    "ppg_3d": (dict(ppg=lambda p: p[:, :, None]), r"got shape \(250, 2, 1\)$"),
    "ppg_text": (dict(ppg=lambda p: p.astype(str)), "ppg must hold real numbers"),
    "acc_missing": (dict(acc=None), r"this model reads the accelerometer: pass acc, \(250, 3\) x, y, z"),
    "acc_channels_first": (dict(acc=lambda a: a.T), r"acc must be \(250, 3\).*got shape \(3, 250\) \(channels-first"),
    "acc_shorter": (dict(acc=lambda a: a[:200]), r"got shape \(200, 3\) \(one row per ppg sample: the stream's acc is at "
                    r"fs, 125 Hz\)"),
    "acc_1d": (dict(acc=lambda a: a[:, 0]), r"acc must be \(250, 3\).*got shape \(250,\)$"),
}


@pytest.mark.parametrize("kw, match", WRONG.values(), ids=WRONG.keys())
def test_a_bad_chunk_is_one_line(model, wrist, kw, match):
    ppg, acc, fs = wrist
    args = {"ppg": ppg[:250], "acc": acc[:250]}
    for k, v in kw.items():
        args[k] = v(args[k]) if callable(v) else v
    with pytest.raises(SqtoolError, match=match) as e:
        model.stream(fs).push(**args)
    assert "\n" not in str(e.value)


def test_a_stream_keeps_its_sensors_and_closes(model, wrist):
    ppg, acc, fs = wrist
    s = model.stream(fs)
    s.push(ppg[:100], acc[:100])
    with pytest.raises(SqtoolError, match=r"ppg has 1 sensor column\(s\), the stream's first chunk had 2$"):
        s.push(ppg[100:200, 0], acc[100:200])
    s.close()
    with pytest.raises(SqtoolError, match="the stream is closed"):
        s.push(ppg[:100], acc[:100])
    s.reset()                                                              # open again, from the start
    assert len(s.push(ppg[:1000], acc[:1000])) == 1


@pytest.mark.parametrize("kw, match", [
    (dict(gains="robust"), r"gains 'robust': a stream's gains are the device's, fixed.*'robust' needs the whole "
                           r"recording \(HrModel.predict\)"),
    (dict(gains=[1.0, 2.0]), r"gains \[1.0, 2.0\]: one positive number, or 5 \(counts per unit of each channel: 2 PPG "
                             r"sensor\(s\), then acc x, y, z\)"),
    (dict(gains=-3.0), r"gains -3.0: one positive number"),
    (dict(fs=None), r"HrModel.stream: fs must be the sampling rate in Hz \(a number\), got None"),
    (dict(fs=7.0), r"HrModel.stream: sampled at 7 Hz, below 2x the model band's top"),
    (dict(acc_fs=62.5), r"acc_fs 62.5 Hz differs from fs 125 Hz: .*only an export with the kit's accelerometer "
                        r"resampler"),
], ids=["robust", "gains_count", "gains_negative", "fs_none", "fs_low", "acc_fs"])
def test_a_bad_stream_is_one_line(model, wrist, kw, match):
    ppg, acc, fs = wrist
    args = {"fs": fs, **kw}
    with pytest.raises(SqtoolError, match=match) as e:
        model.stream(**args).push(ppg[:250], acc[:250])
    assert "\n" not in str(e.value)


def test_runtimes_that_do_not_stream_say_which_do(spec_export_dir):
    m = sqtool.load_model(spec_export_dir, runtime="torch")
    with pytest.raises(SqtoolError, match=r"runtime torch_student does not stream; streams run on the C pipeline "
                                          r"\(c_pipeline\) or an int8 network on the host \(c, tflite, onnx, tflm\)"):
        m.stream(125.0)
    m.close()


@pytest.mark.realdata
@needs_gcc
def test_a_troika_recording_streams_to_predicts_windows(spec_export_dir, data_root):
    """A real wrist recording (TROIKA DATA_01_TYPE01, 5 min, two PPG sensors, running) in 125-sample chunks and in
    random ones: predict's windows with the device's default gains, on both runtimes."""
    from sqtool.data.readers import iter_records
    rec = next(r for r in iter_records(data_root / "troika" / "Training_data") if r.record_id == "DATA_01_TYPE01")
    ppg = np.stack([rec.signals["ppg"], rec.signals["ppg2"]], 1)
    acc = np.stack([rec.signals[f"acc_{a}"] for a in "xyz"], 1)
    for runtime in ("", "c"):
        m = sqtool.load_model(spec_export_dir, runtime=runtime)
        ref = m.predict(ppg, acc, 125.0, gains=None)
        assert len(ref) == 148
        for sizes in ([125], CHUNKS["random"]):
            same(streamed(m.stream(125.0), ppg, acc, chunked(len(ppg), sizes)), ref)
        m.close()


def acc_share(n: int, sizes, ratio: float) -> list[tuple[int, int, int, int]]:
    """[(a, b, c, d)]: PPG chunks [a, b) and the accelerometer's share [c, d) at `ratio` its rate (whole samples)."""
    return [(a, b, int(a * ratio), int(b * ratio)) for a, b in chunked(n, sizes)]


@needs_gcc
@pytest.mark.parametrize("runtime", ["", "c"], ids=["c_pipeline", "c_host_single"])
def test_an_accelerometer_at_its_own_rate_streams_through_the_kits_resampler(acc_export, wrist, runtime):
    """An export with the kit's accelerometer resampler (62.5 Hz acc beside a 125 Hz PPG): chunks carrying their
    share of acc samples (1 PPG sample: 0 or 1 acc sample) give predict's windows, an acc dropout included."""
    ppg, acc, fs = wrist
    half = acc[::2].copy()                                                 # (N / 2, 3) at 62.5 Hz
    half[2000:2100, 1] = np.nan
    m = sqtool.load_model(acc_export, runtime=runtime)
    ref = m.predict(ppg, half, fs, acc_fs=62.5, gains=None)
    for sizes in ([1], [7], [125], CHUNKS["random"]):
        s = m.stream(fs, acc_fs=62.5)
        res = [s.push(ppg[a:b], half[c:d]) for a, b, c, d in acc_share(len(ppg), sizes, 0.5)]
        same({f: np.concatenate([getattr(r, f) for r in res]) for f in FIELDS}, ref)
    s = m.stream(fs, acc_fs=62.5)
    s.push(ppg[:100], half[:50])
    with pytest.raises(SqtoolError, match=r"acc must be \(m, 3\), x, y, z at 62.5 Hz, m about 50 beside the chunk's "
                                          r"100 ppg samples; got shape \(60, 3\) \(with this chunk the stream would "
                                          r"have 110 acc samples for 200 ppg samples: about 100"):
        s.push(ppg[100:200], half[50:110])
    with pytest.raises(SqtoolError, match=r"got shape \(3, 50\) \(channels-first\? pass acc.T\)$"):
        s.push(ppg[100:200], half[50:100].T)
    m.close()


@needs_gcc
def test_an_accelerometer_past_int16_at_its_own_rate_is_said(acc_export, wrist, capsys):
    """Acceleration in m/s^2 where the stream reads g (9.8 x the default gain is past int16 on the gravity axis),
    through the kit's resampler: one note line naming the axis (before: said nowhere)."""
    ppg, acc, fs = wrist
    m = sqtool.load_model(acc_export)
    s = m.stream(fs, acc_fs=62.5)
    s.push(ppg[:1000], acc[:1000:2] * 9.80665)
    err = [ln for ln in capsys.readouterr().err.splitlines() if "past int16" in ln]
    assert len(err) == 1 and "% of acc_z's samples are past int16" in err[0] and "acc_x" not in err[0], err
    m.close()


def test_hrstream_is_on_the_package():
    import sqtool
    import sqtool.api
    assert sqtool.HrStream is sqtool.api.HrStream and "HrStream" in sqtool.__all__


def test_threads_sharing_a_model_each_get_their_own_windows(model, wrist):
    """A server with one loaded model and a thread per device (or per request): each stream's and each predict's
    windows are those it gets alone (the runtimes' buffers are the library's: unlocked, threads read each other's
    windows, 4-19 BPM off on the real-data export)."""
    import threading
    ppg, acc, fs = wrist
    ref = model.predict(ppg, acc, fs=fs, gains=None)
    got: dict = {}

    def device(i: int) -> None:
        s = model.stream(fs)
        got[i] = streamed(s, ppg, acc, chunked(len(ppg), [50 + i]))
        got[-1 - i] = model.predict(ppg, acc, fs=fs, gains=None)

    threads = [threading.Thread(target=device, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(6):
        same(got[i], ref)
        same({f: getattr(got[-1 - i], f) for f in FIELDS}, ref)


def test_a_model_pickles_as_its_export_and_a_stream_says_it_does_not(model, wrist):
    """multiprocessing hands a model to its workers by pickle: it arrives loaded from its export folder (same runtime,
    same windows); a stream (device state in the runtime) is one line."""
    import pickle
    ppg, acc, fs = wrist
    m2 = pickle.loads(pickle.dumps(model))
    assert type(m2) is type(model) and m2.export_dir == model.export_dir and m2._cfg.runtime == model._cfg.runtime
    same({f: getattr(m2.predict(ppg, acc, fs=fs, gains=None), f) for f in FIELDS},
         model.predict(ppg, acc, fs=fs, gains=None))
    m2.close()
    with pytest.raises(SqtoolError, match=r"^HrStream: a live stream does not pickle") as e:
        pickle.dumps(model.stream(fs))
    assert "\n" not in str(e.value)


def test_an_empty_first_chunk_fixes_no_sensor_count(model, wrist):
    """A device callback that fires before any sample (np.array([]), an empty pandas chunk): no windows, and the
    stream still takes the two-sensor chunks that follow, to the bit (before: its (0,) ppg fixed the stream at one
    sensor, and the first real chunk was refused)."""
    ppg, acc, fs = wrist
    s = model.stream(fs)
    assert len(s.push(np.zeros(0), np.zeros((0, 3)))) == 0
    same(streamed(s, ppg, acc, chunked(len(ppg), [997])), model.predict(ppg, acc, fs=fs, gains=None))
