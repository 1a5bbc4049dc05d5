"""The generated C decoder (sq_decoder.{h,c} + tables) is bit-exact with `IntDecoder`: host gcc with the
file harness on random logits (several seeds, logit scales, sigmas, invalid windows mixed in) and on
network-like logits; a second prefix links next to the first; Cortex-M4 cross-compile with -Werror; an
ASan + UBSan run on random and extreme logits."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.export import c_decoder as CD
from sqtool.models import decoder as D

FIELDS = ["hr_mbpm", "lo_mbpm", "hi_mbpm", "conf_q15", "argmax", "valid"]
SANITIZE = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def _need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} missing")


def build(cfg: D.DecoderCfg, work: Path, extra: tuple[str, ...] = ()) -> Path:
    _need("gcc")
    src = work / "c"
    CD.render_decoder(cfg, src, harness=True)
    exe = work / "harness"
    r = subprocess.run(["gcc", *CD.C_FLAGS, *extra, "-I", str(src), str(src / "sq_decoder.c"),
                        str(src / "sq_decoder_harness.c"), "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


def run_c(exe: Path, logits: np.ndarray, valid: np.ndarray, spec: np.ndarray | None = None) -> dict[str, np.ndarray]:
    w, f = logits.shape
    c = 0 if spec is None else spec.shape[2]
    inp, out = exe.parent / "in.bin", exe.parent / "out.bin"
    inp.write_bytes(np.array([w, f, c], np.int32).tobytes() + logits.astype(np.int8).tobytes()
                    + np.asarray(valid, np.uint8).tobytes() + (b"" if spec is None else spec.astype(np.int8).tobytes()))
    r = subprocess.run([str(exe), str(inp), str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = np.fromfile(out, np.int32).reshape(w, len(FIELDS))
    return {k: rows[:, i] for i, k in enumerate(FIELDS)}


def assert_bit_exact(cfg, exe, logits, valid, what, spec=None):
    got = run_c(exe, logits, valid, spec)
    want = D.IntDecoder(cfg).run(logits, valid, None if spec is None else D.evidence_codes(spec))
    for k in FIELDS:
        np.testing.assert_array_equal(got[k], want[k].astype(np.int32), err_msg=f"{what}: {k}")


CFGS = {
    "default": D.DecoderCfg(),
    "sharp_s2": D.DecoderCfg(logit_scale=0.3, sigma_bpm=2.0, floor=1e-4),
    "soft_s8": D.DecoderCfg(logit_scale=0.04, sigma_bpm=8.0, floor=1e-2, start="gaussian", start_bpm=70.0),
    "half_bpm_grid": D.DecoderCfg(bins_bpm=(40.0, 200.0, 0.5), sigma_bpm=3.0, floor=0.0, refine_bins=3,
                                  interval=0.8, conf_halfwidth_bpm=3.0),
    # interval masses / confidence half-widths at the ends of what hr_bins.select_decoder may choose
    "calibrated_wide": D.DecoderCfg(logit_scale=0.2, sigma_bpm=3.0, interval=0.9999, conf_halfwidth_bpm=12.0),
    "calibrated_narrow": D.DecoderCfg(logit_scale=0.1, sigma_bpm=4.0, interval=0.5, conf_halfwidth_bpm=2.0),
    # the confidence read from the interval's width (select_decoder's other candidate)
    "conf_width": D.DecoderCfg(logit_scale=0.125, sigma_bpm=4.0, interval=0.5, conf_measure="width"),
    "conf_width_wide_half_grid": D.DecoderCfg(bins_bpm=(40.0, 200.0, 0.5), logit_scale=0.05, sigma_bpm=6.0,
                                              interval=0.9999, conf_measure="width"),
    # the motion-subtracted PPG spectrum weighed into the emission (select_decoder's evidence_weight)
    "evidence": D.DecoderCfg(logit_scale=0.1, sigma_bpm=4.0, evidence_weight=0.5),
    "evidence_strong_small_scale": D.DecoderCfg(logit_scale=0.02, sigma_bpm=6.0, evidence_weight=4.0,
                                                evidence_floor=1e-3, conf_measure="width"),
    # the emission floor (select_decoder's emission_floors): in the LUT only; with evidence and a flat scale
    "emission_floor": D.DecoderCfg(logit_scale=0.125, sigma_bpm=6.0, floor=1e-2, emission_floor=0.03),
    "emission_floor_evidence": D.DecoderCfg(logit_scale=0.04, sigma_bpm=3.0, evidence_weight=1.0,
                                            emission_floor=D.MAX_EMISSION_FLOOR),
    # the confidence calibrated to 1 - expected error / extent (select_decoder's knots): the mass measure with
    # 16 knots (steep and flat segments, 0 and 32768 at the ends), the width measure with 2
    "conf_knots_mass": D.DecoderCfg(logit_scale=0.1, sigma_bpm=4.0, conf_halfwidth_bpm=8.0,
                                    conf_calib_x=(0, 9000, 15000, 20000, 24000, 26000, 28000, 29000, 30000, 30500,
                                                  31000, 31500, 32000, 32300, 32600, 32768),
                                    conf_calib_y=(0, 100, 5000, 5000, 20000, 25000, 28000, 30000, 30000, 31000,
                                                  31500, 32000, 32400, 32600, 32700, 32768)),
    "conf_knots_width": D.DecoderCfg(logit_scale=0.125, sigma_bpm=4.0, interval=0.7, conf_measure="width",
                                     conf_calib_x=(20000, 32000), conf_calib_y=(31000, 32500)),
    # the spread interval (select_decoder's interval_mode "spread"): hr -+ (c + k S), S the recent |network argmax
    # - hr|; with the width conf (which reads the posterior's interval, not this one), evidence, the largest k and
    # shift, and a half-BPM grid with invalid windows first (S held at 0 until the first valid one)
    "spread": D.DecoderCfg(logit_scale=0.1, sigma_bpm=4.0, interval=0.6, interval_mode="spread", spread_shift=4,
                           spread_c_bpm=1.25, spread_k=1.7),
    "spread_width_conf_evidence": D.DecoderCfg(logit_scale=0.125, sigma_bpm=4.0, interval=0.5, conf_measure="width",
                                               evidence_weight=0.5, interval_mode="spread", spread_shift=1,
                                               spread_c_bpm=0.0, spread_k=D.MAX_SPREAD_K),
    "spread_half_grid_slow": D.DecoderCfg(bins_bpm=(40.0, 200.0, 0.5), sigma_bpm=3.0, interval_mode="spread",
                                          spread_shift=D.MAX_SPREAD_SHIFT, spread_c_bpm=160.5, spread_k=0.0039),
    # the spread interval cut at the grid's extent (hr -+ h past both edges on random logits) and on a grid whose
    # step is an odd number of milli-BPM (edges a half step rounded outwards: 166.5 -> 167 mBPM)
    "spread_past_both_edges": D.DecoderCfg(logit_scale=0.1, sigma_bpm=2.0, floor=1e-4, interval_mode="spread",
                                           spread_shift=3, spread_c_bpm=1.5, spread_k=2.25),
    "spread_odd_step_grid": D.DecoderCfg(bins_bpm=(40.0, 139.9, 0.333), logit_scale=0.1, sigma_bpm=2.0,
                                         interval_mode="spread", spread_shift=2, spread_c_bpm=30.0, spread_k=1.0),
}


def random_spectra(rng, w: int, f: int, c: int = 4) -> np.ndarray:
    """int8 (W, F, C) front-end-like spectra: each channel's max bin at 127, codes -127..127."""
    x = rng.integers(-127, 128, (w, f, c))
    x[np.arange(w), rng.integers(0, f, w), :] = 127
    return x.astype(np.int8)


