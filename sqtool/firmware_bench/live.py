"""`sqtool predict --data -`: a live device's CSV rows on stdin, each window's heart rate (or any other export's
outputs) printed (and appended to RUN/stdin.csv) as soon as its last row is in.

    my_board_logger | sqtool predict --model EXPORT --data - --fs 64 --gains 1
    my_board_logger | sqtool predict --model AF_EXPORT --data - --fs 64          # any other task's export

A spectral heart-rate export's rows go through one `sqtool.api.HrStream` (the device itself: the export's C pipeline
state, or the Python integer front end, int8 network and fixed-point decoder), quantised with fixed gains
(`predict.parse_gains`: robust needs the whole recording, a live stream never has it); any other export's through one
`sqtool.api.TaskStream` (predict's own window stream: its rows are predict's of the same rows as a file, its last
windows at EOF); memory stays flat however long the pipe runs. stdin is read
as it arrives (`_line_batches`), so a device writing one row at a time gets each window at once, a file thousands of
rows a read. predict.py's `run` and `predict` hand `--data -` here.
"""
from __future__ import annotations

import io

import numpy as np

from sqtool.core import SqtoolError
from sqtool.core.runs import drop_earlier, note_earlier, releases_run_dirs, unfinish
from sqtool.data.readers.generic import CsvHead, acc_to_g, column_units, csv_head, name_unit, unquoted
from sqtool.firmware_bench.predict import (EARLIER, GAINS_NOTE, NO_PULSE_NOTE, PredictConfig, check_gains_count,
                                           csv_cell, flagged_note, gains_mode, listed_outputs, load_export, parse_gains,
                                           spectral_runtime, time_domain_gains)

LIVE_CSV = "stdin.csv"                   # RUN/<this>: the windows printed, as they were printed
LIVE_COLUMNS = ("time_s", "hr_bpm", "lo_bpm", "hi_bpm", "confidence", "flagged", "no_pulse")
READ_BYTES = 1 << 16                     # stdin is read as it arrives, up to this much a time (a file: ~2,000 rows)


