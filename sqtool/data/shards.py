"""Sharded (good, poor) pair files and the streaming dataset that reads them.

On disk (one pairs directory):

    index.json                 format, dtype, pair shape, fs, window, channels, norm, datasets, subjects,
                               counts, and per shard: file, meta, n, bytes, sha256, per-dataset counts
    shards/pairs-00000.npy     (N, 2, C, T) float16 (or float32): [:, 0] = good window, [:, 1] = poor
    shards/pairs-00000.meta.npz  per pair: subject (index into index.json "subjects"), dataset index,
                               t_good, t_poor (s), q_good, q_poor, synthetic (poor partner made by
                               synthetic.corrupt)

`ShardWriter` fills one preallocated shard buffer (at most `shard_mb` MB, so memory is bounded by one
shard), writes it atomically when full (temp file + rename) with its sha256, and writes index.json last:
a directory without index.json is an unfinished run, never mistaken for a complete one. After each shard
`on_flush(writer)` lets the miner record what is done (`state()`), and `restore(state)` continues a
writer from there (`sqtool data pairs --resume`).

`open_shard(verify=True)` checks a shard's sha256 against index.json (memoised per process: a stat-keyed hash
cache) and refuses a shard whose bytes changed. Pretraining reads a pairs directory through
`train.pretrain.ShardPairs` (random access), opened unverified on every rank, and hashes every shard once per
machine, on local rank 0 (`pretrain.verify_pairs`).

`PairShardDataset` is a torch IterableDataset that opens shards lazily with np.load(mmap_mode="r"), so
a corpus larger than RAM streams in bounded memory (no sqtool command uses it; it is public API for a
training loop of one's own). Made with verify=True, it hashes every shard in every process that makes one
(every rank, under DDP): pass verify=False on all but one rank per machine after checking there. Each epoch it
permutes the shard order (seed + epoch), concatenates the shards into one virtual sequence, and gives rank r of
world_size an equal contiguous span of it, split again across DataLoader workers; within a span it shuffles through a
buffer of `shuffle_buffer` pairs. Every pair is seen exactly once per epoch across all ranks and workers
(`drop_last=True` trims to a multiple of world_size so every rank gets the same count, as DDP needs).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, atomic_write_text, sha256_file_cached
from sqtool.core.io import dumps_json, inside_folder
from sqtool.core import sha256_file  # re-exported (see __all__)

FORMAT = "sqtool-pairs-v1"
DTYPES = ("float16", "float32")




class ShardWriter:
    """Append (good, poor) pairs; writes shards of at most `shard_mb` MB and, on close(), index.json."""

    def __init__(self, out_dir: str | os.PathLike, channels: int, samples: int, shard_mb: float = 256.0,
                 dtype: str = "float16", header: dict | None = None, on_flush=None):
        if dtype not in DTYPES:
            raise SqtoolError(f"pairs dtype must be one of {', '.join(DTYPES)}, got '{dtype}'")
        self.dir = Path(out_dir)
        (self.dir / "shards").mkdir(parents=True, exist_ok=True)
        self.dtype = np.dtype(dtype)
        self.shape = (2, int(channels), int(samples))                         # (2, C, T) per pair
        pair_bytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.capacity = int(shard_mb * 2**20) // pair_bytes
        if self.capacity < 1:
            raise SqtoolError(f"--shard-mb {shard_mb:g} is smaller than one pair ({pair_bytes} bytes)")
        self.header = dict(header or {})
        self.subjects: dict[str, int] = {}
        self.datasets: dict[str, int] = {}
        self.shards: list[dict] = []
        self._buf = None
        self._meta: dict[str, list] = {}
        self._n = 0
        self.total = 0
        self.on_flush = on_flush                    # called with the writer after each shard is written

    def state(self) -> dict:
        """What a writer continued after its last flush needs: the shards written, the subject and dataset
        tables (their order is the pairs' indices), the pair count. The open buffer is not in it."""
        return {"shards": list(self.shards), "subjects": list(self.subjects), "datasets": list(self.datasets),
                "total": int(self.total)}

    def restore(self, state: dict) -> None:
        """Continue after `state()` (an empty buffer): each shard it lists must still be there, at its size and its
        sha256 (a shard damaged in place kept its size: the resume claimed success and pretraining refused the
        folder)."""
        for e in state["shards"]:
            path = self.dir / e["file"]
            if not path.is_file() or path.stat().st_size != e["bytes"] or not (self.dir / e["meta"]).is_file() \
                    or (e.get("sha256") and sha256_file(path) != e["sha256"]):
                raise SqtoolError(f"{path}: shard missing or changed since it was written; cannot resume (start "
                                  "the run again with --force)")
        self.shards = list(state["shards"])
        self.subjects = {str(k): i for i, k in enumerate(state["subjects"])}
        self.datasets = {str(k): i for i, k in enumerate(state["datasets"])}
        self.total = int(state["total"])
        self._buf, self._n = None, 0

    @property
    def count(self) -> int:
        """Pairs added so far (written shards + the open buffer)."""
        return self.total + self._n

    def _key(self, table: dict, name: str) -> int:
        if name not in table:
            table[name] = len(table)
        return table[name]

    def add(self, good: np.ndarray, poor: np.ndarray, *, dataset: str, subjects, t_good, t_poor,
            q_good, q_poor, synthetic) -> None:
        """good, poor (N, C, T); the other arrays (N,) (subjects: str per pair)."""
        n = len(good)
        i = 0
        while i < n:
            if self._buf is None:
                self._buf = np.empty((self.capacity, *self.shape), dtype=self.dtype)   # pages touched on fill
                self._meta = {k: [] for k in ("subject", "dataset", "t_good", "t_poor", "q_good", "q_poor",
                                              "synthetic")}
            k = min(n - i, self.capacity - self._n)
            self._buf[self._n: self._n + k, 0] = good[i: i + k]
            self._buf[self._n: self._n + k, 1] = poor[i: i + k]
            m = self._meta
            m["subject"] += [self._key(self.subjects, str(s)) for s in subjects[i: i + k]]
            m["dataset"] += [self._key(self.datasets, dataset)] * k
            for name, arr in (("t_good", t_good), ("t_poor", t_poor), ("q_good", q_good), ("q_poor", q_poor),
                              ("synthetic", synthetic)):
                m[name] += list(np.asarray(arr)[i: i + k])
            self._n += k
            i += k
            if self._n == self.capacity:
                self.flush()

    def flush(self) -> None:
        """Write the current shard (if any pairs) atomically and record it in the index."""
        if self._buf is None or self._n == 0:
            return
        idx = len(self.shards)
        name = f"shards/pairs-{idx:05d}.npy"
        meta_name = f"shards/pairs-{idx:05d}.meta.npz"
        path = self.dir / name
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, self._buf[: self._n])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        m = self._meta
        meta = {"subject": np.asarray(m["subject"], np.int32), "dataset": np.asarray(m["dataset"], np.int16),
                "t_good": np.asarray(m["t_good"], np.float64), "t_poor": np.asarray(m["t_poor"], np.float64),
                "q_good": np.asarray(m["q_good"], np.float32), "q_poor": np.asarray(m["q_poor"], np.float32),
                "synthetic": np.asarray(m["synthetic"], bool)}
        mtmp = self.dir / f"shards/.pairs-{idx:05d}.meta.tmp.npz"
        np.savez(mtmp, **meta)
        os.replace(mtmp, self.dir / meta_name)
        inv = {v: k for k, v in self.datasets.items()}
        per_ds = {inv[int(d)]: int(c) for d, c in zip(*np.unique(meta["dataset"], return_counts=True))}
        self.shards.append({"file": name, "meta": meta_name, "n": int(self._n), "bytes": path.stat().st_size,
                            "sha256": sha256_file(path), "datasets": per_ds})
        self.total += self._n
        self._buf = None
        self._n = 0
        if self.on_flush is not None:
            self.on_flush(self)

    def close(self, extra: dict | None = None) -> dict:
        """Flush the last shard and write index.json (last, atomically). Returns the index."""
        self.flush()
        index = {"format": FORMAT, "dtype": self.dtype.name, "pair_shape": list(self.shape),
                 **self.header, **(extra or {}), "n_pairs": int(self.total),
                 "datasets": list(self.datasets), "subjects": list(self.subjects), "shards": self.shards}
        atomic_write_text(self.dir / "index.json", dumps_json(index, indent=1) + "\n")
        return index


