"""The fixed-point HMM decoder of a spectral int8 export, in words and tables, for an integrator without sqtool.

    decoder_spec["fixed_point_steps"], decoder_spec["fixed_point_tables"] = fixed_point_contract(dec)

`dec` is the decoder the C kit is rendered from and `sqtool predict` runs on int8 codes (`export.pipeline.
decoder_config`: logit_scale = the int8 output scale / temperature). The steps state `IntDecoder`'s integer
arithmetic (`sqtool.models.decoder`, bit-exact with c/<prefix>_decoder.c) with this export's constants written in
them (NAME = value, the names of the C kit's SQ_DEC_* defines); `fixed_point_tables` holds the same constants and
the tables (`decoder_tables`): a port of the steps gives predict's hr, lo, hi and conf bit for bit
(tests/export/test_decoder_fixed_docs.py). A float implementation of `decoder_spec`'s equations does not where the
posterior nearly ties (its argmax can pick the other peak). Size in metadata.json: the 256-entry Q24 table (~2.3
KB), the start table (F entries: ~1 KB at F = 134..201), the taps, the evidence penalties (255 small integers, with
evidence only), the calibration knots and the steps' text (~4 KB).
"""
from __future__ import annotations

from sqtool.models.decoder import (LUT_ONE, NORM_SHIFT, POST_BITS, POST_ONE, PRIOR_SHIFT, SPREAD_FRAC, TAP_ONE,
                                   DecoderCfg, EVIDENCE_MAX, IntDecoder, decoder_tables)


def fixed_point_constants(dec: DecoderCfg, t: dict | None = None) -> dict[str, int]:
    """The fixed-point decoder's scalar constants, by the C kit's define names (SQ_DEC_ dropped); t: its
    `decoder_tables` when already built."""
    t = decoder_tables(dec) if t is None else t
    c = {k.upper(): int(t[k]) for k in ("nbins", "radius", "bin_lo_mbpm", "bin_step_mbpm", "floor_add", "q_lo", "q_hi",
                                        "refine", "conf_bins", "conf_inv")}
    if int(t["spread"]):
        d = IntDecoder(dec)                                                # the grid's extent, as the decoder clamps
        c.update(SPREAD_SHIFT=int(t["spread_shift"]), SPREAD_C_MBPM=int(t["spread_c_mbpm"]),
                 SPREAD_K_Q8=int(t["spread_k_q8"]), EDGE_LO_MBPM=int(d.edge_lo), EDGE_HI_MBPM=int(d.edge_hi))
    return c


def fixed_point_tables(dec: DecoderCfg, t: dict | None = None) -> dict:
    """metadata.json's decoder_spec.fixed_point_tables: `constants` and the integer tables as lists."""
    t = decoder_tables(dec) if t is None else t
    out = {"constants": fixed_point_constants(dec, t), "taps_q15": [int(v) for v in t["taps"]],
           "lut_q24": [int(v) for v in t["lut"]], "start_q20": [int(v) for v in t["start"]]}
    if int(t["evidence"]):
        out["evidence_pen"] = [int(v) for v in t["pen"]]
    if len(t["calib_x"]):
        out["calib_x_q15"], out["calib_y_q15"] = [int(v) for v in t["calib_x"]], [int(v) for v in t["calib_y"]]
    return out


