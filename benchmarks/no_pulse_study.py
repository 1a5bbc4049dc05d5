"""Pulse presence (`export.pipeline.flatness_q8` / `no_pulse`): the threshold's data.

    nice .venv/bin/python benchmarks/no_pulse_study.py [--model EXPORT_OR_REGISTRY_NAME] [--seeds 6]   # ~2 min

Per window the ppg channel's flatness g (log2 of the arithmetic over the geometric mean of code + 128, Q8) and its
mean over the last NO_PULSE_WINDOWS windows, on every window of every shipped recording that has an accelerometer
(the data root's TROIKA / SP Cup, wrist_exercise, the E2E-PPG watch recording: what `data pairs` reads) and on
synthetic off-wrist inputs of 300 s at 125 Hz with a still accelerometer (white noise, 1/f, random walk, mains hum,
hum folded near the band, white noise with the arm swinging at 1 Hz, with that swing also in the PPG, and a
synthetic pulse at 0.05-1.0 of the noise's amplitude), each replayed on a one- and a two-sensor device (two sensors:
each its own noise; a one-sensor recording repeats its sensor). Writes benchmarks/results/no_pulse_study.{json,md}:
per group the run's minimum / maximum and the share of windows called pulse-less at the shipped thresholds.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqtool.core import atomic_write_text, data_root_or_exit  # noqa: E402

FS, DUR = 125.0, 300.0
REAL = ("troika", "wrist_exercise", "unlabeled")


def model_cfg(name: str) -> dict:
    p = Path(name) / "metadata.json"
    if p.is_file():
        return json.loads(p.read_text())["model_cfg"]
    from sqtool.models.registry import get_model_cfg
    mc = get_model_cfg(name).to_dict()
    mc["frontend"] = {**mc["frontend"], "ppg_sensors": ["ppg", "ppg2"]}
    return mc


def real_runs(root: Path, mc: dict, n_ppg: int) -> dict[str, list[np.ndarray]]:
    """dataset -> per recording (W,) flatness, the windows of every recording with an accelerometer."""
    from sqtool.data.readers import iter_records
    from sqtool.export.pipeline import flatness_q8
    from sqtool.firmware_bench.spectral import prepare
    out: dict[str, list[np.ndarray]] = {}
    for ds in REAL:
        if not (root / ds).is_dir():
            continue
        for rec in iter_records(root / ds, on_error="skip"):
            if any(c.startswith("acc_") for c in rec.signals):
                out.setdefault(ds, []).append(flatness_q8(prepare(rec, mc, {}, n_sensors=n_ppg).codes))
    return out


def synthetic(seed: int, pulse_seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (ppg (N,), acc (3, N) in g); the pulse (and its rate) from pulse_seed, the noise from seed."""
    from sqtool.data.synthetic import synth_record
    n = int(DUR * FS)
    rng, prng = np.random.default_rng(seed), np.random.default_rng(pulse_seed)
    t = np.arange(n) / FS
    acc = np.array([0.1, -0.2, 0.97])[:, None] + 0.005 * rng.standard_normal((3, n))
    swing = acc + 0.8 * np.array([1.0, 0.3, -0.5])[:, None] * np.sin(2 * np.pi * t)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / FS), 1 / DUR)
    pulse = synth_record(DUR, FS, hr_bpm=float(prng.uniform(55, 150)), artifacts=0.0, noise=0.0,
                         seed=int(prng.integers(1 << 30))).signals["ppg"]
    pulse = (pulse - pulse.mean()) / pulse.std()
    out = {"white": (rng.standard_normal(n), acc), "1/f": (np.fft.irfft(spec / np.sqrt(f), n), acc),
           "random walk": (np.cumsum(rng.standard_normal(n)), acc),
           "mains hum 50 Hz": (np.sin(2 * np.pi * 50 * t) + 0.3 * np.sin(2 * np.pi * 150 * t)
                               + 0.05 * rng.standard_normal(n), acc),
           "hum folded to 1.3 Hz": (np.sin(2 * np.pi * 76.3 * t) + 0.05 * rng.standard_normal(n), acc),
           "white, arm swing": (rng.standard_normal(n), swing),
           "white + swing in the PPG": (rng.standard_normal(n) + 0.5 * np.sin(2 * np.pi * t), swing)}
    for a in (0.05, 0.1, 0.2, 0.3, 0.5, 1.0):
        out[f"pulse x{a:g} in noise"] = (a * pulse + rng.standard_normal(n), acc)
    return out


