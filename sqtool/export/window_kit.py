"""The integration kit of a time-domain model's device loop, written beside its C front end by `sqtool export --target
c --device-fs HZ` (c/sq_window.{h,c} + tables, `export.c_window`; c/sq_model.{h,c}, `export.c`).

    info = write_window_kit(out_dir, md, fs_in)     # example/, Makefile, test_vectors/; expected.txt from the host
    chk = check_window_kit(out_dir)                 # `make check` in a scratch build folder: {"ok", "n", "error"}

Without make or a host C compiler on the exporting machine the kit is written without expected.txt (said in
vectors.json and the export report).

Layout of out_dir:

    example/main.c               a recording file through sq_window_push + sq_model_run, one line per window
    example/selftest.c           sq_window_selftest(): the test vectors compiled in, no stdio (a board without files)
    example/board/               startup.c, sq_bench.h, the linker scripts and boards.mk of the boards QEMU emulates
                                 (MPS2 AN386 Cortex-M4, AN505 Cortex-M33, MPS3 AN547 Cortex-M55): the project's own
    Makefile                     host, check, selftest, mps2 / check-mps2 (Cortex-M4F, arm-none-eabi-gcc + picolibc,
                                 QEMU), check-an505 (M33), check-an547 (M55); selftest-an386 / -an505 / -an547 (the
                                 self-test built for the board, its exit status QEMU's)
    CMakeLists.txt               the same with CMake (ctest: parity, selftest; -DSQ_MPS2=ON [-DSQ_BOARD=an505|an547]),
                                 or add_subdirectory() in your firmware for the library sq_window_loop alone
    test_vectors/recording.bin   SYNTHETIC device samples, no subject data: int32 C, int32 N, N x C float32, NaN =
                                 a dropout (a pulse, a breathing wander, wrist motion on the accelerometer axes, noise,
                                 a large ADC level, a dropout, a saturated stretch, a silent one)
    test_vectors/expected.txt    example/main.c's output on it, built on the host (gcc -std=c99 -O2)
    test_vectors/vectors.json    what the recording holds
    test_vectors/check.cmake     ctest's comparison of the example's lines with expected.txt
    test_vectors/sq_wvectors.h   the recording (int16 ADC counts, its dropout a sample range) and expected.txt as
                                 C arrays, for example/selftest.c

The front end is float32. In ISO C with -ffp-contract=off (no fused multiply-add, no reordering: the kit's Makefile
and CMakeLists.txt pass it after the user's CFLAGS) its operations round the same on every IEEE-754 target, so a
port's `make check` must reproduce expected.txt exactly: the project's Cortex-M4, M33 and M55 builds do (sqtool
bench: mcu_m4_window against c_window). Whether the host's codes are sqtool's is what `sqtool bench --runtime
c_window` measures against sqtool's stream (and tests/export/test_window_kit.py on these vectors: never more than one
code apart).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, atomic_write_bytes, atomic_write_text
from sqtool.core.io import dumps_json
from sqtool.export.c_tracker import remove_tracker
from sqtool.export.kit import BOARD_FILES, TEMPLATES, _fill, write_board

KIT_FILES = ("example/main.c", "example/selftest.c", *(f"example/board/{f}" for f in BOARD_FILES), "Makefile",
             "CMakeLists.txt", "test_vectors/recording.bin", "test_vectors/expected.txt", "test_vectors/vectors.json",
             "test_vectors/check.cmake", "test_vectors/sq_wvectors.h")
EXPECTED_FILES = ("test_vectors/expected.txt", "test_vectors/sq_wvectors.h")   # need the host build
ACC = ("acc_x", "acc_y", "acc_z")


def synthetic_device_recording(md: dict, fs_in: float, seed: int = 0) -> tuple[np.ndarray, dict]:
    """(C, N) float32 device samples for the model's channels, no subject data, and their description: long enough
    for the front end's context and several windows. PPG-like channels: a pulse of drifting rate (70 -> 130 BPM)
    with a harmonic and a 0.25 Hz breathing wander on an ADC level of 2000; accelerometer axes: arm motion at 78
    per minute on gravity; every channel: noise, a dropout (NaN) at 20-24 % of the recording, a saturated stretch
    (+-32767, alternating) at 45-47 % and a silent one (0) at 70-73 %."""
    from sqtool.data.preprocess import zero_phase_context
    band = tuple(md["band"]) if md.get("band") else None
    pre, post = zero_phase_context(band)
    seconds = max(60.0, 4 * float(md["window_s"]) + pre + post)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs_in))
    t = np.arange(n) / fs_in
    ph = 2 * np.pi * np.cumsum((70 + 60 * t / seconds) / 60.0) / fs_in
    rows = []
    for k, ch in enumerate(md["channels"]):
        if ch in ACC:
            x = 1200 * np.sin(2 * np.pi * 1.3 * t + k) + 4096 * (ch == "acc_z")
        else:
            x = 2000 + 300 * np.sin(ph + k) + 90 * np.sin(2 * ph + 0.6 + k) + 80 * np.sin(2 * np.pi * 0.25 * t)
        rows.append(x + 10 * rng.standard_normal(n))
    x = np.round(np.stack(rows))                                            # ADC counts: int16 in the C vectors
    s = lambda f: int(round(f * n))                                         # noqa: E731
    x[:, s(0.20):s(0.24)] = np.nan
    x[:, s(0.45):s(0.47)] = np.where(np.arange(s(0.47) - s(0.45)) % 2, 32767.0, -32768.0)
    x[:, s(0.70):s(0.73)] = 0.0
    desc = {"synthetic": True, "seconds": seconds, "fs_in_hz": fs_in, "channels": list(md["channels"]),
            "content": "pulse 70 -> 130 BPM with a harmonic and a 0.25 Hz wander on an ADC level of 2000 (non-acc "
                       "channels), arm motion at 78 /min on gravity (acc axes), noise; NaN (a dropout) at 20-24 % "
                       "of the recording, saturated +-32767 at 45-47 %, zeros at 70-73 %", "seed": seed,
            "layout": "int32 C, int32 N, then N x C float32, sample-major, little-endian"}
    return x.astype(np.float32), desc


def recording_bytes(x: np.ndarray) -> bytes:
    """recording.bin's bytes for (C, N) float32 device samples."""
    x = np.asarray(x, np.float32)
    return np.array(x.shape, "<i4").tobytes() + np.ascontiguousarray(x.T).astype("<f4").tobytes()


