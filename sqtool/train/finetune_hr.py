"""Fine-tune a spectral heart-rate model (`spec_*`): subject folds, decoder selection, final model.

    sqtool train finetune --task hr --model spec_teacher_m [--datasets troika,wrist_exercise] [--folds 0]
    sqtool train finetune --task hr --model spec_teacher_m --data my_watch/dataset.yaml [--datasets troika]
    sqtool train finetune --task hr --model spec_teacher_m --data watch_v2/dataset.yaml \
        --datasets troika,watch_v1/dataset.yaml     # another file of your own beside: its path is recorded

1. Every labelled recording of the datasets -> int16 -> the fixed-point firmware front end
   (`data.hr_spectra`): the network is trained on the codes the device computes.
   Held-out subjects (`data.heldout`, the rule `sqtool quantize` shares: --heldout-subjects, else the dataset
   file's split, else the last --heldout-fraction (0.2) of the sorted subjects; --heldout-fraction 0: none) are
   left out of every step below; the run records them (metrics.json and model.pt's train_cfg
   `heldout_subjects`) and quantize evaluates the student on them, so neither model ever trained on them.
   A training recording without a window that has truth (shorter than one window; every window a gap or without a
   label value) is left out with one `note: left out <recording>: <why>` line and is no subject (`data.hr_spectra.with_truth`);
   none left: one error line. The front end reads the model's own channels, rate, window and hop: --channels,
   --fs, --window-s, --hop-s other than those are one line before any work (`check_spectral_options`).
2. Subject folds (0 = leave one subject out) of the training subjects: per fold a fresh model trained on the others
   (`hr_bins.train_bins`: Gaussian-target cross-entropy on the bins; `freq_stretch` of the windows
   frequency-stretched, the rest shifted; `motion_frac` with an added arm-motion peak away from the truth),
   logits of the held-out subject kept (out-of-fold).
3. The decoder (transition sigma, jump floor, logit temperature, then the interval's nominal mass calibrated
   to 90 % coverage and the confidence half-width that best ranks errors) is chosen on those out-of-fold
   logits (`hr_bins.select_decoder`), i.e. on predictions for subjects the models never saw; its figures per
   subject (decoded MAE with a 95 % batch-means CI over its windows) are the run's metrics, with the mean of
   subjects per dataset beside the headline (`per_dataset`: the headline over a team's few subjects beside SP
   Cup's 12 is mostly SP Cup's).
   `--init RUN` (a `sqtool train pretrain --model <this spectral model>` run: SiamQuality on real
   (good, poor) spectral pairs, `data pairs --model <it>`) starts every fold's and the final model's encoder
   from the pretrained one (`spectral.load_encoder`; another architecture or front end is refused). Pairs mined
   over all subjects are label-free, but then the held-out folds' recordings were seen in pretraining: mine
   them without the evaluated subjects for a subject-held-out figure (benchmarks/hr_spectral.py --pretrain real
   does so per fold).
4. A final model on all training subjects -> model.pt (kind teacher_task) whose model_cfg carries the decoder;
   oof_logits.npz (the out-of-fold logits per window of the training subjects) is what `sqtool quantize`
   distils from.

Resume (fold level, as the time-domain `train.finetune`): each finished fold's out-of-fold logits are written
atomically to `folds/fold_<k>.npz` with a key (sha256 of the config fields that shape training, the corpus and
the subject split). `run_finetune_hr(..., resume=True)` (`sqtool train finetune --resume RUN`) reuses every
fold whose file carries the same key and trains only the rest, then the final model: metrics, oof_logits.npz
and model.pt equal an uninterrupted run's bit for bit (every fold and the final fit seed themselves). A fold
file with another key is refused (one line naming what changed: `fold_inputs_hr`), never mixed in.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, atomic_save_npz, write_metrics
from sqtool.core.metrics import block_windows, mae_batch_ci
from sqtool.core.trainlog import FINETUNE_COLUMNS, TrainLog, start_fit
from sqtool.data.heldout import file_split, heldout_keys
from sqtool.data.hr_spectra import as_model_input, default_datasets, hr_corpus, with_truth
from sqtool.data.tasks import folds_note, subject_folds
from sqtool.train.collapse import init_collapse_warning

HR_BINS_METRICS = ("mae_bpm", "mae_raw_bpm")


def mae_ci(err: np.ndarray, block: int = 1, groups=None) -> tuple[float, float, float]:
    """(MAE, lo, hi): the mean of the finite absolute errors and its 95 % interval: one subject's windows in time
    order, in batches of `block` within each recording of `groups` (core.metrics.mae_batch_ci, from 0 at least);
    block 1: independent values (subjects), the t-interval."""
    err = np.asarray(err, np.float64)
    ok = np.isfinite(err)
    return (float(err[ok].mean()) if ok.any() else float("nan"), *mae_batch_ci(err, block, groups))


def fold_key_hr(cfg, corpus, groups: list[set[str]]) -> str:
    """sha256 of what a fold's logits depend on: the training config, the corpus (codes, truth), the split."""
    import hashlib
    import json

    from sqtool.core.changes import hash_arrays, keyed_fields
    from sqtool.train.finetune import _NOT_IN_KEY, init_identity
    h = hashlib.sha256()
    c = keyed_fields(cfg, _NOT_IN_KEY)
    h.update(json.dumps(c, sort_keys=True, default=str).encode() + init_identity(cfg))
    for r in corpus:
        h.update(f"{r.record_id}|{r.key}|".encode())
        hash_arrays(h, (r.x, r.y, r.flagged))
    h.update(json.dumps([sorted(g) for g in groups]).encode())
    return h.hexdigest()


