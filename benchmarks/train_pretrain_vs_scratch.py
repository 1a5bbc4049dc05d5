"""Does SiamQuality pretraining help? Fine-tune every task from the pretrained encoder and from scratch
with the same budget, folds and seed, with all labels and with 10 % of them.

    OMP_NUM_THREADS=1 nice python benchmarks/train_pretrain_vs_scratch.py \\
        [--pairs DIR] [--model resnet1d_siamq_tiny] [--pretrain-epochs 20] [--epochs 5] [--tasks hr,rr,af,bp,quality]

1. Pairs: `sqtool data pairs --data <data>/unlabeled <data>/bidmc <data>/troika <data>/mw_ppg --hop-s 10
   --synthetic-fallback` (real (good, poor) pairs where a record has both; otherwise the good window's
   partner is a synthetically corrupted copy, counted in the output). Made here if --pairs is absent.
   The pretraining corpus is label-free PPG; BIDMC and TROIKA recordings are also downstream task data
   (their PPG, never their labels, is seen in pretraining): stated in the output.
2. Pretrain the model with SimSiam (`sqtool train pretrain`, SGD Nesterov, wd 1e-4, step decay; lr and
   batch from the arguments: the paper's lr 1e-4 is for 36 M pairs and barely moves a small run).
3. For each task, fraction (1.0, 0.1) and init (scratch, pretrained): `run_finetune` with identical
   config (full fine-tuning, same epochs, same subject folds: LOSO for hr, 5-fold otherwise, same seed;
   with 10 % the same random 10 % of each fold's training windows for both inits). Out-of-fold metric,
   subject-bootstrap 95 % CI per cell, and a paired subject-bootstrap CI of (pretrained - scratch).
4. Regression rows also carry the fold-mean baseline: each test window predicted by the mean target of
   its fold's training windows (all of them), the skill floor a model has to beat.
Writes benchmarks/results/train_pretrain_vs_scratch.{json,md}. With --tasks a subset, the rows of the other
tasks already in the JSON are kept (merged by task and label fraction), so one task can be re-run alone.
A run dir in --work is reused only if it was made with the same input band as the task's model cfg now.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"


def paired_delta_ci(task, y, pred_a, pred_b, groups, metric, n_boot=1000, seed=0):
    """95 % CI of metric(b) - metric(a) over subject resamples (the same resample for both)."""
    from sqtool.core.metrics import task_metrics
    subjects = np.unique(groups)
    idx_of = {s: np.flatnonzero(groups == s) for s in subjects}
    rng = np.random.default_rng(seed)
    d = []
    for _ in range(n_boot):
        idx = np.concatenate([idx_of[s] for s in rng.choice(subjects, len(subjects))])
        va = task_metrics(task, y[idx], pred_a[idx])[metric]
        vb = task_metrics(task, y[idx], pred_b[idx])[metric]
        if np.isfinite(va) and np.isfinite(vb):
            d.append(vb - va)
    return [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]


def fold_mean_mae(y, fold):
    """MAE of predicting each test window by the mean target of its fold's training windows."""
    pred = np.empty_like(y, dtype=np.float64)
    for f in np.unique(fold):
        te = fold == f
        pred[te] = y[~te].mean(0)
    return float(np.mean(np.abs(pred - y)))


def spectral_rr(x, fs, lo=0.1, hi=0.6):
    """Model-free breaths/min of each window (N, T): peak of the Hann-windowed, zero-padded power spectrum
    in lo..hi Hz (the respiratory baseline modulation; same estimator as tests/data/test_tasks.py)."""
    x = x - x.mean(-1, keepdims=True)
    p = np.abs(np.fft.rfft(x * np.hanning(x.shape[-1]), 1 << 14)) ** 2
    f = np.fft.rfftfreq(1 << 14, 1.0 / fs)
    band = (f >= lo) & (f <= hi)
    return 60.0 * f[band][np.argmax(p[:, band], -1)]


def _band_of(m):
    b = m.get("input", {}).get("band", [0.5, 8.0])           # runs made before the band field: the default
    return None if b is None else [None if v is None else float(v) for v in b]


