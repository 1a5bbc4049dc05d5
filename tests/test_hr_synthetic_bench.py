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


def test_mass_near_is_the_tempered_emissions_share_around_a_rate_not_its_argmax():
    spectral = load_benchmark("hr_spectral")
    bins = np.arange(30.0, 231.0, 1.0)                                               # (F,)
    # a narrow peak at 55 (the argmax) and a broad, lower plateau over 90-130: the plateau holds more mass
    lq = np.full((3, len(bins)), -100, np.int8)
    lq[:, bins == 55] = 70
    lq[:, (bins >= 90) & (bins <= 130)] = 45
    scale = 0.1
    at_pulse = spectral.mass_near(lq, scale, bins, np.array([55.0, 55.0, np.nan]), 5.0)
    z = lq[0].astype(float) * scale
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.isclose(at_pulse[0], p[np.abs(bins - 55) <= 5.0].sum()) and np.isnan(at_pulse[2])
    assert int(np.argmax(lq[0])) == int(np.flatnonzero(bins == 55)[0]) and at_pulse[0] < 0.25
    assert spectral.mass_near(lq, scale, bins, np.full(3, 110.0), 5.0)[0] < at_pulse[0]      # no wider than the peak
    assert spectral.mass_near(lq, scale, bins, np.full(3, 110.0), 20.0)[0] > 3 * at_pulse[0]  # over the reach: more
    # a colder temperature (a larger scale) moves the mass back to the peak
    assert spectral.mass_near(lq, 1.0, bins, np.full(3, 55.0), 5.0)[0] > 0.5


def test_check_sets_must_not_share_a_recording_with_the_evaluated_set_or_each_other(capsys):
    import argparse
    import pytest
    mod = _bench()
    ap = argparse.ArgumentParser()
    assert mod.check_sets(ap, "4000,5000", 2000, mod.SET_SPAN) == (4000, 5000)
    assert mod.check_sets(ap, "", 2000, mod.SET_SPAN) == ()
    for bad, why in (("2100", "share recordings"), ("4000,4300", "share recordings"), ("x", "comma-separated")):
        with pytest.raises(SystemExit):
            mod.check_sets(ap, bad, 2000, mod.SET_SPAN)
        assert why in capsys.readouterr().err
    assert mod.SET_SPAN == load_benchmark("hr_decoder_study").CHECK_SPAN == 10 * len(mod.HRS)
    # the last recording of a set: the highest rate's 10th seed, inside the span
    assert 2000 + 10 * (len(mod.HRS) - 1) + 9 < 2000 + mod.SET_SPAN
