"""The exported C kit on other cores and under a firmware house's build rules (the Cortex-M0+ / RISC-V audit).

The kit's sources build with the strict warning set many firmware projects use (-Werror with -Wshadow,
-Wfloat-equal, -Wconversion, -Wsign-conversion, ...) on the host, for the Cortex-M4 (DSP path) and the M0+
(portable path), and for rv32 where that toolchain is installed. Cross compilers are optional: a test that
needs one skips without it.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

STRICT = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wfloat-equal", "-Wconversion",
          "-Wsign-conversion", "-Wcast-align=strict", "-Wdouble-promotion", "-Wundef"]
M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
M0P = ["-mcpu=cortex-m0plus", "-mthumb"]
RV32 = ["-march=rv32imc", "-mabi=ilp32"]


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    """A whole kit (write_kit) of a calibrated, untrained spec_student_xs twin, prefix sq, 125 Hz."""
    from export_fixtures import make_float_specnet, make_int8_specnet, synthetic_spectra
    from sqtool.export.intgraph import extract_int_graph
    from sqtool.export.kit import write_kit
    from sqtool.export.metadata import build_metadata
    f = make_float_specnet("spec_student_xs", 0)
    calib, _ = synthetic_spectra(f.cfg, 16, 0)
    q = make_int8_specnet(f, calib)
    g = extract_int_graph(q)
    mc = q.cfg.to_dict()
    out = tmp_path_factory.mktemp("kit") / "kit"
    write_kit(out, mc, g, build_metadata({"model_cfg": mc, "kind": "student_int8"}, "0" * 64, g))
    return out


def _sources(kit: Path) -> list[Path]:
    return sorted((kit / "c").glob("*.c")) + sorted((kit / "example").glob("*.c"))


def _compile_each(cc: list[str], kit: Path, flags: list[str], tmp: Path) -> list[str]:
    """Compile every kit source separately (-c) with `flags`; the first error line of each that fails."""
    errors = []
    for src in _sources(kit):
        r = subprocess.run([*cc, *flags, f"-I{kit / 'c'}", f"-I{kit / 'test_vectors'}", "-c", str(src),
                            "-o", str(tmp / "x.o")], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            errors.append(next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr[:300]))
    return errors


def _picolibc(cc: str, flags: list[str], tmp: Path) -> bool:
    """Whether `cc` with picolibc's specs compiles a file that includes <string.h>."""
    (tmp / "p.c").write_text("#include <string.h>\nint f(void) { return (int)strlen(\"x\"); }\n")
    r = subprocess.run([cc, *flags, "--specs=picolibc.specs", "-c", str(tmp / "p.c"), "-o", str(tmp / "p.o")],
                       capture_output=True, text=True, timeout=60)
    return r.returncode == 0


# ----------------------------------------------------------------------------- strict warnings

@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
@pytest.mark.parametrize("extra", [["-O2"], ["-Os", "-DSQ_WEIGHTS_INT8=1"]])
def test_kit_builds_with_the_strict_warning_set_on_the_host(kit, extra, tmp_path):
    assert _compile_each(["gcc"], kit, [*STRICT, *extra], tmp_path) == []


@pytest.mark.parametrize("cpu", ["m4", "m0plus"])
def test_kit_builds_with_the_strict_warning_set_for_cortex_m(kit, cpu, tmp_path):
    """The M4 runs the DSP path (ACLE intrinsics: __ssat, __smlad), the M0+ the portable one."""
    if shutil.which("arm-none-eabi-gcc") is None or not _picolibc("arm-none-eabi-gcc", M0P, tmp_path):
        pytest.skip("arm-none-eabi-gcc with picolibc missing")
    flags = [*(M4 if cpu == "m4" else M0P), "--specs=picolibc.specs", *STRICT]
    for extra in (["-Os"], ["-O2", "-DSQ_WEIGHTS_INT8=1"]):
        assert _compile_each(["arm-none-eabi-gcc"], kit, [*flags, *extra], tmp_path) == [], (cpu, extra)


