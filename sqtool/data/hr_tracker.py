"""A simple causal heart-rate tracker over consecutive windows (2 s hop).

A per-window estimate is noisy: motion artifacts make a model or a spectral peak picker jump by tens
of BPM for a window or two, while a real heart rate changes by a few BPM per second at most. The
tracker keeps one state, the last reported HR, and for every new window:

    - if the window is gated out (quality <= threshold, a dropout, or no estimate): hold the state;
    - otherwise move toward the new estimate by at most `max_step_bpm` (slew-rate limit), then
      smooth exponentially with weight `alpha` on the new value;
    - after `reset_after` consecutive rejected/limited windows that all disagree with the state in
      the same direction, re-acquire (the state was wrong, not the estimates).

Causal: the output for window i uses windows <= i only, so it runs on the device as is: an export with the C
front end ships it for a heart-rate model (`export.c_tracker`, sq_tracker.c, bit for bit this in float64). Its
numbers (`TrackerCfg`) and MAX_FLAGGED live in `core.tracking`, which both read.

Which windows a time-domain model's tracker may move on is one rule, `tracker_ok`, for `sqtool bench` and
`sqtool predict` alike: fewer than MAX_FLAGGED of the window's samples flagged as dropouts and, with the quality
gate, the model's QUALITY_OUTPUT logit > 0 (a spectral model's decoder tracks the heart rate on its own).
"""
from __future__ import annotations

import numpy as np

from sqtool.core.tracking import MAX_FLAGGED, TrackerCfg
from sqtool.data.tasks import QUALITY_OUTPUT      # the model output the quality gate reads: a logit > 0 says good


def tracker_ok(y: np.ndarray, flagged: np.ndarray, outputs: list[str], quality_gate: bool) -> np.ndarray:
    """(N,) bool: the windows the tracker may move on: fewer than MAX_FLAGGED of their samples flagged (flagged:
    (N,) fractions) and, with the quality gate, the QUALITY_OUTPUT logit > 0, its column found by name in the
    model's outputs (y: (n <= N, k) outputs in that order; a model without one is not gated)."""
    ok = np.asarray(flagged) < MAX_FLAGGED
    if quality_gate and QUALITY_OUTPUT in outputs:
        ok[:len(y)] &= y[:, list(outputs).index(QUALITY_OUTPUT)] > 0.0
    return ok


class HrTracker:
    def __init__(self, cfg: TrackerCfg | None = None):
        self.cfg = cfg or TrackerCfg()
        self.state: float | None = None
        self.pushes = 0            # consecutive limited steps in one direction (signed)

    def update(self, est: float, ok: bool = True) -> float:
        """New window: raw estimate (BPM, NaN = none) and whether it passed the quality gate.
        Returns the tracked HR (NaN until the first accepted window)."""
        c = self.cfg
        finite = bool(np.isfinite(est)) and c.lo_bpm <= est <= c.hi_bpm
        if not (ok and finite):
            if self.state is None:                 # nothing to hold yet: the raw estimate or nothing
                return float(est) if finite else np.nan
            return self.state
        if self.state is None:
            self.state = float(est)
            return self.state
        d = est - self.state
        if abs(d) > c.max_step_bpm:
            sgn = 1 if d > 0 else -1
            self.pushes = self.pushes + sgn if self.pushes * sgn > 0 else sgn
            if abs(self.pushes) >= c.reset_after:
                self.state, self.pushes = float(est), 0
                return self.state
            d = float(np.clip(d, -c.max_step_bpm, c.max_step_bpm))
        else:
            self.pushes = 0
        self.state = self.state + c.alpha * d
        return self.state


def track(estimates: np.ndarray, ok: np.ndarray | None = None, cfg: TrackerCfg | None = None,
          tracker: HrTracker | None = None) -> np.ndarray:
    """Run a fresh tracker over one recording's windows (NaN where no estimate exists yet); tracker: carry that one
    on instead (a stream's, over its chunks of windows: the same values as over the whole recording)."""
    est = np.asarray(estimates, dtype=np.float64)
    ok = np.ones(len(est), dtype=bool) if ok is None else np.asarray(ok, dtype=bool)
    t = HrTracker(cfg) if tracker is None else tracker
    return np.array([t.update(e, o) for e, o in zip(est, ok)], dtype=np.float64)