def fixed_point_steps(dec: DecoderCfg, t: dict | None = None) -> list[str]:
    """The fixed-point decoder's steps in words, this export's constants written in as NAME = value."""
    c = fixed_point_constants(dec, t)
    f, r, spread = c["NBINS"], c["RADIUS"], dec.interval_mode == "spread"
    emission = "e[k] = the network's int8 output code of bin k (int16)"
    if dec.uses_evidence:
        emission = ("e[k] = code[k] - PEN[n_k] (int16), code[k] the network's int8 output code of bin k, PEN = "
                    f"fixed_point_tables.evidence_pen ({EVIDENCE_MAX + 1} entries, 0 at n = {EVIDENCE_MAX}), n_k = "
                    f"clip(s[k, 0] - m_k, 0, {EVIDENCE_MAX}), s[k, c] the window's front-end int8 codes of bin k "
                    "(channel 0 the ppg, the others the accelerometer's), m_k = the largest of -127 and s[k, c] over "
                    "the channels c >= 1 (-127 with no accelerometer channel)")
    if dec.conf_measure == "width":
        raw = (f"conf_raw_q15 = 32768 - min(32768, (w CONF_INV + 2^15) >> 16) (uint64), w = max(0, hi_mbpm - lo_mbpm) "
               f"of step 8's interval, CONF_INV = {c['CONF_INV']} (= round(2^31 / (BIN_STEP_MBPM NBINS)))")
    else:
        raw = (f"conf_raw_q15 = (m + 2^{POST_BITS - 16}) >> {POST_BITS - 15} (0..32768), m = the sum of p[k] over "
               f"k = max(0, a - CONF_BINS) .. min(NBINS - 1, a + CONF_BINS), CONF_BINS = {c['CONF_BINS']}")
    cal = ("conf_q15 = conf_raw_q15 (no calibration knots)" if not dec.conf_calib_x else
           f"conf_q15 = the calibration of conf_raw_q15 through the {len(dec.conf_calib_x)} knots x = fixed_point_tables"
           ".calib_x_q15, y = fixed_point_tables.calib_y_q15 (K = their count): y[0] when conf_raw_q15 <= x[0]; else, "
           "for the first j with conf_raw_q15 < x[j + 1], y[j] + ((y[j + 1] - y[j]) (conf_raw_q15 - x[j]) + dx // 2) "
           "// dx, dx = x[j + 1] - x[j] (uint32); y[K - 1] when there is no such j")
    steps = [
        "integers only (no float in a step; every table was computed at export time and is in fixed_point_tables, "
        "whose `constants` repeat the NAME = value constants below): >> of a non-negative value is a floor division by "
        "a power of two, // the floor division of non-negative integers; div_round(num, den) (den > 0) = (num + den "
        "// 2) // den for num >= 0, else -((-num + den // 2) // den) (half away from zero: C's truncating division on "
        "magnitudes); 'the first largest' is the lowest index among equal maxima; uint64 / int64 products never "
        "overflow (bounds: sqtool.models.decoder's docstring)",
        f"state per stream: the posterior p[k], k = 0..NBINS - 1, NBINS = {f}, uint32 in Q20 (sum p = 2^{POST_BITS} = "
        f"{POST_ONE} after every step), and a flag started"
        + (", and S (uint32) with a flag S_started, for the interval of step 10" if spread else "")
        + "; reset (the stream's start): p = fixed_point_tables.start_q20 (the start distribution, already summing "
          f"to 2^{POST_BITS}), started = 0" + (", S = 0, S_started = 0" if spread else ""),
        "predict, on every window, scored or not: if started = 0, prior[j] = p[j] (no transition before the first "
        f"window after a reset); else c[j] = taps[0] p[j] + sum_(d = 1..RADIUS) taps[d] (p[j - d] + p[j + d]) (uint64; "
        f"p is 0 outside 0..NBINS - 1), RADIUS = {r}, taps = fixed_point_tables.taps_q15 (offsets 0..RADIUS, the "
        f"symmetric kernel sums to 2^15 = {TAP_ONE}), and prior[j] = ((c[j] + 2^{PRIOR_SHIFT - 1}) >> {PRIOR_SHIFT}) + "
        f"FLOOR_ADD (uint32), FLOOR_ADD = {c['FLOOR_ADD']} (the jump floor); then started = 1",
        f"likelihood, on a scored window (valid = 1) only: {emission}; mx = max_k e[k]; d[k] = min(255, mx - e[k]); "
        f"the likelihood of bin k is LUT[d[k]], LUT = fixed_point_tables.lut_q24 (256 entries, Q24: LUT[0] = 2^24 = "
        f"{LUT_ONE}; exp(-int8_logit_scale d) with the emission floor folded in)",
        "update: on a scored window prod[k] = prior[k] LUT[d[k]] (uint64), and if sum_k prod[k] = 0 (possible only "
        "with a zero floor) prod[k] = LUT[d[k]] instead (a restart from the likelihood); on a window not scored "
        "(valid = 0: the network is not run) prod[k] = prior[k] (predict only)",
        f"normalise: total = sum_k prod[k] (uint64); s = the least s >= 0 with (total >> s) < 2^32; rcp = floor(2^63 / "
        f"(total >> s)) (one 64-bit division); p[k] = ((prod[k] >> s) rcp + 2^{NORM_SHIFT - 1}) >> {NORM_SHIFT} "
        f"(uint64); then b = the first largest p[k] and p[b] += 2^{POST_BITS} - sum_k p[k] (a signed correction, at "
        f"most NBINS / 2 + 2 in size), so that sum p = 2^{POST_BITS} exactly",
        f"hr: a = the first largest p[k] (of the corrected p); i0 = max(0, a - REFINE), i1 = min(NBINS - 1, a + "
        f"REFINE), REFINE = {c['REFINE']}; num = sum_(k = i0..i1) (k - a) p[k] (int64), den = sum_(k = i0..i1) p[k]; "
        "hr_mbpm = BIN_LO_MBPM + BIN_STEP_MBPM a + div_round(BIN_STEP_MBPM num, den) (int32 milli-BPM), BIN_LO_MBPM = "
        f"{c['BIN_LO_MBPM']}, BIN_STEP_MBPM = {c['BIN_STEP_MBPM']}",
        "posterior interval: for Q = Q_LO and Q = Q_HI, Q_LO = "
        f"{c['Q_LO']}, Q_HI = {c['Q_HI']} (Q20 quantiles): k = the first bin with CDF_k >= Q, CDF_k = sum_(j <= k) "
        "p[j], prev = CDF_(k - 1) (0 for k = 0); v_Q = BIN_LO_MBPM + BIN_STEP_MBPM k + div_round(BIN_STEP_MBPM (2 (Q - "
        "prev) - p[k]), 2 p[k]) (int64 numerator); lo_mbpm = min(v_Q_LO, hr_mbpm), hi_mbpm = max(v_Q_HI, hr_mbpm)"
        + (" (not reported: step 10 replaces it" + ("; the width confidence reads it)" if dec.conf_measure == "width"
                                                     else ")") if spread else ""),
        f"confidence: {raw}; {cal}",
    ]
    if spread:
        steps.append(
            "spread interval: on a scored window, n = the first largest of the window's int8 output codes (the "
            "network's own argmax, not of p, and without the evidence), D = |BIN_LO_MBPM + BIN_STEP_MBPM n - hr_mbpm| "
            f"<< {SPREAD_FRAC} (uint32); S = D if S_started = 0 (then S_started = 1), else S = S - (S >> SPREAD_SHIFT) "
            f"+ (D >> SPREAD_SHIFT), SPREAD_SHIFT = {c['SPREAD_SHIFT']}; a window not scored leaves S as it is; H = "
            f"SPREAD_C_MBPM + ((SPREAD_K_Q8 S + 2^15) >> 16) (uint64), SPREAD_C_MBPM = {c['SPREAD_C_MBPM']}, "
            f"SPREAD_K_Q8 = {c['SPREAD_K_Q8']}; lo_mbpm = max(EDGE_LO_MBPM, hr_mbpm - H), hi_mbpm = min(EDGE_HI_MBPM, "
            f"hr_mbpm + H), EDGE_LO_MBPM = {c['EDGE_LO_MBPM']}, EDGE_HI_MBPM = {c['EDGE_HI_MBPM']} (the grid's extent)")
    steps.append("outputs: hr = hr_mbpm / 1000, lo = lo_mbpm / 1000, hi = hi_mbpm / 1000 BPM, conf = conf_q15 / "
                 "32768; a window not scored runs every step but the likelihood: its hr is the prediction only "
                 "(valid = 0)")
    return steps


def fixed_point_contract(dec: DecoderCfg) -> dict:
    """decoder_spec's fixed-point entries: {"fixed_point_steps": [...], "fixed_point_tables": {...}}."""
    t = decoder_tables(dec)                                                # built once for both
    return {"fixed_point_steps": fixed_point_steps(dec, t), "fixed_point_tables": fixed_point_tables(dec, t)}
