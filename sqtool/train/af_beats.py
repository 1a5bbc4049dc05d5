"""AF from beat-interval and waveform-regularity features (`sqtool.data.beats.FEATURES`) with a small tree
ensemble (scikit-learn, NaN-aware): gradient-boosted trees (HistGradientBoostingClassifier) or a forest of
averaged trees (ExtraTreesClassifier / RandomForestClassifier).

    clf = fit_af_beats(F_train, y_train)                 # F (N, len(FEATURES)), y (N,) 1 = AF; AfBeatsCfg()
    logit = predict_af_beats(clf, F_test)                # (N,) log-odds of AF
    cfg, table = select_af_beats(F_train, y_train, groups_train)   # inner CV over the training subjects
    clf = fit_af_beats(F_train, y_train, cfg=cfg)

`AfBeatsCfg` fixes the ensemble (kind, trees, learning rate, leaves, minimum leaf size) and the feature set:
"base" (the 27 interval / waveform features, `beats.BASE_FEATURES`), "ectopy" (+ the ectopy-aware ones,
`beats.ECTOPY_FEATURES`) or "all" (+ the pulse-shape ones too, `beats.MORPH_FEATURES`). The default cfg is the
fixed a-priori model (base features, 200 boosted trees, learning rate 0.05, 15 leaves, seed 0). kind "boosted"
sums its trees' leaves into a log-odds; "extra_trees" (randomised thresholds) and "random_forest" (bootstrap
samples, best thresholds) average their trees' class shares into a probability (their trees grown until a leaf
holds `min_samples_leaf` windows: `max_leaf_nodes` 0 = no limit; learning_rate unused, and left out of
`as_dict`, the model card's `trees_cfg`).

`select_af_beats` chooses one cfg of `GRID` by grouped K-fold over the SUBJECTS it is given (K = 4, a
seeded permutation of the subjects, every inner fold needs both classes in its training part): the cfg with
the highest pooled inner out-of-fold AUROC (ties: the earlier, i.e. simpler, grid entry). Call it with the
training patients of an outer fold only, so the held-out patient never influences the choice.
Not a registry model (its input is a feature vector, not a PPG window).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from sqtool.core import SqtoolError


KINDS = ("boosted", "extra_trees", "random_forest")


@dataclass(frozen=True)
class AfBeatsCfg:
    features: str = "base"          # "base" (27), "ectopy" (+ beats.ECTOPY_FEATURES), "all" (+ MORPH_FEATURES)
    max_iter: int = 200             # trees (boosting iterations, or the forest's size)
    learning_rate: float = 0.05     # boosted only
    max_leaf_nodes: int = 15        # 0: no limit (forests)
    min_samples_leaf: int = 20
    kind: str = "boosted"           # one of KINDS

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SqtoolError(f"AfBeatsCfg.kind must be one of {', '.join(KINDS)}, got '{self.kind}'")

    def as_dict(self) -> dict:
        """The fields that shape this ensemble: a forest's without the learning rate it does not use."""
        d = asdict(self)
        if self.kind != "boosted":
            d.pop("learning_rate")
        return d

    def columns(self) -> np.ndarray:
        from sqtool.data.beats import BASE_FEATURES, ECTOPY_FEATURES, FEATURES
        sets = {"base": BASE_FEATURES, "ectopy": (*BASE_FEATURES, *ECTOPY_FEATURES), "all": FEATURES}
        if self.features not in sets:
            raise SqtoolError(f"AfBeatsCfg.features must be one of {', '.join(sets)}, got '{self.features}'")
        return np.array([FEATURES.index(f) for f in sets[self.features]])


# the inner-CV grid: boosted trees, feature set x tree size x minimum leaf (200 trees, learning rate 0.05), then
# forests of 200 fully grown trees over every feature (they sample features themselves) x kind x minimum leaf
GRID = (*(AfBeatsCfg(features=fs, max_leaf_nodes=lv, min_samples_leaf=ml)
          for fs in ("base", "ectopy", "all") for lv in (4, 15) for ml in (20, 100)),
        *(AfBeatsCfg(features="all", max_leaf_nodes=0, min_samples_leaf=ml, kind=kind)
          for kind in ("extra_trees", "random_forest") for ml in (5, 20)))