def fold_inputs_hr(cfg, corpus, groups: list[set[str]], heldout, dataset_files: list) -> dict:
    """What `fold_key_hr` hashes, as the record a refusal names a change from (`core.changes.what_changed`): the
    config fields, the --init checkpoint, the dataset files (`dataset_file.file_record`s), the held-out subjects,
    each training recording's spectra, truth and flags (its file), the split."""
    from sqtool.core.changes import arrays_sha, inputs_record, keyed_fields
    from sqtool.train.finetune import _NOT_IN_KEY, init_identity
    init = init_identity(cfg).decode()
    return inputs_record(keyed_fields(cfg, _NOT_IN_KEY),
                         checkpoints={"--init checkpoint": (cfg.init, init)} if init else None,
                         dataset_files=dataset_files, heldout=heldout,
                         recordings={r.record_id: {"x": arrays_sha(r.x), "y": arrays_sha(r.y),
                                                   "flagged": arrays_sha(r.flagged), "subject": r.key}
                                     for r in corpus},
                         files={r.record_id: getattr(r.source, "source", "") for r in corpus},
                         split=[sorted(g) for g in groups])


def save_fold_hr(run_dir: str | Path, f: int, key: str, logits: dict[str, np.ndarray],
                 inputs: dict | None = None) -> None:
    """One finished fold: its held-out records' logits (W, bins) by record id, with the key and the `inputs` record
    (`fold_inputs_hr`)."""
    from sqtool.core.changes import record_array
    from sqtool.train.finetune import fold_path
    ids = sorted(logits)
    atomic_save_npz(fold_path(run_dir, f), key=np.asarray(key), ids=np.asarray(ids, dtype=str), **record_array(inputs),
                    **{f"logits_{i}": np.asarray(logits[r], np.float32) for i, r in enumerate(ids)})


def load_fold_hr(run_dir: str | Path, f: int, key: str, ids: list[str],
                 inputs: dict | None = None) -> dict[str, np.ndarray] | None:
    """A finished fold's logits by record id, or None when it has no file; another key: one line naming what changed
    since the fold was saved (`inputs`: this run's `fold_inputs_hr`)."""
    from sqtool.core.changes import record_of, resume_refusal
    from sqtool.train.finetune import fold_path
    p = fold_path(run_dir, f)
    if not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            k, saved, then = str(z["key"]), [str(i) for i in z["ids"]], record_of(z)
            logits = {r: z[f"logits_{i}"] for i, r in enumerate(saved)}
    except Exception as e:  # noqa: BLE001 - truncated / not an npz / missing key
        raise SqtoolError(f"cannot resume: {p} is unreadable ({type(e).__name__}); delete it to redo fold {f + 1}")
    if k != key or saved != sorted(ids):
        raise SqtoolError(resume_refusal(p, then, inputs, "another config, --init checkpoint, data or split"))
    return logits


