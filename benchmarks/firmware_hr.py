"""Firmware benchmark: SP Cup 2015 heart rate, streamed, on every runtime and emulated Cortex-M.

For the first --folds subjects of the SP Cup 2015 training set (leave-one-subject-out), in one run:
  1. train the fold's teacher (resnet1d_siamq_tiny, PPG) and its int8 student (cnn1d_student_s, PPG + acc,
     distillation + QAT) with the compress benchmark's own fold code (benchmarks/compress_hr.py),
  2. `sqtool export` the student (ONNX, TFLite, C),
  3. `sqtool bench` on the held-out recording: stream replay at 125 Hz in 0.2 s chunks -> 40 Hz windows;
     float teacher, float student, Brevitas int8, TFLite Micro, host C, Cortex-M4 + M33 firmware under QEMU,
     and the classic spectral baseline, all on the same windows.
The classic baseline is also scored on all 12 recordings (it needs no training). Firmware: instructions
per 8 s window on the Cortex-M4 (QEMU plugin; goal <= 1 M for cnn1d_student_s) at -O2 / -O3 / -Os, flash
and RAM of the whole image (goals <= 64 KB / 32 KB), bit-exactness vs TFLite Micro and Brevitas, and the
host pipeline's real-time factor.

    nice .venv/bin/python benchmarks/firmware_hr.py --folds 12       # ~2-4 min per fold on 1 core
    .venv/bin/python benchmarks/firmware_hr.py --render              # rewrite the .md from the .json
Writes benchmarks/results/firmware_hr.{json,md} (updated after every fold).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

from sqtool.core.io import atomic_write_text, read_json, write_metrics  # noqa: E402

RUNTIMES = ["torch_teacher", "torch_student", "brevitas_int8", "onnx_float", "litert_int8", "tflm_int8",
            "c_host", "c_host_single", "mcu_m4", "mcu_m33", "mcu_m4_single"]


def _compress_bench():
    spec = importlib.util.spec_from_file_location("compress_hr", ROOT / "benchmarks" / "compress_hr.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _FoldArgs(argparse.Namespace):
    """Our args for compress_hr.run_fold; an option it reads that we do not define falls back to the
    compress stage's own default (QuantizeConfig), so the two benchmarks do not drift apart."""

    def __getattr__(self, k):
        import dataclasses

        from sqtool.compress.cli import QuantizeConfig
        for f in dataclasses.fields(QuantizeConfig):
            if f.name == k:
                return f.default if f.default is not dataclasses.MISSING else f.default_factory()
        raise AttributeError(k)


def baseline_all(train_dir: Path) -> dict:
    from sqtool.data.readers import read_dataset
    from sqtool.data.hr_baseline import baseline_hr
    from sqtool.firmware_bench.report import hr_metrics
    recs = sorted((r for r in read_dataset(train_dir, kind="troika") if "hr" in r.labels), key=lambda r: r.record_id)
    per, errs = {}, []
    t = time.perf_counter()
    for r in recs:
        lab = r.labels["hr"]
        hr = baseline_hr(r, lab.times)["hr"]
        per[r.subject] = hr_metrics(hr, lab.values)
        errs.append(hr - lab.values)
    e = np.concatenate(errs)
    secs = time.perf_counter() - t
    hours = sum(r.duration("ppg") for r in recs) / 3600
    return {"per_subject": per, "pooled_mae": float(np.abs(e).mean()), "pooled_gt10": float((np.abs(e) > 10).mean()),
            "mean_of_subjects": float(np.mean([m["mae"] for m in per.values()])), "seconds": secs,
            "signal_hours": hours}


def opt_sweep(export_dir: Path, work: Path, q: np.ndarray) -> list[dict]:
    from sqtool.firmware_bench import mcu
    out = []
    for opt in ("-O2", "-O3", "-Os"):
        fw = mcu.build_firmware(export_dir / "c", "m4", work / "sweep", opt=opt)
        r = mcu.run_firmware(fw, q)
        s = mcu.image_size(fw, r.stack_high_water)
        out.append({"opt": opt, "instructions_per_inference": float(r.insns_per_window.mean()),
                    "flash_bytes": s["flash_bytes"], "ram_bytes": s["ram_bytes"], **mcu.model_bytes(fw)})
    return out


