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
          "-Wsign-conversion", "-Wcast-align=strict", "-Wdouble-promotion", "-Wundef", "-Wmissing-prototypes",
          "-Wstrict-prototypes"]
M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
M0P = ["-mcpu=cortex-m0plus", "-mthumb"]
RV32 = ["-march=rv32imc", "-mabi=ilp32"]


def _twin_kit(folder: Path, prefix: str = "sq", acc_fs: float | None = None, n_ppg: int = 1) -> Path:
    """A whole kit (write_kit) of a calibrated, untrained spec_student_xs twin at 125 Hz, under `prefix`; `acc_fs`:
    with the accelerometer resampler from that rate (`export --device-acc-fs`); n_ppg: the device's PPG sensors."""
    from tests.export.export_fixtures import make_float_specnet, make_int8_specnet, synthetic_spectra
    from sqtool.export.intgraph import extract_int_graph
    from sqtool.export.kit import write_kit
    from sqtool.export.metadata import build_metadata
    f = make_float_specnet("spec_student_xs", 0)
    calib, _ = synthetic_spectra(f.cfg, 16, 0)
    q = make_int8_specnet(f, calib)
    g = extract_int_graph(q)
    mc = q.cfg.to_dict()
    out = folder / "kit"
    write_kit(out, mc, g, build_metadata({"model_cfg": mc, "kind": "student_int8"}, "0" * 64, g), prefix=prefix,
              acc_fs=acc_fs, n_ppg=n_ppg)
    return out


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    """The twin's kit, prefix sq."""
    return _twin_kit(tmp_path_factory.mktemp("kit"))


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


# ----------------------------------------------------------------------------- no fused multiply-add

