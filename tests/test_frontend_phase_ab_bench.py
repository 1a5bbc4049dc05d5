"""benchmarks/frontend_phase_ab.py: the zero-phase float arm and a --smoke run on synthetic data."""
import json

import numpy as np

from sqtool.data.synthetic import synth_record
from sqtool.models import get_model_cfg
from bench_scripts import load_benchmark


def load():
    return load_benchmark("frontend_phase_ab")


def test_zero_phase_codes_peak_at_a_pure_tone():
    m = load()
    scfg = get_model_cfg("spec_student_s")
    rec = synth_record(duration_s=40.0, fs=125.0, hr_bpm=90.0, rr_bpm=15.0, seed=1, artifacts=0.0)
    t = np.arange(len(rec.signals["ppg"])) / 125.0
    rec.signals["ppg"] = np.sin(2 * np.pi * 1.5 * t)                       # 90 BPM
    rec.signals["ppg"][100:110] = np.nan                                   # a gap is held, not propagated
    W = (int(np.ceil(len(t) * 16 / 125)) - 128) // 32 + 1
    codes = m.zero_phase_codes(rec, scfg, W)
    assert codes.shape == (W, 134, 4) and codes.dtype == np.int8
    bins = 30.0 + 1.5 * np.arange(134)
    assert np.all(bins[codes[:, :, 0].argmax(1)] == 90.0)
    assert codes[:, :, 0].max() == 127 and codes[:, :, 0].min() >= -127
    try:
        m.zero_phase_codes(rec, scfg, W + 1)
        raise AssertionError("a window-count mismatch must be refused")
    except m.SqtoolError as e:
        assert "windows" in str(e)


def test_block_bootstrap_ci_brackets_the_mean_and_widens_with_correlation():
    m = load()
    rng = np.random.default_rng(0)
    iid = rng.normal(size=300)
    walk = np.repeat(rng.normal(size=20), 15)                              # strongly correlated, 300 values
    lo, hi = m.block_bootstrap_ci(iid, 15)
    assert lo < iid.mean() < hi
    lo1, hi1 = m.block_bootstrap_ci(walk, 1)
    lo15, hi15 = m.block_bootstrap_ci(walk, 15)
    assert hi15 - lo15 > 2 * (hi1 - lo1)


def test_smoke_run_writes_both_arms(tmp_path):
    m = load()
    res = m.main(["--smoke", "--out", str(tmp_path)])
    js = json.loads((tmp_path / "frontend_phase_ab_smoke.json").read_text())
    md = (tmp_path / "frontend_phase_ab_smoke.md").read_text()
    s = js["summary"]
    assert s["n_subjects"] == 1 and len(js["folds"]) == 1
    d = s["subjects"][0]
    assert d["windows"] > 20
    assert np.isclose(d["diff"], d["device"] - d["zerophase"])
    assert np.isclose(d["raw_diff"], d["raw_device"] - d["raw_zerophase"])
    assert s["goal_met_point"] == (s["diff_mean_of_subjects"] <= 0.3)
    assert "Verdict" in md and "mean of subjects" in md and res["summary"]["verdict"] in md
    ag = js["code_agreement"]
    assert len(ag["mean_abs_code_diff_per_channel"]) == 4 and 0.5 < ag["ppg_peak_within_1_bin"] <= 1.0
