"""The time-domain C front end (sq_window.{h,c} + tables, `export.c_window`) against the stream predict and bench run
(`firmware_bench.stream.replay`, filter "window", then `runtimes.quantize`): the same windows, the same dropout
shares, and the network's int8 input codes equal but where float32 and float64 round a value to either side of a
code boundary (never more than one code apart), on synthetic streams (device rates that down- and up-sample and
the model's own, dropouts, one and four channels, the respiratory band, z-score, no band) and on real recordings
(arrhythmia segments, BIDMC, TROIKA with its accelerometer); rates and shapes the stream refuses are one line;
the Cortex-M4 build needs no double-precision helpers."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.record import Record
from sqtool.export.c_decoder import C_FLAGS
from sqtool.export.c_window import render_window, window_design
from sqtool.firmware_bench.window_fw import build_window_fw, run_window_fw
from sqtool.firmware_bench.runtimes import quantize
from sqtool.firmware_bench.stream import StreamSpec, replay

MINMAX_SCALE = 0.007827997207641602           # an exported af student's input scale (minmax windows in [0, 1])
# Codes equal at least this often (measured 2026-12-02: 100 % at 0.5-8 Hz but 0.01 % of the 4-channel 8 s / 2 s ones,
# 99.87 % with the respiratory band, whose 0.05 Hz poles sit close to 1 and amplify float32's rounding; one LSB apart
# at most, 1/128 of a min-max window, where the streamed and training windows differ by up to 4)
EQUAL = 0.995
EQUAL_LOW_CUT = 0.99    # the respiratory band's causal filter: 99.23 % (its start from rest carries the ADC level)


def _md(window_s=10.0, hop_s=10.0, channels=("ppg",), band=(0.5, 8.0), norm="minmax", scale=MINMAX_SCALE) -> dict:
    return {"fs": 40.0, "window_s": window_s, "hop_s": hop_s, "channels": list(channels),
            "band": None if band is None else list(band), "norm": norm,
            "quantization": {"input_scale": scale, "input_zero_point": 0}}


def build(md: dict, fs_in: float, work: Path, filter: str = "window"):
    """The front end alone on the host: bench's window harness built without a network (`window_fw`)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc missing")
    src = work / "c"
    render_window(md, fs_in, src, filter=filter)
    return build_window_fw(src, "host", work, front_end_only=True)


def run_c(fw, x: np.ndarray, work: Path, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (C, N) device samples -> (index (W,), flagged (W,), codes (W, T * C)) from the harness."""
    r = run_window_fw(fw, [x])
    assert r.codes.shape[1] == T * x.shape[0]
    return r.index, r.flagged, r.codes


def check(md: dict, rec: Record, work: Path, chunk: int = 25, filter: str = "window") -> dict:
    """The C front end and the stream on `rec` (both with `filter`): equal windows and shares, codes at most one
    apart; the stats."""
    fs_in = next(iter(rec.fs.values()))
    fw = build(md, fs_in, work, filter)
    spec = StreamSpec.from_model_cfg(md, filter=filter)
    rp = replay(rec, spec, chunk=chunk)
    ref = quantize(rp.x, md["quantization"]["input_scale"], md["quantization"]["input_zero_point"])
    x = np.stack([rec.signals[ch] for ch in md["channels"]])
    index, flagged, codes = run_c(fw, x, work, spec.n_samples)
    assert index.tolist() == list(range(len(rp)))
    np.testing.assert_allclose(flagged, rp.flagged, atol=1e-6)
    d = np.abs(codes.astype(int) - ref.astype(int))
    assert d.max() <= 1, f"codes {d.max()} apart"
    return {"equal": float((d == 0).mean()), "windows": len(rp), "exact_windows": float((d.max(1) == 0).mean())}


def _ppg(fs: float, seconds: float, seed: int = 0, level: float = 2000.0, n_ch: int = 1) -> np.ndarray:
    """(n_ch, N) a pulse at 78 /min with a breathing wander on a large ADC level, noise, channel by channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(fs * seconds))) / fs
    x = [level + 300 * np.sin(2 * np.pi * 1.3 * t + k) + 80 * np.sin(2 * np.pi * 0.22 * t)
         + 10 * rng.standard_normal(len(t)) for k in range(n_ch)]
    return np.stack(x)


CASES = {   # name: (metadata, device rate, seconds)
    "af_100hz": (_md(), 100.0, 95.3),
    "af_125hz": (_md(), 125.0, 61.0),
    "af_model_rate": (_md(), 40.0, 43.0),
    "af_upsampled_25hz": (_md(), 25.0, 52.0),
    "hr_4ch_8s_2s": (_md(8.0, 2.0, ("ppg", "acc_x", "acc_y", "acc_z")), 125.0, 40.0),
    "rr_band_30s_10s": (_md(30.0, 10.0, band=(0.05, 8.0)), 125.0, 150.0),
    "zscore": (_md(norm="zscore", scale=0.03), 64.0, 44.0),
    "no_band": (_md(band=None), 100.0, 33.0),
}


