"""The circular block bootstrap of a mean over serially correlated windows (core.metrics.block_bootstrap_mean_ci),
which the heart-rate tables use for a subject's MAE: 8 s windows every 2 s overlap, and a tracker's errors persist."""
import numpy as np
import pytest

from sqtool.core.metrics import BLOCK_S, block_bootstrap_mean_ci, block_windows, bootstrap_mean_ci


def test_brackets_the_mean_and_widens_with_correlation():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=300)
    walk = np.repeat(rng.normal(size=20), 15)                              # strongly correlated, 300 values
    lo, hi = block_bootstrap_mean_ci(iid, 15)
    assert lo < iid.mean() < hi
    lo1, hi1 = block_bootstrap_mean_ci(walk, 1)
    lo15, hi15 = block_bootstrap_mean_ci(walk, 15)
    assert hi15 - lo15 > 2 * (hi1 - lo1)


def test_block_one_is_the_plain_bootstrap():
    """block = 1, one recording, no NaN: single windows resampled, draw for draw what bootstrap_mean_ci (subjects,
    patients) draws; its width the textbook standard error's (1.96 sd / sqrt(n) for a large n)."""
    v = np.random.default_rng(1).exponential(3.0, size=400)
    assert block_bootstrap_mean_ci(v, 1, n_boot=4000, seed=5) == bootstrap_mean_ci(v, n_boot=4000, seed=5)
    lo, hi = bootstrap_mean_ci(v, n_boot=4000)
    assert hi - lo == pytest.approx(2 * 1.96 * v.std() / np.sqrt(v.size), rel=0.1)


def test_blocks_stay_inside_their_recording():
    """Two recordings of one subject, each constant: a resample rebuilds each from its own windows, so their
    shares never change and the interval is the mean itself; blocks over the joined sequence would mix them."""
    v = np.r_[np.full(90, 1.0), np.full(30, 9.0)]
    g = np.repeat(["walk", "run"], [90, 30])
    assert block_bootstrap_mean_ci(v, 30, g) == pytest.approx((3.0, 3.0))
    lo, hi = block_bootstrap_mean_ci(v, 30)                                   # one recording: shares vary
    assert hi - lo > 1
    with pytest.raises(ValueError, match="120 values, 3 groups"):
        block_bootstrap_mean_ci(v, 30, ["a", "b", "c"])


def test_circular_blocks_weigh_every_window_alike():
    """Errors bunched at a recording's end (a tracker that locks in its last minute): the moving-block bootstrap
    reaches the last windows in fewer blocks, so its resamples' means sit below the sample mean (the interval can
    end at the mean); the circular one draws every window equally often and centres on it."""
    v = np.r_[np.full(110, 1.0), np.full(30, 8.0)]
    lo, hi = block_bootstrap_mean_ci(v, 30, n_boot=4000)
    lo_m, hi_m = block_bootstrap_mean_ci(v, 30, n_boot=4000, circular=False)
    assert lo < v.mean() < hi and hi - v.mean() > 0.5
    assert hi_m - v.mean() < hi - v.mean()                                   # the edge under-weighted


def test_nan_windows_keep_their_place():
    """A doubtful window (NaN truth) is left out of each resample's mean where it falls; the windows on either side
    of it stay neighbours in time (dropping it first would join them into one block)."""
    v = np.r_[np.full(30, 2.0), np.full(30, np.nan), np.full(30, 2.0)]
    assert block_bootstrap_mean_ci(v, 30) == (2.0, 2.0)


def test_nan_dropped_short_and_empty_sequences():
    assert all(np.isnan(block_bootstrap_mean_ci([np.nan, np.nan], 30)))
    assert all(np.isnan(block_bootstrap_mean_ci([], 30)))
    assert block_bootstrap_mean_ci([3.0], 30) == (3.0, 3.0)
    lo, hi = block_bootstrap_mean_ci(np.arange(20.0), 30)               # shorter than a block: halves, not one
    assert lo < 9.5 < hi and hi - lo > 1
    lo, hi = block_bootstrap_mean_ci([1.0, np.nan, 5.0, 3.0, 7.0], 2)
    assert 1.0 <= lo <= 4.0 <= hi <= 7.0


