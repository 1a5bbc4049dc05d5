"""Heart-rate-bin training: targets, shift augmentation, learning a spectral peak, decoder selection."""
import numpy as np
import pytest
import torch

from sqtool.models import create_model, get_model_cfg
from sqtool.models.spectral import bin_grid
from sqtool.models.hr_bins import (BinTrainCfg, gaussian_targets, predict_logits, select_decoder, shift_batch,
                                  train_bins)


def test_gaussian_targets_are_distributions_centred_on_the_truth():
    bins = np.arange(30, 231, 1.5)
    t = gaussian_targets(np.array([60.0, 150.75]), bins, 3.0)
    assert np.allclose(t.sum(axis=1), 1.0, atol=1e-6)
    assert bins[t[0].argmax()] == 60.0 and abs(bins[t[1].argmax()] - 150.75) <= 0.75


def test_shift_moves_spectra_and_target_together():
    x = torch.full((1, 2, 10), -1.0)
    x[0, :, 4] = 1.0
    t = torch.zeros(1, 10)
    t[0, 4] = 1.0
    xs, ts, _ = shift_batch(x, t, torch.tensor([3]))
    assert xs[0, 0].argmax() == 7 and xs[0, 1].argmax() == 7 and ts[0].argmax() == 7
    xs, ts, _ = shift_batch(x, t, torch.tensor([-6]))           # the peak leaves the grid: empty bins
    assert (xs == -1).all() and torch.isfinite(ts).all()


def _peak_spectra(n, cfg, rng):
    """(N, C, F) codes/127 with a pulse peak at a random HR in PPG and a motion peak elsewhere in all channels."""
    bins = bin_grid(cfg)
    hr = rng.uniform(50, 180, n)
    mot = rng.uniform(50, 180, n)
    x = np.full((n, 4, len(bins)), -1.0, np.float32)
    for i in range(n):
        x[i, 0] = 2 * np.exp(-0.5 * ((bins - hr[i]) / 3) ** 2) + 2 * np.exp(-0.5 * ((bins - mot[i]) / 3) ** 2) - 1
        x[i, 1:] = 2 * np.exp(-0.5 * ((bins - mot[i]) / 3) ** 2) - 1
    return np.clip(x, -1, 1), hr


def test_a_spectral_student_learns_to_ignore_the_motion_peak():
    torch.manual_seed(0)
    cfg = get_model_cfg("spec_student_xs")
    rng = np.random.default_rng(0)
    x, y = _peak_spectra(384, cfg, rng)
    m = create_model(cfg)
    hist = train_bins(m, x, y, bin_grid(cfg), BinTrainCfg(epochs=8, shift_bins=5))
    assert hist[-1] < hist[0]
    xt, yt = _peak_spectra(64, cfg, np.random.default_rng(1))
    pred = bin_grid(cfg)[predict_logits(m, xt).argmax(1)]
    assert np.median(np.abs(pred - yt)) < 5.0                      # the pulse, not the motion peak


def test_select_decoder_chooses_from_the_grid_on_out_of_fold_logits():
    cfg = get_model_cfg("spec_student_xs")
    bins = bin_grid(cfg)
    rng = np.random.default_rng(0)
    logits, truth, groups = [], [], []
    for s in range(3):
        hr = 90 + np.cumsum(rng.normal(0, 1.0, 60))
        lg = -0.5 * ((bins[None] - hr[:, None] - rng.normal(0, 4, (60, 1))) / 4.0) ** 2
        logits.append(lg.astype(np.float32))
        truth.append(hr)
        groups.append(f"s{s}")
    base = {"bins_bpm": list(cfg.arch["bins_bpm"]), "sigma_bpm": 1.0, "floor": 1e-3, "logit_scale": 1.0}
    d = select_decoder(logits, truth, groups, base, sigmas=(1.0, 8.0), floors=(1e-3,), temperatures=(1.0, 4.0))
    assert d["sigma_bpm"] in (1.0, 8.0) and d["temperature"] in (1.0, 4.0) and np.isfinite(d["inner_mae"])
    assert d["inner_mae"] < 4.0
