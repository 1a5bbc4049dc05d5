"""The C heart-rate tracker an export ships for a time-domain heart-rate model (`export.c_tracker`, sq_tracker.c)
is sqtool's tracker (`data.hr_tracker`, what bench scores and predict writes) to the bit: on random
sequences with NaN, out-of-range and gated estimates and jumps that trigger its re-acquisition, and on the int8
outputs themselves (hr_bpm and the quality logit through metadata's output_quantization, the dropout share)."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.core.tracking import MAX_FLAGGED
from sqtool.export.c_tracker import cfg_header, has_tracker, render_tracker
from sqtool.data.hr_tracker import track, tracker_ok

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")

MD = {"model": "cnn1d_student_xs", "outputs": ["hr_bpm", "quality_logit"],
      "output_quantization": [{"name": "hr_bpm", "scale": 0.7813427448272705, "zero_point": -170.3817993},
                              {"name": "quality_logit", "scale": 0.0390625, "zero_point": 3.0}]}


class _Tracker(ctypes.Structure):
    _fields_ = [("state", ctypes.c_double), ("has_state", ctypes.c_int32), ("pushes", ctypes.c_int32),
                ("has_hr", ctypes.c_int32)]


def _lib(tmp_path, md):
    render_tracker(md, tmp_path)
    so = tmp_path / "libtrk.so"
    subprocess.run(["cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC", "-shared",
                    "-I", str(tmp_path), str(tmp_path / "sq_tracker.c"), "-lm", "-o", str(so)], check=True)
    lib = ctypes.CDLL(str(so))
    lib.sq_tracker_update.restype = ctypes.c_double
    lib.sq_tracker_update.argtypes = [ctypes.POINTER(_Tracker), ctypes.c_double, ctypes.c_int]
    lib.sq_tracker_push.restype = ctypes.c_double
    lib.sq_tracker_push.argtypes = [ctypes.POINTER(_Tracker), ctypes.POINTER(ctypes.c_int8), ctypes.c_float]
    return lib


def _c_track(lib, est, ok):
    t = _Tracker()
    lib.sq_tracker_init(ctypes.byref(t))
    return np.array([lib.sq_tracker_update(ctypes.byref(t), float(e), int(o)) for e, o in zip(est, ok)])


@pytest.mark.parametrize("seed", range(4))
def test_the_c_tracker_is_the_python_tracker_bit_for_bit(tmp_path, seed):
    lib = _lib(tmp_path, MD)
    rng = np.random.default_rng(seed)
    n = 3000
    est = 90 + np.cumsum(rng.normal(0, 3, n))                    # a drifting heart rate
    jump = rng.random(n) < 0.15
    est[jump] += rng.choice([-40.0, -12.0, 12.0, 40.0], jump.sum())   # motion: limited steps, re-acquisitions
    est[rng.random(n) < 0.05] = np.nan
    est[rng.random(n) < 0.02] = rng.choice([10.0, 300.0])        # outside 30-240 BPM
    ok = rng.random(n) > 0.2
    ok[:5] = False                                               # no state yet: the raw estimate passes through
    want, got = track(est, ok), _c_track(lib, est, ok)
    assert np.array_equal(np.isnan(want), np.isnan(got))
    assert np.array_equal(want[~np.isnan(want)], got[~np.isnan(got)])         # every bit


def test_it_reads_the_int8_outputs_and_the_dropout_share_as_bench_does(tmp_path):
    from sqtool.export.metadata import codes_to_units
    lib = _lib(tmp_path, MD)
    rng = np.random.default_rng(7)
    n = 2000
    hr_code = np.clip(np.round(-170.38 + (80 + np.cumsum(rng.normal(0, 2, n))) / 0.78134) +
                      rng.choice([0, 0, 0, 25, -25], n), -128, 127)
    codes = np.stack([hr_code, rng.integers(-128, 128, n)], axis=1).astype(np.int8)   # (N, 2)
    flagged = rng.choice([0.0, 0.05, MAX_FLAGGED, 0.3], n).astype(np.float32)
    y = codes_to_units(codes, MD)
    want = track(y[:, 0], tracker_ok(y, flagged.astype(np.float64), MD["outputs"], quality_gate=True))
    t = _Tracker()
    lib.sq_tracker_init(ctypes.byref(t))
    got = np.array([lib.sq_tracker_push(ctypes.byref(t), c.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)), float(f))
                    for c, f in zip(np.ascontiguousarray(codes), flagged)])
    assert np.array_equal(np.isnan(want), np.isnan(got)) and np.array_equal(want[~np.isnan(want)],
                                                                            got[~np.isnan(got)])
    no_q = {**MD, "outputs": ["hr_bpm"], "output_quantization": MD["output_quantization"][:1]}
    assert "#define SQ_TRK_QUALITY_INDEX -1" in cfg_header(no_q)          # no quality head: not gated on one


@pytest.mark.parametrize("flags", [["-O2"], ["-O2", "-ffast-math"], ["-Ofast"]])
def test_a_firmware_built_with_fast_math_knows_when_there_is_no_heart_rate(tmp_path, flags):
    """A firmware built with -ffast-math (-ffinite-math-only) lets the compiler take every double as finite: a
    caller's isnan(hr), the header's "NaN until the first window it accepts", was compiled away, and so would be the
    tracker's own isfinite(est). Now the tracker reads finiteness from the double's bits and says in has_hr whether
    it returned a heart rate: first windows rejected (the raw estimate passes, a NaN or out-of-range one is none),
    the first accepted one, limited steps, re-acquisition after RESET_AFTER of them, NaN and Inf held, as sqtool's
    tracker, every bit."""
    from pathlib import Path
    from sqtool.core.tracking import TrackerCfg
    render_tracker(MD, tmp_path)
    exe = tmp_path / "trk"
    subprocess.run(["cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", *flags, "-I", str(tmp_path),
                    str(Path(__file__).with_name("trk_harness.c")), str(tmp_path / "sq_tracker.c"), "-lm", "-o",
                    str(exe)], check=True)
    cfg = TrackerCfg()
    jump = [150.0] * (cfg.reset_after + 1)                                 # limited steps, then re-acquired
    est = np.array([np.nan, 10.0, 80.0, np.nan, 300.0, 82.0, 84.0, np.nan, np.inf, *jump, 149.0, np.nan, 60.0])
    ok = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, *[1] * len(jump), 1, 0, 1], bool)
    rng = np.random.default_rng(5)
    more = 90 + np.cumsum(rng.normal(0, 3, 1000))
    more[rng.random(1000) < 0.1] = np.nan
    more[rng.random(1000) < 0.05] = rng.choice([-np.inf, 10.0, 300.0, np.inf])
    est, ok = np.concatenate([est, more]), np.concatenate([ok, rng.random(1000) > 0.2])
    text = "".join(f"{float(e)!r} {int(o)}\n" for e, o in zip(est, ok))
    got = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout.split()
    want = ["none" if np.isnan(v) else f"{np.float64(v).view(np.uint64):016x}" for v in track(est, ok)]
    assert got[:5] == want[:5] == ["none", "none", f"{np.float64(80.0).view(np.uint64):016x}", "none", "none"]
    assert got == want
    assert want[5 + 4 + cfg.reset_after - 1] == f"{np.float64(150.0).view(np.uint64):016x}"   # re-acquired


def test_only_a_heart_rate_model_gets_one():
    assert has_tracker(MD) and not has_tracker({**MD, "outputs": ["p_af"]})
    assert not has_tracker({**MD, "output_quantization": None})            # a float export
    with pytest.raises(SqtoolError, match="needs an int8 hr_bpm output"):
        cfg_header({**MD, "outputs": ["rr_bpm"], "output_quantization": [{"name": "rr_bpm", "scale": 1.0,
                                                                          "zero_point": 0.0}]})
