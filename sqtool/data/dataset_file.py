"""`dataset.yaml`: one file that describes a folder of recordings, its channels, subjects, labels and split.

    ds = load_dataset_file("my_watch/dataset.yaml")      # DatasetFile (typed, checked; nothing read yet)
    recs = ds.records(log=print)                          # list[Record]: checked, labels under task names
    for rec in ds.iter_records():                         # the same, one recording in memory at a time
    train, test = ds.split_subjects(recs)                 # subject sets (declared or computed)
    ds.require_label("hr")                                # one line naming the missing label, else nothing

The schema (every key optional unless marked; an unknown key anywhere is refused, naming key and file):

    name: my_watch                # Record.dataset (default: the yaml file's folder name)
    format: csv                   # REQUIRED. csv | npz | wfdb | edf | e4, or a built-in layout (troika,
                                  #   wrist_exercise, bidmc, ppg_bp, ppg_arrhythmia, but_ppg, mw_ppg, unlabeled);
                                  #   e4: Empatica E4 files (readers.e4: row 1 start, row 2 rate, no names; columns
                                  #   by position), each a stream file on the headers' UTC clock; fs / time_column /
                                  #   time_unit refused; channels default E4_CHANNELS (BVP.csv, ACC.csv in 1/64 g)
    root: recordings              # folder of recordings (default "."); relative to THIS FILE's folder,
                                  #   never the cwd; "${data_root}" expands to the data root (shipped files)
    files: "**/*.csv"             # glob under root (default by format)
    fs: 125                       # Hz of every channel, unless a channel gives its own
    time_column: time             # CSV: a time column; a rate given too must agree with it (1 %)
    time_unit: s                  # s | ms | us (default: s)
    channels:                     # generic formats (NPZ: optional, its arrays' names say them): canonical
                                  #   name -> column name or 0-based position,
      ppg: PPG                    #   or {column, fs, gain, offset, unit}: value = raw * gain + offset
      acc_x: {column: 2, gain: 0.000244, unit: g}   # acc_*: raw * gain + offset is in `unit` (ACC_UNITS: g,
                                  #   mg, m/s^2, 1/64 g; default g), converted to g, the unit every model and the
                                  #   classic baseline assume (the built-in readers give g too)
      acc_y: {file: acc.csv, column: y}   # CSV, E4: a stream file of its own (one file per stream and session:
                                  #   session12/ppg.csv + session12/acc.csv), its path from the recording's folder
                                  #   ("{stem}": the recording file's name without extension, "{record}" its
                                  #   record id, "{folder}" its folder from root: S1/BVP, S1; a recording in
                                  #   root itself has none: refused, naming it); its own time
                                  #   column (time_column / time_unit: the top-level ones unless the channel says
                                  #   otherwise) or, lacking that column, the channel's own fs. Streams on one
                                  #   clock (date-times without a time zone beside epoch numbers or date-times
                                  #   with an offset: refused, naming both files; offsets in different zones:
                                  #   instants) are cut to their overlap (the recording starts where every stream has
                                  #   begun and ends where the first ends); without time columns they start
                                  #   together. Each channel keeps its rate; labels count from that start
    subject:                      # one of: a fixed value, a column (constant per file), a filename regex;
                                  #   none: an NPZ's own `subject` member, else the file's name (one name
                                  #   in two folders is refused: P01/walk, P02/walk: give a rule); e4: the
                                  #   session folder's name (S1/BVP.csv -> S1; P01/S1, P02/S1: refused alike)
      pattern: "^(?P<subject>[^_]+)_"     # searched in the path relative to root (group 'subject' or 1)
    conditions:                   # the activity of each window (rest, walk, run, ...: `sqtool bench` scores each
                                  #   apart), record meta, no label; one of: (generic formats; wrist_exercise's
                                  #   reader gives its own from the file names)
      pattern: "_(?P<condition>walk|run|bike)"   # searched in the path relative to root (group 'condition'
                                  #   required); a path it does not match: no condition; matching none: refused
      # table: protocol.csv       # columns recording,condition[,start_s,end_s]: the whole recording's, or timed
                                  #   segments (seconds from its start; segments of different conditions may not
                                  #   overlap); a window is in the segment holding its centre
                                  #   (`record.window_conditions`)
    windows: {window_s: 8, hop_s: 2}      # the label windows of per-window HR / RR (default 8 s / 2 s; each
                                          #   0.1-600 s: a shorter hop made millions of windows, gigabytes)
    labels:
      hr: {column: hr}            # per-window mean of a column; or {file: "hr/{stem}.csv"} ({record},
                                  #   {folder} too, as a stream file's; filled before ".." is resolved; columns
                                  #   start,hr: one row per window start, every hop_s, else refused; starts in
                                  #   seconds from the recording's start, or say {file: ..., time_unit: ms}: the
                                  #   top-level time_unit is the time column's only; rows stamped at their
                                  #   window's end or centre: stamp: end / centre; wall-clock times on the
                                  #   recording's clock: origin: clock; a reference on another device's clock:
                                  #   offset_s: seconds added to its times, after origin, positive when the
                                  #   reference's clock runs behind the recording's (`data inspect` estimates it:
                                  #   data.clocklag); rows then before the first sample are left out, counted,
                                  #   and rows off the window grid by a fraction of hop_s are interpolated to the
                                  #   windows' centres); or {ecg: ecg} (derived, below); or
                                  #   {beats: "strap/{stem}.csv"}: a chest strap's beats (data.strap: one row per
                                  #   beat, R-R intervals in ms (unit: s for seconds) with or without a time
                                  #   column, or beat times alone; columns found by name, or value_column (R-R) /
                                  #   start_column (time); time_unit, origin: clock and offset_s as a file's;
                                  #   Polar Sensor Logger's `Phone timestamp;RR-interval [ms]` as exported:
                                  #   origin: clock)
      rr: {column: rr}            # breaths/min, as hr
      rhythm: {table: rhythm.csv, af: [AF]}  # columns recording,rhythm[,start_s,end_s]; af: AF classes
      bp: {table: bp.csv}         # columns recording,sbp,dbp (mmHg, one per recording)
      quality: {column: artifact} # per-sample flags (1 = artifact); or {table: q.csv}: recording,quality, each
                                  #   value one of good: [good, 1] or poor: [poor, bad, 0] (the defaults)
      spo2: {column: spo2, unit: "%", range: [50, 100]}   # a label of your own (any other name): a per-window
                                  #   regression target, as hr (column or file); unit: required; range: values
                                  #   outside are refused as hr's are; band: [lo, hi] Hz of the model input
                                  #   (default 0.5-8); `train finetune --task spo2` (data.tasks.task_spec)
    exclude: {RECORD_ID: reason}  # recordings left out, each reported with its reason
    split:                        # by subject, never by window; declared ...
      test: [s5, s6]              #   subjects or record ids (train: the rest, or `train:` given too)
      # ... or computed: {heldout_fraction: 0.25, seed: 0}

HR from ECG: `sqtool.data.ecg.ecg_window_hr` (the code behind `wrist_exercise`): windows where the ECG is
doubtful hold NaN (never scored) and are counted in `Record.meta["hr_doubtful"]` and `ds.report`. HR from a strap's
beats: `sqtool.data.ecg.beat_train_hr`, the same HR and clean rule as one ECG detector's; windows where the strap
dropped beats, an interval is an artifact (ectopic, missed or extra beat) or the HR is implausible are doubtful alike.
Built-in layouts read through their readers (`data.readers.read_dataset(root, kind=format)`); `labels`
then name the reader's label ({reader: name}) and `channels` / `fs` / `time_column` are refused (the
reader knows them). Shipped files: `sqtool/data/datasets/<name>.yaml` (`builtin_names()`).

Class names (af, good, poor) match a table's classes exactly, else ignoring case (`AF` finds `af`) unless
that is ambiguous (the table has both `AF` and `af`).

Accelerometer units: a recording whose acc measures gravity (the median norm of its 2 s mean vectors) at a value
implausible for the declared unit (about 9.8 while it says g, about 1 while it says m/s^2) but plausible for
another (0.5-2 g) gets one `sqtool: warning:` line naming the file and the likely unit; a sensor without gravity
(linear acceleration, about 0) is no warning. One axis about 9.81x off the other two after conversion (an axis in g
beside two in m/s^2) gets one line naming the axis and the unit that fits it instead (`check_acc_unit`).

Bad input is one `SqtoolError` line naming the file: unknown key, a value of the wrong kind (naming its key, when the
file is parsed: text or a list where a number belongs, one name where a list belongs), missing channel, a rate that
disagrees with the time column, a missing stream file, a stream whose times do not overlap the recording's, label-file rows more than one window past the end of the signal (rows whose window
merely runs past it, the last window_s of a per-second series, are left out and counted: report["label_rows_past_end"]),
a split with one subject on both sides, a root with no recordings, a task whose label the file does not declare,
a label's offset_s given to a label without times (a column) or longer than its recording,
an af list that names none of the rhythm table's classes, a quality value neither good nor poor.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sqtool.core import WINDOW_S_MAX, SqtoolError, check_fs
from sqtool.core.config import yaml_error_text
from sqtool.data.readers._common import TIME_UNITS

GENERIC_FORMATS = ("csv", "npz", "wfdb", "edf", "e4")
DEFAULT_GLOB = {"csv": "**/*.csv", "npz": "**/*.npz", "wfdb": "**/*.hea", "edf": "**/*.edf", "e4": "**/BVP.csv"}
TASK_LABELS = {"hr": "hr", "rr": "rr", "af": "rhythm", "bp": "bp", "quality": "quality"}   # task -> label
LABEL_WINDOW_MIN_S = 0.1           # shortest label window and hop (windows.window_s / hop_s; longest: WINDOW_S_MAX):
                                  #   a recording gets at most 10 label windows per second of signal (864,000 a day)
STANDARD_GRAVITY = 9.80665          # m/s^2 per g
ACC_UNITS = {"g": 1.0, "mg": 1e-3, "m/s^2": 1 / STANDARD_GRAVITY,    # acc unit -> g per unit (the pipeline's: g)
             "1/64 g": 1 / 64}                                     # Empatica E4's counts (PPG-DaLiA, WESAD)
ACC_SPELLINGS = {"g": "g", "mg": "mg", "m/s^2": "m/s^2", "m/s2": "m/s^2", "m/s**2": "m/s^2", "m/s²": "m/s^2",
                 "ms^-2": "m/s^2", "m s^-2": "m/s^2", "1/64 g": "1/64 g", "1/64g": "1/64 g", "g/64": "1/64 g"}
#                                                         # unit: as written (case ignored) -> ACC_UNITS key
E4_CHANNELS = {"ppg": {"column": 0}, **{f"acc_{a}": {"file": "ACC.csv", "column": i, "unit": "1/64 g"}
                                         for i, a in enumerate("xyz")}}    # format e4 without channels: BVP + ACC


def acc_unit(unit: str, where: str) -> str:
    """The ACC_UNITS key of an acc channel's declared unit ('' -> g, the pipeline's); else one line naming it."""
    u = ACC_SPELLINGS.get(str(unit).strip().lower() or "g")
    if u is None:
        raise SqtoolError(f"{where}: unknown accelerometer unit {unit!r} (known: {', '.join(ACC_UNITS)})")
    return u


def acc_conversion(ds: "DatasetFile", row_units: dict[str, set] | None = None) -> list[dict]:
    """How `ds`'s acc_* channels become g, for `data inspect`: one entry per set of channels read alike, {"channels",
    "unit" (as declared, ACC_UNITS' key; g when not said), "gain", "offset", "to_g" (g per unit), "from"
    ("CSV" where the CSV itself gave the unit the dataset file does not say: its units row or a unit in the column's
    name)}: value = (column * gain +
    offset) * to_g. `row_units`: {channel: the ACC_UNITS keys its recordings' units rows gave} (`generic.acc_unit_of`
    of each Record.meta["units"] cell); where they differ between recordings, "unit" lists them and "to_g" is None
    (each recording read in its own). An NPZ without channels: its acc arrays by name, in g; a built-in layout:
    {"reader"}."""
    if ds.builtin:
        return [{"reader": ds.format, "unit": "g"}]
    if not ds.channels:
        return [{"channels": ["acc_* (by array name)"], "unit": "g", "gain": 1.0, "offset": 0.0, "to_g": 1.0}]
    groups: dict[tuple, list[str]] = {}
    for name, ch in ds.channels.items():
        if name.startswith("acc"):
            seen = (row_units or {}).get(name) if f"channels.{name}.unit" not in ds.units_said else None
            unit = (ch.unit, "") if not seen else (" or ".join(sorted(seen)), "CSV")
            groups.setdefault((*unit, float(ch.gain), float(ch.offset)), []).append(name)
    return [{"channels": names, "unit": unit, "gain": gain, "offset": offset, "to_g": ACC_UNITS.get(unit),
             **({"from": src} if src else {})} for (unit, src, gain, offset), names in groups.items()]


def builtin_formats() -> tuple[str, ...]:
    from sqtool.data.readers import DATASETS
    return tuple(DATASETS)


# ----------------------------------------------------------------------------- the schema

@dataclass
class Channel:
    column: str | int               # column / array / signal name, or 0-based position
    fs: float | None = None         # Hz (default: the file's fs / time column)
    gain: float = 1.0
    offset: float = 0.0
    unit: str = ""
    file: str | None = None         # CSV, E4: a stream file of its own, from the recording's folder ("{stem}",
                                    #   "{record}", "{folder}" filled in: dataset_reader.fill_path)
    time_column: str | None = None  # file: its time column (default: the top-level time_column)
    time_unit: str | None = None    # file: its time column's unit (default: the top-level time_unit)


@dataclass
class Subject:
    value: str | None = None        # the same subject for every recording
    column: str | None = None       # a column holding the subject id (constant within a file)
    pattern: str | None = None      # regex on the path relative to root: group 'subject' or 1


@dataclass
class Conditions:
    pattern: str | None = None      # regex on the path relative to root: group 'condition'
    table: str | None = None        # recording,condition[,start_s,end_s] (dataset_reader.LabelTable, label "condition")


STAMPS = {"start": 0.0, "centre": 0.5, "center": 0.5, "end": 1.0}   # a label row's time, as a fraction of its window


@dataclass
class LabelSource:
    column: str | None = None       # a column of the recording (per sample)
    file: str | None = None         # per-recording file, "{stem}" / "{record}" / "{folder}" filled in (fill_path)
    ecg: str | None = None          # hr: derive from this ECG channel
    beats: str | None = None        # hr: a chest strap's beats file (data.strap), its path as file:'s
    table: str | None = None        # one table for all recordings (column `recording`)
    reader: str | list | None = None  # built-in layouts: the reader's label name(s)
    time_unit: str = "s"            # file, beats: the unit of its times (TIME_UNITS), not the time column's
    start_column: str | None = None  # file: its start-time column (default: start, start_s, time or t); beats:
                                     #   its time column (default: data.strap.TIME_COLUMNS)
    value_column: str | None = None  # file: its value column (default: the label's name, bpm, value or rr); beats:
                                     #   its R-R column (default: data.strap.RR_COLUMNS)
    stamp: str = "start"            # file: where in its window a row's time lies: start | centre | end (STAMPS)
    origin: str = "recording"       # file, beats: its times count from the recording's first sample, or (clock) are
                                    #   wall-clock times on the recording's own clock (its time column's / header's)
    offset_s: float = 0.0           # file, beats: seconds added to its times (after origin), the reference's clock
                                    #   onto the recording's: positive when the reference's clock runs behind
    af: list = field(default_factory=lambda: ["AF"])   # rhythm: the classes that count as AF
    good: list = field(default_factory=lambda: ["good", "1", "1.0"])   # quality table: good classes
    poor: list = field(default_factory=lambda: ["poor", "bad", "0", "0.0"])   # quality table: poor classes
    unit: str | None = None         # a custom label (a name not built in): its unit, e.g. "%" (required); hr
                                    #   beats: the R-R column's, ms (default) or s
    range: list | None = None       # a custom label: [lo, hi] plausible values (outside: one error line, as hr's)
    band: list | None = None        # a custom label: the model input's band-pass [lo, hi] Hz (default 0.5-8)


@dataclass
class Windows:
    window_s: float = 8.0
    hop_s: float = 2.0


@dataclass
class Split:
    train: list = field(default_factory=list)
    test: list = field(default_factory=list)
    heldout_fraction: float | None = None
    seed: int = 0


@dataclass
class DatasetFile:
    format: str
    path: Path                      # the yaml file (absolute); every relative path resolves from its folder
    name: str = ""
    root: Path = Path(".")
    files: str = ""
    fs: float | None = None
    time_column: str | None = None
    time_unit: str = "s"
    channels: dict[str, Channel] = field(default_factory=dict)
    subject: Subject = field(default_factory=Subject)
    conditions: Conditions = field(default_factory=Conditions)
    windows: Windows = field(default_factory=Windows)
    labels: dict[str, LabelSource] = field(default_factory=dict)
    exclude: dict[str, str] = field(default_factory=dict)
    split: Split = field(default_factory=Split)
    report: dict = field(default_factory=dict)      # filled by records(): excluded, skipped, doubtful hr windows
    units_said: frozenset = frozenset()             # the unit keys the file gives (time_unit, channels.acc_x.unit,
    #                                                 channels.acc_x.time_unit, labels.hr.time_unit): a CSV's units
    #                                                 row (or a unit in a column's name) must agree with them
    recordings: tuple[str, ...] = ()                # only the recordings these patterns pick (`picks`; predict and
    #                                                 bench --recordings): none = every one

    # -- what the file promises
    @property
    def builtin(self) -> bool:
        return self.format not in GENERIC_FORMATS

    @property
    def shipped(self) -> bool:
        """One of sqtool's own dataset files (sqtool/data/datasets/*.yaml)."""
        return self.path.parent == builtin_dir()

    def has_label(self, task: str) -> bool:
        return TASK_LABELS.get(task, task) in self.labels

    @property
    def custom_labels(self) -> list[str]:
        """The file's own regression labels (declared with unit:), each a fine-tuning task of its name."""
        return [n for n in self.labels if n not in TASK_LABELS.values()]

    def require_label(self, task: str) -> None:
        lab = TASK_LABELS.get(task, task)
        if lab not in self.labels:
            have = ", ".join(self.labels) or "none"
            raise SqtoolError(f"{self.path}: task '{task}' needs label '{lab}' (the file declares: {have})")

    def records(self, log=None, max_records: int = 0, on_error: str = "raise") -> list:
        """Every recording under root, read, checked and labelled; excluded ones reported (log + report).
        on_error="skip": a bad file is left out, its error in report["skipped"]."""
        from sqtool.data.dataset_reader import read_records
        return read_records(self, log=log, max_records=max_records, on_error=on_error)

    def iter_records(self, log=None, on_error: str = "raise", notes: str = "summary"):
        """records(), one recording at a time (memory: one recording, not the dataset); the checks over all of
        them, and report, come after the last one (dataset_reader.iter_read_records; `notes` "full": the label
        files' warnings a line per file, as data inspect lists them, not a summary line per cause)."""
        from sqtool.data.dataset_reader import iter_read_records
        return iter_read_records(self, log=log, on_error=on_error, notes=notes)

    def split_subjects(self, records) -> tuple[set[str], set[str]]:
        """(train subjects, test subjects): the declared split (subjects or record ids), else computed from
        heldout_fraction (the last subjects in sorted order after a seeded shuffle), else (all, empty)."""
        by_rec = {str(r.record_id): str(r.subject) for r in records}
        subjects = sorted(set(by_rec.values()))
        sp = self.split

        def side(names, which):
            out: dict[str, str] = {}
            for n in map(str, names):
                if n in by_rec:
                    out[by_rec[n]] = f"recording {n}"
                elif n in subjects:
                    out[n] = f"subject {n}"
                else:
                    raise SqtoolError(f"{self.path}: split.{which} names '{n}', neither a subject nor a recording "
                                      f"of the data")
            return out
        if sp.train or sp.test:
            tr, te = side(sp.train, "train"), side(sp.test, "test")
            both = sorted(set(tr) & set(te))
            if both:
                s = both[0]
                raise SqtoolError(f"{self.path}: subject {s} is on both sides of the split (train: {tr[s]}, "
                                  f"test: {te[s]}); splits are by subject")
            test = set(te)
            train = set(tr) if sp.train else set(subjects) - test
            return train, test
        if sp.heldout_fraction:
            n = min(len(subjects) - 1, max(1, int(round(sp.heldout_fraction * len(subjects)))))
            perm = list(np.random.default_rng(sp.seed).permutation(subjects))
            return set(perm[:-n]), set(perm[-n:])
        return set(subjects), set()


