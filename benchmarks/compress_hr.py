"""Compress benchmark: teacher float vs student float vs student int8 (Brevitas QAT) on real data.

HR (main): SP Cup 2015 / TROIKA, 12 training recordings, 8 s windows every 2 s at 40 Hz, leave-one-
subject-out. For every fold:
  1. teacher  = resnet1d_siamq_tiny, PPG only, fine-tuned FROM SCRATCH (no SiamQuality pretraining is
                available on this machine) on the 11 other subjects with the train stage's own loop
                (`sqtool.train.finetune._fit`, targets normalised by the training subjects' mean/std);
  2. `sqtool.compress.cli.quantize` on the same data with the held-out subject fixed: student
     cnn1d_student_s (PPG by default; --channels ppg,acc_x,acc_y,acc_z adds the accelerometer; + quality head),
     distillation, BN folding, calibration, QAT;
  3. the three models are scored on the held-out subject's windows; predictions are pooled over folds.
Goals (issue 4): |int8 - float| <= 0.1 BPM; student float within 10 % of the teacher. Published
anchors on the same 12 recordings: TROIKA 2.34 BPM, JOSS 1.28 BPM (signal processing).

Classification (float -> int8 delta): AF vs other rhythms on the PPG arrhythmia set (10 s at 40 Hz, PPG
only), one fixed subject split (3 of 12 patients held out), the same pipeline; weighted F1 and AUROC.

QAT wall time per epoch vs float training time per epoch are measured in the same runs (1 thread).

    nice .venv/bin/python benchmarks/compress_hr.py                   # full (about 30-40 min, 1 core)
    nice .venv/bin/python benchmarks/compress_hr.py --folds 3         # the first 3 LOSO folds only
Writes benchmarks/results/compress_hr.{json,md} (updated after every fold).
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

from sqtool.core.io import atomic_write_text, nan_if_none, read_json, write_metrics  # noqa: E402
PUBLISHED = {"TROIKA (Zhang 2015)": 2.34, "JOSS (Zhang 2015)": 1.28}


def train_teacher(td, idx, task: str, channels, epochs: int, lr: float, seed: int, path: Path):
    """A resnet1d_siamq_tiny fine-tuned from scratch on windows `idx` with the train stage's loop."""
    from sqtool.data.tasks import TASK_SPECS, task_model_cfg
    from sqtool.models import create_model, get_model_cfg
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.train.finetune import FinetuneConfig, _fit

    kind = TASK_SPECS[task]["kind"]
    mc = task_model_cfg(task, get_model_cfg("resnet1d_siamq_tiny"), channels=channels)
    y = td.y[idx]
    if kind == "regression":
        mc = mc.replace(target_mean=tuple(float(v) for v in y.mean(0)),
                        target_std=tuple(float(v) for v in y.std(0) + 1e-6))
        yn = ((y - np.array(mc.target_mean)) / np.array(mc.target_std)).astype(np.float32)
    else:
        yn = y.astype(np.float32)
    from sqtool.core import set_seed
    set_seed(seed)
    m = create_model(mc)
    fcfg = FinetuneConfig(task=task, epochs=epochs, lr=lr, batch_size=64, progress=False, seed=seed)
    import torch
    t0 = time.perf_counter()
    _fit(m, np.ascontiguousarray(td.x[idx][:, :len(channels)]), yn, fcfg, kind, torch.device("cpu"), seed)
    secs = time.perf_counter() - t0
    save_checkpoint(path, kind="teacher_task", model_cfg=mc.to_dict(), state_dict=m.state_dict(),
                    train_cfg={"benchmark": "compress_hr", "epochs": epochs, "lr": lr, "from_scratch": True})
    return m, secs / epochs


