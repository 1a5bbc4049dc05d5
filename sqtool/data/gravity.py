"""Where gravity lies in a recording's accelerometer: how the watch sat on the wrist. Read-only, for `sqtool data
inspect` (a column of its recordings table) and `benchmarks/acc_axes.py`; it never changes the data.

Each window of WINDOW_S (8 s, a heart-rate window) gets the largest axis of its mean acceleration, with that axis's
sign ("+y"); the recording's axis is the most frequent one and `share` the windows that have it. The heart-rate
models read x, y and z as three channels, so the ORDER of the axes is part of their contract (the kit's
INTEGRATION.md, "Accelerometer axes": y along the forearm, it holds gravity when the arm hangs, walking or running;
z normal to the face, it holds gravity with the palm down; x across the wrist, with the thumb up). Shown, never a
warning: posture alone puts gravity on any axis (wrist_exercise: -y / +y on the walks and most runs, +z on s2's
rides, +x on s3's rides, s6's walk and s4's run). Whether the unit is right is `dataset_reader.check_acc_unit`'s.
"""
from __future__ import annotations

import warnings

import numpy as np

WINDOW_S = 8.0
ACC = ("acc_x", "acc_y", "acc_z")


def acc_gravity(record, window_s: float = WINDOW_S) -> dict | None:
    """{"mean_g": [x, y, z], "axis": "+y", "share": windows with that axis / windows, "axis_windows": {"+y": n, ...}
    (most first)} of a Record with acc_x/y/z at one rate and length (in g); None without them or without a whole
    window. A window holding a NaN sample counts on its other samples; one with none is left out."""
    if not all(a in record.signals for a in ACC):
        return None
    fs = {float(record.fs[a]) for a in ACC}
    n = {len(record.signals[a]) for a in ACC}
    if len(fs) != 1 or len(n) != 1:
        return None
    a = np.stack([np.asarray(record.signals[c], np.float64) for c in ACC])          # (3, N) g
    w = int(round(window_s * fs.pop()))
    k = a.shape[1] // w if w > 0 else 0
    if k == 0:
        return None
    with warnings.catch_warnings():                                                   # a window all NaN: dropped below
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.nanmean(a[:, :k * w].reshape(3, k, w), axis=2)                         # (3, k) per-window mean
    m = m[:, np.isfinite(m).all(axis=0)]
    if m.shape[1] == 0:
        return None
    big = np.argmax(np.abs(m), axis=0)                                                # (k,)
    names = [("+" if m[j, i] >= 0 else "-") + "xyz"[j] for i, j in enumerate(big)]
    counts = {s: names.count(s) for s in sorted(set(names), key=lambda s: (-names.count(s), s))}
    axis = next(iter(counts))
    return {"mean_g": [round(float(v), 3) for v in np.nanmean(a, axis=1)], "axis": axis,
            "share": round(counts[axis] / len(names), 3), "axis_windows": counts}

