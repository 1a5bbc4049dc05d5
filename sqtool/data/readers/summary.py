"""`sqtool data inspect`: what a dataset folder holds, computed by reading every record (lazily).

summarise(path) -> {kind, path, records, subjects, hours, channels {name: records}, rates {name: [Hz]},
                    labels {name: {kind, unit, records, values, windows?, classes?, binary?}},
                    duration_s {total, min, max}, clipped_records, unlabelled? [{record, expected}],
                    shorter_than? {window s: records shorter} (8 and 30 s, or the dataset file's window),
                    unread_arrays? {"name (shape)": files},
                    recordings [{record, subject, duration_s, fs {channel: Hz}, start_time?, stream_files?, source?,
                                 gravity?, clock_lag?}]}
`recordings`: every recording read, in read order (the text lists the first RECORDINGS_SHOWN, then "... N more"):
what a user checks a dataset file against (each one's length, channels and rates, the stream files it was assembled
from: Record.meta["stream_files"]; where gravity lies in its accelerometer, `gravity.acc_gravity`: the axis order
is the heart-rate models' contract). A dataset file's summary also holds dataset_file.acc, how its acc_* channels
become g (`dataset_file.acc_conversion`), printed under the channels.
`values` counts a label's values as its source holds them (a label file's rows: per window or per second alike);
`windows` (per-window labels) {"with_value", "of"}: the recordings' windows (every hop_s, fully inside the PPG) and
those with a finite value, as the heart-rate tasks read it (`windows_with_value`), the one count to compare.
`clock_lag` (a recording with a per-window hr label and a PPG): its reference's lag against the PPG's classic heart
rate (`clocklag.record_clock_lag`: verdict aligned / lagged / undetermined, lag_s, agreement at 0 and at the lag); the
text prints a count line and one WARNING line per lagged recording, naming the offset_s that undoes it.
A folder holding several datasets (e.g. the whole data root, or a folder of dataset folders each with its own
dataset.yaml) gives {"kind": "multiple", "datasets": [...]}, one summary per sub-folder that is a dataset (one with
a dataset.yaml read through it). `binary`: a dataset file's rhythm / quality classes as the af and
quality tasks read them ({"AF": n, "other": n} through its af list, {"good": n, "poor": n} through its good list).
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.clocklag import clock_lag_lines
from sqtool.data.gravity import acc_gravity
from sqtool.data.polarity import polarity_lines
from sqtool.data.record import PPG_WAVELENGTHS

CLIPPED = 0.25          # a record whose primary PPG has > 25 % of samples at its max/min counts as clipped
SHORT_S = {8.0: "heart-rate", 30.0: "pairs' and the time-domain tasks' default"}   # window lengths (s) a record holds
SLOW_HZ = 8.0           # below this a channel cannot carry a pulse of 230 BPM (3.8 Hz) or the motion beside it
POSITIVE = {"rhythm": ("AF", "other"), "quality": ("good", "poor")}  # label -> its two names as the task reads it
#   (through Label.positive: a dataset file's af / good classes, as the data spells them)
RECORDINGS_SHOWN = 10   # the text's recordings table: the first 10, then "... N more" (--json: every one; a folder of
#   several datasets: none, each one's by its own --data)


def windows_with_value(rec, name: str, lab, grid: tuple[float, float] | None = None) -> tuple[int, int]:
    """(windows with a finite value, windows) of `rec`'s windows (every hop_s, fully inside its PPG) for a per-window
    label `lab` (named `name` in rec.labels): its value at each window's centre, as both heart-rate paths take it (`hr_spectra.window_truth`).
    grid: (window_s, hop_s), the dataset file's; None: the label's own window and row spacing."""
    from sqtool.data.dataset_reader import row_step
    from sqtool.data.ecg import window_starts
    from sqtool.data.hr_spectra import window_truth
    w, h = grid if grid is not None else (float(lab.window_s or 0.0), row_step(np.asarray(lab.times, float)))
    ch = rec.primary_channel()
    if w <= 0 or h <= 0:
        return 0, 0
    t0 = window_starts(len(rec.signals[ch]), float(rec.fs[ch]), w, h)
    y = window_truth(rec, t0, w, label=name)
    return int(np.isfinite(y).sum()), len(t0)


def recording_row(rec) -> dict:
    """One recording as inspect's `recordings` table lists it (its id, subject, length, channels' rates, wall-clock
    start, the stream files it was read from, its file)."""
    row = {"record": str(rec.record_id), "subject": str(rec.subject), "duration_s": round(float(rec.duration()), 3),
           "fs": {c: float(f"{float(rec.fs[c]):.6g}") for c in rec.signals}}
    for key in ("start_time", "stream_files"):
        if rec.meta.get(key):
            row[key] = rec.meta[key]
    if rec.source:
        row["source"] = str(rec.source)
    if g := acc_gravity(rec):
        row["gravity"] = g
    return row


def summarise(path: str | os.PathLike, kind: str | None = None, records=None,
              windows: tuple[float, float] | None = None, progress: bool = False, **kw) -> dict:
    """`records` given (e.g. a dataset file's): summarise those instead of reading `path`; `windows`: their
    (window_s, hop_s), a dataset file's (else a per-window label's own); progress: a bar over the records read."""
    from sqtool.core.progress import bar
    from sqtool.data.clocklag import record_clock_lag
    from sqtool.data.polarity import ppg_channels, record_polarity
    from sqtool.data.readers import clip_fraction, detect_kind, iter_records

    from sqtool.data.dataset_file import dataset_folders, load_dataset_file

    path = Path(path)
    if records is None and kind is None and path.is_dir():
        try:
            kind = None if dataset_folders(path) else detect_kind(path)     # dataset folders: a data root
        except SqtoolError as e:
            if "several datasets" not in str(e):
                raise
        if kind is None:
            subs = []
            for d in sorted(q for q in path.iterdir() if q.is_dir() and not q.name.startswith(".")):
                try:
                    if (d / "dataset.yaml").is_file():        # read through its dataset.yaml, never as raw files
                        ds = load_dataset_file(d)
                        subs.append(summarise(ds.path, progress=progress,
                                              windows=(float(ds.windows.window_s), float(ds.windows.hop_s)), **kw))
                    else:
                        subs.append(summarise(d, progress=progress, **kw))
                except SqtoolError as sub_e:
                    if "no dataset recognised" not in str(sub_e):
                        raise
            return {"kind": "multiple", "path": str(path), "datasets": subs,
                    "records": sum(s["records"] for s in subs), "hours": sum(s["hours"] for s in subs)}
    skipped: list = kw.pop("skipped", [])
    n = 0
    subjects: set = set()
    channels: Counter = Counter()
    rates: dict = defaultdict(set)
    labels: dict = {}
    total_s, dmin, dmax = 0.0, float("inf"), 0.0
    short = dict.fromkeys((float(windows[0]),) if windows is not None else SHORT_S, 0)   # records shorter than each
    kinds_seen: Counter = Counter()
    clipped = 0
    gaps = {"samples": 0, "records": 0, "example": ""}        # NaN/Inf samples (gaps); the first record's, by channel
    unlabelled: list[dict] = []
    unread: Counter = Counter()                              # NPZ members the reader did not read
    ppg_from: Counter = Counter()                            # a lone wavelength column read as the ppg
    polarity = {"normal": 0, "undetermined": 0, "inverted": []}   # each PPG channel's (polarity.record_polarity)
    rows: list[dict] = []                                    # each recording's line (recording_row)
    for rec in bar(records if records is not None else iter_records(path, kind, skipped=skipped, **kw),
                   desc=f"inspect {path.name}", enabled=progress, unit="rec"):
        n += 1
        rows.append(recording_row(rec))
        if lag := record_clock_lag(rec, "hr", None if windows is None else float(windows[1])):
            rows[-1]["clock_lag"] = lag.as_dict()                # its reference's clock against its PPG's
        if rec.meta.get("truth_missing"):                   # a reader looked for its label file, in vain
            unlabelled.append({"record": rec.source or rec.record_id, "expected": rec.meta.get("truth_expected")})
        kinds_seen[rec.dataset] += 1
        unread.update(rec.meta.get("unread_arrays", ()))
        if rec.meta.get("ppg_from"):
            ppg_from[rec.meta["ppg_from"]] += 1
        subjects.add(rec.subject)
        clipped += clip_fraction(rec.signals[rec.primary_channel()]) > CLIPPED     # of its finite samples
        for c in ppg_channels(rec):                          # warn only: the data is read as given
            p = record_polarity(rec, c)
            if p.verdict == "inverted":
                polarity["inverted"].append({"record": rec.record_id, "channel": c, **p.as_dict()})
            else:
                polarity[p.verdict] += 1
        if k := rec.nonfinite_samples():
            gaps["samples"] += k
            gaps["records"] += 1
            gaps["example"] = gaps["example"] or f"{rec.record_id}: {rec.gap_text()}"
        d = rec.duration()
        total_s += d
        dmin, dmax = min(dmin, d), max(dmax, d)
        for w in short:
            short[w] += d < w
        for c in rec.signals:
            channels[c] += 1
            rates[c].add(float(f"{float(rec.fs[c]):.6g}"))             # 6 significant digits: 1e-06 stays 1e-06
        for name, lab in rec.labels.items():
            s = labels.setdefault(name, {"kind": lab.kind, "unit": lab.unit, "records": 0, "values": 0})
            s["records"] += 1
            s["values"] += len(lab) if lab.times is not None or lab.kind == "flags" else 1
            if lab.kind == "window" and lab.times is not None:
                ok, of = windows_with_value(rec, name, lab, windows)
                win = s.setdefault("windows", {"with_value": 0, "of": 0})
                win["with_value"], win["of"] = win["with_value"] + ok, win["of"] + of
            if lab.kind in ("window", "value"):                             # NaN = no/doubtful truth
                if k := int(np.sum(~np.isfinite(np.asarray(lab.values, float)))):
                    s["nan"] = s.get("nan", 0) + k
            if lab.kind == "flags":
                s["flagged"] = s.get("flagged", 0) + int(np.sum(np.asarray(lab.values) > 0))
            if lab.kind == "class" and lab.classes:
                hist = s.setdefault("classes", {c: 0 for c in lab.classes})
                yes, no = POSITIVE.get(name, ("", ""))
                pos = lab.positive if name in POSITIVE else None       # a dataset file's af / good classes
                two = s.setdefault("binary", {yes: 0, no: 0}) if pos is not None else None
                for v in np.atleast_1d(lab.values):
                    name_c = lab.classes[int(v)] if 0 <= int(v) < len(lab.classes) else str(int(v))
                    hist[name_c] = hist.get(name_c, 0) + 1
                    if two is not None:
                        two[yes if name_c in pos else no] += 1
    if n == 0:
        raise SqtoolError(f"{path}: no usable records")
    out = {"kind": next(iter(kinds_seen)) if len(kinds_seen) == 1 else dict(kinds_seen), "path": str(path),
           "records": n, "subjects": len(subjects), "hours": total_s / 3600.0,
           "duration_s": {"total": total_s, "min": dmin, "max": dmax},
           "channels": dict(channels), "rates": {c: sorted(v) for c, v in rates.items()}, "labels": labels,
           "clipped_records": int(clipped)}
    if any(short.values()):
        out["shorter_than"] = {f"{w:g}": k for w, k in short.items()}
    if gaps["samples"]:
        out["nonfinite"] = gaps
    if skipped:
        out["skipped"] = list(skipped)
    if unlabelled:
        out["unlabelled"] = unlabelled
    if unread:
        out["unread_arrays"] = dict(unread)
    if ppg_from:
        out["ppg_from"] = dict(ppg_from)
    out["polarity"] = polarity
    out["recordings"] = rows
    return out


def format_summary(s: dict, indent: str = "", shown: int = RECORDINGS_SHOWN) -> str:
    """Human-readable text for one summary (or a list of them for kind 'multiple'); `shown`: the recordings listed
    (a folder of several datasets: none)."""
    if s["kind"] == "multiple":
        lines = [f"{s['path']}: {len(s['datasets'])} datasets, {s['records']} records, {s['hours']:.2f} h"]
        for sub in s["datasets"]:
            lines.append(format_summary(sub, indent + "  ", shown=0))
        return "\n".join(lines)
    d = s["duration_s"]
    lines = [f"{indent}{s['path']}  [{s['kind']}]",
             f"{indent}  records {s['records']}, subjects {s['subjects']}, total {s['hours']:.3f} h "
             f"(record length {d['min']:.1f}..{d['max']:.1f} s)"]
    ch = ", ".join(f"{c} @ {'/'.join(f'{r:g}' for r in s['rates'][c])} Hz"
                   + (f" ({k}/{s['records']})" if k != s["records"] else "")
                   for c, k in s["channels"].items())
    lines.append(f"{indent}  channels: {ch}")
    acc = (s.get("dataset_file") or {}).get("acc")
    if acc and any(c.startswith("acc") for c in s["channels"]):
        report = s.get("dataset_file") or {}
        odd, axis = (len(report.get(k) or ()) for k in ("acc_unit_suspect", "acc_axis_unit_suspect"))
        lines.append(f"{indent}  accelerometer: {acc_text(acc)}" + (f" (gravity reads as another unit in {odd} "
                                                                   "recording(s): see the warning)" if odd else "")
                     + (f" (one axis reads as another unit in {axis} recording(s): see the warning)" if axis else ""))
    slow = {c: min(r) for c, r in s["rates"].items() if r and min(r) < SLOW_HZ}
    if slow:
        lines.append(f"{indent}  warning: " + ", ".join(f"{c} at {r:g} Hz" for c, r in slow.items())
                     + f": under {SLOW_HZ:g} Hz no model here can read a pulse (230 BPM is 3.8 Hz); if the time "
                     "column is not in seconds, say its unit in a dataset file (time_unit)")
    if s["labels"]:
        lines.append(f"{indent}  labels:")
        for name, l in s["labels"].items():
            extra = ""
            if "classes" in l:
                extra = "  " + ", ".join(f"{c} {k}" for c, k in l["classes"].items())
                if set(l.get("binary") or l["classes"]) != set(l["classes"]):     # as the task reads them
                    extra += "  (" + " / ".join(f"{c} {k}" for c, k in l["binary"].items()) + ")"
            elif l["kind"] == "flags":
                extra = f"  {l.get('flagged', 0)} flagged samples"
            elif l.get("nan"):
                extra = f"  ({l['nan']} missing, NaN: no or doubtful truth)"
            if "windows" in l:                             # rows per second or per window: the windows compare
                extra += f"; windows {l['windows']['with_value']} of {l['windows']['of']} with a value"
            lines.append(f"{indent}    {name:<18} {l['kind']:<7} {l['unit'] or '-':<12} "
                         f"records {l['records']:<5} values {l['values']}{extra}")
    else:
        lines.append(f"{indent}  labels: none")
    if doubt := (s.get("dataset_file") or {}).get("hr_doubtful"):        # an ECG's or a strap's (ds.report)
        why = ", ".join(f"{k} {n}" for k, n in ((s.get("dataset_file") or {}).get("hr_reasons") or {}).items() if n)
        lines.append(f"{indent}  hr reference: {doubt} doubtful windows, NaN, never scored"
                     + (f" ({why})" if why else ""))
    for label, u in ((s.get("dataset_file") or {}).get("no_label_row") or {}).items():
        lines.append(f"{indent}  warning: {u['records']} of {u['of']} recordings have no row in {u['table']}, e.g. "
                     f"{u['example']}: no {label} label (left out of the {label} task)")
    if s.get("shorter_than"):
        short = [f"{n} of {s['records']} record(s) shorter than {w} s hold no "
                 f"{SHORT_S.get(float(w), 'dataset file')} window"
                 for w, n in s["shorter_than"].items() if n]
        lines.append(f"{indent}  note: " + "; ".join(short) + " (a task reads them only with a --window-s that fits)")
    if s.get("clipped_records"):
        lines.append(f"{indent}  clipped: {s['clipped_records']} record(s) with > {100 * CLIPPED:.0f}% of PPG "
                     f"samples at the max/min (saturation)")
    if s.get("nonfinite"):
        g = s["nonfinite"]
        lines.append(f"{indent}  gaps: {g['samples']} NaN/Inf samples in {g['records']} record(s) (predict and bench "
                     "hold them as dropouts; training and pairs leave out the windows holding one)"
                     + (f"; e.g. {g['example']}" if g.get("example") else ""))
    if s.get("unlabelled"):
        u = s["unlabelled"]
        lines.append(f"{indent}  warning: {len(u)} record(s) without their label file, read unlabelled, e.g. "
                     f"{u[0]['record']} (expected {u[0]['expected']})")
    if s.get("unread_arrays"):
        u = s["unread_arrays"]
        lines.append(f"{indent}  note: not read: " + ", ".join(f"{a} ({k} file{'s' if k > 1 else ''})"
                                                           for a, k in u.items())
                     + " (an NPZ's channels: 1-D arrays, a 2-D acc (N, 3), signals (C, N) + channels)")
    if s.get("ppg_from"):
        lines.append(f"{indent}  note: ppg read from " + ", ".join(f"'{c}' ({k}/{s['records']})"
                                                              for c, k in s["ppg_from"].items())
                     + ", the recording's one PPG wavelength")
    waves = [c for c in s["channels"] if c in PPG_WAVELENGTHS]
    if waves and "ppg" not in s["channels"]:
        lines.append(f"{indent}  warning: no ppg channel but {len(waves)} PPG wavelengths ({', '.join(waves)}): a model "
                     f"reads one; name it in a dataset.yaml beside the recordings (channels: {{ppg: <column>}})")
    lines += polarity_lines(s, indent=indent)
    lines += clock_lag_lines(s, indent=indent)
    if shown and s.get("recordings"):
        lines += recording_lines(s["recordings"], shown, indent + "  ")
    if s.get("skipped"):
        lines.append(f"{indent}  skipped {len(s['skipped'])} bad item(s), e.g. {s['skipped'][0]}")
    return "\n".join(lines)


def rates_text(fs: dict) -> str:
    """'ppg 64 Hz; acc_x, acc_y, acc_z 32 Hz': a recording's channels grouped by rate, in channel order."""
    by: dict = {}
    for c, r in fs.items():
        by.setdefault(r, []).append(c)
    return "; ".join(f"{', '.join(cs)} {r:g} Hz" for r, cs in by.items())


