"""Fine-tune the SiamQuality encoder (pretrained or from scratch) on a downstream task.

    sqtool train finetune --task hr --init runs/train/pretrain/<run> --mode full

1. Load the task's windows preprocessed per the model cfg (`sqtool.data.tasks.load_task`).
   Held-out subjects (`data.heldout`, the rule of the spectral fine-tune and of `sqtool quantize`:
   --heldout-subjects, else --heldout-fraction 0 = none, else the dataset file's split, else the last
   --heldout-fraction (0.2) of the sorted subjects) are dropped here: every step below sees the training
   subjects only. The run records them (metrics.json and model.pt's train_cfg `heldout_subjects`) and quantize
   evaluates its student on them, so neither model trained on them.
2. Subject folds (of the training subjects): leave-one-subject-out for hr, k folds of subjects otherwise.
   For each fold: a fresh model, the pretrained encoder weights (or none), a linear head; train on the
   other subjects, predict the fold's subject(s). Out-of-fold predictions of every window are pooled.
3. Metrics on the pooled out-of-fold predictions: MAE per output (regression), weighted F1 and AUROC
   (classification), with 95 % bootstrap intervals over SUBJECTS; beside them (`metrics["skill"]`,
   `sqtool.train.skill.skill_report`) the trivial predictor (training-fold mean / base rate, on the
   same folds), the task's classic method, the spread of the predictions, and the skill test: a model
   that does not beat the trivial predictor (CI of the difference over subjects includes zero, p over the
   subjects >= 0.05, or worse; `core.metrics.skill_test`) is flagged "no skill" (`metrics["flag"]`, and the command's last line); one that loses to the classic method
   (CI of model - classic over subjects excludes zero and p < 0.05; with 5 subjects or fewer, on the point value,
   saying so) is flagged "worse than the classic method"
   (`metrics["classic_flag"]`, the same last line).
   Per subject (`per_subject_metrics`): each held-out subject's own MAE (regression, per output too) or AUROC
   (classification; a subject whose windows hold one class only has none and says which class), their mean
   over subjects with a 95 % t-interval over them (`metrics["per_subject"]`, `metrics["per_subject_mean"]`,
   and the table `per_subject.csv`): the pooled headline weighs a subject by its window count, this does not.
4. A final model on all training subjects -> model.pt (kind "teacher_task": model_cfg carries task, outputs,
   units, fs, window, channels, norm, and the target mean/std the head was trained on), which the compress
   stage distils from; `oof_predictions.npz` (groups, t0, y, pred, record_ids, fold) lets it reuse the
   teacher's honest out-of-fold predictions.

Resume (fold level): each completed fold's out-of-fold predictions are written atomically to
`folds/fold_<k>.npz` (with a key: the sha256 of the config fields that shape training, the training
subjects' task data and the fold split; the held-out options enter through the data they leave).
`run_finetune(..., resume=True)` (`sqtool train finetune --resume RUN`) reuses every fold
whose file carries the same key and trains only the rest, then the final model: the metrics, predictions
and model.pt equal an uninterrupted run's bit for bit (every fold and the final fit seed themselves).
A fold file with another key is refused (one line naming what changed: `fold_inputs`, saved beside the key), never
silently mixed in.

Modes: "full" trains everything; "linear" freezes the encoder (BN in eval mode) and fits only the head,
on features computed once (a model with an encoder and a head, `models.registry.probes_linearly`: resnet1d;
another model, a student or a spectral one, is refused in one line before any data is read). Regression heads
learn (y - mean) / std; `pred` and metrics are in units.
Inputs: the pretrained stem is 1-channel; with more channels (e.g. ppg + acc) the pretrained kernel
goes to channel 0 and the other channels' kernels start at zero, so the initial model equals the
PPG-only one.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import numpy as np

from sqtool.core import (SqtoolError, atomic_save_npz, atomic_write_text, check_band_phase, resolve_data_root, to_dict,
                         write_metrics)
from sqtool.core.io import parity_sample
from sqtool.core.trainlog import (FINETUNE_COLUMNS, HeldOut, TrainLog, add_epoch, held_out_curves, start_fit,
                                  val_metric_name)
from sqtool.core.progress import item, metric_text, training_curve
from sqtool.core.runs import save_resolved, torch_compute
from sqtool.core.optim import LAYOUT_HELP, check_training_numbers, encoder_layout, one_cycle
from sqtool.models.hr_options import MAX_RECORDS_HELP, calibrate_on_option, train_option
from sqtool.train.collapse import init_collapse_warning


@dataclass
class FinetuneConfig:
    # what each number may be (core.config: a value outside is one line, before any work)
    RANGES: ClassVar[dict] = {"max_records": {"min": 0}, "bootstrap": {"min": 0}}
    task: str = field(default="hr", metadata={"help": "hr | rr | af | bp | quality, or a custom regression label "
                                                      "of the --data dataset file"})
    init: str = field(default="none", metadata={"help": "pretrained checkpoint (file or run dir), or 'none' = scratch",
                                                "path": True})
    model: str = field(default="", metadata={
        "help": "registry name, or a pretrained run folder / checkpoint file (then the same as --init) "
                "(default: the --init checkpoint's model, else resnet1d_siamq_18); rr_spec (--task rr) and af_beats "
                "(--task af): models over a fixed front end, float, exported as they are", "path": True})
    data_root: str = field(default="", metadata={"help": "data root folder holding the datasets, or 'synthetic' "
                                                           "(default: $SQTOOL_DATA or ../shared/data, else synthetic)",
                                                   "flag": "--data", "aliases": ("--data-root",), "metavar": "DATA",
                                                   "path": True})
    datasets: list[str] = field(default_factory=list, metadata={
        "help": "spectral hr models: datasets under the data root (default: troika,wrist_exercise present); with "
                "--data DATASET.yaml: datasets trained on beside yours, built-in ones, e.g. troika (read under "
                "$SQTOOL_DATA, else ../shared/data), or other dataset files of your own, e.g. watch_v1/dataset.yaml "
                "(keyed by their name:; --data's split holds subjects out)"})
    channels: list[str] = field(default_factory=list, metadata={"help": "input channels, e.g. ppg,acc_x,acc_y,acc_z "
                                                                          "(default: ppg)"})
    fs: float = field(default=0.0, metadata={"help": "model input rate Hz (0 = the model's / checkpoint's, 40)"})
    window_s: float = field(default=0.0, metadata={"help": "window length s (0 = the task's default)"})
    hop_s: float = field(default=0.0, metadata={"help": "hop s (0 = the task's default)"})
    band_phase: str = field(default="zero", metadata={
        "help": "time-domain models: zero (the band-pass zero-phase over each window and its context) | causal (one "
                "running filter from the recording's start: what a sample-by-sample device runs, a few KB of "
                "state; export --target c --device-fs HZ then builds that filter, predict and bench stream it)"})
    mode: str = field(default="full", metadata={"help": "full | linear (frozen encoder, head only)"})
    folds: int = field(default=-1, metadata={"help": "subject folds: 0 = leave-one-subject-out, -1 = task default "
                                                     "(LOSO for hr, 5 otherwise)"})
    heldout_subjects: list[str] = field(default_factory=list, metadata={
        "help": "subjects held out of the whole fine-tune (folds, decoder, final model) for quantize to evaluate "
                "on, 'dataset:subject' or an id, comma separated (default: the dataset file's split, else the last "
                "--heldout-fraction of the sorted subjects; data.heldout)"})
    heldout_fraction: float | None = field(default=None, metadata={
        "help": "fraction of the sorted subjects held out when none is listed and no dataset file's split says "
                "(default 0.2, quantize's); 0 = none: every subject in the teacher, for a final fit (quantize "
                "--heldout-fraction 0 --estimate-from RUN: the student on every subject too); quantize without it "
                "evaluates on subjects this teacher trained on"})
    epochs: int = field(default=10, metadata={"help": "training epochs per fold"})
    batch_size: int = field(default=64, metadata={"help": "batch size"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"help": "weight decay"})
    freq_stretch: float = field(default=0.5, metadata={
        "help": "spectral hr models: fraction of training windows frequency-stretched (truth x s, harmonics "
                "scale alike), the rest shifted by up to 15 bins; 0 = shift only (models.hr_bins)"})
    motion_frac: float = train_option("motion_frac")
    motion_axis_drop: float = train_option("motion_axis_drop")
    lr_schedule: str = train_option("lr_schedule")
    calibrate_on: list[str] = calibrate_on_option()
    label_fraction: float = field(default=1.0, metadata={"help": "fraction of training windows with labels (per fold)"})
    final_fit: bool = field(default=True, metadata={"help": "also train on all subjects for model.pt"})
    max_records: int = field(default=0, metadata={"help": MAX_RECORDS_HELP + "; 0 = all"})
    bootstrap: int = field(default=1000, metadata={"help": (
        "resamples of subjects for the bootstrap 95%% CIs: the pooled metric of a time-domain or front-end model, the "
        "trivial and classic predictors' metrics; and the skill test's swap draws beyond 12 subjects. A spectral hr "
        "fine-tune's headline CI is a t-interval over subjects, no bootstrap")})
    device: str = field(default="auto", metadata={"help": "auto (CUDA when available) | cpu | cuda | cuda:N"})
    layout: str = field(default="auto", metadata={"help": LAYOUT_HELP})
    seed: int = field(default=0, metadata={"help": "random seed (folds, initialisation, synthetic data)"})
    tensorboard: bool = field(default=False, metadata={
        "help": "also write RUN/log.csv's rows (each fold's loss and held-out figures per epoch) as TensorBoard "
                "scalars into RUN/tb (needs `pip install tensorboard`)"})
    progress: bool = field(default=True, metadata={"help": "show progress bars on stderr"})

    def spec(self) -> dict:
        """The task's spec (`data.tasks.task_spec`): a built-in task's, or a custom label's of the --data dataset
        file; an unknown task is one line."""
        from sqtool.data.dataset_tasks import dataset_of
        from sqtool.data.tasks import TASK_SPECS, task_spec
        return task_spec(self.task, dataset=None if self.task in TASK_SPECS else dataset_of(self.data_root))

    def validate(self, command: str = "train finetune") -> "FinetuneConfig":
        """The value checks `sqtool train finetune` and the library entries (run_finetune, run_finetune_hr) share,
        one line each naming the option, before a folder is made or data read: a known task, the training numbers
        (lr, weight decay, epochs >= 1, batch size >= 2), fs / window_s / hop_s in bounds (0 = the default) and
        --heldout-fraction in [0, 1)."""
        from sqtool.core import check_fs, check_window_s
        from sqtool.data.heldout import check_fraction
        self.spec()                                     # a built-in task, or a custom label of --data
        check_training_numbers(self, command)
        for k in ("fs", "window_s", "hop_s"):
            v = getattr(self, k)
            if v:
                (check_fs if k == "fs" else check_window_s)(v, f"{command} --{k.replace('_', '-')}")
        check_fraction(self.heldout_fraction)
        check_band_phase(self.band_phase, command)
        return self


SPECTRAL_ONLY = ("freq_stretch", "motion_frac", "motion_axis_drop", "lr_schedule", "calibrate_on")   # + datasets


def refuse_spectral_only(cfg: FinetuneConfig, where: str) -> None:
    """One line when a model that is no spectral hr model (a time-domain encoder, rr_spec, af_beats) is given a
    training option only the spectral hr fine-tune reads (its augmentations, schedule, interval calibration):
    silently ignored, a user would believe it had an effect."""
    default = FinetuneConfig()
    given = [k for k in SPECTRAL_ONLY if getattr(cfg, k) != getattr(default, k)]
    if given:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in given)
        raise SqtoolError(f"{where}: {flags} {'is' if len(given) == 1 else 'are'} for the spectral heart-rate models "
                          f"(spec_*) only; this model would ignore {'it' if len(given) == 1 else 'them'}: leave "
                          f"{'it' if len(given) == 1 else 'them'} out")


# ----------------------------------------------------------------------------- init checkpoint

def is_checkpoint_path(value: str) -> bool:
    """A `model` value naming a run folder or checkpoint file rather than a registry name."""
    return bool(value) and (Path(value).exists() or "/" in value or value.endswith((".pt", ".pth")))


def model_as_init(cfg: FinetuneConfig) -> tuple[FinetuneConfig, dict | None]:
    """(cfg, checkpoint or None): `model` naming a pretrained run folder or checkpoint (`--model RUN`) is `init`:
    a time-domain encoder with the model taken from the checkpoint (model ""), a pretrained spectral encoder as
    `model=<its architecture>, init=RUN`; the checkpoint read for it is passed on (read once). The CLI and the
    library entries translate it here, alike; a registry name comes back unchanged with None."""
    if not cfg.model and cfg.init not in ("", "none"):      # --init RUN alone: the model is the checkpoint's,
        return _init_model(cfg)                            # a spectral one's too (help: "default: --init's model")
    if not is_checkpoint_path(cfg.model):
        return cfg, None
    if cfg.init not in ("", "none") and cfg.init != cfg.model:
        raise SqtoolError(f"train finetune: --model {cfg.model} is a checkpoint and --init {cfg.init} another; "
                          f"give one of them")
    import dataclasses

    from sqtool.core.checkpoint import load_checkpoint
    from sqtool.models.spectral import SPECTRAL_FAMILY
    ck = load_checkpoint(cfg.model, expect_kind=("teacher_pretrain", "teacher_task"), finished=True)
    mc = ck["model_cfg"]
    name = mc.get("name", "") if mc.get("family") == SPECTRAL_FAMILY else ""
    return dataclasses.replace(cfg, init=cfg.model, model=name), ck


def _init_model(cfg: FinetuneConfig) -> tuple[FinetuneConfig, dict]:
    """(cfg, the --init checkpoint) for `--init RUN` without --model: a pretrained spectral encoder's architecture
    as model (a time-domain one stays "", which load_init resolves to the checkpoint's)."""
    import dataclasses

    from sqtool.core.checkpoint import load_checkpoint
    from sqtool.models.spectral import SPECTRAL_FAMILY
    ck = load_checkpoint(cfg.init, expect_kind=("teacher_pretrain", "teacher_task"), finished=True)
    mc = ck["model_cfg"]
    return (dataclasses.replace(cfg, model=mc.get("name", "")) if mc.get("family") == SPECTRAL_FAMILY else cfg), ck


def prepare_finetune(cfg: FinetuneConfig, init_ck: dict | None = None) -> tuple[FinetuneConfig, dict | None]:
    """(cfg, checkpoint or None): the one preparation of a fine-tune's config, the CLI's and the library entries'
    alike: `model_as_init` (model=RUN -> init=RUN, the checkpoint read for it, else the caller's `init_ck`),
    then `validate()` (one line naming `train finetune` and the option)."""
    import dataclasses

    from sqtool.data.dataset_tasks import beside_paths
    cfg, ck = model_as_init(cfg)
    cfg = dataclasses.replace(cfg, datasets=beside_paths(cfg.datasets))     # your own dataset files: absolute
    return cfg.validate(), ck if ck is not None else init_ck


def load_init(init: str, model_name: str, fs: float | None, ck: dict | None = None):
    """(checkpoint dict or None, model name). Refuses other families, models, sampling rates. `ck`: the
    checkpoint `init` names when the caller has read it already (`train finetune`: read once)."""
    from sqtool.core.checkpoint import load_checkpoint
    if not init or init == "none":
        return None, model_name or "resnet1d_siamq_18"
    if ck is None:
        ck = load_checkpoint(init, expect_kind=("teacher_pretrain", "teacher_task"), finished=True)
    mc = ck["model_cfg"]
    if mc.get("family") == "spec_cnn":
        raise SqtoolError(f"checkpoint {ck['path']} is a pretrained spectral encoder: fine-tune it with "
                          f"--model {mc.get('name')} --init {init}")
    if mc.get("family") != "resnet1d":
        raise SqtoolError(f"checkpoint {ck['path']} holds a {mc.get('family')} model ({mc.get('name')}), "
                          f"not a resnet1d SiamQuality teacher")
    if model_name and model_name != mc["name"]:
        raise SqtoolError(f"checkpoint {ck['path']} is a {mc['name']} model but --model asks for {model_name}")
    if fs and abs(float(mc["fs"]) - float(fs)) > 1e-9:
        raise SqtoolError(f"checkpoint {ck['path']} was trained on {mc['fs']:g} Hz input but the task input is "
                          f"{fs:g} Hz; resample the data to {mc['fs']:g} Hz (--fs) or use a matching checkpoint")
    return ck, mc["name"]


def init_line(ck: dict) -> str:
    """`init: <model.pt> (<model>, <kind>, <steps>, <pairs>, <status>, made <when>)`: the encoder a fine-tune
    starts from, as its console says it (the same is in config.yaml's resolved init)."""
    m = ck.get("metrics") or {}
    what = [str(ck["model_cfg"].get("name")), str(ck.get("kind"))]
    if m.get("global_step") is not None:
        what.append(f"{m['global_step']} steps over {m.get('epochs_done', '?')} epochs")
    if m.get("real_pairs") is not None:
        what.append(f"{m['real_pairs']} real + {m.get('synthetic_pairs') or 0} synthetic-partner pairs")
    if m.get("status"):
        what.append(str(m["status"]))
    if ck.get("created"):
        what.append(f"made {ck['created']}")
    return f"init: {ck['path']} ({', '.join(what)})"


def check_mode(mode: str, model_name: str) -> None:
    """--mode full, or linear for a model with an encoder to freeze and a head to fit
    (models.registry.probes_linearly); one line, before any data is read."""
    from sqtool.models.registry import get_model_cfg, list_models, probes_linearly
    if mode not in ("full", "linear"):
        raise SqtoolError(f"mode must be full or linear (got '{mode}')")
    if mode == "linear" and not probes_linearly(model_name):
        fits = sorted({get_model_cfg(n).family for n in list_models() if probes_linearly(n)})
        raise SqtoolError(f"--mode linear freezes an encoder and fits a head: {model_name} "
                          f"({get_model_cfg(model_name).family}) has no such split ({' and '.join(fits)} models "
                          f"do); use --mode full")


def init_encoder(model, ck) -> dict:
    """Copy the checkpoint's encoder into `model`; a 1-channel stem goes to channel 0, others zero."""
    import torch
    src = {k[len("encoder."):]: v for k, v in ck["state_dict"].items() if k.startswith("encoder.")}
    dst = model.encoder.state_dict()
    missing = [k for k in dst if k not in src]
    if missing:
        raise SqtoolError(f"checkpoint {ck['path']}: encoder lacks {len(missing)} tensors (e.g. {missing[0]}); "
                          f"not the same architecture")
    out = {}
    for k, v in dst.items():
        s = src[k]
        if s.shape == v.shape:
            out[k] = s
        elif k == "stem.0.weight" and s.shape[0] == v.shape[0] and s.shape[2] == v.shape[2] and s.shape[1] == 1:
            w = torch.zeros_like(v)                          # (48, C, 80)
            w[:, :1] = s
            out[k] = w
        else:
            raise SqtoolError(f"checkpoint {ck['path']}: encoder tensor {k} has shape {tuple(s.shape)}, "
                              f"model needs {tuple(v.shape)}")
    model.encoder.load_state_dict(out)
    return {"loaded": len(out)}


# ----------------------------------------------------------------------------- one fit

def fit_loss(kind: str):
    """The fine-tune's loss of outputs and targets (B, k): BCE on logits (classification), smooth L1 on normalised
    targets (regression)."""
    import torch.nn.functional as F
    return F.binary_cross_entropy_with_logits if kind == "classification" else F.smooth_l1_loss


def _fit(model, x, y, cfg: FinetuneConfig, kind: str, dev, seed: int, desc: str = "", history: list | None = None):
    """Train `model` (head only in linear mode) on windows x (N, C, T) and normalised targets y (N, k);
    appends each epoch's mean training loss to `history` when given (a FitRows: with the model, for its held-out
    part's figures)."""
    import torch
    from sqtool.core.progress import bar as progress_bar

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    loss_fn = fit_loss(kind)
    n = len(x)
    if cfg.mode == "linear":
        model.eval()
        feats = encode(model, x, dev)
        params = list(model.head.parameters())
    else:
        params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(1, math.ceil(n / cfg.batch_size)) * cfg.epochs
    sched = one_cycle(opt, cfg.lr, steps, pct_start=0.1)
    yt = torch.from_numpy(y).to(dev)
    bar = progress_bar(total=steps, enabled=cfg.progress, desc=desc, unit="step")
    if cfg.mode != "linear":
        model.train()
    for _ in range(cfg.epochs):
        ep_loss = []
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            if cfg.mode != "linear" and len(idx) < 2:
                continue                                        # BatchNorm needs 2 samples
            if cfg.mode == "linear":
                out = model.head(feats[idx])
            else:
                out = model(torch.from_numpy(x[idx.numpy()]).to(dev))   # (B, k)
            loss = loss_fn(out, yt[idx])
            if not torch.isfinite(loss):
                raise SqtoolError(f"fine-tuning loss became {float(loss)} ({desc}); lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            sched.step()
            bar.update(1)
            ep_loss.append(loss.item())
            bar.set_postfix(loss=f"{ep_loss[-1]:.4f}")
        if ep_loss:
            add_epoch(history, float(np.mean(ep_loss)), opt.param_groups[0]["lr"], model)   # its row in log.csv
    bar.close()
    model.eval()
    return model


def encode(model, x, dev, batch: int = 256):
    """The encoder's features of windows x (N, C, T), without gradients: a linear probe's input, computed once."""
    import torch
    with torch.no_grad():
        return torch.cat([model.encoder(torch.from_numpy(x[i:i + batch]).to(dev)) for i in range(0, len(x), batch)])


def held_out_part(task: str, kind: str, x: np.ndarray, y: np.ndarray, y_norm: np.ndarray, denorm, dev,
                  outputs=(), units=(), linear: bool = False) -> HeldOut:
    """A fold's held-out windows x (N, C, T) with targets y (N, k) in units (`y_norm`: as trained on) as log.csv
    scores them after each epoch (`core.trainlog.HeldOut`): val_loss the training loss on them, val_metric the skill
    metric (MAE in units of the `denorm`ed outputs, AUROC). `linear`: the encoder is frozen, its features of x are
    computed once and each epoch runs the head alone."""
    import torch

    from sqtool.core.metrics import skill_metric, task_metrics
    metric, loss_fn, target, feats = skill_metric(task)[0], fit_loss(kind), torch.from_numpy(y_norm), []

    def score(model):
        if linear:
            if not feats:                                                   # the frozen encoder's, once
                feats.append(encode(model, x, dev))
            out = model.head(feats[0]).float().cpu().numpy()                  # (N, k)
        else:
            out = predict(model, x, dev)                                        # (N, k)
        return (float(loss_fn(torch.from_numpy(out), target)),
                task_metrics(task, y, denorm(out), outputs)[metric])
    return HeldOut(score, val_metric_name(metric, units))


def predict(model, x, dev, batch: int = 256) -> np.ndarray:
    import torch
    model.eval()
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i:i + batch]).to(dev)).float().cpu().numpy()
                               for i in range(0, len(x), batch)]) if len(x) else np.zeros((0, 1))