@pytest.mark.parametrize("filter", ["window", "causal"])
@pytest.mark.parametrize("name", list(CASES))
def test_the_c_front_end_makes_the_streams_windows(name, filter, tmp_path):
    """Both band-pass modes of the stream: zero phase over the window and its context (the default), and the running
    causal filter from rest (--device-filter causal, `predict --filter causal`)."""
    md, fs_in, seconds = CASES[name]
    x = _ppg(fs_in, seconds, seed=len(name), n_ch=len(md["channels"]))
    x[:, int(fs_in * 3.1): int(fs_in * 3.4)] = np.nan           # a dropout, held and counted
    x[0, int(fs_in * 12.0)] = np.inf
    rec = Record("syn", "s1", "s1_a", dict(zip(md["channels"], x)), {ch: fs_in for ch in md["channels"]})
    got = check(md, rec, tmp_path, filter=filter)
    assert got["equal"] >= (EQUAL_LOW_CUT if md["band"] and md["band"][0] < 0.5 else EQUAL) and got["windows"] >= 3


def test_the_causal_front_end_needs_no_context():
    """The running filter keeps no history and waits for no look-ahead: rr's state fits a 32 KB device (the
    zero-phase one, 60 s / 30 s around each 30 s window, does not), and a window is ready the resampler's delay
    after its last sample."""
    md = CASES["rr_band_30s_10s"][0]
    zero, causal = window_design(md, 125.0), window_design(md, 125.0, "causal")
    assert zero["ram_bytes"] > 32 * 1024 > causal["ram_bytes"]
    assert causal["latency_s"] < 0.5 < 30.0 <= zero["latency_s"]
    with pytest.raises(SqtoolError, match=r"^--device-filter none: choose one of window, causal$"):
        window_design(md, 125.0, "none")


@pytest.mark.parametrize("chunk", [1, 7, 250])
def test_the_stream_chunking_does_not_change_what_the_c_matches(chunk, tmp_path):
    """The C takes one sample at a time; the stream, chunks of any size: the same windows either way."""
    md, fs_in, seconds = CASES["af_125hz"]
    rec = Record("syn", "s1", "s1_a", {"ppg": _ppg(fs_in, seconds)[0]}, {"ppg": fs_in})
    assert check(md, rec, tmp_path, chunk=chunk)["equal"] >= EQUAL


def test_real_recordings(data_root, tmp_path):
    """Arrhythmia segments (10 s at 100 Hz, the af model's), a BIDMC recording (rr's 30 s / 10 s at 125 Hz, 0.05 Hz
    band) and a TROIKA recording (PPG + accelerometer, 8 s / 2 s at 125 Hz)."""
    from sqtool.data.readers import read_dataset
    arr = read_dataset(data_root / "ppg_arrhythmia", max_items=1)[:20]
    stats = [check(_md(), r, tmp_path / f"a{i}") for i, r in enumerate(arr)]
    assert np.mean([s["equal"] for s in stats]) >= EQUAL
    bidmc = read_dataset(data_root / "bidmc", max_items=1)[0]
    assert check(_md(30.0, 10.0, band=(0.05, 8.0)), bidmc, tmp_path / "b")["equal"] >= EQUAL
    troika = read_dataset(data_root / "troika", max_items=1)[0]
    md = _md(8.0, 2.0, ("ppg", "acc_x", "acc_y", "acc_z"))
    assert check(md, troika, tmp_path / "t")["equal"] >= EQUAL


def test_rates_and_shapes_the_stream_refuses_are_one_line():
    with pytest.raises(SqtoolError, match=r"^--device-fs 12: its Nyquist frequency 6 Hz is below the model's band"):
        window_design(_md(), 12.0)
    with pytest.raises(SqtoolError, match=r"^C front end: the window at 33.35 Hz is 333.5 samples, not a whole number"):
        window_design(_md(), 33.35)
    with pytest.raises(SqtoolError, match=r"^C front end: metadata.json has no int8 input quantization"):
        window_design({**_md(), "quantization": {}}, 100.0)
    with pytest.raises(SqtoolError, match=r"^--device-fs -5: a device rate must be a positive number of Hz$"):
        window_design(_md(), -5.0)