def recording_lines(rows: list[dict], shown: int, indent: str) -> list[str]:
    """The recordings table: a header, the first `shown` rows (id, subject, length, channels at their rates, the
    wall-clock start, gravity's axis with its share of windows and the stream files where any has them), then
    '... N more' when there are more."""
    head = rows[:shown]
    cols = [("record", [r["record"] for r in head]), ("subject", [r["subject"] for r in head]),
            ("length", [f"{r['duration_s']:.1f} s" for r in head]), ("channels", [rates_text(r["fs"]) for r in head])]
    if any("start_time" in r for r in head):
        cols.append(("start", [r.get("start_time", "-") for r in head]))
    if any("gravity" in r for r in head):
        cols.append(("gravity", [f"{r['gravity']['axis']} {100 * r['gravity']['share']:.0f} %" if "gravity" in r else "-"
                                 for r in head]))
    if any("stream_files" in r for r in head):
        cols.append(("stream files", [", ".join(r.get("stream_files", ())) or "-" for r in head]))
    width = [max(len(name), *(len(v) for v in vals)) for name, vals in cols]
    more = f", the first {shown} below" if len(rows) > shown else ""
    out = [f"{indent}recordings ({len(rows)}{more}):",
           indent + "  " + "  ".join(f"{name:<{w}}" for (name, _), w in zip(cols, width)).rstrip()]
    for i in range(len(head)):
        out.append(indent + "  " + "  ".join(f"{vals[i]:<{w}}" for (_, vals), w in zip(cols, width)).rstrip())
    if len(rows) > shown:
        out.append(f"{indent}  ... {len(rows) - shown} more (--json lists every one)")
    return out


def acc_text(groups: list[dict]) -> str:
    """How a dataset file's acc_* channels become g (`dataset_file.acc_conversion`), e.g. 'acc_x, acc_y, acc_z: value
    in m/s^2, / 9.80665 -> g'."""
    parts = []
    for g in groups:
        if "reader" in g:
            parts.append(f"in g, as the {g['reader']} reader gives it")
            continue
        raw = "value" + (f" x {g['gain']:g}" if g["gain"] != 1 else "") + (f" + {g['offset']:g}" if g["offset"] else "")
        to_g = ("each recording's -> g" if g["to_g"] is None else "not converted" if g["to_g"] == 1
                else f"/ {1 / g['to_g']:.6g} -> g")
        unit = g["unit"] + (" (as its CSV writes it)" if g.get("from") == "CSV" else "")
        parts.append(f"{', '.join(g['channels'])}: {raw} in {unit}, {to_g}")
    return "; ".join(parts)