# ----------------------------------------------------------------------------- parsing
# Every value is checked for its kind here, when the file is read (not when a recording is): a wrong one is one line
# "<file>: <key>: expected <kind>, got <value> (<its kind>)". A key whose default is null (fs, time_column,
# channels.X.fs, subject.*, labels.X.column / file / ...) takes null for "not given"; the others need their kind.

LABEL_SOURCES = {"hr": ("column", "file", "ecg", "beats"), "rr": ("column", "file"), "rhythm": ("table",),
                 "bp": ("table",), "quality": ("column", "table")}    # generic formats: where each label comes from


def _shown(v) -> str:
    """A yaml value as an error line shows it: its repr, cut short, and its kind."""
    if v is None:
        return "null"
    kind = ("a boolean" if isinstance(v, bool) else "text" if isinstance(v, str) else "a number" if _is_number(v)
            else "a list" if isinstance(v, list) else "a mapping" if isinstance(v, dict) else type(v).__name__)
    r = repr(v)
    return f"{r if len(r) <= 40 else r[:37] + '...'} ({kind})"


def _bad(path: Path, key: str, want: str, v) -> SqtoolError:
    return SqtoolError(f"{path}: {key}: expected {want}, got {_shown(v)}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)       # yaml `true` is no number


def _number(v, key: str, path: Path) -> float:
    """A finite int or float (text such as '0.001' is refused: the yaml said text, perhaps by a quote)."""
    if not _is_number(v):
        raise _bad(path, key, "a number", v)
    if not np.isfinite(v):
        raise _bad(path, key, "a finite number", v)
    return float(v)


def _integer(v, key: str, path: Path) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise _bad(path, key, "an integer", v)
    return v


def _text(v, key: str, path: Path, optional: bool = False) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise _bad(path, key, "text", v)
    return v


def _name(v, key: str, path: Path) -> str:
    """An id (subject, recording, class): text, or a number read as its text (subject 7, recording 101)."""
    if not (isinstance(v, str) or _is_number(v)):
        raise _bad(path, key, "a name (text or a number)", v)
    return str(v)


def _names(v, key: str, path: Path, one: bool = False) -> list[str]:
    """A list of ids; `one`: a single id stands for a list of it (af: AF)."""
    if one and not isinstance(v, list):
        v = [v]
    if not isinstance(v, list):
        raise _bad(path, key, f"a list (e.g. [{v}])" if isinstance(v, str) else "a list", v)
    return [_name(x, key, path) for x in v]


def _column(v, key: str, path: Path, optional: bool = False) -> str | int | None:
    """A column name, or a 0-based position."""
    if v is None and optional:
        return None
    if not (isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))):
        raise _bad(path, key, "a column name or 0-based position", v)
    return v


