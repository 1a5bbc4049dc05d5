"""Training options of the spectral heart-rate networks that `sqtool train finetune` and `sqtool quantize`
both expose: one default and one help text per option, and one check (no torch: the command configs import it).

    motion_frac: float = train_option("motion_frac")     # a dataclass field of a command config
    check_train_options(cfg)                              # refuse bad values in one line, before any data is read

`models.hr_bins.BinTrainCfg` receives these values; its own defaults stay the neutral ones (no motion, constant
learning rate), the commands' defaults are the shipped recipe.
"""
from __future__ import annotations

from dataclasses import field

from sqtool.core import SqtoolError

AUGMENT_FRACTIONS = ("freq_stretch", "motion_frac", "motion_axis_drop")   # command options that are fractions
LR_SCHEDULES = ("constant", "cosine")

# name -> (default, help, metavar or None)
TRAIN_OPTIONS = {
    "motion_frac": (0.3, "spectral hr models: fraction of training windows with an added arm-motion peak away "
                         "from the truth (accelerometer + scaled PPG; models.hr_bins.inject_motion); 0 = none", None),
    "motion_axis_drop": (0.5, "spectral hr models: in a motion window each accelerometer axis but the strongest "
                              "shows no motion with this probability (a swing the watch's other axes do not see: "
                              "without it a network trained on real wrists, where every axis swings, follows a "
                              "cadence that one axis misses); 0 = every axis moves", None),
    "lr_schedule": ("cosine", "spectral hr models: learning rate of every bin network's training (inner, final, "
                              "QAT): cosine-annealed to 0 over the epochs, or constant (whose last iterate varies "
                              "more from seed to seed)", "cosine|constant"),
}


def train_option(name: str):
    """A fresh dataclass field for the shared option `name` (its default, help and metavar)."""
    default, text, metavar = TRAIN_OPTIONS[name]
    return field(default=default, metadata={"help": text, **({"metavar": metavar} if metavar else {})})


def check_train_options(cfg, names=AUGMENT_FRACTIONS) -> None:
    """Refuse, in one line naming the option, a command config whose augmentation fractions are not in [0, 1]
    or whose learning-rate schedule is unknown."""
    for name in names:
        v = float(getattr(cfg, name))
        if not 0.0 <= v <= 1.0:
            raise SqtoolError(f"--{name.replace('_', '-')} must be a fraction in [0, 1], got {v:g}")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise SqtoolError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got '{cfg.lr_schedule}'")
