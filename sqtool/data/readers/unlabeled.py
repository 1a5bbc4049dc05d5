"""Unlabeled recordings shipped with HeartPy, E2E-PPG and vital_sqi: pretraining and streaming demos.

    e2epyppg/.../<stamp>_Data.csv      smartwatch, tab-separated: timestamp (Unix ms), ppg, accx/accy/accz
                                       (m/s^2), gyro, ...; nominally 20 Hz (the package README), the
                                       timestamps give 19.58 Hz over the 735 s, which is what is used
    heartpy/.../data.csv               one column, no header, 100 Hz (HeartPy docs)
    heartpy/.../data2.csv              timer (ms), hr (= the PPG, despite the name): ~117 Hz
    heartpy/.../data3.csv              datetime strings, hr (= PPG): ~100 Hz
    heartpy/.../ring_data.csv          smart ring, one column, 32 Hz, with runs of empty rows (dropouts)
    smartcare/.../ppg_smartcare.csv    pulse oximeter: TIMESTAMP_MS (10 ms), PLETH, RED_ADC, IR_ADC,
                                       PULSE_BPM, SPO2_PCT; one 1.74 s gap in the timestamps

Channels: ppg (+ acc_x/y/z in g for the smartwatch, ppg_red/ppg_ir for the oximeter). Recordings with
dropouts or timestamp gaps are split into their contiguous runs (record ids "<name>_s<k>",
`meta["start_s"]` = where the run starts in the file); runs shorter than 5 s are dropped. The oximeter's
own pulse rate and SpO2 become weak labels device_hr / device_spo2 (kind "value", one per second, only
where the device reported a positive value). Subject = one per source file (ring runs share one).
Readers of other CSV files use the generic reader (kind "csv").
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.readers._common import numeric_column, read_csv, time_grid
from sqtool.data.readers.generic import times_in_seconds
from sqtool.data.record import Label, Record

KIND = "unlabeled"
G = 9.80665
MIN_RUN_S = 5.0
_E2E = re.compile(r"^\d+_Data\.csv$")
_HEARTPY = {"data.csv", "data2.csv", "data3.csv"}


def _which(p: Path) -> str | None:
    n = p.name
    if _E2E.match(n):
        return "e2epyppg"
    if n == "ring_data.csv":
        return "ring"
    if n == "ppg_smartcare.csv":
        return "smartcare"
    if n in _HEARTPY and "heartpy" in [q.lower() for q in p.parts]:
        return "heartpy"
    return None


def detect(files: list[Path]) -> bool:
    return any(_which(p) for p in files)


def list_items(files: list[Path]) -> list[Path]:
    return [p for p in files if _which(p)]


def _runs(ok: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """[start, end) of the runs where `ok` is True, at least min_len long."""
    d = np.diff(np.r_[0, ok.astype(np.int8), 0])
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends) if e - s >= min_len]


def _split(name: str, subject: str, p: Path, signals: dict, fs: float, ok: np.ndarray,
           labels_fn=None, meta: dict | None = None) -> list[Record]:
    runs = _runs(ok, int(MIN_RUN_S * fs))
    if not runs:
        raise SqtoolError(f"{p}: no contiguous run of at least {MIN_RUN_S:g} s of valid samples")
    out = []
    for k, (s, e) in enumerate(runs):
        rid = name if len(runs) == 1 else f"{name}_s{k}"
        sig = {c: np.ascontiguousarray(x[s:e]) for c, x in signals.items()}
        labels = labels_fn(s, e) if labels_fn else {}
        out.append(Record(dataset=KIND, subject=subject, record_id=rid, signals=sig,
                          fs={c: fs for c in sig}, labels=labels,
                          meta={**(meta or {}), "start_s": s / fs, "runs_in_file": len(runs)}, source=str(p)))
    return out


def _e2e(p: Path) -> list[Record]:
    df = read_csv(p, sep="\t")
    df.columns = [str(c).strip() for c in df.columns]
    for c in ("timestamp", "ppg"):
        if c not in df.columns:
            raise SqtoolError(f"{p}: column '{c}' missing (has {', '.join(df.columns)})")
    t = times_in_seconds(df["timestamp"], "timestamp", str(p), "ms")
    grid = time_grid(t, f"{p}: column 'timestamp'")                 # rows missing: NaN, split off below
    fs = grid.fs
    signals = {"ppg": grid.spread(numeric_column(df, "ppg", str(p)))}
    for src, ch in (("accx", "acc_x"), ("accy", "acc_y"), ("accz", "acc_z")):
        if src in df.columns:
            signals[ch] = grid.spread(numeric_column(df, src, str(p))) / G            # m/s^2 -> g
    ok = np.all([np.isfinite(x) for x in signals.values()], axis=0)
    return _split(f"e2epyppg_{p.stem}", f"e2epyppg_{p.stem}", p, signals, fs, ok,
                  meta={"source_dataset": "e2epyppg", "nominal_fs": 20.0, "acc_unit": "g"})


def _heartpy(p: Path) -> list[Record]:
    name = f"heartpy_{p.stem}"
    if p.name == "data.csv":
        df = read_csv(p, header=None)
        x, fs = numeric_column(df, df.columns[0], str(p)), 100.0
    else:
        df = read_csv(p)
        df.columns = [str(c).strip() for c in df.columns]
        tcol = "timer" if "timer" in df.columns else "datetime" if "datetime" in df.columns else None
        if tcol is None or "hr" not in df.columns:
            raise SqtoolError(f"{p}: expected columns timer|datetime and hr (has {', '.join(df.columns)})")
        t = times_in_seconds(df[tcol], tcol, str(p), "ms" if tcol == "timer" else None)
        grid = time_grid(t, f"{p}: column '{tcol}'")                 # rows missing: NaN, split off below
        fs = grid.fs
        x = grid.spread(numeric_column(df, "hr", str(p)))
    return _split(name, name, p, {"ppg": x}, fs, np.isfinite(x), meta={"source_dataset": "heartpy"})


def _ring(p: Path) -> list[Record]:
    import pandas as pd

    df = read_csv(p, header=None, skip_blank_lines=False, dtype=str, keep_default_na=False)
    col = df[df.columns[0]].str.strip().str.strip('"')
    x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(x) & (col.to_numpy() != "")
    if bad.any():
        i = int(np.argmax(bad))
        raise SqtoolError(f"{p}: row {i + 1} is not a number ({col.iloc[i]!r})")
    start = int(np.argmax(np.isfinite(x)))                 # the file starts with a blank line
    x = x[start:]
    return _split("heartpy_ring", "heartpy_ring", p, {"ppg": x}, 32.0, np.isfinite(x),
                  meta={"source_dataset": "heartpy"})


def _smartcare(p: Path) -> list[Record]:
    df = read_csv(p)
    df.columns = [str(c).strip() for c in df.columns]
    for c in ("TIMESTAMP_MS", "PLETH"):
        if c not in df.columns:
            raise SqtoolError(f"{p}: column '{c}' missing (has {', '.join(df.columns)})")
    t = times_in_seconds(df["TIMESTAMP_MS"], "TIMESTAMP_MS", str(p), "ms")
    dt = np.diff(t)
    if np.any(dt <= 0):
        raise SqtoolError(f"{p}: TIMESTAMP_MS is not increasing at row {int(np.argmax(dt <= 0)) + 2}")
    step = float(np.median(dt))
    fs = round(1.0 / step, 6)                               # 10 ms -> exactly 100 Hz
    signals = {"ppg": numeric_column(df, "PLETH", str(p))}
    for src, ch in (("RED_ADC", "ppg_red"), ("IR_ADC", "ppg_ir")):
        if src in df.columns:
            signals[ch] = numeric_column(df, src, str(p))
    ok = np.all([np.isfinite(x) for x in signals.values()], axis=0)
    # a timestamp gap splits the recording: mark the first sample after each gap as a run boundary
    gap = np.flatnonzero(dt > 1.5 * step)
    seg_id = np.zeros(len(t), dtype=np.int64)
    seg_id[gap + 1] = 1
    seg_id = np.cumsum(seg_id)
    device = {}
    for src, key, unit in (("PULSE_BPM", "device_hr", "bpm"), ("SPO2_PCT", "device_spo2", "%")):
        if src in df.columns:
            device[key] = (numeric_column(df, src, str(p)), unit)

    def labels_fn(s, e):
        idx = np.arange(s, e, int(round(fs)))              # one reading per second
        out = {}
        for key, (v, unit) in device.items():
            keep = idx[np.isfinite(v[idx]) & (v[idx] > 0)]
            out[key] = Label(values=v[keep], times=(keep - s) / fs, unit=unit, kind="value")
        return out

    recs = []
    for k in range(int(seg_id.max()) + 1):
        mask = ok & (seg_id == k)
        recs.extend(_split(f"smartcare_g{k}" if seg_id.max() else "smartcare", "smartcare", p, signals, fs,
                           mask, labels_fn, meta={"source_dataset": "vital_sqi", "gap_free_block": k})
                    if mask.sum() >= MIN_RUN_S * fs else [])
    if not recs:
        raise SqtoolError(f"{p}: no contiguous run of at least {MIN_RUN_S:g} s")
    return recs


def read_item(p: Path, ctx: dict) -> list[Record]:
    return {"e2epyppg": _e2e, "heartpy": _heartpy, "ring": _ring, "smartcare": _smartcare}[_which(p)](p)
