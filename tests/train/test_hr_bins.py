"""Heart-rate-bin training: targets, shift augmentation, learning a spectral peak, decoder selection."""
import json

import numpy as np
import pytest
import torch

from sqtool.core import SqtoolError
from sqtool.models import create_model, get_model_cfg
from sqtool.models.spectral import bin_grid
from sqtool.models.hr_bins import (BinTrainCfg, evidence_args, gaussian_targets, inject_motion, kd_gate, predict_logits,
                                  select_decoder, shift_batch, train_bins)


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
    x = np.full((n, cfg.in_channels, len(bins)), -1.0, np.float32)
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


def _walk_logits(cfg, step_bpm, noise_bpm, n_subjects=5, seed=0):
    """Per subject: a random-walk truth (step_bpm per hop) and logits peaked around it (+- noise_bpm)."""
    bins = bin_grid(cfg)
    rng = np.random.default_rng(seed)
    logits, truth = [], []
    for _ in range(n_subjects):
        hr = np.clip(100 + np.cumsum(rng.normal(0, step_bpm, 60)), 50, 180)
        logits.append((-0.5 * ((bins[None] - hr[:, None] - rng.normal(0, noise_bpm, (60, 1))) / 4.0) ** 2)
                      .astype(np.float32))
        truth.append(hr)
    return logits, truth, [f"s{i}" for i in range(n_subjects)]


@pytest.mark.parametrize("step_bpm,noise_bpm", [(1.0, 6.0), (8.0, 3.0)])
def test_one_se_rule_keeps_the_fitted_prior_unless_another_is_clearly_better(step_bpm, noise_bpm):
    cfg = get_model_cfg("spec_student_xs")
    logits, truth, groups = _walk_logits(cfg, step_bpm, noise_bpm)
    base = {"bins_bpm": list(cfg.arch["bins_bpm"]), "sigma_bpm": 1.0, "floor": 1e-3, "logit_scale": 1.0}
    grid = dict(sigmas=(1.0, 2.0, 8.0), floors=(1e-3,), temperatures=(1.0, 3.0), emission_floors=(0.0,))
    lo = select_decoder(logits, truth, groups, base, rule="min", **grid)
    se = select_decoder(logits, truth, groups, base, rule="one_se", **grid)
    assert lo["inner_rule"] == "min" and se["inner_rule"] == "one_se"
    assert lo["inner_mae"] == lo["inner_mae_min"] == se["inner_mae_min"] <= se["inner_mae"]
    if step_bpm == 1.0:      # noisy logits: temperature 3 is lowest by 0.1 BPM, within noise -> the softmax as is
        assert lo["temperature"] == 3.0 and se["temperature"] == 1.0
        assert se["inner_mae"] - lo["inner_mae"] < 0.2
    else:                    # the truth jumps 8 BPM a hop: a 1-BPM transition is clearly worse, not chosen
        assert se["sigma_bpm"] == lo["sigma_bpm"] == 8.0


def test_interval_is_calibrated_on_the_named_subjects_only():
    """Two easy subjects (logits within 1.5 BPM) and three hard ones (within 12 BPM): calibrated on the hard ones,
    the interval needs more mass and covers their windows; the decoder's transition is chosen on all five."""
    cfg = get_model_cfg("spec_student_xs")
    easy = _walk_logits(cfg, 1.0, 1.5, n_subjects=2, seed=1)
    hard = _walk_logits(cfg, 1.0, 12.0, n_subjects=3, seed=2)
    logits, truth = easy[0] + hard[0], easy[1] + hard[1]
    groups = ["easy0", "easy1", "hard0", "hard1", "hard2"]
    base = {"bins_bpm": list(cfg.arch["bins_bpm"]), "sigma_bpm": 1.0, "floor": 1e-3, "logit_scale": 1.0}
    grid = dict(sigmas=(1.0,), floors=(1e-3,), temperatures=(1.0,))
    pooled = select_decoder(logits, truth, groups, base, **grid)
    on_hard = select_decoder(logits, truth, groups, base, calibrate_groups={"hard0", "hard1", "hard2"}, **grid)
    on_easy = select_decoder(logits, truth, groups, base, calibrate_groups={"easy0", "easy1"}, **grid)
    assert on_hard["inner_mae"] == pooled["inner_mae"]                    # step 1 reads every subject
    assert on_easy["interval"] < pooled["interval"] < on_hard["interval"]
    assert on_hard["inner_calibration_windows"] == 180 and pooled["inner_calibration_windows"] == 300
    with pytest.raises(SqtoolError, match="no training subject among the calibration subjects"):
        select_decoder(logits, truth, groups, base, calibrate_groups={"s9"}, **grid)
    # calibration_logits: the interval is calibrated on other logits of the same recordings (students that erred
    # less: the easy subjects' sharper logits in place of the hard ones'), the decoder's choice is not
    hard_set = {"hard0", "hard1", "hard2"}
    same = select_decoder(logits, truth, groups, base, calibrate_groups=hard_set, calibration_logits=logits, **grid)
    assert same["interval"] == on_hard["interval"] and same["inner_mae"] == on_hard["inner_mae"]
    sharper = _walk_logits(cfg, 1.0, 1.5, n_subjects=3, seed=2)
    assert all(np.allclose(a, b) for a, b in zip(sharper[1], hard[1]))                  # the same truth
    cal = [None, None, *sharper[0]]
    on_sharper = select_decoder(logits, truth, groups, base, calibrate_groups=hard_set, calibration_logits=cal, **grid)
    assert on_sharper["inner_mae"] == on_hard["inner_mae"] and on_sharper["interval"] < on_hard["interval"]
    with pytest.raises(SqtoolError, match="one array per calibration recording"):
        select_decoder(logits, truth, groups, base, calibrate_groups=hard_set, calibration_logits=[None] * 5, **grid)


