"""Self-contained C99 firmware source for an int8 student or spectral model: `c/sq_model.h` + `c/sq_model.c`.

The C is generated from the integer graph (intgraph.py) and implements exactly the arithmetic of
reference.py: int8 weights as `const int8_t` arrays, int32 biases, per-channel fixed-point
multipliers and shifts computed at export time with TFLite's QuantizeMultiplier, and the
requantization in two build-time modes:

    SQ_SINGLE_ROUNDING=0 (default)  TFLite's double rounding: bit-exact with LiteRT's reference
                                    kernels and TFLite Micro;
    SQ_SINGLE_ROUNDING=1            one rounding of the exact 64-bit product (TFLITE_SINGLE_ROUNDING
                                    semantics): reproduces Brevitas's integer outputs, i.e. what QAT
                                    trained.

Kernels (the project's own, CMSIS-NN-like in spirit; C text in `templates/sq_kernels.c`,
`sq_kernel_mean.c`, `sq_kernel_fc.c`, `sq_edges.c`, the header in `templates/sq_model.h.in`): with
channels-last input the receptive field of a conv output is one contiguous int8 span of K * Cin
values, or for a dilated conv K spans of Cin values (dilation * Cin apart), so each output is a plain
dot product with a weight row. At export time the input zero point is folded into the bias (exact in
int32; SAME padding taps hold the input zero point, which the folded bias cancels), the weights are
packed 4 output channels at a time and pre-expanded to int16 pairs in SXTB16's byte order, and the
requantization parameters are precomputed per channel for each rounding mode. On cores with the
ARMv7E-M DSP extension (Cortex-M4/M7/M33/M55: `__ARM_FEATURE_DSP`) the inner loop is one aligned
32-bit input load + 2 SXTB16 + 8 SMLAD (ACLE intrinsics) per 16 MACs; elsewhere (host, M0/M3,
`-DSQ_NO_DSP`) the same packed data runs through portable C. Both paths give identical int8 outputs.

Stride-1 graphs (every layer a stride-1 'same' conv: the spectral models, `s1_graph`) use the kernel of
`templates/sq_kernel_s1.c` instead: activations kept as int16 channel pairs with zero-point padding rows
(each layer's requantization writes the next layer's expanded rows directly), weights pre-arranged per
pair of output channels in the order of a 2-channel x 4-position register tile that slides over the
dilated taps (one input load, one LDRD of weights from a stack copy of the group's weights, eight SMLAD
per tap), fully unrolled in one function per layer (`sq_l<i>_conv`, shapes as constants), and,
where exact (`s1_fast`), weights and bias doubled so that TFLite's requantization with the output zero
point is one SMLAL + shift + SSAT. On Helium cores (`__ARM_FEATURE_MVE`, off with -DSQ_NO_MVE) the same
graph runs int8 rows through VMLADAVA (16 MACs per instruction, 4 output channels per input chunk).
All paths give the same int8 outputs.

Activations live in ONE static word-aligned arena of two ping-pong buffers sized at export time
(layer i writes buffer i % 2; the input is read in place and the last layer writes the caller's
output): no malloc, no float in `sq_model_run`. Layout is channels-last: in[t * C + c] (spectral
models: in[f * C + c] over F heart-rate bins).

Right shifts of negative int32/int64 values are arithmetic on every compiler we target (gcc, clang,
arm-none-eabi-gcc), as in TFLite's own kernels.
"""
from __future__ import annotations

import errno
import json
import string
from pathlib import Path

import numpy as np

from sqtool.core import atomic_write_text, load_shared_lib
from sqtool.export import reference as R
from sqtool.export.c_render import template
from sqtool.export.intgraph import IntGraph

C_FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"]


def _arr(ctype: str, name: str, values, per_line: int = 16) -> str:
    vals = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(vals)}] = {{\n    {body}\n}};\n"


def _cstr(s: str) -> str:
    return json.dumps(str(s))                           # a valid C string literal for ASCII text


def _float_lit(v: float) -> str:
    s = f"{float(np.float32(v)):.9g}"
    if not any(ch in s for ch in ".en"):
        s += ".0"
    return s + "f"


