"""The kit's accelerometer resampler (`sqtool export --device-acc-fs`): the C (templates + generated taps) equals the
integer reference `sqtool.data.acc_resampler` bit for bit, for every chunking and several rate pairs (up, down,
awkward ratios, another prefix); a sine keeps its frequency and a constant its level; bad rates and a state never
initialised are refused (ar_harness.c checks the C's error codes)."""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.acc_resampler import AccResampler, design_acc, resample_acc
from sqtool.export.c_acc import render_acc_resampler
from tests.export.export_fixtures import make_spec_int8_run

HERE = Path(__file__).resolve().parent
FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"]
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")


def _run_c(fs_acc, fs_in, x, chunks, tmp: Path, prefix="sq") -> np.ndarray:
    paths = render_acc_resampler(fs_acc, fs_in, tmp / "c", prefix=prefix)
    harness = (HERE / "ar_harness.c").read_text()
    if prefix != "sq":
        harness = harness.replace("sq_", prefix + "_").replace("SQ_", prefix.upper() + "_")
    (tmp / "h.c").write_text(harness)
    src = [str(p) for p in paths if p.suffix == ".c"]
    exe = tmp / "h"
    subprocess.run(["gcc", *FLAGS, f"-I{tmp / 'c'}", *src, str(tmp / "h.c"), "-o", str(exe)], check=True,
                   capture_output=True, text=True)
    payload = struct.pack("<ii", len(x), len(chunks)) + np.asarray(chunks, "<i4").tobytes() + \
        np.ascontiguousarray(x, "<i2").tobytes()
    r = subprocess.run([str(exe)], input=payload, capture_output=True, timeout=60)
    assert r.returncode == 0, r.returncode
    return np.frombuffer(r.stdout, "<i2").reshape(-1, 3)


@needs_gcc
@pytest.mark.parametrize("fs_acc, fs_in, prefix", [(25.0, 125.0, "sq"), (50.0, 125.0, "hr2"), (26.0, 64.0, "sq"),
                                                   (100.0, 25.0, "sq"), (25.0, 256.0, "sq")])
def test_c_equals_the_reference_for_every_chunking(fs_acc, fs_in, prefix, tmp_path):
    rng = np.random.default_rng(int(fs_acc + fs_in))
    x = rng.integers(-32768, 32768, (700, 3)).astype(np.int16)            # full scale: saturation exercised
    x[100:140] = 32767
    want = resample_acc(x, fs_acc, fs_in)
    for i, chunks in enumerate(([1], [7, 0, 13, 250], [700])):
        got = _run_c(fs_acc, fs_in, x, chunks, tmp_path / f"c{i}", prefix)
        assert np.array_equal(got, want), (chunks, np.abs(got.astype(int) - want).max())
    rs = AccResampler(design_acc(fs_acc, fs_in))
    parts = [rs.push(x[a:b]) for a, b in ((0, 3), (3, 3), (3, 400), (400, 700))]
    assert np.array_equal(np.concatenate(parts), want)                     # the reference streams the same


def test_frequency_level_and_count():
    t = np.arange(500) / 25.0
    x = np.stack([np.round(8000 * np.sin(2 * np.pi * 2.0 * t)), np.full(500, 4096), np.full(500, -300)], 1)
    y = resample_acc(x.astype(np.int16), 25.0, 125.0)
    assert y.shape == (2500, 3) and (y[50:, 1] == 4096).all() and (y[50:, 2] == -300).all()   # DC exact
    spec = np.abs(np.fft.rfft(y[500:2500, 0]))
    assert abs(np.argmax(spec) / 2000 * 125.0 - 2.0) < 0.07
    rs = AccResampler(design_acc(26.0, 64.0))
    assert rs.count(13) == 32 and len(rs.push(np.zeros((13, 3), np.int16))) == 32


@pytest.mark.parametrize("fs_acc, fs_in, says", [(25.0, 0.0, "device rate 0.0 Hz must be a positive"),
                                                 (25.0001, 125.0, "whole number of milli-Hz"),
                                                 (25.001, 125.0, "more than 256 phases")])
def test_bad_rates_are_one_line(fs_acc, fs_in, says):
    with pytest.raises(SqtoolError, match=says):
        design_acc(fs_acc, fs_in)


@pytest.fixture(scope="module")
def spec_run(tmp_path_factory):
    return make_spec_int8_run(tmp_path_factory.mktemp("ar") / "run", "spec_student_xs", n_heldout=8)


