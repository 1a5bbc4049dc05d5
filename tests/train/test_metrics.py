"""Metrics against brute force, and the subject bootstrap."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sqtool.core.metrics import auroc, bootstrap_ci, f1_weighted, task_metrics


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=30))
def test_auroc_is_pairwise_probability(pairs):
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs], float)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        assert np.isnan(auroc(y, s))
        return
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])
    assert abs(auroc(y, s) - brute) < 1e-12


def test_f1_weighted_by_hand():
    # class 0: tp 2 fp 1 fn 0 -> 0.8 (support 2); class 1: tp 1 fp 0 fn 1 -> 2/3 (support 2)
    assert abs(f1_weighted([0, 1, 1, 0], [0, 1, 0, 0]) - (0.8 + 2 / 3) / 2) < 1e-12


def test_bootstrap_ci_brackets_the_estimate_and_resamples_subjects():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"s{i}" for i in range(10)], 20)
    y = rng.normal(70, 10, (200, 1))
    pred = y + rng.normal(0, 3, (200, 1)) + np.repeat(rng.normal(0, 3, 10), 20)[:, None]
    m = task_metrics("hr", y, pred)
    lo, hi = bootstrap_ci("hr", y, pred, groups, n_boot=300)["mae"]
    assert lo < m["mae"] < hi
    # one subject only: every resample is the same data, the interval collapses
    lo1, hi1 = bootstrap_ci("hr", y[:20], pred[:20], groups[:20], n_boot=50)["mae"]
    assert abs(hi1 - lo1) < 1e-12


def test_collapse_std_of_one_embedding_is_undefined_not_nan():
    import torch
    from sqtool.train.loop import collapse_std
    assert collapse_std(torch.randn(1, 8)) is None
    assert 0 < collapse_std(torch.randn(64, 8)) < 1


def test_uncertainty_scores_coverage_width_and_confidence_gating():
    from sqtool.core.metrics import uncertainty_scores
    y = np.array([100.0, 100.0, 100.0, 100.0, 100.0, np.nan])
    pred = np.array([100.0, 101.0, 99.0, 110.0, 130.0, 100.0])
    lo, hi = pred - 2.0, pred + 2.0                                   # truth inside on the first three only
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.9])                   # the worst window is the least confident
    u = uncertainty_scores(pred, lo, hi, conf, y)
    assert u["n"] == 5 and u["interval_coverage"] == pytest.approx(3 / 5) and u["interval_width_median"] == 4.0
    assert u["mae_all"] == pytest.approx(42 / 5) and u["mae_top"] == pytest.approx(12 / 4)   # 80 %: drop 130
    assert u["gating_reduction"] == pytest.approx(1 - 3 / 8.4)
    assert uncertainty_scores(pred, lo, hi, -conf, y)["gating_reduction"] < 0      # confidence upside down
    assert uncertainty_scores(pred, lo + 1.6, hi, conf, y)["interval_coverage"] == pytest.approx(2 / 5)  # 0.5 slack
    assert uncertainty_scores(pred, lo, hi, conf, np.full(6, np.nan))["interval_coverage"] is None
    assert "expected_error_stated" not in u                          # only for a calibrated conf (span given)
    stated = uncertainty_scores(pred, lo, hi, conf, y, span=100.0)["expected_error_stated"]
    assert stated == pytest.approx(100.0 * (0.1 + 0.2 + 0.3 + 0.4 + 0.9) / 5)      # the NaN-truth window is left out
    assert uncertainty_scores(pred, lo, hi, conf, np.full(6, np.nan), span=100.0)["expected_error_stated"] is None
    with pytest.raises(ValueError, match="lengths differ"):
        uncertainty_scores(pred, lo, hi, conf[:3], y)


def test_the_validation_spread_summed_batch_by_batch_is_the_spread_of_all():
    """Validation's collapse check sums per-dimension moments batch by batch (constant memory; it kept every
    embedding, 1.8 GB at the paper's scale): the same mean std as over the embeddings all at once."""
    import torch
    from sqtool.train.loop import RunningCollapseStd, collapse_std
    g = torch.Generator().manual_seed(0)
    z = torch.randn(203, 16, generator=g) * torch.linspace(0.1, 3, 16) + 2.0        # (N, d), uneven scales, off 0
    run = RunningCollapseStd()
    assert run.value() is None
    for a in range(0, 203, 32):
        run.add(z[a:a + 32])
    assert run.n == 203 and abs(run.value() - collapse_std(z)) < 1e-6
    one = RunningCollapseStd()
    one.add(z[:1])
    assert one.value() is None