def run_fold(td, held: list[str], task: str, args, work: Path, tag: str, student_channels) -> dict:
    from sqtool.compress import distill as D
    from sqtool.compress.cli import QuantizeConfig, quantize
    from sqtool.models import ModelCfg, create_model
    from sqtool.core.checkpoint import load_checkpoint

    tr = np.flatnonzero(~np.isin(td.groups, held))
    te = np.flatnonzero(np.isin(td.groups, held))
    tpath = work / f"teacher_{tag}.pt"
    teacher, t_epoch_s = train_teacher(td, tr, task, ("ppg",), args.teacher_epochs, args.teacher_lr, args.seed, tpath)
    cfg = QuantizeConfig(teacher=str(tpath), task=task, student=args.student, preset=args.preset,
                         channels=list(student_channels), epochs=args.epochs, qat_epochs=args.qat_epochs,
                         heldout_subjects=list(held), out=str(work / f"run_{tag}"), seed=args.seed,
                         distill=not args.no_distill, alpha=args.alpha, feature_weight=args.feature_weight,
                         stretch=args.stretch if task == "hr" else 0.0)
    t0 = time.perf_counter()
    run_dir = quantize(cfg, data=td)
    wall = time.perf_counter() - t0
    m = read_json(run_dir / "metrics.json")
    # per-window predictions of the three models on the held-out windows (for pooled metrics)
    ck_q = load_checkpoint(run_dir / "model.pt", expect_kind="student_int8")
    ck_f = load_checkpoint(run_dir / "student_float.pt", expect_kind="student_float")
    q = create_model(ModelCfg.from_dict(ck_q["model_cfg"]))
    q.load_state_dict(ck_q["state_dict"], strict=True)
    f = create_model(ModelCfg.from_dict(ck_f["model_cfg"]))
    f.load_state_dict(ck_f["state_dict"], strict=True)
    spec = D.output_spec(q.cfg)
    tspec = D.output_spec(teacher.cfg)
    with np.load(run_dir / "heldout.npz") as z:
        x, y, groups = z["x"], z["y"], z["groups"]
    assert len(x) == len(te)
    out_q, out_f = D.predict(q, x), D.predict(f, x)
    out_t = D.predict(teacher, x[:, :1])
    return {
        "held_out": held, "windows": int(len(te)), "train_windows": int(len(tr)), "student": ck_q["model_cfg"]["name"],
        "metrics": {k: m[k]["metrics"] for k in ("teacher", "student_float", "student_int8", "student_int8_calibrated")
                    if k in m},
        "sqnr": m["sqnr"], "coverage": m.get("coverage"),
        "timing": {**m["timing"], "teacher_s_per_epoch": t_epoch_s, "quantize_wall_s": wall},
        "size": m["size"], "budget": m["budget"]["checks"], "teacher_params": m["teacher"]["params"],
        "pred": {"y": y, "groups": groups, "teacher": D.denormalise(out_t, tspec), "float": D.denormalise(out_f, spec),
                 "int8": D.denormalise(out_q, spec),
                 "quality_int8": out_q[:, spec.quality] if spec.quality is not None else None},
    }


def pooled_regression(folds) -> dict:
    from sqtool.core.metrics import sigmoid
    y = np.concatenate([f["pred"]["y"][:, 0] for f in folds])
    res = {}
    for k in ("teacher", "float", "int8"):
        p = np.concatenate([f["pred"][k][:, 0] for f in folds])
        res[k] = float(np.mean(np.abs(p - y)))
    if all("student_int8_calibrated" in f["metrics"] for f in folds):      # MAE is a mean over windows
        n = np.array([f["windows"] for f in folds], float)
        res["int8_calibrated"] = float(np.sum(n * [f["metrics"]["student_int8_calibrated"]["mae"] for f in folds])
                                       / n.sum())
        res["int8_calibrated_minus_float"] = res["int8_calibrated"] - res["float"]
    res["int8_minus_float"] = res["int8"] - res["float"]
    res["float_vs_teacher_rel"] = (res["float"] - res["teacher"]) / res["teacher"]
    per_subject = {k: float(np.mean([f["metrics"][m]["mae"] for f in folds]))
                   for k, m in (("teacher", "teacher"), ("float", "student_float"), ("int8", "student_int8"))}
    res["mean_of_subjects"] = per_subject
    # quality gating pooled over folds
    if folds[0]["pred"]["quality_int8"] is not None:
        prob = sigmoid(np.concatenate([f["pred"]["quality_int8"] for f in folds]))
        err = np.abs(np.concatenate([f["pred"]["int8"][:, 0] for f in folds]) - y)
        order = np.argsort(-prob, kind="mergesort")
        res["coverage"] = [{"coverage": c, "mae": float(err[order[:max(1, int(round(c * len(err))))]].mean())}
                           for c in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)]
    return res