def read_index(path: str | os.PathLike) -> tuple[Path, dict]:
    """(pairs dir, index) from a pairs directory or its index.json; one-line errors if it is not one."""
    p = Path(path)
    idx_path = p if p.name == "index.json" else p / "index.json"
    if not idx_path.is_file():
        raise SqtoolError(f"{p}: no index.json; not a pairs directory (or `sqtool data pairs` did not finish)")
    try:
        index = json.loads(idx_path.read_text())
    except (OSError, ValueError) as e:
        raise SqtoolError(f"{idx_path}: unreadable or corrupt index ({str(e).splitlines()[0]})")
    if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("shards"), list):
        raise SqtoolError(f"{idx_path}: not a {FORMAT} index")
    for e in index["shards"]:               # the writer names files inside the folder: refuse any other place
        names = [e.get(k) for k in ("file", "meta") if k in e] if isinstance(e, dict) else [None]
        bad = [n for n in names if not inside_folder(n)]
        if bad or not isinstance(e, dict) or "file" not in e:
            raise SqtoolError(f"{idx_path}: a shard entry names {bad[0] if bad else e!r}, not a file inside the pairs "
                              "directory; corrupt or not made by `sqtool data pairs`")
    return idx_path.parent, index


def open_shard(root: Path, entry: dict, verify: bool = True) -> np.ndarray:
    """Memory-map one shard, checking it exists, has the indexed shape and (verify) the index's sha256.
    The hash is memoised per process (core.sha256_file_cached), so a shard is hashed once per run."""
    path = root / entry["file"]
    if not path.is_file():
        raise SqtoolError(f"{path}: shard missing (listed in {root / 'index.json'})")
    if verify and sha256_file_cached(path) != entry.get("sha256"):
        raise SqtoolError(f"{path}: sha256 differs from {root / 'index.json'}; the shard changed since it "
                          "was written (corrupt or edited): remake the pairs")
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as e:
        raise SqtoolError(f"{path}: corrupt or truncated shard ({str(e).splitlines()[0]})")
    if arr.ndim != 4 or arr.shape[0] != entry["n"] or arr.shape[1] != 2:
        raise SqtoolError(f"{path}: shard has shape {arr.shape}, index says ({entry['n']}, 2, C, T); corrupt")
    return arr


