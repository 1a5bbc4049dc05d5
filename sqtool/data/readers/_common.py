"""Shared helpers for the dataset readers: file access that fails with one clear line.

Every reader goes through these functions to open files, so a missing, unreadable, truncated or corrupt
file is always a `SqtoolError` naming the file, never a scipy/pandas traceback.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from sqtool.core import FS_MAX_HZ, SqtoolError, check_fs

RATE_TOL = 0.01      # a declared rate and the file's own (time column, stored fs) must agree within 1 %
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}     # time_unit -> seconds per unit (time columns, label files)
TIME_SPELLINGS = {**{w: "s" for w in ("s", "sec", "secs", "second", "seconds")},     # a CSV units row's time unit,
                  **{w: "ms" for w in ("ms", "msec", "millisecond", "milliseconds")},   # as written (case
                  **{w: "us" for w in ("us", "µs", "μs", "usec", "microsecond", "microseconds")}}   # ignored)


def require_file(path: str | os.PathLike) -> Path:
    """The path as a Path, or a one-line error if it is missing, a folder, or unreadable."""
    p = Path(path)
    if not p.exists():
        raise SqtoolError(f"{p}: file not found")
    if p.is_dir():
        raise SqtoolError(f"{p}: expected a file, found a folder")
    if not p.is_file():
        raise SqtoolError(f"{p}: not a regular file (a device, pipe or socket)")
    if not os.access(p, os.R_OK):
        raise SqtoolError(f"{p}: file is not readable (permission denied)")
    if p.stat().st_size == 0:
        raise SqtoolError(f"{p}: file is empty")
    return p


def first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


def load_mat(path: str | os.PathLike, variables: Iterable[str] | None = None) -> dict:
    """scipy.io.loadmat with one-line errors (truncated, corrupt, MATLAB v7.3/HDF5, variable missing)."""
    import scipy.io

    p = require_file(path)
    try:
        d = scipy.io.loadmat(str(p))
    except NotImplementedError:
        raise SqtoolError(f"{p}: MATLAB v7.3 (HDF5) files are not supported; re-save with save('-v7')")
    except Exception as e:  # noqa: BLE001 - scipy raises ValueError/TypeError/OSError/zlib.error on bad files
        raise SqtoolError(f"{p}: corrupt or truncated .mat file ({first_line(e)})")
    if variables is not None:
        for v in variables:
            if v not in d:
                have = ", ".join(k for k in d if not k.startswith("__")) or "none"
                raise SqtoolError(f"{p}: variable '{v}' missing (has {have})")
    return d


def mat_numbers(d: dict, name: str, path) -> np.ndarray:
    """Variable `name` of a `load_mat` result as float64, or one line naming the variable and the file when it holds
    complex numbers, text, cells or structs (a cast would drop the imaginary part, or raise a bare ValueError)."""
    v = np.asarray(d[name])
    if v.dtype.kind == "c":                               # a cast would drop the imaginary part
        raise SqtoolError(f"{path}: variable '{name}' must hold real numbers, got {v.dtype} samples")
    if v.dtype.kind not in "biuf":
        raise SqtoolError(f"{path}: variable '{name}' is not numeric (dtype {v.dtype})")
    return v.astype(np.float64)


MAX_NPZ_BYTES = 2 * 1024 ** 3     # an .npz's members may inflate to 2 GiB in all (a 3.3 MB zip bomb held 3.2 GB)


def read_npz_arrays(path: str | os.PathLike, keep) -> dict[str, np.ndarray]:
    """The arrays of an .npz that `keep(name, shape, dtype)` wants, read one member at a time from its .npy header
    on (np.load's `{k: z[k] for k in z.files}` inflated every member whole, used or not), each member opened
    once (its header re-read after a seek back to 0). Before anything is inflated, the members' uncompressed sizes
    (ZipInfo.file_size, where zipfile stops inflating a member) must add up to MAX_NPZ_BYTES at most, and no
    member's header may claim more bytes than it holds; else one line. A kept array of complex numbers is one line
    too (samples, rates: every caller casts to float)."""
    import zipfile

    from numpy.lib import format as npf

    p = require_file(path)
    try:
        with zipfile.ZipFile(p) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            total = sum(i.file_size for i in members)
            if total > MAX_NPZ_BYTES:
                raise SqtoolError(f"{p}: .npz members inflate to {total / 1024 ** 2:,.0f} MiB, over the "
                                  f"{MAX_NPZ_BYTES / 1024 ** 2:,.0f} MiB sqtool reads from one file (a zip bomb?); "
                                  f"split the recording")
            out = {}
            for info in members:
                if not info.filename.endswith(".npy"):
                    continue                           # np.load gives other members as raw bytes: never an array
                name = info.filename[:-4]
                with zf.open(info) as f:
                    header = {(1, 0): npf.read_array_header_1_0,
                              (2, 0): npf.read_array_header_2_0}.get(npf.read_magic(f))
                    if header is not None:             # format 3.0 (utf-8 field names): read whole, within the cap
                        shape, _, dtype = header(f)
                        if not keep(name, shape, dtype):
                            continue
                        if dtype.hasobject:            # its bytes are a pickle: never unpickled, said as such
                            raise SqtoolError(f"{p}: member '{name}' is an object (pickled) array; save it as a "
                                              "numeric array (np.asarray(x, dtype=float))")
                        if int(np.prod(shape, dtype=object)) * dtype.itemsize > info.file_size:
                            raise SqtoolError(f"{p}: corrupt or truncated .npz (member '{name}' claims shape "
                                              f"{shape}, more than its {info.file_size} bytes)")
                    f.seek(0)                          # the same member again from its start: read_array's
                    out[name] = npf.read_array(f, allow_pickle=False)   # own header checks, nothing inflated twice
                if out[name].dtype.kind == "c":        # a cast to float would drop the imaginary part
                    raise SqtoolError(f"{p}: array '{name}' must hold real numbers, got {out[name].dtype} samples")
            return out
    except SqtoolError:
        raise
    except Exception as e:  # noqa: BLE001 - BadZipFile, ValueError (pickled, bad header), OSError, EOFError
        raise SqtoolError(f"{p}: corrupt or truncated .npz ({first_line(e)})")


NPZ_ACC = ("acc", "accel", "accelerometer")     # a 2-D .npz member of one of these names holds the x, y, z axes


def read_npz_channels(path: str | os.PathLike, also: Callable[[str], bool]) -> tuple[dict[str, np.ndarray], list[str]]:
    """(arrays, members left unread as "name (shape)") of an .npz by the readers' layout (`read_npz_arrays`): 1-D
    members, those `also(name)` wants (rates, `signals`, text keys) as stored, a 2-D accelerometer (`NPZ_ACC`) of
    shape (N, 3) as a logger writes it, or (3, N) with N != 3, as its axes acc_x, acc_y, acc_z (its fs_<name> their
    rate), and a numeric (N, 1) or (1, N) member as 1-D. Any other member (2-D of another name, shape or type, 3-D)
    is not inflated, only named."""
    unread = []

    def keep(name: str, shape: tuple, dtype) -> bool:
        if len(shape) <= 1 or also(name) or (len(shape) == 2 and dtype.kind in "biuf" and (
                1 in shape or (name.lower() in NPZ_ACC and 3 in shape))):
            return True
        unread.append(f"{name} {shape}")
        return False
    data = read_npz_arrays(path, keep)
    for name in [k for k, v in data.items() if v.ndim == 2 and not also(k)]:
        v = data.pop(name)
        if 1 in v.shape:                                      # (N, 1) / (1, N): one channel
            data[name] = v.reshape(-1)
            continue
        xyz = v if v.shape[1] == 3 else v.T                   # (N, 3) x, y, z
        clash = [f"acc_{a}" for a in "xyz" if f"acc_{a}" in data]
        if clash:
            raise SqtoolError(f"{path}: both a 2-D '{name}' {v.shape} and {', '.join(clash)}: give the "
                              "accelerometer once")
        for j, a in enumerate("xyz"):
            data[f"acc_{a}"] = xyz[:, j]
            if f"fs_{name}" in data:
                data.setdefault(f"fs_acc_{a}", data[f"fs_{name}"])
    return data, unread


def refuse_matrix_members(unread: list[str], wanted: Callable[[str], bool], where: str,
                          fix: str = "(ppg, ppg2, acc_x, ...) or a (C, N) 'signals' with its 'channels' names") -> None:
    """One line when a member `read_npz_channels` left unread ("name (shape)") is one the reader wants as a channel
    (`wanted(name)`: a PPG or accelerometer name, a dataset file's named column): a sensor stored as a matrix, e.g.
    two PPG sensors stacked (2, N), would otherwise read as a channel missing."""
    for u in unread:
        name, shape = u.rsplit(" (", 1)              # "name (shape)": a name may hold spaces, the shape is last
        if wanted(name):
            raise SqtoolError(f"{where}: '{name}' has the shape ({shape}: store one 1-D array per channel {fix}")


def is_npz_rate(key: str) -> bool:
    """An .npz member that is a sampling rate (`fs`, `fs_<name>`), not a channel: a channel may be named 'fsr'."""
    return key == "fs" or key.startswith("fs_")


def npz_rates(arrays: dict, names: Iterable[str], said: Callable[[str, str | None], str],
              default=None) -> dict[str, float]:
    """{name: Hz} for each of `names` by an .npz's rule: its own `fs_<name>` member, else the file's `fs` scalar,
    else `default` (a name with none of them is left out). The rate that applies must be one number in
    (0, FS_MAX_HZ] (`check_fs`; a one-element array is its number), else one line naming `said(name, key)`, key the
    member it came from (None for `default`). A stored rate that applies to none of `names` is not read."""
    out = {}
    for name in names:
        key = f"fs_{name}" if f"fs_{name}" in arrays else "fs" if "fs" in arrays else None
        v = arrays[key] if key is not None else default
        if v is not None:
            v = np.asarray(v)
            out[name] = check_fs(v.item() if v.size == 1 else v, said(name, key))
    return out


_CUT_NOTED: set[str] = set()            # files whose cut last row was already said (one note per file and process)


def read_csv(path: str | os.PathLike, **kw):
    """pandas.read_csv with one-line errors (empty, malformed, truncated gzip). A plain file that ends inside its
    last row (no final newline, that row short of fields the row before has: a file still being written, or copied
    short) loses that row, said in one note line; it would otherwise be read as a gap (NaN samples)."""
    import pandas as pd

    import warnings

    p = require_file(path)
    try:
        with warnings.catch_warnings():        # index_col=False (`generic.csv_layout`): a row longer than the header
            warnings.filterwarnings("error", "Length of header", pd.errors.ParserWarning)    # loses its last value
            df = pd.read_csv(p, **kw)
    except pd.errors.ParserWarning:
        raise SqtoolError(f"{p}: corrupt CSV (a row has more fields than the header names; its value past the last "
                          "column would be dropped): name every column in the header") from None
    except Exception as e:  # noqa: BLE001 - ParserError, EmptyDataError, EOFError, BadGzipFile, UnicodeError
        raise SqtoolError(f"{p}: corrupt or truncated CSV ({first_line(e)})")
    fields = _fields_of_an_unended_last_row(p, kw.get("sep", ",")) if len(df) >= 2 else None
    if fields is not None and fields < df.shape[1]:
        if str(p) not in _CUT_NOTED:
            from sqtool.core.progress import item
            _CUT_NOTED.add(str(p))
            item(f"note: {p}: its last row is cut ({fields} of {df.shape[1]} fields, no final newline: a file still "
                 "being written, or copied short?); left out")
        df = df.iloc[:-1]
    if len(df) == 0:
        raise SqtoolError(f"{p}: CSV has no data rows")
    return df


def _fields_of_an_unended_last_row(p: Path, sep) -> int | None:
    """The number of fields of a plain (uncompressed) file's last row when the file does not end with a newline
    (a row written in full ends with one, or is the whole last line of a file written without: then its fields
    are all there); None when it ends with a newline or cannot be told. An explicit NaN or empty field counts."""
    if p.suffix.lower() in (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar"):
        return None
    with open(p, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return None
        f.seek(max(0, size - 65536))
        tail = f.read()
    if tail.endswith((b"\n", b"\r")):
        return None
    last = tail.splitlines()[-1].decode("utf-8", "replace")
    if sep is None or sep == r"\s+" or sep == " ":
        return len(last.split())
    return last.count(sep) + 1 if len(sep) == 1 else None


def read_excel(path: str | os.PathLike, **kw):
    import pandas as pd

    p = require_file(path)
    try:
        return pd.read_excel(p, **kw)
    except Exception as e:  # noqa: BLE001 - zipfile.BadZipFile, ValueError, KeyError
        raise SqtoolError(f"{p}: corrupt or unreadable spreadsheet ({first_line(e)})")


def numeric_column(df, col: str, where: str) -> np.ndarray:
    """A CSV column as float64; text cells become an error naming the column (not silent NaN)."""
    import pandas as pd

    s = df[col]
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(x) & ~s.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise SqtoolError(f"{where}: column '{col}' row {i + 1} is not a number ({s.iloc[i]!r})")
    return x


def drop_repeated_rows(df, t: np.ndarray, where: str):
    """(`df`, its times `t` in s) without the rows that repeat the row before exactly, time and every value (a logger
    or a BLE link that wrote a row twice): one sample, not two (a 25 Hz sensor with 2 % of its rows written twice
    read as 25.5 Hz); one warning line with the count. Only where the timestamps resolve the rows (written at least
    twice as finely as the period): rounded coarser (100 Hz at 0.1 s, BIDMC's 125 Hz at 0.01 s) rows share a time
    by design, and a railed or symmetric stretch repeats values too."""
    dt = np.diff(t)
    if not dt.size or not (dt == 0).any() or not (dt > 0).any() or time_quantum(t) > 0.5 * np.median(dt[dt > 0]):
        return df, t
    cand = np.flatnonzero(dt == 0) + 1
    same = cand[(df.iloc[cand].to_numpy() == df.iloc[cand - 1].to_numpy()).all(axis=1)]
    if not same.size:
        return df, t
    from sqtool.data.dataset_tasks import warn
    warn(f"{where}: {same.size} row{'s' if same.size > 1 else ''} repeat the row before, time and values (the first: "
         f"row {int(same[0]) + 1}): read once (row numbers below count them once)")
    return df.drop(index=df.index[same]).reset_index(drop=True), np.delete(t, same)


def walk_files(root: Path, max_files: int = 200_000) -> list[Path]:
    """All files under `root` (sorted, hidden files and folders skipped), bounded for safety."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
        for f in sorted(filenames, key=natural_key):
            if not f.startswith("."):
                out.append(Path(dirpath) / f)
                if len(out) >= max_files:
                    return out
    return out


def refuse_name_clash(rels: Iterable[str], where: str, fix: str, unit: str = "file") -> None:
    """Refuse files in different folders that the default rule (a file's name, without its extension(s), is its
    subject) would make one subject: `P01/walk.csv` and `P02/walk.csv` are one person's walk and another's, or two
    walks of a person filed by day, and only the user knows which. Read as one subject, a subject-held-out split
    holds P02's walk out and trains on P02's run (a leak the fold figures do not show). `rels`: the recordings'
    paths under the dataset's root (posix); `fix`: where the subject rule goes (a dataset.yaml's `subject:`);
    unit="folder": `rels` are the recordings' folders, whose whole name is the subject (E4 sessions: P01/S1, P02/S1)."""
    folders: dict[str, dict[str, str]] = {}          # file name -> {folder: its path}
    for rel in rels:
        folder, _, name = rel.rpartition("/")
        folders.setdefault(name if unit == "folder" else name.split(".")[0], {}).setdefault(folder, rel)
    clash = sorted((n, f) for n, f in folders.items() if len(f) > 1)
    if not clash:
        return
    name, where_ = clash[0]
    shown = list(where_.values())
    own = "" if unit == "folder" else " or subject: {pattern: '(?P<subject>[^/.]+)[.][^/]*$'} (the file's name)"
    raise SqtoolError(
        f"{where}: {shown[0]} and {shown[1]} would be one subject, '{name}' (no subject rule: the default is the "
        f"{unit}'s name; {len(clash)} name{'s' if len(clash) > 1 else ''} in more than one folder), so a "
        "subject-held-out split could train on a person it holds out; say which part of the path names the subject "
        f"in {fix}: subject: {{pattern: '^(?P<subject>[^/]+)/'}} (the first folder){own}")


def natural_key(p: Path | str):
    """Sort 'x_2' before 'x_10'."""
    s = str(p)
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def natural_sorted(names: Iterable) -> list[str]:
    """`names` as text, numbers in them sorted as numbers ('ppg_bp:9' before 'ppg_bp:10'); names equal but for case or
    leading zeros ('s01', 's1') in their text's order."""
    return sorted(map(str, names), key=lambda s: (natural_key(s), s))


def time_quantum(t: np.ndarray, ends: int = 64) -> float:
    """The resolution the timestamps were written with (s): the coarsest of 1 s, 0.1 s, ..., 1 us of which
    every timestamp (from the first) is a whole multiple, e.g. 0.001 for integer-ms or `%.3f` s columns.
    Significant-digit formats (`%.6g`) round finer near 0 than at 300 s, so no one resolution fits the column:
    then the coarser of those of its first and last `ends` timestamps (the span, hence the rate, is off by
    the rounding at its two ends); 0.0 when none fits (full-precision floats)."""
    def fits(x: np.ndarray) -> float:
        x = x - x[0]
        for k in range(7):
            q = 10.0 ** -k
            if np.all(np.abs(x / q - np.round(x / q)) <= 1e-6):    # written rounded: multiples but for float error
                return q
        return 0.0
    t = np.asarray(t, dtype=np.float64)
    q = fits(t)
    if q == 0.0 and t.size > 2 * ends:
        q = max(fits(t[:ends]), fits(t[-ends:]))
    return q


def nominal_rate(fs: float, q: float, span: float, scatter: float = 0.0) -> float | None:
    """The nominal rate behind a rate measured from timestamps rounded to `q` seconds over `span` seconds, or
    None. Rounding moves each end of the span by up to q / 2, so the measured rate is off by up to
    fs q / span: a whole-Hz rate (else a tenth of a Hz) within that is what the clock ran at (64 Hz with
    integer-ms timestamps measures 64.0002 over 130 s). Timestamps a host writes when it receives the rows
    scatter about the grid (`scatter`: the range of their offsets from it, s; a few ms of jitter, a duplicated
    or a dropped row): a nominal rate that moves no row further from its timestamp than they already scatter
    (50 Hz for 50.0035 measured over 100 s with +-4 ms of jitter) is taken too. Beyond 0.1 % it is not rounding
    but a clock that runs off its rate (19.58 Hz for a nominal 20), which stays as measured; so does a clock
    50 ppm off whose timestamps are regular (its drift over the span is more than they scatter)."""
    tol = min(1.05 * max(q, scatter) / span, 1e-3)
    for f in (float(round(fs)), round(fs * 10) / 10):
        if f > 0 and abs(fs - f) <= tol * f:
            return float(f)
    return None


def rate_from_times(t: np.ndarray, where: str) -> float:
    """Sampling rate (Hz) from a time column in seconds, for readers that take no gap: `time_grid`'s rate, and
    rows missing from the clock refused (one line naming the gap) instead of filled."""
    return time_grid(t, where, fill=False).fs


GAP_STEPS = 5                       # a step over GAP_STEPS typical steps (and GAP_MIN_S) is rows missing,
GAP_MIN_S = 0.05                    # not a clock's jitter: a gap, its samples NaN
MAX_GAPS = 0.01                     # of the steps: more such jumps are rows stamped in bursts, not gaps
WHOLE_STEP = 0.25                   # of a period: how near a gap must be to whole rows (or the clock's jitter)
MAX_FILL = 10                       # a grid over MAX_FILL x the rows (mostly gap) is refused: split the file


@dataclass(frozen=True)
class TimeGrid:
    """A time column's rows on their sampling grid: row i is sample at[i] of n; the gaps (last row before one,
    1-based; its time s; missing s) are rows missing from the clock, the samples no row lands on."""
    fs: float
    at: np.ndarray                                  # (N_rows,) int: each row's sample on the grid
    n: int                                          # samples on the grid (N_rows when no row is missing)
    gaps: tuple[tuple[int, float, float], ...] = ()

    def spread(self, x: np.ndarray) -> np.ndarray:
        """(N_rows,) -> (n,): a column on the grid, NaN (a gap sample) where rows are missing."""
        x = np.asarray(x, dtype=np.float64)
        if not self.gaps:
            return x
        out = np.full(self.n, np.nan)
        out[self.at] = x
        return out

    def said(self) -> str:
        """'2 gaps of rows missing from the time column, 37 s in all (the longest 30 s after row 12500, t=100 s)'."""
        k = len(self.gaps)
        row, t, s = max(self.gaps, key=lambda g: g[2])
        if k == 1:
            return f"rows missing from the time column: {s:.4g} s after row {row} (t={t:.6g} s)"
        return (f"{k} gaps of rows missing from the time column, {sum(g[2] for g in self.gaps):.4g} s in all (the "
                f"longest {s:.4g} s after row {row}, t={t:.6g} s)")


def _on_grid(t, dt, span: float, q: float, jump: np.ndarray):
    """(fs, step, at, whole, tol) of `time_grid` with the steps `jump` taken as rows missing: the rate from the
    other steps (snapped), each row's sample on the grid, each jump in whole periods, and how far off whole a
    jump may be (WHOLE_STEP of a period, the timestamps' rounding or the clock's own jitter)."""
    covered = span - float(dt[jump].sum()) if jump.size else span     # s spanned by steps with no row missing
    step = covered / (dt.size - jump.size)
    fs = round(1.0 / step, 6)
    off = np.concatenate([[0.0], np.cumsum(np.delete(dt, jump) - step)])   # each row's offset from the grid, s
    snapped = nominal_rate(1.0 / step, q, covered, float(off.max() - off.min()))
    fs = snapped if snapped is not None else fs
    if not jump.size:
        return fs, step, np.arange(t.size), np.zeros(0), 0.0
    step = 1.0 / fs
    whole = np.round(dt[jump] / step)
    jitter = float(np.percentile(np.abs(np.delete(dt, jump) - step), 99))    # the clock's own
    inc = np.ones(dt.size, dtype=np.int64)
    inc[jump] = whole.astype(np.int64)
    return fs, step, np.concatenate([[0], np.cumsum(inc)]), whole, max(WHOLE_STEP * step, 1.01 * q, jitter)


def _made_up(res: np.ndarray, jump: np.ndarray, whole: np.ndarray, step: float, tol: float) -> np.ndarray:
    """Which jumps the clock makes up for in the rows just after: their offset from the grid (`res`, s) over the
    next 4 x the jump's periods of rows falls back from the rows' before by over half a period beyond `tol` (a
    host's stall, its buffered rows stamped at once when they come), where rows really missing keep it (within
    half a period: the jump rounded to whole)."""
    edges = np.r_[0, jump + 1, res.size]                        # the rows between jumps
    late = np.zeros(jump.size, dtype=bool)
    for k, (i, w) in enumerate(zip(jump, whole)):
        n = 4 * int(w)
        before = res[max(edges[k], i + 1 - n):i + 1]
        after = res[i + 1:min(edges[k + 2], i + 1 + n)][n // 2:]             # once the buffered rows are in
        late[k] = after.size > 0 and np.median(after) - np.median(before) < -(0.5 * step + tol)
    return late


def time_grid(t: np.ndarray, where: str, fill: bool = True, ms_hint: str | None = None,
              unit_hint: tuple[float, str] | None = None, start: str | None = None) -> TimeGrid:
    """The sampling grid of a time column in seconds: its rate, (N - 1) / (t_last - t_first) snapped to the
    nominal rate when the difference is within the timestamps' rounding (`nominal_rate`: 64 Hz from
    integer-ms timestamps, 256 Hz from `%.3f` s ones, not 64.0002 / 256.0006), and where each row lies on it.

    Timestamps are often rounded (BIDMC writes 100.02 twice at 125 Hz), so equal neighbours are fine; going
    backwards is refused. A step over GAP_STEPS median steps (and GAP_MIN_S) is rows missing from the clock (a
    BLE drop-out), unless such steps are over MAX_GAPS of them (rows stamped in bursts) or the rows after make it
    up (a host's stall, its buffered rows stamped late: `_made_up`): the rate then comes from
    the rows between gaps, and each gap must be a whole number of periods (within WHOLE_STEP of one, or the
    timestamps' rounding or the clock's own jitter), else one line naming it. With `fill` a gap's samples are
    NaN (the gaps the front end flags and training leaves out), said in one warning line per file; without it
    a gap is one line naming it. Any timestamp more than 5 periods (or 50 ms, or 0.1 % of the span for slowly
    drifting clocks) off the grid is irregular sampling, refused. A rate under 1 Hz that would be 10-2000 Hz
    in milliseconds is refused with `ms_hint` (how to say the unit), when given; `unit_hint` (seconds per unit the
    times were read in, how to unsay it): a rate over FS_MAX_HZ that would be 1-2000 Hz in seconds is refused with it
    (`time_unit: ms` said of seconds). `start`: the column's first time as read (`generic.read_times`); where it
    is a naive local date-time (no 'Z', no UTC offset), a gap of one hour is said to be maybe a daylight-saving
    change, no row missing.
    """
    t = np.asarray(t, dtype=np.float64)
    if t.size < 2:
        raise SqtoolError(f"{where}: need at least 2 timestamps to infer the sampling rate")
    if (n_bad := int(np.sum(~np.isfinite(t)))):
        i = int(np.argmax(~np.isfinite(t)))
        raise SqtoolError(f"{where}: time column has no time at row {i + 1} (empty, NaN or Inf"
                          + (f"; {n_bad} such rows" if n_bad > 1 else "") + "): remove those rows, or give them "
                          "their times")
    dt = np.diff(t)
    if np.any(dt < 0):
        i = int(np.argmax(dt < 0))
        raise SqtoolError(f"{where}: time column goes backwards by {-dt[i]:.6g} s at row {i + 2} (t={t[i] - t[0]:.6g} "
                          "s): a clock reset or set back (naive local times falling back 3600 s: daylight saving); "
                          "split the file there into recordings whose times only go forward, or write the times "
                          "with their UTC offset")
    span = float(t[-1] - t[0])
    if span <= 0:
        raise SqtoolError(f"{where}: time column is constant; cannot infer the sampling rate")
    q = time_quantum(t)
    med = float(np.median(dt))
    jump = np.flatnonzero(dt > max(GAP_STEPS * med, GAP_MIN_S)) if med > 0 else np.zeros(0, np.int64)
    if jump.size > MAX_GAPS * dt.size:
        jump = jump[:0]                                         # bursts of rows stamped at once: no gaps
    fs, step, at, whole, tol = _on_grid(t, dt, span, q, jump)
    if jump.size:
        late = _made_up(t - (t[0] + step * at), jump, whole, step, tol)
        if late.any():                                          # a stall whose rows came late: no rows missing
            jump = jump[~late]
            fs, step, at, whole, tol = _on_grid(t, dt, span, q, jump)
    for i, w in zip(jump, whole):
        if abs(dt[i] - w * step) > tol:
            raise SqtoolError(f"{where}: the timestamps jump by {dt[i]:.6g} s after row {i + 1} "
                              f"(t={t[i] - t[0]:.6g} s), {dt[i] / step:.2f} periods of {fs:.6g} Hz: not whole rows "
                              "missing from a regular clock; resample the recording onto a uniform grid, or split "
                              "the file there")
    res = t - (t[0] + step * at)
    worst = int(np.argmax(np.abs(res)))
    if abs(res[worst]) > max(5 * step, 0.05, 1e-3 * span):
        if q >= 2 * step and med == 0:                          # many rows share each stamp: written too coarsely
            raise SqtoolError(f"{where}: the timestamps are written to {q:g} s, coarser than the samples "
                              f"(about {1 / step:.3g} Hz: {q / step:.0f} rows share a stamp); write them with more "
                              "digits (ms), or give the rate (fs:) and no time column")
        raise SqtoolError(f"{where}: irregular sampling (timestamp at row {worst + 2} is {res[worst]:+.3g} s off "
                          f"a uniform {1 / step:.4g} Hz grid); resample the recording onto a uniform grid first")
    if unit_hint and fs > FS_MAX_HZ and 1.0 <= fs * unit_hint[0] <= 2000.0:
        raise SqtoolError(f"{where}: the timestamps give {fs:.6g} Hz, no device's rate: they look like seconds "
                          f"({fs * unit_hint[0]:.4g} Hz); {unit_hint[1]}")
    if ms_hint and fs < 1.0 and 10.0 <= fs * 1000 <= 2000.0:
        raise SqtoolError(f"{where}: the timestamps give {fs:.3g} Hz, no device's rate: they look like milliseconds "
                          f"({fs * 1000:.4g} Hz); {ms_hint}")
    if not jump.size:
        return TimeGrid(fs, at, t.size)
    grid = TimeGrid(fs, at, int(at[-1]) + 1, tuple((int(i) + 1, float(t[i] - t[0]), float((w - 1) * step))
                                                   for i, w in zip(jump, whole)))
    if not fill:
        raise SqtoolError(f"{where}: {grid.said()}; this reader takes no gaps: resample the recording onto a uniform "
                          "grid, or split the file there")
    if grid.n > MAX_FILL * t.size:
        raise SqtoolError(f"{where}: {grid.said()}, over {MAX_FILL - 1}x the rows it holds; split the file at its "
                          "gaps")
    from sqtool.data.dataset_tasks import warn
    naive = start is not None and re.search(r"(?:Z|[+-]\d\d:?\d\d)$", start) is None     # local clock time
    dst = naive and any(abs(g[2] - 3600.0) <= max(1.5 * step, 0.5) for g in grid.gaps)
    warn(f"{where}: {grid.said()}: read as NaN samples, a gap (windows mostly in a gap are flagged; training leaves "
         "out every window touching one)" + ("; a naive local time jumping 1 h may be a daylight-saving change with "
                                             "no row missing: write the times with their UTC offset" if dst else ""))
    return grid


# ----------------------------------------------------------------------------- label plausibility

# label -> (lowest, highest, unit): values a body can have. Wide on purpose: the built-ins span hr 44-186 BPM
# (bidmc, troika, wrist_exercise), breaths 5-30 /min (bidmc), sbp 80-182 and dbp 42-107 mmHg (ppg_bp).
PLAUSIBLE = {"hr": (20.0, 300.0, "BPM"), "rr": (2.0, 80.0, "breaths/min"), "sbp": (40.0, 300.0, "mmHg"),
             "dbp": (10.0, 200.0, "mmHg")}


def check_plausible(name: str, values, where: str, row=lambda i: f"row {i + 1}", bounds=None) -> None:
    """One line naming `where`, the label, how many of its finite values lie outside PLAUSIBLE[name] (or `bounds`,
    (lo, hi, unit): a custom label's range) and the first of them (`row(i)` says where it is); NaN / Inf are
    missing, not implausible."""
    lo, hi, unit = bounds or PLAUSIBLE[name]
    v = np.asarray(values, float).ravel()
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(np.isfinite(v) & ((v < lo) | (v > hi)))
    if len(bad):
        raise SqtoolError(f"{where}: {len(bad)} {name} value(s) outside the plausible {lo:g}-{hi:g} {unit}, e.g. "
                          f"{v[bad[0]]:g} ({row(bad[0])}); correct them, or empty the cells of unknown ones")


def check_bp(sbp, dbp, where: str, row=lambda i: f"row {i + 1}") -> None:
    """Both in PLAUSIBLE's range and systolic above diastolic wherever both are known."""
    check_plausible("sbp", sbp, where, row)
    check_plausible("dbp", dbp, where, row)
    s, d = np.asarray(sbp, float).ravel(), np.asarray(dbp, float).ravel()
    bad = np.flatnonzero(np.isfinite(s) & np.isfinite(d) & (s <= d))
    if len(bad):
        i = bad[0]
        raise SqtoolError(f"{where}: {len(bad)} row(s) with sbp <= dbp, e.g. sbp {s[i]:g}, dbp {d[i]:g} ({row(i)}); "
                          "systolic pressure is above diastolic (columns swapped?)")


def check_plausible_labels(labels: dict, where: str) -> None:
    """A built-in reader's truth labels through a dataset.yaml's checks: hr, rr (kind window / value), sbp, dbp
    inside PLAUSIBLE and sbp above dbp (so `--data <folder>` refuses what the same folder's dataset.yaml refuses)."""
    def row(lab):
        if np.size(lab.values) <= 1:
            return lambda i: "its value"
        t = None if lab.times is None else np.asarray(lab.times, np.float64)
        return lambda i: f"value {i + 1}" + (f", at {t[i]:g} s" if t is not None and i < t.size else "")
    for name in ("hr", "rr"):
        if (lab := labels.get(name)) is not None and lab.kind in ("window", "value"):
            check_plausible(name, lab.values, f"{where}: label '{name}'", row(lab))
    sbp, dbp = labels.get("sbp"), labels.get("dbp")
    if sbp is not None and dbp is not None and np.shape(sbp.values) == np.shape(dbp.values):
        check_bp(sbp.values, dbp.values, f"{where}: labels 'sbp', 'dbp'", row(sbp))
        return
    for name, lab in (("sbp", sbp), ("dbp", dbp)):
        if lab is not None:
            check_plausible(name, lab.values, f"{where}: label '{name}'", row(lab))


def rows_per_sample(fs: float | None, fs_t: float | None) -> int:
    """k > 1 where a channel's declared rate `fs` is the time column's `fs_t` / k, k whole (a 32 Hz accelerometer
    written into a 64 Hz file's rows, its cells blank between its values); else 1 (the rates are compared as they are)."""
    if fs is None or fs_t is None:
        return 1
    k = round(fs_t / fs)
    return k if k > 1 and abs(fs_t / k - fs) <= RATE_TOL * fs else 1


def every_kth_row(x: np.ndarray, k: int, fs_t: float, what: str, fix: str) -> np.ndarray:
    """The samples of a slower stream held in every k-th row of a column, the rows between blank: the rows of its
    first value's phase (their blanks, as rows missing from the clock, stay gaps). A value between them is one line
    (`what` the rate said, `fix` how to unsay it): such a column is at the time column's rate (a held value repeated
    on every row), not at the slower one."""
    rows = np.flatnonzero(np.isfinite(x))
    phase = int(rows[0] % k) if rows.size else 0
    if (off := rows[rows % k != phase]).size:
        raise SqtoolError(f"{what} is one value every {k} rows of the time column's {fs_t:g} Hz, but the column "
                          f"has values between them ({off.size:,} rows, the first at {off[0] / fs_t:.6g} s); a "
                          f"value on every row is a {fs_t:g} Hz channel: {fix}")
    return x[phase::k]