def main(argv=None) -> int:
    from sqtool.core import DATA_ROOT_HELP, data_root_or_exit
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--folds", type=int, default=3, help="LOSO folds to train + bench (subject order)")
    ap.add_argument("--subjects", default="", help="comma-separated held-out subjects (overrides --folds)")
    ap.add_argument("--teacher-epochs", type=int, default=20)
    ap.add_argument("--teacher-lr", type=float, default=3e-3)
    ap.add_argument("--student", default="cnn1d_student_s")
    ap.add_argument("--preset", default="int8_w_per_channel_a_per_tensor")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--qat-epochs", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=0.7)
    ap.add_argument("--feature-weight", type=float, default=0.0)
    ap.add_argument("--no-distill", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="", help="keep fold artifacts here (default: a temp dir)")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md from the existing .json")
    ap.add_argument("--firmware-from", default="", help="WORK dir of an earlier run: re-export its first fold with "
                                                        "the current C generator and re-measure the firmware only")
    args = _FoldArgs(**vars(ap.parse_args(argv)))
    if args.render:
        write(read_json(RESULTS / "firmware_hr.json"))
        return 0
    args.data_root = data_root_or_exit(args.data_root, ap.error)
    if args.firmware_from:
        return refresh_firmware(Path(args.firmware_from), Path(args.data_root))

    import torch
    torch.set_num_threads(1)
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.export.cli import ExportConfig, export
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    from sqtool.firmware_bench.mcu import tool_versions
    from sqtool.models import get_model_cfg

    root = Path(args.data_root)
    train_dir = root / "troika" / "Training_data"
    t_start = time.perf_counter()
    res = {"command": "python benchmarks/firmware_hr.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "args": vars(args),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), torch {torch.__version__}",
           "tools": tool_versions(), "folds": [], "notes": []}
    print("[baseline] all 12 recordings ...", flush=True)
    res["baseline_all"] = baseline_all(train_dir)
    write(res)

    cb = _compress_bench()
    scfg = task_model_cfg("hr", get_model_cfg(args.student))
    td = load_task("hr", root, scfg)
    subjects = sorted(np.unique(td.groups).tolist())
    held = [s for s in args.subjects.split(",") if s] or subjects[:args.folds]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sq_fw_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    files = {r.stem.split("_")[1]: r for r in train_dir.glob("DATA_*_TYPE*.mat") if "BPM" not in r.name}
    for s in held:
        t0 = time.perf_counter()
        print(f"[fold {s}] training teacher + student ...", flush=True)
        fold = cb.run_fold(td, [s], "hr", args, work, f"hr_{s}", scfg.channels)
        run_dir = work / f"run_hr_{s}"
        exp = export(ExportConfig(model=str(run_dir), target=["onnx", "tflite", "c"], out=str(work / f"export_{s}"),
                                  force=True))
        print(f"[fold {s}] bench ...", flush=True)
        b = run_bench(BenchConfig(model=str(exp["out"]), data=str(files[s]), runtime=RUNTIMES,
                                  teacher=str(work / f"teacher_hr_{s}.pt"), out=str(work / f"bench_{s}"),
                                  force=True, callgrind_windows=4))
        rows = {r["runtime"]: r for r in b["runtimes"]}
        keep = ("status", "metrics", "metrics_tracked", "exact_pct", "exact_ref", "max_lsb_diff",
                "instructions_per_inference", "flash_bytes", "ram_bytes", "stack_high_water_bytes",
                "model_const_bytes", "arena_bytes", "latency_ms_p50", "latency_ms_p99", "realtime_factor", "error",
                "size_bytes", "windows")
        f = {"subject": s, "windows": int(len(b["series"]["records"][0]["t0"])),
             "runtimes": {k: {kk: r.get(kk) for kk in keep if kk in r} for k, r in rows.items()},
             "baseline": {"metrics": b["baseline"]["metrics"], "metrics_tracked": b["baseline"]["metrics_tracked"]},
             "compress_metrics": fold["metrics"], "export_failed": exp["failed"],
             "stream": b["provenance"]["stream"], "seconds": time.perf_counter() - t0}
        if s == held[0]:
            from sqtool.firmware_bench import runtimes as R
            art = R.load_artifacts(exp["out"])
            with np.load(exp["out"] / "heldout.npz") as z:
                q = R.quantize(z["x"][:8], *art.input_qparams)
            res["opt_sweep_m4"] = opt_sweep(Path(exp["out"]), work, q)
            res["bench_md_first_fold"] = (Path(b["run_dir"]) / "bench.md").read_text()
        res["folds"].append(f)
        res["elapsed_min"] = (time.perf_counter() - t_start) / 60
        write(res)
        m = f["runtimes"]
        print(f"[fold {s}] MAE teacher {_mae(m, 'torch_teacher')} int8 fw {_mae(m, 'mcu_m4')} baseline "
              f"{f['baseline']['metrics']['mae']:.2f} ({f['seconds']:.0f} s)", flush=True)
    if len(res["folds"]) < 12:
        res["notes"].append(f"Only {len(res['folds'])} of 12 LOSO folds were trained and benched (time budget); "
                            f"the model rows cover subjects {', '.join(held)}; the baseline row 'all 12' covers all.")
    res["elapsed_min"] = (time.perf_counter() - t_start) / 60
    write(res)
    return 0


