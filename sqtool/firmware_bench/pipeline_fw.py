"""The exported heart-rate PIPELINE as firmware: build for the host / Cortex-M4, M33, M55, run a recording
under QEMU, count instructions per stage, measure flash, RAM and the stack of the pipeline call.

    fw = build_pipeline(c_dir, "m4", work, staged=False)   # mcu/pipeline_bench.c + startup.c + c_dir/*.c
    r = run_pipeline(fw, x16, gap)                          # qemu-system-arm + semihosting + insn_count
    r.results   dict of (W,) int arrays (sqtool.export.pipeline.RESULT_KEYS), bit-comparable with PipelineRef
    r.counts    (pushes,) instructions per sq_pipeline_push call (staged=False)
    r.stage_insns {"frontend_stream", "frontend_window", "frontend", "network", "decoder"} total instructions
                (staged=True; frontend = stream (per sample) + window (spectra))
    r.stack_high_water   deepest stack of one sq_pipeline_push, from the caller's SP (bytes)

The harness reads its recording through semihosting in chunks of `chunk` samples (a compile-time
constant, SQ_BENCH_CHUNK). The same plugin as `mcu.run_firmware` (mcu/insn_count.c) counts the
instructions between sq_bench_begin/sq_bench_end: the unstaged build brackets each whole push call, the
staged build (-DSQ_PL_BENCH) each stage call inside the pipeline, tagged by the harness in sq_stages.bin.
Instruction counts are instructions executed, not cycles (QEMU models no timing). An export made with
`--prefix hr2`: build_pipeline(..., prefix="hr2") (its hr2_*.c, the harness's sq_ names mapped, `mcu.prefix_flags`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.firmware_bench import mcu
from sqtool.firmware_bench.mcu import MCU_DIR, TARGETS, FirmwareError

STAGES = ("frontend_stream", "network", "decoder", "frontend_window")    # stage ids 0..3 of sq_pipeline.c
HARNESS = MCU_DIR / "pipeline_bench.c"
C_FLAGS = ("-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror")


@dataclass
class PipelineFirmware:
    path: Path
    target: str                 # "host" | "m4" | "m33" | "m55"
    c_dir: Path
    staged: bool
    chunk: int
    objects: dict = field(default_factory=dict)     # stage -> object file (sizes)


@dataclass
class PipelineRun:
    results: dict
    counts: np.ndarray | None = None                # per push (unstaged) or per stage call (staged)
    stage_of: np.ndarray | None = None              # (len(counts),) stage index per count (staged)
    stage_insns: dict = field(default_factory=dict)
    stack_high_water: int | None = None
    stats: dict = field(default_factory=dict)


def pipeline_sources(c_dir: Path, prefix: str = "sq") -> list[Path]:
    """The export's C pipeline under its prefix: <prefix>_{frontend,model,decoder,pipeline}.c; one line if any is
    missing."""
    names = [f"{prefix}_{s}.c" for s in ("frontend", "model", "decoder", "pipeline")]
    missing = [n for n in names if not (c_dir / n).is_file()]
    if missing:
        raise SqtoolError(f"{c_dir}: missing {', '.join(missing)} (export a spectral model with "
                          "`sqtool export --target c`)")
    return [c_dir / n for n in names]


def build_pipeline(c_dir, target: str, work, staged: bool = False, chunk: int = 125, opt: str = "-O2",
                   defines: tuple[str, ...] = (), prefix: str = "sq") -> PipelineFirmware:
    """The bench harness + pipeline for `target` ("host" or an mcu.TARGETS key), warnings as errors; `prefix`: the
    export's C prefix (`export --prefix`)."""
    c_dir, work = Path(c_dir).resolve(), Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if chunk < 1:
        raise SqtoolError(f"pipeline bench: chunk must be >= 1 sample, got {chunk}")
    srcs = pipeline_sources(c_dir, prefix)
    defs = mcu.prefix_flags(c_dir, prefix, work, (f"SQ_BENCH_CHUNK={chunk}", *(["SQ_PL_BENCH"] if staged else []),
                                                  *defines))
    tag = f"{target}_{'staged' if staged else 'whole'}_c{chunk}{opt.replace('-', '_')}"
    common = [*C_FLAGS, opt, "-ffunction-sections", "-fdata-sections", f"-I{MCU_DIR}", f"-I{c_dir}", *defs]
    objs = {}
    if target == "host":
        mcu.require_tools("gcc")
        exe = work / f"pl_bench_{tag}"
        mcu._run(["gcc", *common, "-DSQ_HOST", str(MCU_DIR / "startup.c"), str(HARNESS), *map(str, srcs),
                  "-o", str(exe)], f"host build of the pipeline in {c_dir}")
        return PipelineFirmware(exe, target, c_dir, staged, chunk)
    if target not in TARGETS:
        raise SqtoolError(f"unknown MCU target '{target}' (known: host, {', '.join(TARGETS)})")
    mcu.require_tools("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm")
    elf, objs = mcu.cross_build(dict(zip(("frontend", "network", "decoder", "pipeline"), srcs)), HARNESS, target,
                                common, work, tag)
    return PipelineFirmware(elf, target, c_dir, staged, chunk, objs)