def write_window_kit(out_dir, md: dict, fs_in: float, make: str = "make") -> dict:
    """The kit (module docstring) into out_dir, whose c/ holds the front end and the network; expected.txt is the
    host build's output on the synthetic recording. Returns {"files", "windows", "vectors"}; the host build failing
    is one SqtoolError line."""
    out = Path(out_dir)
    for f in ("sq_window.c", "sq_model.c"):
        if not (out / "c" / f).is_file():
            raise SqtoolError(f"{out / 'c'}: no {f}: the kit needs the C front end and the network")
    write_board(out / "example" / "board")
    (out / "test_vectors").mkdir(exist_ok=True)
    tracker = (out / "c" / "sq_tracker.c").is_file()          # a heart-rate model's: its tracked HR on each line
    atomic_write_text(out / "example" / "main.c", _fill((TEMPLATES / "wkit_main.c").read_text(),
                                                        {"TRACKER": int(tracker)}))
    atomic_write_text(out / "example" / "selftest.c", (TEMPLATES / "wkit_selftest.c").read_text())
    for tmpl, name in (("wkit_Makefile", "Makefile"), ("wkit_CMakeLists.txt", "CMakeLists.txt"),
                       ("kit_check.cmake", "test_vectors/check.cmake")):           # shared with the HR kit
        atomic_write_text(out / name, _fill((TEMPLATES / tmpl).read_text(), {"FS_IN": f"{fs_in:g}"}))
    x, desc = synthetic_device_recording(md, fs_in)
    atomic_write_bytes(out / "test_vectors" / "recording.bin", recording_bytes(x))
    files = [out / f for f in KIT_FILES]
    missing = [t for t in (make, os.environ.get("CC", "cc")) if shutil.which(t) is None]
    if missing:                                  # no host toolchain here: the kit without its expected results
        for f in EXPECTED_FILES:
            (out / f).unlink(missing_ok=True)
            files.remove(out / f)
        desc.update(windows=None, expected=f"not written: no {' or '.join(missing)} on the exporting machine")
    else:
        lines = run_example(out, make)
        atomic_write_text(out / "test_vectors" / "expected.txt", "".join(ln + "\n" for ln in lines))
        header, flash = vectors_header(x, parse_lines(lines))
        atomic_write_text(out / "test_vectors" / "sq_wvectors.h", header)
        desc["selftest_flash_bytes"] = flash
        desc.update(windows=len(lines), expected="example/main.c built on the host (cc -std=c99 -O2): per window "
                    "index, dropout share in permille, FNV-1a of the int8 input codes, the int8 output codes" + (
                        "; after ' | ', the tracked heart rate in milli-BPM (c/sq_tracker.c; -1 before its first "
                        "accepted window)" if tracker else ""))
    atomic_write_text(out / "test_vectors" / "vectors.json", dumps_json(desc))
    return {"files": files, "windows": desc["windows"], "vectors": desc}


