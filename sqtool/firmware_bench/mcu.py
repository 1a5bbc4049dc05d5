"""Build and run the generated C model as firmware: on the host (gcc) and on emulated Cortex-M (QEMU).

    fw = build_firmware(c_dir, "m4", work)          # arm-none-eabi-gcc + picolibc, mcu/*.ld per board
    res = run_firmware(fw, q_windows)               # qemu-system-arm + semihosting + insn_count plugin
    res.outputs (N, SQ_OUTPUT_SIZE) int8, res.insns_per_window (N,), res.stack_high_water
    image_size(fw) -> flash / RAM bytes from the ELF;  model_bytes(fw) -> the model's own weights/arena

    exe = build_host(c_dir, work);  run_host(exe, q_windows);  callgrind_insns(exe, q_windows)

The firmware is `mcu/harness_main.c` (reads int8 windows from a file, runs `sq_model_run` on each
between the marker calls `sq_bench_begin`/`sq_bench_end`, writes the int8 outputs) + `mcu/startup.c`
(fault handlers that exit with a status, markers, stack painting) + the model's `sq_model.c`. On the
MCU the files travel by semihosting; the windows and outputs are exactly the int8 tensors, so the
outputs can be compared bit for bit with TFLite Micro's. An export made with `--prefix hr2` (c/hr2_model.c,
hr2_model_run): `prefix="hr2"` builds its files as they are, the harnesses' sq_ names mapped onto its own
(`prefix_flags`).

Instruction counts are INSTRUCTIONS executed (QEMU TCG plugin on the MCU, valgrind callgrind on the
host), never cycles: QEMU does not model timing. A firmware that hangs is killed by an outer timeout,
one that faults exits with status 201-204 (HardFault, MemManage, BusFault, UsageFault): both become
one-line `FirmwareError`s.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError

MCU_DIR = Path(__file__).resolve().parent / "mcu"
DEBIAN_PACKAGES = "gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm"
FAULTS = {201: "HardFault", 202: "MemManage fault", 203: "BusFault", 204: "UsageFault"}


@dataclass(frozen=True)
class Target:
    key: str                  # "m4" | "m33" | "m55"
    cpu: str                  # -mcpu
    machine: str              # qemu -M
    ld: str                   # linker script in mcu/
    cflags: tuple[str, ...]


TARGETS = {
    "m4": Target("m4", "cortex-m4", "mps2-an386", "mps2_an386.ld",
                 ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")),
    "m33": Target("m33", "cortex-m33", "mps2-an505", "mps2_an505.ld",
                  ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16")),
    "m55": Target("m55", "cortex-m55", "mps3-an547", "mps3_an547.ld",
                  ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", "-mfpu=auto")),
    # ARMv6-M code (no DSP extension: the kit's portable C path) on QEMU's Cortex-M3 board AN385 (QEMU 7.2 has no
    # M0+ board; the instructions an M0+ executes are the same), the AN386 memory map
    "m0plus": Target("m0plus", "cortex-m0plus", "mps2-an385", "mps2_an386.ld", ("-mcpu=cortex-m0plus", "-mthumb")),
}
OPT = ("-O2", "-ffunction-sections", "-fdata-sections", "-std=c99", "-Wall")


class FirmwareError(SqtoolError):
    """The firmware did not produce outputs: build failure, fault, hang, bad status."""


@dataclass
class Firmware:
    path: Path                 # ELF (MCU) or executable (host)
    target: Target | None      # None = host
    c_dir: Path
    model_obj: Path            # sq_model.o, for the model's own weight / arena bytes
    defines: tuple[str, ...] = ()
    input_size: int = 0
    output_size: int = 0
    prefix: str = "sq"         # the export's C prefix (`export --prefix`): <prefix>_model.c, <prefix>_model_run


@dataclass
class RunResult:
    outputs: np.ndarray                        # (N, SQ_OUTPUT_SIZE) int8
    insns_per_window: np.ndarray | None = None  # (N,) instructions (plugin / callgrind), not cycles
    stack_high_water: int | None = None         # bytes (MCU only)
    status: int = 0
    stats: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- tools

def require_tools(*tools: str) -> None:
    """One clear line naming the Debian packages when a cross tool is missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    if "arm-none-eabi-gcc" in tools and not missing and not picolibc_specs():
        missing.append("picolibc (picolibc.specs)")
    if missing:
        raise SqtoolError(f"missing {', '.join(missing)}: install the Debian packages {DEBIAN_PACKAGES} "
                          "(apt-get install, or `make deps-debian`)")


