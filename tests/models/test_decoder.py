"""The HMM heart-rate decoder: float decoders against brute force over all paths, tracking, fitting,
config validation, and the fixed-point IntDecoder against the float forward filter."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.models import decoder as D

TINY = D.DecoderCfg(bins_bpm=(60.0, 63.0, 1.0), sigma_bpm=1.0, floor=0.05)     # F = 4, R = 3


def _tiny_inputs(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (4, 4))                                    # (W, F)
    valid = np.array([True, True, False, True])
    return logits, valid


def _path_weights(logits, valid, cfg):
    """{path: unnormalised joint probability} over all F^W paths."""
    a, pi = D.transition_matrix(cfg), D.start_distribution(cfg)
    lik = np.exp(logits - logits.max(axis=1, keepdims=True))
    lik[~valid] = 1.0
    n, f = lik.shape
    out = {}
    for path in itertools.product(range(f), repeat=n):
        w = pi[path[0]] * lik[0, path[0]]
        for t in range(1, n):
            w *= a[path[t - 1], path[t]] * lik[t, path[t]]
        out[path] = w
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_is_the_brute_force_best_path(seed):
    logits, valid = _tiny_inputs(seed)
    weights = _path_weights(logits, valid, TINY)
    best = max(weights, key=weights.get)
    np.testing.assert_array_equal(D.viterbi(logits, valid, TINY), TINY.centres[list(best)])


@pytest.mark.parametrize("seed", [0, 1])
def test_forward_and_smoothed_posteriors_equal_sums_over_paths(seed):
    logits, valid = _tiny_inputs(seed)
    n, f = logits.shape
    fwd = D.forward(logits, valid, TINY)["post"]
    smooth = D.forward_backward(logits, valid, TINY)["post"]
    np.testing.assert_allclose(fwd.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(smooth.sum(axis=1), 1.0, rtol=1e-12)
    full = _path_weights(logits, valid, TINY)
    for t in range(n):
        prefix = _path_weights(logits[:t + 1], valid[:t + 1], TINY)      # filtering: windows <= t only
        filt = np.zeros(f)
        marg = np.zeros(f)
        for path, w in prefix.items():
            filt[path[-1]] += w
        for path, w in full.items():
            marg[path[t]] += w
        np.testing.assert_allclose(fwd[t], filt / filt.sum(), rtol=1e-10)
        np.testing.assert_allclose(smooth[t], marg / marg.sum(), rtol=1e-10)


def test_forward_recovers_a_constant_hr_from_noisy_logits():
    cfg = D.DecoderCfg()
    rng = np.random.default_rng(3)
    b = cfg.centres
    logits = 2.5 * np.exp(-0.5 * ((b - 97.0) / 3.0) ** 2) + rng.normal(0, 1.5, (120, cfg.n_bins))
    raw = np.abs(b[np.argmax(logits, axis=1)] - 97.0)
    out = D.forward(logits, None, cfg)
    assert np.mean(raw > 10) > 0.3                                         # the per-window argmax is often far off
    err = np.abs(out["hr"][20:] - 97.0)
    assert err.mean() < 2.0 and err.max() < 8.0 and raw.mean() > 10 * err.mean()
    assert np.all(out["lo"] <= out["hr"]) and np.all(out["hr"] <= out["hi"])
    assert out["conf"][20:].mean() > 0.8 and out["std"][20:].mean() < 5.0
    assert np.abs(D.forward_backward(logits, None, cfg)["hr"] - 97.0).mean() < 2.0
    assert np.abs(D.viterbi(logits, None, cfg)[20:] - 97.0).mean() < 2.0


def test_invalid_windows_only_predict_and_widen_the_interval():
    cfg = D.DecoderCfg()
    rng = np.random.default_rng(4)
    q, _ = D.synthetic_logits(rng, 30, cfg, outlier=0.0, harmonic=0.0)
    valid = np.ones(30, bool)
    valid[15:] = False
    out = D.forward(q * cfg.logit_scale, valid, cfg)
    width = out["hi"] - out["lo"]
    assert np.all(np.diff(width[15:]) > 0)                                 # uncertainty grows while gated out
    assert abs(out["hr"][20] - out["hr"][14]) < 1.0                        # and the estimate holds


def test_estimate_transition_recovers_sigma_of_random_walks():
    rng = np.random.default_rng(5)
    seqs = [80 + np.cumsum(rng.normal(0, 3.0, 400)) for _ in range(10)]
    seqs[0][[10, 50, 51]] = np.nan                                         # NaN windows are skipped
    for s in seqs[1:4]:                                                    # a few jumps do not move a robust estimate
        s[100:] += 40
    assert D.estimate_transition(seqs, hop_s=2.0) == pytest.approx(3.0, rel=0.06)
    # truth sampled every 1 s, decoder hop 2 s: sigma per hop scales with sqrt(2)
    assert D.estimate_transition(seqs, hop_s=2.0, truth_dt_s=1.0) == pytest.approx(3.0 * math.sqrt(2), rel=0.06)
    fl = D.estimate_floor(seqs, 3.0)
    assert 1e-5 <= fl < 0.01
    with pytest.raises(SqtoolError, match="finite consecutive"):
        D.estimate_transition([np.array([80.0, np.nan, 81.0])], hop_s=2.0)


@pytest.mark.parametrize("kw, match", [
    ({"sigma_bpm": float("nan")}, "sigma_bpm"), ({"sigma_bpm": -1.0}, "sigma_bpm"), ({"sigma_bpm": 0.0}, "sigma_bpm"),
    ({"floor": -0.1}, "floor"), ({"floor": 1.0}, "floor"), ({"floor": float("nan")}, "floor"),
    ({"bins_bpm": (30.0, 230.5, 1.0)}, "whole number of bins"), ({"bins_bpm": (30.0, 20.0, 1.0)}, "bins_bpm"),
    ({"bins_bpm": (30.0, 230.0, 0.0)}, "bins_bpm"), ({"logit_scale": 0.0}, "logit_scale"),
    ({"logit_scale": -0.1}, "logit_scale"), ({"logit_scale": float("inf")}, "logit_scale"),
    ({"start": "median"}, "start"), ({"interval": 1.0}, "interval"), ({"refine_bins": 9}, "refine_bins"),
    ({"conf_measure": "entropy"}, "conf_measure"), ({"emission_floor": -0.01}, "emission_floor"),
    ({"emission_floor": 0.6}, "emission_floor"), ({"emission_floor": float("nan")}, "emission_floor"),
    ({"interval_mode": "conformal"}, "interval_mode"), ({"spread_shift": 0}, "spread_shift"),
    ({"spread_shift": 9}, "spread_shift"), ({"spread_shift": 2.5}, "spread_shift"), ({"spread_k": -0.1}, "spread_k"),
    ({"spread_k": float("nan")}, "spread_k"), ({"spread_k": 65.0}, "spread_k"), ({"spread_c_bpm": -1.0}, "spread_c_bpm"),
    ({"spread_c_bpm": 500.0}, "spread_c_bpm"), ({"bins_bpm": (1.9e6, 1.905115e6, 5.0)}, "fixed-point limit"),
])
def test_bad_configs_are_refused_in_one_line(kw, match):
    with pytest.raises(SqtoolError, match=match) as e:
        D.DecoderCfg(**kw)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kw, line", [
    ({"interval_mode": "spread", "spread_k": None}, "config key 'spread_k': cannot use None as float"),
    ({"sigma_bpm": None}, "config key 'sigma_bpm': cannot use None as float"),
    ({"spread_shift": True}, "config key 'spread_shift': cannot use True as int"),
])
def test_a_model_files_null_or_boolean_decoder_value_is_one_line_naming_its_key(kw, line):
    with pytest.raises(SqtoolError) as e:
        D.DecoderCfg.from_dict({**D.DecoderCfg().to_dict(), **kw})
    assert str(e.value) == f"decoder config: {line}" or str(e.value) == line


def test_config_round_trip_and_unknown_key():
    cfg = D.DecoderCfg(sigma_bpm=3.5, start="gaussian", start_bpm=70.0)
    assert D.DecoderCfg.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(SqtoolError, match="sigma"):
        D.DecoderCfg.from_dict({**cfg.to_dict(), "sigma": 3.0})


def test_grid_mismatch_is_refused():
    cfg = D.DecoderCfg()
    D.check_grid(cfg, 201)
    with pytest.raises(SqtoolError, match=r"200 logits.*201 bins"):
        D.check_grid(cfg, 200)
    with pytest.raises(SqtoolError, match="logits"):
        D.forward(np.zeros((3, 100)), None, cfg)
    with pytest.raises(SqtoolError, match="logits"):
        D.IntDecoder(cfg).run(np.zeros((3, 100), np.int8))


def test_tables_are_exact():
    for cfg in (D.DecoderCfg(), D.DecoderCfg(sigma_bpm=0.2, start="gaussian"), D.DecoderCfg(sigma_bpm=30.0),
                D.DecoderCfg(emission_floor=0.03), D.DecoderCfg(emission_floor=D.MAX_EMISSION_FLOOR)):
        t = D.decoder_tables(cfg)
        assert int(t["taps"][0]) + 2 * int(t["taps"][1:].sum()) == 1 << 15
        assert int(t["start"].sum()) == D.POST_ONE and int(t["lut"][0]) == D.LUT_ONE
        assert np.all(np.diff(t["lut"].astype(np.int64)) <= 0)


@pytest.mark.parametrize("scale, sigma, measure", [(0.05, 4.0, "mass"), (0.125, 2.0, "mass"), (0.125, 4.0, "mass"),
                                                   (0.25, 8.0, "mass"), (0.125, 4.0, "width"), (0.05, 6.0, "width")])
def test_int_decoder_tracks_float_forward(scale, sigma, measure):
    cfg = D.DecoderCfg(logit_scale=scale, sigma_bpm=sigma, conf_measure=measure)
    rng = np.random.default_rng(6)
    q, hr = D.synthetic_logits(rng, 200, cfg)
    valid = rng.random(200) > 0.1
    ref = D.forward(q.astype(np.float64) * scale, valid, cfg)
    out = D.IntDecoder(cfg).run(q, valid)
    assert np.all(out["post"].astype(np.int64).sum(axis=1) == D.POST_ONE)
    assert np.abs(out["hr_mbpm"] / 1000 - ref["hr"]).mean() < 0.1
    assert np.abs(out["lo_mbpm"] / 1000 - ref["lo"]).mean() < 0.1
    assert np.abs(out["hi_mbpm"] / 1000 - ref["hi"]).mean() < 0.1
    assert np.abs(out["conf_q15"] / 32768 - ref["conf"]).mean() < 0.01
    assert np.abs(out["post"] / D.POST_ONE - ref["post"]).sum(axis=1).mean() < 5e-3


def test_int_decoder_extreme_logits_and_floor_zero_restart():
    cfg = D.DecoderCfg(floor=0.0, sigma_bpm=1.0, logit_scale=0.5)
    f = cfg.n_bins
    q = np.full((6, f), -128, np.int8)
    q[1] = 127
    q[2, :] = -128
    q[2, 10] = 127                                                         # peak at 40 BPM
    q[3, :] = -128
    q[3, 190] = 127                                                        # far away: prior and likelihood disjoint
    q[4] = np.where(np.arange(f) % 2 == 0, 127, -128).astype(np.int8)
    out = D.IntDecoder(cfg).run(q, np.array([1, 1, 1, 1, 1, 0], bool))
    ref = D.forward(q.astype(np.float64) * cfg.logit_scale, np.array([1, 1, 1, 1, 1, 0], bool), cfg)
    assert np.all(out["post"].astype(np.int64).sum(axis=1) == D.POST_ONE)
    assert out["argmax"][2] == 10 and out["argmax"][3] == 190             # re-acquired despite floor = 0
    assert ref["hr"][3] == pytest.approx(220.0, abs=0.5)
    assert np.all(out["conf_q15"] <= 32768)


def test_width_confidence_is_one_minus_the_interval_width_over_the_grid():
    """conf_measure "width": the float read-out is 1 - (hi - lo) / (step F) exactly, the fixed point within one
    Q15 step of its own lo / hi; a wider interval never gets a higher confidence."""
    cfg = D.DecoderCfg(logit_scale=0.125, conf_measure="width", interval=0.8)
    q, _ = D.synthetic_logits(np.random.default_rng(3), 120, cfg)
    ref = D.forward(q.astype(np.float64) * 0.125, None, cfg)
    np.testing.assert_allclose(ref["conf"], np.maximum(0, 1 - (ref["hi"] - ref["lo"]) / (cfg.n_bins * 1.0)))
    out = D.IntDecoder(cfg).run(q)
    w = (out["hi_mbpm"].astype(np.int64) - out["lo_mbpm"]) / 1000.0
    assert np.abs(out["conf_q15"] / 32768 - (1 - w / cfg.span_bpm)).max() <= 1.5 / 32768
    order = np.argsort(w, kind="stable")
    assert np.all(np.diff(out["conf_q15"].astype(np.int64)[order]) <= 0)


@pytest.mark.parametrize("x, y, match", [
    ((0, 100), (5,), "2..16"), ((0,), (5,), "2..16"), (tuple(range(17)), tuple(range(17)), "2..16"),
    ((100, 100), (1, 2), "increase strictly"), ((0, 100), (9, 8), "not decrease"), ((0, 40000), (0, 1), "0..32768"),
    ((-1, 5), (0, 1), "0..32768"), ((0.5, 9), (0, 1), "integers"), (("a", 9), (0, 1), "integers"),
])
def test_bad_conf_calibration_knots_are_refused(x, y, match):
    with pytest.raises(SqtoolError, match=match) as e:
        D.DecoderCfg(conf_calib_x=x, conf_calib_y=y)
    assert "\n" not in str(e.value)


def test_calibrated_conf_is_the_knots_map_of_the_raw_conf_in_float_and_fixed_point():
    """The fixed point applies the knots to its own raw conf_q15 (integer interpolation, constant outside the
    knots); the float decoder the same map to its raw conf; a config round-trips through its dict (JSON lists)."""
    xs, ys = (20000, 30000, 32000, 32600), (25000, 31000, 32300, 32700)
    raw_cfg = D.DecoderCfg(logit_scale=0.125, conf_halfwidth_bpm=8.0)
    cfg = D.DecoderCfg(logit_scale=0.125, conf_halfwidth_bpm=8.0, conf_calib_x=xs, conf_calib_y=ys)
    assert D.DecoderCfg.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    q, _ = D.synthetic_logits(np.random.default_rng(4), 300, cfg, outlier=0.4)
    raw = D.IntDecoder(raw_cfg).run(q)["conf_q15"].astype(np.int64)
    cal = D.IntDecoder(cfg).run(q)["conf_q15"].astype(np.int64)
    assert raw.min() < xs[0] and raw.max() > xs[-1] and len(np.unique(raw)) > 50      # every branch is taken
    np.testing.assert_array_equal(cal, [D._calibrate_q15(int(r), list(xs), list(ys)) for r in raw])
    assert np.abs(cal - np.interp(raw, xs, ys)).max() <= 0.5 + 1e-9
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(cal[order]) >= 0)
    f_raw = D.forward(q * 0.125, None, raw_cfg)["conf"]
    np.testing.assert_allclose(D.forward(q * 0.125, None, cfg)["conf"], np.interp(f_raw * 32768, xs, ys) / 32768)
    assert "expected |error|" in cfg.conf_text and "mass within +-8" in cfg.conf_text


def test_fit_conf_calibration_puts_two_models_confidences_on_one_scale():
    """Two models whose raw confidences rank their own windows equally well but on different scales (a mass
    within +-3 BPM vs +-12 BPM): pooled, the raw values rank the windows badly; calibrated on each model's own
    windows (1 - expected error / span), they rank the pool as well as each model alone, and the calibrated
    value is the windows' mean error."""
    rng = np.random.default_rng(0)
    span = 134.0
    errs = [rng.exponential(2.0, 3000) * rng.choice([1, 6], 3000, p=[0.85, 0.15]) for _ in range(2)]
    raws = [np.clip(1 - e / 60 + rng.normal(0, 0.01, 3000), 0, 1) for e in errs]
    raws[1] = raws[1] ** 8                                                  # same order, another scale
    gating = lambda s, e: 1 - e[s >= np.quantile(s, 0.2)].mean() / e.mean()   # noqa: E731
    cals = []
    for raw, e in zip(raws, errs):
        knots = D.fit_conf_calibration(raw[:1500], e[:1500], span)          # fitted on one half, used on the other
        assert len(knots["conf_calib_x"]) >= 8
        cals.append(D.DecoderCfg(**knots).calibrate_conf(raw[1500:]))
    e_pool = np.concatenate([e[1500:] for e in errs])
    g_raw = gating(np.concatenate([r[1500:] for r in raws]), e_pool)
    g_cal = gating(np.concatenate(cals), e_pool)
    g_own = np.mean([gating(r[1500:], e[1500:]) for r, e in zip(raws, errs)])
    assert g_cal > g_raw + 0.1 and g_cal > g_own - 0.03
    for c, e in zip(cals, errs):                                            # calibration in the large
        assert np.mean((1 - c) * span) == pytest.approx(e[1500:].mean(), rel=0.15)
    assert D.fit_conf_calibration(np.full(50, 0.7), np.ones(50), span) == {}     # one distinct value: no map
    assert D.fit_conf_calibration(np.zeros(0), np.zeros(0), span) == {}
    with pytest.raises(SqtoolError, match="finite"):
        D.fit_conf_calibration(np.ones(5), np.array([1.0, np.nan, 1.0, 1.0, 1.0]), span)


