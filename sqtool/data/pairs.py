"""Pair mining for SiamQuality pretraining: (good, poor) 30 s windows of the same subject, near in time.

    sqtool data pairs [--data ROOT | --data PATH ... | --data synthetic] --out DIR [--max-gap-s 300]
                      [--model NAME | --window-s 30 --fs 40] [--workers N] [--shard-mb 256]
                      [--synthetic-partners]
    sqtool data pairs --resume DIR             # continue a killed or interrupted run

`--data` is a data root (a folder of dataset folders such as ../shared/data, or of one's own dataset folders each
with its dataset.yaml: every dataset in it is mined, a dataset.yaml's through it), one or more dataset folders or
recording files, or 'synthetic' (the embedded synthetic corpus, also the default when no data root is found). Two
--data entries that reach the same recording file (a dataset.yaml and its own folder, the same path twice) are one
line: its pairs would be mined twice, as two datasets. `--data-root DIR` and `--input PATH ...` are the old,
deprecated spellings.

For every record: resample the whole record to the model rate, cut windows (window_s, hop_s), score each
RAW window with the signal quality index (`quality.py`, with the accelerometer when the record has
one), and pair every good window (score > threshold) with the nearest-in-time poor window (score <=
threshold) of the same record whose start is at most `max_gap_s` away and that does not overlap it (ties: the
earlier one). Not overlapping: |t_good - t_poor| >= window_s, since with `--hop-s` shorter than the window the
nearest poor window may share most of its samples (`overlap_rejected` in pair_stats counts such nearest partners
rejected; the default hop, the window, rejects none; the spectral pairs, `spectral_record_pairs`, keep the nearest
poor window as the heart-rate benchmarks measured them). A poor
window may serve several good ones; a good window is used once. The pair is stored as model input:
band-passed (0.5-8 Hz) and normalised per window and channel (min-max by default), float16.

Same subject, near in time: pairs are made within one record (one continuous recording of one subject),
because records of the same subject carry no common clock (BUT PPG sessions, TROIKA runs). A subject
with no poor window within reach gives no pair, unless `--synthetic-partners` is set (old spelling
`--synthetic-fallback`): then the good window's partner is a copy corrupted by `synthetic.corrupt`
(motion burst, clipping, dropout or wander), flagged `synthetic` in the shard metadata and counted apart.
Without that flag a corpus holds real pairs only; index.json and metrics.json say which
(`synthetic_partners`, `real_pairs`, `synthetic_pairs`). A corpus that yields no pair at all (e.g. a
dataset whose windows are all good) is one SqtoolError line naming each dataset's good / poor counts.

Without --model, a window contract (--fs, --window-s, --channels, --norm, band) that no registered model reads is
refused before anything is mined, in the words of the `next:` line; `--own-model` mines it anyway (pairs for a
model of one's own). `--model NAME` takes the window contract (fs, window_s, channels, norm, band) from a registered
model, so windows shorter than 30 s are made exactly where a model config asks for them (resnet1d_siamq_tiny_10s).
A spectral model (`spec_teacher_m`, ...) gets pairs of what it reads: each record goes through the model's
fixed-point front end (`hr_spectra.record_spectra`: PPG + accelerometer spectra, its window and hop) and each
front-end window is scored by the same quality index on the raw window at the same start (with the
accelerometer); a pair is (C, F) model input (codes / 127). Records without the model's channels (no
accelerometer) are counted as `unusable_records`, not an error; synthetic partners do not apply.

Pair statistics per dataset (records, subjects, subjects with pairs, windows, good, poor, real and
synthetic pairs, distinct poor windows used, nearest partners rejected for overlapping, the quality gap
q_good - q_poor and the time gap |t_good - t_poor| of the real pairs: mean and median) are written to
OUT/pair_stats.json and OUT/pair_stats.md, and under "datasets" in metrics.json.

Scale: the main process lists the dataset's files (cheap; a dataset file's too: its label tables and exclude
list are checked there, no recording read); worker processes (multiprocessing Pool,
`--workers`, default all cores) each read one file at a time, window, score and pair it, and return
only the pairs; at most 2 x workers files are in flight, and `ShardWriter` holds one shard, so memory
is bounded by ~ shard_mb + workers x (one file's records) whatever the corpus size. Output:

    OUT/config.yaml  OUT/metrics.json  OUT/index.json  OUT/shards/pairs-*.npy (+ .meta.npz)

which `sqtool train pretrain --pairs OUT` reads (`train.pretrain.ShardPairs`; `shards.PairShardDataset(OUT)`
streams it for a training loop of one's own). Lost work: with every shard flushed, what is done
(the next file, the pairs of it the shards hold, the tallies) is saved atomically in OUT/resume/ (gone once
index.json is written); Ctrl-C or a kill keeps the shards, and `--resume OUT` mines the rest, to the same
index.json and shards as an uninterrupted run, refused in one line when a recording, a stream file or an input's
dataset.yaml (its parsed document: another channel, gain, unit or glob; not a touch or a comment) changed since the
kill. A new run into an unfinished folder is refused, naming --resume;
one with --force starts by removing the earlier run's shards (OUT/shards/pairs-*).
"""
from __future__ import annotations

import os
import random
import resource
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import ClassVar
from pathlib import Path

import numpy as np

from sqtool.core import (DEFAULT_BAND, SqtoolError, check_band_phase, check_fs, check_window_s, add_bool_flag,
                         add_config_args, add_deprecated_alias, lock_run_dir, make_run_dir, resolve_config,
                         resolve_data_root, signal_channels, save_config, write_metrics)
from sqtool.core.config import flag_of
from sqtool.core.io import dumps_json
from sqtool.core.progress import bar as progress_bar, item as progress_line
from sqtool.core.runs import FORCE_HELP, note_run, releases_run_dirs, shell_command
from sqtool.data.record import subject_key

ACC = ("acc_x", "acc_y", "acc_z")


@dataclass
class PairsConfig:
    # what each number may be (core.config: a value outside is one line, before any work)
    RANGES: ClassVar[dict] = {"band_lo": {"above": 0}, "band_hi": {"above": 0}, "threshold": {"min": 0, "max": 1},
        "workers": {"min": 0}, "chunksize": {"min": 1}, "synthetic_subjects": {"min": 1},
        "synthetic_duration_s": {"above": 0}, "seed": {"min": 0}}
    input: list[str] = field(default_factory=list, metadata={"help": "dataset folders or files", "cli": False,
                                                              "aliases": ("--data",), "path": True})
    data_root: str | None = field(default=None, metadata={
        "help": "mine every dataset folder under this root when no input is given; 'synthetic' (or no data "
                "root found) = the embedded synthetic corpus", "flag": False, "aliases": ("--data-root",),
        "alias_of": "--data", "path": True})
    kind: str | None = field(default=None, metadata={"help": "dataset kind of every --data path (default: detected)"})
    out: str | None = field(default=None, metadata={"help": "output directory (default: runs/data_pairs/<time>-<name>)",
                                                    "metavar": "DIR"})
    model: str | None = field(default=None, metadata={
        "help": "take fs, window_s, channels, norm and band from this registered model (overrides those flags)"})
    max_gap_s: float = field(default=300.0, metadata={"help": "max |t_good - t_poor| in seconds"})
    window_s: float = field(default=30.0, metadata={"help": "window length, s"})
    hop_s: float | None = field(default=None, metadata={"help": "hop between windows, s (default = window_s)"})
    fs: float = field(default=40.0, metadata={"help": "model sampling rate, Hz"})
    channels: list[str] = field(default_factory=lambda: ["ppg"], metadata={
        "help": "model input channels, comma-separated ('ppg' = the record's primary PPG)"})
    norm: str = field(default="minmax", metadata={"help": "per-window normalisation: minmax | zscore"})
    band_lo: float = field(default=DEFAULT_BAND[0], metadata={"help": "band-pass low cut-off, Hz"})
    band_hi: float = field(default=DEFAULT_BAND[1], metadata={"help": "band-pass high cut-off, Hz"})
    band_phase: str = field(default="zero", metadata={
        "help": "zero: the band-pass zero-phase over the recording | causal: one running filter from its start, as "
                "a model pretrained or fine-tuned with --band-phase causal and its device see the signal"})
    threshold: float = field(default=0.5, metadata={"help": "quality threshold: good if score > threshold"})
    synthetic_fallback: bool = field(default=False, metadata={
        "help": "ALSO pair good windows without a real poor partner with a synthetically corrupted copy "
                "(off: real pairs only)", "flag": "--synthetic-partners", "aliases": ("--synthetic-fallback",)})
    workers: int = field(default=0, metadata={"help": "worker processes (0 = all cores, 1 = in-process)"})
    chunksize: int = field(default=1, metadata={"help": "files per worker task (imap chunksize)"})
    shard_mb: float = field(default=256.0, metadata={"help": "maximum shard size, MB"})
    dtype: str = field(default="float16", metadata={"help": "stored dtype: float16 | float32"})
    on_error: str = field(default="raise", metadata={"help": "a bad file: raise | skip (listed in metrics)"})
    synthetic_subjects: int = field(default=8, metadata={"help": "subjects of the synthetic default corpus"})
    synthetic_duration_s: float = field(default=600.0, metadata={"help": "record length of the synthetic corpus, s"})
    exclude_subjects: list[str] = field(default_factory=list, metadata={
        "help": "subjects never mined, comma-separated: 'dataset:subject' keys (as train finetune --heldout-subjects "
                "and quantize write them), a bare subject id (left out of every dataset that has it) or a "
                "'dataset:recording' id; a dataset file's split.test subjects (or recordings) are added unless "
                "--keep-test-subjects"})
    keep_test_subjects: bool = field(default=False, metadata={
        "help": "mine a dataset file's split.test subjects too (default: left out, as fine-tuning holds them out)"})
    own_model: bool = field(default=False, metadata={
        "help": "mine pairs that no registered model reads (--fs / --window-s / --channels / --norm / band of a model "
                "of one's own, trained on shards.PairShardDataset); default: such a window contract is refused "
                "before mining"})
    spectral_overlap: bool = field(default=True, metadata={
        "help": "a spectral model's pairs (8 s windows every 2 s): keep the nearest poor window even when it "
                "overlaps the good one (the recipe the heart-rate benchmarks measured); --no-spectral-overlap: the nearest at least "
                "a window away, as the time-domain pairs always are"})
    seed: int = field(default=0, metadata={"help": "random seed (synthetic data and fallback artifacts)"})
    force: bool = field(default=False, metadata={"help": FORCE_HELP})
    name: str = field(default="pairs", metadata={"help": "run name (run directory suffix)"})


