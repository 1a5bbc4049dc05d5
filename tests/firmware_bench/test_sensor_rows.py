"""The device's PPG sensor inputs and the recorded sensor each reads (`spectral.sensor_rows`): the one rule
`fit_sensors` replays the samples by and predict's channels_fed names."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from sqtool.firmware_bench.predict import fed_channels
from sqtool.firmware_bench.spectral import fit_sensors, sensor_rows


def test_extra_sensors_left_out_a_missing_one_repeats_the_last():
    assert sensor_rows(1, 1) == [0] and sensor_rows(2, 2) == [0, 1]
    assert sensor_rows(2, 1) == [0] and sensor_rows(1, 2) == [0, 0] and sensor_rows(3, 2) == [0, 1]


def test_the_samples_fed_are_the_channels_named():
    x16 = np.arange(4 * 5, dtype=np.int16).reshape(4, 5)                # rows: ppg, ppg2, acc_x, acc_y
    chans = ("ppg", "ppg2", "acc_x", "acc_y")
    for n_have, n_want in [(2, 1), (2, 2), (1, 2), (1, 1)]:
        x = x16[[*range(n_have), 2, 3]] if n_have == 2 else x16[[0, 2, 3]]
        have = chans[:n_have] + ("acc_x", "acc_y")
        fitted, n = fit_sensors(x, n_have, n_want)
        fed = fed_channels(SimpleNamespace(channels=have, sensors_recorded=n_have, n_ppg=n))
        assert list(fed.values()) == [have[j] for j in sensor_rows(n_have, n_want)] + ["acc_x", "acc_y"]
        for row, ch in zip(fitted, fed.values()):                      # each row is the named channel's samples
            np.testing.assert_array_equal(row, x16[chans.index(ch)])
