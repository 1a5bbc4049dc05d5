"""`sqtool quantize`: distil a fine-tuned teacher into a compact student, then quantize it (Brevitas QAT).

    sqtool quantize --model runs/train/<run> [--student cnn1d_student_s] [--preset ...] [--no-distill]
                    [--data DIR|synthetic] [--task TASK] [--epochs 30] [--qat-epochs 10] [--out DIR]

The pipeline, in order (every check runs before anything is written):

1. load the teacher (kind teacher_task); the task is the teacher's (--task, when given, must be it), and another
   sampling rate or window is refused;
2. build the student's cfg from the teacher's task contract (+ accelerometer channels, + quality
   output) and check it against its budget (int8 weights, MACs per window);
3. load the task's windows for the student's channels; split by subject: the teacher's own held-out subjects
   (`train finetune` records them: its folds and model.pt never saw them; --heldout-subjects may name some of
   them only), else, for a teacher that held none out or from before the record, the shared rule
   (`data.heldout`) with a WARNING line and metrics.json `heldout_in_teacher` true / null (written into
   config.yaml);
4. teacher outputs for every window, cached in teacher_cache.npz;
5. train the float student (distillation + labels + quality head) -> student_float.pt;
6. fold BN into the Brevitas twin, calibrate activation ranges, QAT at a lower lr -> model.pt;
7. evaluate teacher / student float / student int8 on the same held-out windows, beside the trivial predictor
   fitted on the training subjects (their mean / base rate), with each model's prediction spread and its skill
   test against the trivial predictor (`report.heldout_skill`; "no skill" flagged in the table, metrics.json
   `skill` / `flag` and the command's last line), per-layer SQNR, coverage of the quality gate -> heldout.npz,
   metrics.json, report.md, config.yaml.
   A final fit (`--heldout-fraction 0`, from a teacher fine-tuned on every subject): steps 1-6 on every subject and,
   instead of step 7, the --estimate-from run's held-out figures as its estimate and parity.npz
   (`compress.final_fit`, shared with the spectral students).

The export stage reads only the run directory.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import numpy as np

from sqtool.core import (SqtoolError, add_bool_flag, add_config_args, atomic_write_bytes, atomic_write_text, make_run_dir,
                           resolve_config, resume_config, save_config, set_seed, to_dict, write_metrics)
from sqtool.core.metrics import ONE_CLASS_WHY, heldout_one_class
from sqtool.core.model_cfg import device_rate_args
from sqtool.core.io import NPZ_ERRORS, read_json
from sqtool.core.optim import check_training_numbers
from sqtool.core.progress import item
from sqtool.core.runs import FORCE_HELP, at_cfg_threads, load_run_npz, releases_run_dirs, shell_command
from sqtool.core.trainlog import FINETUNE_COLUMNS, TrainLog, start_fit
from sqtool.core.say import also_on_stderr
from sqtool.compress.final_fit import TIME_DEFAULTS, check_covers, final_fit, load_estimate
from sqtool.data.heldout import HELDOUT_FRACTION, file_split, heldout_note, recorded_heldout, teacher_heldout
from sqtool.models.hr_options import (MAX_RECORDS_HELP, calibrate_on_option, calibration_students_option,
                                      train_option)


TIME_KD = TIME_DEFAULTS["alpha"]        # distillation weight of time-domain students when --alpha is not given
TIME_EPOCHS = TIME_DEFAULTS["epochs"]   # their float epochs when --epochs is not given (0)


@dataclass
class QuantizeConfig:
    # what each number may be (core.config: a value outside is one line, before any work)
    RANGES: ClassVar[dict] = {"fs": {"above": 0}, "width_mult": {"above": 0}, "temperature": {"above": 0},
        "kd_gate_bpm": {"min": 0}, "feature_weight": {"min": 0}, "quality_weight": {"min": 0},
        "quality_err": {"above": 0}, "stretch": {"min": 0}, "inner_folds": {"min": 2}, "inner_epochs": {"min": 0},
        "qat_epochs": {"min": 0}, "calib_windows": {"min": 1},
        "max_int8_weights": {"min": 1}, "max_macs": {"min": 1}, "threads": {"min": 1}}
    teacher: str = field(default="", metadata={
        "help": "the fine-tuned teacher this stage distils: a `train finetune` run folder or its model.pt",
        "flag": "--model", "aliases": ("--teacher",), "required": True, "metavar": "RUN", "path": True})
    student: str = field(default="", metadata={
        "help": "student model from the registry, of the teacher's student family (default: cnn1d_student_s for a "
                "time-domain teacher, spec_student_s for a spectral one, or where that one does not fit the teacher "
                "the first registry student that does, e.g. spec_student_s_accsum; config.yaml's resolved: says "
                "which)"})
    preset: str = field(default="int8_w_per_channel_a_per_tensor",
                        metadata={"help": "quantization preset (int8_w_per_channel_a_per_tensor | "
                                          "int8_w_per_tensor_a_per_tensor)"})
    task: str | None = field(default=None, metadata={
        "help": "task the teacher was fine-tuned for (default: the teacher's own task; another one is refused)"})
    data_root: str | None = field(default=None, metadata={
        "help": "task data: a data root folder, a dataset file (dataset.yaml; its split holds subjects out), or "
                "'synthetic' (default: the data the teacher was fine-tuned on; "
                "else $SQTOOL_DATA or ../shared/data)",
        "flag": "--data", "aliases": ("--data-root",), "metavar": "DATA", "path": True})
    fs: float = field(default=40.0, metadata={"help": "the student's sampling rate, Hz (the teacher must match)"})
    channels: list[str] = field(default_factory=list,
                                metadata={"help": "student input channels, comma separated, e.g. ppg,acc_x,acc_y,"
                                                  "acc_z (default: the teacher's channels, which it must include)"})
    width_mult: float = field(default=1.0, metadata={"help": "student width multiplier (the knob)"})
    depth_delta: int = field(default=0, metadata={"help": "drop (<0) or add (>0) convolutions at the end"})
    quality_head: bool = field(default=True, metadata={"help": "add the quality_logit output (regression tasks)"})
    distill: bool = field(default=True, metadata={"help": "learn from the teacher (--no-distill: labels only)"})
    alpha: float | None = field(default=None, metadata={
        "help": "weight of the distillation loss vs the labels (default: 0.7 for time-domain students, 0.5 for "
                "spectral hr students)"})
    temperature: float = field(default=2.0, metadata={"help": "distillation temperature for logits"})
    kd_gate_bpm: float = field(default=10.0,
                               metadata={"help": "spectral hr students: distil only the windows whose teacher "
                                                 "argmax is within this many BPM of the truth (labels alone "
                                                 "elsewhere); 0 = distil every window (models.hr_bins)"})
    feature_weight: float = field(default=0.0,
                                  metadata={"help": "weight of the cosine loss between projected student "
                                                    "features and the teacher's representation"})
    quality_weight: float = field(default=0.3, metadata={"help": "weight of the quality-head loss"})
    quality_label: str = field(default="both",
                               metadata={"help": "what labels a window poor for the quality head: "
                                                 "teacher_error | sqi | both"})
    quality_err: float = field(default=10.0,
                               metadata={"help": "a window whose teacher error exceeds this (output units) "
                                                 "is labelled poor for the quality head"})
    stretch: float = field(default=0.0,
                           metadata={"help": "time-stretch augmentation for rate outputs (HR, RR): slow half "
                                             "the training windows by up to this fraction, label scaled alike"})
    freq_stretch: float = field(default=0.5,
                                metadata={"help": "spectral hr students: fraction of training windows frequency-"
                                                  "stretched (truth x s; teacher logits stretched alike), the "
                                                  "rest shifted; 0 = shift only (models.hr_bins)"})
    motion_frac: float = train_option("motion_frac")
    motion_axis_drop: float = train_option("motion_axis_drop")
    lr_schedule: str = train_option("lr_schedule")
    student_init: str | None = field(default=None, metadata={
        "help": "spectral hr students: a SiamQuality pretraining run of the student's architecture (`sqtool train "
                "pretrain --model spec_student_s --pairs ...`); the float student's encoder starts from it",
        "metavar": "RUN", "path": True})
    decoder_on: str = field(default="student", metadata={
        "help": "spectral hr students: whose out-of-fold logits choose the decoder (transition, temperature, "
                "interval, confidence): student (one float student per inner fold of the training subjects, so "
                "it is calibrated on the logits it decodes) or teacher (the teacher run's decoder as is)"})
    evidence: str = field(default="off", metadata={
        "help": "spectral hr students, --decoder-on student: inner = the decoder may also weigh the window's "
                "motion-subtracted PPG spectrum (the classic spectral-subtraction rule as a prior on the network's "
                "bins), with a weight chosen on the inner out-of-fold logits (0 among the choices); off = never; "
                "a number in (0, 8] = that weight, fixed", "metavar": "inner|off|WEIGHT"})
    decoder_rule: str = field(default="min", metadata={
        "help": "--decoder-on student: how the decoder's transition sigma / jump floor / temperature are chosen on "
                "the inner out-of-fold logits: min = the lowest mean of subjects' MAE; one_se = the closest to the "
                "HMM fitted on the truth (temperature 1 first) within one paired standard error of it",
        "metavar": "min|one_se"})
    calibrate_on: list[str] = calibrate_on_option("the held-out subjects' dataset when the training data spans "
                                                  "several and it has training subjects; else every training subject")
    calibration_students: str = calibration_students_option()
    inner_folds: int = field(default=3, metadata={"help": "--decoder-on student: inner folds of the training "
                                                          "subjects"})
    inner_epochs: int = field(default=0, metadata={"help": "--decoder-on student: epochs of each inner student "
                                                           "(0 = half the float student's)"})
    epochs: int = field(default=0, metadata={"help": "float student epochs (0 = 20 for time-domain students, "
                                                     "60 for spectral ones)"})
    lr: float = field(default=3e-3, metadata={"help": "float student peak learning rate (one-cycle; time-domain students)"})
    weight_decay: float = field(default=1e-2, metadata={"help": "AdamW weight decay (float and QAT; time-domain students)"})
    qat_epochs: int = field(default=8, metadata={"help": "quantization-aware training epochs"})
    qat_lr: float = field(default=3e-4, metadata={"help": "QAT peak learning rate (time-domain students)"})
    batch_size: int = field(default=64, metadata={"help": "batch size"})
    heldout_subjects: list[str] = field(default_factory=list,
                                        metadata={"help": "held-out subject ids, comma separated (default: the "
                                                          "teacher's own held-out subjects, else the dataset "
                                                          "file's split, else the last heldout_fraction of sorted "
                                                          "subjects; data.heldout)"})
    heldout_fraction: float = field(default=HELDOUT_FRACTION, metadata={
        "help": "fraction of subjects held out when not listed (and neither the teacher nor the dataset file says); "
                "0: none, a final fit on every subject for shipping, from a teacher fine-tuned on every subject "
                "(its figures: --estimate-from, the run of the same recipe that held subjects out)"})
    estimate_from: str | None = field(default=None, metadata={
        "help": "with --heldout-fraction 0: the quantize run of the same recipe that held subjects out; its held-out "
                "figures go into this run's report and last line (and a spectral export's model card) as the final "
                "fit's estimate",
        "metavar": "RUN", "path": True})
    calib_windows: int = field(default=1024, metadata={"help": "max training windows used to calibrate"})
    calib_npz: str | None = field(default=None,
                                  metadata={"help": "calibration windows from an .npz file (x (N,C,T), fs, window_s) "
                                                    "instead of the training windows", "path": True})
    teacher_cache: str | None = field(default=None,
                                      metadata={"help": "teacher-output cache to reuse/write "
                                                        "(default: <run>/teacher_cache.npz)", "path": True})
    allow_over_budget: bool = field(default=False, metadata={"help": "warn instead of failing over budget (time-domain students; a spectral student's budget is reported)"})
    max_int8_weights: int | None = field(default=None, metadata={"help": "override the int8 weight budget "
                                                                          "(default: the student's own; a stand-in "
                                                                          "student: that of the one it replaces)"})
    max_macs: int | None = field(default=None, metadata={"help": "override the MACs-per-window budget "
                                                                  "(default: the student's own; a stand-in "
                                                                  "student: that of the one it replaces)"})
    max_records: int | None = field(default=None, metadata={
        "help": MAX_RECORDS_HELP + "; 0 = all (default: the teacher's own --max-records, recorded in config.yaml)"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    tensorboard: bool = field(default=False, metadata={
        "help": "also write RUN/log.csv's rows (each student's and QAT's loss per epoch) as TensorBoard scalars into "
                "RUN/tb (needs `pip install tensorboard`)"})
    out: str | None = field(default=None, metadata={"help": "run directory (default: runs/quantize/<stamp>-<student>)",
                                                    "metavar": "DIR"})
    force: bool = field(default=False, metadata={"help": FORCE_HELP})


def register(sub, name: str, helptext: str) -> None:
    p = sub.add_parser(name, help=helptext, description=(
        "Distil a fine-tuned teacher (kind teacher_task) into a compact 1-D CNN student, fold BN, calibrate "
        "and quantize it to int8 with Brevitas QAT. Writes model.pt (student_int8), student_float.pt, "
        "heldout.npz, metrics.json, report.md, config.yaml into the run directory (a final fit, "
        "--heldout-fraction 0: parity.npz of training windows instead of heldout.npz)."))
    add_config_args(p, QuantizeConfig)
    add_bool_flag(p, "--progress", "progress", "print a line per step and epoch on stderr", default=True)
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue the quantize run in RUN after a kill, with its saved config: its student_float.pt "
                        "(and the decoder's finished students) are reused, then calibration + QAT are redone (log.csv's "
                        "rows of a phase trained again replaced); only the QAT, calibration, decoder, budget and "
                        "--tensorboard options may be given, any other change is refused")
    p.set_defaults(func=run)


def _resume_config(args) -> QuantizeConfig:
    """`quantize --resume RUN`: the run's saved config; the options that do not shape the float student
    (QAT, calibration, the decoder's choice, budgets) may be given now, any other change is refused naming it."""
    from sqtool.compress.quantize_hr import _NOT_IN_FLOAT_KEY
    from sqtool.core.runs import saved_config
    run_dir = Path(args.resume)
    base = saved_config(QuantizeConfig, run_dir, "quantize")
    may_change = tuple(k for k in _NOT_IN_FLOAT_KEY if k != "teacher")   # hashed apart from the config, not changeable
    cfg, _ = resume_config(QuantizeConfig, base, args, run_dir=run_dir, may_change=may_change,
                           why="its float student was trained with the saved one")
    return dataclasses.replace(cfg, out=str(run_dir), force=True)


def _log(args):
    """The per-item lines (core.progress.item, on stderr: each step's summary, the decoder chosen): always, as
    README says of --no-progress (`_epoch_lines` says whether the per-epoch lines go with them)."""
    return item


def _epoch_lines(args) -> bool:
    """The per-epoch lines of the float student and QAT: on unless --no-progress."""
    return getattr(args, "progress", None) is not False


def _precheck(cfg) -> None:
    """The cheap checks of a fresh or resumed run, before any file is read: the training numbers, the preset."""
    from sqtool.models.quant import get_preset
    check_training_numbers(cfg, "quantize", skip=("epochs",))
    get_preset(cfg.preset)                                               # unknown preset -> error first


# Options of the time-domain students only: a spectral student is a fixed registry model (its channels, rate,
# width and depth are the teacher's grid's) trained on the bins (models.hr_bins), so these would be recorded in
# config.yaml and ignored; refused on a spectral teacher when they differ from their defaults.
TIME_DOMAIN_ONLY = ("fs", "channels", "width_mult", "depth_delta", "quality_head", "feature_weight", "quality_weight",
                    "quality_label", "quality_err", "stretch",           # the spectral path (quantize_hr) reads none:
                    "lr", "weight_decay", "qat_lr", "calib_npz", "teacher_cache",   # its schedule is hr_bins.BinTrainCfg's,
                    "allow_over_budget", "max_int8_weights", "max_macs")           # its budget spectral_budget's (reported)


def check_spectral_options(cfg: QuantizeConfig, ck: dict) -> None:
    """One line naming the time-domain-only options (`TIME_DOMAIN_ONLY`) `cfg` sets for the spectral teacher `ck`."""
    from sqtool.core.config import flag_of
    defaults = QuantizeConfig()
    given = [flag_of(QuantizeConfig, k) for k in TIME_DOMAIN_ONLY
             if list_or_value(getattr(cfg, k)) != list_or_value(getattr(defaults, k))]
    if given:
        raise SqtoolError(f"{', '.join(given)}: time-domain students only; teacher {ck['path']} is spectral (its "
                          f"student, e.g. spec_student_s, has the teacher's channels, rate and size: choose it with "
                          "--student)")


def list_or_value(v):
    """A list option read from a file or the command line (a tuple or a list) compared as a list."""
    return list(v) if isinstance(v, (list, tuple)) else v


def run(args) -> int:
    from sqtool.core.runs import check_out_dir, check_required
    if getattr(args, "resume", None):
        return _resume(args)
    cfg = resolve_config(QuantizeConfig, args)
    check_required("quantize", cfg)                  # a usage error (exit 2), before anything is read
    _precheck(cfg)
    if cfg.out:
        check_out_dir("quantize", cfg.out, cfg.force)   # before the teacher and the data are read
    log = _log(args)
    ck = _spectral_teacher(cfg)
    if ck is not None:
        from sqtool.compress.quantize_hr import quantize_hr_run
        check_spectral_options(cfg, ck)
        run_dir, metrics = quantize_hr_run(cfg, ck, log=log)
    elif cfg.student_init:
        raise SqtoolError("--student-init applies to spectral heart-rate students (a spec_* teacher); a time-domain "
                          "student is distilled from scratch")
    elif cfg.calibrate_on:
        raise SqtoolError("--calibrate-on sets the heart-rate decoder's interval of spectral students (a spec_* "
                          "teacher); a time-domain student has no decoder")
    else:
        run_dir, metrics = quantize_run(cfg, log=log, epoch_lines=_epoch_lines(args))
    print_results(run_dir, metrics)
    return 0


def _resume(args) -> int:
    from sqtool.core import lock_run_dir
    from sqtool.core.runs import note_run
    cfg = _resume_config(args)
    _precheck(cfg)                              # --preset may change on resume: checked before the run is locked
    log = _log(args)
    ck = _spectral_teacher(cfg)
    lock_run_dir(cfg.out)                       # a second resume of the same run is refused
    note_run(cfg.out, "quantize")
    if ck is None:
        run_dir, metrics = quantize_run(cfg, log=log, resume_dir=cfg.out, epoch_lines=_epoch_lines(args))
    else:
        from sqtool.compress.quantize_hr import quantize_hr_run
        run_dir, metrics = quantize_hr_run(cfg, ck, log=log, run_dir=cfg.out)
    print_results(run_dir, metrics)
    return 0


def result_line(metrics: dict) -> str:
    """The headline of a quantize run's metrics.json: the held-out figure of the teacher, the float and the
    int8 student, in units (spectral students: decoded MAE, mean of subjects); a one-class held-out set's warning
    as its short reason (the warning less its ONE_CLASS_WHY tail; one without that tail whole)."""
    from sqtool.core.progress import metric_text
    if metrics.get("final_fit"):                                         # a student on every subject
        est = metrics.get("estimate") or {}
        em = est.get("metrics") or {}
        head = f"final fit on every subject ({len(metrics.get('train_subjects') or [])}): no held-out figure; "
        if not em:
            return head + "quote the held-out figures of this recipe's run that held subjects out (--estimate-from RUN)"
        if isinstance(em.get("mae_bpm"), dict):                          # spectral heart rate
            m = em["mae_bpm"]
            return (head + f"held-out estimate (from {est['run']}): teacher {m['teacher']:.2f}, float {m['float']:.2f}, "
                    f"int8 {m['int8']:.2f} BPM")
        pm, unit = em["primary_metric"], (metrics.get("units") or [None])[0]
        return (head + f"held-out estimate (from {est['run']}): " + " | ".join(
            f"{w} {metric_text(em['task'], pm, em[k]['metrics'].get(pm), unit)}"
            for w, k in (("teacher", "teacher"), ("student float", "student_float"), ("int8", "student_int8")))
            + estimate_flag(em))
    if isinstance(metrics.get("mae_bpm"), dict):                         # a spectral heart-rate student
        m = metrics["mae_bpm"]
        return (f"held-out MAE (mean of subjects): teacher {m['teacher']:.2f}, float {m['float']:.2f}, "
                f"int8 {m['int8']:.2f} BPM" + (f"; classic baseline (no learned model) {m['classic']:.2f} BPM"
                                               if m.get("classic") is not None else "") + classic_worse(metrics))
    task, pm = metrics["task"], metrics["primary_metric"]
    one_class = metrics.get("heldout_one_class")
    unit = ((metrics.get("student") or {}).get("units") or [None])[0]     # a custom label's (built-in: metric_text's)
    return (f"held-out {task}: teacher {metric_text(task, pm, metrics['teacher']['metrics'].get(pm), unit)} | student "
            f"float {metric_text(task, pm, metrics['student_float']['metrics'].get(pm), unit)} | int8 "
            f"{metric_text(task, pm, metrics['student_int8']['metrics'].get(pm), unit)}"
            + (f" (NOT A MEASURE OF SKILL: {one_class.removesuffix(': ' + ONE_CLASS_WHY)})" if one_class else ""))


def classic_worse(metrics: dict) -> str:
    """'; WORSE THAN THE CLASSIC METHOD (point comparison, N held-out subjects)' where a spectral heart-rate run's int8
    student errs more than the classic baseline on the held-out subjects (mean of subjects), as a time-domain run's
    last line flags it (`core.metrics.classic_flag`); '' otherwise."""
    from sqtool.core.metrics import WORSE_THAN_CLASSIC
    m = metrics["mae_bpm"]
    if m.get("classic") is None or not m["int8"] > m["classic"]:
        return ""
    n = len(metrics.get("heldout_subjects") or [])
    return f"; {WORSE_THAN_CLASSIC.upper()} (point comparison, {n} held-out subject{'s' if n != 1 else ''})"


def estimate_flag(em: dict) -> str:
    """' (NO SKILL in that run)' and the like when a final fit's estimate run flagged its int8 student, else ''."""
    flag = em.get("flag") or ""                      # the run's skill verdict (report.heldout_skill), a string
    return f" ({flag.upper()} in that run)" if flag else ""


def print_results(run_dir, metrics: dict) -> None:
    """On stdout: the result line of the run's `metrics` (as written to its metrics.json), where the results
    are (`report:`) and the next command; then, for a time-domain student, the trivial and classic rows with the
    prediction spread and the skill verdicts, the int8 student's last (`report.skill_lines`: NO SKILL flagged)."""
    from sqtool.compress.report import skill_lines
    run_dir = Path(run_dir)
    if metrics.get("heldout_note"):                   # held-out subjects the teacher trained on, or may have
        print(f"WARNING: {metrics['heldout_note']}")
        also_on_stderr(f"WARNING: {metrics['heldout_note']}")   # where a CI log keeps it, as bench and predict do
    if metrics.get("student_choice"):                # the default student did not fit: which one stands in, and why
        budget_of = (metrics.get("budget") or {}).get("of")
        print(f"student: {metrics['student_choice']}"
              + (f" (held to {budget_of}'s budget)" if budget_of and budget_of != metrics["student"]["name"] else ""))
    print(f"{result_line(metrics)} -> {run_dir}")
    print(f"report: {run_dir / 'report.md'}")
    print(f"next: {shell_command('export', '--model', run_dir, '--target', 'onnx,tflite,c', *device_rate_args(metrics))}")
    if metrics.get("skill"):                          # a time-domain student's (a run from before "units": its student's)
        for line in skill_lines(metrics["task"], metrics["skill"], metrics.get("units") or metrics["student"]["units"]):
            print(line)


def _spectral_teacher(cfg):
    """The teacher checkpoint when it is a spectral heart-rate model (its own quantize path), else None."""
    from sqtool.core.checkpoint import load_checkpoint
    from sqtool.models.spectral import SPECTRAL_FAMILY
    if not cfg.teacher:
        return None
    ck = load_checkpoint(cfg.teacher, expect_kind="teacher_task", finished=True)   # not a killed run's
    from sqtool.models import shipped_as
    shipped = shipped_as(ck["model_cfg"])
    if shipped:                                        # rr_spec, af_beats: shipped as they are
        raise SqtoolError(f"quantize: teacher {ck['path']} is {ck['model_cfg']['name']}, a float model over a fixed "
                          f"front end that ships as it is: sqtool export --model {cfg.teacher} --target "
                          f"{shipped.targets} (no student distils from it)")
    return ck if ck["model_cfg"].get("family") == SPECTRAL_FAMILY else None


# ----------------------------------------------------------------------------- checks

def with_teacher_run(cfg: QuantizeConfig, ck: dict) -> QuantizeConfig:
    """`cfg` with the teacher checkpoint's (`ck`, as load_checkpoint returns it) task and --max-records: --task left
    out (None) takes its task, another --task is refused in one line; --max-records left out (None) takes the
    teacher run's own (0: all), so the student, its held-out split and the trivial predictor beside it read the
    teacher's records; a --max-records given wins. Both go into the run's config.yaml as resolved."""
    task = ck["model_cfg"].get("task")
    if cfg.task is not None and cfg.task != task:
        raise SqtoolError(f"teacher {ck['path']} was fine-tuned for task '{task}', not '{cfg.task}' "
                          f"(pass --task {task}, or leave --task out, or a teacher for {cfg.task})")
    max_records = cfg.max_records if cfg.max_records is not None else \
        int((ck.get("train_cfg") or {}).get("max_records") or 0)
    return dataclasses.replace(cfg, task=task, max_records=max_records)


def load_teacher(cfg: QuantizeConfig):
    """The teacher checkpoint, model and cfg, and `cfg` with the teacher's task and --max-records (`with_teacher_run`); refuses
    another kind, task, sampling rate or window."""
    from sqtool.data.tasks import task_spec
    from sqtool.core.checkpoint import file_sha256, load_checkpoint
    from sqtool.models import ModelCfg, load_model

    if not cfg.teacher:
        raise SqtoolError("--model is required: the fine-tuned teacher's run folder or checkpoint")
    ck = load_checkpoint(cfg.teacher, expect_kind="teacher_task", finished=True)   # not a killed run's
    tcfg = ModelCfg.from_dict(ck["model_cfg"])
    where = f"teacher {ck['path']}"
    cfg = with_teacher_run(cfg, ck)
    if abs(tcfg.fs - cfg.fs) > 1e-6:
        raise SqtoolError(f"{where} runs at {tcfg.fs:g} Hz; the student is built for {cfg.fs:g} Hz "
                          f"(fine-tune the teacher at {cfg.fs:g} Hz, or pass --fs {tcfg.fs:g})")
    spec = task_spec(cfg.task, model_cfg=tcfg)          # a built-in task's, or the checkpoint's own label's
    if cfg.task == "hr" and abs(tcfg.window_s - spec["window_s"]) > 1e-6:
        raise SqtoolError(f"{where} takes {tcfg.window_s:g} s windows; task 'hr' is labelled per "
                          f"{spec['window_s']:g} s window (SP Cup BPM0)")
    teacher = load_model(ck)
    teacher.sq_train_cfg = dict(ck.get("train_cfg") or {})
    return teacher, tcfg, file_sha256(ck["path"]), ck["path"], cfg


def check_budget(scfg, cfg: QuantizeConfig, log=None, budget_of: str | None = None) -> dict:
    """Compare the student's static size/cost with its budget; over budget -> error naming it. A student without
    a registered budget that stands in for the default (`budget_of`: `distill.stand_in`'s, e.g. cnn1d_student_xs for
    cnn1d_student_s) is held to the default's budget. Returns {static, checks, over, of: whose budget (None: the
    options' limits or none)}."""
    from sqtool.models.student import STUDENT_BUDGETS, student_budget

    b = student_budget(scfg)
    of = scfg.name if scfg.name in STUDENT_BUDGETS else budget_of if budget_of in STUDENT_BUDGETS else None
    limits = dict(STUDENT_BUDGETS.get(of, {}))
    if cfg.max_int8_weights is not None:
        limits["int8_weights"] = cfg.max_int8_weights
    if cfg.max_macs is not None:
        limits["macs"] = cfg.max_macs
    checks, over = {}, []
    for key, limit in limits.items():
        v = b[key]
        ok = v <= limit
        checks[key] = {"value": int(v), "limit": int(limit), "ok": ok}
        if not ok:
            what = "int8 weights" if key == "int8_weights" else "MACs per window"
            over.append(f"{what} {v:,} > {limit:,} (+{v - limit:,}, {100 * (v - limit) / limit:.1f} % over)")
    if over:
        whose = "its" if of in (None, scfg.name) else f"the default {of}'s"
        msg = (f"{scfg.name} ({scfg.in_channels} ch x {scfg.n_samples} samples) does not fit {whose} budget: "
               + "; ".join(over))
        if not cfg.allow_over_budget:
            raise SqtoolError(msg + " (shrink --width-mult/--depth-delta or pass --allow-over-budget)")
        if log:
            log("warning: " + msg)
    return {"static": b, "checks": checks, "over": over, "of": of}


def split_subjects(groups: np.ndarray, cfg: QuantizeConfig, teacher, t_path, split) -> tuple[list[str], bool | None]:
    """(the held-out subjects of a time-domain student, whether its teacher trained on them: False / True / None =
    may have): `data.heldout.teacher_heldout`, the spectral quantize's rule, on the teacher's recorded set
    (`train finetune` holds them out), --heldout-subjects, the dataset file's `split` (its test subjects, None
    without one: `data.heldout.file_split`) and --heldout-fraction."""
    recorded = recorded_heldout(getattr(teacher, "sq_train_cfg", None))
    return teacher_heldout(np.unique(groups).tolist(), recorded, str(t_path), names=cfg.heldout_subjects,
                           split=split, fraction=cfg.heldout_fraction)


def load_calibration(cfg: QuantizeConfig, scfg, x_train: np.ndarray, log=None):
    """Calibration windows (file or a seeded subset of the training windows), checked."""
    from sqtool.compress.qat import check_calibration_set

    if cfg.calib_npz:
        p = Path(cfg.calib_npz)
        if not p.is_file():
            raise SqtoolError(f"calibration file {p} not found")
        try:
            with np.load(p, allow_pickle=False) as z:
                x = np.asarray(z["x"], np.float32)
                fs = float(z["fs"]) if "fs" in z else None
                win = float(z["window_s"]) if "window_s" in z else None
                chans = [str(c) for c in z["channels"]] if "channels" in z else None
        except NPZ_ERRORS as e:                                 # torn, empty, foreign
            raise SqtoolError(f"calibration file {p} is not an npz with an 'x' array ({type(e).__name__})")
        warnings = check_calibration_set(x, scfg, cfg.batch_size, fs=fs, window_s=win, channels=chans)
    else:
        rng = np.random.default_rng(cfg.seed + 1)
        n = min(len(x_train), cfg.calib_windows)
        x = x_train[np.sort(rng.choice(len(x_train), n, replace=False))]
        warnings = check_calibration_set(x, scfg, cfg.batch_size)
    for w in warnings:
        if log:
            log("warning: " + w)
    return x, warnings


def quality_targets(task_out_units: np.ndarray, y: np.ndarray, spec, cfg: QuantizeConfig,
                    sqi: np.ndarray | None = None) -> np.ndarray:
    """Target of the quality head: 1 = trust the window.

    Poor when the teacher's error on the first regression output exceeds `quality_err` (the window
    is hard even for the big model) and/or the quality index is <= 0.5 (`quality_label`). Smoothed to
    0.1 / 0.9 so the logit stays bounded (|logit| ~ 2.2) and the int8 output scale it shares with the
    task output stays fine."""
    col = spec.regression[0]
    poor = np.zeros(len(y), bool)
    if cfg.quality_label in ("teacher_error", "both"):
        poor |= np.abs(task_out_units[:, col] - y[:, col]) > cfg.quality_err
    if cfg.quality_label in ("sqi", "both") and sqi is not None:
        poor |= np.asarray(sqi) <= 0.5
    return np.where(poor, 0.1, 0.9).astype(np.float32)


def teacher_skill(t_path) -> dict | None:
    """The fine-tuning run's verdict against the trivial predictor (its metrics.json "skill" block: metric, model,
    reference, difference and CI, skill true / false), or None when the teacher has no run folder beside it. It
    travels into the student's checkpoint and the export's metadata, so that predict and bench can say when a
    model never beat the trivial predictor. A value the fine-tune could not compute (a NaN, written as null) is
    None (`core.metrics.skill_line` prints either as nan)."""
    p = Path(t_path).parent / "metrics.json"
    try:
        s = read_json(p)["skill"]["skill"]
        kept = {k: s[k] for k in ("metric", "model", "reference", "diff", "diff_ci95", "skill")}
        return {**kept, **{k: s[k] for k in ("better", "p", "subjects") if k in s}}   # (older runs: without them)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def teacher_out_of_fold(t_path, data, te: np.ndarray, task: str, spec) -> dict | None:
    """The teacher's honest (out-of-fold) metric on our held-out windows, from the fine-tuning run's
    `oof_predictions.npz` (next to its model.pt), matched window by window on (record_id, t0)."""
    from sqtool.core.metrics import task_metrics

    p = Path(t_path).parent / "oof_predictions.npz"
    rid, t0 = getattr(data, "record_ids", None), getattr(data, "t0", None)
    if not p.is_file() or rid is None or t0 is None:
        return None
    z = load_run_npz(p)                             # a torn file: one line naming it and the resume command
    try:
        lookup = {(str(r), round(float(t), 3)): i for i, (r, t) in enumerate(zip(z["record_ids"], z["t0"]))}
        pred, y = z["pred"], z["y"]
    except (KeyError, ValueError, TypeError):
        return None
    idx = [lookup.get((str(rid[i]), round(float(t0[i]), 3))) for i in te]
    if not idx or any(i is None for i in idx) or not np.all(np.isfinite(pred[idx])):
        return None
    m = task_metrics(task, y[idx][:, :spec.n_task], pred[idx][:, :spec.n_task], spec.names[:spec.n_task])
    return {"metrics": m, "windows": len(idx), "source": str(p)}


def window_sqi(x_ppg: np.ndarray, fs: float) -> np.ndarray:
    """Per-window quality index (`sqtool.data.quality.quality_score`) of the PPG windows (W, T).

    The windows are band-passed and normalised; the index is scale-free (template correlation,
    spectral concentration, kurtosis, zero crossings, flat/clipped runs), so it reads them as well as
    raw PPG. The accelerometer term is left out: it needs raw acc (gravity) which normalisation removes.
    """
    from sqtool.data.quality import quality_score

    return np.asarray(quality_score(np.asarray(x_ppg, np.float64), fs), np.float32)


# ----------------------------------------------------------------------------- the pipeline

def quantize(cfg: QuantizeConfig, data=None, log=None, resume_dir: str | Path | None = None) -> Path:
    """Run the whole stage (`quantize_run`); returns the run dir."""
    return quantize_run(cfg, data, log, resume_dir)[0]


@releases_run_dirs
@at_cfg_threads          # at cfg.threads; the caller's torch thread count comes back
def quantize_run(cfg: QuantizeConfig, data=None, log=None, resume_dir: str | Path | None = None,
                 epoch_lines: bool = True) -> tuple[Path, dict]:
    """Run the whole stage; `data` (a TaskData) overrides loading (tests, benchmarks). Returns the run dir and
    its metrics (metrics.json). `epoch_lines`: the float student's and QAT's per-epoch lines through `log` too. `resume_dir`: continue that run after a kill: its student_float.pt is reused
    when its key (config, teacher, training data) matches, and calibration + QAT are redone (QAT is seeded on
    its own, so the result equals an uninterrupted run's)."""
    import torch

    from sqtool.compress import distill as D
    from sqtool.compress import qat as Q
    from sqtool.compress import report as R
    from sqtool.models import create_model, load_model
    from sqtool.models.quant import get_preset
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.core.metrics import primary_metric

    say = log or (lambda s: None)
    per_epoch = log if epoch_lines else None
    get_preset(cfg.preset)                                               # unknown preset -> error now
    if cfg.estimate_from and float(cfg.heldout_fraction) != 0.0:
        final_fit(cfg, "", None)                                          # its one line, before the teacher is read
    cfg = dataclasses.replace(cfg, epochs=cfg.epochs or TIME_EPOCHS,     # 0 / None = the time-domain defaults
                              alpha=TIME_KD if cfg.alpha is None else cfg.alpha)
    for k in ("epochs", "batch_size"):
        if getattr(cfg, k) < 1:
            raise SqtoolError(f"--{k.replace('_', '-')} must be >= 1")
    if cfg.qat_epochs < 0:
        raise SqtoolError("--qat-epochs must be >= 0")
    if cfg.quality_label not in ("teacher_error", "sqi", "both"):
        raise SqtoolError(f"--quality-label must be teacher_error, sqi or both, got '{cfg.quality_label}'")
    if not 0.0 <= cfg.stretch < 0.5:
        raise SqtoolError(f"--stretch must be in [0, 0.5), got {cfg.stretch}")
    if not 0.0 <= cfg.alpha <= 1.0:
        raise SqtoolError(f"--alpha must be in [0, 1], got {cfg.alpha}")

    # 1-2. teacher, student cfg, budget -------------------------------------------------------------
    teacher, tcfg, t_sha, t_path, cfg = load_teacher(cfg)              # cfg.task, max_records: the teacher's
    regression_task = any(u not in D.CLASS_UNITS for u in tcfg.units[:len(tcfg.outputs)])
    scfg = D.student_cfg_from_teacher(tcfg, cfg.student, tuple(cfg.channels) or tuple(tcfg.channels),
                                      quality_head=cfg.quality_head and regression_task,
                                      width_mult=cfg.width_mult, depth_delta=cfg.depth_delta)
    instead = D.stand_in(tcfg, cfg.student)            # (the default, why not) when another student stands in
    choice = f"{scfg.name}, not the default {instead[0]}: {instead[1]}" if instead else None
    if choice:
        say(f"student {choice}")
    budget = check_budget(scfg, cfg, say, budget_of=instead[0] if instead else None)
    spec = D.output_spec(scfg)
    ch_idx = D.channel_index(scfg, tcfg)
    final = final_fit(cfg, str(t_path), getattr(teacher, "sq_train_cfg", None))   # every subject, none evaluated
    estimate = load_estimate(cfg, scfg.name, getattr(teacher, "sq_train_cfg", None) or {}, spectral=False)

    # 3. data and subject split ---------------------------------------------------------------------
    ds = None                                          # the dataset file --data names (its split), if any
    if data is None:
        from sqtool.core import resolve_data_root
        from sqtool.data.tasks import load_task
        from sqtool.data.dataset_tasks import dataset_of
        if not cfg.data_root:                          # the teacher's own data (a dataset file, a root, synthetic)
            seen = (getattr(teacher, "sq_train_cfg", {}) or {}).get("data_root")
            cfg = dataclasses.replace(cfg, data_root=seen or None)
        ds = dataset_of(cfg.data_root)                 # a dataset.yaml or a built-in name
        root = cfg.data_root if cfg.data_root == "synthetic" or ds else resolve_data_root(cfg.data_root)
        say(f"loading task '{cfg.task}' from {root or 'synthetic'} ...")
        data = load_task(cfg.task, root, scfg, max_records=cfg.max_records or None, seed=cfg.seed)
    x_all = np.asarray(data.x, np.float32)
    have = list((getattr(data, "meta", {}) or {}).get("channels") or [])
    if have and have != list(scfg.channels) and x_all.ndim == 3 and x_all.shape[1] == len(have):
        missing = [c for c in scfg.channels if c not in have]
        if missing:
            raise SqtoolError(f"task windows have channels {have}; the student needs {missing} too")
        x_all = np.ascontiguousarray(x_all[:, [have.index(c) for c in scfg.channels]])   # (N, C', T)
    if x_all.ndim != 3 or x_all.shape[1:] != tuple(scfg.input_shape):
        raise SqtoolError(f"task windows have shape {x_all.shape[1:]}; the student expects {tuple(scfg.input_shape)}")
    y_all = np.asarray(data.y, np.float32).reshape(len(x_all), -1)
    groups = np.asarray(data.groups).astype(str)
    meta = getattr(data, "meta", None) or {}
    split = file_split(ds, meta=meta)                  # read with the task data, once
    held, in_teacher = split_subjects(groups, cfg, teacher, t_path, split)
    test = np.isin(groups, held)
    tr, te = np.flatnonzero(~test), np.flatnonzero(test)
    synthetic = str((getattr(data, "meta", {}) or {}).get("data_root", "")) == "synthetic"
    x_cal, cal_warnings = load_calibration(cfg, scfg, x_all[tr], say)
    say(f"{len(tr)} training windows, {len(te)} held-out windows (subjects {', '.join(held)})" if not final else
        f"final fit: {len(tr)} training windows of every subject ({len(set(groups))}), none held out")
    check_covers(estimate, groups.tolist())
    one_class = heldout_one_class(cfg.task, y_all[te])
    if one_class:
        say("warning: " + one_class)

    resume = resume_dir is not None
    run_dir = Path(resume_dir) if resume else make_run_dir("quantize", scfg.name, cfg.out, force=cfg.force)
    if not resume:
        save_config(run_dir, cfg, command="quantize")               # what --resume reads after a kill
    tlog = TrainLog(run_dir, FINETUNE_COLUMNS, fresh=not resume, tensorboard=cfg.tensorboard)     # RUN/log.csv
    set_seed(cfg.seed)

    # 4. teacher outputs (cached) -------------------------------------------------------------------
    cache = Path(cfg.teacher_cache) if cfg.teacher_cache else run_dir / "teacher_cache.npz"
    tc = D.teacher_outputs(teacher, t_sha, x_all, ch_idx, cache, write=False)   # written below, once not refused
    t_units = D.denormalise(tc["out"], spec)
    y_norm = D.normalise_targets(y_all, spec)
    q_target, sqi = None, None
    if spec.quality is not None:
        if cfg.quality_label != "teacher_error":
            sqi = window_sqi(x_all[:, list(scfg.channels).index("ppg") if "ppg" in scfg.channels else 0], scfg.fs)
        q_target = quality_targets(t_units, y_all, spec, cfg, sqi)
        say(f"quality head: {float(np.mean(q_target[tr] < 0.5)):.0%} of training windows labelled poor "
            f"({cfg.quality_label})")

    fit_cfg = D.FitCfg(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed,
                       alpha=cfg.alpha if cfg.distill else 0.0, temperature=cfg.temperature,
                       feature_weight=cfg.feature_weight if cfg.distill else 0.0,
                       quality_weight=cfg.quality_weight, stretch=cfg.stretch,
                       weight_decay=cfg.weight_decay)

    # 5. float student (reused on --resume when its key matches) -----------------------------------
    from sqtool.compress.quantize_hr import float_inputs, float_key, reusable_float_student
    from sqtool.core.changes import recording_shas
    fkey = float_key(cfg, t_sha, (x_all[tr], y_norm[tr], tc["out"][tr],
                                  q_target[tr] if q_target is not None else np.zeros(0)))
    quality = {"quality": q_target[tr]} if q_target is not None else {}
    inputs = float_inputs(cfg, (Path(t_path).resolve(), t_sha), meta.get("dataset_files"), held,
                          recording_shas(np.asarray(getattr(data, "record_ids", groups))[tr], x=x_all[tr], y=y_all[tr],
                                         teacher=tc["out"][tr], **quality), meta.get("record_files"))
    common = dict(train_cfg=to_dict(cfg), teacher_sha256=t_sha, teacher_path=str(Path(t_path).resolve()),
                  data={"heldout_subjects": held, "task": cfg.task, "synthetic": synthetic},
                  teacher_skill=teacher_skill(t_path))
    fpath = run_dir / "student_float.pt"
    saved = reusable_float_student(fpath, fkey, resume, inputs)   # changed data refused: no file written yet
    D.save_teacher_cache(cache, tc, t_sha)
    if cfg.teacher_cache and cache.resolve() != (run_dir / "teacher_cache.npz").resolve():
        atomic_write_bytes(run_dir / "teacher_cache.npz", cache.read_bytes())
    say(f"teacher outputs {'reused from' if tc['reused'] else 'computed into'} {cache}")
    reused = saved is not None
    if reused:
        student = load_model(saved)
        f_hist = {"history": saved.get("history") or [], "seconds_per_epoch": saved.get("seconds_per_epoch")}
        say(f"float student reused from {fpath}")
    else:
        torch.manual_seed(cfg.seed)
        student = create_model(scfg)
        proj = D.make_projector(student.out_features, tc["feat"].shape[1], cfg.seed) if fit_cfg.feature_weight else None
        say(f"float student {scfg.name}: {budget['static']['params']:,} params, "
            f"{budget['static']['macs']:,} MACs/window")
        f_hist = D.fit(student, x_all[tr], y_norm[tr], spec, fit_cfg, tc["out"][tr] if cfg.distill else None,
                       tc["feat"][tr], q_target[tr] if q_target is not None else None, proj, per_epoch,
                       rows=start_fit(tlog, "distill"))
        save_checkpoint(fpath, kind="student_float", model_cfg=scfg.to_dict(),
                        state_dict=student.state_dict(), history=f_hist["history"], float_key=fkey,
                        float_inputs=inputs, seconds_per_epoch=f_hist.get("seconds_per_epoch"), **common)
    torch.manual_seed(cfg.seed + 1)                       # QAT seeded on its own: the same with or without resume

    # 6. fold BN, calibrate, QAT --------------------------------------------------------------------
    q = Q.quant_twin(student, cfg.preset)
    Q.calibrate(q, x_cal, cfg.batch_size)
    out_range = Q.widen_output_range(q, spec, y_norm[tr])
    if out_range["threshold"] > out_range["calibrated_threshold"]:
        say(f"int8 output range widened from +-{out_range['calibrated_threshold']:.2f} to "
            f"+-{out_range['threshold']:.2f} (normalised units) to cover the training labels and a logit of "
            f"+-{Q.LOGIT_REACH:g}; held during QAT"
            + "".join(f"; one int8 step = {v:.3g} {u} of {k}" for (k, v), u in
                      zip(out_range["step"].items(), [spec.units[i] for i in spec.regression])))
    m_ptq = None if final else R.evaluate(cfg.task, R.predict_all(q, x_all[te]), y_all[te], spec)   # before QAT
    say(f"calibrated {len(x_cal)} windows; QAT {cfg.qat_epochs} epochs at lr {cfg.qat_lr:g}")
    q_cfg = dataclasses.replace(fit_cfg, epochs=cfg.qat_epochs, lr=cfg.qat_lr, feature_weight=0.0)
    q_rows = start_fit(tlog, "qat")                       # an earlier try's QAT rows go, with or without QAT now
    q_hist = D.fit(q, x_all[tr], y_norm[tr], spec, q_cfg, tc["out"][tr] if cfg.distill else None, None,
                   q_target[tr] if q_target is not None else None, None, per_epoch, rows=q_rows) if cfg.qat_epochs \
        else {"history": [], "seconds_per_epoch": None}
    tlog.close()                                          # the last epoch trained
    qcfg = q.cfg
    from sqtool.data.record import subject_key         # provenance for the bench's seen-subjects warning
    ds_name = str((getattr(data, "meta", {}) or {}).get("dataset") or ("synthetic" if synthetic else "data"))
    save_checkpoint(run_dir / "model.pt", kind="student_int8", model_cfg=qcfg.to_dict(), state_dict=q.state_dict(),
                    history=q_hist["history"], float_checkpoint="student_float.pt",
                    heldout_subjects=sorted(subject_key(ds_name, s) for s in held),
                    train_subjects=sorted({subject_key(ds_name, s) for s in groups[tr]}),
                    dataset_layouts=dict((getattr(data, "meta", {}) or {}).get("dataset_layouts") or {}), **common)

    if final:                                          # no held-out window: the estimate run's figures instead
        return run_dir, time_final_fit(run_dir, cfg, scfg, tcfg, t_path, t_sha, data, groups, x_all, y_all, estimate,
                                       budget, f_hist, q_hist, choice, ds_name, synthetic, cal_warnings)

    # 7. evaluate on the same held-out windows ------------------------------------------------------
    metric = primary_metric(cfg.task)
    out_t = tc["out"][te]
    out_f = R.predict_all(student, x_all[te])
    out_q = R.predict_all(q, x_all[te])
    m_t = R.evaluate(cfg.task, out_t, y_all[te], spec)
    t_oof = teacher_out_of_fold(t_path, data, te, cfg.task, spec)
    t_train = getattr(teacher, "sq_train_cfg", {}) or {}
    note = heldout_note(in_teacher, str(t_path))           # a WARNING line on stdout by the CLI (print_results)
    teacher_notes = [note] if note else []
    if in_teacher is not False and t_train.get("final_fit") and not t_train.get("max_records"):
        fitted = ("the teacher's model.pt was fitted on all subjects of its task data, held-out subjects included: "
                  "its held-out metric is optimistic and the student's is not independent of them; for an honest "
                  "comparison use per-fold teachers (benchmarks/compress_hr.py)"
                  + (" or the teacher's out-of-fold metric reported next to it" if t_oof else ""))
        say("warning: " + fitted)
        teacher_notes.append(fitted)
    m_f = R.evaluate(cfg.task, out_f, y_all[te], spec)
    m_q = R.evaluate(cfg.task, out_q, y_all[te], spec)
    outputs = spec.names[:spec.n_task]
    from sqtool.data.classic import classic_oof
    c_out, c_name = classic_oof(cfg.task, data, [(tr, te)])  # its one fitted threshold (af) on the training subjects
    skill = R.heldout_skill(cfg.task, y_all[tr][:, :spec.n_task], y_all[te][:, :spec.n_task], groups[te],
                            {k: D.denormalise(o, spec) for k, o in (("teacher", out_t), ("student_float", out_f),
                                                                     ("student_int8", out_q))},
                            outputs, seed=cfg.seed, classic=(None if c_out is None else c_out[te], c_name),
                            **_sources(data, tr, te))
    agree = np.abs(D.denormalise(out_q, spec) - D.denormalise(out_f, spec))
    rel = None if not m_t.get(metric) else (m_f[metric] - m_t[metric]) / m_t[metric]
    metrics = {
        "task": cfg.task, "primary_metric": metric, "preset": cfg.preset, "synthetic": synthetic,
        "heldout_subjects": held, "heldout_windows": int(len(te)), "train_windows": int(len(tr)),
        "heldout_in_teacher": in_teacher, "heldout_note": note, "teacher_heldout_subjects": recorded_heldout(t_train),
        "heldout_one_class": one_class, "units": list(scfg.units[:spec.n_task]),     # the task outputs' (finetune's too)
        "student_choice": choice,
        "skill": skill, "flag": skill["flag"],
        "teacher": {"name": tcfg.name, "path": str(t_path), "sha256": t_sha, "metrics": m_t,
                    "out_of_fold": t_oof,
                    **R.teacher_size(teacher), "cache": {"key": tc["key"], "reused": tc["reused"]}},
        "student": {"name": scfg.name, "fs": scfg.fs, "window_s": scfg.window_s, "channels": list(scfg.channels),
                    "outputs": list(scfg.outputs), "units": list(scfg.units[:len(scfg.outputs)]), "arch": scfg.arch},
        "student_float": {"metrics": m_f, "history": f_hist["history"]},
        "student_int8_calibrated": {"metrics": m_ptq, "note": "BN folded + calibrated, before QAT"},
        "student_int8": {"metrics": m_q, "history": q_hist["history"],
                         "max_abs_diff_vs_float": [float(v) for v in agree.max(axis=0)],
                         "mean_abs_diff_vs_float": [float(v) for v in agree.mean(axis=0)],
                         "activation_scales": Q.activation_scales(q), "output_range": out_range},
        "deltas": {"int8_minus_float": m_q[metric] - m_f[metric],
                   "calibrated_int8_minus_float": m_ptq[metric] - m_f[metric], "float_minus_teacher": m_f[metric] - m_t[metric],
                   "float_vs_teacher_rel": rel},
        "size": R.size_and_cost(scfg, budget["static"]),
        "budget": {"checks": budget["checks"], "over": budget["over"], "of": budget["of"],
                   "layers": budget["static"]["layers"]},
        "sqnr": R.per_layer_sqnr(student, q, x_all[te]),
        "coverage": R.coverage_curve(out_q, y_all[te], spec),
        "coverage_float": R.coverage_curve(out_f, y_all[te], spec),
        "quality_head": None if q_target is None else {
            "label": cfg.quality_label, "teacher_err_threshold": cfg.quality_err,
            "poor_fraction_train": float(np.mean(q_target[tr] < 0.5)),
            "poor_fraction_heldout": float(np.mean(q_target[te] < 0.5))},
        "distill": {"enabled": cfg.distill, "alpha": fit_cfg.alpha, "feature_weight": fit_cfg.feature_weight},
        "calibration": {"windows": int(len(x_cal)), "source": cfg.calib_npz or "training windows"},
        "float_reused": bool(reused),
        "timing": {"float_s_per_epoch": f_hist["seconds_per_epoch"], "qat_s_per_epoch": q_hist["seconds_per_epoch"],
                   "qat_over_float": (q_hist["seconds_per_epoch"] / f_hist["seconds_per_epoch"])
                   if q_hist["seconds_per_epoch"] and f_hist["seconds_per_epoch"] else None},
        "warnings": ([one_class] if one_class else []) + cal_warnings + [f"over budget: {o}" for o in budget["over"]]
        + teacher_notes,
    }
    _save_heldout(run_dir / "heldout.npz", data, te, x_all, y_all, groups, synthetic)
    atomic_write_text(run_dir / "report.md", R.write_report_md(metrics))
    save_config(run_dir, cfg, command="quantize", heldout_subjects=held, student_model_cfg=qcfg.to_dict(),
                teacher_sha256=t_sha)
    from sqtool.core.runs import save_resolved
    save_resolved(run_dir, student=scfg.name, teacher=str(t_path), heldout_subjects=list(held),
                  channels=list(scfg.channels), fs=scfg.fs, data_root=str((getattr(data, "meta", {}) or {}).get("data_root", "")))
    from sqtool.core.progress import training_curve
    training_curve(run_dir, {"float student": [h["loss"] for h in f_hist["history"]],
                             "QAT (int8 twin)": [h["loss"] for h in q_hist["history"]]},
                   ylabel="training loss" + (" (label + distillation)" if cfg.distill else ""),
                   title=f"quantize {scfg.name}")
    write_metrics(run_dir, metrics)                 # last: until it is there, the run reads as unfinished (killed)
    return run_dir, metrics                         # its result line: print_results (stdout)


def time_final_fit(run_dir: Path, cfg, scfg, tcfg, t_path, t_sha, data, groups, x_all, y_all, estimate, budget,
                   f_hist, q_hist, choice, ds_name: str, synthetic: bool, cal_warnings=()) -> dict:
    """A time-domain final fit's metrics.json, report.md, parity.npz (`final_fit.parity_sample`), config and
    training curve: no held-out figure of its own; the --estimate-from run's (said to be an estimate). Returns the
    metrics."""
    from sqtool.compress.final_fit import parity_sample
    from sqtool.core.progress import metric_text, training_curve
    from sqtool.core.runs import save_resolved
    from sqtool.data.record import subject_key
    keys = sorted({subject_key(ds_name, s) for s in groups})
    metrics = {"task": cfg.task, "final_fit": True, "estimate": estimate, "heldout_subjects": [],
               "train_subjects": keys, "train_windows": int(len(x_all)), "heldout_in_teacher": None,
               "heldout_note": None, "synthetic": synthetic, "student_choice": choice, "preset": cfg.preset,
               "teacher": {"name": tcfg.name, "path": str(t_path), "sha256": t_sha},
               "student": {"name": scfg.name, "fs": scfg.fs, "window_s": scfg.window_s, "channels": list(scfg.channels),
                           "outputs": list(scfg.outputs), "units": list(scfg.units[:len(scfg.outputs)]),
                           "arch": scfg.arch},
               "units": list(scfg.units[:len(scfg.outputs)]), "size": None,
               "budget": {"checks": budget["checks"], "over": budget["over"], "of": budget["of"]},
               "warnings": list(cal_warnings) + [f"over budget: {o}" for o in budget["over"]]}
    parity_sample(run_dir, x_all, y_all, cfg.seed)
    lines = [f"# quantize {scfg.name} from {tcfg.name}: a final fit", "",
             f"Trained on every subject ({len(keys)}; `--heldout-fraction 0`), so this run measures no held-out figure."]
    if estimate:
        m, unit = estimate["metrics"], (metrics["units"] or [None])[0]
        pm = m["primary_metric"]
        lines += ["", f"Held-out estimate, from {estimate['run']} (the same recipe with {', '.join(m['heldout_subjects'])} "
                      "held out of its fine-tuning and quantization; measured on that run's models, not on this one): "
                      + ", ".join(f"{k.replace('_', ' ')} {metric_text(cfg.task, pm, m[k]['metrics'].get(pm), unit)}"
                                  for k in ("teacher", "student_float", "student_int8")) + estimate_flag(m) + "."]
    else:
        lines += ["", "No held-out estimate given (`--estimate-from RUN`: the quantize run of this recipe that held "
                      "subjects out): quote that run's figures for this model."]
    atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")
    save_config(run_dir, cfg, command="quantize", heldout_subjects=[], student_model_cfg=scfg.to_dict(),
                teacher_sha256=t_sha)
    save_resolved(run_dir, student=scfg.name, teacher=str(t_path), heldout_subjects=[], channels=list(scfg.channels),
                  fs=scfg.fs, data_root=str((getattr(data, "meta", {}) or {}).get("data_root", "")))
    training_curve(run_dir, {"float student": [h["loss"] for h in f_hist["history"]],
                             "QAT (int8 twin)": [h["loss"] for h in q_hist["history"]]},
                   ylabel="training loss" + (" (label + distillation)" if cfg.distill else ""),
                   title=f"quantize {scfg.name}")
    write_metrics(run_dir, metrics)                 # last, as a held-out run's
    return metrics


def _sources(data, tr, te) -> dict:
    """{source_train, source}: each training / held-out window's dataset where the task data holds several (quality:
    the trivial floor is each source's base rate, as the fine-tune's), else {}."""
    src = (getattr(data, "meta", None) or {}).get("source")
    src = src if isinstance(src, np.ndarray) and len(src) == len(data.y) else None
    return {} if src is None else {"source_train": src[tr], "source": src[te]}


def _save_heldout(path: Path, data, te, x_all, y_all, groups, synthetic: bool) -> None:
    import io
    extra = {}
    for k in ("t0", "record_ids"):
        v = getattr(data, k, None)
        if v is not None and len(v) == len(x_all):
            extra[k] = np.asarray(v)[te] if k == "t0" else np.asarray(v).astype(str)[te]
    buf = io.BytesIO()
    np.savez(buf, x=x_all[te].astype(np.float32), y=y_all[te].astype(np.float32), groups=groups[te],
             synthetic=np.asarray(synthetic), **extra)
    atomic_write_bytes(path, buf.getvalue())
