"""Read the recordings a `DatasetFile` describes into checked `Record`s with labels under task names.

    recs = read_records(ds, log=print)      # what DatasetFile.records() returns

Generic formats (csv, npz, wfdb, edf, e4): each file under `ds.root` matching `ds.files` is read into columns
(name -> 1-D array, with its rate when the file states one), then:

    channels   each declared channel from its column (name or 0-based position) * gain + offset, at its rate:
               the channel's fs, else the file's fs, else the time column's (a declared rate that differs
               from the time column's by more than 1 % is refused: "wrong sampling rate", unless it is the time
               column's / k, k whole: a slower stream in every k-th row, blank between, read from those rows,
               `every_kth_row`; rows missing from the
               time column's clock are NaN samples in every column read, a gap: `_common.time_grid`); acc_* channels
               converted from their unit to g (`check_acc_unit` warns when the magnitude says another unit);
               a CSV channel with `file:` from that stream file beside the recording's, every file cut to the time
               they share on their clock (`read_streams`, `align_streams`); E4 files (`readers.e4`) alike, each
               from its header's start and at its header's rate
    subject    fixed value / a column (constant within the file) / a regex on the path (default: file stem; e4: the
               session folder's name, `default_subject`)
    conditions a regex's group 'condition' on the path (a pattern matching no recording: one line) or the condition
               table's rows -> meta["condition"] / meta["condition_segments"] (`_conditions`;
               `record.window_conditions`)
    labels     hr, rr, a custom label (its unit, its range): kind "window" (times = window starts every hop_s,
                 window_s long, windows fully inside)
                 column -> the mean of the column's finite samples over each window (NaN / Inf samples are
                 missing, for the windows holding them only); file -> rows (start in s, or in the label's
                 time_unit; value), Inf -> NaN,
                 starts on the windows' grid (`on_window_grid`: another spacing than hop_s is refused); rows whose
                 window runs past the signal's end left out and counted, rows more than a window past it refused
                 (`rows_inside`: another recording's file); the recording's windows outside the file's first..last
                 row get NaN, no value, counted (`windows_without_rows`; over half: one warning line), and so do
                 those in a stretch without rows longer than a window (`label_holes`: off the wrist, a gap);
                 ecg (hr only) -> data.ecg.ecg_window_hr; doubtful windows hold NaN, counted in
                 meta["hr_doubtful"] and ds.report["hr_doubtful"]; beats (hr only: a chest strap's file) ->
                 data.strap.read_beats -> data.ecg.beat_train_hr, doubtful windows alike (meta["hr_reasons"])
               rhythm: table rows of this recording -> kind "class" (per recording, or per segment with
                 times = start_s and meta["rhythm_end_s"]); bp -> "sbp", "dbp" (value, mmHg);
               quality: column -> per-sample flags (kind "flags"); table -> value 1 good / 0 poor
    tables     `LabelTable`, read once: columns recording + rhythm / sbp, dbp / quality / condition (rhythm and
               condition segments: start_s and end_s; a condition table's other columns refused); a missing column, a
               text cell in a numeric one, a row naming no recording under root, rows of one recording that disagree
               (or overlapping segments of different rhythms) are one line naming the table; recordings without a row
               are said (count, an example) and kept in ds.report["no_label_row"] {label: {table, records, of,
               example}}
    check      readers.check_record: rates, NaN, flat PPG, labels inside the signal; hr, rr, sbp, dbp inside
               PLAUSIBLE (hr 20-300 BPM, rr 2-80 breaths/min, sbp 40-300, dbp 10-200 mmHg) and sbp > dbp, else one
               line naming the file, the label, how many values and one (built-in layouts' task labels too)

Order: generic files by record id; built-in layouts in their reader's order (the order the task loaders
always used). Built-in layouts: `readers.read_dataset(root, kind=format)`, each record then named by the file (its
`name:`, as a generic format's are; the reader names it by its layout), and each reader label named in `labels` is
copied to the task name (bp: [sbp, dbp]). In both cases `exclude` drops the named recordings and reports
each one (`log`, ds.report["excluded"]); an excluded name that matches nothing is refused (a typo would
otherwise silently keep a recording), except in sqtool's shipped files (a partial copy of a dataset may lack
the excluded file).
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sqtool.core import SqtoolError, check_fs
from sqtool.data.dataset_file import ACC_UNITS, STAMPS, STANDARD_GRAVITY, Channel, DatasetFile, acc_unit
from sqtool.data.readers._common import (RATE_TOL, TIME_UNITS, check_bp, check_plausible, check_plausible_labels,
                                         every_kth_row, rows_per_sample)
from sqtool.data.record import Label, Record

if TYPE_CHECKING:
    from sqtool.data.readers._common import TimeGrid


def read_records(ds: DatasetFile, log=None, max_records: int = 0, on_error: str = "raise") -> list[Record]:
    """on_error="skip": a bad file (unreadable, corrupt, failing a check) is left out, its one-line error kept in
    ds.report["skipped"] (and said through `log`) instead of stopping the read."""
    say = log or (lambda m: None)
    if on_error not in ("raise", "skip"):
        raise SqtoolError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    bad: list[str] = []                             # one-line errors of the files left out
    gone: set[str] = set()                          # record ids of skipped files
    unread: set[str] = set()                        # record ids of excluded files (generic formats: not read)
    tables: dict[str, LabelTable] = {}              # label -> its table (generic formats)
    if ds.builtin:
        recs = _builtin_records(ds, on_error, bad)
        ids = [str(r.record_id) for r in recs]
        recs = [r for r, k in zip(recs, _picked(ds, ids, gone)) if k]
    else:
        files = _files(ds)
        tables = _tables(ds, files)                 # label tables checked against every recording, picked or not
        files = [p for p, k in zip(files, _picked(ds, [_record_id(ds, p) for p in files], gone)) if k]
        recs = list(_read_files(ds, files, tables, on_error, bad, gone, unread))
    recs = _whole_file_checks(ds, recs, tables, bad, gone, unread, on_error, say)
    return recs[:max_records or None]


def _read_files(ds: DatasetFile, files: list[Path], tables: dict, on_error: str, bad: list[str], gone: set[str],
                unread: set[str]):
    """Yield the record of each file of `files` in turn (generic formats); an excluded one is never read (it may be
    the broken one), its id added to `unread`; with on_error "skip" a bad one is left out, its line appended to
    `bad` and its id to `gone` (an excluded bad file is no unknown name)."""
    for p in files:
        if (rid := _record_id(ds, p)) in ds.exclude:
            unread.add(rid)
            continue
        try:
            rec = _read_one(ds, p, tables)
        except SqtoolError as e:
            if on_error == "raise":
                raise
            bad.append(str(e))
            gone.add(rid)
            continue
        yield rec


def iter_read_records(ds: DatasetFile, log=None, on_error: str = "raise", notes: str = "summary"):
    """`read_records` one recording at a time, for a command that looks at each once (`data inspect`, `data
    quality`): yields the records read_records returns, in its order, and keeps of each only what the checks over
    the whole file read (ids, labels, meta; not its signals), so memory holds one recording, not the dataset (2.0
    GB for 134 h of 125 Hz NPZ, read whole). Those checks, and ds.report, come once the last record is yielded.
    A built-in layout is read whole, as read_records reads it. `notes` "full": the label files' notes a line per
    file (data inspect), not a summary line per cause."""
    if ds.builtin:
        yield from read_records(ds, log, on_error=on_error)
        return
    say = log or (lambda m: None)
    if on_error not in ("raise", "skip"):
        raise SqtoolError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    bad: list[str] = []
    gone: set[str] = set()
    unread: set[str] = set()
    files = _files(ds)
    tables = _tables(ds, files)
    files = [p for p, k in zip(files, _picked(ds, [_record_id(ds, p) for p in files], gone)) if k]
    seen: list[Record] = []                         # each record read, less its signals
    in_order = sorted(files, key=lambda q: _record_id(ds, q))     # read_records' order (a stable sort by id)
    for rec in _read_files(ds, in_order, tables, on_error, bad, gone, unread):
        yield rec
        seen.append(dataclasses.replace(rec, signals={}))
        del rec
    _whole_file_checks(ds, seen, tables, bad, gone, unread, on_error, say, notes)


def _picked(ds: DatasetFile, ids: list[str], gone: set[str]) -> list[bool]:
    """Which of the recordings `ids` ds.recordings picks (`dataset_file.picks`; every one without patterns); the others'
    ids go to `gone` (an exclude naming one is no unknown name). None picked is one line naming some ids."""
    from sqtool.data.dataset_file import picks
    if not ds.recordings:
        return [True] * len(ids)
    keep = [picks(ds.recordings, i) for i in ids]
    if not any(keep):
        some = sorted(ids)[:3]
        raise SqtoolError(f"--recordings {','.join(ds.recordings)}: no recording of {ds.path} is picked ({len(ids)} "
                          f"recordings, e.g. {', '.join(some)}: a pattern matches a recording's id or a leading "
                          f"folder of it, e.g. {some[0].split('/')[0]})")
    gone.update(i for i, k in zip(ids, keep) if not k)
    return keep


def _whole_file_checks(ds: DatasetFile, recs: list[Record], tables: dict, bad: list[str], gone: set[str],
                       unread: set[str], on_error: str, say, notes: str = "summary") -> list[Record]:
    """What read_records checks and reports over all the records read (`recs`, in file order): skipped and
    excluded files, unknown exclude names, duplicate default subjects, unlabelled recordings, the files' notes
    (`notes_lines`: a summary line per cause, or `notes` "full": a line per file), label stamps and rates,
    doubtful ECG windows. Returns the records kept, in read_records' order."""
    if on_error == "skip":
        ds.report["skipped"] = bad
        for e in bad:                       # a built-in layout's too (its reader skipped them)
            say(f"{ds.name}: skipped a bad file: {e}")
    excluded = sorted({str(r.record_id) for r in recs if str(r.record_id) in ds.exclude} | unread)
    unknown = sorted(set(ds.exclude) - set(excluded) - gone)
    if unknown and not ds.shipped:          # a shipped file's exclusion may name a file a partial copy lacks
        raise SqtoolError(f"{ds.path}: exclude names {', '.join(unknown)}, not a recording under {ds.root}")
    for rid in excluded:
        say(f"{ds.name}/{rid}: excluded, left out ({ds.exclude[rid]})")
    ds.report["excluded"] = {rid: ds.exclude[rid] for rid in excluded}
    recs = [r for r in recs if str(r.record_id) not in ds.exclude]
    if not ds.builtin:                      # the records the default subject rule named (an NPZ's own member: not)
        _check_default_subjects(ds, [str(r.record_id) for r in recs
                                     if str(r.subject) == default_subject(ds, str(r.record_id))])
    if not ds.builtin:                      # built-in layouts keep their reader's order (the loaders' order)
        recs = sorted(recs, key=lambda r: str(r.record_id))
    ds.report["no_label_row"] = {}
    for t in tables.values():
        t.report_unlabelled(ds, recs, say)
    for key in ("label_rows_past_end", "label_rows_before_start"):   # rows whose window runs past the signal's end;
        if rows := sum(sum(r.meta.get(key, {}).values()) for r in recs):   # shifted by offset_s to before its start
            ds.report[key] = int(rows)
    if lack := sum(sum(r.meta.get("label_windows_without_row", {}).values()) for r in recs):
        ds.report["label_windows_without_row"] = int(lack)   # windows outside their label file's rows (NaN)
    from sqtool.data.dataset_tasks import warn
    for line in notes_lines(ds, recs, full=notes == "full"):
        warn(line)
    for name in ds.labels:
        if line := stamp_hint(ds, name, recs) or rate_note(ds, name, recs):
            warn(line)
    if ds.conditions.pattern is not None and recs and not any(map(has_condition, recs)):
        raise SqtoolError(f"{ds.path}: conditions.pattern '{ds.conditions.pattern}' matches none of the {len(recs)} "
                          f"recordings' paths under {ds.root} (e.g. {recs[0].record_id}); no window has a condition")
    ds.report["hr_doubtful"] = int(sum(r.meta.get("hr_doubtful", 0) for r in recs))
    reasons = Counter()                     # why, by reason (ecg.REASONS / STRAP_REASONS): data inspect says them
    for r in recs:
        reasons.update({k: int(n) for k, n in r.meta.get("hr_reasons", {}).items()})
    if reasons:
        ds.report["hr_reasons"] = dict(reasons)
    if ds.report["hr_doubtful"]:
        say(f"{ds.name}: {ds.report['hr_doubtful']} heart-rate windows with a doubtful ECG or strap reference "
            "(not scored)")
    if not recs:
        raise SqtoolError(f"{ds.path}: no recordings left under {ds.root}")
    return recs


# ----------------------------------------------------------------------------- one file at a time

def dataset_units(ds: DatasetFile, ctx: dict | None = None) -> list:
    """The files holding `ds`'s recordings, in read_records' order, no recording read: the units a miner hands
    its workers one at a time (`read_unit`), so memory holds one file's records, not the corpus. Generic formats:
    the paths under root, an excluded recording's left out (an exclude name matching no file refused, as
    read_records does), the label tables read once into `ctx` and their names checked; built-in layouts: their
    reader's items (excluded recordings are left out as they are read)."""
    from sqtool.data.readers import list_items
    if ds.builtin:
        return list(list_items(ds.root, ds.format)[1])
    files = _files(ds)
    tables = _tables(ds, files)
    if ctx is not None:
        ctx["tables"] = tables
    unknown = sorted(set(ds.exclude) - {_record_id(ds, p) for p in files})
    if unknown and not ds.shipped:
        raise SqtoolError(f"{ds.path}: exclude names {', '.join(unknown)}, not a recording under {ds.root}")
    keep = sorted((p for p in files if _record_id(ds, p) not in ds.exclude), key=lambda p: _record_id(ds, p))
    if ds.format != "npz":                  # an NPZ may name its own subject: read_records checks what it read
        _check_default_subjects(ds, [_record_id(ds, p) for p in keep])
    if not keep:
        raise SqtoolError(f"{ds.path}: no recordings left under {ds.root}")
    return keep