def _time_column(v, key: str, path: Path) -> str | None:
    """A time column: its name, or its 0-based position as `channels:` takes one (`time_column: 0` read as "0", the
    name a header-less CSV's first column has)."""
    v = _column(v, key, path, optional=True)
    return None if v is None else str(v)


def _mapping(d: dict, key: str, path: Path) -> dict:
    """Top-level section `key` of `d`: a mapping, absent or null for empty."""
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _bad(path, key, "a mapping", v)
    return v


def _strict(cls, d: Any, where: str, file: Path):
    """A dataclass from a mapping; an unknown key, or a required one missing, is one line naming it and the file."""
    if not isinstance(d, dict):
        raise _bad(file, where, "a mapping", d)
    fields = dataclasses.fields(cls)
    known = [f.name for f in fields]
    for k in d:
        if k not in known:
            raise SqtoolError(f"{file}: unknown key '{k}' in {where} (known: {', '.join(known)})")
    for f in fields:
        if f.name not in d and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SqtoolError(f"{file}: {where}: '{f.name}' is required")
    return cls(**d)


TOP_KEYS = ("name", "format", "root", "files", "fs", "time_column", "time_unit", "channels", "subject",
            "conditions", "windows", "labels", "exclude", "split")


def parse_dataset(d: dict, path: Path, data_root: str | os.PathLike | None = None) -> DatasetFile:
    """A checked DatasetFile from the parsed yaml mapping `d` of file `path`."""
    path = Path(path).resolve()
    if not isinstance(d, dict):
        raise SqtoolError(f"{path}: a dataset file is a mapping of keys ({', '.join(TOP_KEYS)})")
    for k in d:
        if k not in TOP_KEYS:
            raise SqtoolError(f"{path}: unknown key '{k}' (known: {', '.join(TOP_KEYS)})")
    fmt = (_text(d.get("format"), "format", path, optional=True) or "").lower()
    if not fmt:
        raise SqtoolError(f"{path}: 'format' is required ({', '.join(GENERIC_FORMATS + builtin_formats())})")
    if fmt not in GENERIC_FORMATS + builtin_formats():
        raise SqtoolError(f"{path}: unknown format '{fmt}' (known: {', '.join(GENERIC_FORMATS + builtin_formats())})")
    name = d.get("name")
    ds = DatasetFile(format=fmt, path=path, name=path.parent.name if name is None else _name(name, "name", path))
    ds.root = _resolve_path(_text(d.get("root"), "root", path, optional=True) or ".", path, data_root)
    ds.files = _text(d.get("files"), "files", path, optional=True) or DEFAULT_GLOB.get(fmt, "**/*")
    if fmt not in GENERIC_FORMATS:
        for k in ("channels", "fs", "time_column", "time_unit"):
            if k in d:
                raise SqtoolError(f"{path}: format {fmt} is a built-in layout whose reader knows its channels and "
                                  f"rates; remove '{k}'")
    if fmt == "e4":
        for k in ("fs", "time_column", "time_unit"):
            if k in d:
                raise SqtoolError(f"{path}: format e4: each file's own header rows give its start and rate (row 1: "
                                  f"UTC seconds since 1970, row 2: Hz); remove '{k}'")
    if d.get("fs") is not None:
        ds.fs = check_fs(_number(d["fs"], "fs", path), f"{path}: fs")
    ds.time_column = _time_column(d.get("time_column"), "time_column", path)
    ds.time_unit = _text(d.get("time_unit", "s"), "time_unit", path)
    if ds.time_unit not in TIME_UNITS:
        raise SqtoolError(f"{path}: time_unit must be s, ms or us, got {ds.time_unit!r}")
    said = {"time_unit"} if "time_unit" in d else set()
    for name, c in (_mapping(d, "channels", path) or (E4_CHANNELS if fmt == "e4" else {})).items():
        key = f"channels.{name}"
        ch = _strict(Channel, c, key, path) if isinstance(c, dict) else Channel(column=_column(c, key, path))
        ch.column = _column(ch.column, f"{key}.column", path)
        if ch.fs is not None:
            ch.fs = check_fs(_number(ch.fs, f"{key}.fs", path), f"{path}: {key}.fs")
        ch.gain, ch.offset = _number(ch.gain, f"{key}.gain", path), _number(ch.offset, f"{key}.offset", path)
        ch.unit = _text(ch.unit, f"{key}.unit", path)
        if str(name).startswith("acc"):
            ch.unit = acc_unit(ch.unit, f"{path}: {key}.unit")
        _check_stream(ch, fmt, key, path)
        ds.channels[str(name)] = ch
        said |= {f"{key}.{k}" for k in ("unit", "time_unit") if isinstance(c, dict) and k in c}
    ds.units_said = frozenset(said)
    if fmt in GENERIC_FORMATS and not ds.channels and fmt != "npz":      # an NPZ's members name its channels
        raise SqtoolError(f"{path}: 'channels' is required for format {fmt} (e.g. ppg: <column>)")
    if ds.channels and not any(c.startswith("ppg") for c in ds.channels) and "ecg" not in ds.channels:
        raise SqtoolError(f"{path}: channels name no PPG channel (ppg, ppg2, ...): {', '.join(ds.channels)}")
    sub = d.get("subject")
    if isinstance(sub, dict):
        ds.subject = _strict(Subject, sub, "subject", path)
        s = ds.subject
        s.value = None if s.value is None else _name(s.value, "subject.value", path)
        s.column = _column(s.column, "subject.column", path, optional=True)
        s.pattern = _text(s.pattern, "subject.pattern", path, optional=True)
    elif sub is not None:
        ds.subject = Subject(value=_name(sub, "subject", path))
    if sum(v is not None for v in (ds.subject.value, ds.subject.column, ds.subject.pattern)) > 1:
        raise SqtoolError(f"{path}: subject: give one of value, column, pattern")
    if ds.subject.pattern:
        try:
            re.compile(ds.subject.pattern)
        except re.error as e:
            raise SqtoolError(f"{path}: subject.pattern is not a regular expression ({e})")
    if d.get("conditions") is not None:
        ds.conditions = _conditions(d["conditions"], fmt, path, data_root)
    ds.windows = _strict(Windows, _mapping(d, "windows", path), "windows", path)
    for k in ("window_s", "hop_s"):
        v = _number(getattr(ds.windows, k), f"windows.{k}", path)
        if not LABEL_WINDOW_MIN_S <= v <= WINDOW_S_MAX:
            raise SqtoolError(f"{path}: windows.{k}: must be in [{LABEL_WINDOW_MIN_S:g}, {WINDOW_S_MAX:g}] s, got {v:g}")
        setattr(ds.windows, k, v)
    for name, src in _mapping(d, "labels", path).items():
        key = f"labels.{name}"
        if name not in TASK_LABELS.values():
            _check_custom_label(str(name), src, path)
        ls = _strict(LabelSource, src, key, path) if isinstance(src, dict) else \
            LabelSource(column=_column(src, key, path, optional=True))
        ls.column = _column(ls.column, f"{key}.column", path, optional=True)
        for k in ("file", "ecg", "beats", "table"):
            setattr(ls, k, _text(getattr(ls, k), f"{key}.{k}", path, optional=True))
        if ls.reader is not None:
            ls.reader = _names(ls.reader, f"{key}.reader", path) if isinstance(ls.reader, list) else \
                _text(ls.reader, f"{key}.reader", path)
        given = [k for k in ("column", "file", "ecg", "beats", "table", "reader") if getattr(ls, k) is not None]
        if len(given) != 1:
            raise SqtoolError(f"{path}: {key}: give exactly one of column, file, ecg, beats, table, reader")
        timed = ls.file is not None or ls.beats is not None     # a file of rows with times: file or beats
        if (ls.reader is not None) != (fmt not in GENERIC_FORMATS):
            raise SqtoolError(f"{path}: {key}: 'reader' is for built-in layouts only" if ls.reader is not None
                              else f"{path}: {key}: format {fmt} gives its labels through 'reader: NAME'")
        ls.time_unit = _text(ls.time_unit, f"{key}.time_unit", path)
        if isinstance(src, dict) and "time_unit" in src:       # said, not defaulted: a file's own must agree
            ds.units_said |= {f"{key}.time_unit"}
        if ls.time_unit not in TIME_UNITS:
            raise SqtoolError(f"{path}: {key}.time_unit must be s, ms or us, got {ls.time_unit!r}")
        if ls.time_unit != "s" and not timed:
            raise SqtoolError(f"{path}: {key}: time_unit is for a label file's times ({key}.file); "
                              "a recording's time column takes the top-level time_unit")
        ls.stamp = _text(ls.stamp, f"{key}.stamp", path)
        if ls.stamp not in STAMPS:
            raise SqtoolError(f"{path}: {key}.stamp must be one of {', '.join(STAMPS)} (where in its window a row's "
                              f"time lies), got {ls.stamp!r}")
        if ls.stamp != "start" and ls.file is None:
            raise SqtoolError(f"{path}: {key}: stamp is for a label file's rows ({key}.file)")
        ls.origin = _text(ls.origin, f"{key}.origin", path)
        if ls.origin not in ("recording", "clock"):
            raise SqtoolError(f"{path}: {key}.origin must be recording (seconds from the first sample) or clock "
                              f"(wall-clock times, as the recording's time column), got {ls.origin!r}")
        if ls.origin != "recording" and not timed:
            raise SqtoolError(f"{path}: {key}: origin is for a label file's times ({key}.file)")
        ls.offset_s = _number(ls.offset_s, f"{key}.offset_s", path)
        if ls.offset_s and not timed:
            raise SqtoolError(f"{path}: {key}: offset_s shifts the times of a label file or a beats file ({key}.file "
                              f"or {key}.beats); a {given[0]} label has none of its own (it is on the recording's "
                              "clock)")
        for k in ("start_column", "value_column"):
            setattr(ls, k, _text(getattr(ls, k), f"{key}.{k}", path, optional=True))
            if getattr(ls, k) is not None and not timed:
                raise SqtoolError(f"{path}: {key}: {k} names a column of a label file ({key}.file); a column of "
                                  f"the recording is {key}.column")
        if ls.ecg is not None and name != "hr":
            raise SqtoolError(f"{path}: {key}: 'ecg' derives heart rate only (labels.hr)")
        sources = LABEL_SOURCES.get(name, CUSTOM_SOURCES)
        if ls.reader is None and given[0] not in sources:
            raise SqtoolError(f"{path}: {key}: the {name} label is read from a {' or '.join(sources)}, "
                              f"not a {given[0]} ({given[0]}: {getattr(ls, given[0])!r}; e.g. "
                              f"{name}: {{{sources[0]}: ...}})")
        if name in TASK_LABELS.values():
            if ls.beats is not None and ls.unit is not None:       # the R-R column's unit, not the label's
                ls.unit = _text(ls.unit, f"{key}.unit", path)
                if ls.unit not in ("ms", "s"):
                    raise SqtoolError(f"{path}: {key}.unit: the unit of the beats file's R-R intervals, ms (the "
                                      f"default) or s, got {ls.unit!r}")
            for k in CUSTOM_KEYS:
                if getattr(ls, k) is not None and not (k == "unit" and ls.beats is not None):
                    raise SqtoolError(f"{path}: {key}.{k}: the built-in {name} label has its own unit, range and "
                                      f"band; {k}: is for a custom label (a name of your own)")
        else:
            ls.unit = _text(ls.unit, f"{key}.unit", path)
            for k in ("range", "band"):
                if getattr(ls, k) is not None:
                    setattr(ls, k, _interval(getattr(ls, k), f"{key}.{k}", path, positive=k == "band"))
        if ls.ecg is not None and ds.channels and ls.ecg not in ds.channels:   # none named (NPZ): when read
            raise SqtoolError(f"{path}: labels.hr.ecg names channel '{ls.ecg}', not in channels "
                              f"({', '.join(ds.channels)})")
        for k in ("af", "good", "poor"):            # class names: a list, or one name
            setattr(ls, k, _names(getattr(ls, k), f"{key}.{k}", path, one=True))
        for k in ("file", "beats", "table"):        # a file's placeholders ({record}/..) filled before "/.." goes
            if getattr(ls, k) is not None:
                setattr(ls, k, str(_resolve_path(getattr(ls, k), path, data_root, must_exist=False,
                                                 normalise="{" not in getattr(ls, k))))
        ds.labels[name] = ls
    ex = d.get("exclude") or {}
    if isinstance(ex, list):
        ex = {_name(k, "exclude", path): "excluded by the dataset file" for k in ex}
    if not isinstance(ex, dict):
        raise _bad(path, "exclude", "a mapping of record ids to reasons", ex)
    ds.exclude = {_name(k, "exclude", path): "excluded by the dataset file" if v is None else
                  _name(v, f"exclude.{k}", path) for k, v in ex.items()}
    ds.split = sp = _strict(Split, _mapping(d, "split", path), "split", path)
    sp.train, sp.test = _names(sp.train, "split.train", path), _names(sp.test, "split.test", path)
    sp.seed = _integer(sp.seed, "split.seed", path)
    if sp.heldout_fraction is not None:
        sp.heldout_fraction = _number(sp.heldout_fraction, "split.heldout_fraction", path)
    if sp.heldout_fraction is not None and (sp.train or sp.test):
        raise SqtoolError(f"{path}: split: give train/test lists or heldout_fraction, not both")
    if sp.heldout_fraction is not None and not 0 < sp.heldout_fraction < 1:
        raise SqtoolError(f"{path}: split.heldout_fraction must be in (0, 1)")
    return ds