def test_conf_calibration_keeps_the_measures_order_where_the_fit_is_flat():
    """Inner windows whose error does not fall with the raw conf (isotonic fit flat): the map still rises
    (slope >= CALIB_RAMP, end knots at 0 and 1), so the calibrated conf ranks windows exactly as the raw one,
    and its stated mean error is the windows' mean error."""
    rng = np.random.default_rng(1)
    span = 201.0
    raw, e = rng.uniform(0.6, 0.99, 2000), rng.exponential(12.0, 2000)      # no trend
    knots = D.fit_conf_calibration(raw, e, span)
    x, y = np.array(knots["conf_calib_x"]), np.array(knots["conf_calib_y"])
    assert x[0] == 0 and x[-1] == 32768 and len(x) <= D.MAX_CALIB_KNOTS
    assert np.all(np.diff(y) >= np.floor(D.CALIB_RAMP * np.diff(x)))
    cal = D.DecoderCfg(**knots).calibrate_conf(raw)
    order = np.argsort(raw)
    assert np.all(np.diff(cal[order]) > 0)                                  # no ties: the raw order, kept
    assert np.mean((1 - cal) * span) == pytest.approx(e.mean(), rel=0.05)
    q = [D._calibrate_q15(int(v), list(x), list(y)) for v in np.sort(np.round(raw * 32768).astype(int))]
    assert np.all(np.diff(q) >= 0) and len(set(q)) > 0.9 * len(q) / 64    # the C's integer map rises too


