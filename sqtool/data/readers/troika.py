"""IEEE SP Cup 2015 (TROIKA): wrist PPG x2 + 3-axis accelerometer (+ chest ECG), 125 Hz, treadmill.

Three file layouts, recognised from the files themselves (names and the number of rows of `sig`):

    training   Training_data/DATA_01_TYPE01.mat  sig (6, N): ecg, ppg, ppg2, acc_x, acc_y, acc_z
               Training_data/DATA_01_TYPE01_BPMtrace.mat  BPM0 (W, 1)
    extra      Extra_TrainingData/DATA_S04_T01.mat  sig (6, N), truth BPM_S04_T01.mat
    test       TestData/TEST_S01_T01.mat  sig (5, N): ppg, ppg2, acc_x, acc_y, acc_z (no ECG)
               truth in a sibling folder TrueBPM/True_S01_T01.mat  BPM0 (W, 1)

The row layout follows the row count (6 = with ECG, 5 = without), so a renamed file still reads right.
Truth: BPM0[i] is the ECG heart rate over samples [250 i, 250 i + 1000) (8 s window, 2 s hop), so it
becomes `labels["hr"]` with kind="window", times = window START seconds (250 i / 125), window_s = 8.
A truth file whose length is not floor((N - 1000) / 250) + 1 is refused: it belongs to another signal.

Subjects: training recordings are 12 different people ("01".."12"); the test-set and extra recordings
are named by the organisers' subject ids ("S01".."S08"), and DATA_S04_T01 is test subject S04.
Conditions (`sqtool bench`'s table by condition, `record.window_conditions`): a training recording (DATA_xx_TYPEyy)
gets meta["condition_segments"] from the protocol of the competition's readme at its nominal times (PROTOCOL: rest
30 s, 1 min each of jog, run, jog, run, rest to the end; TYPE01 jogs at 8 and runs at 15 km/h, TYPE02 at 6 and 12:
one condition across both, "jog 6-8 km/h"); the treadmill's speed changed by hand, so a window near a boundary may be
the next condition's. The extra and test
recordings follow other protocols (the test set's with arm movements) and get none.
A recording without a truth file is returned without the "hr" label (e.g. unlabeled test data), with
meta["truth_missing"] True and meta["truth_expected"] the first place looked: `sqtool data inspect` warns.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.readers._common import check_plausible, load_mat, mat_numbers
from sqtool.data.record import Label, Record

KIND = "troika"
FS = 125.0
WIN, HOP = 1000, 250            # samples: 8 s window, 2 s hop at 125 Hz

_TRAIN = re.compile(r"^DATA_(\d+)_TYPE(\d+)\.mat$", re.I)
_EXTRA = re.compile(r"^DATA_(S\d+)_(T\d+)\.mat$", re.I)
_TEST = re.compile(r"^TEST_(S\d+)_(T\d+)\.mat$", re.I)
JOG, RUN = "jog 6-8 km/h", "run 12-15 km/h"      # TYPE02's speed, TYPE01's
PROTOCOL = ((0, 30, "rest"), (30, 90, JOG), (90, 150, RUN), (150, 210, JOG), (210, 270, RUN),
            (270, None, "rest"))      # (start_s, end_s or the recording's end, condition): a training recording's
PROTOCOL_SESSIONS = ("TYPE01", "TYPE02")
_ROWS = {6: ("ecg", "ppg", "ppg2", "acc_x", "acc_y", "acc_z"),
         5: ("ppg", "ppg2", "acc_x", "acc_y", "acc_z")}


def n_windows(n_samples: int) -> int:
    """Number of SP Cup windows in a recording of n samples: floor((N - 1000) / 250) + 1."""
    return 0 if n_samples < WIN else (n_samples - WIN) // HOP + 1


def is_signal_file(p: Path) -> bool:
    return bool(_TRAIN.match(p.name) or _EXTRA.match(p.name) or _TEST.match(p.name))


def detect(files: list[Path]) -> bool:
    return any(is_signal_file(p) for p in files)


def list_items(files: list[Path]) -> list[Path]:
    return [p for p in files if is_signal_file(p)]


def truth_candidates(p: Path) -> list[Path]:
    """Where the truth file of signal file `p` may be, by layout."""
    if m := _TRAIN.match(p.name):
        return [p.with_name(p.stem + "_BPMtrace.mat")]
    if m := _EXTRA.match(p.name):
        return [p.with_name(f"BPM_{m.group(1)}_{m.group(2)}.mat")]
    m = _TEST.match(p.name)
    name = f"True_{m.group(1)}_{m.group(2)}.mat"
    return [p.parent.parent / "TrueBPM" / name, p.parent / "TrueBPM" / name, p.parent / name]


def _find_ci(p: Path) -> Path | None:
    """`p` if it exists, else a case-insensitive match in its folder (True_s01_t01.mat...)."""
    if p.is_file():
        return p
    if p.parent.is_dir():
        low = p.name.lower()
        for q in p.parent.iterdir():
            if q.name.lower() == low and q.is_file():
                return q
    return None


def read_item(p: Path, ctx: dict) -> list[Record]:
    sig = mat_numbers(load_mat(p, ["sig"]), "sig", p)
    if sig.ndim != 2:
        raise SqtoolError(f"{p}: 'sig' must be 2-D (rows x samples), got shape {sig.shape}")
    if sig.shape[0] not in _ROWS and sig.shape[1] in _ROWS:
        sig = sig.T                                     # stored samples x rows
    if sig.shape[0] not in _ROWS:
        raise SqtoolError(f"{p}: 'sig' has {sig.shape[0]} rows; expected 6 (ECG, PPG x2, acc x3) "
                          f"or 5 (PPG x2, acc x3)")
    names = _ROWS[sig.shape[0]]
    n = sig.shape[1]

    if m := _TRAIN.match(p.name):
        subject, session, layout = m.group(1), f"TYPE{m.group(2)}", "training"
    elif m := (_EXTRA.match(p.name) or _TEST.match(p.name)):
        subject, session = m.group(1).upper(), m.group(2).upper()
        layout = "test" if _TEST.match(p.name) else "extra"
    else:  # a renamed single file: still readable, subject from the name
        subject, session, layout = p.stem, "", "unknown"

    labels = {}
    truth = next((q for c in truth_candidates(p) if (q := _find_ci(c))), None) if layout != "unknown" else None
    if truth is not None:
        bpm = mat_numbers(load_mat(truth, ["BPM0"]), "BPM0", truth).ravel()
        w = n_windows(n)
        if bpm.size != w:
            raise SqtoolError(f"{truth}: {bpm.size} BPM0 values but {p.name} has {n} samples = {w} windows "
                              f"of 8 s / 2 s hop (floor((N-1000)/250)+1); labels do not match the signal")
        if not np.all(np.isfinite(bpm)):
            raise SqtoolError(f"{truth}: BPM0 has NaN/Inf values")
        check_plausible("hr", bpm, f"{truth}: BPM0", lambda i: f"window {i + 1}")
        labels["hr"] = Label(values=bpm, times=np.arange(w) * HOP / FS, unit="bpm", kind="window",
                             window_s=WIN / FS)
    signals = {c: np.ascontiguousarray(sig[i]) for i, c in enumerate(names)}
    conditions = {"condition_segments": protocol_segments(n / FS)} if session in PROTOCOL_SESSIONS else {}
    return [Record(dataset=KIND, subject=subject, record_id=p.stem, signals=signals,
                   fs={c: FS for c in names}, labels=labels, source=str(p),
                   meta={"layout": layout, "session": session, "rows": sig.shape[0],
                         "truth": str(truth) if truth else None,
                         "truth_missing": truth is None and layout != "unknown",
                         "truth_expected": str(truth_candidates(p)[0]) if truth is None and layout != "unknown"
                         else None, **conditions})]


def protocol_segments(duration_s: float) -> list[list]:
    """[[start_s, end_s, condition], ...] of a training recording `duration_s` long at PROTOCOL's nominal times (the
    record module's condition segments)."""
    return [[a, duration_s if b is None else min(b, duration_s), c] for a, b, c in PROTOCOL if a < duration_s]