def picolibc_specs() -> Path | None:
    for p in (Path("/usr/lib/picolibc/arm-none-eabi/picolibc.specs"),
              Path("/usr/local/lib/picolibc/arm-none-eabi/picolibc.specs")):
        if p.is_file():
            return p
    return None


def tool_versions() -> dict:
    """First version line of each tool (or "absent"), for the report's provenance header."""
    out = {}
    for name, cmd in (("gcc", ["gcc", "--version"]), ("arm_none_eabi_gcc", ["arm-none-eabi-gcc", "--version"]),
                      ("qemu", ["qemu-system-arm", "--version"]), ("valgrind", ["valgrind", "--version"])):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            out[name] = (r.stdout.strip().splitlines() or ["?"])[0]
        except (OSError, subprocess.SubprocessError):
            out[name] = "absent"
    return out


def _run(cmd: list[str], what: str, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FirmwareError(f"{what}: timed out after {timeout:.0f} s")
    if r.returncode != 0:
        msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
        first_err = next((m for m in msg if "error" in m.lower()), msg[0] if msg else "")
        raise FirmwareError(f"{what} failed (exit {r.returncode}): {first_err.strip()}")
    return r


def header_defines(c_dir: Path, prefix: str = "sq") -> dict[str, str]:
    """`#define NAME value` lines of <prefix>_model.h by their default names (SQ_INPUT_SIZE, SQ_OUTPUT_SIZE,
    SQ_ARENA_SIZE, ...: an export's HR2_INPUT_SIZE is read as SQ_INPUT_SIZE)."""
    h = Path(c_dir) / f"{prefix}_model.h"
    if not h.is_file():
        raise SqtoolError(f"{c_dir}: no {h.name} (export the model with `sqtool export --target c`)")
    up = re.escape(prefix.upper())
    d = {}
    for m in re.finditer(rf"^\s*#\s*define\s+{up}_(\w+)\s+(.+?)\s*(?://.*|/\*.*)?$", h.read_text(), re.M):
        d["SQ_" + m.group(1)] = re.sub(rf"\b{up}_", "SQ_", m.group(2))
    return d


def _eval_int(expr: str, defs: dict[str, str], depth: int = 0) -> int:
    """Evaluate a simple integer #define (numbers, other SQ_ names, + - * / parentheses)."""
    if depth > 8:
        raise SqtoolError(f"sq_model.h: cannot evaluate {expr!r}")
    expr = re.sub(r"\b(SQ_\w+)\b", lambda m: f"({_eval_int(defs[m.group(1)], defs, depth + 1)})"
                  if m.group(1) in defs else m.group(0), expr)
    expr = re.sub(r"(\d+)[uUlL]+\b", r"\1", expr)
    if not re.fullmatch(r"[\d\s()+\-*/]+", expr):
        raise SqtoolError(f"sq_model.h: cannot evaluate {expr!r} as an integer")
    return int(eval(expr.replace("/", "//"), {"__builtins__": {}}))  # noqa: S307 - digits and operators only


def model_io_sizes(c_dir: Path, prefix: str = "sq") -> tuple[int, int]:
    d = header_defines(c_dir, prefix)
    for k in ("SQ_INPUT_SIZE", "SQ_OUTPUT_SIZE"):
        if k not in d:
            raise SqtoolError(f"{c_dir}/{prefix}_model.h does not define {k.replace('SQ_', prefix.upper() + '_')}")
    return _eval_int(d["SQ_INPUT_SIZE"], d), _eval_int(d["SQ_OUTPUT_SIZE"], d)


def prefix_flags(c_dir, prefix: str, work, defines=()) -> list[str]:
    """Compile flags building a bench harness (mcu/*.c, written against the export's default sq_ names) with an
    export whose C has another prefix (`export --prefix hr2`): -I a folder of generated headers sq_<name>.h, each
    including the export's <prefix>_<name>.h and then mapping onto its names the sq_ / SQ_ names the export has
    (sq_model_run -> hr2_model_run, SQ_FE_NIN -> HR2_FE_NIN), and each -D build flag under both names (the
    harness reads SQ_PL_BENCH, the export's C HR2_PL_BENCH). The export's own sources compile as they are."""
    flags = [f"-D{d}" for d in defines]
    if prefix == "sq":
        return flags
    c_dir, up = Path(c_dir), prefix.upper()
    flags += [f"-D{up}_{d[3:]}" for d in defines if d.startswith("SQ_")]
    texts = [p.read_text() for p in sorted(c_dir.glob(f"{prefix}_*.[ch]"))]
    low = sorted({n for t in texts for n in re.findall(rf"\b{prefix}_(\w+)", t)})
    macros = sorted({n for t in texts for n in re.findall(rf"^\s*#\s*define\s+{up}_(\w+)", t, re.M)})
    shim = Path(work) / f"sq_names_{prefix}"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "sq_names.h").write_text("\n".join([
        f"/* generated by sqtool: the sq_ / SQ_ names of the bench harness onto the export's {prefix}_ / {up}_ */",
        "#ifndef SQ_NAMES_H", "#define SQ_NAMES_H", *[f"#define sq_{n} {prefix}_{n}" for n in low],
        *[f"#ifndef SQ_{n}\n#define SQ_{n} {up}_{n}\n#endif" for n in macros], "#endif", ""]))
    for h in sorted(c_dir.glob(f"{prefix}_*.h")):
        (shim / f"sq_{h.name[len(prefix) + 1:]}").write_text(f'#include "{h.name}"\n#include "sq_names.h"\n')
    return [f"-I{shim}", *flags]


