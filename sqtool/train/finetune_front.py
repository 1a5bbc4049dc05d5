"""Fine-tune a model whose input a fixed front end computes from the task's PPG windows: the subject folds, metrics,
skill, held-out subjects and final model that `train.finetune_rr` (rr_spec: respiratory spectra) and
`train.finetune_af` (af_beats: beat features -> trees) share.

    m = run_front_finetune(cfg, run_dir, recipe)       # recipe: a FrontRecipe (what the model computes and fits)

1. The task's windows (`data.tasks.load_task` with the model's window: fs, window_s, hop_s, band, norm) -> the front end
   (`recipe.front`), computed once per window. Held-out subjects (`data.heldout`, as every fine-tune: --heldout-subjects,
   else the dataset file's split, else the last --heldout-fraction (0.2) of the sorted subjects; 0 = none) are left
   out of every step below and scored once, by the final model, at the end.
2. Subject folds of the training subjects (5 by default, 0 = leave one subject out): per fold a fresh model fitted on
   the others (`recipe.fit`, given their subjects for any inner choice), the held-out subjects' outputs read
   (`recipe.predict`).
3. Metrics on the out-of-fold outputs, as `train.finetune`'s: pooled metric with a subject-bootstrap CI, per subject
   (per_subject.csv), and the skill block (`train.skill.skill_report`: the trivial predictor and the task's classic
   method on the same windows; "no skill" / "worse than the classic method" flags).
4. A final model on all training subjects -> model.pt (kind teacher_task: the float model that ships as it is; no
   student, no int8); heldout.npz (the held-out subjects' network inputs, labels, subjects) or, holding none out,
   parity.npz (training windows' network inputs): the windows export checks its artifacts on.

Resume: as `train.finetune` (folds/fold_<k>.npz with the same key; a fold file of another config is refused).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from sqtool.core import SqtoolError, atomic_save_npz, atomic_write_text, resolve_data_root, to_dict, write_metrics
from sqtool.core.progress import item, metric_text, training_curve
from sqtool.core.trainlog import FINETUNE_COLUMNS, TrainLog, held_out_curves, start_fit

PARITY_WINDOWS = 256                   # training windows' inputs kept for export's parity when none is held out


@dataclass
class FrontRecipe:
    task: str                          # "rr" | "af"
    outputs: tuple[str, ...]           # what the model reports, (N, k): ("rr_bpm",), ("logit_af",)
    units: tuple[str, ...]
    what: str                          # the front end in words, for the log line
    front: Callable                    # (x (N, 1, T), model_cfg) -> A: the front end of every window
    fit: Callable                      # (A, y (N, k), groups (N,), model_cfg, seed, history list) -> net; each
                                       # epoch's loss to history with `add_epoch(history, loss, lr, net)`
    net_input: Callable                # (net, A) -> the network's own input (N, C, F) float
    read: Callable                     # (net, network outputs (N, ...)) -> (N, k) in the outputs' units
    curve: str = "training loss"       # the training curve's y label (a fit that records no loss plots nothing)
    checkpoint_extra: Callable | None = None     # (y of the training subjects) -> extra checkpoint keys
    classic_front: Callable | None = None        # (A, model_cfg) -> what the task's classic method reads, when A is
                                                 # it (data.classic.classic_oof's front), else None: computed once
    loss: Callable | None = None                 # (net, network outputs z, y (N, k)) -> the training loss on them
                                                 # without augmentation: log.csv's val_loss of a fold (None: empty)


def check_front_config(cfg, command: str = "train finetune") -> str:
    """The refusals every front-end model's fine-tune shares, one line each naming `cfg.model` and what it is (its
    registered `shipped_as`), before a folder is made or data read: another task than the model's, --init (no
    pretrained encoder), --mode linear, --band-phase causal (its front end reads zero-phase windows), channels other
    than the PPG, --datasets. Returns the lines' prefix for the model's own checks."""
    from sqtool.models import get_model_cfg, shipped_as
    where, task, what = f"{command} --model {cfg.model}", get_model_cfg(cfg.model).task, shipped_as(cfg.model).what
    if cfg.task != task:
        raise SqtoolError(f"{where}: {what}; use --task {task} (not {cfg.task})")
    if cfg.init not in ("", "none"):
        raise SqtoolError(f"{where}: {what}, it has no pretrained encoder to start from (--init {cfg.init}); leave "
                          "--init out")
    if cfg.mode != "full":
        raise SqtoolError(f"{where}: --mode {cfg.mode}: it has no encoder to freeze; use --mode full")
    if cfg.band_phase != "zero":
        raise SqtoolError(f"{where}: --band-phase {cfg.band_phase}: its front end reads zero-phase windows; leave "
                          "--band-phase out")
    if cfg.channels and list(cfg.channels) != ["ppg"]:
        raise SqtoolError(f"{where}: reads one PPG channel, not --channels {','.join(cfg.channels)}")
    if cfg.datasets:
        raise SqtoolError(f"{where}: --datasets is for the spectral heart-rate models (spec_*); it reads --data")
    return where


def predict_front(recipe: FrontRecipe, net, A: np.ndarray) -> np.ndarray:
    """(N, k) outputs of a fitted model on front-end values A."""
    return _run(recipe, net, A)[1]


def _run(recipe: FrontRecipe, net, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the network's outputs z, (N, k) outputs read from them) on front-end values A."""
    import torch
    with torch.no_grad():
        z = net(torch.from_numpy(np.ascontiguousarray(recipe.net_input(net, A)))).numpy()
    return z, np.asarray(recipe.read(net, z), np.float64).reshape(len(A), -1)