def check_spectral_options(cfg, command: str = "train finetune") -> None:
    """--channels, --fs, --window-s and --hop-s are the time-domain models' input: a spectral model's fixed-point front
    end reads its own (the registry's channels, rate, window and hop), so a value other than the model's is one line
    naming the option and the model's value, before any data is read (none given, or the model's own: silent), as
    --band-phase is (core.check_band_phase). A PPG-only --channels names a spectral model that reads PPG only, if the
    registry has one."""
    from sqtool.core.model_cfg import signal_channels
    from sqtool.models import get_model_cfg, list_models
    from sqtool.models.spectral import SPECTRAL_FAMILY
    mcfg = get_model_cfg(cfg.model)
    given = []                                                       # (the option as given, the model's value)
    for opt, v, own, unit in (("fs", cfg.fs, mcfg.fs, " Hz"), ("window-s", cfg.window_s, mcfg.window_s, " s windows"),
                              ("hop-s", cfg.hop_s, mcfg.hop_s, " s hops")):
        if v and abs(float(v) - float(own)) > 1e-9:
            given.append((f"--{opt} {float(v):g}", f"{float(own):g}{unit}"))
    channels, hint = list(cfg.channels or ()), ""
    if channels and channels not in (list(mcfg.channels), signal_channels(mcfg.channels)):
        given.append((f"--channels {','.join(channels)}", f"channels {','.join(mcfg.channels)}"))
        if channels == ["ppg"]:
            ppg_only = [n for n in list_models() if get_model_cfg(n).family == SPECTRAL_FAMILY
                        and list(get_model_cfg(n).channels) == ["ppg"]]
            hint = (f"; {ppg_only[0]} reads PPG only" if ppg_only else
                    "; the spectral heart-rate models need the accelerometer")
    if given:
        raise SqtoolError(f"{command} {' '.join(g for g, _ in given)}: {cfg.model} is a spectral model, whose "
                          f"fixed-point front end reads {', '.join(v for _, v in given)}{hint}; "
                          + ("it is for time-domain models: leave it out" if len(given) == 1 else
                             "they are for time-domain models: leave them out"))


def sensors_seen(mcfg, corpus, log=print):
    """The model's PPG sensors cut to as many as its training recordings had: a model trained on one-sensor
    recordings (a team's own watch, the synthetic default) should not ask its firmware for two (the exported
    kit's SQ_FE_N_PPG follows frontend["ppg_sensors"]). The averaged spectra it trains on are the same."""
    from sqtool.data.hr_spectra import ppg_sensors
    seen = [r.meta.get("ppg_sensors_recorded") for r in corpus]
    sensors = ppg_sensors(mcfg)
    if not seen or None in seen or max(seen) >= len(sensors):
        return mcfg
    log(f"PPG sensors: the training recordings have {max(seen)} of the model's {len(sensors)}; it and its "
        f"firmware read {', '.join(sensors[:max(seen)])} (frontend ppg_sensors)")
    return mcfg.replace(frontend={**mcfg.frontend, "ppg_sensors": sensors[:max(seen)]})