FW_RUNTIMES = ["tflm_int8", "brevitas_int8", "c_host", "c_host_single", "mcu_m4", "mcu_m33", "mcu_m55",
               "mcu_m4_single"]


def refresh_firmware(work: Path, data_root: Path) -> int:
    """Re-export the first fold's trained student with today's C generator; re-run the firmware rows."""
    from sqtool.core import git_sha
    from sqtool.export.cli import ExportConfig, export
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    res = read_json(RESULTS / "firmware_hr.json")
    s = res["folds"][0]["subject"]
    rec = next(p for p in sorted((data_root / "troika" / "Training_data").glob(f"DATA_{s}_TYPE*.mat"))
               if "BPM" not in p.name)
    exp = export(ExportConfig(model=str(work / f"run_hr_{s}"), target=["onnx", "tflite", "c"],
                              out=str(work / f"export_{s}_fw"), force=True))
    b = run_bench(BenchConfig(model=str(exp["out"]), data=str(rec), runtime=FW_RUNTIMES,
                              out=str(work / f"bench_{s}_fw"), force=True, callgrind_windows=4))
    keep = ("status", "metrics", "exact_pct", "exact_ref", "max_lsb_diff", "instructions_per_inference",
            "flash_bytes", "ram_bytes", "stack_high_water_bytes", "model_const_bytes", "arena_bytes", "windows",
            "error", "cpu", "board")
    res["firmware_refresh"] = {"subject": s, "git_sha": git_sha(),
                               "runtimes": {r["runtime"]: {k: r.get(k) for k in keep if k in r} for r in b["runtimes"]},
                               "bench_md": (Path(b["run_dir"]) / "bench.md").read_text()}
    art = R.load_artifacts(exp["out"])
    with np.load(Path(exp["out"]) / "heldout.npz") as z:
        q = R.quantize(z["x"][:8], *art.input_qparams)
    res["opt_sweep_m4"] = opt_sweep(Path(exp["out"]), work / "fw_refresh", q)
    res["notes"] = [n for n in res.get("notes", []) if not n.startswith("Firmware rows")] + [
        f"Firmware rows re-measured after the C generator changed (git {res['firmware_refresh']['git_sha']}): "
        f"subject {s}'s trained student re-exported and re-run (`python benchmarks/firmware_hr.py --firmware-from "
        f"WORK`); the LOSO accuracy table above is from the full run (integer arithmetic unchanged: the outputs "
        f"are bit-exact either way)."]
    write(res)
    return 0


