"""An accelerometer sampled at its own rate: what the monitor loses when the device brings it to the PPG's rate.

    nice .venv/bin/python benchmarks/acc_rate.py --model runs/demo/latest/quantize        # ~1.5 min on 2 cores

The C pipeline takes one accelerometer sample per PPG sample (`sq_pipeline_push(&p, ppg, acc, gap, n, ...)`), at the
exported device rate. A watch whose accelerometer runs slower (25 or 50 Hz beside a 125 Hz PPG) must bring it to
the PPG's rate on the device before the push. This measures, on real recordings, what each simple way of doing so
costs against the recorded accelerometer at the PPG's rate:

1. Each recording of --data (default: TROIKA's 13 and wrist_exercise's 13 under the data root) replayed as the
   bench replays it (`firmware_bench.spectral.prepare`: int16 device counts at the recording's rate, 125 / 256 Hz).
2. Its accelerometer rows brought down to each --acc-rates rate as a sensor with its own anti-aliasing would
   sample them (`scipy.signal.resample_poly`), then back to the PPG's rate by
     - hold: the latest accelerometer sample for every PPG sample (zero-order hold; no arithmetic on the device),
     - linear: linear interpolation between the two accelerometer samples around each PPG sample (offline: a
       device would wait for the next accelerometer sample, a delay not modelled here; the sensor's own
       anti-aliasing above is zero-phase too),
     - polyphase: `resample_poly` back up (what `sqtool predict` does on the host with a recording whose channels
       have different rates),
     - kit: the C kit's integer resampler (`sqtool export --device-acc-fs`; its reference
       `data.acc_resampler`, bit-exact with the C),
   rounded to int16.
3. The whole monitor (`export.pipeline.PipelineRef`, the C pipeline's bit-exact integer reference: front end,
   int8 network, fixed-point decoder) on each, from a fresh state; and the classic baseline (`firmware_bench.
   baseline`, which also reads the accelerometer) on the float recording treated the same way.

Per recording: MAE against the ECG truth for each variant, and the mean |HR difference| from the recording's own
accelerometer. Writes benchmarks/results/acc_rate.json and .md (per-subject rows; pooled over windows per dataset).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqtool.core import DATA_ROOT_HELP, SqtoolError, atomic_write_text, data_root_or_exit, write_metrics  # noqa: E402

WAYS = ("hold", "linear", "polyphase", "kit")


def down(x: np.ndarray, fs: float, fa: float) -> np.ndarray:
    """(C, N) at fs -> (C, M) at fa, as a sensor sampling at fa (its anti-aliasing: resample_poly's filter)."""
    from scipy.signal import resample_poly
    r = Fraction(fa / fs).limit_denominator(1000)
    return resample_poly(x, r.numerator, r.denominator, axis=1)


def back(xa: np.ndarray, fa: float, fs: float, n: int, way: str, codes: bool = True) -> np.ndarray:
    """(C, M) at fa -> (C, n) at fs by `way` (module docstring, step 2). `codes`: xa is in device counts (the
    monitor's input: the kit's resampler takes them rounded, as the sensor gives them); else in physical units (the
    baseline's g), scaled to counts for the kit's integer filter and back."""
    from scipy.signal import resample_poly
    t = np.arange(n) / fs                                        # the PPG samples' times
    if way == "hold":
        k = np.minimum(np.floor(t * fa + 1e-9).astype(int), xa.shape[1] - 1)
        return xa[:, k]
    if way == "linear":
        ta = np.arange(xa.shape[1]) / fa
        return np.stack([np.interp(t, ta, row) for row in xa])
    if way == "kit":                                             # the C kit's integer resampler (its reference)
        from sqtool.data.acc_resampler import resample_acc
        gain = np.array([1.0 if codes else 16384.0 / max(float(np.abs(row).max()), 1e-12) for row in xa])[:, None]
        rows = np.concatenate([to16(xa * gain), np.zeros(((-len(xa)) % 3, xa.shape[1]), np.int16)])  # 3 axes a call
        y = np.concatenate([resample_acc(rows[i:i + 3].T, fa, fs).T for i in range(0, len(rows), 3)])
        y = y[:len(xa)] / gain                                   # each axis filtered alone: padding changes nothing
    else:
        r = Fraction(fs / fa).limit_denominator(1000)
        y = resample_poly(xa, r.numerator, r.denominator, axis=1)
    return y[:, :n] if y.shape[1] >= n else np.pad(y, ((0, 0), (0, n - y.shape[1])), mode="edge")


def variant(x: np.ndarray, fs: float, fa: float | None, way: str | None, codes: bool = True,
            downs: dict | None = None) -> np.ndarray:
    """x (C, n) with its rows brought to fa and back by way; None: as recorded. `downs`: {fa: x at fa}, filled here,
    so that the ways at one rate share one down-sampling."""
    if fa is None:
        return x
    downs = {} if downs is None else downs
    if fa not in downs:
        downs[fa] = down(x, fs, fa)
    return back(downs[fa], fa, fs, x.shape[1], way, codes)


def to16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a spectral quantize run (its model.pt: student_int8)")
    ap.add_argument("--data", action="append", help="recordings (repeatable; default: troika and wrist_exercise "
                                                    "under the data root)")
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--acc-rates", default="50,25", help="accelerometer rates, Hz, comma separated")
    ap.add_argument("--max-records", type=int, default=0, help="per --data (0: all)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    ap.add_argument("--name", default="acc_rate", help="output file stem")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except SqtoolError as e:
        print(f"acc_rate: {e}", file=sys.stderr)
        return 1


def run(args) -> int:
    from sqtool.core.checkpoint import load_checkpoint
    from sqtool.export.intgraph import extract_int_graph
    from sqtool.export.pipeline import PipelineRef
    from sqtool.data import hr_baseline as B
    from sqtool.firmware_bench.spectral import baseline_sensors, load_records, prepare
    from sqtool.models import load_model

    t_start = time.time()
    rates = [float(v) for v in args.acc_rates.split(",") if v.strip()]
    ck = load_checkpoint(Path(args.model) / "model.pt", expect_kind="student_int8")
    mc = ck["model_cfg"]
    if "acc_x" not in mc["channels"]:
        raise SqtoolError(f"{args.model}: the model reads no accelerometer ({', '.join(mc['channels'])})")
    graph = extract_int_graph(load_model(ck))
    seen = set(map(str, ck.get("train_subjects") or []))      # the differences are the point, not the MAE itself
    paths = args.data or [str(Path(data_root_or_exit(args.data_root, "acc_rate")) / d)
                          for d in ("troika", "wrist_exercise")]
    variants = [(None, None)] + [(fa, w) for fa in rates for w in WAYS]
    names = ["recorded"] + [f"{fa:g} Hz {w}" for fa, w in variants[1:]]
    rows = []
    for path in paths:
        for rec in load_records(path, args.max_records):
            r = prepare(rec, mc)
            acc = slice(r.n_ppg, r.n_ppg + 3)
            ok = np.isfinite(r.truth)
            row = {"dataset": rec.dataset, "subject": r.subject, "record": r.record_id, "fs": r.fs_in,
                   "windows": int(ok.sum()), "seen_in_training": r.subject in seen, "model": {}, "baseline": {},
                   "dhr": {}}
            ref = PipelineRef(mc, graph, fs_in=r.fs_in, n_ppg=r.n_ppg)
            hr0 = None
            sensors = baseline_sensors(r, mc)
            ch = [c for c in rec.signals if c.startswith("acc_")]
            fs_acc, sig = float(rec.fs[ch[0]]), np.stack([rec.signals[c] for c in ch])    # the float record's, in g
            x_acc, d16, dg = r.x16[acc].astype(float), {}, {}                            # counts; down-sampled, by rate
            for (fa, way), name in zip(variants, names):
                x16 = r.x16.copy()
                x16[acc] = to16(variant(x_acc, r.fs_in, fa, way, downs=d16))
                hr = ref.run(x16, r.gap)["hr_mbpm"] / 1000.0
                hr0 = hr if hr0 is None else hr0
                row["model"][name] = float(np.mean(np.abs(hr[ok] - r.truth[ok])))
                row["dhr"][name] = float(np.mean(np.abs(hr - hr0)))
                moved = variant(sig, fs_acc, fa, way, codes=False, downs=dg)
                frec = dataclasses.replace(rec, signals={**rec.signals, **dict(zip(ch, moved))})
                bl = B.baseline_hr(frec, r.t0, float(mc["window_s"]), B.BaselineCfg(ppg_sensors=sensors))["hr"]
                row["baseline"][name] = float(np.nanmean(np.abs(bl[ok] - r.truth[ok])))
            rows.append(row)
            print(f"acc_rate: {r.record_id}: " + ", ".join(f"{n} {row['model'][n]:.2f}" for n in names), flush=True)
    res = {"model": str(Path(args.model).resolve()), "model_name": mc["name"], "variants": names, "rows": rows,
           "pooled": pooled(rows, names), "unseen": change(rows, names), "wall_s": round(time.time() - t_start, 1)}
    out = Path(args.out)
    write_metrics(out, res, name=f"{args.name}.json")
    atomic_write_text(out / f"{args.name}.md", report(res))
    print(f"acc_rate -> {out / (args.name + '.md')}")
    return 0


def pooled(rows: list[dict], names: list[str]) -> dict:
    """Per dataset: MAE pooled over windows (model, baseline) and the window-weighted mean |HR difference|."""
    out = {}
    for ds in sorted({r["dataset"] for r in rows}):
        rs = [r for r in rows if r["dataset"] == ds]
        w = np.array([r["windows"] for r in rs], float)
        out[ds] = {k: {n: float(np.sum(w * [r[k][n] for r in rs]) / w.sum()) for n in names}
                   for k in ("model", "baseline", "dhr")}
    return out


def change(rows: list[dict], names: list[str]) -> dict | None:
    """On the recordings of subjects the model never trained on (all datasets together): per variant the model's MAE
    change from the recorded accelerometer's, pooled over windows, and the largest change of one recording (with its
    id); None when every recording was a training subject's."""
    rs = [r for r in rows if not r["seen_in_training"]]
    if not rs:
        return None
    w = np.array([r["windows"] for r in rs], float)
    out = {"recordings": [r["record"] for r in rs], "windows": int(w.sum())}
    for n in names[1:]:
        d = np.array([r["model"][n] - r["model"]["recorded"] for r in rs])
        k = int(np.argmax(d))
        out[n] = {"pooled": float(np.sum(w * d) / w.sum()), "max": float(d[k]), "max_record": rs[k]["record"]}
    return out


def report(res: dict) -> str:
    names = res["variants"]
    lines = ["# An accelerometer at its own rate, brought to the PPG's rate on the device", "",
             f"Model: `{res['model_name']}` ({res['model']}), the whole monitor through the C pipeline's integer "
             "reference (`PipelineRef`); classic baseline beside it, fed the same accelerometer. MAE in BPM against "
             "the ECG truth; `dHR`: mean |HR - HR with the recorded accelerometer| over all windows. The "
             "accelerometer is brought down to each rate as a sensor would sample it, then back to the PPG's rate "
             "by holding the latest sample (`hold`), linear interpolation (`linear`), a polyphase filter "
             "(`polyphase`, what `sqtool predict` does on the host) or the C kit's integer resampler (`kit`). "
             "Recordings of subjects the model trained on are "
             "marked: their MAE is optimistic, the differences between the rows are what this measures.", "",
             "## Pooled over windows, per dataset", "",
             "| dataset | accelerometer | model MAE | baseline MAE | model dHR |", "|---|---|---|---|---|"]
    for ds, p in res["pooled"].items():
        for n in names:
            lines.append(f"| {ds} | {n} | {p['model'][n]:.2f} | {p['baseline'][n]:.2f} | {p['dhr'][n]:.2f} |")
    un = res.get("unseen")
    if un:
        lines += ["", f"## On the {len(un['recordings'])} recordings the model never trained on ({un['windows']} "
                      "windows): the model's MAE change from the recorded accelerometer's", "",
                  "| accelerometer | pooled over windows | largest, one recording |", "|---|---|---|"]
        lines += [f"| {n} | {un[n]['pooled']:+.2f} | {un[n]['max']:+.2f} ({un[n]['max_record']}) |" for n in names[1:]]
    lines += ["", "## Per recording (model MAE; baseline MAE in the last column, recorded accelerometer)", "",
              "| recording | subject | windows | " + " | ".join(names) + " | baseline |",
              "|---|---|---|" + "---|" * len(names) + "---|"]
    for r in res["rows"]:
        lines.append(f"| {r['record']} | {r['subject']}{' (seen in training)' if r['seen_in_training'] else ''} | "
                     f"{r['windows']} | "
                     + " | ".join(f"{r['model'][n]:.2f}" for n in names) + f" | {r['baseline']['recorded']:.2f} |")
    lines += ["", f"Wall time {res['wall_s']:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