# ----------------------------------------------------------------------------- evidence: motion-subtracted PPG

def _motion_case(cfg: D.DecoderCfg, hr: float = 150.0, cad: float = 100.0, n: int = 40):
    """Network logits with EQUAL peaks at the pulse and at the arm's cadence (a network fooled by the motion),
    and front-end spectra: the PPG has both peaks, the accelerometer only the cadence. (W, F) int8, (W, F, 4) int8."""
    b = cfg.centres
    peak = lambda c: np.exp(-0.5 * ((b - c) / 3.0) ** 2)                  # noqa: E731
    lg = np.round(-100 + 100 * np.maximum(peak(hr), peak(cad)))             # (F,)
    logits = np.tile(np.clip(lg, -128, 127), (n, 1)).astype(np.int8)
    spec = np.full((n, cfg.n_bins, 4), -127, np.int64)
    spec[:, :, 0] += np.round(254 * np.maximum(0.6 * peak(hr), peak(cad))).astype(np.int64)
    spec[:, :, 1:] += np.round(254 * peak(cad)).astype(np.int64)[None, :, None]
    return logits, np.clip(spec, -127, 127).astype(np.int8)


def test_evidence_codes_are_the_ppg_above_the_strongest_axis():
    spec = np.array([[[127, -127, 0, 50], [-127, 127, 127, 127], [0, -127, -127, -127]]], np.int8)   # (1, 3, 4)
    assert D.evidence_codes(spec).tolist() == [[77, 0, 127]]
    assert D.evidence_codes(spec[:, :, :1].copy()).tolist() == [[254, 0, 127]]           # PPG only: acc silent
    with pytest.raises(SqtoolError, match="int8 spectra"):
        D.evidence_codes(spec.astype(np.int16))


