"""Readers: every dataset in ../shared/data (and generic CSV / NPZ / WFDB) -> `Record`s.

    read_dataset(path, kind=None)  -> list[Record]      kind detected from the files when None
    iter_records(path, kind=None)  -> generator of Record (lazy: one file at a time)
                                      path may be a dataset.yaml: its records (dataset_file.records())
    list_items(path, kind=None)    -> (kind, [items])   the files holding records, unread (parallel work units)
    read_item(kind, item, root)    -> list[Record]      the checked records of one item
    detect_kind(path)              -> "troika" | "bidmc" | "wrist_exercise" | ... | "csv" | "npz" | "wfdb" | "e4"
    inspect_path(path)             -> summary dict (what `sqtool data inspect` prints)
    read_csv / read_npz / read_wfdb   the generic single-recording readers

Each dataset module (troika.py, bidmc.py, ...) exposes `detect(files)`, `list_items(files)` (cheap: the
files that hold records) and `read_item(item, ctx) -> list[Record]` (the expensive part, one file at a
time; `ctx` is a per-call cache for shared metadata such as label spreadsheets). A folder of Empatica E4 exports
without a dataset.yaml is kind "e4" (`e4.is_export`), read as a `format: e4` dataset file with its defaults would
read it. This module walks the files once, reads the items lazily and applies the same checks to every record:

    - Record.validate(): a sampling rate per channel, 1-D, non-empty, some finite samples (NaN/Inf
      samples are gaps: predict and bench hold them, training and pairs leave their windows out);
    - no flat line in a PPG channel (a constant signal is a detached sensor, not data);
    - required `channels` present; duration >= `min_duration_s` (e.g. one model window);
    - optionally (`max_clip_fraction`), no PPG channel with more than that fraction of its samples at
      its max or min: ADC saturation (PPG-BP 125_2 has 67 % at 4095). Off by default because the
      quality index scores clipping per window; the inspect summary counts such records.

Bad input is one `SqtoolError` line naming the file; `on_error="skip"` drops the bad item instead and
appends "path: reason" to `skipped` (use it for a large corpus with a few broken files).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from sqtool.core import NoSignal, SqtoolError
from sqtool.data.readers import (bidmc, but_ppg, e4, mw_ppg, ppg_arrhythmia, ppg_bp, troika, unlabeled,
                                 wrist_exercise)
from sqtool.data.readers._common import walk_files
from sqtool.data.record import Label, Record

# dataset kind -> module. A folder must be recognised by exactly one of them (else: "several datasets");
# when none does, the generic readers look at the file types.
DATASETS = {m.KIND: m for m in (troika, bidmc, ppg_bp, ppg_arrhythmia, but_ppg, mw_ppg, unlabeled,
                                wrist_exercise)}
GENERIC = ("csv", "npz", "wfdb", "e4")       # e4: a folder of Empatica E4 exports (readers.e4)


def kinds() -> list[str]:
    return [*DATASETS, *GENERIC]


def _generic():
    from sqtool.data.readers import generic
    return generic


# ----------------------------------------------------------------------------- detection

def _files_of(path: Path) -> list[Path]:
    if not path.exists():
        raise SqtoolError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    if not path.is_dir():                       # a device, named pipe or socket (/dev/zero, /dev/stdin)
        raise SqtoolError(f"{path}: not a regular file or folder (a device, pipe or socket); give a recording "
                          f"file, a folder of them or a dataset.yaml")
    if not os.access(path, os.R_OK | os.X_OK):
        raise SqtoolError(f"{path}: folder is not readable (permission denied)")
    files = walk_files(path)
    if not files:
        raise SqtoolError(f"{path}: folder is empty")
    return files


def _detect(path: Path, files: list[Path]) -> str:
    found = [k for k, mod in DATASETS.items() if mod.detect(files)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise SqtoolError(f"{path}: holds several datasets ({', '.join(found)}); pass one of its folders "
                          f"(or --kind where the command has one, or a dataset.yaml naming its format)")
    if e4.is_export(path, files):
        return "e4"
    g = _generic().detect(path, files)
    if g:
        return g
    exts = sorted({p.suffix.lower() or p.name for p in files})[:8]
    raise SqtoolError(f"{path}: no dataset recognised (file types: {', '.join(exts)}); "
                      f"known kinds: {', '.join(kinds())}; for recordings of your own (EDF, WFDB, CSV, NPZ) name "
                      f"the format and channels in a dataset.yaml and give that file as --data")


def detect_kind(path: str | os.PathLike) -> str:
    """The dataset kind of a file or folder, from the files present (names, extensions, headers)."""
    path = Path(path)
    return _detect(path, _files_of(path))


# ----------------------------------------------------------------------------- checks

def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    ok = np.isfinite(x)
    return x if ok.all() else x[ok]


def clip_fraction(x: np.ndarray) -> float:
    """Fraction of the finite samples (NaN/Inf gaps left out) sitting exactly at the signal's max or min (ADC
    saturation, e.g. 4095)."""
    x = _finite(x)
    return float(max(np.mean(x == x.max()), np.mean(x == x.min()))) if x.size else 0.0


def check_record(rec: Record, min_duration_s: float = 0.0, channels: Sequence[str] | None = None,
                 max_clip_fraction: float | None = None) -> Record:
    """The checks every record passes before any stage sees it (see module docstring)."""
    where = f"{rec.source or rec.dataset}: record {rec.record_id}"
    try:
        rec.validate()
    except SqtoolError as e:                    # name the file, not just dataset/record
        named = type(e)(f"{rec.source}: {e}" if rec.source else str(e))             # NoSignal stays NoSignal
        named.code = e.code
        raise named from None
    for ch in channels or ():
        if ch not in rec.signals:
            raise SqtoolError(f"{where}: channel '{ch}' missing (has {', '.join(rec.signals)})")
    for ch, x in rec.signals.items():
        if ch.startswith("ppg") and x.size > 1 and float(np.ptp(fin := _finite(x))) == 0.0:
            raise NoSignal(f"{where}: channel '{ch}' is a flat line (constant {fin[0]:g}); "
                              f"sensor detached or not recorded")
    if max_clip_fraction is not None:
        for ch, x in rec.signals.items():
            if ch.startswith("ppg") and (f := clip_fraction(x)) > max_clip_fraction:
                raise SqtoolError(f"{where}: channel '{ch}' is clipped/saturated: {100 * f:.0f}% of samples at "
                                  f"its max or min (limit {100 * max_clip_fraction:.0f}%)")
    if min_duration_s and min_duration_s > 0:
        ch = next((c for c in (channels or ()) if c in rec.signals), None)
        dur = rec.duration(ch) if ch else min(len(x) / rec.fs[c] for c, x in rec.signals.items())
        if dur < min_duration_s:
            raise SqtoolError(f"{where}: {dur:.2f} s long, shorter than the {min_duration_s:g} s needed")
    for name, lab in rec.labels.items():
        _check_label(rec, name, lab, where)
    return rec


def _check_label(rec: Record, name: str, lab: Label, where: str) -> None:
    if lab.kind == "flags" and lab.fs:
        # per-sample flags: one per sample of the channels recorded at the flags' rate
        lens = {len(x) for c, x in rec.signals.items() if rec.fs[c] == lab.fs}
        if lens and len(lab) not in lens:
            raise SqtoolError(f"{where}: label '{name}' has {len(lab)} per-sample flags but the "
                              f"{lab.fs:g} Hz signal has {max(lens)} samples; labels do not match the signal")
    if lab.times is None:
        return
    t = np.asarray(lab.times, dtype=np.float64)
    if t.shape != np.shape(lab.values)[:1]:
        raise SqtoolError(f"{where}: label '{name}' has {np.size(lab.values)} values but {t.size} times")
    if t.size == 0:
        return
    dur = rec.span_s()
    end = float(t[-1]) + (lab.window_s or 0.0)
    tol = 1.0 / min(rec.fs.values()) + (1.0 / lab.fs if lab.fs else 0.0) + 1e-6
    if float(t[0]) < -tol or end > dur + tol:
        raise SqtoolError(f"{where}: label '{name}' spans {float(t[0]):.2f}..{end:.2f} s but the signal is "
                          f"{dur:.2f} s; labels do not match the signal length")


# ----------------------------------------------------------------------------- reading

def describing_file(folder: Path) -> Path | None:
    """A dataset.yaml in `folder` or the two folders above it whose `root:` is `folder` (`my_watch/dataset.yaml`
    with `root: recordings`, for `my_watch/recordings`), or None: the file that says how to read the folder, named
    where the bare folder is refused (it holds the subject rule, stream files and labels the folder alone lacks)."""
    import yaml

    from sqtool.data.dataset_file import _load_yaml     # the dataset files' reader: no aliases (billion laughs)
    for up in (folder, *list(folder.parents)[:2]):
        f = up / "dataset.yaml"
        try:
            d = _load_yaml(f) if f.is_file() else None
        except (OSError, UnicodeDecodeError, RecursionError, yaml.YAMLError, SqtoolError):
            continue
        root = d.get("root", ".") if isinstance(d, dict) else None
        if isinstance(root, str) and (up / root).resolve() == folder.resolve():
            return f
    return None


def list_items(path: str | os.PathLike, kind: str | None = None) -> tuple[str, list]:
    """(kind, the files that hold records) without reading them: the unit of parallel work."""
    path = Path(path)
    files = _files_of(path)
    kind = kind or _detect(path, files)
    if kind in DATASETS:
        items = DATASETS[kind].list_items(files)
    elif kind == "e4":
        items = e4.list_items(path)                  # its sessions, their names checked as a dataset file's
    elif kind in GENERIC:
        items = _generic().list_items(kind, files)
        if kind != "npz" and path.is_dir():          # an NPZ may carry its own subject and record id
            from sqtool.data.readers._common import refuse_name_clash
            try:
                refuse_name_clash([p.relative_to(path).as_posix() for p in items], str(path),
                                  "a dataset.yaml beside the recordings (files: and format: as they are)")
            except SqtoolError as e:
                described = describing_file(path)
                if described is None:
                    raise
                raise SqtoolError(f"{e}; or give --data {described}, which describes this folder (its root:) and "
                                  "reads it through its subject rule, stream files and labels") from None
    else:
        raise SqtoolError(f"unknown dataset kind '{kind}' (known: {', '.join(kinds())})")
    if not items:
        raise SqtoolError(f"{path}: no {kind} recordings found")
    return kind, items


def read_item(kind: str, item, root: str | os.PathLike, ctx: dict | None = None, *,
              min_duration_s: float = 0.0, channels: Sequence[str] | None = None,
              max_clip_fraction: float | None = None, **options) -> list[Record]:
    """The checked records of one item from `list_items` (ctx: a cache shared by the items of one root)."""
    ctx = ctx if ctx is not None else {}
    ctx.setdefault("root", Path(root))
    if kind in DATASETS:
        recs = DATASETS[kind].read_item(item, ctx)
    elif kind == "e4":
        recs = e4.read_item(item, ctx, **options)
    else:
        recs = _generic().read_item(kind, item, **options)
    return [check_record(r, min_duration_s, channels, max_clip_fraction) for r in recs]


def iter_records(path: str | os.PathLike, kind: str | None = None, *, min_duration_s: float = 0.0,
                 channels: Sequence[str] | None = None, max_clip_fraction: float | None = None,
                 on_error: str = "raise", skipped: list | None = None, skip_only: type = SqtoolError,
                 **options) -> Iterator[Record]:
    """Lazily yield the checked records of a dataset folder or file, one file read at a time.

    on_error="skip": a file refused with a `skip_only` error (any SqtoolError by default; e.g. NoSignal, a file off
    the wrist throughout) is left out, its line appended to `skipped`; any other refusal is raised. In a dataset
    file, `skip_only` narrower than SqtoolError reads as on_error="raise".

    `options` go to the generic readers (e.g. fs=, time_column= for CSV; fs= for NPZ). A dataset file
    (`my_watch/dataset.yaml`, see data.dataset_file) gives the records `load_dataset_file(path).records()`
    gives (labels under task names), one at a time (`iter_records`; a built-in layout's read whole); it names its
    format and reading options itself.
    """
    if on_error not in ("raise", "skip"):
        raise SqtoolError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if _is_yaml_file(path):
        whole = on_error if skip_only is SqtoolError else "raise"
        yield from _dataset_file_records(path, kind, options, min_duration_s, channels, max_clip_fraction,
                                         whole, skipped)
        return
    kind, items = list_items(path, kind)
    ctx: dict = {"root": Path(path)}
    for item in items:
        try:
            recs = read_item(kind, item, path, ctx, min_duration_s=min_duration_s, channels=channels,
                             max_clip_fraction=max_clip_fraction, **options)
        except SqtoolError as e:
            if on_error == "raise" or not isinstance(e, skip_only):
                raise
            if skipped is not None:
                skipped.append(str(e))
            continue
        while recs:                     # handed on one at a time: none held here while the next file is read
            yield recs.pop(0)


def _is_yaml_file(path: str | os.PathLike) -> bool:
    p = Path(path).expanduser()
    return p.is_file() and p.suffix.lower() in (".yaml", ".yml")


def _dataset_file_records(path, kind, options, min_duration_s, channels, max_clip_fraction, on_error,
                          skipped) -> Iterator[Record]:
    """The records of a dataset.yaml, through the same checks iter_records applies to a folder's."""
    if kind is not None or options:
        given = ", ".join([*(["kind"] if kind is not None else []), *options])
        raise SqtoolError(f"{path}: a dataset file names its own format and reading options; drop {given} "
                          f"(or pass the recordings folder instead)")
    from sqtool.data.dataset_file import load_dataset_file         # it reads through this module: import late
    ds = load_dataset_file(path)
    extra = bool(min_duration_s) or bool(channels) or max_clip_fraction is not None   # records() ran the rest
    failed: list[str] = []                                 # said after the dataset file's own bad files
    try:
        for r in ds.iter_records(on_error=on_error):      # one recording in memory at a time
            try:
                yield check_record(r, min_duration_s, channels, max_clip_fraction) if extra else r
            except SqtoolError as e:
                if on_error == "raise":
                    raise
                failed.append(str(e))
    finally:
        if skipped is not None:
            skipped.extend([*ds.report.get("skipped", []), *failed])


def read_dataset(path: str | os.PathLike, kind: str | None = None, **kw) -> list[Record]:
    """All records of a dataset folder or file (see iter_records for the options)."""
    recs = list(iter_records(path, kind, **kw))
    if not recs:
        raise SqtoolError(f"{path}: no usable records (all were skipped)")
    return recs


def read_csv(path, fs: float | None = None, **kw) -> Record:
    return check_record(_generic().read_csv(path, fs=fs, **kw))


def read_npz(path, fs: float | None = None, **kw) -> Record:
    return check_record(_generic().read_npz(path, fs=fs, **kw))


def read_wfdb(path, **kw) -> Record:
    return check_record(_generic().read_wfdb(path, **kw))


def inspect_path(path: str | os.PathLike, kind: str | None = None, **kw) -> dict:
    from sqtool.data.readers.summary import summarise
    return summarise(path, kind, **kw)


__all__ = ["read_dataset", "iter_records", "detect_kind", "read_csv", "read_npz", "read_wfdb",
           "inspect_path", "check_record", "list_items", "read_item", "kinds", "DATASETS", "Record", "Label"]
