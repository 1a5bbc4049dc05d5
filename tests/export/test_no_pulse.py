"""Pulse presence (`export.pipeline.flatness_q8` / `no_pulse`, the firmware's no_pulse): a PPG reading noise (off the
wrist: white, hum, noise with the arm swinging) is told from a pulse by its spectrum's flatness over 32 windows, on
synthetic inputs through the integer front end, and no window of a few real recordings is called pulse-less
(skipped without the data root). The C's equality with this reference: tests/export/test_c_pipeline.py."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.data.frontend import spectra, to_int16
from sqtool.data.synthetic import synth_record
from sqtool.export import pipeline as PL
from sqtool.models.registry import get_model_cfg

FS, N = 125.0, 125 * 120                                                  # 120 s: 57 windows


def _codes(ppg: np.ndarray, acc: np.ndarray, n_ppg: int) -> np.ndarray:
    """ppg (n_ppg, N) and acc (3, N) in g -> the front end's codes (W, F, C) at robust PPG gains, as predict."""
    fe = PL.frontend_config(get_model_cfg("spec_student_xs").to_dict(), FS, n_ppg)
    x = np.concatenate([to_int16(ppg, "robust", share=range(n_ppg)), to_int16(acc, 4096.0)])
    return spectra(fe, x)[0]


def _still(rng) -> np.ndarray:
    return np.array([0.1, -0.2, 0.97])[:, None] + 0.005 * rng.standard_normal((3, N))


def _pulse(seed: int, hr: float) -> np.ndarray:
    return synth_record(N / FS, FS, hr_bpm=hr, artifacts=0.0, seed=seed).signals["ppg"]


def test_flatness_of_a_flat_and_a_peaked_spectrum():
    F = 134
    flat = np.full((1, F), -127, np.int8)                                # quiet: every bin -127
    peak = flat.copy()
    peak[0, 40] = 127
    assert PL.flatness_q8(flat)[0] == 0 and PL.flatness_q8(peak)[0] > 300
    assert list(PL.ilog2_q8(np.array([1, 2, 3, 255, 256, 1000]))) == [0, 256, 406, 2047, 2048, 2551]


@pytest.mark.parametrize("n_ppg", [1, 2])
def test_noise_has_no_pulse_and_a_pulse_has(n_ppg):
    """White noise (each sensor its own), mains-like hum and noise with the arm swinging at 1 Hz: no_pulse on
    (nearly) every window from the 32nd on with two sensors; with one, some (its noise spectrum is peakier: about 90 %
    of noise windows, benchmarks/results/no_pulse_study.md); a synthetic pulse, alone or at a third of the noise's amplitude, never."""
    rng = np.random.default_rng(1)
    t = np.arange(N) / FS
    swing = _still(rng) + 0.8 * np.array([1.0, 0.3, -0.5])[:, None] * np.sin(2 * np.pi * t)
    noise = {"white": (rng.standard_normal((n_ppg, N)), _still(rng)),
             "hum": (np.sin(2 * np.pi * 50 * t) + 0.05 * rng.standard_normal((n_ppg, N)), _still(rng)),
             "swing": (rng.standard_normal((n_ppg, N)), swing)}
    for name, (ppg, acc) in noise.items():
        got = PL.no_pulse_of(_codes(ppg, acc, n_ppg))
        assert not got[:PL.NO_PULSE_WINDOWS - 1].any()
        share = got[PL.NO_PULSE_WINDOWS - 1:].mean()
        assert share >= 0.95 if n_ppg == 2 else share > 0, (name, share)
    for seed, hr in ((0, 62.0), (1, 95.0), (2, 150.0)):
        p = _pulse(seed, hr)
        p = (p - p.mean()) / p.std()
        for snr in (None, 0.6):
            ppg = np.tile(p, (n_ppg, 1)) if snr is None else snr * p + rng.standard_normal((n_ppg, N))
            assert not PL.no_pulse_of(_codes(ppg, _still(rng), n_ppg)).any(), (hr, snr)


