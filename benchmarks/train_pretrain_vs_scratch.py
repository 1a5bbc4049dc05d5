"""Does SiamQuality pretraining help? Fine-tune every task from the pretrained encoder and from scratch
with the same budget, folds and seed, with all labels and with 10 % of them.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/train_pretrain_vs_scratch.py \\
        [--pairs DIR] [--model resnet1d_siamq_tiny] [--pretrain-epochs 20] [--epochs 5] [--tasks hr,rr,af,bp,quality]

1. Pairs: `sqtool data pairs --data <data>/unlabeled <data>/bidmc <data>/troika <data>/mw_ppg --hop-s 10
   --synthetic-partners` (real (good, poor) pairs where a record has both; otherwise the good window's
   partner is a synthetically corrupted copy, counted in the output). Made here if --pairs is absent.
   The pretraining corpus is label-free PPG, but it is not disjoint from the tasks: BIDMC is the rr data,
   TROIKA the hr data, and MW-PPG and TROIKA are two of the quality task's three sources; TROIKA's quality
   labels are the quality index > 0.5, the very index and threshold that split the pretraining windows into
   good and poor. Stated in the output: the quality comparison is not a clean test of pretraining.
2. Pretrain the model with SimSiam (`sqtool train pretrain`, SGD Nesterov, wd 1e-4, step decay; lr and
   batch from the arguments: the paper's lr 1e-4 is for 36 M pairs and barely moves a small run).
3. For each task, fraction (1.0, 0.1) and init (scratch, pretrained): `run_finetune` with identical
   config (full fine-tuning, same epochs, same subject folds: LOSO for hr, 5-fold otherwise, same seed;
   with 10 % the same random 10 % of each fold's training windows for both inits). Out-of-fold metric
   (MAE; AUROC for af and quality, `core.metrics.skill_metric`: weighted F1 at a 0.5 threshold only in the
   JSON), subject-bootstrap 95 % CI per cell, and (pretrained - scratch) with its t-interval over the subjects
   and a two-sided paired p (`core.metrics.paired_metric_test`: for MAE each subject's two sets of predictions
   swapped or not, exact over all 2^S patterns up to 12 subjects, else 10,000 sampled, and the t-interval of the
   subjects' window-weighted differences; for AUROC the clustered DeLong test and its t-interval), every one
   printed with its direction: "pretrained better" / "pretrained WORSE" only where p < 0.05 AND the CI excludes
   zero, else "no difference shown"; not adjusted for the 10 comparisons. The percentile subject bootstrap that
   gave the difference's CI and p before is too narrow with few subjects (hr has 12, af 12 patients): with 12
   subjects and no true difference its p fell below 0.05 in 8.1 % of simulated runs.
4. Every row also carries the trivial predictor on the same folds (all training windows): the fold mean
   (regression), one constant base-rate logit (af, AUROC 0.5) or, for quality, each source's own training
   base rate (`core.metrics.source_trivial`: pooled over its three sources that alone reaches a high
   AUROC), and each init's paired test against it ("no skill", `core.metrics.skill_test`). Quality also gets per-source
   AUROCs with CIs (the trivial is 0.5 within a source).
Writes benchmarks/results/train_pretrain_vs_scratch.{json,md} (--out: elsewhere; --restate: only the Markdown,
from the JSON, without training). With --tasks a subset, the rows of the other tasks already in the JSON are
kept (merged by task and label fraction), so one task can be re-run alone.
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
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results"

from sqtool.core.io import finite_number, nan_if_none, read_json  # noqa: E402


def source_of(o) -> np.ndarray:
    """(N,) each out-of-fold window's source (its record id's prefix: but_ppg, mw_ppg, troika, ...)."""
    return np.array([str(r).split(":")[0] for r in o["record_ids"]])


def trivial_oof(task, o) -> np.ndarray:
    """The trivial predictor on a run's own folds (all training windows of each fold): fold mean, one constant
    base-rate logit, or for quality each source's training base rate (`core.metrics.source_trivial`)."""
    from sqtool.core.metrics import source_trivial
    from sqtool.core.metrics import oof_trivial
    folds = [(np.flatnonzero(o["fold"] != f), np.flatnonzero(o["fold"] == f)) for f in np.unique(o["fold"])]
    if task == "quality":
        return source_trivial(task, o["y"], source_of(o), folds)
    return oof_trivial(task, o["y"], folds)


