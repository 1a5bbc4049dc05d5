"""An int8 spectral export's `decoder_spec` states the fixed-point decoder fully (`fixed_point_steps` in words,
`fixed_point_tables`): an integrator's port written from metadata.json's decoder_spec alone (`doc_decode`: every
rule and constant read from the steps' text, every table as given) gives `IntDecoder`'s hr, lo, hi and conf (what
`sqtool predict` and the C kit report on int8 codes) bit for bit. The spec used to name the integer arithmetic only
("Q20 posterior, Q15 taps, Q24 likelihood table"), and an audit's float decoder, its front end ported bit-exact,
missed predict on 8 of 3792 real windows (one by 88.5 BPM, a near tie of two peaks; lo / hi by up to 1.6 BPM)."""
import re
from types import SimpleNamespace

import numpy as np
import pytest


def _stated(text: str, pattern: str) -> str:
    m = re.search(pattern, text)
    assert m, f"the steps do not state {pattern!r}"
    return m.group(1)


def _const(steps: list[str], name: str) -> int:
    """NAME = value, as the steps write it (and fixed_point_tables.constants repeats it)."""
    return int(_stated(" ".join(steps), rf"\b{name} = (-?\d+)\b"))


def _div_round(num: int, den: int) -> int:
    return (num + den // 2) // den if num >= 0 else -((-num + den // 2) // den)


def doc_decode(spec: dict, logits: np.ndarray, valid: np.ndarray, spec_codes: np.ndarray | None = None) -> dict:
    """The fixed-point decoder as an integrator writes it from decoder_spec: int8 logits (W, F), valid (W,) bool,
    the front end's int8 codes (W, F, C) (a decoder with evidence) -> hr_mbpm, lo_mbpm, hi_mbpm, conf_q15 (W,)."""
    st, tab = spec["fixed_point_steps"], spec["fixed_point_tables"]
    text = " ".join(st)
    assert st[7].startswith("posterior interval:") and "step 8's interval" in text or "step 8's" not in text
    names = ("NBINS", "RADIUS", "FLOOR_ADD", "REFINE", "BIN_LO_MBPM", "BIN_STEP_MBPM", "Q_LO", "Q_HI")
    C = {n: _const(st, n) for n in names}
    assert all(tab["constants"][n] == v for n, v in C.items())
    F, R = C["NBINS"], C["RADIUS"]
    for rule in ("d[k] = min(255, mx - e[k])", "prod[k] = prior[k] LUT[d[k]] (uint64)", "(valid = 0: the network is "
                 "not run) prod[k] = prior[k]", "if sum_k prod[k] = 0 (possible only with a zero floor) prod[k] = "
                 "LUT[d[k]]", "s = the least s >= 0 with (total >> s) < 2^32", "rcp = floor(2^63 / (total >> s))",
                 "b = the first largest p[k] and p[b] += 2^20 - sum_k p[k]", "a = the first largest p[k] (of the "
                 "corrected p)", "num = sum_(k = i0..i1) (k - a) p[k]", "hr_mbpm = BIN_LO_MBPM + BIN_STEP_MBPM a + "
                 "div_round(BIN_STEP_MBPM num, den)", "k = the first bin with CDF_k >= Q", "prev = CDF_(k - 1) (0 for "
                 "k = 0)", "div_round(BIN_STEP_MBPM (2 (Q - prev) - p[k]), 2 p[k])", "lo_mbpm = min(v_Q_LO, hr_mbpm), "
                 "hi_mbpm = max(v_Q_HI, hr_mbpm)", "if started = 0, prior[j] = p[j]", "p = fixed_point_tables."
                 "start_q20", "(num + den // 2) // den for num >= 0, else -((-num + den // 2) // den)",
                 "predict, on every window, scored or not", "then started = 1"):
        assert rule in text, rule
    psh = int(_stated(text, r"prior\[j\] = \(\(c\[j\] \+ 2\^\d+\) >> (\d+)\) \+ FLOOR_ADD"))
    nsh = int(_stated(text, r"p\[k\] = \(\(prod\[k\] >> s\) rcp \+ 2\^\d+\) >> (\d+)"))
    taps = np.array(tab["taps_q15"], object)
    full = np.concatenate([taps[:0:-1], taps])                              # offsets -R..R
    lut = [int(v) for v in tab["lut_q24"]]
    p = [int(v) for v in tab["start_q20"]]
    evidence = "evidence_pen" in tab
    if evidence:
        assert "m_k = the largest of -127 and s[k, c] over the channels c >= 1" in text
        assert "e[k] = code[k] - PEN[n_k]" in text and "n_k = clip(s[k, 0] - m_k, 0, 254)" in text
        pen = [int(v) for v in tab["evidence_pen"]]
    mass = "conf_raw_q15 = (m + 2^" in text
    if mass:
        cb = _const(st, "CONF_BINS")
        cm_sh = int(_stated(text, r"conf_raw_q15 = \(m \+ 2\^\d+\) >> (\d+)"))
    else:
        inv = _const(st, "CONF_INV")
        assert "conf_raw_q15 = 32768 - min(32768, (w CONF_INV + 2^15) >> 16) (uint64), w = max(0, hi_mbpm - lo_mbpm)" \
            in text
    calib = "calib_x_q15" in tab
    assert calib == ("conf_q15 = conf_raw_q15 (no calibration knots)" not in text)
    spread = "spread interval:" in text
    assert not spread or st[9].startswith("spread interval:") and "of step 10" in text     # the steps' own references
    if spread:
        sp = {n: _const(st, n) for n in ("SPREAD_SHIFT", "SPREAD_C_MBPM", "SPREAD_K_Q8", "EDGE_LO_MBPM", "EDGE_HI_MBPM")}
        frac = int(_stated(text, r"D = \|BIN_LO_MBPM \+ BIN_STEP_MBPM n - hr_mbpm\| << (\d+)"))
        assert "H = SPREAD_C_MBPM + ((SPREAD_K_Q8 S + 2^15) >> 16)" in text and "a window not scored leaves S as it is" \
            in text and "S = D if S_started = 0" in text and "S = S - (S >> SPREAD_SHIFT) + (D >> SPREAD_SHIFT)" in text
        S, s_started = 0, False
    started = False
    out = {k: [] for k in ("hr_mbpm", "lo_mbpm", "hi_mbpm", "conf_q15")}
    for t in range(len(logits)):
        if started:
            pp = [0] * R + p + [0] * R
            prior = [((sum(int(full[i]) * pp[j + i] for i in range(2 * R + 1)) + (1 << (psh - 1))) >> psh)
                     + C["FLOOR_ADD"] for j in range(F)]
        else:
            prior = list(p)
        started = True
        if valid[t]:
            e = [int(v) for v in logits[t]]
            if evidence:
                s = spec_codes[t].astype(int)
                e = [e[k] - pen[min(max(int(s[k, 0]) - max([-127] + [int(v) for v in s[k, 1:]]), 0), 254)]
                     for k in range(F)]
            mx = max(e)
            d = [min(255, mx - v) for v in e]
            prod = [prior[k] * lut[d[k]] for k in range(F)]
            if sum(prod) == 0:
                prod = [lut[d[k]] for k in range(F)]
        else:
            prod = prior
        total = sum(prod)
        sh = 0
        while (total >> sh) >= 1 << 32:
            sh += 1
        rcp = (1 << 63) // (total >> sh)
        p = [((v >> sh) * rcp + (1 << (nsh - 1))) >> nsh for v in prod]
        b = p.index(max(p))                                                # the first largest
        p[b] += (1 << 20) - sum(p)
        a = p.index(max(p))
        i0, i1 = max(0, a - C["REFINE"]), min(F - 1, a + C["REFINE"])
        num = sum((k - a) * p[k] for k in range(i0, i1 + 1))
        den = sum(p[i0:i1 + 1])
        hr = C["BIN_LO_MBPM"] + C["BIN_STEP_MBPM"] * a + _div_round(C["BIN_STEP_MBPM"] * num, den)
        v = []
        for q in (C["Q_LO"], C["Q_HI"]):
            cum, k = 0, 0
            while cum + p[k] < q:
                cum += p[k]
                k += 1
            v.append(C["BIN_LO_MBPM"] + C["BIN_STEP_MBPM"] * k + _div_round(C["BIN_STEP_MBPM"] * (2 * (q - cum) - p[k]),
                                                                           2 * p[k]))
        lo, hi = min(v[0], hr), max(v[1], hr)
        if mass:
            m = sum(p[max(0, a - cb):min(F - 1, a + cb) + 1])
            raw = (m + (1 << (cm_sh - 1))) >> cm_sh
        else:
            raw = 32768 - min(32768, (max(0, hi - lo) * inv + (1 << 15)) >> 16)
        conf = raw
        if calib:
            xs, ys = tab["calib_x_q15"], tab["calib_y_q15"]
            if raw <= xs[0]:
                conf = ys[0]
            else:
                conf = ys[-1]
                for j in range(len(xs) - 1):
                    if raw < xs[j + 1]:
                        dx = xs[j + 1] - xs[j]
                        conf = ys[j] + ((ys[j + 1] - ys[j]) * (raw - xs[j]) + dx // 2) // dx
                        break
        if spread:
            if valid[t]:
                n = int(np.argmax(logits[t]))                              # the first largest int8 code
                D = abs(C["BIN_LO_MBPM"] + C["BIN_STEP_MBPM"] * n - hr) << frac
                S, s_started = (S - (S >> sp["SPREAD_SHIFT"]) + (D >> sp["SPREAD_SHIFT"]), True) if s_started \
                    else (D, True)
            H = sp["SPREAD_C_MBPM"] + ((sp["SPREAD_K_Q8"] * S + (1 << 15)) >> 16)
            lo, hi = max(sp["EDGE_LO_MBPM"], hr - H), min(sp["EDGE_HI_MBPM"], hr + H)
        for k, val in (("hr_mbpm", hr), ("lo_mbpm", lo), ("hi_mbpm", hi), ("conf_q15", conf)):
            out[k].append(val)
    return {k: np.array(v) for k, v in out.items()}


KNOTS = {"conf_calib_x": [0, 6000, 15000, 26000, 32768], "conf_calib_y": [9000, 12000, 20000, 28000, 31000]}
VARIANTS = {   # the decoders select_decoder makes: interval posterior / spread, conf mass / width, raw / calibrated,
    "default": {},                                              # evidence, emission floor; and a Gaussian start
    "posterior_mass_calibrated": {"sigma_bpm": 3.1, "floor": 2e-3, "temperature": 1.4, **KNOTS},
    "spread_width_calibrated": {"interval_mode": "spread", "spread_shift": 3, "spread_c_bpm": 2.25,
                                "spread_k": 1.6640625, "conf_measure": "width", "interval": 0.8, **KNOTS},
    "spread_mass_raw": {"interval_mode": "spread", "spread_shift": 5, "spread_c_bpm": 0.5, "spread_k": 3.0,
                        "conf_halfwidth_bpm": 7.5, "refine_bins": 3},
    "evidence_emission_floor": {"evidence_weight": 0.5, "evidence_floor": 0.05, "emission_floor": 0.01,
                                "conf_measure": "width", "temperature": 0.8},
    "gaussian_start_zero_floor": {"start": "gaussian", "start_bpm": 90.0, "start_sigma_bpm": 15.0, "floor": 0.0,
                                  "refine_bins": 0, "conf_halfwidth_bpm": 0.0, **KNOTS},
}


def _sequences(cfg, F: int, C: int):
    """(logits (W, F) int8, valid (W,), spectra codes (W, F, C) int8) of several kinds: network-like (a peak on a random
    walk, outliers, harmonics), uniformly random, and exact / near ties of two far peaks; each with unscored windows,
    some at the start."""
    from sqtool.models.decoder import synthetic_logits
    rng = np.random.default_rng(11)
    out = []
    real, _ = synthetic_logits(rng, 60, cfg)
    out.append(real)
    out.append(rng.integers(-128, 128, (25, F)).astype(np.int8))
    b, lo, hi = np.arange(F), F // 4, F - 1 - F // 4                        # two peaks as far from either edge
    tie = np.array([-90 + np.round(37 * np.exp(-0.5 * ((b - lo) / 2.0) ** 2))
                    + np.round((37 - (t >= 8)) * np.exp(-0.5 * ((b - hi) / 2.0) ** 2)) for t in range(12)])
    out.append(tie.astype(np.int8))                                         # equal peaks, then one a code lower
    res = []
    for x in out:
        valid = rng.random(len(x)) > 0.2
        valid[:2] = [False, True] if len(x) > 30 else [True, True]
        valid[len(x) // 2: len(x) // 2 + 3] = False                         # a run of windows not scored
        codes = rng.integers(-127, 128, (len(x), F, C)).astype(np.int8)
        codes[:, :, 0] = np.maximum(codes[:, :, 0], x)                      # ppg where the logits peak
        res.append((x, valid, codes))
    return res


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_port_of_decoder_spec_alone_gives_the_fixed_point_decoder_bit_for_bit(variant):
    from sqtool.export.metadata import decoder_spec, float_metadata
    from sqtool.export.pipeline import decoder_config
    from sqtool.models import create_model
    from sqtool.models.decoder import IntDecoder, evidence_codes
    cfg = create_model("spec_student_s").cfg.to_dict()
    cfg["decoder"] = {**(cfg.get("decoder") or {}), **VARIANTS[variant]}
    graph = SimpleNamespace(output_scale=0.0913)                             # the int8 logits' scale
    spec = decoder_spec(cfg, graph)
    dec = decoder_config(cfg, graph)                                         # the C kit's and predict's decoder
    F, C = dec.n_bins, len(cfg["channels"])
    assert F == len(spec["fixed_point_tables"]["start_q20"]) and spec["fixed_point_tables"]["lut_q24"][0] == 1 << 24
    for x, valid, codes in _sequences(dec, F, C):
        want = IntDecoder(dec).run(x, valid, evidence_codes(codes) if dec.uses_evidence else None)
        got = doc_decode(spec, x, valid, codes)
        for k in got:
            assert np.array_equal(got[k], want[k].astype(np.int64)), \
                f"{variant} {k}: {np.mean(got[k] != want[k]):.1%} of the windows differ"
    assert "fixed_point_steps" not in float_metadata({"decoder_spec": spec})["decoder_spec"]   # int8 codes only


def test_the_tie_sequence_ties_and_the_spec_stays_small():
    """The near-tie windows do tie in the Q20 posterior (the first largest is what a port must pick), and the new
    entries stay a few KB of JSON (a 201-bin model with evidence and knots)."""
    import json
    from sqtool.export.metadata import decoder_spec
    from sqtool.export.pipeline import decoder_config
    from sqtool.models import create_model
    from sqtool.models.decoder import IntDecoder
    cfg = create_model("spec_student_s").cfg.to_dict()
    graph = SimpleNamespace(output_scale=0.0913)
    dec = decoder_config(cfg, graph)
    x, valid, _ = _sequences(dec, dec.n_bins, 1)[2]
    post = IntDecoder(dec).run(x, np.ones(len(x), bool))["post"].astype(np.int64)
    lo, hi = dec.n_bins // 4, dec.n_bins - 1 - dec.n_bins // 4
    assert all(abs(p[lo] - p[hi]) <= dec.n_bins and max(p[lo], p[hi]) == p.max() for p in post[:8])   # near ties
    cfg["decoder"] = {**(cfg.get("decoder") or {}), **VARIANTS["evidence_emission_floor"], **KNOTS}
    spec = decoder_spec(cfg, graph)
    added = len(json.dumps({k: spec[k] for k in ("fixed_point_steps", "fixed_point_tables")}))
    assert added < 12000, added


def test_integration_words_for_a_spec_with_and_without_the_fixed_point_entries():
    """INTEGRATION.md lists the steps where decoder_spec has them, and says in one line that there is no fixed-point
    decoder where it has none (a float-only export; metadata from before these entries reads the same)."""
    from sqtool.export.kit import fixed_point_texts
    from sqtool.export.metadata import decoder_spec
    from sqtool.models import create_model
    cfg = create_model("spec_student_s").cfg.to_dict()
    spec = decoder_spec(cfg, SimpleNamespace(output_scale=0.0913))
    text = fixed_point_texts(spec)["DECODER_FIXED"]
    assert all(f"\n{i}. {t}" in text for i, t in enumerate(spec["fixed_point_steps"], 1))
    old = {k: v for k, v in spec.items() if not k.startswith("fixed_point_")}
    assert "no int8 model" in fixed_point_texts(old)["DECODER_FIXED"] and "fixed_point_steps" not in decoder_spec(cfg)
