"""The heart-rate tracker's contract, shared by the Python tracker (`data.hr_tracker`, what bench and predict
run) and the C one an export ships (`export.c_tracker`, templates/sq_tracker.{h,c}): its numbers and the rule of
which windows it may move on, so that the two cannot drift apart."""
from __future__ import annotations

from dataclasses import dataclass

MAX_FLAGGED = 0.1                    # a window with this fraction of its samples flagged (dropouts) or more is held


@dataclass
class TrackerCfg:
    max_step_bpm: float = 8.0      # largest change per hop (2 s): 4 BPM/s covers exercise onsets
    alpha: float = 0.6             # weight of the (slew-limited) new estimate
    reset_after: int = 5           # re-acquire after this many same-sign limited steps in a row
    lo_bpm: float = 30.0
    hi_bpm: float = 240.0


__all__ = ["MAX_FLAGGED", "TrackerCfg"]