@pytest.mark.parametrize("name", list(CFGS))
def test_c_is_bit_exact_with_int_decoder(name, tmp_path):
    cfg = CFGS[name]
    exe = build(cfg, tmp_path)
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        q = rng.integers(-128, 128, (60, cfg.n_bins)).astype(np.int8)
        valid = rng.random(60) > 0.25
        spec = random_spectra(rng, 60, cfg.n_bins) if cfg.uses_evidence else None
        assert_bit_exact(cfg, exe, q, valid, f"{name} random seed {seed}", spec)
        q, _ = D.synthetic_logits(rng, 150, cfg)
        valid = rng.random(150) > 0.1
        valid[40:52] = False                                              # a long gap
        spec = random_spectra(rng, 150, cfg.n_bins) if cfg.uses_evidence else None
        assert_bit_exact(cfg, exe, q, valid, f"{name} network-like seed {seed}", spec)
        if cfg.uses_evidence:                                             # a PPG-only spectrum (C = 1) too
            assert_bit_exact(cfg, exe, q, valid, f"{name} ppg-only seed {seed}", spec[:, :, :1].copy())


@pytest.mark.parametrize("name", ["spread_past_both_edges", "spread_odd_step_grid"])
def test_c_spread_interval_is_clamped_to_the_grid_like_the_reference(name, tmp_path):
    """A railed or far-off network reading pushes hr -+ (C + K S) past both ends of the grid (a tester's C API: lo 0,
    hi 255216 milli-BPM): the C cuts it at the grid's extent, bit-exact with IntDecoder, and still holds hr."""
    cfg = CFGS[name]
    exe = build(cfg, tmp_path)
    f, step = cfg.n_bins, int(D.decoder_tables(cfg)["bin_step_mbpm"])
    m0 = int(D.decoder_tables(cfg)["bin_lo_mbpm"]) - (step + 1) // 2
    m1 = int(D.decoder_tables(cfg)["bin_lo_mbpm"]) + step * (f - 1) + (step + 1) // 2
    q = np.full((80, f), -100, np.int8)
    for t in range(80):                                                   # the track near one end, the network
        home, far = (5, f - 1) if t < 40 else (f - 6, 0)                  # jumping to the other, railed windows
        q[t, far if t % 4 == 3 else home] = 127
        if t % 7 == 6:
            q[t] = 0
    valid = np.ones(80, bool)
    valid[[10, 50]] = False
    assert_bit_exact(cfg, exe, q, valid, f"{name} past both edges")
    got = run_c(exe, q, valid)
    assert got["lo_mbpm"].min() == m0 and got["hi_mbpm"].max() == m1
    assert (got["lo_mbpm"] <= got["hr_mbpm"]).all() and (got["hr_mbpm"] <= got["hi_mbpm"]).all()