def _mae(rows, k):
    m = (rows.get(k) or {}).get("metrics") or {}
    return "-" if m.get("mae") is None else f"{m['mae']:.2f}"


def write(res: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_metrics(RESULTS, res, "firmware_hr.json")                 # a metric it could not compute: null
    atomic_write_text(RESULTS / "firmware_hr.md", markdown(res))


def _t(v, fmt="{:.2f}"):
    return "-" if v is None else fmt.format(v)


def markdown(r: dict) -> str:
    L = ["# Firmware benchmark: streamed SP Cup heart rate on host runtimes and emulated Cortex-M", "",
         f"Machine: {r['machine']}; run {r['started']} ({r.get('elapsed_min', 0):.1f} min).",
         f"Command: `{r['command']}`",
         f"Tools: {r['tools'].get('arm_none_eabi_gcc')}; {r['tools'].get('qemu')}; {r['tools'].get('gcc')}", ""]
    ba = r.get("baseline_all")
    if ba:
        L += ["## Classic baseline on all 12 SP Cup training recordings", "",
              "Spectral HR + accelerometer spectral subtraction + peak tracking (sqtool.data.hr_baseline), "
              "8 s windows every 2 s at 125 Hz.", "",
              f"- pooled MAE **{ba['pooled_mae']:.2f} BPM**, mean of subjects {ba['mean_of_subjects']:.2f} BPM, "
              f"{100 * ba['pooled_gt10']:.1f} % of windows off by > 10 BPM",
              "- per subject: " + ", ".join(f"{k} {v['mae']:.1f}" for k, v in ba["per_subject"].items()),
              f"- {ba['signal_hours']:.2f} h of signal in {ba['seconds']:.1f} s "
              f"({ba['signal_hours'] * 3600 / max(ba['seconds'], 1e-9):.0f}x real time)", ""]
    folds = r.get("folds") or []
    if folds:
        names = [k for k in RUNTIMES if any(k in f["runtimes"] for f in folds)]
        L += [f"## Leave-one-subject-out, {len(folds)} of 12 folds (held-out subjects "
              f"{', '.join(f['subject'] for f in folds)}), streamed", "",
              "MAE in BPM on the held-out recording's windows (per-window output, then after the causal tracker). "
              "Same windows for every row.", "",
              "| runtime | " + " | ".join(f"subj {f['subject']}" for f in folds) + " | pooled MAE | pooled tracked | "
              "bit-exact % of windows |", "|---" * (len(folds) + 4) + "|"]
        for k in names + ["baseline"]:
            cells, errs_w, errs_t, ns = [], [], [], []
            for f in folds:
                row = f["baseline"] if k == "baseline" else f["runtimes"].get(k, {})
                m, mt = row.get("metrics") or {}, row.get("metrics_tracked") or {}
                cells.append(_t(m.get("mae")) if row.get("status", "ok") == "ok" else row.get("status", "-"))
                if m.get("mae") is not None:
                    errs_w.append(m["mae"] * m["n"])
                    errs_t.append((mt.get("mae") or 0) * m["n"])
                    ns.append(m["n"])
            pooled = sum(errs_w) / sum(ns) if ns else None
            pooled_t = sum(errs_t) / sum(ns) if ns else None
            ex = [(f["runtimes"].get(k, {}).get("exact_pct"), f["runtimes"].get(k, {}).get("windows") or 0)
                  for f in folds]
            ex = [(e, n) for e, n in ex if e is not None]
            ref = next((f["runtimes"][k]["exact_ref"] for f in folds if f["runtimes"].get(k, {}).get("exact_ref")), "")
            exs = "-" if not ex else (f"{sum(e * n for e, n in ex) / max(1, sum(n for _, n in ex)):.2f} pooled, "
                                      f"{min(e for e, _ in ex):.1f} worst fold (vs {ref})")
            L.append(f"| {k} | " + " | ".join(cells) + f" | {_t(pooled)} | {_t(pooled_t)} | {exs} |")
        f0 = folds[0]["runtimes"]
        fr = r.get("firmware_refresh")
        if fr:
            f0 = {**f0, **fr["runtimes"]}
        L += ["", "## Firmware (cnn1d_student_s, first fold's export"
              + (f", re-exported at git {fr['git_sha']})" if fr else ")"), "",
              "Instructions are executed instructions counted by the project's QEMU TCG plugin between "
              "sq_bench_begin/sq_bench_end (Cortex-M) or by valgrind callgrind in sq_model_run (host), NOT cycles.", "",
              "| build | instructions / 8 s window | flash KB | RAM KB (data+bss+stack HWM) | stack B | model const KB | arena KB |",
              "|---|---|---|---|---|---|---|"]
        for k in ("mcu_m4", "mcu_m33", "mcu_m55", "mcu_m4_single", "c_host"):
            row = f0.get(k)
            if not row or row.get("status") != "ok":
                continue
            ex = f" (bit-exact {row['exact_pct']:.1f} % vs {row['exact_ref']})" if row.get("exact_pct") is not None else ""
            L.append(f"| {k} -O2{ex} | {_t(row.get('instructions_per_inference'), '{:,.0f}')} | "
                     f"{_t(None if row.get('flash_bytes') is None else row['flash_bytes'] / 1024, '{:.1f}')} | "
                     f"{_t(None if row.get('ram_bytes') is None else row['ram_bytes'] / 1024, '{:.1f}')} | "
                     f"{_t(row.get('stack_high_water_bytes'), '{:.0f}')} | "
                     f"{_t((row.get('model_const_bytes') or 0) / 1024, '{:.1f}')} | {_t((row.get('arena_bytes') or 0) / 1024, '{:.1f}')} |")
        for o in r.get("opt_sweep_m4") or []:
            L.append(f"| mcu_m4 (opt sweep) {o['opt']} | {o['instructions_per_inference']:,.0f} | {o['flash_bytes'] / 1024:.1f} | "
                     f"{o['ram_bytes'] / 1024:.1f} | - | {o['model_const_bytes'] / 1024:.1f} | {(o['arena_bytes'] or 0) / 1024:.1f} |")
        m4 = f0.get("mcu_m4") or {}
        if m4.get("instructions_per_inference"):
            best = min([m4["instructions_per_inference"]] + [o["instructions_per_inference"] for o in r.get("opt_sweep_m4") or []])
            L += ["", f"- Cortex-M4 goal <= 1,000,000 instructions per window: **{'met' if best <= 1e6 else 'NOT met'}** "
                      f"(best {best:,.0f}); flash <= 64 KB: **{'met' if m4['flash_bytes'] <= 65536 else 'NOT met'}**; "
                      f"RAM <= 32 KB: **{'met' if m4['ram_bytes'] <= 32768 else 'NOT met'}**."]
        full = folds[0]["runtimes"]                          # timings from the full run's first fold
        rt = [(k, full[k].get("realtime_factor")) for k in ("tflm_int8", "c_host", "litert_int8", "onnx_float")
              if full.get(k, {}).get("realtime_factor")]
        if rt:
            L += ["- Host pipeline real-time factor (stream replay + resampling + filtering + model, one thread): "
                  + ", ".join(f"{k} {v:,.0f}x ({v / 3600:.2f} h of signal per s)" for k, v in rt)]
        L += ["", f"Stream: {folds[0]['stream']}"]
    for n in r.get("notes") or []:
        L += ["", f"Note: {n}"]
    if r.get("firmware_refresh"):
        L += ["", "## `sqtool bench` firmware re-run (current C generator)", "", "\n".join(
            ln for ln in r["firmware_refresh"]["bench_md"].split("\n")[2:] if not ln.startswith("!["))]
    if r.get("bench_md_first_fold"):
        L += ["", "## `sqtool bench` output of the first fold", "", "\n".join(
            ln for ln in r["bench_md_first_fold"].split("\n")[2:] if not ln.startswith("!["))]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
