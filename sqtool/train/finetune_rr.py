"""Fine-tune the respiratory-rate model `rr_spec` (`models.rr_spec`): subject folds, skill, final model.

    sqtool train finetune --task rr --model rr_spec [--data ../shared/data] [--folds 5]
    sqtool train finetune --task rr --model rr_spec --data my_ward/dataset.yaml      # a dataset with an rr label

1. The rr task's PPG windows (`data.tasks.load_task`: 30 s at 40 Hz, 10 s hop, band 0.05-8 Hz, unless --window-s,
   --hop-s, --fs say otherwise) -> the respiratory front end (`data.resp.resp_spectra`: baseline, RIIV, RIAV, RIFV
   power on the model's breaths/min bins), computed once per window. Held-out subjects (`data.heldout`, as the
   other fine-tunes: --heldout-subjects, else the dataset file's split, else the last --heldout-fraction (0.2) of
   the sorted subjects; 0 = none) are left out of every step below and scored once, by the final model, at the end.
2. Subject folds of the training subjects (5 by default, 0 = leave one subject out): per fold a fresh network
   trained on the others (`fit_rr`: cross-entropy against a Gaussian target around the reference rate, the input
   and target shifted together along the bins), the held-out subjects' rates decoded (`rr_spec.decode`).
3. Metrics on the out-of-fold rates, as `train.finetune`'s: pooled MAE with a subject-bootstrap CI, per subject
   (per_subject.csv), and the skill block (`train.skill.skill_report`): the trivial predictor (training-fold
   mean) and the classic estimator (`data.resp.classic_rr`) on the same windows; "no skill" / "worse than the
   classic method" flags as every fine-tune's.
4. A final network on all training subjects -> model.pt (kind teacher_task: the float model that ships; rr_spec
   has no int8 twin and no student, so `sqtool export` takes this run as it is); heldout.npz (the held-out
   subjects' spectra and rates) or, holding none out, parity.npz (spectra of training windows): the windows export
   checks its artifacts on.

Resume: as `train.finetune` (folds/fold_<k>.npz with the same key; a fold file of another config is refused).
Training numbers: --epochs, --lr, --weight-decay, --batch-size as given (the defaults of `train finetune`; the
benchmark's fixed recipe is 30 epochs at 3e-3, `benchmarks/downstream_skill.py`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, atomic_save_npz, atomic_write_text, resolve_data_root, to_dict, write_metrics
from sqtool.core.progress import item, metric_text, training_curve

OUTPUTS = ("rr_bpm",)                  # what the decoded model reports (the rr task's output)
PARITY_WINDOWS = 256                   # training windows' spectra kept for export's parity when none is held out


def fit_rr(S: np.ndarray, rr: np.ndarray, model_cfg, epochs: int, batch_size: int, lr: float, weight_decay: float,
           seed: int, history: list | None = None):
    """A fresh `rr_spec` network of `model_cfg` trained on spectra S (N, 4, F) and reference rates rr (N,)
    breaths/min; appends each epoch's mean loss to `history`. Seeds itself: the same inputs give the same weights."""
    import torch
    import torch.nn.functional as F

    from sqtool.core.optim import one_cycle
    from sqtool.models import create_model
    from sqtool.models.rr_spec import rr_grid
    bins = rr_grid(model_cfg)
    S = np.asarray(S, np.float32)
    rr = np.asarray(rr, float).reshape(-1)
    if S.ndim != 3 or S.shape[1:] != tuple(model_cfg.input_shape) or len(S) != len(rr) or len(S) < 2:
        raise SqtoolError(f"fit_rr: spectra must be (N >= 2, {', '.join(map(str, model_cfg.input_shape))}) with one "
                          f"rate each, got {S.shape} and {rr.shape}")
    a = model_cfg.arch
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = create_model(model_cfg)
    target = np.exp(-0.5 * ((bins[None, :] - rr[:, None]) / a["sigma_rpm"]) ** 2)       # (N, F)
    xs, ts = torch.from_numpy(S), torch.from_numpy((target / target.sum(1, keepdims=True)).astype(np.float32))
    n = len(S)
    steps = epochs * int(np.ceil(n / batch_size))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = one_cycle(opt, lr, steps, pct_start=0.1)
    kmax = int(round(a["shift_rpm"] / float(bins[1] - bins[0])))
    net.train()
    for _ in range(epochs):
        perm, losses = torch.randperm(n, generator=g), []
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            if len(idx) < 2:
                continue
            k = int(rng.integers(-kmax, kmax + 1))
            xb, tb = _shift(xs[idx], k), _shift(ts[idx], k)
            keep = tb.sum(1) > 0.5                           # the target still on the grid
            if keep.sum() < 2:
                continue
            xb, tb = xb[keep], tb[keep] / tb[keep].sum(1, keepdim=True)
            loss = -(tb * F.log_softmax(net(xb), dim=1)).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        if history is not None and losses:
            history.append(float(np.mean(losses)))
    return net.eval()


