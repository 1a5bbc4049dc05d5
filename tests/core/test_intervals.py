"""Intervals and tests for a few subjects and for one subject's serially correlated windows (core.metrics): batch
means for a subject's MAE (8 s windows every 2 s overlap, a tracker's errors persist), t-intervals and exact
sign-flip / permutation tests over subjects, which the heart-rate and downstream reports use."""
import numpy as np
import pytest

from sqtool.core.metrics import (BLOCK_S, batch_means_ci, block_windows, bootstrap_mean_ci, ratio_t_interval,
                                 t_interval)


def _ar1(rng, n, phi):
    e = np.empty(n)
    e[0] = rng.normal() / np.sqrt(1 - phi ** 2)
    for i in range(1, n):
        e[i] = phi * e[i - 1] + rng.normal()
    return e


def test_batch_means_hold_their_coverage_where_single_windows_do_not():
    """148 windows (an SP Cup subject) of errors correlated over ~10 windows (AR(1), phi 0.9), true mean 0:
    the batch-means t-interval over one-minute batches covers it on ~90 % or more of draws; resampling single
    windows on well under 70 %."""
    rng = np.random.default_rng(0)
    hits_bm = hits_w = 0
    for _ in range(300):
        e = _ar1(rng, 148, 0.9)
        lo, hi = batch_means_ci(e, 30)
        hits_bm += lo <= 0 <= hi
        lo, hi = bootstrap_mean_ci(e, n_boot=300)
        hits_w += lo <= 0 <= hi
    assert hits_bm / 300 >= 0.88 and hits_w / 300 < 0.7


def test_batches_stay_inside_their_recording_and_nan_windows_are_left_out():
    """Two recordings of one subject, each constant: every batch is one recording's, so the batch means agree
    within a recording and the interval is the weighted spread between the two; NaN windows count in no batch."""
    v = np.r_[np.full(90, 1.0), np.full(30, 9.0)]
    g = np.repeat(["walk", "run"], [90, 30])
    lo, hi = batch_means_ci(v, 30, g)                                    # 4 batches: 1, 1, 1, 9
    assert lo < 3.0 < hi and (lo, hi) == pytest.approx(ratio_t_interval([1, 1, 1, 9], [30, 30, 30, 30]))
    joined = batch_means_ci(np.r_[np.full(75, 1.0), np.full(45, 9.0)], 30)   # a batch across the two: 1, 1, 5+
    assert joined != (lo, hi)
    with_nan = np.r_[np.full(30, 2.0), np.full(30, np.nan), np.full(30, 4.0), np.full(30, 4.0)]
    assert batch_means_ci(with_nan, 30) == pytest.approx(ratio_t_interval([2, 4, 4], [30, 30, 30]))
    with pytest.raises(ValueError, match="120 values, 3 groups"):
        batch_means_ci(v, 30, ["a", "b", "c"])


def test_short_and_empty_sequences():
    assert all(np.isnan(batch_means_ci([], 30))) and all(np.isnan(batch_means_ci([np.nan] * 5, 30)))
    assert all(np.isnan(batch_means_ci([3.0], 30)))                      # one window: no interval
    lo, hi = batch_means_ci(np.arange(20.0), 30)                 # shorter than a batch: 30 -> 15 -> 7, 2 batches
    assert (lo, hi) == pytest.approx(ratio_t_interval([3.0, 13.0], [7, 13])) and lo < 9.5 < hi
    # batches of NaN only do not count: halved until two hold a finite window
    assert batch_means_ci(np.r_[np.full(30, np.nan), np.arange(30.0)], 30) == \
        pytest.approx(ratio_t_interval([7.0, 22.0], [15, 15]))
    two = batch_means_ci(np.r_[np.arange(40.0), np.full(10, np.nan)], 30, np.repeat(["a", "b"], [40, 10]))
    assert two == pytest.approx(ratio_t_interval([7.0, 27.0], [15, 25]))             # batches of 15, last takes 25
    lo, hi = batch_means_ci(np.r_[np.zeros(100), 1.0], 30)               # the last batch takes the remainder
    assert (lo, hi) == pytest.approx(ratio_t_interval([0, 0, 1 / 41], [30, 30, 41]))


def test_a_mae_interval_starts_at_zero_at_least():
    from sqtool.core.metrics import mae_batch_ci
    e = np.r_[np.zeros(90), np.full(30, 6.0)]                           # one bad minute in four
    lo, hi = batch_means_ci(e, 30)
    assert lo < 0 and mae_batch_ci(e, 30) == (0.0, hi)
    assert all(np.isnan(mae_batch_ci([], 30)))


def test_ratio_t_interval_equal_weights_is_the_t_interval():
    m = [1.0, 2.0, 4.0, 7.0]
    assert ratio_t_interval(m, [5, 5, 5, 5]) == pytest.approx(t_interval(m))
    assert all(np.isnan(ratio_t_interval([1.0], [3])))
    lo, hi = ratio_t_interval([1.0, 3.0], [1, 3])                        # weighted mean 2.5
    assert (lo + hi) / 2 == pytest.approx(2.5)


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


