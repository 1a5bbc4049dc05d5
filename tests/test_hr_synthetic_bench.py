"""benchmarks/hr_synthetic_pulse.py: each synthetic recording states how its arm swing falls on the accelerometer
axes, and the report counts the misses among recordings whose swing leaves one axis near still."""

import numpy as np
from bench_scripts import load_benchmark


def _bench():
    return load_benchmark("hr_synthetic_pulse")


def test_swing_axes_are_the_share_of_the_swing_each_axis_sees():
    mod = _bench()
    rec = mod.moving_record(160.0, 2230, duration_s=20.0)
    share = np.asarray(rec.meta["swing_axes"])
    assert np.isclose((share ** 2).sum(), 1.0) and share.min() < mod.STILL_AXIS       # z barely sees this swing
    t = np.arange(len(rec.signals["acc_x"])) / 125.0
    tone = np.exp(-2j * np.pi * rec.meta["cadence_bpm"] / 60.0 * t)
    at_cadence = [abs(np.dot(rec.signals[a] - rec.signals[a].mean(), tone)) for a in ("acc_x", "acc_y", "acc_z")]
    assert int(np.argmin(at_cadence)) == int(np.argmin(share))                       # the stillest axis, measured


def test_still_axis_line_counts_misses_on_each_side():
    mod = _bench()
    rows = [{"stillest_axis": 0.05, "int8": 60.0}, {"stillest_axis": 0.10, "int8": 1.0},
            {"stillest_axis": 0.50, "int8": 0.8}, {"stillest_axis": 0.40, "int8": 4.0}, {"stillest_axis": 0.3, "int8": 2.9}]
    line = mod.still_axis_line(rows)
    assert "2 of 5, of which the int8 network misses 1; of the other 3: 1." in line