def test_select_decoder_refuses_an_unknown_rule():
    cfg = get_model_cfg("spec_student_xs")
    logits, truth, groups = _walk_logits(cfg, 1.0, 3.0, n_subjects=2)
    base = {"bins_bpm": list(cfg.arch["bins_bpm"]), "sigma_bpm": 1.0, "floor": 1e-3, "logit_scale": 1.0}
    with pytest.raises(SqtoolError, match="rule must be one of"):
        select_decoder(logits, truth, groups, base, rule="best")


# ----------------------------------------------------------------------------- frequency stretch

from sqtool.models.decoder import DecoderCfg, conf_mass, decode_float, needed_mass, summarise  # noqa: E402
from sqtool.models.hr_bins import stretch_batch, stretch_factors, stretch_spectra  # noqa: E402

BINS = np.arange(30.0, 231.0, 1.0)


def _pulse(hr, harmonic=True):
    """(1, 2, F) codes/127: a pulse peak at hr and its second harmonic, empty elsewhere."""
    x = -np.ones((1, 2, len(BINS)))
    x[0, :] += 2 * np.exp(-0.5 * ((BINS - hr) / 2.0) ** 2)
    if harmonic:
        x[0, :] += 1.0 * np.exp(-0.5 * ((BINS - 2 * hr) / 2.0) ** 2)
    return torch.as_tensor(np.clip(x, -1, 1), dtype=torch.float32)


def test_stretch_by_one_is_the_identity():
    x = torch.rand(3, 4, len(BINS)) * 2 - 1
    k = torch.randn(3, len(BINS))
    y = torch.tensor([60.0, 100.0, 170.0], dtype=torch.float64)
    xs, ts, ks = stretch_batch(x, y, torch.ones(3, dtype=torch.float64), BINS, 3.0, k)
    assert torch.equal(xs, x) and torch.equal(ks, k)
    assert np.allclose(ts.numpy(), gaussian_targets(y.numpy(), BINS, 3.0))


@pytest.mark.parametrize("s", [0.55, 0.8, 1.3, 1.9])
def test_stretch_moves_truth_peak_and_harmonic_together(s):
    x = _pulse(80.0)
    y = torch.tensor([80.0], dtype=torch.float64)
    xs, ts, _ = stretch_batch(x, y, torch.tensor([s], dtype=torch.float64), BINS, 3.0)
    f0 = BINS[xs[0, 0].argmax()]
    assert abs(f0 - 80.0 * s) <= 1.0 and abs(BINS[ts[0].argmax()] - 80.0 * s) <= 0.5
    assert torch.equal(xs[0, 0], xs[0, 1])                           # every channel alike
    if 160 * s <= 229:                                                # the harmonic stays at twice the pulse
        hm = BINS[np.argmax(np.where(BINS > 1.5 * f0, xs[0, 0].numpy(), -2))]
        assert abs(hm - 160.0 * s) <= 1.0
    src = BINS / s                                                   # bins whose source is off the grid: empty
    assert (xs[0, :, (src < 30 - 1e-9) | (src > 230 + 1e-9)] == -1).all()


def test_stretch_fills_teacher_logits_with_the_row_minimum_and_factors_hit_the_range():
    k = torch.randn(2, len(BINS))
    ks = stretch_spectra(k, torch.tensor([0.5, 2.0], dtype=torch.float64), BINS, k.min(dim=1).values)
    assert torch.allclose(ks[0, -10:], k[0].min().expand(10)) and torch.allclose(ks[1, :10], k[1].min().expand(10))
    y = torch.full((4000,), 100.0, dtype=torch.float64)
    s = stretch_factors(y, BinTrainCfg(stretch_bpm=(40.0, 210.0), stretch_max=2.0), torch.Generator().manual_seed(0))
    assert s.min() >= 0.5 - 1e-12 and s.max() <= 2.0 + 1e-12
    assert (100 * s).min() < 52 and (100 * s).max() > 195           # reaches both ends (clipped at 50 and 200)


def _fit(model_cfg, x, y, train_cfg, kd=None):
    """A fresh model (torch seed 0) trained on (x, y): (model, per-epoch losses)."""
    torch.manual_seed(0)
    m = create_model(model_cfg)
    return m, train_bins(m, x, y, bin_grid(model_cfg), train_cfg, kd)


def test_training_with_stretch_and_kd_runs_and_zero_frac_is_the_old_recipe():
    cfg = get_model_cfg("spec_student_xs")
    bins = bin_grid(cfg)
    x, y = _peak_spectra(96, cfg, np.random.default_rng(0))
    kd = np.random.default_rng(1).normal(size=(len(x), len(bins))).astype(np.float32)
    runs = [_fit(cfg, x, y, BinTrainCfg(epochs=2, stretch_frac=frac, kd_weight=0.5), kd)[1] for frac in (0.0, 0.0, 0.7)]
    assert runs[0] == runs[1] and runs[2] != runs[0] and all(np.isfinite(runs[2]))


def _teacher_peaked_at(bpm, bins):
    """(N,) BPM -> (N, F) teacher logits peaked at those rates."""
    return (-0.5 * ((bins[None, :] - np.asarray(bpm)[:, None]) / 2.0) ** 2).astype(np.float32)