def _model_sources(c_dir: Path, prefix: str = "sq") -> list[Path]:
    if not (Path(c_dir) / f"{prefix}_model.c").is_file():
        raise SqtoolError(f"{c_dir}: no {prefix}_model.c (export the model with `sqtool export --target c`)")
    # the network alone: a spectral export's c/ also holds the pipeline kit (front end, decoder, pipeline), a
    # time-domain one built with --device-fs its window front end
    return sorted(p for p in Path(c_dir).glob("*.c")
                  if not p.name.endswith(("_pipeline.c", "_frontend.c", "_decoder.c", "_window.c")))


# ----------------------------------------------------------------------------- builds

def build_host(c_dir, work, defines: tuple[str, ...] = (), cc: str = "gcc", prefix: str = "sq") -> Firmware:
    """The harness + model for the host, -O2 (valgrind counts its instructions); `prefix`: the export's C prefix."""
    require_tools(cc)
    c_dir, work = Path(c_dir), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    tag = "host" + _defines_tag(defines)
    exe, obj = work / f"sq_bench_{tag}", work / f"sq_model_{tag}.o"
    flags = [*OPT, "-g", "-DSQ_HOST", f"-I{MCU_DIR}", f"-I{c_dir}", *prefix_flags(c_dir, prefix, work, defines)]
    srcs = _model_sources(c_dir, prefix)
    _run([cc, *flags, "-c", str(c_dir / f"{prefix}_model.c"), "-o", str(obj)], f"host compile of {c_dir}")
    _run([cc, *flags, str(MCU_DIR / "startup.c"), str(MCU_DIR / "harness_main.c"), *map(str, srcs),
          "-o", str(exe)], f"host build of {c_dir}")
    i, o = model_io_sizes(c_dir, prefix)
    return Firmware(exe, None, c_dir, obj, tuple(defines), i, o, prefix)