def run_finetune_hr(cfg, run_dir: str | Path, log=print, resume: bool = False, init_ck: dict | None = None, *,
                    prepared: bool = False) -> dict:
    """`cfg` is train.finetune.FinetuneConfig (model = a spectral registry name, or a pretrained spectral run
    folder / checkpoint: then model = its architecture, init = it, as `train finetune --model RUN`), checked by
    its `validate()` as the CLI checks it (`prepare_finetune`; prepared=True: cfg and init_ck are what it returned,
    the CLI's, not prepared again). resume=True reuses the finished folds saved in run_dir/folds (see the
    module docstring). `init_ck`: the checkpoint cfg.init names when the caller has read it already (`train
    finetune --model RUN`: read once; another kind is read again to be refused in the checkpoint loader's words)."""
    from sqtool.core import resolve_data_root, set_seed
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.models import create_model, get_model_cfg
    from sqtool.models.decoder import conf_text, decode_float, interval_text
    from sqtool.models.spectral import bin_grid, check_encoder, load_encoder
    from sqtool.models.hr_bins import (BinTrainCfg, fit_decoder, held_out_bins, predict_logits, select_decoder,
                                      train_bins)
    from sqtool.models.hr_options import calibration_subjects, calibration_text, check_train_options
    from sqtool.train.finetune import check_mode, is_checkpoint_path, prepare_finetune

    run_dir = Path(run_dir)
    model_given = cfg.model
    if not prepared:
        cfg, init_ck = prepare_finetune(cfg, init_ck)  # model=RUN -> init=RUN, checked, as the CLI does
    if is_checkpoint_path(model_given) and not cfg.model:  # the CLI sends a time-domain encoder to run_finetune
        raise SqtoolError(f"model {model_given} is a time-domain encoder, not a spectral heart-rate model: "
                          f"fine-tune it with sqtool.train.finetune.run_finetune")
    if cfg.task != "hr":
        raise SqtoolError(f"model {cfg.model} is a heart-rate model: --task must be hr, got '{cfg.task}'")
    check_train_options(cfg)                           # before any data is read
    check_spectral_options(cfg)                        # --channels, --fs, --window-s, --hop-s: the model's own
    check_mode(cfg.mode, cfg.model)                    # a spectral model has no encoder + head split to probe
    twice = sorted({d for d in cfg.datasets if list(cfg.datasets).count(d) > 1})
    if twice:
        raise SqtoolError(f"--datasets names {', '.join(twice)} twice: its subjects would be trained on twice")
    ck_init = None
    if cfg.init not in ("", "none"):
        ck_init = init_ck
        if ck_init is None or ck_init["kind"] != "teacher_pretrain":    # another kind: refused in one line
            from sqtool.core.checkpoint import load_checkpoint
            ck_init = load_checkpoint(cfg.init, expect_kind="teacher_pretrain", finished=True)
    collapsed = init_collapse_warning(ck_init)          # a collapsed SimSiam init: one WARNING line
    if collapsed:
        print(collapsed, file=sys.stderr)
    from sqtool.data.dataset_file import builtin_exclude, builtin_names, dataset_layouts
    from sqtool.data.dataset_tasks import beside_entries, dataset_of, hr_corpus_beside
    synthetic = cfg.data_root == "synthetic"           # only when asked for: never a silent fallback
    ds = dataset_of(cfg.data_root)                     # a dataset.yaml or a built-in name (troika, ...)
    root = "synthetic" if synthetic else (ds.path if ds else Path(cfg.data_root) if cfg.data_root
                                          else resolve_data_root(None, required=True))
    if not ds and (files := [d for d in cfg.datasets if str(d).endswith((".yaml", ".yml"))]):
        raise SqtoolError(f"--datasets {','.join(files)}: a dataset file trains beside --data DATASET.yaml (whose "
                          f"split holds subjects out), and --data {root} is no dataset file")
    # with a dataset file: built-ins and other dataset files of your own trained on beside it (their names)
    beside = beside_entries(ds, cfg.datasets) if ds else []
    files = [d for d in beside if not isinstance(d, str)]
    datasets = ("synthetic",) if synthetic else ((ds.name, *(getattr(d, "name", d) for d in beside)) if ds
                                                 else tuple(cfg.datasets) or default_datasets(root))
    layouts = dataset_layouts([ds, *files] if ds else [])    # wrist_troika -> troika: the card's licence
    if not datasets:
        from sqtool.core.runs import dataset_folder_hint
        raise SqtoolError(f"no heart-rate dataset (troika/, wrist_exercise/) under {root}"
                          + dataset_folder_hint(root, builtin_names()))
    mcfg = get_model_cfg(cfg.model)
    bins = bin_grid(mcfg)

    def new_model():                                   # scratch, or the pretrained encoder (--init)
        m = create_model(mcfg)
        if ck_init is not None:
            load_encoder(m, mcfg, ck_init, where=f"--init {cfg.init}")
        return m
    if ck_init is not None:
        check_encoder(mcfg, ck_init, where=f"--init {cfg.init}")   # refused before any data is read
    t0 = time.time()
    corpus, beside_root = (hr_corpus_beside(ds, beside, mcfg, log, seed=cfg.seed) if ds
                           else (hr_corpus(root, datasets, mcfg, log=log, seed=cfg.seed), None))
    if cfg.max_records:
        corpus = corpus[:cfg.max_records]
    try:
        split = file_split(ds, corpus)
    except SqtoolError as e:                                      # its test subject among the recordings cut off
        if not cfg.max_records:
            raise
        raise SqtoolError(f"{e}: among the {len(corpus)} recordings --max-records {cfg.max_records} keeps (give more, "
                          "or name the held-out subjects with --heldout-subjects)") from None
    heldout, held_how = heldout_keys({r.key for r in corpus}, names=cfg.heldout_subjects, split=split,
                                     dataset=ds.name if ds else None, fraction=cfg.heldout_fraction)
    corpus = [r for r in corpus if r.key not in heldout]          # from here on: the training subjects only
    corpus, left = with_truth(corpus, mcfg.window_s)              # no window to train on: left out, said once each
    if left and not corpus:
        raise SqtoolError(f"--data {root}: no training recording has a window with heart-rate truth ({len(left)} "
                          f"left out, e.g. {'; '.join(left[:3])})")
    for why in left:
        log(f"note: left out {why}")
    keys = sorted({r.key for r in corpus})
    if len(keys) < 2:
        raise SqtoolError(f"subject folds need >= 2 training subjects, the data has {len(keys)} beside the "
                          f"{len(heldout)} held out ({', '.join(heldout)}: {held_how}); hold out fewer "
                          "(--heldout-subjects, --heldout-fraction 0)")
    cal = calibration_subjects(corpus, cfg.calibrate_on)         # refused here, before any fold is trained
    mcfg = sensors_seen(mcfg, corpus, log)
    log(f"front end: {len(corpus)} recordings, {len(keys)} training subjects ({len(heldout)} more held out), "
        f"{sum(len(r.y) for r in corpus)} windows in {time.time() - t0:.0f} s")
    if note := few_subjects_note(ds, datasets, len(keys)):
        log(note)
    tcfg = BinTrainCfg(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       seed=cfg.seed, stretch_frac=float(cfg.freq_stretch),
                       motion_frac=float(cfg.motion_frac), motion_axis_drop=float(cfg.motion_axis_drop),
                       lr_schedule=cfg.lr_schedule)
    rkeys = np.array([r.key for r in corpus])                            # one subject key per recording
    groups = [set(rkeys[te]) for _, te in subject_folds(rkeys, max(cfg.folds, 0) or None, cfg.seed)]
    if note := folds_note(cfg.folds, len(groups)):
        log(note)
    oof: dict[str, np.ndarray] = {}
    from sqtool.core.runs import save_resolved, torch_compute
    beside_files = {f.name: str(Path(f.path).resolve()) for f in files}   # quantize reads them again from there
    save_resolved(run_dir, model=cfg.model, data_root=str(root), datasets=list(datasets), beside_files=beside_files,
                  fs=mcfg.fs, window_s=mcfg.window_s, hop_s=mcfg.hop_s, channels=list(mcfg.channels), folds=len(groups),
                  heldout_subjects=heldout, **torch_compute())
    from sqtool.data.dataset_file import file_record
    key = fold_key_hr(cfg, corpus, groups)
    inputs = fold_inputs_hr(cfg, corpus, groups, heldout, [file_record(d) for d in ([ds, *files] if ds else [])])
    resumed, curves = [], {}                                             # curves: loss per epoch per fit
    tlog = TrainLog(run_dir, FINETUNE_COLUMNS, fresh=not resume, tensorboard=cfg.tensorboard)     # RUN/log.csv
    for i, g in enumerate(groups):
        held = [r for r in corpus if r.key in g]
        done = load_fold_hr(run_dir, i, key, [r.record_id for r in held], inputs) if resume else None
        if done is not None:
            oof.update(done)
            resumed.append(i)
            log(f"hr fold {i + 1}/{len(groups)} ({subjects_text(g)}): reused from {run_dir / 'folds'}")
            continue
        set_seed(cfg.seed)
        t_fold = time.time()
        tr = [r for r in corpus if r.key not in g]
        m = new_model()
        held_out = held_out_bins(np.concatenate([as_model_input(r.x) for r in held]),
                                 np.concatenate([r.y for r in held]), bins, tcfg.target_sigma_bpm)
        rows = curves[f"fold {i + 1}"] = start_fit(tlog, f"fold {i + 1}", held_out)
        train_bins(m, *labelled(tr, cfg, i), bins, tcfg, log=lambda ep, loss, lr: rows.add(loss, lr, m))
        for r in held:
            oof[r.record_id] = predict_logits(m, as_model_input(r.x))
        save_fold_hr(run_dir, i, key, {r.record_id: oof[r.record_id] for r in held}, inputs)
        hr_curve(run_dir, curves, cfg.model)                              # the plot as of this fold's file
        raw = np.concatenate([np.abs(bins[oof[r.record_id].argmax(1)] - r.y) for r in held])
        log(f"hr fold {i + 1}/{len(groups)} ({subjects_text(g)}): MAE {np.nanmean(raw):.2f} BPM (per-window "
            f"argmax, before decoding) on {int(np.isfinite(raw).sum())} held-out windows ({time.time() - t_fold:.0f} s)")
    log(f"choosing the decoder on the out-of-fold logits of {len(corpus)} recordings (then one per fold for the "
        "out-of-fold figures) ...")
    base = fit_decoder([r.y for r in corpus], mcfg.arch["bins_bpm"], mcfg.hop_s)
    decoded: dict = {}                                   # step 1's decodes of the grid's candidates, shared by folds
    dec = select_decoder([oof[r.record_id] for r in corpus], [r.y for r in corpus], [r.key for r in corpus], base,
                         calibrate_groups=cal, valid=[r.valid for r in corpus],
                         ids=[r.record_id for r in corpus], decoded=decoded)
    log(f"decoder on out-of-fold logits: sigma {dec['sigma_bpm']:.2f} BPM, floor {dec['floor']:.0e}, "
        f"temperature {dec['temperature']:g}, emission floor {dec.get('emission_floor', 0.0):g}, interval {interval_text(dec)} (out-of-fold coverage "
        f"{dec['inner_coverage']:.3f}; the posterior's {dec['inner_coverage_nominal']:.3f} at mass 0.9, on "
        f"{dec['inner_calibration_windows']} windows{calibration_text(cfg.calibrate_on)}), "
        f"confidence: {conf_text(dec)}")
    # the out-of-fold figures and the skill test decode each fold's subjects with a decoder chosen WITHOUT them (on
    # the other folds' out-of-fold logits), as the classic baseline's notch is chosen per fold: `dec`, chosen on
    # every subject's, is the final model's, but it has seen the truth of the subjects it would score
    fold_dec = fold_decoders(corpus, groups, oof, mcfg, cal, decoded)
    hr_oof = {r.record_id: decode_float(oof[r.record_id], d, r.valid, r.x)["hr"]
              for g, d in zip(groups, fold_dec) for r in corpus if r.key in g}
    sigmas = sorted({round(float(d["sigma_bpm"]), 2) for d in fold_dec})
    temps = sorted({float(d["temperature"]) for d in fold_dec})
    log(f"out-of-fold figures: each fold's subjects decoded with the decoder chosen on the other folds' out-of-fold "
        f"logits (sigma {', '.join(f'{v:.2f}' for v in sigmas)} BPM, temperature {', '.join(f'{v:g}' for v in temps)})")
    per_subject, errs, errs_raw = [], [], []
    for s in keys:
        rs = [r for r in corpus if r.key == s]
        e = np.concatenate([np.abs(hr_oof[r.record_id] - r.y) for r in rs])
        er = np.concatenate([np.abs(bins[oof[r.record_id].argmax(1)] - r.y) for r in rs])
        rec = np.concatenate([[r.record_id] * len(r.y) for r in rs])
        m, lo, hi = mae_ci(e, block_windows(mcfg.hop_s), rec)
        per_subject.append({"subject": s, "windows": int(np.isfinite(e).sum()), "mae_bpm": m, "ci95": [lo, hi],
                            "mae_raw_bpm": float(np.nanmean(er))})
        errs.append(e)
        errs_raw.append(er)
    metrics = {"task": "hr", "model": cfg.model, "datasets": list(datasets), "dataset_layouts": layouts,
               "subjects": len(keys),
               "heldout_subjects": heldout, "heldout_rule": held_how, "init_collapsed": bool(collapsed),
               "windows": int(sum(np.isfinite(r.y).sum() for r in corpus)),
               "folds": "leave-one-subject-out" if len(groups) == len(keys) else f"{len(groups)} subject folds",
               "primary_metric": "mae_bpm",
               "mae_bpm": float(np.mean([p["mae_bpm"] for p in per_subject])),
               "mae_bpm_pooled": float(np.nanmean(np.concatenate(errs))),
               "mae_raw_bpm": float(np.mean([p["mae_raw_bpm"] for p in per_subject])),
               "ci95": {"mae_bpm": list(mae_ci(np.array([p["mae_bpm"] for p in per_subject]))[1:])},
               "per_subject": per_subject, "per_dataset": per_dataset(per_subject, corpus, datasets),
               "decoder": dec, "n_folds": len(groups), "resumed_folds": resumed,
               "excluded_records": [f"{f.name}/{k} ({v})" for f in ([ds, *files] if ds else [])
                                    for k, v in f.report.get("excluded", {}).items()]
                                   + [f"{n}/{k} ({v})" for n in (beside if ds else datasets)
                                      if n in builtin_names() for k, v in builtin_exclude(n).items()]}
    metrics["skill"] = _skill_hr(corpus, groups, hr_oof, cfg, mcfg)
    metrics["flag"] = metrics["skill"]["flag"]
    atomic_save_npz(run_dir / "oof_logits.npz", **{r.record_id: oof[r.record_id] for r in corpus})
    if cfg.final_fit:
        set_seed(cfg.seed)
        final = new_model()
        rows = curves["final fit"] = start_fit(tlog, "final fit")
        train_bins(final, *labelled(corpus, cfg, len(groups)), bins, tcfg, log=lambda ep, loss, lr: rows.add(loss, lr))
        final_cfg = mcfg.replace(decoder=dec)
        save_checkpoint(run_dir / "model.pt", kind="teacher_task", model_cfg=final_cfg.to_dict(),
                        state_dict=final.state_dict(),
                        train_cfg={**vars(cfg), "datasets": list(datasets), "dataset_layouts": layouts,
                                   "data_root": str(root),
                                   "beside_root": str(beside_root or ""), "beside_files": beside_files,
                                   "heldout_subjects": heldout},
                        metrics={k: metrics[k] for k in ("mae_bpm", "mae_raw_bpm", "subjects")},
                        heldout_subjects=list(heldout), train_subjects=keys)   # what an export's card names
        metrics["model"] = str(run_dir / "model.pt")
    metrics["wall_s"] = time.time() - t0
    hr_curve(run_dir, curves, cfg.model)
    tlog.close()
    write_metrics(run_dir, metrics)
    return metrics