def test_evidence_moves_the_estimate_off_the_accelerometer_peak_in_float_and_fixed_point():
    cfg = D.DecoderCfg(bins_bpm=(30.0, 229.5, 1.5), logit_scale=0.1, evidence_weight=1.0)
    plain = D.DecoderCfg(**{**cfg.to_dict(), "evidence_weight": 0.0})
    logits, spec = _motion_case(cfg)
    ev = D.evidence_codes(spec)
    hr_ev = D.forward(logits * 0.1, None, cfg, ev)["hr"]
    hr_plain = D.forward(logits * 0.1, None, plain)["hr"]
    assert np.all(np.abs(hr_ev[5:] - 150.0) < 2.0)                         # the pulse
    assert np.all(np.abs(hr_plain[5:] - 100.0) < 2.0)                      # a tie: the first (cadence) peak
    hr_int = D.IntDecoder(cfg).run(logits, None, ev)["hr_mbpm"] / 1000.0
    assert np.max(np.abs(hr_int - hr_ev)) < 0.2
    # the dict helpers read the spectra themselves; a decoder without evidence ignores them
    assert np.allclose(D.decode_float(logits * 0.1, cfg.to_dict(), spec=spec)["hr"], hr_ev)
    assert np.array_equal(D.decode_int(logits, plain.to_dict(), 0.1, spec=spec)["hr"],
                          D.decode_int(logits, plain.to_dict(), 0.1)["hr"])


