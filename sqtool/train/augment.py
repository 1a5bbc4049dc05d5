"""Standard SimSiam augmentations of one PPG segment: the "augmentation" arm of the pretraining ablation.

SiamQuality's pair is (good window, poor window of the same subject minutes away); the usual
self-supervised alternative is two random views of ONE window. `AugmentViews` wraps a pair source (the
same corpus the SiamQuality arm trains on) and serves, for each pair index, two independent augmented
views of its GOOD window only; the poor partner is never read. So the two arms see the same windows,
the same encoder, steps and batches, and differ only in what the second view is.

Each view (on a model-input window, (C, T), already band-passed and normalised) applies, each with
probability `p`:

    crop     a random 60-100 % stretch of the window, linearly resampled back to T samples
    scale    amplitude x (0.6 .. 1.4) about the window mean
    noise    Gaussian noise, sigma 0 .. 0.05 (of the unit range of a min-max window)
    wander   a baseline sinusoid of 0.05-0.5 Hz, amplitude 0 .. 0.3, random phase

and is normalised again with the model's normalisation, so a view lies in the input domain the encoder
sees at fine-tuning. The draw is a pure function of (seed, the batch's pair indices): `get(idx)` seeds
its generator from them, so a resumed run sees the same views at the same step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sqtool.core import SqtoolError


@dataclass
class AugmentCfg:
    p: float = 0.8                        # probability of each augmentation
    crop: tuple[float, float] = (0.6, 1.0)
    scale: tuple[float, float] = (0.6, 1.4)
    noise: tuple[float, float] = (0.0, 0.05)
    wander_hz: tuple[float, float] = (0.05, 0.5)
    wander_amp: tuple[float, float] = (0.0, 0.3)


def augment(x: np.ndarray, fs: float, rng: np.random.Generator, norm: str = "minmax",
            cfg: AugmentCfg | None = None) -> np.ndarray:
    """Random view of each window: x (B, C, T) float -> (B, C, T) float32 (see module docstring)."""
    from sqtool.data.preprocess import normalise

    cfg = cfg or AugmentCfg()
    x = np.asarray(x, np.float64)
    if x.ndim != 3:
        raise SqtoolError(f"augment: windows must be (B, C, T), got shape {x.shape}")
    B, C, T = x.shape
    out = x.copy()
    t = np.arange(T) / fs
    grid = np.linspace(0.0, 1.0, T)
    for b in range(B):
        if rng.random() < cfg.p:                                            # crop + resize
            L = max(4, int(round(T * rng.uniform(*cfg.crop))))
            s = int(rng.integers(0, T - L + 1))
            src = np.linspace(0.0, 1.0, L)
            out[b] = np.stack([np.interp(grid, src, out[b, c, s:s + L]) for c in range(C)])
        if rng.random() < cfg.p:                                            # amplitude scale
            m = out[b].mean(axis=-1, keepdims=True)
            out[b] = m + rng.uniform(*cfg.scale) * (out[b] - m)
        if rng.random() < cfg.p:                                            # Gaussian noise
            out[b] += rng.uniform(*cfg.noise) * rng.standard_normal((C, T))
        if rng.random() < cfg.p:                                            # baseline wander
            out[b] += rng.uniform(*cfg.wander_amp) * np.sin(2 * np.pi * rng.uniform(*cfg.wander_hz) * t
                                                            + rng.uniform(0, 2 * np.pi))
    return normalise(out, norm).astype(np.float32)


class AugmentViews:
    """A pair source whose pair i is (aug(good_i), aug(good_i)): two views of one window (see docstring)."""

    def __init__(self, base, fs: float, norm: str = "minmax", seed: int = 0, cfg: AugmentCfg | None = None):
        self.base, self.fs, self.norm, self.seed, self.cfg = base, float(fs), norm, int(seed), cfg or AugmentCfg()
        self.groups = getattr(base, "groups", None)
        self.desc = f"two augmented views of the good window of each of {getattr(base, 'desc', len(base))}"

    def __len__(self) -> int:
        return len(self.base)

    @property
    def input_shape(self):
        return self.base.input_shape

    def check_contract(self, model_cfg) -> None:
        if hasattr(self.base, "check_contract"):
            self.base.check_contract(model_cfg)

    def get(self, idx):
        idx = np.asarray(idx, np.int64)
        good, _ = self.base.get(idx)                                        # (B, C, T); the poor one unused
        rng = np.random.default_rng([self.seed, 7919, *idx.tolist()])
        return augment(good, self.fs, rng, self.norm, self.cfg), augment(good, self.fs, rng, self.norm, self.cfg)


def stretch_windows(x_long: np.ndarray, y: np.ndarray, n_out: int, rng: np.random.Generator, frac: float = 0.5,
                    bpm: tuple[float, float] = (40.0, 210.0), s_max: float = 2.0,
                    norm: str = "zscore") -> tuple[np.ndarray, np.ndarray]:
    """The time-domain twin of the spectral models' frequency stretch (models.hr_bins.stretch_batch), for a
    time-domain heart-rate model. Of windows x_long (W, C, L), L >= n_out samples (the window plus room:
    data.hr_spectra.record_waveforms extra_s), and their truth y (W,) BPM, a `frac` share is read at s times
    the speed, x(s t) for t in [0, n_out), so its heart rate (and every other rhythm in it) is y * s, with
    y * s log-uniform over `bpm`, s clipped to [1 / s_max, s_max] and to the room L / n_out; the others are
    cut to their first n_out samples. Every window is normalised again (`norm`). Returns float32
    (W, C, n_out) and the new truth (W,)."""
    from sqtool.data.preprocess import normalise

    x_long = np.asarray(x_long, np.float64)
    if x_long.ndim != 3 or x_long.shape[-1] < n_out:
        raise SqtoolError(f"stretch_windows: windows must be (W, C, L >= {n_out}), got shape {x_long.shape}")
    W, C, L = x_long.shape
    y = np.asarray(y, np.float64)
    out, y_out = x_long[:, :, :n_out].copy(), y.copy()
    src = np.arange(L, dtype=np.float64)
    for w in np.flatnonzero((rng.random(W) < frac) & np.isfinite(y) & (y > 0)):
        target = np.exp(rng.uniform(np.log(bpm[0]), np.log(bpm[1])))
        s = min(max(target / y[w], 1.0 / s_max), s_max, (L - 1) / (n_out - 1))   # (L - 1) / (n_out - 1): room
        out[w] = np.stack([np.interp(s * np.arange(n_out), src, x_long[w, c]) for c in range(C)])
        y_out[w] = y[w] * s
    return normalise(out, norm).astype(np.float32), y_out


__all__ = ["AugmentCfg", "augment", "AugmentViews", "stretch_windows"]