# ----------------------------------------------------------------------------- per-subject metrics

def per_subject_metrics(task: str, y: np.ndarray, pred: np.ndarray, groups: np.ndarray,
                        outputs=()) -> tuple[list[dict], dict]:
    """(rows, mean) of the out-of-fold predictions per subject (every subject is held out in exactly one fold).

    rows: {subject, windows, <the task's metrics on that subject's windows>}; classification: AUROC only where
    the subject has both classes, else auroc None and one_class naming the class (e.g. "non-AF only").
    mean: {metric: the skill metric (`core.metrics.skill_metric`), mean and ci95 over the subjects that have it
    (the t-interval over those subjects, `core.metrics.t_interval`, kept inside the metric's range: a percentile
    bootstrap of 3-20 subjects' values is too narrow; None with fewer than 2), the same for each output's MAE,
    subjects (scored), one_class (subjects left out for holding one class only)}."""
    from sqtool.core.metrics import (CLASS_NAMES, CLASSIFICATION_TASKS, clip_interval, skill_metric, t_interval,
                                     task_metrics)
    metric, _ = skill_metric(task)
    groups = np.asarray(groups).astype(str)
    rows = []
    for s in sorted(set(groups.tolist())):
        i = groups == s
        m = task_metrics(task, y[i], pred[i], outputs)
        row = {"subject": s, "windows": int(i.sum()), **{k: v for k, v in m.items() if k != "n"}}
        if task in CLASSIFICATION_TASKS:
            if not np.isfinite(row["auroc"]):
                neg, pos = CLASS_NAMES[task]
                row.update(auroc=None, one_class=f"{pos if row['positives'] else neg} only")
        rows.append(row)
    keys = [metric] + ([k for k in rows[0] if k.startswith("mae_")] if rows and task not in CLASSIFICATION_TASKS
                       else [])
    mean: dict = {"metric": metric}
    for k in keys:
        v = [r[k] for r in rows if r.get(k) is not None and np.isfinite(r[k])]
        mean[k] = float(np.mean(v)) if v else None
        ci = clip_interval(*t_interval(v), k)                                    # MAE >= 0, AUROC in [0, 1]
        mean[f"{k}_ci95" if k != metric else "ci95"] = list(ci) if len(v) >= 2 else None   # JSON null: one value
    mean["subjects"] = sum(r.get(metric) is not None for r in rows)
    mean["one_class"] = [r["subject"] for r in rows if "one_class" in r]
    return rows, mean


