"""RrSpecNet learns to read a respiratory peak off the bins (held-out rates, shift augmentation) and
the decoder returns the local softmax mean; bad shapes are one clear error."""
import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.resp import RR_BINS  # noqa: F401 (tests may import data)
from sqtool.models.rr_spec import RrSpecCfg, decode, fit_rr_spec, predict_rr_spec


def _spectra(rr, rng):
    S = 0.3 * rng.random((len(rr), 4, len(RR_BINS))).astype(np.float32)
    S[:, 1] += np.exp(-0.5 * ((RR_BINS[None] - rr[:, None]) / 0.8) ** 2)
    S[:, 0] += 0.7 * np.exp(-0.5 * ((RR_BINS[None] - rr[:, None]) / 1.2) ** 2)
    return S / S.max(2, keepdims=True)


def test_learns_the_peak_and_generalises_to_unseen_rates():
    rng = np.random.default_rng(0)
    rr_tr = rng.uniform(10, 22, 400)                  # train on 10-22 ...
    rr_te = rng.uniform(24, 30, 50)                   # ... test on rates never seen (shift augmentation)
    cfg = RrSpecCfg(epochs=8, width=16)
    net = fit_rr_spec(_spectra(rr_tr, rng), rr_tr, cfg)
    pred = predict_rr_spec(net, _spectra(rr_te, rng), cfg)
    assert np.abs(pred - rr_te).mean() < 2.0
    assert np.abs(pred - rr_te).mean() < np.abs(rr_tr.mean() - rr_te).mean() / 3


def test_decode_and_errors():
    z = np.full((1, len(RR_BINS)), -10.0)
    z[0, np.searchsorted(RR_BINS, 15.0)] = 5.0
    assert decode(z)[0] == pytest.approx(15.0, abs=0.01)
    with pytest.raises(SqtoolError):
        fit_rr_spec(np.zeros((4, 4, 10)), np.zeros(4))


def test_bin_grid_matches_the_front_end():
    from sqtool.data import resp
    from sqtool.models import rr_spec
    assert np.array_equal(resp.RR_BINS, rr_spec.RR_BINS)