def _shift(x, k: int):
    """Move along the last axis by k bins (positive = up), zero fill."""
    import torch
    if k == 0:
        return x
    out = torch.zeros_like(x)
    if k > 0:
        out[..., k:] = x[..., :-k]
    else:
        out[..., :k] = x[..., -k:]
    return out


def predict_rr(net, S: np.ndarray) -> np.ndarray:
    """(N,) breaths/min of spectra S (N, 4, F): the network's logits decoded by `rr_spec.decode`."""
    import torch

    from sqtool.models.rr_spec import decode, rr_grid
    with torch.no_grad():
        z = net(torch.from_numpy(np.asarray(S, np.float32))).numpy()          # (N, F)
    return decode(z, rr_grid(net.cfg), float(net.cfg.arch["local_rpm"]))


def check_rr_config(cfg, command: str = "train finetune") -> None:
    """What an rr_spec fine-tune refuses, in one line each, before a folder is made or data read."""
    where = f"{command} --model {cfg.model}"
    if cfg.task != "rr":
        raise SqtoolError(f"{where}: a respiratory-rate model; use --task rr (not {cfg.task})")
    if cfg.init not in ("", "none"):
        raise SqtoolError(f"{where}: trained from scratch over the respiratory spectra, it has no pretrained encoder "
                          f"to start from (--init {cfg.init}); leave --init out")
    if cfg.mode != "full":
        raise SqtoolError(f"{where}: --mode {cfg.mode}: it has no encoder to freeze; use --mode full")
    if cfg.band_phase != "zero":
        raise SqtoolError(f"{where}: --band-phase {cfg.band_phase}: its front end (data.resp) runs on zero-phase "
                          "windows; leave --band-phase out")
    if cfg.channels and list(cfg.channels) != ["ppg"]:
        raise SqtoolError(f"{where}: reads one PPG channel, not --channels {','.join(cfg.channels)}")
    if cfg.datasets:
        raise SqtoolError(f"{where}: --datasets is for the spectral heart-rate models (spec_*); it reads --data")
    from sqtool.models.rr_spec import MIN_WINDOW_S
    if cfg.window_s and cfg.window_s < MIN_WINDOW_S:
        raise SqtoolError(f"{where}: --window-s {cfg.window_s:g}: the respiratory front end needs windows of at "
                          f"least {MIN_WINDOW_S:g} s (a few breaths)")
    if cfg.fs and cfg.fs < 12.0:
        raise SqtoolError(f"{where}: --fs {cfg.fs:g}: the front end finds beats in a 0.5-5 Hz band, which needs at "
                          "least 12 Hz")