def _fp_contract_last(cmd: str) -> bool:
    """Whether a compile command's last -ffp-contract is off (GCC takes the last one)."""
    modes = [w for w in cmd.split() if w.startswith("-ffp-contract=")]
    return bool(modes) and modes[-1] == "-ffp-contract=off"


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_its_makefile_never_lets_the_compiler_fuse_a_multiply_add(kit, tmp_path):
    """GCC's GNU modes (-std=gnu11, its default) contract a * b + c into a fused multiply-add on an FPU core: the
    float code then rounds once where sqtool's reference rounds twice. Every compile of the kit's Makefile, host and
    board, passes -ffp-contract=off after the user's CFLAGS (the Makefile only said to build in ISO C99)."""
    b = tmp_path / "b"
    r = subprocess.run(["make", "-n", "-C", str(kit), f"BUILD={b}", "CC=cc", "CFLAGS=-O2 -std=gnu11 -ffp-contract=fast",
                        str(b / "host" / "example"), str(b / "host" / "selftest"), str(b / "an386" / "example.elf"),
                        str(b / "an547" / "selftest.elf")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    compiles = [ln for ln in r.stdout.splitlines() if ln.split()[:1] in (["cc"], ["arm-none-eabi-gcc"])]
    assert len(compiles) == 4 and all(_fp_contract_last(c) for c in compiles), compiles
    assert "-ffp-contract=off" in (kit / "example" / "board" / "boards.mk").read_text()


@pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake")
def test_its_cmake_build_never_lets_the_compiler_fuse_a_multiply_add(kit, tmp_path):
    """The same for CMakeLists.txt (no CMake property says it): the library, the example and the self-test, also
    under a user's CMAKE_C_FLAGS that ask for fusing, and the boards' SQ_MCU_FLAGS."""
    b = tmp_path / "cmake"
    r = subprocess.run(["cmake", "-S", str(kit), "-B", str(b), "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
                        "-DCMAKE_C_FLAGS=-std=gnu11 -ffp-contract=fast"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    import json
    cmds = [c["command"] for c in json.loads((b / "compile_commands.json").read_text())]
    assert len(cmds) >= len(list((kit / "c").glob("*.c"))) + 2
    assert all(_fp_contract_last(c) for c in cmds), [c for c in cmds if not _fp_contract_last(c)]
    assert "-ffp-contract=off" in (kit / "example" / "board" / "boards.cmake").read_text()


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



M55 = ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", "-mfpu=auto"]


@pytest.mark.parametrize("cpu", ["host", "m55"])
def test_kit_with_the_acc_resampler_builds_with_the_strict_warning_set_in_c11(kit_acc, cpu, tmp_path):
    """The firmware audit's set in C11 as well as C99: the kit with the accelerometer resampler (its .c and
    example/acc_check.c beside the pipeline's), on the host and for the Cortex-M55 (the network's Helium path, which
    the M4 / M0+ builds above never compile); -Wcast-align (the plain form firmware builds use) besides =strict.
    Measured clean when added (2026-12-07): no warning to fix."""
    flags = [*STRICT, "-std=c11", "-Wcast-align", "-Wpedantic", "-Os"]
    if cpu == "host":
        if shutil.which("gcc") is None:
            pytest.skip("no gcc")
        assert _compile_each(["gcc"], kit_acc, flags, tmp_path) == []
        return
    if shutil.which("arm-none-eabi-gcc") is None or not _picolibc("arm-none-eabi-gcc", M55, tmp_path):
        pytest.skip("arm-none-eabi-gcc with picolibc missing")
    assert _compile_each(["arm-none-eabi-gcc"], kit_acc, [*M55, "--specs=picolibc.specs", *flags], tmp_path) == []

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


# ----------------------------------------------------------------------------- on-target self-test, no stdio

@pytest.fixture(scope="module")
def kit_hr3(tmp_path_factory) -> Path:
    """The same twin's kit under the prefix hr3 (every sq_ / SQ_ of the self-test and its header renamed)."""
    return _twin_kit(tmp_path_factory.mktemp("kit_hr3"), prefix="hr3")


def _c_array(text: str, name: str):
    import re

    import numpy as np
    body = re.search(name + r"\[[^=]*= \{(.*?)\n\};", text, re.S).group(1)
    return np.array([int(v) for v in re.findall(r"-?\d+", body.replace("(-2147483647 - 1)", "-2147483648"))])


def test_vectors_header_holds_the_recording_and_the_expected_results(kit_hr3):
    import re

    import numpy as np
    from sqtool.export.pipeline import RESULT_KEYS, parse_results
    h = (kit_hr3 / "test_vectors" / "hr3_vectors.h").read_text()
    assert "sq_" not in h and "SQ_" not in h
    rec = np.fromfile(kit_hr3 / "test_vectors" / "recording.bin", "<i2")
    np.testing.assert_array_equal(_c_array(h, "hr3_vec_recording"), rec)
    want = parse_results((kit_hr3 / "test_vectors" / "expected.txt").read_text())
    np.testing.assert_array_equal(_c_array(h, "hr3_vec_expected").reshape(-1, len(RESULT_KEYS)),
                                  np.stack([want[k] for k in RESULT_KEYS], axis=1))
    src = (kit_hr3 / "example" / "selftest.c").read_text()
    code = re.sub(r"/\*.*?\*/", "", src, flags=re.S)                       # the comments say "no stdio"
    assert "int hr3_selftest(void)" in code and "#include <stdio.h>" not in code
    assert not re.search(r"\b(printf|fopen|malloc|float|double)\b", code)


def test_readme_flash_size_is_the_size_of_the_vectors_header_arrays(kit_hr3):
    """README.md's 'about N KB of flash' for the self-test is what hr3_vectors.h's two arrays take: the int16
    recording frames and the int32 expected rows, counted from the header itself; vectors_header's byte count is
    that of the arrays it writes, the unused row of a recording without results included."""
    import re

    import numpy as np
    from sqtool.export.kit import vectors_header
    from sqtool.export.pipeline import RESULT_KEYS
    for n_res in (3, 0):
        res = {k: np.arange(n_res) + i for i, k in enumerate(RESULT_KEYS)}
        noise = {"seed": 1, "n_samples": 9, "results": 0, "first_no_pulse": -1, "no_pulse": 0, "checksum": 7}
        text, n_bytes = vectors_header(np.ones((2, 5), np.int16), np.zeros(5, bool), res, 2, "hr3", noise=noise)
        assert n_bytes == 2 * len(_c_array(text, "hr3_vec_recording")) + 4 * len(_c_array(text, "hr3_vec_expected"))
        assert n_bytes == 2 * 5 * 3 + 4 * len(RESULT_KEYS) * max(n_res, 1)
    h = (kit_hr3 / "test_vectors" / "hr3_vectors.h").read_text()
    flash = 2 * len(_c_array(h, "hr3_vec_recording")) + 4 * len(_c_array(h, "hr3_vec_expected"))
    assert "static const int16_t hr3_vec_recording" in h and "static const int32_t hr3_vec_expected" in h
    kb = re.search(r"about\s+(\d+) KB of flash\) through the pipeline", (kit_hr3 / "README.md").read_text())
    assert kb and int(kb.group(1)) == round(flash / 1000) > 0


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("gcc") is None, reason="no make / gcc")
def test_selftest_is_bit_exact_on_the_host_and_names_the_first_wrong_result(kit_hr3, tmp_path):
    """`make selftest`: the kit's no-stdio check passes on the host build; with one expected value changed it
    fails, and hr3_selftest() returns that result's number + 1."""
    r = subprocess.run(["make", "-s", "-C", str(kit_hr3), f"BUILD={tmp_path / 'b'}", "selftest"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "every result equal" in r.stdout, r.stdout + r.stderr
    bad = tmp_path / "bad"
    shutil.copytree(kit_hr3, bad)
    h = bad / "test_vectors" / "hr3_vectors.h"
    text = h.read_text()
    head, rows = text.split("hr3_vec_expected", 1)
    lines = rows.split("\n")
    i = next(n for n, ln in enumerate(lines) if ln.strip().startswith("{2,"))    # result 2: hr_mbpm + 1
    vals = lines[i].strip().rstrip(",").strip("{}").split(", ")
    vals[1] = str(int(vals[1]) + 1)
    lines[i] = "    {" + ", ".join(vals) + "}" + ("," if lines[i].rstrip().endswith(",") else "")
    h.write_text(head + "hr3_vec_expected" + "\n".join(lines))
    r = subprocess.run(["make", "-s", "-C", str(bad), f"BUILD={tmp_path / 'bb'}", "selftest"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0 and "MISMATCH" in r.stdout
    st = subprocess.run([str(tmp_path / "bb" / "host" / "selftest")], timeout=60)
    assert st.returncode == 3


RV_LD = "__flash = 0x80000000;\n__flash_size = 0x00200000;\n__ram = 0x80200000;\n__ram_size = 0x00200000;\n" \
        "__stack_size = 0x00004000;\nINCLUDE picolibc.ld\n"


@pytest.mark.parametrize("core", ["m0plus", "rv32imc"])
def test_selftest_is_bit_exact_on_m0plus_and_rv32_under_qemu(kit_hr3, core, tmp_path):
    """The portable C path on an ARMv6-M core (Cortex-M0+ code on QEMU's mps2-an385) and on rv32imc (QEMU virt):
    hr3_selftest() as the firmware's main, the exit status through semihosting; skipped without the toolchain."""
    if core == "m0plus":
        cc, qemu = "arm-none-eabi-gcc", ["qemu-system-arm", "-M", "mps2-an385"]
        flags = [*M0P, "-Iexample/board", "-Lexample/board", "-T", "mps2_an386.ld", "example/board/startup.c"]
    else:
        cc, qemu = "riscv64-unknown-elf-gcc", ["qemu-system-riscv32", "-M", "virt", "-bios", "none"]
        (tmp_path / "virt.ld").write_text(RV_LD)
        flags = [*RV32, "-T", str(tmp_path / "virt.ld")]
    if shutil.which(cc) is None or shutil.which(qemu[0]) is None or \
            not _picolibc(cc, M0P if core == "m0plus" else RV32, tmp_path):
        pytest.skip(f"{cc} with picolibc / {qemu[0]} missing")
    elf = tmp_path / "selftest.elf"
    srcs = ["example/selftest.c", *[str(p.relative_to(kit_hr3)) for p in sorted((kit_hr3 / "c").glob("*.c"))]]
    r = subprocess.run([cc, "-Os", "--specs=picolibc.specs", "--oslib=semihost", "--crt0=hosted", "-ffunction-sections",
                        "-fdata-sections", "-Wl,--gc-sections", *STRICT, "-DHR3_SELFTEST_MAIN", "-Ic", "-Itest_vectors",
                        *flags, *srcs, "-o", str(elf)], cwd=kit_hr3, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    run = subprocess.run([*qemu, "-display", "none", "-monitor", "none", "-serial", "none", "-semihosting-config",
                          "enable=on,target=native", "-kernel", str(elf)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"selftest returned {run.returncode}: {run.stderr[-500:]}"


def test_readme_tells_an_m0plus_or_riscv_user_the_cost_and_the_selftest(kit_hr3):
    """The "Other cores" figures are those of benchmarks/results/kit_other_cores.md (re-measured with the no_pulse
    check, 2026-12-07), said with the script that measures them."""
    readme = (kit_hr3 / "README.md").read_text()
    other = readme[readme.index("## Other cores"):readme.index("## Memory placement")]
    for fact in ("Measured on 2026-12-07", "arm-none-eabi-gcc 12.2.1", "6.13 M", "0.82 M", "30.4 KB", "17.8 KB",
                 "796 B", "-DHR3_WEIGHTS_INT8=1", "3.8 KB less", "64-bit divide", "rv32imc", "example/selftest.c",
                 "benchmarks/kit_other_cores.py", "The table includes the pulse-presence check"):
        assert fact in other, fact
    assert "hr3_selftest(void)" in readme and "make selftest" in readme and "@" not in readme
    import json
    res = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "kit_other_cores.json")
                     .read_text())
    table = other[other.index("| -Os |"):other.index("\n\n", other.index("| -Os |"))]
    for r, name in zip(res["rows"], ("Cortex-M4 (DSP path)", "Cortex-M0+ (portable)", "-DHR3_WEIGHTS_INT8=1")):
        row = next(ln for ln in table.splitlines() if name in ln)
        assert r["bit_exact"] and f"| {r['insns_per_window_push'] / 1e6:.2f} M" in row, row
        assert f"| {r['code_bytes'] / 1000:.1f} KB" in row and f"| {r['stack_bytes']} B" in row, row
        assert f"| {r['ram_bytes'] / 1000:.1f} KB |" in row, row


# ----------------------------------------------------------------------------- the self-test and the acc resampler

@pytest.fixture(scope="module")
def kit_acc(tmp_path_factory) -> Path:
    """The twin's kit with the accelerometer resampler from 25 Hz (`--device-acc-fs 25`), prefix hr3."""
    return _twin_kit(tmp_path_factory.mktemp("kit_acc"), prefix="hr3", acc_fs=25.0)


def _broken_acc_kit(kit: Path, folder: Path, how: str) -> Path:
    """A copy of `kit` whose accelerometer resampler no longer matches its vectors: one expected output of the
    self-test's header + 1 ("vector"), or a port of the resampler that truncates instead of rounding ("port")."""
    bad = folder / f"bad_{how}"
    shutil.copytree(kit, bad)
    if how == "vector":
        h = bad / "test_vectors" / "hr3_vectors.h"
        head, tail = h.read_text().split("hr3_vec_acc_expected[3 * HR3_VEC_ACC_N_OUT] = {\n    ", 1)
        first, rest = tail.split(",", 1)
        h.write_text(head + "hr3_vec_acc_expected[3 * HR3_VEC_ACC_N_OUT] = {\n    " + str(int(first) + 1) + "," + rest)
    else:
        c = bad / "c" / "hr3_acc_resampler.c"
        text = c.read_text()
        assert "acc = (acc + (1 << 14)) >> 15;" in text
        c.write_text(text.replace("acc = (acc + (1 << 14)) >> 15;", "acc = acc >> 15;"))
    return bad


M4_PASS = "selftest (MPS2 AN386 (Cortex-M4), vectors compiled in): every result equal"


def _selftest_good_then_bad(kit: Path, bad: Path, tmp_path: Path, target: str = "selftest"):
    """`make <target>` (selftest on the host, selftest-an386 under QEMU: skipped without arm-none-eabi-gcc /
    qemu-system-arm) passes on `kit` as exported; returns the run on the broken copy `bad`."""
    if target != "selftest" and (shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None
                                 or not _picolibc("arm-none-eabi-gcc", M4, tmp_path)):
        pytest.skip("arm-none-eabi-gcc with picolibc / qemu-system-arm missing")
    r = subprocess.run(["make", "-s", "-C", str(kit), f"BUILD={tmp_path / 'b'}", target],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and (M4_PASS if target != "selftest" else "every result equal") in r.stdout, \
        r.stdout + r.stderr
    return subprocess.run(["make", "-s", "-C", str(bad), f"BUILD={tmp_path / 'bb'}", target], capture_output=True,
                          text=True, timeout=600)


def test_the_selftest_vectors_hold_the_accelerometer_resampler_vectors(kit_acc):
    """An export with the resampler compiles acc_in.bin / acc_expected.bin into hr3_vectors.h for the self-test; the
    README's flash figure counts them."""
    import re

    import numpy as np
    h = (kit_acc / "test_vectors" / "hr3_vectors.h").read_text()
    a_in = np.fromfile(kit_acc / "test_vectors" / "acc_in.bin", "<i2")
    a_want = np.fromfile(kit_acc / "test_vectors" / "acc_expected.bin", "<i2")
    np.testing.assert_array_equal(_c_array(h, "hr3_vec_acc_in"), a_in)
    np.testing.assert_array_equal(_c_array(h, "hr3_vec_acc_expected"), a_want)
    assert f"#define HR3_VEC_ACC_N_IN {len(a_in) // 3}" in h and f"#define HR3_VEC_ACC_N_OUT {len(a_want) // 3}" in h
    flash = 2 * len(_c_array(h, "hr3_vec_recording")) + 4 * len(_c_array(h, "hr3_vec_expected")) + \
        2 * (len(a_in) + len(a_want))
    readme = (kit_acc / "README.md").read_text()
    kb = re.search(r"about\s+(\d+) KB of flash\) through the pipeline", readme)
    assert kb and int(kb.group(1)) == round(flash / 1000)
    assert "returns `HR3_SELFTEST_ERR_ACC` (-16" in readme and "chunks of 1, 5, 7 and 64 samples" in readme


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("gcc") is None, reason="no make / gcc")
@pytest.mark.parametrize("how", ["vector", "port"])
def test_selftest_fails_when_the_accelerometer_resampler_is_broken(kit_acc, how, tmp_path):
    """`make selftest` on an export with --device-acc-fs also checks the resampler: it passes as exported, and a
    perturbed expected output or a resampler that truncates instead of rounding makes hr3_selftest() return
    HR3_SELFTEST_ERR_ACC (exit status 101), where it used to pass (the pipeline's own vectors never touch it)."""
    r = _selftest_good_then_bad(kit_acc, _broken_acc_kit(kit_acc, tmp_path, how), tmp_path)
    assert r.returncode != 0 and "101: the accelerometer resampler" in r.stdout, r.stdout + r.stderr
    assert subprocess.run([str(tmp_path / "bb" / "host" / "selftest")], timeout=60).returncode == 101


def test_selftest_checks_the_accelerometer_resampler_on_the_cortex_m4_under_qemu(kit_acc, tmp_path):
    """The same on the board build (`make selftest-an386`, QEMU): bit-exact as exported, exit status 101 with the
    truncating port of the resampler; skipped without arm-none-eabi-gcc / qemu-system-arm."""
    r = _selftest_good_then_bad(kit_acc, _broken_acc_kit(kit_acc, tmp_path, "port"), tmp_path, "selftest-an386")
    assert r.returncode != 0 and "selftest (MPS2 AN386 (Cortex-M4)): MISMATCH" in r.stdout, r.stdout + r.stderr


# ----------------------------------------------------------------------------- the self-test and no_pulse

@pytest.fixture(scope="module")
def kit_2ppg(tmp_path_factory) -> Path:
    """The twin's kit for a device with two PPG sensors (ppg, ppg2), prefix sq."""
    return _twin_kit(tmp_path_factory.mktemp("kit_2ppg"), n_ppg=2)


def _define(text: str, name: str) -> int:
    import re
    return int(re.search(rf"#define {name} (-?(?:0x[0-9A-F]+|\d+))u?\b", text).group(1), 0)


def _broken_no_pulse_kit(kit: Path, folder: Path, how: str) -> Path:
    """A copy of `kit` whose self-test must fail on its noise stream: a port whose pulse-presence detector never
    reports ("threshold": SQ_PL_NO_PULSE_MAX_Q8 set to 0 in <prefix>_pipeline_cfg.h; "port": sq_pl_no_pulse returns 0),
    or a noise checksum in the header one off ("checksum": a field other than no_pulse that differs)."""
    import re
    bad = folder / f"bad_{how}"
    shutil.copytree(kit, bad)
    prefix = next((kit / "c").glob("*_pipeline_cfg.h")).name.split("_")[0]
    up = prefix.upper()
    if how == "threshold":
        f = bad / "c" / f"{prefix}_pipeline_cfg.h"
        text, k = re.subn(rf"(#define {up}_PL_NO_PULSE_MAX_Q8\s+)\d+u", r"\g<1>0u", f.read_text())
    elif how == "port":
        f = bad / "c" / f"{prefix}_pipeline.c"
        text, k = re.subn(r"return \(uint8_t\)\(p->flat_seen == [^;]*;", "return 0u;", f.read_text())
    else:
        f = bad / "test_vectors" / f"{prefix}_vectors.h"
        sum_ = _define(f.read_text(), f"{up}_VEC_NOISE_CHECKSUM")
        text, k = re.subn(rf"(#define {up}_VEC_NOISE_CHECKSUM )0x[0-9A-F]+u", rf"\g<1>0x{(sum_ ^ 1):08X}u",
                          f.read_text())
    assert k == 1, how
    f.write_text(text)
    return bad


@pytest.mark.parametrize("which", ["kit_hr3", "kit_2ppg"])
def test_the_noise_stream_turns_no_pulse_on_and_its_numbers_are_the_references(which, request):
    """The vectors' recording has a pulse throughout (no_pulse never 1); the header's noise constants are what
    PipelineRef gives on the xorshift stream (noise_check), and that stream turns no_pulse on from the pulse-presence
    run's last window (the first it can: result 31 of a 32-window run) for a dozen hops: one sensor and two, under a
    prefix. (The stream was 60 s, fixed, when the run was 16 windows: at 32 it never turned on.)"""
    import numpy as np
    from sqtool.export.kit import NOISE_HOPS_AFTER, results_checksum, xorshift_noise
    from sqtool.export.pipeline import NO_PULSE_WINDOWS
    from sqtool.export.pipeline import parse_results
    kit = request.getfixturevalue(which)
    prefix = next((kit / "c").glob("*_pipeline_cfg.h")).name.split("_")[0]
    up = prefix.upper()
    h = (kit / "test_vectors" / f"{prefix}_vectors.h").read_text()
    assert not parse_results((kit / "test_vectors" / "expected.txt").read_text())["no_pulse"].any()
    got = {k: _define(h, f"{up}_VEC_NOISE_{k.upper()}") for k in
           ("seed", "n_samples", "n_results", "first_no_pulse", "no_pulse", "checksum")}
    assert got["first_no_pulse"] == NO_PULSE_WINDOWS - 1 and got["no_pulse"] >= 5 and got["seed"] >= 1
    assert got["n_results"] == NO_PULSE_WINDOWS + NOISE_HOPS_AFTER + 1          # a window, then a hop per result
    assert got["n_samples"] == (8 + (NO_PULSE_WINDOWS + NOISE_HOPS_AFTER) * 2) * 125
    vec = __import__("json").loads((kit / "test_vectors" / "vectors.json").read_text())["noise_check"]
    assert vec["seed"] == got["seed"] and vec["checksum"] == f"0x{got['checksum']:08X}"
    # the stream and the checksum, from their definitions (xorshift32 13/17/5, FNV-1a)
    x = 1
    for _ in range(3):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
    assert xorshift_noise(3, 1)[-1] == (x >> 20) - 2048 and xorshift_noise(3, 1)[0] == (270369 >> 20) - 2048
    one = {k: np.array([1]) for k in ("index", "hr_mbpm", "lo_mbpm", "hi_mbpm", "conf_q15", "flagged_q15", "valid",
                                      "no_pulse")}
    fnv = 2166136261
    for _ in range(8):
        fnv = ((fnv ^ 1) * 16777619) & 0xFFFFFFFF
    assert results_checksum(one) == fnv
    assert results_checksum({**one, "hr_mbpm": np.array([-1])}) != fnv


def test_readme_and_integration_say_the_selftest_checks_no_pulse(kit_hr3):
    """The kit README's self-test paragraph and INTEGRATION.md say that the recording never has no_pulse = 1 and that
    the self-test checks it on a generated noise stream, with its error codes and the cost measured (they said
    nothing: a detector that never reported passed)."""
    readme = " ".join((kit_hr3 / "README.md").read_text().split())
    for fact in ("The recording has a pulse throughout, so its `no_pulse` is 0 everywhere",
                 "xorshift32 from the header's `HR3_VEC_NOISE_SEED`", "(no flash for data)",
                 "`HR3_SELFTEST_ERR_NO_PULSE` (-17; exit status 102)", "`HR3_SELFTEST_ERR_NOISE` (-18; 103)",
                 "about 28 M instructions in all on the Cortex-M4 at -O2 (12 M for the recording), and 0.5 KB more code"):
        assert fact in readme, fact
    doc = " ".join((kit_hr3 / "INTEGRATION.md").read_text().split())
    assert "also pushes a noise stream it generates (xorshift32" in doc and "`noise_check`" in doc and "@" not in doc
    h = (kit_hr3 / "c" / "hr3_pipeline.h").read_text()
    assert "#define HR3_SELFTEST_ERR_NO_PULSE (-17)" in h and "#define HR3_SELFTEST_ERR_NOISE (-18)" in h


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("gcc") is None, reason="no make / gcc")
@pytest.mark.parametrize("which, how, status", [("kit_hr3", "threshold", 102), ("kit_hr3", "port", 102),
                                                ("kit_2ppg", "port", 102), ("kit_hr3", "checksum", 103)])
def test_selftest_fails_when_the_no_pulse_detector_never_reports(which, how, status, request, tmp_path):
    """`make selftest` as exported passes; a port whose detector always says 0 (threshold 0, or the function patched)
    fails with <PREFIX>_SELFTEST_ERR_NO_PULSE (exit status 102), a noise result off in another field with
    <PREFIX>_SELFTEST_ERR_NOISE (103). Before the noise stream such a port passed: the recording has a pulse
    throughout, so its expected no_pulse is 0 everywhere."""
    kit = request.getfixturevalue(which)
    r = _selftest_good_then_bad(kit, _broken_no_pulse_kit(kit, tmp_path, how), tmp_path)
    assert r.returncode != 0 and "102: no_pulse on the noise stream" in r.stdout, r.stdout + r.stderr
    assert subprocess.run([str(tmp_path / "bb" / "host" / "selftest")], timeout=60).returncode == status


def test_selftest_catches_a_silent_no_pulse_detector_on_the_cortex_m4_under_qemu(kit_2ppg, tmp_path):
    """The same on the board build (`make selftest-an386`, QEMU): bit-exact as exported (the noise generated on the
    M4 is the reference's), MISMATCH with the detector patched to 0; skipped without arm-none-eabi-gcc / qemu."""
    bad = _broken_no_pulse_kit(kit_2ppg, tmp_path, "port")
    r = _selftest_good_then_bad(kit_2ppg, bad, tmp_path, "selftest-an386")
    assert r.returncode != 0 and "selftest (MPS2 AN386 (Cortex-M4)): MISMATCH" in r.stdout, r.stdout + r.stderr
    assert "102: no_pulse on the noise stream" in r.stdout


# ----------------------------------------------------------------------------- the accelerometer's axes, documented

def test_integration_and_readme_say_what_the_model_expects_of_the_axes(kit):
    """A model with acc_x, acc_y, acc_z as channels of their own: INTEGRATION.md's "Accelerometer axes" says their
    order is part of the contract (with the measured cost of another order), their signs and units are not; the kit
    README's `acc` bullet points there."""
    doc = (kit / "INTEGRATION.md").read_text()
    sec = doc[doc.index("## Accelerometer axes"):doc.index("## Front end")]
    for fact in ("the ORDER of the axes is part of this model's contract; their signs and their units are not",
                 "y along the forearm", "z normal\n  to the watch face", "5.0-12.6 BPM on average", "115 BPM",
                 "0.06-0.12 BPM on average", "by 4 at most", "at least about 1000 counts per g",
                 "4096 counts per g", "Each axis may have its own gain", "benchmarks/acc_axes.py"):
        assert fact in sec, fact
    readme = (kit / "README.md").read_text()
    assert "interleaved x, y, z (their order matters, their signs and units do not: see \"Accelerometer axes\" in " \
           "`INTEGRATION.md`)" in readme
    assert "@" not in sec and "@ACC_AXES" not in readme


def test_axes_words_follow_how_the_front_end_reads_them():
    """A summed-power model (n_channels 2) reads no axis order and needs one gain for the three; a PPG-only model
    gets no section."""
    from types import SimpleNamespace

    from sqtool.export.kit import acc_axes_values
    summed = acc_axes_values(SimpleNamespace(n_channels=2, gain_acc=4096.0))
    assert "do not depend on the order of the\naxes" in summed["ACC_AXES"] and "share one gain" in summed["ACC_AXES"]
    assert "ORDER" not in summed["ACC_AXES"] and "any order and orientation" in summed["ACC_AXES_NOTE"]
    assert acc_axes_values(SimpleNamespace(n_channels=1, gain_acc=4096.0)) == {"ACC_AXES": "", "ACC_AXES_NOTE": ""}



def test_readme_ram_figure_is_the_state_of_todays_code(kit_2ppg, tmp_path):
    """The "Other cores" RAM line names the state size that benchmarks/results/kit_other_cores.json measured, and that
    is sizeof(sq_pipeline_t) of today's code for the demo model's layout: 2 PPG sensors + accelerometer, 134 bins and
    its decoder's transition of 6 BPM (R = 12 bins; the twin's own 4 BPM makes R = 8, 32 B less). The line said
    8,440 B, the state before the pulse-presence run grew to 32 windows (8,472 B)."""
    import json
    import re

    from sqtool.export import pipeline as PL
    from sqtool.export.kit import _state_bytes
    from tests.export.export_fixtures import make_float_specnet, make_int8_specnet, synthetic_spectra
    from sqtool.export.intgraph import extract_int_graph
    from sqtool.export.metadata import build_metadata
    f = make_float_specnet("spec_student_xs", 0)
    q = make_int8_specnet(f, synthetic_spectra(f.cfg, 16, 0)[0])
    g = extract_int_graph(q)
    mc = q.cfg.to_dict()
    mc = {**mc, "decoder": {**mc["decoder"], "sigma_bpm": 6.0}}                  # the demo model's transition
    PL.render_pipeline(mc, g, build_metadata({"model_cfg": mc, "kind": "student_int8"}, "0" * 64, g), tmp_path,
                       n_ppg=2)
    assert "#define SQ_DEC_RADIUS        12" in (tmp_path / "sq_decoder_tables.h").read_text()
    sizeof = int(_state_bytes(tmp_path, "sq"))
    readme = (kit_2ppg / "README.md").read_text()
    stated = int(re.search(r"- RAM: state ([\d,]+) B \+ arena", readme).group(1).replace(",", ""))
    res = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "kit_other_cores.json")
                     .read_text())
    assert {r["state_bytes"] for r in res["rows"]} == {stated} and stated == sizeof
    assert f"(sqtool {res['git_sha'][:7]}, `benchmarks/kit_other_cores.py`" in readme


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_decoder_header_states_the_size_of_its_state(kit, tmp_path):
    """sq_decoder.h's usage line says how much RAM a decoder state takes: (2 F + 2 R) * 4 + 2 F + 8 bytes is
    sizeof(sq_decoder_t) (F even: no padding). It said (2 F + 2 R) * 4, 24 % short of the real size once the state
    held the emissions (int16 per bin) and the spread interval's words."""
    import re
    h = (kit / "c" / "sq_decoder.h").read_text()
    assert re.search(r"about \(2 F \+ 2 R\) \* 4 \+ 2 F \+ 8\s+\*?\s*/?/?\s*bytes", h), h[:1200]
    (tmp_path / "s.c").write_text('#include <stdio.h>\n#include "sq_decoder.h"\nint main(void) { printf("%lu %d %d", '
                                  '(unsigned long)sizeof(sq_decoder_t), SQ_DEC_NBINS, SQ_DEC_RADIUS); return 0; }\n')
    subprocess.run(["gcc", "-std=c99", f"-I{kit / 'c'}", str(tmp_path / "s.c"), "-o", str(tmp_path / "s")], check=True)
    size, f, r = map(int, subprocess.run([str(tmp_path / "s")], capture_output=True, text=True, check=True).stdout.split())
    assert f % 2 == 0 and size == (2 * f + 2 * r) * 4 + 2 * f + 8
