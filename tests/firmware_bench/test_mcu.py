"""Firmware build/run machinery on the tiny TEST-ONLY C model (fixtures/tiny_model): host gcc and
Cortex-M4/M33 under QEMU agree with a numpy re-implementation; the instruction-count plugin is
deterministic; faults and hangs become one-line errors; sizes come from the ELF."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.firmware_bench import mcu

from fwb_helpers import TINY_C, need_tools, rng_windows

W = np.array([1, -2, 3, -4, 5, -6, 7, -8])


def tiny_reference(q: np.ndarray) -> np.ndarray:
    """What fixtures/tiny_model/sq_model.c computes, in numpy."""
    x = q.reshape(len(q), 320, 4).astype(np.int64)
    acc = (x[:, :, 0] * W[np.arange(320) % 8]).sum(axis=1) >> 10
    return np.stack([np.clip(acc, -128, 127), x.max(axis=(1, 2))], axis=1).astype(np.int8)


@pytest.fixture(scope="module")
def builds(cross_tools, tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny")
    return {"host": mcu.build_host(TINY_C, work), "m4": mcu.build_firmware(TINY_C, "m4", work),
            "m33": mcu.build_firmware(TINY_C, "m33", work), "work": work}


@pytest.mark.parametrize("target", ["m4", "m33"])
def test_mcu_outputs_match_reference_and_counts_are_deterministic(builds, target):
    q = rng_windows(5, 1280, seed=1)
    a = mcu.run_firmware(builds[target], q)
    b = mcu.run_firmware(builds[target], q)
    np.testing.assert_array_equal(a.outputs, tiny_reference(q))
    assert a.insns_per_window.shape == (5,)
    np.testing.assert_array_equal(a.insns_per_window, b.insns_per_window)   # same ELF, same count
    # the fixture's loop runs 320 x (1 MAC + 4 compares): thousands of instructions, not millions
    assert 3_000 < a.insns_per_window.min() <= a.insns_per_window.max() < 50_000
    assert 0 < a.stack_high_water < 4096


def test_instruction_count_scales_with_work(builds):
    """Counting between the markers measures the model, not the harness: a window of zeros and one of
    random data differ only in the data-dependent max() branch, far less than 2x."""
    q = np.concatenate([np.zeros((1, 1280), np.int8), rng_windows(1, 1280)])
    r = mcu.run_firmware(builds["m4"], q)
    assert 0.5 < r.insns_per_window[0] / r.insns_per_window[1] < 2.0


def test_host_build_and_callgrind(builds):
    q = rng_windows(3, 1280, seed=2)
    r = mcu.run_host(builds["host"], q)
    np.testing.assert_array_equal(r.outputs, tiny_reference(q))
    if shutil.which("valgrind") is None:
        need_tools("valgrind")
    cg = mcu.run_host(builds["host"], q, valgrind=True)
    np.testing.assert_array_equal(cg.outputs, r.outputs)
    assert 1_000 < cg.insns_per_window[0] < 100_000


def test_sizes_from_the_elf(builds):
    r = mcu.run_firmware(builds["m4"], rng_windows(1, 1280), count=False)
    s = mcu.image_size(builds["m4"], r.stack_high_water)
    assert 1_000 < s["flash_bytes"] < 64 * 1024
    assert s["ram_bytes"] == s["ram_static_bytes"] + r.stack_high_water
    assert s["ram_static_bytes"] >= 1280                      # the harness's input window buffer
    m = mcu.model_bytes(builds["m4"])
    assert m["model_const_bytes"] >= 8 and m["arena_bytes"] == 64


@pytest.mark.parametrize("kind,match", [("FAULT", "HardFault"), ("HANG", "no result within")])
def test_fault_and_hang_are_reported_not_hung(cross_tools, tmp_path, kind, match):
    fw = mcu.build_firmware(TINY_C, "m4", tmp_path, defines=(f"SQ_FIXTURE_{kind}",))
    with pytest.raises(mcu.FirmwareError, match=match):
        mcu.run_firmware(fw, rng_windows(1, 1280), timeout=3.0, count=False)


def test_wrong_window_size_and_unknown_target(builds):
    with pytest.raises(SqtoolError, match="SQ_INPUT_SIZE"):
        mcu.run_firmware(builds["m4"], rng_windows(1, 100))
    with pytest.raises(SqtoolError, match="unknown MCU target"):
        mcu.build_firmware(TINY_C, "m99", builds["work"])


def test_missing_toolchain_names_the_debian_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(mcu.shutil, "which", lambda name: None)
    with pytest.raises(SqtoolError) as e:
        mcu.build_firmware(TINY_C, "m4", tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    for pkg in ("gcc-arm-none-eabi", "picolibc-arm-none-eabi", "qemu-system-arm"):
        assert pkg in msg


def test_model_dir_without_c_sources(tmp_path):
    with pytest.raises(SqtoolError, match="sq_model"):
        mcu.build_host(tmp_path, tmp_path / "w")