def held_out_front(recipe: FrontRecipe, A: np.ndarray, y: np.ndarray):
    """A fold's held-out front-end values A with targets y (N, k) as log.csv scores them after each epoch
    (`core.trainlog.HeldOut`): val_loss `recipe.loss` (None without one), val_metric the skill metric (MAE of the
    decoded outputs in their units, AUROC)."""
    from sqtool.core.metrics import skill_metric, task_metrics
    from sqtool.core.trainlog import HeldOut, val_metric_name
    metric = skill_metric(recipe.task)[0]

    def score(net):
        z, pred = _run(recipe, net, A)
        return (recipe.loss(net, z, y) if recipe.loss else None,
                task_metrics(recipe.task, y, pred, recipe.outputs)[metric])
    return HeldOut(score, val_metric_name(metric, recipe.units))


def run_front_finetune(cfg, run_dir: str | Path, recipe: FrontRecipe, log=item, resume: bool = False,
                       task_data=None) -> dict:
    """Cross-validated fine-tune + final model of `recipe` (the module docstring); returns metrics (metrics.json).
    cfg: a prepared and checked FinetuneConfig. resume=True reuses the completed folds in run_dir/folds."""
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.core.metrics import bootstrap_ci, primary_metric, task_metrics
    from sqtool.core.runs import save_resolved, torch_compute
    from sqtool.data.record import subject_key
    from sqtool.data.tasks import load_task, subject_folds, task_model_cfg
    from sqtool.models import get_model_cfg
    from sqtool.train.finetune import (fold_inputs, fold_key, folds_summary, hold_out, load_fold, per_subject_csv,
                                       per_subject_metrics, save_fold)
    from sqtool.train.skill import skill_report

    run_dir, task, outputs = Path(run_dir), recipe.task, recipe.outputs
    if not 0 < cfg.label_fraction <= 1:
        raise SqtoolError(f"label_fraction must be in (0, 1], got {cfg.label_fraction}")
    base = get_model_cfg(cfg.model)
    if cfg.fs:
        base = base.replace(fs=float(cfg.fs))
    win = task_model_cfg(task, base, window_s=cfg.window_s or None, hop_s=cfg.hop_s or None)   # the PPG windows
    model_cfg = win.replace(outputs=base.outputs, units=base.units)                 # what the network emits
    root = cfg.data_root
    if task_data is None:
        root = cfg.data_root or resolve_data_root(None) or "synthetic"
        task_data = load_task(task, root, win, max_records=cfg.max_records or None, seed=cfg.seed)
    if tuple(task_data.x.shape[1:]) != (1, win.n_samples):
        raise SqtoolError(f"{task} windows have shape {task_data.x.shape[1:]}; the front end reads (1, {win.n_samples})")
    td, held, held_how = hold_out(cfg, task_data, root)
    k = cfg.folds if cfg.folds >= 0 else 5
    folds = subject_folds(td.groups, k or None, seed=cfg.seed)
    save_resolved(run_dir, model=cfg.model, init="none", fs=model_cfg.fs, window_s=model_cfg.window_s,
                  hop_s=model_cfg.hop_s, channels=list(model_cfg.channels), data_root=td.meta.get("data_root"),
                  dataset=td.meta.get("dataset"), folds=len(folds), heldout_subjects=held, **torch_compute())

    t_start = time.perf_counter()
    log(f"{task} front end: {recipe.what} of {len(td)} windows ({model_cfg.window_s:g} s at {model_cfg.fs:g} Hz)")
    A, y, groups = recipe.front(td.x, model_cfg), td.y, np.asarray(td.groups).astype(str)
    rng = np.random.default_rng(cfg.seed)
    oof = np.full((len(td), len(outputs)), np.nan, np.float32)
    fold_id = np.full(len(td), -1, np.int32)
    per_fold, resumed, curves = [], [], {}
    tlog = TrainLog(run_dir, FINETUNE_COLUMNS, fresh=not resume, tensorboard=cfg.tensorboard)     # RUN/log.csv

    def plot():                                     # training_curve.png of the fits trained so far
        training_curve(run_dir, curves, ylabel=recipe.curve, val=held_out_curves(run_dir),
                       title=f"fine-tune {task} ({cfg.model}): loss per epoch (dashed: the fold's held-out subjects)")
    key, inputs = fold_key(cfg, td, folds), fold_inputs(cfg, td, folds, held)
    pm = primary_metric(task)
    for f, (tr, te) in enumerate(folds):
        if cfg.label_fraction < 1 and len(tr) > cfg.batch_size:
            tr = np.sort(rng.choice(tr, max(cfg.batch_size, int(round(cfg.label_fraction * len(tr)))), replace=False))
        done = load_fold(run_dir, f, key, te, inputs) if resume else None
        if done is not None:
            oof[te] = done
            resumed.append(f)
        else:
            curves[f"fold {f + 1}"] = start_fit(tlog, f"fold {f + 1}", held_out_front(recipe, A[te], y[te]))
            net = recipe.fit(A[tr], y[tr], groups[tr], model_cfg, cfg.seed + f, curves[f"fold {f + 1}"])
            oof[te] = predict_front(recipe, net, A[te])
            save_fold(run_dir, f, key, te, oof[te], inputs)
            plot()                                      # the plot as of this fold's file
        fold_id[te] = f
        fm = task_metrics(task, y[te], oof[te], outputs)
        subj = sorted(set(groups[te].tolist()))
        per_fold.append({"fold": f, "test_subjects": subj, "train_windows": int(len(tr)), **fm})
        log(f"{task} fold {f + 1}/{len(folds)} ({', '.join(subj[:3])}{', ...' if len(subj) > 3 else ''}): "
            f"{metric_text(task, pm, fm.get(pm), recipe.units[0])} on {len(te)} held-out windows"
            f"{' (resumed)' if done is not None else ''}")

    pooled = task_metrics(task, y, oof, outputs)
    ci = bootstrap_ci(task, y, oof, td.groups, outputs, n_boot=cfg.bootstrap, seed=cfg.seed)
    skill = skill_report(task, td, oof, folds, outputs, n_boot=cfg.bootstrap, seed=cfg.seed,
                         classic_front=recipe.classic_front(A, model_cfg) if recipe.classic_front else None)
    subj_rows, subj_mean = per_subject_metrics(task, y, oof, td.groups, outputs)
    atomic_write_text(run_dir / "per_subject.csv", per_subject_csv(subj_rows))
    atomic_save_npz(run_dir / "oof_predictions.npz", groups=td.groups, t0=td.t0, y=y, pred=oof,
                    record_ids=td.record_ids, fold=fold_id)

    heldout = net = None
    if cfg.final_fit:
        curves["final fit"] = start_fit(tlog, "final fit")
        net = recipe.fit(A, y, groups, model_cfg, cfg.seed + 1000, curves["final fit"])
        heldout = _score_heldout(recipe, net, task_data, held, model_cfg, run_dir, cfg.bootstrap, cfg.seed)
        if heldout is None:                          # none held out: export checks its artifacts on training windows
            pick = np.sort(np.random.default_rng(cfg.seed).permutation(len(A))[:PARITY_WINDOWS])
            atomic_save_npz(run_dir / "parity.npz", x=recipe.net_input(net, A[pick]), y=y[pick], groups=td.groups[pick])
    final_cfg = net.cfg if net is not None else model_cfg
    metrics = {
        "task": task, "kind": "classification" if recipe.units == ("logit",) else "regression", "init": "none",
        "pretrained": False, "init_collapsed": False, "mode": "full", "model": cfg.model,
        **folds_summary(cfg, td, held, held_how, k, folds, pm, pooled, ci, per_fold, subj_rows, subj_mean),
        "skill": skill, "flag": skill["flag"], "classic_flag": skill["classic_flag"], "units": list(recipe.units),
        "outputs": list(outputs), "heldout": heldout,
        "heldout_in_teacher": False,         # the shipped model is this fine-tune's: it never trained on them
        "input": {"fs": final_cfg.fs, "window_s": final_cfg.window_s, "hop_s": final_cfg.hop_s,
                  "channels": list(final_cfg.channels), "norm": final_cfg.norm,
                  "band": None if final_cfg.band is None else list(final_cfg.band), "band_phase": "zero",
                  "frontend": dict(final_cfg.frontend)},
        "elapsed_s": time.perf_counter() - t_start, "resumed_folds": resumed,
    }
    if net is not None:                      # subjects as "dataset:subject" keys, as quantize's (export names them)
        ds = str(td.meta.get("dataset") or "data")
        save_checkpoint(run_dir / "model.pt", kind="teacher_task", model_cfg=final_cfg.to_dict(),
                        state_dict=net.state_dict(),
                        train_cfg={**to_dict(cfg), "heldout_subjects": held, "heldout_rule": held_how},
                        metrics={k_: v for k_, v in metrics.items() if k_ not in ("per_fold", "per_subject")},
                        init_checkpoint=None, heldout_subjects=[subject_key(ds, h) for h in held],
                        train_subjects=[subject_key(ds, s) for s in sorted(set(groups.tolist()))],
                        dataset_layouts=metrics["dataset_layouts"],
                        **(recipe.checkpoint_extra(y) if recipe.checkpoint_extra else {}))
    plot()
    tlog.close()
    write_metrics(run_dir, metrics)
    return metrics