def remove_window_kit(out_dir) -> None:
    """The C front end and its kit out of an export folder (a re-export with --force and without --device-fs):
    left behind, they would run an older model's preprocessing."""
    out = Path(out_dir)
    for f in (*KIT_FILES, "c/sq_window.c", "c/sq_window.h", "c/sq_window_tables.h"):
        (out / f).unlink(missing_ok=True)
    remove_tracker(out / "c")
    for d in ("example/board", "example", "test_vectors"):
        if (out / d).is_dir() and not any((out / d).iterdir()):
            (out / d).rmdir()


def vectors_header(x: np.ndarray, res: dict) -> tuple[str, int]:
    """test_vectors/sq_wvectors.h for (C, N) integer-valued float32 samples with one NaN range (the dropout) and
    the expected lines (`parse_lines`); and the flash its arrays take."""
    gap = ~np.isfinite(x).all(axis=0)
    where = np.flatnonzero(gap)
    if len(where) and not np.array_equal(where, np.arange(where[0], where[-1] + 1)):
        raise SqtoolError("the kit's recording must hold one dropout range for its C vectors")
    a, b = (int(where[0]), int(where[-1]) + 1) if len(where) else (0, 0)
    x16 = np.where(np.isfinite(x), x, 0.0)
    if np.any(x16 != np.round(x16)) or x16.min() < -32768 or x16.max() > 32767:
        raise SqtoolError("the kit's recording must be int16 ADC counts for its C vectors")
    x16 = x16.astype(np.int16).T.ravel()                                   # sample-major
    lines = np.column_stack([res["index"], res["flagged_permille"], res["outputs"]]).astype(np.int64)

    def rows(values, per_line, suffix=""):
        return ",\n".join("    " + ", ".join(f"{int(v)}{suffix}" for v in values[i:i + per_line])
                          for i in range(0, len(values), per_line))
    text = "\n".join([
        "/* test_vectors/sq_wvectors.h - the kit's test recording and expected results as C arrays, for",
        " * example/selftest.c (generated by sqtool export; synthetic signal, no subject data). */",
        "#ifndef SQ_WVECTORS_H", "#define SQ_WVECTORS_H", "#include <stdint.h>", "",
        f"#define SQ_WVEC_NCH {x.shape[0]}", f"#define SQ_WVEC_N {x.shape[1]}",
        f"#define SQ_WVEC_GAP_FROM {a}    /* samples [FROM, TO) are a dropout (NaN) */", f"#define SQ_WVEC_GAP_TO {b}",
        f"#define SQ_WVEC_N_WINDOWS {len(lines)}", f"#define SQ_WVEC_N_OUT {res['outputs'].shape[1]}", "",
        f"static const int16_t sq_wvec_recording[{len(x16)}] = {{", rows(x16, 16), "};", "",
        "/* per window: index, dropout share in permille, the int8 output codes */",
        f"static const int32_t sq_wvec_lines[{len(lines)}][{lines.shape[1]}] = {{",
        ",\n".join("    {" + ", ".join(str(int(v)) for v in r) + "}" for r in lines), "};", "",
        "/* per window: FNV-1a of its int8 input codes */",
        f"static const uint32_t sq_wvec_fnv[{len(lines)}] = {{", rows(np.asarray(res["fnv"]), 6, "u"), "};", "",
        *tracked_lines(res.get("tracked_mbpm"), rows), "#endif", ""])
    n_trk = 0 if res.get("tracked_mbpm") is None else len(res["tracked_mbpm"])
    return text, int(2 * len(x16) + 4 * lines.size + 4 * len(lines) + 4 * n_trk)