# ----------------------------------------------------------------------------- pairing (pure)

def match_pairs(t0: np.ndarray, good: np.ndarray, max_gap_s: float,
                window_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pair each good window with the nearest poor window within max_gap_s (ties -> the earlier) that does not
    overlap it: |t_good - t_poor| >= window_s (the windows' length; 0: windows as points, no overlap rule).

    t0 (W,) window start times, good (W,) bool. Returns (gi, pi) index arrays into the windows, one
    entry per good window that has such a poor window, in order of gi."""
    t0 = np.asarray(t0, dtype=np.float64)
    good = np.asarray(good, dtype=bool)
    gi = np.flatnonzero(good)
    poor = np.flatnonzero(~good)
    if gi.size == 0 or poor.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(t0[poor], kind="stable")
    poor, tp = poor[order], t0[poor][order]
    tg = t0[gi]
    apart = max(float(window_s) - OVERLAP_TOL_S, 0.0)              # adjacent windows (hop = window) do not overlap
    j = np.searchsorted(tp, tg - apart, side="right") - 1          # last poor starting at least `apart` before
    k = np.searchsorted(tp, tg + apart, side="left")               # first poor starting at least `apart` after
    left = np.clip(j, 0, tp.size - 1)
    right = np.clip(k, 0, tp.size - 1)
    dl = np.where(j >= 0, tg - tp[left], np.inf)
    dr = np.where(k < tp.size, tp[right] - tg, np.inf)
    pick = np.where(dl <= dr, left, right)
    dist = np.minimum(dl, dr)
    ok = dist <= max_gap_s
    return gi[ok], poor[pick[ok]]


OVERLAP_TOL_S = 1e-6       # s: window starts are sample counts / fs; adjacent ones are window_s apart up to rounding


def overlap_rejected(t0: np.ndarray, good: np.ndarray, max_gap_s: float, window_s: float) -> int:
    """The good windows whose nearest poor window within max_gap_s overlaps them (|t_good - t_poor| < window_s):
    that candidate is rejected by `match_pairs`, which takes the nearest one that does not overlap, if in reach."""
    t0 = np.asarray(t0, dtype=np.float64)
    gi, pi = match_pairs(t0, good, max_gap_s)
    return int(np.sum(np.abs(t0[gi] - t0[pi]) < window_s - OVERLAP_TOL_S))


# ----------------------------------------------------------------------------- one record

def _resolve_channels(rec, channels) -> list[str]:
    out = []
    for ch in channels:
        if ch == "ppg" and "ppg" not in rec.signals:
            ch = rec.primary_channel()
        if ch not in rec.signals:
            raise SqtoolError(f"{rec.dataset}/{rec.record_id}: channel '{ch}' missing (has {', '.join(rec.signals)})")
        out.append(ch)
    return out


def _no_pairs(rec) -> dict:
    """The per-record counts before any window is scored (what an unusable or short record returns)."""
    return {"dataset": rec.dataset, "subject": str(rec.subject), "record_id": str(rec.record_id),
            "windows": 0, "good": 0, "poor": 0, "pairs": 0, "synthetic": 0, "poor_used": 0, "short": 0,
            "unusable": 0, "nonfinite": 0, "silent": 0, "overlap_rejected": 0}


SILENT_FLAT = 0.5          # a window more than half of whose PPG lies in flat runs holds no pulse: never a partner


def silent_windows(record, channel: str, t0, window_s: float) -> np.ndarray:
    """(W,) bool: the windows [t0, t0 + window_s) s whose `channel` lies in flat runs (`quality.long_runs` of
    samples equal to the one before, `quality.flat_run` long, at the channel's own rate: a resampler's ringing would
    hide them) over more than SILENT_FLAT of the window."""
    from sqtool.data.preprocess import samples_in_windows
    from sqtool.data.quality import flat_run, long_runs
    x = np.asarray(record.signals[channel], dtype=np.float64)
    fs = float(record.fs[channel])
    flat = long_runs((np.diff(x) == 0)[None], flat_run(fs))[0]          # (N,)
    n, length = samples_in_windows(flat, fs, t0, window_s)
    return n > SILENT_FLAT * np.maximum(length, 1)


def record_pairs(rec, cfg: PairsConfig, rng: np.random.Generator | None = None) -> dict:
    """Window, score and pair one record. Returns counts and the pairs (float16/32 arrays). A window holding a
    NaN/Inf sample (a gap) or whose PPG is flat over more than SILENT_FLAT of it (a sensor off, a file padded with
    zeros to a whole block: EDF converters pad to their record length) is neither good nor poor: a flat line scores
    lowest of all and was every good window's nearest poor partner, teaching the encoder nothing of artifacts."""
    spec = spectral_model(cfg)
    if spec is not None:
        return spectral_record_pairs(rec, cfg, spec)
    from sqtool.data.preprocess import (bandpass, nonfinite_windows, normalise, record_duration, record_signals,
                                        sliding_windows, window_starts, windows_in_record)
    from sqtool.data.quality import quality_score
    from sqtool.data.synthetic import corrupt

    res = _no_pairs(rec)
    chans = _resolve_channels(rec, cfg.channels)
    ppg_ch = chans[0] if chans[0].startswith("ppg") else _resolve_channels(rec, ["ppg"])[0]
    has_acc = all(a in rec.signals for a in ACC)
    need = list(dict.fromkeys([ppg_ch, *chans, *(ACC if has_acc else ())]))
    if min(len(rec.signals[c]) / rec.fs[c] for c in need) < cfg.window_s:
        res["short"] = 1
        return res
    raw, fs = record_signals(rec, need, cfg.fs, band=None)                      # (K, N) at the model rate
    win, hop = int(round(cfg.window_s * fs)), int(round((cfg.hop_s or cfg.window_s) * fs))
    n = raw.shape[1]
    if n < win:
        res["short"] = 1
        return res
    starts = window_starts(n, win, hop)
    keep = windows_in_record(starts, fs, win, record_duration(rec, need))
    if keep == 0:
        res["short"] = 1
        return res
    t0 = starts[:keep] / fs
    w_raw = sliding_windows(raw, win, hop)[:, :keep]                             # (K, W, T) view
    acc = np.moveaxis(w_raw[[need.index(a) for a in ACC]], 0, 1) if has_acc else None   # (W, 3, T)
    q = quality_score(w_raw[need.index(ppg_ch)], fs, acc)                         # (W,)
    good = q > cfg.threshold
    gap = nonfinite_windows(rec, need, t0, cfg.window_s)                          # (W,) holding a NaN/Inf sample
    silent = ~gap & silent_windows(rec, ppg_ch, t0, cfg.window_s)                # (W,) no pulse at all
    ok = np.flatnonzero(~gap & ~silent)                                           # neither is good or poor
    good &= ~gap & ~silent
    gi, pi = match_pairs(t0[ok], good[ok], cfg.max_gap_s, win / fs)              # partners never overlap
    gi, pi = ok[gi], ok[pi]                                                       # (P,) indices into the windows
    res.update(windows=int(ok.size), good=int(good.sum()), poor=int(ok.size - good.sum()),
               nonfinite=int(gap.sum()), silent=int(silent.sum()),
               overlap_rejected=overlap_rejected(t0[ok], good[ok], cfg.max_gap_s, win / fs))
    synth = np.zeros(gi.size, dtype=bool)

    model = bandpass(raw[[need.index(c) for c in chans]], fs, cfg.band_lo, cfg.band_hi,   # (C, N)
                     causal=cfg.band_phase == "causal")
    wm = sliding_windows(model, win, hop)[:, :keep]                               # (C, W, T) view
    x_good = normalise(np.moveaxis(wm[:, gi], 0, 1), cfg.norm)                    # (P, C, T)
    x_poor = normalise(np.moveaxis(wm[:, pi], 0, 1), cfg.norm)
    tg, tp, qg, qp = t0[gi], t0[pi], q[gi], q[pi]

    if cfg.synthetic_fallback:
        lonely = np.setdiff1d(np.flatnonzero(good), gi)
        if lonely.size:
            rng = rng or np.random.default_rng(0)
            fake = np.empty((lonely.size, len(chans), win))
            for k, i in enumerate(lonely):
                for c in range(len(chans)):
                    fake[k, c] = corrupt(wm[c, i], fs, rng)[0]
            x_good = np.concatenate([x_good, normalise(np.moveaxis(wm[:, lonely], 0, 1), cfg.norm)])
            x_poor = np.concatenate([x_poor, normalise(fake, cfg.norm)])
            tg = np.concatenate([tg, t0[lonely]])
            tp = np.concatenate([tp, t0[lonely]])
            qg = np.concatenate([qg, q[lonely]])
            qp = np.concatenate([qp, np.full(lonely.size, np.nan)])
            synth = np.concatenate([synth, np.ones(lonely.size, dtype=bool)])
    dt = np.dtype(cfg.dtype)
    res.update(pairs=int(len(x_good)), synthetic=int(synth.sum()), poor_used=int(np.unique(pi).size),
               x_good=x_good.astype(dt), x_poor=x_poor.astype(dt),
               t_good=tg, t_poor=tp, q_good=qg, q_poor=qp, synth=synth, channels=chans, T=win)
    return res


def spectral_model(cfg: PairsConfig):
    """The ModelCfg of cfg.model when it reads front-end spectra, else None."""
    if not cfg.model:
        return None
    from sqtool.models import get_model_cfg
    mc = get_model_cfg(cfg.model)
    return mc if (mc.frontend or {}).get("type") == "spectrum" else None


def spectral_record_pairs(rec, cfg: PairsConfig, model_cfg) -> dict:
    """Pairs of front-end spectra of one record: the windows the spectral model reads, scored on the raw
    window with the same start (quality index, with the accelerometer), paired as `match_pairs` does."""
    from sqtool.data.hr_spectra import as_model_input, record_spectra
    from sqtool.data.preprocess import at_whole_hz, nonfinite_windows
    from sqtool.data.quality import record_quality
    from sqtool.data.record import values_at

    res = _no_pairs(rec)
    if not all(c in rec.signals for c in signal_channels(model_cfg.channels[1:])):
        res["unusable"] = 1                                 # e.g. a finger PPG without accelerometer
        return res
    reads = signal_channels(model_cfg.channels)
    if min(len(v) / rec.fs[c] for c, v in rec.signals.items() if c in reads) < model_cfg.window_s:
        res["short"] = 1
        return res
    hr = record_spectra(at_whole_hz(rec), model_cfg)           # codes (W, F, C), t0 (W,)
    q = record_quality(rec, window_s=model_cfg.window_s, hop_s=model_cfg.hop_s)
    score = values_at(q["t0"], q["score"], hr.t0, model_cfg.hop_s / 2)         # (W,) same window, up to the hop grid
    score = np.where(hr.valid, score, np.nan)                           # NaN: no score
    gap = nonfinite_windows(rec, reads, hr.t0, model_cfg.window_s)              # (W,) holding a NaN/Inf sample
    if gap.any():
        score = np.where(gap, np.nan, score)                                     # left out, counted
    scored = np.flatnonzero(np.isfinite(score))                                  # windows with a score
    good = score > cfg.threshold
    # the spectral recipe keeps the nearest poor window, overlapping or not (8 s windows every 2 s: neighbours share
    # 6 s) unless spectral_overlap is false; measured both ways (hr_spectral.py --pair-overlap): apart, SP Cup was no
    # different and wrist_exercise worse (13.41 against 10.10-12.01 pooled), so the default keeps the nearest
    apart = 0.0 if cfg.spectral_overlap else model_cfg.window_s
    gi, pi = match_pairs(hr.t0[scored], good[scored], cfg.max_gap_s, window_s=apart)
    rejected = 0
    if apart:                                                    # nearest partners given up for overlapping
        gi0, pi0 = match_pairs(hr.t0[scored], good[scored], cfg.max_gap_s)
        rejected = int(np.count_nonzero(np.abs(hr.t0[scored][gi0] - hr.t0[scored][pi0]) < apart - OVERLAP_TOL_S))
    gi, pi = scored[gi], scored[pi]
    x = as_model_input(hr.x)                                                     # (W, C, F)
    dt = np.dtype(cfg.dtype)
    res.update(windows=int(scored.size), good=int(good[scored].sum()), poor=int((~good[scored]).sum()),
               nonfinite=int(gap.sum()),
               overlap_rejected=rejected,
               pairs=int(gi.size), poor_used=int(np.unique(pi).size), x_good=x[gi].astype(dt),
               x_poor=x[pi].astype(dt), t_good=hr.t0[gi], t_poor=hr.t0[pi], q_good=score[gi], q_poor=score[pi],
               synth=np.zeros(gi.size, bool), channels=list(model_cfg.channels), T=x.shape[-1])
    return res


# ----------------------------------------------------------------------------- work units and workers

_CTX: dict = {}          # per-process reader cache (label spreadsheets etc.), keyed by dataset root


def list_units(path, kind: str | None = None) -> list[tuple]:
    """The units of work of one input, nothing read: a dataset file's (path, built-in name or DatasetFile)
    [("dsfile", ds, file), ...] in its record order (`dataset_reader.dataset_units`: excluded recordings left
    out, label tables read and checked here), a dataset folder's or file's [("item", kind, item, root), ...]."""
    from sqtool.data import readers
    from sqtool.data.dataset_reader import dataset_units
    from sqtool.data.dataset_tasks import dataset_of

    ds = dataset_of(path)
    if ds is not None:
        return [("dsfile", ds, u) for u in dataset_units(ds, _CTX.setdefault(_ctx_key(ds), {}))]
    kind, items = readers.list_items(path, kind)
    return [("item", kind, item, Path(path)) for item in items]


def _ctx_key(ds) -> str:
    return f"dataset file {ds.path} {ds.root}"


def _read_unit(unit) -> tuple[list, list[str]]:
    """(the records of one unit, read here, the ids of a dataset file's excluded recordings it held)."""
    from sqtool.data import readers

    if unit[0] == "dsfile":
        from sqtool.data.dataset_reader import read_unit
        return read_unit(unit[1], unit[2], _CTX.setdefault(_ctx_key(unit[1]), {}))
    if unit[0] == "synthetic":
        from sqtool.data.synthetic import synth_record
        return [synth_record(**unit[1])], []
    _, kind, item, root = unit
    return readers.read_item(kind, item, root, _CTX.setdefault(str(root), {})), []


def _work_chunk(chunk: list) -> list[dict]:
    """Worker: `_work` over a chunk of units (--chunksize files per task), their results in order."""
    return [_work(a) for a in chunk]


def _work(args) -> dict:
    """Worker: read one unit (a file, or a synthetic record's spec) and mine its pairs."""
    unit, cfg, seed = args
    try:
        recs, excluded = _read_unit(unit)
        why = [held_names(r, cfg.exclude_subjects) for r in recs]
        held = [subject_key(r.dataset, r.subject) for r, w in zip(recs, why) if w]
        recs = [r for r, w in zip(recs, why) if not w]
        rng = np.random.default_rng(seed)
        out = [record_pairs(r, cfg, rng) for r in recs]
        return {"ok": out, "excluded": excluded, "held": held, "matched": sorted({n for w in why for n in w}),
                "rss_mb": peak_rss_mb()}
    except SqtoolError as e:
        return {"error": str(e)}


def held_names(rec, names) -> list[str]:
    """The names of `names` (--exclude-subjects) that leave recording `rec` out: its subject's key
    'dataset:subject' or bare id, or its own 'dataset:recording' key (a dataset file's split.test may name
    recordings); [] = mined."""
    mine = (subject_key(rec.dataset, rec.subject), str(rec.subject), subject_key(rec.dataset, rec.record_id))
    return [n for n in mine if n in names] if names else []


def with_test_subjects(cfg: PairsConfig, inputs) -> PairsConfig:
    """cfg with every input dataset file's split.test subjects added to exclude_subjects (as 'name:subject' keys,
    the keys fine-tuning holds out), unless keep_test_subjects; a split by heldout_fraction, whose subjects are
    known only once every recording is read, is said in one note line instead."""
    if cfg.keep_test_subjects:
        return cfg
    names = list(cfg.exclude_subjects)
    for _, units in inputs:
        ds = _dataset_file(units)
        if ds is None:
            continue
        if ds.split.test:
            names += [subject_key(ds.name, s) for s in ds.split.test]
        elif ds.split.heldout_fraction:
            print(f"sqtool: note: {ds.path}: its split (heldout_fraction {ds.split.heldout_fraction:g}) names no "
                  "subject before every recording is read, so its test subjects are mined too; name them with "
                  "--exclude-subjects to keep them out of pretraining", file=sys.stderr)
    return replace(cfg, exclude_subjects=sorted(set(map(str, names))))


def _ignore_sigint() -> None:
    """Pool initializer: a worker ignores SIGINT. A Ctrl-C reaches the whole process group; the parent alone turns
    it into KeyboardInterrupt (keeping the shards written, naming --resume) and terminates the pool, instead of
    every worker also printing a 'Process ForkPoolWorker-N:' traceback."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _bounded(iterable, sem: threading.Semaphore, stop: threading.Event):
    """Yield items only while fewer than the semaphore's count are in flight (Pool.imap would otherwise
    drain the whole input into its task queue); give up when `stop` is set (an error in the main loop),
    so the pool's feeder thread never blocks its shutdown."""
    for item in iterable:
        while not sem.acquire(timeout=0.05):
            if stop.is_set():
                return
        if stop.is_set():
            return
        yield item


def _wind_down(pool, results, grace_s: float = 10.0) -> None:
    """Shut the pool once the main loop has ended (done, or an error / Ctrl-C with `stop` set, so no new file is
    handed out): collect the files still in flight (<= the semaphore's count), then close and join it; only past
    `grace_s` (or a second Ctrl-C) terminate it. Pool.terminate() kills workers wherever they are: one killed while
    writing its result holds the result queue's lock forever, and the pool's task handler, which puts its last
    sentinel there, then never ends (terminate() hung in its join)."""
    import multiprocessing as mp
    deadline = time.monotonic() + grace_s
    try:
        while True:
            results.next(timeout=max(0.0, deadline - time.monotonic()))   # the last ones in flight, discarded
    except StopIteration:
        pool.close()
        pool.join()
        return
    except (mp.TimeoutError, KeyboardInterrupt):
        pass
    pool.terminate()


# ----------------------------------------------------------------------------- the run

def _input_name(path) -> str:
    """The dataset name of a --data input (a path, or its DatasetFile): a dataset file's `name:` (hosp, hospB; a
    built-in's own name; none, for a yaml at the filesystem root: the yaml's stem), else the folder or file name.
    Subject ids are only unique within it ("<name>/<subject>" in the index)."""
    from sqtool.data.dataset_tasks import dataset_of
    ds = dataset_of(path)
    if ds is not None:
        return ds.name or Path(ds.path).stem or str(ds.path)
    return Path(path).name or str(path)


def _inputs(cfg: PairsConfig) -> list[tuple[str, list[tuple]]]:
    """[(name, units)] for every input (listed, nothing read); the synthetic corpus when no data is given."""
    if cfg.input:
        from sqtool.data.dataset_tasks import dataset_of
        srcs = [dataset_of(p) or builtin_folder(p, cfg.kind) or p for p in cfg.input]   # a dataset file parsed once
        out = _named([(src, list_units(src, cfg.kind)) for src in srcs])
        _refuse_twice(out, cfg.input)
        return out
    root = None if cfg.data_root == "synthetic" else resolve_data_root(cfg.data_root)
    if root is None:
        from sqtool.data.synthetic import synth_corpus_specs
        specs = synth_corpus_specs(cfg.synthetic_subjects, duration_s=cfg.synthetic_duration_s, seed=cfg.seed)
        return [("synthetic", [("synthetic", s) for s in specs])]
    from sqtool.data.dataset_file import builtin_names, is_dataset_file, load_builtin
    from sqtool.data.dataset_tasks import dataset_of
    found, folders = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:                                             # a built-in's shipped file: its exclude list applies (troika's
            shipped = d.name in builtin_names() and cfg.kind in (None, d.name) and not is_dataset_file(d)
            src = load_builtin(d.name, root) if shipped else dataset_of(d) or d   # DATA_S04_T01; a folder's own
            found.append((src, list_units(src, cfg.kind)))                     # dataset.yaml wins
            folders.append(str(d))
        except SqtoolError as e:
            print(f"sqtool: skipping {d}: {e}", file=sys.stderr)
    if not found:
        raise SqtoolError(f"{root}: no dataset folder recognised")
    out = _named(found)
    _refuse_twice(out, folders)
    return out


def _named(found: list[tuple]) -> list[tuple[str, list[tuple]]]:
    """[(name, units)] of the inputs [(source, units)]: each named by `_input_name` (a dataset file's `name:`, as
    the keys of --exclude-subjects, a split.test and fine-tuning read it), whether it came as --data or as a folder
    of a data root; a second input of one name as <name>_2 (its subjects kept apart)."""
    out, seen = [], {}
    for src, units in found:
        name = _input_name(src)
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}_{seen[name]}", units))
    return out