def _score_heldout(recipe: FrontRecipe, net, task_data, held: list[str], model_cfg, run_dir: Path,
                   n_boot: int, seed: int) -> dict | None:
    """The final model on the held-out subjects (never trained on): its primary metric with a subject-bootstrap CI
    (none with fewer than `MIN_BOOTSTRAP_SUBJECTS`: the percentile bootstrap of 2-4 subjects is their lowest to
    highest subject's figure, not a 95 % interval; "ci_note" says so), "one_class" (`core.metrics.heldout_one_class`:
    a classification task's held-out windows of one class, where weighted F1 scores that class alone; else None), and heldout.npz (their network inputs, labels, subjects, the model's outputs): the windows export checks its
    artifacts on. None when none is held out."""
    if not held:
        return None
    from sqtool.core.metrics import MIN_BOOTSTRAP_SUBJECTS, bootstrap_ci, heldout_one_class, primary_metric, task_metrics
    idx = np.flatnonzero(np.isin(np.asarray(task_data.groups).astype(str), held))
    A = recipe.front(task_data.x[idx], model_cfg)
    y, g = task_data.y[idx], np.asarray(task_data.groups)[idx]
    pred = predict_front(recipe, net, A).astype(np.float32)
    atomic_save_npz(run_dir / "heldout.npz", x=recipe.net_input(net, A), y=y, groups=g, pred=pred)
    pm = primary_metric(recipe.task)
    m = task_metrics(recipe.task, y, pred, recipe.outputs)
    subjects = sorted(set(g.astype(str).tolist()))
    few = len(subjects) < MIN_BOOTSTRAP_SUBJECTS
    ci = {} if few else bootstrap_ci(recipe.task, y, pred, g, recipe.outputs, n_boot=n_boot, seed=seed)
    return {"subjects": subjects, "windows": int(len(idx)), "metric": pm, pm: m.get(pm), "ci95": ci.get(pm),
            "metrics": m, "one_class": heldout_one_class(recipe.task, y), "ci_note": (f"no CI: {len(subjects)} subject{'s' if len(subjects) > 1 else ''} (a subject "
                                      f"bootstrap over fewer than {MIN_BOOTSTRAP_SUBJECTS} spans their range)"
                                      if few else "")}