def test_paired_mae_test_swaps_within_subjects():
    """Exact over 2^S swaps for a few subjects: A better on all 6 subjects gives the least p, 2/64; no difference
    gives p 1; (N, k) outputs pool every output; more subjects are sampled and never give p 0; one subject: no p."""
    from sqtool.core.metrics import paired_mae_test
    g = np.repeat(np.arange(6), 10)
    y = np.zeros(60)
    r = paired_mae_test(y, np.full(60, 1.0), np.full(60, 2.0), g)
    assert r["diff"] == -1.0 and r["p"] == pytest.approx(2 / 64) and r["subjects"] == 6
    assert paired_mae_test(y, np.full(60, 1.0), np.full(60, 1.0), g)["p"] == 1.0
    g20 = np.repeat(np.arange(20), 3)
    r20 = paired_mae_test(y, np.full(60, 1.0), np.full(60, 2.0), g20, n_perm=999)
    assert 0 < r20["p"] <= 2 / 1000 + 1e-12                                 # sampled: (k + 1) / (B + 1)
    two = paired_mae_test(np.zeros((60, 2)), np.ones((60, 2)), np.zeros((60, 2)), g)  # (N, k) outputs
    assert two["diff"] == 1.0 and two["p"] == pytest.approx(2 / 64)
    one = paired_mae_test(y[:10], y[:10], y[:10], np.zeros(10))
    assert np.isnan(one["p"]) and np.isnan(one["ci95"]).all()


def test_paired_mae_test_counts_the_observed_pattern_at_large_errors():
    """Worse on all 5 subjects gives p = 2/32 (the observed pattern and its mirror), however large the errors: the
    observed difference and the identity pattern's sum round differently, by more than an absolute 1e-12 at errors
    of 3e5 BPM over 1e5+ windows (20 of 50 such draws gave 1/32, a p below what 5 subjects can show)."""
    from sqtool.core.metrics import paired_mae_test
    rng = np.random.default_rng(1)
    for _ in range(10):
        g = np.repeat(np.arange(5), rng.integers(1000, 200_000, 5))
        y = rng.normal(0, 1, g.size)
        r = paired_mae_test(y, y + rng.normal(3e5, 1e5, g.size), y + rng.normal(0, 1, g.size), g)
        assert r["p"] == pytest.approx(2 / 32)


@pytest.mark.parametrize("S, k", [(5, 1), (9, 2), (15, 1)])
def test_paired_mae_test_is_the_brute_force_swap_test(S, k):
    """The signed sum of subject shares equals swapping each subject's predictions and recomputing both pooled MAEs,
    pattern by pattern, on uneven subjects (exact patterns at 5 and 9, sampled at 15), so p is the same."""
    from sqtool.core.metrics import _patterns, _perm_p, paired_mae_test
    rng = np.random.default_rng(S)
    g = np.repeat(np.arange(S), rng.integers(3, 40, S))
    y = rng.normal(80, 15, (g.size, k))
    a = y + rng.normal(0.3, 3, y.shape) * rng.uniform(0.5, 3, S)[g][:, None]
    b = y + rng.normal(0, 3, y.shape)
    swaps, exact = _patterns(S, 12, 500, 7)
    obs = np.mean(np.abs(a - y)) - np.mean(np.abs(b - y))
    hits = 0
    for sw in swaps:
        w = sw[g][:, None]
        d = np.mean(np.abs(np.where(w, b, a) - y)) - np.mean(np.abs(np.where(w, a, b) - y))
        hits += abs(d) >= abs(obs) - 1e-12
    r = paired_mae_test(y, a, b, g, n_perm=500, seed=7)
    assert r["diff"] == pytest.approx(obs, abs=1e-12) and r["p"] == _perm_p(hits, len(swaps), exact)
    assert 0 < r["p"] < 1


def test_auroc_placements_and_the_paired_auroc_test():
    """DeLong placements average to the AUROC on either class; the clustered test's difference is the AUROC
    difference and its p does not move when one model's scores go through a monotone map (each model is ranked
    alone: swapping raw scores would rank one's logits among the other's); a constant reference is AUROC 0.5;
    two equally good models (subject offsets, uneven base rates) are called different on ~5 % of draws."""
    from sqtool.core.metrics import auroc, auroc_placements, paired_auroc_test
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(8), 40)
    y = rng.random(320) < 0.4
    a = y + rng.normal(0, 0.8, 320)
    b = y + rng.normal(0, 0.8, 320)
    v = auroc_placements(y, a)
    assert v[y].mean() == pytest.approx(auroc(y, a)) and v[~y].mean() == pytest.approx(auroc(y, a))
    t = paired_auroc_test(y, a, b, g)
    assert t["diff"] == pytest.approx(auroc(y, a) - auroc(y, b)) and t["subjects"] == 8
    assert paired_auroc_test(y, a, np.exp(3 * b) + 7, g)["p"] == t["p"] and 0.05 < t["p"] <= 1
    strong = paired_auroc_test(y, 3 * y + rng.normal(0, 0.5, 320), np.zeros(320), g)
    assert strong["diff"] > 0.45 and strong["p"] < 1e-4
    rej = 0
    for _ in range(200):                                                  # the null: calibrated
        base = rng.uniform(0.05, 0.9, 12)
        gg = np.repeat(np.arange(12), 60)
        yy = rng.random(720) < base[gg]
        sa = yy + rng.normal(0, 1, 720) + rng.normal(0, 0.5, 12)[gg]
        sb = yy + rng.normal(0, 1, 720) + rng.normal(0, 0.5, 12)[gg]
        rej += paired_auroc_test(yy, sa, sb, gg)["p"] < 0.05
    assert 0.01 <= rej / 200 <= 0.10
    assert np.isnan(paired_auroc_test(np.zeros(10), a[:10], b[:10], g[:10])["p"])          # one class