def _dataset_file(units):
    """The DatasetFile an input's units are read through (a dataset.yaml, a built-in's shipped file), else None."""
    return units[0][1] if units and units[0][0] == "dsfile" else None


def _unit_file(unit) -> Path | None:
    """The recording file a unit of work reads (resolved), None for a synthetic record's spec."""
    return Path(unit[2]).resolve() if unit[0] in ("dsfile", "item") else None


def _refuse_twice(inputs, given: list[str]) -> None:
    """One line when two inputs (`given`: what --data named, one per input) reach the same recording file (resolved
    path: a dataset file and its own folder, a link, the same path twice) or hold byte-identical copies of one (a
    copied folder): its pairs would be mined twice, as two datasets, and pretraining's subject split could hold out
    one copy and train on the other. Only files of equal size in different inputs are hashed."""
    first: dict[Path, int] = {}
    by_size: dict[int, list[tuple[int, Path]]] = {}
    for i, (_, units) in enumerate(inputs):
        for u in units:
            f = _unit_file(u)
            if f is None:
                continue
            j = first.setdefault(f, i)
            if j != i:
                raise SqtoolError(f"--data {given[j]} and --data {given[i]} both reach {f}: the same recordings would "
                                  "be mined twice (as two datasets); give each once")
            if (size := _size(f)) and (i, f) not in by_size.get(size, []):
                by_size.setdefault(size, []).append((i, f))
    from sqtool.core.io import sha256_file
    for group in by_size.values():
        if len({i for i, _ in group}) < 2:
            continue
        seen: dict[str, tuple[int, Path]] = {}
        for i, f in group:
            j, g = seen.setdefault(sha256_file(f), (i, f))
            if j != i:
                raise SqtoolError(f"--data {given[j]} and --data {given[i]} hold the same recording ({g} and {f} are "
                                  "byte for byte alike, a copy): it would be mined twice (as two datasets); give "
                                  "each once")


