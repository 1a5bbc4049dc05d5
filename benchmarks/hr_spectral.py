"""Heart rate that beats signal processing: spectral HR-bin models + HMM decoder, subject-held-out.

    nice .venv/bin/python benchmarks/hr_spectral.py --protocol spcup      # SP Cup 2015, LOSO over 12
    nice .venv/bin/python benchmarks/hr_spectral.py --protocol wrist      # wrist_exercise LOSO over 5
                                                                         # (+ cross-dataset both ways)
    ... --protocol wrist --target my_watch/dataset.yaml [--train-also ""]   # YOUR device: LOSO over its
        subjects, trained on SP Cup (--train-also troika, the default; "" = your subjects only) + the other
        subjects, the same nested recipe and baseline: hr_spectral_wrist_<name>[_only].{json,md}
    ... --rows-out A.json (one process per part of the folds), then --merge A.json,B.json: one report
    ... --compare A.json,B.json --against C.json,D.json [--compare ... --against ... per seed]: two arms
        (e.g. pretrained vs --pretrain none) paired by subject, hr_spectral_<protocol>_compare.{json,md}

Per outer fold (one held-out subject), everything is fitted on the training subjects only:
    - front end: the fixed-point firmware front end (data.frontend), the same codes the C computes;
    - inner cross-validation over the training subjects (--inner-folds folds of the teacher, --inner-epochs):
      the teacher's OUT-OF-FOLD logits for every training window, as `sqtool train finetune` writes them;
    - teacher `spec_teacher_m` (float, all training subjects); student `spec_student_s` trained on the ECG
      truth (CE on the bins) + --kd x KL to the teacher's out-of-fold logits (as `sqtool quantize` does: the
      student learns the teacher's honest distribution on subjects it had not seen; only on the windows where
      the teacher's argmax is within --kd-gate-bpm of the truth, labels alone elsewhere), then its Brevitas twin
      QAT'd with the same loss (int8 logits -> fixed-point decoder, i.e. the firmware's numbers up to
      Brevitas-vs-TFLite rounding);
    - training augmentation: --stretch-frac of the windows frequency-stretched (truth x s), the rest shifted,
      and --motion-frac with an added arm-motion peak away from the truth (hr_bins module docstring), for
      every network above;
    - decoder: transition sigma, jump floor and logit temperature chosen on inner out-of-fold logits
      (the truth's own per-hop sigma among the candidates), then, on the same windows, the interval's
      nominal mass (inner coverage of the truth closest to 90 %) and the confidence half-width (best
      ranking of errors) (hr_bins.select_decoder); by default (--decoder-on student, as `sqtool quantize`)
      on the float student's out-of-fold logits (one student per inner fold, hr_bins.out_of_fold_logits),
      --decoder-on teacher on the teacher's (as `sqtool train finetune` chooses the teacher's own); the
      outer networks are the same either way, and the float teacher's column is always decoded with the
      decoder chosen on the teacher's logits; the interval's mass and the confidence are calibrated on the
      training subjects of the held-out subject's dataset (--calibrate-on target, the default: on wrist_exercise
      LOSO the other wrist subjects; SP Cup and cross-dataset folds have no others, so every training subject)
      or on every training subject (--calibrate-on all); when a few subjects calibrate (wrist LOSO), through one
      student per such subject trained on every other training subject (--calibration-students subjects, the
      default, as `sqtool quantize`; inner: the decoder's inner-fold students);
    - classic baseline (data.hr_baseline): its notch width (among NOTCHES) and PPG sensors (the student's
      first sensor alone, or the mean of its frontend ppg_sensors' normalised spectra, as the models read SP Cup's
      ppg and ppg2) chosen together by the training subjects' mean MAE (nested, `hr_baseline.NestedBaseline`), then run on
      the held-out subject.
    - --pretrain real (issue 9, item 4; the default, --pretrain none = scratch): before any of the above, SiamQuality
      pretraining per outer fold: SimSiam on real (good, poor) pairs of front-end spectra mined in the TRAINING
      recordings (`data.pairs.spectral_record_pairs`: quality index on the raw window, nearest poor window of
      the same recording within 300 s; SP Cup's rest vs running, wrist_exercise) plus the unlabeled smartwatch
      recordings with an accelerometer under the data root (the rest of the corpus has none: a PPG + accelerometer
      model cannot read it; --train-also "" without a data root: the training recordings alone), one run per architecture (teacher, student); every teacher (inner and outer) and the student
      start from their pretrained encoder. The held-out subject's recordings are never in the pairs.
    - --teacher resnet1d_siamq_18 (item 3's larger teacher): the SiamQuality 1-D ResNet-18 over time-domain
      windows (PPG + 3-axis acceleration, 25 Hz, 8 s, the spectra's window starts) with one logit per bin of the
      student's grid, SiamQuality-pretrained per outer fold on the time-domain windows of the same real pairs
      (--time-teacher-pretrain none: from scratch), fine-tuned on every window as is plus a time-stretched
      copy, in place of spec_teacher_m everywhere above (inner out-of-fold logits, decoder choice,
      distillation).
Nothing is chosen on the held-out subject; the architectures and epochs are fixed a priori.
Truth: SP Cup BPM0; wrist_exercise ECG-derived reference (doubtful windows are NaN, not scored).
TROIKA's Extra_TrainingData/DATA_S04_T01 (likely test subject S04) is left out of every training set.

Writes benchmarks/results/hr_spectral_<protocol>.json and .md (hr_spectral_wrist_<name>[_only] otherwise; --out),
and the per-window rows as each fold finishes (<stem>_rows.json there, <stem>_partial_<its folds>_rows.json for a
run of some --folds / --parts, or --rows-out; the --merge format; git ignores benchmarks/results/*_rows.json):
per-subject rows (int8, float student, float teacher, baseline; MAE with a 95 % batch-means t-interval over the
subject's windows in one-minute batches: neighbouring windows' errors are not independent), the mean of subjects'
MAE, pooled MAE, wins vs the baseline, int8 - float, uncertainty coverage and
confidence gating (beside the oracle's: the windows with the smallest error kept), and what the decoder choice
does: the same int8 logits decoded through the HMM fitted on the training truth alone (temperature 1, no
evidence).
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shlex
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqtool.compress.hr_qat import int8_logits, qat_bins, qat_cfg  # noqa: E402
from sqtool.core import (DATA_ROOT_HELP, SqtoolError, atomic_save_npz, atomic_write_text,  # noqa: E402
                         data_root_or_exit, resolve_data_root, write_metrics)
from sqtool.core.io import dumps_json, nan_if_none, read_json  # noqa: E402
from sqtool.core.runs import git_sha  # noqa: E402
from sqtool.core.metrics import (block_windows, mae_batch_ci, paired_subject_test,  # noqa: E402
                                 t_interval, uncertainty_scores)
from sqtool.core.model_cfg import ACC_AXES  # noqa: E402
from sqtool.data.tasks import subject_folds  # noqa: E402
from sqtool.data.hr_spectra import as_model_input, hr_corpus, ppg_sensors, record_spectra, record_waveforms  # noqa: E402
from sqtool.data.hr_baseline import NestedBaseline, sensor_options  # noqa: E402
from sqtool.train.augment import stretch_windows  # noqa: E402
from sqtool.models import create_model, get_model_cfg  # noqa: E402
from sqtool.models.decoder import MAX_EMISSION_FLOOR, conf_text, decoder_cfg, interval_text  # noqa: E402
from sqtool.models.spectral import SPECTRAL_FAMILY, bin_grid  # noqa: E402
from sqtool.models.hr_options import (CALIBRATION_STUDENTS, LR_SCHEDULES, TRAIN_OPTIONS,  # noqa: E402
                                      calibration_subjects, heldout_calibration)
from sqtool.models.hr_bins import (BinTrainCfg, calibration_folds, decode_float, decode_int, evidence_args,  # noqa: E402
                                  fit_decoder, kd_gate, SELECTION_RULES, out_of_fold_logits, predict_logits,
                                  select_decoder, train_bins)

DATA = ROOT.parent / "shared" / "data"          # main() (and hr_synthetic_pulse) set it from --data-root / $SQTOOL_DATA
WRIST = "wrist_exercise"                # the wrist protocol's default --target


def load_records(datasets):
    """Raw Record objects (for the classic baseline) keyed like the corpus."""
    from sqtool.data.readers import read_dataset
    out = {}
    for ds in datasets:
        for r in read_dataset(DATA / ds, kind=ds):
            out[(ds, str(r.record_id))] = r
    return out


_CLASSIC: dict = {}         # PPG sensor options -> its NestedBaseline: a training record recurs in every fold, its
                            # spectra computed once for every notch


def baseline_sensor_options(model_cfg) -> list[tuple[str, ...]]:
    """The baseline's PPG sensor choices for a model (`hr_baseline.sensor_options` of its front end's sensors)."""
    return sensor_options(ppg_sensors(model_cfg))


def nested_baseline(model_cfg) -> NestedBaseline:
    """The classic baseline of the fine-tune and quantize (`hr_baseline.NestedBaseline`: notch among NOTCHES and PPG
    sensors chosen on the training recordings, each read from its raw record `.source`, rotated copies included) for
    a student's sensors, one per process."""
    options = tuple(baseline_sensor_options(model_cfg))
    if options not in _CLASSIC:
        _CLASSIC[options] = NestedBaseline(options, 8.0)
    return _CLASSIC[options]


def mae(a, y):
    ok = np.isfinite(y) & np.isfinite(a)
    return float(np.abs(a[ok] - y[ok]).mean()) if ok.any() else float("nan")


_PAIRS: dict = {}                       # record -> its spectral (good, poor) pairs: the same in every fold
_WAVE_PAIRS: dict = {}                  # record -> the time-domain teacher's windows of those pairs


@functools.lru_cache(maxsize=1)
def unlabeled_wrist() -> tuple:
    """The unlabeled recordings with an accelerometer (smartwatch) under the data root, for pretraining only (none
    without a data root: --train-also "" on your own dataset needs none)."""
    from sqtool.data.readers import read_dataset
    if DATA is None or not (DATA / "unlabeled").is_dir():
        return ()
    return tuple(r for r in read_dataset(DATA / "unlabeled", kind="unlabeled")
                 if all(c in r.signals for c in ("acc_x", "acc_y", "acc_z")))