FEW_SUBJECTS = 10        # below this many training subjects of one's own, SP Cup's 12 beside them carry the model


def few_subjects_note(ds, datasets, n_subjects: int) -> str:
    """One `note:` line when a dataset of one's own trains alone on few subjects: the README's advice to train
    beside SP Cup, with the figure behind it (wrist_exercise LOSO on its 4 other subjects alone errs 27.90 BPM on the
    mean of subjects, 13.97 with SP Cup's 12 beside: benchmarks/results/hr_spectral_wrist_only.md,
    hr_spectral_wrist.md).
    Empty when SP Cup is trained on already, when another dataset is beside, or with FEW_SUBJECTS or more."""
    if ds is None or len(datasets) > 1 or "troika" in datasets or n_subjects >= FEW_SUBJECTS:
        return ""
    return (f"note: {n_subjects} training subject(s) of {ds.name} alone: with few subjects of your own, train beside "
            f"SP Cup's 12 (--datasets troika; wrist_exercise's LOSO errs 27.90 BPM on the mean of subjects alone, "
            f"13.97 beside SP Cup: README 'Train beside SP Cup')")


def hr_curve(run_dir, curves: dict, model: str) -> None:
    """training_curve.png of the fits trained so far (after each fold, and at the end)."""
    from sqtool.core.progress import training_curve
    from sqtool.core.trainlog import held_out_curves
    training_curve(run_dir, curves, ylabel="loss (soft-label cross-entropy)", val=held_out_curves(run_dir),
                   title=f"fine-tune hr {model}: loss per epoch (dashed: the fold's held-out subjects)")


