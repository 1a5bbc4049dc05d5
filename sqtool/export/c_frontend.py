"""C front end for the firmware: `sq_frontend_tables.h` (generated) + the `sq_frontend.{h,c}` templates.

`render_frontend(cfg, out_dir, prefix="sq")` writes three files into out_dir:

    <prefix>_frontend_tables.h   #defines of every contract value (rates, T, hop, bins, channels,
                                 band, order, formats, the config as JSON) and, when the includer
                                 defines <PREFIX>_FE_DEFINE_TABLES (only <prefix>_frontend.c does),
                                 the const tables: polyphase FIR Q15, biquads Q30, Hann Q15, and the
                                 cos table packed as words (cos[i] | sin[i] << 16; N + 2 KMAX entries
                                 so the DFT's pair loop never wraps between samples n and n + 1)
    <prefix>_frontend.h          API + state struct (template, prefix substituted)
    <prefix>_frontend.c          implementation (template, prefix substituted)

SQ_FE_N_PPG (the device's PPG sensors, 1 or 2, FrontEndCfg.n_ppg) sizes the input channels (SQ_FE_NIN);
the code channels stay SQ_FE_NCH. Every symbol and macro in them starts with sq_ / SQ_, renamed textually to prefix_ / PREFIX_ so two
front ends can live in one image. The arithmetic is the contract of sqtool/data/frontend.py; the
tables come from its `design(cfg)`, so the C and the numpy reference are bit-exact by construction
(tests/export/test_c_frontend.py checks it).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sqtool.export.c_render import c_array, c_number, check_prefix, define_block, template, write_sources
from sqtool.data.frontend import CODE_BITS, MID_SAT, NORM_BITS, NORM_FRAC, FrontEndCfg, FrontEndTables, design

TEMPLATES = ("sq_frontend.h", "sq_frontend.c")


def packed_cos_sin(tab: FrontEndTables) -> np.ndarray:
    """(N + 2 KMAX,) uint32: cos[i mod N] in the low half, cos[(i + 3N/4) mod N] (= sin) in the high.

    The DFT's pair loop reads cs[idx] and cs[idx + k] (idx < N) and advances idx by 2k before
    wrapping, so N + 2 KMAX entries keep every pointer it forms inside the table."""
    N = tab.N
    i = np.arange(N + 2 * int(tab.k.max()))
    c = tab.cos.astype(np.int64)
    lo = c[i % N] & 0xFFFF
    hi = c[(i + 3 * N // 4) % N] & 0xFFFF
    return (lo | (hi << 16)).astype(np.uint64)


def tables_header(cfg: FrontEndCfg, tab: FrontEndTables) -> str:
    L, M, P, S = tab.up, tab.down, tab.fir.shape[1], tab.sos.shape[0]
    cs = packed_cos_sin(tab)
    sizes = tab.flash_bytes()
    cfg_json = json.dumps(cfg.to_dict(), sort_keys=True)
    defines = [
        ("SQ_FE_FS_IN", c_number(cfg.fs_in), "device sampling rate (Hz)"),
        ("SQ_FE_FS", c_number(cfg.fs), "model rate (Hz)"),
        ("SQ_FE_UP", L, "resampler up factor L (fs / fs_in = L / M, reduced)"),
        ("SQ_FE_DOWN", M, "resampler down factor M"),
        ("SQ_FE_TAPS", P, "polyphase FIR taps per phase"),
        ("SQ_FE_FIR_CUTOFF_HZ", c_number(cfg.fir_cutoff_hz), "Kaiser low-pass cutoff"),
        ("SQ_FE_KAISER_BETA", c_number(cfg.kaiser_beta), "Kaiser window beta"),
        ("SQ_FE_NCH", cfg.n_channels, "network channels: ppg (+ acc_x, acc_y, acc_z; 2: + acc, the axes summed)"),
        ("SQ_FE_N_PPG", cfg.n_ppg, "PPG sensors on the device, averaged into the ppg channel"),
        ("SQ_FE_NIN", cfg.n_inputs, "input channels: the PPG sensors, then the acc axes"),
        ("SQ_FE_T", tab.T, "window length (model-rate samples)"),
        ("SQ_FE_HOP", tab.hop, "hop (model-rate samples)"),
        ("SQ_FE_WINDOW_S", c_number(cfg.window_s), "window (s)"),
        ("SQ_FE_HOP_S", c_number(cfg.hop_s), "hop (s)"),
        ("SQ_FE_LATENCY_MS", int(round(1000 * (tab.T - 1) / cfg.fs)),
         "window ready this long after its start (last model sample's time stamp)"),
        ("SQ_FE_FILTER_ORDER", cfg.filter_order, "Butterworth band-pass order (= biquad sections)"),
        ("SQ_FE_NSOS", S, "biquad sections"),
        ("SQ_FE_BAND_LO_HZ", c_number(cfg.band[0]), "band-pass low edge"),
        ("SQ_FE_BAND_HI_HZ", c_number(cfg.band[1]), "band-pass high edge"),
        ("SQ_FE_FILTER", '"butterworth"', "band-pass type"),
        ("SQ_FE_PHASE", '"causal"', "filter phase"),
        ("SQ_FE_IIR_FRAC", cfg.iir_frac_bits, "biquad coefficient fraction bits"),
        ("SQ_FE_MID_SAT", MID_SAT, "inner biquad outputs clamped to [-MID_SAT-1, MID_SAT]"),
        ("SQ_FE_N", tab.N, "cos table size = 60 fs / bin_step"),
        ("SQ_FE_K0", int(tab.k[0]), "first bin's index on the N-point grid"),
        ("SQ_FE_KMAX", int(tab.k.max()), "last bin's index"),
        ("SQ_FE_NBINS", tab.n_bins, "spectrum bins"),
        ("SQ_FE_BIN_BPM_FIRST", c_number(cfg.bins_bpm[0]), "first bin (BPM)"),
        ("SQ_FE_BIN_BPM_LAST", c_number(cfg.bins_bpm[1]), "last bin (BPM)"),
        ("SQ_FE_BIN_BPM_STEP", c_number(cfg.bins_bpm[2]), "bin step (BPM)"),
        ("SQ_FE_XMAX", tab.xmax, "block floating point: |x| <= XMAX before the Hann window"),
        ("SQ_FE_COS_ONE", 1 << cfg.cos_frac_bits, "cos table scale"),
        ("SQ_FE_DFT_BOUND", tab.dft_bound, "proven bound of |re|, |im| (< 2^31)"),
        ("SQ_FE_POWER_SHIFT", cfg.power_shift, "re, im rounded >> this before squaring"),
        ("SQ_FE_CODE_BITS", CODE_BITS, "Pmax shifted below 2^CODE_BITS before the division"),
        ("SQ_FE_NORM_BITS", NORM_BITS, "N_PPG > 1: a sensor's Pmax shifted below 2^NORM_BITS, then"),
        ("SQ_FE_NORM_FRAC", NORM_FRAC, "its spectrum normalised to 2^NORM_FRAC at its max"),
        ("SQ_FE_CODE_MIN", -127, "codes: round(254 P / Pmax) - 127"),
        ("SQ_FE_CODE_MAX", 127, ""),
        ("SQ_FE_GAIN_PPG", c_number(cfg.gain_ppg), "input scaling assumed: int16 counts per PPG unit"),
        ("SQ_FE_GAIN_ACC", c_number(cfg.gain_acc), "input scaling assumed: int16 counts per g"),
        ("SQ_FE_TABLE_BYTES", sum(sizes.values()), "const tables (flash)"),
    ]
    body = define_block(defines)
    fir = c_array("int16_t", f"sq_fe_fir[{L}][{P}]", tab.fir)
    sos = c_array("int32_t", f"sq_fe_sos[{S}][5]", tab.sos, per_line=5)
    hann = c_array("int16_t", f"sq_fe_hann[{tab.T}]", tab.hann)
    csa = c_array("uint32_t", f"sq_fe_cs[{cs.size}]", cs, per_line=8, fmt=lambda v: f"0x{v:08X}u")
    return f"""/*
 * sq_frontend_tables.h - generated by sqtool.export.c_frontend from FrontEndCfg; do not edit.
 * Contract (also in sqtool/data/frontend.py): {cfg_json}
 * Tables (flash bytes): {json.dumps(sizes)}
 */
