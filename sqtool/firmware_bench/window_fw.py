"""A time-domain export's whole device loop as firmware: its C front end (c/sq_window.c, `sqtool export
--device-fs HZ`) and network (c/sq_model.c) built for the host or a Cortex-M, recordings streamed through under QEMU,
instructions counted per stage, flash, RAM and stack measured.

    fw = build_window_fw(c_dir, "m4", work)          # mcu/window_bench.c + startup.c + sq_window.c + sq_model.c
    r = run_window_fw(fw, [x0, x1, ...])             # (C, N) float device samples per recording
    r.codes, r.outputs, r.index, r.recording, r.flagged   per window (every recording's, in order)
    r.stage_insns {"front_end", "network"}: instructions, r.windows_counted, r.stack_high_water
    r.latency_s (host build): per window, its network call's wall time + the front end's per window

The harness (mcu/window_bench.c) pushes SQ_BENCH_CHUNK samples per counted bracket (the windows they complete
included), brackets each network call and each sq_window_finish call (a short recording's windows all come at its
end). The same instruction-counting plugin as `mcu.run_firmware` (mcu/insn_count.c):
instructions executed, not cycles.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.firmware_bench import mcu
from sqtool.firmware_bench.mcu import MCU_DIR, TARGETS, FirmwareError
from sqtool.firmware_bench.pipeline_fw import C_FLAGS

HARNESS = MCU_DIR / "window_bench.c"
STAGES = ("front_end", "network", "front_end_end")  # stage ids 0, 1, 2 of window_bench.c


@dataclass
class WindowFirmware:
    path: Path
    target: str                                     # "host" | an mcu.TARGETS key
    c_dir: Path
    input_size: int
    output_size: int
    objects: dict = field(default_factory=dict)     # "front_end" / "network" -> object file (sizes)


@dataclass
class WindowRun:
    recording: np.ndarray                           # (W,) which recording each window is of
    index: np.ndarray                               # (W,) the window's index in its recording
    flagged: np.ndarray                             # (W,) its dropout share
    codes: np.ndarray                               # (W, T C) int8 network inputs
    outputs: np.ndarray                             # (W, k) int8 network outputs
    stage_insns: dict = field(default_factory=dict)
    windows_counted: int = 0                        # the windows whose network call was counted
    stack_high_water: int | None = None
    stats: dict = field(default_factory=dict)
    stage_seconds: dict = field(default_factory=dict)   # host build: wall time per stage, s
    latency_s: np.ndarray | None = None             # host build: (W,) the window's network call + the front end's
                                                    # time per window (its pushes and finishes over the windows)


def _sources(c_dir: Path, front_end_only: bool) -> list[Path]:
    srcs = [c_dir / "sq_window.c"] + ([] if front_end_only else [c_dir / "sq_model.c"])
    if not srcs[0].is_file():
        raise SqtoolError(f"{c_dir}: no C front end, sq_window.c (export the model with `sqtool export --target c "
                          "--device-fs HZ`)")
    if not srcs[-1].is_file():
        raise SqtoolError(f"{c_dir}: no sq_model.c (export the model with `sqtool export --target c`)")
    return srcs


def build_window_fw(c_dir, target: str, work, chunk: int = 100, opt: str = "-O2",
                    front_end_only: bool = False) -> WindowFirmware:
    """The harness + front end + network for `target` ("host" or an mcu.TARGETS key), warnings as errors;
    `front_end_only`: without the network (-DSQ_WF_ONLY: its outputs one zero byte per window)."""
    c_dir, work = Path(c_dir).resolve(), Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    srcs = _sources(c_dir, front_end_only)
    if front_end_only:
        from sqtool.export.c_window import front_end_info
        info = front_end_info(c_dir)
        i, o = info["T"] * len(info["channels"]), 1
    else:
        i, o = mcu.model_io_sizes(c_dir)
    common = [*C_FLAGS, opt, "-ffunction-sections", "-fdata-sections", f"-I{MCU_DIR}", f"-I{c_dir}",
              f"-DSQ_BENCH_CHUNK={int(chunk)}", *(["-DSQ_WF_ONLY"] if front_end_only else [])]
    tag = f"{target}_c{chunk}{opt.replace('-', '_')}{'_fe' if front_end_only else ''}"
    if target == "host":
        mcu.require_tools("gcc")
        exe = work / f"win_bench_{tag}"
        mcu._run(["gcc", *common, "-DSQ_HOST", str(MCU_DIR / "startup.c"), str(HARNESS), *map(str, srcs), "-lm",
                  "-o", str(exe)], f"host build of the window loop in {c_dir}")
        return WindowFirmware(exe, target, c_dir, i, o)
    if target not in TARGETS:
        raise SqtoolError(f"unknown MCU target '{target}' (known: host, {', '.join(TARGETS)})")
    mcu.require_tools("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm")
    elf, objs = mcu.cross_build(dict(zip(("front_end", "network"), srcs)), HARNESS, target, common, work, tag,
                                link=("-lm",))
    return WindowFirmware(elf, target, c_dir, i, o, objs)


def run_window_fw(fw: WindowFirmware, streams: list[np.ndarray], timeout: float = 600.0,
                  count: bool = True) -> WindowRun:
    """Every recording's (C, N) device samples through the firmware; its windows and measurements."""
    work = fw.path.parent / f"run_{fw.path.stem}"
    work.mkdir(parents=True, exist_ok=True)
    for f in ("sq_win_in.bin", "sq_win_out.bin", "sq_stats.txt", "sq_stages.bin", "sq_times.bin", "counts.txt"):
        (work / f).unlink(missing_ok=True)
    n_ch = streams[0].shape[0] if streams else 0
    with open(work / "sq_win_in.bin", "wb") as f:
        f.write(np.array([len(streams), n_ch], np.int32).tobytes())
        for x in streams:
            f.write(np.array([x.shape[1]], np.int32).tobytes())
            f.write(np.ascontiguousarray(np.asarray(x, np.float32).T).tobytes())
    t = TARGETS.get(fw.target)                                  # None: the host build
    what = (f"{t.cpu} window-loop firmware {fw.path.name} on qemu {t.machine}" if t else
            f"host window loop {fw.path.name}")
    r, stats, counts = mcu.run_harness(fw.path, t, work.resolve(), timeout, what, count)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or [""])[0]
        raise FirmwareError(f"{what}: exit status {r.returncode} (status {stats.get('status', '?')}) {msg}".strip())
    rec = np.dtype([("recording", "<i4"), ("index", "<i4"), ("flagged", "<f4"), ("codes", "i1", (fw.input_size,)),
                    ("outputs", "i1", (fw.output_size,))])
    got = np.frombuffer((work / "sq_win_out.bin").read_bytes(), rec)
    run = WindowRun(got["recording"].copy(), got["index"].copy(), got["flagged"].copy(), got["codes"].copy(),
                    got["outputs"].copy(), stats=stats,
                    stack_high_water=stats.get("stack_high_water") if fw.target != "host" else None)
    if fw.target == "host":
        tags, secs = np.fromfile(work / "sq_stages.bin", dtype=np.uint8), np.fromfile(work / "sq_times.bin", "<f8")
        if len(tags) != len(secs) or stats.get("stages") != len(tags):
            raise FirmwareError(f"{what}: {len(secs)} times for {len(tags)} stage tags")
        run.stage_seconds = {s: float(secs[tags == i].sum()) for i, s in enumerate(STAGES)}
        net = secs[tags == 1]                                    # one per window, in the windows' order
        front = (run.stage_seconds["front_end"] + run.stage_seconds["front_end_end"]) / max(1, len(net))
        run.latency_s = net + front
    if counts is not None:
        tags = np.fromfile(work / "sq_stages.bin", dtype=np.uint8)
        if len(tags) != len(counts) or stats.get("stages") != len(tags):
            raise FirmwareError(f"{what}: {len(counts)} counts for {len(tags)} stage tags ({stats.get('stages')} "
                                "stage calls)")
        run.stage_insns = {s: int(counts[tags == i].sum()) for i, s in enumerate(STAGES)}
        run.stage_insns["front_end"] += run.stage_insns.pop("front_end_end")    # a recording's end: its last windows
        run.windows_counted = int((tags == 1).sum())
    return run


def window_sizes(fw: WindowFirmware, stack_high_water: int | None = None) -> dict:
    """Flash / RAM of the whole image (mcu.image_size) and of the front end's and the network's objects."""
    if fw.target == "host":
        raise SqtoolError("window_sizes needs an MCU build")
    fwm = mcu.Firmware(fw.path, TARGETS[fw.target], fw.c_dir, fw.objects["network"])
    return {**mcu.image_size(fwm, stack_high_water), "objects": mcu.object_sizes(fw.objects)}


__all__ = ["build_window_fw", "run_window_fw", "window_sizes", "WindowFirmware", "WindowRun", "STAGES"]