def subjects_text(g, k: int = 3) -> str:
    """A fold's subjects for its progress line: all of a few, else the first k and how many (a 5-fold run of 200
    subjects listed 40 per line)."""
    s = sorted(g)
    return ", ".join(s) if len(s) <= k + 1 else f"{', '.join(s[:k])}, ... ({len(s)} subjects)"


def fold_decoders(corpus, groups: list[set[str]], oof: dict, mcfg, cal: set | None,
                  decoded: dict | None = None) -> list[dict]:
    """Per fold of `groups`, the decoder `hr_bins.select_decoder` chooses on the out-of-fold logits of the OTHER
    folds' recordings only (their truth's HMM as its base; the interval and confidence calibrated on the calibration
    subjects `cal` among them, every one of them where none is left): what decodes that fold's subjects for the
    out-of-fold figures, so that no subject's truth chose the decoder it is scored with. `decoded` (select_decoder's,
    by record id): each recording is decoded once under each candidate all folds share, not once per fold."""
    from sqtool.models.hr_bins import fit_decoder, select_decoder
    decoded = {} if decoded is None else decoded
    out = []
    for g in groups:
        tr = [r for r in corpus if r.key not in g]
        base = fit_decoder([r.y for r in tr], mcfg.arch["bins_bpm"], mcfg.hop_s)
        c = None if cal is None else (set(cal) - set(g)) or None
        out.append(select_decoder([oof[r.record_id] for r in tr], [r.y for r in tr], [r.key for r in tr], base,
                                  calibrate_groups=c, valid=[r.valid for r in tr], ids=[r.record_id for r in tr],
                                  decoded=decoded))
    return out