@releases_run_dirs
def predict_live(cfg: PredictConfig, rows=None, out=None) -> dict:
    """`sqtool predict --data -`: a live device's CSV rows on stdin (`rows`: a binary stream; None = stdin), a header
    first (the model's channels: ppg[, ppg2], acc_x, acc_y, acc_z, as a CSV's names are read (`generic.canonical`:
    PLETH -> ppg, accx -> acc_x, ...); a time column is skipped; laid out as a CSV file may be (`generic.csv_head`: a
    '#' preamble, a separator ending every line, a units row, units in the names: the accelerometer's to g,
    `live_units`)), at --fs Hz, quantised with fixed --gains (device,
    1, numbers: robust needs the whole recording), through one `sqtool.api.HrStream`, or any other export's (no
    --gains: each window normalised) through one `sqtool.api.TaskStream`, its columns predict's: each window's row is
    printed on `out` (None = stdout) and appended to RUN/stdin.csv as soon as its last row has arrived (a TaskStream's
    last windows, whose band-pass look-ahead runs past the rows, at EOF or Ctrl-C). EOF or Ctrl-C ends it
    with summary.json of what was read (Ctrl-C then raises on: exit 130, the rows kept). A bad first row is one line
    naming its line number (no summary: an unfinished run); a garbled row after a good one (a wrong width, a cell that
    is no number: a line cut by a reconnect) is a gap sample, said once and counted (garbled_rows)."""
    import itertools
    import sys

    from sqtool.api import TaskModel, load_model
    from sqtool.core import make_run_dir, save_config, write_metrics
    from sqtool.core.runs import check_out_dir
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench.cli import check_counts
    from sqtool.firmware_bench.provenance import model_provenance
    rows = sys.stdin.buffer if rows is None else rows
    out = sys.stdout if out is None else out
    check_counts(cfg, "predict")
    if cfg.out:
        check_out_dir("predict", cfg.out, cfg.force)
    gains = parse_gains(cfg.gains)
    if cfg.fs is None:
        raise SqtoolError("--data - (stdin) needs --fs HZ: the rows' sampling rate (a live pipe has no time grid to "
                          "read it from)", code=2)
    for flag, v in (("--acc-fs", cfg.acc_fs), ("--max-seconds", cfg.max_seconds),
                    ("--recordings", ",".join(getattr(cfg, "recordings", ())))):
        if v:
            raise SqtoolError(f"{flag} does not apply to --data - (stdin): its rows are at --fs, every channel on "
                              "every row, read until EOF or Ctrl-C (one stream: no recordings to pick)", code=2)
    art = R.load_artifacts(cfg.model)
    md = art.metadata
    hr = R.is_spectral(md) and md.get("task", "hr") == "hr"        # an HrStream; any other export: a TaskStream
    if hr and gains == "robust":
        raise SqtoolError("--data - (stdin) needs fixed gains: --gains device (the export's defaults), 1 (the rows "
                          "are int16 device counts) or G,G,...; robust scales by the whole recording's spread, which "
                          "a live stream never has", code=2)
    if hr:
        check_gains_count(gains, cfg.gains, md)
        spectral_runtime(cfg.runtime)
        model = load_model(art.export_dir, cfg.runtime)
        stream = model.stream(cfg.fs, gains=gains)                 # fs, runtime: one line each
        stream.source = "--data -"                                  # its saturation note names stdin
        columns = LIVE_COLUMNS
    else:                                                           # predict's checks (--filter, runtime, task)
        time_domain_gains(gains, cfg.gains, art)
        load_export(cfg, art)
        model = TaskModel(art, cfg.runtime, cfg.filter)
        stream = model.stream(cfg.fs)                               # fs: one line
        columns = ("time_s", *stream.columns)
    batches = _line_batches(rows)
    layout, read = _layout(batches)                                 # as a CSV file's: preamble, separator, units row
    batches = itertools.chain([(layout.data_at + 1, read[layout.data_at:])], batches)   # from the first data line
    sep, decimal = layout.kw["sep"], layout.kw["decimal"]
    head_no, head = layout.rows[0][0] + 1, layout.rows[0][1]
    feed, k, width = live_header(head, head_no, model.sensors, model.needs_acc, sep, every_sensor=not hr)
    names = _header_cells(head, sep)
    units = column_units(names, dict(zip(names, _header_cells(layout.rows[1][1], sep) if layout.units_at is not None
                                         else ())), f"--data - line {head_no}")
    to_g = live_units(units, names, feed[k:], hr and gains_mode(gains) == "counts")   # (3,) acc's g per unit, or None

    run_dir = make_run_dir("predict", str(md.get("model", "model")), cfg.out, cfg.force, clear_result=False)
    note_earlier(run_dir, listed_outputs(run_dir), EARLIER, (".csv", ".png"))
    unfinish(run_dir, "predict")
    save_config(run_dir, cfg)
    n = windows = flagged = no_pulse = 0
    interrupted = False
    garbled, garbled_said = [], False                               # rows read as gaps (`_parse_rows`)
    with open(run_dir / LIVE_CSV, "w") as csv:
        def emit(res) -> None:                                      # the windows a push completed, as they come
            nonlocal windows, flagged, no_pulse
            for i in range(len(res)):
                line = ",".join(csv_cell(c, getattr(res, "t_end_s" if c == "time_s" else c)[i]) for c in columns)
                for f in (out, csv):
                    print(line, file=f, flush=True)
            windows += len(res)
            flagged += int(res.flagged.sum())
            no_pulse += int(res.no_pulse.sum()) if hr else 0

        for f in (out, csv):
            print(",".join(columns), file=f, flush=True)
        try:
            for first, lines in batches:
                # (n, k [+ 3]), NaN = gap; a garbled row once a good one was read: a gap, said once and counted
                x = _parse_rows(lines, first, feed, width, names, sep, decimal, garbled, good=n > 0)
                if not len(x):
                    continue
                if to_g is not None:
                    x[:, k:] = x[:, k:] * to_g                      # (n, 3) the accelerometer in g, as a file's
                if garbled and not garbled_said:
                    print(f"sqtool: note: {garbled[0]}: read as a gap, as every garbled row after the first good one "
                          "(a line cut by a reconnect); counted in summary.json (garbled_rows)", file=sys.stderr,
                          flush=True)
                    garbled_said = True
                emit(stream.push(x[:, :k], x[:, k:] if model.needs_acc else None))   # says saturation once
                n += len(x)
        except KeyboardInterrupt:                                   # Ctrl-C: what was read, then exit 130
            interrupted = True
        if not hr:                                                  # the end of the recording: its last windows
            emit(stream.finish())                                   # (the band-pass's look-ahead past it)
    channels_fed = {row: names[j] for row, j in zip([*model.sensors[:k], *(
        ["acc_x", "acc_y", "acc_z"] if model.needs_acc else [])], feed)}
    time_s = {"time_s": "end of the window (s from the first row): when the device reports it"}
    summary = {"model": md.get("model"), "task": md.get("task", "hr"),
               "model_family": (md.get("model_cfg") or {}).get("family"),
               "model_dir": str(art.export_dir), "data": "-", "fs": cfg.fs,
               **({"gains": GAINS_NOTE[gains_mode(gains)]} if hr else {"filter": cfg.filter}),
               "provenance": model_provenance(art), "runtime": stream.runtime, "run_dir": str(run_dir),
               "interrupted": interrupted,
               "recordings": [{"record_id": "stdin", "fs_in": cfg.fs, "channels_fed": channels_fed,
                               **({"gains": dict(zip(channels_fed, (float(g) for g in stream.gains)))}
                                  if hr and stream.gains is not None else {}),
                               **({"units": {c: units[j] for c, j in channels_fed.items() if j in units}}
                                  if any(j in units for j in channels_fed.values()) else {}),
                               "rows": n, "garbled_rows": len(garbled), **({"first_garbled": garbled[0]} if garbled
                                                                           else {}),
                               "seconds": n / cfg.fs, "windows": windows, "flagged_windows": flagged,
                               "scored_windows": windows - flagged, **({"no_pulse_windows": no_pulse} if hr else {}),
                               "csv": LIVE_CSV, "plot": None}],
               "columns": ({**time_s,
                            "hr_bpm": "heart rate", "lo_bpm": "lower end of the decoder's interval",
                            "hi_bpm": "upper end of the decoder's interval", "confidence": "the decoder's confidence",
                            "flagged": "1 = not scored (over half the window's samples were gaps, or its PPG quiet): "
                                       "hr_bpm and its interval are the decoder's prediction only",
                            "no_pulse": NO_PULSE_NOTE} if hr else
                           {**time_s, **stream.table.columns, "flagged": flagged_note(stream.table.columns)})}
    write_metrics(run_dir, summary, name="summary.json")
    drop_earlier(run_dir, {LIVE_CSV}, EARLIER)
    model.close()
    print(f"predict ({stream.runtime}) -> {run_dir}: {windows} windows from {n:,} rows ({n / cfg.fs:.1f} s at "
          f"{cfg.fs:g} Hz), {flagged} flagged" + (f", {len(garbled)} garbled rows read as gaps" if garbled else "")
          + f"; rows in {LIVE_CSV}, summary.json", file=sys.stderr)
    if interrupted:
        raise KeyboardInterrupt
    return summary