def test_kit_builds_with_the_strict_warning_set_for_rv32(kit, tmp_path):
    cc = "riscv64-unknown-elf-gcc"
    if shutil.which(cc) is None or not _picolibc(cc, RV32, tmp_path):
        pytest.skip(f"{cc} with picolibc missing (Debian: gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)")
    assert _compile_each([cc], kit, [*RV32, "--specs=picolibc.specs", *STRICT, "-Os"], tmp_path) == []


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_quantize_input_maps_nan_and_infinities_as_before(kit, tmp_path):
    """The float edge's NaN test is written without == (-Wfloat-equal): NaN still gives the zero point, +-inf and
    huge values the rails, and ordinary values round half away from zero."""
    import ctypes
    import re

    import numpy as np
    from sqtool.export.c import build_shared_lib
    lib = ctypes.CDLL(str(build_shared_lib(kit / "c", tmp_path, False)))
    hdr = (kit / "c" / "sq_model.h").read_text()
    n = int(re.search(r"#define SQ_IN_SAMPLES (\d+)", hdr).group(1)) * \
        int(re.search(r"#define SQ_IN_CHANNELS (\d+)", hdr).group(1))
    scale = np.float32(float(re.search(r"#define SQ_INPUT_SCALE ([-+0-9.eE]+)f?", hdr).group(1)))
    zp = int(re.search(r"#define SQ_INPUT_ZERO_POINT (-?\d+)", hdr).group(1))
    special = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0], np.float32)
    x = np.resize(np.concatenate([special, np.linspace(-140, 140, 97, dtype=np.float32) * scale]), n).astype(np.float32)
    got = np.zeros(n, np.int8)
    lib.sq_quantize_input(x.ctypes.data_as(ctypes.c_void_p), got.ctypes.data_as(ctypes.c_void_p))
    v = np.clip(np.nan_to_num(x / scale, nan=0.0, posinf=1000.0, neginf=-1000.0), -1000, 1000).astype(np.float32)
    r = np.where(v >= 0, v + np.float32(0.5), v - np.float32(0.5)).astype(np.float32).astype(np.int32) + zp
    np.testing.assert_array_equal(got, np.clip(r, -128, 127).astype(np.int8))
    assert got[0] == zp and got[1] == 127 and got[2] == -128


# ----------------------------------------------------------------------------- strict aliasing, byte order

@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_no_type_punned_access_to_the_arena(kit, tmp_path):
    """The stride-1 kernel's expanded activations are uint32_t words read as uint32_t by the next layer: they
    are written as one packed word, never through an int16_t pointer (C99 6.5p7; GCC's most eager
    -Wstrict-aliasing=1 names such a store). The M4 (DSP path) too, where its compiler is installed."""
    flags = ["-std=c99", "-O2", "-Wstrict-aliasing=1", "-Werror"]
    assert _compile_each(["gcc"], kit, flags, tmp_path) == []
    if shutil.which("arm-none-eabi-gcc") and _picolibc("arm-none-eabi-gcc", M4, tmp_path):
        assert _compile_each(["arm-none-eabi-gcc", *M4, "--specs=picolibc.specs"], kit, flags, tmp_path) == []


# ----------------------------------------------------------------------------- no float without section GC

@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("nm") is None, reason="no gcc / nm")
def test_float_helpers_are_left_out_with_sq_float_helpers_0(kit, tmp_path):
    """-DSQ_FLOAT_HELPERS=0: sq_model.c defines no float edge, so an image linked without --gc-sections holds
    no float code; on a Cortex-M0+ (no FPU) no kit object then needs a soft-float routine. Default: compiled in."""
    def symbols(cc, nm, extra, src):
        obj = tmp_path / f"{src.stem}.o"
        subprocess.run([cc, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wundef", "-Os", *extra,
                        f"-I{kit / 'c'}", "-c", str(src), "-o", str(obj)], check=True, capture_output=True)
        return subprocess.run([nm, str(obj)], capture_output=True, text=True, check=True).stdout
    model = kit / "c" / "sq_model.c"
    assert "sq_quantize_input" in symbols("gcc", "nm", [], model)
    off = symbols("gcc", "nm", ["-DSQ_FLOAT_HELPERS=0"], model)
    assert "sq_quantize_input" not in off and "sq_dequantize_output" not in off and "sq_model_run" in off
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-nm") is None:
        return
    soft = lambda text: sorted(ln.split()[-1] for ln in text.splitlines()                      # noqa: E731
                               if ln.split()[-1].startswith(("__aeabi_f", "__aeabi_d", "__aeabi_i2f", "__aeabi_ui2f")))
    assert soft(symbols("arm-none-eabi-gcc", "arm-none-eabi-nm", M0P, model))          # the default build needs them
    for src in sorted((kit / "c").glob("*.c")):
        assert soft(symbols("arm-none-eabi-gcc", "arm-none-eabi-nm", [*M0P, "-DSQ_FLOAT_HELPERS=0"], src)) == [], src