def main() -> int:
    from sqtool.core import DATA_ROOT_HELP, data_root_or_exit
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench_pretrain_vs_scratch"))
    ap.add_argument("--pairs", default=None)
    ap.add_argument("--model", default="resnet1d_siamq_tiny")
    ap.add_argument("--pretrain-epochs", type=int, default=20)
    ap.add_argument("--pretrain-lr", type=float, default=0.05)
    ap.add_argument("--pretrain-batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--tasks", default="hr,rr,af,bp,quality")
    ap.add_argument("--fractions", default="1.0,0.1")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    from sqtool.train.finetune import FinetuneConfig, run_finetune
    from sqtool.core.metrics import auroc, primary_metric
    from sqtool.train.pretrain import PretrainConfig, run_pretrain

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    data = Path(data_root_or_exit(a.data_root, ap.error))
    pairs = Path(a.pairs) if a.pairs else work / "pairs"
    if not (pairs / "index.json").is_file():
        cmd = [sys.executable, "-m", "sqtool.cli", "data", "pairs", "--data", *(str(data / d) for d in
               ("unlabeled", "bidmc", "troika", "mw_ppg")), "--hop-s", "10", "--synthetic-fallback",
               "--workers", "1", "--no-progress", "--force", "--out", str(pairs)]
        subprocess.run(cmd, check=True)
    pairs_metrics = json.loads((pairs / "metrics.json").read_text()) if (pairs / "metrics.json").is_file() else {}

    pre_dir = work / "pretrain"
    if not (pre_dir / "model.pt").is_file():
        pre_dir.mkdir(parents=True, exist_ok=True)
        pm = run_pretrain(PretrainConfig(model=a.model, pairs=str(pairs), epochs=a.pretrain_epochs,
                                         batch_size=a.pretrain_batch, lr=a.pretrain_lr, seed=a.seed,
                                         lr_step_epochs=10, val_fraction=0.05, progress=False), pre_dir)
    else:
        pm = json.loads((pre_dir / "metrics.json").read_text())
    pretrain_summary = {k: pm.get(k) for k in ("model", "pairs", "train_pairs", "val_pairs", "epochs_done",
                                               "global_step", "first_loss", "final_loss", "val_loss", "val_z_std",
                                               "z_std_healthy", "collapsed", "elapsed_s")}
    print("pretrain:", json.dumps(pretrain_summary), flush=True)

    rows = []
    for task in a.tasks.split(","):
        mc = task_model_cfg(task, get_model_cfg(a.model))
        band = None if mc.band is None else [None if v is None else float(v) for v in mc.band]
        t0 = time.perf_counter()
        td = load_task(task, data, mc, seed=a.seed)
        load_s = time.perf_counter() - t0
        for frac in [float(f) for f in a.fractions.split(",")]:
            res = {}
            for init in ("scratch", "pretrained"):
                d = work / f"{task}-{frac:g}-{init}"
                d.mkdir(parents=True, exist_ok=True)
                cfg = FinetuneConfig(task=task, init=str(pre_dir) if init == "pretrained" else "none",
                                     model=a.model, mode="full", epochs=a.epochs, lr=a.lr, label_fraction=frac,
                                     final_fit=False, seed=a.seed, progress=False, data_root=str(data))
                m = None
                if (d / "metrics.json").is_file() and (d / "oof_predictions.npz").is_file():
                    m = json.loads((d / "metrics.json").read_text())      # finished earlier in this --work dir
                    if _band_of(m) != band:
                        print(f"{d}: made with band {_band_of(m)}, the task now uses {band}: re-running", flush=True)
                        m = None
                if m is None:
                    m = run_finetune(cfg, d, task_data=td)
                res[init] = (m, np.load(d / "oof_predictions.npz"))
                print(f"{task} {frac:g} {init}: {m['primary_metric']} {m[m['primary_metric']]:.3f} "
                      f"({m['elapsed_s']:.0f} s)", flush=True)
            metric = primary_metric(task)
            ms, mp = res["scratch"][0], res["pretrained"][0]
            o_s, o_p = res["scratch"][1], res["pretrained"][1]
            rows.append({
                "task": task, "metric": metric, "label_fraction": frac, "windows": ms["windows"],
                "subjects": ms["subjects"], "folds": ms["folds"], "dataset": ms["dataset"],
                "scratch": ms[metric], "scratch_ci95": ms["ci95"].get(metric),
                "pretrained": mp[metric], "pretrained_ci95": mp["ci95"].get(metric),
                "delta_pretrained_minus_scratch": mp[metric] - ms[metric],
                "delta_ci95": paired_delta_ci(task, o_s["y"], o_s["pred"], o_p["pred"], o_s["groups"], metric,
                                              seed=a.seed),
                "better": "lower" if metric == "mae" else "higher",
                "extra_metrics": {"scratch": ms["metrics"], "pretrained": mp["metrics"]},
                "finetune_s": ms["elapsed_s"] + mp["elapsed_s"], "load_s": load_s,
                "input": ms["input"], "command": "OMP_NUM_THREADS=1 nice python benchmarks/train_pretrain_vs_scratch.py "
                + " ".join(sys.argv[1:]),
            })
            if metric == "mae":
                rows[-1]["fold_mean_baseline"] = fold_mean_mae(o_s["y"], o_s["fold"])
            if task == "rr":                      # is the respiration in the windows at all? (model-free)
                err = np.abs(spectral_rr(td.x[:, 0], mc.fs) - td.y[:, 0])
                fm = np.empty(len(o_s["y"]))
                for f_ in np.unique(o_s["fold"]):
                    fm[o_s["fold"] == f_] = o_s["y"][o_s["fold"] != f_, 0].mean()
                ae = {"spectral_0.1-0.6Hz": err, "fold_mean": np.abs(fm - o_s["y"][:, 0]),
                      "scratch": np.abs(o_s["pred"][:, 0] - o_s["y"][:, 0]),
                      "pretrained": np.abs(o_p["pred"][:, 0] - o_p["y"][:, 0])}
                rows[-1]["rr_error_summary"] = {k: {"mae": float(v.mean()), "median_ae": float(np.median(v)),
                                                    "within_2": float(np.mean(v <= 2.0))} for k, v in ae.items()}
            if task == "quality":                 # the sources differ in device and label kind: AUROC within each
                src = np.array([r.split(":")[0] for r in o_s["record_ids"]])
                rows[-1]["auroc_within_source"] = {
                    init: {s_: {"windows": int((src == s_).sum()), "positives": int(o["y"][src == s_, 0].sum()),
                                "auroc": auroc(o["y"][src == s_, 0], o["pred"][src == s_, 0])}
                           for s_ in np.unique(src).tolist()} for init, o in (("scratch", o_s), ("pretrained", o_p))}

    old_path = OUT / "train_pretrain_vs_scratch.json"
    if old_path.is_file():                        # keep the rows of tasks / fractions not re-run now
        new_keys = {(r["task"], r["label_fraction"]) for r in rows}
        old_rows = [r for r in json.loads(old_path.read_text()).get("rows", [])
                    if (r["task"], r["label_fraction"]) not in new_keys]
        order = {t: i for i, t in enumerate(("hr", "rr", "af", "bp", "quality"))}
        rows = sorted(old_rows + rows, key=lambda r: (order.get(r["task"], 99), -r["label_fraction"]))
    res = {"model": a.model, "pairs": str(pairs), "pairs_summary": {k: pairs_metrics.get(k) for k in
           ("pairs", "synthetic_pairs", "subjects_with_pairs", "datasets")},
           "pretrain": pretrain_summary,
           "finetune": {"mode": "full", "epochs": a.epochs, "lr": a.lr, "optimizer": "AdamW + one-cycle",
                        "folds": "LOSO for hr, 5-fold by subject otherwise", "seed": a.seed},
           "rows": rows, "wall_s": time.perf_counter() - t_all,
           "command": "OMP_NUM_THREADS=1 nice python benchmarks/train_pretrain_vs_scratch.py " + " ".join(sys.argv[1:])}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "train_pretrain_vs_scratch.json").write_text(json.dumps(res, indent=2, default=float) + "\n")
    lines = [f"# Pretrained vs scratch ({a.model}, full fine-tuning, {a.epochs} epochs, same folds and seed)", "",
             "| task | metric | labels | input band Hz | fold-mean baseline | scratch [95 % CI] | pretrained [95 % CI] "
             "| pretrained - scratch [95 % CI] |",
             "|---|---|---|---|---|---|---|---|"]

    def f(v, ci):
        return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{v:.3f}"
    for r in rows:
        b = r.get("input", {}).get("band", [0.5, 8.0])
        b = "none" if b is None else "-".join("0" if v is None else f"{v:g}" for v in b)
        base = f"{r['fold_mean_baseline']:.3f}" if "fold_mean_baseline" in r else "-"
        lines.append(f"| {r['task']} | {r['metric']} ({r['better']} is better) | {100 * r['label_fraction']:.0f} % | "
                     f"{b} | {base} | {f(r['scratch'], r['scratch_ci95'])} | {f(r['pretrained'], r['pretrained_ci95'])} | "
                     f"{f(r['delta_pretrained_minus_scratch'], r['delta_ci95'])} |")
    for r in rows:
        if "auroc_within_source" in r:
            w = r["auroc_within_source"]
            lines.append("")
            lines.append(f"quality, {100 * r['label_fraction']:.0f} % labels, AUROC within each source (scratch / "
                         f"pretrained): " + "; ".join(
                             f"{s_} ({v['windows']} windows, {v['positives']} good) {v['auroc']:.3f} / "
                             f"{w['pretrained'][s_]['auroc']:.3f}" for s_, v in w["scratch"].items()))
    for r in rows:
        if "rr_error_summary" in r:
            lines += ["", f"rr, {100 * r['label_fraction']:.0f} % labels, absolute error in breaths/min (MAE / median / "
                      f"share within 2): " + "; ".join(f"{k} {v['mae']:.2f} / {v['median_ae']:.2f} / {v['within_2']:.2f}"
                                                       for k, v in r["rr_error_summary"].items())
                      + ". spectral = peak of each window's 0.1-0.6 Hz spectrum, no training: the respiration is in "
                        "the windows (most windows within 2 breaths/min; MAE inflated by outliers), the fine-tuned "
                        "model does not yet extract it."]
    ps = res["pairs_summary"]
    lines += ["", f"Pretraining: {pretrain_summary['pairs']} ({ps.get('synthetic_pairs')} of {ps.get('pairs')} with a "
              f"synthetically corrupted poor partner), {pretrain_summary['epochs_done']} epochs, SimSiam loss "
              f"{pretrain_summary['first_loss']:.3f} -> {pretrain_summary['final_loss']:.3f}, val z std "
              f"{pretrain_summary['val_z_std']:.3f} (healthy ~{pretrain_summary['z_std_healthy']:.3f}), "
              f"{pretrain_summary['elapsed_s']:.0f} s.",
              "Pretraining saw the label-free PPG of unlabeled/, BIDMC, TROIKA and MW-PPG (BIDMC and TROIKA are "
              "also the rr and hr task data; none of their labels).",
              "Input band: the band-pass of the task's model cfg (`ModelCfg.band`); rr uses 0.05-8 Hz so the "
              "respiratory modulation of the PPG survives (the pretrained encoder saw 0.5-8 Hz windows). "
              "Fold-mean baseline: each test window predicted by its training folds' mean target.",
              "Rows come from the last invocation that ran their task (see `command` per row in the JSON).",
              "Without --pairs the script first runs the same `sqtool data pairs` command it documents; the "
              "pairs of this run were mined beforehand with exactly that command.",
              f"Wall time of this invocation {res['wall_s'] / 60:.1f} min on 1 thread (runs already finished in "
              f"--work are reused). Command: `{res['command']}`", ""]
    (OUT / "train_pretrain_vs_scratch.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