def pooled_classification(folds, task) -> dict:
    from sqtool.core.metrics import task_metrics
    y = np.concatenate([f["pred"]["y"] for f in folds])
    res = {}
    for k in ("teacher", "float", "int8"):
        p = np.concatenate([f["pred"][k] for f in folds])
        res[k] = task_metrics(task, y, p)
    g = np.concatenate([np.asarray(f["pred"]["groups"]) for f in folds])
    for k in ("teacher", "float", "int8"):               # AUROC by subject: those whose windows hold both classes
        p = np.concatenate([f["pred"][k] for f in folds])[:, 0]
        per = {str(s): task_metrics(task, y[g == s], p[g == s])["auroc"] for s in np.unique(g)}
        vals = [v for v in per.values() if np.isfinite(v)]
        res[k]["auroc_by_subject"] = float(np.mean(vals)) if vals else None
        res[k]["subjects_both_classes"] = len(vals)
        res[k]["auroc_per_subject"] = {s: (float(v) if np.isfinite(v) else None) for s, v in per.items()}
    res["int8_minus_float_f1"] = res["int8"]["f1_weighted"] - res["float"]["f1_weighted"]
    res["int8_minus_float_auroc"] = res["int8"]["auroc"] - res["float"]["auroc"]
    return res


def class_folds(subjects, pos, neg, k: int, rng) -> list[list[str]]:
    """k groups of held-out subjects covering every subject once (seeded): the subjects with positive windows dealt
    round-robin first, then the rest, so each fold's held-out windows hold both classes where the data allow."""
    pos_set = set(pos)
    a = [str(v) for v in rng.permutation([s for s in subjects if s in pos_set])]
    b = [str(v) for v in rng.permutation([s for s in subjects if s not in pos_set])]
    k = max(1, min(k, len(subjects)))
    out = [[] for _ in range(k)]
    for i, s in enumerate(a + b):
        out[(i % k) if i < len(a) else (k - 1 - (i - len(a)) % k)].append(s)
    return [sorted(f) for f in out if f]


def strip(fold):
    return {k: v for k, v in fold.items() if k != "pred"}


