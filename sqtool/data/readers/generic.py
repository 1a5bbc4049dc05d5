"""Generic single-recording readers: CSV (time column or explicit rate), NPZ, WFDB.

CSV   A header row is optional. The separator (tab, comma, semicolon, whitespace) and the decimal mark (a comma in a
      semicolon- or tab-separated file: European spreadsheet exports) are sniffed from the first lines
      (`csv_head`), past a BOM and '#' comment lines; a separator ending every line leaves no column, and a units
      row under the header (`s,a.u.,g`), or a unit at the end of a column's name (`time [s]`, `acc_x (m/s^2)`:
      `name_unit`), gives the time column's unit and the accelerometer's (to g), the other units kept as labels
      (`Record.meta["units"]`; `read_table`); the column is named, and found, by its name without the unit (square
      brackets hold any unit, parentheses only one sqtool knows: `ppg (green)` keeps its name). The sampling rate
      comes from a time column (named time/timestamp/timer/datetime/t, numbers in s or ms, or date-time strings; ISO
      times whose UTC offset changes along the file, as across a daylight-saving change, are read as instants) or
      from `fs=`; when both exist they must agree within 1 % (RATE_TOL, as in a dataset.yaml; else "wrong sampling
      rate"); when neither exists the read is refused. Rows missing from the time column's clock (a drop-out: a
      jump of whole periods) are NaN samples, a gap (`_common.time_grid`, one warning line); a jump of no whole
      periods is refused. Every other numeric column becomes a channel, with common names mapped to the canonical
      ones (PLETH/BVP -> ppg, RED/IR -> ppg_red/ppg_ir, accx -> acc_x, ...); `channels={"csv column": "channel"}`
      (the column as written, or without its unit) picks and renames columns explicitly. A header-less single
      column is "ppg"; a file whose only PPG is one wavelength ("PPG Green", ppg_ir) with no plain ppg reads that
      column as its ppg (`Record.meta["ppg_from"]`, named by `data inspect`); with several wavelengths the choice is
      the user's (a dataset.yaml's channels).
NPZ   1-D arrays by channel name plus `fs` (scalar, all channels) or `fs_<channel>`; or a 2-D `signals`
      (C, N) with a `channels` name array; a 2-D `acc` (N, 3), or (3, N), is acc_x, acc_y, acc_z (its rate `fs_acc`
      or `fs`; `_common.read_npz_channels`). Channels must span the same time within one sample of the slower
      (`Record.check_spans(slack=1)`; a shorter one is one line, never cut to). Any other member is not read, and
      named in Record.meta["unread_arrays"] (`data inspect`'s note). Optional `subject`, `record_id`, `dataset`
      strings, and `start_time` (the first sample's wall-clock time: ISO 8601 text, or seconds since 1970 UTC). Only those
      members are read, one at a time, and all members together may inflate to 2 GiB (`_common.MAX_NPZ_BYTES`,
      checked before inflating: a zip bomb is one line).
Both keep the first sample's wall-clock time, when the file has one, as `Record.meta["start_time"]` (ISO 8601:
the input's UTC offset, 'Z' for epoch numbers, none for naive local times; `read_times`); predict writes
each window's time from it.
WFDB  Through the `wfdb` package: <record>.hea + its signal file; channels by signal name (PLETH -> ppg,
      RESP -> resp, lead II -> ecg, other leads -> ecg_<lead>); annotation files next to the header
      (.atr, .breath, .qrs, .ann, ...) become kind "events" labels named by their extension. The header's
      sampling-rate field must be a plain positive number (`check_header_rate`: wfdb reads `abc` as 250 Hz).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, check_fs
from sqtool.data.readers._common import (drop_repeated_rows, first_line, numeric_column, read_csv as _read_csv,
                                         time_grid)
from sqtool.data.readers._common import (RATE_TOL, TIME_SPELLINGS, TIME_UNITS, every_kth_row, is_npz_rate,
                                         npz_rates, read_npz_channels, refuse_matrix_members, require_file,
                                         rows_per_sample)
from sqtool.data.record import PPG_WAVELENGTHS, Label, Record

_CSV_EXT = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
_ANN_EXT = ("atr", "breath", "qrs", "ann", "ecg", "beat", "resp", "ppg")
TIME_NAMES = ("time", "timestamp", "timer", "datetime", "t", "time_s", "time_ms", "timestamp_ms", "date")
ALIASES = {
    "ppg": "ppg", "pleth": "ppg", "bvp": "ppg", "ppg1": "ppg", "ppg0": "ppg", "pulse_wave": "ppg",
    "ppg2": "ppg2", "red": "ppg_red", "red_adc": "ppg_red", "ppg_red": "ppg_red", "ir": "ppg_ir",
    "ir_adc": "ppg_ir", "ppg_ir": "ppg_ir", "green": "ppg_green", "ppg_green": "ppg_green",
    "accx": "acc_x", "acc_x": "acc_x", "ax": "acc_x", "accy": "acc_y", "acc_y": "acc_y", "ay": "acc_y",
    "accz": "acc_z", "acc_z": "acc_z", "az": "acc_z", "ecg": "ecg", "ii": "ecg", "resp": "resp",
    **{f"{w}{a}": f"acc_{a}" for w in ("accel", "accelerometer", "acceleration") for a in "xyz"},  # accel_x, ...
}


def _is_csv(p: Path) -> bool:
    return p.name.lower().endswith(_CSV_EXT)


def detect(path: Path, files: list[Path]) -> str | None:
    """The generic format of a folder's (or a file's) recordings; a folder holding both CSV and NPZ recordings is
    one line (each format would be read alone, the other's files dropped), naming both counts."""
    exts = [p.name.lower() for p in files]
    if any(e.endswith(".hea") for e in exts):
        return "wfdb"
    n_npz, n_csv = sum(e.endswith(".npz") for e in exts), sum(map(_is_csv, files))
    if n_npz and n_csv:
        raise SqtoolError(f"{path}: holds {n_csv} CSV and {n_npz} NPZ recordings, and a folder without a dataset.yaml "
                          "is read in one format (the other's files would be dropped): give each format a sub-folder "
                          "with its own dataset.yaml (the folder above them is then a data root: both are read), or "
                          "keep one format here (data inspect / data quality: or --kind csv / npz)")
    if n_npz:
        return "npz"
    if any(_is_csv(p) for p in files):
        return "csv"
    if path.is_file() and path.suffix.lower() in (".dat", ".txt") and path.with_suffix(".hea").is_file():
        return "wfdb"
    return None


def list_items(kind: str, files: list[Path]) -> list[Path]:
    if kind == "csv":
        return [p for p in files if _is_csv(p)]
    if kind == "npz":
        return [p for p in files if p.suffix.lower() == ".npz"]
    if kind == "wfdb":
        heads = [p for p in files if p.suffix.lower() == ".hea"]
        if not heads and len(files) == 1 and files[0].with_suffix(".hea").is_file():
            heads = [files[0].with_suffix(".hea")]
        return heads
    raise SqtoolError(f"unknown generic kind '{kind}'")


def read_item(kind: str, p: Path, **options) -> list[Record]:
    fn = {"csv": read_csv, "npz": read_npz, "wfdb": read_wfdb}[kind]
    return [fn(p, **options)]


def _ppg_first(signals: dict) -> dict:
    """The channels reordered so PPG channels come first (stable otherwise)."""
    return dict(sorted(signals.items(), key=lambda kv: not kv[0].startswith("ppg")))


def _lone_wavelength(names) -> str | None:
    """The one PPG wavelength channel (ppg_green, ppg_red or ppg_ir) of a file with no plain `ppg`, as a watch's
    export names its only optical channel ("PPG Green"): read as the file's ppg. None when the file has a ppg, or
    no or several wavelengths (which one a model reads is then the user's choice, in a dataset.yaml)."""
    waves = [n for n in names if n in PPG_WAVELENGTHS]
    return waves[0] if len(waves) == 1 and "ppg" not in names else None


def _check_fs(fs, where: str) -> float:
    return check_fs(fs, where)                 # the bounds live in core (0 < fs <= FS_MAX_HZ)


def canonical(name: str) -> str:
    """CSV/WFDB column name -> canonical channel name (unknown names: lower-case, non-alnum -> _)."""
    key = re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")
    return ALIASES.get(key, ALIASES.get(key.replace("_", ""), key or "ch"))


# ----------------------------------------------------------------------------- CSV

def is_number(t: str, decimal: str = ".") -> bool:
    """Whether a CSV field is a number (with `decimal`'s mark)."""
    try:
        float(t.replace(",", ".") if decimal == "," else t)
        return True
    except ValueError:
        return False


def csv_layout(p: Path) -> tuple[dict, bool, int | None]:
    """(pandas.read_csv keywords, whether the file has a header row, the 0-based line of a units row or None) from
    its first lines (`csv_head`): its '#' comment lines before the first row are skipped (`skiprows`), however many;
    a header written as the last of them names the columns (`CsvHead.commented`). `index_col=False`: a separator
    ending every data line, as logger and spreadsheet exports write, is no extra column that shifts the others."""
    import gzip

    opener = gzip.open if p.name.lower().endswith(".gz") else open
    try:
        with opener(p, "rt", encoding="utf-8-sig", errors="replace") as f:
            head = csv_head(iter(f.readline, ""))     # however long the preamble: no further than the third row
    except (OSError, EOFError) as e:
        raise SqtoolError(f"{p}: corrupt or unreadable CSV ({first_line(e)})")
    if head is None:
        raise SqtoolError(f"{p}: CSV has no data rows")
    if head.commented:                                  # `# time,ppg` above rows of numbers: their header
        return {**head.kw, "header": None, "names": head.commented, "skiprows": head.comments, "index_col": False}, \
            True, None
    return {**head.kw, "skiprows": head.comments, "index_col": False}, head.header, head.units_at


@dataclass(frozen=True)
class CsvHead:
    """A CSV's first lines as `csv_head` reads them (line numbers 0-based, as pandas' skiprows counts them)."""
    kw: dict                        # `sniff_csv`'s: sep, header, decimal[, engine]
    header: bool                    # whether the first row is a header (not all numbers)
    rows: list[tuple[int, str]]     # (line, text stripped) of the first rows past the comments and blank lines (<= 3)
    comments: list[int]             # the '#' comment lines before the first row
    units_at: int | None            # the units row's line (rows[1]'s), or None
    commented: list[str] | None = None   # the names of a header written as the last comment line right above a first
    #                                      row of numbers (`# time,ppg`: numpy.savetxt's header=), else None

    @property
    def data_at(self) -> int:
        """The line the data start at: the one after the header (and its units row), or the first row."""
        return (self.units_at if self.units_at is not None else self.rows[0][0]) + (1 if self.header else 0)


def csv_head(lines) -> CsvHead | None:
    """The layout of a CSV from its first lines (`lines`: an iterable of text lines, read no further than the third
    row: a file's, or `predict --data -`'s stdin as it arrives), None where it holds no row. A UTF-8 byte order mark
    and '#' comment lines before the first row (a logger's preamble: device, firmware, start time) are skipped, as
    are blank lines. The separator is a tab, else a semicolon (where the first two rows hold as many), else a comma,
    else whitespace; the decimal mark is a comma where a field of a semicolon- or tab-separated data line held (a
    first row of whole numbers hides none) is a number written so (`-17,64`: European spreadsheet exports), else a
    point. A header row is a first row not all numbers;
    a units row is the row right under it when none of its fields is a number, a date-time or a missing value (NA:
    a first row of gaps), as in `s,a.u.` or `ms,counts,g,g,g`, and the row after holds a number."""
    rows: list[tuple[int, str]] = []
    comments: list[int] = []
    last_comment = ""
    for i, line in enumerate(lines):
        line = line.lstrip("\ufeff") if i == 0 else line
        if not rows and line.lstrip().startswith("#"):
            comments.append(i)
            last_comment = line
        elif line.strip():
            rows.append((i, line.strip()))
            if len(rows) == 3:
                break
    if not rows:
        return None
    kw, header = sniff_csv(rows[0][1], *[r for _, r in rows[1:]] or [rows[0][1]])   # every row held: a decimal comma
    commented = None
    if not header and comments and comments[-1] == rows[0][0] - 1:
        commented = _commented_header(last_comment, rows[0][1], kw["sep"])
    units_at = None
    if header and len(rows) == 3 and _units_row(rows[0][1], rows[1][1], rows[2][1], kw):
        units_at = rows[1][0]
        kw = sniff_csv(rows[0][1], rows[2][1])[0]          # the numbers' decimal mark: the row under the units'
    return CsvHead(kw, header, rows, comments, units_at, commented)


def unquoted(field: str) -> str:
    """A CSV field without the spaces and double quotes around it (`"ppg [a.u.]"` -> ppg [a.u.])."""
    return field.strip().strip('"').strip()


_DATE_OR_TIME = re.compile(r"\d\d:\d\d|\d{4}-\d\d-\d\d")      # a date-time cell: a time column's, never a unit
_MISSING = frozenset(("NA", "N/A", "n/a", "#N/A", "#NA", "NULL", "null", "None", "<NA>", "-nan", "-NaN"))   # pandas'
#   default missing-value cells (read as NaN; nan and NaN are numbers): a data row's, never a unit (nA stays one)


def _commented_header(comment: str, row: str, sep: str) -> list[str] | None:
    """The column names of a header written as a comment right above a first row of numbers (`# time,ppg`: what
    numpy.savetxt's header= writes): the comment's fields where they are as many as the row's and one names a time
    column or a channel sqtool knows (`canonical`), else None (a preamble's last line, not a header)."""
    def fields(s: str) -> list[str]:
        return [unquoted(t) for t in re.split(sep, s.strip()) if t.strip()]
    names = fields(comment.lstrip().removeprefix("#"))
    known = set(ALIASES.values())
    if len(names) != len(fields(row)) or not any(
            (b := name_unit(n)[0]).lower() in TIME_NAMES or canonical(b) in known for n in names):
        return None
    return names


def _units_row(head: str, line: str, data: str, kw: dict) -> bool:
    """Whether `line`, the one under header `head` and above data line `data`, is a units row (`csv_layout`)."""
    def fields(s: str) -> list[str]:
        return [unquoted(t) for t in re.split(kw["sep"], s)]
    cells = [t for t in fields(line) if t]
    return (bool(cells) and fields(line) != fields(head) and any(is_number(t, ",") for t in fields(data) if t)
            and not any(is_number(t, ",") or _DATE_OR_TIME.search(t) or t in _MISSING for t in cells))


def sniff_csv(line: str, data: str, *more: str) -> tuple[dict, bool]:
    """`csv_layout`'s keywords from a first line (a header or a row) and a data line (the next non-blank one; the
    first again where there is none) and `more` after it (a decimal comma in any of the lines counts: `0;1` then
    `0,015625;2`): a file's first rows, or `predict --data -`'s header and first rows on stdin."""
    line, data = line.strip(), data.strip()
    semi = ";" in line and line.count(";") == data.count(";")
    sep = "\t" if "\t" in line else ";" if semi else "," if "," in line else ";" if ";" in line else r"\s+"

    def fields(s: str) -> list[str]:
        return [t.strip().strip('"') for t in re.split(sep, s) if t.strip()]
    decimal = "," if sep != "," and any(is_number(t, ",") for d in (line, data, *more) for t in fields(d) if "," in t) \
        else "."
    header = not all(is_number(t, decimal) for t in fields(line))
    kw = {"sep": sep, "header": 0 if header else None, "decimal": decimal,
          **({"engine": "python"} if sep == r"\s+" else {})}
    return kw, header


@dataclass(frozen=True)
class CsvTable:
    """A CSV file read by `read_table`: its rows, whether it has a header row, and its units row."""
    df: "pd.DataFrame"
    header: bool
    units: dict[str, str]           # {column: unit as written} of a units row under the header, or at the end of
    #                                 the column's name (`name_unit`: `time [s]`); {} without either


def read_table(p: Path, sep: str | None = None) -> CsvTable:
    """A CSV recording's (or stream file's) rows in the layout `csv_layout` finds (`sep`: the caller's separator
    over the sniffed one), its units row apart (with the units written in the header's names: where a column has
    both, they must agree, else one line), and without the empty columns a separator ending every line
    leaves at the end (unnamed, every cell empty: no channel; a named column all empty stays one, and is refused
    as a channel with no sample)."""
    kw, header, units_at = csv_layout(p)
    if sep:
        kw.pop("engine", None)
        kw.update(sep=sep, **({"engine": "python"} if sep == r"\s+" else {}))
    skip = kw.pop("skiprows")
    df = _read_csv(p, skip_blank_lines=True, skiprows=skip + [units_at] * (units_at is not None), **kw)
    row = {}
    if units_at is not None:                                   # the row as pandas splits it: quotes, separators
        row = _read_csv(p, skiprows=skip, nrows=1, dtype=str, keep_default_na=False, **kw).iloc[0].to_dict()
    units = column_units(df.columns if header else (), row, str(p))
    empty = 0
    for c in reversed(df.columns):
        if (not header or re.fullmatch(r"Unnamed: \d+|\s*", str(c))) and df[c].isna().all():
            empty += 1
        else:
            break
    return CsvTable(df.iloc[:, :df.shape[1] - empty] if df.shape[1] > empty else df, header, units)


def column_units(columns, row: dict, where: str) -> dict[str, str]:
    """{column: unit as written} of a CSV's header `columns`: its units row's cells (`row`: {column: cell}, an empty
    cell none) and the units written at the end of its names (`name_unit`: `time [s]`); a column with both whose two
    disagree is one line."""
    units = {str(c).strip(): str(u).strip() for c, u in row.items() if str(u).strip()}
    for c in columns:
        if (u := name_unit(c)[1]) is None:
            continue
        c = str(c).strip()
        if c in units and unit_key(units[c]) != unit_key(u):
            raise SqtoolError(f"{where}: column '{c}': its name says {u} but its units row says {units[c]}; make them "
                              "agree (or remove one)")
        units.setdefault(c, u)
    return units


def unit_text(unit: str) -> str:
    """A units-row cell as a key of the unit tables: no brackets or parentheses around it, lower case."""
    return re.sub(r"^[\[(](.*)[\])]$", r"\1", unit.strip()).strip().lower()


def unit_key(unit: str) -> str:
    """A unit as written, spelled one way: its TIME_UNITS or ACC_UNITS key (sec -> s, m/s2 -> m/s^2), else its
    `unit_text` (two cells naming one unit agree however each is written)."""
    t = unit_text(unit)
    return TIME_SPELLINGS.get(t) or acc_unit_of(unit) or t


PER_MINUTE = ("1/min", "/min", "min^-1", "min-1", "per min", "per minute")
LABEL_SPELLINGS = {"bpm": frozenset(("bpm", "beats/min", "beat/min", "beats per minute", *PER_MINUTE)),
                   "breaths/min": frozenset(("breaths/min", "breath/min", "br/min", "brpm", "bpm", "rpm",
                                             "breaths per minute", *PER_MINUTE))}   # hr's, rr's units as written
LABEL_UNITS = frozenset((    # units a sensor column's name ends with in parentheses, kept as its label (lower case)
    "a.u.", "au", "arb. units", "arb.u.", "counts", "count", "adc", "lsb", "v", "mv", "uv", "µv", "μv", "na", "ua",
    "µa", "μa", "%", "mmhg", "°c", "degc", "deg/s", "dps", "rad/s")).union(*LABEL_SPELLINGS.values())
#   (a label file's `hr (bpm)`, `rr (br/min)` too: every spelling of LABEL_SPELLINGS)
_NAME_UNIT = re.compile(r"(?P<name>.*?\S)\s*(?:\[(?P<bracket>[^\[\]]*)\]|\((?P<paren>[^()]*)\))")


def name_unit(column) -> tuple[str, str | None]:
    """(a header's column name without the unit written at its end, that unit or None): `time [s]`, `Time[ms]`,
    `acc_x (m/s^2)` -> (time, s), (Time, ms), (acc_x, m/s^2). Square brackets at the end hold a unit, whatever is
    in them (`quantity [unit]`, as lab and device exports write it); parentheses hold one only when it is a unit
    sqtool knows (a time unit, an accelerometer unit, or one of LABEL_UNITS: a.u., counts, mV, ...), so
    `ppg (green)` or `acc_x (wrist)` stays the column's whole name (read as ppg_green, acc_x_wrist)."""
    name = str(column).strip()
    m = _NAME_UNIT.fullmatch(name)
    unit = m and (m["bracket"] if m["bracket"] is not None else m["paren"]).strip()
    if not unit or (m["paren"] is not None and not (unit_text(unit) in TIME_SPELLINGS or acc_unit_of(unit)
                                                    or unit_text(unit) in LABEL_UNITS)):
        return name, None
    return m["name"], unit


def column_named(columns, name: str, where: str, what: str, ignore_case: bool = False) -> str | None:
    """The column among `columns` (as the header writes them) that `name` names: that column, else the one whose
    name without its unit is `name` (`ppg` names `ppg [a.u.]`: `name_unit`); None where none. Two such columns
    (`ppg [a.u.]`, `ppg [mV]`): one line naming them. `ignore_case`: `Start [s]` named by start (a label file's)."""
    if name in columns:
        return name
    key = str.lower if ignore_case else str
    if ignore_case and (hit := [c for c in columns if key(str(c)) == key(name)]):
        return hit[0]
    same = [str(c) for c in columns if (bare := name_unit(c))[1] is not None and key(bare[0]) == key(name)]
    if len(same) > 1:
        raise SqtoolError(f"{where}: {what}{': ' * bool(what)}column '{name}' names {len(same)} columns once their "
                          f"units are left out ({', '.join(same)}); name the one meant as the header writes it")
    return same[0] if same else None


def unit_from(column: str) -> str:
    """Where a CSV column's unit is written, for a line about it: "its name" (`time [s]`) or "its units row"."""
    return "its name" if name_unit(column)[1] is not None else "its units row"


def unit_hint(column: str, unit: str) -> str:
    """How to write `unit` where `column`'s unit is written (`unit_from`), for a hint."""
    return (f"name it '{name_unit(column)[0]} [{unit}]'" if name_unit(column)[1] is not None
            else f"write {unit} in its units row")


def agreed_unit(row: str | None, said: str | None, where: str, said_as: str, by: str = "its units row") -> str | None:
    """The unit a column is read in: the file's (`row`, a key of the unit table; `by`: where it is written,
    `unit_from`) and `said` (a dataset.yaml's; `said_as`: "dataset.yaml says unit: g"), which must agree where both
    are given (else one line naming both); the one given, else None."""
    if row is not None and said is not None and row != said:
        raise SqtoolError(f"{where}: {by} says {row} but {said_as}; make them agree (or remove one)")
    return row or said


def acc_unit_of(written: str) -> str | None:
    """An accelerometer's units-row cell as its ACC_UNITS key (g, mg, m/s^2, 1/64 g, as a dataset.yaml's `unit:` is
    spelled), or None: a unit sqtool does not convert, kept as the channel's label."""
    from sqtool.data.dataset_file import ACC_SPELLINGS
    return ACC_SPELLINGS.get(unit_text(written))


def acc_to_g(written: str) -> float | None:
    """g per unit of an accelerometer's units-row cell (`acc_unit_of`), or None."""
    from sqtool.data.dataset_file import ACC_UNITS
    unit = acc_unit_of(written)
    return None if unit is None else ACC_UNITS[unit]


CLOCK_WORDS = re.compile(r"\b(?:utc|gmt|unix|epoch|posix|local)\b")   # a time column's clock (lower case), no unit


def time_unit_of(table: CsvTable, col: str, said: str | None, where: str, said_as: str) -> str | None:
    """The unit time column `col` of `table` is read in (`agreed_unit`): its units-row cell or the unit its name ends
    with (`name_unit`), spelled as a TIME_SPELLINGS key (s, ms, us, seconds, ...), and `said` (a dataset.yaml's
    time_unit, or None). A unit that names no time unit is one line over a column of numbers (no scale to read them
    by, unless `said`), and a label over date-times; None: neither says one (`read_times` goes by the column's name
    and size). Words naming the clock, not the unit (CLOCK_WORDS: `Time [UTC]`, `timestamp [epoch ms]`), are left out:
    the clock alone says no unit."""
    written = table.units.get(col)
    text = None if written is None else " ".join(CLOCK_WORDS.sub(" ", unit_text(written)).split())
    if not text:
        return said
    unit = TIME_SPELLINGS.get(text)
    if unit is None and said is None and table.df[col].dtype.kind in "iuf":
        raise SqtoolError(f"{where}: time column '{col}': {unit_from(col)} says {written!r}, no time unit sqtool "
                          f"reads ({', '.join(TIME_UNITS)}); write one of them there")
    return agreed_unit(unit, said, f"{where}: time column '{col}'", said_as, unit_from(col))


_OFFSET = r"\d\d:\d\d.*(?:Z|[+-]\d\d(?::?\d\d)?)$"          # a clock time ending in Z or a UTC offset


def _datetimes(col, name: str, where: str):
    """Date-time strings as pandas date-times. Times with UTC offsets that differ along the column (a file crossing
    a daylight-saving change: +01:00 then +02:00) are instants, read in UTC; times without an offset stay as
    written; a column mixing the two is one line (a naive time has no instant to put beside the others)."""
    import pandas as pd

    try:
        return pd.to_datetime(col, format="mixed")
    except (ValueError, TypeError) as e:
        if "mixed timezones" not in str(e).lower():
            raise SqtoolError(f"{where}: time column '{name}' is neither numbers nor date-times ({first_line(e)})")
    naive = ~col.astype(str).str.strip().str.contains(_OFFSET, regex=True)
    if naive.any():
        raise SqtoolError(f"{where}: time column '{name}' mixes date-times with and without a UTC offset (row "
                          f"{int(np.argmax(naive.to_numpy())) + 1} has none); give every row its offset")
    try:
        return pd.to_datetime(col, format="mixed", utc=True)          # several offsets: instants, in UTC
    except (ValueError, TypeError) as e:
        raise SqtoolError(f"{where}: time column '{name}' is neither numbers nor date-times ({first_line(e)})")


EPOCH_S = (1e9, 4.1e9)         # numbers this many s after 1970-01-01 UTC (2001-09 .. 2099) are wall-clock times


def iso_time(ts) -> str:
    """A pandas Timestamp as ISO 8601 to the millisecond: its UTC offset as it has it ('Z' for UTC), none when
    it has none (a naive local time stays one)."""
    s = ts.isoformat(timespec="milliseconds")
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def read_times(col, name: str, where: str, unit: str | None = None) -> tuple[np.ndarray, str | None]:
    """(the time column as seconds from its first value, that first value as an ISO 8601 time or None). Date-time
    strings: the first as written (its UTC offset; none when the column has none); numbers in s/ms/us since
    1970 (`EPOCH_S`): UTC, 'Z'; other numbers (seconds from a start, a device's timer): None, no wall clock."""
    import pandas as pd

    if col.dtype == object or str(col.dtype).startswith(("str", "string")):
        try:
            dt = _datetimes(col, name, where)
        except SqtoolError:
            num = pd.to_numeric(col, errors="coerce")
            if 2 * int(num.notna().sum()) <= len(col):
                raise
            i = int(np.argmax((num.isna() & col.notna()).to_numpy()))     # numbers with a few text cells: the first
            again = str(col.iloc[i]).strip() == str(name)
            raise SqtoolError(f"{where}: time column '{name}' row {i + 1} is not a number ({col.iloc[i]!r})"
                              + ("; the header again: files joined one after the other? split the file there"
                                 if again else "; remove the row")) from None
        if dt.isna().any():
            raise SqtoolError(f"{where}: time column '{name}' has empty or invalid date-times")
        first = pd.to_datetime(col.iloc[:1], format="mixed").iloc[0]        # with its own offset, if any
        return (dt - dt.iloc[0]).dt.total_seconds().to_numpy(dtype=np.float64), iso_time(first)
    t = col.to_numpy(dtype=np.float64)
    low = str(name).lower()
    if unit is None:
        if "ms" in low or low == "timer" or (np.nanmedian(np.abs(t)) > 1e11):
            unit = "ms"
        elif "us" in low:
            unit = "us"
        else:
            unit = "s"
    scale = TIME_UNITS.get(unit)
    if scale is None:
        raise SqtoolError(f"{where}: time unit must be s, ms or us, got {unit!r}")
    t0 = float(t[0]) * scale
    start = (iso_time(pd.Timestamp(round(t0 * 1e6), unit="us", tz="UTC"))
             if np.isfinite(t0) and EPOCH_S[0] <= t0 <= EPOCH_S[1] else None)
    return (t - t[0]) * scale, start


def times_in_seconds(col, name: str, where: str, unit: str | None = None) -> np.ndarray:
    """A time column as seconds from its first value (numbers in s/ms/us, or date-time strings): `read_times`'s."""
    return read_times(col, name, where, unit)[0]


def read_csv(path, fs: float | None = None, time_column: str | None = None, time_unit: str | None = None,
             channels: dict[str, str] | None = None, sep: str | None = None, subject: str | None = None,
             record_id: str | None = None, dataset: str = "csv", acc_fs: float | None = None) -> Record:
    """One CSV recording (module docstring). acc_fs: its accelerometer columns (acc_x, acc_y, acc_z) hold a slower
    stream, one value every k-th row of the file's rate, blank between (`acc_rows`; predict --acc-fs)."""
    p = require_file(path)
    where = str(p)
    table = read_table(p, sep)
    df, header = table.df, table.header
    if not header:
        from sqtool.data.readers.e4 import refuse_e4_rows
        refuse_e4_rows(df, where)
        df.columns = ["ppg"] if df.shape[1] == 1 else ["ppg", *[f"ch{i}" for i in range(1, df.shape[1])]]
    df.columns = [str(c).strip() for c in df.columns]

    tcol = time_column and column_named(df.columns, time_column, where, "time_column")
    if time_column is not None and tcol is None:
        raise SqtoolError(f"{where}: time column '{time_column}' missing (has {', '.join(df.columns)})")
    if tcol is None:                                       # its name, without a unit written in it (`time [s]`)
        tcol = next((c for c in df.columns if (b := name_unit(c)[0].lower()) in TIME_NAMES
                     or re.match(r"^time\b|^time[_ (]", b)), None)
    if fs is not None:
        fs = _check_fs(fs, where)
    grid, start = None, None
    if tcol is not None:
        unit = time_unit_of(table, tcol, time_unit, where, f"time_unit={time_unit} was given")
        t, start = read_times(df[tcol], tcol, where, unit)
        df, t = drop_repeated_rows(df, t, where)
        numbers = df[tcol].dtype.kind in "iuf"
        grid = time_grid(t, f"{where}: column '{tcol}'", ms_hint=None if not numbers else unit_hint(tcol, "ms")
                         if tcol in table.units else "rename the column time_ms (or read the file through a "
                         "dataset.yaml with time_unit: ms)" if unit is None else None, start=start)
        fs_t = grid.fs
        if fs is not None and abs(fs_t - fs) > RATE_TOL * fs:
            raise SqtoolError(f"{where}: time column '{tcol}' gives {fs_t:.3g} Hz but fs={fs:g} was given; "
                              f"wrong sampling rate")
        fs = fs or fs_t
    rises = False                                          # columns by position only: the time may be one of them
    if not header and df.shape[1] > 1:
        import pandas as pd
        rises = bool(np.all(np.diff(pd.to_numeric(df.iloc[:, 0], errors="coerce").to_numpy(np.float64)) > 0))
    if not header and df.shape[1] > 1 and (fs is None or rises):   # given fs, a rising first column was the PPG
        raise SqtoolError(f"{where}: " + ("no sampling rate: " if fs is None else "") + "the file has no header row, "
                          f"so its {df.shape[1]} columns have no names and no time column is known"
                          + (" (the first rises like a time column" + (", and would be read as the PPG)" if fs else ")")
                             if rises else "") + "; write a first row naming them "
                          "(e.g. time,ppg,acc_x,acc_y,acc_z), or a dataset.yaml beside it naming them by 0-based "
                          "position (time_column: 0 or fs:, channels: {ppg: 1, acc_x: 2, ...})")
    if fs is None:
        raise SqtoolError(f"{where}: no sampling rate (no time column): give it as fs: in a dataset.yaml beside the "
                          "recordings (`sqtool data inspect --data FILE --fs HZ` tries a rate)")

    if channels:                                           # a column as written, or its name without its unit
        found = {c: column_named(df.columns, c, where, f"channel '{ch}'") for c, ch in channels.items()}
        miss = [c for c, col in found.items() if col is None]
        if miss:
            raise SqtoolError(f"{where}: channel column(s) {', '.join(miss)} missing "
                              f"(has {', '.join(df.columns)})")
        pick, ppg_from = {found[c]: ch for c, ch in channels.items()}, None
    else:
        pick, ppg_from = {}, None
        for c in df.columns:
            if c == tcol:
                continue
            ch = canonical(name_unit(c)[0])                # `ppg [a.u.]` -> ppg, `ACC X [mg]` -> acc_x
            while ch in pick.values():
                ch += "_"
            pick[c] = ch
        if wave := _lone_wavelength(pick.values()):
            ppg_from = next(c for c, ch in pick.items() if ch == wave)
            pick[ppg_from] = "ppg"
    signals, units = {}, {}
    for col, ch in pick.items():
        x = numeric_column(df, col, where)
        if (u := table.units.get(col)) is not None:                  # its units row or name: acc to g, else a label
            units[ch] = u
            if ch.startswith("acc") and (k := acc_to_g(u)) is not None:
                x = x * k
        signals[ch] = grid.spread(x) if grid is not None else x      # rows missing from the clock: NaN samples
    if not signals:
        raise SqtoolError(f"{where}: no signal columns besides the time column")
    rates = {c: fs for c in signals}
    if acc_fs is not None:
        rates.update(acc_rows(signals, fs, acc_fs, where))
    # PPG first so Record.primary_channel() is the PPG a user expects
    signals = _ppg_first(signals)
    name = p.name.split(".")[0]
    return Record(dataset=dataset, subject=subject or name, record_id=record_id or name, signals=signals,
                  fs={c: rates[c] for c in signals}, meta={"time_column": tcol, "columns": list(df.columns),
                                                     **({"start_time": start} if start else {}),
                                                     **({"ppg_from": ppg_from} if ppg_from else {}),
                                                     **({"units": units} if units else {})},
                  source=where)


def acc_rows(signals: dict, fs: float, acc_fs: float, where: str) -> dict[str, float]:
    """A CSV's accelerometer at acc_fs, one value every k = fs / acc_fs rows of its fs (k whole, as a dataset.yaml's
    `acc_x: {column: acc_x, fs: 32}` reads a 32 Hz accelerometer in a 64 Hz file): its columns cut to those rows
    (`every_kth_row`) in `signals`; returns {channel: acc_fs}. No accelerometer column, a rate above the rows', one
    that is not the rows' divided by a whole number, or a column holding values between its rows: one line."""
    flag = f"--acc-fs {acc_fs:g}"
    axes = [c for c in signals if c.startswith("acc_")]
    if not axes:
        raise SqtoolError(f"{where}: {flag}: the file has no accelerometer column (acc_x, acc_y, acc_z; has "
                          f"{', '.join(signals)})")
    if acc_fs > fs * (1 + RATE_TOL):
        raise SqtoolError(f"{where}: {flag} Hz is above the file's {fs:g} Hz rows: a CSV holds a slower "
                          "accelerometer in every k-th row, never a faster one (give its columns at the rows' rate)")
    k = rows_per_sample(acc_fs, fs)
    if k == 1 and abs(acc_fs - fs) > RATE_TOL * fs:
        raise SqtoolError(f"{where}: {flag} Hz is not the file's {fs:g} Hz rows divided by a whole number (x"
                          f"{fs / acc_fs:.4g}): a slower accelerometer fills one row in every k")
    for c in axes if k > 1 else ():
        signals[c] = every_kth_row(signals[c], k, fs, f"{where}: {flag} Hz (column {c})", "leave --acc-fs out")
    return {c: float(acc_fs) if k > 1 else fs for c in axes}


# ----------------------------------------------------------------------------- NPZ

_NPZ_KEYS = ("fs", "signals", "channels", "subject", "record_id", "dataset", "start_time")


def read_npz(path, fs: float | None = None) -> Record:
    p = require_file(path)
    where = str(p)
    data, unread = read_npz_channels(p, lambda name: name in _NPZ_KEYS or is_npz_rate(name))
    meta = {k: str(data.pop(k)) for k in ("subject", "record_id", "dataset") if k in data}
    start = npz_start_time(data.pop("start_time"), where) if "start_time" in data else None
    stored = {k: data.pop(k) for k in list(data) if is_npz_rate(k)}
    npz_signals(data, where)
    refuse_matrix_members(unread, npz_sensor, where)
    arrays = {k: v for k, v in data.items() if v.ndim == 1 and np.issubdtype(v.dtype, np.number)}  # the channels
    unread += [f"{k} {v.shape}" for k, v in data.items() if k not in arrays]       # text, scalars: no channel
    rates = npz_rates(stored, arrays, lambda k, key: f"{where}: channel '{k}'", default=fs)
    signals, fsd = {}, {}
    named, ppg_from = npz_channel_names(arrays, where, unread)
    for ch, k in named.items():
        signals[ch] = np.asarray(arrays[k], dtype=np.float64)     # already float64: the array read, not a copy
        if k not in rates:
            raise SqtoolError(f"{where}: no sampling rate for channel '{k}' (store 'fs' or 'fs_{k}', or pass fs)")
        fsd[ch] = rates[k]
        if fs is not None and abs(fsd[ch] - fs) > RATE_TOL * fs:
            raise SqtoolError(f"{where}: file says {fsd[ch]:g} Hz for '{k}' but fs={fs:g} was given; "
                              f"wrong sampling rate")
    signals = _ppg_first(signals)
    name = p.stem
    meta_out = {**({"start_time": start} if start else {}), **({"unread_arrays": unread} if unread else {}),
                **({"ppg_from": ppg_from} if ppg_from else {})}
    return Record(dataset=meta.get("dataset", "npz"), subject=meta.get("subject", name),
                  record_id=meta.get("record_id", name), signals=signals, fs={c: fsd[c] for c in signals},
                  meta=meta_out, source=where).check_spans(slack=1)   # a channel's lost tail: one line, not a cut


def npz_signals(data: dict, where: str) -> None:
    """An NPZ's (C, N) `signals` member with its C names in `channels` (else ch0, ch1, ...) as one 1-D member per
    name, in `data` (its members) in place; one line when they do not fit."""
    if "signals" not in data:
        return
    x = np.asarray(data.pop("signals"))
    names = [str(c) for c in data.pop("channels", np.array([f"ch{i}" for i in range(len(x))]))]
    if x.ndim != 2 or len(names) != x.shape[0]:
        raise SqtoolError(f"{where}: 'signals' must be (C, N) with C names in 'channels'")
    data.update({n: x[i] for i, n in enumerate(names)})


def npz_sensor(name: str) -> bool:
    """Whether an NPZ member's name is a PPG or accelerometer channel's: stored as a matrix, it is refused
    (`refuse_matrix_members`), not left unread as a channel missing."""
    return re.fullmatch(r"ppg\w*|acc(_[xyz])?", canonical(name)) is not None


def npz_channel_names(arrays, where: str, unread=()) -> tuple[dict[str, str], str | None]:
    """({channel: member} of an NPZ's 1-D numeric members `arrays` (names), each channel named by `canonical`
    (PLETH -> ppg, accx -> acc_x), a lone PPG wavelength without a plain ppg as ppg (`_lone_wavelength`); that
    member or None). No member: one line naming the members not read (`unread`). read_npz's channels, and a
    dataset file's of NPZ recordings that names none (`channels:` left out)."""
    arrays = list(arrays)
    if not arrays:
        raise SqtoolError(f"{where}: no 1-D numeric signal arrays in the .npz" +
                          (f" (not read: {', '.join(unread)})" if unread else ""))
    wave = _lone_wavelength([canonical(k) for k in arrays])
    ppg_from = next((k for k in arrays if canonical(k) == wave), None)
    return {("ppg" if k == ppg_from else canonical(k)): k for k in arrays}, ppg_from


def npz_start_time(v, where: str) -> str:
    """An NPZ's `start_time` (ISO 8601 text, or seconds since 1970 UTC) as `iso_time`, or one line."""
    import pandas as pd

    v = np.asarray(v)
    try:
        if v.dtype.kind in "iuf" and v.size == 1:
            return iso_time(pd.Timestamp(round(float(v) * 1e6), unit="us", tz="UTC"))
        return iso_time(pd.Timestamp(str(v.item())))
    except (ValueError, TypeError, OverflowError) as e:
        raise SqtoolError(f"{where}: start_time {v!s} is neither an ISO 8601 time nor seconds since 1970 "
                          f"({first_line(e)})") from None


def edf_start_unknown(path) -> bool:
    """An EDF whose recording field (header bytes 88-168) says 'Startdate' and then no dd-MMM-yyyy date: EDF+'s
    'Startdate X', the start date not known (wfdb's converter writes 'Startdate not recorded'); its start date and
    time fields then hold a placeholder (01.01.85 00.00.00), not the recording's start. A plain EDF's free-text
    field, not starting 'Startdate', keeps its date."""
    with open(path, "rb") as f:
        words = f.read(168)[88:].decode("ascii", "replace").split()
    return bool(words) and words[0] == "Startdate" and not (
        len(words) > 1 and re.fullmatch(r"\d{2}-[A-Za-z]{3}-\d{4}", words[1]))


def header_start_time(rec) -> str | None:
    """A WFDB / EDF record's base date and time (its header's, naive local time) as `iso_time`, or None without
    both."""
    if getattr(rec, "base_date", None) is None or getattr(rec, "base_time", None) is None:
        return None
    import datetime

    import pandas as pd
    return iso_time(pd.Timestamp(datetime.datetime.combine(rec.base_date, rec.base_time)))


# ----------------------------------------------------------------------------- WFDB

_LEADS = ("II", "I", "III", "V", "AVR", "AVL", "AVF", "MCL", "V1", "V2", "V3", "V4", "V5", "V6", "ECG")
_WFDB_NAMES = {"PLETH": "ppg", "PPG": "ppg", "RESP": "resp", "ABP": "abp", "ART": "art", "CVP": "cvp"}


def wfdb_channel_names(names: list[str]) -> list[str]:
    ups = [n.strip().upper().rstrip(",") for n in names]
    leads = [u for u in ups if u in _LEADS]
    main = "II" if "II" in leads else (leads[0] if leads else None)
    out = []
    for u in ups:
        if u in _WFDB_NAMES:
            ch = _WFDB_NAMES[u]
        elif u in _LEADS:
            ch = "ecg" if u == main else f"ecg_{u.lower()}"
        else:
            ch = canonical(u)
        while ch in out:
            ch += "_"
        out.append(ch)
    return out


def check_header_rate(hea: Path, fs) -> None:
    """Refuse a WFDB header whose sampling-rate field is not the plain number the wfdb package read as `fs`.
    The record line (the first line not blank and not a '#' comment) is `name[/segments] signals
    [rate[/counter rate[(base counter)]] [samples [base time [base date]]]]`; wfdb's pattern takes `abc`, `nan`,
    `inf` or `-125` for a missing rate (its 250 Hz default) and the leading digits of `1e9`, `12five` or
    `6.4e1` (1, 12, 6.4 Hz), so the field is parsed here: a finite positive number equal to `fs`, else one line.
    A record line without the field keeps WFDB's documented default, 250 Hz."""
    try:
        text = hea.read_text(encoding="ascii", errors="replace")
    except OSError as e:
        raise SqtoolError(f"{hea}: unreadable WFDB header ({first_line(e)})")
    line = next((s for raw in text.splitlines() if (s := raw.strip()) and not s.startswith("#")), "")
    tokens = line.split()
    if len(tokens) < 3:
        return
    field = tokens[2]
    token = re.split(r"[/(]", field, maxsplit=1)[0]
    try:
        rate = float(token)
    except ValueError:
        raise SqtoolError(f"{hea}: sampling rate field {field!r} is not a number") from None
    if not (np.isfinite(rate) and rate > 0):
        raise SqtoolError(f"{hea}: sampling rate field {field!r} is not a finite positive number")
    if not np.isclose(rate, float(fs), rtol=1e-9, atol=0.0):
        raise SqtoolError(f"{hea}: sampling rate field {field!r} is read as {float(fs):g} Hz by the wfdb package, "
                          f"not {rate:g}; write it as a plain decimal number ({rate:g})")


def read_wfdb(path, fs: float | None = None) -> Record:
    """One WFDB record (its .hea names the rate); fs, where given (`data inspect --fs`), must agree with it."""
    import wfdb

    p = Path(path)
    base = p.with_suffix("") if p.suffix.lower() in (".hea", ".dat", ".mat") else p
    hea = base.with_suffix(".hea")
    require_file(hea)
    try:
        rec = wfdb.rdrecord(str(base))
    except FileNotFoundError as e:
        raise SqtoolError(f"{hea}: signal file missing ({first_line(e)})")
    except Exception as e:  # noqa: BLE001 - wfdb raises ValueError/IndexError/struct.error on bad files
        raise SqtoolError(f"{hea}: corrupt or truncated WFDB record ({first_line(e)})")
    if rec.p_signal is None or rec.p_signal.size == 0:
        raise SqtoolError(f"{hea}: WFDB record has no samples")
    if not rec.fs or rec.fs <= 0:
        raise SqtoolError(f"{hea}: header has no valid sampling rate")
    check_header_rate(hea, rec.fs)
    check_fs(rec.fs, f"{hea}: header")
    if fs is not None and abs(rec.fs - fs) > RATE_TOL * fs:
        raise SqtoolError(f"{hea}: header says {rec.fs:g} Hz but fs={fs:g} was given; wrong sampling rate")
    if rec.sig_len and rec.p_signal.shape[0] < rec.sig_len:
        raise SqtoolError(f"{hea}: truncated: {rec.p_signal.shape[0]} of {rec.sig_len} samples")
    sig_name = list(rec.sig_name or [])
    bad = [i + 1 for i, n in enumerate(sig_name) if not isinstance(n, str) or not n.strip()]
    if len(sig_name) != rec.p_signal.shape[1] or bad:
        raise SqtoolError(f"{hea}: corrupt WFDB header: signal {bad[0] if bad else len(sig_name) + 1} has no "
                          "description (channel name), so the PPG channel cannot be told apart")
    names = wfdb_channel_names(sig_name)
    signals = {ch: np.asarray(rec.p_signal[:, i], dtype=np.float64) for i, ch in enumerate(names)}
    signals = _ppg_first(signals)
    fs = float(rec.fs)
    labels = {}
    for ext in _ANN_EXT:
        if base.with_suffix(f".{ext}").is_file():
            try:
                ann = wfdb.rdann(str(base), ext)
            except Exception as e:  # noqa: BLE001
                raise SqtoolError(f"{base}.{ext}: corrupt WFDB annotation file ({first_line(e)})")
            s = np.asarray(ann.sample, dtype=np.float64)
            labels[ext] = Label(values=s, times=s / fs, unit="sample", kind="events")
    start = header_start_time(rec)                  # the header's date and time, as through a dataset.yaml
    return Record(dataset="wfdb", subject=base.name, record_id=base.name, signals=signals,
                  fs={c: fs for c in signals}, labels=labels, meta={"sig_name": list(rec.sig_name),
                                                                     "units": list(rec.units or []),
                                                                     **({"start_time": start} if start else {})},
                  source=str(hea))
