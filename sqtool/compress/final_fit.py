"""A final fit for shipping: `sqtool quantize --heldout-fraction 0 --estimate-from RUN`.

    estimate = load_estimate(cfg, student, teacher_train_cfg, spectral=True)   # None without --estimate-from
    parity_sample(run_dir, x, y, seed)                                          # -> run_dir/parity.npz

The runs that hold subjects out measure a recipe; the model to ship should not lose those subjects. A final fit
trains the student (spectral or time-domain) on every subject, from a teacher fine-tuned on every subject too
(`train finetune --heldout-fraction 0`), and measures no held-out figure of its own. `--estimate-from RUN` names the
quantize run of the same recipe that held subjects out: its held-out figures are carried as the final fit's
estimate (metrics.json `estimate`, report.md, the last line, an export's model card), said to be an estimate, not a
measurement of this model. `load_estimate` refuses in one line what would make them another model's figures, or
none: RUN of another recipe (`RECIPE` / `TIME_RECIPE`, compared resolved; the teacher's fine-tune by
`TEACHER_RECIPE` from both checkpoints), RUN whose held-out subjects were in its own teacher, RUN without a measured
held-out figure. Pretrained inits are compared by whether one is given: their weights are data, as a teacher's are.
A final fit writes parity.npz (seeded training windows with their truth, no subject ids), which export checks its
artifacts on in place of heldout.npz.
"""
from __future__ import annotations

from pathlib import Path

from sqtool.core import SqtoolError
from sqtool.core.io import PARITY_WINDOWS, parity_sample, read_json
from sqtool.core.metrics import QUANTIZE_MODELS

# the options that make a recipe: the --estimate-from run must match it in each (data, held-out subjects,
# calibration datasets, threads and folders may differ)
COMMON = ("student", "preset", "distill", "alpha", "temperature", "epochs", "qat_epochs", "batch_size", "calib_windows",
          "seed", "max_records")
RECIPE = COMMON + ("student_init", "kd_gate_bpm", "freq_stretch", "motion_frac", "motion_axis_drop", "lr_schedule",
                   "decoder_on", "evidence", "decoder_rule", "calibration_students", "inner_folds", "inner_epochs")
TIME_RECIPE = COMMON + ("fs", "channels", "width_mult", "depth_delta", "quality_head", "feature_weight",
                        "quality_weight", "quality_label", "quality_err", "stretch", "lr", "weight_decay", "qat_lr")
TEACHER_RECIPE = ("task", "model", "mode", "channels", "fs", "window_s", "hop_s", "epochs", "batch_size", "lr",
                  "weight_decay", "folds", "seed", "datasets", "max_records", "label_fraction", "calibrate_on",
                  "freq_stretch", "motion_frac", "motion_axis_drop", "lr_schedule", "final_fit", "init")
PATHS = ("student_init", "init")            # compared by whether one is given (`_same`)
# what --epochs 0 / --alpha None resolve to on each quantize path: the one place they are set (quantize_hr's SPEC_EPOCHS
# / SPEC_KD and compress.cli's TIME_EPOCHS / TIME_KD read them), so the recipe check resolves as the paths do
SPEC_DEFAULTS = {"epochs": 60, "alpha": 0.5}
TIME_DEFAULTS = {"epochs": 20, "alpha": 0.7}
SPECTRAL_KEYS = ("heldout_subjects", "heldout_in_teacher", "mae_bpm", "per_subject", "int8_minus_float_bpm",
                 "uncertainty_int8", "heldout_truth")       # what a spectral final fit carries of its estimate run
TIME_KEYS = ("task", "primary_metric", "heldout_subjects", "heldout_in_teacher", "heldout_windows", "units", "flag",
             "heldout_one_class", "skill", "coverage", "quality_head")    # what the export's model card quotes


def final_fit(cfg, teacher: str, teacher_train_cfg: dict | None) -> bool:
    """Whether `cfg` asks for a final fit (--heldout-fraction 0); one line for --estimate-from without it, and for a
    final fit from a teacher that held subjects out (its student would train on subjects the teacher never saw)."""
    from sqtool.data.heldout import recorded_heldout
    final = float(cfg.heldout_fraction) == 0.0
    if cfg.estimate_from and not final:
        raise SqtoolError("--estimate-from goes with --heldout-fraction 0 (a final fit on every subject): a run that "
                          "holds subjects out measures its own held-out figures")
    held = recorded_heldout(teacher_train_cfg) if final else None
    if held:
        raise SqtoolError(f"--heldout-fraction 0 (a final fit on every subject): teacher {teacher} held out "
                          f"{', '.join(held)}; fine-tune it on every subject too (train finetune --heldout-fraction 0)")
    return final


def check_covers(estimate: dict | None, keys) -> None:
    """One line when the estimate run's held-out subjects are not all among `keys`, this run's subjects."""
    missing = sorted(set(map(str, ((estimate or {}).get("metrics") or {}).get("heldout_subjects") or []))
                     - set(map(str, keys)))
    if missing:
        raise SqtoolError(f"--estimate-from {estimate['run']}: its held-out subjects {', '.join(missing)} are not in "
                          "this run's data: the final fit would not have trained on them")


