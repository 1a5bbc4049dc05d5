"""What every trainer shares: the one-cycle learning-rate schedule (safe for any number of steps), the checks
of the training numbers, the encoder's memory layout."""
from __future__ import annotations

from sqtool.core.errors import SqtoolError


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


TRAINING_NUMBERS = (("lr", "> 0", lambda v: v > 0), ("qat_lr", "> 0", lambda v: v > 0),
                    ("weight_decay", ">= 0", lambda v: v >= 0), ("epochs", ">= 1", lambda v: v >= 1),
                    ("batch_size", ">= 2", lambda v: v >= 2), ("momentum", "in [0, 1)", lambda v: 0 <= v < 1),
                    ("max_steps", ">= 0 (0: every epoch)", lambda v: v >= 0), ("seed", ">= 0", lambda v: v >= 0),
                    ("folds", ">= -1 (0: leave-one-subject-out, -1: the task's default)", lambda v: v >= -1),
                    ("label_fraction", "in (0, 1]", lambda v: 0 < v <= 1))


def check_training_numbers(cfg, command: str, skip: tuple[str, ...] = ()) -> None:
    """The training numbers of any stage's config that has them (learning rates, weight decay, epochs, batch
    size; not those in `skip`, e.g. quantize's epochs where 0 means its default), refused in one line before
    anything runs: torch's own errors (`Invalid learning rate`) come from deep inside, after a run folder was made."""
    for k, what, ok in TRAINING_NUMBERS:
        v = None if k in skip else getattr(cfg, k, None)
        if v is not None and not ok(v):
            raise SqtoolError(f"{command} --{k.replace('_', '-')} must be {what}, got {v:g}")
    if getattr(cfg, "layout", None) not in (None, *LAYOUTS):
        raise SqtoolError(f"{command} --layout must be one of {', '.join(LAYOUTS)}, got '{cfg.layout}'")


LAYOUTS = ("auto", "ncl", "nhwc")
CHANNELS_LAST_FAMILIES = ("resnet1d",)          # models whose encoder has channels_last_2d()
LAYOUT_HELP = ("the encoder's memory layout: auto (nhwc on CUDA, ncl on CPU) | ncl (1-D convolutions) | nhwc (the "
               "same convolutions as 2-D over channels-last memory: 2.6x the pairs/s of ncl for resnet1d_siamq_152 "
               "at batch 1,024 on an H200); the weights and checkpoints are the same either way")


def encoder_layout(layout: str, family: str, dev, name: str) -> str:
    """The memory layout a run's encoder trains in: `layout` as asked ('auto': nhwc on CUDA where the model's
    family can run channels-last, the 1-D ResNet's, else ncl); nhwc for another family is one line."""
    if layout not in LAYOUTS:
        raise SqtoolError(f"layout must be one of {', '.join(LAYOUTS)} (got '{layout}')")
    can = family in CHANNELS_LAST_FAMILIES
    if layout == "nhwc" and not can:
        raise SqtoolError(f"--layout nhwc: {name} ({family}) has no channels-last encoder; only the ResNet encoders "
                          "(resnet1d_siamq_*) have one (use --layout auto or ncl)")
    if layout == "auto":
        return "nhwc" if can and dev.type == "cuda" else "ncl"
    return layout