def by_source(task, preds: dict, o, n_boot=1000, seed=0) -> dict:
    """{source: {windows, positives, name: AUROC, name_ci95: subject-bootstrap CI}} for each prediction."""
    from sqtool.core.metrics import auroc, bootstrap_ci
    src, y, g = source_of(o), o["y"], o["groups"]
    out = {}
    for s_ in np.unique(src).tolist():
        m = src == s_
        out[s_] = {"windows": int(m.sum()), "positives": int((y[m, 0] > 0.5).sum())}
        for name, p in preds.items():
            out[s_][name] = auroc(y[m, 0], p[m, 0])
            out[s_][f"{name}_ci95"] = bootstrap_ci(task, y[m], p[m], g[m], n_boot=n_boot, seed=seed).get("auroc")
    return out


def delta_test(task, y, pred_scratch, pred_pretrained, groups, seed=0) -> dict:
    """pretrained - scratch over the subjects in the task's skill metric (`core.metrics.paired_metric_test`):
    {ci95: its t-interval over the subjects, p: two-sided, MAE swapped within subjects, AUROC by the clustered
    DeLong test}; NaN where there is none (1 subject; null in the JSON)."""
    from sqtool.core.metrics import paired_metric_test
    t = paired_metric_test(task, y, pred_pretrained, pred_scratch, groups, seed=seed)
    return {"ci95": list(t["ci95"]), "p": t["p"]}


def direction(r, alpha=0.05) -> str:
    """pretrained - scratch: 'pretrained better' / 'pretrained WORSE' where the permutation p < alpha AND the 95 %
    CI excludes zero; else (a row without a p or interval included: None or NaN) 'no difference shown'."""
    lo, hi = r["delta_ci95"]
    p = r.get("delta_p")
    if p is not None and lo is not None and hi is not None and p < alpha and (lo > 0 or hi < 0):
        good = (lo > 0) == (r["better"] == "higher")
        return "pretrained better" if good else "pretrained WORSE"
    return "no difference shown"


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


def _ci(v, ci, d=3, sign=""):
    ok = ci and all(finite_number(c) for c in ci)                  # a None / NaN end: no interval (1 subject)
    v = nan_if_none(v)                                              # a value the JSON holds as null: nan, as run
    return f"{v:{sign}.{d}f} [{ci[0]:{sign}.{d}f}, {ci[1]:{sign}.{d}f}]" if ok else f"{v:{sign}.{d}f}"


def _delta(r) -> str:
    """pretrained - scratch [95 % CI] and its permutation p, 3 decimals for MAE, 4 for AUROC / F1."""
    p = r.get("delta_p")
    return (_ci(r["delta_pretrained_minus_scratch"], r["delta_ci95"], 3 if r["metric"] == "mae" else 4, "+")
            + f", p {format(p, '.4f') if finite_number(p) else '-'}")


def _contamination(ps: dict) -> str:
    """What of the tasks' data the pretraining saw, from the pair corpus' per-dataset statistics."""
    d = ps.get("datasets") or {}
    seen = ", ".join(f"{k} ({v.get('windows')} windows, {v.get('pairs')} pairs of which {v.get('synthetic_pairs')} "
                     "synthetic)" for k, v in d.items())
    return ("**The pretraining corpus is not disjoint from the tasks.** It holds the label-free PPG of "
            f"{seen or 'unlabeled/, BIDMC, TROIKA and MW-PPG'}: BIDMC is the rr task's data, TROIKA the hr task's, "
            "and MW-PPG and TROIKA are two of the quality task's three sources (BUT PPG is the third). TROIKA's "
            "quality labels (troika_index) are the quality index > 0.5, the same index and threshold that split "
            "the pretraining windows into good and poor, so for quality the pretrained encoder has been trained "
            "on a contrast drawn by that label's own rule, on those recordings: the quality rows are not a clean "
            "test of what pretraining adds. No task label is read in pretraining.")


