"""rr_spec (registry family resp_spec) learns to read a respiratory peak off the bins (held-out rates, shift
augmentation); the decoder returns the local softmax mean; bad shapes and foreign front ends are one clear error."""
import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.resp import RR_BINS
from sqtool.models import create_model, get_model_cfg
from sqtool.models.rr_spec import check_frontend, decode, rr_grid
from sqtool.train.finetune_rr import fit_rr, predict_rr


def _spectra(rr, rng):
    S = 0.3 * rng.random((len(rr), 4, len(RR_BINS))).astype(np.float32)
    S[:, 1] += np.exp(-0.5 * ((RR_BINS[None] - rr[:, None]) / 0.8) ** 2)
    S[:, 0] += 0.7 * np.exp(-0.5 * ((RR_BINS[None] - rr[:, None]) / 1.2) ** 2)
    return S / S.max(2, keepdims=True)


def test_learns_the_peak_and_generalises_to_unseen_rates():
    rng = np.random.default_rng(0)
    rr_tr = rng.uniform(10, 22, 400)                  # train on 10-22 ...
    rr_te = rng.uniform(24, 30, 50)                   # ... test on rates never seen (shift augmentation)
    mc = get_model_cfg("rr_spec", arch={"width": 16})
    net = fit_rr(_spectra(rr_tr, rng), rr_tr, mc, epochs=8, batch_size=64, lr=3e-3, weight_decay=1e-3, seed=0)
    pred = predict_rr(net, _spectra(rr_te, rng))
    assert np.abs(pred - rr_te).mean() < 2.0
    assert np.abs(pred - rr_te).mean() < np.abs(rr_tr.mean() - rr_te).mean() / 3


def test_fit_is_seeded():
    rng = np.random.default_rng(1)
    rr = rng.uniform(10, 22, 64)
    S = _spectra(rr, rng)
    mc = get_model_cfg("rr_spec", arch={"width": 8})
    a, b = (predict_rr(fit_rr(S, rr, mc, epochs=2, batch_size=32, lr=1e-3, weight_decay=0, seed=3), S)
            for _ in range(2))
    assert np.array_equal(a, b)


def test_decode_and_errors():
    z = np.full((1, len(RR_BINS)), -10.0)
    z[0, np.searchsorted(RR_BINS, 15.0)] = 5.0
    assert decode(z)[0] == pytest.approx(15.0, abs=0.01)
    with pytest.raises(SqtoolError, match="logits must be"):
        decode(np.zeros((2, 5)))
    with pytest.raises(SqtoolError, match="spectra must be"):
        fit_rr(np.zeros((4, 4, 10)), np.zeros(4), get_model_cfg("rr_spec"), 1, 2, 1e-3, 0, 0)
    with pytest.raises(SqtoolError, match="float only"):
        create_model("rr_spec", quant="int8_w_per_channel_a_per_tensor")


def test_cfg_carries_the_front_end():
    """The bins, channels and input shape come from the cfg, and agree with data.resp's front end; another front
    end (e.g. a file written by a later sqtool with other channels) is refused in one line."""
    from sqtool.data import resp
    from sqtool.models import rr_spec
    assert np.array_equal(rr_spec.RR_BINS, resp.RR_BINS) and rr_spec.RESP_CHANNELS == resp.RESP_CHANNELS
    assert (rr_spec.RESAMPLE_HZ, rr_spec.MIN_WINDOW_S) == (resp.RESAMPLE_HZ, resp.MIN_WINDOW_S)
    mc = get_model_cfg("rr_spec")
    assert np.array_equal(rr_grid(mc), resp.RR_BINS) and np.array_equal(rr_grid(mc.to_dict()), resp.RR_BINS)
    assert mc.input_shape == (len(resp.RESP_CHANNELS), len(resp.RR_BINS))
    check_frontend(mc, "test")
    with pytest.raises(SqtoolError, match="not this sqtool's"):
        check_frontend(mc.replace(frontend={"channels": ["riiv"]}), "model.pt")
