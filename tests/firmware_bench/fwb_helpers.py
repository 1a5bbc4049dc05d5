"""Helpers shared by the firmware_bench tests (imported as a module; fixtures live in conftest.py)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_C = FIXTURES / "tiny_model"
CROSS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm", "gcc")


def need_tools(*tools: str) -> None:
    """Skip when a tool is missing on a developer machine; under CI (CI=true) that is a failure."""
    missing = [t for t in tools if shutil.which(t) is None]
    if "arm-none-eabi-gcc" in tools and not missing:
        from sqtool.firmware_bench.mcu import picolibc_specs
        if picolibc_specs() is None:
            missing.append("picolibc")
    if missing:
        msg = (f"missing {', '.join(missing)} (Debian: gcc-arm-none-eabi picolibc-arm-none-eabi "
               "qemu-system-arm valgrind)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg + " -- required under CI")
        pytest.skip(msg)


def rng_windows(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, size)).astype(np.int8)
