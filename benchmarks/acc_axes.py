"""The accelerometer's axes: what the monitor reads of x, y and z, measured by turning them on real recordings.

    nice .venv/bin/python benchmarks/acc_axes.py --model runs/demo/latest/quantize        # ~2 min on 2 cores

The front end (`data.frontend`, the C kit's bit-exact reference) treats each input row alike and on its own: a power
spectrum per axis, normalised per window and channel. A model with the axes as three channels (`acc_x`, `acc_y`,
`acc_z`: every registry model but the `*_accsum` ones) then gives each its own network weights, so the ORDER of the
axes is part of the contract, while a sign flip changes only the integer rounding of a power spectrum; an
`*_accsum` model sums the three powers into one channel and reads no axis order. This measures both on real wrist
recordings:

1. Each recording of --data (default: TROIKA's and wrist_exercise's under the data root) replayed as the bench
   replays it (`firmware_bench.spectral.prepare`: int16 device counts at the recording's rate).
2. Its accelerometer rows (x, y, z as sqtool's readers name them) negated (one axis, two: the watch on the other
   wrist turned 180 degrees about z, all three) or permuted (the five other orders), on the int16 counts.
3. The whole monitor (`export.pipeline.PipelineRef`: front end, int8 network, fixed-point decoder) on each, from a
   fresh state; the front-end codes of each compared with the recorded axes' (identical, or how many differ).

Per recording and variant: MAE against the ECG truth, the mean and largest |HR difference| from the recorded axes'
HR, the share of windows whose HR is identical, and the share of front-end codes that differ. Per recording also
where gravity lies: the mean acceleration of each 8 s window (the reader's g), its largest axis with its sign,
counted over the windows, and the recording's mean vector (`data.gravity`: how the watch sat on the wrist). Writes
benchmarks/results/acc_axes.json and .md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqtool.core import DATA_ROOT_HELP, SqtoolError, atomic_write_text, data_root_or_exit, write_metrics  # noqa: E402

# name -> (axis order, signs): row k of the variant is sign[k] * recorded axis order[k]
VARIANTS = {"recorded": ((0, 1, 2), (1, 1, 1)),
            "-x": ((0, 1, 2), (-1, 1, 1)), "-y": ((0, 1, 2), (1, -1, 1)), "-z": ((0, 1, 2), (1, 1, -1)),
            "-x -y": ((0, 1, 2), (-1, -1, 1)), "-x -y -z": ((0, 1, 2), (-1, -1, -1)),
            "y x z": ((1, 0, 2), (1, 1, 1)), "x z y": ((0, 2, 1), (1, 1, 1)), "z y x": ((2, 1, 0), (1, 1, 1)),
            "y z x": ((1, 2, 0), (1, 1, 1)), "z x y": ((2, 0, 1), (1, 1, 1))}


def turn(acc: np.ndarray, order, signs) -> np.ndarray:
    """(3, N) int16 axes -> the same turned: row k = signs[k] * acc[order[k]], saturated to int16 (-(-32768))."""
    out = np.stack([s * acc[o].astype(np.int32) for o, s in zip(order, signs)])
    return np.clip(out, -32768, 32767).astype(np.int16)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a quantize run folder (model.pt of kind student_int8)")
    ap.add_argument("--data", action="append", help="dataset folder(s) (default: troika and wrist_exercise "
                                                    "under the data root)")
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--max-records", type=int, default=0, help="per --data (0: all)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    ap.add_argument("--name", default="acc_axes", help="output file stem")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except SqtoolError as e:
        print(f"acc_axes: {e}", file=sys.stderr)
        return 1


def run(args) -> int:
    from sqtool.core.checkpoint import load_checkpoint
    from sqtool.data.frontend import spectra
    from sqtool.data.gravity import acc_gravity
    from sqtool.export.intgraph import extract_int_graph
    from sqtool.export.pipeline import PipelineRef
    from sqtool.firmware_bench.spectral import load_records, prepare
    from sqtool.models import load_model

    t_start = time.time()
    ck = load_checkpoint(Path(args.model) / "model.pt", expect_kind="student_int8")
    mc = ck["model_cfg"]
    if "acc_x" not in mc["channels"]:
        raise SqtoolError(f"{args.model}: the model reads no separate accelerometer axes ({', '.join(mc['channels'])})")
    graph = extract_int_graph(load_model(ck))
    seen = set(map(str, ck.get("train_subjects") or []))
    paths = args.data or [str(Path(data_root_or_exit(args.data_root, "acc_axes")) / d)
                          for d in ("troika", "wrist_exercise")]
    rows = []
    for path in paths:
        for rec in load_records(path, args.max_records):
            r = prepare(rec, mc)
            acc = slice(r.n_ppg, r.n_ppg + 3)
            ok = np.isfinite(r.truth)
            ref = PipelineRef(mc, graph, fs_in=r.fs_in, n_ppg=r.n_ppg)
            row = {"dataset": rec.dataset, "subject": r.subject, "record": r.record_id, "fs": r.fs_in,
                   "windows": int(ok.sum()), "seen_in_training": r.subject in seen, "model": {}, "dhr": {},
                   "dhr_max": {}, "same_hr": {}, "codes_changed": {},
                   "code_max_diff": {}, "gravity": acc_gravity(rec)}
            hr0 = codes0 = None
            for name, (order, signs) in VARIANTS.items():
                x16 = r.x16.copy()
                x16[acc] = turn(r.x16[acc], order, signs)
                hr = ref.run(x16, r.gap)["hr_mbpm"] / 1000.0
                codes = spectra(ref.fe_cfg, x16, r.gap, tables=ref.tab)[0]          # (W, F, C) int8
                if hr0 is None:
                    hr0, codes0 = hr, codes
                # the recorded codes in this variant's channel order: what a permutation alone would give
                want = codes0[..., [0, *(1 + np.asarray(order))]] if codes0.shape[-1] == 4 else codes0
                row["model"][name] = float(np.mean(np.abs(hr[ok] - r.truth[ok])))
                row["dhr"][name] = float(np.mean(np.abs(hr - hr0)))
                row["dhr_max"][name] = float(np.max(np.abs(hr - hr0)))
                row["same_hr"][name] = float(np.mean(hr == hr0))
                row["codes_changed"][name] = float(np.mean(codes != want))
                row["code_max_diff"][name] = int(np.abs(codes.astype(int) - want).max())
            rows.append(row)
            print(f"acc_axes: {r.record_id}: " + ", ".join(f"{n} {row['dhr'][n]:.2f}" for n in VARIANTS), flush=True)
    res = {"model": str(Path(args.model).resolve()), "model_name": mc["name"], "channels": list(mc["channels"]),
           "variants": list(VARIANTS), "rows": rows, "pooled": pooled(rows), "wall_s": round(time.time() - t_start, 1)}
    out = Path(args.out)
    write_metrics(out, res, name=f"{args.name}.json")
    atomic_write_text(out / f"{args.name}.md", report(res))
    print(f"acc_axes -> {out / (args.name + '.md')}")
    return 0


def pooled(rows: list[dict]) -> dict:
    """Per dataset and over all: window-weighted MAE, mean |dHR|, share of identical HR and of changed codes; the
    largest |dHR| of any window."""
    out = {}
    for ds in [*sorted({r["dataset"] for r in rows}), "all"]:
        rs = [r for r in rows if ds in ("all", r["dataset"])]
        w = np.array([r["windows"] for r in rs], float)
        out[ds] = {k: {n: float(np.sum(w * [r[k][n] for r in rs]) / w.sum()) for n in VARIANTS}
                   for k in ("model", "dhr", "same_hr", "codes_changed")}
        out[ds]["dhr_max"] = {n: max(r["dhr_max"][n] for r in rs) for n in VARIANTS}
        out[ds]["code_max_diff"] = {n: max(r["code_max_diff"][n] for r in rs) for n in VARIANTS}
    return out


def report(res: dict) -> str:
    lines = ["# The accelerometer's axes negated and permuted on real recordings", "",
             f"Model: `{res['model_name']}` ({res['model']}; network channels {', '.join(res['channels'])}), the "
             "whole monitor through the C pipeline's integer reference (`PipelineRef`) on int16 device counts whose "
             "accelerometer rows were turned as named (`-y`: y negated; `z x y`: the rows fed as x, y, z are the "
             "recorded z, x, y). MAE in BPM against the ECG truth; `dHR`: |HR - HR with the recorded axes| over all "
             "windows (mean; max: the largest of any window); `same HR`: windows whose HR is identical; `codes "
             "changed`: front-end codes that differ from the recorded axes' codes put in the variant's channel "
             "order (0: the front end treats the axes alike and each on its own), and the largest |difference| of one code. Recordings of subjects the model "
             "trained on are marked: their MAE is optimistic, the differences between the rows are what this "
             "measures.", "",
             "## Pooled over windows", "",
             "| data | axes | model MAE | mean dHR | max dHR | same HR | codes changed | largest code change |",
             "|---|---|---|---|---|---|---|---|"]
    for ds, p in res["pooled"].items():
        for n in res["variants"]:
            lines.append(f"| {ds} | {n} | {p['model'][n]:.2f} | {p['dhr'][n]:.2f} | {p['dhr_max'][n]:.1f} | "
                         f"{100 * p['same_hr'][n]:.1f} % | {100 * p['codes_changed'][n]:.3f} % | {p['code_max_diff'][n]} |")
    lines += ["", "## Per recording (model MAE)", "",
              "Gravity: the recording's mean acceleration (x, y, z in g) and the largest axis of each 8 s window's "
              "mean, counted over the windows.", "",
              "| recording | subject | windows | gravity | " + " | ".join(res["variants"]) + " |",
              "|---|---|---|---|" + "---|" * len(res["variants"])]
    for r in res["rows"]:
        g = r["gravity"]
        grav = "-" if g is None else (f"({', '.join(f'{v:+.2f}' for v in g['mean_g'])}); "
                                      + ", ".join(f"{k} {v}" for k, v in g["axis_windows"].items()))
        lines.append(f"| {r['record']} | {r['subject']}{' (seen in training)' if r['seen_in_training'] else ''} | "
                     f"{r['windows']} | {grav} | " + " | ".join(f"{r['model'][n]:.2f}" for n in res["variants"]) + " |")
    lines += ["", f"Wall time {res['wall_s']:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