@pytest.mark.parametrize("teacher_off_bpm, same_as", [(40.0, "labels only"), (0.0, "ungated")])
def test_kd_gate_drops_a_wrong_teacher_and_keeps_a_right_one(teacher_off_bpm, same_as):
    cfg = get_model_cfg("spec_student_xs")
    bins = bin_grid(cfg)
    x, y = _peak_spectra(96, cfg, np.random.default_rng(0))
    kd = _teacher_peaked_at(y + teacher_off_bpm, bins)
    gate = BinTrainCfg(epochs=2, stretch_frac=0.5, kd_weight=0.5, kd_gate_bpm=10.0)
    ref = {"labels only": BinTrainCfg(epochs=2, stretch_frac=0.5), "ungated": BinTrainCfg(epochs=2, stretch_frac=0.5,
                                                                                        kd_weight=0.5)}[same_as]
    states = [_fit(cfg, x, y, c, kd)[0].state_dict() for c in (gate, ref)]
    for k in states[0]:
        assert torch.allclose(states[0][k].float(), states[1][k].float(), atol=1e-6), k
    assert kd_gate(kd, y, bins, 10.0).mean() == (0.0 if teacher_off_bpm > 10 else 1.0)


# ----------------------------------------------------------------------------- calibrated interval, confidence

def test_needed_mass_matches_the_read_out_interval_and_conf_mass_the_read_out_conf():
    cfg = DecoderCfg(logit_scale=1.0)
    rng = np.random.default_rng(0)
    post = rng.random((200, cfg.n_bins)) ** 8
    post /= post.sum(axis=1, keepdims=True)
    y = rng.uniform(35, 225, 200)
    hr = summarise(post, cfg)["hr"]                                   # the read-out: the same at every mass
    need = needed_mass(post, y, cfg, 0.5, hr=hr)
    stretched = 0
    for m in (0.5, 0.8, 0.9, 0.97):
        out = summarise(post, DecoderCfg(logit_scale=1.0, interval=m))
        assert np.all((out["lo"] <= out["hr"]) & (out["hr"] <= out["hi"]))   # the interval holds the reported hr
        cov = (y >= out["lo"] - 0.5 - 1e-6) & (y <= out["hi"] + 0.5 + 1e-6)
        assert np.mean(cov == (need <= m + 1e-9)) >= 0.99
        central = summarise_central(post, m, cfg)                      # before the stretch to hold hr
        stretched += int(np.sum((central[0] > hr) | (central[1] < hr)))
    assert stretched > 0                                               # these two-peaked posteriors do leave hr out
    assert np.allclose(conf_mass(post, 5.0, cfg), summarise(post, cfg)["conf"])


def summarise_central(post, m, cfg):
    """The equal-tailed interval of mass m alone (piecewise-linear CDF), without the stretch to the read-out."""
    lo, _, step = cfg.bins_bpm
    c = np.concatenate([np.zeros((len(post), 1)), np.cumsum(post, axis=1)], axis=1)       # (W, F + 1)
    edges = lo - step / 2 + step * np.arange(post.shape[1] + 1)
    return tuple(np.array([np.interp(q, c[i], edges) for i in range(len(post))]) for q in ((1 - m) / 2, (1 + m) / 2))


def _recordings(width_bpm, offset_sd, n_rec=6, w=80, seed=0):
    """Logits of constant-HR recordings: a peak of width_bpm at truth + N(0, offset_sd)."""
    rng = np.random.default_rng(seed)
    logits, truth, groups = [], [], []
    for i in range(n_rec):
        hr = rng.uniform(60, 180)
        c = hr + rng.normal(0, offset_sd, w)
        logits.append(-0.5 * ((BINS[None, :] - c[:, None]) / width_bpm) ** 2)
        truth.append(np.full(w, hr))
        groups.append(f"s{i % 3}")
    return logits, truth, groups


@pytest.mark.parametrize("width,offset,side", [(6.0, 3.0, "lower"), (2.0, 3.0, "higher")])
def test_select_decoder_calibrates_the_interval_mass_to_90_percent(width, offset, side):
    logits, truth, groups = _recordings(width, offset)
    base = {"bins_bpm": [30.0, 230.0, 1.0], "sigma_bpm": 30.0, "floor": 0.2, "logit_scale": 1.0}   # ~ no memory
    dec = select_decoder(logits, truth, groups, base, sigmas=(30.0,), floors=(0.2,), temperatures=(1.0,))
    assert (dec["interval"] < 0.85) if side == "lower" else (dec["interval"] > 0.95)
    assert abs(dec["inner_coverage"] - 0.9) <= 0.02
    assert (dec["inner_coverage_nominal"] > 0.95) if side == "lower" else (dec["inner_coverage_nominal"] < 0.85)
    cov = []                                                        # the float read-out agrees
    for lg, y in zip(logits, truth):
        o = decode_float(lg, dec)
        cov.append((y >= o["lo"] - 0.5) & (y <= o["hi"] + 0.5))
    assert abs(np.mean(np.concatenate(cov)) - 0.9) <= 0.03
    assert dec["conf_halfwidth_bpm"] in (2.0, 3.0, 5.0, 8.0, 12.0) and "inner_gating" in dec


