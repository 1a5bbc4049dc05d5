"""SiamQuality pretraining: SimSiam on (good, poor) PPG pairs of the same subject.

    loss = -1/2 [cos(h(g(f(x1))), sg(g(f(x2)))) + cos(h(g(f(x2))), sg(g(f(x1))))]

f = 1-D ResNet encoder, g = projector, h = predictor, sg = stop-gradient; no augmentation (the poor
partner is the augmentation). `pair_mode` chooses what (x1, x2) is, on the same corpus:

    real      (good, poor) pairs as mined (SiamQuality). The corpus says whether any poor partner is a
              synthetic corrupted copy (`data pairs --synthetic-partners`); the run's first line gives the
              pairs per dataset, with a warning when most partners are synthetic, and metrics.json reports
              `real_pairs`, `synthetic_pairs` and `pairs_by_dataset` so a run never hides it.
    augment   two standard augmented views (crop, scale, noise, baseline wander; `train.augment`) of
              the GOOD window of each pair: SimSiam as usually done, the ablation's control.
 Optimiser as in the paper: SGD Nesterov 0.9, lr 1e-4, weight decay 1e-4,
lr x0.5 every 10 epochs, grad-norm clip 10, batch 256.

Data order is a pure function of (seed, epoch): the global permutation of the training pairs is
`default_rng([seed, epoch]).permutation(...)`, global batch s is slice s of it, and rank r of W takes the
r-th B/W of each global batch (it loads only those pairs). So a run on W ranks sees exactly the batches
of a one-process run with the same global batch, and `--resume` only needs (epoch, step) to continue
with the same batches. `last.pt` holds everything else a bit-exact continuation needs: weights, BN
statistics, optimizer momentum, scheduler, grad scaler, the python/numpy/torch RNG states, the loss
history (each step's record up to HISTORY_CAP of them, then every 2nd, 4th, ... step's, `history_every` in
metrics.json: a million-step run kept 320 MB of them on every rank and wrote 136 MB of metrics.json; the epochs'
mean losses stay exact). A changed config on resume is refused, except `max_steps`, `progress`, `device` and `epochs` (not
below the epochs done): the lr schedule steps every `lr_step_epochs` whatever the total and the data order
depends only on (seed, epoch), so a run resumed with more epochs equals one started with them. `max_steps` only says
where this part stops: a run its `--max-steps` stopped resumes to the end of its epochs unless it is given again
(`train pretrain --resume`), with the lr schedule and batches of a run never stopped. last.pt also
records the corpus (`corpus_identity`: pair count and a digest of index.json's shard sha256 values), so a resume
on a pairs folder mined again into the same path is refused in one line (`check_same_corpus`), and the world size
of each part of the run (`world_sizes` in config.yaml's resolved section and metrics.json; `world_size`: this part's).

When last.pt is written: at each epoch end, every `--ckpt-every N` steps (0, the default: epoch ends only), at a
`--max-steps` stop, and at a SIGTERM. `train pretrain --force` into a folder of an earlier run removes that run's
last.pt as it starts: stopped before its own first checkpoint, its `--resume` continued the earlier run. A SIGTERM (a preemption: SLURM, Kubernetes, torchrun passing on its own)
ends the step being trained and writes last.pt at that step (`loop.SigtermStop`: the ranks agree on the step
through the loss all-reduce every step already makes, so they stop one step after the first rank got it; a rank
inside a collective finishes it first); then the signal acts: the command says `sqtool: terminated (SIGTERM);
continue with: ...` and exits 143, the run folder kept, also in the first epoch. A validation under way (an epoch
end's, or every --val-every steps) is finished first, and torchrun waits 30 s for its processes before killing
them (--shutdown-timeout S: longer), so the step, a validation and last.pt's write must fit. A Ctrl-C (SIGINT)
stops at once, from the last checkpoint written. The resume command is printed as the run was started: under
torchrun with its world size (`core.runs.resume_command`), which continues it bit for bit; a resume on another
number of processes continues with the same batches but not bit for bit, and says so in one WARNING line.

metrics.json's `first_loss` and `final_loss` are the mean SimSiam loss of the first and of the last epoch's
worth of steps (`first_step_loss`: step 1's batch alone), so the summary's `loss A -> B` compares like with like.
`val_fraction` holds out whole subjects when the pairs name 3 or more, chosen (per seed) so that their pairs come
close to that share of the pairs (`split_pairs`), said in one line and recorded (`train_pairs`, `val_pairs`,
`train_subjects`, `val_subjects`); else random pairs, with a note line.
A collapsed run (the last validation's z std under 0.2 x the healthy 1/sqrt(d), `train.collapse`) prints one
WARNING line saying what that means and what to try; `collapsed` is in metrics.json and in model.pt's metrics,
where a fine-tune from it reads it (`collapse.init_collapse_warning`).
"""
from __future__ import annotations

import math
import os
import re
import sys
import time
import traceback
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, check_band_phase, from_dict, resume_config, to_dict, write_metrics
from sqtool.core.config import refuse_resume
from sqtool.core.optim import LAYOUT_HELP, check_training_numbers, encoder_layout
from sqtool.core.trainlog import PRETRAIN_COLUMNS, TrainLog
from sqtool.data.pairs import PRETRAIN_DEFAULT
from sqtool.train.collapse import collapse_warning, is_collapsed
from sqtool.train.launch import DDP_TIMEOUT_S, LAUNCHER_ENV

RESUME_MAY_CHANGE = ("max_steps", "progress", "device", "layout", "ddp_timeout", "log_every", "tensorboard")


