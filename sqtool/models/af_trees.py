"""AF from beat-interval, waveform and pulse-shape features: a gradient-boosted tree ensemble as a registry model.

    net = tree_model(model_cfg, trees)       # trees: `train.af_beats.tree_arrays` of a fitted ensemble
    z = net(F)                               # F (B, 1, K) the cfg's features (NaN = undefined) -> (B, 1) logit of AF

The trees are fitted by scikit-learn (`train.af_beats`: HistGradientBoostingClassifier over
`data.beats.interval_features`, the feature set and tree size chosen by inner CV over the training patients);
this module holds the fitted ensemble as tensors and evaluates it in torch, every tree at once: node indices
(B, trees), `depth` steps of gather / compare / where, the leaves' values summed onto the baseline: the log-odds
of boosted trees, or a forest's probability (`arch.combine` "mean_probability": each leaf holds its AF share / T),
clipped to [1e-6, 1 - 1e-6] as `train.af_beats.predict_af_beats` does and turned into the log-odds. A feature that
is NaN goes where the split sent missing values in training. float64 throughout, so the logit is scikit-learn's
(`tests/models/test_af_trees.py`), and the same graph exports to ONNX (Gather, Where: no tree operator needed).

The cfg carries the contract: the PPG window the features are computed from (100 Hz, 10 s, band 0.5-8 Hz, minmax),
the front end (`frontend`: type "beat_features", the feature names in input order) and the ensemble's shape
(`arch`: trees, nodes, depth, the chosen AfBeatsCfg), set by training.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from sqtool.core import ModelCfg, SqtoolError
from sqtool.models.registry import Shipped, float_only, register_model

AF_FAMILY = "beat_trees"
FIELDS = ("feature", "threshold", "left", "right", "leaf", "missing_left", "value")   # (T, M) each
COMBINE = ("sum_logit", "mean_probability")                  # boosted trees' log-odds; a forest's probability


def is_beat_trees(cfg: ModelCfg | dict | None) -> bool:
    if cfg is None:
        return False
    return (cfg.get("family") if isinstance(cfg, dict) else cfg.family) == AF_FAMILY


class BeatTrees(nn.Module):
    """A boosted tree ensemble over a feature vector; the arrays are buffers (saved in the state dict)."""
    input_dtype, input_name = torch.float64, "features"      # what the ONNX export takes: scikit-learn's precision

    def __init__(self, cfg: ModelCfg):
        super().__init__()
        self.cfg = float_only(cfg)
        a = cfg.arch
        T, M, K = int(a["trees"]), int(a["nodes"]), cfg.input_shape[1]
        if T < 1 or M < 1 or K < 1:
            raise SqtoolError(f"{cfg.name}: an untrained ensemble ({T} trees, {M} nodes, {K} features); train it with "
                              "sqtool train finetune --task af --model af_beats")
        self.depth = int(a["depth"])
        self.combine = a.get("combine", "sum_logit")            # checkpoints before forests: boosted trees
        if self.combine not in COMBINE:
            raise SqtoolError(f"{cfg.name}: arch.combine must be one of {', '.join(COMBINE)}, got '{self.combine}'")
        self.register_buffer("feature", torch.zeros(T, M, dtype=torch.int64))
        self.register_buffer("threshold", torch.zeros(T, M, dtype=torch.float64))
        self.register_buffer("left", torch.zeros(T, M, dtype=torch.int64))
        self.register_buffer("right", torch.zeros(T, M, dtype=torch.int64))
        self.register_buffer("leaf", torch.ones(T, M, dtype=torch.bool))
        self.register_buffer("missing_left", torch.zeros(T, M, dtype=torch.bool))
        self.register_buffer("value", torch.zeros(T, M, dtype=torch.float64))
        self.register_buffer("baseline", torch.zeros(1, dtype=torch.float64))

    def forward(self, x):                                           # (B, 1, K) features
        x = x.reshape(x.shape[0], -1).to(torch.float64)             # (B, K)
        T, M = self.feature.shape
        first = (torch.arange(T) * M).unsqueeze(0)                  # (1, T) each tree's first node, flattened
        at = first.expand(x.shape[0], T)                            # (B, T) every tree at its root
        for _ in range(self.depth):                                 # flat arrays: one Gather each in ONNX
            v = torch.gather(x, 1, self.feature.reshape(-1)[at])    # (B, T) the current node's feature value
            nan = torch.isnan(v)                                    # missing: where training sent it
            go_left = (nan & self.missing_left.reshape(-1)[at]) | (~nan & (v <= self.threshold.reshape(-1)[at]))
            nxt = first + torch.where(go_left, self.left.reshape(-1)[at], self.right.reshape(-1)[at])
            at = torch.where(self.leaf.reshape(-1)[at], at, nxt)    # a leaf stays
        s = (self.baseline + self.value.reshape(-1)[at].sum(1)).unsqueeze(1)      # (B, 1)
        if self.combine == "mean_probability":                      # a forest: s is the probability of AF
            s = s.clamp(1e-6, 1 - 1e-6)
            s = torch.log(s / (1 - s))
        return s                                                    # (B, 1) logit


def tree_state(trees: dict) -> dict:
    """The state dict of a BeatTrees from `train.af_beats.tree_arrays`' arrays (each (T, M), baseline (1,))."""
    out = {k: torch.as_tensor(np.asarray(trees[k])) for k in FIELDS}
    out["baseline"] = torch.as_tensor(np.asarray(trees["baseline"], np.float64).reshape(1))
    return out


# ----------------------------------------------------------------------------- registry

# the default cfg: its arch and frontend are set when the ensemble is fitted (train.finetune_af)
register_model(ModelCfg(name="af_beats", family=AF_FAMILY, fs=100.0, window_s=10.0, hop_s=10.0, channels=("ppg",),
                        norm="minmax", task="af", outputs=("logit_af",), units=("logit",),
                        arch={"trees": 1, "nodes": 1, "depth": 0, "combine": "sum_logit", "trees_cfg": {}},
                        frontend={"type": "beat_features", "features": ["nrmssd"]}), role="teacher",
               shipped=Shipped("onnx", "a tree ensemble (boosted trees or a forest) over beat features"))(BeatTrees)   # no TFLite tree writer