def report_md(res: dict) -> str:
    """The Markdown report of a results dict (rows of earlier invocations may lack the trivial and per-source
    fields: '-')."""
    rows, pre, ps = res["rows"], res["pretrain"], res["pairs_summary"]
    L = [f"# Pretrained vs scratch ({res['model']}, full fine-tuning, {res['finetune']['epochs']} epochs, same folds "
         "and seed)", "", _contamination(ps), "",
         "Every pretrained - scratch difference with its 95 % t-interval over the subjects (MAE: of the subjects' "
         "window-weighted differences; AUROC: the clustered DeLong standard error), its two-sided paired p (each "
         "subject's scratch and pretrained predictions swapped or not: exact up to 12 subjects, else 10,000 "
         "sampled; for AUROC the clustered DeLong test) and its direction: better / WORSE only where p < 0.05 "
         "and the CI excludes zero (a percentile subject bootstrap is too narrow with 12 subjects, as hr and af "
         f"have), else no difference shown. The {len(rows)} comparisons are NOT adjusted for multiplicity: at "
         "p < 0.05 each, up to one in twenty true nulls can read as a difference. Metric: MAE, or AUROC for af "
         "and quality (weighted F1 at a 0.5 threshold is in the JSON). Trivial: the fold mean, one constant "
         "logit (af: AUROC 0.5), or for quality each source's training base rate, which pooled over the three "
         "sources (base rates differ) already reaches the AUROC shown; 'no skill' = not better than it with a "
         "CI excluding zero and a p over the subjects below 0.05 (core.metrics.skill_test).", "",
         "| task | metric | labels | input band Hz | trivial | scratch [95 % CI] | pretrained [95 % CI] "
         "| pretrained - scratch [95 % CI], p | direction | no skill vs trivial |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = r.get("input", {}).get("band", [0.5, 8.0])
        b = "none" if b is None else "-".join("0" if v is None else f"{v:g}" for v in b)
        triv = r.get("trivial", r.get("fold_mean_baseline"))
        vt = r.get("vs_trivial")
        flags = "-" if vt is None else (", ".join(k for k, v in vt.items() if v["flag"]) or "none")
        L.append(f"| {r['task']} | {r['metric']} ({r['better']} is better) | {100 * r['label_fraction']:.0f} % | "
                 f"{b} | {'-' if triv is None else format(triv, '.3f')} | {_ci(r['scratch'], r['scratch_ci95'])} | "
                 f"{_ci(r['pretrained'], r['pretrained_ci95'])} | "
                 f"{_delta(r)} | {direction(r)} | {flags} |")
    for word in ("WORSE", "better"):
        hit = [f"{r['task']} {100 * r['label_fraction']:.0f} % ({r['metric']}) {_delta(r)}" for r in rows
               if direction(r) == f"pretrained {word}"]
        L += ["", f"Pretrained {word} than scratch (p < 0.05 and 95 % CI excluding zero, unadjusted): "
                  + ("; ".join(hit) if hit else "nowhere") + "."]
    for r in rows:
        if "by_source" in r:
            L += ["", f"quality, {100 * r['label_fraction']:.0f} % labels, AUROC within each source [subject-bootstrap "
                      "95 % CI] (the trivial is one constant per source: 0.5):", "",
                  "| source | windows | good | scratch | pretrained | trivial |", "|---|---|---|---|---|---|"]
            for s_, v in r["by_source"].items():
                L.append(f"| {s_} | {v['windows']} | {v['positives']} | " + " | ".join(
                    _ci(v[k], v[f"{k}_ci95"]) for k in ("scratch", "pretrained", "trivial")) + " |")
    for r in rows:
        if "rr_error_summary" in r:
            L += ["", f"rr, {100 * r['label_fraction']:.0f} % labels, absolute error in breaths/min (MAE / median / "
                  f"share within 2): " + "; ".join(f"{k} {v['mae']:.2f} / {v['median_ae']:.2f} / {v['within_2']:.2f}"
                                                   for k, v in r["rr_error_summary"].items())
                  + ". spectral = peak of each window's 0.1-0.6 Hz spectrum, no training: the respiration is in "
                    "the windows (most windows within 2 breaths/min; MAE inflated by outliers), the fine-tuned "
                    "model does not yet extract it."]
    loss0, loss1, z_std, z_ok = (nan_if_none(pre[k]) for k in ("first_loss", "final_loss", "val_z_std",
                                                              "z_std_healthy"))   # null in the JSON: nan, as run
    L += ["", f"Pretraining: {pre['pairs']} ({ps.get('synthetic_pairs')} of {ps.get('pairs')} with a "
          f"synthetically corrupted poor partner), {pre['epochs_done']} epochs, SimSiam loss "
          f"{loss0:.3f} -> {loss1:.3f}, val z std {z_std:.3f} (healthy "
          f"~{z_ok:.3f}), {pre['elapsed_s']:.0f} s.",
          "Input band: the band-pass of the task's model cfg (`ModelCfg.band`); rr uses 0.05-8 Hz so the "
          "respiratory modulation of the PPG survives (the pretrained encoder saw 0.5-8 Hz windows).",
          "Rows come from the last invocation that ran their task (see `command` per row in the JSON).",
          "Without --pairs the script first runs the same `sqtool data pairs` command it documents.",
          f"Wall time of this invocation {res['wall_s'] / 60:.1f} min on 1 thread (runs already finished in "
          f"--work are reused). Command: `{res['command']}`", ""]
    return "\n".join(L)


def main() -> int:
    from sqtool.core import DATA_ROOT_HELP, atomic_write_text, data_root_or_exit, write_metrics
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
    ap.add_argument("--restate", action="store_true", help="rewrite the Markdown from the results JSON, no training")
    ap.add_argument("--out", default=str(OUT), help="results folder")
    a = ap.parse_args()
    out = Path(a.out)
    command = "OMP_NUM_THREADS=1 python benchmarks/train_pretrain_vs_scratch.py " + " ".join(sys.argv[1:])
    if a.restate:
        res = read_json(out / "train_pretrain_vs_scratch.json")
        atomic_write_text(out / "train_pretrain_vs_scratch.md", report_md(res))
        print(f"rewrote {out / 'train_pretrain_vs_scratch.md'} from its JSON")
        return 0

    import torch
    torch.set_num_threads(1)
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    from sqtool.train.finetune import FinetuneConfig, run_finetune
    from sqtool.core.metrics import skill_metric, skill_test, task_metrics
    from sqtool.train.pretrain import PretrainConfig, run_pretrain

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    data = Path(data_root_or_exit(a.data_root, ap.error))
    pairs = Path(a.pairs) if a.pairs else work / "pairs"
    if not (pairs / "index.json").is_file():
        cmd = [sys.executable, "-m", "sqtool.cli", "data", "pairs", "--data", *(str(data / d) for d in
               ("unlabeled", "bidmc", "troika", "mw_ppg")), "--hop-s", "10", "--synthetic-partners",
               "--workers", "1", "--no-progress", "--force", "--out", str(pairs)]
        subprocess.run(cmd, check=True)
    pairs_metrics = read_json(pairs / "metrics.json") if (pairs / "metrics.json").is_file() else {}

    pre_dir = work / "pretrain"
    if not (pre_dir / "model.pt").is_file():
        pre_dir.mkdir(parents=True, exist_ok=True)
        pm = run_pretrain(PretrainConfig(model=a.model, pairs=str(pairs), epochs=a.pretrain_epochs,
                                         batch_size=a.pretrain_batch, lr=a.pretrain_lr, seed=a.seed,
                                         lr_step_epochs=10, val_fraction=0.05, progress=False), pre_dir)
    else:
        pm = read_json(pre_dir / "metrics.json")
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
                                     final_fit=False, seed=a.seed, progress=False, data_root=str(data),
                                     heldout_fraction=0)    # every subject in the folds: this protocol's
                m = None
                if (d / "metrics.json").is_file() and (d / "oof_predictions.npz").is_file():
                    m = read_json(d / "metrics.json")                     # finished earlier in this --work dir
                    if _band_of(m) != band:
                        print(f"{d}: made with band {_band_of(m)}, the task now uses {band}: re-running", flush=True)
                        m = None
                if m is None:
                    m = run_finetune(cfg, d, task_data=td)
                res[init] = (m, np.load(d / "oof_predictions.npz"))
                print(f"{task} {frac:g} {init}: {m['primary_metric']} {nan_if_none(m[m['primary_metric']]):.3f} "
                      f"({m['elapsed_s']:.0f} s)", flush=True)
            metric = skill_metric(task)[0]                      # MAE or AUROC (not F1 at a 0.5 threshold)
            ms, mp = res["scratch"][0], res["pretrained"][0]
            o_s, o_p = res["scratch"][1], res["pretrained"][1]
            assert np.array_equal(o_s["y"], o_p["y"]) and np.array_equal(o_s["fold"], o_p["fold"])
            triv = trivial_oof(task, o_s)
            rows.append({
                "task": task, "metric": metric, "label_fraction": frac, "windows": ms["windows"],
                "subjects": ms["subjects"], "folds": ms["folds"], "dataset": ms["dataset"],
                "scratch": ms["metrics"][metric], "scratch_ci95": ms["ci95"].get(metric),
                "pretrained": mp["metrics"][metric], "pretrained_ci95": mp["ci95"].get(metric),
                "delta_pretrained_minus_scratch": mp["metrics"][metric] - ms["metrics"][metric],
                **{f"delta_{k}": v for k, v in delta_test(task, o_s["y"], o_s["pred"], o_p["pred"], o_s["groups"],
                                                          seed=a.seed).items()},
                "better": "lower" if metric == "mae" else "higher",
                "trivial": task_metrics(task, o_s["y"], triv)[metric],
                "vs_trivial": {init: skill_test(task, o["y"], o["pred"], triv, o["groups"], seed=a.seed)
                               for init, o in (("scratch", o_s), ("pretrained", o_p))},
                "extra_metrics": {"scratch": ms["metrics"], "pretrained": mp["metrics"]},
                "finetune_s": ms["elapsed_s"] + mp["elapsed_s"], "load_s": load_s,
                "input": ms["input"], "command": command,
            })
            if task == "rr":                      # is the respiration in the windows at all? (model-free)
                err = np.abs(spectral_rr(td.x[:, 0], mc.fs) - td.y[:, 0])
                ae = {"spectral_0.1-0.6Hz": err, "fold_mean": np.abs(triv[:, 0] - o_s["y"][:, 0]),
                      "scratch": np.abs(o_s["pred"][:, 0] - o_s["y"][:, 0]),
                      "pretrained": np.abs(o_p["pred"][:, 0] - o_p["y"][:, 0])}
                rows[-1]["rr_error_summary"] = {k: {"mae": float(v.mean()), "median_ae": float(np.median(v)),
                                                    "within_2": float(np.mean(v <= 2.0))} for k, v in ae.items()}
            if task == "quality":                 # the sources differ in device, base rate and label kind
                rows[-1]["by_source"] = by_source(task, {"scratch": o_s["pred"], "pretrained": o_p["pred"],
                                                         "trivial": triv}, o_s, seed=a.seed)

    old_path = out / "train_pretrain_vs_scratch.json"
    if old_path.is_file():                        # keep the rows of tasks / fractions not re-run now
        new_keys = {(r["task"], r["label_fraction"]) for r in rows}
        old_rows = [r for r in read_json(old_path).get("rows", [])
                    if (r["task"], r["label_fraction"]) not in new_keys]
        order = {t: i for i, t in enumerate(("hr", "rr", "af", "bp", "quality"))}
        rows = sorted(old_rows + rows, key=lambda r: (order.get(r["task"], 99), -r["label_fraction"]))
    res = {"model": a.model, "pairs": str(pairs), "pairs_summary": {k: pairs_metrics.get(k) for k in
           ("pairs", "synthetic_pairs", "subjects_with_pairs", "datasets")},
           "pretrain": pretrain_summary,
           "finetune": {"mode": "full", "epochs": a.epochs, "lr": a.lr, "optimizer": "AdamW + one-cycle",
                        "folds": "LOSO for hr, 5-fold by subject otherwise", "seed": a.seed},
           "rows": rows, "wall_s": time.perf_counter() - t_all,
           "command": command}
    out.mkdir(parents=True, exist_ok=True)
    write_metrics(out, res, "train_pretrain_vs_scratch.json")          # atomic, as every results file
    md = report_md(res)
    atomic_write_text(out / "train_pretrain_vs_scratch.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