def test_evidence_decoder_refuses_missing_or_misshapen_spectra():
    cfg = D.DecoderCfg(bins_bpm=(30.0, 229.5, 1.5), evidence_weight=0.5)
    logits, spec = _motion_case(cfg, n=3)
    with pytest.raises(SqtoolError, match="pass the window's front-end spectra"):
        D.forward(logits * 0.1, None, cfg)
    with pytest.raises(SqtoolError, match="pass the window's front-end spectra"):
        D.IntDecoder(cfg).run(logits)
    with pytest.raises(SqtoolError, match=r"evidence must be \(3, 134\)"):
        D.IntDecoder(cfg).run(logits, None, D.evidence_codes(spec)[:, :10])
    out = D.IntDecoder(cfg).run(logits, np.zeros(3, bool), D.evidence_codes(spec))     # gated-out: not read
    assert not out["valid"].any()


@pytest.mark.parametrize("kw, match", [({"evidence_weight": -0.5}, "evidence_weight"),
                                       ({"evidence_weight": float("nan")}, "evidence_weight"),
                                       ({"evidence_weight": 9.0}, "evidence_weight"),
                                       ({"evidence_floor": 0.0}, "evidence_floor")])
def test_bad_evidence_configs_are_refused(kw, match):
    with pytest.raises(SqtoolError, match=match):
        D.DecoderCfg(**kw)


def test_evidence_penalty_table_is_zero_off_motion_and_clipped():
    cfg = D.DecoderCfg(logit_scale=0.05, evidence_weight=1.0, evidence_floor=0.02)
    t = D.decoder_tables(cfg)
    assert int(t["evidence"]) == 1 and t["pen"].dtype == np.uint8 and len(t["pen"]) == 255
    assert t["pen"][254] == 0 and np.all(np.diff(t["pen"].astype(int)) <= 0)
    assert t["pen"][0] == min(255, round(-math.log(0.02 / 1.02) / 0.05))
    assert int(D.decoder_tables(D.DecoderCfg())["evidence"]) == 0


def _peak_vs_plateau(cfg: D.DecoderCfg, n: int = 40, seed: int = 0) -> np.ndarray:
    """int8 logits (n, F) of a fixed 60-BPM pulse that the network reads as a narrow peak on 3 of 4 windows,
    against a broad, weaker plateau at 100-120 BPM on every window; on every 4th window the network misreads
    the pulse (it stays on the plateau only). The pulse is the truth."""
    rng = np.random.default_rng(seed)
    c = cfg.centres
    x = np.full((n, cfg.n_bins), -60.0)
    x[:, (c >= 100) & (c <= 120)] = 0.0                                    # the plateau: 21 bins at one level
    pulse = np.flatnonzero(np.abs(c - 60) <= 1)                            # the peak: 3 bins
    for t in range(n):
        if t % 4 != 3:
            x[t, pulse] = 40.0
    x += rng.normal(0, 1.0, x.shape)
    return np.clip(np.round(x), -127, 127).astype(np.int8)


def test_emission_floor_keeps_a_narrow_pulse_that_a_temperature_loses_to_a_broad_plateau():
    """A temperature flattens every ratio: at T = 3 with a wide transition the plateau's summed mass wins over a
    narrow peak the network finds on 3 windows of 4. An emission floor instead bounds what one misread window
    costs and keeps the ratios it reads: the pulse is tracked. Float and fixed point agree."""
    scale = 0.125
    base = D.DecoderCfg(logit_scale=scale, sigma_bpm=6.0, floor=1e-2)
    q = _peak_vs_plateau(base)
    hot = D.decode_float(q * scale, {**base.to_dict(), "temperature": 3.0})["hr"]
    assert np.median(np.abs(hot[8:] - 60.0)) > 30                           # the temperature: lost to the plateau
    robust = {**base.to_dict(), "emission_floor": 0.03}
    hr = D.decode_float(q * scale, robust)["hr"]
    assert np.all(np.abs(hr[8:] - 60.0) < 2.0)                              # the floor: the pulse on every window
    hr_int = D.decode_int(q, robust, scale)["hr"]
    assert np.max(np.abs(hr_int - hr)) < 0.2
    # without a floor and at temperature 1 each misread window is 100 int8 logits (12.5 real) against the pulse:
    # the belief leaves the pulse on some of them; the floor caps that at ln(1 / 0.03) = 3.5
    plain = D.decode_float(q * scale, base.to_dict())["hr"]
    assert np.sum(np.abs(plain[8:] - 60.0) > 10) > np.sum(np.abs(hr[8:] - 60.0) > 10)


def test_emission_floor_lut_is_the_floored_likelihood():
    cfg = D.DecoderCfg(logit_scale=0.1, emission_floor=0.05)
    lut = D.decoder_tables(cfg)["lut"].astype(np.float64) / D.LUT_ONE
    want = (np.exp(-0.1 * np.arange(256)) + 0.05) / 1.05
    assert np.max(np.abs(lut - want)) <= 0.5 / D.LUT_ONE
    assert lut[-1] >= 0.05 / 1.05 - 1e-6                                   # no bin below the floor
    assert "emission floor" in cfg.emission_text and "emission floor" not in D.DecoderCfg().emission_text


