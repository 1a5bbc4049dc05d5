"""data.gravity: where gravity lies in a recording's accelerometer (data inspect's column, acc_axes' table)."""
import numpy as np

from sqtool.data.gravity import acc_gravity
from sqtool.data.readers import iter_records
from sqtool.data.record import Record


def _rec(x, y, z, fs=32.0):
    return Record(dataset="t", record_id="r", subject="s", signals={"ppg": np.zeros(len(x)), "acc_x": x, "acc_y": y,
                                                                   "acc_z": z},
                  fs={"ppg": fs, "acc_x": fs, "acc_y": fs, "acc_z": fs})


def test_gravity_names_the_axis_of_most_windows_with_its_sign_and_share():
    w = 32 * 8                                                  # one 8 s window at 32 Hz
    x = np.r_[np.ones(2 * w), np.zeros(w)]                      # two windows with gravity on +x ...
    y = np.r_[np.zeros(2 * w), -np.ones(w)]                     # ... then one on -y
    g = acc_gravity(_rec(x, y, 0.1 * np.ones(3 * w)))
    assert g["axis"] == "+x" and g["share"] == 0.667 and g["axis_windows"] == {"+x": 2, "-y": 1}
    assert g["mean_g"] == [0.667, -0.333, 0.1]


def test_gravity_is_none_without_three_axes_or_a_whole_window_and_skips_empty_windows():
    w = 32 * 8
    assert acc_gravity(_rec(np.ones(w - 1), np.zeros(w - 1), np.zeros(w - 1))) is None
    rec = _rec(np.ones(w), np.zeros(w), np.zeros(w))
    del rec.signals["acc_z"]
    assert acc_gravity(rec) is None
    x = np.r_[np.full(w, np.nan), -np.ones(w)]                  # a window of NaN says nothing
    g = acc_gravity(_rec(x, np.zeros(2 * w), np.zeros(2 * w)))
    assert g["axis_windows"] == {"-x": 1} and g["share"] == 1.0


def test_gravity_on_real_wrists_runs_on_y_and_s4_on_x(data_root):
    got = {r.record_id: acc_gravity(r)["axis"] for r in iter_records(data_root / "wrist_exercise")
           if r.record_id in ("s2_walk", "s3_run", "s4_run", "s5_run")}
    assert got == {"s2_walk": "-y", "s3_run": "-y", "s4_run": "+x", "s5_run": "+y"}