def per_subject_csv(rows: list[dict]) -> str:
    """The per-subject rows as CSV text (columns: the union of the rows' keys, in first-seen order)."""
    import csv
    import io
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in cols})
    return buf.getvalue()


# ----------------------------------------------------------------------------- fold files (resume)

_NOT_IN_KEY = ("progress", "bootstrap", "final_fit", "calibrate_on",   # do not change a fold's predictions
               "layout", "tensorboard")                                 # (the same maths in either layout)
HELDOUT_OPTIONS = ("heldout_subjects", "heldout_fraction")   # hashed through the training data they leave


def init_identity(cfg) -> bytes:
    """The sha256 of the --init checkpoint (b"" from scratch): a fold's start depends on its weights, which a
    pretraining re-run into the same folder changes under the same path (a resume would mix two encoders)."""
    if cfg.init in ("", "none"):
        return b""
    from sqtool.core.checkpoint import checkpoint_sha256
    try:
        return checkpoint_sha256(cfg.init).encode()
    except (OSError, SqtoolError):                  # gone: the run's own load says so
        return b""


def fold_key(cfg: FinetuneConfig, td, folds) -> str:
    """sha256 of what a fold's predictions depend on: the training config, the task data (the training subjects'),
    the split. The held-out options are not hashed: the data they leave is, so that a run holding none out
    (--heldout-fraction 0, the benchmarks') has the key it had before subjects were held out."""
    import hashlib
    import json

    from sqtool.core.changes import hash_arrays, keyed_fields
    h = hashlib.sha256()
    c = keyed_fields(cfg, _NOT_IN_KEY + HELDOUT_OPTIONS)
    h.update(json.dumps(c, sort_keys=True, default=str).encode() + init_identity(cfg))
    hash_arrays(h, (td.x, td.y, np.asarray(td.groups).astype(str)))
    for tr, te in folds:
        h.update(np.asarray(tr, np.int64).tobytes() + b"|" + np.asarray(te, np.int64).tobytes() + b";")
    return h.hexdigest()