# ----------------------------------------------------------------------------- the spread interval

SPREAD = dict(interval_mode="spread", spread_shift=3, spread_c_bpm=1.5, spread_k=2.25)


def test_spread_track_starts_at_the_first_scored_window_and_holds_over_the_others():
    hr = np.array([80.0, 80.0, 80.0, 80.0, 80.0])
    am = np.array([90.0, 100.0, 60.0, 60.0, 84.0])
    valid = np.array([False, True, False, True, True])
    s = D.spread_track(hr, am, valid, shift=1)                              # weight 1/2
    np.testing.assert_allclose(s, [0.0, 20.0, 20.0, 20.0, 12.0])         # 0 before; 20; held; (20+20)/2; (20+4)/2


def test_spread_interval_is_hr_plus_minus_c_plus_k_s_in_float_and_fixed_point():
    """lo, hi = hr -+ (c + k S) within the grid: the float read-out from its definition, the fixed point within
    0.01 BPM of it on network-like logits with gaps; the posterior interval's decoder gives the same hr (the
    interval does not feed back), and the width confidence still reads the posterior's interval."""
    cfg = D.DecoderCfg(logit_scale=0.1, sigma_bpm=4.0, interval=0.6, conf_measure="width", **SPREAD)
    post_cfg = D.DecoderCfg(logit_scale=0.1, sigma_bpm=4.0, interval=0.6, conf_measure="width")
    rng = np.random.default_rng(3)
    q, _ = D.synthetic_logits(rng, 300, cfg)
    valid = rng.random(300) > 0.15
    valid[:3] = False
    f = D.forward(q.astype(np.float64) * cfg.logit_scale, valid, cfg)
    fp = D.forward(q.astype(np.float64) * cfg.logit_scale, valid, post_cfg)
    np.testing.assert_array_equal(f["hr"], fp["hr"])
    np.testing.assert_array_equal(f["conf"], fp["conf"])
    s = D.spread_track(f["hr"], cfg.centres[q.argmax(1)], valid, cfg.spread_shift)
    np.testing.assert_allclose(f["hi"], np.minimum(f["hr"] + 1.5 + 2.25 * s, 230.5))    # the grid's extent
    np.testing.assert_allclose(f["lo"], np.maximum(f["hr"] - 1.5 - 2.25 * s, 29.5))
    assert (s[:3] == 0).all() and s.max() > 5                               # held at 0 until the first scored window
    r = D.IntDecoder(cfg).run(q, valid)
    rp = D.IntDecoder(post_cfg).run(q, valid)
    for k in ("hr_mbpm", "conf_q15", "argmax"):
        np.testing.assert_array_equal(r[k], rp[k])
    assert not np.array_equal(r["hi_mbpm"], rp["hi_mbpm"])
    pos = (r["lo_mbpm"] > 29500) & (r["hi_mbpm"] < 230500)                # not clamped
    assert pos.mean() > 0.9
    np.testing.assert_array_equal((r["hi_mbpm"] - r["hr_mbpm"])[pos], (r["hr_mbpm"] - r["lo_mbpm"])[pos])
    d = np.abs(r["hi_mbpm"] / 1000 - f["hi"])                             # a near-tie window may take another bin
    assert np.median(d) < 0.002 and d.mean() < 0.05

def _edge_logits(cfg: D.DecoderCfg, n: int = 80) -> np.ndarray:
    """int8 (n, F) logits whose track sits on the grid's sixth bin, then on its sixth from the top, while the network's
    own reading jumps to the far end every fourth window and a railed window (all logits equal: argmax bin 0) comes
    every seventh: S grows, and hr -+ (c + k S) reaches past the grid's lower edge, then past its upper one."""
    f = cfg.n_bins
    q = np.full((n, f), -100, np.int8)
    for t in range(n):
        home, far = (5, f - 1) if t < n // 2 else (f - 6, 0)
        q[t, far if t % 4 == 3 else home] = 127
        if t % 7 == 6:
            q[t] = 0                                                       # railed: a flat window
    return q