@dataclass
class AfBeatsModel:
    clf: object
    cfg: AfBeatsCfg


def _xy(F, y=None):
    from sqtool.data.beats import FEATURES
    F = np.asarray(F, float)
    if F.ndim != 2 or F.shape[1] != len(FEATURES):
        raise SqtoolError(f"af_beats: features must be (N, {len(FEATURES)}) (sqtool.data.beats.FEATURES), "
                          f"got {F.shape}")
    return F if y is None else (F, (np.asarray(y).reshape(-1) > 0.5).astype(int))


def fit_af_beats(F: np.ndarray, y: np.ndarray, seed: int = 0, cfg: AfBeatsCfg | None = None) -> AfBeatsModel:
    from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    cfg = cfg or AfBeatsCfg()
    F, y = _xy(F, y)
    if len(np.unique(y)) < 2:
        raise SqtoolError("fit_af_beats: the training windows need both AF and non-AF")
    if cfg.kind == "boosted":
        clf = HistGradientBoostingClassifier(max_iter=cfg.max_iter, learning_rate=cfg.learning_rate,
                                             max_leaf_nodes=cfg.max_leaf_nodes, min_samples_leaf=cfg.min_samples_leaf,
                                             random_state=seed)
    else:
        forest = ExtraTreesClassifier if cfg.kind == "extra_trees" else RandomForestClassifier
        clf = forest(n_estimators=cfg.max_iter, min_samples_leaf=cfg.min_samples_leaf,
                     max_leaf_nodes=cfg.max_leaf_nodes or None, random_state=seed)
    return AfBeatsModel(clf.fit(F[:, cfg.columns()], y), cfg)


