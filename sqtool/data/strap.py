"""A chest strap's beats as the heart-rate truth of a recording (`labels: {hr: {beats: "strap/{stem}.csv"}}`).

    beats_s, how = read_beats(f, src, rec, name, window_s, said)   # (n,) beat times, s from rec's first sample

then `data.ecg.beat_train_hr` scores each window as one ECG detector's beats are scored (60 / mean RR, the same
clean rule), doubtful windows NaN and counted (dataset_reader). The file is a CSV (comma, semicolon or tab, as a
recording's, `dataset_reader.label_table`: a units row under the header, or a unit at the end of a column's
name, gives its times' and R-R intervals' units), one row per beat, in one of three forms:

    R-R only       an R-R column (value_column, else one of RR_COLUMNS, case and a "[ms]" unit ignored; a
                   header-less file of one column is one): the beats lie at the intervals' cumulative sum from the
                   recording's first sample. Valid only when the strap started with the recording; nothing shows
                   a dropout (beats the strap never sent move every later beat earlier).
    R-R and time   a time column too (start_column, else one of TIME_COLUMNS; a Polar Sensor Logger export is
                   `Phone timestamp;RR-interval [ms]`): the intervals place the beats, the times anchor them.
                   A phone stamps the rows of one Bluetooth packet alike and late, so each stretch of the series
                   sits at the low end of (time - cumulative sum) over its rows; where that offset's lower
                   envelope steps up by more than DROPOUT_S, beats are missing (a lost packet, the strap off the
                   skin): the series is re-anchored there and the windows across the gap are flagged (dropout).
    time only      a time column and no R-R column: one row per beat (the beat times).

Units and clocks, as a label `file:`'s: R-R in `unit` (ms, the default, or s), or, where unit: is not said, as the
file writes it (its units row, or the column's name: `RR-interval [ms]`, `ibi (s)`; `rr_unit`); times in seconds
from the recording's first sample (numbers in `time_unit`, or the file's own: `time [ms]`, which must agree with it
where both are said), or with `origin: clock` wall-clock times on the recording's own clock (numbers since 1970 in
time_unit, or date-times as a Polar export writes them); `offset_s` (s) is added to the beat times then (the strap's
clock onto the recording's: positive when the strap's runs behind), in every form.

Bad input, one SqtoolError line naming the file: no such file; no R-R or time column (naming the columns it has);
R-R values whose median says the other unit (0.8 said in ms, 800 said in s) or no heart rate at all; an R-R of 0 or
less; an empty R-R cell without a time column; times that go back (beat times that do not increase); date-times
without origin: clock; origin or time_unit said for a file without a time column; beats that do not overlap the
recording, or run more than a window past its end (another recording's file). Beats before the first sample or
after the last (the strap started early, stopped late) are left out.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError

RR_COLUMNS = ("rr", "rr_ms", "rr_interval", "rr_interval_ms", "rri", "ibi", "ibi_ms", "rr_s", "ibi_s")
TIME_COLUMNS = ("time", "timestamp", "phone_timestamp", "t", "time_s", "time_ms", "beat", "beat_s", "beat_time",
                "beat_ms")
RR_UNITS = {"ms": 1e-3, "s": 1.0}            # unit: -> s per unit
RR_PLAUSIBLE_S = (0.2, 3.0)                  # a median R-R outside (300-20 BPM) is no heart rate in that unit
DROPOUT_S = 1.5                              # the file's clock ahead of its intervals' sum by more: beats missing
ENVELOPE_ROWS = 10                           # rows ahead whose lowest offset is a row's (a phone's late packets)
ANCHOR_PERCENTILE = 10                       # of a stretch's offsets: where its beats sit (stamps come late)


def column_key(name) -> str:
    """A column's name as matched: lower case, the unit at its end dropped (`generic.name_unit`: "[ms]", "(s)"),
    spaces and dashes as "_" ("RR-interval [ms]" -> rr_interval, "Phone timestamp" -> phone_timestamp)."""
    from sqtool.data.readers.generic import name_unit
    return re.sub(r"[\s\-]+", "_", name_unit(name)[0].strip().lower())


def _find(names: list[str], own: str | None, auto: tuple[str, ...]) -> str | None:
    """The column named `own` (as column_key matches it), else the first of `auto` the file has; None if none."""
    keys = {column_key(n): n for n in reversed(names)}
    for k in ((column_key(own),) if own else auto):
        if k in keys:
            return keys[k]
    return None


def read_beats(f: Path, src, rec, name: str, window_s: float, said: str | None = None) -> tuple[np.ndarray, str]:
    """(beat times (n,) in s from `rec`'s first sample, inside its signal; how they were placed, for meta) of beats
    file `f` of label `name` (`src`: its LabelSource: value_column, start_column, unit, time_unit, origin; `said`:
    how the dataset file says its time_unit, `dataset_reader.said_unit`, or None)."""
    from sqtool.data.dataset_reader import file_time_unit, label_table, label_times
    from sqtool.data.readers._common import numeric_column
    if not f.is_file():
        raise SqtoolError(f"{f}: label '{name}' beats file not found (labels.{name}.beats)")
    table = label_table(f)                         # as a recording's: separator, units row, `RR-interval [ms]`
    df, header = table.df, table.header
    names = list(df.columns)
    rcol = _find(names, src.value_column, RR_COLUMNS) if header or src.value_column else \
        (names[0] if len(names) == 1 else None)                  # a header-less column of numbers: the intervals
    tcol = _find(names, src.start_column, TIME_COLUMNS) if header else None
    missing = [f"{what} column {own!r}" for what, own, got in (("R-R", src.value_column, rcol),
                                                                ("time", src.start_column, tcol)) if own and not got]
    if missing or (rcol is None and tcol is None):
        raise SqtoolError(f"{f}: no {missing[0] if missing else 'R-R or time column'} found; it has "
                          f"{', '.join(names)} (R-R: {', '.join(RR_COLUMNS[:4])}, ...; time: "
                          f"{', '.join(TIME_COLUMNS[:3])}, ...; or name yours: {name}: {{beats: ..., value_column: "
                          "..., start_column: ...}})")
    if tcol is None and (said := [k for k, v, d in (("origin", src.origin, "recording"),
                                                     ("time_unit", src.time_unit, "s")) if v != d]):
        raise SqtoolError(f"{f}: labels.{name}.{said[0]} is for the beats file's times, and it has no time column "
                          f"(its columns: {', '.join(names)}): name it with start_column, or drop {said[0]}")
    t = label_times(df[tcol], tcol, src, rec, f, name, file_time_unit(table, tcol, src, f, said)) \
        if tcol is not None else None
    if rcol is None:                                             # one row per beat
        _increasing(t, f, tcol, "beat times")
        beats, how = t, f"beat times ({f.name})"
    else:
        unit = rr_unit(table, rcol, src, f)
        rr = _intervals(numeric_column(df, rcol, str(f)), rcol, unit, f, name, timed=t is not None)
        if t is None:
            beats, how = np.cumsum(rr), f"R-R intervals ({f.name}), placed from the recording's first sample"
        else:
            ok = np.isfinite(rr)                                 # an empty cell: that beat missing
            beats, how = _anchored(rr[ok], t[ok], f, tcol), f"R-R intervals ({f.name}) on its '{tcol}' times"
    if src.offset_s:                                             # the strap's clock onto the recording's
        from sqtool.data.dataset_reader import check_offset
        beats = beats + check_offset(src, rec, f, name)
        how += f", shifted by offset_s {src.offset_s:+g} s"
    return _inside(beats, rec, f, name, window_s), how


def rr_unit(table, rcol: str, src, f: Path) -> tuple[str, str | None]:
    """(the unit R-R column `rcol` is read in, a key of RR_UNITS; where the file writes it, `generic.unit_from`, or
    None): labels.<name>.unit where said (a file's unit that disagrees is then told by `_intervals`' median check:
    ms and s lie 1000x apart), else its units-row cell or the unit its name ends with (`RR-interval [ms]`,
    `ibi (s)`), else ms. A unit written that is neither ms nor s: one line."""
    from sqtool.data.readers._common import TIME_SPELLINGS
    from sqtool.data.readers.generic import unit_from, unit_text
    written = table.units.get(rcol)
    row = None if written is None else TIME_SPELLINGS.get(unit_text(written))
    if written is not None and row not in RR_UNITS:
        raise SqtoolError(f"{f}: R-R column '{rcol}': {unit_from(rcol)} says {written}, and R-R intervals are in "
                          f"{' or '.join(RR_UNITS)}; write one of them there")
    if src.unit is not None or row is None:
        return src.unit or "ms", None
    return row, unit_from(rcol)


def _intervals(x: np.ndarray, rcol: str, unit: tuple[str, str | None], f: Path, name: str,
               timed: bool) -> np.ndarray:
    """R-R column `rcol` in s: its median plausible in `unit` (`rr_unit`: the unit, where the file writes it), every
    interval > 0; empty cells only beside a time column (without one, the beats after an empty cell cannot be
    placed)."""
    unit, by = unit
    fin = x[np.isfinite(x)]
    if not fin.size:
        raise SqtoolError(f"{f}: R-R column '{rcol}' holds no numbers")
    med = float(np.median(fin))
    lo, hi = RR_PLAUSIBLE_S
    if not lo <= med * RR_UNITS[unit] <= hi:
        other = next((u for u, k in RR_UNITS.items() if u != unit and lo <= med * k <= hi), None)
        fix = (f"{by} says {unit}: write {other} there" if by else f"say unit: s in labels.{name}" if other == "s"
               else f"drop unit: s from labels.{name} (R-R are read in ms unless it says s)") if other \
            else f"R-R intervals are {lo * 1000:g}-{hi * 1000:g} ms"
        raise SqtoolError(f"{f}: R-R column '{rcol}' has a median of {med:g}, read in {unit}: "
                          + (f"the values look like {'seconds' if other == 's' else 'milliseconds'}; {fix}"
                             if other else f"no heart rate ({fix})"))
    if (bad := np.flatnonzero(np.isfinite(x) & (x <= 0))).size:
        raise SqtoolError(f"{f}: R-R column '{rcol}' row {int(bad[0]) + 1} is {x[bad[0]]:g}: an interval is > 0")
    if not timed and (gap := np.flatnonzero(~np.isfinite(x))).size:
        raise SqtoolError(f"{f}: R-R column '{rcol}' row {int(gap[0]) + 1} is empty: without a time column the beats "
                          "after it cannot be placed (add the rows' times, or remove the row if no beat is missing)")
    return x * RR_UNITS[unit]


def _increasing(t: np.ndarray, f: Path, tcol: str, what: str, strict: bool = True) -> None:
    """One line naming the first row whose time is not after (`strict`; else: is before) the row before it."""
    d = np.diff(t)
    if (back := np.flatnonzero(~(d > 0) if strict else d < 0)).size:
        i = int(back[0]) + 1
        raise SqtoolError(f"{f}: {what} in column '{tcol}' do not increase: row {i + 1} ({t[i]:.3f} s) is "
                          f"{'not after' if strict else 'before'} row {i} ({t[i - 1]:.3f} s)")


def _anchored(rr: np.ndarray, t: np.ndarray, f: Path, tcol: str) -> np.ndarray:
    """Beat times (n,) s of intervals `rr` (s) whose rows are stamped `t` (s): the cumulative sum, each stretch at
    the low end (ANCHOR_PERCENTILE) of its rows' offsets (time - sum: a row is stamped at or after its beat, a
    packet's rows alike and late), a new stretch where the offsets' lower envelope steps up by more than DROPOUT_S
    (beats missing: a gap; a late packet alone moves no envelope)."""
    from numpy.lib.stride_tricks import sliding_window_view
    _increasing(t, f, tcol, "times", strict=False)
    c = np.cumsum(rr)                                  # (n,) s, beat k after the series' first
    d = t - c                                          # (n,) s: where each row puts the series on the file's clock
    low = sliding_window_view(np.concatenate([d, np.full(ENVELOPE_ROWS - 1, np.inf)]), ENVELOPE_ROWS).min(axis=1)
    bounds = [*(np.flatnonzero(np.diff(low) > DROPOUT_S) + 1), len(d)]       # (n,) lower envelope of the rows ahead
    starts, offs = [0], [float(np.percentile(d[:bounds[0]], ANCHOR_PERCENTILE))]
    for a, b in zip(bounds[:-1], bounds[1:]):
        off = float(np.percentile(d[a:b], ANCHOR_PERCENTILE))
        if off - offs[-1] > DROPOUT_S:                 # the series moved on the clock: beats missing before row a
            starts.append(a)
            offs.append(off)
        else:                                          # an early-stamped row alone: one stretch with the one before
            offs[-1] = float(np.percentile(d[starts[-1]:b], ANCHOR_PERCENTILE))
    new = np.zeros(len(d), dtype=np.int64)
    new[starts[1:]] = 1
    return c + np.asarray(offs)[np.cumsum(new)]       # (n,) s: offsets only step up, the beats increase


def _inside(beats: np.ndarray, rec, f: Path, name: str, window_s: float) -> np.ndarray:
    """The beats inside `rec`'s signal; none of them there, or beats more than a window past its end (another
    recording's file), is one line naming the file."""
    from sqtool.data.dataset_reader import on_clock
    dur = rec.span_s()
    last, first = float(beats.max()), float(beats.min())
    if last > dur + window_s or last < 0 or first > dur:
        clock = on_clock(beats, rec, dur + window_s)
        raise SqtoolError(f"{f}: label '{name}' beats lie at {first:.1f}..{last:.1f} s"
                          + (", more than one window past" if first <= dur and last >= 0 else ", outside")
                          + f" the {dur:.1f} s of recording {rec.record_id} (its first sample is 0 s): "
                          + (f"its times look like wall-clock times on the recording's clock ({clock}): say origin: "
                             f"clock in labels.{name}" if clock else
                             f"its times look like milliseconds (beats to {last / 1000:.1f} s): say time_unit: ms in "
                             f"labels.{name}" if 0 <= last / 1000 <= dur + window_s and last > dur else
                             "the beats of another recording?"))
    return beats[(beats >= 0) & (beats <= dur)]


__all__ = ["read_beats", "column_key", "RR_COLUMNS", "TIME_COLUMNS"]
