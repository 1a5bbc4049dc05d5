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


def assert_truth_at_centres(t0, y, ds) -> None:
    """The truth `y` of 8 s model windows starting at `t0` over `label_16s_dataset`: the label at each window's
    centre (the HR at t0 + 4), defined where the label centres (8..52 s) reach, and equal to the time-domain
    training path's (tasks._label_at_centres through load_task_from_dataset)."""
    from sqtool.core import ModelCfg
    from sqtool.data.dataset_tasks import load_task_from_dataset
    from sqtool.data.tasks import task_model_cfg
    ok = np.isfinite(y)
    assert set(t0[ok]) == set(np.arange(4.0, 48.1, 2.0))       # label centres span 8..52 s: model windows 4..48 s
    assert np.allclose(y[ok], 60.0 + 0.4 * (t0[ok] + 4.0), atol=1e-3)
    td = load_task_from_dataset("hr", ds, task_model_cfg("hr", ModelCfg(name="t", family="resnet1d"), window_s=8.0,
                                                          hop_s=2.0))
    both = np.isin(t0, td.t0) & ok
    assert both.sum() >= 20
    assert np.allclose(y[both], td.y[np.searchsorted(td.t0, t0[both]), 0], atol=1e-4)   # td.y: float32