def test_a_device_rate_the_stream_refuses_is_one_line_before_any_folder(tmp_path):
    """export --target c --device-fs 12 of an af student (0.5-8 Hz band): refused in one line, nothing written; the
    same rate for a non-C target is a note, the export written."""
    from export_fixtures import make_int8_run

    from sqtool.data.tasks import task_model_cfg
    from sqtool.export.cli import ExportConfig, export
    from sqtool.models import get_model_cfg
    run = make_int8_run(tmp_path / "q", task_model_cfg("af", get_model_cfg("cnn1d_student_xs"), channels=("ppg",)),
                        n_heldout=4, seed=1)
    with pytest.raises(SqtoolError, match=r"^--device-fs 12: its Nyquist frequency 6 Hz is below the model's band "):
        export(ExportConfig(model=str(run), target=["c"], device_fs=12.0, out=str(tmp_path / "e")))
    assert not (tmp_path / "e").exists()
    with pytest.raises(SqtoolError, match=r"^--device-filter none: choose one of window, causal$"):
        export(ExportConfig(model=str(run), target=["c"], device_fs=40.0, device_filter="none",
                            out=str(tmp_path / "e")))
    assert not (tmp_path / "e").exists()
    res = export(ExportConfig(model=str(run), target=["onnx"], device_fs=40.0, out=str(tmp_path / "o")))
    assert "--device-fs 40 builds the C front end (c/sq_window.c) of the C target" in res["summary"]
    assert not (tmp_path / "o" / "c").exists()


def test_the_cortex_m4_build_uses_the_fpu_only(tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc missing")
    for name in ("af_100hz", "hr_4ch_8s_2s", "zscore", "no_band"):
        md, fs_in, _ = CASES[name]
        src = tmp_path / name
        render_window(md, fs_in, src)
        r = subprocess.run(["arm-none-eabi-gcc", *C_FLAGS, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                            "-mfpu=fpv4-sp-d16", "-c", str(src / "sq_window.c"), "-o", str(src / "m4.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        if shutil.which("arm-none-eabi-nm"):
            syms = subprocess.run(["arm-none-eabi-nm", str(src / "m4.o")], capture_output=True, text=True).stdout
            assert "__aeabi_d" not in syms and "malloc" not in syms          # float32 on the FPU, no heap


SAN = ["-O1", "-g", "-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
       "-fno-omit-frame-pointer"]
TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("name", ["af_100hz", "hr_4ch_8s_2s"])
@pytest.mark.parametrize("filter", ["window", "causal"])
def test_bad_input_and_extreme_samples_under_the_sanitizers(name, filter, tmp_path):
    """wf_api_test.c: NULL pointers, states never initialised, a push after finish, an empty stream; +-1e30,
    +-FLT_MAX, Inf, NaN and denormal samples make the same defined windows in two states (ASan + UBSan, float-cast
    overflow included); a re-init restarts the index."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc missing")
    md, fs_in, _ = CASES[name]
    src = tmp_path / "c"
    render_window(md, fs_in, src, filter=filter)
    exe = sanitized_build(src, "wf_api_test.c", tmp_path / "api")
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.stdout + r.stderr)[-3000:]


def sanitized_build(src, harness: str, exe):
    """The rendered front end in src with the test harness tests/export/<harness>, built with ASan + UBSan."""
    r = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", *SAN, "-I", str(src), str(src / "sq_window.c"),
                        str(TESTS / harness), "-lm", "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


@pytest.mark.parametrize("counter", ["n_in", "n_model"])
@pytest.mark.parametrize("filter", ["window", "causal"])
@pytest.mark.parametrize("name", ["af_100hz", "af_upsampled_25hz"])
def test_the_front_end_streams_on_across_the_2_32_wrap_of_its_sample_counters(name, filter, counter, tmp_path):
    """wf_wrap_test.c: a state whose device-sample (or model-sample) counter wraps past 2^32 inside the stream, as on
    a device streaming for months (2^32 samples: 194 days at 256 Hz, 497 at 100 Hz), makes the windows a fresh state
    makes, index for index, the end of the recording's too (ASan + UBSan). Until the wrap was handled, the windows
    stopped at it: the counters were compared as they were (a wrapped n_in is below every window's last sample) and
    the rings were addressed by counter mod size (not continuous across 2^32)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc missing")
    md, fs_in, _ = CASES[name]
    d = window_design(md, fs_in, filter)
    src = tmp_path / "c"
    render_window(md, fs_in, src, filter=filter)
    exe = sanitized_build(src, "wf_wrap_test.c", tmp_path / "wrap")
    n = 30 * d["hop_dev"]                                        # 30 windows of the device's samples
    unit, step = (d["hop_dev"], n // 3) if counter == "n_in" else (d["hop"], n // 3 * d["up"] // d["down"])
    shift = (2**32 - step) // unit                               # the counter wraps a third of the way in
    skip = d["ctx_pre"] // d["hop"] + 1                          # windows that see the stream's start differ
    r = subprocess.run([str(exe), str(shift), str(n), str(skip)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.stdout + r.stderr)[-3000:]
    assert int(r.stdout.split()[1]) >= 30 - skip - 2