def _conditions(v, fmt: str, path: Path, data_root) -> Conditions:
    """The `conditions:` key: one of pattern (a regex with a group 'condition') or table (its path resolved as a
    label table's); generic formats only (a built-in layout's reader knows its own, or none)."""
    c = _strict(Conditions, v, "conditions", path)
    c.pattern = _text(c.pattern, "conditions.pattern", path, optional=True)
    c.table = _text(c.table, "conditions.table", path, optional=True)
    if (c.pattern is None) == (c.table is None):
        raise SqtoolError(f"{path}: conditions: give one of pattern (a regex on the path with a group "
                          "'condition') or table (columns recording,condition[,start_s,end_s])")
    if fmt not in GENERIC_FORMATS:
        raise SqtoolError(f"{path}: conditions: for generic formats ({', '.join(GENERIC_FORMATS)}); format {fmt} is a "
                          "built-in layout (wrist_exercise's reader gives its activity from the file names)")
    if c.pattern is not None:
        try:
            rx = re.compile(c.pattern)
        except re.error as e:
            raise SqtoolError(f"{path}: conditions.pattern is not a regular expression ({e})")
        if "condition" not in rx.groupindex:
            raise SqtoolError(f"{path}: conditions.pattern '{c.pattern}' has no group named condition; mark the "
                              "part of the path that names it, e.g. \"_(?P<condition>walk|run|bike)\"")
    else:
        c.table = str(_resolve_path(c.table, path, data_root, must_exist=False))
    return c