def live_header(head: str, line_no: int, sensors, needs_acc: bool, sep: str = ",",
                every_sensor: bool = False) -> tuple[list[int], int, int]:
    """The header of --data - (fields split at `sep`: `generic.csv_head`'s; `_header_cells`) -> (the column index
    feeding each stream row: the PPG sensors the header has, in the model's order (every_sensor: all of them, a
    time-domain model's channels), then acc x, y, z; k, those PPG columns; the columns a row has); a column is read
    by its name without a unit written at its end (`generic.name_unit`: `ppg [a.u.]`, `acc_x (m/s^2)`), a time
    column left unread. One line for a header of numbers, a missing, repeated or unknown column."""
    from sqtool.data.readers.generic import TIME_NAMES, canonical, is_number
    cells = _header_cells(head, sep)
    where = f"--data - line {line_no}"
    if all(is_number(c) for c in cells):
        raise SqtoolError(f"{where} ({head.strip()[:60]}) is no header: the first row names the columns, e.g. "
                          f"{','.join([sensors[0], *(['acc_x', 'acc_y', 'acc_z'] if needs_acc else [])])}")
    bare = [name_unit(c)[0] for c in cells]                         # `ppg [a.u.]` -> ppg, `Time[ms]` -> Time
    names = [canonical(c) for c in bare]
    acc = ["acc_x", "acc_y", "acc_z"] if needs_acc else []
    known = [*sensors, *acc]
    odd = [c for c, b, m in zip(cells, bare, names) if m not in known and m not in TIME_NAMES
           and b.lower() not in TIME_NAMES]
    twice = [m for i, m in enumerate(names) if m in known and m in names[:i]]
    if odd or twice:
        what = (f"column{'s' if len(odd) > 1 else ''} {', '.join(map(repr, odd))} read as none of the model's "
                "channels" if odd else f"{', '.join(map(repr, twice))} appears twice")
        raise SqtoolError(f"{where}: {what} ({', '.join(known)}; a time column is skipped): name the header's "
                          "columns so (PLETH / BVP read as ppg, accx / accel_x as acc_x)")
    ppg = [s for s in sensors if s in names]
    missing = ([s for s in sensors if s not in names] if every_sensor else []) + [c for c in acc if c not in names] \
        or ([] if ppg else [sensors[0]])
    if missing:
        raise SqtoolError(f"{where}: the header ({','.join(cells)}) has no {', '.join(missing)}: this model reads "
                          f"{', '.join(known[:1] + acc)}" + (f" (and {', '.join(sensors[1:])} where the device has "
                                                             "it)" if sensors[1:] else ""))
    return [names.index(c) for c in ppg + acc], len(ppg), len(cells)