def predict_af_beats(model: AfBeatsModel, F: np.ndarray) -> np.ndarray:
    """(N,) log-odds of AF; the probability clipped to [1e-6, 1 - 1e-6] first (BeatTrees does the same)."""
    F = _xy(F)
    p = np.clip(model.clf.predict_proba(F[:, model.cfg.columns()])[:, 1], 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def select_af_beats(F: np.ndarray, y: np.ndarray, groups: np.ndarray, grid=GRID, k: int = 4,
                    seed: int = 0) -> tuple[AfBeatsCfg, list[dict]]:
    """(the cfg of `grid` with the best pooled inner out-of-fold AUROC, [{cfg, auroc}] per grid entry) by
    grouped k-fold over the subjects in `groups` (only the training subjects of an outer fold)."""
    from sqtool.core.metrics import auroc
    F, y = _xy(F, y)
    groups = np.asarray(groups)
    subj = np.random.default_rng(seed).permutation(np.unique(groups))
    if len(subj) < 2:
        raise SqtoolError("select_af_beats: needs at least 2 subjects for the inner folds")
    parts = [p for p in np.array_split(subj, min(k, len(subj))) if len(p)]
    inner = []
    for p in parts:
        te = np.isin(groups, p)
        if len(np.unique(y[~te])) == 2:
            inner.append((np.flatnonzero(~te), np.flatnonzero(te)))
    if not inner:
        raise SqtoolError("select_af_beats: no inner fold has both AF and non-AF training windows")
    table = []
    for cfg in grid:
        s = np.full(len(y), np.nan)
        for tr, te in inner:
            s[te] = predict_af_beats(fit_af_beats(F[tr], y[tr], seed, cfg), F[te])
        ok = np.isfinite(s)
        table.append({"cfg": cfg.as_dict(), "auroc": auroc(y[ok], s[ok])})
    scores = [t["auroc"] for t in table]
    if not np.isfinite(scores).any():                # the inner folds' scored windows hold one class only
        raise SqtoolError("select_af_beats: the windows the inner folds score hold one class only (no AUROC)")
    best = int(np.nanargmax(scores))                 # first of the maxima = earlier entry
    return replace(grid[best]), table


def tree_arrays(model: AfBeatsModel) -> dict:
    """A fitted ensemble as plain arrays for `models.af_trees.BeatTrees` (a checkpoint holds tensors and plain data,
    never a pickled estimator): per tree (T trees, padded to M nodes) its nodes' feature (index into the model's
    own columns), threshold, left / right child, leaf flag, where a missing value goes and the leaf value; the
    baseline; the deepest leaf's depth. Boosted trees: leaf values and baseline sum to the log-odds; a forest: each
    leaf's AF share / T, baseline 0, sum to the probability (`combine`). Padding nodes are leaves of value 0 that no
    path reaches."""
    from sqtool.models.af_trees import FIELDS
    trees, baseline = (_boosted_trees if model.cfg.kind == "boosted" else _forest_trees)(model)
    T, M = len(trees), max(len(n["leaf"]) for n in trees)
    out = {k: np.zeros((T, M), {"feature": np.int64, "left": np.int64, "right": np.int64, "leaf": bool,
                                "missing_left": bool}.get(k, np.float64)) for k in FIELDS}
    out["leaf"][:] = True
    for t, n in enumerate(trees):
        for k in FIELDS:
            out[k][t, :len(n[k])] = n[k]
    out["baseline"] = np.asarray(baseline, np.float64).reshape(1)
    out["depth"] = int(max(n["depth"] for n in trees))
    return out


def combine(cfg: AfBeatsCfg) -> str:
    """How BeatTrees turns the summed leaves into the logit (`models.af_trees.COMBINE`)."""
    return "sum_logit" if cfg.kind == "boosted" else "mean_probability"


def _boosted_trees(model: AfBeatsModel) -> tuple[list[dict], float]:
    """(per tree {FIELDS..., depth}, baseline log-odds) of HistGradientBoostingClassifier's predictors."""
    nodes = [p[0].nodes for p in model.clf._predictors]               # binary: one predictor per iteration
    if any(np.any(n["is_categorical"]) for n in nodes):
        raise SqtoolError("af_beats: a categorical split cannot be exported (the features are all numerical)")
    trees = [{"feature": n["feature_idx"], "threshold": n["num_threshold"], "left": n["left"], "right": n["right"],
              "leaf": n["is_leaf"].astype(bool), "missing_left": n["missing_go_to_left"].astype(bool),
              "value": np.where(n["is_leaf"], n["value"], 0.0), "depth": int(n["depth"].max())} for n in nodes]
    return trees, model.clf._baseline_prediction


def _forest_trees(model: AfBeatsModel) -> tuple[list[dict], float]:
    """(per tree {FIELDS..., depth}, 0) of a forest: scikit-learn's trees (children -1 at a leaf, `value` the leaf's
    class shares), each leaf holding its AF share / T."""
    est = [e.tree_ for e in model.clf.estimators_]
    af = list(model.clf.classes_).index(1)
    trees = []
    for t in est:
        leaf = t.children_left == -1
        share = t.value[:, 0, af] / t.value[:, 0, :].sum(1)                   # the leaf's AF share
        trees.append({"feature": np.where(leaf, 0, t.feature), "threshold": np.where(leaf, 0.0, t.threshold),
                      "left": np.where(leaf, 0, t.children_left), "right": np.where(leaf, 0, t.children_right),
                      "leaf": leaf, "missing_left": np.asarray(t.missing_go_to_left, bool),
                      "value": np.where(leaf, share / len(est), 0.0), "depth": int(t.max_depth)})
    return trees, 0.0


def trees_model_cfg(base, model: AfBeatsModel, arrays: dict):
    """The registry cfg (`af_beats`, `base` with the task's window) of a fitted ensemble: its feature names in input
    order (frontend), its shape and the AfBeatsCfg it was fitted with (arch)."""
    from sqtool.data.beats import FEATURES
    names = [FEATURES[i] for i in model.cfg.columns()]
    T, M = arrays["feature"].shape
    return base.replace(frontend={"type": "beat_features", "features": names},
                        arch={"trees": T, "nodes": M, "depth": arrays["depth"], "combine": combine(model.cfg),
                              "trees_cfg": model.cfg.as_dict()})