def test_an_export_keeps_the_rule_its_c_was_rendered_with():
    """An export made before the run was 32 windows (its metadata's gating.no_pulse, like its C's SQ_PL_NO_PULSE_*:
    16 windows at 190) is replayed with that rule, not this version's: the bench compares its C with the reference,
    and predict's Python runtimes report the no_pulse its firmware does."""
    rng = np.random.default_rng(2)
    codes = _codes(rng.standard_normal((2, N)), _still(rng), 2)
    old = {"gating": {"no_pulse": {"windows": 16, "max_q8": 190}}}
    want = PL.no_pulse(PL.flatness_q8(codes), 190, 16)
    assert want[15] and np.array_equal(PL.no_pulse_of(codes, PL.pulse_rule(old)), want)
    assert not np.array_equal(PL.no_pulse_of(codes), want)
    assert PL.pulse_rule({"gating": {}}) is None and PL.pulse_rule({"gating": {"no_pulse": {}}}) == (
        PL.NO_PULSE_WINDOWS, PL.NO_PULSE_MAX_Q8)


def test_no_pulse_ignores_an_export_without_the_detector():
    rng = np.random.default_rng(2)
    codes = _codes(rng.standard_normal((2, N)), _still(rng), 2)
    assert PL.no_pulse_of(codes).any() and not PL.no_pulse_of(codes, checked=False).any()
    assert PL.pulse_checked({"gating": {"no_pulse": {}}}) and not PL.pulse_checked({"gating": {}})


def test_one_sensor_white_noise_is_mostly_caught():
    """One PPG sensor reading white noise (a one-sensor device, or one column replayed on a two-sensor export): its
    spectrum is peakier than two sensors' mean, and the flatness run over 16 windows at 190 called about half its
    windows pulse-less (54 % over these six 300 s recordings); over 32 windows at 200 most (the study: 91 %)."""
    n = 125 * 300
    shares = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        acc = np.array([0.1, -0.2, 0.97])[:, None] + 0.005 * rng.standard_normal((3, n))
        got = PL.no_pulse_of(_codes(rng.standard_normal((1, n)), acc, 1))
        shares.append(got[PL.NO_PULSE_WINDOWS - 1:].mean())
    assert np.mean(shares) >= 0.85, shares


def _replayed(data_root, dataset: str):
    """(record, n_ppg, codes) of every recording of a dataset replayed on a one- and a two-sensor device (skipped
    without the data)."""
    from sqtool.data.readers import iter_records
    from sqtool.firmware_bench.spectral import prepare
    root = data_root / dataset
    if not root.is_dir():
        pytest.skip(f"no {dataset} data at {root}")
    mc = get_model_cfg("spec_student_xs").to_dict()
    mc["frontend"] = {**mc["frontend"], "ppg_sensors": ["ppg", "ppg2"]}
    for rec in iter_records(root, on_error="skip"):
        yield from ((rec, n_ppg, prepare(rec, mc, {}, n_sensors=n_ppg).codes) for n_ppg in (1, 2))


@pytest.mark.parametrize("dataset, n_records", [("troika", 4), ("wrist_exercise", 4)])
def test_no_real_window_has_no_pulse(data_root, dataset, n_records):
    """The first recordings of TROIKA (two sensors) and wrist_exercise (one, replayed on a one- and a two-sensor
    device): not one window called pulse-less (the study: 0 of every shipped recording's windows)."""
    for i, (rec, n_ppg, codes) in enumerate(_replayed(data_root, dataset)):
        if i >= 2 * n_records:
            break
        assert len(codes) > 50 and not PL.no_pulse_of(codes).any(), (rec.record_id, n_ppg)


def test_the_most_noise_like_real_recordings_keep_a_margin(data_root):
    """wrist_exercise's low-resistance bike rides of s5 and s6 and s6's walk hold the real runs most like noise (the
    study's lowest): their flatness run stays 5 % above the threshold on a one- and a two-sensor device (16 windows
    at 190: 193.8, 2 % above)."""
    K, seen = PL.NO_PULSE_WINDOWS, set()
    for rec, n_ppg, codes in _replayed(data_root, "wrist_exercise"):
        if rec.record_id in ("s5_low_resistance_bike", "s6_low_resistance_bike", "s6_walk"):
            run = np.convolve(PL.flatness_q8(codes), np.ones(K), "valid") / K
            assert run.min() >= 1.05 * PL.NO_PULSE_MAX_Q8, (rec.record_id, n_ppg, run.min())
            seen.add(rec.record_id)
    assert len(seen) == 3, seen


def test_the_module_and_push_docstrings_name_every_result_key():
    """pipeline's docstrings list what a result holds: every RESULT_KEYS entry (they left no_pulse out)."""
    line = next(ln for ln in PL.__doc__.splitlines() if "ref.push(" in ln)
    push = " ".join(PL.PipelineRef.push.__doc__.split())
    assert all(k in line for k in PL.RESULT_KEYS) and all(k in push for k in PL.RESULT_KEYS if k != "index")