def _good_and_bad_windows():
    """Good windows: a sharp peak at the truth; bad ones (30 %): a peak 8 BPM off with a broad shoulder at the
    truth."""
    rng = np.random.default_rng(0)
    logits, truth, groups = [], [], []
    for i in range(6):
        hr = rng.uniform(70, 160)
        lg = np.empty((80, len(BINS)))
        for t in range(80):
            if rng.random() < 0.3:
                lg[t] = np.log(np.exp(-0.5 * ((BINS - hr - 8) / 1.0) ** 2) +
                               0.9 * np.exp(-0.5 * ((BINS - hr + 3) / 6.0) ** 2) + 1e-9)
            else:
                lg[t] = -0.5 * ((BINS - hr) / 1.0) ** 2
        logits.append(lg)
        truth.append(np.full(80, hr))
        groups.append(f"s{i % 3}")
    return logits, truth, groups


NO_MEMORY = {"bins_bpm": [30.0, 230.0, 1.0], "sigma_bpm": 30.0, "floor": 0.2, "logit_scale": 1.0}


def test_select_decoder_picks_the_confidence_half_width_that_ranks_errors():
    """Mass within +-2 BPM cannot tell the good windows from the bad (both hold the sharp peak); within +-12 it can."""
    logits, truth, groups = _good_and_bad_windows()
    dec = select_decoder(logits, truth, groups, NO_MEMORY, sigmas=(30.0,), floors=(0.2,), temperatures=(1.0,),
                         conf_halfwidths=(2.0, 12.0), conf_measures=("mass",))
    assert dec["conf_halfwidth_bpm"] == 12.0 and dec["conf_measure"] == "mass" and dec["inner_gating"] > 0.3


def test_select_decoder_reads_the_confidence_from_the_interval_width_when_that_ranks_errors_better():
    """Good windows: 0.8 of the mass in a sharp peak at the truth, the rest close by; bad ones (30 %): the sharp
    peak 8 BPM off, the rest 40 BPM further. The mass within +-2 BPM is the same on both, the interval's width is
    not: width is chosen, and the decoded conf is then 1 - width / grid extent, the device's read-out."""
    rng = np.random.default_rng(0)
    g = lambda c, sd: np.exp(-0.5 * ((BINS - c) / sd) ** 2) / sd  # noqa: E731
    logits, truth, groups = [], [], []
    for i in range(6):
        hr = rng.uniform(80, 150)
        bad = rng.random(80) < 0.3
        p = np.where(bad[:, None], 0.8 * g(hr + 8, 1.0) + 0.2 * g(hr + 48, 4.0), 0.8 * g(hr, 1.0) + 0.2 * g(hr, 6.0))
        logits.append(np.log(p + 1e-12))
        truth.append(np.full(80, hr))
        groups.append(f"s{i % 3}")
    kw = dict(sigmas=(30.0,), floors=(0.2,), temperatures=(1.0,), conf_halfwidths=(2.0,))
    dec = select_decoder(logits, truth, groups, NO_MEMORY, calibrate=False, **kw)
    assert dec["conf_measure"] == "width" and dec["inner_gating"] == dec["inner_gating_width"]
    assert dec["inner_gating_width"] > dec["inner_gating_mass"] + 0.1 and "conf_calib_x" not in dec
    o = decode_float(logits[0], dec)                                     # the width of the posterior's interval,
    p = decode_float(logits[0], {**dec, "interval_mode": "posterior"})  # whichever interval the decoder reports
    np.testing.assert_allclose(o["conf"], np.maximum(0, 1 - (p["hi"] - p["lo"]) / 201.0))
    cal = select_decoder(logits, truth, groups, NO_MEMORY, **kw)          # the default: calibrated, same ranking
    assert cal["conf_measure"] == "width" and len(cal["conf_calib_x"]) >= 2
    c = decode_float(logits[0], cal)["conf"]
    assert np.all(np.diff(c[np.argsort(o["conf"], kind="stable")]) >= -1e-12)
    assert select_decoder(logits, truth, groups, NO_MEMORY, conf_measures=("mass",), **kw)["conf_measure"] == "mass"


def test_select_decoder_calibrates_the_confidence_to_the_inner_windows_expected_error():
    """The default decoder's conf is 1 - expected |error| / grid extent: over the inner windows its implied
    error matches the decoded error on average and for the confident and doubtful halves alike."""
    logits, truth, groups = _good_and_bad_windows()
    dec = select_decoder(logits, truth, groups, NO_MEMORY, sigmas=(30.0,), floors=(0.2,), temperatures=(1.0,))
    assert 2 <= len(dec["conf_calib_x"]) <= 16 and dec["inner_gating"] > 0.3
    outs = [decode_float(lg, dec) for lg in logits]
    implied = (1 - np.concatenate([o["conf"] for o in outs])) * 201.0
    err = np.abs(np.concatenate([o["hr"] for o in outs]) - np.concatenate(truth))
    assert implied.mean() == pytest.approx(err.mean(), rel=0.1)
    sure = implied <= np.median(implied)
    assert err[sure].mean() < err[~sure].mean() and implied[~sure].mean() == pytest.approx(err[~sure].mean(), rel=0.2)


