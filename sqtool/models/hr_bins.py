"""Train heart-rate-bin models: cross-entropy on a smoothed target, optional distillation on the bins.

    x (N, C, F) float   front-end spectra (codes / 127), F heart-rate bins
    y (N,) BPM          ECG truth per window (NaN = doubtful truth: left out)
    model(x) -> (N, F)  logits over the bins

Loss per window: cross-entropy against a Gaussian around the truth (sigma `target_sigma_bpm`, the truth
smeared over neighbouring bins so near misses cost less than far ones) and, when teacher logits are
given, `kd_weight` x KL(teacher || student) at temperature `kd_temp` (the student learns the teacher's
whole distribution, including its doubt between the pulse and a motion peak, not only its argmax).
Augmentation (`shift_bins`): every channel's spectrum and the target move by the same random number of
bins, zero-filled at the edges (code -127): the network must read the pulse relative to the motion
peaks wherever they sit, instead of learning the training set's heart-rate distribution.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

EMPTY = -1.0            # the float value of code -127: an empty bin


@dataclass
class BinTrainCfg:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    target_sigma_bpm: float = 3.0
    shift_bins: int = 15
    kd_weight: float = 0.0          # 0 = labels only
    kd_temp: float = 2.0
    seed: int = 0


def gaussian_targets(y: np.ndarray, bins: np.ndarray, sigma: float) -> np.ndarray:
    """(N,) BPM -> (N, F) probabilities, a Gaussian of `sigma` BPM on the bin grid."""
    d = (bins[None, :] - np.asarray(y, np.float64)[:, None]) / sigma        # (N, F)
    p = np.exp(-0.5 * d * d)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def shift_batch(x: torch.Tensor, t: torch.Tensor, s: torch.Tensor, extra: torch.Tensor | None = None):
    """Shift x (B, C, F), target t (B, F) (and teacher logits) by s (B,) bins, filling with empty bins."""
    B, C, Fb = x.shape
    idx = torch.arange(Fb)[None, :] - s[:, None]                           # (B, F) source bin
    ok = (idx >= 0) & (idx < Fb)
    idc = idx.clamp(0, Fb - 1)
    xs = torch.where(ok[:, None, :], torch.gather(x, 2, idc[:, None, :].expand(B, C, Fb)), EMPTY)
    ts = torch.where(ok, torch.gather(t, 1, idc), 0.0)
    ts = ts / ts.sum(dim=1, keepdim=True).clamp_min(1e-12)
    es = None
    if extra is not None:                                                   # teacher logits: empty = very low
        es = torch.where(ok, torch.gather(extra, 1, idc), extra.min(dim=1, keepdim=True).values)
    return xs, ts, es


def train_bins(model, x: np.ndarray, y: np.ndarray, bins: np.ndarray, cfg: BinTrainCfg,
               teacher_logits: np.ndarray | None = None, log=None):
    """Train `model` in place on windows with finite truth; returns the per-epoch mean loss."""
    ok = np.isfinite(y)
    xt = torch.as_tensor(np.asarray(x, np.float32)[ok])                     # (N, C, F)
    tt = torch.as_tensor(gaussian_targets(y[ok], bins, cfg.target_sigma_bpm))  # (N, F)
    kt = torch.as_tensor(np.asarray(teacher_logits, np.float32)[ok]) if teacher_logits is not None else None
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    losses = []
    model.train()
    n = len(xt)
    for ep in range(cfg.epochs):
        perm = torch.randperm(n, generator=g)
        tot = 0.0
        for i in range(0, n, cfg.batch_size):
            b = perm[i:i + cfg.batch_size]
            if len(b) < 2:
                continue
            s = torch.randint(-cfg.shift_bins, cfg.shift_bins + 1, (len(b),), generator=g) if cfg.shift_bins \
                else torch.zeros(len(b), dtype=torch.long)
            xb, tb, kb = shift_batch(xt[b], tt[b], s, kt[b] if kt is not None else None)
            logits = model(xb)                                              # (B, F)
            logp = F.log_softmax(logits, dim=1)
            loss = -(tb * logp).sum(dim=1).mean()
            if kb is not None and cfg.kd_weight > 0:
                T = cfg.kd_temp
                pt = F.softmax(kb / T, dim=1)
                kl = F.kl_div(F.log_softmax(logits / T, dim=1), pt, reduction="batchmean") * T * T
                loss = (1 - cfg.kd_weight) * loss + cfg.kd_weight * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item() * len(b)
        losses.append(tot / max(n, 1))
        if log:
            log(ep, losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def predict_logits(model, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """(N, C, F) -> (N, F) float32 logits."""
    model.eval()
    out = [model(torch.as_tensor(np.asarray(x[i:i + batch], np.float32))).float().numpy()
           for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


# ----------------------------------------------------------------------------- decoding

from sqtool.models.decoder import decode_float, decode_int, decoder_only  # noqa: E402  (re-exported)

def fit_decoder(truth_sequences: list[np.ndarray], bins_bpm, hop_s: float, logit_scale: float = 1.0) -> dict:
    """The HMM's transition prior from TRAINING truth only: sigma per hop and the jump floor."""
    from sqtool.models.decoder import DecoderCfg, estimate_floor, estimate_transition
    sigma = estimate_transition(truth_sequences, hop_s)
    base = DecoderCfg(bins_bpm=tuple(bins_bpm), sigma_bpm=sigma, logit_scale=logit_scale)
    floor = estimate_floor(truth_sequences, sigma, base)
    return DecoderCfg(bins_bpm=tuple(bins_bpm), sigma_bpm=float(sigma), floor=float(floor),
                      logit_scale=float(logit_scale)).to_dict()


def select_decoder(logits: list[np.ndarray], truth: list[np.ndarray], groups: list[str], base: dict,
                   sigmas=(2.0, 3.0, 4.0, 6.0), floors=(1e-4, 1e-3, 1e-2), temperatures=(1.0, 2.0, 3.0)) -> dict:
    """Pick the decoder's transition sigma, jump floor and logit temperature on OUT-OF-FOLD logits of the
    training subjects (inner cross-validation), by the mean of subjects' MAE. `base` (from `fit_decoder`,
    the truth's own sigma) is one of the candidates. Returns the decoder dict with "temperature" added."""
    best, best_score = None, np.inf
    cands = sorted({float(base["sigma_bpm"]), *sigmas})
    for sg in cands:
        for fl in sorted({float(base["floor"]), *floors}):
            for T in temperatures:
                dec = {**base, "sigma_bpm": sg, "floor": fl}
                per = {}
                for lg, y, g in zip(logits, truth, groups):
                    hr = decode_float(lg, {**dec, "temperature": T})["hr"]
                    ok = np.isfinite(y)
                    per.setdefault(g, []).append(np.abs(hr[ok] - y[ok]))
                score = float(np.mean([np.concatenate(v).mean() for v in per.values()]))
                if score < best_score:
                    best, best_score = {**dec, "temperature": float(T), "inner_mae": score}, score
    return best
