"""The time-domain stretch (train.augment.stretch_windows): its truth follows the rhythm it makes."""
import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.train.augment import stretch_windows


def _peak_bpm(x, fs):
    f = np.fft.rfftfreq(8 * len(x), 1 / fs)
    return f[np.abs(np.fft.rfft(x - x.mean(), 8 * len(x))).argmax()] * 60


def test_a_stretched_window_has_the_heart_rate_it_is_labelled_with():
    fs, n = 25.0, 200
    t = np.arange(400) / fs
    y = np.array([60.0, 90.0, 120.0, 150.0])
    x = np.stack([np.stack([np.sin(2 * np.pi * h / 60 * t), np.cos(2 * np.pi * 0.3 * t)]) for h in y])  # (W, 2, L)
    xs, ys = stretch_windows(x, y, n, np.random.default_rng(0), frac=1.0)
    assert xs.shape == (4, 2, n) and xs.dtype == np.float32 and not np.allclose(ys, y)
    for w in range(4):
        assert abs(_peak_bpm(xs[w, 0], fs) - ys[w]) < 2.0                         # the label moved with the pulse
        assert 30.0 <= ys[w] <= 2 * y[w] + 1e-9 and ys[w] >= y[w] / 2 - 1e-9
    assert np.allclose(xs.std(axis=-1), 1, atol=1e-3)                            # normalised again
    x0, y0 = stretch_windows(x, y, n, np.random.default_rng(0), frac=0.0)
    assert np.array_equal(y0, y) and abs(_peak_bpm(x0[2, 0], fs) - 120.0) < 2.0     # frac 0: the first n samples


def test_stretch_stays_inside_the_window_it_was_given_and_skips_missing_truth():
    x = np.random.default_rng(1).standard_normal((3, 1, 210))
    y = np.array([40.0, np.nan, 200.0])
    _, ys = stretch_windows(x, y, 200, np.random.default_rng(2), frac=1.0, bpm=(200.0, 200.0))
    assert ys[0] <= 40.0 * 209 / 199 + 1e-9 and np.isnan(ys[1])                   # room: 210 samples for 200
    with pytest.raises(SqtoolError, match="stretch_windows"):
        stretch_windows(x, y, 300, np.random.default_rng(0))