def pretrained_encoders(train, args, records, log, tcfg) -> dict:
    """SiamQuality pretraining of this fold (--pretrain real): {model name: checkpoint} of one SimSiam run per
    architecture on the real pairs of the training recordings (+ unlabeled smartwatch recordings); {} = scratch.
    The pairs are mined once, on the student's spectra; a time-domain teacher (--time-teacher-pretrain real)
    pretrains on the same pairs' time-domain windows (its own input at the same window starts)."""
    if args.pretrain == "none":
        return {}
    import tempfile

    from sqtool.core.checkpoint import load_checkpoint
    from sqtool.data.pairs import PairsConfig, spectral_record_pairs
    from sqtool.data.preprocess import at_whole_hz
    from sqtool.train.pretrain import ArrayPairs, PretrainConfig, run_pretrain
    scfg = get_model_cfg(args.student)
    time_teacher = tcfg.family != SPECTRAL_FAMILY and args.time_teacher_pretrain == "real"
    unlabeled = list(unlabeled_wrist())
    raw = [records[(r.dataset, r.record_id)] for r in train] + unlabeled
    spec, wave, groups = ([], []), ([], []), []
    for rec in raw:
        k = (rec.dataset, str(rec.record_id))
        if k not in _PAIRS:
            _PAIRS[k] = spectral_record_pairs(rec, PairsConfig(model=args.student, dtype="float32",
                                                               spectral_overlap=args.pair_overlap == "allow"), scfg)
        p = _PAIRS[k]
        if p["pairs"]:
            spec[0].append(p["x_good"])
            spec[1].append(p["x_poor"])
            groups += [f"{rec.dataset}:{rec.subject}"] * p["pairs"]
            if time_teacher:
                if k not in _WAVE_PAIRS:
                    _WAVE_PAIRS[k] = [record_waveforms(at_whole_hz(rec), p[t], tcfg) for t in ("t_good", "t_poor")]
                wave[0].append(_WAVE_PAIRS[k][0])
                wave[1].append(_WAVE_PAIRS[k][1])
    pairs = {"spectra": ArrayPairs(np.concatenate(spec[0]), np.concatenate(spec[1]), np.array(groups),
                                   desc="real spectral pairs")}
    if time_teacher:
        pairs["time-domain windows"] = ArrayPairs(np.concatenate(wave[0]), np.concatenate(wave[1]), np.array(groups),
                                                  desc="real pairs, time-domain windows")
    runs = {args.teacher: ("spectra", None) if tcfg.family == SPECTRAL_FAMILY else ("time-domain windows", tcfg),
            args.student: ("spectra", None)}                 # teacher first (seeded runs as before)
    out = {}
    for name, (kind, mcfg) in runs.items():
        if kind not in pairs:
            continue
        with tempfile.TemporaryDirectory() as d:
            m = run_pretrain(PretrainConfig(model=name, pairs="in-memory", epochs=args.pretrain_epochs, batch_size=64,
                                            lr=args.pretrain_lr, val_fraction=0.0, progress=False, seed=args.seed),
                             d, pairs=pairs[kind], model_cfg=mcfg)
            out[name] = load_checkpoint(Path(d) / "model.pt", expect_kind="teacher_pretrain")
        log(f"  pretrained {name}: {len(pairs[kind])} real pairs ({kind}) of {len({r.key for r in train})} training "
            f"subjects" + (f" and {len(unlabeled)} unlabeled smartwatch recordings ({DATA / 'unlabeled'})" if unlabeled
                           else "") + f", SimSiam loss {m['first_loss']:.3f} -> {m['final_loss']:.3f} in {m['elapsed_s']:.0f} s")
    return out


def fresh(cfg, encoders: dict):
    """A new model of cfg, its encoder pretrained when this fold has one for it."""
    from sqtool.models.spectral import load_encoder
    from sqtool.train.finetune import init_encoder
    m = create_model(cfg)
    if cfg.name in encoders:
        if cfg.family == SPECTRAL_FAMILY:
            load_encoder(m, cfg, encoders[cfg.name])
        else:
            init_encoder(m, encoders[cfg.name])
    return m


# --teacher resnet1d_siamq_* (issue 9, item 3): the SiamQuality ResNet as a time-domain teacher, one logit per bin
# of the student's grid, on 8 s windows of PPG + accelerometer at 25 Hz (the windows of the spectra, same t0)
TIME_TEACHER = dict(task="hr", fs=25.0, window_s=8.0, hop_s=2.0, channels=("ppg", "acc_x", "acc_y", "acc_z"),
                    norm="zscore", band=(0.5, 4.0), outputs=("hr_logits",), units=("logit",))
STRETCH_ROOM_S = 8.0                    # a time-domain window is read with this much more: stretches up to x2


def teacher_cfg(args):
    """The teacher's ModelCfg: a spectral model as registered, or a time-domain ResNet with an HR-bin head."""
    cfg = get_model_cfg(args.teacher)
    if cfg.family == SPECTRAL_FAMILY:
        return cfg
    if cfg.family != "resnet1d":
        raise SqtoolError(f"--teacher {args.teacher}: a spectral model or a resnet1d_siamq_* (family {cfg.family} "
                          "has no heart-rate-bin head)")
    scfg = get_model_cfg(args.student)
    return cfg.replace(**TIME_TEACHER, arch={**cfg.arch, "bins_bpm": list(scfg.arch["bins_bpm"])},
                       frontend={"ppg_sensors": ppg_sensors(scfg)})


def check_models(args) -> None:
    """A wrong --teacher / --student is one line, before any data is read."""
    try:
        get_model_cfg(args.student)
        teacher_cfg(args)
    except SqtoolError as e:
        raise SystemExit(str(e))


_WAVES: dict = {}                       # (dataset, record) -> the time-domain teacher's long windows


def waveforms(r, tcfg, records) -> np.ndarray:
    key = (r.dataset, r.record_id)
    if key not in _WAVES:
        _WAVES[key] = record_waveforms(records[key], r.t0, tcfg, STRETCH_ROOM_S)    # (W, C, T + room)
    return _WAVES[key]


def teacher_x(r, tcfg, records) -> np.ndarray:
    """What the teacher reads of recording r: its spectra, or its time-domain windows (W, C, T)."""
    if tcfg.family == SPECTRAL_FAMILY:
        return as_model_input(r.x)
    return stretch_windows(waveforms(r, tcfg, records), r.y, tcfg.n_samples, np.random.default_rng(0), frac=0.0,
                           norm=tcfg.norm)[0]