@pytest.mark.parametrize("bins", [(30.0, 230.0, 1.0), (40.0, 139.9, 0.333)])
def test_spread_interval_is_clamped_to_the_grids_extent_in_float_and_fixed_point(bins):
    """A spread interval that would reach past the grid (a tester's `sqtool predict` row: hr 199.5, [0, 965.5] BPM)
    is cut at the grid's extent [b_0 - step/2, b_(F-1) + step/2], the edges of what the network reads, and still
    holds hr; in fixed point the edges are whole milli-BPM, a half step rounded outwards (0.333 BPM: 166.5 -> 167)."""
    cfg = D.DecoderCfg(bins_bpm=bins, logit_scale=0.1, sigma_bpm=2.0, floor=1e-4, **SPREAD)
    e0, e1 = cfg.edges_bpm
    assert (e0, e1) == pytest.approx((bins[0] - bins[2] / 2, bins[1] + bins[2] / 2))
    m0, m1 = (29500, 230500) if bins[2] == 1.0 else (39833, 140067)
    q = _edge_logits(cfg)
    valid = np.ones(len(q), bool)
    valid[[10, 50]] = False
    f = D.forward(q.astype(np.float64) * cfg.logit_scale, valid, cfg)
    h = 1.5 + 2.25 * D.spread_track(f["hr"], cfg.centres[q.argmax(1)], valid, cfg.spread_shift)
    assert (f["hr"] - h < e0).any() and (f["hr"] + h > e1).any()           # the windows push past both edges
    np.testing.assert_allclose(f["lo"], np.maximum(f["hr"] - h, e0))
    np.testing.assert_allclose(f["hi"], np.minimum(f["hr"] + h, e1))
    assert (f["lo"] == e0).any() and (f["hi"] == e1).any()
    assert (f["lo"] <= f["hr"]).all() and (f["hr"] <= f["hi"]).all()
    r = D.IntDecoder(cfg).run(q, valid)
    lo, hr, hi = (r[k].astype(np.int64) for k in ("lo_mbpm", "hr_mbpm", "hi_mbpm"))
    assert lo.min() == m0 and hi.max() == m1                               # each edge reached, never passed
    assert (lo <= hr).all() and (hr <= hi).all()
    free = (lo > m0) & (hi < m1)
    assert free.any() and (hi - hr == hr - lo)[free].all()                 # centred on hr where not cut
    assert ((hi - hr >= hr - lo) | (hi == m1))[lo == m0].all()             # a cut side is the shorter one
    assert ((hr - lo >= hi - hr) | (lo == m0))[hi == m1].all()
    post = D.DecoderCfg(**{**cfg.to_dict(), "interval_mode": "posterior"})
    np.testing.assert_array_equal(r["hr_mbpm"], D.IntDecoder(post).run(q, valid)["hr_mbpm"])
    assert np.median(np.abs(lo / 1000 - f["lo"])) < 0.002 and np.median(np.abs(hi / 1000 - f["hi"])) < 0.002
    res = D.decode_int(q, cfg.to_dict(), cfg.logit_scale, valid)           # sqtool predict's fixed-point path
    assert res["lo"].min() == m0 / 1000 and res["hi"].max() == m1 / 1000


def test_the_posterior_interval_never_leaves_the_grid_and_fit_spread_interval_knows_the_clamp():
    """The posterior interval reads its CDF within the bins' edges (float and fixed point, random logits and all of
    the mass on the first or the last bin), so only the spread interval needed the clamp; the spread fit counts a
    truth beyond the grid as not held, as the device's clamped interval does not hold it."""
    cfg = D.DecoderCfg(logit_scale=0.3, sigma_bpm=2.0, floor=1e-4, interval=0.9999)
    rng = np.random.default_rng(5)
    q = rng.integers(-128, 128, (200, cfg.n_bins))
    q[:40] = -128
    q[:20, 0], q[20:40, -1] = 127, 127                                     # the posterior piled on an end bin
    q = q.astype(np.int8)
    f = D.forward(q.astype(np.float64) * cfg.logit_scale, None, cfg)
    assert f["lo"].min() >= 29.5 and f["hi"].max() <= 230.5 and f["lo"].min() < 30 and f["hi"].max() > 230
    r = D.IntDecoder(cfg).run(q)
    assert r["lo_mbpm"].min() >= 29500 and r["hi_mbpm"].max() <= 230500
    hr, truth = [np.full(50, 228.0)], [np.full(50, 240.0)]
    fit = D.fit_spread_interval(hr, [hr[0] + 1.0], truth, ["s"], shifts=(4,), cs=(0.0,))
    assert fit is not None and fit["coverage"] == 1.0                      # unclamped, k = 11.5 "holds" 240 BPM
    assert D.fit_spread_interval(hr, [hr[0] + 1.0], truth, ["s"], shifts=(4,), cs=(0.0,),
                                 edges_bpm=D.DecoderCfg().edges_bpm) is None


def test_a_posterior_decoders_dict_has_no_spread_keys_and_a_spread_one_round_trips():
    post = D.DecoderCfg(sigma_bpm=3.0)
    assert not set(D.SPREAD_KEYS) & set(post.to_dict())                   # its metadata and tables text unchanged
    assert D.DecoderCfg.from_dict(post.to_dict()) == post
    off = D.DecoderCfg(sigma_bpm=3.0, spread_shift=6, spread_k=2.0)        # spread fields with no spread interval
    assert off == post and D.DecoderCfg.from_dict(off.to_dict()) == off
    assert D.decoder_tables(off)["spread_shift"] == D.decoder_tables(post)["spread_shift"]
    sp = D.DecoderCfg(sigma_bpm=3.0, **SPREAD)
    assert D.DecoderCfg.from_dict(sp.to_dict()) == sp and sp.to_dict()["interval_mode"] == "spread"
    t = D.decoder_tables(sp)
    assert (int(t["spread"]), int(t["spread_shift"]), int(t["spread_c_mbpm"]), int(t["spread_k_q8"])) == (1, 3, 1500, 576)
    assert "2.25 S" in sp.interval_text and "central posterior mass 90 %" == post.interval_text


def _two_wearers(rng, n=400):
    """Two subjects' decoded tracks: A's errors small and the network agreeing with the track, B's errors large
    in stretches where the network argues with it."""
    hr, am, ys, gs = [], [], [], []
    for subject, (err_sd, argue) in {"a": (0.8, 0.5), "b": (4.0, 6.0)}.items():
        for rec in range(2):
            y = 90 + np.cumsum(rng.normal(0, 1, n))
            h = y + rng.normal(0, err_sd, n)
            hr.append(h)
            am.append(h + rng.normal(0, argue, n))
            ys.append(y)
            gs.append(subject)
    return hr, am, ys, gs


