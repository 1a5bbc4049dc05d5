"""The paper's ablation, measured here: SiamQuality real pairs vs augmentation-SimSiam vs no pretraining.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/pretrain_ablation.py [--data ../shared/data]
        [--steps 300] [--batch 64] [--folds 4] [--epochs 6] [--max-windows 400] [--boot 10000] [--perm 10000]
    python benchmarks/pretrain_ablation.py --smoke          # synthetic data, seconds (run by a test)

Three arms on ONE encoder (resnet1d_siamq_tiny_10s: the 0.18 M-parameter member of the SiamQuality
ResNet family, 10 s windows at 40 Hz), one pretraining budget and one set of subject-held-out folds:

    scratch    no pretraining (the same seeded random initialisation)
    augment    SimSiam on two augmented views (crop, scale, noise, baseline wander; sqtool.train.augment)
               of the GOOD window of each mined pair (`train pretrain --pair-mode augment`)
    siamq      SimSiam on the mined (good, poor) pairs of the same subject (`--pair-mode real`)

Both pretrained arms read the same pair corpus (`sqtool data pairs --model resnet1d_siamq_tiny_10s`,
REAL pairs only: no `--synthetic-partners`; its per-dataset statistics are in the results) for the same
number of SGD steps with the same batch, lr and seed; they differ only in the second view.

Downstream, per task and arm: windows cut by the task's model cfg (hr 8 s / wrist: SP Cup 2015 training
recordings + wrist_exercise with ECG reference HR, doubtful windows left out; rr BIDMC 30 s; af PPG
arrhythmia 10 s; bp PPG-BP; quality BUT PPG + MW-PPG human labels + SP Cup index labels), subsampled
evenly to at most --max-windows per source; k subject folds (the same folds for every arm); labels
100 % or 10 % of each fold's training windows (the same windows for every arm); two protocols:

    linear     frozen encoder, features standardised on the training fold, ridge regression (alpha 1)
               or L2 logistic regression (C 1) on them
    full       the whole network fine-tuned (`train.finetune._fit`, AdamW one-cycle, --epochs)

A trivial predictor is scored on the same folds and label subsets: `core.metrics.source_trivial`, i.e.
`core.metrics.oof_trivial` within each source (the source's training-fold mean target; for classes one
constant base-rate logit per source, AUROC 0.5 within it; a per-fold majority-class logit ranked the
windows by their fold's base rate, AUROC 0.44-0.53 instead of 0.5).

Metrics are per source (never only pooled over datasets with different base rates): MAE for hr, rr,
bp (mean of SBP and DBP), AUROC for af and quality (weighted F1 of af in the JSON). Each arm's 95 % CI resamples
SUBJECTS (--boot resamples); each difference (arm - scratch, arm - trivial) gets the t-interval over the subjects
that goes with its p (`core.metrics.paired_metric_test`: the subjects' window-weighted MAE differences; AUROC, the
clustered DeLong standard error).

Each (arm - scratch) difference has a two-sided paired permutation p (MAE: `core.metrics.paired_mae_test`):
the row's metric on the source's pooled windows, under "arm and scratch are exchangeable within a subject", each
subject's two sets of predictions swapped or not, exact over all 2^S patterns up to 12 subjects (p = k / 2^S,
never below 2 / 2^S: a source of 5 subjects cannot reach 0.05), else --perm seeded patterns ((k + 1) / (B + 1));
AUROC: `core.metrics.paired_auroc_test`, the clustered DeLong test (subjects as clusters, t with S - 1 degrees of
freedom), each model ranked alone, since two models' logits need not share a scale.
It replaces the percentile subject-bootstrap p this script used before, which is far too small with few
subjects: in the review's simulation (12 subjects, no true difference, B = 10,000) it fell below 0.05 in 8.1 %
of runs and below 0.05/64 in 0.73 % instead of 0.078 %, so Holm's 5 % did not hold; 40 of the 64 tests are on
sources of 5-13 subjects, and all 7 differences it let through sat at its floor 2/10001. The difference CIs
were the paired percentile bootstrap's until the t-interval replaced them (80-88 % coverage for a nominal 95 % at
5-12 subjects of uneven size in simulation, against 93-94 %). Rows x 2 arms make one family of
tests (64 on the real data); Holm's step-down adjustment of the permutation p's controls the chance of any
false claim in it at 5 %. The verdict column says "pretraining helps" / "hurts" only where the Holm-adjusted
p < 0.05 AND the CI excludes zero (in its direction); a CI that excludes zero without surviving Holm is marked
"(unadjusted)", not claimed. "no skill" marks a model whose paired CI against the trivial predictor does not
exclude zero in its favour (per row, not adjusted: adjusting would only flag more rows).

Writes benchmarks/results/pretrain_ablation.{json,md} (--smoke: into --out, default a temp folder).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqtool.core.io import dumps_json, read_json  # noqa: E402

MODEL = "resnet1d_siamq_tiny_10s"
ARMS = ("scratch", "augment", "siamq")
TASKS = ("hr", "rr", "af", "bp", "quality")
PAIR_DATASETS = ("bidmc", "troika", "wrist_exercise", "mw_ppg", "unlabeled")
LOWER_BETTER = {"hr": True, "rr": True, "bp": True, "af": False, "quality": False}
METRIC = {"hr": "mae", "rr": "mae", "bp": "mae", "af": "auroc", "quality": "auroc"}


# ----------------------------------------------------------------------------- data

def wrist_hr(root: Path, cfg):
    """hr windows of wrist_exercise (ECG-derived reference; doubtful windows are NaN and dropped)."""
    from sqtool.data.readers import iter_records
    from sqtool.data.tasks import _Acc, _label_at_centres, _windows
    acc = _Acc("hr")
    for rec in iter_records(root / "wrist_exercise", kind="wrist_exercise"):
        w = _windows(rec, cfg)
        y, ok = _label_at_centres(rec.labels["hr"], w.t0, cfg.window_s)
        ok &= np.isfinite(y)
        acc.add(w.x[ok], y[ok], f"wrist_exercise:{rec.subject}", w.t0[ok], rec.record_id, "wrist_exercise")
    return acc.build(dataset="wrist_exercise")


def load_tasks(data, tasks, max_windows: int, seed: int) -> dict:
    """{task: TaskData with meta["source"] (N,) str}, each source subsampled evenly to <= max_windows."""
    from sqtool.data.tasks import TaskData, load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    base = get_model_cfg(MODEL)
    out = {}
    for task in tasks:
        cfg = task_model_cfg(task, base)
        td = load_task(task, data, cfg, max_records=4 if data == "synthetic" else None, seed=seed)
        src = np.asarray(td.meta.get("source", np.full(len(td), td.meta.get("dataset", task))), dtype=object)
        if task == "hr" and data != "synthetic":
            src = np.full(len(td), "troika", dtype=object)
            td.groups = np.array([f"troika:{g}" for g in td.groups])
            w = wrist_hr(Path(data), cfg)
            td = TaskData(np.concatenate([td.x, w.x]), np.concatenate([td.y, w.y]),
                          np.concatenate([td.groups, w.groups]), np.concatenate([td.t0, w.t0]),
                          np.concatenate([td.record_ids, w.record_ids]), "hr", dict(td.meta))
            src = np.concatenate([src, np.full(len(w), "wrist_exercise", dtype=object)])
        keep = []
        for s in np.unique(src):
            idx = np.flatnonzero(src == s)
            keep.append(idx[np.unique(np.linspace(0, len(idx) - 1, min(len(idx), max_windows)).round().astype(int))])
        keep = np.sort(np.concatenate(keep))
        td = td.subset(keep) if "source" in td.meta else dataclasses.replace(
            td, x=td.x[keep], y=td.y[keep], groups=td.groups[keep], t0=td.t0[keep], record_ids=td.record_ids[keep])
        td.meta["source"] = src[keep].astype(str)
        td.meta["model_cfg"] = cfg
        out[task] = td
    return out


# ----------------------------------------------------------------------------- pretraining

def make_pairs(data, work: Path, smoke: bool) -> dict:
    from sqtool.data.pairs import PairsConfig, mine_pairs
    out = work / "pairs"
    if (out / "pair_stats.json").is_file():
        return read_json(out / "metrics.json") | {"out": str(out), "reused": True}
    if smoke:
        cfg = PairsConfig(data_root="synthetic", synthetic_subjects=3, synthetic_duration_s=300, model=MODEL,
                          out=str(out), force=True, workers=1)
    else:
        cfg = PairsConfig(input=[str(Path(data) / d) for d in PAIR_DATASETS], model=MODEL, hop_s=5.0,
                          out=str(out), force=True, workers=2, on_error="skip")
    return mine_pairs(cfg, progress=False)


def pretrain(arm: str, pairs_dir: str, work: Path, steps: int, batch: int, lr: float, seed: int) -> dict:
    from sqtool.train.pretrain import PretrainConfig, run_pretrain
    run = work / f"pretrain_{arm}"
    if (run / "model.pt").is_file():
        m = read_json(run / "metrics.json")
        if m.get("global_step") == steps:
            return m | {"run": str(run)}
    run.mkdir(parents=True, exist_ok=True)
    cfg = PretrainConfig(model=MODEL, pairs=pairs_dir, pair_mode="real" if arm == "siamq" else "augment",
                         epochs=10_000, max_steps=steps, batch_size=batch, lr=lr, lr_step_epochs=10_000,
                         val_fraction=0.05, device="cpu", seed=seed, progress=False)
    return run_pretrain(cfg, run) | {"run": str(run)}


# ----------------------------------------------------------------------------- downstream

def fold_plan(td, k: int, fractions, seed: int):
    """[(fold, frac, train_idx, test_idx)]: the same folds and label subsets for every arm."""
    from sqtool.data.tasks import subject_folds
    plan = []
    for f, (tr, te) in enumerate(subject_folds(td.groups, k, seed=seed)):
        for frac in fractions:
            sub = tr
            if frac < 1:
                rng = np.random.default_rng([seed, f, int(frac * 1000)])
                sub = np.sort(rng.choice(tr, min(len(tr), max(16, int(round(frac * len(tr))))), replace=False))
            plan.append((f, frac, sub, te))
    return plan


def encoder_init(arm: str, runs: dict):
    if arm == "scratch":
        return None
    from sqtool.core.checkpoint import load_checkpoint
    return load_checkpoint(Path(runs[arm]) / "model.pt", expect_kind="teacher_pretrain")


def new_model(td, y_tr, ck, seed: int):
    from sqtool.core import set_seed
    from sqtool.models import create_model
    from sqtool.train.finetune import init_encoder
    mc = td.meta["model_cfg"]
    if td.meta["kind"] == "regression":
        mc = mc.replace(target_mean=tuple(float(v) for v in y_tr.mean(0)),
                        target_std=tuple(float(v) + 1e-6 for v in y_tr.std(0)))
    set_seed(seed)
    m = create_model(mc)
    if ck is not None:
        init_encoder(m, ck)
    return m, mc


def features(model, x) -> np.ndarray:
    import torch
    model.eval()
    with torch.no_grad():
        return np.concatenate([model.encoder(torch.from_numpy(x[i:i + 256])).numpy() for i in range(0, len(x), 256)])


def linear_probe(ftr, ytr, fte, kind: str) -> np.ndarray:
    """Ridge (regression) or L2 logistic regression (classes) on standardised frozen features."""
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    a, b = (ftr - mu) / sd, (fte - mu) / sd
    A = np.c_[a, np.ones(len(a))]
    B = np.c_[b, np.ones(len(b))]
    reg = np.eye(A.shape[1])
    reg[-1, -1] = 0
    if kind == "regression":
        ym, ys = ytr.mean(0), ytr.std(0) + 1e-6
        w = np.linalg.solve(A.T @ A + reg, A.T @ ((ytr - ym) / ys))
        return B @ w * ys + ym
    y = ytr[:, 0]
    w = np.zeros(A.shape[1])
    for _ in range(50):                                              # Newton steps (IRLS), C = 1
        p = 1 / (1 + np.exp(-(A @ w)))
        g = A.T @ (p - y) + reg @ w
        H = (A * (p * (1 - p))[:, None]).T @ A + reg
        w -= np.linalg.solve(H, g)
    return (B @ w)[:, None]                                          # logits


def run_cell(td, plan, arm, ck, mode, epochs, lr, seed):
    """Out-of-fold predictions per label fraction: {frac: (N, k) with NaN outside test folds}."""
    from sqtool.train.finetune import FinetuneConfig, _fit, predict
    kind = td.meta["kind"]
    out = {}
    feats = None
    for f, frac, tr, te in plan:
        pred = out.setdefault(frac, np.full(td.y.shape, np.nan, np.float32))
        m, mc = new_model(td, td.y[tr], ck, seed)
        if mode == "linear":
            if feats is None:
                feats = features(m, td.x)                          # frozen: one pass for every fold
            pred[te] = linear_probe(feats[tr], td.y[tr], feats[te], kind)
            continue
        yn = td.y[tr] if kind != "regression" else (td.y[tr] - np.array(mc.target_mean)) / np.array(mc.target_std)
        cfg = FinetuneConfig(task=td.task, mode="full", epochs=epochs, batch_size=32, lr=lr, progress=False)
        _fit(m, td.x[tr], yn.astype(np.float32), cfg, kind, _cpu(), seed + f)
        p = predict(m, td.x[te], _cpu())
        pred[te] = p * np.array(mc.target_std) + np.array(mc.target_mean) if kind == "regression" else p
    return out


def _cpu():
    import torch
    return torch.device("cpu")


def trivial(td, plan) -> dict:
    """{label fraction: (N, k) trivial predictions} from the same label subsets as the arms: the training
    mean of the window's source (regression) or one constant base-rate logit per source (classes; AUROC 0.5
    within a source), `core.metrics.source_trivial`."""
    from sqtool.core.metrics import source_trivial
    return {frac: source_trivial(td.task, td.y, td.meta["source"], [(tr, te) for _, fr, tr, te in plan if fr == frac])
            for frac in dict.fromkeys(fr for _, fr, _, _ in plan)}


def classic(td, plan) -> tuple[dict | None, str]:
    """({label fraction: (N, k) out-of-fold predictions of the task's classic method}, its name), or (None, why
    there is none): `data.classic.classic_oof` on the same windows, folds and label subsets as the arms (hr: the
    spectral baseline's PPG peak tracked over each recording's windows; rr: the respiratory spectral fusion; af: the
    RMSSD rule, its threshold fitted on each fold's labelled windows; quality: the signal quality index; bp: none)."""
    from sqtool.data.classic import classic_oof
    out, name = {}, ""
    for frac in dict.fromkeys(fr for _, fr, _, _ in plan):
        pred, name = classic_oof(td.task, td, [(tr, te) for _, fr, tr, te in plan if fr == frac])
        if pred is None:
            return None, name
        out[frac] = pred
    return out, name


# ----------------------------------------------------------------------------- statistics

def metric(task, y, p) -> float:
    from sqtool.core.metrics import task_metrics
    return task_metrics(task, y, p)[METRIC[task]]


def boot_metric(task, y, p, subject, counts) -> np.ndarray:
    """(B,) the task's metric on B subject resamples at once: counts (B, S) = how often each subject is drawn,
    subject (N,) = each window's subject index. MAE: weighted mean absolute error (mean over outputs); AUROC:
    the weighted Mann-Whitney statistic of the probabilities (ties count half; NaN without both classes), the
    same as `metric` on the concatenated resample."""
    S = counts.shape[1]
    if METRIC[task] == "mae":
        e = np.abs(np.asarray(p, float) - np.asarray(y, float)).reshape(len(y), -1).mean(1)      # (N,)
        return counts @ np.bincount(subject, e, S) / (counts @ np.bincount(subject, minlength=S))
    from sqtool.core.metrics import sigmoid
    _, tie = np.unique(sigmoid(np.asarray(p, float)[:, 0]), return_inverse=True)                # (N,) rank group
    pos = np.asarray(y)[:, 0] > 0.5
    n_pos, n_neg = np.zeros((S, tie.max() + 1)), np.zeros((S, tie.max() + 1))                  # (S, G)
    np.add.at(n_pos, (subject[pos], tie[pos]), 1)
    np.add.at(n_neg, (subject[~pos], tie[~pos]), 1)
    wp, wn = counts @ n_pos, counts @ n_neg                                                    # (B, G)
    below = np.cumsum(wn, 1) - wn                                                              # negatives scored lower
    den = wp.sum(1) * wn.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (wp * (below + 0.5 * wn)).sum(1) / den, np.nan)


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def paired_stats(task, y, preds: dict, groups, n_boot: int, n_perm: int, seed: int) -> dict:
    """Point metric and subject-bootstrap 95 % CI of every predictor; each predictor minus scratch and minus
    trivial: the difference, its t-interval over the subjects and its paired p (`core.metrics.paired_metric_test`:
    MAE swapped within subjects, exact up to 12, else n_perm patterns; AUROC by the clustered DeLong test)."""
    from sqtool.core.metrics import paired_metric_test
    subjects, subject = np.unique(groups, return_inverse=True)
    draws = np.random.default_rng(seed).integers(0, len(subjects), (n_boot, len(subjects)))
    counts = np.zeros((n_boot, len(subjects)))
    np.add.at(counts, (np.repeat(np.arange(n_boot), len(subjects)), draws.ravel()), 1)    # (B, S)
    names = list(preds)

    def ci(v):
        v = v[np.isfinite(v)]
        return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v.size >= 10 else [None, None]

    def vs(a, b) -> dict:
        t = paired_metric_test(task, y, preds[a], preds[b], groups, n_perm=n_perm, seed=seed)
        return {"ci95": t["ci95"], "p": t["p"]}                    # NaN where none: null in the JSON

    res = {n: {"value": metric(task, y, preds[n]), "ci95": ci(boot_metric(task, y, preds[n], subject, counts))}
           for n in names}
    for n in names:
        if n in ("scratch", "trivial", "classic"):
            continue
        t = vs(n, "scratch")
        res[n].update(minus_scratch=res[n]["value"] - res["scratch"]["value"], minus_scratch_ci95=t["ci95"],
                      minus_scratch_p=t["p"])
    for n in names:
        if n != "trivial":
            res[n]["minus_trivial_ci95"] = vs(n, "trivial")["ci95"]
        if n in ARMS and "classic" in preds:
            res[n]["minus_classic_ci95"] = vs(n, "classic")["ci95"]
    return res


def better(task, ci) -> str | None:
    """'better' / 'worse' when the CI of a difference excludes zero, else None (also for a CI of None or NaN)."""
    lo, hi = ci
    if lo is None:
        return None
    if LOWER_BETTER[task]:
        return "better" if hi < 0 else "worse" if lo > 0 else None
    return "better" if lo > 0 else "worse" if hi < 0 else None


def claim(task, cell, alpha: float = 0.05) -> str | None:
    """'better' / 'worse' (arm vs scratch) where the Holm-adjusted p < alpha, in the direction of the CI."""
    q = cell.get("minus_scratch_p_holm")
    return better(task, cell["minus_scratch_ci95"]) if q is not None and q < alpha else None


def adjust(rows) -> tuple[list[str], list[str]]:
    """Holm over every (row, pretrained arm) difference to scratch: writes minus_scratch_p_holm into the cells;
    returns (claims that survive it, differences whose CI excludes zero but do not)."""
    tests = [(r, arm) for r in rows for arm in ("augment", "siamq")]
    for (r, arm), q in zip(tests, holm([r["cells"][arm]["minus_scratch_p"] for r, arm in tests])):
        r["cells"][arm]["minus_scratch_p_holm"] = float(q)                # NaN (no p): null in the JSON
    said, unadjusted = [], []
    for r, arm in tests:
        c, name = r["cells"][arm], f"{r['task']}/{r['source']}/{r['labels']}/{r['protocol']}"
        b, u = claim(r["task"], c), better(r["task"], c["minus_scratch_ci95"])
        if b or u:
            (said if b else unadjusted).append(f"{name}: {arm} {'helps' if (b or u) == 'better' else 'hurts'} "
                                               f"({r['subjects']} subjects, {_diff(c)})")
    return said, unadjusted


# ----------------------------------------------------------------------------- report

def _f(v, d=3):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{d}f}"


