"""Train heart-rate-bin models: cross-entropy on a smoothed target, optional distillation on the bins.

    x (N, C, F) float   front-end spectra (codes / 127), F heart-rate bins
    y (N,) BPM          ECG truth per window (NaN = doubtful truth: left out)
    model(x) -> (N, F)  logits over the bins

Loss per window: cross-entropy against a Gaussian around the truth (sigma `target_sigma_bpm`, the truth
smeared over neighbouring bins so near misses cost less than far ones) and, when teacher logits are
given, `kd_weight` x KL(teacher || student) at temperature `kd_temp` (the student learns the teacher's
whole distribution, including its doubt between the pulse and a motion peak, not only its argmax).
Gated distillation (`kd_gate_bpm` > 0): the KL applies only to windows whose teacher argmax lies within
`kd_gate_bpm` of the truth; elsewhere the window learns the labels alone. Out-of-fold teacher logits are
honest but can be confidently wrong on whole recordings (a running or cycling subject whose cadence the inner
teachers, trained without it, lock onto); copying those teaches the student the cadence, and the labels
alone do better there. Where the teacher is right its dark knowledge (the doubt between the pulse and its
harmonics) is kept. The gate reads the truth of training windows only, as the CE does.
Augmentation, per window, one of two (the mix is `stretch_frac`, a training-config field saved with the run):
  shift (`shift_bins`)   every channel's spectrum and the target move by the same random number of bins,
                         zero-filled at the edges (code -127): the network must read the pulse relative to
                         the motion peaks wherever they sit. A shift does NOT move harmonics correctly
                         (2 f + d is not 2 (f + d)), and +-15 bins never reach fundamentals far from the
                         training truth (~60-190 BPM).
  stretch (`stretch_frac` of the windows)   every channel's spectrum is resampled on the frequency axis by
                         a factor s: new(f) = old(f / s), linear interpolation on the bin grid (linear in
                         power, since the codes are affine in power), bins whose source lies off the grid =
                         code -127 (zero power); the truth becomes y * s. Harmonics scale with the
                         fundamental, as they do in a real faster or slower pulse / cadence. s is drawn so
                         that the stretched truth is log-uniform over `stretch_bpm` (40-210 BPM by
                         default: a flat prior, the training set's HR distribution is not learnable from
                         it), clipped to [1 / stretch_max, stretch_max] so that a window keeps most of its
                         spectrum on the grid.
  motion (`motion_frac` of the windows, after the above)   a periodic arm motion is added at a random
                         cadence away from the truth: a peak (and its second harmonic) in the accelerometer
                         axes and, scaled, in the PPG (each channel's power renormalised to its max, as the
                         front end does). Real recordings seldom show a strong motion peak that is NOT near the
                         pulse at low or very high heart rates, so a network trained on them alone can learn
                         to follow the cadence; these windows show it the motion without the pulse moving.
                         They learn the labels only (the teacher never saw the added motion).
                         The motion's PPG amplitude is `motion_ppg_amp` / `motion_ppg_dist` (default 0.3-1.5 of
                         the PPG's max, uniform: the pulse stays >= ~2/3 of the motion peak; the synthetic
                         fixed-HR benchmark has it down to 0.13, and (0.3, 10) log-uniform teaches that regime).
Edge fill (`edge_fill`): bins a shift or stretch moves off the grid are empty (code -127, default) or each
channel's median code in its window ("floor"). With "empty" every stretched low-HR window has an exactly empty
upper band, which no real window has (benchmarks/results/hr_synthetic_pulse_diagnosis.md: what "floor" did on
the synthetic benchmark).
Distillation with stretch: the teacher's logits are stretched with the same s (new(f) = old(f / s), off-grid
bins = the row's lowest logit), so the gate and the KL read the same windows. This assumes the teacher is
equivariant to a frequency scaling (what the stretch teaches the student); its doubt between the pulse and a motion peak is
carried to the stretched peaks, which is what the student should learn.
"""
from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sqtool.core import SqtoolError, atomic_save_npz
from sqtool.core.checkpoint import datasets_of
from sqtool.core.trainlog import HeldOut
from sqtool.models.hr_options import LR_SCHEDULES

EMPTY = -1.0            # the float value of code -127: an empty bin


@dataclass
class BinTrainCfg:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "constant"   # "constant" | "cosine": lr annealed per step to 0 by the last epoch
    target_sigma_bpm: float = 3.0
    shift_bins: int = 15
    stretch_frac: float = 0.0       # fraction of windows frequency-stretched (the rest shifted); 0 = shift only
    stretch_bpm: tuple[float, float] = (40.0, 210.0)   # stretched truth log-uniform over this range
    stretch_max: float = 2.0        # s clipped to [1 / stretch_max, stretch_max]
    edge_fill: str = "empty"        # bins a shift or stretch moves off the grid: "empty" (code -127) | "floor"
                                    # (each channel's median code in that window: its noise floor)
    motion_frac: float = 0.0        # fraction of windows with an added arm-motion peak away from the truth
    motion_bpm: tuple[float, float] = (40.0, 210.0)    # its cadence, log-uniform over this range
    motion_min_gap_bpm: float = 10.0                   # ... at least this far from the truth
    motion_ppg_amp: tuple[float, float] = (0.3, 1.5)   # its PPG peak / the PPG's max power, drawn from ...
    motion_ppg_dist: str = "uniform"                   # ... "uniform" or "log" (log-uniform) over that range
    motion_axis_drop: float = 0.0   # each accelerometer axis but the strongest shows no motion with this probability
    motion_on_truth: float = 0.0    # share of motion windows whose cadence IS the heart rate (running at the step rate)
    kd_weight: float = 0.0          # 0 = labels only
    kd_temp: float = 2.0
    kd_gate_bpm: float = 0.0        # > 0: KL only where the teacher's argmax is within this of the truth
    seed: int = 0


