"""BUT PPG subset (Brno smartphone PPG, PhysioNet): 51 camera-PPG records of 10 s at 30 Hz.

    database/myData.csv          space-separated: ID RefHR Location Motion Quality "Signal" "Time"
                                 (Signal/Time = quoted strings of 300 numbers each)
    database/subject-info.csv    per-record demographics (UTF-8 BOM) -> meta, when present

Record ID "XXXYYY": XXX = subject, YYY = recording of that subject, so subject = the first 3 digits.
Labels (whole record): quality (class: poor / good = 0 / 1, the human annotation), hr (ECG reference,
bpm), motion (class, the database's motion codes; 8 = "moving finger + walking" as recoded by the
mirror). The Time strings span 0..10 s over 300 samples (linspace), which is 29.9 Hz by arithmetic; the
camera ran at 30 Hz and the reader uses that, refusing a time axis more than 2 % away from it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.readers._common import check_plausible_labels, read_csv
from sqtool.data.record import Label, Record

KIND = "but_ppg"
FS = 30.0
QUALITY = ("poor", "good")
MOTION = ("rest", "higher pressure", "moving finger", "walking", "coughing", "laughing", "light change",
          "talking", "moving finger + walking")
_NEED = ("ID", "Quality", "Signal")


def detect(files: list[Path]) -> bool:
    return any(p.name.lower() == "mydata.csv" for p in files)


def list_items(files: list[Path]) -> list[Path]:
    return [p for p in files if p.name.lower() == "mydata.csv"]


def _numbers(s, where: str) -> np.ndarray:
    try:
        return np.array(str(s).split(), dtype=np.float64)
    except ValueError:
        raise SqtoolError(f"{where}: corrupt number list ({str(s)[:40]!r}...)")


def _subject_info(p: Path) -> dict[str, dict]:
    f = p.with_name("subject-info.csv")
    if not f.is_file():
        return {}
    df = read_csv(f, encoding="utf-8-sig", dtype=str)
    return {str(r["ID"]).strip(): {k: v for k, v in r.items() if k != "ID" and v == v}
            for _, r in df.iterrows()}


def read_item(p: Path, ctx: dict) -> list[Record]:
    df = read_csv(p, sep=" ", dtype={"Signal": str, "Time": str})
    miss = [c for c in _NEED if c not in df.columns]
    if miss:
        raise SqtoolError(f"{p}: column(s) {', '.join(miss)} missing (has {', '.join(map(str, df.columns))})")
    info = _subject_info(p)
    out = []
    for i, row in df.iterrows():
        rid = str(row["ID"]).strip()
        where = f"{p}: record {rid}"
        x = _numbers(row["Signal"], where)
        if "Time" in df.columns and isinstance(row["Time"], str):
            t = _numbers(row["Time"], where)
            if t.size != x.size:
                raise SqtoolError(f"{where}: {t.size} timestamps for {x.size} samples")
            if t.size > 1 and t[-1] > t[0]:
                fs_t = (t.size - 1) / (t[-1] - t[0])
                if abs(fs_t - FS) > 0.02 * FS:
                    raise SqtoolError(f"{where}: time axis gives {fs_t:.2f} Hz, BUT PPG is {FS:g} Hz; "
                                      f"wrong sampling rate")
        q = int(row["Quality"])
        if q not in (0, 1):
            raise SqtoolError(f"{where}: Quality must be 0 (poor) or 1 (good), got {row['Quality']!r}")
        labels = {"quality": Label(values=np.array(q), unit="class", kind="class", classes=QUALITY)}
        if "RefHR" in df.columns and row["RefHR"] == row["RefHR"]:
            labels["hr"] = Label(values=np.array(float(row["RefHR"])), unit="bpm")
        if "Motion" in df.columns and row["Motion"] == row["Motion"] and 0 <= int(row["Motion"]) < len(MOTION):
            labels["motion"] = Label(values=np.array(int(row["Motion"])), unit="class", kind="class",
                                     classes=MOTION)
        meta = {"location": {1: "finger", 0: "ear"}.get(int(row.get("Location", -1)), "unknown"),
                **info.get(rid, {})}
        check_plausible_labels(labels, where)
        out.append(Record(dataset=KIND, subject=rid[:3] if len(rid) == 6 else rid, record_id=rid,
                          signals={"ppg": x}, fs={"ppg": FS}, labels=labels, meta=meta, source=str(p)))
    return out