def build_firmware(c_dir, target: str, work, defines: tuple[str, ...] = (), opt: str = "-O2",
                   prefix: str = "sq") -> Firmware:
    """Cross-compile harness + startup + model for a Cortex-M board with picolibc + semihosting
    (`opt`: the optimisation flag, -O2 by default; -O3 / -Os for size/speed sweeps; `prefix`: the export's C
    prefix)."""
    if target not in TARGETS:
        raise SqtoolError(f"unknown MCU target '{target}' (known: {', '.join(TARGETS)})")
    require_tools("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm")
    t = TARGETS[target]
    c_dir, work = Path(c_dir), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    tag = t.key + _defines_tag(defines) + ("" if opt == "-O2" else opt.replace("-", "_"))
    elf, obj = work / f"sq_bench_{tag}.elf", work / f"sq_model_{tag}.o"
    cc = "arm-none-eabi-gcc"
    flags = [*t.cflags, *[opt if f == "-O2" else f for f in OPT], "--specs=picolibc.specs", f"-I{MCU_DIR}",
             f"-I{c_dir}", *prefix_flags(c_dir, prefix, work, defines)]
    srcs = _model_sources(c_dir, prefix)
    _run([cc, *flags, "-c", str(c_dir / f"{prefix}_model.c"), "-o", str(obj)], f"{t.cpu} compile of {c_dir}")
    _run([cc, *flags, "--oslib=semihost", "--crt0=hosted", f"-L{MCU_DIR}", "-T", t.ld,
          str(MCU_DIR / "startup.c"), str(MCU_DIR / "harness_main.c"), *map(str, srcs), "-o", str(elf)],
         f"{t.cpu} build of {c_dir}")
    i, o = model_io_sizes(c_dir, prefix)
    return Firmware(elf, t, c_dir, obj, tuple(defines), i, o, prefix)


def _defines_tag(defines) -> str:
    return "" if not defines else "_" + hashlib.sha1(" ".join(defines).encode()).hexdigest()[:8]


def build_plugin(work) -> Path:
    """Compile mcu/insn_count.c into a QEMU plugin (.so), cached by the source's hash."""
    require_tools("gcc")
    src = MCU_DIR / "insn_count.c"
    h = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    so = Path(work) / f"insn_count_{h}.so"
    if not so.is_file():
        so.parent.mkdir(parents=True, exist_ok=True)
        tmp = so.with_suffix(f".{os.getpid()}.tmp")
        _run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(src)], "QEMU plugin build")
        os.replace(tmp, so)
    return so


# ----------------------------------------------------------------------------- runs

def _check_windows(fw: Firmware, q: np.ndarray) -> np.ndarray:
    q = np.ascontiguousarray(q, dtype=np.int8).reshape(len(q), -1)
    if q.shape[1] != fw.input_size:
        raise SqtoolError(f"windows have {q.shape[1]} int8 values; the model wants SQ_INPUT_SIZE = "
                          f"{fw.input_size}")
    return q


def _read_outputs(path: Path, n: int, k: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise FirmwareError(f"{what}: wrote no output file")
    y = np.fromfile(path, dtype=np.int8)
    if y.size != n * k:
        raise FirmwareError(f"{what}: {y.size} output bytes for {n} windows x {k} outputs")
    return y.reshape(n, k)


def _read_stats(path: Path) -> dict:
    if not path.is_file():
        return {}
    return {k: int(v) for k, v in (line.split("=", 1) for line in path.read_text().split() if "=" in line)}


def symbol_address(elf: Path, name: str) -> int:
    r = _run(["arm-none-eabi-nm", str(elf)], "nm")
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) & ~1
    raise FirmwareError(f"{elf.name}: symbol {name} not found")


