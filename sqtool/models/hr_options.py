"""Options of the spectral heart-rate networks that `sqtool train finetune` and `sqtool quantize` both expose:
the training recipe's (one default and one help text per option, and one check) and the decoder's calibration
datasets (no torch: the command configs import it).

    motion_frac: float = train_option("motion_frac")     # a dataclass field of a command config
    check_train_options(cfg)                              # refuse bad values in one line, before any data is read
    calibrate_on: list[str] = calibrate_on_option()       # the decoder's calibration datasets (list field)
    on = heldout_calibration(cfg.calibrate_on, train_datasets, held_datasets)   # quantize's default: the held-out's
    cal = calibration_subjects(records, cfg.calibrate_on) # their subject keys, for hr_bins.select_decoder
    log(f"... on {n} windows{calibration_text(cfg.calibrate_on)}")  # " of wrist_exercise", or "" for every subject
    hint = calibration_hint(train_datasets, held_datasets, cfg.calibrate_on, coverage)   # a report's advice or None

and the one help text of --max-records, which both commands take for every model (MAX_RECORDS_HELP).

`models.hr_bins.BinTrainCfg` receives the training values; its own defaults stay the neutral ones (no motion,
constant learning rate), the commands' defaults are the shipped recipe. `hr_bins.select_decoder(calibrate_groups=)`
receives the calibration subjects.
"""
from __future__ import annotations

from dataclasses import field

from sqtool.core import SqtoolError

# What --max-records keeps, as the loaders do: data.tasks.load_task (a dataset file or a built-in dataset of the data
# root: data.dataset_tasks.load_task_from_dataset keeps the first N subjects; task quality on a data root: _quality
# stops each of its datasets at N recordings; synthetic: N subjects) and the spectral heart-rate corpus (train
# finetune_hr / compress quantize_hr: corpus[:N], recordings).
MAX_RECORDS_HELP = ("use only part of the data (quick runs): the first N subjects, every recording of each (synthetic: "
                    "N subjects; task quality on a data root: the first N recordings of each of its datasets; a "
                    "spectral heart-rate model: the first N recordings)")

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


EVERY_SUBJECT = "all"                  # --calibrate-on all: every training subject calibrates


def calibrate_on_option(default: str = "every training subject"):
    """The `--calibrate-on` field: datasets whose training subjects alone calibrate the decoder's interval and
    confidence (`all`: every training subject; empty: the command's default, named in `default`)."""
    return field(default_factory=list, metadata={
        "help": "spectral hr models: datasets (comma separated) whose training subjects alone set the decoder's "
                "interval mass and confidence, e.g. your own device's when training on it plus SP Cup (whose "
                f"easier windows would make the interval too narrow on yours); '{EVERY_SUBJECT}': every training "
                f"subject; default: {default}",
        "metavar": "DATASET[,...]"})


def named_datasets(calibrate_on) -> list[str]:
    """The datasets a --calibrate-on value names ([] for none or `all`: every training subject); `all` beside a
    dataset is one line."""
    names = [str(d) for d in calibrate_on or ()]
    if EVERY_SUBJECT in names and len(names) > 1:
        raise SqtoolError(f"--calibrate-on {EVERY_SUBJECT} names every training subject: give it alone")
    return [] if names == [EVERY_SUBJECT] else names


def heldout_calibration(calibrate_on, train_datasets, held_datasets) -> list[str]:
    """`sqtool quantize`'s --calibrate-on once resolved: the datasets given, [] for `all`, and when none is given
    the held-out subjects' datasets, if the training data spans several datasets and those have training
    subjects of their own (the held-out subjects stand for the device the model ships on: SP Cup's easier
    windows would make the interval too narrow there), else [] (every training subject calibrates)."""
    if calibrate_on:
        return named_datasets(calibrate_on)
    train, held = set(train_datasets), set(held_datasets)
    return sorted(held) if len(train) > 1 and held and held < train else []


CALIBRATION_STUDENTS = ("subjects", "inner")


def calibration_students_option():
    """The `--calibration-students` field: whose out-of-fold logits calibrate the interval and the confidence when
    --calibrate-on names a few of the training subjects."""
    return field(default=CALIBRATION_STUDENTS[0], metadata={
        "help": "spectral hr students with --calibrate-on DATASET: the interval and confidence are calibrated on one "
                "student per calibration subject, each trained on every other training subject (subjects: they err "
                "as the shipped student does), or on the decoder's inner-fold students (inner: they saw fewer of "
                "the device's subjects, so the interval comes out wider); the heart rates are the same",
        "metavar": "|".join(CALIBRATION_STUDENTS)})


def check_calibration_students(value: str) -> None:
    if value not in CALIBRATION_STUDENTS:
        raise SqtoolError(f"--calibration-students must be one of {', '.join(CALIBRATION_STUDENTS)}, got '{value}'")


def calibration_hint(train_datasets, held_datasets, calibrate_on, coverage: float | None,
                     target: float = 0.9, slack: float = 0.1) -> str | None:
    """One sentence for a report when the held-out interval holds the truth on fewer than `target - slack` of
    the windows although it was calibrated on every training subject of several datasets (another dataset's
    easier windows made it too narrow), and the held-out subjects' datasets have training subjects of their own:
    `--calibrate-on` those datasets. None otherwise."""
    train, held = sorted(set(train_datasets)), sorted(set(held_datasets))
    if (coverage is None or named_datasets(calibrate_on) or len(train) < 2 or not held or not set(held) < set(train)
            or coverage >= target - slack):
        return None
    return (f"The interval was calibrated on every training subject ({', '.join(train)}) and holds the truth on "
            f"{100 * coverage:.1f} % of the held-out windows, not {100 * target:.0f} %: `--calibrate-on "
            f"{','.join(held)}` calibrates it on the training subjects of the held-out subjects' dataset (the device "
            "you ship on).")


def calibration_subjects(records, datasets, strict: bool = True) -> set[str] | None:
    """The subject keys (`HrRecording.key`) of `records` that belong to `datasets` (None when `datasets` is
    empty: every subject calibrates). strict: a dataset with no training record is refused in one line; else
    (a benchmark's cross-dataset run) None when none matches."""
    names = set(named_datasets(datasets))
    if not names:
        return None
    keys = {r.key for r in records if r.dataset in names}
    missing = sorted(names - {r.dataset for r in records})
    if strict and missing:
        have = sorted({r.dataset for r in records})
        raise SqtoolError(f"--calibrate-on: no training recording of {', '.join(missing)} (the training data has "
                          f"{', '.join(have)})")
    return keys or None


def calibration_text(datasets) -> str:
    """The commands' log suffix naming the calibration datasets (" of a, b"; "" when every subject calibrates)."""
    names = named_datasets(datasets)
    return f" of {', '.join(names)}" if names else ""
