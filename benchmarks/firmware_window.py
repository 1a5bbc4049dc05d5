"""A time-domain model whole on the device: an af student through the user's commands, its preprocessing in C
(`export --device-fs`), on the host and the emulated Cortex-M4, with both band-pass filters, on held-out patients,
and a second student trained with the causal band-pass (`train finetune --band-phase causal`).

    nice .venv/bin/python benchmarks/firmware_window.py                       # ~5 min on 2 cores per seed
    nice .venv/bin/python benchmarks/firmware_window.py --seeds 0,1,2
    nice .venv/bin/python benchmarks/firmware_window.py --run runs/my_af_quantize --causal-run runs/my_causal_quantize

1. Per seed, unless --run / --causal-run name quantize runs: `sqtool train finetune --task af --model
   resnet1d_siamq_tiny --seed S` (--epochs, 2 folds: a teacher on the training patients), once as is (band_phase
   zero) and once with `--band-phase causal`, each followed by `sqtool quantize --seed S` (the default student,
   cnn1d_student_s16, and the teacher's held-out patients, the last --heldout-fraction of them sorted: the same
   patients for every seed and arm).
2. Three arms, each `sqtool export --target c --device-fs HZ [--device-filter F]` then `sqtool bench` on the
   held-out patients' recordings (a folder of links to their ppg_arrhythmia files, at the arrhythmia set's 100 Hz):
     window          the zero-phase student, zero-phase C front end (as it was trained)
     causal          the zero-phase student, causal C front end (no look-ahead: an input it was not trained on)
     causal_trained  the causal student, causal C front end (its default: as it was trained)
   runtimes c_host (the network on the stream's inputs), c_window (the C front end + the network on the host),
   mcu_m4_window (both on the emulated Cortex-M4), beside the classic RMSSD rule and a constant score.

Side by side in one run, per arm: AUROC, F1, AUROC by patient, per-patient rows, the C front end's codes against
the stream's, instructions per window (front end, network), flash and RAM; over seeds, each arm's M4 AUROC.
Instructions are INSTRUCTIONS (QEMU TCG plugin), not cycles. Writes benchmarks/results/firmware_window.json and .md.
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


ARMS = {   # name: (which student, the C front end's --device-filter; None = the export's default, the model's)
    "window": ("zero", "window"),
    "causal": ("zero", "causal"),
    "causal_trained": ("causal", None),
}
ARM_TEXT = {"window": "zero-phase student, zero-phase front end", "causal": "zero-phase student, causal front end",
            "causal_trained": "causal student (--band-phase causal), causal front end"}


def summary(bench: dict) -> dict:
    """What the tables need of one bench.json."""
    rows = {r["runtime"]: r for r in bench["runtimes"]}
    keep = ("status", "metrics", "by_subject", "front_end", "instructions_per_inference",
            "front_end_instructions_per_window", "network_instructions_per_window", "flash_kb", "ram_kb",
            "front_end_state_bytes", "exact_pct", "exact_ref", "per_subject")
    return {"runtimes": {k: {f: r.get(f) for f in keep if f in r} for k, r in rows.items()},
            "baseline": {f: bench["baseline"].get(f) for f in ("method", "metrics", "by_subject")},
            "baseline_per_subject": bench["baseline"].get("per_subject") or {},
            "trivial": (bench.get("trivial") or {}).get("metrics"), "skill": (bench.get("skill") or {}).get("line"),
            "stream": bench["provenance"].get("stream")}


def _t(v, nd=3):
    return "-" if v is None else f"{v:.{nd}f}"


def _m4(s: dict, key: str = "auroc"):
    r = s["runtimes"].get("mcu_m4_window") or {}
    return (r.get("by_subject") or {}).get("mean") if key == "by_patient" else (r.get("metrics") or {}).get(key)


def seed_tables(res: dict, seed: str) -> list[str]:
    arms = res["seeds"][seed]["arms"]
    L = [f"## Seed {seed}", "", f"Models: zero-phase `{res['seeds'][seed]['runs']['zero']}`, causal "
         f"`{res['seeds'][seed]['runs']['causal']}`.", "",
         "| arm | runtime | AUROC | F1 | AUROC by patient | codes equal to the stream's % | max LSB | "
         "instructions / window (front end + network) | front end | flash KB | RAM KB |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for f, s in arms.items():
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
    L += ["", "Per patient (AUROC, mcu_m4_window; '-' where the patient's windows hold one class):", "",
          "| patient | windows | AF windows | " + " | ".join(arms) + " | classic |",
          "|---|---|---|" + "---|" * (len(arms) + 1)]
    first = next(iter(arms.values()))
    for key, p in (first["runtimes"]["mcu_m4_window"].get("per_subject") or {}).items():
        cells = [_t((s["runtimes"]["mcu_m4_window"].get("per_subject") or {}).get(key, {}).get("auroc"))
                 for s in arms.values()]
        cells.append(_t((first.get("baseline_per_subject") or {}).get(key, {}).get("auroc")))
        L.append(f"| {key} | {p.get('n')} | {p.get('positives')} | " + " | ".join(cells) + " |")
    L += ["", "Skill verdicts (the primary runtime on held-out patients, AUROC against a constant score):", ""]
    L += [f"- {f}: {s['skill']}" for f, s in arms.items()]
    return L + [""]


def markdown(res: dict) -> str:
    a = res["args"]
    seeds = list(res["seeds"])
    L = ["# A time-domain model whole on the device: af student, C front end, host and Cortex-M4", "",
         f"Machine: 2 shared CPU cores; run {res['date']} ({res['elapsed_min']:.1f} min). Command: "
         f"`python benchmarks/firmware_window.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`", "",
         f"Model: {res['model']}; device rate {a['device_fs']:g} Hz; held-out patients {', '.join(res['heldout'])} "
         f"({res['windows']} windows of 10 s, the arrhythmia set's segments); seeds {', '.join(seeds)}.", "",
         "Emulated Cortex-M4 (mcu_m4_window: C front end + network), AUROC pooled / by patient, per seed:", "",
         "| arm | " + " | ".join(f"seed {s}" for s in seeds) + " | mean pooled | mean by patient |",
         "|---|" + "---|" * (len(seeds) + 2)]
    for arm in ARMS:
        pooled = [_m4(res["seeds"][s]["arms"][arm]) for s in seeds]
        by = [_m4(res["seeds"][s]["arms"][arm], "by_patient") for s in seeds]
        mean = lambda v: None if any(x is None for x in v) else sum(v) / len(v)   # noqa: E731
        L.append(f"| {arm}: {ARM_TEXT[arm]} | " + " | ".join(f"{_t(p)} / {_t(b)}" for p, b in zip(pooled, by))
                 + f" | {_t(mean(pooled))} | {_t(mean(by))} |")
    L += [""]
    for s in seeds:
        L += seed_tables(res, s)
    L += ["- `window` is the zero-phase band-pass; `causal` runs with no look-ahead and little RAM, started in its "
          "first sample's steady state: on 10 s segments its start and phase lag cover the whole window, an input "
          "the zero-phase student was not trained on; `causal_trained` is a student trained on exactly that input.",
          "- Instructions are executed instructions (QEMU plugin), not cycles; flash / RAM of the whole image "
          "(the harness's buffers included)."]
    return "\n".join(L) + "\n"


def train(data_root: Path, work: Path, seed: int, epochs: int, phase: str) -> Path:
    """Step 1 for one seed and band phase: a teacher, then quantize; the quantize run."""
    teacher, run = work / f"teacher_{phase}_s{seed}", work / f"quantize_{phase}_s{seed}"
    sqtool("train", "finetune", "--task", "af", "--model", "resnet1d_siamq_tiny", "--data", data_root,
           "--epochs", epochs, "--folds", 2, "--seed", seed, "--band-phase", phase, "--out", teacher)
    sqtool("quantize", "--model", teacher, "--seed", seed, "--out", run)
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--run", default="", help="a quantize run of a zero-phase af model (default: train one, step 1)")
    ap.add_argument("--causal-run", default="", help="a quantize run of an af model trained with --band-phase causal "
                                                     "(default: train one, step 1)")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds (step 1; one with --run)")
    ap.add_argument("--epochs", type=int, default=20, help="teacher epochs (step 1)")
    ap.add_argument("--device-fs", type=float, default=100.0, help="the device rate the C front end is built for")
    ap.add_argument("--results-name", default="firmware_window")
    args = ap.parse_args()
    data_root = Path(data_root_or_exit(args.data_root, ap.error))
    seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    if (args.run or args.causal_run) and len(seeds) != 1:
        ap.error("--run / --causal-run name one model each: give one --seeds")
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="sq_firmware_window_"))
    res = {"args": vars(args), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seeds": {}}
    for seed in seeds:
        runs = {"zero": Path(args.run) if args.run else train(data_root, work, seed, args.epochs, "zero"),
                "causal": (Path(args.causal_run) if args.causal_run
                           else train(data_root, work, seed, args.epochs, "causal"))}
        folder, held = held_out_folder(runs["zero"], data_root, work)
        if held_out_folder(runs["causal"], data_root, work / "causal")[1] != held:
            sys.exit("firmware_window: the two quantize runs hold out different patients")
        res["heldout"] = held
        arms = {}
        for arm, (phase, filt) in ARMS.items():
            exp, out = work / f"export_{arm}_s{seed}", work / f"bench_{arm}_s{seed}"
            sqtool("export", "--model", runs[phase], "--target", "c", "--device-fs", args.device_fs,
                   *(["--device-filter", filt] if filt else []), "--out", exp)
            sqtool("bench", "--model", exp, "--data", folder, "--runtime", ",".join(RUNTIMES),
                   *(["--filter", filt] if filt else []),               # none: the model's own
                   "--callgrind-windows", 0, "--out", out)
            bench = json.loads((out / "bench.json").read_text())
            s = summary(bench)
            if filt and f"filter {filt}" not in (s["stream"] or ""):    # bench streamed what the C front end runs
                sys.exit(f"firmware_window: {arm}: bench streamed '{s['stream']}', the C front end runs {filt}")
            arms[arm] = s
            res["model"] = bench["provenance"].get("model")
            res["windows"] = bench["provenance"].get("windows")
            log(f"seed {seed} {arm}: " + ", ".join(f"{k} AUROC {_t((r.get('metrics') or {}).get('auroc'))}"
                                                   for k, r in s["runtimes"].items()))
        res["seeds"][str(seed)] = {"runs": {k: str(v) for k, v in runs.items()}, "arms": arms}
    res["elapsed_min"] = (time.perf_counter() - t0) / 60
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_metrics(RESULTS, res, f"{args.results_name}.json")
    atomic_write_text(RESULTS / f"{args.results_name}.md", markdown(res))
    log(str(RESULTS / f"{args.results_name}.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