def tracked_lines(tracked, rows) -> list[str]:
    """sq_wvectors.h's SQ_WVEC_TRACKED and, for a heart-rate model, each window's tracked HR in milli-BPM."""
    if tracked is None:
        return ["#define SQ_WVEC_TRACKED 0", ""]
    return ["#define SQ_WVEC_TRACKED 1",
            "/* per window: c/sq_tracker.c's tracked heart rate, milli-BPM (-1: none yet) */",
            f"static const int32_t sq_wvec_tracked[{len(tracked)}] = {{", rows(np.asarray(tracked), 10), "};", ""]


def run_example(out: Path, make: str = "make", codes: bool = False) -> list[str]:
    """The kit's host example (built with its Makefile in a scratch folder) on test_vectors/recording.bin: its
    output lines (with `codes`, each window's line followed by its codes' line)."""
    with tempfile.TemporaryDirectory() as build:
        try:
            r = subprocess.run([make, "-s", "-C", str(out), f"BUILD={build}", "host"], capture_output=True,
                               text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as e:
            raise SqtoolError(f"{out}: the kit's host build did not run ({type(e).__name__}: {e})")
        if r.returncode != 0:
            msg = next((ln for ln in (r.stderr or r.stdout).splitlines() if "error" in ln.lower()), r.stderr[-200:])
            raise SqtoolError(f"{out}: the kit's host build failed: {msg.strip()}")
        p = subprocess.run([str(Path(build) / "host" / "example"), str(out / "test_vectors" / "recording.bin"),
                            *(["codes"] if codes else [])], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise SqtoolError(f"{out}: the kit's example exited {p.returncode}: {p.stderr.strip()[:200]}")
    return p.stdout.splitlines()


def parse_lines(lines: list[str]) -> dict:
    """example/main.c's window lines (codes lines, when there, apart) -> index, flagged_permille, fnv (W,) and
    outputs (W, K) int arrays, codes (W, T C) int8 or None, tracked_mbpm (W,) (a heart-rate model's tracked HR in
    milli-BPM, -1 before its first; the field after " | ") or None."""
    win = [ln.split(" | ") for ln in lines if not ln.startswith("codes")]
    codes = [ln.split()[1:] for ln in lines if ln.startswith("codes")]
    a = np.array([w[0].split() for w in win], dtype=np.int64).reshape(len(win), -1)
    tracked = np.array([int(w[1]) for w in win], dtype=np.int64) if win and len(win[0]) > 1 else None
    return {"index": a[:, 0], "flagged_permille": a[:, 1], "fnv": a[:, 2], "outputs": a[:, 3:],
            "codes": np.array(codes, dtype=np.int64).astype(np.int8) if codes else None, "tracked_mbpm": tracked}


def check_window_kit(out_dir, make: str = "make") -> dict:
    """`make check` of the kit in a scratch build folder: {"ok", "n" (windows in expected.txt), "error"}."""
    out = Path(out_dir)
    n = len((out / "test_vectors" / "expected.txt").read_text().splitlines())
    with tempfile.TemporaryDirectory() as build:
        try:
            r = subprocess.run([make, "-s", "-C", str(out), f"BUILD={build}", "check"], capture_output=True,
                               text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as e:
            return {"ok": False, "n": n, "error": f"make failed to run ({type(e).__name__})"}
    said = (r.stdout + r.stderr).strip().splitlines()
    return {"ok": r.returncode == 0, "n": n, "error": None if r.returncode == 0 else (said[-1] if said else "failed")}


__all__ = ["write_window_kit", "check_window_kit", "run_example", "parse_lines", "synthetic_device_recording",
           "recording_bytes", "vectors_header", "remove_window_kit", "KIT_FILES"]