def read_unit(ds: DatasetFile, unit, ctx: dict) -> tuple[list[Record], list[str]]:
    """(the checked, labelled records of one unit of `dataset_units`, the ids of the excluded recordings it held).
    `ctx`: a per-process cache for one dataset file (its label tables, a built-in reader's spreadsheets), and the
    DatasetFile whose report collects what is said once per dataset (a suspect acc unit)."""
    ds = ctx.setdefault("dataset_file", ds)
    if not ds.builtin:
        if "tables" not in ctx:
            ctx["tables"] = _tables(ds)
        rec = _read_one(ds, Path(unit), ctx["tables"])
        from sqtool.data.dataset_tasks import warn
        for line in notes_lines(ds, [rec], full=True):      # no whole-file checks here: said as read
            warn(line)
        return [rec], []
    from sqtool.data.readers import read_item
    recs = read_item(ds.format, unit, ds.root, ctx)
    keep = [r for r in recs if str(r.record_id) not in ds.exclude]
    _builtin_labels(ds, keep, ctx.setdefault("positive_classes", {}))
    return keep, [str(r.record_id) for r in recs if str(r.record_id) in ds.exclude]


def unit_files(ds: DatasetFile, unit) -> list[Path]:
    """The files one unit of `dataset_units` is read from: a generic format's recording file, then the stream files
    its channels name (`file:`, whether there or not: `read_unit` says a missing one); a built-in layout's item."""
    if ds.builtin:
        return [unit]
    p = Path(unit)
    return [p, *sorted({stream_path(ds, p, c.file) for c in ds.channels.values() if c.file is not None})]


def _tables(ds: DatasetFile, files: list[Path] | None = None) -> dict:
    """label -> its LabelTable (generic formats), each read once; with `files`, their recording names checked."""
    tables = {name: LabelTable(ds, name) for name, src in ds.labels.items() if src.table is not None}
    if ds.conditions.table is not None:
        tables["condition"] = LabelTable(ds, "condition", ds.conditions.table)
    if files is not None:
        for t in tables.values():
            t.check_names(ds, files)
    return tables


def _files(ds: DatasetFile) -> list[Path]:
    from sqtool.data.readers._common import natural_key
    if not ds.root.is_dir():
        raise SqtoolError(f"{ds.path}: root {ds.root} is not a folder")
    files = sorted((p for p in ds.root.glob(ds.files) if p.is_file() and not p.name.startswith(".")),
                   key=natural_key)
    if not files:
        raise SqtoolError(f"{ds.path}: no recordings matching '{ds.files}' under {ds.root}"
                          + (" (folder is empty)" if not any(ds.root.iterdir()) else ""))
    return not_stream_files(ds, e4_sessions(ds, files) if ds.format == "e4" else files)


def described_above(path) -> str:
    """For a recording file, a stream file of one or a folder of them given alone: '(DATASET.yaml in a folder above
    describes it: give --data DATASET.yaml --recordings PATTERN)', naming the nearest dataset file above `path` whose
    root holds recordings at `path` and the pattern (`dataset_file.picks`) that picks them; '' when there is none. A
    stream-file layout's ppg.csv read alone has columns of the device's names, none of the model's channels.
    (`readers.describing_file` names a dataset file whose root IS a folder refused whole.)"""
    from sqtool.data.dataset_file import load_dataset_file
    if not path:
        return ""
    p = Path(path).absolute()
    for d in p.parents:
        if not (d / "dataset.yaml").is_file():
            continue
        try:
            ds = load_dataset_file(d / "dataset.yaml")
            rel = p.resolve().relative_to(ds.root.resolve()) if not ds.builtin else None
            files = _files(ds) if rel is not None else []
        except (SqtoolError, ValueError, OSError):
            continue
        ids = {Path(os.path.normpath(f.resolve())): _record_id(ds, f) for f in files}
        here = Path(os.path.normpath(p.resolve()))
        if here in ids:
            pattern = ids[here]                                   # one of its recordings
        elif any(here in f.parents or (p.is_file() and f.parent == here.parent) for f in ids):
            pattern = (rel if p.is_dir() else rel.parent).as_posix()   # a folder of them, or a session's stream file
        else:
            continue
        shown = os.path.relpath(ds.path) if not os.path.relpath(ds.path).startswith("..") else str(ds.path)
        return f"({shown} in a folder above describes it: give --data {shown} --recordings {pattern})"
    return ""


def e4_sessions(ds: DatasetFile, files: list[Path]) -> list[Path]:
    """Format e4: a recording is a session folder, read from its BVP.csv; a file `files:` matched beside a BVP.csv
    (EDA.csv, TEMP.csv, HR.csv, IBI.csv, tags.csv under "**/*.csv") stands for its session, no recording of its own
    (read as one, HR.csv was a recording at 1 Hz and IBI.csv refused). Said in one note line, kept in
    ds.report["not_recordings"] (their names); a file in a folder without a BVP.csv stays a recording."""
    from sqtool.data.readers._common import natural_key
    session = {p: p.parent / "BVP.csv" if (p.parent / "BVP.csv").is_file() else p for p in files}
    others = sorted({p.name for p, q in session.items() if q != p})
    if others and "not_recordings" not in ds.report:
        from sqtool.core.progress import item
        ds.report["not_recordings"] = others
        n = sum(q != p for p, q in session.items())
        item(f"note: {ds.path}: format e4: {n} files matching '{ds.files}' are a session's other E4 files "
             f"({', '.join(others)}), not recordings: each session is read from its BVP.csv")
    return sorted(set(session.values()), key=natural_key)


def not_stream_files(ds: DatasetFile, files: list[Path]) -> list[Path]:
    """`files` less those that are a recording's stream file (channels' `file:`): `files: "**/*.csv"` over
    session12/ppg.csv and session12/acc.csv is one recording, ppg.csv's, not two."""
    specs = [c.file for c in ds.channels.values() if c.file is not None]
    streams = {stream_path(ds, p, f) for p in files for f in specs if folder_of(ds, p) or FOLDER not in f}
    return [p for p in files if Path(os.path.normpath(p)) not in streams] if specs else files


# ----------------------------------------------------------------------------- built-in layouts

def _builtin_records(ds: DatasetFile, on_error: str = "raise", skipped: list | None = None) -> list[Record]:
    from sqtool.data.readers import read_dataset
    recs = read_dataset(ds.root, kind=ds.format, on_error=on_error, skipped=skipped)
    _builtin_labels(ds, recs, {})
    return recs


def _builtin_labels(ds: DatasetFile, recs: list[Record], positive: dict) -> None:
    """Name each record by the file (`ds.name`: a layout read under a name of its own, `format: troika` + `name:
    wrist_troika`, gives subject keys wrist_troika:01, the name every command shows and matches; a shipped file's name
    is its layout's), copy each reader label `ds.labels` names to its task name (bp: sbp, dbp) and check it, in place.
    `positive`: a cache, (label, the reader's classes) -> the af / good ones among them."""
    import dataclasses
    for r in recs:
        r.dataset = ds.name
        for name, src in ds.labels.items():
            names = src.reader if isinstance(src.reader, list) else [src.reader]
            if not all(n in r.labels for n in names):
                continue                     # no such label in this record: the task leaves it out
            if name == "bp":
                r.labels["sbp"], r.labels["dbp"] = r.labels[names[0]], r.labels[names[1]]
            elif name != names[0]:
                r.labels[name] = r.labels[names[0]]
            lab = r.labels[name] if name in ("rhythm", "quality") else None
            if lab is not None and lab.kind == "class" and lab.classes:
                if (name, lab.classes) not in positive:
                    positive[name, lab.classes] = positive_classes(ds, name, lab.classes, str(ds.path), rows=False)
                r.labels[name] = dataclasses.replace(lab, positive=tuple(positive[name, lab.classes]))
        check_plausible_labels(r.labels, f"{r.source or ds.root}: record {r.record_id}")   # renamed labels too


# ----------------------------------------------------------------------------- generic formats

