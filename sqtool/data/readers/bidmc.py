"""BIDMC PPG and Respiration (PhysioNet): 53 ICU patients x 8 min, 125 Hz, CSV release.

    bidmc_csv/bidmc_NN_Signals.csv[.gz]  'Time [s]' + a per-record set of columns in a per-record order:
                                         PLETH (fingertip PPG), RESP (impedance), ECG leads II/V/AVR/I/III/MCL,
                                         sometimes ABP/ART/CVP. Headers have a leading space.
    bidmc_csv/bidmc_NN_Breaths.csv       breath annotations by 2 annotators, 1-based sample numbers
    bidmc_csv/bidmc_NN_Numerics.csv      1 Hz monitor numerics: HR, PULSE, RESP (breaths/min), SpO2
    bidmc_csv/bidmc_NN_Fix.txt           age, gender, ward

Columns are selected by NAME (never by position). Channels: PLETH -> ppg, RESP -> resp, lead II -> ecg
(else the first lead present), every other lead -> ecg_<lead>, ABP/ART/CVP -> abp/art/cvp.
Labels: breaths_ann1 / breaths_ann2 (kind "events": times in seconds = (sample - 1) / 125, values = 0-based
sample index; the sample numbers are MATLAB exports, hence 1-based; the 8 ms this shifts is far below the
annotations' own spread around the RESP peaks, so the data cannot confirm it either way), and from the numerics hr, pulse, rr (breaths/min) and spo2 (kind "value" at 1 Hz; missing
monitor values and values outside the waveform, e.g. bidmc23's t = -1 s, are dropped, not kept as NaN). Subject = record ("bidmc01"): one recording per patient.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.readers._common import numeric_column, rate_from_times, read_csv
from sqtool.data.record import Label, Record

KIND = "bidmc"
FS = 125.0
_SIG = re.compile(r"^bidmc_?(\d+)_Signals\.csv(\.gz)?$", re.I)
_LEADS = ("II", "I", "III", "V", "AVR", "AVL", "AVF", "MCL")
_OTHER = {"PLETH": "ppg", "RESP": "resp", "ABP": "abp", "ART": "art", "CVP": "cvp"}


def detect(files: list[Path]) -> bool:
    return any(_SIG.match(p.name) for p in files)


def list_items(files: list[Path]) -> list[Path]:
    return [p for p in files if _SIG.match(p.name)]


def channel_names(columns: list[str]) -> dict[str, str]:
    """CSV column -> canonical channel (PLETH -> ppg, lead II -> ecg, V -> ecg_v, ...)."""
    cols = [c.strip() for c in columns]
    out: dict[str, str] = {}
    leads = [c for c in cols if c.upper() in _LEADS]
    main = "II" if "II" in (c.upper() for c in leads) else (leads[0].upper() if leads else None)
    for c in cols:
        u = c.upper()
        if u in _OTHER:
            out[c] = _OTHER[u]
        elif u in _LEADS:
            out[c] = "ecg" if u == main else f"ecg_{u.lower()}"
    return out


def _sibling(p: Path, nn: str, what: str) -> Path | None:
    for name in (f"bidmc_{nn}_{what}", f"bidmc{nn}_{what}"):
        q = p.with_name(name)
        if q.is_file():
            return q
    return None


def _fix_meta(path: Path | None) -> dict:
    meta: dict = {}
    if path is None:
        return meta
    for line in path.read_text(errors="replace").splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip() in ("Age", "Gender", "Location"):
            meta[k.strip().lower()] = v.strip()
    return meta


def read_item(p: Path, ctx: dict) -> list[Record]:
    nn = _SIG.match(p.name).group(1)
    rid = f"bidmc{nn}"
    df = read_csv(p, skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    names = channel_names(list(df.columns))
    if "PLETH" not in {c.upper() for c in df.columns}:
        raise SqtoolError(f"{p}: no PLETH (PPG) column (has {', '.join(df.columns)})")
    fs = FS
    tcol = next((c for c in df.columns if c.lower().startswith("time")), None)
    if tcol is not None:
        fs_t = rate_from_times(numeric_column(df, tcol, str(p)), str(p))
        if abs(fs_t - FS) > 0.01 * FS:
            raise SqtoolError(f"{p}: time column gives {fs_t:.2f} Hz, BIDMC is {FS:g} Hz; wrong sampling rate")
        fs = fs_t if abs(fs_t - FS) > 1e-6 * FS else FS
    order = ["ppg", "resp", "ecg"]                       # canonical order: PPG first, then by name
    cols = sorted(names, key=lambda c: (order.index(names[c]) if names[c] in order else 3, names[c]))
    signals = {names[col]: numeric_column(df, col, str(p)) for col in cols}
    n = len(df)

    labels: dict[str, Label] = {}
    if (b := _sibling(p, nn, "Breaths.csv")) is not None:
        bd = read_csv(b, skipinitialspace=True)
        for col in bd.columns:
            m = re.search(r"ann(\d+)", str(col))
            if not m:
                continue
            idx = numeric_column(bd, col, str(b))
            idx = np.sort(idx[np.isfinite(idx)])       # bidmc09 / bidmc19's annotator 2 lists one breath late
            if idx.size and (idx.min() < 1 or idx.max() > n):
                raise SqtoolError(f"{b}: breath sample numbers {idx.min():.0f}..{idx.max():.0f} outside the "
                                  f"signal's 1..{n}; labels do not match the signal length")
            labels[f"breaths_ann{m.group(1)}"] = Label(values=idx - 1, times=(idx - 1) / fs,
                                                       unit="sample", kind="events")
    if (nf := _sibling(p, nn, "Numerics.csv")) is not None:
        nd = read_csv(nf, skipinitialspace=True)
        nd.columns = [str(c).strip() for c in nd.columns]
        t = numeric_column(nd, nd.columns[0], str(nf)) if str(nd.columns[0]).lower().startswith("time") \
            else np.arange(len(nd), dtype=np.float64)
        for col, name, unit in (("HR", "hr", "bpm"), ("PULSE", "pulse", "bpm"),
                                ("RESP", "rr", "breaths/min"), ("SpO2", "spo2", "%")):
            if col in nd.columns:
                v = numeric_column(nd, col, str(nf))
                # monitor values outside the waveform (bidmc23 has one at t = -1 s) describe no sample
                ok = np.isfinite(v) & np.isfinite(t) & (t >= 0) & (t <= (n - 1) / fs)
                labels[name] = Label(values=v[ok], times=t[ok], unit=unit, kind="value")
    meta = {"columns": list(df.columns), **_fix_meta(_sibling(p, nn, "Fix.txt"))}
    return [Record(dataset=KIND, subject=rid, record_id=rid, signals=signals,
                   fs={c: fs for c in signals}, labels=labels, meta=meta, source=str(p))]
