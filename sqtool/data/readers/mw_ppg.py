"""Multi-wavelength finger PPG (Baciu et al. 2023 labels on CardioWorks recordings): 60 s at 200 Hz.

    ad_labeled_files/bp_dataset_N.csv   green_channel, red_channel, ir_channel (raw ADC counts),
                                        Anomaly_ch0..2 (per-sample 0/1 artifact flag of each channel)
    Subjects Information.xlsx           ID, SBP(mmHg), DBP(mmHg), Age, Height(cm), Weight(kg), Gender

Channels: the CSV names are the labelling tool's; the recordings' README gives the wavelengths
channel1 = 660 nm, channel2 = 730 nm, channel3 = 850 nm, so the channels are ppg_660 (PRIMARY: first,
so `Record.primary_channel()` returns it), ppg_730 and ppg_850.
Labels: artifact_ppg_660 / artifact_ppg_730 / artifact_ppg_850 (kind "flags", fs 200: one 0/1 per
sample of that channel) and artifact (the union: 1 where any channel is flagged); sbp / dbp (mmHg,
whole record) from the spreadsheet, under the mapping bp_dataset_N <-> ID == N. That mapping is not
documented by the curators; it is plausible (both count from 1, the 78 files are a prefix of the
180 IDs, `meta["bp_mapping"]` says it is assumed) but verify before publishing BP results on it.
One recording per subject: subject = record = "N".
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.readers._common import check_plausible_labels, numeric_column, read_csv, read_excel
from sqtool.data.record import Label, Record

KIND = "mw_ppg"
FS = 200.0
CHANNELS = (("green_channel", "ppg_660", "Anomaly_ch0"),
            ("red_channel", "ppg_730", "Anomaly_ch1"),
            ("ir_channel", "ppg_850", "Anomaly_ch2"))
_CSV = re.compile(r"^bp_dataset_(\d+)\.csv$", re.I)


def detect(files: list[Path]) -> bool:
    return any(_CSV.match(p.name) for p in files)


def list_items(files: list[Path]) -> list[Path]:
    return [p for p in files if _CSV.match(p.name)]


def _bp_table(ctx: dict, p: Path) -> dict[int, dict]:
    if "mw_bp" not in ctx:
        table: dict[int, dict] = {}
        for d in (p.parent, p.parent.parent, p.parent.parent.parent):
            x = d / "Subjects Information.xlsx"
            if x.is_file():
                df = read_excel(x)
                if "ID" in df.columns:
                    table = {int(r["ID"]): r.to_dict() for _, r in df.iterrows() if r["ID"] == r["ID"]}
                break
        ctx["mw_bp"] = table
    return ctx["mw_bp"]


def read_item(p: Path, ctx: dict) -> list[Record]:
    n_id = int(_CSV.match(p.name).group(1))
    df = read_csv(p)
    df.columns = [str(c).strip() for c in df.columns]
    signals, labels = {}, {}
    for col, ch, flag in CHANNELS:
        if col not in df.columns:
            raise SqtoolError(f"{p}: column '{col}' missing (has {', '.join(df.columns)}); channel {ch} missing")
        signals[ch] = numeric_column(df, col, str(p))
        if flag in df.columns:
            f = numeric_column(df, flag, str(p))
            if np.any(np.isnan(f)) or not np.all(np.isin(f, (0.0, 1.0))):
                raise SqtoolError(f"{p}: column '{flag}' must hold 0/1 artifact flags")
            labels[f"artifact_{ch}"] = Label(values=f.astype(np.uint8), unit="flag", kind="flags", fs=FS)
    if labels:
        union = np.zeros(len(df), dtype=np.uint8)
        for lab in labels.values():
            union |= lab.values
        labels["artifact"] = Label(values=union, unit="flag", kind="flags", fs=FS)
    meta: dict = {"wavelength_nm": {"ppg_660": 660, "ppg_730": 730, "ppg_850": 850}}
    row = _bp_table(ctx, p).get(n_id)
    if row is not None:
        for key, col in (("sbp", "SBP(mmHg)"), ("dbp", "DBP(mmHg)")):
            v = row.get(col)
            if isinstance(v, (int, float)) and np.isfinite(v):
                labels[key] = Label(values=np.array(float(v)), unit="mmHg")
        meta["bp_mapping"] = f"assumed: {p.name} <-> Subjects Information ID {n_id}"
        for key, col in (("age", "Age"), ("height_cm", "Height(cm)"), ("weight_kg", "Weight(kg)"),
                         ("sex", "Gender")):
            v = row.get(col)
            if v is not None and v == v:
                meta[key] = v.item() if hasattr(v, "item") else v
    check_plausible_labels(labels, f"{p}: subject {n_id}")
    return [Record(dataset=KIND, subject=str(n_id), record_id=str(n_id), signals=signals,
                   fs={c: FS for c in signals}, labels=labels, meta=meta, source=str(p))]
