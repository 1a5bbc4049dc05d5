"""Shared helpers for the dataset readers: file access that fails with one clear line.

Every reader goes through these functions to open files, so a missing, unreadable, truncated or corrupt
file is always a `SqtoolError` naming the file, never a scipy/pandas traceback.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from sqtool.core import SqtoolError


def require_file(path: str | os.PathLike) -> Path:
    """The path as a Path, or a one-line error if it is missing, a folder, or unreadable."""
    p = Path(path)
    if not p.exists():
        raise SqtoolError(f"{p}: file not found")
    if not p.is_file():
        raise SqtoolError(f"{p}: expected a file, found a folder")
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


def read_csv(path: str | os.PathLike, **kw):
    """pandas.read_csv with one-line errors (empty, malformed, truncated gzip)."""
    import pandas as pd

    p = require_file(path)
    try:
        df = pd.read_csv(p, **kw)
    except Exception as e:  # noqa: BLE001 - ParserError, EmptyDataError, EOFError, BadGzipFile, UnicodeError
        raise SqtoolError(f"{p}: corrupt or truncated CSV ({first_line(e)})")
    if len(df) == 0:
        raise SqtoolError(f"{p}: CSV has no data rows")
    return df


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


def natural_key(p: Path | str):
    """Sort 'x_2' before 'x_10'."""
    s = str(p)
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


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
            if np.all(np.abs(x / q - np.round(x / q)) <= 1e-3):
                return q
        return 0.0
    t = np.asarray(t, dtype=np.float64)
    q = fits(t)
    if q == 0.0 and t.size > 2 * ends:
        q = max(fits(t[:ends]), fits(t[-ends:]))
    return q


def nominal_rate(fs: float, q: float, span: float) -> float | None:
    """The nominal rate behind a rate measured from timestamps rounded to `q` seconds over `span` seconds, or
    None. Rounding moves each end of the span by up to q / 2, so the measured rate is off by up to
    fs q / span: a whole-Hz rate (else a tenth of a Hz) within that is what the clock ran at (64 Hz with
    integer-ms timestamps measures 64.0002 over 130 s). Beyond 0.1 % it is not rounding but a clock that
    runs off its rate (19.58 Hz for a nominal 20), which stays as measured."""
    tol = min(1.05 * q / span, 1e-3)
    for f in (float(round(fs)), round(fs * 10) / 10):
        if f > 0 and abs(fs - f) <= tol * f:
            return float(f)
    return None


def rate_from_times(t: np.ndarray, where: str) -> float:
    """Sampling rate (Hz) from a time column in seconds: (N - 1) / (t_last - t_first), snapped to the
    nominal rate when the difference is within the timestamps' rounding (`nominal_rate`: 64 Hz from
    integer-ms timestamps, 256 Hz from `%.3f` s ones, not 64.0002 / 256.0006).

    Timestamps are often rounded (BIDMC writes 100.02 twice at 125 Hz), so equal neighbours are fine;
    going backwards is refused, and so is a gap: any timestamp more than 5 sample periods (or 50 ms,
    or 0.1 % of the span for slowly drifting clocks)
    away from the uniform grid means the record is not uniformly sampled and needs resampling first.
    """
    t = np.asarray(t, dtype=np.float64)
    if t.size < 2:
        raise SqtoolError(f"{where}: need at least 2 timestamps to infer the sampling rate")
    if not np.all(np.isfinite(t)):
        raise SqtoolError(f"{where}: time column has NaN/Inf values")
    dt = np.diff(t)
    if np.any(dt < 0):
        i = int(np.argmax(dt < 0))
        raise SqtoolError(f"{where}: time column goes backwards at row {i + 2}")
    span = float(t[-1] - t[0])
    if span <= 0:
        raise SqtoolError(f"{where}: time column is constant; cannot infer the sampling rate")
    step = span / (t.size - 1)
    res = t - (t[0] + step * np.arange(t.size))
    worst = int(np.argmax(np.abs(res)))
    if abs(res[worst]) > max(5 * step, 0.05, 1e-3 * span):
        raise SqtoolError(f"{where}: irregular sampling (timestamp at row {worst + 2} is {res[worst]:+.3g} s off "
                          f"a uniform {1 / step:.4g} Hz grid); resample first or give the rate explicitly")
    fs = round(1.0 / step, 6)
    q = time_quantum(t)
    snapped = nominal_rate(1.0 / step, q, span) if q > 0 else None
    return snapped if snapped is not None else fs