def test_second_prefix_links_next_to_the_first(tmp_path):
    _need("gcc")
    a, b = CFGS["default"], CFGS["sharp_s2"]
    CD.render_decoder(a, tmp_path / "c", prefix="sq", harness=True)
    files = CD.render_decoder(b, tmp_path / "c", prefix="hr2")
    assert [p.name for p in files] == ["hr2_decoder_tables.h", "hr2_decoder.h", "hr2_decoder.c"]
    for p in files:
        assert "sq_" not in p.read_text() and "SQ_" not in p.read_text()
    src = tmp_path / "c"
    r = subprocess.run(["gcc", *CD.C_FLAGS, "-I", str(src), str(src / "sq_decoder.c"), str(src / "hr2_decoder.c"),
                        str(src / "sq_decoder_harness.c"), "-o", str(tmp_path / "both")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with pytest.raises(SqtoolError, match="prefix"):
        CD.render_decoder(a, tmp_path / "x", prefix="HR-2")


def test_cortex_m4_cross_compile_is_warning_free(tmp_path):
    _need("arm-none-eabi-gcc")
    for name in ("default", "half_bpm_grid", "conf_width", "evidence", "conf_knots_mass", "spread_past_both_edges"):
        src = tmp_path / name
        CD.render_decoder(CFGS[name], src)
        r = subprocess.run(["arm-none-eabi-gcc", *CD.C_FLAGS, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                            "-mfpu=fpv4-sp-d16", "-c", str(src / "sq_decoder.c"), "-o", str(src / "m4.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        if shutil.which("arm-none-eabi-nm"):
            syms = subprocess.run(["arm-none-eabi-nm", str(src / "m4.o")], capture_output=True, text=True).stdout
            assert "__aeabi_f" not in syms and "__aeabi_d" not in syms       # no soft-float helpers
            assert "malloc" not in syms


def test_sanitizers_on_random_and_extreme_logits(tmp_path):
    cfg = D.DecoderCfg(bins_bpm=(30.0, 230.0, 1.0), sigma_bpm=1.0, floor=0.0, logit_scale=0.5)
    try:
        exe = build(cfg, tmp_path, tuple(SANITIZE))
    except AssertionError as e:
        if "asan" in str(e).lower() or "ubsan" in str(e).lower():
            pytest.skip(f"sanitizer runtime missing: {e}")
        raise
    f = cfg.n_bins
    rng = np.random.default_rng(7)
    q = [np.zeros(f), np.full(f, -128), np.full(f, 127), np.where(np.arange(f) % 2, 127, -128)]
    one_hot = np.full((4, f), -128)
    one_hot[0, 0], one_hot[1, f - 1], one_hot[2, 0], one_hot[3, 100] = 127, 127, 127, 127   # disjoint: restarts
    q = np.concatenate([np.array(q), one_hot, rng.integers(-128, 128, (30, f))]).astype(np.int8)
    valid = np.ones(len(q), bool)
    valid[[2, 9, 20]] = False
    assert_bit_exact(cfg, exe, q, valid, "sanitized extremes")
    assert_bit_exact(cfg, exe, q, np.zeros(len(q), bool), "sanitized all invalid")
    ev = D.DecoderCfg(**{**cfg.to_dict(), "logit_scale": 0.1, "evidence_weight": 8.0, "evidence_floor": 1e-4})  # PEN clips
    assert int(D.decoder_tables(ev)["pen"].max()) == 255
    exe = build(ev, tmp_path / "ev", tuple(SANITIZE))
    spec = np.concatenate([np.full((4, f, 4), 127), np.full((4, f, 4), -127), random_spectra(rng, 30, f)]).astype(np.int8)
    spec[:2, :, 0] = -127                                                 # ppg silent, acc at its peak: n = 0
    assert_bit_exact(ev, exe, q, valid, "sanitized extremes with evidence", spec)