def _check_stream(ch: Channel, fmt: str, key: str, path: Path) -> None:
    """A channel's stream file (`file:`, its own `time_column:` / `time_unit:`): text, CSV only, and a time column
    or unit only for a channel read from a file of its own."""
    ch.file = _text(ch.file, f"{key}.file", path, optional=True)
    ch.time_column = _time_column(ch.time_column, f"{key}.time_column", path)
    ch.time_unit = _text(ch.time_unit, f"{key}.time_unit", path, optional=True)
    if ch.file is not None and fmt not in ("csv", "e4"):
        raise SqtoolError(f"{path}: {key}.file: a stream file of its own is for format csv or e4 (an {fmt} "
                          "recording holds its channels at their own rates in one file)")
    if ch.file is not None and not ch.file.strip():
        raise SqtoolError(f"{path}: {key}.file: empty; give the stream file's path from the recording's folder")
    for k in ("time_column", "time_unit"):
        if getattr(ch, k) is not None and fmt == "e4":
            raise SqtoolError(f"{path}: {key}: {k}: an E4 file's header rows give its start and rate; remove it")
        if getattr(ch, k) is not None and ch.file is None:
            raise SqtoolError(f"{path}: {key}: {k} is for a channel read from a stream file of its own ({key}.file); "
                              f"the recording's own columns take the top-level {k}")
    if ch.time_unit is not None and ch.time_unit not in TIME_UNITS:
        raise SqtoolError(f"{path}: {key}.time_unit must be s, ms or us, got {ch.time_unit!r}")


