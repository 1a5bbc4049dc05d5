"""Breaths/min per window (`data.tasks.breaths_per_min_windows`), the one rule the rr loaders and predict's truth
share: bit-identical to the per-window loop it replaced, on random breath marks and windows."""
from __future__ import annotations

import numpy as np

from sqtool.data.tasks import breaths_per_min_windows


def loop_rate(breath_times: np.ndarray, t0: float, window_s: float) -> float:
    """The per-window rule as it was written (dataset_tasks and predict each looped over it)."""
    b = breath_times[(breath_times >= t0) & (breath_times < t0 + window_s)]
    if len(b) < 3 or b[-1] <= b[0]:
        return float("nan")
    return 60.0 * (len(b) - 1) / (b[-1] - b[0])


def test_the_vectorised_rate_is_the_loops_bit_for_bit():
    rng = np.random.default_rng(0)
    for case in range(300):
        n = int(rng.integers(0, 40))
        bt = np.sort(rng.uniform(0, 120, n))
        if case % 5 == 0 and n:                       # repeated marks, marks on window edges
            bt = np.sort(np.concatenate([bt, bt[: n // 3], np.round(bt[: n // 2])]))
        window_s = float(rng.choice([8.0, 10.0, 30.0, rng.uniform(1, 40)]))
        hop = float(rng.choice([1.0, 2.0, 10.0, rng.uniform(0.3, 12)]))
        t0 = np.arange(0, 130, hop) - float(rng.choice([0.0, 5.0]))
        if case % 7 == 0:
            t0 = np.round(t0)                         # windows starting on a mark
        want = np.array([loop_rate(bt, t, window_s) for t in t0])
        got = breaths_per_min_windows(bt, t0, window_s)
        assert got.shape == want.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        assert np.array_equal(got[~np.isnan(got)], want[~np.isnan(want)])     # bit-identical, not close


def test_under_three_breaths_or_none_is_nan():
    assert np.isnan(breaths_per_min_windows(np.array([]), np.array([0.0, 5.0]), 30.0)).all()
    assert np.isnan(breaths_per_min_windows(np.array([1.0, 5.0]), np.array([0.0]), 30.0)).all()
    assert np.isnan(breaths_per_min_windows(np.array([2.0, 2.0, 2.0]), np.array([0.0]), 30.0)).all()
    np.testing.assert_array_equal(breaths_per_min_windows(np.array([1.0, 5.0, 9.0, 13.0]), np.array([0.0, 4.0]), 10.0),
                                  [60.0 * 2 / 8, 60.0 * 2 / 8])
