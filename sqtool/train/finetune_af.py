"""Fine-tune the AF model `af_beats` (`models.af_trees`): beat features -> a tree ensemble, nested, as a command.

    sqtool train finetune --task af --model af_beats [--data ../shared/data] [--folds 0]

The run is `train.finetune_front`'s (subject folds, skill beside the trivial base rate and the classic normalised-
RMSSD rule, per-subject AUROC, the held-out subjects scored by the final model, model.pt, heldout.npz / parity.npz,
resume) with this recipe: the af task's PPG windows (10 s at 100 Hz, band 0.5-8 Hz) -> every feature of
`data.beats.interval_features` (beat intervals, waveform regularity, ectopy, pulse shape) -> in each fold, the
ensemble's kind (boosted trees, extra trees or a random forest), feature set and tree size chosen by
`select_af_beats` (grouped 4-fold CV over that fold's training subjects only, said in one log line),
then `fit_af_beats` on all of them -> the ensemble as a `BeatTrees` (`tree_arrays`: its cfg names the features it
reads, in order). The final model chooses the same way over every training subject. Nothing is tuned on a subject it
is scored on. A fold whose training subjects are too few for the inner CV (under 2, or no inner fold with both
classes) fits the a-priori cfg (`AfBeatsCfg()`), said in the log.

Training numbers (--epochs, --lr, ...) do not apply: the trees' grid is `train.af_beats.GRID` (200 trees
throughout; learning rate 0.05 for the boosted ones). The ensemble exports to ONNX only (float64 features in, the logit of AF out; its Gather /
Where graph equals scikit-learn's trees); no TFLite, no int8, no C.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.core.progress import item

OUTPUTS = ("logit_af",)
MIN_WINDOW_S = 8.0          # the beat-interval statistics need a few intervals (NaN under 4 beats)


def _front(x: np.ndarray, model_cfg) -> np.ndarray:
    from sqtool.data.beats import interval_features
    return interval_features(np.asarray(x)[:, 0], model_cfg.fs)                      # (N, len(FEATURES))


def _columns(net) -> np.ndarray:
    from sqtool.data.beats import FEATURES
    return np.array([FEATURES.index(f) for f in net.cfg.frontend["features"]])


def fit_trees(F: np.ndarray, y: np.ndarray, groups: np.ndarray, model_cfg, seed: int, log=None):
    """A BeatTrees of the ensemble `select_af_beats` chooses over `groups` and `fit_af_beats` fits on all of F
    (every feature of data.beats.FEATURES per window), y (N, 1) 1 = AF. `seed`: the inner CV's subject split and
    the trees' own randomness (a forest's bootstrap, extra trees' thresholds)."""
    from sqtool.models import create_model
    from sqtool.models.af_trees import tree_state
    from sqtool.train.af_beats import AfBeatsCfg, fit_af_beats, select_af_beats, tree_arrays, trees_model_cfg
    try:
        best, table = select_af_beats(F, y[:, 0], groups, seed=seed)
        if log is not None:
            size = f"of <= {best.max_leaf_nodes} leaves, " if best.max_leaf_nodes else "grown until "
            log(f"af_beats: the inner CV over {len(np.unique(groups))} training subjects chose "
                f"{best.kind.replace('_', ' ')}, {best.features} features ({len(best.columns())}), {best.max_iter} trees "
                f"{size}>= {best.min_samples_leaf} windows a leaf (inner AUROC {max(t['auroc'] for t in table):.3f})")
    except SqtoolError as e:                                       # too few subjects / classes for the inner CV
        best = AfBeatsCfg()
        if log is not None:
            log(f"af_beats: inner CV not possible ({e}); the a-priori cfg")
    model = fit_af_beats(F, y[:, 0], seed=seed, cfg=best)
    arrays = tree_arrays(model)
    net = create_model(trees_model_cfg(model_cfg, model, arrays))
    net.load_state_dict(tree_state(arrays))
    return net.eval()


def recipe(cfg, log=item):
    """The FrontRecipe of af_beats (the trees' choices are their own grid: the fine-tune's numbers do not apply).
    Every fit (each fold's, the final model's) splits its inner CV and grows its trees with the run's --seed, as
    benchmarks/downstream_skill.py's --af-inner-seed: one seed, one inner split rule for the whole run."""
    from sqtool.train.finetune_front import FrontRecipe
    return FrontRecipe(
        task="af", outputs=OUTPUTS, units=("logit",), what="beat features",
        front=_front, fit=lambda A, y, groups, mc, seed, history: fit_trees(A, y, groups, mc, cfg.seed, log),
        net_input=lambda net, A: np.asarray(A, np.float64)[:, None, _columns(net)],      # (N, 1, K) its features
        read=lambda net, z: np.asarray(z, np.float64).reshape(len(z), 1),
        classic_front=lambda F, mc: F)                    # every beat feature: the classic rule's nrmssd among them


def check_config(cfg, command: str = "train finetune") -> None:
    """What an af_beats fine-tune refuses, in one line each, before a folder is made or data read."""
    from sqtool.train.finetune_front import check_front_config
    where = check_front_config(cfg, command)
    if cfg.fs and cfg.fs < 20.0:
        raise SqtoolError(f"{where}: --fs {cfg.fs:g}: the beat features need at least 20 Hz")
    if cfg.window_s and cfg.window_s < MIN_WINDOW_S:
        raise SqtoolError(f"{where}: --window-s {cfg.window_s:g}: the beat-interval features need windows of at "
                          f"least {MIN_WINDOW_S:g} s (8 beats at 60 BPM; the model is validated on 10 s)")


def run(cfg, run_dir: str | Path, log=item, resume: bool = False, task_data=None, *, prepared: bool = False) -> dict:
    """Cross-validated, nested fine-tune of af_beats + final model (`train.finetune_front`); returns metrics."""
    from sqtool.train.finetune import prepare_finetune
    from sqtool.train.finetune_front import run_front_finetune
    if not prepared:
        cfg, _ = prepare_finetune(cfg)
    check_config(cfg)
    return run_front_finetune(cfg, run_dir, recipe(cfg, log), log=log, resume=resume, task_data=task_data)
