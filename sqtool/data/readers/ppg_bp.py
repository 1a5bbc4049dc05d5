"""PPG-BP (Liang et al. 2018): 219 subjects x 3 finger-PPG segments of 2.1 s at 1000 Hz, BP labels.

    PPGBPDatabase/{subject}_{segment}.txt   one line of tab-separated ADC counts, 2100 samples
    PPG-BP dataset.xlsx                     one row per subject (header on the 2nd row): SBP, DBP, HR,
                                            hypertension class, sex, age, height, weight, BMI, diseases
    Table1.xlsx                             per-segment signal quality (skewness SQI), 4 side-by-side blocks

One Record per segment (record id "{subject}_{segment}"), subject = the subject id. Quirk: 231_1 and
231_2 hold 4200 samples; every file whose length is a multiple k x 2100 is split into k records
("231_1a", "231_1b") so every record is one 2.1 s segment as in the rest of the database.
Labels (whole-record): sbp, dbp (mmHg), hr (bpm), hypertension (class: Normal, Prehypertension,
Stage 1 hypertension, Stage 2 hypertension) and, from Table1.xlsx, sqi (the authors' skewness SQI of the
segment; the split 231 halves share their file's value). Demographics go to `meta`.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.readers._common import check_plausible_labels, first_line, read_excel, require_file
from sqtool.data.record import Label, Record

KIND = "ppg_bp"
FS = 1000.0
SEG = 2100
HTN = ("Normal", "Prehypertension", "Stage 1 hypertension", "Stage 2 hypertension")
_TXT = re.compile(r"^(\d+)_(\d+)\.txt$")
_XLSX = "ppg-bp dataset.xlsx"


def detect(files: list[Path]) -> bool:
    if any(p.name.lower() == _XLSX for p in files):
        return True
    return any(_TXT.match(p.name) and p.parent.name in ("PPGBPDatabase", "0_subject") for p in files)


def list_items(files: list[Path]) -> list[Path]:
    return [p for p in files if _TXT.match(p.name)]


def _find(ctx: dict, p: Path, lowname: str) -> Path | None:
    """A label spreadsheet next to the segment folder or anywhere under the dataset root."""
    for d in (p.parent, p.parent.parent):
        for q in d.iterdir():
            if q.name.lower() == lowname and q.is_file():
                return q
    root = Path(ctx["root"])
    if root.is_dir():
        for q in root.rglob("*.xlsx"):
            if q.name.lower() == lowname:
                return q
    return None


def _subjects(ctx: dict, p: Path) -> dict[int, dict]:
    if "ppg_bp_subjects" not in ctx:
        table: dict[int, dict] = {}
        x = _find(ctx, p, _XLSX)
        if x is not None:
            df = read_excel(x, header=1)
            need = ["subject_ID", "Systolic Blood Pressure(mmHg)", "Diastolic Blood Pressure(mmHg)"]
            miss = [c for c in need if c not in df.columns]
            if miss:
                raise SqtoolError(f"{x}: column(s) {', '.join(miss)} missing")
            for _, row in df.iterrows():
                if row["subject_ID"] == row["subject_ID"]:        # not NaN
                    table[int(row["subject_ID"])] = row.to_dict()
        ctx["ppg_bp_subjects"] = table
    return ctx["ppg_bp_subjects"]


def _quality(ctx: dict, p: Path) -> dict[tuple[int, int], float]:
    """Table1.xlsx: blocks of (Num., subject ID, segment 1, segment 2, segment 3) side by side."""
    if "ppg_bp_sqi" not in ctx:
        q: dict[tuple[int, int], float] = {}
        x = _find(ctx, p, "table1.xlsx")
        if x is not None:
            t = read_excel(x, header=None).to_numpy()
            for c0 in range(0, t.shape[1] - 4, 5):
                for row in t[1:]:
                    sid = row[c0 + 1]
                    try:
                        sid = int(sid)
                    except (TypeError, ValueError):
                        continue
                    for k in range(3):
                        v = row[c0 + 2 + k]
                        if isinstance(v, (int, float)) and np.isfinite(v):
                            q[(sid, k + 1)] = float(v)
        ctx["ppg_bp_sqi"] = q
    return ctx["ppg_bp_sqi"]


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def read_item(p: Path, ctx: dict) -> list[Record]:
    m = _TXT.match(p.name)
    sid, seg = int(m.group(1)), int(m.group(2))
    text = require_file(p).read_text(errors="replace")
    try:
        x = np.array(text.split(), dtype=np.float64)
    except ValueError as e:
        raise SqtoolError(f"{p}: corrupt PPG-BP segment, not a list of numbers ({first_line(e)})")
    if x.size == 0:
        raise SqtoolError(f"{p}: no samples")
    parts = [x] if x.size % SEG or x.size == SEG else np.split(x, x.size // SEG)
    row = _subjects(ctx, p).get(sid)
    labels: dict[str, Label] = {}
    meta: dict = {"segment": seg, "samples_in_file": int(x.size)}
    if row is not None:
        for key, col, unit in (("sbp", "Systolic Blood Pressure(mmHg)", "mmHg"),
                               ("dbp", "Diastolic Blood Pressure(mmHg)", "mmHg"),
                               ("hr", "Heart Rate(b/m)", "bpm")):
            if (v := _num(row.get(col))) is not None:
                labels[key] = Label(values=np.array(v), unit=unit)
        h = str(row.get("Hypertension", "")).strip()
        if h in HTN:
            labels["hypertension"] = Label(values=np.array(HTN.index(h)), unit="class", kind="class",
                                           classes=HTN)
        for key, col in (("sex", "Sex(M/F)"), ("age", "Age(year)"), ("height_cm", "Height(cm)"),
                         ("weight_kg", "Weight(kg)"), ("bmi", "BMI(kg/m^2)"), ("diabetes", "Diabetes"),
                         ("cerebral_infarction", "cerebral infarction"),
                         ("cerebrovascular_disease", "cerebrovascular disease")):
            v = row.get(col)
            if v is not None and v == v:
                meta[key] = v.item() if hasattr(v, "item") else v
    if (q := _quality(ctx, p).get((sid, seg))) is not None:
        labels["sqi"] = Label(values=np.array(q), unit="skewness SQI")
    check_plausible_labels(labels, f"{p}: subject {sid}")
    out = []
    for k, part in enumerate(parts):
        rid = f"{sid}_{seg}" + (chr(ord("a") + k) if len(parts) > 1 else "")
        out.append(Record(dataset=KIND, subject=str(sid), record_id=rid, signals={"ppg": part},
                          fs={"ppg": FS}, labels=dict(labels), meta=dict(meta), source=str(p)))
    return out