def labelled(recs, cfg, fit: int) -> tuple[np.ndarray, np.ndarray]:
    """(x (N, C, F), y (N,)) of the training recordings' windows, --label-fraction of them when below 1 (a random
    subset, at least one batch, drawn per fit `fit`: a fold's index, or the final fit's), as the time-domain
    fine-tune subsamples its training windows."""
    x = np.concatenate([as_model_input(r.x) for r in recs])
    y = np.concatenate([r.y for r in recs])
    if cfg.label_fraction < 1 and len(y) > cfg.batch_size:
        rng = np.random.default_rng([cfg.seed, fit])
        keep = np.sort(rng.choice(len(y), max(cfg.batch_size, int(round(cfg.label_fraction * len(y)))),
                                  replace=False))
        x, y = x[keep], y[keep]
    return x, y


def per_dataset(per_subject: list[dict], corpus, datasets) -> dict:
    """{dataset: {subjects, mae_bpm (mean of its subjects' decoded MAE), ci95 (t-interval over them; None with one
    subject), mae_raw_bpm}} in the order of `datasets` (a team's own file first): a headline over SP Cup's 12
    subjects beside a team's 3 is mostly SP Cup's."""
    of = {r.key: r.dataset for r in corpus}
    out = {}
    for d in datasets:
        rows = [p for p in per_subject if of.get(p["subject"]) == d]
        if rows:
            m = np.array([p["mae_bpm"] for p in rows])
            ci = list(mae_ci(m)[1:]) if len(rows) > 1 else None
            out[d] = {"subjects": len(rows), "mae_bpm": float(np.mean(m)), "ci95": ci,
                      "mae_raw_bpm": float(np.mean([p["mae_raw_bpm"] for p in rows]))}
    return out