CUSTOM_SOURCES = ("column", "file")      # a custom label: a per-window value, as hr and rr
CUSTOM_KEYS = ("unit", "range", "band")  # what a custom label declares (unit required)
RESERVED_LABELS = ("sbp", "dbp", "artifact", "pretrain")   # names a custom label may not take (besides tasks')


def _check_custom_label(name: str, src, path: Path) -> None:
    """A label whose name is not built in is the researcher's own regression label: it declares `unit:`, is read
    from a column or a file, and takes no task's name; else one line saying what is supported."""
    key, what = f"labels.{name}", ("custom labels are per-window regression targets only: "
                                   f"{name}: {{column: COLUMN, unit: UNIT}} or {{file: ..., unit: ...}}, optional "
                                   "range: [lo, hi] and band: [lo, hi] Hz")
    from sqtool.data.tasks import PREDICT_PREFIXES, reserved_output
    if name in TASK_LABELS or name in RESERVED_LABELS:
        raise SqtoolError(f"{path}: {key}: '{name}' is a built-in task or label name (labels: "
                          f"{', '.join(TASK_LABELS.values())}); name your own label otherwise ({what})")
    if reserved_output(name):
        raise SqtoolError(f"{path}: {key}: '{name}' is a model output or a column sqtool predict writes (flagged, "
                          f"time_s, hr_bpm, quality_logit, ..., or starts with {' / '.join(PREDICT_PREFIXES)}): "
                          f"its model would output '{name}'; name your label otherwise, e.g. my_{name}")
    if not isinstance(src, dict) or src.get("unit") is None:
        raise SqtoolError(f"{path}: {key}: unknown label '{name}' (built in: {', '.join(TASK_LABELS.values())}); "
                          f"a label of your own needs unit: ({what})")
    if not isinstance(src["unit"], str) or not src["unit"].strip() or src["unit"].strip().lower() == "logit":
        raise SqtoolError(f"{path}: {key}.unit: {src['unit']!r}: a custom label's unit is required text, the unit "
                          f"its values are in (e.g. \"%\", BPM; not logit: a regression target), as predict, bench "
                          "and the model card print it")
    asks = [k for k in ("table", "ecg", "beats", "reader", "af", "good", "poor") if k in src]
    if asks:
        raise SqtoolError(f"{path}: {key}.{asks[0]}: {what}; class labels are rhythm and quality")