def fold_inputs(cfg: FinetuneConfig, td, folds, held=()) -> dict:
    """What `fold_key` hashes, as the record a refusal names a change from (`core.changes.what_changed`): the
    config fields, the --init checkpoint, the dataset file, the held-out subjects, each training recording's
    windows (its file), the split."""
    from sqtool.core.changes import inputs_record, keyed_fields, recording_shas
    c = keyed_fields(cfg, _NOT_IN_KEY + HELDOUT_OPTIONS)
    init = init_identity(cfg).decode()
    return inputs_record(c, checkpoints={"--init checkpoint": (cfg.init, init)} if init else None,
                         dataset_files=td.meta.get("dataset_files"), heldout=held,
                         recordings=recording_shas(td.record_ids, x=td.x, y=td.y, subject=td.groups),
                         files=td.meta.get("record_files"), split=[np.asarray(te).tolist() for _, te in folds])


def fold_path(run_dir: str | Path, f: int) -> Path:
    return Path(run_dir) / "folds" / f"fold_{f:03d}.npz"


def save_fold(run_dir: str | Path, f: int, key: str, te: np.ndarray, pred: np.ndarray,
              inputs: dict | None = None) -> None:
    """Fold `f`'s out-of-fold predictions with its key and its `inputs` record (`fold_inputs`)."""
    from sqtool.core.changes import record_array
    atomic_save_npz(fold_path(run_dir, f), key=np.asarray(key), te=np.asarray(te, np.int64),
                    pred=np.asarray(pred, np.float32), **record_array(inputs))


