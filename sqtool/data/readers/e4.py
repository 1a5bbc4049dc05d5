"""Empatica E4 per-signal CSV files (BVP.csv, ACC.csv, EDA.csv, TEMP.csv, HR.csv; PPG-DaLiA and WESAD ship them too),
read for a dataset file of `format: e4` (`dataset_reader`), each one a stream of the recording:

    1495437325.000000, 1495437325.000000, 1495437325.000000     row 1: start, UTC seconds since 1970, per column
    32.000000, 32.000000, 32.000000                             row 2: sample rate, Hz, per column
    -38.000000, 7.000000, 52.000000                             then one row per sample (ACC: x, y, z in 1/64 g)

No column names: columns are taken by 0-based position (named "0", "1", ...). BVP.csv is the PPG as E4 gives it,
blood volume up (sqtool's polarity: no gain); ACC.csv counts 1/64 g (64 = 1 g: `unit: 1/64 g`). IBI.csv (row 1
"start, IBI", then time offset and interval per beat) holds no samples at a rate and is refused; HR.csv (1 Hz) is
the wristband's own estimate, readable as a channel but no reference truth.

Bad input is one SqtoolError line naming the file: empty, a header row that is not numbers (IBI.csv's 'IBI'
named), columns whose start or rate differ, a start in milliseconds, a rate out of range, no sample rows after the
header, a sample row of other columns than the header's, a sample that is not a number.

A folder of such files without a dataset.yaml (`is_export`: E4's session files alone, a BVP.csv and ACC.csv opening
with E4 header rows) is read as `format: e4` with its defaults (`list_items`, `read_item`: the readers' kind "e4"),
one note line saying so; one E4 file given alone is still a plain CSV, refused (`refuse_e4_rows`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, check_fs
from sqtool.data.readers._common import read_csv, require_file

HEADER = "row 1 its start (UTC seconds since 1970) and row 2 its sample rate (Hz), one value per column"
EPOCH_S_MAX = 1e11                  # s: a start past this is milliseconds (1e11 s is the year 5138)
SESSION_FILES = ("BVP.csv", "ACC.csv", "EDA.csv", "TEMP.csv", "HR.csv", "IBI.csv", "tags.csv")   # E4 Connect's CSVs
_NOTED: set[str] = set()            # folders already said to be read as E4 exports (one note per folder and process)


@dataclass
class E4File:
    cols: dict                      # "0", "1", ... -> pandas Series of float64 samples
    names: list[str]
    fs: float                       # Hz, row 2
    t0: float                       # UTC seconds since 1970, row 1
    n: int                          # sample rows

    @property
    def start(self) -> str:
        """The first sample's time, ISO 8601 UTC to the millisecond (as a time column's `start`)."""
        import pandas as pd
        from sqtool.data.readers.generic import iso_time
        return iso_time(pd.Timestamp(self.t0, unit="s", tz="UTC"))


def _header_row(line: str | None, row: int, what: str, p: Path) -> tuple[float, int]:
    """(the value, the number of columns) of header row `row` ("start" or "rate"); every column the same number."""
    fields = [f.strip().strip('"') for f in (line or "").split(",")]
    if not any(fields):
        raise SqtoolError(f"{p}: {'empty' if row == 1 else 'ends after row 1'}; an E4 file gives {HEADER}, then "
                          "one row per sample")
    if "IBI" in fields:
        raise SqtoolError(f"{p}: an E4 IBI file (row 1 'start, IBI', then a time offset and interval per beat), not "
                          "samples at a rate; it is not read as a channel")
    if (bad := next((f for f in fields if not _is_float(f)), None)) is not None:
        raise SqtoolError(f"{p}: row {row} ({what}) holds {bad!r}, not a number; an E4 file gives {HEADER}")
    values = [float(f) for f in fields]
    if any(v != values[0] for v in values):
        shown = ", ".join(f"{v:g}" for v in values)
        raise SqtoolError(f"{p}: row {row} ({what}) differs between its columns ({shown}); "
                          f"an E4 file's columns share one {what}")
    return values[0], len(values)


def _is_float(f: str) -> bool:
    """A number: "nan" is none (NaN differs from itself: a header of NaNs read as columns that differ)."""
    try:
        return not np.isnan(float(f))
    except ValueError:
        return False


def read_e4(path) -> E4File:
    """The columns, rate and start of E4 file `path` (module docstring); one line naming it when it is not one."""
    import pandas as pd
    p = require_file(path)
    with open(p, encoding="utf-8", errors="replace") as f:
        lines = [f.readline() for _ in range(3)]
    t0, k = _header_row(lines[0], 1, "start time", p)
    fs, k2 = _header_row(lines[1], 2, "sample rate", p)
    if k2 != k:
        raise SqtoolError(f"{p}: row 1 has {k} columns but row 2 {k2}; an E4 file gives {HEADER}")
    if not (np.isfinite(t0) and 0 <= t0 < EPOCH_S_MAX):
        raise SqtoolError(f"{p}: row 1 (start time) {t0:g} is not UTC seconds since 1970"
                          + (" (milliseconds? an E4 file's start is in seconds)" if t0 >= EPOCH_S_MAX else ""))
    fs = check_fs(fs, f"{p}: row 2 (sample rate)")
    if not lines[2].strip():
        raise SqtoolError(f"{p}: no samples after its two header rows (start time, sample rate)")
    df = read_csv(p, header=None, skiprows=2, sep=",", skipinitialspace=True)
    if df.shape[1] != k:
        raise SqtoolError(f"{p}: its samples have {df.shape[1]} columns but its header rows {k}")
    cols = {}
    for i in range(k):
        s = df[i]
        x = pd.to_numeric(s, errors="coerce")          # a column of numbers is one already; text cells: named
        if (bad := np.flatnonzero(x.isna().to_numpy() & s.notna().to_numpy())).size:
            raise SqtoolError(f"{p}: row {int(bad[0]) + 3} column {i} is not a number ({s.iloc[bad[0]]!r})")
        cols[str(i)] = x.astype(np.float64)
    return E4File(cols=cols, names=list(cols), fs=fs, t0=t0, n=len(df))


def refuse_e4_rows(df, where: str) -> None:
    """One line when a CSV read without names (`df`, its first row taken as a sample) is an E4 file: row 1 a start
    (every column the same UTC second since 1970, 2001..2099), row 2 a rate (every column the same, 1-1000 Hz);
    read as samples, those two rows were a spike of 1.5e9 and a step at the head of the PPG."""
    import pandas as pd
    from sqtool.data.readers.generic import iso_time
    if len(df) < 3:
        return
    t0, fs = (pd.to_numeric(df.iloc[i], errors="coerce").to_numpy(np.float64) for i in (0, 1))
    if not _is_e4_head(t0, fs):
        return
    start = iso_time(pd.Timestamp(t0[0], unit="s", tz="UTC"))
    raise SqtoolError(f"{where}: an Empatica E4 file (row 1 its start, {start}; row 2 its rate, {fs[0]:g} Hz), not "
                      "samples: give its session folder as --data (E4 files alone read as an E4 export), or read it "
                      "through a dataset.yaml of format: e4 (README: Empatica E4)")


def _is_e4_head(t0: np.ndarray, fs: np.ndarray) -> bool:
    """Rows 1 and 2 of a file without names (one value per column) are an E4 header: every column the same start, a
    UTC second since 1970 in 2001..2099, and the same rate, 1-1000 Hz."""
    from sqtool.data.readers.generic import EPOCH_S
    return bool(np.all(t0 == t0[0]) and np.all(fs == fs[0]) and EPOCH_S[0] <= t0[0] <= EPOCH_S[1]
                and 1 <= fs[0] <= 1000)


def has_e4_header(p: Path) -> bool:
    """Whether file `p` opens with E4 header rows (`_is_e4_head`), reading its first two lines only."""
    try:
        with open(p, encoding="utf-8", errors="replace") as f:
            # a line of at most 4 kB each, not a whole file without newlines
            rows = [[c.strip().strip('"') for c in f.readline(4096).split(",")] for _ in range(2)]
        t0, fs = (np.array([float(c) for c in r]) for r in rows)
    except (OSError, ValueError):
        return False
    return t0.size == fs.size and _is_e4_head(t0, fs)


# ----------------------------------------------------------------------------- a folder of E4 exports, no dataset.yaml

def is_export(path: Path, files: list[Path]) -> bool:
    """Folder `path` (its `files`) is an E4 export: every recording file one of E4's session CSVs (SESSION_FILES; no
    other CSV, NPZ, WFDB or EDF: those are read as before), and a session folder whose BVP.csv and ACC.csv both open
    with E4 header rows. Directly in `path` (one session) or one sub-folder per session."""
    if not path.is_dir():
        return False
    from sqtool.data.readers.generic import _is_csv
    data = [p for p in files if _is_csv(p) or p.suffix.lower() in (".npz", ".hea", ".edf")]
    if not data or any(p.name not in SESSION_FILES for p in data):
        return False
    return any(p.name == "BVP.csv" and has_e4_header(p) and has_e4_header(p.parent / "ACC.csv") for p in data)


def export_dataset(root: Path):
    """The DatasetFile a `format: e4` dataset.yaml without other keys in `root` gives (its defaults: every BVP.csv a
    session, BVP as ppg, ACC in 1/64 g, a session's subject its folder's name); a rule it would need (a subject rule
    for one session name in two folders) names that dataset.yaml."""
    from sqtool.data.dataset_file import parse_dataset
    return parse_dataset({"format": "e4", "name": "e4"}, Path(root) / "dataset.yaml")      # named as csv, npz: by kind


def list_items(path: Path) -> list[Path]:
    """The BVP.csv of each session of E4 export `path`, in record order; one note line per folder saying how it is
    read."""
    from sqtool.core.progress import item
    from sqtool.data.dataset_reader import dataset_units
    if not path.is_dir():
        raise SqtoolError(f"{path}: kind e4 is a folder of E4 session files (BVP.csv, ACC.csv, ...), not one file")
    sessions = dataset_units(export_dataset(path))
    if str(path) not in _NOTED:
        _NOTED.add(str(path))
        item(f"note: {path}: an Empatica E4 export ({len(sessions)} session{'s' if len(sessions) > 1 else ''}: "
             "BVP.csv and ACC.csv with E4 header rows), read as format: e4 (README: Empatica E4)")
    return sessions


def read_item(p: Path, ctx: dict, **options) -> list:
    """The record of the session whose BVP.csv is `p`, in the E4 export `ctx["root"]` (`list_items`)."""
    from sqtool.data.dataset_reader import read_unit
    if options:
        given = ", ".join(f"--{k.replace('_', '-')}" for k in options)
        raise SqtoolError(f"{ctx['root']}: an Empatica E4 export: each file's header rows give its start and rate; "
                          f"drop {given}")
    return read_unit(ctx.get("dataset_file") or export_dataset(ctx["root"]), p, ctx)[0]    # read_unit keeps it in ctx
