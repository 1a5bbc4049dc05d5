"""A time-domain model whole on the device: an af student through the user's commands, its preprocessing in C
(`export --device-fs`), on the host and the emulated Cortex-M4, with both band-pass filters, on held-out patients.

    nice .venv/bin/python benchmarks/firmware_window.py                       # ~4 min on 2 cores
    nice .venv/bin/python benchmarks/firmware_window.py --run runs/my_af_quantize --device-fs 100

1. Unless --run names a quantize run: `sqtool train finetune --task af --model resnet1d_siamq_tiny` (--epochs, no
   folds: a teacher on the training patients) and `sqtool quantize` (the default student, cnn1d_student_s16, and
   quantize's own held-out patients, the last --heldout-fraction of them sorted).
2. For each band-pass filter of the C front end (window: zero phase, as training; causal: no look-ahead):
   `sqtool export --target c --device-fs HZ --device-filter F`, then `sqtool bench` on the run's held-out patients'
   recordings (a folder of links to their ppg_arrhythmia files, at the arrhythmia set's 100 Hz) with `--filter F`:
   c_host (the network on the stream's inputs), c_window (the C front end + the network on the host),
   mcu_m4_window (both on the emulated Cortex-M4), beside the classic RMSSD rule and a constant score.

Side by side in one run, per filter: AUROC, F1, AUROC by patient, per-patient rows, the C front end's codes against
the stream's, instructions per window (front end, network), flash and RAM. Instructions are INSTRUCTIONS (QEMU TCG
plugin), not cycles. Writes benchmarks/results/firmware_window.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqtool.core import DATA_ROOT_HELP, atomic_write_text, data_root_or_exit, write_metrics  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RUNTIMES = ("c_host", "c_window", "mcu_m4_window")
SQTOOL = str(Path(sys.executable).with_name("sqtool"))


def log(msg: str) -> None:
    print(msg, flush=True)


def sqtool(*args) -> None:
    """One sqtool command, as a user runs it; its output to this log, a failure stops the benchmark."""
    cmd = [SQTOOL, *map(str, args), "--no-progress"]
    log("$ " + " ".join(cmd[1:]))
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"firmware_window: `sqtool {args[0]}` exited {r.returncode}: {(r.stderr or r.stdout).strip()[-500:]}")


def held_out_folder(run: Path, data_root: Path, work: Path) -> tuple[Path, list[str]]:
    """A folder of links to the arrhythmia files of the run's held-out patients (metrics.json heldout_subjects)."""
    held = [s.split(":", 1)[-1] for s in json.loads((run / "metrics.json").read_text())["heldout_subjects"]]
    files = {p.stem: p for p in (data_root / "ppg_arrhythmia").rglob("MPA_*.mat")}
    out = work / "heldout_recordings"
    out.mkdir(parents=True, exist_ok=True)
    for s in held:
        if s not in files:
            sys.exit(f"firmware_window: held-out patient {s} has no file under {data_root / 'ppg_arrhythmia'}")
        link = out / files[s].name
        if not link.exists():
            os.symlink(files[s].resolve(), link)
    return out, held


def summary(bench: dict) -> dict:
    """What the tables need of one bench.json."""
    rows = {r["runtime"]: r for r in bench["runtimes"]}
    keep = ("status", "metrics", "by_subject", "front_end", "instructions_per_inference",
            "front_end_instructions_per_window", "network_instructions_per_window", "flash_kb", "ram_kb",
            "front_end_state_bytes", "exact_pct", "exact_ref", "per_subject")
    return {"runtimes": {k: {f: r.get(f) for f in keep if f in r} for k, r in rows.items()},
            "baseline": {f: bench["baseline"].get(f) for f in ("method", "metrics", "by_subject")},
            "baseline_per_subject": bench["baseline"].get("per_subject") or {},
            "trivial": (bench.get("trivial") or {}).get("metrics"), "skill": (bench.get("skill") or {}).get("line")}


def _t(v, nd=3):
    return "-" if v is None else f"{v:.{nd}f}"