def load_fold(run_dir: str | Path, f: int, key: str, te: np.ndarray, inputs: dict | None = None) -> np.ndarray | None:
    """A completed fold's out-of-fold predictions, or None when it has no file; another key: one line naming what
    changed since the fold was saved (`inputs`: this run's `fold_inputs`)."""
    from sqtool.core.changes import record_of, resume_refusal
    p = fold_path(run_dir, f)
    if not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            k, te_saved, pred, then = str(z["key"]), z["te"], z["pred"], record_of(z)
    except Exception as e:  # noqa: BLE001 - truncated / not an npz / missing key
        raise SqtoolError(f"cannot resume: {p} is unreadable ({type(e).__name__}); delete it to redo fold {f + 1}")
    if k != key or not np.array_equal(te_saved, te) or len(pred) != len(te):
        raise SqtoolError(resume_refusal(p, then, inputs, "another config, --init checkpoint, data or split"))
    return pred


# ----------------------------------------------------------------------------- held-out subjects

def hold_out(cfg: FinetuneConfig, td, data) -> tuple:
    """(the training subjects' task data, the held-out subject ids, how they were chosen): `data.heldout`'s rule
    over the subjects of `td` (the dataset file `data` names: its split, read only when it declares a test side,
    among the subjects loaded). Fewer than 2 training subjects left beside held-out ones: one line."""
    from sqtool.data.dataset_tasks import dataset_of
    from sqtool.data.heldout import file_split, heldout_keys
    groups = np.asarray(td.groups).astype(str)
    present = sorted(set(groups.tolist()))
    split = file_split(None if "split_test" in td.meta else dataset_of(data), meta=td.meta)  # (read with td: no parse)
    held, how = heldout_keys(present, names=cfg.heldout_subjects, fraction=cfg.heldout_fraction,
                             split=None if split is None else [s for s in split if s in present])
    if not held:
        return td, held, how
    td = td.subset(np.flatnonzero(~np.isin(groups, held)))
    if len(td.subjects) < 2:
        raise SqtoolError(f"subject folds need >= 2 training subjects, the data has {len(td.subjects)} beside the "
                          f"{len(held)} held out ({', '.join(held)}: {how}); hold out fewer (--heldout-subjects, "
                          "--heldout-fraction 0)")
    return td, held, how