def gaussian_targets(y: np.ndarray, bins: np.ndarray, sigma: float) -> np.ndarray:
    """(N,) BPM -> (N, F) probabilities, a Gaussian of `sigma` BPM on the bin grid."""
    d = (bins[None, :] - np.asarray(y, np.float64)[:, None]) / sigma        # (N, F)
    p = np.exp(-0.5 * d * d)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def shift_batch(x: torch.Tensor, t: torch.Tensor, s: torch.Tensor, extra: torch.Tensor | None = None,
                fill: str = "empty"):
    """Shift x (B, C, F), target t (B, F) (and teacher logits) by s (B,) bins, filling with empty bins
    (fill "empty") or each channel's median code in its window (fill "floor", see `edge_fill_values`)."""
    B, C, Fb = x.shape
    idx = torch.arange(Fb)[None, :] - s[:, None]                           # (B, F) source bin
    ok = (idx >= 0) & (idx < Fb)
    idc = idx.clamp(0, Fb - 1)
    fv = edge_fill_values(x, fill)[:, :, None]                                     # (B, C, 1)
    xs = torch.where(ok[:, None, :], torch.gather(x, 2, idc[:, None, :].expand(B, C, Fb)), fv)
    ts = torch.where(ok, torch.gather(t, 1, idc), 0.0)
    ts = ts / ts.sum(dim=1, keepdim=True).clamp_min(1e-12)
    es = None
    if extra is not None:                                                   # teacher logits: empty = very low
        es = torch.where(ok, torch.gather(extra, 1, idc), extra.min(dim=1, keepdim=True).values)
    return xs, ts, es


def edge_fill_values(x: torch.Tensor, fill: str) -> torch.Tensor:
    """x (B, C, F) -> (B, C) the code given to bins an augmentation moves off the grid. "empty": -1 (zero
    power); "floor": the channel's median code in that window, its noise floor. With "empty" a stretched
    low-HR window has an exactly empty upper band (and a high-HR one an empty lower band), which no real
    window has: the network can read the heart rate from where the spectrum is empty instead of from the
    pulse."""
    if fill == "empty":
        return torch.full(x.shape[:2], EMPTY, dtype=x.dtype)
    if fill == "floor":
        return x.median(dim=2).values
    raise ValueError(f"edge fill must be 'empty' or 'floor', got {fill!r}")


def stretch_factors(y: torch.Tensor, cfg: BinTrainCfg, g: torch.Generator) -> torch.Tensor:
    """(B,) BPM -> (B,) stretch factors s: y * s log-uniform over cfg.stretch_bpm, s within the clip."""
    lo, hi = (math.log(v) for v in cfg.stretch_bpm)
    u = torch.exp(lo + (hi - lo) * torch.rand(len(y), generator=g, dtype=torch.float64))   # (B,) target BPM
    s = (u / y.double()).clamp(1.0 / cfg.stretch_max, cfg.stretch_max)
    return s


def stretch_spectra(x: torch.Tensor, s: torch.Tensor, bins: np.ndarray, fill: torch.Tensor | float = EMPTY):
    """new(f) = old(f / s) on the bin grid: x (B, C, F) or (B, F), s (B,); off-grid bins = `fill`
    (a scalar, (B,) per row or, for (B, C, F), (B, C) per channel). Linear interpolation between the two
    neighbouring bins; s = 1 is exact."""
    squeeze = x.dim() == 2
    if squeeze:
        x = x[:, None, :]
    B, C, Fb = x.shape
    lo, step = float(bins[0]), float(bins[1] - bins[0])
    b = torch.as_tensor(np.asarray(bins, np.float64))                       # (F,)
    src = (b[None, :] / s.double()[:, None] - lo) / step                    # (B, F) fractional source bin
    ok = (src > -1e-9) & (src < Fb - 1 + 1e-9)
    src = src.clamp(0, Fb - 1)
    i0 = src.floor().long().clamp(0, Fb - 1)
    i1 = (i0 + 1).clamp(max=Fb - 1)
    w = (src - i0.double()).to(x.dtype)[:, None, :]                         # (B, 1, F)
    x0 = torch.gather(x, 2, i0[:, None, :].expand(B, C, Fb))
    x1 = torch.gather(x, 2, i1[:, None, :].expand(B, C, Fb))
    xs = x0 + w * (x1 - x0)                                                 # exactly x0 where w == 0
    fill = torch.as_tensor(fill, dtype=x.dtype)
    fill = fill.reshape(-1, 1, 1) if fill.dim() == 1 else fill[:, :, None] if fill.dim() == 2 else fill
    xs = torch.where(ok[:, None, :], xs, fill)
    return xs[:, 0] if squeeze else xs


def stretch_batch(x: torch.Tensor, y: torch.Tensor, s: torch.Tensor, bins: np.ndarray, sigma: float,
                  extra: torch.Tensor | None = None, fill: str = "empty"):
    """Stretch x (B, C, F) by s (B,); target = Gaussian around y * s; teacher logits stretched alike.
    fill: the off-grid bins' code, "empty" (-1) or "floor" (each channel's median in its window, so that a
    stretched window's edges look like a real spectrum's noise floor, not like an empty band)."""
    xs = stretch_spectra(x, s, bins, edge_fill_values(x, fill))
    ts = torch.as_tensor(gaussian_targets((y.double() * s).numpy(), bins, sigma))
    es = stretch_spectra(extra, s, bins, extra.min(dim=1).values) if extra is not None else None
    return xs, ts, es


