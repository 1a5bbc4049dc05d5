"""af_beats: fit / predict on beat features, the inner-CV cfg selection over subjects, and that a model
trained on premature beats vs AF scores new isolated-premature-beat windows lower than new AF windows."""
import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.core.metrics import auroc
from sqtool.data.beats import FEATURES, interval_features
from sqtool.train.af_beats import GRID, AfBeatsCfg, fit_af_beats, predict_af_beats, select_af_beats

from tests.data.test_resp_beats import _ectopic_vs_af_windows


def test_premature_beats_score_lower_than_af():
    x, y = _ectopic_vs_af_windows(24, np.random.default_rng(2))      # 48 windows: leaves of >= 20 can split
    F = interval_features(x, 100.0)
    xt, yt = _ectopic_vs_af_windows(6, np.random.default_rng(3))
    Ft = interval_features(xt, 100.0)
    for cfg in (AfBeatsCfg(), AfBeatsCfg(features="all", max_leaf_nodes=4, min_samples_leaf=5)):
        s = predict_af_beats(fit_af_beats(F, y, cfg=cfg), Ft)
        assert s.shape == (12,) and np.isfinite(s).all()
        assert auroc(yt, s) >= 0.9 and np.median(s[yt == 0]) < np.median(s[yt == 1])


def test_select_af_beats_uses_only_the_given_subjects():
    rng = np.random.default_rng(0)
    n = 120
    y = (np.arange(n) % 2).astype(float)
    F = rng.standard_normal((n, len(FEATURES)))
    F[:, FEATURES.index("nrmssd_clean")] += 3 * y          # only an ectopy feature carries the label
    groups = np.repeat([f"s{i}" for i in range(6)], n // 6)
    grid = (AfBeatsCfg(features="base", max_iter=30), AfBeatsCfg(features="ectopy", max_iter=30))
    cfg, table = select_af_beats(F, y, groups, grid=grid, k=3)
    assert cfg.features == "ectopy" and len(table) == 2 and table[1]["auroc"] > 0.9 > table[0]["auroc"]
    assert len(GRID) == 16 and len({(c.kind, c.features, c.max_leaf_nodes, c.min_samples_leaf) for c in GRID}) == 16
    assert {c.kind for c in GRID} == {"boosted", "extra_trees", "random_forest"} and GRID[0].kind == "boosted"
    with pytest.raises(SqtoolError):
        select_af_beats(F, y, np.zeros(n), grid=grid)
    with pytest.raises(SqtoolError):
        fit_af_beats(F, np.zeros(n))
    with pytest.raises(SqtoolError):
        fit_af_beats(F[:, :5], y)
    with pytest.raises(SqtoolError):
        fit_af_beats(F, y, cfg=AfBeatsCfg(features="some"))
