"""hr_bins augmentation knobs found by the synthetic fixed-HR benchmark: the motion peak's strength in the
PPG (motion_ppg_amp / motion_ppg_dist) and the code of bins a shift or stretch moves off the grid (edge_fill)."""
import numpy as np
import pytest
import torch

from sqtool.models.hr_bins import BinTrainCfg, EMPTY, edge_fill_values, inject_motion, shift_batch, stretch_batch

BINS = np.arange(30.0, 230.0, 1.5)


def _window(n=8, seed=0):
    """(n, 4, F) codes: a noise floor around -0.6 (varying per channel) and a pulse at 90 BPM in every channel."""
    g = torch.Generator().manual_seed(seed)
    x = -0.6 + 0.1 * torch.rand(n, 4, len(BINS), generator=g) + 0.2 * torch.arange(4)[None, :, None]
    x[:, :, 40] = 1.0
    return x.clamp(-1, 1)


def test_edge_fill_floor_puts_each_channels_median_where_the_source_is_off_the_grid():
    x = _window()
    y = torch.full((len(x),), 90.0, dtype=torch.float64)
    s = torch.full((len(x),), 0.5, dtype=torch.float64)
    off = torch.as_tensor(BINS / 0.5 > BINS[-1] + 1e-9)                            # upper band: off the grid
    xe, _, _ = stretch_batch(x, y, s, BINS, 3.0, fill="empty")
    xf, _, _ = stretch_batch(x, y, s, BINS, 3.0, fill="floor")
    assert (xe[:, :, off] == EMPTY).all()
    med = x.median(dim=2).values                                                    # (B, C)
    assert torch.allclose(xf[:, :, off], med[:, :, None].expand(-1, -1, int(off.sum())))
    assert (med > EMPTY + 0.3).all()                                               # not the empty code
    assert torch.equal(xf[:, :, ~off], xe[:, :, ~off])                              # on-grid bins unchanged
    t = torch.as_tensor(np.eye(len(BINS), dtype=np.float32)[[40] * len(x)])
    sh = torch.full((len(x),), 10, dtype=torch.long)
    xs, _, _ = shift_batch(x, t, sh, fill="floor")
    assert torch.allclose(xs[:, :, :10], med[:, :, None].expand(-1, -1, 10))
    assert (shift_batch(x, t, sh)[0][:, :, :10] == EMPTY).all()                    # default: empty
    with pytest.raises(ValueError):
        edge_fill_values(x, "zeros")


def _pulse_power_after_motion(cfg, n=512):
    x = torch.full((n, 4, len(BINS)), -1.0)
    x[:, :, 40] = 1.0                                                               # pulse at 90 BPM, max power
    y = torch.full((n,), 90.0, dtype=torch.float64)
    xm, ok = inject_motion(x, y, BINS, cfg, torch.Generator().manual_seed(0))
    return ((xm[ok, 0, 40] + 1) / 2).numpy()                                       # pulse power / PPG max


def test_motion_ppg_amp_sets_how_far_the_motion_peak_can_dominate_the_pulse():
    dflt = _pulse_power_after_motion(BinTrainCfg())
    assert dflt.min() > 0.35                                       # default 0.3-1.5: the pulse >= 1 / 2.5 of max
    wide = _pulse_power_after_motion(BinTrainCfg(motion_ppg_amp=(0.3, 10.0), motion_ppg_dist="log"))
    assert wide.min() < 0.12 and np.mean(wide < 0.4) > 0.3 and np.mean(wide > 0.9) > 0.2   # both regimes
    same = _pulse_power_after_motion(BinTrainCfg(motion_ppg_amp=(0.3, 1.5), motion_ppg_dist="uniform"))
    assert np.array_equal(same, dflt)
    with pytest.raises(ValueError):
        _pulse_power_after_motion(BinTrainCfg(motion_ppg_dist="normal"))
