"""C firmware kernels on Cortex-M: instructions per inference, flash, RAM and bit-exactness, before/after.

The int8 student's generated C (`sqtool export --target c`) is built as firmware with the
firmware_bench tooling (arm-none-eabi-gcc -O2 + picolibc, QEMU mps2-an386 / mps2-an505, TCG plugin
counting INSTRUCTIONS between two markers: not cycles) and run on the held-out windows of a compress
run. Variants, all from the same integer graph:

    after   the current generator (packed int16 weight pairs, folded zero points, SXTB16/SMLAD on
            DSP cores), double rounding (default) and single rounding, on M4 and M33;
    after, -DSQ_NO_DSP   the same source forced onto its portable C path on the M4;
    before  an older generated C directory (`--before-c`, e.g. the demo export of the plain-loop
            generator), if given.

Every firmware's outputs are compared with TFLite Micro (double rounding: must be 100 % of windows)
and with the numpy single-rounding reference (single rounding: 100 %).

    nice .venv/bin/python benchmarks/c_kernels_m4.py --run /tmp/demo1/quantize --before-c /tmp/demo1/export/c
Writes benchmarks/results/c_kernels_m4.{json,md}.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
BUDGET = {"insns": 1_000_000, "flash": 64 * 1024, "ram": 32 * 1024}


def load_graph(run: Path):
    import torch
    torch.set_num_threads(1)
    from sqtool.export.cli import _build_model
    from sqtool.export.intgraph import extract_int_graph
    from sqtool.export.metadata import build_metadata
    from sqtool.core.checkpoint import file_sha256, load_checkpoint
    ckpt = load_checkpoint(run / "model.pt")
    graph = extract_int_graph(_build_model(ckpt))
    return graph, build_metadata(ckpt, file_sha256(run / "model.pt"), graph)


def measure(c_dir: Path, target: str, defines: tuple, xq: np.ndarray, want: np.ndarray, work: Path) -> dict:
    from sqtool.firmware_bench import mcu
    fw = mcu.build_firmware(c_dir, target, work, defines=defines)
    r = mcu.run_firmware(fw, xq.reshape(len(xq), -1))
    size = mcu.image_size(fw, r.stack_high_water)
    mb = mcu.model_bytes(fw)
    exact = np.all(r.outputs == want, axis=1)
    return {"target": target, "defines": list(defines),
            "insns_per_inference": {"min": int(r.insns_per_window.min()), "max": int(r.insns_per_window.max()),
                                    "mean": float(r.insns_per_window.mean())},
            "flash_bytes": size["flash_bytes"], "ram_bytes": size["ram_bytes"],
            "ram_static_bytes": size["ram_static_bytes"], "stack_high_water_bytes": size["stack_high_water_bytes"],
            "model_code_bytes": mb["model_code_bytes"], "model_const_bytes": mb["model_const_bytes"],
            "arena_bytes": mb["arena_bytes"], "exact_windows_pct": 100.0 * float(exact.mean()),
            "n_windows": int(len(xq))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="compress run dir (model.pt student_int8, heldout.npz)")
    ap.add_argument("--before-c", default=None, help="an older generated c/ dir of the same model, for before/after")
    ap.add_argument("--max-windows", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "c_kernels_m4"))
    args = ap.parse_args()
    from sqtool.export import reference as R
    from sqtool.export import tflite as TF
    from sqtool.export.c import const_data_bytes, generate_c
    from sqtool.export.intgraph import quantize_input
    from sqtool.firmware_bench import mcu

    run = Path(args.run)
    graph, md = load_graph(run)
    x = np.load(run / "heldout.npz")["x"]
    if args.max_windows:
        x = x[:args.max_windows]
    xq = quantize_input(graph, x)                                              # (N, T, C) int8
    rows, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        TF.write_int8(graph, md, td / "model_int8.tflite")
        tflm = TF.run_tflm(td / "model_int8.tflite", xq[:, None]).reshape(len(xq), -1)
        single = R.run(graph, xq, "single")[graph.layers[-1].name].reshape(len(xq), -1)
        double = R.run(graph, xq, "double")[graph.layers[-1].name].reshape(len(xq), -1)
        assert np.array_equal(tflm, double), "TFLite Micro != numpy double reference"
        generate_c(graph, md, td / "after")
        variants = [("after", td / "after", "m4", (), tflm, "TFLite Micro"),
                    ("after", td / "after", "m4", ("SQ_SINGLE_ROUNDING=1",), single, "numpy single ref"),
                    ("after", td / "after", "m4", ("SQ_NO_DSP",), tflm, "TFLite Micro"),
                    ("after", td / "after", "m33", (), tflm, "TFLite Micro"),
                    ("after", td / "after", "m33", ("SQ_SINGLE_ROUNDING=1",), single, "numpy single ref")]
        if args.before_c:
            variants += [("before", Path(args.before_c), "m4", (), tflm, "TFLite Micro"),
                         ("before", Path(args.before_c), "m4", ("SQ_SINGLE_ROUNDING=1",), single, "numpy single ref")]
        for tag, c_dir, target, defines, want, vs in variants:
            row = measure(c_dir, target, defines, xq, want, td / f"fw_{tag}")
            row.update(generator=tag, exact_vs=vs)
            rows.append(row)
            print(f"{tag:<6} {target:<4} {' '.join(defines) or 'default (double rounding)':<28} "
                  f"{row['insns_per_inference']['max']:>10,} insns  flash {row['flash_bytes']:>6,} B  "
                  f"RAM {row['ram_bytes']:>6,} B  exact vs {vs} {row['exact_windows_pct']:.1f} %", flush=True)
    res = {"run": str(run), "model": md["model"], "source_sha256": md["source_sha256"], "macs": graph.macs,
           "const_data_bytes": const_data_bytes(graph), "budget": BUDGET, "rows": rows,
           "tools": mcu.tool_versions(), "seconds": round(time.time() - t0, 1),
           "note": "instructions executed between the sq_bench_begin/end markers (QEMU TCG plugin), not cycles"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from sqtool.core.io import atomic_write_text, write_metrics
    write_metrics(out.parent, res, out.with_suffix(".json").name)
    lines = [f"# C firmware kernels: {md['model']} on Cortex-M (QEMU, instructions per inference)", "",
             f"{graph.macs:,} MACs per 8 s window; {len(xq)} held-out windows of `{run}`; budget <= "
             f"{BUDGET['insns']:,} instructions, flash <= 64 KB, RAM <= 32 KB. Instructions, not cycles.", "",
             "| generator | core | build | instructions / inference (max) | instr / MAC | flash B | RAM B | "
             "model const B | bit-exact vs | exact windows |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        i = r["insns_per_inference"]["max"]
        lines.append(f"| {r['generator']} | {r['target']} | {' '.join(r['defines']) or 'double rounding'} | {i:,} | "
                     f"{i / graph.macs:.2f} | {r['flash_bytes']:,} | {r['ram_bytes']:,} | {r['model_const_bytes']:,} | "
                     f"{r['exact_vs']} | {r['exact_windows_pct']:.1f} % |")
    lines += ["", f"Tools: {res['tools'].get('arm_none_eabi_gcc')}; {res['tools'].get('qemu')}.",
              "Reproduce: `nice .venv/bin/python benchmarks/c_kernels_m4.py --run RUN [--before-c OLD_EXPORT/c]`."]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
