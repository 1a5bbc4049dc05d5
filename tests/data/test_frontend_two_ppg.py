"""Two PPG sensors in the front end (FrontEndCfg.n_ppg = 2): the ppg channel is the sum of both sensors'
spectra, each normalised to 2^16 at its own max (data.frontend step 6). n_ppg = 1 gives exactly the codes of
the single-sensor front end (frozen hashes of the implementation before n_ppg existed); streaming == offline
for any chunking with gaps; a sensor at 10x the gain, or a copy of the other, gives the same codes up to
rounding; a dead sensor leaves the live one's; the integer bounds hold; bad shapes / counts are one-line
errors."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from frontend_stream import stream
from sqtool.core import SqtoolError
from sqtool.data.frontend import (NORM_FRAC, FrontEnd, FrontEndCfg, combine_ppg, design, input_channels, spectra,
                                  window_codes)

CFG2 = FrontEndCfg(n_ppg=2)
TAB = design(CFG2)                                  # the tables do not depend on n_ppg


def _tone_stream(n=6000, seed=2024):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 125.0
    x = np.round(np.stack([9000 * np.sin(2 * np.pi * 1.4 * t), 3000 * np.sin(2 * np.pi * 2.1 * t),
                           1500 * np.sin(2 * np.pi * 0.9 * t), 800 * np.sin(2 * np.pi * 3.0 * t)])
                 + rng.normal(0, 400, (4, n))).clip(-32768, 32767).astype(np.int16)
    return x, rng.random(n) < 0.05


def test_one_sensor_codes_are_those_of_the_single_sensor_front_end():
    """sha256 prefixes computed with the front end before n_ppg existed (same stream, same configs)."""
    x, gap = _tone_stream()
    want = {(4, 201): "60d2e97cea475e11", (4, 134): "6bd8e8c9f00cca76", (1, 201): "b10efd5d252620a7"}
    for cfg in (FrontEndCfg(), FrontEndCfg(bins_bpm=(30.0, 229.5, 1.5)), FrontEndCfg(n_channels=1, fs_in=256.0)):
        assert cfg.n_ppg == 1
        c, _, _ = spectra(cfg, x if cfg.n_channels == 4 else x[:1], gap)
        assert hashlib.sha256(c.tobytes()).hexdigest()[:16] == want[(cfg.n_channels, c.shape[1])]


@pytest.mark.parametrize("chunks", [[1, 250, 3], [999], [10_000]])
def test_two_sensors_streaming_equals_offline_with_gaps(chunks):
    rng = np.random.default_rng(1)
    n = 4000 if chunks == [1, 250, 3] else 6000
    x = np.round(rng.standard_normal((5, n)) * 3000).astype(np.int16)
    gap = rng.random(n) < 0.05
    gap[1000:1300] = True
    spec, t0, fl = spectra(CFG2, x, gap, tables=TAB)
    ws = stream(x, gap, chunks, CFG2, TAB)
    assert len(ws) == len(spec) > 5 and spec.shape[1:] == (TAB.n_bins, 4)
    assert np.array_equal(np.stack([w.spec for w in ws]), spec)
    assert np.allclose([w.flagged for w in ws], fl)


def _two(x, g2=1.0, noise=0.0, seed=0):
    """(5, n): ppg, ppg2 = g2 * ppg (+ noise), acc."""
    rng = np.random.default_rng(seed)
    p2 = np.clip(np.round(x[0] * g2 + rng.normal(0, noise, x.shape[1])), -32768, 32767).astype(np.int16)
    return np.concatenate([x[:1], p2[None], x[1:]])


def test_a_sensor_at_ten_times_the_gain_weighs_the_same():
    """Per-sensor normalisation: ppg2 = 10 x ppg (garbage-free, no saturation) gives the codes of equal gains,
    and of one sensor, up to rounding; the accelerometer channels are untouched."""
    x, gap = _tone_stream()
    x[0] = (x[0] // 4).astype(np.int16)                                   # keep 10x inside int16
    one, _, _ = spectra(FrontEndCfg(), x, gap)
    equal, _, _ = spectra(CFG2, _two(x), gap)
    tenx, _, _ = spectra(CFG2, _two(x, 10.0), gap)
    for c in (equal, tenx):
        assert np.abs(c.astype(int) - one.astype(int)).max() <= 1
        assert np.array_equal(c[..., 1:], one[..., 1:])
    assert np.abs(tenx.astype(int) - equal.astype(int)).max() <= 1
    assert (tenx == equal).mean() > 0.97


def test_the_mean_of_two_different_sensors_and_a_dead_sensor():
    x, _ = _tone_stream(seed=7)
    rng = np.random.default_rng(3)
    t = np.arange(x.shape[1]) / 125.0
    other = np.round(4000 * np.sin(2 * np.pi * 1.4 * t) + 6000 * np.sin(2 * np.pi * 2.6 * t)
                     + rng.normal(0, 300, t.size)).astype(np.int16)
    both, _, _ = spectra(CFG2, np.concatenate([x[:1], other[None], x[1:]]))
    a, _, _ = spectra(FrontEndCfg(), x)
    b, _, _ = spectra(FrontEndCfg(), np.concatenate([other[None], x[1:]]))
    # the sum lies between the sensors' own codes (a mean of normalised spectra), up to rounding
    lo, hi = np.minimum(a[..., 0], b[..., 0]).astype(int), np.maximum(a[..., 0], b[..., 0]).astype(int)
    assert ((both[..., 0] >= lo - 1) & (both[..., 0] <= hi + 1)).all()
    assert not np.array_equal(both[..., 0], a[..., 0]) and not np.array_equal(both[..., 0], b[..., 0])
    dead, _, _ = spectra(CFG2, np.concatenate([x[:1], np.zeros((1, x.shape[1]), np.int16), x[1:]]))
    assert np.abs(dead.astype(int) - a.astype(int)).max() <= 1             # a zero sensor adds nothing
    zero, _, _ = spectra(CFG2, np.zeros((5, 3000), np.int16))
    assert (zero == -127).all()


def test_combine_bounds_and_exact_max():
    """Worst-case powers (2^31, tiny, zero): u <= 2^16 per sensor with the max bin exactly 2^16, the sum
    <= 2^17, every intermediate below 2^32."""
    p = np.zeros((3, 3, 5), np.int64)
    p[0, 0] = [2**31, 2**31 - 1, 1, 0, 2**30]
    p[0, 1] = [1, 2, 3, 0, 0]
    p[1, 0] = [0, 0, 0, 0, 0]
    p[1, 1] = [7, 7, 7, 7, 7]
    p[2, :2] = 2**31
    out = combine_ppg(p, 2)
    assert out.shape == (3, 2, 5) and out.max() <= 2 ** (NORM_FRAC + 1)
    assert out[1, 0].tolist() == [2**16] * 5 and out[2, 0].tolist() == [2**17] * 5
    assert out[0, 0, 0] == 2**16 + 21845                                   # 1/3 of the second sensor's max
    assert np.array_equal(out[:, 1], p[:, 2])                              # the other rows pass unchanged
    q = np.maximum(np.ceil(np.log2(2**31 + 1)) - 15, 0)
    assert ((2**31 >> int(q)) << NORM_FRAC) + (1 << 14) < 2**32
    one = combine_ppg(p, 1)
    assert one is p
    w = np.zeros((1, 5, TAB.T), np.int16)
    assert window_codes(w, CFG2, TAB).shape == (1, TAB.n_bins, 4)


def test_cfg_and_bad_input():
    d = CFG2.to_dict()
    assert d["n_ppg"] == 2 and d["inputs"] == ["ppg", "ppg2", "acc_x", "acc_y", "acc_z"]
    assert d["channels"] == ["ppg", "acc_x", "acc_y", "acc_z"] and "2^16" in d["ppg_combine"]
    assert FrontEndCfg.from_dict(d) == CFG2 and CFG2.n_inputs == 5
    assert input_channels(FrontEndCfg(n_channels=1, n_ppg=2)) == ("ppg", "ppg2")
    assert FrontEndCfg.from_dict({k: v for k, v in FrontEndCfg().to_dict().items() if k != "n_ppg"}).n_ppg == 1
    for bad in (0, 3):
        with pytest.raises(SqtoolError, match="n_ppg"):
            design(FrontEndCfg(n_ppg=bad))
    with pytest.raises(SqtoolError, match=r"C=5: ppg, ppg2, acc_x, acc_y, acc_z"):
        spectra(CFG2, np.zeros((4, 2000), np.int16))
    with pytest.raises(SqtoolError, match="C=5"):
        FrontEnd(CFG2, TAB).push(np.zeros((4, 100), np.int16))
