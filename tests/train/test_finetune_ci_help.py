"""`train finetune --help` said every fine-tune's metrics come "with subject-bootstrap 95 % CIs" and --bootstrap
sets "resamples of subjects for the 95% CI", but a spectral hr fine-tune prints the mean of its subjects' decoded
MAE with a t-interval over the subjects clipped at 0 (`decoded MAE 33.84 BPM (mean of subjects, 95 % CI
0.00-122.92)`), no bootstrap: the help now says which CI each kind of fine-tune prints."""
from __future__ import annotations

import numpy as np
import pytest


def _help(capsys) -> str:
    from sqtool.cli import main
    with pytest.raises(SystemExit):
        main(["train", "finetune", "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_finetune_help_says_which_ci_each_task_prints(capsys):
    text = _help(capsys)
    assert "subject-bootstrap 95 % CIs" not in text
    assert ("spectral hr (spec_* models): the mean of subjects' decoded MAE, a t-interval over the subjects clipped "
            "at 0 (no bootstrap)") in text
    assert "the pooled metric's from a bootstrap of subjects (--bootstrap)" in text
    assert "A spectral hr fine-tune's headline CI is a t-interval over subjects, no bootstrap" in text


def test_the_spectral_hr_headline_ci_is_the_t_interval_over_subjects_from_0():
    """What the help now says, read from the code that computes it (finetune_hr's ci95 of mae_bpm)."""
    from sqtool.core.metrics import t_interval
    from sqtool.train.finetune_hr import mae_ci
    maes = np.array([2.0, 3.0, 95.0])
    m, lo, hi = mae_ci(maes)
    t_lo, t_hi = t_interval(maes)
    assert (m, lo, hi) == (pytest.approx(maes.mean()), 0.0, pytest.approx(t_hi)) and t_lo < 0