def _write_recording(work: Path, x16, gap) -> None:
    from sqtool.export.pipeline import write_recording
    write_recording(work / "sq_rec.bin", x16, gap)


def run_pipeline(fw: PipelineFirmware, x16: np.ndarray, gap=None, timeout: float = 300.0,
                 count: bool = True) -> PipelineRun:
    """Run a recording (int16 (C, N), gap (N,) or None) through the firmware; results + measurements."""
    from sqtool.export.pipeline import parse_results
    work = fw.path.parent / f"run_{fw.path.stem}"
    work.mkdir(parents=True, exist_ok=True)
    for f in ("sq_rec.bin", "sq_results.txt", "sq_stats.txt", "sq_stages.bin", "counts.txt"):
        (work / f).unlink(missing_ok=True)
    _write_recording(work, x16, gap)
    t = TARGETS.get(fw.target)                                  # None: the host build
    what = f"{t.cpu} pipeline firmware {fw.path.name} on qemu {t.machine}" if t else f"host pipeline {fw.path.name}"
    r, stats, counts = mcu.run_harness(fw.path, t, work.resolve(), timeout, what, count)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or [""])[0]
        raise FirmwareError(f"{what}: exit status {r.returncode} (pipeline status {stats.get('status', '?')}) "
                            f"{msg}".strip())
    if not (work / "sq_results.txt").is_file():
        raise FirmwareError(f"{what}: wrote no sq_results.txt")
    res = parse_results((work / "sq_results.txt").read_text())
    run = PipelineRun(res, stats=stats, stack_high_water=stats.get("stack_high_water") if fw.target != "host"
                      else None)
    if counts is not None:
        run.counts = counts
        if fw.staged:
            tags = np.fromfile(work / "sq_stages.bin", dtype=np.uint8)
            if len(tags) != len(run.counts) or stats.get("stages") != len(tags):
                raise FirmwareError(f"{what}: {len(run.counts)} counts for {len(tags)} stage tags "
                                    f"({stats.get('stages')} stage calls)")
            run.stage_of = tags
            run.stage_insns = {s: int(run.counts[tags == i].sum()) for i, s in enumerate(STAGES)}
            run.stage_insns["frontend"] = run.stage_insns["frontend_stream"] + run.stage_insns["frontend_window"]
        elif len(run.counts) != stats.get("pushes"):
            raise FirmwareError(f"{what}: {len(run.counts)} counts for {stats.get('pushes')} pushes")
    return run


def pipeline_sizes(fw: PipelineFirmware, stack_high_water: int | None = None) -> dict:
    """Flash / RAM of the whole image (mcu.image_size) and of each pipeline object (code, const, rw)."""
    if fw.target == "host":
        raise SqtoolError("pipeline_sizes needs an MCU build")
    fwm = mcu.Firmware(fw.path, TARGETS[fw.target], fw.c_dir, fw.objects.get("network", fw.path))
    return {**mcu.image_size(fwm, stack_high_water), "objects": mcu.object_sizes(fw.objects)}


__all__ = ["build_pipeline", "pipeline_sources", "run_pipeline", "pipeline_sizes", "PipelineFirmware", "PipelineRun",
           "STAGES"]