def arena_plan(graph: IntGraph) -> tuple[int, int]:
    """(ping, pong) buffer sizes: layer i (all but the last) writes buffer i % 2. Ping is rounded up to
    whole words so that pong starts word-aligned too (the kernels read aligned words in place).
    Stride-1 graphs (s1_graph): layer i READS the expanded buffer i % 2 (s1_rows words each)."""
    if s1_graph(graph):
        sizes = [0, 0]
        for i, l in enumerate(graph.layers):
            sizes[i % 2] = max(sizes[i % 2], 4 * s1_words(l))
        return sizes[0], sizes[1]
    sizes = [0, 0]
    for i, layer in enumerate(graph.layers[:-1]):
        sizes[i % 2] = max(sizes[i % 2], int(np.prod(layer.out_shape)))
    return -(-sizes[0] // 4) * 4, sizes[1]


def _comment(s) -> str:
    return str(s).replace("*/", "* /")


def _kv_lines(d: dict | None, indent: str = " *                  ") -> str:
    """Every key of a cfg dict, one `key = value` per line (JSON values), for the header comment."""
    if not d:
        return "(none)"
    items = [f"{k} = {json.dumps(v, sort_keys=True)}" for k, v in d.items()]
    return _comment(("\n" + indent).join(items))


def _band(md: dict) -> tuple[int, float, float, str]:
    """(filter on, lo Hz, hi Hz, text): a missing lower edge is 0 Hz, a missing upper edge fs / 2."""
    band, fs = md.get("band"), float(md.get("fs", 0.0))
    if band is None or all(v is None for v in band):
        return 0, 0.0, fs / 2, "none (no band-pass filter before windowing)"
    lo = 0.0 if band[0] is None else float(band[0])
    hi = fs / 2 if band[1] is None else float(band[1])
    return 1, lo, hi, f"Butterworth band-pass {lo:g}-{hi:g} Hz at fs, before windowing"


def _bins(md: dict) -> list[float] | None:
    b = ((md.get("model_cfg") or {}).get("arch") or {}).get("bins_bpm")
    return None if b is None else [float(v) for v in b]


def _header(graph: IntGraph, md: dict) -> str:
    """sq_model.h from templates/sq_model.h.in: the whole preprocessing and output contract."""
    ping, pong = arena_plan(graph)
    T, C = graph.input_shape
    cfg = md.get("model_cfg") or {}
    spectral = graph.spectral or cfg.get("family") == "spec_cnn"
    band_on, band_lo, band_hi, band_text = _band(md)
    fs, window_s = float(md.get("fs", 0.0)), float(md.get("window_s", 0.0))
    layers = "\n".join(
        f" *   {l.name:<9} {l.op:<5} in {tuple(l.in_shape)!s:<10} -> out {tuple(l.out_shape)!s:<9} "
        f"k={l.kernel} s={l.stride} d={l.dilation} pad={l.pad}{' relu' if l.relu else ''}  MACs {l.macs}"
        for l in graph.layers)
    spectral_defines = ""
    if spectral:
        lo, hi, step = _bins(md) or [0.0, float(T - 1), 1.0]
        n_bins = int(round((hi - lo) / step)) + 1
        spectral_defines = (f"#define SQ_NBINS {n_bins}\n#define SQ_BIN_LO_MBPM {int(round(lo * 1000))}\n"
                            f"#define SQ_BIN_STEP_MBPM {int(round(step * 1000))}\n"
                            f"#define SQ_BIN_HI_MBPM {int(round(hi * 1000))}\n")
        input_text = (f"int8 spectrum codes in [-127, 127] (float = code / 127; scale 1/127, zero point 0), "
                      f"{T} bins x {C} channels")
        norm_text = " (the front end's scaling of each spectrum to int8 codes)"
        output_text = ("SQ_OUTPUT_SIZE = SQ_NBINS int8 logits: logit i is HR (SQ_BIN_LO_MBPM + i * "
                       "SQ_BIN_STEP_MBPM) / 1000 BPM")
    else:
        input_text = f"normalised window, {T} samples x {C} channels, quantized by sq_quantize_input"
        norm_text = " per window and channel, before sq_quantize_input"
        from sqtool.export.metadata import affine_text
        oq = md.get("output_quantization") or []
        output_text = ("int8 codes q[i]; in units: value = (q[i] - SQ_OUTPUT_ZERO_POINT) * SQ_OUTPUT_SCALE * "
                       "SQ_TARGET_STD[i] + SQ_TARGET_MEAN[i]"
                       + "".join(f"\n *                  {o['name']}: {affine_text(o, f'q[{i}]')} {o['unit']}" for i, o in enumerate(oq))
                       + "\n *                  (sq_dequantize_output gives the normalised y, before the STD / MEAN step)")
    s1 = s1_graph(graph)
    c16, c8 = const_data_bytes(graph), const_data_bytes(graph, weights_int8=True)
    weights_text = weights_define = ""
    const_bytes_define = f"#define SQ_CONST_BYTES {c16}"
    if s1:
        weights_text = (
            "\n * weight format    build switch SQ_WEIGHTS_INT8 (stride-1 kernels, DSP and portable paths):"
            f"\n *                    0 (default) int16 pairs pre-expanded at export time: {c16} bytes of const data,"
            "\n *                      fastest;"
            f"\n *                    1 packed int8 words (-DSQ_WEIGHTS_INT8=1): {c8} bytes (half the weight bytes),"
            "\n *                      expanded with SXTB16 into a stack buffer once per pair of output channels"
            "\n *                      (a few thousand instructions per window more); same outputs."
            "\n *                  The Helium (MVE) path always reads int8 weight rows.")
        weights_define = ("/* Weight format of the stride-1 kernels: 0 = int16 pairs (speed), 1 = packed int8 (flash); "
                          "see above. */\n#ifndef SQ_WEIGHTS_INT8\n#define SQ_WEIGHTS_INT8 0\n#endif\n")
        const_bytes_define = (f"#if SQ_WEIGHTS_INT8\n#define SQ_CONST_BYTES {c8}\n#else\n"
                              f"#define SQ_CONST_BYTES {c16}\n#endif")
    v = {
        "weights_text": weights_text, "weights_define": weights_define,
        "const_bytes_define": const_bytes_define,
        "kind_word": "spectral model" if spectral else "student",
        "sqtool_version": md["sqtool_version"], "model": md["model"], "family": cfg.get("family", "-"),
        "task": md["task"], "source_sha256": md["source_sha256"], "fs": fs, "window_s": window_s,
        "model_sha256": md.get("model_sha256") or "not recorded", "git_sha": md.get("git_sha") or "unknown",
        "rate_text": (f"{fs} Hz inside the front end (the device's rate: SQ_FE_FS_IN, sq_frontend_tables.h), window "
                      f"{window_s} s, hop {md['hop_s']} s; the network reads {md.get('n_bins')} spectrum bins, not "
                      "samples" if spectral else
                      f"{fs} Hz, window {window_s} s ({int(round(fs * window_s))} samples), hop {md['hop_s']} s"),
        "hop_s": md["hop_s"], "band_text": band_text,
        "channels": ", ".join(md["channels"]), "row": "f" if spectral else "t", "in_channels": C,
        "input_text": input_text, "norm": md["norm"], "norm_text": norm_text,
        "outputs": ", ".join(md["outputs"]), "units": ", ".join(md["units"]), "output_text": output_text,
        "frontend_text": _kv_lines(cfg.get("frontend")), "decoder_text": _kv_lines(cfg.get("decoder")),
        "quant_scheme": md["quant_scheme"], "quant_description": _comment(md["quant_description"]),
        "input_scale": f"{graph.input_scale:.9g}", "input_zp": graph.input_zp,
        "output_scale": f"{graph.output_scale:.9g}", "output_zp": graph.output_zp,
        "macs": graph.macs, "weight_bytes": graph.weight_bytes, "const_bytes": const_data_bytes(graph),
        "arena": ping + pong, "ping": ping, "pong": pong, "layers": layers,
        "c_model": _cstr(md["model"]), "c_family": _cstr(cfg.get("family", "")), "c_task": _cstr(md["task"]),
        "c_sqtool_version": _cstr(md["sqtool_version"]), "c_source_sha256": _cstr(md["source_sha256"]),
        "c_model_sha256": _cstr(md.get("model_sha256") or ""),
        "f_fs": _float_lit(fs), "f_window_s": _float_lit(window_s), "f_hop_s": _float_lit(md["hop_s"]),
        "c_channels": _cstr(",".join(md["channels"])), "band_filter": band_on,
        "f_band_lo": _float_lit(band_lo), "f_band_hi": _float_lit(band_hi), "c_norm": _cstr(md["norm"]),
        "c_outputs": _cstr(",".join(md["outputs"])), "c_units": _cstr(",".join(md["units"])),
        "target_mean": ", ".join(_float_lit(x) for x in md.get("target_mean") or []) or "0.0f",
        "target_std": ", ".join(_float_lit(x) for x in md.get("target_std") or []) or "1.0f",
        "c_quant_scheme": _cstr(md["quant_scheme"]), "arch_text": _kv_lines(cfg.get("arch")),
        "c_arch": _cstr(json.dumps(cfg.get("arch") or {}, sort_keys=True)),
        "c_frontend": _cstr(json.dumps(cfg.get("frontend") or {}, sort_keys=True)),
        "c_decoder": _cstr(json.dumps(cfg.get("decoder") or {}, sort_keys=True)),
        "spectral_defines": spectral_defines, "in_rows": T, "output_size": graph.output_size,
        "f_input_scale": _float_lit(graph.input_scale), "f_output_scale": _float_lit(graph.output_scale),
    }
    return string.Template(template("sq_model.h.in")).substitute(v)


def pack_conv_weights(weight: np.ndarray) -> np.ndarray:
    """int8 (Cout, K, Cin) -> uint32 words in the order sq_dot4 reads them:
    (ceil(Cout/4) groups, ceil(K*Cin/4) blocks, 4 rows, 2 words) with even = w0 | w2 << 16 and
    odd = w1 | w3 << 16 (int16 halves); padding rows and inputs are zero."""
    cout, k, cin = weight.shape
    d = k * cin
    co4, d4 = -(-cout // 4) * 4, -(-d // 4) * 4
    rows = np.zeros((co4, d4), np.int64)
    rows[:cout, :d] = weight.reshape(cout, d)
    blk = rows.reshape(co4 // 4, 4, d4 // 4, 4).transpose(0, 2, 1, 3)     # (G, B, 4 rows, 4 inputs)
    lo, hi = blk[..., [0, 1]] & 0xFFFF, blk[..., [2, 3]] & 0xFFFF          # (w0, w1), (w2, w3)
    return (lo | (hi << 16)).reshape(-1).astype(np.uint32)                 # (G * B * 4 * 2,)


S1_MAX_TAPS = 16          # the s1 tile unrolls taps and input pairs completely: keep the code bounded
S1_MAX_PAIRS = 16


def s1_graph(graph: IntGraph) -> bool:
    """True when every layer is a stride-1 'same' conv (T preserved, pad = dil (k - 1) / 2): the spectral
    models. Their C uses the stride-1 kernel of templates/sq_kernel_s1.c on expanded int16-pair rows."""
    for l in graph.layers:
        if l.op != "conv" or l.stride != 1 or 2 * l.pad != l.dilation * (l.kernel - 1) \
                or l.out_shape[0] != l.in_shape[0] or l.kernel > S1_MAX_TAPS \
                or (l.in_shape[1] + 1) // 2 > S1_MAX_PAIRS:
            return False
    return True


def s1_words(layer) -> int:
    """32-bit words of a layer's expanded input: (pad + T + pad + 2 dil spare rows) x ceil(Cin / 2) pairs."""
    t, cin = layer.in_shape
    return (t + 2 * layer.pad + 2 * layer.dilation) * ((cin + 1) // 2)


def pack_s1_weights(weight: np.ndarray, scale=1) -> np.ndarray:
    """int8 (Cout, K, Cin) -> uint32 words in the order sq_conv_s1 reads them: (ceil(Cout/2) groups,
    ceil(Cin/2) input pairs p, K taps, 2 channels) of (w[c, j, 2p] | w[c, j, 2p + 1] << 16) int16 halves,
    times `scale` (2 for the doubled-accumulator requantization, or one factor per output channel: the
    2^(1 + d) of a "shift" layer); padding channels are zero."""
    cout, k, cin = weight.shape
    co2, ci2 = cout + cout % 2, cin + cin % 2
    w = np.zeros((co2, k, ci2), np.int64)
    w[:cout, :, :cin] = weight.astype(np.int64) * np.asarray(scale, np.int64).reshape(-1, 1, 1)[:cout]
    w = w.reshape(co2 // 2, 2, k, ci2 // 2, 2).transpose(0, 3, 2, 1, 4)    # (G, P, K, 2 ch, 2 in)
    return ((w[..., 0] & 0xFFFF) | ((w[..., 1] & 0xFFFF) << 16)).reshape(-1).astype(np.uint32)


def pack_s1_weights_int8(weight: np.ndarray) -> np.ndarray:
    """int8 (Cout, K, Cin) -> uint32 words for the SQ_WEIGHTS_INT8 build, one per (group of 2 channels g,
    input pair p, tap j) in sq_conv_s1's order, bytes (low first) w[2g, j, 2p], w[2g+1, j, 2p],
    w[2g, j, 2p+1], w[2g+1, j, 2p+1]: SXTB16 of the word is channel 2g's int16 pair of pack_s1_weights,
    SXTB16 of the word rotated right by 8 channel 2g+1's (half the bytes; never doubled here)."""
    cout, k, cin = weight.shape
    co2, ci2 = cout + cout % 2, cin + cin % 2
    w = np.zeros((co2, k, ci2), np.int64)
    w[:cout, :, :cin] = weight
    w = w.reshape(co2 // 2, 2, k, ci2 // 2, 2).transpose(0, 3, 2, 4, 1)    # (G, P, K, 2 in, 2 ch)
    b = (w & 0xFF).reshape(-1, 4)
    return (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16) | (b[:, 3] << 24)).astype(np.uint32)


def s1_taps_max(graph: IntGraph) -> int:
    """Largest K * ceil(Cin / 2) of a stride-1 graph: words per channel of one group's weights (the stack
    buffer of sq_conv_s1 holds 2 of them)."""
    return max(l.kernel * ((l.in_shape[1] + 1) // 2) for l in graph.layers)


def acc_bound(layer) -> int:
    """Largest |accumulator| (folded bias + every partial sum of the dot product) of a conv layer."""
    w = layer.weight.reshape(layer.weight.shape[0], -1).astype(np.int64)
    b = layer.bias.astype(np.int64) - int(layer.in_zp) * w.sum(axis=1)
    return int((np.abs(b) + 128 * np.abs(w).sum(axis=1)).max())


def s1_fast(layer) -> bool:
    """The doubled-accumulator requantization of sq_kernel_s1.c is exact for this layer: every channel's
    multiplier below 0.5 with shift >= -22 (r = -shift in 1..22), mantissa q > 2^30, |acc| < 2^30."""
    q, sh = R.conv_multipliers(layer)
    return bool((sh <= -1).all() and (sh >= -22).all() and (q > 2 ** 30).all() and acc_bound(layer) < 2 ** 30)


def s1_shift(layer) -> int:
    """The common shift R of a "shift" layer (0: not one): the fast requantization with every channel's
    accumulator scaled by 2^(1 + d_c), d_c = R - r_c >= 1 (weights and bias scaled at export), so that one
    compile-time shift serves the whole layer and the requantization is SMULL, ADD, SSAT(ASR #R):
      double rounding  floor((floor(a' q / 2^32) + 2^(d-1) + 2^(R-1) + zp 2^R) / 2^R)
      single rounding  floor((floor(a' q / 2^32) + 2^(R-1) + zp 2^R) / 2^R)
    with a' = 2^(1+d) acc: the fast formulas with numerator and denominator times 2^d (the 2^31 of the
    double rounding becomes 2^(d-1) 2^32). The double rounding's sign term is dropped, so only where
    act_min >= out_zp: a negative accumulator then gives <= out_zp both ways, clamped to act_min. Needs
    every scaled weight in int16 and 2^(1+d) |acc| < 2^31."""
    if not s1_fast(layer):
        return 0
    lo, _ = R.act_range(layer)
    if lo < int(layer.out_zp):
        return 0
    q, sh = R.conv_multipliers(layer)
    r = -np.asarray(sh, np.int64)
    rs = int(r.max()) + 1
    d = rs - r
    w = layer.weight.reshape(layer.weight.shape[0], -1).astype(np.int64)
    b = layer.bias.astype(np.int64) - int(layer.in_zp) * w.sum(axis=1)
    bound = np.abs(b) + 128 * np.abs(w).sum(axis=1)
    kmax = (1 << (rs - 1)) + (1 << (int(d.max()) - 1)) + abs(int(layer.out_zp)) * (1 << rs)
    if rs > 24 or kmax >= 2 ** 29 or (np.abs(w).max(axis=1) << (1 + d) > 32767).any() \
            or (bound << (1 + d) >= 2 ** 31).any():
        return 0
    return rs


def s1_shift_scale(layer) -> np.ndarray:
    """Per output channel factor 2^(1 + R - r_c) of the weights and bias of a "shift" layer (s1_shift)."""
    q, sh = R.conv_multipliers(layer)
    return (np.int64(1) << (1 + s1_shift(layer) + np.asarray(sh, np.int64))).astype(np.int64)


def s1_requant_shift(layer) -> np.ndarray:
    """(Cout rounded up to even) x 4 int32 of a "shift" layer: q, the double rounding's addend
    2^(d-1) + 2^(R-1) + zp_out 2^R, the single rounding's 2^(R-1) + zp_out 2^R, 0."""
    rs = s1_shift(layer)
    q, sh = (_pad_even(v) for v in R.conv_multipliers(layer))
    d = np.where(q > 0, rs + sh, 1)
    ks = (np.int64(1) << (rs - 1)) + int(layer.out_zp) * (np.int64(1) << rs)
    kd = ks + (np.int64(1) << (d - 1))
    return np.stack([q, kd, np.full_like(q, ks), np.zeros_like(q)], axis=1).reshape(-1)


def s1_requant_fast(layer) -> np.ndarray:
    """(Cout rounded up to even) x 4 int32: q, rnd = 2^(r-1) + out_zp 2^r, r = -shift, 0 (both modes)."""
    q, sh = (_pad_even(v) for v in R.conv_multipliers(layer))
    r = np.where(q > 0, -sh, 1)
    rnd = (np.int64(1) << (r - 1)) + int(layer.out_zp) * (np.int64(1) << r)
    return np.stack([q, rnd, r, np.zeros_like(q)], axis=1).reshape(-1)


def _pad_even(v) -> np.ndarray:
    v = np.asarray(v, np.int64)
    return np.concatenate([v, np.zeros(len(v) % 2, np.int64)])


def fold_bias(layer) -> np.ndarray:
    """bias - zp_in * sum(w) per output channel: the int32 accumulator TFLite computes,
    sum((x - zp_in) * w) + bias, rewritten as sum(x * w) + bias'. Exact while it fits int32."""
    w = layer.weight.reshape(layer.weight.shape[0], -1).astype(np.int64)  # (Cout, K*Cin)
    b = layer.bias.astype(np.int64) - int(layer.in_zp) * w.sum(axis=1)
    worst = np.abs(b) + 128 * np.abs(w).sum(axis=1)
    if worst.max() >= 2 ** 31:
        from sqtool.core import SqtoolError
        raise SqtoolError(f"C export: layer {layer.name} accumulator may overflow int32 "
                          f"(|bias'| + 128 * sum|w| = {int(worst.max())})")
    return b


def _pad4(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.int64)
    return np.concatenate([v, np.zeros(-len(v) % 4, np.int64)])


def _arr_hex32(name: str, words, per_line: int = 8) -> str:
    vals = [f"0x{int(v):08x}u" for v in np.asarray(words).reshape(-1)]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    body = ",\n    ".join(lines)
    return f"static const uint32_t {name}[{len(vals)}] = {{\n    {body}\n}};\n"


def _arr_hex64(name: str, words32, per_line: int = 4) -> str:
    """uint32 words (even count) as a uint64_t table, word 2i in the low half: 8-byte aligned, one LDRD each."""
    w = np.asarray(words32, np.uint64).reshape(-1, 2)
    vals = [f"0x{int(v):016x}ull" for v in (w[:, 0] | (w[:, 1] << np.uint64(32)))]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    body = ",\n    ".join(lines)
    return f"static const uint64_t {name}[{len(vals)}] = {{\n    {body}\n}};\n"


def requant_params(q, shift, single: bool) -> np.ndarray:
    """Per channel 4 int32 for sq_requant: single (q, total = 31 - shift, 2^(total-1) low, high word),
    double (q, left = max(shift, 0), right = max(-shift, 0), mask = 2^right - 1)."""
    q, shift = np.asarray(q, np.int64), np.asarray(shift, np.int64)
    if single:
        total = 31 - shift
        if total.min() < 1 or total.max() > 62:
            raise ValueError(f"requantization shift out of range: {shift.min()}..{shift.max()}")
        rnd = np.left_shift(np.int64(1), total - 1)
        cols = [q, total, rnd & 0xFFFFFFFF, rnd >> 32]
    else:
        left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
        cols = [q, left, right, np.left_shift(np.int64(1), right) - 1]
    v = np.stack(cols, axis=1).reshape(-1)                                 # (C * 4,)
    return np.where(v >= 2 ** 31, v - 2 ** 32, v)                          # as int32 bit patterns


def _int32_lit(v: int) -> str:
    return "(-2147483647 - 1)" if int(v) == -2 ** 31 else str(int(v))


def _rq_arr(name: str, q, shift) -> str:
    """Requantization parameters of both modes; the build-time SQ_SINGLE_ROUNDING picks one."""
    n = 4 * len(q)

    def body(single):
        vals = [_int32_lit(v) for v in requant_params(q, shift, single)]
        return ",\n".join("    " + ", ".join(vals[i:i + 16]) for i in range(0, n, 16))
    return (f"/* requantization per output channel, 4 int32 each (see sq_requant) */\n"
            f"static const int32_t {name}[{n}] = {{\n#if SQ_SINGLE_ROUNDING\n{body(True)}\n#else\n"
            f"{body(False)}\n#endif\n}};\n")


def const_data_bytes(graph: IntGraph, weights_int8: bool = False) -> int:
    """Bytes of the generated const arrays (packed conv weights, folded biases, requantization params);
    stride-1 graphs: of the int16-pair weights, or with `weights_int8` of the SQ_WEIGHTS_INT8 build's."""
    n = 0
    if s1_graph(graph):
        return sum(4 * (pack_s1_weights_int8(l.weight) if weights_int8 else pack_s1_weights(l.weight)).size
                   + 20 * len(_pad_even(l.bias)) for l in graph.layers)
    for l in graph.layers:
        if l.op == "conv":
            co4 = -(-l.weight.shape[0] // 4) * 4
            n += 4 * pack_conv_weights(l.weight).size + 4 * co4 + 16 * co4
        elif l.op == "fc":
            n += l.weight.size + 4 * l.bias.size + 16
        else:
            n += 16
    return n


def span_max(graph: IntGraph) -> int:
    """Largest receptive-field span k * cin of a conv (the stack scratch for gathered taps)."""
    return max([4] + [l.kernel * l.in_shape[1] for l in graph.layers if l.op == "conv"])


def _model_id(md: dict) -> str:
    """The model's content id, shortened, for a generated file's first line (the same for every rebuild of the model;
    an export made before metadata had it: the source checkpoint's hash, said so)."""
    if md.get("model_sha256"):
        return f"{md['model_sha256'][:16]}..."
    return f"not recorded; source checkpoint {md['source_sha256'][:16]}..."


def _source_s1(graph: IntGraph, md: dict) -> str:
    """sq_model.c of a stride-1 graph (s1_graph): expanded int16-pair activations and sq_conv_s1 per layer
    (ARMv7E-M DSP / portable), or int8 rows and sq_conv_mve per layer on Helium cores (SQ_MVE)."""
    ping, pong = arena_plan(graph)
    parts = [f"/* sq_model.c - generated by sqtool {md['sqtool_version']} from {md['model']} "
             f"(model sha256 {_model_id(md)}). Do not edit. */\n"
             "#include \"sq_model.h\"\n\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n",
             "\n#define SQ_SPAN_MAX 4\n#define SQ_S1_GRAPH 1   /* every layer a stride-1 'same' conv */\n"
             f"#define SQ_S1_TAPS_MAX {s1_taps_max(graph)}   /* largest K * ceil(Cin / 2): weight words per "
             "channel */\n\n",
             template("sq_kernels.c"), template("sq_kernel_s1.c"),
             "\n/* ------------------------------------------------------------------ parameters */\n"]
    bufs = ["sq_a", "sq_b"]
    calls, mve = [], []
    n = len(graph.layers)
    l0 = graph.layers[0]
    calls.append(f"    sq_s1_expand(in, {l0.in_shape[0]}, {l0.in_shape[1]}, sq_a, {l0.pad}, {2 * l0.dilation}, "
                 f"{l0.in_zp});")
    mve.append(f"    sq_mve_rows(in, {l0.in_shape[0]}, {l0.in_shape[1]}, (int8_t *)sq_a, {l0.pad}, {l0.in_zp});")
    for i, l in enumerate(graph.layers):
        tag = f"sq_l{i}"
        lo, hi = R.act_range(l)
        fast = s1_fast(l)
        scale = 2 if fast else 1
        rs = s1_shift(l)
        sc16 = s1_shift_scale(l) if rs else scale
        t, cin = l.in_shape
        cout = l.out_shape[1]
        d = l.kernel * cin
        w8 = np.zeros((cout, -(-d // 16) * 16), np.int64)
        w8[:, :d] = l.weight.reshape(cout, d)
        parts += [f"/* layer {i}: {l.name} (conv k={l.kernel} d={l.dilation}, {cin} -> {cout} channels) in scale "
                  f"{l.in_scale:.9g} zp {l.in_zp} -> out scale {l.out_scale:.9g} zp {l.out_zp}; requantization "
                  f"{'fast (doubled accumulator)' if fast else 'general'} */\n",
                  "#if SQ_MVE\n",
                  f"/* weights for sq_conv_mve: (Cout {cout}, K*Cin {d} padded to a multiple of 16) int8 */\n",
                  _arr("int8_t", f"{tag}_w", w8),
                  "/* bias with the input zero point folded in */\n",
                  _arr("int32_t", f"{tag}_b", fold_bias(l)),
                  "#elif SQ_WEIGHTS_INT8\n",
                  f"/* weights for sq_conv_s1, SQ_WEIGHTS_INT8: (Cout {cout} -> pairs of channels, Cin {cin} -> pairs, "
                  f"{l.kernel} taps) words of 4 int8 (c0 i0, c1 i0, c0 i1, c1 i1), expanded by SXTB16"
                  f"{' and doubled' if fast else ''} per group at run time */\n",
                  _arr_hex32(f"{tag}_w", pack_s1_weights_int8(l.weight)),
                  f"/* bias with the input zero point folded in{', doubled' if fast else ''} */\n",
                  _arr("int32_t", f"{tag}_b", _pad_even(fold_bias(l) * scale)),
                  "#else\n",
                  f"/* weights for sq_conv_s1: (Cout {cout} -> pairs of channels, Cin {cin} -> pairs, {l.kernel} taps, "
                  f"2 channels) int16x2 words{', times 2^(1 + R - r) per channel' if rs else ', doubled' if fast else ''}"
                  ", channel 0 | channel 1 << 32 */\n",
                  _arr_hex64(f"{tag}_w", pack_s1_weights(l.weight, sc16)),
                  f"/* bias with the input zero point folded in{', scaled the same' if rs else ', doubled' if fast else ''} */\n",
                  _arr("int32_t", f"{tag}_b", _pad_even(fold_bias(l) * sc16)),
                  "#endif\n"]
        if rs:
            parts.append("#if SQ_MVE || SQ_WEIGHTS_INT8\n"
                         f"/* requantization per channel: q, 2^(r-1) + zp_out 2^r, r, 0 (see sq_kernel_s1.c) */\n"
                         + _arr("int32_t", f"{tag}_rq", s1_requant_fast(l)) + "#else\n"
                         f"/* requantization per channel, shift R = {rs} for all: q, 2^(d-1) + 2^(R-1) + zp_out 2^R, "
                         "2^(R-1) + zp_out 2^R, 0 (see s1_shift in sqtool/export/c.py) */\n"
                         + _arr("int32_t", f"{tag}_rq", s1_requant_shift(l)) + "#endif\n")
        elif fast:
            parts.append(f"/* requantization per channel: q, 2^(r-1) + zp_out 2^r, r, 0 (see sq_kernel_s1.c) */\n"
                         + _arr("int32_t", f"{tag}_rq", s1_requant_fast(l)))
        else:
            q, sh = R.conv_multipliers(l)
            parts.append(_rq_arr(f"{tag}_rq", _pad_even(q), _pad_even(sh)))
        parts.append("\n")
        src = bufs[i % 2]
        args = f"{tag}_w, {tag}_b, {tag}_rq, {int(fast)}, 0, {l.out_zp}, {lo}, {hi}"
        args_mve = f"{tag}_w, {tag}_b, {tag}_rq, {int(fast)}, {l.out_zp}, {lo}, {hi}"
        args16 = f"{tag}_w, {tag}_b, {tag}_rq, 2, {rs}, {l.out_zp}, {lo}, {hi}" if rs else args
        if i == n - 1:
            y16, ycp, y8, m8 = "NULL", 0, "out", "out"
        else:
            nl = graph.layers[i + 1]
            dst = bufs[(i + 1) % 2]
            ycp = (cout + 1) // 2
            calls.append(f"    sq_s1_pads({dst}, {t}, {ycp}, {nl.pad}, {2 * nl.dilation}, {nl.in_zp});")
            mve.append(f"    sq_mve_pads((int8_t *){dst}, {t}, {cout}, {nl.pad}, {nl.in_zp});")
            y16, y8, m8 = f"{dst} + {nl.pad * ycp}", "NULL", f"(int8_t *){dst} + {nl.pad * cout}"
        parts.append(f"#if !SQ_MVE\n/* layer {i} on the DSP / portable path: sq_conv_s1 with its shapes as constants, in a "
                     f"function of its own (its registers allocated for this layer alone) */\n"
                     f"static SQ_S1_NOINLINE void {tag}_conv(const uint32_t *x, uint32_t *y16, int8_t *y8)\n{{\n"
                     + (f"#if SQ_WEIGHTS_INT8\n" if rs else "") +
                     f"    sq_conv_s1(x, {t}, {(cin + 1) // 2}, {l.kernel}, {l.dilation}, {cout}, {args}, y16, {ycp}, y8);\n"
                     + (f"#else\n    sq_conv_s1(x, {t}, {(cin + 1) // 2}, {l.kernel}, {l.dilation}, {cout}, {args16}, y16, "
                        f"{ycp}, y8);\n#endif\n" if rs else "") +
                     f"}}\n#endif\n\n")
        calls.append(f"    {tag}_conv({src}, {y16}, {y8});")
        mve.append(f"    sq_conv_mve((const int8_t *){src}, {t}, {cin}, {l.kernel}, {l.dilation}, {cout}, {args_mve}, {m8});")
    parts.append(f"""
/* ------------------------------------------------------------------ model */

/* The activation arena, word-aligned: two expanded buffers of {ping} and {pong} bytes (the Helium path
 * keeps int8 rows in the same two buffers). */
static uint32_t sq_arena_words[(SQ_ARENA_SIZE + 3) / 4];

int sq_model_run(const int8_t *in, int8_t *out)
{{
    uint32_t *const sq_a = sq_arena_words;
    uint32_t *const sq_b = sq_arena_words + {ping // 4};
    if (in == NULL || out == NULL) {{
        return -1;
    }}
#if SQ_MVE
{chr(10).join(mve)}
#else
{chr(10).join(calls)}
#endif
    return 0;
}}

""")
    parts.append(template("sq_edges.c"))
    return "".join(parts)


def _source(graph: IntGraph, md: dict) -> str:
    """sq_model.c: generated const tables and layer calls around the kernels of templates/*.c."""
    if s1_graph(graph):
        return _source_s1(graph, md)
    ping, pong = arena_plan(graph)
    parts = [f"/* sq_model.c - generated by sqtool {md['sqtool_version']} from {md['model']} "
             f"(model sha256 {_model_id(md)}). Do not edit. */\n"
             "#include \"sq_model.h\"\n\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n",
             f"\n/* largest conv receptive field k * cin (scratch span for gathered taps) */\n"
             f"#define SQ_SPAN_MAX {span_max(graph)}\n\n",
             "/* ------------------------------------------------------------------ parameters */\n"]
    calls = []
    bufs = ["sq_arena", f"sq_arena + {ping}"]
    src = "in"
    n = len(graph.layers)
    for i, l in enumerate(graph.layers):
        tag = f"sq_l{i}"
        dst = "out" if i == n - 1 else bufs[i % 2]
        lo, hi = R.act_range(l)
        parts.append(f"/* layer {i}: {l.name} ({l.op}) in scale {l.in_scale:.9g} zp {l.in_zp} -> "
                     f"out scale {l.out_scale:.9g} zp {l.out_zp} */\n")
        if l.op == "conv":
            q, sh = R.conv_multipliers(l)
            parts += [f"/* weights packed for sq_dot4_taps: (Cout {l.weight.shape[0]} -> groups of 4, K*Cin "
                      f"{l.kernel * l.in_shape[1]} -> blocks of 4, 4 rows, 2 int16x2 words) */\n",
                      _arr_hex32(f"{tag}_w", pack_conv_weights(l.weight)),
                      "/* bias with the input zero point folded in: bias - zp_in * sum(w) */\n",
                      _arr("int32_t", f"{tag}_b", _pad4(fold_bias(l))),
                      _rq_arr(f"{tag}_rq", _pad4(q), _pad4(sh))]
            t_in, cin = l.in_shape
            t_out, cout = l.out_shape
            calls.append(f"    sq_conv({src}, {t_in}, {cin}, {dst}, {t_out}, {cout}, {l.kernel}, {l.stride}, "
                         f"{l.pad}, {l.dilation}, {tag}_w, {tag}_b, {tag}_rq, {l.in_zp}, {l.out_zp}, {lo}, {hi});")
        elif l.op == "mean":
            q, sh = R.mean_multiplier(l)
            parts.append(_rq_arr(f"{tag}_rq", [q], [sh]))
            t, c = l.in_shape
            calls.append(f"    sq_mean({src}, {t}, {c}, {dst}, {tag}_rq, {l.in_zp}, {l.out_zp});")
        elif l.op == "fc":
            q, sh = R.fc_multiplier(l)
            parts += [_arr("int8_t", f"{tag}_w", l.weight), _arr("int32_t", f"{tag}_b", l.bias),
                      _rq_arr(f"{tag}_rq", [q], [sh])]
            cout, cin = l.weight.shape
            calls.append(f"    sq_fc({src}, {cin}, {dst}, {cout}, {tag}_w, {tag}_b, {tag}_rq, "
                         f"{l.in_zp}, {l.out_zp}, {lo}, {hi});")
        else:  # pragma: no cover - intgraph only produces these three
            raise ValueError(l.op)
        parts.append("\n")
        src = dst
    parts.append(template("sq_kernels.c"))
    ops = {l.op for l in graph.layers}
    parts += ([template("sq_kernel_mean.c")] if "mean" in ops else []) + \
             ([template("sq_kernel_fc.c")] if "fc" in ops else [])
    parts.append(f"""
/* ------------------------------------------------------------------ model */

/* The activation arena, word-aligned: ping ({ping} bytes) + pong ({pong} bytes). */
static uint32_t sq_arena_words[(SQ_ARENA_SIZE + 3) / 4];

int sq_model_run(const int8_t *in, int8_t *out)
{{
    int8_t *const sq_arena = (int8_t *)sq_arena_words;
    if (in == NULL || out == NULL) {{
        return -1;
    }}
{chr(10).join(calls)}
    return 0;
}}

""")
    parts.append(template("sq_edges.c"))
    return "".join(parts)


def generate_c(graph: IntGraph, md: dict, out_dir) -> dict:
    """Write `out_dir/sq_model.h` and `out_dir/sq_model.c`; returns sizes and the arena plan."""
    out_dir = Path(out_dir)
    for name, text in (("sq_model.h", lambda: _header(graph, md)), ("sq_model.c", lambda: _source(graph, md))):
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out_dir / name, text())
        except OSError as e:
            _raise_if_disk_full(e, out_dir / name)
            raise
    ping, pong = arena_plan(graph)
    return {"header": str(out_dir / "sq_model.h"), "source": str(out_dir / "sq_model.c"),
            "arena_bytes": ping + pong, "weight_bytes": graph.weight_bytes, "macs": graph.macs}


# ----------------------------------------------------------------------------- host build + run

_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded")      # gcc / as / ld messages


def _raise_if_disk_full(e: OSError, path) -> None:
    """A full disk (ENOSPC, EDQUOT) while writing `path` is one line naming it, not a compile failure."""
    from sqtool.core import SqtoolError
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        raise SqtoolError(f"disk full while writing {e.filename or path}") from None


def build_shared_lib(c_dir, work_dir, single_rounding: bool, cc: str = "gcc", prefix: str = "sq") -> Path:
    """Compile the generated C (<prefix>_model.c, `export --prefix`) into a host shared library (warnings are
    errors)."""
    import subprocess
    from sqtool.core import SqtoolError
    c_dir, work_dir = Path(c_dir), Path(work_dir)
    lib = work_dir / f"lib{prefix}_model_{'single' if single_rounding else 'double'}.so"
    cmd = [cc, *C_FLAGS, "-fPIC", "-shared", f"-D{prefix.upper()}_SINGLE_ROUNDING={int(single_rounding)}",
           str(c_dir / f"{prefix}_model.c"), "-o", str(lib)]
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise SqtoolError(f"C compiler '{cc}' not found: cannot check the C export on the host")
    except OSError as e:
        _raise_if_disk_full(e, lib)
        raise
    if r.returncode != 0:
        full = [ln.strip() for ln in r.stderr.splitlines() if any(m in ln for m in _DISK_FULL_TEXT)]
        if full:                             # the compiler, assembler or linker could not write a file
            import tempfile                  # (gcc's own temporaries go to $TMPDIR: often the full one)
            raise SqtoolError(f"disk full while building {lib}: {cc} says '{full[0]}' (its temporary files go to "
                              f"{tempfile.gettempdir()}, set by TMPDIR)")
        first = (r.stderr.strip().splitlines() or ["?"])[0]
        raise SqtoolError(f"generated C does not compile with {cc} {' '.join(C_FLAGS)}: {first}")
    return lib


def run_shared_lib(lib, xq: np.ndarray, n_out: int) -> np.ndarray:
    """Call sq_model_run once per window: xq (N, T, C) int8 -> (N, n_out) int8."""
    import ctypes
    so = load_shared_lib(lib)
    so.sq_model_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    so.sq_model_run.restype = ctypes.c_int
    xq = np.ascontiguousarray(xq, np.int8)
    out = np.zeros((len(xq), n_out), np.int8)
    for i in range(len(xq)):
        rc = so.sq_model_run(xq[i].ctypes.data, out[i].ctypes.data)
        if rc != 0:
            raise RuntimeError(f"sq_model_run returned {rc}")
    return out
