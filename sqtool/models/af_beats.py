"""AF from beat-interval and waveform-regularity features (`sqtool.data.beats.FEATURES`) with a small
gradient-boosted tree model (scikit-learn HistGradientBoostingClassifier, NaN-aware).

    clf = fit_af_beats(F_train, y_train)       # F (N, len(FEATURES)), y (N,) 1 = AF
    logit = predict_af_beats(clf, F_test)      # (N,) log-odds of AF

Hyperparameters fixed a priori (200 trees, learning rate 0.05, 15 leaves, seed 0); not tuned on test
patients. Not a registry model (its input is a feature vector, not a PPG window).
"""
from __future__ import annotations

import numpy as np

from sqtool.core import SqtoolError


def fit_af_beats(F: np.ndarray, y: np.ndarray, seed: int = 0):
    from sklearn.ensemble import HistGradientBoostingClassifier
    y = (np.asarray(y).reshape(-1) > 0.5).astype(int)
    if len(np.unique(y)) < 2:
        raise SqtoolError("fit_af_beats: the training windows need both AF and non-AF")
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                          random_state=seed).fit(np.asarray(F, float), y)


def predict_af_beats(clf, F: np.ndarray) -> np.ndarray:
    p = np.clip(clf.predict_proba(np.asarray(F, float))[:, 1], 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