def _size(f: Path) -> int:
    """f's size in bytes, 0 when it cannot be read (the reader says why, later)."""
    try:
        return f.stat().st_size
    except OSError:
        return 0


def builtin_folder(path, kind: str | None):
    """A built-in dataset's folder given by path (../shared/data/troika, without a dataset.yaml of its own, read as
    that dataset: its detected kind or --kind is its name): its shipped dataset file, whose exclude list (TROIKA's
    DATA_S04_T01, a likely SP Cup test subject) pretraining pairs must honour as a data root's do; None otherwise
    (any other folder or file is read raw). Said in one note line on stderr."""
    from sqtool.data import readers
    from sqtool.data.dataset_file import builtin_exclude, builtin_names, is_dataset_file, load_builtin
    d = Path(path).resolve()                               # `--data .` inside the folder, or a link to it
    if not d.is_dir() or d.name not in builtin_names() or is_dataset_file(d):
        return None
    try:
        if (kind or readers.detect_kind(d)) != d.name:
            return None
    except SqtoolError:
        return None
    ex = builtin_exclude(d.name)
    if ex:
        print(f"sqtool: note: {d} read as the built-in dataset {d.name}: its shipped dataset file leaves out "
              f"{', '.join(ex)} ({'; '.join(ex.values())})", file=sys.stderr)
    return load_builtin(d.name, d.parent)


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its waited-for children (the pool workers)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB: VmHWM from /proc (its own address space; ru_maxrss
    would also count a parent's memory inherited across fork + exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def apply_model_contract(cfg: PairsConfig) -> PairsConfig:
    """cfg with fs, window_s, hop_s (default), channels, norm and band taken from cfg.model (if set), and its
    band_phase unless cfg asks for a causal one (a registered model is zero-phase; `train pretrain --band-phase`)."""
    import dataclasses

    if not cfg.model:
        return cfg
    from sqtool.models import get_model_cfg, no_simsiam_reason, pretrains
    mc = get_model_cfg(cfg.model)
    if not pretrains(cfg.model):                       # pairs are what `train pretrain --model` trains on
        raise SqtoolError(f"data pairs --model {cfg.model}: {no_simsiam_reason(cfg.model)}, or no --model "
                          "(--fs / --window-s / --channels)")
    if (mc.frontend or {}).get("type") == "spectrum" and cfg.synthetic_fallback:
        raise SqtoolError(f"data pairs --model {cfg.model}: synthetic partners are corrupted time-domain "
                          "windows; a spectral model's pairs are real only (drop --synthetic-partners)")
    band = mc.band if mc.band is not None else (None, None)
    return dataclasses.replace(cfg, fs=float(mc.fs), window_s=float(mc.window_s), hop_s=cfg.hop_s or float(mc.hop_s),
                               channels=list(mc.channels), norm=mc.norm, band_lo=band[0], band_hi=band[1],
                               band_phase=cfg.band_phase if cfg.band_phase != "zero" else mc.band_phase)


@releases_run_dirs
def mine_pairs(cfg: PairsConfig, progress: bool = True, resume: bool = False) -> dict:
    """Run the miner; returns metrics (also written to OUT/metrics.json). resume=True: continue the unfinished
    run in cfg.out (its saved config; only MAY_CHANGE_ON_RESUME may differ) after the files it has flushed."""
    from sqtool.data.preprocess import NORMS, _sos
    from sqtool.data.shards import ShardWriter

    cfg = apply_model_contract(cfg)
    if cfg.norm not in NORMS and spectral_model(cfg) is None:    # a spectral model: its front end normalises
        raise SqtoolError(f"unknown normalisation '{cfg.norm}' (known: {', '.join(NORMS)})")
    for k in ("max_gap_s", "shard_mb"):
        if not getattr(cfg, k) > 0:
            raise SqtoolError(f"{k} must be positive, got {getattr(cfg, k)}")
    check_fs(cfg.fs, "data pairs --fs")
    check_window_s(cfg.window_s, "data pairs --window-s")
    if cfg.hop_s is not None:
        check_window_s(cfg.hop_s, "data pairs --hop-s")
    if cfg.on_error not in ("raise", "skip"):
        raise SqtoolError(f"on_error must be raise or skip, got '{cfg.on_error}'")
    if not cfg.channels:
        raise SqtoolError("no channels given")
    worker_count(cfg.workers)
    _sos(cfg.fs, cfg.band_lo, cfg.band_hi, 2)                          # refuse a band the rate cannot hold
    check_band_phase(cfg.band_phase, "data pairs", cfg.model or "", spectral_model(cfg) is not None)
    T = cfg.window_s * cfg.fs
    if abs(T - round(T)) > 1e-6:
        raise SqtoolError(f"window_s x fs = {T:g} is not a whole number of samples")
    if not resume and not cfg.model and not cfg.own_model:
        _refuse_unread(cfg)
    random.seed(cfg.seed)                    # (not config.set_seed: it imports torch, ~180 MB per process)
    np.random.seed(cfg.seed % 2**32)
    if resume:
        cfg = _resumable(cfg)
    elif cfg.out and not cfg.force:
        _refuse_unfinished(Path(cfg.out))
    clock = time.perf_counter(), _cpu_s()                               # the run's time includes the listing
    inputs = _inputs(cfg)                                               # validates paths before any output
    if resume:
        run_dir = lock_run_dir(cfg.out)
        note_run(run_dir, "data_pairs")                                 # an interrupt names --resume again
    else:
        run_dir = make_run_dir("data_pairs", cfg.name, cfg.out, force=cfg.force)
    try:
        return _mine(with_test_subjects(cfg, inputs), inputs, run_dir, progress, ShardWriter, clock, resume,
                     asked=cfg)                                 # config.yaml: as asked (a resume resolves it again)
    except KeyboardInterrupt:
        raise                                   # the flushed shards stay: `data pairs --resume RUN` continues
    except BaseException:
        if not resume and (cfg.out is None or not cfg.force):
            shutil.rmtree(run_dir, ignore_errors=True)                  # nothing half-written is left
        raise


# ----------------------------------------------------------------------------- progress in a log file

HEARTBEAT_S = 30.0          # s: a run whose stderr is no terminal prints a progress line at most this often


def _heartbeat(progress: bool, total: int, first: int = 0):
    """Where no bar draws because stderr is no terminal (nohup, `2> log`, a Slurm log) but progress is on: a plain
    line at most every HEARTBEAT_S, and one at the end, `pairs: 500/2000 files, 3,480 pairs, 4.2 files/s, ETA
    6 min 40 s` (the rate and ETA from this run's files, a resumed run's own part): core.progress.Ticker's timing."""
    from sqtool.core.progress import Ticker
    tick = Ticker("pairs", total, enabled=progress, every_s=HEARTBEAT_S, initial=first)

    def beat(done: int, pairs: int, last: bool = False) -> None:
        if tick.due(last):
            progress_line(f"pairs: {done}/{total} files, {pairs:,} pairs, {tick.rate(done):.3g} files/s"
                          f"{tick.eta(done)}")
    return beat


# ----------------------------------------------------------------------------- resume

RESUME_DIR = "resume"               # OUT/resume/: state.json + gaps-NNNNN.npz, while the run is unfinished
RESUME_FORMAT = "sqtool-pairs-resume-v1"
MAY_CHANGE_ON_RESUME = ("workers", "chunksize", "out", "force", "own_model")      # change no pair


def _refuse_unfinished(out: Path) -> None:
    """A fresh run into a folder holding an unfinished data pairs run (no index.json) is refused, naming --resume."""
    from sqtool.core.runs import run_command
    if out.is_dir() and run_command(out) == "data_pairs" and not (out / "index.json").exists():
        raise SqtoolError(f"output directory {out} holds an unfinished data pairs run (no index.json): continue it "
                          f"with `{shell_command('data', 'pairs', '--resume', out)}`, or use --force to start it again")


def _resumable(cfg: PairsConfig) -> PairsConfig:
    """cfg as the run in cfg.out saved it, refused in one line when that folder is no unfinished data pairs run
    or when a field that changes the pairs differs."""
    from sqtool.core import resume_config
    from sqtool.core.runs import run_command, saved_config
    run_dir = Path(cfg.out or "")
    if not cfg.out or not (run_dir / "config.yaml").is_file() or run_command(run_dir) != "data_pairs":
        raise SqtoolError(f"cannot resume: {run_dir / 'config.yaml'} of a data pairs run not found (not a data pairs "
                          "run folder)")
    if (run_dir / "index.json").exists():
        raise SqtoolError(f"cannot resume {run_dir}: it is finished (index.json written); its pairs are ready for "
                          f"`{shell_command('train', 'pretrain', '--pairs', run_dir)}`")
    saved = apply_model_contract(saved_config(PairsConfig, run_dir, "data pairs"))
    cfg, _ = resume_config(PairsConfig, saved, cfg, run_dir=run_dir, may_change=MAY_CHANGE_ON_RESUME,
                           why="its finished shards were mined with the saved one")
    return replace(cfg, out=str(run_dir), force=False)


def _units_sha(inputs) -> str:
    """A fingerprint of the units of work, in order: a resume must list the same files, each of the same size and
    modification time (a file rewritten since the kill would be mined again into other pairs), a dataset file's
    recording with the stream files it is assembled from (`dataset_reader.unit_files`)."""
    import hashlib
    import stat

    from sqtool.data.dataset_reader import unit_files

    def stamp(p) -> str:              # size and mtime of a unit that is a file; "" for a reader's item name
        try:
            st = Path(p).stat()
        except (OSError, TypeError, ValueError):
            return ""
        return f"{st.st_size}:{st.st_mtime_ns}" if stat.S_ISREG(st.st_mode) else ""

    def key(u) -> str:                # a file ("dsfile", "item": u[2]) and its stream files, or a synthetic spec
        if u[0] == "synthetic":
            return repr(sorted(u[1].items()))
        files = unit_files(u[1], u[2]) if u[0] == "dsfile" else [u[2]]
        return "\t".join(f"{f}\t{stamp(f)}" for f in files)
    h = hashlib.sha256()
    for name, units in inputs:
        for u in units:
            h.update(f"{name}\t{key(u)}\n".encode())
    return h.hexdigest()


def _dataset_files(inputs) -> list[dict]:
    """The `dataset_file.file_record` of each input read through a dataset file: what a resume checks besides
    `_units_sha` (another channel, gain, unit or glob lists the same files but mines other signals)."""
    from sqtool.data.dataset_file import file_record
    return [file_record(ds) for _, units in inputs if (ds := _dataset_file(units)) is not None]


class _Progress:
    """What a run has finished, saved with every shard the writer flushes (OUT/resume/state.json, atomically, after
    the shard and its meta): the writer's state, the next unit to mine and how many of its pairs the shards hold
    already, every dataset's tally (counts; the real pairs' gaps appended to resume/gaps-NNNNN.npz, the chunks
    since the last shard), the errors and the excluded ids, and its inputs' dataset files (`_dataset_files`; a state
    saved before they were recorded resumes without that check). A resumed run loads it and re-mines from that
    unit."""

    def __init__(self, run_dir: Path, n_units: int, units_sha: str, dataset_files: list[dict]):
        self.dir = run_dir / RESUME_DIR
        self.n_units, self.units_sha, self.dataset_files = n_units, units_sha, dataset_files
        self.unit, self.before = 0, 0          # the unit being added, the writer's count before its pairs
        self.gap_files: list[str] = []
        self.saved: dict[str, int] = {}        # dataset -> gap chunks saved
        self.per_ds: dict[str, dict] = {}
        self.errors: list[str] = []
        self.excluded: dict[str, set] = {}
        self.clock = (0.0, 0.0)                # wall, cpu seconds before this part of the run

    def fresh(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)          # a --force'd folder's old state is not this run's

    def save(self, writer, elapsed: tuple[float, float]) -> None:
        """After `writer` flushed a shard (per_ds holds the units before self.unit); elapsed: the run's (wall, cpu)
        seconds so far, its earlier parts included."""
        from sqtool.core import atomic_save_npz, atomic_write_text
        self.dir.mkdir(exist_ok=True)
        gaps = {}
        for j, (name, d) in enumerate(self.per_ds.items()):
            k = self.saved.get(name, 0)
            if len(d["q_gap"]) > k:
                gaps[f"q{j}"], gaps[f"t{j}"] = np.concatenate(d["q_gap"][k:]), np.concatenate(d["t_gap"][k:])
                self.saved[name] = len(d["q_gap"])
        if gaps:
            f = f"{RESUME_DIR}/gaps-{len(writer.shards) - 1:05d}.npz"
            atomic_save_npz(self.dir.parent / f, **gaps)
            self.gap_files.append(f)
        tallies = {name: {k: sorted(v) if k in TALLY_SETS else v for k, v in d.items() if k not in ("q_gap", "t_gap")}
                   for name, d in self.per_ds.items()}
        state = {"format": RESUME_FORMAT, "units": self.n_units, "units_sha": self.units_sha,
                 "dataset_files": self.dataset_files, "next_unit": self.unit,
                 "skip_pairs": writer.total - self.before, "writer": writer.state(),
                 "tallies": tallies, "gap_files": self.gap_files, "errors": self.errors,
                 "excluded": {k: sorted(v) for k, v in self.excluded.items()},
                 "elapsed": [round(elapsed[0], 3), round(elapsed[1], 3)]}
        atomic_write_text(self.dir / "state.json", dumps_json(state) + "\n")

    def load(self, writer) -> tuple[int, int]:
        """Restore the state saved last (none: a run killed before its first shard starts over). Returns
        (the unit to mine next, how many of its pairs to skip)."""
        import json
        p = self.dir / "state.json"
        if not p.is_file():
            self.fresh()
            return 0, 0
        try:
            st = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise SqtoolError(f"{p}: unreadable ({str(e).splitlines()[0]}); cannot resume (start again with --force)")
        if st.get("format") != RESUME_FORMAT:
            raise SqtoolError(f"{p}: not a {RESUME_FORMAT} state; cannot resume (start again with --force)")
        from sqtool.core.changes import file_changes
        changed = file_changes(st["dataset_files"], self.dataset_files) if "dataset_files" in st else None
        if changed:                    # (a state saved before dataset files were recorded: unknown, not checked)
            raise SqtoolError(f"cannot resume {self.dir.parent}: {changed}; its remaining files would be mined "
                              "otherwise than its shards' pairs were: restore the file, or start again with --force")
        if st["units"] != self.n_units or st["units_sha"] != self.units_sha:
            raise SqtoolError(f"cannot resume {self.dir.parent}: its inputs changed since it started ({st['units']} "
                              f"files then, {self.n_units} now, or a file's name, size or modification time "
                              "differs, a recording's stream file's included); start it again with --force")
        writer.restore(st["writer"])
        for name, t in st["tallies"].items():
            d = self.per_ds[name] = new_tally()
            d.update({k: set(v) if k in TALLY_SETS else v for k, v in t.items()})
        names = list(self.per_ds)
        for f in st["gap_files"]:
            with np.load(self.dir.parent / f) as z:
                for j, name in enumerate(names):
                    if f"q{j}" in z.files:
                        self.per_ds[name]["q_gap"].append(z[f"q{j}"])
                        self.per_ds[name]["t_gap"].append(z[f"t{j}"])
        self.saved = {name: len(d["q_gap"]) for name, d in self.per_ds.items()}
        self.gap_files = list(st["gap_files"])
        self.errors = list(st["errors"])
        self.excluded = {k: set(v) for k, v in st["excluded"].items()}
        self.clock = (float(st["elapsed"][0]), float(st["elapsed"][1]))
        return int(st["next_unit"]), int(st["skip_pairs"])

    def done(self) -> None:
        """index.json is written: the run is finished, its resume state goes."""
        shutil.rmtree(self.dir, ignore_errors=True)


WORKERS_PER_CPU = 4      # --workers above this many per core: a typo (100000), not a setting


def worker_count(workers: int) -> int:
    """--workers -> the worker processes (0 = one per core); more than WORKERS_PER_CPU per core is one line, before
    any process starts (each worker holds a recording and the front end: 100,000 of them exhaust any machine)."""
    cpus = os.cpu_count() or 1
    if workers > WORKERS_PER_CPU * cpus:
        raise SqtoolError(f"--workers {workers}: this machine has {cpus} cores; at most {WORKERS_PER_CPU * cpus} "
                          "(0 = one per core)", code=2)
    return workers or cpus


def _mine(cfg, inputs, run_dir: Path, progress: bool, ShardWriter, clock: tuple[float, float] | None = None,
          resume: bool = False, asked: PairsConfig | None = None) -> dict:
    import multiprocessing as mp

    import scipy.signal  # noqa: F401  (imported once here, so forked workers do not each pay for it)

    from sqtool.data import readers  # noqa: F401

    save_config(run_dir, asked or cfg, resumed=resume, seed=cfg.seed)
    workers = worker_count(cfg.workers)
    header = {"fs": cfg.fs, "window_s": cfg.window_s, "hop_s": cfg.hop_s or cfg.window_s,
              "channels": list(cfg.channels), "norm": cfg.norm, "band": [cfg.band_lo, cfg.band_hi],
              "band_phase": cfg.band_phase,
              "threshold": cfg.threshold, "max_gap_s": cfg.max_gap_s,
              "synthetic_partners": bool(cfg.synthetic_fallback), "model": cfg.model}
    spec = spectral_model(cfg)
    width = spec.n_bins if spec is not None else int(round(cfg.window_s * cfg.fs))   # F bins or T samples
    t_start, cpu_start = clock or (time.perf_counter(), _cpu_s())
    n_units = sum(len(u) for _, u in inputs)
    done = _Progress(run_dir, n_units, _units_sha(inputs), _dataset_files(inputs))
    writer = ShardWriter(run_dir, len(cfg.channels), width, cfg.shard_mb, cfg.dtype, header=header,
                         on_flush=lambda w: done.save(w, (time.perf_counter() - t_start, _cpu_s() - cpu_start)))
    if resume:
        first, skip = done.load(writer)
    else:
        done.fresh()
        (run_dir / "index.json").unlink(missing_ok=True)            # a --force'd folder: unfinished until the end
        for f in [*(run_dir / "shards").glob("pairs-*"), *(run_dir / "shards").glob(".pairs-*")]:
            f.unlink()          # its earlier run's shards: those past this run's last stayed, listed nowhere
        first, skip = 0, 0
    per_ds, errors, excluded = done.per_ds, done.errors, done.excluded   # excluded: a dataset file's ids read
    t_start, cpu_start = t_start - done.clock[0], cpu_start - done.clock[1]
    worker_rss = 0.0
    jobs = [(u, cfg, cfg.seed * 1_000_003 + i) for i, u in enumerate(u for _, units in inputs for u in units)]
    names = [name for name, units in inputs for _ in units]
    if resume:
        rest = f"mining from file {first + 1} of {n_units}" if first < n_units else f"all {n_units} files mined"
        progress_line(f"resumed {run_dir}: {writer.total} pairs in {len(writer.shards)} shard(s) kept; {rest}")
    bar = progress_bar(total=n_units, initial=first, desc="pairs", unit="file", enabled=progress)
    beat = _heartbeat(progress, n_units, first)                      # the bar's plain-line twin in a log file
    pool = None
    stop = threading.Event()
    try:
        if workers > 1 and n_units - first > 1:
            cs = max(1, cfg.chunksize)                 # files per task: chunked here, not by imap (its chunked
            chunks = [jobs[j:j + cs] for j in range(first, n_units, cs)]   # form is a generator: no next(timeout))
            sem = threading.Semaphore(2 * workers)      # tasks (chunks) in flight
            pool = mp.get_context("fork" if sys.platform != "win32" else "spawn").Pool(workers, _ignore_sigint)
            tasks = pool.imap(_work_chunk, _bounded(chunks, sem, stop))          # what _wind_down drains
            results = (r for rs in tasks for r in rs)
        else:
            sem, cs, tasks = None, 1, None
            results = map(_work, jobs[first:])
        for i, name, r in zip(range(first, n_units), names[first:], results):
            if sem is not None and ((i - first + 1) % cs == 0 or i == n_units - 1):
                sem.release()                           # a chunk's last file: its task is done
            bar.update(1)
            if "error" in r:
                if cfg.on_error == "raise":
                    raise SqtoolError(r["error"])
                errors.append(r["error"])
                continue
            worker_rss = max(worker_rss, r["rss_mb"])
            drop = skip if i == first else 0          # pairs of this unit the shards hold already (a resume)
            done.unit, done.before = i, writer.count - drop
            for rec in r["ok"]:                       # pairs first: a shard flushed now saves the tallies before i
                k = min(drop, rec["pairs"])
                drop -= k
                if rec["pairs"] > k:
                    writer.add(rec["x_good"][k:], rec["x_poor"][k:], dataset=name,
                               subjects=[f"{name}/{rec['subject']}"] * (rec["pairs"] - k), t_good=rec["t_good"][k:],
                               t_poor=rec["t_poor"][k:], q_good=rec["q_good"][k:], q_poor=rec["q_poor"][k:],
                               synthetic=rec["synth"][k:])
            for rec in r["ok"]:
                tally(per_ds.setdefault(name, new_tally()), rec)
            if r["held"]:                             # recordings of --exclude-subjects: counted, never mined
                d = per_ds.setdefault(name, new_tally())
                d["heldout_records"] += len(r["held"])
                d["heldout_subjects"].update(r["held"])
                d["heldout_matched"].update(r["matched"])
            excluded.setdefault(name, set()).update(r["excluded"])
            bar.set_postfix(pairs=writer.count)
            beat(i + 1, writer.count)
        done.unit, done.before = n_units, writer.count
        beat(n_units, writer.count, last=True)
    finally:
        stop.set()
        bar.close()
        if pool is not None:
            _wind_down(pool, tasks)
    wall, cpu = time.perf_counter() - t_start, _cpu_s() - cpu_start
    datasets = {k: dataset_stats(v) for k, v in per_ds.items()}
    total = {k: sum(d[k] for d in datasets.values()) for k in
             ("records", "subjects", "windows", "good", "poor", "pairs", "real_pairs", "synthetic_pairs",
              "short_records", "unusable_records", "subjects_with_pairs", "nonfinite_windows", "silent_windows",
              "overlap_rejected")}
    if total["windows"] == 0 and total["unusable_records"]:
        raise SqtoolError(f"{total['unusable_records']} of {total['records']} records lack the channels of "
                          f"--model {cfg.model} ({', '.join(cfg.channels)}); nothing to pair")
    if total["windows"] == 0:
        raise SqtoolError(f"no record is as long as one {cfg.window_s:g} s window; nothing to pair")
    if total["pairs"] == 0:
        spec = spectral_model(cfg) is not None          # its pairs: windows of one recording, real only
        raise SqtoolError(f"no (good, poor) pair {'within one recording' if spec else 'of the same subject'} within "
                          f"--max-gap-s {cfg.max_gap_s:g} s: " + "; ".join(
                              f"{k} {v['windows']} windows, {v['good']} good, {v['poor']} poor" for k, v in datasets.items())
                          + (" (a spectral model pairs the windows of one recording: each needs good and poor windows, "
                             "e.g. rest and motion in one file)" if spec else
                             " (pass --synthetic-partners to pair good windows with corrupted copies)"))
    _warn_unknown_excluded(inputs, excluded)
    _warn_unmatched_subjects(cfg.exclude_subjects, per_ds)
    for k, v in datasets.items():
        if v["pairs"] == 0 and progress:
            print(f"sqtool: warning: {k} gives no pair ({v['no_pairs_reason']})", file=sys.stderr)
    index = writer.close({"counts": datasets, "real_pairs": total["real_pairs"],
                          "synthetic_pairs": total["synthetic_pairs"]})
    write_pair_stats(run_dir, datasets, total, bool(cfg.synthetic_fallback))
    metrics = {**total, "synthetic_partners": bool(cfg.synthetic_fallback), "datasets": datasets,
               "exclude_subjects": list(cfg.exclude_subjects),
               "shards": len(index["shards"]),
               "bytes": int(sum(s["bytes"] for s in index["shards"])), "workers": workers,
               "wall_s": round(wall, 3), "windows_per_s": round(total["windows"] / max(wall, 1e-9), 1),
               "cpu_s": round(cpu, 2), "windows_per_cpu_s": round(total["windows"] / max(cpu, 1e-9), 1),
               "peak_rss_mb_main": round(peak_rss_mb(), 1), "peak_rss_mb_workers": round(worker_rss, 1),
               "errors": errors}
    write_metrics(run_dir, metrics)
    done.done()
    metrics["out"] = str(run_dir)
    return metrics


def _warn_unknown_excluded(inputs, excluded: dict[str, set]) -> None:
    """A built-in layout under a user's dataset file names its record ids only as its files are read: an
    exclude name that matched none of them is said once the corpus is mined (a generic format's is refused
    up front, by dataset_units)."""
    from sqtool.data.dataset_tasks import warn
    for name, units in inputs:
        ds = units[0][1] if units and units[0][0] == "dsfile" else None
        if ds is None or not ds.builtin or ds.shipped or not ds.exclude:
            continue
        if unknown := sorted(set(ds.exclude) - excluded.get(name, set())):
            warn(f"{ds.path}: exclude names {', '.join(unknown)}, not a recording under {ds.root} (nothing left out "
                 "for it)")


def _warn_unmatched_subjects(names, per_ds: dict) -> None:
    """One line for each --exclude-subjects name (or dataset-file test subject or recording) that matched no
    recording, and one when a subject left out by one recording's name (a split.test naming recordings) had other
    recordings mined: name the subject to keep them all out."""
    from sqtool.data.dataset_tasks import warn
    matched = set().union(*(d["heldout_matched"] for d in per_ds.values())) if per_ds else set()
    if unknown := [n for n in names if n not in matched]:
        warn(f"--exclude-subjects {', '.join(unknown)}: no recording of that subject in the data (nothing left out "
             "for it)")
    both = sorted(k for name, d in per_ds.items() for k in d["heldout_subjects"]
                  if k.split(":", 1)[1] in d["subjects"])
    if both:
        warn(f"{', '.join(both)}: left out by a recording's name, but other recordings of the subject were mined; "
             "name the subject (split.test or --exclude-subjects) to keep every recording out")


# ----------------------------------------------------------------------------- pair statistics

def new_tally() -> dict:
    """One dataset's running counts (`tally` adds a record, `dataset_stats` sums up). The real pairs' quality and
    time gaps are kept for their medians as float32 chunks (8 bytes a pair, where Python lists took about 80),
    their means as float64 running sums."""
    return {"records": 0, "subjects": set(), "windows": 0, "good": 0, "poor": 0, "pairs": 0, "synthetic_pairs": 0,
            "poor_used": 0, "short_records": 0, "unusable_records": 0, "nonfinite_windows": 0, "silent_windows": 0,
            "overlap_rejected": 0, "subjects_with_pairs": set(), "q_gap": [], "t_gap": [], "gap_sums": [0, 0.0, 0.0],
            "heldout_records": 0, "heldout_subjects": set(), "heldout_matched": set()}


TALLY_SETS = ("subjects", "subjects_with_pairs", "heldout_subjects", "heldout_matched")   # saved as sorted lists


def tally(d: dict, rec: dict) -> None:
    """Add one record's counts (`record_pairs`' result) to dataset tally `d`."""
    d["records"] += 1
    d["subjects"].add(rec["subject"])
    d["short_records"] += rec["short"]
    d["unusable_records"] += rec["unusable"]
    d["nonfinite_windows"] += rec["nonfinite"]
    d["silent_windows"] += rec["silent"]
    for k in ("windows", "good", "poor", "pairs", "poor_used", "overlap_rejected"):
        d[k] += rec[k]
    d["synthetic_pairs"] += rec["synthetic"]
    if rec["pairs"]:
        d["subjects_with_pairs"].add(rec["subject"])
        real = ~rec["synth"]
        qg = np.asarray(rec["q_good"][real] - rec["q_poor"][real], np.float64)          # (R,) real pairs
        tg = np.abs(np.asarray(rec["t_good"][real] - rec["t_poor"][real], np.float64))
        if qg.size:
            d["q_gap"].append(qg.astype(np.float32))
            d["t_gap"].append(tg.astype(np.float32))
            sums = d["gap_sums"]
            sums[0] += int(qg.size)
            sums[1] += float(qg.sum())
            sums[2] += float(tg.sum())


def dataset_stats(d: dict) -> dict:
    """Per-dataset counts + the real pairs' quality gap (q_good - q_poor) and time gap (s): means from float64
    running sums, medians of the float32 gaps."""
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.float32)   # noqa: E731
    qg, tg = cat(d["q_gap"]), cat(d["t_gap"])
    n, q_sum, t_sum = d["gap_sums"]
    out = {k: v for k, v in d.items() if k not in ("q_gap", "t_gap", "gap_sums", *TALLY_SETS)}
    out.update(subjects=len(d["subjects"]), subjects_with_pairs=len(d["subjects_with_pairs"]),
               heldout_subjects=sorted(d["heldout_subjects"]),
               real_pairs=int(d["pairs"] - d["synthetic_pairs"]),
               quality_gap_mean=q_sum / n if n else None,
               quality_gap_median=float(np.median(qg)) if qg.size else None,
               time_gap_s_mean=t_sum / n if n else None,
               time_gap_s_median=float(np.median(tg)) if tg.size else None)
    if d["pairs"] == 0:
        out["no_pairs_reason"] = ("every recording's subject is left out (--exclude-subjects, the dataset file's split)"
                                  if d["records"] == 0 and d["heldout_records"] else
                                  "no record has the model's channels" if d.get("unusable_records") == d["records"]
                                  else "no window as long as the pair window" if d["windows"] == 0 else
                                  "no poor window (every window scored good)" if d["poor"] == 0 else
                                  "no good window (every window scored poor)" if d["good"] == 0 else
                                  "no poor window within --max-gap-s of a good one, and not overlapping it, in the "
                                  "same record")
    return out