def test_paired_metric_test_intervals_agree_with_their_tests_and_cover():
    """paired_metric_test's ci95: for MAE the t-interval of the subjects' window-weighted mean |error|
    differences, centred on the pooled MAE difference, holding its 95 % over subjects of uneven size and skewed
    error scales (a percentile bootstrap of the same subjects: ~80-88 %, measured when it was replaced); for AUROC
    the clustered DeLong t-interval, which excludes zero exactly when its p is below 0.05."""
    from sqtool.core.metrics import mae, paired_metric_test
    rng = np.random.default_rng(3)
    k = np.sqrt(2 / np.pi)                                                   # E|N(0, 1)|
    true = k * np.exp(0.18) * (1 - np.exp(0.045))                            # population pooled difference
    cover = 0
    for _ in range(200):
        n = rng.integers(30, 300, 8)
        g = np.repeat(np.arange(8), n)
        sa = rng.lognormal(0, 0.6, 8)
        sb = sa * rng.lognormal(0, 0.3, 8)
        y = rng.normal(70, 5, g.size)
        a = y + rng.normal(0, 1, g.size) * sa[g]
        b = y + rng.normal(0, 1, g.size) * sb[g]
        t = paired_metric_test("hr", y, a, b, g, n_perm=50)
        lo, hi = t["ci95"]
        assert lo < t["diff"] < hi and t["diff"] == pytest.approx(mae(y, a) - mae(y, b))
        cover += lo <= true <= hi
    assert cover / 200 >= 0.89
    for seed in range(20):
        r = np.random.default_rng(seed)
        g = np.repeat(np.arange(10), 50)
        y = (r.random(500) < 0.4).astype(float)
        t = paired_metric_test("af", y, y + r.normal(0, 1, 500), y + r.normal(0, 1.3, 500), g)
        assert (t["ci95"][0] > 0 or t["ci95"][1] < 0) == (t["p"] < 0.05)
    one = paired_metric_test("hr", np.zeros(5), np.ones(5), np.zeros(5), np.zeros(5))
    assert np.isnan(one["ci95"]).all()
    y, g = np.zeros(6), np.repeat([0, 1, 2], 2)
    nan = paired_metric_test("hr", y, np.array([1.0, np.nan, 1, 1, 1, 1]), np.zeros(6), g)
    assert np.isnan(nan["diff"]) and np.isnan(nan["ci95"]).all()            # no interval beside a NaN difference


def test_jackknife_ratio_interval_where_subjects_with_more_windows_err_more():
    """ratio_t_interval(jackknife=True) over subjects whose window counts grow with their error scale: the
    linearised variance undercovers the pooled difference (~77 % for a nominal 95 %), the jackknife much less
    (~86 %); with equal weights the two are the same interval."""
    rng = np.random.default_rng(11)
    k = 2 * np.sqrt(3) / np.pi                                              # E|t(3)|
    big = rng.lognormal(0, 1, 1_000_000)
    big_b = big * rng.lognormal(0, 0.3, big.size)
    big_n = np.maximum(10, (100 * big / np.exp(0.5)).astype(int))
    true = k * (big_n * (big - big_b)).sum() / big_n.sum()                 # the population's pooled difference
    cover = {False: 0, True: 0}
    reps = 600
    for _ in range(reps):
        sa = rng.lognormal(0, 1, 8)
        sb = sa * rng.lognormal(0, 0.3, 8)
        n = np.maximum(10, (100 * sa / np.exp(0.5)).astype(int))
        d = np.array([(np.abs(rng.standard_t(3, m)) * a - np.abs(rng.standard_t(3, m)) * b).mean()
                      for m, a, b in zip(n, sa, sb)])
        for jk in cover:
            lo, hi = ratio_t_interval(d, n, jackknife=jk)
            cover[jk] += lo <= true <= hi
    assert cover[False] / reps <= 0.83 and cover[True] / reps >= 0.82 and cover[True] > cover[False] + 30
    v = rng.normal(size=7)
    assert ratio_t_interval(v, np.ones(7), jackknife=True) == pytest.approx(ratio_t_interval(v, np.ones(7)))