def _columns(ds: DatasetFile, p: Path) -> tuple[dict, list[str], dict, TimeGrid | None, int, str | None]:
    """(columns {name: array}, names in file order, rates stated by the file {name: Hz}, the time column's
    `TimeGrid` (its rate, rows missing from its clock) or None, number of rows, the first sample's wall-clock
    time as ISO 8601 or None: a CSV's time column (`generic.read_times`), an NPZ's start_time, a WFDB / EDF
    header's base date and time; a CSV's units row {column: unit as written}, else {})."""
    where = str(p)
    if ds.format == "csv":
        return _csv_columns(ds, p)
    if ds.format == "npz":
        from sqtool.data.readers._common import (is_npz_rate as is_rate, npz_rates, read_npz_channels,
                                                 refuse_matrix_members)
        from sqtool.data.readers.generic import npz_sensor, npz_signals
        cols, unread = read_npz_channels(p, lambda name: is_rate(name) or name in ("start_time", "signals"))   # 1-D
        #   columns (a 2-D acc as acc_x, acc_y, acc_z) and rates; size-checked, one at a time; others: not picked
        npz_signals(cols, where)                    # a (C, N) signals member: its C named rows, as read_npz reads it
        named = {c.column for c in ds.channels.values()}
        refuse_matrix_members(unread, named.__contains__ if named else npz_sensor, where,   # a channel stored as a
                              f"and name each in {ds.path.name}'s channels")            # matrix
        rates = npz_rates(cols, [k for k in cols if not is_rate(k)],      # as read_npz: fs_<name>, else fs
                          lambda k, key: f"{where}: '{key}'")
        start = None
        if "start_time" in cols:                    # ISO text or seconds since 1970, as the plain NPZ reader reads it
            from sqtool.data.readers.generic import npz_start_time
            start = npz_start_time(cols.pop("start_time"), where)
        arrays = {k: v for k, v in cols.items() if np.ndim(v) == 1 and not is_rate(k)}
        n = max((len(v) for v in arrays.values()), default=0)
        own = {"subject": cols["subject"]} if np.ndim(cols.get("subject", [])) == 0 else {}   # its subject id: no channel
        return {**arrays, **own}, list(arrays), rates, None, n, start, {}
    # wfdb / edf through the wfdb package
    from sqtool.data.readers._common import first_line, require_file
    import wfdb
    try:
        if ds.format == "edf":
            from wfdb.io.convert.edf import read_edf
            rec = read_edf(str(require_file(p)))
        else:
            require_file(p)
            rec = wfdb.rdrecord(str(p.with_suffix("")))
            from sqtool.data.readers.generic import check_header_rate
            check_header_rate(p.with_suffix(".hea"), rec.fs)      # wfdb reads a rate field of 'abc' as 250 Hz
    except SqtoolError:
        raise
    except Exception as e:  # noqa: BLE001 - wfdb raises many kinds on bad files
        raise SqtoolError(f"{where}: corrupt or unreadable {ds.format.upper()} record ({first_line(e)})")
    names = [str(n).strip() for n in rec.sig_name]
    names = [f"{n}#{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]   # EDF labels cut to 16
    sig = rec.p_signal                                   # characters repeat: one column each, by position
    cols = {n: np.asarray(sig[:, i], np.float64) for i, n in enumerate(names)}
    from sqtool.data.readers.generic import edf_start_unknown, header_start_time
    start = None if ds.format == "edf" and edf_start_unknown(p) else header_start_time(rec)   # a placeholder: none
    return cols, names, {n: float(rec.fs) for n in names}, None, sig.shape[0], start, {}


def _csv_columns(ds: DatasetFile, p: Path, optional_time: bool = False, unit_key: str = "", own_unit: bool = True):
    """`_columns` of a CSV file (`generic.read_table`: a preamble, a units row, a trailing separator), its time
    column `ds.time_column` in `ds.time_unit` or its units row's (`generic.time_unit_of`: where the dataset file
    says one too, they must agree); `optional_time`: a file without that column is read without one (a stream
    file whose channel gives its own fs); `unit_key`: where the dataset file sets this file's time_unit, for the
    hints ("channels.acc_x": a stream file's; "": the top level); `own_unit` False: that key has none, the file
    takes the top level's (the recording file's, which read as it). Also returns the units row {column: unit}."""
    from sqtool.data.readers._common import drop_repeated_rows, time_grid
    from sqtool.data.readers.generic import column_named, read_table, read_times, time_unit_of, unit_hint
    where = str(p)
    table = read_table(p)
    df = table.df
    if not table.header:
        from sqtool.data.readers.e4 import refuse_e4_rows
        refuse_e4_rows(df, where)
    df.columns = [str(c).strip() for c in df.columns]
    names = list(df.columns)
    grid, start = None, None
    at = f"{unit_key} in " if unit_key else ""
    tcol = None if ds.time_column is None else column_named(names, ds.time_column, where, "time_column")
    if ds.time_column is not None and (tcol is not None or not optional_time):
        if tcol is None:
            raise SqtoolError(f"{where}: time column '{ds.time_column}' missing (has {', '.join(names)})")
        said = bool(own_unit and unit_key) or "time_unit" in ds.units_said   # said in the dataset file, not defaulted
        unit = time_unit_of(table, tcol, ds.time_unit if said else None, where, f"{ds.path.name} says "
                            f"time_unit: {ds.time_unit}" + (f" ({unit_key})" if unit_key and own_unit else "")) \
            or ds.time_unit
        from_row = tcol in table.units and not said           # its units row (or name) says it: the hints say so
        t, start = read_times(df[tcol], tcol, where, unit)
        df, t = drop_repeated_rows(df, t, where)
        grid = time_grid(t, f"{where}: column '{tcol}'",
                         ms_hint=(unit_hint(tcol, "ms") if from_row else
                                  f"add time_unit: ms to {at}{ds.path.name}") if unit == "s" else None,
                         unit_hint=(TIME_UNITS[unit], f"{unit_hint(tcol, 's')} (the column is in seconds)"
                                    if from_row else f"drop time_unit: {unit} from {at}{ds.path.name} "
                                    "(the column is in seconds)" if own_unit else f"add time_unit: s to {at}"
                                    f"{ds.path.name} (the column is in seconds; the top level's time_unit: "
                                    f"{unit} is the recording file's)") if unit != "s" else None,
                         start=start)
    return {c: df[c] for c in names}, names, {}, grid, len(df), start, table.units


def _pick(cols: dict, names: list[str], column, where: str, what: str):
    """(the column's name, its values) of `column` (a name, a name without the unit written at its end, or a
    0-based position) among a file's columns; one line where none or several are meant."""
    from sqtool.data.readers.generic import column_named
    if isinstance(column, int):
        if not 0 <= column < len(names):
            raise SqtoolError(f"{where}: {what} is column {column}, but the file has {len(names)} columns "
                              f"(0..{len(names) - 1})")
        column = names[column]
    if column not in cols and (named := column_named(names, column, where, what)) is not None:
        column = named                                   # a CSV column by its name without its unit: `ppg [a.u.]`
    if column not in cols:
        same = [n.rpartition("#")[2] for n in names if n.rpartition("#")[0] == column]
        if same:                                         # a repeated label (made unique by position above)
            raise SqtoolError(f"{where}: {what}: column '{column}' names {len(same)} columns (positions "
                              f"{', '.join(same)}); give the position instead, e.g. {{column: {same[0]}}}")
        raise SqtoolError(f"{where}: {what}: column '{column}' missing (has {', '.join(names)})")
    return column, cols[column]


def _own_rows_hint(v, fs_rows: float | None) -> str:
    """The end of a rate mismatch's line when the column is blank on many of the time column's rows: streams logged
    on rows of their own (a 64 Hz PPG and a 50 Hz accelerometer, each row stamped by the one that wrote it), which
    no `fs:` reads; how to write them instead. '' otherwise (a whole column at another rate: the rate is wrong)."""
    if fs_rows is None or not hasattr(v, "notna") or not len(v) or (filled := float(v.notna().mean())) > 0.9:
        return ""
    steps = np.unique(np.diff(np.flatnonzero(v.notna().to_numpy())))
    if steps.size == 1 and steps[0] > 1:                 # a slower stream in every k-th row, at another rate than said
        return f" (its column has one value every {steps[0]} rows: a {fs_rows / steps[0]:.4g} Hz stream?)"
    return (f" (its column has a value on {100 * filled:.0f} % of the rows: streams stamped on rows of their own, "
            "interleaved, are not read; give each channel a value on every row, or on every k-th row of a regular "
            "time column (fs: the rows' rate / k), or each stream a CSV of its own with its time column (channels: "
            "{name: {file: acc.csv, column: ...}}), or write each recording as an NPZ with one array and fs_<channel> "
            "per channel)")


def _numeric(v, col: str, where: str, grid: TimeGrid | None = None) -> np.ndarray:
    """A column as float64 samples; with the time column's `grid`, rows missing from its clock are NaN."""
    if hasattr(v, "to_numpy"):                     # a pandas column: text cells are an error, not NaN
        from sqtool.data.readers._common import numeric_column
        x = numeric_column(v.to_frame(col), col, where)
        return grid.spread(x) if grid is not None else x
    return np.asarray(v, np.float64)


def default_subject(ds: DatasetFile, record_id: str) -> str:
    """The subject of recording `record_id` without a subject rule: its file's name without extension(s); an E4
    recording's (always BVP.csv) its session folder's name (S1/BVP -> S1; a BVP.csv in root: root's name)."""
    folder, _, name = record_id.rpartition("/")
    if ds.format == "e4":
        return folder.rpartition("/")[2] or ds.root.name
    return name.split(".")[0]


def _check_default_subjects(ds: DatasetFile, record_ids: list[str]) -> None:
    """With no subject rule (value, column or pattern), refuse a file name that names recordings in two folders
    (`readers._common.refuse_name_clash`: one subject of two folders' files, a possible leak); E4 sessions: a
    session folder's name in two folders (P01/S1/BVP, P02/S1/BVP)."""
    from sqtool.data.readers._common import refuse_name_clash
    s = ds.subject
    if s.value is None and s.column is None and s.pattern is None:
        if ds.format == "e4":
            refuse_name_clash([r.rpartition("/")[0] for r in record_ids], str(ds.path), ds.path.name, unit="folder")
        else:
            refuse_name_clash(record_ids, str(ds.path), ds.path.name)


def _record_id(ds: DatasetFile, p: Path) -> str:
    """A file's record id: its path under root without the extension(s)."""
    return re.sub(r"\.[^/]*$", "", p.relative_to(ds.root).as_posix())


def _read_one(ds: DatasetFile, p: Path, tables: dict | None = None) -> Record:
    where = str(p)
    own = _own_stream(ds, p)
    cols, names, rates, grid, n, start = own.cols, own.names, own.rates, own.grid, own.n, own.start
    fs_t = grid.fs if grid is not None else None
    rel = p.relative_to(ds.root).as_posix()
    record_id = _record_id(ds, p)
    signals, fs, said = {}, {}, {}
    channels = dict(ds.channels or npz_channels(ds, cols, names, where))   # each its units row's unit, below
    streams: dict[str, Stream] = {}                  # channel -> the stream file it is read from (CSV)
    if any(spec.file is not None for spec in channels.values()):
        own, streams, starts = read_streams(ds, p, channels, own)
        cols, names, grid, n, start = own.cols, own.names, own.grid, own.n, own.start
    units: dict[str, str] = {}                       # channel -> its units-row cell, as written
    for ch, spec in channels.items():
        s = streams.get(ch) or Stream(p, ds, cols, names, grid, n, start, rates, units=own.units)
        spec = channels[ch] = _units_row_unit(ds, ch, spec, s, units)
        signals[ch], fs[ch], said[ch] = _channel(s.view, ch, spec, s.cols, s.names, s.rates, s.grid, str(s.path))
    check_acc_unit(ds, channels, signals, fs, where, csv_units=units)
    row_fs = ds.fs or fs_t or own.fs or next(iter(fs.values()))      # the rate of the recording file's rows
    subject = _subject(ds, cols, names, rel, default_subject(ds, record_id), where)
    rec = Record(dataset=ds.name, subject=subject, record_id=record_id, signals=signals, fs=fs,
                 meta={"format": ds.format, "rows": n, **({"start_time": start} if start else {}),
                       **({"units": units} if units else {})}, source=where)
    if said.get(rec.primary_channel()):              # a rate said, not measured by a time column: rate_hint's
        rec.meta["rate_said"] = said[rec.primary_channel()]
    if streams:                                      # stream files cut to their overlap: within a sample of it
        rec.check_spans(slack=1)
        rec.meta["stream_files"] = sorted({os.path.relpath(s.path, p.parent) for s in streams.values()})
        stream_start_note(ds, rec, starts)
    if ds.format == "npz":                           # arrays of their own lengths: a shorter one is refused, as
        rec.check_spans(slack=1)                     # read_npz does, never cut to by the stream
        used = {_pick(cols, names, ch.column, where, "")[0] for ch in channels.values()} | \
            not_channels(ds, cols, names, where)
        if unread := [f"{k} ({len(cols[k])},)" for k in names if k not in used]:   # as the bare reader names them
            rec.meta["unread_arrays"] = unread                                     # (data inspect's note)
    _labels(ds, rec, cols, names, row_fs, where, tables or {}, grid)
    _conditions(ds, rec, rel, tables or {})
    from sqtool.data.readers import check_record
    return check_record(rec)


def _own_stream(ds: DatasetFile, p: Path) -> Stream:
    """The recording's own file, read once: an E4 file with its header's start and rate, else `_columns`."""
    if ds.format == "e4":
        return _e4_stream(ds, p)
    cols, names, rates, grid, n, start, units = _columns(ds, p)
    return Stream(p, ds, cols, names, grid, n, start, rates, units=units)


def _units_row_unit(ds: DatasetFile, ch: str, spec: Channel, s: "Stream", units: dict) -> Channel:
    """Channel `ch` as its file's units row, or the unit its column's name ends with, says (`generic.read_table`'s
    `units`; the unit as written into `units[ch]`): an acc channel whose unit names one of ACC_UNITS
    (`generic.acc_unit_of`) is read in that unit, as `unit:` would read it (a `unit:` in the dataset file must be the
    same: `generic.agreed_unit`); any other unit (a PPG's a.u., counts, mV) is a label."""
    from sqtool.data.readers.generic import acc_unit_of, agreed_unit, unit_from
    if not s.units:
        return spec
    col = _pick(s.cols, s.names, spec.column, str(s.path), f"channel '{ch}'")[0]
    if (written := s.units.get(col)) is None:
        return spec
    units[ch] = written
    if not ch.startswith("acc") or (unit := acc_unit_of(written)) is None:
        return spec
    said = spec.unit if f"channels.{ch}.unit" in ds.units_said else None
    return dataclasses.replace(spec, unit=agreed_unit(unit, said, f"{s.path}: channel '{ch}' (column '{col}')",
                                                      f"{ds.path.name} says channels.{ch}.unit: {said}",
                                                      unit_from(col)))


def _channel(ds: DatasetFile, ch: str, spec: Channel, cols, names, rates: dict, grid: TimeGrid | None, where: str):
    """(samples, rate, how the rate was said or None) of channel `ch` read from the columns of file `where`: its
    column * gain + offset (acc_* in g), at its own fs, else the file's fs, stored rate or time column's; a rate
    said that disagrees with the time column or header is one line."""
    fs_t = grid.fs if grid is not None else None
    col, v = _pick(cols, names, spec.column, where, f"channel '{ch}'")
    r = spec.fs or ds.fs or rates.get(col) or fs_t
    said = (f"channels.{ch}.fs: {spec.fs:g} (Hz) in {ds.path.name}" if spec.fs else f"fs: {ds.fs:g} (Hz) "
            f"in {ds.path.name}" if ds.fs else f"the file's stored rate, {r:g} Hz," if rates.get(col) else
            None)                                        # None: measured by the time column
    if r is None:
        raise SqtoolError(f"{where}: no sampling rate for channel '{ch}' (give fs: in {ds.path.name}, or a "
                          "time_column)")
    every = rows_per_sample(spec.fs, fs_t)          # > 1: a slower stream in every k-th row of the file
    for given, what in ((spec.fs, f"channels.{ch}.fs"), (ds.fs, "fs")):
        if given is None:
            continue
        for other, src in ((fs_t if every == 1 else None, f"time column '{ds.time_column}'"),
                           (rates.get(col), "file's header")):
            if other is not None and abs(other - given) > RATE_TOL * given:
                raise SqtoolError(f"{where}: {what} {given:g} Hz disagrees with the {src} ({other:.4g} Hz); "
                                  "wrong sampling rate" + _own_rows_hint(v, other if src != "file's header"
                                                                        else None))
        break
    x = _numeric(v, col, where, grid) * spec.gain + spec.offset
    if every > 1:
        x = every_kth_row(x, every, fs_t, f"{where}: channels.{ch}.fs {spec.fs:g} Hz", "leave its fs out")
    if ch.startswith("acc") and ACC_UNITS[spec.unit] != 1.0:      # to g (unit checked when parsed)
        x = x * ACC_UNITS[spec.unit]
    return x, check_fs(float(r), f"{where}: channel '{ch}'"), said


# ----------------------------------------------------------------------------- stream files (CSV)
# A recording of one file per stream (session12/ppg.csv + session12/acc.csv): the file `files:` matches is the
# recording's own (the primary); a channel with `file:` is read from that stream file, beside it. Streams whose
# time columns share a clock are cut to their overlap; a stream without one starts with the primary.

@dataclasses.dataclass
class Stream:
    """One CSV file of a recording, read once: its columns (`_columns`), as `view` (the dataset file with the
    file's own time column and unit) reads them."""
    path: Path
    view: DatasetFile
    cols: dict
    names: list[str]
    grid: TimeGrid | None
    n: int                          # rows
    start: str | None               # its first row's wall-clock time (ISO 8601), or None
    rates: dict = dataclasses.field(default_factory=dict)
    origin: float | None = None     # its first row's time on its clock, s (None: no time column)
    fs: float | None = None         # its rows' rate (the time column's, else the one said)
    units: dict = dataclasses.field(default_factory=dict)     # its units row {column: unit as written} (CSV)

    @property
    def samples(self) -> int:
        return self.grid.n if self.grid is not None else self.n


def read_streams(ds: DatasetFile, p: Path, channels: dict[str, Channel], own: Stream) -> tuple[Stream, dict, dict]:
    """(the recording's own file `own`, {channel: its Stream}, {file: its first row, s after the earliest file's})
    for the channels read from stream files, each file read once, all of them cut to the time they share
    (`align_streams`)."""
    if own.origin is None:                          # an E4 file's header gave both
        own.origin = _clock_origin(own)
    own.fs = own.fs or (own.grid.fs if own.grid else None) or ds.fs or \
        next((c.fs for c in channels.values() if c.file is None and c.fs), None)
    if own.fs is None:
        raise SqtoolError(f"{p}: no sampling rate for the recording's own rows (give fs: in {ds.path.name}, or a "
                          "time_column)")
    files: dict[tuple, Stream] = {}
    out = {}
    for ch, spec in channels.items():
        if spec.file is None:
            continue
        q = stream_path(ds, p, spec.file)
        if not q.is_file():
            raise SqtoolError(f"{p}: channel '{ch}': stream file {q} not found (channels.{ch}.file: {spec.file!r}, "
                              "from the recording's folder)")
        key = (q, spec.time_column, spec.time_unit)
        if key not in files:
            readers = [c for c, o in channels.items() if (o.file, o.time_column, o.time_unit) == (spec.file,) + key[1:]]
            files[key] = _read_stream(ds, q, ch, spec, readers)
        out[ch] = files[key]
    starts = align_streams(own, list(files.values()))
    return own, out, starts


def stream_path(ds: DatasetFile, p: Path, file: str) -> Path:
    """Channel `file:` of the recording at `p`: from its folder, its placeholders filled (`fill_path`)."""
    return fill_path(ds, p, str(p.parent / file), file)


FOLDER = "{folder}"


def folder_of(ds: DatasetFile, p: Path) -> str:
    """The folder of the recording at `p` from root, what `{folder}` stands for (S1, P01/S1); "" for root itself."""
    folder = p.parent.relative_to(ds.root).as_posix()
    return "" if folder == "." else folder


def fill_path(ds: DatasetFile, p: Path, path: str, file: str | None = None) -> Path:
    """`path` (a label or stream `file:`, as written: `file`, when `path` is it joined to a folder) for the recording
    at `p`, normalised once its placeholders are filled: "{stem}" the file's name without extension(s) (BVP),
    "{record}" its record id (S1/BVP), "{folder}" its folder from root (S1): {record} is {folder}/{stem}. Filled
    first, "{record}/../hr.csv" is S1/hr.csv (normalised first, it was hr.csv). A recording in root itself has no
    folder: "{folder}" is one line naming it (filled with ".", hr/{folder}.csv read hr/..csv, "not found")."""
    folder = folder_of(ds, p)
    if FOLDER in path and not folder:
        raise SqtoolError(f"{p}: file {file or path!r}: {FOLDER} is a recording's folder under root "
                          f"({ds.root}), and this recording is in root itself: {FOLDER} needs recordings in "
                          "sub-folders (move it into one, or narrow files: to the sub-folders' recordings)")
    for k, v in (("{stem}", p.name.split(".")[0]), ("{record}", _record_id(ds, p)), (FOLDER, folder)):
        path = path.replace(k, v)
    return Path(os.path.normpath(path))


def _read_stream(ds: DatasetFile, q: Path, ch: str, spec: Channel, readers: list[str]) -> Stream:
    """Stream file `q` of channel `ch`: its time column (the channel's, else the top level's; a file without it
    whose channel gives fs is read at that rate) and unit; an E4 file: its header's start and rate. `readers`: the
    channels read from it (acc_x, acc_y, acc_z), each named where a hint says to set their time_unit."""
    if ds.format == "e4":
        return _e4_stream(ds, q)
    view = dataclasses.replace(ds, time_column=spec.time_column or ds.time_column,
                               time_unit=spec.time_unit or ds.time_unit)
    cols, names, _, grid, n, start, units = _csv_columns(view, q, optional_time=spec.fs is not None,
                                                         unit_key=", ".join(f"channels.{c}" for c in readers),
                                                         own_unit=spec.time_unit is not None)
    if grid is None:
        view = dataclasses.replace(view, time_column=None)
    s = Stream(q, view, cols, names, grid, n, start, units=units)
    s.origin, s.fs = _clock_origin(s), (grid.fs if grid else None) or spec.fs or ds.fs
    if s.fs is None:
        raise SqtoolError(f"{q}: no sampling rate for channel '{ch}' (give channels.{ch}.fs in {ds.path.name}, or "
                          "a time column)")
    return s


def _e4_stream(ds: DatasetFile, q: Path) -> Stream:
    """E4 file `q` (`readers.e4`): columns "0", "1", ... at the rate of its row 2 (said by its header, as a WFDB
    file's), from the instant of its row 1 (UTC seconds since 1970: every E4 file of a session is on one clock)."""
    from sqtool.data.readers.e4 import read_e4
    f = read_e4(q)
    return Stream(q, ds, f.cols, f.names, None, f.n, f.start, dict.fromkeys(f.names, f.fs), origin=f.t0, fs=f.fs)


def _clock_origin(s: Stream) -> float | None:
    """The first row's time of `s` on its own clock, in s (a number in its time unit, else its date-time)."""
    if s.grid is None:
        return None
    first = _pick(s.cols, s.names, s.view.time_column, str(s.path), "time column")[1].iloc[0]
    try:
        return float(first) * TIME_UNITS[s.view.time_unit]
    except (TypeError, ValueError):                 # a date-time: read_times read it
        import pandas as pd
        return pd.Timestamp(s.start).timestamp()


def _clock_kind(s: Stream) -> str | None:
    """What the times of `s`'s time column are on a wall clock: "local" (date-times without a time zone), "utc"
    (date-times with a UTC offset, or numbers since 1970: instants), None (no time column, or numbers from a start
    or a device's timer: no wall clock)."""
    if s.grid is None or s.start is None:
        return None
    import pandas as pd
    return "local" if pd.Timestamp(s.start).tzinfo is None else "utc"


def _clock_text(s: Stream) -> str:
    """How `s`'s time column gives its times, for a line naming two files whose clocks do not mix."""
    if _clock_kind(s) == "local":
        return "date-times without a time zone (local time)"
    first = _pick(s.cols, s.names, s.view.time_column, str(s.path), "time column")[1].iloc[0]
    try:
        float(first)
        return f"numbers since 1970 (UTC, {s.start})"
    except (TypeError, ValueError):
        return f"date-times with a UTC offset ({s.start})"


def check_same_clock(own: Stream, s: Stream) -> None:
    """One line naming both files when the recording's own file and stream file `s` have time columns that put no
    instant on one clock: date-times without a time zone (local time, read as if UTC) beside numbers since 1970
    or date-times with a UTC offset would be aligned off by the local UTC offset, silently. Two time-zone-less
    columns share their local clock; instants in different zones are compared as instants."""
    kinds = {_clock_kind(own), _clock_kind(s)}
    if kinds == {"local", "utc"}:
        col = s.view.time_column
        raise SqtoolError(f"{s.path}: its time column '{col}' holds {_clock_text(s)} but {own.path}'s "
                          f"'{own.view.time_column}' holds {_clock_text(own)}: a local time has no instant to align "
                          "on the other's clock (it would be off by the UTC offset); give both files the same kind "
                          "of time column, or the date-times their UTC offset (e.g. 2024-03-01T10:00:00+01:00)")


def align_streams(own: Stream, streams: list[Stream]) -> dict[Path, float]:
    """Cut the recording's own file and its stream files, in place, to the time they all cover: the recording starts
    where every stream has begun and ends where the first ends. Times on one clock when both have a time column
    (`check_same_clock`: local date-times beside instants are one line); a stream (or a recording) without one
    starts with the recording. No overlap is one line naming the file. Returns each file's first row, s after the
    earliest's (`stream_start_note`)."""
    for s in streams:
        if s.origin is not None and own.origin is not None:
            check_same_clock(own, s)
    t0 = own.origin or 0.0
    at = {id(s): s.origin if s.origin is not None and own.origin is not None else t0 for s in (own, *streams)}
    begin, end = t0, t0 + own.samples / own.fs
    for s in streams:
        b, e = at[id(s)], at[id(s)] + s.samples / s.fs
        if max(begin, b) >= min(end, e):
            raise SqtoolError(f"{s.path}: its times {b - t0:.6g}..{e - t0:.6g} s do not overlap the recording's "
                              f"{begin - t0:.6g}..{end - t0:.6g} s (from the first row of {own.path.name}): "
                              "another session's file, or time columns on different clocks?")
        begin, end = max(begin, b), min(end, e)
    for s in (own, *streams):
        a = int(round((begin - at[id(s)]) * s.fs))
        _cut(s, a, min(s.samples - a, int(round((end - begin) * s.fs))))
    first = min(at.values())
    return {s.path: at[id(s)] - first for s in (own, *streams)}


def _cut(s: Stream, a: int, m: int) -> None:
    """Keep samples a .. a + m of `s` (its rows on them; the wall-clock start moved with them)."""
    if a == 0 and m == s.samples:
        return
    if s.grid is None:
        rows = np.arange(a, a + m)
    else:
        rows = np.flatnonzero((s.grid.at >= a) & (s.grid.at < a + m))
        s.grid = dataclasses.replace(s.grid, at=s.grid.at[rows] - a, n=m,
                                     gaps=s.grid.gaps if rows.size < m else ())
    s.cols = {k: v.iloc[rows].reset_index(drop=True) for k, v in s.cols.items()}
    s.n = int(rows.size)
    if s.start is not None and a:
        import pandas as pd
        from sqtool.data.readers.generic import iso_time
        s.start = iso_time(pd.Timestamp(s.start) + pd.Timedelta(seconds=a / s.fs))


STREAM_START_TOL = 0.25    # of windows.hop_s: a recording's files whose first rows are further apart (0.5 s at hop_s 2)
#   are said: the recording starts at the last one's first row, and label-file times (predict's t, start_time) count
#   from there, a shift of the truth against a file counted from the recording file's own first row. Two files of one
#   device start within a sample or two of each other (20 ms at 50 Hz); a quarter hop is 25 such samples.


def stream_start_note(ds: DatasetFile, rec: Record, starts: dict[Path, float]) -> None:
    """A note (`record_note`) when the files of `rec` (`starts`: each one's first row, s after the earliest's,
    `align_streams`) begin more than STREAM_START_TOL * windows.hop_s apart: naming the recording, the files and
    their offsets, and the row every time of the recording counts from (the last file to begin)."""
    if len(starts) < 2 or (spread := max(starts.values())) <= STREAM_START_TOL * float(ds.windows.hop_s):
        return
    last = max(starts, key=starts.get)
    first = min(starts, key=starts.get)
    late = ", ".join(f"{q.name} {t:.2f} s" for q, t in sorted(starts.items(), key=lambda kv: kv[1]) if t > 0)
    record_note(rec, "stream_start", None, rec.source, 1,
                f"{rec.source}: recording {rec.record_id}: its files begin {spread:.2f} s apart ({late} after "
                f"{first.name}'s first row): it starts at {last.name}'s first row, and its label files' times (and "
                f"predict's) count from there, not from {first.name}'s; shift the label times by -{spread:.2f} s if "
                f"they count from {first.name}'s first row, or cut the files to one start",
                f"{rec.record_id}: {late} after {first.name}")


def not_channels(ds: DatasetFile, cols, names, where: str) -> set[str]:
    """The columns (members) of a recording that a dataset file reads as labels or its subject, not as channels."""
    return {_pick(cols, names, c, where, "")[0] for c in [
        *(src.column for src in ds.labels.values() if src.column is not None),
        *([ds.subject.column] if ds.subject.column is not None else [])]}


def npz_channels(ds: DatasetFile, cols, names, where: str) -> dict[str, Channel]:
    """The channels of an NPZ recording of a dataset file that names none (`channels:` left out): its 1-D numeric
    members that are no label or subject column, named as the plain NPZ reader names them
    (`generic.npz_channel_names`: ppg, acc_x, ...; its one-line error where it has none); a label's ECG channel
    that is not among them is one line."""
    from sqtool.data.readers.generic import npz_channel_names
    taken = not_channels(ds, cols, names, where)
    arrays = [k for k in names if k not in taken and np.issubdtype(np.asarray(cols[k]).dtype, np.number)]
    named = npz_channel_names(arrays, where)[0]
    for src in ds.labels.values():
        if src.ecg is not None and src.ecg not in named:
            raise SqtoolError(f"{where}: labels.hr.ecg names channel '{src.ecg}', not among the file's "
                              f"({', '.join(named)})")
    return {ch: Channel(column=k, unit=acc_unit("", where) if ch.startswith("acc") else "")   # acc: in g
            for ch, k in named.items()}


GRAVITY_BAND = (0.5, 2.0)           # g: the gravity a wrist accelerometer measures, through any motion
GRAVITY_WINDOW_S = 2.0              # s: the acc vector's mean over a window is gravity (motion averages out)


def check_acc_unit(ds: DatasetFile, channels: dict, signals: dict, fs: dict, where: str,
                   csv_units: dict | None = None) -> str | None:
    """One 'sqtool: warning:' line (and the likely unit returned) when the gravity that acc_x/y/z measure, in g
    after conversion, is outside GRAVITY_BAND while another of ACC_UNITS would put it inside: about 9.8 said g
    is m/s^2, about 1 said m/s^2 is g, about 1000 said g is mg. Gravity: the median over 2 s windows of the
    norm of the window's mean acc vector (1.0 +- 0.15 g on every TROIKA and wrist_exercise recording, running
    included). Never refused: a sensor without gravity (linear acceleration) measures about 0 however much it
    moves, fits no unit and is no warning. One axis in another unit than the other two (`axis_unit_note`) is said
    first, and then alone. `csv_units`: {channel: unit as written} where the CSV itself says one (its units row or
    column name): the fix named is there, not in the dataset file (whose `unit:` would then disagree with it)."""
    axes = ("acc_x", "acc_y", "acc_z")
    if not all(a in signals for a in axes) or len({len(signals[a]) for a in axes}) != 1 \
            or len({fs[a] for a in axes}) != 1:
        return None
    n = max(1, int(round(GRAVITY_WINDOW_S * fs["acc_x"])))
    w = len(signals["acc_x"]) // n
    if w == 0:
        return None
    acc = np.stack([np.asarray(signals[a][:w * n], np.float64) for a in axes], axis=1)     # (N, 3) in g
    win = acc.reshape(w, n, 3)                                                            # (W, n, 3)
    win = win[np.isfinite(win).all(axis=(1, 2))]      # windows holding a NaN sample say nothing
    if not len(win):
        return None
    if axis_unit_note(ds, channels, win, where, csv_units):   # one axis in another unit: said, not the three's
        return None
    units = {channels[a].unit for a in axes}
    if len(units) != 1:
        return None
    said = units.pop()
    med = float(np.median(np.linalg.norm(win.mean(axis=1), axis=1)))
    lo, hi = GRAVITY_BAND
    if lo <= med <= hi:
        return None
    raw = med / ACC_UNITS[said]                                   # the median as the file writes it
    likely = next((u for u, k in ACC_UNITS.items() if u != said and lo <= raw * k <= hi), None)
    gain = {float(channels[a].gain) for a in axes}              # one that converted the CSV's unit by hand: twice
    twice = _unit_from_csv(ds, axes, csv_units) and len(gain) == 1 and gain != {1.0} and lo <= med / gain.pop() <= hi
    if likely is None and med <= 2 * hi and not twice:   # about 0 (no gravity) or just outside the band: no warning
        return None
    seen = ds.report.setdefault("acc_unit_suspect", [])
    if not seen:                                  # once per dataset file (one declared unit), the rest counted
        from sqtool.data.dataset_tasks import warn
        in_g = "" if said == "g" else f" ({med:.3g} g)"          # 'as 3.72e+03 g', not 'as 3.72e+03 g (3.72e+03 g)'
        if twice:                                 # gain: converting by hand what the CSV's unit now converts
            warn(f"{where}: the accelerometer measures gravity as {med:.3g} g: the {said} its CSV writes is read as "
                 f"such (to g), and the acc channels' gain: {channels['acc_x'].gain:g} in {ds.path.name} converts it "
                 "again (a gain that converted the unit by hand); drop that gain if so (said for its first such "
                 "recording; all: ds.report['acc_unit_suspect'])")
        elif likely is None:                      # no unit fits: raw counts (of a sensor without a unit here)
            warn(f"{where}: the accelerometer measures gravity as {raw:.3g} {said}{in_g}, which fits no unit: "
                 f"raw sensor counts? give the acc channels gain: (g per count) in {ds.path.name}"
                 + ("" if not _unit_from_csv(ds, axes, csv_units) else " and drop the unit its CSV writes"))
        else:
            warn(f"{where}: the accelerometer measures gravity as {raw:.3g} {said}, which looks like {likely}, not "
                 f"{said} (gravity is 1 g = 9.81 m/s^2 = 1000 mg); {unit_fix(ds, axes, likely, csv_units)} if so "
                 "(said for its first such recording; all: ds.report['acc_unit_suspect'])")
    seen.append(str(where))
    return likely


def _unit_from_csv(ds: DatasetFile, axes, csv_units: dict | None) -> bool:
    """Whether any of `axes` is read in a unit its CSV writes (units row, column name) and the dataset file does not."""
    return any(a in (csv_units or {}) and f"channels.{a}.unit" not in ds.units_said for a in axes)


def unit_fix(ds: DatasetFile, axes, unit: str, csv_units: dict | None) -> str:
    """Where to say acc `axes` are in `unit`: the dataset file's `unit:`, or the CSV's own units row / column name
    where the unit read came from there (a `unit:` beside it would disagree with it: one error line)."""
    on = "the acc channels" if len(axes) == 3 else ", ".join(axes)
    if _unit_from_csv(ds, axes, csv_units):
        return f"write {unit} for {on} in the CSV (its units row or column name say otherwise)"
    return f"set unit: {unit} on {on} in {ds.path.name}"


AXIS_SCALES = (STANDARD_GRAVITY, 1 / STANDARD_GRAVITY)   # one axis in g read as m/s^2 (x 9.81 fits), or the reverse
AXIS_MOTION_BAND = (0.3, 3.3)   # an axis's motion (its RMS about each 2 s window's mean) over the geometric mean of
#   the other two: 0.37-2.65 on every TROIKA, wrist_exercise and E2E-PPG watch recording; one axis 9.81x off puts it
#   outside (0.37 x 9.81 = 3.6, 2.65 / 9.81 = 0.27)
AXIS_GRAVITY_GAIN = 4.0         # the spread of gravity's norm over 2 s windows (its median absolute deviation, of its
#   median) at least this many times smaller with one axis rescaled: a wrist turning moves gravity between axes of
#   one unit without changing its norm (best other rescaling on those recordings: 2.4x, at a spread of 0.2 %)
AXIS_SPREAD_FLOOR = 0.02        # a spread below 2 % is already steady: no evidence to gain
AXIS_MOTION_FLOOR = 1e-9        # g: an axis moving less is still (a device at rest writing 0.12 m/s^2 every sample: the
#   mean of a window of them differs from each by a rounding, 1e-17 g, whose ratios said 'reads 1/9.81 the scale')


def axis_unit_note(ds: DatasetFile, channels: dict, win: np.ndarray, where: str, csv_units: dict | None = None) -> bool:
    """One 'sqtool: warning:' line (True) when one accelerometer axis of `win` ((W, n, 3) samples of 2 s windows, in
    g after conversion) reads about 9.81x off the other two: rescaled by 9.81 or 1/9.81 (AXIS_SCALES), gravity's norm
    lies in GRAVITY_BAND and that axis's motion matches the others' (AXIS_MOTION_BAND), and either its motion did not
    before or gravity's norm is AXIS_GRAVITY_GAIN times steadier. An axis in g among two in m/s^2 (a dataset.yaml
    mistake, or a device that writes them so) read with no word: the whole-vector check saw gravity at 1 g when
    another axis carried it, or named all three. Once per dataset file, as that check: the rest counted in
    ds.report["acc_axis_unit_suspect"]. `csv_units`: as `check_acc_unit`'s."""
    axes = ("acc_x", "acc_y", "acc_z")
    lo, hi = GRAVITY_BAND

    def spread(m):                                                   # (W, 3) window means -> (median, spread)
        norm = np.linalg.norm(m, axis=1)
        med = float(np.median(norm))
        return med, float(np.median(np.abs(norm - med)) / med) if med > 0 else np.inf

    mean = win.mean(axis=1)                                          # (W, 3)
    motion = np.median(np.sqrt(((win - mean[:, None, :]) ** 2).mean(axis=1)), axis=0)          # (3,)
    if not np.all(motion > AXIS_MOTION_FLOOR):                      # an axis still: no motion to compare
        return False
    _, now = spread(mean)
    fits = []                                    # (-|log motion ratio|, axis, scale, motion before, after, g)
    for i, k in ((i, k) for i in range(3) for k in AXIS_SCALES):
        others = float(np.sqrt(np.prod(np.delete(motion, i))))
        before, after = motion[i] / others, motion[i] * k / others
        med, new = spread(mean * np.where(np.arange(3) == i, k, 1.0))
        evidence = not AXIS_MOTION_BAND[0] <= before <= AXIS_MOTION_BAND[1] or \
            (now >= AXIS_SPREAD_FLOOR and now >= AXIS_GRAVITY_GAIN * new)
        if lo <= med <= hi and AXIS_MOTION_BAND[0] <= after <= AXIS_MOTION_BAND[1] and evidence:
            fits.append((-abs(np.log(before)), i, k, before, after, med))
    if not fits:                                 # the axis furthest from the others' motion: one axis shrunk makes
        return False                             # another look large beside it, but by half as much (a geometric
    _, i, k, before, after, med = min(fits)      # mean of two holds the shrunk one)
    seen = ds.report.setdefault("acc_axis_unit_suspect", [])
    if not seen:
        from sqtool.data.dataset_tasks import warn
        said = channels[axes[i]].unit
        unit = next((u for u, c in ACC_UNITS.items() if abs(np.log(c / (ACC_UNITS[said] * k))) < 0.01), None)
        rest = [a for a in axes if a != axes[i]]
        fix = unit_fix(ds, (axes[i],), unit, csv_units) if unit else f"give {axes[i]} gain: {k:.6g} in {ds.path.name}"
        warn(f"{where}: {axes[i]} reads about {'1/' if k > 1 else ''}{STANDARD_GRAVITY:.2f} the scale of {rest[0]} "
             f"and {rest[1]} (its motion {before:.2g}x theirs; read as {unit or f'x{k:.4g}'} instead of {said}: "
             f"{after:.2g}x, and gravity a steady {med:.2f} g): {fix} if so (said for its first such recording; all: "
             "ds.report['acc_axis_unit_suspect'])")
    seen.append(str(where))
    return True


def _subject(ds: DatasetFile, cols, names, rel: str, default: str, where: str) -> str:
    s = ds.subject
    if s.value is not None:
        return str(s.value)
    if s.column is not None:
        _, v = _pick(cols, names, s.column, where, "subject")
        u = np.unique(np.asarray(v).astype(str))
        if len(u) != 1:
            raise SqtoolError(f"{where}: subject column '{s.column}' holds {len(u)} subjects ({', '.join(u[:3])}); "
                              "one recording is one subject")
        return str(u[0])
    if s.pattern is not None:
        m = re.search(s.pattern, rel)
        if not m:
            raise SqtoolError(f"{where}: subject.pattern '{s.pattern}' does not match '{rel}'")
        return str(m.group("subject") if "subject" in m.re.groupindex else m.group(1 if m.re.groups else 0))
    if "subject" in cols and "subject" not in names:     # an NPZ's own `subject` member, as read_npz reads it
        return str(cols["subject"])
    return default


def _conditions(ds: DatasetFile, rec: Record, rel: str, tables: dict) -> None:
    """The recording's condition(s) into its meta (`record.window_conditions` reads them): conditions.pattern's group
    'condition' in its path relative to root (no match: none), or its rows of the condition table (one: the whole
    recording's; start_s / end_s: meta["condition_segments"], in time order)."""
    c = ds.conditions
    if c.pattern is not None:
        m = re.search(c.pattern, rel)
        if m and m.group("condition"):
            rec.meta["condition"] = m.group("condition")
    elif c.table is not None:
        rows = tables["condition"].rows(rec)
        if len(rows) and "start_s" in rows.columns:
            rows = rows.sort_values("start_s", kind="stable")
            rec.meta["condition_segments"] = [[float(a), float(b), str(k)] for a, b, k in
                                              zip(rows["start_s"], rows["end_s"], rows["condition"])]
        elif len(rows):
            rec.meta["condition"] = str(rows["condition"].iloc[0])


def has_condition(rec: Record) -> bool:
    return bool(rec.meta.get("condition") or rec.meta.get("condition_segments"))


# ----------------------------------------------------------------------------- labels

def _window_label(ds: DatasetFile, name: str, rec: Record, cols, names, row_fs: float, where: str,
                  grid: TimeGrid | None = None) -> Label | None:
    from sqtool.data.ecg import window_starts
    src = ds.labels[name]
    unit = "bpm" if name == "hr" else "breaths/min" if name == "rr" else src.unit   # else: a custom label's
    w, h = float(ds.windows.window_s), float(ds.windows.hop_s)
    if src.column is not None:
        col, v = _pick(cols, names, src.column, where, f"label '{name}'")
        x = _numeric(v, col, where, grid)
        _plausible(ds, name, x, f"{where}: column '{col}'")
        starts = window_starts(len(x), row_fs, w, h)
        a = np.round(starts * row_fs).astype(int)
        b = a + int(round(w * row_fs))
        fin = np.isfinite(x)                    # NaN / Inf samples are missing: left out of their windows' means
        c = np.concatenate([[0], np.cumsum(np.where(fin, x, 0.0))])
        k = np.concatenate([[0], np.cumsum(fin)])
        with np.errstate(invalid="ignore", divide="ignore"):
            vals = (c[b] - c[a]) / (k[b] - k[a])
        return Label(values=np.where(k[b] > k[a], vals, np.nan), times=starts, unit=unit, kind="window", window_s=w)
    if src.file is not None:
        f = fill_path(ds, Path(rec.source), src.file)
        if not f.is_file():
            raise SqtoolError(f"{where}: label '{name}' file {f} not found")
        from sqtool.data.readers._common import numeric_column
        from sqtool.data.readers.generic import column_named
        table = label_table(f)                                     # as a recording's: separator, units row, ...
        df = table.df
        tcol, vcol = (next((c for n in ((own,) if own else auto) if (c := column_named(
                          list(df.columns), str(n).strip(), str(f), "", ignore_case=True)) is not None), None)
                      for own, auto in ((src.start_column, ("start", "start_s", "time", "t")),
                                        (src.value_column, (name, "bpm", "value", "rr"))))
        if tcol is None or vcol is None:
            raise SqtoolError(f"{f}: label file needs a start column ({src.start_column or 'start/time'}) and a value "
                              f"column ({src.value_column or name}); it has {', '.join(df.columns)} (name yours: "
                              f"{name}: {{file: ..., start_column: ..., value_column: ...}})")
        check_label_unit(table, vcol, unit, name, f, custom=name not in ("hr", "rr"))
        v = numeric_column(df, vcol, str(f))
        _plausible(ds, name, v, f"{f}: column '{vcol}'")
        t = label_times(df[tcol], tcol, src, rec, f, name, file_time_unit(table, tcol, src, f, said_unit(ds, name))) \
            - STAMPS[src.stamp] * w                                # (rows,) starts, s
        if src.offset_s:                                           # the reference's clock onto the recording's
            t, v = shifted_rows(on_window_grid(t, ds, f, name, rec), v, ds, name, rec, f)
        not_before_start(t, ds, name, rec, f, tcol)
        t, v = rows_inside(t, v, ds, name, rec, f)
        if src.stamp == "start" and not src.offset_s and np.isfinite(t).any():     # what stamp_hint reads
            rec.meta.setdefault("label_first_row", {})[name] = float(np.nanmin(t))
        if not src.offset_s:                                       # shifted: on_window_grid read the file's own
            t = on_window_grid(t, ds, f, name, rec)
        t, v = one_row_per_start(t, v, f, name)
        lack = windows_without_rows(t, ds, name, rec, f)           # no value: NaN, left out and counted
        t, v = np.concatenate([t, lack]), np.concatenate([np.asarray(v, np.float64), np.full(len(lack), np.nan)])
        order = np.argsort(t, kind="stable")        # rows in any order: window_label / interpolation need time order
        return Label(values=np.where(np.isfinite(v), v, np.nan)[order], times=t[order], unit=unit,
                     kind="window", window_s=w)
    if src.ecg is not None:
        from sqtool.data.ecg import ecg_window_hr
        starts, hr, flags, info = ecg_window_hr(rec.signals[src.ecg], rec.fs[src.ecg], w, h)
        rec.meta.update(hr_windows=int(len(hr)), hr_doubtful=int(np.sum(flags)), hr_reasons=info["reasons"],
                        hr_source=f"ECG channel '{src.ecg}' ({info.get('detector', 'neurokit2')})")
        return Label(values=np.where(flags, np.nan, hr), times=starts, unit="bpm", kind="window", window_s=w)
    if src.beats is not None:
        from sqtool.data.ecg import beat_train_hr
        from sqtool.data.strap import read_beats
        f = fill_path(ds, Path(rec.source), src.beats)
        beats, how = read_beats(f, src, rec, name, w, said_unit(ds, name))
        starts = label_starts(ds, rec)
        hr, flags, reasons = beat_train_hr(beats, starts, w)
        rec.meta.update(hr_windows=int(len(hr)), hr_doubtful=int(np.sum(flags)),
                        hr_reasons={r: int(m.sum()) for r, m in reasons.items()}, hr_source=f"chest strap: {how}")
        return Label(values=hr, times=starts, unit="bpm", kind="window", window_s=w)
    return None


def _plausible(ds: DatasetFile, name: str, values, where: str) -> None:
    """hr, rr inside PLAUSIBLE; a custom label inside its range: (none given: any finite value); else one line."""
    src = ds.labels[name]
    if name in ("hr", "rr") or src.range:
        check_plausible(name, values, where, bounds=None if name in ("hr", "rr") else (*src.range, src.unit))


def row_step(t: np.ndarray) -> float:
    """The median spacing of label-file start times `t` (distinct finite ones); 0 for fewer than two."""
    u = np.unique(t[np.isfinite(t)])
    return float(np.median(np.diff(u))) if u.size > 1 else 0.0


def looks_ms(step: float, ds: DatasetFile, name: str) -> bool:
    """Whether label `name`'s file, its rows `step` s apart as read in seconds, is in milliseconds: rows 100-60,000
    "s" apart that would be 0.1-60 s apart (a monitor's series), and the label not given in ms already."""
    said_s = name in ds.labels and ds.labels[name].time_unit == "s"
    return said_s and 0.1 <= step / 1000 <= 60


def ms_fix(ds: DatasetFile, name: str) -> str:
    """How to say a label file's times are in milliseconds."""
    return (f"label-file times are read in seconds (the top-level time_unit is the recordings' time column's): say "
            f"time_unit: ms in labels.{name} of {ds.path.name}")


def check_offset(src, rec: Record, f: Path, name: str) -> float:
    """Label `name`'s offset_s (s), checked against `rec`: a shift longer than the recording moves every row off it
    (a time in ms or minutes, or the clocks' difference in hours): one line naming it, the file and the recording."""
    dur = rec.span_s()
    if abs(src.offset_s) > dur:
        raise SqtoolError(f"{f}: labels.{name}.offset_s is {src.offset_s:g} s, more than the {dur:.1f} s of recording "
                          f"{rec.record_id}: no row could stay on it (offset_s is in seconds, the reference's clock "
                          "minus the recording's; wall-clock times on the recording's clock: origin: clock)")
    return float(src.offset_s)


def shifted_rows(t: np.ndarray, v: np.ndarray, ds: DatasetFile, name: str, rec: Record, f: Path):
    """Label file `f`'s rows (starts `t` on its own window grid, values `v`) moved by labels.`name`.offset_s onto the
    recording's clock: rows then before its first sample (the reference started first) are left out and counted
    (rec.meta["label_rows_before_start"]); rows a multiple of hop_s away stay on the window grid, others lie a
    fraction of hop_s off it and each window takes the value interpolated at its centre (tasks._label_at_centres)."""
    off = check_offset(ds.labels[name], rec, f, name)
    h = float(ds.windows.hop_s)
    t = t + off
    if abs(off / h - round(off / h)) * h <= max(GRID_TOL * h, 1e-6):          # a whole number of hops: on the grid
        t = np.where(np.isfinite(t), np.round(t / h) * h, t)
    early = np.isfinite(t) & (t < -max(GRID_TOL * h, 1e-6))
    if early.any():
        rec.meta.setdefault("label_rows_before_start", {})[name] = int(early.sum())
    return t[~early], v[~early]


def one_row_per_start(t: np.ndarray, v: np.ndarray, f: Path, name: str):
    """Label file `f`'s rows (starts `t` on the window grid, values `v`) with one row per window start: a row that
    repeats another's start and value (written twice by a logger) is read once; two rows of one start with different
    values (two references merged into one file, a file appended to with other values) is one line naming the file,
    as a table's two disagreeing rows are: the window's truth would be either one."""
    idx = np.flatnonzero(np.isfinite(t))
    o = idx[np.argsort(t[idx], kind="stable")]
    same = t[o][1:] == t[o][:-1]
    if not same.any():
        return t, v
    a, b = v[o][:-1], v[o][1:]
    clash = same & ~((a == b) | (np.isnan(a) & np.isnan(b)))
    if clash.any():
        i = int(np.argmax(clash))
        raise SqtoolError(f"{f}: label '{name}' has {int(clash.sum())} window start(s) with rows that disagree, e.g. "
                          f"{t[o][i]:g} s: {a[i]:g} and {b[i]:g}: a window's truth would be either; keep one row "
                          "per window start (two references in one file?)")
    keep = np.ones(len(t), bool)
    keep[o[1:][same]] = False
    return t[keep], v[keep]


def not_before_start(t: np.ndarray, ds: DatasetFile, name: str, rec: Record, f: Path, tcol: str) -> None:
    """Label file `f`'s row starts `t` (s) are seconds from the recording's first sample: a row before it (beyond
    on_window_grid's snap, GRID_TOL of hop_s) is one line naming the file, its first such row and time (it was a
    label span 'labels do not match the signal length' naming the recording); a recording with a wall clock (a time
    column) is told its label times do not count from that clock's start."""
    tol = max(GRID_TOL * float(ds.windows.hop_s), 1e-6)
    neg = np.flatnonzero(np.isfinite(t) & (t < -tol))
    if not neg.size:
        return
    i = int(neg[0])
    start = rec.meta.get("start_time")
    raise SqtoolError(f"{f}: label '{name}' row {i + 1} starts at {t[i]:g} s (column '{tcol}'; {len(neg)} row"
                      f"{'s' if len(neg) > 1 else ''} before 0 s): label-file times are seconds from recording "
                      f"{rec.record_id}'s first sample" + (f" ({start}, its time column's first row)" if start else "")
                      + ", so a negative one is before the recording; if they count from another start, shift them "
                      "by its offset")


def rows_inside(t: np.ndarray, v: np.ndarray, ds: DatasetFile, name: str, rec: Record, f: Path):
    """The rows (start times `t`, values `v`) of label file `f` whose window [start, start + window_s) lies inside
    `rec`'s signal. The rows after those (a per-second series to the signal's end: its last window_s of rows start
    windows that run past it) are left out and counted (rec.meta["label_rows_past_end"]); rows that run on more
    than one window past the end are another recording's file: one line naming it."""
    w = float(ds.windows.window_s)
    dur = rec.span_s()
    tol = 1.0 / min(rec.fs.values()) + 1e-6                     # as check_record's: one sample
    last = float(np.nanmax(t)) if np.isfinite(t).any() else None
    if last is not None and last > dur + w + tol:
        ms = looks_ms(row_step(t), ds, name) and last / 1000 <= dur + w + tol
        clock = on_clock(t, rec, dur + w + tol)
        raise SqtoolError(f"{f}: label '{name}' rows run to {last:.2f} s, more than one {w:g} s window past the end "
                          f"of the {dur:.2f} s signal of {rec.source or rec.record_id}: "
                          + (f"its times look like wall-clock times on the recording's clock ({clock}; label-file "
                             f"times count from the first sample): say origin: clock in labels.{name} of "
                             f"{ds.path.name}" if clock else
                             f"its times look like milliseconds (rows to {last / 1000:.2f} s); {ms_fix(ds, name)}"
                             if ms else f"the label file of another recording, or {hint}" if (hint := rate_hint(
                                 rec, dur, last + w)) else "the label file of another recording?"))
    past = t + w > dur + tol                                    # NaN starts stay (on_window_grid / checks see them)
    if past.any():
        rec.meta.setdefault("label_rows_past_end", {})[name] = int(past.sum())
    return t[~past], v[~past]


def stamp_hint(ds: DatasetFile, name: str, recs: list[Record]) -> str:
    """A warning line when label `name`'s files look stamped at their windows' end (or centre) but are read as
    window starts (stamp: start): in most files the first row lies at window_s (window_s / 2) rather than near 0
    and rows run past the signal's end, as a device that reports each window's value when it ends writes them.
    Read as starts, every truth is a window late (8 s of a changing heart rate: the held-out MAE of a good model
    doubled on a tester's data) with no other sign; '' otherwise."""
    w, tol = float(ds.windows.window_s), max(GRID_TOL * float(ds.windows.hop_s), 1e-6)
    firsts = [(r.meta.get("label_first_row", {}).get(name), r.meta.get("label_rows_past_end", {}).get(name, 0))
              for r in recs if name in r.meta.get("label_first_row", {})]
    if not firsts:
        return ""
    for frac, stamp in ((1.0, "end"), (0.5, "centre")):
        late = sum(1 for t0, past in firsts if abs(t0 - frac * w) <= tol and past > 0)
        if 2 * late > len(firsts):
            return (f"{ds.path}: label '{name}' files look stamped at their window's {stamp}: in {late} of "
                    f"{len(firsts)} files the first row is at {frac * w:g} s (window_s {w:g} x {frac:g}), not near 0, "
                    f"and rows run past the recording's end; read as window starts, each value is {frac * w:g} s "
                    f"late: if so, say stamp: {stamp} in labels.{name} of {ds.path.name}")
    return ""


def clock_start(rec: Record, f: Path, name: str) -> float:
    """The recording's first sample in seconds since 1970 (its start_time: a time column's first row, a header's
    or an NPZ's), what `origin: clock` label times are counted from; one line when the recording has no clock."""
    start = rec.meta.get("start_time")
    if not start:
        raise SqtoolError(f"{f}: label '{name}' has origin: clock but recording {rec.record_id} has no wall clock "
                          "(no time column of dates or epoch times, no header start): give its times in seconds from "
                          "the first sample")
    return epoch_s(start)


def label_table(f: Path):
    """Label or beats file `f`'s rows, read as a recording's are (`generic.read_table`: its separator and decimal
    mark, a '#' preamble, a units row under the header, a unit at the end of a column's name: `time [s]`,
    `hr (bpm)`), its column names stripped."""
    from sqtool.data.readers.generic import read_table
    table = read_table(f)
    table.df.columns = [str(c).strip() for c in table.df.columns]
    return table


def said_unit(ds: DatasetFile, name: str) -> str | None:
    """How the dataset file says label `name`'s time_unit ("dataset.yaml says time_unit: ms in labels.hr"), for a
    line where its file's own disagrees; None where it says none (the default, s, gives way to the file's)."""
    if f"labels.{name}.time_unit" not in ds.units_said:
        return None
    return f"{ds.path.name} says time_unit: {ds.labels[name].time_unit} in labels.{name}"


def file_time_unit(table, tcol: str, src, f: Path, said: str | None) -> str:
    """The unit label or beats file `f`'s time column `tcol` is read in: its units-row cell or the unit its name
    ends with (`generic.time_unit_of`: `time [ms]`), which must agree with the dataset file's time_unit where it
    says one (`said`, `said_unit`), else src.time_unit (default s)."""
    from sqtool.data.readers.generic import time_unit_of
    return time_unit_of(table, tcol, src.time_unit if said else None, str(f), said or "") or src.time_unit


def check_label_unit(table, vcol: str, unit: str, name: str, f: Path, custom: bool) -> None:
    """A unit label file `f` writes for value column `vcol` (its units row, or its name: `hr [bpm]`) must be label
    `name`'s `unit` (hr: bpm, rr: breaths/min, as `generic.LABEL_SPELLINGS` spells them; a custom label's own
    unit:, case ignored), else one line naming both (an `hr [ms]` column holds R-R intervals, not a heart rate)."""
    from sqtool.data.readers.generic import LABEL_SPELLINGS, unit_from, unit_text
    written = table.units.get(vcol)
    if written is None or unit_text(written) in LABEL_SPELLINGS.get(unit, {unit_text(unit)}):
        return
    raise SqtoolError(f"{f}: column '{vcol}': {unit_from(vcol)} says {written}, but label {name} is in {unit}"
                      + (f" (labels.{name}.unit)" if custom else "") + "; make them agree (or remove the file's)")


def label_times(col, tcol: str, src, rec: Record, f: Path, name: str, unit: str | None = None) -> np.ndarray:
    """Time column `tcol` (a pandas column) of label file or beats file `f` in s from the recording's first sample:
    numbers in `unit` (`file_time_unit`; default src.time_unit), from the first sample or (origin: clock) on the
    recording's clock; or date-times (origin: clock said), local times beside a local clock or instants beside
    instants (else one line)."""
    from sqtool.data.readers._common import numeric_column
    if col.dtype == object or str(col.dtype).startswith(("str", "string")):     # date-times
        if src.origin != "clock":
            raise SqtoolError(f"{f}: column '{tcol}' holds date-times ({str(col.iloc[0]).strip()!r}), wall-clock "
                              f"times: say origin: clock in labels.{name} (they are then read on the recording's "
                              "own clock)")
        from sqtool.data.readers.generic import read_times
        rel, first = read_times(col, tcol, str(f))
        start = clock_start(rec, f, name)
        if has_zone(first) != has_zone(rec.meta.get("start_time")):
            raise SqtoolError(f"{f}: column '{tcol}' date-times ({first}) and recording {rec.record_id}'s clock "
                              f"({rec.meta.get('start_time')}) are not both local times or both instants: one "
                              "would be off by the UTC offset; write both the same way")
        return rel + epoch_s(first) - start
    t = numeric_column(col.to_frame(tcol), tcol, str(f)) * TIME_UNITS[unit or src.time_unit]
    return t - clock_start(rec, f, name) if src.origin == "clock" else t


def has_zone(iso: str | None) -> bool:
    """Whether ISO 8601 time `iso` is an instant (ends in Z or a UTC offset), not a local time."""
    return bool(iso) and (iso[-1:] == "Z" or "+" in iso[10:] or "-" in iso[10:])


def epoch_s(iso: str) -> float:
    """ISO 8601 time `iso` in seconds since 1970 (a local time without an offset: as this machine's clock reads it;
    two local times still differ by their true interval)."""
    from datetime import datetime
    return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp()


def on_clock(t: np.ndarray, rec: Record, span: float) -> str:
    """'rows from <iso>, the recording starts <iso>' when label times `t` (s) read as seconds since 1970 fall
    inside the recording's own clock span (start_time .. + `span`), else ''."""
    from datetime import datetime, timezone
    start = rec.meta.get("start_time")
    fin = t[np.isfinite(t)]
    if not start or not fin.size:
        return ""
    try:
        t0 = datetime.fromisoformat(str(start).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return ""
    if not (t0 - span <= fin.min() <= t0 + span):
        return ""
    return (f"rows from {datetime.fromtimestamp(float(fin.min()), timezone.utc).isoformat()}, the recording starts "
            f"{start}")


NOTES = {        # cause -> what every file of a summary line shares (`notes_lines`)
    "interpolated": "have window starts without a row of their own (their truth interpolated between the rows around "
                    "them)",
    "holes": "have stretches without rows longer than a {window_s:g} s window (no value there: those windows left out "
             "and counted, not interpolated)",
    "uncovered": "leave over half their recording's windows without a row (left out and counted: is each its "
                 "recording's label file, and all of it?)",
    "stream_start": "have files beginning more than {tol:g} s apart: each starts at its last file's first row, and "
                    "its label files' times (and predict's) count from there",
}
NOTE_EXAMPLES = 2       # files a summary line names


def record_note(rec: Record, cause: str, name: str | None, f, windows: int, line: str, short: str) -> None:
    """Keep what file `f` of `rec` (a label file of label `name`; None: the recording's own) showed, cause `cause`
    (a NOTES key), in rec.meta["reader_notes"]: its full warning `line`, `short` (the same in a few words, for a
    summary's example) and the `windows` it concerns. Said once over the dataset file (`notes_lines`), not a line
    per file: 13 recordings of a watch's export made 18 lines before every command's own."""
    rec.meta.setdefault("reader_notes", []).append(
        {"cause": cause, "label": name, "file": str(f), "windows": windows, "line": line, "short": short})


def notes_lines(ds: DatasetFile, recs: list[Record], full: bool = False) -> list[str]:
    """The warning lines of `recs`' notes (`record_note`): per label (then for the recordings' own files) and cause
    one line, how many of the files read, the windows concerned and the first NOTE_EXAMPLES files, and where each is
    listed (`data inspect`); a cause of one file: that file's own line. `full`: every file's own line (inspect)."""
    notes = [n for r in recs for n in r.meta.get("reader_notes", ())]
    if full:
        return [n["line"] for n in notes]
    out = []
    for name in (*ds.labels, None):
        for cause, what in NOTES.items():
            mine = [n for n in notes if n["label"] == name and n["cause"] == cause]
            if len(mine) == 1:
                out.append(mine[0]["line"])
            elif mine:
                eg = ", ".join(f"{_shown_path(ds, n['file'])} ({n['short']})" if name else n["short"]
                               for n in mine[:NOTE_EXAMPLES])
                what = what.format(window_s=float(ds.windows.window_s),
                                   tol=STREAM_START_TOL * float(ds.windows.hop_s))
                head = (f"label '{name}': {len(mine)} of {sum(1 for r in recs if name in r.labels)} label files "
                        f"{what}, {sum(n['windows'] for n in mine)} windows in all" if name
                        else f"{len(mine)} of {len(recs)} recordings {what}")
                out.append(f"{ds.path}: {head}, e.g. {eg}{', ...' if len(mine) > NOTE_EXAMPLES else ''} (each: "
                           f"sqtool data inspect --data {ds.path})")
    return out


def _shown_path(ds: DatasetFile, f: str) -> str:
    """Label file `f` as a summary names it: from the dataset file's folder when under it (hr/s2_walk.csv)."""
    try:
        return str(Path(f).relative_to(ds.path.parent))
    except ValueError:
        return f


def label_starts(ds: DatasetFile, rec: Record) -> np.ndarray:
    """(W,) s: the starts of `rec`'s label windows (window_s every hop_s, fully inside its longest channel)."""
    from sqtool.data.ecg import window_starts
    c = max(rec.signals, key=lambda c: len(rec.signals[c]) / rec.fs[c])
    return window_starts(len(rec.signals[c]), rec.fs[c], float(ds.windows.window_s), float(ds.windows.hop_s))


def windows_without_rows(t: np.ndarray, ds: DatasetFile, name: str, rec: Record, f: Path) -> np.ndarray:
    """The starts of `rec`'s windows (every hop_s, fully inside the signal) outside the first..last row of label
    file `f` (`t`: its rows' starts, on the grid): windows without a value, which the reader gives NaN (left out of
    training and scoring and counted, as an empty cell is: data inspect's 'missing', the tasks' missing targets)
    and counts in rec.meta["label_windows_without_row"]. When that is over half the recording's windows (a file
    of another recording, or cut short), one warning line names the file and the count."""
    starts = label_starts(ds, rec)
    tol = max(GRID_TOL * float(ds.windows.hop_s), 1e-6)
    fin = t[np.isfinite(t)]
    out = np.ones(len(starts), bool) if not fin.size else \
        (starts < fin.min() - tol) | (starts > fin.max() + tol)
    holes = label_holes(t, float(ds.windows.window_s), float(ds.windows.hop_s))
    if holes.size:
        runs = int(np.sum(np.diff(holes) > ds.windows.hop_s * 1.5)) + 1
        record_note(rec, "holes", name, f, int(holes.size),
                   f"{f}: {holes.size} of its windows lie in {runs} stretch(es) without rows longer than a "
                   f"{float(ds.windows.window_s):g} s window (the first at {holes[0]:g} s): no {name} value there, "
                   "left out and counted (not interpolated across the stretch)",
                   f"{holes.size} windows in {runs} stretch(es) from {holes[0]:g} s")
    if not out.any() and not holes.size:
        return np.zeros(0)
    rec.meta.setdefault("label_windows_without_row", {})[name] = int(out.sum()) + int(holes.size)
    dur = rec.span_s()                                      # the rows end a window after the last (one per window)
    if fin.size and out[-1] and 2 * out.sum() <= len(starts) and (hint := rate_hint(rec, dur, fin.max() + float(ds.windows.window_s))  # or at it
                                 or rate_hint(rec, dur, fin.max())):                        # (a 1 Hz series)
        rec.meta.setdefault("label_rate_hint", {})[name] = hint          # rows stop early: rate_note, over the files
    if 2 * out.sum() > len(starts):
        cover = f"cover {fin.min():g}..{fin.max():g} s" if fin.size else "cover none"
        record_note(rec, "uncovered", name, f, int(out.sum()),
                   f"{f}: its rows {cover} of the {dur:.2f} s recording {rec.record_id}: "
                   f"{int(out.sum())} of its {len(starts)} windows have no {name} value, left out and counted (is it "
                   "this recording's label file, and all of it?)"
                   + (f"; {hint}" if fin.size and (hint := rate_hint(rec, dur, fin.max() + float(ds.windows.window_s)))
                      else ""),
                   f"rows {cover} of {dur:.0f} s")
    return np.concatenate([starts[out], holes])


SPAN_RATIO_TOL = 0.05   # a recording lasting k x its label file's span within 5 % (k a ROUND_FACTORS): its rate said
#   1/k times off. The file's end (last row + window_s) is within one window of the signal's true end (rows_inside),
#   8 s of 5 min: 2.7 %; a label file that merely stops early lands within 5 % of a round factor by chance only.
ROUND_FACTORS = tuple(f for k in (2.0, 4.0, 5.0, 10.0, 100.0, 1000.0) for f in (k, 1 / k))
#   the rate said 2x or 0.5x off (25 for 50 Hz), 4x (32 for 128), 5x (500 for 100), 10x (500 for 50), 100x, 1000x
#   (kHz for Hz); not 2.5x: a label file covering 40 % of its recording is far likelier than 125 said for 50 Hz


def rate_hint(rec: Record, dur: float, label_end: float) -> str:
    """'the recording lasts about k x its label rows' span (`label_end`: the last row + window_s): <the rate said>
    may be wrong, <the rate that fits> would fit ...' when `rec`'s rate was said (rec.meta["rate_said"]: fs: in the
    dataset file, a channel's fs, the file's stored rate), not measured by a time column, and dur / label_end is
    within SPAN_RATIO_TOL of a round factor k (ROUND_FACTORS: 2, 0.5, 10, 0.1, 1000, ...: the nearest); else ''."""
    said = rec.meta.get("rate_said")
    if not said or label_end <= 0 or dur <= 0:
        return ""
    ratio = dur / label_end
    fs = float(rec.fs[rec.primary_channel()])
    k = min(ROUND_FACTORS, key=lambda k: abs(np.log(ratio / k)))
    if abs(ratio / k - 1) > SPAN_RATIO_TOL:                    # else a device rate the span fits (64 said as 50)
        near = min(DEVICE_RATES, key=lambda r: abs(np.log(fs * ratio / r)))
        if abs(ratio - 1) < 0.1 or abs(fs * ratio / near - 1) > SPAN_RATE_TOL or near == fs:
            return ""
        k = near / fs
    return (f"the recording lasts {ratio:.2f}x its label rows' span (0..{label_end:.0f} s): {said} may be wrong, "
            f"{fs * k:.6g} Hz would fit (x{k:g}; a time column would measure it)")


DEVICE_RATES = (25.0, 32.0, 50.0, 64.0, 100.0, 125.0, 128.0, 200.0, 250.0, 256.0, 500.0, 512.0, 1000.0)
SPAN_RATE_TOL = 0.015               # the label span's rate within 1.5 % of one of them (a file merely cut short
#   lands on one by chance: the hint is a warning that says "may be", never a refusal)


def rate_note(ds: DatasetFile, name: str, recs: list[Record]) -> str:
    """One warning line when, in most of the files whose rate was said (no time column), the recording lasts the
    same multiple of its label rows' span and a device rate fits it (`rate_hint`): a wrong fs: shifts every label
    after the first (a tester's 64 Hz data said as 50 Hz read 431 s of signal for 336 s of labels with no word);
    '' otherwise. Files each over half without rows were warned of already (windows_without_rows)."""
    hints = [r.meta["label_rate_hint"][name] for r in recs if name in r.meta.get("label_rate_hint", {})]
    said = sum(1 for r in recs if r.meta.get("rate_said") and name in r.labels)
    if not hints or 2 * len(hints) <= said:
        return ""
    return f"{ds.path}: label '{name}': in {len(hints)} of {said} recordings {hints[0]}"


GRID_TOL = 0.02                     # of hop_s: a label row this near a window start (k * hop_s) is that window's


def on_window_grid(t: np.ndarray, ds: DatasetFile, f: Path, name: str, rec: Record) -> np.ndarray:
    """The start times `t` of label file `f`'s rows, those within GRID_TOL * hop_s of a window start (k * hop_s)
    put exactly on it, so a window's truth is its own row's value: both heart-rate paths (the time-domain tasks and
    the spectral hr_spectra.window_truth) take the label at the window's centre (tasks._label_at_centres), exact
    where a row's window has the same centre, else interpolated between the rows' centres around it. What counts
    is the windows: of the window starts between the file's first and last row, over a quarter without a row
    (rows every 4 s under hop_s 2, or at 1, 3, 5 s: half or all the windows' truth merely interpolated between
    rows) is one line naming the file, its spacing and hop_s (rows over a minute apart that would be 0.1-60 s apart
    in ms: the line says so and how to give label `name`'s time_unit); a few without one are a note (`record_note`)
    saying their truth is interpolated. Rows between window starts (a per-second series) are no window's and are not
    counted against the file."""
    h = float(ds.windows.hop_s)
    tol = max(GRID_TOL * h, 1e-6)
    fin = np.isfinite(t)
    k = np.round(t / h)
    on = fin & (np.abs(t - k * h) <= tol)
    if not fin.any():
        return t
    first, last = np.ceil(np.nanmin(t) / h - GRID_TOL), np.floor(np.nanmax(t) / h + GRID_TOL)
    starts = int(max(last - first + 1, 0))                       # window starts the file spans
    holes = label_holes(t, float(ds.windows.window_s), h)        # no value there (windows_without_rows), not
    missing = starts - len(np.unique(k[on])) - len(holes)        # interpolated: not counted against the file
    if starts and missing * 4 > starts:                          # over a quarter of the windows: the file's hop
        step = row_step(t)
        ms = looks_ms(step, ds, name)
        step = step or h
        off = grid_offset(t[fin], step, tol)
        raise SqtoolError(f"{f}: label rows are {step:g} s apart and {missing} of the {starts} window starts they "
                          f"span (0, {h:g}, {2 * h:g}, ... s: {ds.path.name}'s windows.hop_s {h:g}, window_s "
                          f"{float(ds.windows.window_s):g}) have no row: those windows' truth would only be "
                          "interpolated between rows. "
                          + (f"Its times look like milliseconds ({step / 1000:g} s apart): {ms_fix(ds, name)}" if ms
                             else f"Every row lies {off:g} s after a multiple of {step:g} s, off the windows' grid: a "
                             "row's time is its window's start in seconds from the recording's first sample; shift "
                             f"the times by -{off:g} s" if off
                             else f"Set windows.hop_s (and window_s) to the label file's spacing ({step:g} s)"))
    if missing > 0:
        record_note(rec, "interpolated", name, f, int(missing),
                   f"{f}: {missing} of the {starts} window starts its rows span (every {h:g} s) have no row: those "
                   "windows' truth is interpolated between the rows around their centres (not read from a row of "
                   "their own)",
                   f"{missing} of {starts} starts")
    return np.where(on, k * h, t)


def label_holes(t: np.ndarray, window_s: float, hop_s: float) -> np.ndarray:
    """The window starts (multiples of hop_s) inside the stretches of label file rows `t` (starts, s) longer than a
    window between two rows, in a file whose rows are otherwise at most a window apart: the watch off the wrist or a
    gap in the recording, whose windows have no value (NaN, counted: `windows_without_rows`), not a value
    interpolated between rows hours apart. A file whose rows are all further apart (its spacing, or its times in ms)
    is `on_window_grid`'s to refuse."""
    u = np.unique(t[np.isfinite(t)])
    if u.size < 3 or np.median(np.diff(u)) > window_s:
        return np.zeros(0)
    tol = max(GRID_TOL * hop_s, 1e-6)
    big = np.flatnonzero(np.diff(u) > window_s)
    return np.concatenate([np.zeros(0)] + [np.arange(np.ceil((u[i] + tol) / hop_s), np.floor((u[i + 1] - tol) / hop_s)
                                                     + 1) * hop_s for i in big])


def grid_offset(t: np.ndarray, step: float, tol: float) -> float:
    """The common offset (s) of row times `t` from the multiples of their spacing `step` (rows at 0.5, 1.5, 2.5 s:
    0.5), 0 when the rows sit on those multiples or share no offset: a grid shifted as a whole is a phase to
    subtract, which no choice of hop_s fixes."""
    if step <= 0 or not t.size:
        return 0.0
    r = np.mod(t, step)
    r0 = float(np.median(r))
    same = np.abs((r - r0 + step / 2) % step - step / 2) <= tol
    return round(r0, 6) if same.all() and tol < r0 < step - tol else 0.0


TABLE_COLUMNS = {"rhythm": ("rhythm",), "bp": ("sbp", "dbp"), "quality": ("quality",),   # besides `recording`
                 "condition": ("condition",)}   # a dataset file's conditions: {table} (record meta, not a label)
SEGMENT_COLUMNS = ("start_s", "end_s")          # rhythm, condition: per segment when the table gives both
SEGMENTED = ("rhythm", "condition")


def read_table(path: str, label: str):
    """Label table `path` of label `label` (a DataFrame, columns lower-case): one line naming the file and a
    missing column (`recording` and TABLE_COLUMNS[label]; start_s without end_s or the reverse), a text cell
    in a numeric column, or (conditions) a column of none of those names."""
    import pandas as pd

    from sqtool.data.readers._common import numeric_column, read_csv
    df = read_csv(path)
    df.columns = [str(c).strip().lower() for c in df.columns]
    need = ("recording", *TABLE_COLUMNS[label])
    have = ", ".join(df.columns)
    for c in need:
        if c not in df.columns:
            raise SqtoolError(f"{path}: the {label} table has no '{c}' column (needs {', '.join(need)}; has {have})")
    seg = [c for c in SEGMENT_COLUMNS if c in df.columns]
    if label in SEGMENTED and len(seg) == 1:
        lack = next(c for c in SEGMENT_COLUMNS if c not in seg)
        raise SqtoolError(f"{path}: the {label} table has '{seg[0]}' but no '{lack}' column (segments need both; "
                          f"has {have})")
    if label == "condition" and (other := [c for c in df.columns if c not in (*need, *SEGMENT_COLUMNS)]):
        raise SqtoolError(f"{path}: the condition table has an unknown column '{other[0]}' (its columns: "
                          f"{', '.join((*need, *SEGMENT_COLUMNS))}; has {have})")
    for c in [*(TABLE_COLUMNS[label] if label == "bp" else ()), *seg]:     # numbers: empty is NaN, text an error
        df[c] = numeric_column(df, c, path)
    for c in ("recording", label) if label in ("rhythm", "quality", "condition") else ("recording",):   # names
        text = df[c].map(lambda v: "" if pd.isna(v) else str(v).strip())
        if (text == "").any():
            raise SqtoolError(f"{path}: row {int(np.argmax(text == '')) + 1} has no {c} (an empty cell)")
        df[c] = text
    return df


def match_classes(wanted, found, where: str, what: str) -> list[str]:
    """The classes in `found` that `wanted` (a dataset file's af / good / poor list) names: exactly, else ignoring
    case ('AF' finds 'af'). A name that fits several classes ignoring case, not all of them listed, is one line
    naming `where` and the list `what` (is 'af' beside 'AF' meant or not?)."""
    found, wanted = [str(c) for c in found], [str(w) for w in wanted]
    out: list[str] = []
    for w in wanted:
        near = [c for c in found if c.casefold() == w.casefold()]
        if len(near) > 1 and not set(near) <= set(wanted):
            raise SqtoolError(f"{where}: classes {', '.join(near)} differ only in case; list in {what} each one meant")
        out += [c for c in near if c not in out]
    return out


def positive_classes(ds: DatasetFile, label: str, found, where: str, rows: bool = True) -> list[str]:
    """The classes of rhythm / quality label `label` that the dataset file's af list (rhythm) or good list (quality)
    names, as the data spells them (`match_classes`): what the af and quality tasks count as positive. `found`: the
    classes as the data gives them, a table's column (rows=True: messages count its rows) or a built-in reader's
    class names (rows=False). One line naming `where` (the table, or the dataset file for a built-in reader's
    classes): an af list that names none of them, a quality class that is both good and poor, or neither."""
    src = ds.labels[label]
    found = [str(c) for c in found]
    classes = list(dict.fromkeys(found))
    whose = "table" if rows else "reader"
    what = f"labels.{label}.%s" + ("" if str(where) == str(ds.path) else f" of {ds.path}")   # the yaml's key

    def listing(values) -> str:
        return _counts(values) if rows else ", ".join(dict.fromkeys(values))
    if label == "rhythm":
        pos = match_classes(src.af, classes, where, what % "af")
        if not pos:
            raise SqtoolError(f"{where}: none of the {whose}'s rhythm classes ({listing(found)}) is one of "
                              f"af: [{', '.join(src.af)}] ({what % 'af'}); list the AF classes as the {whose} "
                              "spells them")
        return pos
    pos = match_classes(src.good, classes, where, what % "good")
    poor = match_classes(src.poor, classes, where, what % "poor")
    if both := sorted(set(pos) & set(poor)):
        raise SqtoolError(f"{where}: quality {', '.join(both)} is both good and poor ({what % 'good'} and .poor)")
    if other := [c for c in found if c not in pos + poor]:
        raise SqtoolError(f"{where}: quality values {listing(other)} are neither good ({', '.join(src.good)}) nor "
                          f"poor ({', '.join(src.poor)}); name them in {what % 'good'} or .poor")
    return pos


def _cell(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _counts(values) -> str:
    """'afib: 30 rows, sinus: 22 rows': the classes of a column with their row counts, most rows first."""
    import pandas as pd
    return ", ".join(f"{c}: {n} row{'s' * (n != 1)}" for c, n in pd.Series(list(values)).value_counts().items())


LABEL_OF_TABLE = {"rhythm": "rhythm", "bp": "sbp", "quality": "quality"}     # the record label a table gives


class LabelTable:
    """One label table of a dataset file, read once per read of the recordings: its rows by recording (a row's
    `recording` is a record id or a file stem). A name that matches no recording under root is an error (a typo
    would otherwise leave a recording unlabelled), so are rows of one recording that disagree (which one holds?);
    recordings without a row are reported (`report_unlabelled`). Class tables resolve their classes once:
    `positive` holds the table's spellings of the af classes (rhythm) or of the good ones (quality)."""

    def __init__(self, ds: DatasetFile, label: str, table: str | None = None):
        self.path, self.label = table or ds.labels[label].table, label      # table: conditions.table
        self.df = read_table(self.path, label)
        self.keys = self.df["recording"]
        self._at = {k: list(v) for k, v in self.df.groupby("recording", sort=False).indices.items()}  # name -> rows
        if label == "bp":
            check_bp(self.df["sbp"], self.df["dbp"], self.path, lambda i: f"row {i + 1}, recording {self.keys.iloc[i]}")
        self.positive = positive_classes(ds, label, self.df[label], self.path) if label in ("rhythm", "quality") \
            else []

    def check_names(self, ds: DatasetFile, files: list[Path]) -> None:
        known = {_record_id(ds, p) for p in files} | {p.name.split(".")[0] for p in files}
        unknown = self.keys[~self.keys.isin(known)]
        if len(unknown):
            name = unknown.iloc[0]
            near = next((k for k in sorted(known) if k.lower() == name.lower()), None)
            raise SqtoolError(f"{self.path}: {len(unknown)} row(s) name recordings that are not under {ds.root}, e.g. "
                              f"'{name}' (row {unknown.index[0] + 1})"
                              + (f"; the recording is '{near}' (names are case-sensitive)" if near else ""))

    def rows(self, rec: Record):
        """The rows of `rec` (by record id or file stem); rows that disagree are one line naming the recording."""
        stem = Path(rec.source).name.split(".")[0]
        rows = self.df.iloc[sorted(set(self._at.get(rec.record_id, [])) | set(self._at.get(stem, [])))]
        if self.label in SEGMENTED and "start_s" in rows.columns:
            self._check_segments(rec, rows)
        elif len(rows) > 1:
            cols = list(TABLE_COLUMNS[self.label])
            if len(rows[cols].drop_duplicates()) > 1:                      # the same row twice is no conflict
                said = "; ".join(f"{c}: {', '.join(dict.fromkeys(map(_cell, rows[c])))}" for c in cols)
                raise SqtoolError(f"{self.path}: recording {rec.record_id} has {len(rows)} rows that disagree "
                                  f"({said}); give one row per recording")
        return rows

    def _check_segments(self, rec: Record, rows) -> None:
        s, e = rows["start_s"].to_numpy(float), rows["end_s"].to_numpy(float)
        c = rows[self.label].to_numpy()
        for i in range(len(rows)):
            if not e[i] > s[i]:
                raise SqtoolError(f"{self.path}: recording {rec.record_id}: row {rows.index[i] + 1} has start_s "
                                  f"{s[i]:g} and end_s {e[i]:g}; a segment ends after it starts")
            for j in range(i):
                if s[j] < e[i] and s[i] < e[j] and c[i] != c[j]:
                    raise SqtoolError(f"{self.path}: recording {rec.record_id}: segments {s[j]:g}-{e[j]:g} s "
                                      f"({c[j]}) and {s[i]:g}-{e[i]:g} s ({c[i]}) overlap with different "
                                      f"{self.label}s")

    def report_unlabelled(self, ds: DatasetFile, recs: list[Record], say) -> None:
        """Recordings this table gives no row: said (one line: count, an example) and in ds.report["no_label_row"]."""
        if self.label == "condition":
            lack = [str(r.record_id) for r in recs if not has_condition(r)]
            if lack:
                say(f"{ds.name}: {len(lack)} of {len(recs)} recordings have no row in {self.path}, e.g. {lack[0]}: "
                    "no condition (its windows count under none)")
            return
        lack = [str(r.record_id) for r in recs if LABEL_OF_TABLE[self.label] not in r.labels]
        if lack:
            ds.report["no_label_row"][self.label] = {"table": self.path, "records": len(lack), "of": len(recs),
                                                     "example": lack[0]}
            say(f"{ds.name}: {len(lack)} of {len(recs)} recordings have no row in {self.path}, e.g. {lack[0]}: "
                f"no {self.label} label, left out of the {self.label} task")


def _labels(ds: DatasetFile, rec: Record, cols, names, row_fs: float, where: str, tables: dict,
            grid: TimeGrid | None = None) -> None:
    for name in ("hr", "rr", *ds.custom_labels):      # per-window values (a custom label's as rr's)
        if name in ds.labels:
            lab = _window_label(ds, name, rec, cols, names, row_fs, where, grid)
            if lab is not None:
                rec.labels[name] = lab
    if "rhythm" in ds.labels:
        rows = tables["rhythm"].rows(rec)
        if len(rows) and "start_s" in rows.columns:
            rows = rows.sort_values("start_s", kind="stable")              # starts and ends in time order
        if len(rows):
            vals = rows["rhythm"].tolist()
            classes = tuple(sorted(set(vals)))
            idx = np.array([classes.index(v) for v in vals])
            af = tuple(tables["rhythm"].positive)                            # the table's spellings
            if "start_s" in rows.columns:
                rec.labels["rhythm"] = Label(values=idx, times=rows["start_s"].to_numpy(float), unit="class",
                                             kind="class", classes=classes, positive=af)
                rec.meta["rhythm_end_s"] = rows["end_s"].to_numpy(float)
            else:
                rec.labels["rhythm"] = Label(values=np.array(idx[0]), unit="class", kind="class", classes=classes,
                                             positive=af)
    if "bp" in ds.labels:
        rows = tables["bp"].rows(rec)
        if len(rows):
            for k in ("sbp", "dbp"):
                rec.labels[k] = Label(values=np.array(float(rows[k].iloc[0])), unit="mmHg")
    if "quality" in ds.labels:
        src = ds.labels["quality"]
        if src.column is not None:
            col, v = _pick(cols, names, src.column, where, "label 'quality'")
            rec.labels["quality"] = Label(values=(_numeric(v, col, where, grid) > 0).astype(np.uint8), unit="flag",
                                          kind="flags", fs=row_fs)
        elif src.table is not None:
            rows = tables["quality"].rows(rec)
            if len(rows):
                rec.labels["quality"] = Label(values=np.array(0), unit="class", kind="class",
                                              classes=(rows["quality"].iloc[0],),
                                              positive=tuple(tables["quality"].positive))


__all__ = ["read_records", "dataset_units", "read_unit", "unit_files"]
