"""The kit README's "Other cores" table: the whole pipeline at -Os on the Cortex-M4 (DSP path) and the Cortex-M0+
(portable C path), instructions under QEMU, flash, RAM and stack.

    nice .venv/bin/python benchmarks/kit_other_cores.py --kit EXPORT_FOLDER     # ~3 min on 2 cores

EXPORT_FOLDER: a `sqtool export --target c` of the demo model (`spec_student_s`, 2 PPG sensors + accelerometer,
125 Hz). Per core and build (M4; M0+; M0+ with -DSQ_WEIGHTS_INT8=1): the bench harness of `firmware_bench.
pipeline_fw` (the one benchmarks/firmware_pipeline.py runs, there at -O2 with pushes of 1 s) built at -Os with
arm-none-eabi-gcc + picolibc (-ffunction-sections -fdata-sections -Wl,--gc-sections) and run under QEMU on the
kit's test_vectors/recording.bin in pushes of 25 samples, its results compared with expected.txt bit for bit.
M0+ code runs on QEMU's mps2-an385 (a Cortex-M3 board: QEMU 7.2 has no M0+ one; the code is ARMv6-M only).

- instructions per window-completing push: the mean over the pushes that complete a window (the counts are
  instructions executed, QEMU's TCG plugin, not cycles);
- code of a pipeline-only image: what the pipeline adds to a firmware's flash (code, const data, .data's image):
  `firmware_bench/mcu/pipeline_image.c` (one init and one push, no stdio) linked with the pipeline, less the same
  image without it (picolibc's start-up, `image_flash_bytes` - `code_bytes` in the JSON); the runtime helpers only
  the pipeline calls (64-bit divide, ...) count. The four pipeline objects' own .text + .rodata: `objects_bytes`;
- RAM: sizeof(sq_pipeline_t) + the network's arena (SQ_ARENA_SIZE), on the target;
- stack of a push: the painted stack's high-water mark of one sq_pipeline_push call.

Writes benchmarks/results/kit_other_cores.json and .md.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqtool.core import SqtoolError, atomic_write_text, write_metrics  # noqa: E402

CHUNK = 25
BUILDS = (("Cortex-M4 (DSP path)", "m4", ()), ("Cortex-M0+ (portable)", "m0plus", ()),
          ("Cortex-M0+ -DSQ_WEIGHTS_INT8=1", "m0plus", ("SQ_WEIGHTS_INT8=1",)))


def pipeline_image(c_dir: Path, target: str, defines: tuple, work: Path) -> dict:
    """What the pipeline adds to a firmware's flash at -Os (`mcu/pipeline_image.c`: init + push, no stdio, less the
    same image without the pipeline), and sizeof(sq_pipeline_t) on the target (the size nm gives its static state)."""
    from sqtool.firmware_bench import mcu
    from sqtool.firmware_bench import pipeline_fw as PF
    srcs = dict(zip(("frontend", "network", "decoder", "pipeline"), PF.pipeline_sources(c_dir)))
    flags = [*PF.C_FLAGS, "-Os", "-ffunction-sections", "-fdata-sections", f"-I{mcu.MCU_DIR}", f"-I{c_dir}",
             *[f"-D{d}" for d in defines]]
    tag = f"image_{target}{'_int8' if defines else ''}"
    flash = {}
    for empty in (False, True):
        elf, _ = mcu.cross_build(srcs, mcu.MCU_DIR / "pipeline_image.c", target,
                                 [*flags, *(["-DSQ_IMAGE_EMPTY"] if empty else [])], work, tag + "_empty" * empty)
        flash[empty] = mcu.image_size(mcu.Firmware(elf, mcu.TARGETS[target], c_dir, elf))["flash_bytes"]
        if not empty:
            nm = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], check=True, capture_output=True, text=True).stdout
            state = next(int(ln.split()[1], 16) for ln in nm.splitlines() if ln.endswith(" sq_image_state"))
    return {"flash_bytes": flash[False] - flash[True], "image_flash_bytes": flash[False],
            "empty_flash_bytes": flash[True], "state_bytes": state}


def measure(kit: Path, name: str, target: str, defines: tuple, work: Path) -> dict:
    import json

    from sqtool.export.pipeline import RESULT_KEYS, parse_results
    from sqtool.firmware_bench import mcu
    from sqtool.firmware_bench import pipeline_fw as PF
    c_dir = kit / "c"
    fw = PF.build_pipeline(c_dir, target, work / f"{target}{'_int8' if defines else ''}", chunk=CHUNK, opt="-Os",
                           defines=defines)
    n = json.loads((kit / "test_vectors" / "vectors.json").read_text())["n_samples"]
    frames = np.fromfile(kit / "test_vectors" / "recording.bin", "<i2").reshape(n, -1)   # (N, C_in + 1 gap flag)
    x16, gap = frames[:, :-1].T.copy(), frames[:, -1] != 0
    run = PF.run_pipeline(fw, x16, gap)
    want = parse_results((kit / "test_vectors" / "expected.txt").read_text())
    exact = all(np.array_equal(run.results[k], want[k]) for k in RESULT_KEYS)
    n_win = len(want["index"])
    counts = np.sort(run.counts)[::-1]
    window_pushes = counts[:n_win]                       # a window's network run dwarfs a push of 25 samples
    if n_win and window_pushes[-1] < 10 * np.median(run.counts):
        raise SqtoolError(f"{name}: cannot tell the {n_win} window-completing pushes from the others")
    objs = mcu.object_sizes(fw.objects)
    d = mcu.header_defines(c_dir)
    arena = mcu._eval_int(d["SQ_ARENA_SIZE"], d)
    image = pipeline_image(c_dir, target, defines, work)
    state = image["state_bytes"]
    return {"build": name, "target": target, "defines": list(defines), "bit_exact": bool(exact), "windows": n_win,
            "insns_per_window_push": float(window_pushes.mean()),
            "insns_per_other_push": float(np.median(counts[n_win:])) if len(counts) > n_win else None,
            "code_bytes": image["flash_bytes"], "image_flash_bytes": image["image_flash_bytes"], "objects_bytes": int(sum(o["code"] + o["const"] for o in objs.values())),
            "objects": objs,
            "state_bytes": state, "arena_bytes": arena, "ram_bytes": state + arena,
            "stack_bytes": run.stack_high_water, "bench_image": PF.pipeline_sizes(fw, run.stack_high_water)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kit", required=True, help="a `sqtool export --target c` folder (prefix sq)")
    ap.add_argument("--label", default=None, help="how the report names the kit (default: its path)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    ap.add_argument("--name", default="kit_other_cores", help="output file stem")
    args = ap.parse_args(argv)
    import tempfile

    from sqtool.firmware_bench import mcu
    from sqtool.core.runs import git_sha
    t0 = time.time()
    kit = Path(args.kit).resolve()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, target, defines in BUILDS:
            rows.append(measure(kit, name, target, defines, Path(tmp)))
            r = rows[-1]
            print(f"kit_other_cores: {name}: {r['insns_per_window_push'] / 1e6:.2f} M, {r['code_bytes'] / 1000:.1f} KB, "
                  f"{r['ram_bytes'] / 1000:.1f} KB, {r['stack_bytes']} B, bit-exact {r['bit_exact']}", flush=True)
    res = {"kit": args.label or str(kit), "chunk": CHUNK, "opt": "-Os", "rows": rows, "tools": mcu.tool_versions(),
           "git_sha": git_sha(), "date": time.strftime("%Y-%m-%d"), "wall_s": round(time.time() - t0, 1)}
    out = Path(args.out)
    write_metrics(out, res, name=f"{args.name}.json")
    atomic_write_text(out / f"{args.name}.md", report(res))
    print(f"kit_other_cores -> {out / (args.name + '.md')}")
    return 0


def report(res: dict) -> str:
    lines = ["# The kit's pipeline on other cores at -Os (the kit README's \"Other cores\" table)", "",
             f"Kit: {res['kit']}; sqtool {res['git_sha']}, {res['date']}; tools {res['tools']}. Pushes of "
             f"{res['chunk']} samples over test_vectors/recording.bin; instructions under QEMU (not cycles).", "",
             "| -Os | instructions per window-completing push | code of a pipeline-only image | RAM (state + arena) | "
             "stack of a push | bit-exact |", "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['build']} | {r['insns_per_window_push'] / 1e6:.2f} M | {r['code_bytes'] / 1000:.1f} KB | "
                     f"{r['ram_bytes'] / 1000:.1f} KB ({r['state_bytes']} + {r['arena_bytes']} B) | "
                     f"{r['stack_bytes']} B | {'yes' if r['bit_exact'] else 'NO'} |")
    lines += ["", f"Wall time {res['wall_s']:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
