"""The one-cycle learning-rate schedule every trainer uses, safe for any number of steps."""
from __future__ import annotations


def one_cycle(opt, max_lr: float, steps: int, pct_start: float):
    """torch's OneCycleLR over `steps` optimiser steps, warming up over `pct_start` of them. torch divides by the
    warm-up's length minus one step, so a warm-up of exactly one step (e.g. 10 steps at 0.1: one batch per fold
    and 10 epochs) raised ZeroDivisionError; it then warms up over 1.5 steps instead. Every other step count
    gets torch's schedule unchanged."""
    import torch

    steps = max(1, int(steps))
    if abs(pct_start * steps - 1.0) < 1e-9:
        pct_start = 1.5 / steps if steps >= 2 else 0.5
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps, pct_start=pct_start)
