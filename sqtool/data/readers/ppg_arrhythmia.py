"""PPG arrhythmia (Liu et al., JAHA 2022): fingertip PPG segments of 10 s at 100 Hz, 6 rhythm classes.

    valid_testDataset/MPA_<patient>.mat   ppgseg (n, 1000) float64 min-max normalised per segment,
                                          labels (n, 1) uint8: 0 sinus, 1 PVC, 2 PAC, 3 VT, 4 SVT, 5 AF
    validsubjects.txt / testsubjects.txt  the paper's validation / test patient lists

One Record per segment (record id "<patient>_<index>", subject = the patient, so splits by subject keep a
patient's segments together), label "rhythm" (kind "class", classes below). `meta["split"]` is the
paper's split ("valid" / "test") where the lists are present. The segments are NOT raw ADC: each was
min-max normalised to [0, 1] by the authors, so amplitude features are meaningless here.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.readers._common import load_mat, mat_numbers
from sqtool.data.record import Label, Record

KIND = "ppg_arrhythmia"
FS = 100.0
CLASSES = ("sinus", "PVC", "PAC", "VT", "SVT", "AF")
_MAT = re.compile(r"^MPA_\w+\.mat$", re.I)


def detect(files: list[Path]) -> bool:
    return any(_MAT.match(p.name) for p in files)


def list_items(files: list[Path]) -> list[Path]:
    return [p for p in files if _MAT.match(p.name)]


def _splits(ctx: dict, p: Path) -> dict[str, str]:
    key = ("arr_splits", str(p.parent))
    if key not in ctx:
        out: dict[str, str] = {}
        for d in (p.parent, p.parent.parent):
            for split in ("valid", "test", "train"):
                f = d / f"{split}subjects.txt"
                if f.is_file():
                    for line in f.read_text(errors="replace").split():
                        out[Path(line.strip().strip("'\"")).stem] = split
        ctx[key] = out
    return ctx[key]


def read_item(p: Path, ctx: dict) -> list[Record]:
    d = load_mat(p, ["ppgseg", "labels"])
    x = mat_numbers(d, "ppgseg", p)
    y = mat_numbers(d, "labels", p).ravel()
    if x.ndim != 2:
        raise SqtoolError(f"{p}: 'ppgseg' must be (segments, samples), got shape {x.shape}")
    if y.size != x.shape[0]:
        raise SqtoolError(f"{p}: {y.size} labels for {x.shape[0]} segments; labels do not match the signal")
    if y.size and (y.min() < 0 or y.max() >= len(CLASSES)):
        raise SqtoolError(f"{p}: label values {int(y.min())}..{int(y.max())} outside 0..{len(CLASSES) - 1}")
    patient = p.stem
    split = _splits(ctx, p).get(patient)
    out = []
    for i in range(x.shape[0]):
        out.append(Record(dataset=KIND, subject=patient, record_id=f"{patient}_{i:04d}",
                          signals={"ppg": np.ascontiguousarray(x[i])}, fs={"ppg": FS},
                          labels={"rhythm": Label(values=np.array(int(y[i])), unit="class", kind="class",
                                                  classes=CLASSES)},
                          meta={"segment": i, "split": split, "normalised": "minmax"}, source=str(p)))
    return out