def train_teacher(m, rs, tcfg, bins, args, epochs, records) -> None:
    """Train a teacher on recordings rs. Spectral: the recipe's augmentation (bin_cfg). Time domain: every
    window once as is and once time-stretched (its truth x s, log-uniform 40-210 BPM: the spectral stretch's
    twin), for half the epochs (the same number of steps), no bin shift or motion peak (spectral operations)."""
    y = np.concatenate([r.y for r in rs])
    if tcfg.family == SPECTRAL_FAMILY:
        train_bins(m, np.concatenate([as_model_input(r.x) for r in rs]), y, bins, bin_cfg(args, epochs))
        return
    long = np.concatenate([waveforms(r, tcfg, records) for r in rs])
    x0, _ = stretch_windows(long, y, tcfg.n_samples, np.random.default_rng(args.seed), frac=0.0, norm=tcfg.norm)
    xs, ys = stretch_windows(long, y, tcfg.n_samples, np.random.default_rng(args.seed), frac=1.0, norm=tcfg.norm)
    train_bins(m, np.concatenate([x0, xs]), np.concatenate([y, ys]), bins,
               BinTrainCfg(epochs=max(1, epochs // 2), seed=args.seed, shift_bins=0))


def inner_oof(train, tcfg, bins, args, log, encoders=None, records=None, cal=None):
    """The teacher's out-of-fold logits on the training subjects (inner CV) and the decoder chosen on them
    (interval and confidence calibrated on the subjects `cal`, None = all: `fold_calibration`)."""
    rkeys = np.array([r.key for r in train])
    groups = [set(rkeys[te]) for _, te in subject_folds(rkeys, args.inner_folds, args.seed)]
    oof = {}
    for g in groups:
        tr = [r for r in train if r.key not in g]
        m = fresh(tcfg, encoders or {})
        train_teacher(m, tr, tcfg, bins, args, args.inner_epochs, records)
        for r in train:
            if r.key in g:
                oof[r.record_id] = predict_logits(m, teacher_x(r, tcfg, records))
    return oof, decoder_on(oof, train, tcfg, "teacher", log, args.evidence, args.decoder_rule, cal,
                           args.emission_floors), groups


def fold_calibration(train, test, mode: str) -> set | None:
    """--calibrate-on: all -> None (every training subject calibrates the interval and the confidence); target ->
    the training subjects of the held-out subjects' dataset(s) (wrist_exercise LOSO: the other wrist subjects,
    not SP Cup), or None when the training set has none of them (a cross-dataset run)."""
    if mode == "all":
        return None
    named = heldout_calibration([], {r.dataset for r in train}, {r.dataset for r in test})    # `sqtool quantize`'s rule
    return calibration_subjects(train, named, strict=False)


def decoder_on(logits: dict, train, cfg, whose: str, log, evidence: str = "inner", rule: str = "min",
               cal: set | None = None, emission_floors=(0.0,), cal_logits: dict | None = None) -> dict:
    """The decoder chosen on out-of-fold logits {record: (W, F)} of the training recordings (hr_bins.select_decoder;
    `evidence` (--evidence): inner = the weight of the motion-subtracted PPG spectrum is one of the choices, off =
    0, a number = that weight, fixed; `rule` (--decoder-rule): min | one_se); `cal_logits` {record: (W, F)} of
    the calibration subjects' recordings: what the interval and confidence are calibrated on instead."""
    base = fit_decoder([r.y for r in train], cfg.arch["bins_bpm"], cfg.hop_s)
    dec = select_decoder([logits[r.record_id] for r in train], [r.y for r in train], [r.key for r in train], base,
                         rule=rule, calibrate_groups=cal, emission_floors=emission_floors,
                         valid=[r.valid for r in train],
                         calibration_logits=(None if cal_logits is None else
                                             [cal_logits.get(r.record_id) for r in train]),
                         **evidence_args(evidence, [r.x for r in train]))
    log(f"  decoder (on the {whose}'s out-of-fold logits, inner CV over {len({r.key for r in train})} training "
        f"subjects): sigma {dec['sigma_bpm']:.2f} BPM (truth {base['sigma_bpm']:.2f}), floor {dec['floor']:.0e}, "
        f"temperature {dec['temperature']:g}, emission floor {dec.get('emission_floor', 0.0):g}, evidence weight "
        f"{dec.get('evidence_weight', 0.0):g} (inner MAE without "
        f"{dec.get('inner_mae_no_evidence', float('nan')):.2f}), interval {interval_text(dec)} (inner coverage "
        f"{dec.get('inner_coverage', float('nan')):.3f} on {dec.get('inner_calibration_windows', 0)} windows of "
        f"{len(cal) if cal else len({r.key for r in train})} subjects), conf: {conf_text(dec)} "
        f"(inner gating {-100 * dec['inner_gating_mass']:+.0f} % by mass, {-100 * dec['inner_gating_width']:+.0f} % by "
        f"width), inner MAE {dec['inner_mae']:.2f} (rule {rule}; lowest {dec['inner_mae_min']:.2f})")
    return dec


def student_oof(train, groups, oof, bins, a, encoders, only: set | None = None) -> dict:
    """The float student's out-of-fold logits on the training recordings (`hr_bins.out_of_fold_logits`): one
    student per fold of `groups` trained as the outer one is (recipe `a`, KD from the teacher's out-of-fold logits)
    for --inner-epochs, so the decoder is chosen on the logits it will decode rather than on the teacher's.
    `only`: just the folds holding these subjects (the returned dict has their recordings only)."""
    scfg = get_model_cfg(a.student)
    kd = [oof[r.record_id] for r in train] if a.kd and a.kd_float and a.inner_kd else None
    logits = out_of_fold_logits([as_model_input(r.x) for r in train], [r.y for r in train], [r.key for r in train],
                                groups, lambda: fresh(scfg, encoders), bins, student_cfg(a, a.inner_epochs), kd,
                                only=only)
    return {r.record_id: lg for r, lg in zip(train, logits) if lg is not None}


def calibration_oof(train, cal: set | None, oof, bins, a, encoders, log) -> dict | None:
    """--calibration-students subjects: when the interval and confidence are calibrated on a few of the training
    subjects (wrist_exercise LOSO: the other 4 wrist subjects), one student per calibration subject, trained as
    the inner students on every other training subject, gives that subject's logits: a network that has seen
    all the device's subjects but one, as the shipped one has. None when every training subject calibrates."""
    folds = calibration_folds({r.key for r in train}, cal)
    if folds is None:
        return None
    log(f"  calibration students: {len(folds) - 1} for {len(cal)} calibration subjects, each trained on every "
        f"training subject but its own")
    return student_oof(train, folds, oof, bins, a, encoders, only=set(cal))


# The student's recipes --recipe inner chooses among (each a priori; the teacher's training is fixed by the
# arguments): gated KD + motion windows, gated KD, KD on every window, labels only.
RECIPES = {"gate_motion": dict(kd=0.5, kd_gate_bpm=10.0, motion_frac=0.3),
           "gate_only": dict(kd=0.5, kd_gate_bpm=10.0, motion_frac=0.0),
           "kd_ungated": dict(kd=0.5, kd_gate_bpm=0.0, motion_frac=0.0),
           "labels_only": dict(kd=0.0, kd_gate_bpm=0.0, motion_frac=0.0)}


def student_args(args, recipe: str | None):
    """args with the student's KD weight, gate and motion fraction of `recipe` (None: args as given)."""
    return args if recipe is None else argparse.Namespace(**{**vars(args), **RECIPES[recipe]})


def student_cfg(a, epochs: int | None = None) -> BinTrainCfg:
    return bin_cfg(a, epochs or a.epochs, student=True, kd_weight=a.kd, kd_gate_bpm=a.kd_gate_bpm)


def choose_recipe(train, groups, oof, dec, bins, args, log, encoders) -> tuple[str, dict, dict]:
    """--recipe inner: each recipe's float student out-of-fold logits (`student_oof`: --inner-epochs students on
    the inner folds' training subjects, KD from the same out-of-fold teacher logits), decoded with the fold's
    decoder on the inner held-out subjects; the recipe with the lowest mean of those subjects' MAE. Only
    training subjects of the outer fold are read. Returns (recipe, scores, its student out-of-fold logits)."""
    scores, soofs = {}, {}
    for name in RECIPES:
        soofs[name] = student_oof(train, groups, oof, bins, student_args(args, name), encoders)
        per: dict = {}                                              # inner subject -> errors
        for r in train:
            hr = decode_float(soofs[name][r.record_id], dec, r.valid, r.x)["hr"]
            per.setdefault(r.key, []).append(np.abs(hr - r.y))
        scores[name] = float(np.mean([np.nanmean(np.concatenate(v)) for v in per.values()]))
    best = min(scores, key=scores.get)
    log("  recipe (inner CV): " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()) + f" -> {best}")
    return best, scores, soofs[best]


def bin_cfg(args, epochs, student: bool = False, **kw) -> BinTrainCfg:
    """Training config of the teacher (inner and outer) or, student=True, of the student (float and QAT)."""
    stretch = args.stretch_frac if not student or args.student_stretch_frac < 0 else args.student_stretch_frac
    return BinTrainCfg(epochs=epochs, seed=args.seed, stretch_frac=stretch, motion_frac=args.motion_frac,
                       motion_ppg_amp=amp_range(args.motion_ppg_amp), motion_ppg_dist=args.motion_ppg_dist,
                       motion_axis_drop=args.motion_axis_drop, motion_on_truth=args.motion_on_truth,
                       lr_schedule=args.lr_schedule,
                       edge_fill=args.edge_fill, **kw)


def amp_range(text: str) -> tuple[float, float]:
    """--motion-ppg-amp "lo,hi" -> (lo, hi), 0 < lo <= hi (argparse checks it once through `amp_text`)."""
    try:
        amp = tuple(float(v) for v in text.split(","))
    except ValueError:
        amp = ()
    if len(amp) != 2 or not 0 < amp[0] <= amp[1]:
        raise argparse.ArgumentTypeError(f"two numbers lo,hi with 0 < lo <= hi, got {text!r}")
    return amp


def floors_text(text: str) -> tuple[float, ...]:
    """--emission-floors "0,0.003,0.03" -> (0.0, 0.003, 0.03), each in [0, MAX_EMISSION_FLOOR] (one argparse line)."""
    try:
        ks = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        ks = ()
    if not ks or not all(0 <= k <= MAX_EMISSION_FLOOR for k in ks):
        raise argparse.ArgumentTypeError(f"needs comma-separated floors in [0, {MAX_EMISSION_FLOOR}], got '{text}'")
    return ks


def motion_on_truth_text(args) -> str:
    """The recipe lines' words for --motion-on-truth ("" when off, the default)."""
    return f"; at the heart rate itself on {args.motion_on_truth:g}" if args.motion_on_truth else ""


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"a fraction in [0, 1], got {text!r}")
    return v


def amp_text(text: str) -> str:
    amp_range(text)
    return text


_ROTATED: dict = {}                     # (dataset, record, copy, seed, model) -> the rotated copy's spectra


def rotated_copies(train, records: dict, k: int, scfg, seed: int) -> list:
    """k copies of each training recording with its accelerometer turned by a random rotation (uniform over
    SO(3); copy i of a recording is the same in every fold), the same PPG, truth and subject: the per-axis spectra
    the same wrists give in other orientations (a swing that falls on two axes leaves the third still). Added to
    `records` too (pairs, waveforms); each copy goes through the front end once per process."""
    import dataclasses
    out, axes = [], ACC_AXES
    for r in train:
        src = records[(r.dataset, r.record_id)]
        if not all(a in src.signals for a in axes):
            continue
        a = np.stack([np.asarray(src.signals[c], float) for c in axes])               # (3, N)
        for i in range(k):
            key = (r.dataset, r.record_id, i, seed, scfg.name)
            if key not in _ROTATED:
                rng = np.random.default_rng([seed, i, zlib.crc32(f"{r.dataset}/{r.record_id}".encode())])
                q, t = np.linalg.qr(rng.normal(size=(3, 3)))
                q = q * np.sign(np.diag(t))                                             # uniform over O(3)
                q[:, 0] *= np.sign(np.linalg.det(q))                                    # ... and a rotation
                rec = dataclasses.replace(src, record_id=f"{src.record_id}~rot{i}",
                                          signals={**src.signals, **dict(zip(axes, q @ a))})
                _ROTATED[key] = (rec, record_spectra(rec, scfg))
            rec, spec = _ROTATED[key]
            records[(rec.dataset, rec.record_id)] = rec
            out.append(spec)
    return out


def yaw_aligned(corpus: list, records: dict, scfg, min_g: float, log) -> list:
    """`corpus` with each recording's accelerometer turned about z (the face normal: the axis the sensor's geometry
    fixes; x and y are the ones a watch turned on the wrist, or a forearm held level, trade) so that the mean
    acceleration's x-y part points along +y (x' = c x - s y, y' = s x + c y; c = gy / r, s = gx / r, r = |(gx, gy)|
    over the whole recording) where r >= min_g, else as recorded (gravity near z: its x-y direction is noise). The
    same for training and held-out recordings, one mean per recording (not causal: what a slow running mean on the
    device would settle to). `records` gets the turned Record too (pairs, waveforms)."""
    import dataclasses
    out, turned = [], []
    for r in corpus:
        key = (r.dataset, r.record_id)
        src = records.get(key)
        if src is None or not all(a in src.signals for a in ACC_AXES):
            out.append(r)
            continue
        x, y = (np.asarray(src.signals[c], float) for c in ACC_AXES[:2])
        gx, gy = float(np.nanmean(x)), float(np.nanmean(y))
        rr = math.hypot(gx, gy)
        if rr < min_g:
            out.append(r)
            continue
        c, s = gy / rr, gx / rr
        rec = dataclasses.replace(src, signals={**src.signals, ACC_AXES[0]: c * x - s * y, ACC_AXES[1]: s * x + c * y})
        records[key] = rec
        out.append(record_spectra(rec, scfg))
        turned.append(f"{r.record_id} {math.degrees(math.atan2(gx, gy)):+.0f}")
    log(f"accelerometer turned about z to gravity on +y (x-y part >= {min_g:g} g) on {len(turned)} of {len(corpus)} "
        f"recordings: {', '.join(turned)}")
    return out


def run_fold(train, test, args, records, log):
    """Train on `train` recordings, score each recording of `test`. Returns per-recording results."""
    t_start = time.time()
    torch.manual_seed(args.seed)
    tcfg, scfg = teacher_cfg(args), get_model_cfg(args.student)
    if args.acc_rotations:
        train = train + rotated_copies(train, records, args.acc_rotations, scfg, args.seed)
        log(f"  {args.acc_rotations} accelerometer rotation(s) of each training recording: {len(train)} recordings")
    bins = bin_grid(scfg)
    X = np.concatenate([as_model_input(r.x) for r in train])
    Y = np.concatenate([r.y for r in train])
    encoders = pretrained_encoders(train, args, records, log, tcfg)
    torch.manual_seed(args.seed)
    cal = fold_calibration(train, test, args.calibrate_on)
    oof, dec_t, groups = inner_oof(train, tcfg, bins, args, log, encoders, records, cal)  # dec_t decodes the teacher
    dec = dec_t
    t_oof = np.concatenate([oof[r.record_id] for r in train])                          # (N, F) out-of-fold
    rng = torch.get_rng_state()         # the networks below start as without --recipe inner / --decoder-on student
    recipe, recipe_scores, soof = (choose_recipe(train, groups, oof, dec, bins, args, log, encoders)
                                   if args.recipe == "inner" else (None, {}, None))
    a = student_args(args, recipe)
    if args.decoder_on == "student":                 # --recipe inner already has the chosen recipe's (same seeds)
        soof = soof if soof is not None else student_oof(train, groups, oof, bins, a, encoders)
        coof = (calibration_oof(train, cal, oof, bins, a, encoders, log)
                if args.calibration_students == "subjects" else None)
        dec = decoder_on(soof, train, scfg, "student", log, args.evidence, args.decoder_rule, cal, args.emission_floors,
                         coof)
    torch.set_rng_state(rng)
    teacher = fresh(tcfg, encoders)
    train_teacher(teacher, train, tcfg, bins, args, args.teacher_epochs, records)
    student = fresh(scfg, encoders)
    scfg_kd = student_cfg(a)
    if a.kd and a.kd_gate_bpm > 0:
        ok = np.isfinite(Y)
        log(f"  distillation on {100 * float(kd_gate(t_oof[ok], Y[ok], bins, a.kd_gate_bpm).mean()):.0f} % of "
            f"the training windows (teacher out-of-fold argmax within {a.kd_gate_bpm:g} BPM of the truth)")
    train_bins(student, X, Y, bins, scfg_kd, t_oof if a.kd and a.kd_float else None)   # float: labels (+ KL)
    q = qat_bins(student, X, Y, bins, qat_cfg(scfg_kd, a.qat_epochs), t_oof if a.kd else None)
    # baseline notch and PPG sensors chosen on the training subjects
    classic = nested_baseline(scfg)
    notch, sensors, _ = classic.choose(train)
    # beside the chosen decoder: the HMM fitted on the training truth alone (sigma, floor), logits untempered, no
    # evidence: what the inner-CV choice of sigma / floor / temperature / evidence does to the held-out subject
    fit = fit_decoder([r.y for r in train], scfg.arch["bins_bpm"], scfg.hop_s)
    truth_hmm = {**dec, "sigma_bpm": fit["sigma_bpm"], "floor": fit["floor"], "temperature": 1.0, "evidence_weight": 0.0,
                 "emission_floor": 0.0}
    out, dump = [], {}
    for r in test:
        x = as_model_input(r.x)
        valid = r.valid
        lt, ls = predict_logits(teacher, teacher_x(r, tcfg, records)), predict_logits(student, x)
        lq, scale = int8_logits(q, x)
        dq = decode_int(lq, dec, scale, valid, r.x)
        row = {"dataset": r.dataset, "subject": r.subject, "record": r.record_id, "n": int(np.isfinite(r.y).sum()),
               "y": r.y, "int8": dq["hr"], "int8_lo": dq["lo"], "int8_hi": dq["hi"], "int8_conf": dq["conf"],
               "int8_conf_raw": dq["conf_raw"], "conf_calibrated": bool(dec.get("conf_calib_x")),
               "student": decode_float(ls, dec, valid, r.x)["hr"], "teacher": decode_float(lt, dec_t, valid, r.x)["hr"],
               "int8_raw": bins[lq.argmax(1)], "student_raw": bins[ls.argmax(1)],
               "int8_mass_truth": mass_near(lq, scale / dec["temperature"], bins, r.y, MASS_SIGMAS * dec["sigma_bpm"]),
               "int8_mass_decoded": mass_near(lq, scale / dec["temperature"], bins, dq["hr"],
                                              MASS_SIGMAS * dec["sigma_bpm"]),
               "int8_truth_hmm": decode_int(lq, truth_hmm, scale, valid)["hr"],
               "truth_hmm": {"sigma_bpm": float(fit["sigma_bpm"]), "floor": float(fit["floor"])},
               "baseline": classic.hr(r, notch, sensors),
               "notch": notch, "baseline_ppg": "+".join(sensors),
               "sigma": dec["sigma_bpm"], "floor": dec["floor"], "temperature": dec["temperature"],
               "emission_floor": float(dec.get("emission_floor", 0.0)),
               "interval": dec["interval"], "inner_coverage": dec["inner_coverage"],
               "interval_mode": dec.get("interval_mode", "posterior"),
               "conf_halfwidth_bpm": dec["conf_halfwidth_bpm"], "conf_measure": dec.get("conf_measure", "mass"),
               "evidence_weight": float(dec.get("evidence_weight", 0.0)), "evidence_mode": args.evidence,
               "decoder_rule": args.decoder_rule,
               "logit_scale": scale,
               "recipe": recipe or "fixed", "recipe_scores": recipe_scores}
        out.append(row)
        dump[f"test/{r.dataset}/{r.record_id}"] = lq
        log(f"  {r.dataset}/{r.record_id}: int8 {mae(row['int8'], r.y):.2f}  student {mae(row['student'], r.y):.2f}"
            f"  teacher {mae(row['teacher'], r.y):.2f}  baseline {mae(row['baseline'], r.y):.2f} "
            f"(notch {notch}, {'+'.join(sensors)})  [{time.time() - t_start:.0f} s]")
    if args.logits_out:
        save_logits(args.logits_out, test, train, dump, soof, dec, scale)
    return out


MASS_SIGMAS = 2.0    # the rows' int8_mass_*: within this many of the chosen transition's sigmas (the filter's reach)


def mass_near(lq: np.ndarray, scale: float, bins: np.ndarray, hr: np.ndarray, half_bpm: float) -> np.ndarray:
    """(W,) the share of each window's emission (softmax of the int8 logits x `scale`: the decoder's, tempered)
    within +-`half_bpm` of `hr` (W,) (NaN where `hr` is): a network whose argmax is the pulse can still put most of
    its mass elsewhere, and a filter that sums mass over its transition's reach follows the mass."""
    z = lq.astype(np.float64) * scale                                          # (W, F)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    hr = np.asarray(hr, np.float64)
    near = np.abs(bins[None, :] - np.nan_to_num(hr, nan=-1e9)[:, None]) <= half_bpm + 1e-9
    return np.where(np.isfinite(hr), (p * near).sum(axis=1), np.nan)


def save_logits(out_dir: str, test, train, held_out: dict, soof: dict | None, dec: dict, scale: float) -> None:
    """--logits-out: one .npz per outer fold with what the decoder reads, for decoder studies without training:
    the held-out int8 logits ("test/<dataset>/<record>", logit scale `scale`), the student's inner out-of-fold
    float logits the decoder was chosen on ("oof/<dataset>/<record>", with --decoder-on student), every
    recording's truth ("y/...") and subject key ("key/..."), and the chosen decoder (JSON)."""
    arrays = dict(held_out)
    if soof is not None:
        arrays.update({f"oof/{r.dataset}/{r.record_id}": np.asarray(soof[r.record_id], np.float32) for r in train})
    for r in [*train, *test]:
        arrays[f"y/{r.dataset}/{r.record_id}"] = np.asarray(r.y, np.float64)
        arrays[f"key/{r.dataset}/{r.record_id}"] = np.array(r.key)
    arrays["decoder"] = np.array(json.dumps(dec))
    arrays["logit_scale"] = np.array(scale)
    name = "_".join(sorted({r.key for r in test})).replace("/", "-").replace(":", "-")[:120] or "fold"
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_save_npz(Path(out_dir) / f"{name}.npz", **arrays)


METHODS = ("int8", "student", "teacher", "baseline", "int8_raw")
FOLD_CHOICES = ("notch", "baseline_ppg", "sigma", "floor", "temperature", "emission_floor", "evidence_weight",
                "interval")
FEW_WINDOWS = 10                        # a subject scored on fewer windows is marked (its MAE rests on a few)


def span_bpm(student: str) -> float:
    """The extent of the student's bin grid: a calibrated conf means expected |error| = (1 - conf) x this."""
    return decoder_cfg({"bins_bpm": get_model_cfg(student).arch["bins_bpm"]}).span_bpm


def by_subject(rows) -> dict:
    """{"dataset:subject": its rows}, sorted by key."""
    subj = {}
    for r in rows:
        subj.setdefault(f"{r['dataset']}:{r['subject']}", []).append(r)
    return dict(sorted(subj.items()))


def abs_errors(rows, method: str) -> np.ndarray:
    """|prediction - truth| of `method` over the rows' windows (NaN where the truth is doubtful)."""
    return np.abs(np.concatenate([r[method] for r in rows]) - np.concatenate([r["y"] for r in rows]))


def finite_mean(e) -> float:
    """Mean of the finite values; NaN (no warning) when a subject has no scored window."""
    e = np.asarray(e, float)
    e = e[np.isfinite(e)]
    return float(e.mean()) if e.size else float("nan")


def summarise(rows, title, span: float | None = None, hop_s: float | None = None):
    """Per-subject MAE (+ CI: batch means over the subject's windows in time order, a batch of
    core.metrics.BLOCK_S seconds of windows one every `hop_s`; None: single windows), mean of subjects, pooled, wins,
    uncertainty."""
    block = block_windows(hop_s) if hop_s else 1
    subj = by_subject(rows)
    # the truth's-HMM decode of the same logits, beside the chosen decoder (rows written before it have none)
    methods = METHODS + (("int8_truth_hmm",) if rows and all("int8_truth_hmm" in r for r in rows) else ())
    table = []
    for s, rs in subj.items():
        y = np.concatenate([r["y"] for r in rs])
        d = {"subject": s, "windows": int(np.isfinite(y).sum())}
        recording = np.concatenate([[r["record"]] * len(r["y"]) for r in rs])     # blocks stay inside one
        for m in methods:
            e = abs_errors(rs, m)
            d[m] = finite_mean(e)
            d[m + "_ci"] = mae_batch_ci(e, block, recording)
        u = uncertainty_scores(*(np.concatenate([r[k] for r in rs]) for k in ("int8", "int8_lo", "int8_hi",
                                                                              "int8_conf")), y)
        d["interval_coverage"], d["interval_width_median"] = u["interval_coverage"], u["interval_width_median"]
        d["gating_reduction"] = u["gating_reduction"]                  # within the subject, as one wearer sees it
        table.append(d)
    y = np.concatenate([r["y"] for r in rows])
    ok = np.isfinite(y)
    summ = {"title": title, "subjects": table, "ci_block_windows": block, "ci_block_s": block * (hop_s or 0.0)}
    for m in methods:
        summ[f"{m}_mean_of_subjects"] = float(np.mean([d[m] for d in table]))
        summ[f"{m}_pooled"] = finite_mean(abs_errors(rows, m))
    summ["int8_mean_of_subjects_ci95"] = list(t_interval([d["int8"] for d in table]))
    summ["int8_wins_vs_baseline"] = int(sum(d["int8"] < d["baseline"] for d in table))
    # the uncertainty goals per wearer: pooled figures mix subjects (and the folds' confidence scales)
    cov = np.array([d["interval_coverage"] for d in table if d["interval_coverage"] is not None], float)
    gat = np.array([d["gating_reduction"] for d in table if d["gating_reduction"] is not None], float)
    summ["interval_coverage_per_subject"] = {"mean": float(cov.mean()) if cov.size else None,
                                             "min": float(cov.min()) if cov.size else None,
                                             "max": float(cov.max()) if cov.size else None,
                                             "in_85_95": int(((cov >= 0.85) & (cov <= 0.95)).sum()), "n": int(cov.size)}
    summ["gating_reduction_per_subject"] = {"mean": float(gat.mean()) if gat.size else None,
                                            "median": float(np.median(gat)) if gat.size else None,
                                            "at_least_30": int((gat >= 0.30).sum()), "n": int(gat.size)}
    summ["n_subjects"] = len(table)
    summ["int8_minus_float_student"] = summ["int8_mean_of_subjects"] - summ["student_mean_of_subjects"]
    hr = np.concatenate([r["int8"] for r in rows])[ok]
    lo = np.concatenate([r["int8_lo"] for r in rows])[ok]
    hi = np.concatenate([r["int8_hi"] for r in rows])[ok]
    conf = np.concatenate([r["int8_conf"] for r in rows])[ok]
    yy = y[ok]
    # the interval is the calibrated one: its nominal mass chosen per outer fold on inner out-of-fold windows
    calibrated = all(r.get("conf_calibrated") for r in rows)
    u = uncertainty_scores(hr, lo, hi, conf, yy, span=span if calibrated else None)   # conf: the device's conf_q15
    summ["interval_coverage"] = u["interval_coverage"]
    summ["interval_mass"] = sorted({float(r["interval"]) for r in rows})
    summ["interval_spread_folds"] = len({(r["dataset"], r["subject"]) for r in rows
                                         if r.get("interval_mode") == "spread"})    # rows before it: posterior
    summ["inner_coverage"] = sorted({float(r["inner_coverage"]) for r in rows})
    summ["conf_halfwidth_bpm"] = sorted({float(r["conf_halfwidth_bpm"]) for r in rows})
    summ["conf_measure_folds"] = {m: len({(r["dataset"], r["subject"]) for r in rows if r.get("conf_measure", "mass") == m})
                                  for m in ("mass", "width")}
    fold_mu = {(r["dataset"], r["subject"]): float(r.get("evidence_weight", 0.0)) for r in rows}
    summ["evidence"] = rows[0].get("evidence_mode", "off") if rows else "off"
    summ["evidence_weight_folds"] = {f"{m:g}": sum(v == m for v in fold_mu.values()) for m in sorted(set(fold_mu.values()))}
    summ["mae_all"], summ["mae_top80_conf"], summ["gating_reduction"] = u["mae_all"], u["mae_top"], \
        u["gating_reduction"]
    if all("int8_conf_raw" in r for r in rows):                # side by side: the chosen measure without its knots
        raw = np.concatenate([r["int8_conf_raw"] for r in rows])[ok]
        summ["gating_reduction_uncalibrated"] = uncertainty_scores(hr, lo, hi, raw, yy)["gating_reduction"]
        summ["gating_by_keep"] = {f"{k:g}": {name: uncertainty_scores(hr, lo, hi, c, yy, keep=k)["gating_reduction"]
                                             for name, c in (("calibrated", conf), ("uncalibrated", raw),
                                                             ("oracle", -np.abs(hr - yy)))}
                                  for k in (0.5, 0.7, 0.9)}
    summ["conf_calibrated_folds"] = len({(r["dataset"], r["subject"]) for r in rows if r.get("conf_calibrated")})
    if span and calibrated:
        # calibration in the large: the expected error the device's conf states vs the error it makes, per subject
        summ["expected_error_stated"] = u["expected_error_stated"]
        for d in table:
            cat = lambda k: np.concatenate([r[k] for r in subj[d["subject"]]])  # noqa: E731
            d["int8_expected_error"] = uncertainty_scores(cat("int8"), cat("int8_lo"), cat("int8_hi"), cat("int8_conf"),
                                                          cat("y"), span=span)["expected_error_stated"]
    # for reference: ranking by interval width
    summ["gating_reduction_width"] = uncertainty_scores(hr, lo, hi, lo - hi, yy)["gating_reduction"]
    summ["gating_reduction_oracle"] = uncertainty_scores(hr, lo, hi, -np.abs(hr - yy), yy)["gating_reduction"]
    summ["doubtful_truth_windows"] = int((~ok).sum())
    if "int8_truth_hmm" in methods:
        summ["int8_truth_hmm_wins_vs_baseline"] = int(sum(d["int8_truth_hmm"] < d["baseline"] for d in table))
        summ["truth_hmm_sigma_bpm"] = sorted({r["truth_hmm"]["sigma_bpm"] for r in rows})
    chosen = {}                                            # --recipe inner: the student recipe of each fold
    for d in table:
        d["recipe"] = subj[d["subject"]][0].get("recipe", "fixed")
        chosen[d["recipe"]] = chosen.get(d["recipe"], 0) + 1
    summ["recipes"] = chosen
    for d in table:                                        # what was chosen on the fold's training subjects
        r0 = subj[d["subject"]][0]
        d["fold_choices"] = {k: r0[k] for k in FOLD_CHOICES if k in r0}
    summ["few_windows"] = {"below": FEW_WINDOWS, "subjects": [d["subject"] for d in table if d["windows"] < FEW_WINDOWS]}
    return summ


def no_none(v):
    """v with every None (a score of no window: uncertainty_scores) as NaN, which the report's formats print."""
    if isinstance(v, dict):
        return {k: no_none(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(no_none(x) for x in v)
    return float("nan") if v is None else v


def few_text(summ) -> str:
    """The words for the subjects scored on fewer than FEW_WINDOWS windows (summarise's few_windows)."""
    few = summ["few_windows"]
    return (f"{', '.join(few['subjects'])} scored on fewer than {few['below']} windows: such a subject's MAE rests on "
            "a few windows, yet it counts in the mean of subjects as much as any other")


def pretrain_corpus_text(args) -> str:
    """The recipe line's words for what the pretraining pairs were mined in ("" for files written before it was
    kept, and with --pretrain none)."""
    n = getattr(args, "pretrain_unlabeled", None)
    if n is None or args.pretrain == "none":
        return ""
    overlap = {"allow": "; a partner may overlap its good window",
               "reject": "; no partner overlaps its good window"}.get(getattr(args, "pair_overlap", None), "")
    return (f" (pairs of the training recordings{f' and {n} unlabeled smartwatch recordings' if n else ' only'}"
            f"{overlap})")


def markdown(summ) -> str:
    summ = no_none(summ)
    b = summ.get("ci_block_windows", 1)                 # results written before batch means: 1 (windows)
    how = (f"t-interval over the means of its windows in batches of {b} ({summ['ci_block_s']:g} s), from 0 at least"
           if b > 1 else
           "t-interval over its single windows, as if independent: too narrow")
    L = [f"### {summ['title']}", "", f"MAE in BPM per held-out subject [95 % {how}]; windows: "
         "its windows with truth; last column: its windows whose truth lies in the int8 interval (median width).", "",
         "| subject | windows | int8 firmware (decoded) | float student | float teacher | classic baseline | int8 per-window argmax "
         "| int8 truth in the interval (median width) |",
         "|---|---|---|---|---|---|---|---|"]
    for d in summ["subjects"]:
        cells = [f"{d[m]:.2f} [{d[m + '_ci'][0]:.2f}, {d[m + '_ci'][1]:.2f}]" for m in METHODS]
        cov = ("-" if not np.isfinite(d.get("interval_coverage", np.nan)) else
               f"{100 * d['interval_coverage']:.1f} % ({d['interval_width_median']:.1f} BPM)")
        few = " (few)" if d["windows"] < FEW_WINDOWS else ""
        L.append(f"| {d['subject']} | {d['windows']}{few} | " + " | ".join(cells) + f" | {cov} |")
    L.append(f"| **mean of subjects** | | **{summ['int8_mean_of_subjects']:.2f}** | {summ['student_mean_of_subjects']:.2f} | "
             f"{summ['teacher_mean_of_subjects']:.2f} | {summ['baseline_mean_of_subjects']:.2f} | "
             f"{summ['int8_raw_mean_of_subjects']:.2f} | |")
    L.append(f"| pooled | | {summ['int8_pooled']:.2f} | {summ['student_pooled']:.2f} | {summ['teacher_pooled']:.2f} | "
             f"{summ['baseline_pooled']:.2f} | {summ['int8_raw_pooled']:.2f} | {100 * summ['interval_coverage']:.1f} % |")
    few = summ.get("few_windows", {}).get("subjects", [])
    if few:
        L += ["", f"(few): {few_text(summ)}."]
    chosen = [d for d in summ["subjects"] if "notch" in d.get("fold_choices", {})]
    if chosen:
        ppg = all("baseline_ppg" in d["fold_choices"] for d in chosen)      # rows written before it was chosen: none
        L += ["", f"Chosen per fold on its training subjects (baseline notch BPM{', PPG sensors' if ppg else ''} / "
              "decoder sigma BPM, jump floor, temperature): " + "; ".join(
                  f"{d['subject'].split(':')[-1]} {c['notch']:g}"
                  f"{', ' + c['baseline_ppg'] if ppg else ''} / {c['sigma']:.2f}, {c['floor']:.0e}, "
                  f"{c['temperature']:g}" for d in chosen for c in [d["fold_choices"]]) + "."]
    L += ["", f"int8 better than the nested-tuned baseline on {summ['int8_wins_vs_baseline']} of {summ['n_subjects']} "
          f"subjects; int8 - float student {summ['int8_minus_float_student']:+.3f} BPM (mean of subjects); "
          f"calibrated interval (nominal mass {_span(summ['interval_mass'], '.3f')} chosen per fold on inner "
          f"out-of-fold windows, inner coverage {_span(summ['inner_coverage'], '.3f')}; the spread interval "
          f"hr -+ (c + k S) instead, chosen on the inner windows, on {summ['interval_spread_folds']} of the held-out "
          f"subjects; goal 90 %): coverage "
          f"{100 * summ['interval_coverage']:.1f} %; keeping the 80 % most confident windows (device conf chosen "
          f"on the inner windows: mass within +-{_span(summ['conf_halfwidth_bpm'], 'g')} BPM on "
          f"{summ['conf_measure_folds']['mass']}, the interval's width on {summ['conf_measure_folds']['width']} of "
          f"the held-out subjects, calibrated to the inner windows' expected error on {summ['conf_calibrated_folds']}): "
          f"MAE {summ['mae_all']:.2f} -> {summ['mae_top80_conf']:.2f} BPM ({-100 * summ['gating_reduction']:+.0f} %; "
          + (f"the same measures uncalibrated: {-100 * summ['gating_reduction_uncalibrated']:+.0f} %; "
             if "gating_reduction_uncalibrated" in summ else "")
          + f"ranking by interval width instead: {-100 * summ['gating_reduction_width']:+.0f} %); windows with doubtful truth (not scored): "
          f"{summ['doubtful_truth_windows']}."
          + ("" if summ.get("evidence", "off") == "off" else
             f" Decoder weight of the motion-subtracted PPG spectrum (--evidence {summ['evidence']}; inner: chosen "
             "per fold on the inner windows, 0 = the network alone): "
             + ", ".join(f"{m} on {n}" for m, n in summ.get("evidence_weight_folds", {}).items()) + "."), ""]
    if "gating_reduction_oracle" in summ:
        L += [f"The oracle (keeping the 80 % of windows with the smallest error): {-100 * summ['gating_reduction_oracle']:+.0f} %.", ""]
    if "gating_reduction_per_subject" in summ:
        c, g, ci = summ["interval_coverage_per_subject"], summ["gating_reduction_per_subject"], \
            summ["int8_mean_of_subjects_ci95"]
        L += ["Per wearer (the pooled figures above mix subjects, and the gating also the folds' confidence scales): "
              f"the interval holds the truth on {100 * c['mean']:.1f} % of a subject's windows on average "
              f"({100 * c['min']:.1f}-{100 * c['max']:.1f} %; {c['in_85_95']} of {c['n']} subjects inside 85-95 %); "
              f"keeping a subject's own 80 % most confident windows changes its MAE by {-100 * g['mean']:+.0f} % on "
              f"average (median {-100 * g['median']:+.0f} %; {g['at_least_30']} of {g['n']} subjects cut it by 30 % "
              f"or more). int8 mean of subjects {summ['int8_mean_of_subjects']:.2f} BPM, 95 % t-interval over the "
              f"subjects [{ci[0]:.2f}, {ci[1]:.2f}].", ""]
    if "int8_truth_hmm_pooled" in summ:
        L += ["What the decoder choice does: the same int8 logits through the HMM fitted on the training truth alone "
              f"(sigma {_span(summ['truth_hmm_sigma_bpm'], '.2f')} BPM per hop, its jump floor, temperature 1, no evidence) "
              f"instead of the inner-CV choice: mean of subjects {summ['int8_truth_hmm_mean_of_subjects']:.2f} "
              f"(chosen {summ['int8_mean_of_subjects']:.2f}), pooled {summ['int8_truth_hmm_pooled']:.2f} "
              f"({summ['int8_pooled']:.2f}), better than the baseline on {summ['int8_truth_hmm_wins_vs_baseline']} of "
              f"{summ['n_subjects']}; per subject " + ", ".join(f"{d['subject'].split(':')[-1]} {d['int8_truth_hmm']:.2f}"
                                                            for d in summ["subjects"]) + ".", ""]
    if "gating_by_keep" in summ:
        L += ["Gating at other shares kept (MAE change keeping the most confident windows, calibrated / uncalibrated "
              "conf / oracle): " + "; ".join(f"{100 * float(k):.0f} %: {-100 * v['calibrated']:+.0f} / "
                                            f"{-100 * v['uncalibrated']:+.0f} / {-100 * v['oracle']:+.0f} %"
                                            for k, v in summ["gating_by_keep"].items()) + ".", ""]
    if "expected_error_stated" in summ:
        L += ["Calibration in the large: the expected error the device's conf states, (1 - conf) x grid extent, "
              f"against the error it makes: pooled {summ['expected_error_stated']:.2f} vs {summ['mae_all']:.2f} BPM; "
              "per subject " + ", ".join(f"{d['subject'].split(':')[-1]} {d['int8_expected_error']:.1f} / {d['int8']:.1f}"
                                         for d in summ["subjects"]) + ".", ""]
    if set(summ["recipes"]) != {"fixed"}:
        L += ["Student recipe chosen per held-out subject by inner cross-validation over its training subjects: " +
              ", ".join(f"{d['subject']} {d['recipe']}" for d in summ["subjects"]) + ".", ""]
    return "\n".join(L)


def _span(v, fmt) -> str:
    return f"{min(v):{fmt}}" if min(v) == max(v) else f"{min(v):{fmt}}-{max(v):{fmt}}"


def evidence_text(v: str) -> str:
    try:
        evidence_args(v, [])
    except SqtoolError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return v if v in ("inner", "off") else f"{float(v):g}"


def add_training_args(ap) -> None:
    """The recipe's knobs, shared with hr_synthetic_pulse.py."""
    ap.add_argument("--student", default="spec_student_s", help="the int8 student (a spectral model)")
    ap.add_argument("--teacher", default="spec_teacher_m",
                    help="a spectral model, or resnet1d_siamq_18 (any resnet1d_siamq_*): the SiamQuality ResNet as a "
                         "time-domain teacher over PPG + accelerometer windows (TIME_TEACHER)")
    ap.add_argument("--epochs", type=int, default=60, help="the float student's epochs")
    ap.add_argument("--teacher-epochs", type=int, default=40, help="the outer teacher's epochs")
    ap.add_argument("--qat-epochs", type=int, default=8, help="quantization-aware training epochs of the int8 twin")
    ap.add_argument("--kd", type=float, default=0.5, help="weight of the KL to the teacher's out-of-fold logits")
    ap.add_argument("--kd-gate-bpm", type=float, default=10.0,
                    help="distil only windows whose teacher out-of-fold argmax is within this of the truth "
                         "(as sqtool quantize --kd-gate-bpm); 0 = every window")
    ap.add_argument("--seed", type=int, default=0, help="seed of the networks, folds and augmentation")
    ap.add_argument("--inner-folds", type=int, default=3, help="inner cross-validation folds over the training "
                    "subjects (one per subject when there are fewer)")
    ap.add_argument("--inner-epochs", type=int, default=30, help="epochs of each inner-fold network")
    ap.add_argument("--stretch-frac", type=float, default=0.5,
                    help="fraction of training windows frequency-stretched (the rest shifted); 0 = shift only")
    ap.add_argument("--motion-frac", type=float, default=0.3,
                    help="fraction of training windows with an added arm-motion peak away from the truth "
                         "(hr_bins.inject_motion); 0 = none")
    ap.add_argument("--motion-ppg-amp", type=amp_text, default="0.3,1.5", metavar="LO,HI",
                    help="lo,hi: the added motion peak in the PPG relative to the PPG's max power")
    ap.add_argument("--motion-ppg-dist", choices=("uniform", "log"), default="uniform",
                    help="how that amplitude is drawn over lo..hi")
    ap.add_argument("--acc-rotations", type=int, default=0, metavar="K",
                    help="K copies of each training recording with its accelerometer turned at random (0 = none)")
    ap.add_argument("--acc-yaw", type=float, default=0.0, metavar="G",
                    help="turn every recording's accelerometer about z so that its mean's x-y part (>= G g) "
                         "points along +y, training and held-out alike (yaw_aligned; 0 = as recorded)")
    ap.add_argument("--motion-axis-drop", type=fraction, default=0.5, metavar="P",
                    help="in a motion window each accelerometer axis but the strongest shows no motion with "
                         "probability P (a swing the watch's other axes do not see); 0 = every axis moves")
    ap.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=TRAIN_OPTIONS["lr_schedule"][0],
                    help=TRAIN_OPTIONS["lr_schedule"][1])
    ap.add_argument("--edge-fill", choices=("empty", "floor"), default="empty",
                    help="bins a shift / stretch moves off the grid: empty (code -127) or each channel's median "
                         "code in the window (hr_bins.edge_fill_values)")
    ap.add_argument("--kd-float", type=int, default=1,
                    help="1: the float student learns labels + KL to the teacher's out-of-fold logits (as sqtool "
                         "quantize); 0: labels only, the KL enters in QAT")
    ap.add_argument("--inner-kd", type=int, default=1,
                    help="1: the inner (and calibration) students distil like the outer one, from the teacher's "
                         "out-of-fold logits, whose teachers saw the inner held-out subjects (a stacking leak inside "
                         "the training subjects); 0: those students learn labels only (no leak; measures its effect)")
    ap.add_argument("--recipe", choices=("fixed", "inner"), default="fixed",
                    help="fixed: the student's KD weight, gate and motion fraction as given; inner: chosen per "
                         "outer fold among RECIPES by inner cross-validation over the training subjects")
    ap.add_argument("--pretrain", choices=("none", "real"), default="real",
                    help="real (default, as sqtool demo): SiamQuality pretraining per outer fold on real (good, poor) "
                         "spectral pairs of the training recordings; none: networks from scratch")
    ap.add_argument("--pair-overlap", choices=("allow", "reject"), default="allow",
                    help="the pretraining pairs: allow (the recipe measured so far): each good window's nearest poor "
                         "window, often overlapping it (8 s windows every 2 s); reject: the nearest at least a window "
                         "away (`data pairs --no-spectral-overlap`), as the time-domain pairs always are")
    ap.add_argument("--time-teacher-pretrain", choices=("none", "real"), default="real",
                    help="a time-domain --teacher: real (with --pretrain real): SiamQuality pretraining on the same "
                         "real pairs' time-domain windows, as the spectral encoders; none: from scratch")
    ap.add_argument("--decoder-on", choices=("teacher", "student"), default="student",
                    help="whose inner out-of-fold logits choose the decoder (sigma, floor, temperature, interval, "
                         "confidence): the float student's (inner students, as sqtool quantize) or the teacher's")
    ap.add_argument("--evidence", type=evidence_text, default="off", metavar="inner|off|WEIGHT",
                    help="inner: the decoder's weight of the motion-subtracted PPG spectrum (evidence_weight) is chosen "
                         "on the inner out-of-fold logits with the rest of the decoder (0 among the choices); off: 0; "
                         "a number: that weight, fixed (the temperature is still chosen with it)")
    ap.add_argument("--decoder-rule", choices=SELECTION_RULES, default="min",
                    help="how the decoder's sigma / floor / temperature are chosen on the inner out-of-fold logits: "
                         "min = the lowest mean of subjects' MAE; one_se = the closest to the HMM fitted on the truth "
                         "(temperature 1 first) within one paired standard error of it")
    ap.add_argument("--calibrate-on", choices=("all", "target"), default="target",
                    help="whose inner out-of-fold windows set the interval's mass and the confidence (measure and "
                         "calibration): all training subjects, or target = those of the held-out subject's dataset "
                         "(wrist_exercise LOSO: the other wrist subjects; all when the training set has none)")
    ap.add_argument("--calibration-students", choices=CALIBRATION_STUDENTS, default=CALIBRATION_STUDENTS[0],
                    help="which students' out-of-fold logits the interval and confidence are calibrated on: the "
                         "decoder's inner-fold students, or (subjects) one student per calibration subject trained "
                         "on every other training subject, when those subjects are a few of the training set "
                         "(wrist_exercise LOSO); the heart rates are the same either way")
    ap.add_argument("--emission-floors", type=floors_text, default=(0.0,), metavar="K[,K...]",
                    help="the decoder's emission floors the inner windows choose among with sigma, floor and "
                         "temperature (decoder.DecoderCfg.emission_floor; default 0 only), e.g. 0,0.003,0.03")
    ap.add_argument("--motion-on-truth", type=fraction, default=0.0, metavar="P",
                    help="share of the motion windows whose cadence is the heart rate itself (the heart at the "
                         "step rate, as on a run): the accelerometer's peak sits on the pulse, the target unchanged")
    ap.add_argument("--logits-out", default="", metavar="DIR",
                    help="also save, per outer fold, the held-out int8 logits, the inner out-of-fold logits the "
                         "decoder was chosen on, the truth and the chosen decoder (DIR/<held-out>.npz)")
    ap.add_argument("--pretrain-epochs", type=int, default=10, help="SimSiam epochs per architecture (--pretrain real)")
    ap.add_argument("--pretrain-lr", type=float, default=0.05, help="SimSiam learning rate")
    ap.add_argument("--student-stretch-frac", type=float, default=-1.0,
                    help="the student's (float and QAT) stretch fraction; -1 = --stretch-frac (sqtool: quantize "
                         "--freq-stretch vs train finetune --freq-stretch)")


LOSO_TITLE = {"spcup": "SP Cup 2015, LOSO over 12 subjects",
              "wrist": "wrist_exercise, LOSO over 5 subjects (trained on SP Cup + the other wrist subjects)"}
CROSS = (("sp2wr", "cross-dataset: trained on SP Cup only, scored on all of wrist_exercise"),
         ("wr2sp", "cross-dataset: trained on wrist_exercise only, scored on SP Cup"))
DEFAULT_PARTS = {"spcup": ("loso",), "wrist": ("loso", "sp2wr", "wr2sp")}


def trained_beside(args) -> str:
    """--train-also of a run (rows files written before the option: troika, what they were trained beside)."""
    return getattr(args, "train_also", "troika")


def target_name(args, runs: dict | None = None) -> str:
    """The wrist protocol's target dataset as its recordings name it (rows' "dataset"; a dataset file's `name`),
    else --target's own name (a built-in, or the folder / file stem of a dataset file)."""
    for key in ("loso", "sp2wr"):
        names = sorted({r["dataset"] for r in (runs or {}).get(key, [])})
        if names:
            return "+".join(names)
    p = Path(str(getattr(args, "target", WRIST)))
    return p.parent.name if p.name in ("dataset.yaml", "dataset.yml") else p.stem


def titles(args, runs: dict) -> dict[str, str]:
    """{run key: report title}; the shipped wording for SP Cup and for wrist_exercise trained beside SP Cup."""
    if args.protocol == "spcup":
        return {"loso": LOSO_TITLE["spcup"]}
    name, also = target_name(args, runs), trained_beside(args)
    if name == WRIST and also == "troika":
        return {"loso": LOSO_TITLE["wrist"], **dict(CROSS)}
    n = len({(r["dataset"], r["subject"]) for r in runs.get("loso", [])})
    beside = {"troika": "SP Cup + "}.get(also, f"{also} + " if also else "")
    return {"loso": f"{name}, LOSO over {n} subject{'s' if n != 1 else ''} (trained on {beside}the other {name} "
                    "subjects)",
            "sp2wr": f"cross-dataset: trained on SP Cup only, scored on all of {name}",
            "wr2sp": f"cross-dataset: trained on {name} only, scored on SP Cup"}


def report_stem(args, runs: dict) -> str:
    """hr_spectral_<protocol>, then the target's name when it is not wrist_exercise and what it was trained
    beside when not SP Cup (_only: the target's subjects alone)."""
    if args.protocol != "wrist":
        return f"hr_spectral_{args.protocol}"
    name, also = target_name(args, runs), trained_beside(args)
    return ("hr_spectral_wrist" + (f"_{name}" if name != WRIST else "")
            + ("" if also == "troika" else f"_with_{also.replace(',', '_')}" if also else "_only"))


def out_stem(args, runs: dict, parts) -> str:
    """The results files' stem (`report_stem`), _partial for a run of some folds or parts (or a --rows-out part)."""
    partial = (bool(args.folds) or set(parts) != set(default_parts(args)) or bool(getattr(args, "rows_out", "")))
    return report_stem(args, runs) + ("_partial" if partial else "")


def default_rows_path(args, runs: dict, parts) -> Path:
    """Where the rows go without --rows-out: <out>/<stem>[_<part_tag>]_rows.json, so that two processes over other
    folds in one --out (git ignores benchmarks/results/*_rows.json) never overwrite each other's rows."""
    tag = part_tag(args, parts)
    return Path(args.out) / f"{out_stem(args, runs, parts)}{'_' + tag if tag else ''}_rows.json"


def part_tag(args, parts) -> str:
    """The parts (when not the whole report's) and --folds subjects of a run, e.g. '01-03-05' or 'sp2wr'; a crc32
    of them when that would be long or not a plain file name. '' for a whole run."""
    names = ([] if set(parts) == set(default_parts(args)) else sorted(parts)) + sorted(
        {f.split(":")[-1] for f in (args.folds or "").split(",") if f})
    tag = "-".join(names)
    if len(tag) > 32 or not all(n.replace("_", "").replace(".", "").isalnum() for n in names):
        tag = f"{len(names)}-{zlib.crc32(','.join(names).encode()):08x}"
    return tag


# what may differ between a run's processes
PROCESS_ARGS = ("folds", "parts", "out", "rows_out", "merge", "logits_out", "data_root")
# recipe keys that rows files written before them lack: compared only between files that both keep them
LATER_RECIPE_KEYS = ("pretrain_unlabeled", "pair_overlap", "acc_yaw")


def recipe_args(args) -> dict:
    """The arguments that make a run's recipe (models, seed, epochs, augmentation, decoder): every process of a
    merged report must share them."""
    return {k: v for k, v in vars(args).items() if k not in PROCESS_ARGS}


def dump_rows(runs: dict, path, wall_s, recipe: dict) -> None:
    """Per-window rows of this process's runs ({title: rows}; arrays as lists, a NaN as null, read back as NaN by
    `read_rows_file`) and its recipe, for `--merge`."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(path), dumps_json({"wall_s": wall_s, "args": recipe, "machine": this_machine(),
                                              "runs": runs}))


def load_rows(path, flag: str = "--merge") -> tuple[dict, float, dict | None]:
    """(runs, wall time, recipe arguments or None for files written before they were kept). A file that cannot
    be read, or is not a --rows-out file, is one line naming `flag` and the file (SystemExit)."""
    return read_rows_file(path, flag)[:3]


def read_rows_file(path, flag: str = "--merge") -> tuple[dict, float, dict | None, dict | None]:
    """`load_rows` and the machine the file was written on (None for files written before it was kept). A row's
    lists come back as float arrays, null (or an older file's NaN) as NaN."""
    try:
        d = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SystemExit(f"{flag}: cannot read {path} ({getattr(e, 'strerror', None) or str(e).splitlines()[0]})")
    if isinstance(d, dict) and "runs" not in d and "rows" in d:            # files of the first --rows-out format
        d = {**d, "runs": {"loso": d["rows"]}}
    runs = d.get("runs") if isinstance(d, dict) else None
    rows_ok = lambda rows: isinstance(rows, list) and all(                                      # noqa: E731
        isinstance(r, dict) and {"dataset", "subject"} <= set(r) for r in rows)
    ok = (isinstance(runs, dict) and all(rows_ok(rows) for rows in runs.values())
          and isinstance(d.get("wall_s"), (int, float)) and isinstance(d.get("args"), (dict, type(None))))
    if not ok:
        raise SystemExit(f"{flag}: {path} is not a --rows-out file of benchmarks/hr_spectral.py (expected its "
                         "'runs' of per-window rows and 'wall_s')")
    dec = lambda r: {k: (np.asarray(v, float) if isinstance(v, list) else v) for k, v in r.items()}  # noqa: E731
    return ({t: [dec(r) for r in rows] for t, rows in runs.items()}, float(d["wall_s"]), d.get("args"),
            d.get("machine"))


UNITS = {"mae, *_mean_of_subjects, *_pooled, per-subject method values and their _ci": "BPM (absolute error)",
         "interval_coverage, gating_reduction*": "fraction (0-1)", "wall_s": "s", "windows": "8 s windows with truth"}


def this_machine() -> dict:
    """Where this process runs: the machine's CPU count and the threads torch computes with."""
    return {"cpu_count": os.cpu_count(), "threads": torch.get_num_threads()}


def report(args, argv, runs: dict, wall_s: float, processes: int = 1, machine: dict | None = None) -> None:
    """Summaries and the results files: the LOSO run first, then the cross-dataset runs."""
    results = {"protocol": args.protocol, "args": vars(args), "wall_s": wall_s, "processes": processes,
               "units": UNITS, "git_sha": git_sha(), "data_root": str(getattr(args, "data_root", "") or "") or None,
               "machine": machine or this_machine()}
    md, names = [], titles(args, runs)
    for key in ["loso", *(k for k, _ in CROSS)]:
        if key not in runs:
            continue
        title = names[key]
        results[key if key == "loso" else title] = summ = summarise(runs[key], title, span_bpm(args.student),
                                                                          get_model_cfg(args.student).hop_s)
        if summ["few_windows"]["subjects"]:
            print(f"note ({title}): {few_text(summ)}", flush=True)
        md.append(markdown(summ))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out_stem(args, runs, runs)
    m = machine or this_machine()
    known = bool(m.get("cpu_count"))                    # rows files written before the machine was kept: unknown
    where = (f", {m['threads']} thread(s) each on a machine of {m['cpu_count']} CPU cores" if known else
             " (threads and CPU cores not recorded)")
    how = (f"{processes} processes over disjoint parts{where}, merged by `benchmarks/hr_spectral.py --protocol {args.protocol} --merge ...`" if processes > 1 else
           (f"{m['threads']} thread(s) on a machine of {m['cpu_count']} CPU cores" if known else where.strip())
           + f"; `{shlex.join(['benchmarks/hr_spectral.py'] + list(argv or sys.argv[1:]))}`")
    write_metrics(out, results, f"{stem}.json")
    time_teacher = get_model_cfg(args.teacher).family != SPECTRAL_FAMILY
    recipe = (f"Recipe: seed {args.seed}; teacher {args.teacher}"
              + (" (time domain, TIME_TEACHER: PPG + acc at 25 Hz)" if time_teacher else "")
              + f"; student {args.student}; decoder chosen on the {args.decoder_on}'s inner out-of-fold logits "
              + f"(rule {args.decoder_rule}; "
              + (f"emission floor among {', '.join(f'{k:g}' for k in args.emission_floors)}; "
                 if tuple(args.emission_floors) != (0.0,) else "")                # a merged recipe: a list
              + ("interval and confidence calibrated on the held-out dataset's training subjects"
                 if args.calibrate_on == "target" else "interval and confidence calibrated on every training subject")
              + (", on one student per calibration subject (--calibration-students subjects))"
                 if getattr(args, "calibration_students", "inner") == "subjects" else ")")
              + f"; SiamQuality pretraining per outer fold: {args.pretrain}"
              + pretrain_corpus_text(args)
              + (f" (the time-domain teacher: {args.time_teacher_pretrain})"
                 if time_teacher and args.pretrain != "none" else "") + "; student recipe: "
              + ("chosen per fold by inner CV (--recipe inner)" if args.recipe == "inner" else
                 f"KD {args.kd:g} gated at {args.kd_gate_bpm:g} BPM, motion windows {args.motion_frac:g}")
              + ("" if getattr(args, "inner_kd", 1) else
                 "; the inner and calibration students without KD (--inner-kd 0)")
              + f" (PPG motion amplitude {args.motion_ppg_amp} x max, {args.motion_ppg_dist}; an axis still with "
              f"probability {args.motion_axis_drop:g}{motion_on_truth_text(args)}); stretch "
              f"{args.stretch_frac:g}; epochs teacher {args.teacher_epochs}, student {args.epochs}, "
              f"QAT {args.qat_epochs}; learning rate {args.lr_schedule}"
              + (f"; {args.acc_rotations} accelerometer rotation(s) of each training recording"
                 if args.acc_rotations else "")
              + (f"; accelerometer turned about z to gravity on +y where its x-y part is >= {args.acc_yaw:g} g"
                 if getattr(args, "acc_yaw", 0) else "") + ".")
    atomic_write_text(out / f"{stem}.md", f"# {__doc__.splitlines()[0]}\n\n" + "\n".join(md) +
                      f"\n{recipe}\n\nwall time {wall_s / 60:.1f} min: {how}\n")
    print("\n".join(md), flush=True)


def merged_rows(files: str, flag: str = "--merge") -> tuple[dict, list, list, list]:
    """The rows of comma-separated --rows-out files of processes over disjoint folds / parts, checked: (runs
    {title: rows}, wall times, [(file, recipe)] of the files that keep one, all equal, the machine of each file
    or None). `flag`: the option that named the files, for the one-line errors."""
    runs, walls, seen, twice, recipes, machines = {}, [], set(), set(), [], []
    for f in files.split(","):
        part, wall, recipe, machine = read_rows_file(f, flag)
        walls.append(wall)
        machines.append(machine)
        if recipe is not None:
            recipes.append((f, recipe))
        keys = {f"{r['dataset']}:{r['subject']}" for r in part.get("loso", [])}    # held out in this file
        twice |= keys & seen
        seen |= keys
        for t, rows in part.items():
            if t != "loso" and t in runs:
                twice.add(t)
            runs.setdefault(t, []).extend(rows)
    twice = sorted(twice)
    if twice:
        raise SystemExit(f"{flag}: held-out subject(s) {', '.join(twice)} appear in two files")
    for f, recipe in recipes[1:]:                          # one report = one recipe: the files' own, not this call's
        diff = sorted(k for k in set(recipe) | set(recipes[0][1])
                      if k not in PROCESS_ARGS and recipe.get(k) != recipes[0][1].get(k)
                      and not (k in LATER_RECIPE_KEYS and not (k in recipe and k in recipes[0][1])))
        if diff:
            raise SystemExit(f"{flag}: {f} was run with another recipe than {recipes[0][0]} "
                             f"({', '.join(diff)} differ)")
    return runs, walls, recipes, machines


def merge(args, argv) -> None:
    """One report from the --rows-out files of processes over disjoint folds / parts."""
    runs, walls, recipes, machines = merged_rows(args.merge)
    if recipes:
        vars(args).update(recipes[0][1])
        for k in LATER_RECIPE_KEYS:                   # one file without it: the merged report cannot say it
            if not all(k in r for _, r in recipes):
                vars(args).pop(k, None)
    args.rows_out = ""
    machine = machines[0] if all(m == machines[0] for m in machines) else None   # one machine, as the files say
    report(args, argv, runs, max(walls), len(walls), machine or {"cpu_count": None, "threads": None})


COMPARED = ("int8", "student", "teacher")


def subject_maes(rows) -> dict:
    """{subject key: {method: MAE over its windows}} for the compared methods."""
    return {k: {m: float(np.nanmean(abs_errors(rs, m))) for m in COMPARED} for k, rs in by_subject(rows).items()}


def paired_difference(pairs: list[tuple[dict, dict]]) -> dict:
    """A - B of two arms on the same subjects, one (A, B) pair of `subject_maes` per seed: per subject and method
    the difference averaged over the pairs, and over subjects its mean, t-interval and sign-flip permutation p
    (`core.metrics.paired_subject_test`; a difference is claimed only where p < 0.05 and the interval excludes 0)."""
    subjects = sorted(set.intersection(*(set(a) & set(b) for a, b in pairs)))
    if not subjects:
        raise SystemExit("--compare: the two arms share no held-out subject")
    out = {"subjects": subjects, "pairs": len(pairs)}
    for m in COMPARED:
        a = np.array([[p[0][k][m] for k in subjects] for p in pairs]).mean(axis=0)          # (S,)
        b = np.array([[p[1][k][m] for k in subjects] for p in pairs]).mean(axis=0)
        out[m] = paired_row(float(a.mean()), float(b.mean()), dict(zip(subjects, (a - b).tolist())))
    return out


def paired_row(a: float, b: float, per_subject: dict) -> dict:
    """One method's row of a comparison: the arms' means, the per-subject differences and their test."""
    t = paired_subject_test(list(per_subject.values()))
    return {"a": a, "b": b, "diff": t["mean"], "ci95": t["ci95"], "p": t["p"], "ci_method": t["method"],
            "per_subject": {k: nan_if_none(v) for k, v in per_subject.items()},
            "claim": ("A lower" if t["mean"] < 0 else "B lower") if t["shown"] else "no difference shown"}


def compare(args) -> None:
    """--compare A --against B (repeated, one pair of comma-separated --rows-out lists per seed): the paired
    difference A - B of two arms run on the same folds, per run, subject and method (`paired_difference`).
    Writes hr_spectral_<protocol>_compare.{json,md}."""
    if len(args.compare) != len(args.against):
        raise SystemExit(f"--compare: {len(args.compare)} arm A list(s) but {len(args.against)} --against")
    arms = [(merged_rows(a, "--compare"), merged_rows(b, "--against")) for a, b in zip(args.compare, args.against)]
    recipe = lambda arm: arm[2][0][1] if arm[2] else {}                                   # noqa: E731
    differ = {k for a, b in arms for k in set(recipe(a)) | set(recipe(b)) if recipe(a).get(k) != recipe(b).get(k)}
    shown = ({"seed", "pretrain", "teacher", "student", "lr_schedule", "recipe"}
             | differ - {"compare", "against", *PROCESS_ARGS})
    name = lambda arm: ", ".join(f"{k} {v}" for k, v in sorted(recipe(arm).items()) if k in shown)  # noqa: E731
    results = {"protocol": args.protocol, "compare": args.compare, "against": args.against,
               "arms": "; ".join(f"A: {name(a)} / B: {name(b)}" for a, b in arms), "titles": {}}
    for key in ["loso", *(k for k, _ in CROSS)]:
        pairs = [(subject_maes(a[0][key]), subject_maes(b[0][key])) for a, b in arms if key in a[0] and key in b[0]]
        if pairs:
            results["titles"][key] = titles(args, arms[0][0][0])[key]
            results[key] = paired_difference(pairs)
    write_compare(results, Path(args.out), f"hr_spectral_{args.protocol}_compare")


def restate(path: str, out: str) -> None:
    """--restate FILE: a comparison JSON written by --compare, its statistics recomputed from the per-subject
    differences it holds (e.g. after the test changed) and both files rewritten under --out, same stem."""
    f = Path(path)
    try:
        results = read_json(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"--restate {path}: not a readable comparison JSON ({type(e).__name__})")
    keys = [k for k in ["loso", *(k for k, _ in CROSS)] if isinstance(results.get(k), dict)]
    if not keys or any(m not in results[k] for k in keys for m in COMPARED):
        raise SystemExit(f"--restate {path}: not a --compare JSON (no per-method rows)")
    for k in keys:
        for m in COMPARED:
            r = results[k][m]                               # an arm's mean NaN: null in the file
            results[k][m] = paired_row(nan_if_none(r["a"]), nan_if_none(r["b"]), r["per_subject"])
    md = f.with_suffix(".md")                               # files written before the JSON kept the arms' recipes
    if "arms" not in results and md.is_file():
        lead = "Arms (their files' recipes): "
        results["arms"] = next((ln[len(lead):].rstrip(".") for ln in md.read_text().splitlines()
                                if ln.startswith(lead)), "")
    known = {"loso": LOSO_TITLE.get(results.get("protocol"), "LOSO"), **dict(CROSS)}   # files written before titles
    results["titles"] = {k: results.get("titles", {}).get(k, known.get(k, k)) for k in keys}
    write_compare(results, Path(out), f.stem)


def write_compare(results: dict, out: Path, stem: str) -> None:
    md = []
    for key, title in results["titles"].items():
        d = results[key]
        md += [f"### {title}", "", f"A - B, mean of subjects' MAE (BPM), averaged over {d['pairs']} pair(s) of runs; "
               "95 % CI: t-interval over subjects; p: two-sided sign-flip permutation test over subjects (a "
               "difference is claimed only where p < 0.05 and the CI excludes 0).", "",
               "| method | A | B | A - B [95 % CI] | p | | per subject |", "|---|---|---|---|---|---|---|"]
        md += [f"| {m} | {d[m]['a']:.2f} | {d[m]['b']:.2f} | {d[m]['diff']:+.2f} [{d[m]['ci95'][0]:+.2f}, "
               f"{d[m]['ci95'][1]:+.2f}] | {d[m]['p']:.3f} | {d[m]['claim']} | "
               + ", ".join(f"{k.split(':')[-1]} {v:+.2f}" for k, v in d[m]["per_subject"].items()) + " |"
               for m in COMPARED]
        md.append("")
    if results.get("arms"):
        md += [f"Arms (their files' recipes): {results['arms']}."]
    else:                                                   # a comparison written before the arms were kept
        md += [f"Arms: --compare {'; '.join(results.get('compare', []))} / --against "
               f"{'; '.join(results.get('against', []))}."]
    out.mkdir(parents=True, exist_ok=True)
    write_metrics(out, results, f"{stem}.json")
    text = "# Two arms of hr_spectral.py on the same folds, paired by subject\n\n" + "\n".join(md) + "\n"
    atomic_write_text(out / f"{stem}.md", text)
    print(text, flush=True)


def default_parts(args) -> tuple[str, ...]:
    """The runs of a whole report: LOSO, and for wrist_exercise beside SP Cup also both cross-dataset runs."""
    if args.protocol == "wrist" and (target_name(args) != WRIST or trained_beside(args) != "troika"):
        return ("loso",)
    return DEFAULT_PARTS[args.protocol]


def target_corpus(args, scfg, log) -> tuple[list, dict]:
    """The wrist protocol's target (--target: a built-in name, or a dataset.yaml / a folder holding one) as
    front-end recordings with heart-rate truth, and its raw records for the baseline and the pairs."""
    from sqtool.data.dataset_file import resolve_data
    from sqtool.data.dataset_tasks import hr_corpus_from_dataset
    ref = resolve_data(args.target, DATA)                      # a built-in name reads its shipped dataset file
    if ref.kind != "dataset":
        raise SqtoolError(f"--target {args.target}: expected a built-in dataset or a dataset.yaml (or a folder "
                          f"holding one), got a {ref.kind}")
    corpus = hr_corpus_from_dataset(ref.dataset, scfg, log)
    keys = {(r.dataset, r.record_id) for r in corpus}
    records = {(rec.dataset, str(rec.record_id)): rec for rec in ref.dataset.records()}
    return corpus, {k: v for k, v in records.items() if k in keys}


def scorable(corpus: list, log) -> list:
    """The recordings of the subjects with at least one scorable window (finite truth); a subject without one is
    left out of every fold (trained on it teaches nothing, held out it has no error to score), one line each."""
    n = {}
    for r in corpus:
        n[r.key] = n.get(r.key, 0) + int(np.isfinite(r.y).sum())
    empty = sorted(k for k, v in n.items() if v == 0)
    for k in empty:
        log(f"left out: subject {k} has no scorable window (its heart-rate truth is NaN throughout)")
    if empty:
        log(f"left out: {len(empty)} subject(s) without a scorable window")
    return [r for r in corpus if r.key not in empty]


def check_folds(args, parts, sp: list, wr: list, error) -> list[str]:
    """The held-out subject keys of the LOSO run (--folds picks some by key or by subject name), checked before
    any training: an unknown --folds name lists the valid keys, and every fold (and cross-dataset run) must
    leave at least 2 training subjects for the inner cross-validation. `error` must not return."""
    keys = sorted({r.key for r in (sp if args.protocol == "spcup" else wr)})
    heldout = keys if "loso" in parts else []
    if args.folds:
        want = [f for f in args.folds.split(",") if f]
        unknown = [f for f in want if not any(f in (h, h.split(":")[-1]) for h in keys)]
        if unknown or not want:
            error(f"--folds {args.folds}: {', '.join(unknown) or 'no subject'} is not a held-out subject of this run "
                  f"(valid: {', '.join(keys) or 'none'})")
        heldout = [h for h in heldout if h in want or h.split(":")[-1] in want]
    if "loso" in parts and not heldout:
        error("no subject with a scorable window to hold out")
    pool = {r.key for r in sp + wr}
    short = [h for h in heldout if len(pool - {h}) < 2]
    for key, _ in CROSS:
        trained = {r.key for r in (sp if key == "sp2wr" else wr)}
        if key in parts and len(trained) < 2:
            short.append(key)
    if short:
        error(f"{', '.join(short)}: fewer than 2 training subjects ({len(pool)} subject(s) with a scorable window in "
              f"all); the inner cross-validation needs 2 or more (--train-also troika adds SP Cup's 12)")
    return heldout


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """--help with each option's default, except the empty ones (their help says what empty means)."""

    def _get_help_string(self, action):
        if action.default is None or (isinstance(action.default, (str, list)) and not action.default):
            return action.help
        return super()._get_help_string(action)


def main(argv=None):
    global DATA
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsHelp)
    ap.add_argument("--protocol", choices=("spcup", "wrist"), default="spcup",
                    help="spcup: SP Cup 2015 LOSO; wrist: wrist_exercise or your --target, LOSO (module docstring)")
    ap.add_argument("--target", default=WRIST, help="wrist protocol: the dataset held out subject by subject, a "
                    "built-in name or YOUR dataset.yaml (README, 'Your own data')")
    ap.add_argument("--train-also", default="troika", help="wrist protocol: built-in datasets trained on beside "
                    "the target's other subjects, comma-separated; '' = the target's subjects only")
    ap.add_argument("--data-root", default="", help=DATA_ROOT_HELP)
    add_training_args(ap)
    ap.add_argument("--folds", default="", help="comma-separated held-out subject keys (default: all)")
    ap.add_argument("--parts", default="", help="wrist protocol: comma-separated runs among loso, sp2wr, wr2sp "
                    "(default: all three, or loso with --folds; spcup: loso)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"),
                    help="folder written: hr_spectral_<protocol>[_<target>][_only|_with_<datasets>][_partial].json "
                         "(summaries, recipe, provenance) and .md (the report), and that stem's [_<folds>]_rows.json "
                         "(per-window rows, rewritten after each fold) unless --rows-out names another file")
    ap.add_argument("--rows-out", default="", help="write this run's per-window rows (JSON) for --merge here, after "
                    "each fold (default: the report's stem [+ _<folds>] + _rows.json under --out)")
    ap.add_argument("--merge", default="", help="comma-separated --rows-out files of processes over disjoint "
                    "folds / parts (e.g. two processes of one core each): one report, no training")
    ap.add_argument("--compare", action="append", default=[], metavar="A.json,...",
                    help="with --against: --rows-out files of arm A (one seed; repeat the pair for more seeds): "
                         "the paired difference A - B per subject, no training")
    ap.add_argument("--against", action="append", default=[], metavar="B.json,...",
                    help="--rows-out files of arm B, the same folds as the --compare before it")
    ap.add_argument("--restate", default="", metavar="COMPARE.json",
                    help="a --compare JSON: its statistics recomputed from the per-subject differences it holds, "
                         "both files rewritten under --out (same stem), no training")
    args = ap.parse_args(argv)
    if args.restate:
        return restate(args.restate, args.out)
    if args.compare or args.against:
        return compare(args)
    if args.merge:
        return merge(args, argv)
    check_models(args)
    log = lambda m: print(m, flush=True)  # noqa: E731
    if args.protocol != "wrist" and (args.target != WRIST or args.train_also != "troika"):
        ap.error(f"--target / --train-also apply to --protocol wrist only (this run is --protocol {args.protocol}): "
                 "add --protocol wrist")
    also = tuple(d for d in args.train_also.split(",") if d) if args.protocol == "wrist" else ("troika",)
    # the options' own checks, before the data root is needed
    parts = args.parts.split(",") if args.parts else (list(default_parts(args)) if not args.folds else ["loso"])
    bad = sorted(set(parts) - {"loso", *(k for k, _ in CROSS)})
    if bad or (args.protocol == "spcup" and parts != ["loso"]) or (set(parts) - {"loso"} and also != ("troika",)):
        ap.error(f"--parts {args.parts}: the SP Cup protocol runs loso; the wrist protocol loso, sp2wr and wr2sp "
                 "(the last two need --train-also troika)")
    if args.protocol == "wrist" and args.target in also:
        ap.error(f"--target {args.target} is also in --train-also {args.train_also}: its held-out subject would be "
                 "trained on")
    if also:
        DATA = Path(data_root_or_exit(args.data_root, ap.error))
    else:                           # yours only: no project data is read, unless a data root holds unlabeled/
        try:
            root = resolve_data_root(args.data_root or None)
        except SqtoolError as e:
            ap.error(str(e))
        DATA = Path(root) if root is not None else None
    args.data_root = str(DATA or "")                            # the resolved root, as the JSON records it
    args.pretrain_unlabeled = len(unlabeled_wrist()) if args.pretrain == "real" else 0
    if args.pretrain_unlabeled:
        log(f"pretraining pairs: the training recordings of each fold and {args.pretrain_unlabeled} unlabeled "
            f"smartwatch recordings ({DATA / 'unlabeled'}), as the docstring says; never the held-out subject's")
    torch.set_num_threads(1)
    scfg = get_model_cfg(args.student)
    t0 = time.time()
    try:
        sp = hr_corpus(DATA, also, scfg, log=log) if also else []
        records = load_records(also)
        wr = []
        if args.protocol == "wrist":
            wr, target_records = target_corpus(args, scfg, log)
            records.update(target_records)
    except SqtoolError as e:
        ap.error(str(e))
    if args.acc_yaw:
        sp, wr = (yaw_aligned(c, records, scfg, args.acc_yaw, log) for c in (sp, wr))
    log(f"front end: {len(sp) + len(wr)} recordings in {time.time() - t0:.0f} s")
    sp, wr = scorable(sp, log), scorable(wr, log)
    heldout = check_folds(args, parts, sp, wr, ap.error)
    # every finished fold's rows are kept as it finishes (--rows-out, else default_rows_path beside the report): a
    # killed run keeps them for --merge (no resume: a new run starts over and rewrites the file)
    named = {"loso": [{"dataset": d} for d in sorted({r.dataset for r in wr})]}          # the report's name
    rows_path = Path(args.rows_out) if args.rows_out else default_rows_path(args, named, parts)
    if rows_path.exists():
        log(f"note: {rows_path} exists; it is rewritten as this run's folds finish (no resume)")
    runs = {}
    keep = lambda: dump_rows(runs, rows_path, time.time() - t0, recipe_args(args))    # noqa: E731
    if "loso" in parts:
        pool, runs["loso"] = sp + wr, []
        for h in heldout:
            log(f"fold: held-out {h}")
            runs["loso"] += run_fold([r for r in pool if r.key != h], [r for r in pool if r.key == h], args,
                                     records, log)
            keep()
    if args.protocol == "wrist":
        for key, title in CROSS:
            if key in parts:
                log(title)
                tr, te = (sp, wr) if key == "sp2wr" else (wr, sp)
                runs[key] = run_fold(tr, te, args, records, log)
                keep()
    report(args, argv, runs, time.time() - t0)
    log(f"per-window rows of every fold: {rows_path} (kept after each fold; --merge reads them)")


if __name__ == "__main__":
    main()