def write(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = results["args"].get("results_name", "compress_hr")
    write_metrics(RESULTS, results, f"{name}.json")                 # NaN / infinity (an SQNR without noise): null
    atomic_write_text(RESULTS / f"{name}.md", markdown(results))


def _t(v, nd=2):
    return "-" if v is None else f"{v:.{nd}f}"


def markdown(r: dict) -> str:
    a = r["args"]
    used = {k: r[k]["folds"][0].get("student") for k in ("hr", "af") if r.get(k) and r[k].get("folds")}
    students = ", ".join(f"{n} ({'heart rate' if k == 'hr' else r['af'].get('task', k)})"
                         for k, n in used.items() if n) or a["student"] or "quantize's default"
    L = ["# Compress benchmark: teacher -> student float -> student int8 (Brevitas QAT)", "",
         f"Machine: {r['machine']}; 1 torch thread; run {r['started']} ({r['elapsed_min']:.1f} min).",
         f"Command: `{r['command']}`", "",
         f"Teacher: resnet1d_siamq_tiny ({r.get('teacher_params', 0):,} params), PPG only, fine-tuned from scratch "
         f"per fold ({a['teacher_epochs']} epochs, lr {a['teacher_lr']}). Student: {students} "
         f"({a['preset']}), {'HR: channels ' + a['channels'] + ' + quality head; classification: ppg' if r.get('hr') else 'channels ppg'}, {a['epochs']} float epochs (distillation alpha "
         f"{a['alpha'] if not a['no_distill'] else 0}), BN folded, calibrated, {a['qat_epochs']} QAT epochs.", ""]
    hr = r.get("hr")
    if hr:
        p = hr.get("pooled") or {}
        L += [f"## Heart rate, SP Cup 2015 training set, leave-one-subject-out "
              f"({len(hr['folds'])} of 12 folds{'' if len(hr['folds']) == 12 else ' - NOT all folds, see below'})", "",
              "| model | MAE (BPM, pooled windows) | MAE (mean of subjects) | params | int8 weight bytes | MACs / 8 s window |",
              "|---|---|---|---|---|---|"]
        if p:
            s = hr["folds"][0]["size"]
            ms = p["mean_of_subjects"]
            L.append(f"| teacher float (resnet1d_siamq_tiny) | {_t(p['teacher'])} | {_t(ms['teacher'])} | "
                     f"{r.get('teacher_params', 0):,} | - | - |")
            L.append(f"| student float | {_t(p['float'])} | {_t(ms['float'])} | {s['params']:,} | - | {s['macs_per_window']:,} |")
            if "int8_calibrated" in p:
                L.append(f"| student int8, BN folded + calibrated (before QAT) | {_t(p['int8_calibrated'])} | - | "
                         f"{s['params']:,} | {s['int8_weight_bytes']:,} | {s['macs_per_window']:,} |")
            L.append(f"| student int8 after QAT (fake-quant) | {_t(p['int8'])} | {_t(ms['int8'])} | {s['params']:,} | "
                     f"{s['int8_weight_bytes']:,} | {s['macs_per_window']:,} |")
            for name, v in PUBLISHED.items():
                L.append(f"| {name}, published | {v:.2f} | - | - | - | - |")
            ok1 = abs(p["int8_minus_float"]) <= 0.1
            ok2 = p["float_vs_teacher_rel"] <= 0.10
            L += ["", f"- int8 (after QAT) - float: **{p['int8_minus_float']:+.3f} BPM** (goal |delta| <= 0.1: "
                      f"{'met' if ok1 else 'NOT met'}; QAT is {a['qat_epochs']} more epochs of training, so this mixes "
                      f"quantization error with further learning)"]
            if "int8_calibrated_minus_float" in p:
                ok0 = abs(p["int8_calibrated_minus_float"]) <= 0.1
                L += [f"- int8 before QAT (BN folded + calibrated: the quantization error alone) - float: "
                      f"**{p['int8_calibrated_minus_float']:+.3f} BPM** ({'met' if ok0 else 'NOT met'})"]
            L += [
                  f"- student float vs teacher: **{100 * p['float_vs_teacher_rel']:+.1f} %** (goal <= +10 %: "
                  f"{'met' if ok2 else 'NOT met'})",
                  f"- against the published signal-processing anchors: student int8 {p['int8']:.2f} BPM vs "
                  f"TROIKA 2.34 / JOSS 1.28 BPM."]
            if p.get("coverage"):
                L += ["", "Quality gating (int8 student, pooled): MAE when keeping the most confident windows", "",
                      "| coverage | " + " | ".join(f"{c['coverage']:.0%}" for c in p["coverage"]) + " |",
                      "|---|" + "---|" * len(p["coverage"]),
                      "| MAE BPM | " + " | ".join(f"{c['mae']:.2f}" for c in p["coverage"]) + " |"]
        L += ["", "Per fold (MAE BPM on the held-out subject):", "",
              "| subject | windows | teacher | float | int8 calibrated | int8 QAT | int8 QAT - float | min layer SQNR dB "
              "| float s/epoch | QAT s/epoch |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for f in hr["folds"]:
            m = f["metrics"]
            L.append(f"| {','.join(f['held_out'])} | {f['windows']} | {_t(m['teacher']['mae'])} | "
                     f"{_t(m['student_float']['mae'])} | {_t(m.get('student_int8_calibrated', {}).get('mae'))} | "
                     f"{_t(m['student_int8']['mae'])} | "
                     f"{m['student_int8']['mae'] - m['student_float']['mae']:+.3f} | "
                     f"{np.nanmin([nan_if_none(x['sqnr_db']) for x in f['sqnr']]):.1f} | "
                     f"{_t(f['timing']['float_s_per_epoch'])} | "
                     f"{_t(f['timing']['qat_s_per_epoch'])} |")
    af = r.get("af")
    if af:
        p = af["pooled"]
        title = {"af": "AF vs other rhythms (PPG arrhythmia set, 12 patients)",
                 "quality": "signal quality good vs poor (BUT PPG, multi-wavelength PPG human labels; TROIKA windows by the quality index)"}[af.get("task", "af")]
        fl = af["folds"]
        n_sub = sum(len(f["held_out"]) for f in fl)
        L += ["", f"## {title}: {len(fl)} folds{'' if len(fl) == af.get('folds_planned', len(fl)) else ' of ' + str(af['folds_planned']) + ' (cut short)'}, "
                  f"every subject held out once ({n_sub} of {af['subjects']} subjects, "
                  f"{sum(f['windows'] for f in fl)} windows), each fold's models trained on the other subjects",
              "", "Pooled over the folds' held-out windows; AUROC by subject: the mean over the subjects whose windows "
                  "hold both classes.", "",
              "| model | weighted F1 | AUROC | AUROC by subject | accuracy |", "|---|---|---|---|---|"]
        for k, name in (("teacher", "teacher float"), ("float", "student float"), ("int8", "student int8")):
            L.append(f"| {name} | {_t(p[k]['f1_weighted'], 3)} | {_t(p[k]['auroc'], 3)} | "
                     f"{_t(p[k].get('auroc_by_subject'), 3)} ({p[k].get('subjects_both_classes', '-')}) | "
                     f"{_t(p[k]['accuracy'], 3)} |")
        L += ["", f"- int8 - float: weighted F1 {p['int8_minus_float_f1']:+.4f}, AUROC {p['int8_minus_float_auroc']:+.4f}"]
        cal = [f["metrics"].get("student_int8_calibrated") for f in fl]
        if all(cal):
            L.append("- int8 after BN folding + calibration only (before QAT), per fold: AUROC "
                     + ", ".join(_t(c["auroc"], 3) for c in cal))
        L += ["", "| fold | held out | windows | teacher AUROC | float AUROC | int8 AUROC |", "|---|---|---|---|---|---|"]
        for i, f in enumerate(fl):
            m = f["metrics"]
            L.append(f"| {i + 1} | {', '.join(f['held_out'])} | {f['windows']} | {_t(m['teacher'].get('auroc'), 3)} | "
                     f"{_t(m['student_float'].get('auroc'), 3)} | {_t(m['student_int8'].get('auroc'), 3)} |")
    t = r.get("timing")
    if t:
        L += ["", "## Training time per epoch (same runs, 1 thread)", "",
              "| | teacher float | student float | student QAT (Brevitas) | QAT / float |", "|---|---|---|---|---|",
              f"| s / epoch (mean over HR folds, ~{t['train_windows']} windows) | {_t(t['teacher'])} | {_t(t['float'])} | "
              f"{_t(t['qat'])} | {_t(t['qat'] / t['float'])}x |"]
    if r.get("notes"):
        L += ["", "## Notes", ""] + [f"- {n}" for n in r["notes"]]
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    from sqtool.core import DATA_ROOT_HELP, data_root_or_exit
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--folds", type=int, default=12, help="number of LOSO folds to run (in subject order)")
    ap.add_argument("--subjects", default="", help="comma-separated subjects to hold out (overrides --folds)")
    ap.add_argument("--teacher-epochs", type=int, default=20)
    ap.add_argument("--teacher-lr", type=float, default=3e-3)
    ap.add_argument("--student", default="", help="registry student (default: quantize's, the one that fits the "
                                                  "teacher's window: cnn1d_student_s for hr's 8 s, cnn1d_student_xs "
                                                  "for af's and quality's 10 s at 40 Hz)")
    ap.add_argument("--preset", default="int8_w_per_channel_a_per_tensor")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--qat-epochs", type=int, default=8)
    ap.add_argument("--channels", default="ppg", help="student channels for HR (ppg or ppg,acc_x,acc_y,acc_z)")
    ap.add_argument("--alpha", type=float, default=0.7)
    ap.add_argument("--feature-weight", type=float, default=0.0)
    ap.add_argument("--stretch", type=float, default=0.0, help="time-stretch augmentation (HR only)")
    ap.add_argument("--no-distill", action="store_true")
    ap.add_argument("--skip-af", action="store_true", help="skip the classification task")
    ap.add_argument("--cls-task", default="af", choices=("af", "quality"), help="classification task for the "
                                                                             "float -> int8 delta")
    ap.add_argument("--skip-hr", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cls-folds", type=int, default=4, help="classification: folds of held-out subjects, every "
                                                             "subject held out once (seeded)")
    ap.add_argument("--results-name", default="compress_hr", help="benchmarks/results/<name>.{json,md}")
    args = ap.parse_args(argv)
    args.data_root = data_root_or_exit(args.data_root, ap.error)

    import platform

    import torch
    torch.set_num_threads(1)
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    t_start = time.perf_counter()
    results = {"command": "python benchmarks/compress_hr.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "args": vars(args), "started": started, "elapsed_min": 0.0,
               "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), torch {torch.__version__}",
               "notes": []}
    prev = RESULTS / f"{args.results_name}.json"
    if args.skip_hr and prev.is_file():                       # keep the HR section of an earlier run
        old = read_json(prev)
        for k in ("hr", "timing", "teacher_params"):
            if k in old:
                results[k] = old[k]
        results["notes"] += [n for n in old.get("notes", []) if n.startswith("HR")]
    work = Path(tempfile.mkdtemp(prefix="sq_compress_bench_"))
    if not args.skip_hr:
        scfg = task_model_cfg("hr", get_model_cfg(args.student or "cnn1d_student_s"),      # 40 Hz, 8 s / 2 s
                              channels=args.channels.split(","))
        td = load_task("hr", args.data_root, scfg)
        subjects = sorted(np.unique(td.groups).tolist())
        held = [s for s in args.subjects.split(",") if s] or subjects[:args.folds]
        folds = []
        for s in held:
            t0 = time.perf_counter()
            f = run_fold(td, [s], "hr", args, work, f"hr_{s}", scfg.channels)
            folds.append(f)
            print(f"[hr] subject {s}: teacher {f['metrics']['teacher']['mae']:.2f}  float "
                  f"{f['metrics']['student_float']['mae']:.2f}  int8 {f['metrics']['student_int8']['mae']:.2f} BPM "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
            results["teacher_params"] = f["teacher_params"]
            results["hr"] = {"folds": [strip(x) for x in folds], "pooled": pooled_regression(folds)}
            results["timing"] = {k: float(np.mean([x["timing"][v] for x in folds])) for k, v in
                                 (("teacher", "teacher_s_per_epoch"), ("float", "float_s_per_epoch"),
                                  ("qat", "qat_s_per_epoch"))}
            results["timing"]["train_windows"] = int(np.mean([x["train_windows"] for x in folds]))
            results["elapsed_min"] = (time.perf_counter() - t_start) / 60
            write(results)
        if len(folds) < 12:
            results["notes"].append(f"HR: only {len(folds)} of 12 LOSO folds were run (time budget); pooled "
                                    f"figures cover subjects {', '.join(held)}.")
    if not args.skip_af:
        task = args.cls_task
        acfg = task_model_cfg(task, get_model_cfg(args.student or "cnn1d_student_s"), channels=("ppg",))
        td = load_task(task, args.data_root, acfg)
        subjects = sorted(np.unique(td.groups).tolist())
        rng = np.random.default_rng(args.seed)
        pos = sorted({str(g) for g, yy in zip(td.groups, td.y[:, 0]) if yy > 0.5})
        neg = sorted({str(g) for g, yy in zip(td.groups, td.y[:, 0]) if yy <= 0.5})
        folds_cls = class_folds(subjects, pos, neg, args.cls_folds, rng)
        done = []
        for i, pick in enumerate(folds_cls):
            f = run_fold(td, pick, task, args, work, f"{task}{i}", ("ppg",))
            done.append(f)
            results["teacher_params"] = f["teacher_params"]
            results["af"] = {"task": task, "folds": [strip(x) for x in done],
                             "pooled": pooled_classification(done, task), "windows": int(len(td)),
                             "subjects": len(subjects), "folds_planned": len(folds_cls)}
            write(results)
            a = pooled_classification([f], task)
            print(f"[{task}] fold {i + 1}/{len(folds_cls)} held out {len(pick)} subjects: AUROC teacher "
                  f"{a['teacher']['auroc']:.3f} float {a['float']['auroc']:.3f} int8 {a['int8']['auroc']:.3f}",
                  flush=True)
    results["elapsed_min"] = (time.perf_counter() - t_start) / 60
    write(results)
    print(RESULTS / f"{args.results_name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