def test_fit_spread_interval_holds_the_coverage_for_each_wearer_where_one_width_cannot():
    rng = np.random.default_rng(0)
    hr, am, ys, gs = _two_wearers(rng)
    fit = D.fit_spread_interval(hr, am, ys, gs, coverage=0.9)
    assert fit["coverage"] >= 0.9 and fit["spread_k"] > 0
    assert all(abs(v - 0.9) < 0.04 for v in fit["per_subject"].values()), fit["per_subject"]
    # one constant width (k = 0) reaching 90 % pooled over-covers A and under-covers B
    e = np.abs(np.concatenate(hr) - np.concatenate(ys)) - 0.5
    c = np.quantile(e, 0.9)
    g = np.concatenate([[s] * len(h) for s, h in zip(gs, hr)])
    assert np.mean(e[g == "a"] <= c) > 0.97 and np.mean(e[g == "b"] <= c) < 0.83
    assert fit["dev"] < 0.5 * np.mean([abs(np.mean(e[g == s] <= c) - 0.9) for s in "ab"])
    # the fitted k is on the fixed point's grid
    assert fit["spread_k"] * 256 == int(fit["spread_k"] * 256)
    assert D.fit_spread_interval([], [], [], []) is None


@pytest.mark.parametrize("n", [10, 30, 1000])
def test_fit_spread_interval_takes_the_least_k_that_reaches_the_coverage(n):
    # the network argues by 1 BPM everywhere (S = 1), the track errs by (i + 1) / n x 10 BPM on window i: with
    # c = 0 the least k holding 90 % is the 90 % point itself, one window more is not needed
    hr = np.full(n, 100.0)
    y = hr + 10.0 * (np.arange(n) + 1) / n
    fit = D.fit_spread_interval([hr], [hr + 1.0], [y], ["s"], coverage=0.9, slack_bpm=0.0, shifts=(4,), cs=(0.0,))
    assert fit["coverage"] == pytest.approx(0.9)
    assert fit["spread_k"] == math.ceil(9.0 * 256 - 1e-9) / 256


def _readout_one_window(p, cfg):
    """The module docstring's read-out of one posterior p (F,), written out window by window: the reference the
    vectorised `summarise` must equal to the last bit."""
    b, step, f = cfg.centres, cfg.bins_bpm[2], len(p)
    a = int(np.argmax(p))
    i0, i1 = max(0, a - cfg.refine_bins), min(f - 1, a + cfg.refine_bins)
    hr = b[a] + step * float(((np.arange(i0, i1 + 1) - a) * p[i0:i1 + 1]).sum() / p[i0:i1 + 1].sum())
    c = np.cumsum(p)
    ends = []
    for q in ((1 - cfg.interval) / 2, (1 + cfg.interval) / 2):
        j = min(int(np.searchsorted(c, q * c[-1], side="left")), f - 1)
        prev = c[j - 1] if j > 0 else 0.0
        ends.append(b[j] + step * ((q * c[-1] - prev) / p[j] - 0.5) if p[j] > 0 else b[j])
    lo, hi = min(ends[0], hr), max(ends[1], hr)
    cw = cfg.conf_bins
    conf = (max(0.0, 1.0 - (hi - lo) / cfg.span_bpm) if cfg.conf_measure == "width"
            else p[max(0, a - cw):a + cw + 1].sum() / c[-1])
    mu = (p * b).sum() / c[-1]
    return hr, lo, hi, conf, math.sqrt(max(0.0, float((p * (b - mu) ** 2).sum() / c[-1])))


@pytest.mark.parametrize("kw", [{}, {"conf_measure": "width"}, {"refine_bins": 0}, {"refine_bins": 3},
                                {"conf_halfwidth_bpm": 12.0, "interval": 0.5},
                                {"conf_calib_x": [0.0, 16384.0, 32768.0], "conf_calib_y": [0.0, 8000.0, 32768.0]}])
def test_summarise_reads_every_window_as_the_read_out_of_one_window(kw):
    """`summarise` reads all windows at once (its loop over windows was most of a decoder selection's time): the
    same numbers, bit for bit, as the read-out window by window, also where the argmax sits at the grid's edges
    (its refine and conf windows clipped), on ties, on a flat posterior and on posteriors with empty bins."""
    cfg = D.DecoderCfg(bins_bpm=(30.0, 229.5, 1.5), **kw)
    rng = np.random.default_rng(0)
    post = rng.random((300, cfg.n_bins)) ** rng.uniform(1, 40, (300, 1))
    post[rng.random(post.shape) < 0.3] = 0.0
    post[0], post[1], post[2], post[3] = 0.0, 0.0, 0.0, 1.0
    post[0, 0] = post[1, -1] = 1.0                                         # argmax on the first and the last bin
    post[2, :3] = post[2, -2:] = 5.0                                       # ties, at both edges
    post[4:40, :4] += 50.0 * rng.random((36, 4))                           # argmax near the low edge
    post[40:80, -4:] += 50.0 * rng.random((40, 4))                         # near the high edge
    post /= post.sum(axis=1, keepdims=True)
    got = D.summarise(post, cfg)
    want = np.array([_readout_one_window(p, cfg) for p in post])           # (W, 5)
    want[:, 3] = cfg.calibrate_conf(want[:, 3])
    for i, k in enumerate(("hr", "lo", "hi", "conf", "std")):
        assert got[k].shape == (len(post),) and np.array_equal(got[k], want[:, i]), k
    assert all(len(v) == 0 for v in D.summarise(np.zeros((0, cfg.n_bins)), cfg).values())
