"""`sqtool quantize` for spectral heart-rate models: distil on the bins, fold BN, calibrate, QAT.

    sqtool quantize --model runs/train/finetune/<hr-spec_teacher_m> --student spec_student_s

1. The teacher (kind teacher_task, family spec_cnn) and its run's out-of-fold logits (`oof_logits.npz`):
   the distillation targets are what the teacher predicted for subjects it had NOT seen, so the student
   learns the teacher's honest distribution (its doubts between the pulse and a motion peak included).
2. The same recordings through the same fixed-point front end; the teacher's held-out subjects (`train finetune`
   records them: its folds, decoder and model.pt never saw them; `--heldout-subjects` may name some of them only)
   are kept out of the student's training for evaluation (`heldout_of`). A teacher that held none out
   (--heldout-fraction 0) or from before they were recorded: the shared rule (`data.heldout`: --heldout-subjects,
   the dataset file's split, else the last `heldout_fraction` of subjects), said in a WARNING line, metrics.json
   `heldout_in_teacher` (True / None = may have) and the export's model card. model.pt carries the fine-tune's
   skill verdict (`teacher_skill`), which predict and bench warn on.
3. Float student: Gaussian-target CE + `alpha` (0.5 by default) x KL(teacher || student) at `temperature`
   on the windows whose teacher argmax is within `kd_gate_bpm` (10) of the truth, labels alone on the rest
   (labels only everywhere with --no-distill); `freq_stretch` of the windows frequency-stretched (teacher
   logits stretched alike), `motion_frac` with an added arm-motion peak (labels only). Then the Brevitas
   twin (BN folded, input scale fixed at 1/127), calibrated, and QAT with the same loss (`compress.hr_qat`).
4. The decoder (`--decoder-on student`, the default): chosen as `sqtool train finetune` chooses the teacher's
   (`hr_bins.select_decoder`: transition, temperature, the interval's mass calibrated to 90 % coverage, the
   confidence half-width), but on the out-of-fold logits of float students: one per `inner_folds` fold of the
   TRAINING subjects, trained as the student is for `inner_epochs` (`hr_bins.out_of_fold_logits`), so the
   interval and confidence are calibrated on the logits they will decode, not on the teacher's sharper ones.
   With `--calibrate-on DATASET` (a few of the training subjects calibrate, e.g. the device you ship on beside
   SP Cup; by default the held-out subjects' dataset when the training data spans several datasets and it has
   training subjects, `hr_options.heldout_calibration`; `all`: every training subject), the interval and
   confidence read those subjects' logits from calibration students instead, one per
   subject (at most 8, `hr_bins.calibration_folds`) trained on every other training subject
   (`--calibration-students subjects`, the default: they err as the shipped student does; the inner-fold
   students saw fewer of the device's subjects and made the interval too wide); the transition and temperature
   are still chosen on the inner folds. If the held-out interval covers < 80 % after calibrating on every
   subject of several datasets (`--calibrate-on all`), the report names the `--calibrate-on` that fixes it.
   `--decoder-on teacher` keeps the teacher run's decoder. The chosen decoder is saved (decoder.json, with a
   key) and reused on --resume.
5. Held-out subjects: the teacher (its out-of-fold logits, its own decoder), the float student and the int8
   twin, decoded by the student's decoder (float forward filter; fixed-point decoder for int8, exactly the
   firmware's). model.pt (student_int8, model_cfg with the decoder), student_float.pt, heldout.npz
   (x = codes / 127 (N, C, F), y, groups), metrics.json, report.md.
6. A final fit for shipping (`--heldout-fraction 0`, from a teacher fine-tuned on every subject): steps 1-4 on every
   subject, no held-out figure; `--estimate-from RUN` (a quantize run of the same recipe whose held-out subjects were
   out of its teacher too: `compress.final_fit.load_estimate`) carries RUN's held-out
   figures as the estimate into metrics.json, report.md and the export's model card, and its --calibrate-on;
   parity.npz (seeded training windows, no subject ids) replaces heldout.npz for export's parity checks.

Library use: `quantize_hr(cfg, teacher_ck)` returns the run dir, `quantize_hr_run(...)` the run dir and its
metrics (as `compress.cli.quantize` / `quantize_run` for time-domain students).

Resume (`sqtool quantize --resume RUN`, `quantize_hr(..., run_dir=RUN)`): student_float.pt carries a key
(`float_key`: sha256 of the config fields that shape the float student, the teacher's sha256 and the training
data with its teacher logits). When the run already holds a student_float.pt with the same key, the float
training is skipped and only calibration + QAT are redone; the final model.pt equals an uninterrupted run's
bit for bit (QAT seeds itself). A student_float.pt with another key is refused (one line naming what changed:
`float_inputs`), never reused.
Before it, the decoder's inner and calibration students keep their out-of-fold logits in decoder_inner/ and
decoder_calibration/ (one file per finished student, under the decoder's key): a run killed while they train
resumes at the next one.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from sqtool.core import (SqtoolError, atomic_save_npz, atomic_write_text, make_run_dir, save_config, set_seed, sha256_file,
                         write_metrics)
from sqtool.core.io import dumps_json, read_json
from sqtool.core.metrics import uncertainty_scores
from sqtool.core.model_cfg import device_fs
from sqtool.compress.final_fit import SPEC_DEFAULTS, check_covers, final_fit, load_estimate, parity_sample
from sqtool.core.runs import at_cfg_threads, load_run_npz, releases_run_dirs
from sqtool.core.trainlog import FINETUNE_COLUMNS, TrainLog, keep_fits, start_fit
from sqtool.data.heldout import heldout_note, recorded_heldout
from sqtool.data.hr_spectra import as_model_input, hr_corpus, with_truth

SPEC_EPOCHS = SPEC_DEFAULTS["epochs"]   # float student epochs when --epochs is not given
SPEC_KD = SPEC_DEFAULTS["alpha"]        # distillation weight (of the gated windows) when --alpha is not given


def truth_summary(y) -> dict:
    """What the reference heart rate of some windows covers, for the model card: {windows, without_truth (NaN: no
    or doubtful reference, never trained on or scored), bpm_p1, bpm_median, bpm_p99 (None without a truth)}."""
    y = np.asarray(y, float).ravel()
    ok = y[np.isfinite(y)]
    q = np.percentile(ok, [1, 50, 99]) if ok.size else [None] * 3
    return {"windows": int(y.size), "without_truth": int(y.size - ok.size),
            **{k: (None if v is None else round(float(v), 1)) for k, v in zip(("bpm_p1", "bpm_median", "bpm_p99"), q)}}


def classic_on_heldout(train: list, test: list, scfg) -> dict | None:
    """The classic spectral baseline (`data.hr_baseline`) on the held-out recordings, its notch width and PPG sensors
    chosen on the training recordings (`NestedBaseline.choose`): {hr: {record id: (W,) BPM, the training mean HR
    where it has no peak yet}, notch_bpm, ppg_sensors, name}; None without held-out recordings or raw records."""
    from sqtool.data.hr_baseline import NestedBaseline, sensor_options
    from sqtool.data.hr_spectra import ppg_sensors
    if not test or any(r.source is None for r in train + test):
        return None
    hr, notch, sensors = NestedBaseline(sensor_options(ppg_sensors(scfg)), scfg.window_s).fit_predict(train, test)
    return {"hr": hr, "notch_bpm": notch, "ppg_sensors": list(sensors),
            "name": "spectral peak with accelerometer subtraction and tracking (data.hr_baseline), notch and sensors "
                    "chosen on the training subjects"}


def _subject_mae(rows: list[dict], key: str) -> dict:
    per = {}
    for r in rows:
        per.setdefault(r["subject"], []).append(np.abs(r[key] - r["y"]))
    return {s: float(np.nanmean(np.concatenate(v))) for s, v in sorted(per.items())}


# config fields that do not change the float student (QAT, export budget, bookkeeping)
_NOT_IN_FLOAT_KEY = ("preset", "qat_epochs", "qat_lr", "calib_windows", "calib_npz", "teacher", "teacher_cache",
                     "allow_over_budget", "max_int8_weights", "max_macs", "out", "force", "tensorboard",
                     "decoder_on", "decoder_rule", "inner_folds", "inner_epochs", "evidence", "calibrate_on",
                     "estimate_from")


def float_key(cfg, t_sha: str, arrays) -> str:
    """sha256 of what the float student depends on: the config, the teacher, the --student-init encoder (its file's
    sha256: a pretraining re-run into the same folder changes it under the same path), the training data."""
    import hashlib
    import json

    from sqtool.core.changes import hash_arrays, keyed_fields
    h = hashlib.sha256()
    c = keyed_fields(cfg, _NOT_IN_FLOAT_KEY)
    h.update(json.dumps(c, sort_keys=True, default=str).encode() + t_sha.encode())
    if getattr(cfg, "student_init", None):               # its encoder's weights, not only its path
        from sqtool.core.checkpoint import checkpoint_sha256
        h.update(checkpoint_sha256(cfg.student_init).encode())
    hash_arrays(h, arrays)
    return h.hexdigest()


def float_inputs(cfg, teacher: tuple[str, str], dataset_files, heldout, recordings: dict, files=None) -> dict:
    """What `float_key` hashes, as the record a refusal names a change from (`core.changes.what_changed`): the
    config fields, the teacher (path, sha256) and the --student-init encoder, the dataset files, the held-out
    subjects, each training recording's hashed windows (`recordings`, with its `files`)."""
    from sqtool.core.changes import inputs_record, keyed_fields
    from sqtool.core.checkpoint import checkpoint_sha256
    ckpts = {"teacher": (str(teacher[0]), teacher[1])}
    if getattr(cfg, "student_init", None):
        ckpts["--student-init checkpoint"] = (cfg.student_init, checkpoint_sha256(cfg.student_init))
    return inputs_record(keyed_fields(cfg, _NOT_IN_FLOAT_KEY), checkpoints=ckpts,
                         dataset_files=dataset_files, heldout=heldout, recordings=recordings, files=files)


