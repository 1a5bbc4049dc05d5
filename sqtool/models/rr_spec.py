"""Respiratory rate as a distribution over breaths/min bins: a small fully-convolutional network over the
respiratory spectra of `sqtool.data.resp` (the HR recipe of `models.spectral`, applied to breathing).

    net = fit_rr_spec(S_train, rr_train)          # S (N, 4, F) on RR_BINS, rr (N,) breaths/min
    rr = predict_rr_spec(net, S_test)             # (N,) breaths/min

    input  (B, 4, F)  baseline / RIIV / RIAV / RIFV power on RR_BINS (4..40 breaths/min, 0.5 step), max 1
    blocks [Conv1d(k=7, dilation d, 'same') + BN + ReLU] x 4, d = 1, 2, 4, 8, 32 channels
    head   Conv1d(k=1) -> (B, F) logits, one per breaths/min bin

Training: cross-entropy against a Gaussian-smoothed target (sigma `RrSpecCfg.sigma_bpm` around the
reference rate), shift augmentation (input and target moved together by up to +-`shift_bpm` along the
bins, zero fill: the network learns to read WHERE the respiratory peaks agree, not the training set's
rates), AdamW + one-cycle. Prediction: the softmax-weighted mean of the bins within +-`local_bpm` of the
argmax. Every hyperparameter is fixed here a priori (not tuned on the test subjects).

Not in the model registry: it has no time-domain input contract (ModelCfg fs/window describe the
PPG windows; this net sees derived spectra), so it lives beside the registry as a plain module.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from sqtool.core import SqtoolError
from sqtool.core.optim import one_cycle

RR_BINS = np.arange(4.0, 40.0 + 1e-9, 0.5)      # breaths/min; the same grid as sqtool.data.resp.RR_BINS


@dataclass
class RrSpecCfg:
    width: int = 32
    kernel: int = 7
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-3
    sigma_bpm: float = 1.0
    shift_bpm: float = 4.0
    local_bpm: float = 3.0
    seed: int = 0


class RrSpecNet(nn.Module):
    def __init__(self, in_ch: int, cfg: RrSpecCfg):
        super().__init__()
        layers, c = [], in_ch
        for d in cfg.dilations:
            layers += [nn.Conv1d(c, cfg.width, cfg.kernel, padding="same", dilation=d, bias=False),
                       nn.BatchNorm1d(cfg.width), nn.ReLU()]
            c = cfg.width
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Conv1d(c, 1, 1)

    def forward(self, x):                                   # (B, C, F)
        return self.head(self.blocks(x))[:, 0]              # (B, F) logits


def _target(rr: np.ndarray, bins: np.ndarray, sigma: float) -> np.ndarray:
    t = np.exp(-0.5 * ((bins[None, :] - np.asarray(rr, float)[:, None]) / sigma) ** 2)
    return (t / t.sum(1, keepdims=True)).astype(np.float32)


def _shift(x: torch.Tensor, k: int) -> torch.Tensor:
    """Move along the last axis by k bins (positive = up), zero fill."""
    if k == 0:
        return x
    out = torch.zeros_like(x)
    if k > 0:
        out[..., k:] = x[..., :-k]
    else:
        out[..., :k] = x[..., -k:]
    return out


def fit_rr_spec(S: np.ndarray, rr: np.ndarray, cfg: RrSpecCfg | None = None,
                bins: np.ndarray = RR_BINS) -> RrSpecNet:
    """Train a RrSpecNet on spectra S (N, C, F) and reference rates rr (N,) breaths/min."""
    cfg = cfg or RrSpecCfg()
    S = np.asarray(S, np.float32)
    rr = np.asarray(rr, float).reshape(-1)
    if S.ndim != 3 or S.shape[2] != len(bins) or len(S) != len(rr) or len(S) < 2:
        raise SqtoolError(f"fit_rr_spec: spectra must be (N >= 2, C, {len(bins)}) with one rate each, got "
                          f"{S.shape} and {rr.shape}")
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = RrSpecNet(S.shape[1], cfg)
    xs, ts = torch.from_numpy(S), torch.from_numpy(_target(rr, bins, cfg.sigma_bpm))
    n = len(S)
    steps = cfg.epochs * int(np.ceil(n / cfg.batch_size))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = one_cycle(opt, cfg.lr, steps, pct_start=0.1)
    step_bpm = float(bins[1] - bins[0])
    kmax = int(round(cfg.shift_bpm / step_bpm))
    net.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
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
    return net.eval()


def decode(logits: np.ndarray, bins: np.ndarray = RR_BINS, local_bpm: float = 3.0) -> np.ndarray:
    """(N, F) logits -> (N,) breaths/min: softmax-weighted mean within +-local_bpm of the argmax."""
    z = np.asarray(logits, float)
    p = np.exp(z - z.max(1, keepdims=True))
    top = bins[np.argmax(p, 1)]
    p = p * (np.abs(bins[None, :] - top[:, None]) <= local_bpm)
    return (p * bins[None, :]).sum(1) / p.sum(1)


def predict_rr_spec(net: RrSpecNet, S: np.ndarray, cfg: RrSpecCfg | None = None,
                    bins: np.ndarray = RR_BINS) -> np.ndarray:
    cfg = cfg or RrSpecCfg()
    with torch.no_grad():
        z = net(torch.from_numpy(np.asarray(S, np.float32))).numpy()
    return decode(z, bins, cfg.local_bpm)