def write_pair_stats(run_dir: Path, datasets: dict, total: dict, synthetic_partners: bool) -> None:
    """OUT/pair_stats.json and OUT/pair_stats.md: one row per dataset and a total row."""
    from sqtool.core import atomic_write_text

    f = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"   # noqa: E731
    kind = ("real pairs + synthetic partners where a good window had no real poor partner"
            if synthetic_partners else "real pairs only (no synthetic partner)")
    lines = [f"# Pair statistics ({kind})", "",
             "| dataset | records | records without the model's channels | subjects | subjects with pairs | windows | "
             "good | poor | real pairs | synthetic pairs | poor windows used | quality gap mean (median) | "
             "time gap s mean (median) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, v in datasets.items():
        lines.append(f"| {k} | {v['records']} | {v.get('unusable_records', 0)} | {v['subjects']} | "
                     f"{v['subjects_with_pairs']} | {v['windows']} | {v['good']} | {v['poor']} | {v['real_pairs']} | "
                     f"{v['synthetic_pairs']} | {v['poor_used']} | "
                     f"{f(v['quality_gap_mean'])} ({f(v['quality_gap_median'])}) | "
                     f"{f(v['time_gap_s_mean'], 0)} ({f(v['time_gap_s_median'], 0)}) |")
    lines.append(f"| total | {total['records']} | {total.get('unusable_records', 0)} | {total['subjects']} | "
                 f"{total['subjects_with_pairs']} | {total['windows']} | {total['good']} | {total['poor']} | "
                 f"{total['real_pairs']} | "
                 f"{total['synthetic_pairs']} | - | - | - |")
    lines += ["", "A partner never overlaps its good window (|t_good - t_poor| >= window_s); nearest poor windows "
              f"rejected for overlapping (--hop-s shorter than the window): {total.get('overlap_rejected', 0)}"
              + "".join(f"; {k} {v.get('overlap_rejected', 0)}" for k, v in datasets.items())]
    held = {k: v["heldout_subjects"] for k, v in datasets.items() if v.get("heldout_subjects")}
    if held:
        lines += ["", "Left out, never mined (--exclude-subjects, a dataset file's split.test): "
                  + "; ".join(f"{k}: {len(v)} subjects ({datasets[k]['heldout_records']} recordings): "
                              f"{', '.join(v)}" for k, v in held.items())]
    atomic_write_text(run_dir / "pair_stats.md", "\n".join(lines) + "\n")
    atomic_write_text(run_dir / "pair_stats.json", dumps_json(
        {"synthetic_partners": synthetic_partners, "datasets": datasets, "total": total}, indent=1) + "\n")


# ----------------------------------------------------------------------------- CLI

def register_cli(sub) -> None:
    """Add `sqtool data pairs` to the `sqtool data` sub-parsers."""
    p = sub.add_parser("pairs", help="mine (good, poor) window pairs of the same subject into shards",
                       description=__doc__.split("\n\n")[0].split("\n")[0])
    p.add_argument("--data", nargs="+", default=None, metavar="PATH",
                   help="a data root (every dataset folder in it: built-in ones, or one's own with a dataset.yaml "
                        "each), dataset folders or recording files, or "
                        "'synthetic' (default: $SQTOOL_DATA or ../shared/data; synthetic if none)")
    add_deprecated_alias(p, "--input", "--data", "input", nargs="+", metavar="PATH")
    add_config_args(p, PairsConfig, skip=("input",))
    add_bool_flag(p, "--progress", "progress", "show a progress bar on stderr", default=True, stored_default=True)
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue the unfinished (killed or interrupted) run in RUN with its saved config, after the "
                        "files its written shards hold; the result equals an uninterrupted run. Only --workers and "
                        "--chunksize may be given; any other change is refused")
    p.set_defaults(func=_run_cli)