def inject_motion(x: torch.Tensor, y: torch.Tensor, bins: np.ndarray, cfg: BinTrainCfg, g: torch.Generator):
    """Add arm motion to x (B, C, F) (channel 0 = PPG, the rest accelerometer axes), truth y (B,) BPM.

    Per window: cadence c log-uniform over cfg.motion_bpm, redrawn while within cfg.motion_min_gap_bpm of
    the truth (windows still too close after 8 draws are left alone); a Gaussian peak of 1-2 bins' width at c
    and a second harmonic (0-0.6 x) at 2c; amplitude relative to each channel's max power: cfg.motion_ppg_amp
    in the PPG (0.3-1.5 uniform by default: the pulse stays >= ~2/3 of the motion peak; log-uniform 0.3-10 also
    shows windows where the motion peak is up to 10x the pulse, as in running), 0-3 per accelerometer axis
    (the strongest axis >= 1; with cfg.motion_axis_drop each other axis gets none with that probability: a
    swing along the watch face leaves the axis across it still). Each channel's power is then renormalised to
    its max (codes = 2 P / Pmax - 1, as in the front end). With cfg.motion_on_truth a share of the windows gets
    its motion AT the truth instead (a runner whose heart beats at the step rate: the accelerometer's peak on
    the pulse must not make the network look elsewhere; no draw is made when it is 0). Returns the new x and
    the (B,) bool mask of the windows that got motion."""
    B, C, Fb = x.shape
    b = torch.as_tensor(np.asarray(bins, np.float64))
    lo, hi = (math.log(v) for v in cfg.motion_bpm)
    cad = torch.exp(lo + (hi - lo) * torch.rand(B, generator=g, dtype=torch.float64))        # (B,) BPM
    for _ in range(8):
        near = (cad - y.double()).abs() < cfg.motion_min_gap_bpm
        if not near.any():
            break
        cad = torch.where(near, torch.exp(lo + (hi - lo) * torch.rand(B, generator=g, dtype=torch.float64)), cad)
    ok = (cad - y.double()).abs() >= cfg.motion_min_gap_bpm                                 # (B,)
    if cfg.motion_on_truth > 0:     # the heart at the step rate: the motion peak ON the pulse, the truth unchanged
        on = torch.rand(B, generator=g, dtype=torch.float64) < cfg.motion_on_truth
        cad, ok = torch.where(on, y.double(), cad), ok | on
    width = float(bins[1] - bins[0]) * (1 + torch.rand(B, 1, generator=g, dtype=torch.float64))  # (B, 1) BPM
    harm = 0.6 * torch.rand(B, 1, generator=g, dtype=torch.float64)
    peak = torch.exp(-0.5 * ((b[None, :] - cad[:, None]) / width) ** 2) \
        + harm * torch.exp(-0.5 * ((b[None, :] - 2 * cad[:, None]) / width) ** 2)         # (B, F)
    amp = torch.empty(B, C, dtype=torch.float64)
    a0, a1 = cfg.motion_ppg_amp
    u = torch.rand(B, generator=g, dtype=torch.float64)
    if cfg.motion_ppg_dist == "uniform":
        amp[:, 0] = a0 + (a1 - a0) * u
    elif cfg.motion_ppg_dist == "log":
        amp[:, 0] = torch.exp(math.log(a0) + (math.log(a1) - math.log(a0)) * u)
    else:
        raise ValueError(f"motion_ppg_dist must be 'uniform' or 'log', got {cfg.motion_ppg_dist!r}")
    if C > 1:
        a = 3.0 * torch.rand(B, C - 1, generator=g, dtype=torch.float64)
        if cfg.motion_axis_drop > 0:                                  # the swing seen by only some of the axes
            drop = torch.rand(B, C - 1, generator=g, dtype=torch.float64) < cfg.motion_axis_drop
            drop[torch.arange(B), a.argmax(dim=1)] = False
            a = torch.where(drop, torch.zeros_like(a), a)
        amp[:, 1:] = a / a.max(dim=1, keepdim=True).values.clamp(1e-9, 1.0)  # strongest axis >= 1
    p = (x.double() + 1) / 2                                                                # (B, C, F) power / max
    p = p + amp[:, :, None] * peak[:, None, :]
    p = p / p.max(dim=2, keepdim=True).values.clamp_min(1e-12)
    xm = (2 * p - 1).to(x.dtype)
    return torch.where(ok[:, None, None], xm, x), ok


