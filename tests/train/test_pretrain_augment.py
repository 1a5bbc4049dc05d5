"""Pretraining modes: SiamQuality real pairs vs two augmented views of one window (same encoder, budget)."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.models import get_model_cfg
from sqtool.train.augment import AugmentViews, augment
from sqtool.train.pretrain import ArrayPairs, PretrainConfig, run_pretrain


def _pairs(n=16, T=400, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 40.0
    good = (0.5 + 0.4 * np.sin(2 * np.pi * rng.uniform(1, 2, (n, 1, 1)) * t)).astype(np.float32)
    poor = rng.random((n, 1, T)).astype(np.float32)
    return ArrayPairs(good, poor, np.array([f"s{i % 4}" for i in range(n)]))


def test_augment_views_differ_stay_normalised_and_are_reproducible():
    src = _pairs()
    v = AugmentViews(src, fs=40.0, seed=3)
    a1, b1 = v.get([0, 5, 7])
    a2, b2 = v.get([0, 5, 7])
    assert a1.shape == (3, 1, 400) and a1.dtype == np.float32
    assert np.array_equal(a1, a2) and np.array_equal(b1, b2)          # a pure function of (seed, indices)
    assert not np.allclose(a1, b1)                                    # two different views
    assert a1.min() >= 0 and a1.max() <= 1 and np.allclose(a1.max(-1), 1) # min-max domain of the model
    x, _ = src.get([0, 5, 7])
    assert not np.allclose(a1, x)
    nan_poor = ArrayPairs(src.x1, np.full_like(src.x2, np.nan), src.groups)   # the poor partner is never used
    assert all(np.isfinite(v_).all() for v_ in AugmentViews(nan_poor, fs=40.0).get(np.arange(16)))
    with pytest.raises(SqtoolError, match="augment"):
        augment(np.zeros((4, 400)), 40.0, np.random.default_rng(0))


@pytest.mark.parametrize("mode", ["real", "augment"])
def test_pretrain_modes_train_the_same_encoder(mode, tmp_path):
    cfg = PretrainConfig(model="resnet1d_siamq_tiny_10s", pairs="in-memory", pair_mode=mode, epochs=1,
                         batch_size=8, val_fraction=0.0, lr=0.05, device="cpu", progress=False)
    m = run_pretrain(cfg, tmp_path / mode, pairs=_pairs())
    assert m["pair_mode"] == mode and m["global_step"] == 2 and np.isfinite(m["final_loss"])
    assert ("augmented views" in m["pairs"]) == (mode == "augment")
    assert get_model_cfg("resnet1d_siamq_tiny_10s").input_shape == (1, 400)


def test_unknown_pair_mode_is_refused(tmp_path):
    cfg = PretrainConfig(model="resnet1d_siamq_tiny_10s", pair_mode="mixup", epochs=1, batch_size=8,
                         device="cpu", progress=False)
    with pytest.raises(SqtoolError, match="pair_mode must be one of real, augment"):
        run_pretrain(cfg, tmp_path / "x", pairs=_pairs())