def _skill_hr(corpus, groups, hr_oof: dict, cfg, mcfg) -> dict:
    """The decoded out-of-fold HR (`hr_oof`, per record) beside the trivial predictor (each fold's training mean
    HR) and the classic spectral baseline (`data.hr_baseline`: its notch width and PPG sensors chosen on each
    fold's training subjects, `NestedBaseline.out_of_fold`), on the same windows: `core.metrics.skill_block`
    (skill and vs_classic over subjects, flags), plus the baseline's setting per fold."""
    from sqtool.core.metrics import skill_block
    from sqtool.data.hr_baseline import NestedBaseline, sensor_options
    from sqtool.data.hr_spectra import ppg_sensors
    classic, chosen, why = None, [], None
    if all(r.source is not None for r in corpus):
        classic, chosen = NestedBaseline(sensor_options(ppg_sensors(mcfg)), mcfg.window_s).out_of_fold(corpus, groups)
    else:
        why = "the raw recordings were not kept (a corpus made elsewhere): see the baseline row of sqtool bench"
    y, pred, triv, cl, grp = [], [], [], [], []
    for g in groups:
        mean = float(np.nanmean(np.concatenate([r.y for r in corpus if r.key not in g])))
        for r in (r for r in corpus if r.key in g):
            ok = np.isfinite(r.y)
            y.append(r.y[ok])
            pred.append(hr_oof[r.record_id][ok])
            triv.append(np.full(int(ok.sum()), mean))
            cl.append(classic[r.record_id][ok] if classic is not None else np.zeros(int(ok.sum())))
            grp += [r.key] * int(ok.sum())
    y, pred, triv, cl = (np.concatenate(a)[:, None] for a in (y, pred, triv, cl))
    name = "spectral peak with accelerometer subtraction and tracking, notch chosen on each fold's training subjects"
    block = skill_block("hr", y, np.array(grp), pred, triv, (cl, name) if classic is not None else (None, why),
                        n_boot=cfg.bootstrap, seed=cfg.seed)
    if chosen:
        block["classic"]["per_fold"] = chosen
    return block