def live_units(units: dict[str, str], names: list[str], acc: list[int], counts: bool = False) -> np.ndarray | None:
    """g per unit of the accelerometer columns `acc` (indices into the header's `names`) from the units its units row
    or names give (`units`: `generic.column_units`; mg, m/s^2, ... converted as a file's: `generic.acc_to_g`; a unit
    sqtool does not convert is a label: 1), or None where none converts. `counts` (--gains 1: the rows are the
    device's int16 counts, fed as they are): a unit to convert is one line."""
    to_g = np.array([acc_to_g(units.get(names[j], "")) or 1.0 for j in acc])
    if not (to_g != 1.0).any():
        return None
    if counts:
        said = ", ".join(f"{names[j]} in {units[names[j]]}" for j, g in zip(acc, to_g) if g != 1.0)
        raise SqtoolError(f"--data - --gains 1: the header says {said}, but --gains 1 feeds the rows as the device's "
                          "int16 counts, no unit converted: give --gains device or counts per g (the axes then "
                          "converted to g), or counts as the axes' unit")
    return to_g


def _cells(line: str, sep: str) -> list[str]:
    """A row's fields at the sniffed separator (r"\\s+": any whitespace)."""
    return line.split() if sep == r"\s+" else line.split(sep)


def _header_cells(line: str, sep: str) -> list[str]:
    """A header's (or units row's) fields at `sep`, unquoted (`generic.unquoted`), without the empty last one that a
    separator ending the line leaves (a row then has one more field, empty: `_parse_rows`)."""
    cells = [unquoted(c) for c in _cells(line, sep)]
    return cells[:-1] if len(cells) > 1 and not cells[-1] else cells