def test_injected_motion_is_a_peak_away_from_the_truth_in_every_channel_and_codes_stay_in_range():
    bins = np.arange(30.0, 231.0, 1.5)
    x = torch.full((64, 4, len(bins)), -1.0)
    x[:, :, 40] = 1.0                                               # pulse (and a stale acc peak) at 90 BPM
    y = torch.full((64,), 90.0, dtype=torch.float64)
    cfg = BinTrainCfg(motion_min_gap_bpm=10.0)
    xm, ok = inject_motion(x, y, bins, cfg, torch.Generator().manual_seed(0))
    assert ok.all() and xm.shape == x.shape
    assert torch.isclose(xm.max(dim=2).values, torch.tensor(1.0)).all() and (xm >= -1 - 1e-6).all()
    added = (xm - x).abs().sum(dim=1)                               # (B, F) where the motion went
    top = torch.as_tensor(bins)[added.argmax(dim=1)]
    assert ((top - 90.0).abs() >= 10.0 - 1.5).all()                # never on the pulse
    assert not torch.equal(xm[:, 0], x[:, 0]) and not torch.equal(xm[:, 1:], x[:, 1:])


def test_axis_drop_leaves_some_axes_still_but_never_the_strongest():
    bins = np.arange(30.0, 231.0, 1.5)
    x = torch.full((256, 4, len(bins)), -1.0)
    x[:, :, 40] = 1.0
    y = torch.full((256,), 90.0, dtype=torch.float64)
    moved = lambda xm: ((xm - x).abs().sum(dim=2) > 1e-6)           # noqa: E731  (B, C) the channel got motion
    every = moved(inject_motion(x, y, bins, BinTrainCfg(), torch.Generator().manual_seed(0))[0])
    some = moved(inject_motion(x, y, bins, BinTrainCfg(motion_axis_drop=0.5), torch.Generator().manual_seed(0))[0])
    assert every.all()                                              # default: the PPG and all three axes
    assert some[:, 0].all() and some[:, 1:].any(dim=1).all()        # the PPG and at least one axis, always
    still = (~some[:, 1:]).sum(dim=1)                               # (B,) axes without motion
    assert (still <= 2).all() and 0.3 < (still > 0).float().mean() < 0.95


def test_training_with_motion_runs_and_zero_frac_changes_nothing():
    cfg = get_model_cfg("spec_student_xs")
    x, y = _peak_spectra(96, cfg, np.random.default_rng(0))
    runs = [_fit(cfg, x, y, BinTrainCfg(epochs=2, motion_frac=frac))[1] for frac in (0.0, 0.0, 0.5)]
    assert runs[0] == runs[1] and runs[2] != runs[0] and all(np.isfinite(runs[2]))


def _last_epoch_step(cfg, x, y, train_cfg) -> float:
    """How far the weights moved in the last epoch of training (L2 over every parameter)."""
    torch.manual_seed(0)
    m = create_model(cfg)
    snaps = []
    train_bins(m, x, y, bin_grid(cfg), train_cfg,
               log=lambda ep, loss, lr: snaps.append(torch.cat([p.detach().flatten().clone() for p in m.parameters()])))
    return float((snaps[-1] - snaps[-2]).norm())


def test_cosine_schedule_anneals_the_steps_to_nothing_and_an_unknown_schedule_is_refused():
    from sqtool.core import SqtoolError
    cfg = get_model_cfg("spec_student_xs")
    x, y = _peak_spectra(96, cfg, np.random.default_rng(0))
    const = _last_epoch_step(cfg, x, y, BinTrainCfg(epochs=6))
    cos = _last_epoch_step(cfg, x, y, BinTrainCfg(epochs=6, lr_schedule="cosine"))
    assert 0 < cos < 0.3 * const                     # last epoch's lr runs from 0.07 x lr down to 0
    with pytest.raises(SqtoolError, match="lr_schedule must be one of constant, cosine"):
        train_bins(create_model(cfg), x, y, bin_grid(cfg), BinTrainCfg(epochs=1, lr_schedule="step"))


def test_train_bins_takes_time_domain_windows_only_without_bin_augmentation():
    from sqtool.core import SqtoolError
    bins = 30.0 + 1.5 * np.arange(134)
    m = create_model("resnet1d_siamq_tiny", task="hr", fs=25.0, window_s=8.0, channels=("ppg", "acc_x"),
                     norm="zscore", outputs=("hr_logits",), units=("logit",),
                     arch={**get_model_cfg("resnet1d_siamq_tiny").arch, "bins_bpm": [30.0, 229.5, 1.5]})
    x = np.random.default_rng(0).standard_normal((8, 2, 200)).astype(np.float32)    # (N, C, T) time domain
    y = np.linspace(60, 150, 8)
    with pytest.raises(SqtoolError, match="need spectra on the 134 bins"):
        train_bins(m, x, y, bins, BinTrainCfg(epochs=1))                        # default: shifts bins
    losses = train_bins(m, x, y, bins, BinTrainCfg(epochs=2, shift_bins=0, batch_size=4))
    assert len(losses) == 2 and np.isfinite(losses).all()
    assert predict_logits(m, x).shape == (8, 134)                                # one logit per bin


def test_calibration_folds_leave_out_one_calibration_subject_each_up_to_a_cap():
    from sqtool.models.hr_bins import MAX_CALIBRATION_STUDENTS, calibration_folds
    keys = [f"troika:{i:02d}" for i in range(12)] + [f"wrist:s{i}" for i in range(4)]
    wrist = {k for k in keys if k.startswith("wrist")}
    folds = calibration_folds(keys, wrist)
    assert folds[:-1] == [{k} for k in sorted(wrist)] and folds[-1] == set(keys) - wrist
    assert calibration_folds(keys, None) is None and calibration_folds(keys, set(keys)) is None
    many = [f"own:{i:02d}" for i in range(20)]
    folds = calibration_folds(keys + many, set(many))
    assert len(folds) == MAX_CALIBRATION_STUDENTS + 1 and set().union(*folds[:-1]) == set(many)
    assert sum(len(f) for f in folds[:-1]) == 20 and folds[-1] == set(keys)