def _is_data_root(path: str, kind: str | None) -> bool:
    """A folder of dataset folders (e.g. ../shared/data, or one of one's own dataset folders, each with its
    dataset.yaml), as opposed to one dataset folder or a file."""
    from sqtool.data.dataset_file import is_data_root
    return kind is None and is_data_root(Path(path), builtins=1)


def _data_overrides(data: list[str] | None, kind: str | None) -> dict:
    """--data values as PairsConfig fields: a data root or 'synthetic' -> data_root, else input paths."""
    if not data:
        return {}
    if len(data) == 1 and (data[0] == "synthetic" or _is_data_root(data[0], kind)):
        return {"data_root": data[0]}
    return {"input": list(data)}


def _run_cli(args) -> int:
    if getattr(args, "resume", None):
        return _print_pairs(_resume_cli(args), args)
    cfg = resolve_config(PairsConfig, args, **_data_overrides(getattr(args, "data", None), args.kind))
    if isinstance(cfg.input, str):                       # a config file's `data: one/path`
        cfg = replace(cfg, input=[cfg.input])
    moved = _data_overrides(cfg.input, cfg.kind) if not getattr(args, "data", None) else {}
    if "data_root" in moved:                             # a config file's `data:` is --data: a root or 'synthetic'
        cfg = replace(cfg, input=[], data_root=moved["data_root"])
    _refuse_synthetic_flags(cfg, args)
    return _print_pairs(cfg, args)