def _line_batches(rows):
    """(number of the first line, [lines]) as they arrive: each read takes what the pipe holds (up to READ_BYTES),
    its complete lines handed on at once, so a row is pushed as soon as it is in (a live device: one row at a time;
    a file: thousands); a last line without its newline at EOF too. Lines are counted from 1."""
    read = getattr(rows, "read1", None) or rows.read
    tail, no = b"", 1
    while True:
        _until_readable(rows)
        got = read(READ_BYTES)
        if not got:
            break
        *lines, tail = (tail + got).split(b"\n")
        if lines:
            yield no, [ln.decode("utf-8", "replace") for ln in lines]
            no += len(lines)
    if tail.strip():
        yield no, [tail.decode("utf-8", "replace")]


def _until_readable(rows, poll_s: float = 0.25) -> None:
    """Wait until `rows` (stdin) has bytes or EOF, back in Python every poll_s: a Ctrl-C the kernel hands to another
    thread of the process (a library's thread pool) only sets Python's flag, and a main thread blocked in read() on
    an open, quiet pipe never ran its handler (the run outlived SIGINT). A stream without a file descriptor, or one
    select cannot wait on: read at once."""
    import select
    try:
        fd = rows.fileno()
        while not select.select([fd], [], [], poll_s)[0]:
            pass
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return


def _layout(batches) -> tuple[CsvHead, list[str]]:
    """(the layout of stdin's first lines, as a CSV file's: `generic.csv_head`; the lines read for it, from line 1:
    the batches of `_line_batches` it took, read on from there). Nothing but comments and blank lines on stdin: one
    line."""
    lines: list[str] = []

    def each():
        for _, got in batches:
            lines.extend(got)
            yield from got
    layout = csv_head(each())
    if layout is None:
        raise SqtoolError("--data - (stdin): nothing was read (EOF before a header row): pipe the device's CSV rows "
                          "in, a header first")
    return layout, lines


def _parse_rows(lines: list[str], first: int, feed: list[int], width: int, names: list[str], sep: str = ",",
                decimal: str = ".", garbled: list[str] | None = None, good: bool = True) -> np.ndarray:
    """Rows of --data - (fields at `sep`, numbers with `decimal`'s mark) -> (n, len(feed)) float64 of the fed columns
    (an empty cell, nan, inf: a gap, NaN); a blank line skipped. A row of another width, or a cell that is no number:
    once a good row was read (`good`: before these lines) a gap sample, what is wrong with it appended to `garbled`
    (a serial line cut by a reconnect must not end a live run); before any, one line naming its line number (the rows
    are not what the header says)."""
    x = np.empty((len(lines), len(feed)))
    n = 0
    for i, ln in enumerate(lines):
        if not ln.strip():
            continue
        cells, why = _cells(ln, sep), None
        if len(cells) == width + 1 and not cells[-1].strip():
            cells.pop()                                              # a separator ending the row
        if len(cells) != width:
            why = f"--data - line {first + i}: {len(cells)} values, the header has {width} columns ({', '.join(names)})"
        for j, c in enumerate(feed if why is None else ()):
            t = cells[c].strip()
            t = t.replace(",", ".") if decimal == "," else t
            try:
                x[n, j] = float(t) if t else np.nan
            except ValueError:
                why = (f"--data - line {first + i}: {t[:40]!r} in column {names[c]} is not a number (an empty cell is "
                       "a gap)")
                break
        if why is not None:
            if not good or garbled is None:
                raise SqtoolError(why)
            garbled.append(why)
            x[n] = np.nan                                            # the sample it was: a gap, the clock kept
        good = True
        n += 1
    return x[:n]