@needs_gcc
def test_export_with_device_acc_fs_ships_the_resampler_in_the_kit(spec_run, tmp_path):
    """`sqtool export --target c --device-acc-fs 25`: c/<prefix>_acc_resampler.{h,c} and its tables beside the
    pipeline (the kit's Makefile compiles c/*.c: its check still passes), metadata.json `acc_resampler`, and the kit
    README tells the firmware engineer to push the accelerometer through it."""
    from sqtool.cli import main
    out = tmp_path / "e"
    assert main(["export", "--model", str(spec_run), "--target", "c", "--device-acc-fs", "25", "--prefix", "hr2",
                 "--out", str(out)]) == 0
    for f in ("hr2_acc_resampler.h", "hr2_acc_resampler.c", "hr2_acc_resampler_tables.h"):
        assert (out / "c" / f).is_file(), f
    md = json.loads((out / "metadata.json").read_text())
    assert md["acc_resampler"]["fs_acc_in"] == 25.0 and md["acc_resampler"]["up"] == 5
    readme = (out / "README.md").read_text()
    assert "pass your 25 Hz samples through `hr2_acc_rs_push` first" in readme
    assert "## Accelerometer at its own rate (`c/hr2_acc_resampler.h`)" in readme
    assert "every input sample gives exactly 5 outputs" in readme and "156 ms" in readme
    assert not re.search(r"@[A-Z_]+@", readme)
    assert "| `c/hr2_acc_resampler.{h,c}`, `c/hr2_acc_resampler_tables.h` |" in readme
    r = subprocess.run(["make", "-s", "-C", str(out), f"BUILD={tmp_path / 'b'}", "check"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "bit-exact" in r.stdout, r.stdout + r.stderr
    for c in (1, 5, 7, 64):                                 # the kit checks its resampler against the reference
        assert f"acc resampler chunks {c}: bit-exact (1250 outputs)" in r.stdout, r.stdout
    if shutil.which("cmake") and shutil.which("ctest"):     # and so does its CMake build's ctest
        b = tmp_path / "cm"
        for cmd in (["cmake", "-S", str(out), "-B", str(b)], ["cmake", "--build", str(b), "--target", "acc_check"],
                    ["ctest", "--test-dir", str(b), "-R", "acc_resampler", "--output-on-failure"]):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stdout + r.stderr
        assert "100% tests passed, 0 tests failed out of 1" in r.stdout, r.stdout
    bad = out / "test_vectors" / "acc_expected.bin"
    b = bytearray(bad.read_bytes())
    b[300] ^= 1
    bad.write_bytes(bytes(b))
    r = subprocess.run(["make", "-s", "-C", str(out), f"BUILD={tmp_path / 'b'}", "check"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0 and "acc resampler chunks 1: MISMATCH at output 50" in r.stdout, r.stdout
    bad.unlink()                                            # a missing vector file is an error, not "0 outputs"
    (out / "test_vectors" / "acc_in.bin").unlink()
    r = subprocess.run(["make", "-s", "-C", str(out), f"BUILD={tmp_path / 'b'}", "check"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0 and "acc_check: cannot read the test vectors" in r.stderr, r.stdout + r.stderr
    assert main(["export", "--model", str(spec_run), "--target", "c", "--prefix", "hr2", "--force",
                 "--out", str(out)]) == 0                  # re-exported without the resampler: none of it left
    assert not list((out / "c").glob("hr2_acc_resampler*")) and not (out / "example" / "acc_check.c").exists()


def test_a_faster_accelerometer_is_low_passed_and_said_to_be_unmeasured(spec_run, tmp_path):
    from sqtool.cli import main
    out = tmp_path / "e"
    assert main(["export", "--model", str(spec_run), "--target", "c", "--device-acc-fs", "250", "--out", str(out)]) == 0
    readme = (out / "README.md").read_text()
    assert "every 2 input samples give 1 output;" in readme
    assert "Down-sampling: it low-passes at 56.25 Hz first; not measured on recordings." in readme
    assert "Measured by sqtool's benchmarks/acc_rate.py" not in readme


@pytest.mark.parametrize("extra, says", [
    (["--target", "onnx", "--device-acc-fs", "25"], "for the C target of a spectral model"),
    (["--target", "c", "--device-acc-fs", "25.001"], "more than 256 phases"),
    (["--target", "c", "--device-acc-fs", "0.5"], "under the top of the model's heart-rate grid"),
    (["--target", "c", "--device-acc-fs", "7.5"], "sample it faster than 7.65 Hz"),   # grid top 229.5 BPM
])
def test_device_acc_fs_that_cannot_be_honoured_is_one_line(spec_run, tmp_path, capsys, extra, says):
    from sqtool.cli import main
    capsys.readouterr()
    assert main(["export", "--model", str(spec_run), *extra, "--out", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert not (tmp_path / "e").exists()


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m0plus"])
def test_it_builds_for_the_microcontrollers_without_warnings(cpu, tmp_path):
    paths = render_acc_resampler(25.0, 125.0, tmp_path / "c")
    src = [p for p in paths if p.suffix == ".c"][0]
    r = subprocess.run(["arm-none-eabi-gcc", *FLAGS, f"-mcpu={cpu}", "-mthumb", "-c", str(src), "-o",
                        str(tmp_path / "ar.o")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@needs_gcc
def test_the_tables_macro_given_on_the_command_line_still_builds_with_werror(tmp_path):
    """A firmware engineer's -DSQ_AR_DEFINE_TABLES (the header's switch) was redefined by the .c: -Werror failed."""
    paths = render_acc_resampler(25.0, 125.0, tmp_path / "c")
    src = [p for p in paths if p.suffix == ".c"]
    r = subprocess.run(["gcc", *FLAGS, "-DSQ_AR_DEFINE_TABLES", "-c", f"-I{tmp_path / 'c'}", str(src[0]),
                        "-o", str(tmp_path / "ar.o")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[:2000]