def test_out_of_fold_logits_come_from_a_model_that_never_saw_the_subject():
    """Each recording's logits equal those of a model trained (same seed) on the other folds' subjects only;
    a subject in no fold (or in two) is refused."""
    from sqtool.models.hr_bins import out_of_fold_logits
    rng = np.random.default_rng(0)
    bins = np.arange(40.0, 60.0, 1.0)
    xs = [rng.normal(size=(6, 2, len(bins))).astype(np.float32) for _ in range(4)]
    ys = [rng.uniform(42, 58, 6) for _ in range(4)]
    keys = ["a", "a", "b", "c"]
    folds = [{"a"}, {"b", "c"}]
    cfg = BinTrainCfg(epochs=2, seed=3, shift_bins=0, stretch_frac=0.0, motion_frac=0.0)

    def make():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * len(bins), len(bins)))

    out = out_of_fold_logits(xs, ys, keys, folds, make, bins, cfg)
    assert [o.shape for o in out] == [(6, len(bins))] * 4
    torch.manual_seed(3)
    m = make()
    train_bins(m, np.concatenate(xs[2:]), np.concatenate(ys[2:]), bins, cfg)     # trained without subject a
    assert np.array_equal(out[0], predict_logits(m, xs[0])) and np.array_equal(out[1], predict_logits(m, xs[1]))
    assert not np.array_equal(out[2], predict_logits(m, xs[2]))
    with pytest.raises(SqtoolError, match="not in exactly one fold"):
        out_of_fold_logits(xs, ys, keys, [{"a"}, {"b"}], make, bins, cfg)
    with pytest.raises(SqtoolError, match="not in exactly one fold"):
        out_of_fold_logits(xs, ys, keys, [{"a", "b"}, {"b", "c"}], make, bins, cfg)
    # only: just the folds holding those subjects are trained (the same logits), the others' recordings get None
    part = out_of_fold_logits(xs, ys, keys, folds, make, bins, cfg, only={"a"})
    assert np.array_equal(part[0], out[0]) and np.array_equal(part[1], out[1]) and part[2] is None is part[3]