def _refuse_synthetic_flags(cfg: PairsConfig, args) -> None:
    """--synthetic-subjects / --synthetic-duration-s typed beside real data: they shape the synthetic default
    corpus only, and were silently ignored (every recording of --data mined); one line instead. A --config file's
    keys are left alone (a run's own config.yaml holds every field)."""
    given = [flag_of(PairsConfig, k) for k in ("synthetic_subjects", "synthetic_duration_s")
             if getattr(args, k, None) is not None]
    if not given or (not cfg.input and (cfg.data_root == "synthetic" or resolve_data_root(cfg.data_root) is None)):
        return
    data = " ".join(map(str, cfg.input)) if cfg.input else str(resolve_data_root(cfg.data_root))
    raise SqtoolError(f"data pairs {' and '.join(given)}: {'they shape' if len(given) > 1 else 'it shapes'} the "
                      f"synthetic corpus of --data synthetic only; --data {data} mines every recording there (drop "
                      f"{' and '.join(given)}, or give --data synthetic)")


def _resume_cli(args) -> PairsConfig:
    """`data pairs --resume RUN`: the run's saved config with what the command line gives over it (--data too,
    so the same command line with --resume added is no change); mine_pairs refuses a change that alters pairs."""
    from sqtool.core import resume_config
    from sqtool.core.runs import saved_config
    run_dir = Path(args.resume)
    if not (run_dir / "config.yaml").is_file():
        raise SqtoolError(f"cannot resume: {run_dir / 'config.yaml'} not found (not a data pairs run folder)")
    for k, v in _data_overrides(getattr(args, "data", None), args.kind).items():
        setattr(args, k, v)                              # --data as the fields it sets (input or data_root)
    saved = saved_config(PairsConfig, run_dir, "data pairs")
    cfg, _ = resume_config(PairsConfig, saved, args, run_dir=run_dir, may_change=MAY_CHANGE_ON_RESUME,
                           why="its finished shards were mined with the saved one")
    return replace(cfg, out=str(run_dir))