def synthetic_runs(mc: dict, n_ppg: int, seeds: int) -> dict[str, list[np.ndarray]]:
    from sqtool.data.record import Record
    from sqtool.export.pipeline import flatness_q8
    from sqtool.firmware_bench.spectral import prepare
    out: dict[str, list[np.ndarray]] = {}
    for s in range(seeds):
        one, two = synthetic(s, s), synthetic(s + 1000, s)                # the second sensor: its own noise
        for name, (ppg, acc) in one.items():
            sig = {"ppg": ppg, "acc_x": acc[0], "acc_y": acc[1], "acc_z": acc[2],
                   **({"ppg2": two[name][0]} if n_ppg == 2 else {})}
            rec = Record("synthetic", f"s{s}", f"{name}_{s}", sig, {c: FS for c in sig})
            out.setdefault(name, []).append(flatness_q8(prepare(rec, mc, {}, n_sensors=n_ppg).codes))
    return out


def summarise(runs: dict[str, list[np.ndarray]], n_ppg: int) -> dict:
    """group -> windows, the run means' min / max (Q8 and as flatness), share called pulse-less."""
    from sqtool.export.pipeline import NO_PULSE_MAX_Q8, NO_PULSE_WINDOWS, no_pulse
    K, thr = NO_PULSE_WINDOWS, NO_PULSE_MAX_Q8
    rows = {}
    for g, rs in runs.items():
        means = np.concatenate([np.convolve(r, np.ones(K), "valid") / K for r in rs if len(r) >= K])
        flagged = np.concatenate([no_pulse(r, thr)[K - 1:] for r in rs if len(r) >= K])
        rows[g] = {"windows": int(len(means)), "run_mean_min_q8": round(float(means.min()), 2),
                   "run_mean_max_q8": round(float(means.max()), 2),
                   "flatness_max": round(float(2 ** (-means.min() / 256)), 3),
                   "no_pulse_windows": int(flagged.sum()), "no_pulse_pct": round(100 * float(flagged.mean()), 1)}
    return rows


def markdown(res: dict) -> str:
    lines = ["# Pulse presence (no_pulse): the flatness run on real and off-wrist windows", "",
             f"`benchmarks/no_pulse_study.py --model {res['model']} --seeds {res['seeds']}`. Per window g = log2(AM / GM)"
             f" of the ppg codes + 128 in Q8 (0 = flat); no_pulse when the mean g of the last {res['windows']} windows "
             "is at most the threshold. Real: every window (from the 16th) of every recording with an accelerometer; "
             "synthetic: 300 s at 125 Hz per seed. The real rows must read 0; the noise rows near 100 %.", ""]
    for n_ppg, block in res["devices"].items():
        lines += [f"## {n_ppg} PPG sensor(s): threshold {block['max_q8']} (flatness >= {2 ** (-block['max_q8'] / 256):.3f})",
                  "", "| group | windows | run mean g min / max (Q8) | no_pulse |", "|---|---:|---:|---:|"]
        for g, r in block["groups"].items():
            lines.append(f"| {g} | {r['windows']} | {r['run_mean_min_q8']} / {r['run_mean_max_q8']} | "
                         f"{r['no_pulse_windows']} ({r['no_pulse_pct']} %) |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    from sqtool.export.pipeline import NO_PULSE_MAX_Q8, NO_PULSE_WINDOWS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="spec_student_xs", help="an export folder or a registry name (its front end)")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    root = Path(data_root_or_exit(args.data_root, ap.error))
    mc = model_cfg(args.model)
    res = {"model": args.model, "seeds": args.seeds, "windows": NO_PULSE_WINDOWS, "devices": {}}
    for n_ppg in (1, 2):
        runs = {**real_runs(root, mc, n_ppg), **synthetic_runs(mc, n_ppg, args.seeds)}
        res["devices"][n_ppg] = {"max_q8": NO_PULSE_MAX_Q8, "groups": summarise(runs, n_ppg)}
        print(f"no_pulse_study: {n_ppg} sensor(s) done", flush=True)
    out = ROOT / "benchmarks" / "results"
    atomic_write_text(out / "no_pulse_study.json", json.dumps(res, indent=1) + "\n")
    atomic_write_text(out / "no_pulse_study.md", markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
