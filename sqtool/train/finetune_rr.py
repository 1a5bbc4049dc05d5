"""Fine-tune the respiratory-rate model `rr_spec` (`models.rr_spec`): subject folds, skill, final model.

    sqtool train finetune --task rr --model rr_spec [--data ../shared/data] [--folds 5]
    sqtool train finetune --task rr --model rr_spec --data my_ward/dataset.yaml      # a dataset with an rr label

The run is `train.finetune_front`'s (subject folds, skill beside the trivial predictor and the classic estimator
`data.resp.classic_rr`, the held-out subjects scored by the final model, model.pt, heldout.npz / parity.npz, resume)
with this recipe: the rr task's PPG windows (30 s at 40 Hz, 10 s hop, band 0.05-8 Hz, unless --window-s, --hop-s,
--fs say otherwise) -> the respiratory front end (`data.resp.resp_spectra`: baseline, RIIV, RIAV, RIFV power on
the model's breaths/min bins) -> `fit_rr` (cross-entropy against a Gaussian target around the reference rate, the
input and target shifted together along the bins) -> the rate decoded (`rr_spec.decode`). rr_spec has no int8 twin
and no student: `sqtool export` takes the run as it is.

Training numbers: --epochs, --lr, --weight-decay, --batch-size as given (the defaults of `train finetune`; the
benchmark's fixed recipe is 30 epochs at 3e-3, `benchmarks/downstream_skill.py`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.core.progress import item
from sqtool.core.trainlog import add_epoch

OUTPUTS = ("rr_bpm",)                  # what the decoded model reports (the rr task's output)


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
    xs, ts = torch.from_numpy(S), torch.from_numpy(_targets(rr, model_cfg))
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
        if losses:
            add_epoch(history, float(np.mean(losses)), opt.param_groups[0]["lr"], net)     # its row in log.csv
    return net.eval()


def _targets(rr: np.ndarray, model_cfg) -> np.ndarray:
    """(N, F) float32: a Gaussian of the model's sigma_rpm around each reference rate rr (N,) on its bins, summing
    to 1: what fit_rr trains on."""
    from sqtool.models.rr_spec import rr_grid
    target = np.exp(-0.5 * ((rr_grid(model_cfg)[None, :] - rr[:, None]) / model_cfg.arch["sigma_rpm"]) ** 2)
    return (target / target.sum(1, keepdims=True)).astype(np.float32)


def _loss(net, z: np.ndarray, y: np.ndarray) -> float:
    """fit_rr's cross-entropy of the network's outputs z (N, F) against the targets of the rates y (N, 1), unshifted
    (log.csv's val_loss of a fold)."""
    import torch
    import torch.nn.functional as F
    t = torch.from_numpy(_targets(np.asarray(y, float)[:, 0], net.cfg))
    return float(-(t * F.log_softmax(torch.from_numpy(z), dim=1)).sum(1).mean())


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
    with torch.no_grad():
        z = net(torch.from_numpy(np.asarray(S, np.float32))).numpy()          # (N, F)
    return _read(net, z)[:, 0]


def check_config(cfg, command: str = "train finetune") -> None:
    """What an rr_spec fine-tune refuses, in one line each, before a folder is made or data read."""
    from sqtool.models.rr_spec import MIN_WINDOW_S
    from sqtool.train.finetune_front import check_front_config
    where = check_front_config(cfg, command)
    if cfg.window_s and cfg.window_s < MIN_WINDOW_S:
        raise SqtoolError(f"{where}: --window-s {cfg.window_s:g}: the respiratory front end needs windows of at "
                          f"least {MIN_WINDOW_S:g} s (a few breaths)")
    if cfg.fs and cfg.fs < 12.0:
        raise SqtoolError(f"{where}: --fs {cfg.fs:g}: the front end finds beats in a 0.5-5 Hz band, which needs at "
                          "least 12 Hz")


def _front(x: np.ndarray, model_cfg) -> np.ndarray:
    from sqtool.data.resp import resp_spectra
    from sqtool.models.rr_spec import rr_grid
    return resp_spectra(x, model_cfg.fs, rr_grid(model_cfg))                              # (N, 4, F)


def _read(net, z: np.ndarray) -> np.ndarray:
    from sqtool.models.rr_spec import decode, rr_grid
    return decode(z, rr_grid(net.cfg), float(net.cfg.arch["local_rpm"]))[:, None]       # (N, 1) breaths/min


def recipe(cfg):
    """The FrontRecipe of rr_spec under a fine-tune's training numbers."""
    from sqtool.train.finetune_front import FrontRecipe
    fit = dict(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return FrontRecipe(
        task="rr", outputs=OUTPUTS, units=("breaths/min",), what="respiratory spectra", front=_front,
        fit=lambda A, y, groups, mc, seed, history: fit_rr(A, y[:, 0], mc, seed=seed, history=history, **fit),
        net_input=lambda net, A: np.asarray(A, np.float32), read=_read,
        curve="loss (cross-entropy over the bins)",
        checkpoint_extra=lambda y: {"train_target_mean": [float(np.mean(y[:, 0]))]},   # bench's trivial predictor
        classic_front=_classic_front, loss=_loss)


def _classic_front(S: np.ndarray, model_cfg) -> np.ndarray | None:
    """The spectra are the classic estimator's input when the model's bins are data.resp's (the default)."""
    from sqtool.data.resp import RR_BINS
    from sqtool.models.rr_spec import rr_grid
    return S if np.array_equal(rr_grid(model_cfg), RR_BINS) else None


def run(cfg, run_dir: str | Path, log=item, resume: bool = False, task_data=None, *, prepared: bool = False) -> dict:
    """Cross-validated fine-tune of rr_spec + final model (`train.finetune_front`); returns metrics (also
    metrics.json). resume=True reuses the completed folds in run_dir/folds."""
    from sqtool.train.finetune import prepare_finetune
    from sqtool.train.finetune_front import run_front_finetune
    if not prepared:
        cfg, _ = prepare_finetune(cfg)
    check_config(cfg)
    return run_front_finetune(cfg, run_dir, recipe(cfg), log=log, resume=resume, task_data=task_data)