def _print_pairs(cfg: PairsConfig, args) -> int:
    """Mine (fresh or resumed) and print the result summary and the next command."""
    m = mine_pairs(cfg, progress=getattr(args, "progress", True) is not False,
                   resume=bool(getattr(args, "resume", None)))
    print(f"{m['pairs']} pairs ({m['real_pairs']} real, {m['synthetic_pairs']} with a synthetic partner"
          f"{'' if m['synthetic_partners'] else ': --synthetic-partners off'}) from {m['windows']} windows "
          f"({m['good']} good, {m['poor']} poor) of {m['records']} records / {m['subjects']} subjects; "
          f"{m['shards']} shard(s), {m['bytes'] / 2**20:.1f} MB, {m['windows_per_s']:.0f} windows/s, "
          f"peak RSS {m['peak_rss_mb_main']:.0f} MB -> {m['out']}")
    for name, d in m["datasets"].items():
        gap = "-" if d["quality_gap_mean"] is None else f"{d['quality_gap_mean']:.2f}"
        print(f"  {name:<16} records {d['records']:>5}  subjects {d['subjects']:>4}  windows {d['windows']:>7}  "
              f"good {d['good']:>7}  poor {d['poor']:>6}  pairs {d['pairs']:>7}  quality gap {gap}  "
              f"(short records {d['short_records']})")
    held = sorted(k for d in m["datasets"].values() for k in d["heldout_subjects"])
    if held:
        print(f"left out, never mined: {len(held)} subject(s) (--exclude-subjects, a dataset file's split.test): "
              f"{', '.join(held)}")
    if m["nonfinite_windows"]:
        print(f"left out {m['nonfinite_windows']} windows holding NaN/Inf samples (gaps; metrics.json "
              "nonfinite_windows per dataset)")
    if m.get("silent_windows"):
        print(f"left out {m['silent_windows']} windows whose PPG is flat over more than half of them (no pulse: a "
              "sensor off, a file's padding; metrics.json silent_windows per dataset)")
    if m["errors"]:
        print(f"skipped {len(m['errors'])} bad file(s), listed in {m['out']}/metrics.json (errors), e.g. "
              f"{m['errors'][0]}")
    print(f"pair statistics: {m['out']}/pair_stats.md")
    if m["pairs"]:
        print(pairs_next(cfg, m["out"]))
    return 0


# ----------------------------------------------------------------------------- which model reads the pairs

PAIRS_CONTRACT = ("fs", "window_s", "channels", "norm", "band")   # index.json keys = the ModelCfg fields they match
PRETRAIN_DEFAULT = "resnet1d_siamq_tiny"                          # `train pretrain`'s --model when none is given
_FLAGS = {"fs": "--fs", "window_s": "--window-s", "channels": "--channels", "norm": "--norm"}   # band: --band-lo/-hi
# band_phase is not in the contract a registered model is matched on (`train pretrain --band-phase` sets the model's):
# `pairs_phase` reads it, and ShardPairs.check_contract compares it on its own


def pair_contract(src) -> dict:
    """{fs, window_s, channels, norm, band} of a pairs folder's index.json (a dict) or of a ModelCfg, comparable."""
    get = src.get if isinstance(src, dict) else lambda k: getattr(src, k)
    band = get("band")
    band = None if band is None else tuple(None if b is None else float(b) for b in band)
    return {"fs": float(get("fs")), "window_s": float(get("window_s")), "channels": list(get("channels")),
            "norm": get("norm"), "band": band}


def pairs_phase(index: dict) -> str:
    """The band-pass phase a pairs folder's windows were cut with (index.json); older folders: "zero", as all were."""
    return index.get("band_phase") or "zero"


def contract_diff(theirs: dict, mine: dict) -> list[str]:
    """The PAIRS_CONTRACT keys on which two `pair_contract`s differ (numbers within 1e-9, relative)."""
    return [k for k in PAIRS_CONTRACT if not _same(theirs[k], mine[k])]


def contract_text(c: dict, keys) -> str:
    """'window_s 10, norm spectrum_max': the `keys` of a `pair_contract`, for a message."""
    return ", ".join(f"{k} {_fmt(c[k])}" for k in keys)


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    return a == b


def _fmt(v) -> str:
    if isinstance(v, (tuple, list)):
        return "-".join(_fmt(x) for x in v) if v and all(isinstance(x, (int, float)) or x is None for x in v) \
            else ",".join(map(str, v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def models_reading(index: dict) -> list[str]:
    """The registered models `sqtool train pretrain` can train on the pairs of `index` (their index.json): its window
    contract and, where the index gives it, its (C, T) pair shape; in registered order (a family smallest first)."""
    from sqtool import models          # the registry: pairs.py reads its models' contracts (tests/test_layering.py)
    c = pair_contract(index)
    shape = tuple(index["pair_shape"][1:]) if index.get("pair_shape") else None
    return [n for n in models.list_models(registered_order=True) if models.pretrains(n)
            and not contract_diff(c, pair_contract(mc := models.get_model_cfg(n)))
            and shape in (None, tuple(mc.input_shape))]


def pairs_next(cfg: PairsConfig, out) -> str:
    """`next: sqtool train pretrain --pairs OUT [--model M]`: the model the pairs were made for (--model), else train
    pretrain's default when it reads them, else the first registered model that does; when none does, which flags
    make pairs that its default reads (a printed command that fails on its window contract helps no one)."""
    from sqtool.data.shards import read_index
    phase = ["--band-phase", cfg.band_phase] if cfg.band_phase != "zero" else []
    if cfg.model:
        return "next: " + shell_command("train", "pretrain", "--pairs", out, "--model", cfg.model, *phase)
    _, index = read_index(out)
    readers = models_reading(index)
    if readers:
        model = [] if PRETRAIN_DEFAULT in readers else ["--model", readers[0]]
        return "next: " + shell_command("train", "pretrain", "--pairs", out, *model, *phase)
    return "next: " + no_reader_line(index)


def _refuse_unread(cfg: PairsConfig) -> None:
    """Before anything is mined: pairs of cfg's window contract (no --model) that no registered model reads are
    refused in no_reader_line's words, unless --own-model (pairs for a model of one's own)."""
    index = {"fs": cfg.fs, "window_s": cfg.window_s, "channels": list(cfg.channels), "norm": cfg.norm,
             "band": [cfg.band_lo, cfg.band_hi]}                 # the index.json header these pairs would get
    if not _models_reading_apart(index):
        raise SqtoolError(f"data pairs: {no_reader_line(index, again=False)} (--own-model: mine them anyway, for a "
                          "model of your own)")


def _models_reading_apart(index: dict) -> list[str]:
    """models_reading(index), in a short-lived child process unless torch is loaded here already: the registry imports
    it (~190 MB, seconds), which the miner and its forked workers would otherwise carry (~110 MB a process without)."""
    if "torch" in sys.modules:
        return models_reading(index)
    import multiprocessing as mp
    with mp.get_context("fork" if sys.platform != "win32" else "spawn").Pool(1) as pool:
        return pool.apply(models_reading, (index,))


def no_reader_line(index: dict, again: bool = True) -> str:
    """Why no registered model reads the pairs of `index` (their index.json, or the contract they would get), and
    which flags make pairs that `train pretrain`'s default reads (again=False: said before they are mined)."""
    from sqtool import models
    c, want = pair_contract(index), pair_contract(models.get_model_cfg(PRETRAIN_DEFAULT))
    diff = contract_diff(c, want)
    flags = " ".join(f"{_FLAGS[k]} {_fmt(want[k])}" if k in _FLAGS else
                     f"--band-lo {_fmt(want[k][0])} --band-hi {_fmt(want[k][1])}" for k in diff)
    remake = f"{flags} (the windows of {PRETRAIN_DEFAULT}, its default), or --model NAME" if flags else "--model NAME"
    return (f"none of the registry's models reads these pairs ({contract_text(c, diff or PAIRS_CONTRACT)}), so "
            f"`sqtool train pretrain` cannot train on them: mine them{' again' if again else ''} with {remake}")


__all__ = ["PairsConfig", "mine_pairs", "match_pairs", "record_pairs", "list_units", "register_cli",
           "apply_model_contract", "dataset_stats", "write_pair_stats", "pair_contract", "contract_diff",
           "contract_text", "models_reading", "pairs_phase", "PAIRS_CONTRACT", "overlap_rejected", "no_reader_line"]