def test_out_of_fold_students_are_kept_and_read_back_only_under_their_key(tmp_path, monkeypatch):
    """store + key: each finished fold's logits are saved; a second call with the same key trains nothing and
    returns the same arrays; another key, or a torn file, trains that fold again."""
    import sqtool.models.hr_bins as HB
    rng = np.random.default_rng(1)
    bins = np.arange(40.0, 60.0, 1.0)
    xs = [rng.normal(size=(5, 2, len(bins))).astype(np.float32) for _ in range(3)]
    ys = [rng.uniform(42, 58, 5) for _ in range(3)]
    keys, folds = ["a", "b", "c"], [{"a"}, {"b"}, {"c"}]
    cfg = BinTrainCfg(epochs=1, seed=0, shift_bins=0, stretch_frac=0.0, motion_frac=0.0)

    def make():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * len(bins), len(bins)))

    calls, real = [], HB.train_bins
    monkeypatch.setattr(HB, "train_bins", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    first = HB.out_of_fold_logits(xs, ys, keys, folds, make, bins, cfg, store=tmp_path, key="k1")
    assert len(calls) == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["fold_0.npz", "fold_1.npz", "fold_2.npz"]
    seen = []
    again = HB.out_of_fold_logits(xs, ys, keys, folds, make, bins, cfg, store=tmp_path, key="k1", log=seen.append)
    assert len(calls) == 3 and len(seen) == 3 and "reused from" in seen[0]
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(first, again))
    (tmp_path / "fold_1.npz").write_bytes(b"torn")
    HB.out_of_fold_logits(xs, ys, keys, folds, make, bins, cfg, store=tmp_path, key="k1")
    assert len(calls) == 4                                           # the torn fold only
    whole = (tmp_path / "fold_2.npz").read_bytes()
    (tmp_path / "fold_2.npz").write_bytes(whole[:len(whole) // 2])  # cut mid-write: a zip without its directory
    (tmp_path / "fold_0.npz").write_bytes(b"")                       # killed before a byte: EOFError
    again = HB.out_of_fold_logits(xs, ys, keys, folds, make, bins, cfg, store=tmp_path, key="k1")
    assert len(calls) == 6 and all(np.array_equal(a, b) for a, b in zip(first, again))   # both trained again
    HB.out_of_fold_logits(xs, ys, keys, folds, make, bins, cfg, store=tmp_path, key="k2")
    assert len(calls) == 9                                           # another key: every fold


def test_select_decoder_weighs_the_motion_subtracted_ppg_only_when_it_helps():
    """Out-of-fold logits fooled by the arm's cadence on every window: with the spectra, the inner MAE picks an
    evidence weight > 0 and decodes the pulse; with spectra that carry no evidence (flat) it keeps 0."""
    from sqtool.models.decoder import DecoderCfg, evidence_codes, forward
    cfg = DecoderCfg(bins_bpm=(30.0, 229.5, 1.5))
    b = cfg.centres
    rng = np.random.default_rng(0)
    logits, truth, groups, spectra = [], [], [], []
    for s in range(3):
        hr = 140 + np.cumsum(rng.normal(0, 0.5, 50))
        cad = hr - 45
        pk = lambda c: np.exp(-0.5 * ((b[None] - c[:, None]) / 3.0) ** 2)   # noqa: E731  (W, F)
        logits.append((4 * pk(cad) + 3 * pk(hr)).astype(np.float32))         # the cadence wins every window
        x = np.full((50, len(b), 4), -127.0)
        x[:, :, 0] += 254 * np.maximum(pk(hr), 0.8 * pk(cad))
        x[:, :, 1:] += 254 * pk(cad)[:, :, None]
        spectra.append(np.clip(np.round(x), -127, 127).astype(np.int8))
        truth.append(hr)
        groups.append(f"s{s}")
    base = {"bins_bpm": [30.0, 229.5, 1.5], "sigma_bpm": 2.0, "floor": 1e-3, "logit_scale": 1.0}
    kw = dict(sigmas=(2.0,), floors=(1e-3,), temperatures=(1.0,))
    off = select_decoder(logits, truth, groups, base, **kw)
    on = select_decoder(logits, truth, groups, base, spectra=spectra, **kw)
    assert off["evidence_weight"] == 0.0 and off["inner_mae"] > 30
    assert on["evidence_weight"] > 0 and on["inner_mae"] < 3 and on["inner_mae_no_evidence"] == off["inner_mae"]
    c = DecoderCfg.from_dict({k: v for k, v in on.items() if k != "temperature" and not k.startswith("inner_")})
    assert abs(np.mean(forward(logits[0], None, c, evidence_codes(spectra[0]))["hr"][5:] - truth[0][5:])) < 3
    same = select_decoder(logits, truth, groups, base, spectra=[np.full_like(x, 127) for x in spectra], **kw)
    assert same["evidence_weight"] == 0.0                                  # a flat PPG: the evidence cannot help
    fixed = select_decoder(logits, truth, groups, base, **evidence_args("0.25", spectra), **kw)
    assert fixed["evidence_weight"] == 0.25
    assert select_decoder(logits, truth, groups, base, **evidence_args("off", spectra), **kw) == off
    for bad in ("strong", "0", "-1", "9"):
        with pytest.raises(SqtoolError, match="--evidence must be inner, off or a weight"):
            evidence_args(bad, spectra)


def test_select_decoder_takes_an_emission_floor_where_misread_windows_pull_the_track_off():
    """Logits peaked at the truth, but every 4th window confidently at a harmonic far away: at temperature 1 and
    no floor such a window pulls the belief off the truth; a temperature weakens every window alike, an emission
    floor bounds only what a misread window costs. Chosen on the inner subjects, the floor decodes best."""
    cfg = get_model_cfg("spec_student_xs")
    bins = bin_grid(cfg)
    rng = np.random.default_rng(3)
    logits, truth = [], []
    for _ in range(4):
        hr = np.clip(80 + np.cumsum(rng.normal(0, 1.0, 80)), 60, 110)
        peak = np.where(np.arange(80) % 4 == 3, 2 * hr, hr)                     # (W,) what each window reads
        logits.append((-0.5 * ((bins[None] - peak[:, None] - rng.normal(0, 1.0, (80, 1))) / 1.5) ** 2)
                      .astype(np.float32))
        truth.append(hr)
    groups = [f"s{i}" for i in range(4)]
    base = {"bins_bpm": list(cfg.arch["bins_bpm"]), "sigma_bpm": 1.0, "floor": 1e-3, "logit_scale": 1.0}
    grid = dict(sigmas=(1.0, 4.0), floors=(1e-3,), temperatures=(1.0, 3.0))
    plain = select_decoder(logits, truth, groups, base, emission_floors=(0.0,), **grid)
    robust = select_decoder(logits, truth, groups, base, emission_floors=(0.0, 0.003, 0.03), **grid)
    assert plain["emission_floor"] == 0.0 and robust["emission_floor"] > 0
    assert robust["inner_mae"] < plain["inner_mae"] - 1.0


def test_motion_on_truth_puts_a_share_of_the_motion_peaks_on_the_pulse_and_is_off_by_default():
    """motion_on_truth: the heart at the step rate (a run): that share of the windows gets its motion at the truth
    (the accelerometer's peak on the pulse), the rest away from it as before; at 0 nothing is drawn, so the
    default's random stream (and every trained network) is unchanged."""
    bins = np.arange(30.0, 231.0, 1.5)
    x = torch.full((400, 4, len(bins)), -1.0)
    x[:, 0, 60] = 1.0                                               # the pulse at 120 BPM, the accelerometer flat
    y = torch.full((400,), 120.0, dtype=torch.float64)
    base = inject_motion(x, y, bins, BinTrainCfg(), torch.Generator().manual_seed(0))[0]
    off = inject_motion(x, y, bins, BinTrainCfg(motion_on_truth=0.0), torch.Generator().manual_seed(0))[0]
    assert torch.equal(base, off)
    xm, ok = inject_motion(x, y, bins, BinTrainCfg(motion_on_truth=0.3), torch.Generator().manual_seed(0))
    assert ok.all()
    acc_peak = torch.as_tensor(bins)[xm[:, 1:].amax(dim=1).argmax(dim=1)]   # (B,) the accelerometer's peak
    on = (acc_peak - 120.0).abs() < 3.0
    assert 0.2 < on.float().mean() < 0.4                            # about the share asked for
    assert ((acc_peak[~on] - 120.0).abs() >= 10.0 - 1.5).all()     # the others away from the pulse, as before


def _calm_and_rough_wearers():
    """Eight recordings of drifting HR: 'calm' wearers' network peaks scatter 2.5 BPM around the truth, 'rough'
    ones' 9 BPM; the decoder (sigma 2 BPM) smooths both, so the rough ones err more, and their network argues more
    with the track."""
    rng = np.random.default_rng(0)
    logits, truth, groups = [], [], []
    for i in range(8):
        rough = i % 2 == 1
        hr = rng.uniform(70, 150) + np.cumsum(rng.normal(0, 0.5, 120))
        c = hr + rng.normal(0, 9.0 if rough else 2.5, 120)
        logits.append(-0.5 * ((BINS[None, :] - c[:, None]) / 1.5) ** 2)
        truth.append(hr)
        groups.append(f"{'rough' if rough else 'calm'}{i // 2}")
    return logits, truth, groups


def test_select_decoder_reports_the_spread_interval_where_it_holds_the_coverage_for_every_wearer():
    """The posterior interval at its calibrated mass covers every calm wearer's windows and 78-83 % of the rough
    ones'; the spread interval (hr -+ (c + k S)) is chosen because it comes closer to 90 % for each, and the float
    read-out of the returned decoder reproduces the per-subject coverage it reports. interval_modes=("posterior",)
    keeps the posterior interval (and no spread keys); an unknown mode is refused."""
    logits, truth, groups = _calm_and_rough_wearers()
    base = {"bins_bpm": [30.0, 230.0, 1.0], "sigma_bpm": 2.0, "floor": 1e-3, "logit_scale": 1.0}
    kw = dict(sigmas=(2.0,), floors=(1e-3,), temperatures=(1.0, 3.0))
    dec = select_decoder(logits, truth, groups, base, **kw)
    assert dec["interval_mode"] == "spread" and dec["spread_k"] > 0
    dev = dec["inner_interval_dev"]
    assert dev["spread"] < 0.5 * dev["posterior"]
    assert dec["inner_coverage"] >= 0.9 and all(0.8 <= v <= 0.98 for v in dec["inner_coverage_subjects"])
    for g, want in zip(sorted(set(groups)), dec["inner_coverage_subjects"]):
        cov = np.concatenate([np.abs(decode_float(lg, dec)["hi"] - decode_float(lg, dec)["hr"]) + 0.5
                              >= np.abs(decode_float(lg, dec)["hr"] - y)
                              for lg, y, gg in zip(logits, truth, groups) if gg == g])
        assert np.mean(cov) == pytest.approx(want, abs=1e-9)
    post = select_decoder(logits, truth, groups, base, interval_modes=("posterior",), **kw)
    assert post["interval_mode"] == "posterior" and "spread_k" not in post
    per = dict(zip(sorted(set(groups)), post["inner_coverage_subjects"]))
    assert min(v for k, v in per.items() if k.startswith("calm")) == 1.0
    assert max(v for k, v in per.items() if k.startswith("rough")) < 0.85
    assert not any(g in json.dumps(dec) for g in groups)                  # no subject id in the shipped dict
    with pytest.raises(SqtoolError, match="interval_modes"):
        select_decoder(logits, truth, groups, base, interval_modes=("conformal",), **kw)
    # two calibration subjects: no per-subject spread to fit, the posterior interval (the real-data demo's case)
    two = [i for i, g in enumerate(groups) if g in ("calm0", "rough0")]
    pick = lambda seq: [seq[i] for i in two]                                     # noqa: E731
    dec2 = select_decoder(pick(logits), pick(truth), pick(groups), base, **kw)
    assert dec2["interval_mode"] == "posterior" and set(dec2["inner_interval_dev"]) == {"posterior"}


def test_select_decoder_fits_on_the_stream_the_device_runs_holding_over_its_unscored_windows():
    """A third of every recording is a dropout stretch (front end flagged: the device holds its belief and S
    there) whose network output is junk, a peak at 220 BPM. Given `valid`, every candidate is decoded as the
    device decodes and only scored windows count: the per-subject coverage reported is the one the device's
    read-out gives on its scored windows. Without it, the fit read the junk as pulses."""
    logits, truth, groups = _calm_and_rough_wearers()
    valid = []
    for lg in logits:
        v = np.ones(len(lg), bool)
        v[40:80] = False
        lg[40:80] = -0.5 * ((BINS[None, :] - 220.0) / 1.5) ** 2
        valid.append(v)
    base = {"bins_bpm": [30.0, 230.0, 1.0], "sigma_bpm": 2.0, "floor": 1e-3, "logit_scale": 1.0}
    kw = dict(sigmas=(2.0,), floors=(1e-3,), temperatures=(1.0,))

    def device_coverage(dec):
        per = []
        for g in sorted(set(groups)):
            cov = []
            for lg, y, v, gg in zip(logits, truth, valid, groups):
                if gg == g:
                    o = decode_float(lg, dec, v)
                    cov.append((np.abs(o["hi"] - o["hr"]) + 0.5 >= np.abs(o["hr"] - y))[v])
            per.append(float(np.mean(np.concatenate(cov))))
        return per

    dec = select_decoder(logits, truth, groups, base, valid=valid, **kw)
    assert dec["inner_coverage_subjects"] == pytest.approx(device_coverage(dec), abs=1e-9)
    assert dec["inner_calibration_windows"] == sum(int(v.sum()) for v in valid)
    blind = select_decoder(logits, truth, groups, base, **kw)                # the junk read as pulses
    assert blind["inner_coverage_subjects"] != pytest.approx(device_coverage(blind), abs=1e-3)
    with pytest.raises(SqtoolError, match="valid"):
        select_decoder(logits, truth, groups, base, valid=[v[:-1] for v in valid], **kw)