def folds_summary(cfg, td, held, held_how, k, folds, pm, pooled, ci, per_fold, subj_rows, subj_mean) -> dict:
    """The metrics.json entries every fold run writes alike (`run_finetune`, `finetune_front.run_front_finetune`):
    the data, the held-out subjects and their rule, the folds, the pooled metric with its CI, per fold, per subject."""
    return {"data_root": td.meta.get("data_root"), "dataset": td.meta.get("dataset"),
            "dataset_layouts": dict(td.meta.get("dataset_layouts") or {}),   # wrist_troika -> troika (the card's)
            "windows": int(len(td)), "subjects": int(len(td.subjects)), "heldout_subjects": held,
            "heldout_rule": held_how,
            "folds": "leave-one-subject-out" if not k or k >= len(td.subjects) else f"{k}-fold by subject",
            "n_folds": len(folds), "label_fraction": cfg.label_fraction, "epochs": cfg.epochs,
            "primary_metric": pm, pm: pooled[pm], "ci95": ci, "metrics": pooled, "per_fold": per_fold,
            "per_subject": subj_rows, "per_subject_mean": subj_mean}


# ----------------------------------------------------------------------------- the command

def run_finetune(cfg: FinetuneConfig, run_dir: str | Path, task_data=None, resume: bool = False,
                 init_ck: dict | None = None, *, prepared: bool = False) -> dict:
    """Cross-validated fine-tuning + final model; returns the metrics dict (also metrics.json).
    resume=True reuses the completed folds saved in run_dir/folds (see the module docstring). `init_ck`: the
    checkpoint cfg.init names when the caller has read it already (`load_init`). prepared=True: cfg and init_ck
    are what `prepare_finetune` returned (the CLI prepares before it makes the run folder), not prepared again."""
    import torch

    from sqtool.data.tasks import folds_note, load_task, subject_folds, task_model_cfg
    from sqtool.models import create_model, get_model_cfg
    from sqtool.train import loop
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.core.metrics import bootstrap_ci, primary_metric, task_metrics

    run_dir = Path(run_dir)
    if not prepared:
        cfg, init_ck = prepare_finetune(cfg, init_ck)    # model=RUN -> init=RUN, checked, as the CLI does
    if not 0 < cfg.label_fraction <= 1:
        raise SqtoolError(f"label_fraction must be in (0, 1], got {cfg.label_fraction}")
    spec = cfg.spec()                                   # built in, or a custom label of the dataset file
    kind = spec["kind"]
    dev = loop.pick_device(cfg.device)

    ck, model_name = load_init(cfg.init, cfg.model, cfg.fs or None, ck=init_ck)
    check_mode(cfg.mode, model_name)
    if ck is not None:                                   # which encoder this fine-tune starts from, in one line
        print(init_line(ck), file=sys.stderr)
    collapsed = init_collapse_warning(ck)                # a collapsed SimSiam init: one WARNING line
    if collapsed:
        print(collapsed, file=sys.stderr)
    base = get_model_cfg(model_name) if ck is None else _cfg_from(ck)
    if cfg.fs:
        base = base.replace(fs=float(cfg.fs))
    model_cfg = task_model_cfg(cfg.task, base, channels=cfg.channels or ("ppg",),
                               window_s=cfg.window_s or None, hop_s=cfg.hop_s or None, spec=spec).replace(
                                   band_phase=cfg.band_phase)
    layout = encoder_layout(cfg.layout, model_cfg.family, dev, model_name)     # before any data is read
    input_shape = model_cfg.input_shape         # (C, T): fs * window_s not whole -> one line, before any data is read
    seen = ck["model_cfg"].get("band_phase") or "zero" if ck is not None else cfg.band_phase   # older: zero
    if seen != cfg.band_phase:
        print(f"note: the --init encoder was pretrained on {seen}-phase band-passed windows and this fine-tune feeds "
              f"it {cfg.band_phase}-phase ones (the same front end: pretrain with --band-phase {cfg.band_phase})",
              file=sys.stderr)

    root = cfg.data_root
    if task_data is None:
        root = cfg.data_root or resolve_data_root(None) or "synthetic"
        task_data = load_task(cfg.task, root, model_cfg, max_records=cfg.max_records or None, seed=cfg.seed)
    if tuple(task_data.x.shape[1:]) != tuple(input_shape):
        raise SqtoolError(f"task windows have shape {task_data.x.shape[1:]} but the model expects {input_shape}")
    td, held, held_how = hold_out(cfg, task_data, root)         # from here on: the training subjects only
    k = cfg.folds if cfg.folds >= 0 else (0 if cfg.task == "hr" else 5)
    folds = subject_folds(td.groups, k or None, seed=cfg.seed)
    if note := folds_note(k, len(folds)):
        print(note)
    save_resolved(run_dir, model=model_name, init=ck["path"] if ck else "none", fs=model_cfg.fs,
                  window_s=model_cfg.window_s, hop_s=model_cfg.hop_s, channels=list(model_cfg.channels),
                  data_root=td.meta.get("data_root"), dataset=td.meta.get("dataset"), folds=len(folds),
                  heldout_subjects=held, **torch_compute())

    def new_model(y_train):
        from sqtool.core import set_seed
        set_seed(cfg.seed)
        if kind == "regression":
            mean, std = y_train.mean(0), y_train.std(0) + 1e-6
            mc = model_cfg.replace(target_mean=tuple(float(v) for v in mean), target_std=tuple(float(v) for v in std))
        else:
            mc = model_cfg.replace(target_mean=(), target_std=())
        m = create_model(mc)
        if ck is not None:
            init_encoder(m, ck)
        if cfg.mode == "linear":
            for p in m.encoder.parameters():
                p.requires_grad_(False)
        m = m.to(dev)
        if layout == "nhwc":
            m.encoder.channels_last_2d()                # before the optimizer: it makes new parameters
        return m, mc

    def norm_y(y, mc):
        if kind != "regression":
            return y.astype(np.float32)
        return ((y - np.array(mc.target_mean)) / np.array(mc.target_std)).astype(np.float32)

    def denorm(p, mc):
        return p * np.array(mc.target_std) + np.array(mc.target_mean) if kind == "regression" else p

    t_start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    oof = np.full((len(td), len(spec["outputs"])), np.nan, np.float32)
    fold_id = np.full(len(td), -1, np.int32)
    per_fold, resumed = [], []
    curves: dict[str, list[float]] = {}                     # training loss per epoch, per fit
    tlog = TrainLog(run_dir, FINETUNE_COLUMNS, fresh=not resume, tensorboard=cfg.tensorboard)     # RUN/log.csv
    key, inputs = fold_key(cfg, td, folds), fold_inputs(cfg, td, folds, held)
    for f, (tr, te) in enumerate(folds):
        if cfg.label_fraction < 1:
            tr = np.sort(rng.choice(tr, max(cfg.batch_size, int(round(cfg.label_fraction * len(tr)))), replace=False)) \
                if len(tr) > cfg.batch_size else tr
        done = load_fold(run_dir, f, key, te, inputs) if resume else None
        if done is not None:
            oof[te] = done
            resumed.append(f)
        else:
            m, mc = new_model(td.y[tr])
            held_out = held_out_part(cfg.task, kind, td.x[te], td.y[te], norm_y(td.y[te], mc), lambda p: denorm(p, mc),
                                     dev, spec["outputs"], spec["units"], linear=cfg.mode == "linear")
            curves[f"fold {f + 1}"] = start_fit(tlog, f"fold {f + 1}", held_out)
            _fit(m, td.x[tr], norm_y(td.y[tr], mc), cfg, kind, dev, cfg.seed + f,
                 desc=f"{cfg.task} fold {f + 1}/{len(folds)}", history=curves[f"fold {f + 1}"])
            oof[te] = denorm(predict(m, td.x[te], dev), mc)
            save_fold(run_dir, f, key, te, oof[te], inputs)
            fold_curve(run_dir, curves, kind, cfg.task)                   # the plot as of this fold's file
        fold_id[te] = f
        fm = task_metrics(cfg.task, td.y[te], oof[te], spec["outputs"])
        per_fold.append({"fold": f, "test_subjects": sorted(set(td.groups[te].tolist())),
                         "train_windows": int(len(tr)), **fm})
        item(f"{cfg.task} fold {f + 1}/{len(folds)} ({', '.join(per_fold[-1]['test_subjects'][:3])}"
             f"{', ...' if len(per_fold[-1]['test_subjects']) > 3 else ''}): "
             f"{metric_text(cfg.task, primary_metric(cfg.task), fm.get(primary_metric(cfg.task)), spec['units'][0])} "
             f"on {len(te)} "
             f"held-out windows{' (resumed)' if done is not None else ''}")

    outputs = spec["outputs"]
    pooled = task_metrics(cfg.task, td.y, oof, outputs)
    ci = bootstrap_ci(cfg.task, td.y, oof, td.groups, outputs, n_boot=cfg.bootstrap, seed=cfg.seed)
    pm = primary_metric(cfg.task)
    from sqtool.train.skill import skill_report
    skill = skill_report(cfg.task, td, oof, folds, outputs, n_boot=cfg.bootstrap, seed=cfg.seed)
    subj_rows, subj_mean = per_subject_metrics(cfg.task, td.y, oof, td.groups, outputs)
    atomic_write_text(run_dir / "per_subject.csv", per_subject_csv(subj_rows))
    atomic_save_npz(run_dir / "oof_predictions.npz", groups=td.groups, t0=td.t0, y=td.y, pred=oof,
                    record_ids=td.record_ids, fold=fold_id)

    final_cfg = None
    if cfg.final_fit:
        m, final_cfg = new_model(td.y)
        curves["final fit"] = start_fit(tlog, "final fit")
        _fit(m, td.x, norm_y(td.y, final_cfg), cfg, kind, dev, cfg.seed + 1000, desc=f"{cfg.task} final",
             history=curves["final fit"])
        state = m.state_dict()
    metrics = {
        "task": cfg.task, "kind": kind, "init": cfg.init, "pretrained": ck is not None,
        "init_collapsed": bool(collapsed), "mode": cfg.mode,
        "model": model_name, **folds_summary(cfg, td, held, held_how, k, folds, pm, pooled, ci, per_fold, subj_rows,
                                             subj_mean),
        "skill": skill, "flag": skill["flag"], "classic_flag": skill["classic_flag"],
        "units": list(spec["units"]), "input": {"fs": model_cfg.fs, "window_s": model_cfg.window_s,
                                                "hop_s": model_cfg.hop_s, "channels": list(model_cfg.channels),
                                                "norm": model_cfg.norm,
                                                "band": None if model_cfg.band is None else list(model_cfg.band),
                                                "band_phase": model_cfg.band_phase},
        "elapsed_s": time.perf_counter() - t_start, "resumed_folds": resumed,
    }
    if cfg.final_fit:
        save_checkpoint(run_dir / "model.pt", kind="teacher_task", model_cfg=final_cfg.to_dict(), state_dict=state,
                        train_cfg={**to_dict(cfg), "heldout_subjects": held, "heldout_rule": held_how},
                        metrics={k_: v for k_, v in metrics.items() if k_ not in ("per_fold", "per_subject")},
                        init_checkpoint=ck["path"] if ck else None)
        parity_sample(run_dir, td.x, td.y, cfg.seed)     # export checks a float teacher's artifacts on them
    fold_curve(run_dir, curves, kind, cfg.task)
    tlog.close()
    write_metrics(run_dir, metrics)
    return metrics


def fold_curve(run_dir: Path, curves: dict, kind: str, task: str) -> None:
    """training_curve.png of the fits trained so far (after each fold, and at the end)."""
    training_curve(run_dir, curves, ylabel="loss (normalised targets)" if kind == "regression" else "loss (BCE)",
                   title=f"fine-tune {task}: loss per epoch (dashed: the fold's held-out subjects)",
                   val=held_out_curves(run_dir))


def _cfg_from(ck):
    from sqtool.models.registry import ModelCfg
    mc = ModelCfg.from_dict(ck["model_cfg"])
    return mc.replace(task="pretrain", outputs=(), units=(), target_mean=(), target_std=())