#ifndef SQ_FRONTEND_TABLES_H
#define SQ_FRONTEND_TABLES_H

#include <stdint.h>

{body}
#define SQ_FE_CFG_JSON {json.dumps(cfg_json)}

#endif /* SQ_FRONTEND_TABLES_H */

#if defined(SQ_FE_DEFINE_TABLES) && !defined(SQ_FRONTEND_TABLES_DEFINED)
#define SQ_FRONTEND_TABLES_DEFINED
/* polyphase FIR, Q15: output m at phase p = m DOWN mod UP: sum_i fir[p][i] x[n_m - i]; each row sums to 32768 */
{fir}
/* band-pass biquads, Q{cfg.iir_frac_bits}: b0 b1 b2 a1 a2 (a0 = 1) */
{sos}
/* periodic Hann, Q15 (1.0 clamped to 32767) */
{hann}
/* cos (low half) and sin (high half) Q{cfg.cos_frac_bits} at 2 pi i / N, i < N + 2 KMAX */
{csa}
#endif
"""


def render_frontend(cfg: FrontEndCfg, out_dir, prefix: str = "sq") -> list[Path]:
    """Write <prefix>_frontend_tables.h, <prefix>_frontend.h, <prefix>_frontend.c into out_dir."""
    check_prefix(prefix)
    files = {"sq_frontend_tables.h": tables_header(cfg, design(cfg))}
    files.update({name: template(name) for name in TEMPLATES})
    return write_sources(files, out_dir, prefix)


__all__ = ["render_frontend", "tables_header", "packed_cos_sin"]