def test_seeded_and_reproducible():
    v = np.random.default_rng(2).normal(size=123)
    assert block_bootstrap_mean_ci(v, 7, seed=3) == block_bootstrap_mean_ci(v, 7, seed=3)
    assert block_bootstrap_mean_ci(v, 7, seed=3) != block_bootstrap_mean_ci(v, 7, seed=4)


def test_block_windows_from_the_hop():
    assert BLOCK_S == 60.0
    assert block_windows(2.0) == 30 and block_windows(1.0) == 60 and block_windows(0.5, 1.0) == 2
    assert block_windows(600.0) == 1                                       # never below one window


def test_t_interval_and_sign_flip_test_for_a_few_subjects():
    """The audit's case: 5 wrist subjects, differences [-1.03, -0.00, -8.84, -2.65, -0.40]; a percentile bootstrap
    gave [-5.83, -0.41] ("pretraining helps"); the t-interval includes zero and 5 subjects cannot reach p < 0.05
    (s3's -0.00 is a small negative: an exact 0 would flip to itself, p 4/32)."""
    from sqtool.core.metrics import paired_subject_test, t_interval
    d = [-1.03, -0.004, -8.84, -2.65, -0.40]
    r = paired_subject_test(d)
    assert r["ci95"] == pytest.approx([-7.10, 1.94], abs=0.01) and r["p"] == pytest.approx(2 / 32)
    assert not r["shown"] and r["n"] == 5 and r["mean"] == pytest.approx(np.mean(d))
    strong = paired_subject_test(np.r_[-np.arange(1.0, 13.0)] / 10)        # 12 subjects, all lower
    assert strong["shown"] and strong["p"] == pytest.approx(2 / 4096)
    assert paired_subject_test([1.0, -1.0, 1.0, -1.0])["p"] == 1.0
    assert paired_subject_test([-1.0, 0.0, -2.0, -3.0, -1.5])["p"] == pytest.approx(4 / 32)
    assert not paired_subject_test([0.5])["shown"] and np.isnan(paired_subject_test([0.5])["p"])
    big = paired_subject_test(np.random.default_rng(0).normal(0.0, 1.0, 20))  # 20: sampled sign patterns
    assert 0.05 < big["p"] <= 1 and not big["shown"]
    lo, hi = t_interval([1.0, 2.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0) and hi - lo == pytest.approx(2 * 4.303 / np.sqrt(3), rel=1e-3)


def test_paired_permutation_test_swaps_within_subjects():
    """Exact over 2^S swaps for a few subjects: A better on all 6 subjects gives the least p, 2/64; no difference
    gives p 1; any pooled metric (AUROC here) works; more subjects are sampled and never give p 0."""
    from sqtool.core.metrics import auroc, paired_permutation_test
    mae = lambda y, p: float(np.mean(np.abs(p - y)))                        # noqa: E731
    g = np.repeat(np.arange(6), 10)
    y = np.zeros(60)
    r = paired_permutation_test(mae, y, np.full(60, 1.0), np.full(60, 2.0), g)
    assert r["diff"] == -1.0 and r["p"] == pytest.approx(2 / 64) and r["subjects"] == 6
    assert paired_permutation_test(mae, y, np.full(60, 1.0), np.full(60, 1.0), g)["p"] == 1.0
    yc = np.tile([0, 1], 30)
    good, weak = yc + 0.1 * np.arange(60) % 1, np.random.default_rng(0).normal(size=60)
    ra = paired_permutation_test(auroc, yc, good, weak, g)
    assert ra["diff"] > 0.3 and ra["p"] == pytest.approx(2 / 64)
    g20 = np.repeat(np.arange(20), 3)
    r20 = paired_permutation_test(mae, y, np.full(60, 1.0), np.full(60, 2.0), g20, n_perm=999)
    assert 0 < r20["p"] <= 2 / 1000 + 1e-12                                 # sampled: (k + 1) / (B + 1)
    two = paired_permutation_test(mae, np.zeros((60, 2)), np.ones((60, 2)), np.zeros((60, 2)), g)  # (N, k) outputs
    assert two["diff"] == 1.0 and two["p"] == pytest.approx(2 / 64)
    assert np.isnan(paired_permutation_test(mae, y[:10], y[:10], y[:10], np.zeros(10))["p"])     # one subject
