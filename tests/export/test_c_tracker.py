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
    _fields_ = [("state", ctypes.c_double), ("has_state", ctypes.c_int32), ("pushes", ctypes.c_int32)]


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


def test_only_a_heart_rate_model_gets_one():
    assert has_tracker(MD) and not has_tracker({**MD, "outputs": ["p_af"]})
    assert not has_tracker({**MD, "output_quantization": None})            # a float export
    with pytest.raises(SqtoolError, match="needs an int8 hr_bpm output"):
        cfg_header({**MD, "outputs": ["rr_bpm"], "output_quantization": [{"name": "rr_bpm", "scale": 1.0,
                                                                          "zero_point": 0.0}]})