def run_finetune_rr(cfg, run_dir: str | Path, log=item, resume: bool = False, task_data=None, *,
                    prepared: bool = False) -> dict:
    """Cross-validated fine-tune of rr_spec + final model (see the module docstring); returns metrics (also
    metrics.json). resume=True reuses the completed folds in run_dir/folds."""
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.core.metrics import bootstrap_ci, primary_metric, task_metrics
    from sqtool.data.resp import resp_spectra
    from sqtool.data.tasks import load_task, subject_folds, task_model_cfg
    from sqtool.models import get_model_cfg
    from sqtool.models.rr_spec import rr_grid
    from sqtool.train.finetune import (fold_key, hold_out, load_fold, per_subject_csv, per_subject_metrics,
                                       prepare_finetune, save_fold)
    from sqtool.train.skill import skill_report

    run_dir = Path(run_dir)
    if not prepared:
        cfg, _ = prepare_finetune(cfg)
    check_rr_config(cfg)
    if not 0 < cfg.label_fraction <= 1:
        raise SqtoolError(f"label_fraction must be in (0, 1], got {cfg.label_fraction}")
    base = get_model_cfg(cfg.model)
    if cfg.fs:
        base = base.replace(fs=float(cfg.fs))
    win = task_model_cfg("rr", base, window_s=cfg.window_s or None, hop_s=cfg.hop_s or None)   # the PPG windows
    model_cfg = win.replace(outputs=base.outputs, units=base.units)                     # the network: rr logits
    root = cfg.data_root
    if task_data is None:
        root = cfg.data_root or resolve_data_root(None) or "synthetic"
        task_data = load_task("rr", root, win, max_records=cfg.max_records or None, seed=cfg.seed)
    if tuple(task_data.x.shape[1:]) != (1, win.n_samples):
        raise SqtoolError(f"rr windows have shape {task_data.x.shape[1:]}; the front end reads (1, {win.n_samples})")
    td, held, held_how = hold_out(cfg, task_data, root)
    k = cfg.folds if cfg.folds >= 0 else 5
    folds = subject_folds(td.groups, k or None, seed=cfg.seed)
    from sqtool.core.runs import save_resolved
    save_resolved(run_dir, model=cfg.model, init="none", fs=model_cfg.fs, window_s=model_cfg.window_s,
                  hop_s=model_cfg.hop_s, channels=list(model_cfg.channels), data_root=td.meta.get("data_root"),
                  dataset=td.meta.get("dataset"), folds=len(folds), heldout_subjects=held)

    t_start = time.perf_counter()
    log(f"rr front end: respiratory spectra of {len(td)} windows ({model_cfg.window_s:g} s at {model_cfg.fs:g} Hz, "
        f"{len(rr_grid(model_cfg))} bins)")
    S = resp_spectra(td.x, model_cfg.fs, rr_grid(model_cfg))                              # (N, 4, F)
    y = td.y                                                                              # (N, 1) breaths/min
    fit = dict(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    oof = np.full((len(td), 1), np.nan, np.float32)
    fold_id = np.full(len(td), -1, np.int32)
    per_fold, resumed, curves = [], [], {}
    key = fold_key(cfg, td, folds)
    for f, (tr, te) in enumerate(folds):
        if cfg.label_fraction < 1 and len(tr) > cfg.batch_size:
            tr = np.sort(rng.choice(tr, max(cfg.batch_size, int(round(cfg.label_fraction * len(tr)))), replace=False))
        done = load_fold(run_dir, f, key, te) if resume else None
        if done is not None:
            oof[te] = done
            resumed.append(f)
        else:
            curves[f"fold {f + 1}"] = []
            net = fit_rr(S[tr], y[tr, 0], model_cfg, seed=cfg.seed + f, history=curves[f"fold {f + 1}"], **fit)
            oof[te, 0] = predict_rr(net, S[te])
            save_fold(run_dir, f, key, te, oof[te])
        fold_id[te] = f
        fm = task_metrics("rr", y[te], oof[te], OUTPUTS)
        subj = sorted(set(td.groups[te].tolist()))
        per_fold.append({"fold": f, "test_subjects": subj, "train_windows": int(len(tr)), **fm})
        log(f"rr fold {f + 1}/{len(folds)} ({', '.join(subj[:3])}{', ...' if len(subj) > 3 else ''}): "
            f"{metric_text('rr', 'mae', fm['mae'])} on {len(te)} held-out windows{' (resumed)' if done is not None else ''}")

    pm = primary_metric("rr")
    pooled = task_metrics("rr", y, oof, OUTPUTS)
    ci = bootstrap_ci("rr", y, oof, td.groups, OUTPUTS, n_boot=cfg.bootstrap, seed=cfg.seed)
    skill = skill_report("rr", td, oof, folds, OUTPUTS, n_boot=cfg.bootstrap, seed=cfg.seed)
    subj_rows, subj_mean = per_subject_metrics("rr", y, oof, td.groups, OUTPUTS)
    atomic_write_text(run_dir / "per_subject.csv", per_subject_csv(subj_rows))
    atomic_save_npz(run_dir / "oof_predictions.npz", groups=td.groups, t0=td.t0, y=y, pred=oof,
                    record_ids=td.record_ids, fold=fold_id)

    heldout = None
    if cfg.final_fit:
        curves["final fit"] = []
        net = fit_rr(S, y[:, 0], model_cfg, seed=cfg.seed + 1000, history=curves["final fit"], **fit)
        heldout = _score_heldout(net, task_data, held, model_cfg, run_dir)
        if heldout is None:                          # none held out: export checks its artifacts on training windows
            pick = np.sort(np.random.default_rng(cfg.seed).permutation(len(S))[:PARITY_WINDOWS])
            atomic_save_npz(run_dir / "parity.npz", x=S[pick], y=y[pick], groups=td.groups[pick])
    metrics = {
        "task": "rr", "kind": "regression", "init": "none", "pretrained": False, "init_collapsed": False,
        "mode": "full", "model": cfg.model, "data_root": td.meta.get("data_root"), "dataset": td.meta.get("dataset"),
        "windows": int(len(td)), "subjects": int(len(td.subjects)), "heldout_subjects": held,
        "heldout_rule": held_how,
        "folds": "leave-one-subject-out" if not k or k >= len(td.subjects) else f"{k}-fold by subject",
        "n_folds": len(folds), "label_fraction": cfg.label_fraction, "epochs": cfg.epochs,
        "primary_metric": pm, pm: pooled[pm], "ci95": ci, "metrics": pooled, "per_fold": per_fold,
        "per_subject": subj_rows, "per_subject_mean": subj_mean,
        "skill": skill, "flag": skill["flag"], "classic_flag": skill["classic_flag"], "units": ["breaths/min"],
        "outputs": list(OUTPUTS), "heldout": heldout,
        "input": {"fs": model_cfg.fs, "window_s": model_cfg.window_s, "hop_s": model_cfg.hop_s,
                  "channels": list(model_cfg.channels), "norm": model_cfg.norm,
                  "band": None if model_cfg.band is None else list(model_cfg.band), "band_phase": "zero",
                  "frontend": dict(model_cfg.frontend)},
        "elapsed_s": time.perf_counter() - t_start, "resumed_folds": resumed,
    }
    if cfg.final_fit:                        # subjects as "dataset:subject" keys, as quantize's (export names them)
        from sqtool.data.record import subject_key
        ds = str(td.meta.get("dataset") or "data")
        save_checkpoint(run_dir / "model.pt", kind="teacher_task", model_cfg=model_cfg.to_dict(),
                        state_dict=net.state_dict(),
                        train_cfg={**to_dict(cfg), "heldout_subjects": held, "heldout_rule": held_how},
                        metrics={k_: v for k_, v in metrics.items() if k_ not in ("per_fold", "per_subject")},
                        init_checkpoint=None, heldout_subjects=[subject_key(ds, h) for h in held],
                        train_target_mean=[float(np.mean(y[:, 0]))],     # bench's trivial predictor (resp_view)
                        train_subjects=[subject_key(ds, s) for s in sorted(set(np.asarray(td.groups).astype(str)))])
    training_curve(run_dir, curves, ylabel="training loss (cross-entropy over the bins)",
                   title="fine-tune rr (rr_spec): loss per epoch")
    write_metrics(run_dir, metrics)
    return metrics


def _score_heldout(net, task_data, held: list[str], model_cfg, run_dir: Path) -> dict | None:
    """The final model on the held-out subjects (never trained on): its MAE with a subject-bootstrap CI, and
    heldout.npz (their spectra, rates, subjects): the windows export checks its artifacts on. None when none."""
    if not held:
        return None
    from sqtool.core.metrics import bootstrap_ci, task_metrics
    from sqtool.data.resp import resp_spectra
    from sqtool.models.rr_spec import rr_grid
    idx = np.flatnonzero(np.isin(np.asarray(task_data.groups).astype(str), held))
    S = resp_spectra(task_data.x[idx], model_cfg.fs, rr_grid(model_cfg))
    y, g = task_data.y[idx], np.asarray(task_data.groups)[idx]
    pred = predict_rr(net, S)[:, None].astype(np.float32)
    atomic_save_npz(run_dir / "heldout.npz", x=S, y=y, groups=g, pred=pred)
    m = task_metrics("rr", y, pred, OUTPUTS)
    ci = bootstrap_ci("rr", y, pred, g, OUTPUTS, n_boot=1000, seed=0)
    return {"subjects": sorted(set(g.tolist())), "windows": int(len(idx)), "mae": m["mae"], "ci95": ci.get("mae")}