def train_bins(model, x: np.ndarray, y: np.ndarray, bins: np.ndarray, cfg: BinTrainCfg,
               teacher_logits: np.ndarray | None = None, log=None):
    """Train `model` in place on windows with finite truth; returns the per-epoch mean loss. x is (N, C, F)
    spectra on the bin grid, or any other input (time-domain windows) when cfg has no bin shift, stretch or
    motion peak (those are operations on the bins). Adam at cfg.lr, constant or (cfg.lr_schedule "cosine")
    annealed per optimiser step to 0 at the last step, so the weights that ship are not one noisy iterate.
    log: called after each epoch as log(epoch, its mean loss, the lr at its end) (a training log's row)."""
    if np.shape(x)[-1] != len(bins) and (cfg.shift_bins or cfg.stretch_frac or cfg.motion_frac):
        raise SqtoolError(f"train_bins: bin shift, stretch and motion augmentation need spectra on the {len(bins)} "
                          f"bins, got inputs of length {np.shape(x)[-1]}")
    ok = np.isfinite(y)
    xt = torch.as_tensor(np.asarray(x, np.float32)[ok])                     # (N, C, F)
    tt = torch.as_tensor(gaussian_targets(y[ok], bins, cfg.target_sigma_bpm))  # (N, F)
    yt = torch.as_tensor(np.asarray(y, np.float64)[ok])                     # (N,) BPM
    kt = torch.as_tensor(np.asarray(teacher_logits, np.float32)[ok]) if teacher_logits is not None else None
    kg = torch.ones(len(xt))                                                # (N,) 1 = this window distils
    if kt is not None and cfg.kd_gate_bpm > 0:
        kg = kd_gate(kt.numpy(), y[ok], bins, cfg.kd_gate_bpm)
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise SqtoolError(f"train_bins: lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got '{cfg.lr_schedule}'")
    n = len(xt)
    starts = [i for i in range(0, n, cfg.batch_size) if min(cfg.batch_size, n - i) >= 2]   # batches of >= 2
    steps = cfg.epochs * len(starts)
    sched = (torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
             if cfg.lr_schedule == "cosine" and steps > 0 else None)
    losses = []
    model.train()
    for ep in range(cfg.epochs):
        perm = torch.randperm(n, generator=g)
        tot = 0.0
        for i in starts:
            b = perm[i:i + cfg.batch_size]
            s = torch.randint(-cfg.shift_bins, cfg.shift_bins + 1, (len(b),), generator=g) if cfg.shift_bins \
                else torch.zeros(len(b), dtype=torch.long)
            st = torch.zeros(len(b), dtype=torch.bool)
            if cfg.stretch_frac > 0:                                        # these windows are stretched, not shifted
                st = torch.rand(len(b), generator=g) < cfg.stretch_frac
                s = torch.where(st, torch.zeros_like(s), s)
            xb, tb, kb = (shift_batch(xt[b], tt[b], s, kt[b] if kt is not None else None, cfg.edge_fill)
                          if cfg.shift_bins else (xt[b], tt[b], kt[b] if kt is not None else None))
            if st.any():
                fac = stretch_factors(yt[b][st], cfg, g)
                xs_, ts_, ks_ = stretch_batch(xb[st], yt[b][st], fac, bins, cfg.target_sigma_bpm,
                                              kb[st] if kb is not None else None, cfg.edge_fill)
                xb, tb = xb.clone(), tb.clone()
                xb[st], tb[st] = xs_, ts_
                if kb is not None:
                    kb = kb.clone()
                    kb[st] = ks_
            moved = torch.zeros(len(b), dtype=torch.bool)
            if cfg.motion_frac > 0:
                pick = torch.rand(len(b), generator=g) < cfg.motion_frac
                if pick.any():
                    ytrue = torch.as_tensor(bins, dtype=torch.float64)[tb[pick].argmax(dim=1)]   # after shift/stretch
                    xm, ok_m = inject_motion(xb[pick], ytrue, bins, cfg, g)
                    xb = xb.clone()
                    xb[pick] = xm
                    moved[pick] = ok_m
            logits = model(xb)                                              # (B, F)
            ce = -(tb * F.log_softmax(logits, dim=1)).sum(dim=1)            # (B,)
            loss = ce.mean()
            if kb is not None and cfg.kd_weight > 0:
                T = cfg.kd_temp
                pt = F.softmax(kb / T, dim=1)
                kl = (pt * (torch.log(pt.clamp_min(1e-30)) - F.log_softmax(logits / T, dim=1))).sum(dim=1) * T * T
                w = cfg.kd_weight * kg[b] * (~moved)                        # (B,) 0: teacher wrong / motion added
                loss = ((1 - w) * ce + w * kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            tot += loss.item() * len(b)
        losses.append(tot / max(n, 1))
        if log:
            log(ep, losses[-1], opt.param_groups[0]["lr"])
    model.eval()
    return losses


def kd_gate(teacher_logits: np.ndarray, y: np.ndarray, bins: np.ndarray, gate_bpm: float) -> torch.Tensor:
    """(N, F) teacher logits, (N,) truth -> (N,) float 1 where the teacher's argmax is within gate_bpm."""
    top = np.asarray(bins, np.float64)[np.asarray(teacher_logits).argmax(axis=1)]   # (N,) BPM
    return torch.as_tensor((np.abs(top - y) <= gate_bpm).astype(np.float32))


@torch.no_grad()
def predict_logits(model, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """(N, C, F) -> (N, F) float32 logits; N = 0 (a recording shorter than one window): (0, F)."""
    model.eval()
    out = [model(torch.as_tensor(np.asarray(x[i:i + batch], np.float32))).float().numpy()
           for i in range(0, max(len(x), 1), batch)]                  # an empty batch still says its F
    return np.concatenate(out)


HELD_OUT_METRIC = "argmax_mae_bpm"      # log.csv's held-out figure of a bins model: per window, before decoding


def held_out_bins(x: np.ndarray, y: np.ndarray, bins: np.ndarray, sigma_bpm: float) -> HeldOut | None:
    """A fold's held-out windows x (N, C, F) with truth y (N,) BPM as log.csv scores them after each epoch
    (`core.trainlog.HeldOut`): val_loss the Gaussian-target cross-entropy train_bins trains with (no augmentation,
    no teacher), val_metric the MAE of the per-window argmax (cheap; the decoder is chosen after the folds, on their
    out-of-fold logits), over the windows with truth; None without any."""
    ok = np.isfinite(y)
    if not ok.any():
        return None
    x, y = np.asarray(x, np.float32)[ok], np.asarray(y, np.float64)[ok]
    target = torch.as_tensor(gaussian_targets(y, bins, sigma_bpm))        # (N, F)

    def score(model):
        logits = torch.as_tensor(predict_logits(model, x))                  # (N, F)
        ce = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        return float(ce), float(np.mean(np.abs(bins[logits.argmax(dim=1).numpy()] - y)))
    return HeldOut(score, HELD_OUT_METRIC)


def _fold_file(store, i: int, key: str, held: list[int]) -> tuple:
    """(path, the saved logits {recording index: (W, F)} when that fold's file carries `key` and those
    recordings, else None)."""
    if store is None:
        return None, None
    path = Path(store) / f"fold_{i}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                if str(z["key"]) == key and sorted(int(j) for j in z["held"]) == sorted(held):
                    return path, {j: z[f"logits_{j}"] for j in held}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            pass                                   # a torn or foreign file: the fold is trained again
    return path, None


def out_of_fold_logits(xs: list[np.ndarray], ys: list[np.ndarray], keys: list[str], folds: list[set],
                       make_model, bins: np.ndarray, cfg: BinTrainCfg,
                       teacher_logits: list[np.ndarray] | None = None,
                       only: set[str] | None = None, store=None, key: str = "", log=None,
                       fit_log=None) -> list[np.ndarray | None]:
    """Out-of-fold logits (W, F) per recording: for each fold (a set of subject keys) a fresh `make_model()`
    (torch seeded with cfg.seed first) trained with `train_bins` on the recordings whose key is NOT in the
    fold (KD from their `teacher_logits` when given), then run on the recordings whose key is. Every key must
    be in exactly one fold. This is how a decoder gets chosen on the logits of the model it will decode
    (`select_decoder`) without that model ever having seen the subjects it is scored on. `only`: train just
    the folds holding one of these keys (the others' recordings get None). `store` (a folder) with `key` (what
    shapes the students: config, data, teacher): each finished fold's logits are saved there atomically
    (`fold_<i>.npz`) and a fold whose file carries the same key is read back, not trained (a resumed run).
    `fit_log(i, model, held_out)`, when given, is called as fold i's student `model` starts to train, with its held-out
    recordings' `held_out_bins` (log.csv's figures after each epoch), and gives its train_bins `log`."""
    keys = list(keys)
    owner = [[i for i, f in enumerate(folds) if k in f] for k in keys]
    if any(len(o) != 1 for o in owner):
        bad = sorted({k for k, o in zip(keys, owner) if len(o) != 1})
        raise SqtoolError(f"out_of_fold_logits: subjects {', '.join(bad)} are not in exactly one fold")
    out: list = [None] * len(keys)
    for i in range(len(folds)):
        tr = [j for j, o in enumerate(owner) if o[0] != i]
        te = [j for j, o in enumerate(owner) if o[0] == i]
        if not te or (only is not None and not folds[i] & set(only)):
            continue
        fkey = f"{key}:fold={','.join(sorted(folds[i]))}"
        path, saved = _fold_file(store, i, fkey, te)
        if saved is not None:
            for j in te:
                out[j] = saved[j]
            if log:
                log(f"fold {i + 1}/{len(folds)}: reused from {path}")
            continue
        torch.manual_seed(cfg.seed)
        m = make_model()
        train_bins(m, np.concatenate([xs[j] for j in tr]), np.concatenate([ys[j] for j in tr]), bins, cfg,
                   np.concatenate([teacher_logits[j] for j in tr]) if teacher_logits is not None else None,
                   fit_log(i, m, held_out_bins(np.concatenate([xs[j] for j in te]), np.concatenate([ys[j] for j in te]),
                                               bins, cfg.target_sigma_bpm)) if fit_log else None)
        for j in te:
            out[j] = predict_logits(m, xs[j])
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_save_npz(path, key=np.asarray(fkey), held=np.asarray(te),
                            **{f"logits_{j}": np.asarray(out[j]) for j in te})
    return out


MAX_CALIBRATION_STUDENTS = 8


def calibration_folds(keys, cal) -> list[set] | None:
    """The folds of the calibration students (`select_decoder(calibration_logits=)`): one per calibration subject,
    each left out by a student trained on every other training subject, at most MAX_CALIBRATION_STUDENTS of them
    (more subjects are dealt round-robin into that many groups: leaving out 3 of 24 is nearly leaving out one),
    then the other training subjects as one fold (never trained: `out_of_fold_logits(only=cal)`). None when the
    calibration subjects are not a strict subset of `keys` (every subject calibrates: the inner folds serve)."""
    keys, cal = set(keys), set(cal or ())
    if not cal or not cal < keys:
        return None
    ordered = sorted(cal)
    k = min(len(ordered), MAX_CALIBRATION_STUDENTS)
    return [set(ordered[i::k]) for i in range(k)] + [keys - cal]


# ----------------------------------------------------------------------------- decoding

from sqtool.models.decoder import MAX_EVIDENCE_WEIGHT, decode_float, decode_int, decoder_only  # noqa: E402  (re-exported)

def fit_decoder(truth_sequences: list[np.ndarray], bins_bpm, hop_s: float, logit_scale: float = 1.0) -> dict:
    """The HMM's transition prior from TRAINING truth only: sigma per hop and the jump floor."""
    from sqtool.models.decoder import DecoderCfg, estimate_floor, estimate_transition
    sigma = estimate_transition(truth_sequences, hop_s)
    base = DecoderCfg(bins_bpm=tuple(bins_bpm), sigma_bpm=sigma, logit_scale=logit_scale)
    floor = estimate_floor(truth_sequences, sigma, base)
    return DecoderCfg(bins_bpm=tuple(bins_bpm), sigma_bpm=float(sigma), floor=float(floor),
                      logit_scale=float(logit_scale)).to_dict()


def evidence_args(mode: str, spectra: list[np.ndarray]) -> dict:
    """`--evidence` (inner | off | a weight in (0, MAX_EVIDENCE_WEIGHT]) -> the keyword arguments of `select_decoder`: inner = the
    weight of the motion-subtracted PPG spectrum chosen among its defaults (0 included), off = none, a number =
    that weight, fixed. A bad value is one clear line."""
    if mode == "off":
        return {"spectra": None}
    if mode == "inner":
        return {"spectra": spectra}
    try:
        w = float(mode)
    except (TypeError, ValueError):
        w = float("nan")
    if not 0 < w <= MAX_EVIDENCE_WEIGHT:
        raise SqtoolError(f"--evidence must be inner, off or a weight in (0, {MAX_EVIDENCE_WEIGHT:g}], got '{mode}'")
    return {"spectra": spectra, "evidence_weights": (w,), "evidence_required": True}


SELECTION_RULES = ("min", "one_se")     # select_decoder: the lowest | the simplest within one standard error


MIN_SPREAD_SUBJECTS = 3      # calibration subjects the spread interval's per-subject fit needs (select_decoder)


def select_decoder(logits: list[np.ndarray], truth: list[np.ndarray], groups: list[str], base: dict,
                   sigmas=(2.0, 3.0, 4.0, 6.0), floors=(1e-4, 1e-3, 1e-2), temperatures=(1.0, 2.0, 3.0),
                   emission_floors=(0.0,),
                   coverage: float = 0.9, conf_halfwidths=(2.0, 3.0, 5.0, 8.0, 12.0), keep: float = 0.8,
                   slack_bpm: float = 0.5, conf_measures=("mass", "width"),
                   spectra: list[np.ndarray] | None = None, evidence_weights=(0.25, 0.5, 1.0),
                   evidence_required: bool = False, calibrate: bool = True, rule: str = "min",
                   calibrate_groups: set[str] | None = None,
                   calibration_logits: list[np.ndarray | None] | None = None,
                   interval_modes=("posterior", "spread"), valid: list[np.ndarray] | None = None,
                   ids: list[str] | None = None, decoded: dict | None = None) -> dict:
    """Choose the decoder on OUT-OF-FOLD logits of the training subjects (inner cross-validation):

    1. transition sigma, jump floor, logit temperature and emission floor (each bin's likelihood at least that
       share of the window's peak: what one misread window can cost, `decoder.DecoderCfg.emission_floor`; only
       0 by default: among (0, 0.003, 0.03) the inner windows chose a floor on 11 of 12 SP Cup folds and 2 of 5
       wrist_exercise folds, and the held-out subjects decoded no better, README) by the mean of subjects'
       decoded MAE (`base`, from `fit_decoder`, the truth's own sigma, is one of the candidates). `rule` "min"
       (the default): the lowest mean; "one_se": the most parsimonious candidate that is not worse than the
       lowest by more than one standard error of the paired per-subject differences (Breiman's
       one-standard-error rule, paired), where parsimonious = the least departure from the HMM fitted on the
       truth: temperature 1 first, then no emission floor, then sigma and floor closest (in log) to `base`'s.
       Why it exists: a temperature of 3 and a transition 5x wider than the truth's, chosen because a few
       locked subjects decode 0.1 BPM better, flatten every posterior, and a pulse peak that the network finds
       in most windows can then lose to a broad plateau of the motion's mass (the synthetic benchmark's
       90-BPM recording). Why it is not the default: on SP Cup it moves 5 of 12 folds from
       sigma 4 to 3 BPM and the held-out subjects decode worse (1.53 vs 1.45 BPM, README). Then, given the
       recordings' int8 front-end `spectra` (W, F, C), the weight of the motion-subtracted PPG spectrum in the emission
       (decoder `evidence_weight`, 0 = the network alone, kept unless a weight among `evidence_weights` with
       any of the temperatures decodes better; `evidence_required`: the best of `evidence_weights` even if 0
       decodes better, e.g. one fixed weight);
    2. with those, the interval's nominal mass: the `coverage`-quantile of the per-window mass needed to
       reach the truth (+-slack_bpm, the benchmark's rule; `decoder.needed_mass`), so that the inner windows'
       coverage is `coverage` (a model whose posteriors are too wide gets a mass below 0.9, one that is
       over-confident a mass above); clipped to [0.05, 0.9999]; then the interval the device reports
       (`interval_modes`): that posterior interval, or the spread interval hr -+ (c + k S) (`decoder.
       fit_spread_interval`: S the recent |network's own argmax - hr|, c, k and S's weight chosen so that the
       inner windows' coverage is `coverage` pooled and as close to it as it gets for each inner subject),
       whichever has the smaller mean over the inner subjects of |a subject's coverage - coverage| (the spread
       interval only with MIN_SPREAD_SUBJECTS calibration subjects or more: with 2, both sit at 90 % on their inner
       windows and the choice is noise; the real-data demo's, calibrated on wrist_exercise s2-s3, took a 60-BPM-wide
       spread interval that held its held-out wearers' truth on 69.9 % of windows, the posterior one 74.9 %). Why: the
       posterior of a wearer whose pulse the network misreads for minutes is as narrow as a right one, so the
       posterior interval held the truth on 90 % of SP Cup's windows pooled but on 63-99 % of a wearer's (5 of
       12 inside 85-95 %; benchmarks/results/hr_interval_study_spcup.md);
    3. the confidence read-out: the posterior mass within +-h of the argmax for h among `conf_halfwidths` (BPM),
       or (`conf_measures` ("mass", "width"), the default) the calibrated interval's width (conf = 1 - width /
       grid extent): the one whose ranking of the inner windows best separates errors, i.e. the largest MAE
       reduction when keeping the `keep` most confident (ties: the mass). The device computes exactly the
       chosen measure (decoder `conf_measure`, `conf_halfwidth_bpm`);
    4. (`calibrate`, the default) the measure's calibration to 1 - expected |error| / grid extent on the same
       windows (`decoder.fit_conf_calibration`: at most 16 knots, isotonic plus a small ramp that keeps the
       measure's order): the confidence then means the same thing whichever measure and halfwidth a model
       chose, so windows of different models (a user's firmware updates, the folds of a benchmark) rank on one
       scale. Without it, SP Cup's 12 folds mixing the mass
       within +-3, 8 and 12 BPM gated -24 % pooled while each fold's own measure gated ~-33 %.
    Steps 2-4 read the windows of the subjects in `calibrate_groups` only (None: every subject): a model trained
    on SP Cup plus a team's own wrist device is calibrated on that device's subjects, whose errors the shipped
    interval and confidence must describe (SP Cup's easier windows would make the interval too narrow there).
    `calibration_logits` (one per recording, None where not calibrated on): steps 2-4 read these logits instead,
    e.g. of students that each left out only one calibration subject and so err as the shipped model does
    (inner-fold students that never saw several of the device's subjects err more, and the interval comes out
    too wide).
    `valid` (one (W,) bool per recording; None: every window): the windows the device scores (front-end flagged
    < 0.5). Every candidate is decoded as the device decodes, holding its belief and S over the others, and only
    scored windows with truth count in steps 1-4 (a recording with dropouts is fitted on the stream it runs on).
    `decoded` (a dict kept by the caller, with `ids`: one name per recording, the same logits under one name in
    every call) holds step 1's decoded HR of each recording under each candidate of the fixed grid (`sigmas` x
    `floors` x `temperatures` x `emission_floors`, no evidence), which every call on those recordings shares: the
    out-of-fold figures of a subject-fold fine-tune choose one decoder per fold on the other folds' recordings
    (`train.finetune_hr.fold_decoders`), and decoded each recording under the same candidates once per fold (a
    leave-one-subject-out run: subjects squared). The candidates built on `base`'s own sigma or floor differ from
    call to call and are decoded each time.
    Returns the decoder dict with "temperature", evidence_weight, interval, interval_mode (and the spread_*
    keys when "spread") and conf_halfwidth_bpm set, and the bookkeeping inner_mae, inner_mae_no_evidence (step
    1's), inner_coverage (of the chosen interval, pooled), inner_coverage_subjects (per inner subject, in the
    order of their sorted keys, unnamed: the decoder dict ships in an export's metadata),
    inner_interval_dev (each mode's mean |a subject's coverage - coverage|), inner_coverage_nominal (at 0.9,
    before calibration), inner_gating (MAE reduction of the device's conf:
    the chosen measure, calibrated), inner_gating_mass and inner_gating_width (raw measures)."""
    from sqtool.models.decoder import (INTERVAL_MODES, SPREAD_KEYS, conf_mass, decoder_cfg, fit_conf_calibration,
                                       fit_spread_interval, needed_mass, uncalibrated)
    if evidence_required and spectra is None:
        raise SqtoolError("select_decoder: a required evidence weight needs the recordings' spectra")
    if not interval_modes or not set(interval_modes) <= set(INTERVAL_MODES):
        raise SqtoolError(f"select_decoder: interval_modes must be some of {', '.join(INTERVAL_MODES)}, "
                          f"got {interval_modes}")
    base = {k: v for k, v in uncalibrated(base).items() if k not in SPREAD_KEYS}   # knots and the interval: refitted
    sp = spectra if spectra is not None else [None] * len(logits)
    if valid is None:
        valid = [np.ones(len(lg), bool) for lg in logits]
    if len(valid) != len(logits) or any(len(v) != len(lg) for v, lg in zip(valid, logits)):
        raise SqtoolError("select_decoder: valid needs one (W,) mask per recording, as long as its logits")
    valid = [np.asarray(v, bool) for v in valid]
    truth = [np.where(v, np.asarray(y, np.float64), np.nan) for v, y in zip(valid, truth)]   # scored windows only

    if rule not in SELECTION_RULES:
        raise SqtoolError(f"select_decoder: rule must be one of {', '.join(SELECTION_RULES)}, got {rule!r}")
    cal = [calibrate_groups is None or g in calibrate_groups for g in groups]     # per recording: steps 2-4 read it
    if not any(cal):
        raise SqtoolError(f"select_decoder: no training subject among the calibration subjects "
                          f"{sorted(calibrate_groups)}")

    scored: dict[str, np.ndarray] = {}         # decoder -> (S,) MAE per subject; each candidate decoded once
    if decoded is not None and (ids is None or len(ids) != len(logits)):
        raise SqtoolError("select_decoder: decoded needs ids, one name per recording")

    def subject_maes(dec: dict) -> np.ndarray:
        key = repr(sorted((k, v) for k, v in dec.items() if not k.startswith("inner_")))
        if key not in scored:
            shared = (decoded is not None and dec["sigma_bpm"] in sigmas and dec["floor"] in floors
                      and not dec.get("evidence_weight"))               # a grid candidate: the same in every call
            per = {}
            for i, (lg, y, g, x, v) in enumerate(zip(logits, truth, groups, sp, valid)):
                ok = np.isfinite(y)
                if ok.any():                   # no window with truth (shorter than one window): no error to count
                    hr = decoded.get((ids[i], key)) if shared else None
                    if hr is None:
                        hr = decode_float(lg, dec, v, spec=x)["hr"]
                        if shared:
                            decoded[(ids[i], key)] = hr
                    per.setdefault(g, []).append(np.abs(hr[ok] - y[ok]))
            scored[key] = np.array([np.concatenate(per[g]).mean() for g in sorted(per)])
        return scored[key]

    def choose(cands: list[dict], simplicity) -> dict:
        """The lowest mean of subjects' MAE (first on ties), or under "one_se" the simplest candidate within one
        paired standard error of it; "inner_mae" = the chosen one's, "inner_mae_min" = the lowest."""
        per = np.stack([subject_maes(dec) for dec in cands])                 # (K, S)
        means = per.mean(axis=1)
        i_min = pick = int(np.argmin(means))
        if rule == "one_se" and per.shape[1] > 1:
            d = per - per[i_min]                                              # paired differences to the lowest
            within = np.flatnonzero(d.mean(axis=1) <= d.std(axis=1, ddof=1) / math.sqrt(per.shape[1]))
            pick = int(min(within, key=lambda i: (simplicity(cands[i]), i)))
        return {**cands[pick], "inner_mae": float(means[pick]), "inner_mae_min": float(means[i_min]),
                "inner_rule": rule}

    s0, f0 = float(base["sigma_bpm"]), max(float(base["floor"]), 1e-12)       # the truth's HMM (floor may be 0)
    best = choose([{**base, "sigma_bpm": sg, "floor": fl, "temperature": float(T), "emission_floor": float(k),
                    "evidence_weight": 0.0}
                   for sg in sorted({s0, *sigmas}) for fl in sorted({float(base["floor"]), *floors})
                   for T in temperatures for k in emission_floors],
                  lambda d: (d["temperature"], d["emission_floor"], abs(math.log(d["sigma_bpm"] / s0)),
                             abs(math.log(max(d["floor"], 1e-12) / f0))))
    best = {**best, "inner_mae_no_evidence": best["inner_mae"]}
    if spectra is not None:
        with_ev = [{**best, "evidence_weight": float(mu), "temperature": float(T)}
                   for mu in evidence_weights for T in temperatures]
        best = {**choose(with_ev if evidence_required else [best, *with_ev],
                         lambda d: (d["evidence_weight"], d["temperature"])),
                "inner_mae_no_evidence": best["inner_mae"]}
    cfg = decoder_cfg(best)
    if calibration_logits is not None:
        if len(calibration_logits) != len(logits) or any(c and lg is None for lg, c in zip(calibration_logits, cal)):
            raise SqtoolError("select_decoder: calibration_logits needs one array per calibration recording")
        logits = [lg if c else None for lg, c in zip(calibration_logits, cal)]
    logits, truth, sp, grp, valid = ([v for v, c in zip(seq, cal) if c] for seq in (logits, truth, sp, groups, valid))
    outs = [decode_float(lg, best, v, spec=x) for lg, x, v in zip(logits, sp, valid)]     # steps 2-4's windows
    y = np.concatenate([np.asarray(t, np.float64) for t in truth])
    ok = np.isfinite(y)
    post = np.concatenate([o["post"] for o in outs])[ok]                   # (N, F)
    err = np.abs(np.concatenate([o["hr"] for o in outs])[ok] - y[ok])
    need = needed_mass(post, y[ok], cfg, slack_bpm, hr=np.concatenate([o["hr"] for o in outs])[ok])
    mass = float(np.clip(np.quantile(need, coverage, method="inverted_cdf"), 0.05, 0.9999))
    mass = float(np.round(mass, 6))
    subj = np.concatenate([[g] * len(t) for g, t in zip(grp, truth)])[ok]
    by_subject = {g: float(np.mean(need[subj == g] <= mass)) for g in sorted(set(subj.tolist()))}
    interval = {"interval_mode": "posterior", "inner_interval_dev": {
        "posterior": float(np.mean([abs(v - coverage) for v in by_subject.values()]))}}
    few = len(by_subject) < MIN_SPREAD_SUBJECTS and "posterior" in interval_modes   # no per-subject spread to fit
    spread = (fit_spread_interval([o["hr"] for o in outs], [cfg.centres[np.argmax(lg, axis=1)] for lg in logits],
                                  truth, grp, coverage, slack_bpm, valid=valid, edges_bpm=cfg.edges_bpm)
              if "spread" in interval_modes and not few else None)
    if spread is not None:
        interval["inner_interval_dev"]["spread"] = spread["dev"]
    if spread is not None and ("posterior" not in interval_modes or spread["dev"] < interval["inner_interval_dev"]["posterior"]):
        interval.update({k: spread[k] for k in ("spread_shift", "spread_c_bpm", "spread_k")}, interval_mode="spread")
        by_subject = spread["per_subject"]
    elif "posterior" not in interval_modes:
        raise SqtoolError("select_decoder: no spread interval reaches the coverage on the inner windows")

    def gating(score):                                                    # MAE reduction keeping the top `keep`
        kept = score >= np.quantile(score, 1 - keep)
        return float(1 - err[kept].mean() / max(err.mean(), 1e-12))

    masses = {float(h): conf_mass(post, h, cfg) for h in conf_halfwidths if h >= cfg.bins_bpm[2]}
    gains = {h: gating(m) for h, m in masses.items()}
    hw = max(gains, key=gains.get)                                         # first best on ties
    widths = np.concatenate([decode_float(lg, {**best, "interval": mass, "conf_measure": "width"}, v, spec=x)["conf"]
                             for lg, x, v in zip(logits, sp, valid)])[ok]  # the device's width read-out, raw
    g_width = gating(widths)
    measure = "width" if "width" in conf_measures and ("mass" not in conf_measures or g_width > gains[hw]) else "mass"
    raw = widths if measure == "width" else masses[hw]
    calib = fit_conf_calibration(raw, err, cfg.span_bpm) if calibrate else {}
    conf = decoder_cfg({**best, **calib}).calibrate_conf(raw)
    return {**best, "interval": mass, "conf_halfwidth_bpm": hw, "conf_measure": measure, **calib, **interval,
            "inner_calibration_windows": int(ok.sum()),
            "inner_calibration_datasets": datasets_of(calibrate_groups or groups),   # where the interval holds
            "inner_coverage": (spread["coverage"] if interval["interval_mode"] == "spread"
                               else float(np.mean(need <= mass))),
            "inner_coverage_subjects": [by_subject[g] for g in sorted(by_subject)],   # no ids: it ships in metadata
            "inner_coverage_nominal": float(np.mean(need <= 0.9)),
            "inner_gating": gating(conf), "inner_gating_mass": gains[hw], "inner_gating_width": g_width}