def _interval(v, key: str, path: Path, positive: bool = False) -> list[float]:
    """[lo, hi], two finite numbers with lo < hi (`positive`: lo > 0, as a band's)."""
    if not isinstance(v, list) or len(v) != 2:
        raise _bad(path, key, "a list [lo, hi]", v)
    lo, hi = (_number(x, key, path) for x in v)
    if not lo < hi or (positive and lo <= 0):
        raise SqtoolError(f"{path}: {key}: expected lo < hi{' and lo > 0' if positive else ''}, got [{lo:g}, {hi:g}]")
    return [lo, hi]


def _resolve_path(p: str, yaml_path: Path, data_root, must_exist: bool = True, normalise: bool = True) -> Path:
    """A path of the file: ${data_root} expanded, ~ expanded, relative -> the yaml file's folder; `normalise`:
    "a/../b" -> "b" (not for a path with placeholders: dataset_reader.fill_path normalises it once filled)."""
    if "${data_root}" in p:
        from sqtool.core import resolve_data_root
        root = resolve_data_root(data_root or None)
        if root is None:
            raise SqtoolError(f"{yaml_path}: uses ${{data_root}} but no data root is set (set SQTOOL_DATA "
                              "to the folder of the datasets, e.g. ../shared/data)")
        p = p.replace("${data_root}", str(Path(root).resolve()))      # a cwd-relative root, made absolute
    q = Path(p).expanduser()
    if not q.is_absolute():
        q = yaml_path.parent / q
    q = Path(os.path.normpath(q)) if normalise else q
    if must_exist and not q.exists():
        raise SqtoolError(f"{yaml_path}: root {q} does not exist")
    return q


class _AliasFound(Exception):
    """An alias at this (1-based) line of the document being read."""


@functools.cache
def _no_alias_loader():
    """yaml.SafeLoader without aliases and with YAML 1.2 floats: the class is built once (import yaml is lazy)."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise _AliasFound(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)

    # YAML 1.2 floats that PyYAML (YAML 1.1) reads as text: a mantissa without a dot or an exponent without a sign
    # (1e2, 2.5e3, 8E0); they were numbers through float() before values were checked for their kind
    NoAliasLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
        r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"), list("-+0123456789."))
    return NoAliasLoader


def _load_yaml(p: Path):
    """The document of yaml file `p`, read as yaml.safe_load does but without aliases: `*name` repeats what
    `&name` anchors, so nine levels of nine make a 443-byte file expand to 9^9 strings (gigabytes, the "billion
    laughs"); a dataset file has no use for them, and one is one line naming its line."""
    import yaml
    try:
        return yaml.load(p.read_text(), Loader=_no_alias_loader())
    except _AliasFound as e:
        raise SqtoolError(f"{p}: line {e.args[0]}: aliases (&/*) are not supported in a dataset file; "
                          "write the value out") from None


def load_dataset_file(path: str | os.PathLike, data_root: str | os.PathLike | None = None) -> DatasetFile:
    """Parse and check a dataset.yaml (a folder holding one works too)."""
    import yaml
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "dataset.yaml"
    if not p.is_file():
        raise SqtoolError(f"{p}: no such dataset file")
    try:
        d = _load_yaml(p)
    except yaml.YAMLError as e:
        raise SqtoolError(f"{p}: not valid YAML ({yaml_error_text(e)})")
    except UnicodeDecodeError as e:                      # a binary file, or text in another encoding
        raise SqtoolError(f"{p}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}): a dataset file "
                          "is a UTF-8 YAML file")
    except RecursionError:                              # the composer recurses once per level: [[[[...]]]]
        raise SqtoolError(f"{p}: nested too deeply to be a dataset file") from None
    return parse_dataset(d, p.resolve(), data_root)


# ----------------------------------------------------------------------------- a run's record of the file

def file_record(ds: DatasetFile) -> dict:
    """What a resumed run checks of dataset file `ds` (`core.changes.file_changes`): its path, its document as
    parsed (plain JSON values: keys as text, other scalars as their text) and that document's sha256. The parsed
    document, not the bytes nor the resolved DatasetFile: a touch, a comment or another indentation changes nothing
    mined, while any value does (ppg: green -> red, a gain, a unit, files:, split:) whatever sqtool's defaults; and
    the document says which key changed."""
    import hashlib

    from sqtool.core.io import dumps_json
    doc = json_plain(_load_yaml(ds.path))
    return {"path": str(ds.path), "sha256": hashlib.sha256(dumps_json(doc, sort_keys=True).encode()).hexdigest(),
            "document": doc}


def json_plain(v):
    """A parsed yaml value as plain JSON values: mappings with text keys, lists, text / numbers / booleans / null
    (a date, a set or bytes: its text)."""
    if isinstance(v, dict):
        return {str(k): json_plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_plain(x) for x in v]
    return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)


# ----------------------------------------------------------------------------- built-ins and the resolver

def builtin_dir() -> Path:
    return Path(__file__).resolve().parent / "datasets"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.yaml"))


def dataset_layouts(entries) -> dict[str, str]:
    """{name: layout} of the dataset files among `entries` that read a built-in layout under a name of their own
    (`format: troika`, `name: wrist_troika`: their records and subject keys carry the name). A run records it beside its
    datasets' names (`dataset_layouts`), so an export's card finds the layout's licence and terms; a built-in name, a
    shipped file (its name is its layout's) or a generic format (csv, npz, ...) adds nothing."""
    return {f.name: f.format for f in entries if getattr(f, "builtin", False) and f.name != f.format}


def load_builtin(name: str, data_root: str | os.PathLike | None = None) -> DatasetFile:
    """The shipped dataset file of built-in dataset `name`, its root under `data_root` (a folder of dataset
    folders; default: resolve_data_root). Every loader of a data root reads the built-ins through this."""
    f = builtin_dir() / f"{name}.yaml"
    if not f.is_file():
        raise SqtoolError(f"no built-in dataset '{name}' (known: {', '.join(builtin_names())})")
    return load_dataset_file(f, data_root)


def builtin_label(name: str, label: str) -> list[str]:
    """The reader labels the shipped file of built-in dataset `name` reads its label `label` from (`labels: {label:
    {reader: ...}}`, e.g. bidmc's rr: annotator 1's breath marks, not the monitor's numerics `rr`), read without a
    data root; [] when `name` is no built-in dataset or its file names no reader label for `label`. The shipped file
    is read once per process (predict asks for every recording)."""
    return list(_builtin_readers(name, label))