def advise_random(arr: np.ndarray) -> None:
    """Tell the kernel that shard `arr` (from `open_shard`) is read at random rows: no read-ahead around each page
    touched. With the default read-ahead every random pair (4.8 KB at 40 Hz x 30 s) pulled up to read_ahead_kb
    (8 MB here) of its neighbours from disk: 384 random pairs of a 922 MB cold shard set read 860 MB, and each rank
    mapped them in as its own file pages (RSS). A no-op where the platform has no madvise."""
    import mmap
    mm = getattr(arr, "_mmap", None)                    # np.memmap's mapping of the file
    if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        mm.madvise(mmap.MADV_RANDOM)


def _span(n: int, parts: int, i: int) -> tuple[int, int]:
    """Contiguous, near-equal split of range(n) into `parts`: the i-th [lo, hi)."""
    return (n * i) // parts, (n * (i + 1)) // parts


def _dataset_class():
    """Build PairShardDataset on first use, so writing shards (the miner) never imports torch."""
    from torch.utils.data import IterableDataset

    class PairShardDataset(IterableDataset):
        """Stream (good, poor) float32 tensors (C, T) each from a pairs directory (see module docstring).

        rank/world_size default to torch.distributed's when it is initialised. `len()` is the number of
        pairs this rank yields per epoch (over all its DataLoader workers)."""

        def __init__(self, path: str | os.PathLike, rank: int | None = None, world_size: int | None = None,
                     shuffle: bool = True, shuffle_buffer: int = 2048, seed: int = 0, drop_last: bool = True,
                     verify: bool = True, return_meta: bool = False):
            self.root, self.index = read_index(path)
            if rank is None or world_size is None:
                rank, world_size = 0, 1
                try:
                    import torch.distributed as dist
                    if dist.is_available() and dist.is_initialized():
                        rank, world_size = dist.get_rank(), dist.get_world_size()
                except ImportError:  # pragma: no cover
                    pass
            if world_size < 1 or not 0 <= rank < world_size:
                raise SqtoolError(f"PairShardDataset: rank {rank} not in [0, {world_size})")
            self.rank, self.world_size = int(rank), int(world_size)
            self.shuffle, self.buffer, self.seed = bool(shuffle), max(1, int(shuffle_buffer)), int(seed)
            self.drop_last, self.return_meta = drop_last, return_meta
            self.epoch = 0
            self.shards = self.index["shards"]
            for e in self.shards:                              # fail now, with one line, not mid-epoch
                open_shard(self.root, e, verify=verify)
            self.n_total = int(sum(e["n"] for e in self.shards))
            if self.n_total != int(self.index.get("n_pairs", self.n_total)):
                raise SqtoolError(f"{self.root}: shards hold {self.n_total} pairs, index says {self.index['n_pairs']}")
            if self.n_total == 0:
                raise SqtoolError(f"{self.root}: holds no pairs (no subject had both a good and a poor window "
                                  f"in reach; try more data, a larger --max-gap-s, or --synthetic-fallback)")
            self.n_used = self.n_total - (self.n_total % self.world_size if drop_last else 0)

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def __len__(self) -> int:
            lo, hi = _span(self.n_used, self.world_size, self.rank)
            return hi - lo

        def _order(self) -> list[int]:
            order = list(range(len(self.shards)))
            if self.shuffle:
                np.random.default_rng([self.seed, self.epoch]).shuffle(order)
            return order

        def _spans(self, lo: int, hi: int):
            """(shard entry, row lo, row hi) pieces of the virtual sequence [lo, hi) in this epoch's order."""
            pos = 0
            for s in self._order():
                n = self.shards[s]["n"]
                a, b = max(lo, pos), min(hi, pos + n)
                if a < b:
                    yield s, a - pos, b - pos
                pos += n

        def __iter__(self):
            import torch

            lo, hi = _span(self.n_used, self.world_size, self.rank)
            info = torch.utils.data.get_worker_info()
            wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
            a, b = _span(hi - lo, nw, wid)
            lo, hi = lo + a, lo + b
            rng = np.random.default_rng([self.seed, self.epoch, self.rank, wid])
            buf: list = []
            for s, r0, r1 in self._spans(lo, hi):
                arr = open_shard(self.root, self.shards[s], verify=False)   # verified in __init__
                meta = None
                if self.return_meta:
                    meta = np.load(self.root / self.shards[s]["meta"])
                    meta = {k: meta[k] for k in meta.files}
                rows = np.arange(r0, r1)
                if self.shuffle:
                    rng.shuffle(rows)               # random rows of a mmap: only those pages are read
                for r0c in range(0, rows.size, 256):
                    chunk = np.sort(rows[r0c: r0c + 256])
                    try:
                        x = np.asarray(arr[chunk], dtype=np.float32)          # (k, 2, C, T)
                    except (OSError, ValueError) as e:
                        raise SqtoolError(f"{self.root / self.shards[s]['file']}: read failed ({e})")
                    for j, r in enumerate(chunk):
                        item = (torch.from_numpy(x[j, 0]), torch.from_numpy(x[j, 1]))
                        if meta is not None:
                            item = item + ({k: v[r].item() for k, v in meta.items()},)
                        if not self.shuffle:
                            yield item
                            continue
                        if len(buf) < self.buffer:
                            buf.append(item)
                            continue
                        k = int(rng.integers(len(buf)))
                        buf[k], item = item, buf[k]
                        yield item
            rng.shuffle(buf)
            yield from buf

    PairShardDataset.__qualname__ = "PairShardDataset"      # picklable by name (spawned DataLoader workers)
    return PairShardDataset


def __getattr__(name: str):
    # PEP 562: `from sqtool.data.shards import PairShardDataset` imports torch here, not at module import
    if name == "PairShardDataset":
        cls = globals()["PairShardDataset"] = _dataset_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ShardWriter", "PairShardDataset", "read_index", "open_shard", "sha256_file", "FORMAT"]
