"""af_beats' BeatTrees (registry family beat_trees) evaluates scikit-learn's fitted ensemble exactly: the same logit
on random features with NaN (every tree at once, float64), in torch and in its ONNX graph, after a checkpoint round
trip; its cfg names the features it reads; a categorical split or an untrained cfg is one line."""
import numpy as np
import pytest
import torch

from sqtool.core import SqtoolError
from sqtool.data.beats import FEATURES
from sqtool.models import create_model, get_model_cfg, load_model
from sqtool.models.af_trees import tree_state
from sqtool.train.af_beats import AfBeatsCfg, fit_af_beats, predict_af_beats, tree_arrays, trees_model_cfg


def _data(seed=0, n=500):
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, len(FEATURES)))
    F[rng.random(F.shape) < 0.15] = np.nan                             # undefined features: the trees' missing path
    y = (np.nan_to_num(F[:, 2]) + 0.7 * np.nan_to_num(F[:, 40]) + 0.3 * rng.normal(size=n) > 0).astype(int)
    return F, y


def _net(model):
    arrays = tree_arrays(model)
    net = create_model(trees_model_cfg(get_model_cfg("af_beats"), model, arrays))
    net.load_state_dict(tree_state(arrays))
    return net.eval()


@pytest.mark.parametrize("cfg", [AfBeatsCfg(), AfBeatsCfg(features="all", max_leaf_nodes=4, min_samples_leaf=100),
                                 AfBeatsCfg(features="ectopy", max_iter=30)])
def test_equals_scikit_learn(cfg):
    F, y = _data()
    model = fit_af_beats(F, y, cfg=cfg)
    net = _net(model)
    names = net.cfg.frontend["features"]
    assert names == [FEATURES[i] for i in cfg.columns()] and net.cfg.input_shape == (1, len(names))
    X = F[:, cfg.columns()]
    with torch.no_grad():
        z = net(torch.from_numpy(X[:, None])).numpy()[:, 0]
    np.testing.assert_allclose(z, model.clf._raw_predict(X)[:, 0], rtol=0, atol=1e-12)
    ok = np.abs(z) < 13                                                # predict_af_beats clips p to [1e-6, 1 - 1e-6]
    np.testing.assert_allclose(z[ok], predict_af_beats(model, F)[ok], rtol=0, atol=1e-9)


@pytest.mark.parametrize("cfg", [AfBeatsCfg(features="all", max_iter=40, max_leaf_nodes=0, min_samples_leaf=5,
                                            kind="extra_trees"),
                                 AfBeatsCfg(features="base", max_iter=40, max_leaf_nodes=0, min_samples_leaf=20,
                                            kind="random_forest")])
def test_a_forest_equals_scikit_learn(cfg):
    """A forest (leaves' AF shares averaged into a probability) gives scikit-learn's probability, NaN included, and
    predict_af_beats' clipped log-odds; its cfg says how the leaves combine."""
    F, y = _data(2)
    model = fit_af_beats(F, y, cfg=cfg)
    net = _net(model)
    assert net.cfg.arch["combine"] == "mean_probability" and net.cfg.arch["trees"] == 40
    assert "learning_rate" not in net.cfg.arch["trees_cfg"]               # a forest has none to show
    assert AfBeatsCfg(**net.cfg.arch["trees_cfg"]) == cfg                 # the cfg back from the model's
    X = F[:, cfg.columns()]
    with torch.no_grad():
        z = net(torch.from_numpy(X[:, None])).numpy()[:, 0]
    p = model.clf.predict_proba(X)[:, 1]
    assert np.mean(np.isnan(X).any(1)) > 0.5 and p.min() < 0.3 and p.max() > 0.7     # NaN paths, both classes
    np.testing.assert_allclose(1 / (1 + np.exp(-z)), np.clip(p, 1e-6, 1 - 1e-6), rtol=0, atol=1e-12)
    np.testing.assert_allclose(z, predict_af_beats(model, F), rtol=0, atol=1e-9)


@pytest.mark.parametrize("cfg", [AfBeatsCfg(), AfBeatsCfg(features="all", max_iter=30, max_leaf_nodes=0,
                                                           min_samples_leaf=5, kind="extra_trees")])
def test_checkpoint_round_trip_and_onnx(tmp_path, cfg):
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.export.onnx import export_float, run
    F, y = _data(1)
    model = fit_af_beats(F, y, cfg=cfg)
    net = _net(model)
    assert ("learning_rate" in net.cfg.arch["trees_cfg"]) == (cfg.kind == "boosted")
    save_checkpoint(tmp_path / "model.pt", kind="teacher_task", model_cfg=net.cfg.to_dict(), state_dict=net.state_dict())
    back = load_model(tmp_path / "model.pt").eval()
    X = F[:, model.cfg.columns()][:, None]
    with torch.no_grad():
        a, b = net(torch.from_numpy(X)).numpy(), back(torch.from_numpy(X)).numpy()
    assert np.array_equal(a, b)
    md = {"outputs": ["logit_af"], "units": ["logit"], "task": "af", "model": "af_beats", "sqtool_version": "test",
          "source_sha256": "0" * 64, "quant_scheme": "float32", "quant_description": "float32"}
    export_float(net, md, tmp_path / "m.onnx", dynamic_batch=True)
    np.testing.assert_allclose(run(tmp_path / "m.onnx", X, batch=len(X)), a, rtol=0, atol=1e-12)


def test_errors():
    with pytest.raises(SqtoolError, match="untrained ensemble"):
        create_model("af_beats", arch={"trees": 0})
    with pytest.raises(SqtoolError, match="arch.combine must be one of"):
        create_model("af_beats", arch={"trees": 1, "nodes": 1, "depth": 0, "combine": "vote"})
    with pytest.raises(SqtoolError, match="AfBeatsCfg.kind must be one of"):
        AfBeatsCfg(kind="svm")
    with pytest.raises(SqtoolError, match="float only"):
        create_model("af_beats", quant="int8_w_per_channel_a_per_tensor")