@functools.lru_cache(maxsize=None)
def _builtin_readers(name: str, label: str) -> tuple[str, ...]:
    f = builtin_dir() / f"{name}.yaml"
    if not f.is_file():
        return ()
    spec = ((_load_yaml(f) or {}).get("labels") or {}).get(label)
    reader = spec.get("reader") if isinstance(spec, dict) else None
    return (reader,) if isinstance(reader, str) else tuple(str(r) for r in reader or [])


def builtin_exclude(name: str) -> dict[str, str]:
    """{record id: reason} that the shipped file of `name` leaves out (read without a data root): the one
    place a built-in exclusion lives (e.g. TROIKA's DATA_S04_T01)."""
    f = builtin_dir() / f"{name}.yaml"
    if not f.is_file():
        raise SqtoolError(f"no built-in dataset '{name}' (known: {', '.join(builtin_names())})")
    return {str(k): str(v) for k, v in ((_load_yaml(f) or {}).get("exclude") or {}).items()}


@dataclass
class DataRef:
    """What a --data argument names: 'synthetic', a dataset file (yaml or built-in name), a data root (a
    folder of dataset folders), or a plain recordings folder / file (formats detected from the files)."""
    kind: str                       # "synthetic" | "dataset" | "root" | "path"
    path: Path | None = None
    dataset: DatasetFile | None = None

    def __str__(self) -> str:
        return "synthetic" if self.kind == "synthetic" else str(self.dataset.path if self.dataset else self.path)


def is_dataset_file(p: Path) -> bool:
    return (p.is_file() and p.suffix.lower() in (".yaml", ".yml")) or (p.is_dir() and (p / "dataset.yaml").is_file())


def dataset_folders(p: Path) -> list[Path]:
    """The sub-folders of folder `p` that hold their own dataset.yaml (sorted, hidden ones skipped); [] when `p` is
    itself a dataset folder (its dataset.yaml) or no folder."""
    if not p.is_dir() or is_dataset_file(p):
        return []
    return sorted(d for d in p.iterdir()
                  if d.is_dir() and not d.name.startswith(".") and (d / "dataset.yaml").is_file())


def is_data_root(p: Path, builtins: int = 2) -> bool:
    """A folder of dataset folders: one holding a sub-folder with its own dataset.yaml (optionally beside built-in
    dataset folders), or at least `builtins` built-in dataset folders (../shared/data). Each dataset in it is read on
    its own (through its dataset.yaml where it has one), never as one folder of files."""
    from sqtool.data.readers import DATASETS
    if not p.is_dir() or is_dataset_file(p):
        return False
    return bool(dataset_folders(p)) or sum((p / k).is_dir() for k in DATASETS) >= builtins


def resolve_data(data, data_root: str | os.PathLike | None = None) -> DataRef:
    """THE resolver behind every command's --data (see DataRef). A path is taken as given (relative to the
    cwd); a bare name that is not a path is a built-in dataset (looked up under the data root)."""
    if isinstance(data, DataRef):
        return data
    if data is None or str(data) == "":
        raise SqtoolError("--data is required (a dataset.yaml, a recordings folder or file, a built-in name such as "
                          f"{', '.join(builtin_names()[:3])}, or 'synthetic')")
    s = str(data)
    if s == "synthetic":
        return DataRef("synthetic")
    p = Path(s).expanduser()
    if p.exists():
        if is_dataset_file(p):
            return DataRef("dataset", p.resolve(), load_dataset_file(p, data_root))
        if p.is_dir() and not any(p.iterdir()):
            raise SqtoolError(f"{p}: folder is empty")
        return DataRef("root" if is_data_root(p) else "path", p.resolve())
    if s in builtin_names():
        return DataRef("dataset", None, load_builtin(s, data_root))
    if s.endswith((".yaml", ".yml")):
        raise SqtoolError(f"{p}: no such dataset file")
    raise SqtoolError(f"--data {s} does not exist (no such file or folder, and not a built-in dataset: "
                      f"{', '.join(builtin_names())})")


def one_dataset(ref: DataRef, command: str) -> DataRef:
    """`ref`, or one line when it is a data root (a folder of dataset folders) given to a command that reads one
    dataset (`predict`, `bench`): its datasets named, and how to give one. Read as a folder of files instead, a root
    of dataset folders mixed their recordings with their label files (or, the folders linked, read as empty)."""
    if ref.kind != "root":
        return ref
    from sqtool.data.readers import DATASETS
    found = [f"{d.name}/dataset.yaml" for d in dataset_folders(ref.path)]
    found += [k for k in DATASETS if (ref.path / k).is_dir() and f"{k}/dataset.yaml" not in found]
    raise SqtoolError(f"--data {ref.path}: a data root of {len(found)} datasets ({', '.join(found)}); {command} "
                      f"reads one dataset at a time: give one of them, e.g. --data {ref.path / found[0]}")


def picks(patterns, record_id: str) -> bool:
    """Whether --recordings `patterns` (shell patterns, fnmatch) pick a recording: one matches its id (its path under
    root without the extension, e.g. s6_walk/ppg) or a leading folder of it (s6_walk, s6_*)."""
    from fnmatch import fnmatchcase
    parts = str(record_id).split("/")
    heads = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatchcase(h, p) for p in patterns for h in heads)


def pick_recordings(ref: DataRef, patterns) -> DataRef:
    """`ref` reading only the recordings `patterns` pick (`picks`; none: `ref` as it is): a dataset file's, whose
    labels, subjects and split are read as for all of them. A folder or file of recordings is one line."""
    patterns = tuple(p.strip() for p in (patterns or ()) if p and p.strip())
    if not patterns:
        return ref
    if ref.kind != "dataset":
        raise SqtoolError(f"--recordings {','.join(patterns)}: picks recordings of a dataset file (a dataset.yaml or "
                          f"a built-in name); --data {ref} is {'synthetic' if ref.kind == 'synthetic' else 'no dataset file'}"
                          + ("" if ref.kind == "synthetic" else ": give the recording or folder itself as --data"))
    return DataRef("dataset", ref.path, dataclasses.replace(ref.dataset, recordings=patterns))


def data_records(ref: DataRef, log=None, **kw) -> list:
    """The records of a dataset file or a recordings path (kw go to readers.read_dataset for a path)."""
    if ref.kind == "dataset":
        return ref.dataset.records(log=log, max_records=int(kw.get("max_records") or 0))
    if ref.kind == "path":
        from sqtool.data.readers import read_dataset
        kw.pop("max_records", None)
        return read_dataset(ref.path, **kw)
    raise SqtoolError(f"--data {ref}: expected recordings or a dataset file, got a {ref.kind}")


__all__ = ["DatasetFile", "Channel", "Subject", "Conditions",
           "LabelSource", "Windows", "Split", "DataRef", "parse_dataset",
           "load_dataset_file", "load_builtin", "builtin_exclude", "builtin_names", "resolve_data", "data_records",
           "TASK_LABELS", "dataset_folders", "is_data_root", "one_dataset", "file_record", "picks", "pick_recordings"]