def cross_build(srcs: dict, harness: Path, target: str, flags: list[str], work: Path, tag: str,
                link: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """A harness firmware for `target`: each of `srcs` ({part: .c}) compiled on its own with `flags` (its object, for
    section sizes), then linked with startup.c and `harness` (plain C99 + GNU asm: no -pedantic) against picolibc with
    semihosting, unused sections dropped. (ELF path, {part: object})."""
    t = TARGETS[target]
    cc = "arm-none-eabi-gcc"
    flags = [*t.cflags, *flags, "--specs=picolibc.specs"]
    objs = {}
    for part, src in srcs.items():
        obj = work / f"{Path(src).stem}_{tag}.o"
        _run([cc, *flags, "-c", str(src), "-o", str(obj)], f"{t.cpu} compile of {Path(src).name}")
        objs[part] = obj
    elf = work / f"{harness.stem}_{tag}.elf"
    _run([cc, *[f for f in flags if f != "-pedantic"], "--oslib=semihost", "--crt0=hosted", f"-L{MCU_DIR}", "-T",
          t.ld, str(MCU_DIR / "startup.c"), str(harness), *map(str, objs.values()), *link, "-Wl,--gc-sections",
          "-o", str(elf)], f"{t.cpu} link of {harness.name}")
    return elf, objs


def run_harness(elf: Path, target: Target | None, work: Path, timeout: float, what: str,
                count: bool = True) -> tuple[subprocess.CompletedProcess, dict, np.ndarray | None]:
    """A harness in `work` (its files there): `elf` under qemu-system-arm with semihosting and, when `count`, the
    instruction-counting plugin between sq_bench_begin / sq_bench_end; target None: a host executable, uncounted.
    (the process, sq_stats.txt, the counts or None). A hang or a fault is one FirmwareError line; the exit status
    is the caller's to read."""
    if target is None:
        cmd, count = [str(Path(elf).resolve())], False
    else:
        require_tools("qemu-system-arm")
        cmd = ["qemu-system-arm", "-M", target.machine, "-display", "none", "-monitor", "none",
               "-serial", "none", "-semihosting-config", "enable=on,target=native"]
    if count:
        so = build_plugin(elf.parent).resolve()
        b, e = symbol_address(elf, "sq_bench_begin"), symbol_address(elf, "sq_bench_end")
        cmd += ["-plugin", f"{so},begin={b:#x},end={e:#x},out={work / 'counts.txt'}"]
    if target is not None:
        cmd += ["-kernel", str(elf.resolve())]
    try:
        r = subprocess.run(cmd, cwd=work, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FirmwareError(f"{what}: no result within {timeout:.0f} s (hang?); QEMU was killed")
    if r.returncode in FAULTS and target is not None:
        raise FirmwareError(f"{what}: {FAULTS[r.returncode]} (the firmware faulted)")
    counts = None
    if count and r.returncode == 0:
        lines = [ln for ln in (work / "counts.txt").read_text().splitlines() if ln and not ln.startswith("#")]
        counts = np.array([int(x) for x in lines], dtype=np.int64)
    return r, _read_stats(work / "sq_stats.txt"), counts


def run_firmware(fw: Firmware, q_windows: np.ndarray, timeout: float = 120.0, count: bool = True,
                 work=None) -> RunResult:
    """Run the ELF under qemu-system-arm with semihosting; optionally count instructions per window."""
    if fw.target is None:
        raise SqtoolError("run_firmware needs an MCU build; use run_host for the host build")
    require_tools("qemu-system-arm")
    q = _check_windows(fw, q_windows)
    # absolute paths: QEMU runs with cwd=work, and dlopen() does not search the cwd for a relative .so
    work = (Path(work or fw.path.parent) / f"run_{fw.path.stem}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    for f in ("sq_in.bin", "sq_out.bin", "sq_stats.txt", "counts.txt"):
        (work / f).unlink(missing_ok=True)
    q.tofile(work / "sq_in.bin")
    what = f"{fw.target.cpu} firmware {fw.path.name} on qemu {fw.target.machine}"
    r, stats, insns = run_harness(fw.path, fw.target, work, timeout, what, count)
    if r.returncode == 3:
        raise FirmwareError(f"{what}: {fw.prefix}_model_run returned status {stats.get('status', '?')}")
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or [""])[0]
        raise FirmwareError(f"{what}: exit status {r.returncode} {msg}".strip())
    y = _read_outputs(work / "sq_out.bin", len(q), fw.output_size, what)
    if count:
        if len(insns) != len(q):
            raise FirmwareError(f"{what}: the plugin counted {len(insns)} inferences for {len(q)} windows")
    return RunResult(y, insns, stats.get("stack_high_water"), stats.get("status", 0), stats)


def run_host(fw: Firmware, q_windows: np.ndarray, timeout: float = 120.0, valgrind: bool = False) -> RunResult:
    """Run the host build; with valgrind=True under callgrind, counting instructions in <prefix>_model_run."""
    if fw.target is not None:
        raise SqtoolError("run_host needs a host build")
    q = _check_windows(fw, q_windows)
    work = fw.path.parent / f"run_{fw.path.name}{'_cg' if valgrind else ''}"
    work.mkdir(parents=True, exist_ok=True)
    fin, fout, fst, fcg = (work / n for n in ("sq_in.bin", "sq_out.bin", "sq_stats.txt", "callgrind.out"))
    for f in (fout, fst, fcg):
        f.unlink(missing_ok=True)
    q.tofile(fin)
    cmd = [str(fw.path.resolve()), str(fin), str(fout), str(fst)]
    if valgrind:
        require_tools("valgrind")
        cmd = ["valgrind", "--tool=callgrind", f"--toggle-collect={fw.prefix}_model_run",
               f"--callgrind-out-file={fcg}", "--quiet", *cmd]
    what = f"host firmware {fw.path.name}"
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FirmwareError(f"{what}: no result within {timeout:.0f} s (hang?); killed")
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or [""])[0]
        raise FirmwareError(f"{what}: exit status {r.returncode} {msg}".strip())
    y = _read_outputs(fout, len(q), fw.output_size, what)
    insns = None
    if valgrind:
        m = re.search(r"^(?:summary|totals):\s*(\d+)", fcg.read_text(), re.M)
        if not m:
            raise FirmwareError(f"{what}: callgrind wrote no instruction total")
        total = int(m.group(1))
        insns = np.full(len(q), total / max(1, len(q)))
    return RunResult(y, insns, None, 0, _read_stats(fst))


# ----------------------------------------------------------------------------- sizes

def section_sizes(path: Path, tool: str = "arm-none-eabi-size") -> dict[str, int]:
    r = _run([tool, "-A", str(path)], f"{tool} {path.name}")
    out = {}
    for line in r.stdout.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            out[parts[0]] = out.get(parts[0], 0) + int(parts[1])
    return out


def object_sizes(objects: dict) -> dict:
    """{part: {code, const, rw} bytes} of each object file (`section_sizes`): what a part adds to the image."""
    out = {}
    for part, obj in objects.items():
        s = section_sizes(obj)
        out[part] = {"code": sum(v for k, v in s.items() if k.startswith(".text")),
                     "const": sum(v for k, v in s.items() if k.startswith(".rodata")),
                     "rw": sum(v for k, v in s.items() if k.startswith((".bss", ".data")))}
    return out


def image_size(fw: Firmware, stack_high_water: int | None = None) -> dict:
    """Flash = code + read-only data + the .data init image; RAM = .data + .bss (+ TLS) + stack HWM.

    The linker reserves a stack region (.stack) of the board script's size; what counts as RAM use is
    the painted stack's high-water mark, not the reservation.
    """
    if fw.target is None:
        raise SqtoolError("image_size needs an MCU build")
    s = section_sizes(fw.path)
    flash = sum(s.get(k, 0) for k in (".init", ".text", ".rodata", ".data", ".tdata"))
    ram_static = sum(s.get(k, 0) for k in (".data", ".tdata", ".tbss", ".bss"))
    d = {"flash_bytes": flash, "ram_static_bytes": ram_static, "sections": s}
    if stack_high_water is not None:
        d["stack_high_water_bytes"] = int(stack_high_water)
        d["ram_bytes"] = ram_static + int(stack_high_water)
    return d


def model_bytes(fw: Firmware) -> dict:
    """The model's own bytes from its object file: read-only (weights, biases, multipliers) and
    read-write (activation arena and state), plus SQ_ARENA_SIZE from the header."""
    tool = "size" if fw.target is None else "arm-none-eabi-size"
    s = section_sizes(fw.model_obj, tool)
    ro = sum(v for k, v in s.items() if k.startswith(".rodata"))
    rw = sum(v for k, v in s.items() if k.startswith((".bss", ".data")))
    code = sum(v for k, v in s.items() if k.startswith(".text"))
    d = header_defines(fw.c_dir, fw.prefix)
    arena = _eval_int(d["SQ_ARENA_SIZE"], d) if "SQ_ARENA_SIZE" in d else None
    return {"model_code_bytes": code, "model_const_bytes": ro, "model_rw_bytes": rw, "arena_bytes": arena}