@dataclass
class PretrainConfig:
    # what each number may be (core.config: a value outside is one line, before any work)
    RANGES: ClassVar[dict] = {"synthetic_pairs": {"min": 1}, "lr_step_epochs": {"min": 1}, "lr_gamma": {"above": 0},
        "grad_clip": {"min": 0}, "val_fraction": {"min": 0, "max": 1}, "val_every": {"min": 0},
        "ckpt_every": {"min": 0}, "ddp_timeout": {"above": 0}, "log_every": {"min": 1}}
    model: str = field(default=PRETRAIN_DEFAULT, metadata={
        "help": "encoder from the registry; tiny (0.18 M parameters) finishes on a laptop, the paper's is "
                "resnet1d_siamq_152 (21.6 M encoder, 27 M with the SimSiam heads)"})
    pairs: str = field(default="synthetic", metadata={
        "help": "pair shard folder (from `sqtool data pairs`), or 'synthetic' (a smoke run on generated pairs)",
        "path": True})
    synthetic_pairs: int = field(default=1024, metadata={"help": "number of pairs when pairs = synthetic"})
    pair_mode: str = field(default="real", metadata={
        "help": "real: the (good, poor) pairs as mined (SiamQuality) | augment: two augmented views (crop, "
                "scale, noise, wander) of each pair's good window (standard SimSiam)"})
    band_phase: str = field(default="zero", metadata={
        "help": "time-domain models: zero (zero-phase band-pass) | causal (one running filter from the recording's "
                "start, as a device runs it; pairs made with `data pairs --band-phase causal`, then `train finetune "
                "--band-phase causal`): the encoder learns the front end it will be fed"})
    epochs: int = field(default=30, metadata={"help": "passes over the training pairs"})
    batch_size: int = field(default=256, metadata={"help": "GLOBAL batch (split over ranks)"})
    lr: float = field(default=1e-4, metadata={"help": "SGD learning rate"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    nesterov: bool = field(default=True, metadata={"help": "Nesterov momentum"})
    weight_decay: float = field(default=1e-4, metadata={"help": "SGD weight decay"})
    lr_step_epochs: int = field(default=10, metadata={"help": "multiply the lr by lr_gamma every this many epochs"})
    lr_gamma: float = field(default=0.5, metadata={"help": "lr factor of each step"})
    grad_clip: float = field(default=10.0, metadata={"help": "max grad norm (0 = off)"})
    val_fraction: float = field(default=0.05, metadata={
        "help": "share of the pairs held out for validation (whole subjects, chosen so their pairs come closest to "
                "it, when the pairs name 3 or more, else random pairs)"})
    val_every: int = field(default=0, metadata={"help": "validate every N steps (0 = at each epoch end)"})
    ckpt_every: int = field(default=0, metadata={
        "help": "write last.pt every N steps (0 = at each epoch end only); a SIGTERM writes it at the step it stops"})
    max_steps: int = field(default=0, metadata={"help": "stop after this many steps in total (0 = all epochs)"})
    amp: str = field(default="auto", metadata={"help": "auto (fp16 on CUDA, off on CPU) | off | bf16 | fp16"})
    dtype: str = field(default="float32", metadata={"help": "float32 | float64 (float64: numerical verification)"})
    device: str = field(default="auto", metadata={"help": "auto (CUDA when available) | cpu | cuda | cuda:N"})
    layout: str = field(default="auto", metadata={"help": LAYOUT_HELP})
    seed: int = field(default=0, metadata={"help": "random seed (data order, initialisation, synthetic pairs)"})
    ddp_timeout: float = field(default=DDP_TIMEOUT_S, metadata={
        "metavar": "S", "help": "under torchrun: seconds a rank waits for the others at a collective (longer than rank "
                                "0 validating and writing last.pt alone); a rank stuck longer (a data read, a device) "
                                "stops the run with one line, last.pt kept"})
    log_every: int = field(default=10, metadata={
        "help": "a row in RUN/log.csv every N steps (step, epoch, loss, lr, grad_norm, z_std, pairs/s; a row per "
                "validation too), flushed as written: `tail -f` it while the run trains"})
    tensorboard: bool = field(default=False, metadata={
        "help": "also write log.csv's rows as TensorBoard scalars into RUN/tb (needs `pip install tensorboard`)"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar on stderr"})


# ----------------------------------------------------------------------------- pair sources

class ArrayPairs:
    """Pairs held in memory: x1 = good, x2 = poor, each (N, C, T) float32; groups (N,) subject ids (kept as
    int32 codes into `subjects`, see `subject_codes`)."""

    def __init__(self, x1: np.ndarray, x2: np.ndarray, groups: np.ndarray, desc: str = "in-memory pairs"):
        if x1.shape != x2.shape or x1.ndim != 3 or len(groups) != len(x1):
            raise SqtoolError(f"pairs: x1 {x1.shape}, x2 {x2.shape}, groups {len(groups)} do not match")
        self.x1, self.x2, self.desc = x1, x2, desc
        self.subjects, self.groups = subject_codes(np.asarray(groups).astype(str))

    def __len__(self) -> int:
        return len(self.x1)

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(self.x1.shape[1:])

    def get(self, idx) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(idx)
        return self.x1[idx], self.x2[idx]


def synthetic_pairs(n_pairs: int, model_cfg, seed: int = 0) -> ArrayPairs:
    """(clean, corrupted) windows of synthetic subjects: each clean record is copied with one artifact
    (motion, clipping, dropout, wander; `synthetic.corrupt`) per window, then both go through the same
    preprocessing as real data. Windows do not overlap, so the pair is the same stretch of time."""
    import dataclasses

    from sqtool.data.preprocess import make_windows
    from sqtool.data.synthetic import corrupt, synth_corpus
    win_s = model_cfg.window_s
    per_rec = 8
    n_rec = max(2, math.ceil(n_pairs / per_rec))
    recs = synth_corpus(n_subjects=n_rec, duration_s=per_rec * win_s, seed=seed, artifacts=0.0)
    rng = np.random.default_rng(seed + 1)
    x1, x2, g = [], [], []
    for rec in recs:
        fs = rec.fs["ppg"]
        raw = rec.signals["ppg"]
        w = int(round(win_s * fs))
        bad = raw.copy()
        for s in range(0, len(raw) - w + 1, w):
            bad[s:s + w], _ = corrupt(raw[s:s + w], fs, rng)
        poor = dataclasses.replace(rec, signals={"ppg": bad}, fs={"ppg": fs})
        good = dataclasses.replace(rec, signals={"ppg": raw}, fs={"ppg": fs})
        kw = dict(channels=["ppg"], fs=model_cfg.fs, window_s=win_s, hop_s=win_s, norm=model_cfg.norm,
                  band=model_cfg.band, causal=model_cfg.band_phase == "causal")
        a, b = make_windows(good, **kw).x, make_windows(poor, **kw).x
        x1.append(a)
        x2.append(b)
        g += [rec.subject] * len(a)
    x1, x2 = np.concatenate(x1)[:n_pairs], np.concatenate(x2)[:n_pairs]
    return ArrayPairs(x1, x2, np.array(g[:n_pairs]), desc=f"{len(x1)} synthetic pairs (seed {seed})")


class ShardPairs:
    """Random access over a pairs directory (`sqtool data pairs`, format of `sqtool.data.shards`).

    Shards are memory-mapped (`shards.open_shard`, which checks shape and index, and with `verify` the sha256,
    hashing each shard once per process; a training run opens them unverified on every rank and hashes them
    once per machine, `verify_pairs`); `get(idx)` reads only
    the rows asked for, so each rank touches only the pages of its own pairs. Random access (rather than
    the streaming `PairShardDataset`) is what makes the data order independent of the number of ranks
    and lets `--resume` restart exactly at a step inside an epoch."""

    def __init__(self, path: str, verify: bool = True):
        from sqtool.data.shards import advise_random, open_shard, read_index
        self.root, self.index = read_index(path)
        shards = self.index["shards"]
        if not shards:
            raise SqtoolError(f"{self.root}: pairs directory holds no shards")
        self.arrs = [open_shard(self.root, e, verify=verify) for e in shards]
        for a in self.arrs:
            advise_random(a)                    # random rows: the kernel reads the pages asked for, not MBs around
        shapes = {tuple(a.shape[2:]) for a in self.arrs}
        if len(shapes) != 1:
            raise SqtoolError(f"{self.root}: shards have different window shapes {sorted(shapes)}; corrupt")
        self.offsets = np.cumsum([0] + [a.shape[0] for a in self.arrs])
        subject = []                                      # per shard (n,) int32 index into index.json "subjects"
        for e in shards:
            try:
                with np.load(self.root / e["meta"], allow_pickle=False) as m:
                    sub = np.asarray(m["subject"])
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
                why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
                raise SqtoolError(f"{self.root / e['meta']}: corrupt or missing pair metadata ({why}); remake the "
                                  f"pairs with `sqtool data pairs`")
            subject.append(sub)
        subject = np.concatenate(subject)
        if len(subject) != len(self):
            raise SqtoolError(f"{self.root}: pair metadata does not match the shards; corrupt")
        names = self.index.get("subjects") or None                  # None: legacy shards, the index is the name
        listed = len(names) if names else 2**31 - 1
        if subject.dtype.kind not in "iu" or (len(subject) and not 0 <= subject.min() <= subject.max() < listed):
            raise SqtoolError(f"{self.root}: pair metadata holds subjects that index.json does not list; corrupt")
        self.subjects, self.groups = subject_codes(subject, names)
        self.desc = f"{len(self)} pairs from {self.root}"

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(self.arrs[0].shape[2:])

    def check_contract(self, model_cfg) -> None:
        """Refuse pairs made at another rate, window, channel list, normalisation or band than the model's:
        the checkpoint records the model's contract, so training on other windows would make it lie."""
        from sqtool.data.pairs import PAIRS_CONTRACT, contract_diff, contract_text, pair_contract, pairs_phase
        where = self.root / "index.json"
        missing = [k for k in PAIRS_CONTRACT if k not in self.index]
        if missing:
            raise SqtoolError(f"{where} lacks {', '.join(missing)}: cannot tell how the pairs were made "
                              "(remake them with `sqtool data pairs`)")
        theirs, mine = pair_contract(self.index), pair_contract(model_cfg)
        diff = contract_diff(theirs, mine)
        if diff:
            raise SqtoolError(f"pairs {self.root} were made with {contract_text(theirs, diff)} but {model_cfg.name} "
                              f"expects {contract_text(mine, diff)} ({self._remedy(model_cfg)})")
        phase = pairs_phase(self.index)
        if phase != model_cfg.band_phase:
            raise SqtoolError(f"pairs {self.root} were made with band_phase {phase} but {model_cfg.name} is pretrained "
                              f"with band_phase {model_cfg.band_phase}: train pretrain --band-phase {phase} for these "
                              f"pairs, or remake them with data pairs --band-phase {model_cfg.band_phase}")

    def _remedy(self, model_cfg) -> str:
        """What makes pairs and model match: the registered models that read these pairs (as --model), and pairs
        remade for this model (`data pairs --model`, or the flags for a model_cfg that is not the registry's)."""
        from sqtool.data.pairs import contract_diff, models_reading, pair_contract
        from sqtool.models import get_model_cfg
        readers = models_reading(self.index)
        take = f"these pairs are read by {', '.join(readers)}: give one as --model, or " if readers else \
            "no registered model reads these pairs: "
        if contract_diff(pair_contract(get_model_cfg(model_cfg.name)), pair_contract(model_cfg)):   # a derived cfg
            return take + "remake the pairs with matching --fs/--window-s/--channels/--norm/--band-lo/--band-hi"
        name = model_cfg.name
        phase = f" --band-phase {model_cfg.band_phase}" if model_cfg.band_phase != "zero" else ""
        return take + f"remake them for {name} from their data with `sqtool data pairs --model {name}{phase}`"

    def get(self, idx):
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((len(idx), 2, *self.input_shape), np.float32)            # (B, 2, C, T)
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            rows = idx[sel] - self.offsets[s]
            order = np.argsort(rows)                                            # sorted reads of the mmap
            try:
                out[sel[order]] = np.asarray(self.arrs[s][rows[order]], dtype=np.float32)
            except (OSError, ValueError) as e:
                raise SqtoolError(f"{self.root}: reading shard {s} failed ({e}); corrupt or truncated")
        if not np.all(np.isfinite(out)):
            raise SqtoolError(f"{self.root}: pairs contain NaN/Inf values; corrupt shard")
        return out[:, 0], out[:, 1]


def verify_pairs(src: ShardPairs, d, progress: bool = False) -> None:
    """Refuse shards whose bytes differ from index.json's sha256 (a changed corpus, also on --resume), reading
    the corpus once per machine instead of once per rank: local rank 0 (the process itself when alone) hashes
    the shards one at a time and all ranks agree on each before the next (`loop.first_error`). The other ranks
    trust its verdict (they checked every shard's shape when opening it), wait at most one shard's hash at a
    collective (well inside --ddp-timeout), and stop with the same line. The paper's 173 GB cost
    ~8 min of reading per rank, 8 ranks a machine, on every start and resume."""
    from sqtool.core.progress import bar as progress_bar
    from sqtool.data.shards import open_shard
    from sqtool.train import loop
    shards = src.index["shards"]
    with progress_bar(total=len(shards), desc="verify pairs (sha256)", unit="shard",
                      enabled=progress and d.is_main) as bar:
        for e in shards:
            err = None
            if d.local_rank == 0:
                try:
                    open_shard(src.root, e, verify=True)
                except SqtoolError as x:
                    err = str(x)
            err = loop.first_error(d, err)
            if err:
                if not d.enabled:
                    raise SqtoolError(err)
                loop.stop_together(d, err)          # one line (rank 0's), every rank stopped
            bar.update(1)


def open_pairs(cfg: PretrainConfig, model_cfg, verify: bool = True):
    if cfg.pair_mode not in PAIR_MODES:
        raise SqtoolError(f"pair_mode must be one of {', '.join(PAIR_MODES)}, got '{cfg.pair_mode}'")
    if cfg.pairs == "synthetic":
        if cfg.synthetic_pairs < 4:
            raise SqtoolError("synthetic_pairs must be at least 4")
        src = synthetic_pairs(cfg.synthetic_pairs, model_cfg, cfg.seed)
    else:
        p = Path(cfg.pairs)
        if not p.exists():
            raise SqtoolError(f"pair shards {p} not found (make them with 'sqtool data pairs')")
        src = ShardPairs(str(p), verify=verify)
    return with_pair_mode(src, cfg.pair_mode, model_cfg, cfg.seed)


PAIR_MODES = ("real", "augment")


def with_pair_mode(src, pair_mode: str, model_cfg, seed: int = 0):
    """The pair source for `pair_mode`: `src` itself (real) or two augmented views of its good windows."""
    if pair_mode == "real":
        return src
    if pair_mode == "augment":
        from sqtool.train.augment import AugmentViews
        return AugmentViews(src, model_cfg.fs, model_cfg.norm, seed)
    raise SqtoolError(f"pair_mode must be one of {', '.join(PAIR_MODES)}, got '{pair_mode}'")


def pair_counts(src) -> dict:
    """{"real_pairs", "synthetic_pairs", "synthetic_partners", "pairs_by_dataset"} of a pair source as far as it
    knows (None = unknown). `pairs_by_dataset`: per dataset its pairs, and of them real and synthetic-partner ones
    (the shards count each dataset's pairs; the index, as `data pairs` writes it, the synthetic ones)."""
    base = getattr(src, "base", src)
    if isinstance(base, ShardPairs):
        counts = base.index.get("counts", {})
        syn = int(base.index.get("synthetic_pairs", sum(int(c.get("synthetic_pairs", 0)) for c in counts.values())))
        per_ds = {}
        for shard in base.index["shards"]:
            for k, n in (shard.get("datasets") or {}).items():
                per_ds[k] = per_ds.get(k, 0) + int(n)
        by_ds = {}
        for k, n in per_ds.items():
            s = counts.get(k, {}).get("synthetic_pairs")
            by_ds[k] = {"pairs": n, "real_pairs": None if s is None else n - int(s),
                        "synthetic_pairs": None if s is None else int(s),
                        "subjects_with_pairs": counts.get(k, {}).get("subjects_with_pairs")}
        return {"real_pairs": len(base) - syn, "synthetic_pairs": syn,
                "synthetic_partners": bool(base.index.get("synthetic_partners", syn > 0)),
                "pairs_by_dataset": by_ds or None}
    if "synthetic" in getattr(base, "desc", ""):
        return {"real_pairs": 0, "synthetic_pairs": len(base), "synthetic_partners": True,
                "pairs_by_dataset": None}
    return {"real_pairs": None, "synthetic_pairs": None, "synthetic_partners": None, "pairs_by_dataset": None}


def corpus_lines(counts: dict) -> list[str]:
    """The corpus a run trains on, per dataset (one line), and a warning line when most of its pairs have a
    synthetic poor partner (the run then learns to undo `synthetic.corrupt`, not real artifacts); [] unknown."""
    by_ds = counts.get("pairs_by_dataset")
    if not by_ds:
        return []
    part = lambda v: (f"{v['pairs']:,}" if not v["synthetic_pairs"] else           # noqa: E731
                      f"{v['pairs']:,} ({v['synthetic_pairs']:,} with a synthetic partner)")
    n, syn = sum(v["pairs"] for v in by_ds.values()), counts.get("synthetic_pairs") or 0
    lines = [f"pairs: {n:,} ({n - syn:,} real, {syn:,} with a synthetic partner): "
             + ", ".join(f"{k} {part(v)}" for k, v in by_ds.items())]
    if syn * 2 > n:
        lines.append(f"sqtool: warning: {syn:,} of {n:,} pairs ({syn / n:.0%}) have a synthetic poor partner "
                     "(--synthetic-partners): this run learns to see through generated artifacts more than real "
                     "ones; say so beside its results")
    return lines


def subject_codes(subject: np.ndarray, names=None) -> tuple[np.ndarray, np.ndarray]:
    """(table, codes): the distinct subject names, sorted (np.unique's order), and per pair the int32 index of
    its subject in that table. `subject` (N,) holds the names, or integer indices into `names` (None: the
    integers themselves are the names, as strings). Only the small table holds strings: a per-pair string
    array is 4 bytes x the longest name per pair, and sorting it cost ~50 s at 18 M pairs. Codes follow the
    sorted names, so `split_pairs` over codes holds out the subjects it held out over the names."""
    subject = np.asarray(subject)
    if subject.dtype.kind not in "iu":                               # names given per pair (in-memory pairs)
        table, codes = np.unique(subject.astype(str), return_inverse=True)
        return table, codes.reshape(-1).astype(np.int32)
    if names is None:                                                # legacy shards: the index is the name
        present = np.unique(subject)
        names, subject = present.astype(str), np.searchsorted(present, subject)
    table, rank = np.unique(np.asarray(names, dtype=str), return_inverse=True)   # equal names: one subject
    return table, rank.reshape(-1).astype(np.int32)[subject]                     # (N,) int32


SUBJECT_SPLIT_MIN = 3          # distinct subjects that split_pairs needs to hold whole subjects out
SPLIT_RULE = "pair_share"      # last.pt's `split`: how its run chose the held-out subjects (split_pairs' rule)


def split_pairs(groups: np.ndarray | None, n: int, val_fraction: float, seed: int, rule: str = SPLIT_RULE):
    """(train_idx, val_idx): whole subjects held out when subject ids are known and there are SUBJECT_SPLIT_MIN or
    more, else random pairs (`random_split_note` says so).

    `groups` (N,): int codes (`subject_codes`; a code's order is its subject's sorted order) or any other ids.
    The subjects are taken in a seeded permutation of the distinct ids in sorted order (the same on every rank)
    and held out so that their PAIRS come close to val_fraction x N (`_held_subjects`): at least one subject, never
    all of them. rule "subjects" is the rule of runs made before it (round(val_fraction x subjects) of them, whatever
    their pairs: 4 % to 59 % of the pairs by seed on one corpus), kept for resuming such a run on the same split."""
    if not 0.0 <= val_fraction < 1.0:
        raise SqtoolError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng([seed, 12345])
    if val_fraction == 0:
        return np.arange(n), np.arange(0)
    if groups is not None:
        codes, present = _subjects_present(groups)
        if len(present) >= SUBJECT_SPLIT_MIN:
            order = present[rng.permutation(len(present))]
            if rule == "subjects":
                chosen = order[:max(1, int(round(val_fraction * len(order))))]
            else:
                chosen = _held_subjects(order, np.bincount(codes)[order], val_fraction * n)
            held = np.zeros(present[-1] + 1, bool)
            held[chosen] = True
            val = held[codes]                                         # (N,) bool
            return np.flatnonzero(~val), np.flatnonzero(val)
    perm = rng.permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _held_subjects(order: np.ndarray, counts: np.ndarray, target: float) -> np.ndarray:
    """The subjects of `order` (their pair `counts`) to hold out for `target` pairs: in that order each that still
    fits under the target, then the one other subject that brings the total closest to it, when it is closer (the
    one closest when none fits: at least one subject); one subject is always left for training."""
    take = np.zeros(len(order), bool)
    total, n_take = 0, 0
    for i, c in enumerate(counts.tolist()):
        if total + c <= target and n_take < len(order) - 1:
            take[i], total, n_take = True, total + c, n_take + 1
    rest = np.flatnonzero(~take)
    if n_take < len(order) - 1:
        i = rest[np.argmin(np.abs(total + counts[rest] - target))]          # the first such in order on ties
        if not take.any() or abs(total + counts[i] - target) < abs(total - target):
            take[i] = True
    return order[take]


def split_line(sides: dict, train_idx: np.ndarray, val_idx: np.ndarray, val_fraction: float) -> str | None:
    """The one line of a split by subject (`sides`: its `split_subjects`): validation and training pairs and
    subjects (None without validation or subjects; a random split is `random_split_note`'s, said instead)."""
    k_val, k_train = sides["val_subjects"], sides["train_subjects"]
    if len(val_idx) == 0 or k_val is None:
        return None
    n = len(val_idx) + len(train_idx)
    return (f"validation: {len(val_idx)} pairs of {k_val} held-out subject{'s' if k_val != 1 else ''} "
            f"({len(val_idx) / n:.1%} of {n}; val_fraction {val_fraction:g}), training: {len(train_idx)} pairs of "
            f"{k_train} subject{'s' if k_train != 1 else ''}")


def split_subjects(groups: np.ndarray | None, train_idx: np.ndarray, val_idx: np.ndarray) -> dict:
    """{"train_subjects", "val_subjects"}: the distinct subjects on each side (None when the pairs name none)."""
    if groups is None:
        return {"train_subjects": None, "val_subjects": None}
    codes = _subjects_present(groups)[0]
    return {"train_subjects": int(np.count_nonzero(np.bincount(codes[train_idx]))),
            "val_subjects": int(np.count_nonzero(np.bincount(codes[val_idx])))}


def _subjects_present(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, present): `groups` (N,) as int codes in their ids' sorted order, and the distinct codes, sorted; O(N)."""
    codes = np.asarray(groups)
    if not _small_codes(codes):                                       # any ids: codes in their sorted order
        codes = np.unique(codes, return_inverse=True)[1].reshape(-1)
    return codes, np.flatnonzero(np.bincount(codes))


def random_split_note(groups: np.ndarray | None, n_val: int) -> str | None:
    """The note line of a validation split that `split_pairs` drew as random pairs (fewer than SUBJECT_SPLIT_MIN
    subjects, or none known), None when it held out whole subjects or there is no validation."""
    if n_val == 0:
        return None
    k = 0 if groups is None else len(_subjects_present(groups)[1])
    if k >= SUBJECT_SPLIT_MIN:
        return None
    why = "the pairs do not say their subjects" if groups is None else \
        f"the pairs hold {k} subject{'s' if k != 1 else ''}, a split by subject needs {SUBJECT_SPLIT_MIN}"
    return (f"sqtool: note: the {n_val} validation pairs are random pairs, not held-out subjects ({why}): a "
            "validation pair may share a window (or overlap one) with a training pair, so the val loss may read "
            "better than on unseen subjects")


def _small_codes(a: np.ndarray) -> bool:
    """Whether `a` holds non-negative integers small enough to count with np.bincount (which casts to intp)."""
    return a.dtype.kind in "iu" and np.can_cast(a.dtype, np.intp) and \
        (len(a) == 0 or (a.min() >= 0 and a.max() < len(a) + 2**20))


# ----------------------------------------------------------------------------- resume

def resumed_config(saved: dict, now, run_dir: str | Path, epochs_done: int = 0) -> PretrainConfig:
    """The config a resume of `run_dir` runs with: `saved` (its last.pt's train_cfg) with `now` over it (the
    command line's options, or a whole PretrainConfig: a library resume). Refused in one line
    (core.config.resume_config) when a key other than RESUME_MAY_CHANGE and `epochs` changes, or `epochs` goes
    below the `epochs_done` already trained; a path spelled differently is no change."""
    try:
        base = from_dict(PretrainConfig, saved, where=f"{run_dir}/last.pt train_cfg")
    except SqtoolError as e:
        raise SqtoolError(f"cannot resume {run_dir}: its saved config is not a pretrain config ({e})")
    may_change = {**dict.fromkeys(RESUME_MAY_CHANGE, ""), "epochs": f"not below the {epochs_done} done"}
    cfg, changed = resume_config(PretrainConfig, base, now, run_dir=run_dir)      # refused below, all in one line
    refused = {k: v for k, v in changed.items() if k not in may_change}
    if cfg.epochs < epochs_done:                         # epochs trained are not undone
        refused["epochs"] = (base.epochs, cfg.epochs)
    refuse_resume(PretrainConfig, run_dir, refused, may_change)
    return cfg


def corpus_identity(pairs) -> dict:
    """{"pairs", "digest"}: what a run trains on, recorded in its last.pt when it starts (`check_same_corpus`). A shard
    folder's digest is the sha256 of its index.json's shard sha256 values and pair count (index.json only: no shard
    is read; `verify_pairs` checks the shards against it); other sources (synthetic, in memory) have only the count."""
    base = getattr(pairs, "base", pairs)
    if not isinstance(base, ShardPairs):
        return {"pairs": len(base), "digest": None}
    return index_identity(base.index)


def index_identity(index: dict) -> dict:
    """`corpus_identity` of a pairs folder from its index.json alone (its pair count is the shards' rows)."""
    import hashlib
    n = sum(int(e["n"]) for e in index["shards"])
    h = hashlib.sha256(f"{n}\n".encode())
    for e in index["shards"]:
        h.update(f"{e.get('sha256')}\n".encode())
    return {"pairs": n, "digest": h.hexdigest()}


LAUNCH_FREE = ("pairs", "progress")   # may differ between ranks: a node's own copy of the pairs, the bar rank 0 shows


def launch_facts(cfg: PretrainConfig, ck: dict | None = None) -> dict:
    """What every rank of a run must be started with alike (`loop.disagreement`): its config but LAUNCH_FREE, the
    pairs by their identity (`index_identity`: pair count and shards, so node-local copies at other paths agree) and,
    on a resume, the last.pt it continues (its step and when it was written). Reads index.json only."""
    facts = {k: v for k, v in to_dict(cfg).items() if k not in LAUNCH_FREE}
    if cfg.pairs != "synthetic":
        from sqtool.data.shards import read_index
        ident = index_identity(read_index(cfg.pairs)[1])
        facts["pairs"] = f"{ident['pairs']} pairs (shards {ident['digest'][:12]})"
    if ck is not None:
        st = ck.get("train_state") or {}
        facts["last.pt"] = f"at global step {st.get('global_step')} (written {ck.get('created')})"
    return facts


def check_same_corpus(saved: dict | None, now: dict, run_dir, pairs_dir) -> None:
    """Refuse, in one line, to resume `run_dir` on pairs other than it trained on (`corpus_identity` then, `saved`,
    and now): a pairs folder mined again holds other pairs (and another validation split) under the same path.
    `saved` None (a last.pt from before it was recorded): the pair count its config.yaml says, if any."""
    if saved is None:
        from sqtool.core.runs import saved_yaml
        res = saved_yaml(run_dir).get("resolved") or {}
        try:
            saved = {"pairs": int(res["train_pairs"]) + int(res["val_pairs"]), "digest": None}
        except (KeyError, TypeError, ValueError):
            return                                  # nothing recorded to compare with
    same_count = saved.get("pairs") == now["pairs"]
    if same_count and (saved.get("digest") is None or saved.get("digest") == now["digest"]):
        return
    what = f"{saved.get('pairs')} pairs then, {now['pairs']} now" if not same_count else \
        f"{now['pairs']} pairs then and now, other shards (index.json sha256 {str(saved['digest'])[:12]} -> " \
        f"{str(now['digest'])[:12]})"
    raise SqtoolError(f"cannot resume {run_dir}: its pairs folder {pairs_dir} no longer holds the pairs it was trained "
                      f"on ({what}): start a new run on them (train pretrain --pairs {pairs_dir} --out NEW), or mine "
                      f"back the same pairs into {pairs_dir} and resume")


def step_text(st: dict, steps_per_epoch: int) -> str:
    """Where a run is, as its progress lines count: "epoch E, step S of P", E from 1, S the steps done in epoch E."""
    return f"epoch {st['epoch'] + 1}, step {st['step_in_epoch']} of {steps_per_epoch}"


def other_world_warning(run_dir, saved: int, now: int) -> str:
    """The one line of a resume on another number of processes than wrote its last.pt: it goes on with the same
    batches, but each step's sums (gradients, BatchNorm statistics) are over other ranks' parts, so not bit for bit."""
    return (f"sqtool: WARNING: {run_dir} was trained on {saved} process{'es' if saved > 1 else ''} and resumes on "
            f"{now}: it continues with the same batches, but not bit for bit (each step sums over another number of "
            f"ranks); resume it on {saved} for an exact continuation")


# ----------------------------------------------------------------------------- training

def pretrain_model_cfg(cfg: PretrainConfig, model_cfg=None):
    """The ModelCfg pretraining trains and saves: `model_cfg` (else the registry's cfg.model) as a pretrain model (a
    task model, e.g. spectral HR: its encoder + SimSiam heads) with cfg.band_phase where it is not "zero"."""
    from sqtool.models import get_model_cfg
    model_cfg = model_cfg or get_model_cfg(cfg.model)
    if model_cfg.name != cfg.model:
        raise SqtoolError(f"model_cfg {model_cfg.name} is not the model {cfg.model} of the config")
    check_pretrains(cfg.model)
    check_band_phase(cfg.band_phase, "train pretrain", cfg.model, (model_cfg.frontend or {}).get("type") == "spectrum")
    return model_cfg.replace(task="pretrain", **({"band_phase": cfg.band_phase} if cfg.band_phase != "zero" else {}))


def check_pretrains(name: str) -> None:
    """Refuse, in one line and before any data is read, a model without a SimSiam encoder (the registry says)."""
    from sqtool.models import no_simsiam_reason, pretrains
    if not pretrains(name):
        raise SqtoolError(f"train pretrain --model {name}: {no_simsiam_reason(name)}")


HISTORY_CAP = 10_000   # per-step records kept (last.pt, metrics.json); beyond it every 2nd, 4th, ... step's


def record_step(st: dict, entry: dict) -> None:
    """Add one trained step's record ({"step", "epoch", "loss", ...}) to the run state `st`: its loss to its epoch's
    sum (`epoch_loss`: epoch -> [sum, steps], exact at any length), the record to `history` when its step is a
    multiple of `history_every`; a history past HISTORY_CAP keeps every other of its records, the stride doubled."""
    tot = st["epoch_loss"].setdefault(entry["epoch"], [0.0, 0])
    tot[0], tot[1] = tot[0] + entry["loss"], tot[1] + 1
    st.setdefault("first_step_loss", entry["loss"])
    if entry["step"] % st["history_every"] == 0:
        st["history"].append(entry)
    if len(st["history"]) > HISTORY_CAP:
        st["history_every"] *= 2
        st["history"] = [h for h in st["history"] if h["step"] % st["history_every"] == 0]


def epoch_means(st: dict) -> list[float]:
    """The mean training loss of each epoch trained, in order."""
    return [s / n for _, (s, n) in sorted(st["epoch_loss"].items())]


def logged_before(st: dict):
    """`TrainLog.keep`'s test on a resume from run state `st` (last.pt's): a step's row when its step is not past
    st's global step, a validation's while the run had made that many (one row each, in order: an epoch's end
    validated after a --ckpt-every checkpoint at the same step and before its own, killed between, is done again)."""
    vals = iter(range(1, 1 << 62))

    def keep(r: dict) -> bool:
        if r.get("kind") == "val":
            return next(vals) <= len(st["val"])
        return r.get("step", "").isdigit() and int(r["step"]) <= st["global_step"]
    return keep


WARM_STEPS = 5      # steps of a run (or of a resumed part) before its pace counts: cuDNN's autotuning, allocator


def steady_rate(steady: dict, batch: int) -> float | None:
    """Pairs per second between the host reads of two steps after the warm-up (each read waits for its step's
    work: one step late, so steady state); None when this part ran fewer than WARM_STEPS + 2 steps."""
    if steady["t"] is None or steady["step"] == steady["step0"]:
        return None
    return (steady["step"] - steady["step0"]) * batch / max(steady["t"] - steady["t0"], 1e-9)


def run_pretrain(cfg: PretrainConfig, run_dir: str | Path, resume: bool = False, pairs=None,
                 model_cfg=None, resume_ck: dict | None = None, refusal_cleanup=None) -> dict:
    """Pretrain (or resume the run in `run_dir`); returns the metrics dict (also in metrics.json).

    Under torchrun each rank calls this; rank 0 writes the files. `pairs` overrides cfg.pairs with a
    ready pair source (tests); `model_cfg` the registry's cfg of cfg.model with a derived ModelCfg of the
    same model (benchmarks/hr_spectral.py: the ResNet over PPG + accelerometer windows at 25 Hz); `resume_ck`
    the run's last.pt when the caller has read it already (`train pretrain --resume`: read once).

    Under several ranks the checks of the input before training (which one rank may fail alone: its copy of the
    pairs) are agreed (`loop.refusals_agreed`): all ranks stop with one line, rank 0 first running
    `refusal_cleanup` (the CLI's: the run folder it made, if it holds only its config.yaml)."""
    import torch

    from sqtool.models import create_model
    from sqtool.train import loop
    from sqtool.core.checkpoint import load_checkpoint, save_checkpoint

    run_dir = Path(run_dir)
    d = loop.setup_distributed(cfg.device, cfg.ddp_timeout)
    dev = d.device
    cudnn_benchmark = torch.backends.cudnn.benchmark         # set for the run on CUDA, the caller's put back after
    tlog = None                                               # RUN/log.csv (core.trainlog), rank 0's
    try:
        with loop.refusals_agreed(d, cleanup=refusal_cleanup):     # checks a rank may fail alone: one line, all ranks
            if cfg.batch_size < 2 or cfg.batch_size % d.world:
                raise SqtoolError(f"batch_size {cfg.batch_size} must be >= 2 and divisible by the "
                                  f"{d.world} ranks")
            check_training_numbers(cfg, "train pretrain")
            local_b = cfg.batch_size // d.world
            model_cfg = pretrain_model_cfg(cfg, model_cfg)
            layout = encoder_layout(cfg.layout, model_cfg.family, dev, cfg.model)     # before any pair is read
            if (model_cfg.frontend or {}).get("type") == "spectrum" and pairs is None and cfg.pairs == "synthetic":
                raise SqtoolError(f"{cfg.model} reads spectra: make its pairs with `sqtool data pairs --model {cfg.model} "
                                  "--data synthetic` (or your data) and pass --pairs DIR")
            if (model_cfg.frontend or {}).get("type") == "spectrum" and cfg.pair_mode != "real":
                raise SqtoolError(f"pair_mode {cfg.pair_mode}: the standard augmentations act on time-domain windows; "
                                  f"{cfg.model} reads spectra, pretrain it on real pairs (pair_mode real)")
            opened = pairs is None                            # opened here: shards hashed below, once per machine
            pairs = open_pairs(cfg, model_cfg, verify=False) if opened \
                else with_pair_mode(pairs, cfg.pair_mode, model_cfg, cfg.seed)
            if hasattr(pairs, "check_contract"):
                pairs.check_contract(model_cfg)
            if tuple(pairs.input_shape) != tuple(model_cfg.input_shape):
                raise SqtoolError(f"pairs have windows of shape {tuple(pairs.input_shape)} (C, T) but {cfg.model} "
                                  f"expects {model_cfg.input_shape} ({model_cfg.fs:g} Hz x {model_cfg.window_s:g} s, "
                                  f"channels {', '.join(model_cfg.channels)})")
            last = run_dir / "last.pt"
            ck = None
            corpus = corpus_identity(pairs)
            if resume:                                  # before the shards are hashed: a changed corpus costs no reading
                ck = resume_ck if resume_ck is not None else load_checkpoint(last, expect_kind="teacher_pretrain")
                resumed_config(ck.get("train_cfg", {}), cfg, run_dir, epochs_done=int(ck["train_state"]["epoch"]))
                check_same_corpus(ck.get("corpus"), corpus, run_dir, getattr(getattr(pairs, "base", pairs), "root",
                                                                             cfg.pairs))
        if opened and isinstance(src := getattr(pairs, "base", pairs), ShardPairs):
            verify_pairs(src, d, cfg.progress)
        with loop.refusals_agreed(d, cleanup=refusal_cleanup):     # (each rank's pairs: its split, its batches)
            if d.is_main and not resume and cfg.pair_mode == "real":
                for line in corpus_lines(pair_counts(pairs)):
                    print(line, file=sys.stderr)
            groups = getattr(pairs, "groups", None)
            split_rule = ck.get("split", "subjects") if ck is not None else SPLIT_RULE    # a resume: its run's split
            train_idx, val_idx = split_pairs(groups, len(pairs), cfg.val_fraction, cfg.seed, split_rule)
            sides = split_subjects(groups, train_idx, val_idx)              # distinct subjects on each side
            if d.is_main and (note := random_split_note(groups, len(val_idx)) or
                              split_line(sides, train_idx, val_idx, cfg.val_fraction)):
                print(note, file=sys.stderr)
            steps_per_epoch = len(train_idx) // cfg.batch_size
            if steps_per_epoch < 1:
                raise SqtoolError(f"{len(train_idx)} training pairs are fewer than one batch of {cfg.batch_size}; "
                                  f"lower --batch-size or add pairs")

            from sqtool.core import set_seed
            set_seed(cfg.seed)
            if cfg.dtype not in ("float32", "float64"):
                raise SqtoolError(f"dtype must be float32 or float64 (got '{cfg.dtype}')")
            fdt = getattr(torch, cfg.dtype)
            if dev.type == "cuda":
                torch.backends.cudnn.benchmark = True       # fixed shapes: cuDNN times its kernels once, keeps the fastest
            if fdt == torch.float64 and cfg.amp not in ("off", "auto"):
                raise SqtoolError("dtype float64 cannot be combined with mixed precision (use --amp off)")
            adt = None if fdt == torch.float64 else loop.amp_dtype(dev, cfg.amp)
            model = create_model(model_cfg).to(device=dev, dtype=fdt)
            if layout == "nhwc":
                model.encoder.channels_last_2d()
            if d.enabled:
                model = loop.convert_sync_bn(model, dev)
        step_mod = loop.SimSiamStep(model)
        if d.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP
            step_mod = DDP(step_mod, device_ids=[dev.index] if dev.type == "cuda" else None)
        opt = loop.paper_optimizer(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay, cfg.nesterov)
        sched = loop.step_decay(opt, cfg.lr_step_epochs, cfg.lr_gamma)
        scaler = loop.make_scaler(dev, adt)

        st = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": [], "val": [], "elapsed_s": 0.0,
              "world_sizes": [d.world],           # one per part of the run: started, then each resume
              "epoch_loss": {}, "history_every": 1}                                  # record_step
        with loop.refusals_agreed(d, cleanup=refusal_cleanup):     # a rank's last.pt that does not load
            if resume:
                model.load_state_dict(ck["state_dict"])
                opt.load_state_dict(ck["optimizer"])
                loop.fit_optimizer_state(opt)             # momentum saved by a run of the other layout
                sched.load_state_dict(ck["scheduler"])
                scaler.load_state_dict(ck["scaler"])
                st = ck["train_state"]
                if "epoch_loss" not in st:                 # a last.pt of before record_step: its whole history, replayed
                    old, st["history"], st["epoch_loss"], st["history_every"] = st["history"], [], {}, 1
                    for h in old:
                        record_step(st, h)
                st["world_sizes"] = list(st.get("world_sizes") or [int(ck.get("world", d.world))]) + [d.world]
                loop.set_rng_state(ck["rng"])
                if d.is_main:
                    from sqtool.core.progress import item
                    item(f"resumed {run_dir} after global step {st['global_step']} "
                         f"({step_text(st, steps_per_epoch)})")
                    if ck.get("world", d.world) != d.world:
                        print(other_world_warning(run_dir, int(ck["world"]), d.world), file=sys.stderr)

        if d.is_main and (run_dir / "config.yaml").is_file():         # what the automatic options came to
            from sqtool.core.runs import save_resolved, torch_compute
            save_resolved(run_dir, model=cfg.model, corpus=pairs.desc, fs=model_cfg.fs, window_s=model_cfg.window_s,
                          channels=list(model_cfg.channels), device=str(dev), world_size=d.world,
                          world_sizes=st["world_sizes"], pairs_digest=corpus["digest"],
                          nproc_per_node=int(os.environ.get("LOCAL_WORLD_SIZE", d.world)),   # runs.resume_command
                          **({"launcher": os.environ.get(LAUNCHER_ENV, "torchrun")} if d.enabled else {}),
                          drop=() if d.enabled else ("launcher",),     # a torchrun run resumed in one process
                          amp=str(adt).replace("torch.", "") if adt else "off", dtype=cfg.dtype, layout=layout,
                          train_pairs=len(train_idx), val_pairs=len(val_idx),
                          **sides, steps_per_epoch=steps_per_epoch, **torch_compute())
        d_proj = getattr(model, "proj_dim", model_cfg.arch.get("proj_dim", 256))
        tlog = TrainLog(run_dir, PRETRAIN_COLUMNS, enabled=d.is_main, fresh=not resume, tensorboard=cfg.tensorboard)
        if resume:                     # the rows past the step last.pt holds go: the run writes them again
            tlog.keep(logged_before(st), tb_purge_step=st["global_step"] + 1)

        # the step this run's last.pt holds; None: none written yet (a --force'd folder may hold an earlier run's)
        saved_step = st["global_step"] if resume else None

        def none_yet() -> str:
            return "no checkpoint of this run written yet" + (f" (the {last.name} there is an earlier run's)"
                                                              if last.exists() else "")

        def curve():
            from sqtool.core.progress import training_curve
            training_curve(run_dir, {"train loss": epoch_means(st)},                # mean SimSiam loss per epoch
                           val={"val loss": [x["val_loss"] for x in st["val"]]} if not cfg.val_every else None,
                           ylabel="SimSiam loss (negative cosine, -1 = best)", title=f"pretrain {cfg.model}")

        def save_last():
            nonlocal saved_step
            saved_step = st["global_step"]
            if d.is_main:
                save_checkpoint(last, kind="teacher_pretrain", model_cfg=model_cfg.to_dict(),
                                state_dict=model.state_dict(), train_cfg=to_dict(cfg),
                                optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                                scaler=scaler.state_dict(), train_state=st, rng=loop.get_rng_state(),
                                world=d.world, corpus=corpus, split=split_rule)
                curve()                                   # the plot as of this checkpoint, not only at the end
            loop.barrier(d)

        def validate():
            if len(val_idx) == 0:
                return None
            model.eval()
            losses, spread = [], loop.RunningCollapseStd()     # the spread summed batch by batch: constant memory
            with torch.no_grad():
                for s in range(0, len(val_idx), local_b):
                    a, b = pairs.get(val_idx[s:s + local_b])
                    with loop.autocast(dev, adt):
                        p1, p2, z1, z2 = model.simsiam(torch.from_numpy(a).to(dev, fdt), torch.from_numpy(b).to(dev, fdt))
                        losses.append(float(loop.simsiam_loss(p1, p2, z1, z2)) * len(a))
                    spread.add(z1)
            model.train()
            v = {"step": st["global_step"], "epoch": st["epoch"], "val_loss": sum(losses) / len(val_idx),
                 "z_std": spread.value(), "z_std_healthy": 1 / math.sqrt(d_proj)}
            st["val"].append(v)
            tlog.row(tb_step=v["step"], tb_prefix="val/", kind="val", step=v["step"],
                     epoch=st["epoch"] + (1 if st["step_in_epoch"] else 0),      # an epoch end's: the epoch it ended
                     val_loss=v["val_loss"], z_std=v["z_std"], elapsed_s=time.perf_counter() - t_start)
            return v

        total_steps = cfg.epochs * steps_per_epoch
        if cfg.max_steps:
            total_steps = min(total_steps, cfg.max_steps)
        if cfg.log_every > total_steps and tlog.on:             # else a log of validations only, said nowhere
            from sqtool.core.progress import item
            item(f"sqtool: note: --log-every {cfg.log_every} is past this run's {total_steps} steps: RUN/log.csv gets no "
                 f"train row (loss, lr, grad_norm), only validations; --log-every {max(1, total_steps // 10)} gives "
                 "train rows")
        from sqtool.core.progress import bar as progress_bar
        bar = progress_bar(total=total_steps, initial=min(st["global_step"], total_steps), unit="step",
                           enabled=cfg.progress and d.is_main, desc=f"pretrain {cfg.model}", leave=True)
        from sqtool.core.progress import Ticker
        tick = Ticker(f"pretrain {cfg.model}", total_steps, enabled=cfg.progress and d.is_main,
                      initial=min(st["global_step"], total_steps))           # the bar's lines in a log file
        model.train()
        t_start = time.perf_counter() - st["elapsed_s"]
        pending = None          # the last step's loss, grad norm and z spread, still on the device
        steady = {"from": st["global_step"] + WARM_STEPS, "t": None, "step": None}   # this part's steady pace
        row_at = {"t": time.perf_counter(), "step": st["global_step"]}    # the last log row's (pairs_per_s since it)

        def settle(pace: bool = False):
            """Read the pending step's scalars: one host sync per step, a step late, so that the GPU always has
            the next step queued; a non-finite loss stops the run before anything is saved. The loss read also
            tells whether a rank got a SIGTERM by that step (`term.stop`). pace: the read a step late, after the
            next step's work, the only one the steady pace is timed at (a flush at an epoch's end follows the read
            before it at once: timed, it counted a step in no time, 119,481 pairs/s on a 3-step run)."""
            nonlocal pending
            if pending is None:
                return
            rec, pending = pending, None
            gloss = term.read(rec["loss"])
            if not math.isfinite(gloss):
                have = "last good checkpoint kept at " + str(last) if saved_step is not None else none_yet()
                raise SqtoolError(f"loss is {gloss} at epoch {rec['epoch']} step {rec['s']} (global step "
                                  f"{rec['step'] - 1}): training stopped; {have}. Lower --lr or check the pairs")
            z_std = None if rec["z_std"] is None else float(rec["z_std"])
            record_step(st, {"step": rec["step"], "epoch": rec["epoch"], "loss": gloss, "lr": rec["lr"],
                             "grad_norm": float(rec["grad_norm"]), "z_std": z_std})
            if rec["step"] % cfg.log_every == 0 and tlog.on:
                now = time.perf_counter()
                tlog.row(tb_step=rec["step"], tb_prefix="train/", kind="train", step=rec["step"],
                         epoch=rec["epoch"] + 1, loss=gloss, lr=rec["lr"], grad_norm=float(rec["grad_norm"]),
                         z_std=z_std, elapsed_s=now - t_start,
                         pairs_per_s=(rec["step"] - row_at["step"]) * cfg.batch_size / max(now - row_at["t"], 1e-9))
                row_at.update(t=now, step=rec["step"])
            if pace and rec["step"] >= steady["from"]:
                if steady["t"] is None:
                    steady["t0"], steady["step0"] = time.perf_counter(), rec["step"]
                steady["t"], steady["step"] = time.perf_counter(), rec["step"]
            bar.set_postfix(loss=f"{gloss:.4f}", z_std=f"{z_std or float('nan'):.3f}")
            tick(rec["step"], f"epoch {rec['epoch'] + 1}, loss {gloss:.4f}")

        def after_lost_rank() -> str:
            """What a rank left alone says after its line (`loop.rank_loss_said`): the checkpoint kept, the resume."""
            if saved_step is None:
                return none_yet() + ": start it again"
            from sqtool.core.runs import resume_command, shell_command
            again = resume_command(run_dir) or shell_command("train", "pretrain", "--resume", run_dir)
            return f"{last} (global step {saved_step}) kept; continue with: {again}"

        stopped = False
        with loop.rank_loss_said(d, after_lost_rank, at=lambda: st["global_step"] + 1), \
                loop.SigtermStop(d) as term:   # a SIGTERM: this step ends, last.pt is written, then the signal acts
            while st["epoch"] < cfg.epochs and not stopped:
                perm = train_idx[np.random.default_rng([cfg.seed, st["epoch"]]).permutation(len(train_idx))]
                while st["step_in_epoch"] < steps_per_epoch:
                    if cfg.max_steps and st["global_step"] >= cfg.max_steps:
                        stopped = True
                        break
                    s = st["step_in_epoch"]
                    gidx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]              # global batch
                    a, b = pairs.get(gidx[d.rank * local_b:(d.rank + 1) * local_b])    # this rank's part
                    x1, x2 = (loop.to_device(np.ascontiguousarray(v), dev, fdt) for v in (a, b))  # (B, C, T)
                    with loop.autocast(dev, adt):
                        p1, p2, z1, z2 = step_mod(x1, x2)                              # (B, 256) each
                        loss = loop.simsiam_loss(*(t.to(fdt) for t in (p1, p2, z1, z2)))
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) \
                        if cfg.grad_clip > 0 else torch.zeros(())
                    scaler.step(opt)
                    scaler.update()
                    settle(pace=True)           # the previous step's figures, while this step's work is queued
                    pending = {"s": s, "step": st["global_step"] + 1, "epoch": st["epoch"],
                               "loss": term.reduce(loss), "lr": opt.param_groups[0]["lr"],
                               "grad_norm": gnorm.detach(), "z_std": loop.collapse_std_t(z1.detach())}
                    st["step_in_epoch"] += 1
                    st["global_step"] += 1
                    bar.update(1)
                    if cfg.val_every and st["global_step"] % cfg.val_every == 0:
                        settle()                    # on every rank: a NaN stops them all with the same line
                        if d.is_main:
                            validate()
                    if term.stop:               # saved below, where the epoch's end (if this step ends it) is not
                        stopped = True          # done yet: a resume does it, as the uninterrupted run did
                        break
                    if cfg.ckpt_every and st["global_step"] % cfg.ckpt_every == 0:
                        settle()
                        st["elapsed_s"] = time.perf_counter() - t_start
                        save_last()
                settle()
                if stopped:
                    break
                st["epoch"] += 1
                st["step_in_epoch"] = 0
                with warnings.catch_warnings():    # a run resumed at an epoch's end steps it before its first opt.step:
                    warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"))
                    sched.step()                   # the lr it sets is the same (its state was loaded), torch warns
                if d.is_main and not cfg.val_every:
                    validate()
                st["elapsed_s"] = time.perf_counter() - t_start
                save_last()
            bar.close()
            if stopped:                            # a finished epoch wrote last.pt at its end, above
                st["elapsed_s"] = time.perf_counter() - t_start
                save_last()
            if stopped and term.stop and d.is_main:
                from sqtool.core.progress import item
                item(f"SIGTERM: stopped after global step {st['global_step']} ({step_text(st, steps_per_epoch)}); "
                     f"{last} saved")

        metrics = {}
        if d.is_main:
            hist, means = st["history"], epoch_means(st)
            v = st["val"][-1] if st["val"] else None
            done = st["epoch"] >= cfg.epochs
            metrics = {
                "status": "done" if done else "stopped (SIGTERM)" if term.stop else "stopped (max_steps)",
                "model": cfg.model, "pairs": pairs.desc, "pair_mode": cfg.pair_mode, **pair_counts(pairs),
                "train_pairs": len(train_idx), "val_pairs": len(val_idx), **sides,
                "world_size": d.world, "world_sizes": st["world_sizes"],      # this part's; every part's, in order
                "device": str(dev), "amp": str(adt).replace("torch.", "") if adt else "off", "layout": layout,
                "epochs_done": st["epoch"], "global_step": st["global_step"], "steps_per_epoch": steps_per_epoch,
                "first_loss": means[0] if means else None, "final_loss": means[-1] if means else None,
                "first_step_loss": st.get("first_step_loss"),
                "val_loss": v["val_loss"] if v else None, "val_z_std": v["z_std"] if v else None,
                "z_std_healthy": 1 / math.sqrt(d_proj),
                "collapsed": bool(v and is_collapsed(v["z_std"], d_proj)),     # also in model.pt: finetune --init
                "elapsed_s": st["elapsed_s"],
                "pairs_per_s": st["global_step"] * cfg.batch_size / max(st["elapsed_s"], 1e-9),
                "steady_pairs_per_s": steady_rate(steady, cfg.batch_size),
                "history": hist, "history_every": st["history_every"], "val_history": st["val"],
            }
            save_checkpoint(run_dir / "model.pt", kind="teacher_pretrain", model_cfg=model_cfg.to_dict(),
                            state_dict=model.state_dict(), train_cfg=to_dict(cfg),
                            metrics={k: v for k, v in metrics.items() if k not in ("history", "val_history")})
            write_metrics(run_dir, metrics)
            if (line := collapse_warning(metrics, cfg.lr)) is not None:
                print(line, file=sys.stderr)                      # as this module's other notes
            curve()
        with loop.rank_loss_said(d, after_lost_rank, at=lambda: st["global_step"]):    # rank 0 writing model.pt
            loop.barrier(d)
        return metrics
    finally:
        if tlog is not None:
            tlog.close()
        torch.backends.cudnn.benchmark = cudnn_benchmark
        step_mod = None              # the DDP wrapper (its reducer holds gloo work and the group) goes before the group
        if d.enabled and (exc := sys.exc_info()[1]) is not None:
            traceback.clear_frames(exc.__traceback__)   # an exception in flight keeps DDP.forward's frame (its self)
        loop.cleanup_distributed(d)