def reusable_float_student(fpath: Path, fkey: str, resume: bool, inputs: dict | None = None) -> dict | None:
    """On --resume: the checkpoint of a student_float.pt whose key matches (the caller builds the model from it when
    it needs it: building draws random numbers), None when there is none; a student_float.pt made with another
    config, teacher or data is refused in one line naming what changed (`inputs`: this run's `float_inputs`)."""
    from sqtool.core.changes import resume_refusal
    from sqtool.core.checkpoint import load_checkpoint
    if not (resume and fpath.is_file()):
        return None
    saved = load_checkpoint(fpath, expect_kind="student_float")
    if saved.get("float_key") != fkey:
        raise SqtoolError(resume_refusal(fpath, saved.get("float_inputs"), inputs, "another config, teacher or data"))
    return saved


def student_decoder(cfg, scfg, train: list, make_student, bins: np.ndarray, bcfg, t_logits: dict | None, dpath: Path,
                    dkey: str, resume: bool, say, cal: set | None = None, tlog=None) -> dict | None:
    """The decoder chosen on the float students' out-of-fold logits of the `train` recordings (module docstring,
    step 4; interval and confidence calibrated on the subjects `cal`, None = all: --calibrate-on); None when the
    training data has a single subject (no inner fold: the teacher's decoder stays).
    On --resume a decoder.json with the same key is reused, else each inner / calibration student whose logits
    were saved under the same key (decoder_inner/, decoder_calibration/) is read back, not trained. `tlog`: the run's
    TrainLog, each student trained a fit of it ("inner 1 distill", "calibration 1 distill", ...)."""
    from sqtool.data.tasks import subject_folds
    from sqtool.models.decoder import conf_text, interval_text
    from sqtool.models.hr_bins import (calibration_folds, evidence_args, fit_decoder, out_of_fold_logits,
                                       select_decoder)
    from sqtool.models.hr_options import calibration_text
    if resume and dpath.is_file():
        saved = read_json(dpath)
        if saved.get("key") == dkey:
            say(f"decoder: reused {dpath}")
            return saved["decoder"]
    keys = np.array([r.key for r in train])
    if len(set(keys)) < 2:
        say("decoder: one training subject, no inner fold: the teacher's decoder is kept")
        decoder_fits(tlog)                                                 # none: an earlier try's rows go
        return None
    folds = [set(keys[te]) for _, te in subject_folds(keys, cfg.inner_folds, cfg.seed)]
    cal_logits, cfolds = None, calibration_folds(keys, cal)               # None: every subject calibrates
    cal_students = cfg.calibration_students == "subjects" and cfolds is not None
    decoder_fits(tlog, [student_fit("inner", i) for i in range(len(folds))],       # an earlier try's others go
                 [student_fit("calibration", i) for i, f in enumerate(cfolds) if f & set(cal)] if cal_students else ())
    icfg = replace(bcfg, epochs=cfg.inner_epochs or max(1, bcfg.epochs // 2))
    xs, ys, kd = ([as_model_input(r.x) for r in train], [r.y for r in train],
                  [t_logits[r.record_id] for r in train] if t_logits is not None else None)
    store = dict(key=dkey, log=lambda m: say(f"decoder students, {m}"))    # finished students kept for --resume
    logits = out_of_fold_logits(xs, ys, list(keys), folds, make_student, bins, icfg, kd,
                                store=dpath.parent / "decoder_inner", fit_log=epoch_rows(tlog, "inner"), **store)
    if cal_students:
        cal_logits = out_of_fold_logits(xs, ys, list(keys), cfolds, make_student, bins, icfg, kd, only=set(cal),
                                        store=dpath.parent / "decoder_calibration",
                                        fit_log=epoch_rows(tlog, "calibration"), **store)
        say(f"calibration students: {len(cfolds) - 1} for {len(cal)} calibration subjects, each trained on every "
            "training subject but its own")
    base = fit_decoder([r.y for r in train], scfg.arch["bins_bpm"], scfg.hop_s)
    dec = select_decoder(logits, ys, list(keys), base, rule=cfg.decoder_rule, calibrate_groups=cal,
                         valid=[r.valid for r in train],
                         calibration_logits=cal_logits, **evidence_args(cfg.evidence, [r.x for r in train]))
    atomic_write_text(dpath, dumps_json({"key": dkey, "decoder": dec}, indent=1) + "\n")
    say(f"decoder on the students' out-of-fold logits ({len(folds)} inner folds x {icfg.epochs} epochs): sigma "
        f"{dec['sigma_bpm']:.2f} BPM, temperature {dec['temperature']:g}, emission floor "
        f"{dec.get('emission_floor', 0.0):g}, motion-subtracted PPG weight "
        f"{dec.get('evidence_weight', 0.0):g}, interval {interval_text(dec)} (inner "
        f"coverage {dec['inner_coverage']:.3f} on {dec['inner_calibration_windows']} windows"
        f"{calibration_text(cfg.calibrate_on)}), confidence: {conf_text(dec)}, "
        f"inner MAE {dec['inner_mae']:.2f} (rule {cfg.decoder_rule}; the lowest {dec['inner_mae_min']:.2f})")
    return dec


def student_fit(what: str, i: int) -> str:
    """log.csv's fit of the decoder's student of fold i, `what` "inner" or "calibration": "inner 1 distill"."""
    return f"{what} {i + 1} distill"


def epoch_rows(tlog, what: str):
    """out_of_fold_logits' `fit_log` for the students `what` ("inner", "calibration"): fold i's train_bins `log`
    writes the rows of the fit "<what> <i + 1> distill" of `tlog`, with its held-out recordings' figures (None: no
    log)."""
    if tlog is None:
        return None

    def fit_log(i: int, model, held_out):
        rows = start_fit(tlog, student_fit(what, i), held_out)
        return lambda ep, loss, lr: rows.add(loss, lr, model)
    return fit_log


def decoder_fits(tlog, inner=(), calibration=()) -> None:
    """log.csv's decoder students down to this run's (`core.trainlog.keep_fits`): the rows of an earlier try's
    students that it has no more of (--inner-folds 3, then a resume with 2: "inner 3 distill"; --decoder-on teacher:
    all) dropped, so a resumed run's log is an uninterrupted one's."""
    if tlog is not None:
        keep_fits(tlog, "inner", inner)
        keep_fits(tlog, "calibration", calibration)


def heldout_of(cfg, ck: dict, corpus: list, ds, say=lambda m: None) -> tuple[set[str], bool | None]:
    """(the held-out subject keys of the spectral `corpus`, whether the teacher trained on them: False / True /
    None = not known): `data.heldout.teacher_heldout` (the time-domain quantize's rule too) on the teacher's
    recorded set, --heldout-subjects, the dataset file's split and --heldout-fraction. A dataset file's split.test
    other than the set the teacher held out is a note (`say`): the teacher's set wins, silently before."""
    from sqtool.data.heldout import file_split, teacher_heldout
    from sqtool.data.record import subject_key
    split, recorded = file_split(ds, corpus), recorded_heldout(ck.get("train_cfg"))
    held, in_teacher = teacher_heldout({r.key for r in corpus}, recorded, str(ck["path"]),
                                       names=cfg.heldout_subjects, split=split,
                                       dataset=ds.name if ds else None, fraction=cfg.heldout_fraction)
    if recorded and split is not None and {subject_key(ds.name, s) for s in split} != set(held):
        say(f"note: {ds.path.name}'s split.test ({', '.join(split) or 'none'}) is not the held-out set: teacher "
            f"{ck['path']} held out {', '.join(held)}, and quantize evaluates on those (on others it would score "
            "subjects the teacher trained on)")
    return set(held), in_teacher


def quantize_hr(cfg, ck: dict, log=None, run_dir: str | Path | None = None) -> Path:
    """Run the whole spectral stage (`quantize_hr_run`); returns the run dir."""
    return quantize_hr_run(cfg, ck, log, run_dir)[0]


def recorded_beside(teacher: str, names: list[str], files: dict[str, str]) -> list:
    """The datasets the teacher trained on beside its dataset file, again: a built-in stays its name, another
    dataset file of its own is read from the path the fine-tune recorded (train_cfg "beside_files": {name: path}).
    Such a file no longer there, or that now has another name, is one line: the student would train on other data
    than its teacher."""
    from sqtool.data.dataset_file import load_dataset_file
    out = []
    for name in names:
        if name not in files:
            out.append(name)
            continue
        path = Path(files[name])
        if not path.is_file():
            raise SqtoolError(f"teacher {teacher} was fine-tuned beside {name}, the dataset file {path}, which is not "
                              "there any more: put it back there, or fine-tune the teacher again")
        f = load_dataset_file(path)
        if f.name != name:
            raise SqtoolError(f"teacher {teacher} was fine-tuned beside {path} named {name}; it is named {f.name} "
                              "now: give it its name back, or fine-tune the teacher again")
        out.append(f)
    return out


@releases_run_dirs
@at_cfg_threads          # at cfg.threads; the caller's torch thread count comes back
def quantize_hr_run(cfg, ck: dict, log=None, run_dir: str | Path | None = None) -> tuple[Path, dict]:
    """`cfg` is compress.cli.QuantizeConfig, `ck` the loaded teacher checkpoint. `run_dir` given: resume
    that run (its matching student_float.pt is reused, see the module docstring). Returns the run dir and its
    metrics (metrics.json)."""
    import torch

    from sqtool.compress.cli import teacher_skill, with_teacher_run
    from sqtool.compress.distill import student_for
    from sqtool.compress.hr_qat import int8_logits, qat_bins, qat_cfg
    from sqtool.core import resolve_data_root
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.models import ModelCfg, create_model, get_model_cfg, load_model
    from sqtool.models.decoder import decode_float, decode_int, decoder_cfg
    from sqtool.models.spectral import bin_grid, check_encoder, load_encoder, spectral_budget
    from sqtool.models.hr_bins import (SELECTION_RULES, BinTrainCfg, calibration_folds, evidence_args, kd_gate,
                                      predict_logits, train_bins)
    from sqtool.models.hr_options import (calibration_hint, calibration_subjects, check_calibration_students,
                                          check_train_options, heldout_calibration, named_datasets)

    say = log or (lambda s: None)
    t0 = time.time()
    cfg = with_teacher_run(cfg, ck)                                      # its task and --max-records
    # options first: a bad one costs nothing (no data read, no run folder)
    alpha = SPEC_KD if cfg.alpha is None else float(cfg.alpha)
    if not 0.0 <= alpha <= 1.0:
        raise SqtoolError(f"--alpha must be in [0, 1], got {alpha}")
    check_train_options(cfg)
    check_calibration_students(cfg.calibration_students)
    if cfg.decoder_on not in ("student", "teacher"):
        raise SqtoolError(f"--decoder-on must be student or teacher, got '{cfg.decoder_on}'")
    evidence_args(cfg.evidence, [])                                      # refuses a bad value before any work
    if cfg.decoder_rule not in SELECTION_RULES:
        raise SqtoolError(f"--decoder-rule must be one of {', '.join(SELECTION_RULES)}, got '{cfg.decoder_rule}'")
    if cfg.inner_folds < 0 or cfg.inner_folds == 1 or cfg.inner_epochs < 0:
        raise SqtoolError(f"--inner-folds must be >= 2 (0 = one per subject) and --inner-epochs >= 0, got "
                          f"{cfg.inner_folds} and {cfg.inner_epochs}")
    if not cfg.kd_gate_bpm >= 0.0:
        raise SqtoolError(f"--kd-gate-bpm must be >= 0 BPM (0 = distil every window), got {cfg.kd_gate_bpm}")
    final = final_fit(cfg, ck["path"], ck.get("train_cfg"))   # every subject trained on, none evaluated
    tcfg = ModelCfg.from_dict(ck["model_cfg"])
    student = student_for(tcfg, cfg.student, where=f"teacher {ck['path']}")     # '' = the one reading its channels
    estimate = load_estimate(cfg, student, ck.get("train_cfg") or {}, spectral=True)   # before any data
    if estimate and cfg.calibrate_on and sorted(named_datasets(cfg.calibrate_on)) != sorted(estimate["calibrate_on"]):
        raise SqtoolError(f"--calibrate-on {','.join(cfg.calibrate_on)}: the --estimate-from run calibrated on "
                          f"{','.join(estimate['calibrate_on']) or 'every training subject'}; its figures would "
                          "estimate another interval (leave --calibrate-on out: the final fit takes the run's)")
    scfg = get_model_cfg(student)
    for k in ("channels", "fs", "window_s", "hop_s", "band"):
        if getattr(scfg, k) != getattr(tcfg, k):
            raise SqtoolError(f"student {student} and teacher {tcfg.name} differ in {k}: "
                              f"{getattr(scfg, k)} vs {getattr(tcfg, k)}")
    if list(scfg.arch["bins_bpm"]) != list(tcfg.arch["bins_bpm"]):
        raise SqtoolError(f"student {student} bins {scfg.arch['bins_bpm']} differ from the teacher's "
                          f"{tcfg.arch['bins_bpm']}: distillation on the bins needs one grid")
    if not tcfg.decoder:
        raise SqtoolError(f"teacher {ck['path']} has no decoder (fine-tune it with sqtool train finetune)")
    scfg = scfg.replace(decoder=tcfg.decoder, frontend={**scfg.frontend, **{     # the teacher's sensors (its data's)
        k: v for k, v in (tcfg.frontend or {}).items() if k == "ppg_sensors"}})
    init = None
    if cfg.student_init:                                   # refused here, before any data is read
        from sqtool.core.checkpoint import load_checkpoint
        init = load_checkpoint(cfg.student_init, expect_kind="teacher_pretrain", finished=True)
        check_encoder(scfg, init, where=f"--student-init {cfg.student_init}")
    bins = bin_grid(scfg)
    train_cfg = ck.get("train_cfg") or {}
    root = cfg.data_root or train_cfg.get("data_root") or resolve_data_root(None, required=True)
    datasets = tuple(train_cfg.get("datasets") or ("troika",))
    if (str(root) == "synthetic") != (datasets == ("synthetic",)):
        raise SqtoolError(f"teacher {ck['path']} was trained on {', '.join(datasets)}; --data {root} "
                          "does not hold them")
    from sqtool.data.dataset_file import dataset_layouts
    from sqtool.data.dataset_tasks import dataset_of, hr_corpus_beside
    ds = dataset_of(root)                              # the teacher's dataset.yaml / built-in name
    files = train_cfg.get("beside_files") or {}        # other dataset files of its own, by name: their paths
    if ds is not None:                                 # a teacher of another dataset file: not "beside" this one
        from sqtool.data.dataset_file import builtin_names
        if other := [d for d in datasets if d not in (ds.name, "synthetic", *builtin_names(), *files)]:
            raise SqtoolError(f"teacher {ck['path']} was fine-tuned on {', '.join(other)}, and --data {root} is "
                              f"{ds.name}: give the dataset file it was fine-tuned on, or fine-tune a teacher on "
                              f"{ds.name} first")
    # a layout read under a name of its own (wrist_troika -> troika): the teacher's record, else the file's (an older
    # teacher's run); the int8 checkpoint carries it to export's card (its licence and terms)
    layouts = train_cfg.get("dataset_layouts") or (dataset_layouts([ds]) if ds else {})
    seed = int(train_cfg.get("seed", 0))
    beside = recorded_beside(ck["path"], [d for d in datasets if d != ds.name], files) if ds else []
    corpus = hr_corpus_beside(ds, beside, scfg, say, seed, train_cfg.get("beside_root") or None)[0] if ds else \
        hr_corpus(root, datasets, scfg, log=say, seed=seed)
    if cfg.max_records:                                # the teacher's recordings, unless --max-records says
        corpus = corpus[:cfg.max_records]
    rates = recorded_rates(corpus, ds.name if ds else None,      # the next line's export --device-fs
                           reads_acc=any(c.startswith("acc") for c in scfg.channels))
    keys = sorted({r.key for r in corpus})
    held, in_teacher = heldout_of(cfg, ck, corpus, ds, say)
    train, left = with_truth([r for r in corpus if r.key not in held], scfg.window_s)   # as the fine-tune leaves
    for why in left:                                                                      # them out: no subject
        say(f"note: left out {why}")
    test = [r for r in corpus if r.key in held]
    corpus, keys = train + test, sorted({r.key for r in train + test})
    check_covers(estimate, keys)
    if final:
        say(f"final fit: {len(train)} training recordings of every subject ({len(keys)}), none held out"
            + (f"; held-out estimate from {estimate['run']}" if estimate else ""))
        ship = set(estimate["calibrate_on"]) if estimate else {ds.name} if ds is not None else set()
        cal_default = sorted(ship) if estimate and not cfg.calibrate_on else cfg.calibrate_on
    else:
        say(f"{len(train)} training recordings, held out: {', '.join(sorted(held))}")
        ship, cal_default = {r.dataset for r in test}, cfg.calibrate_on
    # the device shipped on calibrates the interval: the held-out subjects' dataset, a final fit's estimate run's
    # choice, or its own dataset file's (beside built-ins)
    cfg = replace(cfg, calibrate_on=heldout_calibration(cal_default, {r.dataset for r in train}, ship))
    cal = calibration_subjects(train, cfg.calibrate_on)   # refused here, before any network is trained

    oof_path = Path(ck["path"]).parent / "oof_logits.npz"
    t_sha = sha256_file(ck["path"])
    teacher = load_model(ck)
    oof = load_run_npz(oof_path) if oof_path.is_file() else {}
    t_logits = {r.record_id: oof[r.record_id] if r.record_id in oof else predict_logits(teacher, as_model_input(r.x))
                for r in corpus}
    t_held = recorded_heldout(ck.get("train_cfg"))                      # what the teacher's fits never saw
    honest = all(r.record_id in oof or r.key in (t_held or ()) for r in train)
    say(f"teacher logits: {'out-of-fold (from ' + str(oof_path) + ')' if honest else 'final teacher (in-sample)'}"
        + ("; on the held-out subjects, its model.pt's (they were in none of its fits)" if in_teacher is False else ""))
    note = None if final else heldout_note(in_teacher, str(ck["path"]))   # on stdout by the CLI (print_results)

    resume = run_dir is not None
    run_dir = Path(run_dir) if resume else make_run_dir("quantize", student, cfg.out, cfg.force)
    X = np.concatenate([as_model_input(r.x) for r in train])
    Y = np.concatenate([r.y for r in train])
    TL = np.concatenate([t_logits[r.record_id] for r in train])
    kd = alpha if cfg.distill else 0.0
    if kd and cfg.kd_gate_bpm > 0:
        ok = np.isfinite(Y)
        share = float(kd_gate(TL[ok], Y[ok], bins, cfg.kd_gate_bpm).mean()) if ok.any() else 0.0
        say(f"distillation on {100 * share:.0f} % of the training windows (teacher argmax within "
            f"{cfg.kd_gate_bpm:g} BPM of the truth; labels alone on the rest)")
    bcfg = BinTrainCfg(epochs=cfg.epochs or SPEC_EPOCHS, batch_size=cfg.batch_size, kd_weight=kd,
                       kd_temp=cfg.temperature, kd_gate_bpm=float(cfg.kd_gate_bpm), seed=cfg.seed,
                       stretch_frac=float(cfg.freq_stretch),
                       motion_frac=float(cfg.motion_frac), motion_axis_drop=float(cfg.motion_axis_drop),
                       lr_schedule=cfg.lr_schedule)
    fkey = float_key(cfg, t_sha, (X, Y, TL))
    from sqtool.core.changes import arrays_sha
    from sqtool.data.dataset_file import file_record
    inputs = float_inputs(cfg, (Path(ck["path"]).resolve(), t_sha),
                          [file_record(d) for d in ([ds, *beside] if ds else []) if not isinstance(d, str)], held,
                          {r.record_id: {"x": arrays_sha(r.x), "y": arrays_sha(r.y), "teacher": arrays_sha(
                              t_logits[r.record_id])} for r in train},
                          {r.record_id: getattr(r.source, "source", "") for r in train})
    fpath = run_dir / "student_float.pt"
    saved = reusable_float_student(fpath, fkey, resume, inputs)  # a changed teacher, config or data: refused first
    save_config(run_dir, cfg)
    tlog = TrainLog(run_dir, FINETUNE_COLUMNS, fresh=not resume, tensorboard=cfg.tensorboard)     # RUN/log.csv
    from sqtool.core.runs import save_resolved
    save_resolved(run_dir, student=student, teacher=str(ck["path"]), data_root=str(root),
                  heldout_subjects=sorted(held), epochs=cfg.epochs or SPEC_EPOCHS, channels=list(scfg.channels),
                  fs=scfg.fs, alpha=alpha if cfg.distill else 0.0)

    def make_student():
        m = create_model(scfg)
        if init is not None:
            load_encoder(m, scfg, init, where=f"--student-init {cfg.student_init}")
        return m

    whose = "teacher"
    if cfg.decoder_on == "student":
        dkey = (fkey + f":{cfg.inner_folds}:{cfg.inner_epochs}:{cfg.evidence}:conf-calibrated:{cfg.decoder_rule}"
                + (f":calibrate-on={','.join(sorted(cfg.calibrate_on))}" if cal else "")
                + (":calibration-students=subjects" if cfg.calibration_students == "subjects"
                   and calibration_folds([r.key for r in train], cal) is not None else ""))   # only where trained
        dec = student_decoder(cfg, scfg, train, make_student, bins, bcfg, t_logits if kd else None,
                              run_dir / "decoder.json", dkey, resume, say, cal, tlog)
        if dec is not None:
            scfg, whose = scfg.replace(decoder=dec), "student"
    else:
        decoder_fits(tlog)                           # the teacher's decoder: no student of an earlier try's stays
    set_seed(cfg.seed)
    reused = saved is not None
    if reused:
        fstudent = load_model(saved)
        hist = list(saved.get("history") or [])
        say(f"float student {student}: reused {fpath} [{time.time() - t0:.0f} s]")
    else:
        fstudent = make_student()
        rows = start_fit(tlog, "distill")
        hist = train_bins(fstudent, X, Y, bins, bcfg, TL if kd else None, log=lambda ep, loss, lr: rows.add(loss, lr))
        say(f"float student {student}: {bcfg.epochs} epochs, loss {hist[0]:.3f} -> {hist[-1]:.3f} "
            f"[{time.time() - t0:.0f} s]")
        save_checkpoint(fpath, kind="student_float", model_cfg=scfg.to_dict(),
                        state_dict=fstudent.state_dict(), history=hist, teacher=str(Path(ck["path"]).resolve()),
                        teacher_sha256=t_sha, float_key=fkey, float_inputs=inputs)
    fstudent.eval()
    q_rows = start_fit(tlog, "qat")                  # an earlier try's QAT rows go, with or without QAT now
    q = qat_bins(fstudent, X, Y, bins, qat_cfg(bcfg, cfg.qat_epochs), TL if kd else None, preset=cfg.preset,
                 calib=cfg.calib_windows, log=lambda ep, loss, lr: q_rows.add(loss, lr))
    tlog.close()                                     # the last epoch trained
    say(f"int8 twin: calibrated, QAT {cfg.qat_epochs} epochs [{time.time() - t0:.0f} s]")
    save_checkpoint(run_dir / "model.pt", kind="student_int8", model_cfg=q.cfg.to_dict(), state_dict=q.state_dict(),
                    float_checkpoint="student_float.pt", teacher=str(Path(ck["path"]).resolve()),
                    teacher_sha256=t_sha, teacher_skill=teacher_skill(ck["path"]),
                    heldout_subjects=sorted(held), train_subjects=sorted(set(keys) - held), dataset_layouts=layouts)

    if final:
        return run_dir, final_fit_report(run_dir, cfg, scfg, tcfg, student, ck, q, fstudent, hist, kd, whose, keys,
                                         train, Y, estimate, budget=spectral_budget(scfg), t0=t0, rates=rates,
                                         layouts=layouts)
    rows = []
    for r in test:
        x = as_model_input(r.x)
        valid = r.valid
        lq, scale = int8_logits(q, x)
        d8 = decode_int(lq, scfg.decoder, scale, valid, r.x)
        rows.append({"subject": r.key, "record": r.record_id, "y": r.y,
                     "teacher": decode_float(t_logits[r.record_id], tcfg.decoder, valid, r.x)["hr"],
                     "float": decode_float(predict_logits(fstudent, x), scfg.decoder, valid, r.x)["hr"],
                     "int8": d8["hr"], "int8_lo": d8["lo"], "int8_hi": d8["hi"], "int8_conf": d8["conf"],
                     "int8_raw": bins[lq.argmax(1)]})
    classic = classic_on_heldout(train, test, scfg)
    for row in rows if classic else ():
        row["classic"] = classic["hr"][row["record"]]
    per = {k: _subject_mae(rows, k) for k in ("teacher", "float", "int8", "int8_raw") + (("classic",) if classic else ())}
    mean = {k: float(np.mean(list(v.values()))) for k, v in per.items()}
    cat = lambda k: np.concatenate([r[k] for r in rows]) if rows else np.zeros(0)  # noqa: E731
    unc = uncertainty_scores(cat("int8"), cat("int8_lo"), cat("int8_hi"), cat("int8_conf"), cat("y"),
                             span=decoder_cfg(scfg.decoder).conf_error_span)
    budget = spectral_budget(scfg)
    metrics = {"task": "hr", "student": student, "float_reused": reused, "teacher": str(ck["path"]), "teacher_logits":
               "out-of-fold" if honest else "in-sample", "heldout_subjects": sorted(held),
               "heldout_in_teacher": in_teacher, "heldout_note": note,
               "teacher_heldout_subjects": t_held, "dataset_layouts": layouts,
               "mae_bpm": {k: v for k, v in mean.items()}, "per_subject": per,
               "int8_minus_float_bpm": mean["int8"] - mean["float"], "budget": budget,
               "classic_baseline": {k: v for k, v in classic.items() if k != "hr"} if classic else None,
               "logit_scale": float(scale) if rows else None, "decoder": scfg.decoder, "decoder_on": whose,
               "uncertainty_int8": unc, "training_truth": truth_summary(Y), "heldout_truth": truth_summary(cat("y")),
               "recorded_rates": rates, "device_fs": device_fs(scfg.to_dict()), "wall_s": time.time() - t0}
    from sqtool.core.progress import training_curve
    training_curve(run_dir, {"float student": hist, "QAT (int8 twin)": list(getattr(q, "qat_history", []))},
                   ylabel="training loss (soft-label CE" + (" + KD)" if kd else ")"), title=f"quantize {student}")
    xs = np.concatenate([as_model_input(r.x) for r in test]) if test else np.zeros((0, *scfg.input_shape), np.float32)
    atomic_save_npz(run_dir / "heldout.npz", x=xs, y=np.concatenate([r.y for r in test]).astype(np.float32),
             groups=np.concatenate([[r.key] * len(r.y) for r in test]))
    lines = [f"# quantize {student} from {tcfg.name}", "",
             f"Held-out subjects: {', '.join(sorted(held))} (teacher logits {metrics['teacher_logits']}; "
             + ("held out of the teacher's fine-tuning too)." if note is None else f"WARNING: {note})."), "",
             "| subject | teacher (float) | student float | student int8 (firmware decoder) | int8 per-window argmax |"
             + (" classic baseline |" if classic else ""),
             "|---|---|---|---|---|" + ("---|" if classic else "")]
    for s in per["int8"]:
        lines.append(f"| {s} | {per['teacher'][s]:.2f} | {per['float'][s]:.2f} | {per['int8'][s]:.2f} | "
                     f"{per['int8_raw'][s]:.2f} |" + (f" {per['classic'][s]:.2f} |" if classic else ""))
    lines.append(f"| **mean of subjects (BPM)** | {mean['teacher']:.2f} | {mean['float']:.2f} | "
                 f"**{mean['int8']:.2f}** | {mean['int8_raw']:.2f} |" + (f" {mean['classic']:.2f} |" if classic else ""))
    if classic:
        lines += ["", f"Classic baseline: {classic['name']} (notch +-{classic['notch_bpm']:g} BPM, PPG sensors "
                      f"{', '.join(classic['ppg_sensors'])})."]
    lines += ["", f"int8 - float {metrics['int8_minus_float_bpm']:+.3f} BPM; {budget['int8_weights']} int8 weights, "
              f"{budget['macs']} MACs per window."]
    if unc["interval_coverage"] is not None:
        lines += ["", f"Uncertainty of the int8 firmware on the held-out subjects (decoder chosen on the {whose}'s "
                      f"out-of-fold logits, interval mass {float(scfg.decoder.get('interval', 0.9)):g} calibrated for 90 % "
                      f"on the training subjects): the truth lies in the interval on {100 * unc['interval_coverage']:.1f} % "
                      f"of windows; the 80 % most confident windows have MAE {unc['mae_top']:.2f} vs {unc['mae_all']:.2f} "
                      f"BPM ({-100 * unc['gating_reduction']:+.0f} %)"
                      + ("." if unc.get("expected_error_stated") is None else
                         f"; the calibrated confidence states an expected error of {unc['expected_error_stated']:.2f} BPM "
                         f"on average (made: {unc['mae_all']:.2f}).")]
    hint = calibration_hint({r.dataset for r in train}, {r.dataset for r in test}, cfg.calibrate_on,
                            unc["interval_coverage"])
    if hint:
        lines += ["", hint]
    atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")
    write_metrics(run_dir, metrics)        # last: until it is there the run reads as unfinished (export refuses it)
    if hint:                               # the held-out line itself is the CLI's, on stdout (`print_results`)
        say(hint)
    return run_dir, metrics


def recorded_rates(corpus: list, dataset: str | None, reads_acc: bool = True) -> dict:
    """{"ppg": Hz, "acc": Hz, "ppg_sensors": n} of the recordings of `dataset` (a user's dataset file; None: all of
    the corpus) where they share one rate each as recorded (before the front end resamples them), and one count of
    the PPG sensors the model reads (meta["ppg_sensors_recorded"]): the device that made them runs at those rates
    with that many sensors; the run's `next:` export line builds for the rates (--device-fs / --device-acc-fs) and
    export says --ppg-sensors only to a device with fewer sensors than the model reads. A rate or count that
    varies, or a synthetic recording without one, leaves its key out, and so does the accelerometer's for a
    student that does not read it (`reads_acc`: export refuses --device-acc-fs for such a model)."""
    from sqtool.core.model_cfg import ACC_AXES
    seen: dict[str, set] = {"ppg": set(), "acc": set(), "ppg_sensors": set()}
    for r in corpus:
        rec = r.source
        if rec is None or (dataset is not None and r.dataset != dataset):
            continue
        ppg = [c for c in rec.fs if c.startswith("ppg")]
        seen["ppg"].update(float(rec.fs[c]) for c in ppg[:1])
        seen["acc"].update(float(rec.fs[a]) for a in ACC_AXES[:1] if a in rec.fs and reads_acc)
        seen["ppg_sensors"].add((getattr(r, "meta", None) or {}).get("ppg_sensors_recorded"))
    seen["ppg_sensors"] = {int(n) for n in seen["ppg_sensors"] if n} if None not in seen["ppg_sensors"] else set()
    return {k: v.pop() for k, v in seen.items() if len(v) == 1}


def final_fit_report(run_dir: Path, cfg, scfg, tcfg, student: str, ck: dict, q, fstudent, hist, kd, whose: str,
                     keys, train: list, Y, estimate: dict | None, budget: dict, t0: float,
                     rates: dict | None = None, layouts: dict | None = None) -> dict:
    """A final fit's metrics.json and report.md (no held-out subject: its figures are the --estimate-from run's,
    said as such) and its training curve; returns the metrics."""
    from sqtool.compress.hr_qat import int8_logits
    from sqtool.core.progress import training_curve
    scale = int8_logits(q, as_model_input(train[0].x[:1]))[1]
    m = estimate["metrics"] if estimate else {}
    metrics = {"task": "hr", "student": student, "teacher": str(ck["path"]), "final_fit": True,
               "heldout_subjects": [], "train_subjects": list(keys), "heldout_in_teacher": None, "heldout_note": None,
               "teacher_heldout_subjects": recorded_heldout(ck.get("train_cfg")), "mae_bpm": None,
               "per_subject": {}, "estimate": estimate, "budget": budget, "logit_scale": float(scale),
               "decoder": scfg.decoder, "decoder_on": whose, "training_truth": truth_summary(Y),
               "recorded_rates": rates or {}, "device_fs": device_fs(scfg.to_dict()), "dataset_layouts": layouts or {},
               "wall_s": time.time() - t0}
    training_curve(run_dir, {"float student": hist, "QAT (int8 twin)": list(getattr(q, "qat_history", []))},
                   ylabel="training loss (soft-label CE" + (" + KD)" if kd else ")"), title=f"quantize {student}")
    parity_sample(run_dir, np.concatenate([as_model_input(r.x) for r in train]),              # (N, C, F)
                  np.concatenate([r.y for r in train]), cfg.seed)
    lines = [f"# quantize {student} from {tcfg.name}: a final fit", "",
             f"Trained on every subject ({len(keys)}: {', '.join(keys)}; `--heldout-fraction 0`), so this run "
             "measures no held-out figure."]
    if estimate:
        mae, unc = m["mae_bpm"], m.get("uncertainty_int8") or {}        # measured: load_estimate checked
        lines += ["", f"Held-out estimate, from {estimate['run']} (the same recipe with "
                      f"{', '.join(m['heldout_subjects'])} held out of its fine-tuning and quantization; measured on "
                      "that run's models, not on this one): int8 decoded MAE "
                      f"**{mae['int8']:.2f} BPM** (mean of subjects; float student {mae['float']:.2f}, teacher "
                      f"{mae['teacher']:.2f})"
                      + (f", truth in the 90 % interval on {100 * unc['interval_coverage']:.1f} % of the windows"
                         if unc.get("interval_coverage") is not None else "") + "."]
    else:
        lines += ["", "No held-out estimate given (`--estimate-from RUN`: the quantize run of this recipe that held "
                      "subjects out): quote that run's figures for this model."]
    lines += ["", f"{budget['int8_weights']} int8 weights, {budget['macs']} MACs per window; decoder chosen on the "
                  f"{whose}'s out-of-fold logits of the training subjects."]
    atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")
    write_metrics(run_dir, metrics)        # last, as a held-out run's
    return metrics


__all__ = ["quantize_hr", "quantize_hr_run"]