def load_estimate(cfg, student: str, teacher_train_cfg: dict, spectral: bool) -> dict | None:
    """A final fit's held-out estimate: {run, calibrate_on, metrics} of the --estimate-from quantize run (module
    docstring); None without --estimate-from. `teacher_train_cfg`: this run's teacher's train_cfg."""
    import yaml

    from sqtool.core.checkpoint import load_checkpoint
    if not cfg.estimate_from:
        return None
    run = Path(cfg.estimate_from)
    run = run.parent if run.is_file() else run
    where = f"--estimate-from {run}"
    try:
        m = read_json(run / "metrics.json")
        c = (yaml.safe_load((run / "config.yaml").read_text()) or {}).get("config") or {}
    except (OSError, ValueError, AttributeError, yaml.YAMLError) as e:
        raise SqtoolError(f"{where}: not a quantize run folder (metrics.json, config.yaml: {type(e).__name__})")
    kind = "spectral heart-rate" if spectral else f"time-domain {cfg.task}"
    ours = isinstance(m.get("mae_bpm"), dict) if spectral else (m.get("task") == cfg.task and "student_int8" in m)
    if not ours or not m.get("heldout_subjects"):
        raise SqtoolError(f"{where}: not a {kind} quantize run with held-out subjects")
    if m.get("heldout_in_teacher") is not False:
        raise SqtoolError(f"{where}: its held-out subjects were not held out of its teacher's fine-tuning too (a "
                          "teacher that held none out, or from before they were recorded): its figures are not "
                          "held-out; fine-tune the teacher holding them out (train finetune's default) and quantize it")
    if m.get("heldout_one_class"):
        raise SqtoolError(f"{where}: its held-out figures are not a measure of skill ({m['heldout_one_class']}): "
                          "there is no estimate to carry")
    if not _measured(m, spectral):
        raise SqtoolError(f"{where}: its held-out figure was not measured (no held-out window with a reference): "
                          "there is no estimate to carry")
    theirs_name = m.get("student") if spectral else (m.get("student") or {}).get("name")
    if theirs_name != student:
        raise SqtoolError(f"{where}: its student is {theirs_name}, this run's {student}")
    dflt = SPEC_DEFAULTS if spectral else TIME_DEFAULTS
    there, here = _resolved(c, dflt), _resolved({**vars(cfg), "student": student}, dflt)
    diff = [f"{k} {there.get(k)!r} there, {here.get(k)!r} here" for k in (RECIPE if spectral else TIME_RECIPE)
            if k in there and k != "student" and not _same(there.get(k), here.get(k), path=k in PATHS)]
    t_path = m.get("teacher") if spectral else (m.get("teacher") or {}).get("path")
    try:
        theirs = (load_checkpoint(t_path, expect_kind="teacher_task").get("train_cfg") or {})
    except (SqtoolError, KeyError, TypeError, OSError) as e:
        raise SqtoolError(f"{where}: its teacher {t_path} cannot be read to compare the fine-tune's recipe "
                          f"({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    mine = teacher_train_cfg or {}
    diff += [f"teacher {k} {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in TEACHER_RECIPE
             if (k in theirs or k in mine) and not _same(theirs.get(k), mine.get(k), path=k in PATHS)]
    if diff:
        raise SqtoolError(f"{where}: another recipe ({'; '.join(diff)}): its held-out figures would not estimate "
                          "this model")
    keep = {k: m.get(k) for k in (SPECTRAL_KEYS if spectral else TIME_KEYS)}
    if not spectral:                      # each model's held-out metrics, as its report has them
        keep.update({k: {"metrics": (m.get(k) or {}).get("metrics")} for k, _ in QUANTIZE_MODELS})
    return {"run": str(run.resolve()), "calibrate_on": list(c.get("calibrate_on") or []), "metrics": keep}


def _measured(m: dict, spectral: bool) -> bool:
    if spectral:
        return all((m.get("mae_bpm") or {}).get(k) is not None for k in ("teacher", "float", "int8"))
    pm = m.get("primary_metric")
    return all(((m.get(k) or {}).get("metrics") or {}).get(pm) is not None
               for k in ("teacher", "student_float", "student_int8"))


def _resolved(c: dict, defaults: dict) -> dict:
    """A quantize config's recipe values as the run used them (the defaults 0 / None resolved: --epochs 60 and the
    default are one recipe)."""
    c = dict(c)
    c["epochs"] = int(c.get("epochs") or defaults["epochs"])
    c["alpha"] = defaults["alpha"] if c.get("alpha") is None else float(c["alpha"])
    c["inner_epochs"] = int(c.get("inner_epochs") or max(1, c["epochs"] // 2))
    c["max_records"] = int(c.get("max_records") or 0)
    return c


def _same(a, b, path: bool = False) -> bool:
    """Two config values equal as config.yaml and train_cfg hold them; a `path` (a pretrained init) by whether one
    is given: the pretrained weights are data, as a teacher's are."""
    if path:
        given = lambda v: v not in (None, "", "none")                   # noqa: E731 - finetune's 'none': scratch
        return given(a) == given(b)
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return list(a or []) == list(b or [])
    return a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and float(a) == float(b))


__all__ = ["final_fit", "check_covers", "load_estimate", "parity_sample", "PARITY_WINDOWS", "RECIPE", "TIME_RECIPE", "TEACHER_RECIPE"]