def _vci(r, key="value", cik="ci95", d=3):
    lo, hi = r[cik]
    return f"{_f(r[key], d)} [{_f(lo, d)}, {_f(hi, d)}]"


def _diff(c):
    """arm - scratch [CI], its permutation p and the Holm-adjusted p."""
    return (f"{_vci(c, 'minus_scratch', 'minus_scratch_ci95')} p {_f(c.get('minus_scratch_p'), 4)} "
            f"(Holm {_f(c.get('minus_scratch_p_holm'), 3)})")


def report(res: dict) -> str:
    s = res["settings"]
    L = [f"# Pretraining ablation: scratch vs augmentation-SimSiam vs SiamQuality real pairs ({res['model']})", ""]
    L.append(f"Pairs: **{res['pairs']['kind']}** ({res['pairs']['real_pairs']} real pairs, "
             f"{res['pairs']['synthetic_pairs']} with a synthetic partner). Same encoder, "
             f"{s['pretrain_steps']} SimSiam steps of batch {s['pretrain_batch']} (lr {s['pretrain_lr']}) for both "
             f"pretrained arms; {s['folds']}; same label subsets.")
    L.append("")
    L.append(f"Verdicts: a difference to scratch is claimed only where its Holm-adjusted p < 0.05 (family: "
             f"{res['tests']} tests, every row x augment / siamq) and its 95 % CI excludes zero; '(unadjusted)' "
             "marks a CI that excludes zero without surviving the adjustment. p: two-sided, over the subjects; for MAE "
             "the paired permutation p (each subject's arm and scratch predictions swapped or not, exact over the 2^S patterns up to 12 "
             f"subjects, so never below 2 / 2^S: 0.0625 with 5, else {s['permutations']} sampled patterns; AUROC: "
             "the clustered DeLong test). It "
             "replaces the percentile subject-bootstrap p, far too small with few subjects (review: 12 subjects, "
             "no true difference, B = 10,000: p < 0.05 in 8.1 % of runs, p < 0.05/64 in 0.73 % instead of "
             f"0.078 %; {2 * sum(r['subjects'] <= 13 for r in res['rows'])} of these {res['tests']} tests are on "
             "sources of 13 subjects or fewer). An arm's CI: subject bootstrap; a difference's CI: the t-interval "
             "over the subjects that goes with its p (MAE: the subjects' window-weighted differences; AUROC: the clustered "
             "DeLong standard error). Trivial: the training folds' mean of the "
             "window's source, or one constant base-rate logit per source (AUROC 0.5). Classic (no deep model, "
             "the same windows and folds; 'worse than the classic': the arm's t-interval against it excludes zero): "
             + "; ".join(f"{t}: {n}" for t, n in res.get("classic", {}).items()) + ".")
    L.append("")
    L.append("| task | source (windows / subjects) | metric | labels | protocol | trivial | classic [CI] | "
             "scratch [95 % CI] | augment [CI] | augment - scratch [CI], p (Holm) | siamq [CI] | "
             "siamq - scratch [CI], p (Holm) | verdict |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in res["rows"]:
        c = r["cells"]
        verdict = []
        for arm in ("augment", "siamq"):
            b, u = claim(r["task"], c[arm]), better(r["task"], c[arm]["minus_scratch_ci95"])
            if b:
                verdict.append(f"{arm}: pretraining {'helps' if b == 'better' else 'hurts'}")
            elif u:
                verdict.append(f"{arm}: {'helps' if u == 'better' else 'hurts'} (unadjusted)")
        for arm in ARMS:
            if better(r["task"], c[arm]["minus_trivial_ci95"]) != "better":
                verdict.append(f"{arm}: no skill")
        worse = [arm for arm in ARMS if "minus_classic_ci95" in c[arm]
                 and better(r["task"], c[arm]["minus_classic_ci95"]) == "worse"]
        if worse:
            verdict.append(f"{', '.join(worse)}: worse than the classic")
        L.append(f"| {r['task']} | {r['source']} ({r['windows']} / {r['subjects']}) | "
                 f"{r['metric']} ({'lower' if LOWER_BETTER[r['task']] else 'higher'} better) | {r['labels']} | "
                 f"{r['protocol']} | {_f(c['trivial']['value'])} | "
                 f"{_vci(c['classic']) if 'classic' in c else 'none'} | {_vci(c['scratch'])} | {_vci(c['augment'])} | "
                 f"{_diff(c['augment'])} | {_vci(c['siamq'])} | {_diff(c['siamq'])} | "
                 f"{'; '.join(verdict) or 'no difference shown'} |")
    L += ["", f"Claims (Holm-adjusted permutation p < 0.05 and CI excluding zero, {res['tests']} tests): "
                  f"{res['summary']}", "",
          f"Not claimed (95 % CI excludes zero, Holm-adjusted p >= 0.05): {res['summary_unadjusted'] or 'none'}", "",
          "## Pair corpus (real pairs only; `sqtool data pairs --model "
          f"{MODEL} --hop-s 5`)", ""]
    L.append("| dataset | records | subjects | subjects with pairs | windows | good | poor | real pairs | "
             "synthetic | quality gap mean | time gap s median |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for k, d in res["pairs"]["datasets"].items():
        L.append(f"| {k} | {d['records']} | {d['subjects']} | {d['subjects_with_pairs']} | {d['windows']} | "
                 f"{d['good']} | {d['poor']} | {d['real_pairs']} | {d['synthetic_pairs']} | "
                 f"{_f(d['quality_gap_mean'])} | {_f(d['time_gap_s_median'], 0)} |")
    L += ["", "## Pretraining", ""]
    for arm, p in res["pretrain"].items():
        L.append(f"- {arm}: {p['pairs']}; SimSiam loss {_f(p['first_loss'])} -> {_f(p['final_loss'])}, val z std "
                 f"{_f(p['val_z_std'])} (healthy ~{_f(p['z_std_healthy'])}), {p['elapsed_s']:.0f} s")
    L += ["", "## Settings", ""]
    for k, v in s.items():
        L.append(f"- {k}: {v}")
    L += ["", res["notes"], "", f"Command: `{res['command']}`; wall time {res['wall_min']:.1f} min."]
    return "\n".join(L) + "\n"


# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    from sqtool.core import DATA_ROOT_HELP, data_root_or_exit
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", "--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--smoke", action="store_true", help="synthetic data, tiny budget (a test runs it)")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--steps", type=int, default=300, help="SimSiam steps of each pretrained arm")
    ap.add_argument("--batch", type=int, default=64, help="pretraining batch")
    ap.add_argument("--pretrain-lr", type=float, default=0.05)
    ap.add_argument("--folds", type=int, default=4, help="subject folds")
    ap.add_argument("--epochs", type=int, default=6, help="full fine-tuning epochs")
    ap.add_argument("--lr", type=float, default=3e-3, help="full fine-tuning peak lr")
    ap.add_argument("--max-windows", type=int, default=400, help="windows per task source (even subsample)")
    ap.add_argument("--boot", type=int, default=10_000, help="subject bootstrap resamples (CIs)")
    ap.add_argument("--perm", type=int, default=10_000,
                    help="sampled permutation patterns of a source with more than 12 subjects (fewer: exact)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--work", default=None, help="work folder (pairs, pretraining runs; reused)")
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results; --smoke: work)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    import torch
    torch.set_num_threads(a.threads)          # 1: on 2 busy shared cores a 2-thread conv is ~10x slower
    if a.smoke:
        a.data, a.steps, a.batch, a.folds, a.epochs, a.max_windows = "synthetic", 2, 8, 2, 1, 24
        a.boot, a.perm = 30, 200
        a.tasks = ",".join(t for t in a.tasks.split(",") if t != "bp")       # bp has no synthetic version
    else:
        a.data = data_root_or_exit(a.data, ap.error, flag="--data")
    work = Path(a.work or tempfile.mkdtemp(prefix="sq_ablation_"))
    work.mkdir(parents=True, exist_ok=True)
    out_dir = Path(a.out) if a.out else (work if a.smoke else ROOT / "benchmarks" / "results")
    tasks = [t for t in a.tasks.split(",") if t]

    pm = make_pairs(a.data, work, a.smoke)
    print(f"pairs: {pm['real_pairs']} real, {pm['synthetic_pairs']} synthetic -> {pm['out']}", flush=True)
    pre = {arm: pretrain(arm, pm["out"], work, a.steps, a.batch, a.pretrain_lr, a.seed) for arm in ("augment", "siamq")}
    for arm, p in pre.items():
        print(f"pretrain {arm}: loss {_f(p['first_loss'])} -> {_f(p['final_loss'])} ({p['elapsed_s']:.0f} s)", flush=True)
    tds = load_tasks(a.data, tasks, a.max_windows, a.seed)
    cks = {arm: encoder_init(arm, {k: v["run"] for k, v in pre.items()}) for arm in ARMS}
    fractions = (1.0, 0.1)
    rows, classic_names = [], {}
    for task in tasks:
        td = tds[task]
        k = a.folds if len(td.subjects) > a.folds else 0
        plan = fold_plan(td, k, fractions, a.seed)
        triv = trivial(td, plan)
        clas, classic_names[task] = classic(td, plan)
        for mode in ("linear", "full"):
            preds = {arm: run_cell(td, plan, arm, cks[arm], mode, a.epochs, a.lr, a.seed) for arm in ARMS}
            for frac in fractions:
                srcs = np.unique(td.meta["source"])
                for src in srcs:
                    sel = td.meta["source"] == src
                    P = {arm: preds[arm][frac][sel] for arm in ARMS} | {"trivial": triv[frac][sel]}
                    if clas is not None:
                        P["classic"] = clas[frac][sel]
                    cells = paired_stats(task, td.y[sel], P, td.groups[sel], a.boot, a.perm, a.seed)
                    row = {"task": task, "source": str(src), "labels": f"{int(frac * 100)} %", "protocol": mode,
                           "metric": METRIC[task], "windows": int(sel.sum()),
                           "subjects": int(len(np.unique(td.groups[sel]))), "cells": cells}
                    if task == "af":
                        from sqtool.core.metrics import task_metrics
                        row["f1_weighted"] = {n: task_metrics(task, td.y[sel], P[n])["f1_weighted"]
                                              for n in P}
                    rows.append(row)
            print(f"{task} {mode} done ({(time.perf_counter() - t0) / 60:.1f} min)", flush=True)
    summary, unadjusted = adjust(rows)
    res = {
        "model": MODEL, "arms": list(ARMS), "tasks": tasks, "smoke": a.smoke,
        "pairs": {"kind": "synthetic partners included" if pm.get("synthetic_partners") else "real pairs only",
                  "real_pairs": pm["real_pairs"], "synthetic_pairs": pm["synthetic_pairs"],
                  "synthetic_partners": bool(pm.get("synthetic_partners")), "datasets": pm["datasets"]},
        "pretrain": {arm: {k: p.get(k) for k in ("pairs", "pair_mode", "real_pairs", "synthetic_pairs", "global_step",
                                                  "first_loss", "final_loss", "val_loss", "val_z_std", "z_std_healthy",
                                                  "collapsed", "elapsed_s")} for arm, p in pre.items()},
        "settings": {"data": a.data, "pretrain_steps": a.steps, "pretrain_batch": a.batch, "pretrain_lr": a.pretrain_lr,
                     "pretrain_optimizer": "SGD Nesterov 0.9, wd 1e-4, grad clip 10 (the paper's, lr raised)",
                     "pretrain_window": "10 s at 40 Hz (resnet1d_siamq_tiny_10s)",
                     "folds": f"{a.folds} subject folds (seed {a.seed}), identical for all arms",
                     "labels": "100 % / 10 % (min 16) of each fold's training windows, identical for all arms",
                     "linear": "ridge alpha 1 / L2 logistic C 1 on standardised frozen features",
                     "full": f"AdamW one-cycle, lr {a.lr}, {a.epochs} epochs, batch 32, wd 1e-4",
                     "max_windows_per_source": a.max_windows,
                     "bootstrap": f"{a.boot} subject resamples (each arm's CI); differences: t-interval over subjects",
                     "permutations": a.perm,
                     "threads": torch.get_num_threads()},
        "classic": classic_names, "rows": rows, "tests": 2 * len(rows),
        "multiplicity": "Holm (family-wise error 5 %) over rows x 2 arms, on the paired permutation p",
        "summary": "; ".join(summary) or "no difference to scratch survives Holm's adjustment",
        "summary_unadjusted": "; ".join(unadjusted),
        "notes": ("Pretraining saw label-free PPG of BIDMC, SP Cup (incl. the extra S04 recording), wrist_exercise, "
                  "MW-PPG and unlabeled/: the hr, rr and quality task recordings, never their labels; but SP Cup's "
                  "quality labels (troika_index) ARE the quality index (> 0.5 good) that split the pretraining "
                  "windows into good and poor, so the siamq arm's pairs carry that label's information. "
                  "A cell whose CI is '-' had too few resamples with both classes."),
        "command": "python benchmarks/pretrain_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "wall_min": (time.perf_counter() - t0) / 60,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    from sqtool.core import atomic_write_text
    atomic_write_text(out_dir / "pretrain_ablation.json", dumps_json(res, indent=1, default=str) + "\n")
    atomic_write_text(out_dir / "pretrain_ablation.md", report(res))
    print(report(res))
    print(f"claims: {res['summary']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
