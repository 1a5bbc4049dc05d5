"""A dataset file whose heart-rate labels are longer than the model's window (test helper for the label-at-centre
rule of the spectral path and both benches)."""
from __future__ import annotations

import numpy as np

FS = 125.0


def label_16s_dataset(tmp_path, seconds: float = 60.0):
    """A CSV dataset of one 60 s recording whose HR labels are 16 s windows every 2 s; the HR ramps 0.4 BPM/s from
    60 BPM, so a label is the HR at its window's centre. Returns the dataset.yaml's path."""
    t = np.arange(int(seconds * FS)) / FS
    hr = 60.0 + 0.4 * t
    rng = np.random.default_rng(0)
    ppg = np.sin(2 * np.pi * np.cumsum(hr / 60.0) / FS)
    acc = 0.01 * rng.standard_normal((3, t.size)) + np.array([[0.0], [0.0], [1.0]])
    (tmp_path / "rec").mkdir()
    np.savetxt(tmp_path / "rec" / "s1_a.csv", np.column_stack([t, ppg, *acc, hr]), delimiter=",", comments="",
               header="time,ppg,acc_x,acc_y,acc_z,hr", fmt="%.6f")
    (tmp_path / "dataset.yaml").write_text(
        "format: csv\nroot: rec\ntime_column: time\nchannels: {ppg: ppg, acc_x: acc_x, acc_y: acc_y, acc_z: acc_z}\n"
        "subject: {value: s1}\nwindows: {window_s: 16, hop_s: 2}\nlabels: {hr: {column: hr}}\n")
    return tmp_path / "dataset.yaml"
