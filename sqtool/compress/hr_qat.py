"""Quantization-aware training of a heart-rate-bin model (Brevitas), and its int8 logits.

    q = qat_bins(float_model, x, y, bins, cfg)        # BN folded, calibrated, then QAT on the bins
    codes, scale = int8_logits(q, x)                   # (N, F) int8 logits and their scale

The twin keeps the float model's front-end contract (input codes / 127 at a fixed scale), so the
firmware feeds the front end's codes straight in; its int8 logits go to the fixed-point decoder.
QAT uses the same loss as float training (Gaussian-target CE, optional KL to a teacher) at a lower
learning rate, starting from the calibrated twin.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from sqtool.compress.qat import calibrate, quant_twin
from sqtool.models.hr_bins import BinTrainCfg, train_bins

PRESET = "int8_w_per_channel_a_per_tensor"


def qat_bins(float_model, x: np.ndarray, y: np.ndarray, bins: np.ndarray, cfg: BinTrainCfg,
             teacher_logits: np.ndarray | None = None, preset: str = PRESET, calib: int = 1024, log=None):
    q = quant_twin(float_model, preset)
    rng = np.random.default_rng(cfg.seed)
    idx = rng.permutation(len(x))[:calib]
    calibrate(q, x[idx])
    q.qat_history = train_bins(q, x, y, bins, cfg, teacher_logits, log) if cfg.epochs > 0 else []   # loss per epoch
    q.eval()
    return q


@torch.no_grad()
def int8_logits(q, x: np.ndarray, batch: int = 512) -> tuple[np.ndarray, float]:
    """(N, C, F) -> (N, F) int8 logits of the Brevitas twin and the output scale."""
    q.eval()
    outs, scale = [], None
    for i in range(0, len(x), batch):
        qt = q.head(q.blocks(q.inp(torch.as_tensor(np.asarray(x[i:i + batch], np.float32)))))
        scale = float(qt.scale.reshape(-1)[0])
        outs.append(qt.int().numpy()[:, 0, :].astype(np.int8))
    return np.concatenate(outs), scale


def qat_cfg(cfg: BinTrainCfg, epochs: int) -> BinTrainCfg:
    return dataclasses.replace(cfg, epochs=epochs, lr=cfg.lr * 0.2)