def markdown(res: dict) -> str:
    a = res["args"]
    L = ["# A time-domain model whole on the device: af student, C front end, host and Cortex-M4", "",
         f"Machine: 2 shared CPU cores; run {res['date']} ({res['elapsed_min']:.1f} min). Command: "
         f"`python benchmarks/firmware_window.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`", "",
         f"Model: {res['model']} from quantize run `{res['run']}`; device rate {a['device_fs']:g} Hz; held-out "
         f"patients {', '.join(res['heldout'])} ({res['windows']} windows of 10 s, the arrhythmia set's segments).",
         "", "| filter | runtime | AUROC | F1 | AUROC by patient | codes equal to the stream's % | max LSB | "
             "instructions / window (front end + network) | front end | flash KB | RAM KB |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for f, s in res["filters"].items():
        for k, r in s["runtimes"].items():
            m, fe, by = r.get("metrics") or {}, r.get("front_end") or {}, r.get("by_subject") or {}
            L.append(f"| {f} | {k} | {_t(m.get('auroc'))} | {_t(m.get('f1'))} | {_t(by.get('mean'))} | "
                     f"{_t(fe.get('codes_equal_pct'))} | {fe.get('max_lsb', '-')} | "
                     f"{'-' if r.get('instructions_per_inference') is None else format(r['instructions_per_inference'], ',.0f')} | "
                     f"{'-' if r.get('front_end_instructions_per_window') is None else format(r['front_end_instructions_per_window'], ',.0f')} | "
                     f"{_t(r.get('flash_kb'), 1)} | {_t(r.get('ram_kb'), 1)} |")
        b, by = s["baseline"], s["baseline"].get("by_subject") or {}
        L.append(f"| {f} | classic: {b['method']} | {_t((b.get('metrics') or {}).get('auroc'))} | "
                 f"{_t((b.get('metrics') or {}).get('f1'))} | {_t(by.get('mean'))} | | | | | | |")
        L.append(f"| {f} | trivial: a constant score | {_t((s.get('trivial') or {}).get('auroc'))} | | | | | | | | |")
    L += ["", "Per patient (AUROC; '-' where the patient's windows hold one class):", "",
          "| patient | windows | AF windows | " + " | ".join(f"{f} mcu_m4_window" for f in res["filters"]) +
          " | " + " | ".join(f"{f} classic" for f in res["filters"]) + " |",
          "|---|---|---|" + "---|" * (2 * len(res["filters"]))]
    first = next(iter(res["filters"].values()))
    for key, p in (first["runtimes"]["mcu_m4_window"].get("per_subject") or {}).items():
        cells = [_t((s["runtimes"]["mcu_m4_window"].get("per_subject") or {}).get(key, {}).get("auroc"))
                 for s in res["filters"].values()]
        cells += [_t((s.get("baseline_per_subject") or {}).get(key, {}).get("auroc")) for s in res["filters"].values()]
        L.append(f"| {key} | {p.get('n')} | {p.get('positives')} | " + " | ".join(cells) + " |")
    L += ["", "Skill verdicts (the primary runtime on held-out patients, AUROC against a constant score):", ""]
    L += [f"- {f}: {s['skill']}" for f, s in res["filters"].items()]
    L += ["", "- `window` is the zero-phase band-pass training used; `causal` runs with no look-ahead and little RAM, "
              "started in its first sample's steady state, an input the network was not trained on: on 10 s "
              "segments its start and phase lag cover the whole window.",
          "- Instructions are executed instructions (QEMU plugin), not cycles; flash / RAM of the whole image "
          "(the harness's buffers included)."]
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--run", default="", help="a quantize run of an af model (default: train one, step 1)")
    ap.add_argument("--epochs", type=int, default=20, help="teacher epochs (step 1)")
    ap.add_argument("--device-fs", type=float, default=100.0, help="the device rate the C front end is built for")
    ap.add_argument("--results-name", default="firmware_window")
    args = ap.parse_args()
    data_root = Path(data_root_or_exit(args.data_root, ap.error))
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="sq_firmware_window_"))
    run = Path(args.run) if args.run else None
    if run is None:
        sqtool("train", "finetune", "--task", "af", "--model", "resnet1d_siamq_tiny", "--data", data_root,
               "--epochs", args.epochs, "--folds", 2, "--out", work / "teacher")
        sqtool("quantize", "--model", work / "teacher", "--out", work / "quantize")
        run = work / "quantize"
    folder, held = held_out_folder(run, data_root, work)
    res = {"args": vars(args), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "run": str(run),
           "heldout": held, "filters": {}}
    for f in ("window", "causal"):
        exp, out = work / f"export_{f}", work / f"bench_{f}"
        sqtool("export", "--model", run, "--target", "c", "--device-fs", args.device_fs, "--device-filter", f,
               "--out", exp)
        sqtool("bench", "--model", exp, "--data", folder, "--filter", f, "--runtime", ",".join(RUNTIMES),
               "--callgrind-windows", 0, "--out", out)
        bench = json.loads((out / "bench.json").read_text())
        s = summary(bench)
        res["filters"][f] = s
        res["model"] = bench["provenance"].get("model")
        res["windows"] = bench["provenance"].get("windows")
        log(f"{f}: " + ", ".join(f"{k} AUROC {_t((r.get('metrics') or {}).get('auroc'))}"
                                  for k, r in s["runtimes"].items()))
    res["elapsed_min"] = (time.perf_counter() - t0) / 60
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_metrics(RESULTS, res, f"{args.results_name}.json")
    atomic_write_text(RESULTS / f"{args.results_name}.md", markdown(res))
    log(str(RESULTS / f"{args.results_name}.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
