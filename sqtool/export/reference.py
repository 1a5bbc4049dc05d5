"""A numpy integer reference of the exported int8 model, with TFLite's arithmetic to the bit.

TFLite (LiteRT reference kernels, TFLite Micro) requantizes an int32 accumulator with a fixed-point
multiplier: real scale m = q * 2^shift, q an int32 in [2^30, 2^31) (`QuantizeMultiplier`), and

    double rounding (TFLite default):  RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, q), -shift)
                                       -> rounds the 64-bit product to 32 bits, then rounds the shift;
    single rounding (TFLITE_SINGLE_ROUNDING):  (x * q + 2^(30 - shift)) >> (31 - shift)
                                       -> one rounding of the exact product, what Brevitas computes.

The two differ by one LSB on a small fraction of outputs; the flips accumulate through layers. Mode
"litert_ref" is LiteRT's BUILTIN_REF kernels, which round once in FULLY_CONNECTED only. This
module implements both on whole batches (int64 numpy), so `sqtool export --explain` can say, layer by
layer, whether a difference between Brevitas and TFLite is the rounding mode or a bug. The C source
(`c.py`) implements the same integer recipe, so C == this reference == TFLite, bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from sqtool.export.intgraph import IntGraph, IntLayer

MODES = ("double", "single", "litert_ref")
# per-op rounding of each mode. "litert_ref" is LiteRT's BUILTIN_REF kernels as measured (ai-edge-litert
# 2.3): CONV_2D and MEAN round twice like TFLite Micro, but its int8 FULLY_CONNECTED accumulates in int64
# and calls the int64 MultiplyByQuantizedMultiplier, which rounds once.
_OP_MODE = {"double": {}, "single": {}, "litert_ref": {"fc": "single"}}


# ----------------------------------------------------------------------------- fixed-point helpers

def quantize_multiplier(m: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: m = q * 2^(shift - 31), q int32 in [2^30, 2^31)."""
    if m == 0.0:
        return 0, 0
    frac, shift = math.frexp(m)                       # m = frac * 2^shift, frac in [0.5, 1)
    q = math.floor(frac * (1 << 31) + 0.5)            # std::round (exact: frac * 2^31 is exact)
    if q == (1 << 31):
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:                                    # TFLite clamps this way in single-rounding builds
        return (1 << 31) - 1, 30
    return int(q), int(shift)


def _trunc_div_pow2_31(v: np.ndarray) -> np.ndarray:
    """C integer division by 2^31 (truncation toward zero) on int64."""
    return np.where(v >= 0, v >> 31, -((-v) >> 31))


def srdhm(a: np.ndarray, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    hi = _trunc_div_pow2_31(ab + nudge)
    overflow = (a == b) & (a == -(1 << 31))
    return np.where(overflow, (1 << 31) - 1, hi)


def rounding_divide_by_pot(x: np.ndarray, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: round half away from zero of x / 2^exponent."""
    x = np.asarray(x, np.int64)
    e = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, q, shift, mode: str = "double") -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier(int32 x, q, shift) in `mode` ("double" | "single")."""
    x = np.asarray(x, np.int64)
    q = np.asarray(q, np.int64)
    shift = np.asarray(shift, np.int64)
    if mode == "single":
        total = 31 - shift
        return (x * q + (np.int64(1) << (total - 1))) >> total
    if mode != "double":
        raise ValueError(f"unknown rounding mode {mode}")
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(srdhm(x * (np.int64(1) << left), q), right)


# ----------------------------------------------------------------------------- per-layer parameters

def conv_multipliers(layer: IntLayer) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (q, shift) as TFLite's PopulateConvolutionQuantizationParams computes them."""
    qs, ss = [], []
    for ws in np.asarray(layer.weight_scale, np.float32):
        m = float(np.float32(layer.in_scale)) * float(ws) / float(np.float32(layer.out_scale))
        q, s = quantize_multiplier(m)
        qs.append(q)
        ss.append(s)
    return np.array(qs, np.int64), np.array(ss, np.int64)


def fc_multiplier(layer: IntLayer) -> tuple[int, int]:
    """GetQuantizedConvolutionMultipler: the input * filter product is taken in float32 first."""
    prod = np.float32(layer.in_scale) * np.float32(layer.weight_scale[0])
    return quantize_multiplier(float(prod) / float(np.float32(layer.out_scale)))


def mean_multiplier(layer: IntLayer) -> tuple[int, int]:
    """TFLite's integer MEAN: multiplier of in/out scale, then divided by the element count n with an
    extra left shift so the quotient keeps its precision (q' = (q << s) // n, shift' = shift - s)."""
    n = layer.in_shape[0]
    q, shift = quantize_multiplier(float(np.float32(layer.in_scale)) / float(np.float32(layer.out_scale)))
    s = min(n.bit_length() - 1, 32, 31 + shift)
    return (q << s) // n, shift - s


def act_range(layer: IntLayer) -> tuple[int, int]:
    """Fused activation clamp in the int8 output domain (RELU: the real zero)."""
    lo = max(-128, layer.out_zp) if layer.relu else -128
    return lo, 127


# ----------------------------------------------------------------------------- kernels

def _conv_acc(layer: IntLayer, x: np.ndarray) -> np.ndarray:
    """int64 accumulators (N, T', Cout) of a (dilated) conv: sum((x - zp_in) * w) + bias, taps at
    t * stride - pad + j * dilation; SAME zero padding in real units (= the input zero point)."""
    k, s, p, d = layer.kernel, layer.stride, layer.pad, layer.dilation
    xc = x.astype(np.int64) - layer.in_zp                                  # (N, T, Cin), centred
    t_out = layer.out_shape[0]
    right = max(0, (t_out - 1) * s + d * (k - 1) - p - x.shape[1] + 1)    # zeros needed after the end
    xp = np.pad(xc, ((0, 0), (p, right), (0, 0)))                          # (N, p + T + right, Cin)
    idx = np.arange(t_out)[:, None] * s + d * np.arange(k)[None, :]       # (T', K)
    cols = xp[:, idx, :]                                                   # (N, T', K, Cin)
    w = layer.weight.astype(np.int64)                                      # (Cout, K, Cin)
    return np.einsum("ntkc,okc->nto", cols, w) + layer.bias.astype(np.int64)  # (N, T', Cout)


def conv(layer: IntLayer, x: np.ndarray, mode: str) -> np.ndarray:
    """(N, T, Cin) int8 -> (N, T/s, Cout) int8 (dilated taps, SAME padding, fused ReLU when layer.relu;
    the spectral head is a 1x1 conv without ReLU and a signed output)."""
    acc = _conv_acc(layer, x)
    q, sh = conv_multipliers(layer)
    y = multiply_by_quantized_multiplier(acc, q, sh, mode) + layer.out_zp
    lo, hi = act_range(layer)
    return np.clip(y, lo, hi).astype(np.int8)


def mean(layer: IntLayer, x: np.ndarray, mode: str) -> np.ndarray:
    """(N, T, C) int8 -> (N, C) int8: integer sum of centred values, one requantization."""
    total = (x.astype(np.int64) - layer.in_zp).sum(axis=1)                # (N, C)
    q, sh = mean_multiplier(layer)
    y = multiply_by_quantized_multiplier(total, q, sh, mode) + layer.out_zp
    return np.clip(y, -128, 127).astype(np.int8)


def fc(layer: IntLayer, x: np.ndarray, mode: str) -> np.ndarray:
    """(N, Cin) int8 -> (N, Cout) int8."""
    acc = (x.astype(np.int64) - layer.in_zp) @ layer.weight.astype(np.int64).T + layer.bias  # (N, Cout)
    q, sh = fc_multiplier(layer)
    y = multiply_by_quantized_multiplier(acc, q, sh, mode) + layer.out_zp
    lo, hi = act_range(layer)
    return np.clip(y, lo, hi).astype(np.int8)


KERNELS = {"conv": conv, "mean": mean, "fc": fc}


def exact_requant_input(layer: IntLayer, x: np.ndarray) -> np.ndarray:
    """The real value each output is rounded from (float64, before the zero point): accumulator times
    the exact scale ratio. How far it lies from a .5 tie says whether a 1-LSB difference is rounding noise."""
    s_in, s_out = float(np.float32(layer.in_scale)), float(np.float32(layer.out_scale))
    if layer.op == "mean":
        total = (x.astype(np.int64) - layer.in_zp).sum(axis=1)
        return total * (s_in / (layer.in_shape[0] * s_out))
    ws = np.asarray(layer.weight_scale, np.float64)
    if layer.op == "fc":
        acc = (x.astype(np.int64) - layer.in_zp) @ layer.weight.astype(np.int64).T + layer.bias
        return acc * (s_in * ws[0] / s_out)
    acc = _conv_acc(layer, x)
    return acc * (s_in * ws / s_out)


def run(graph: IntGraph, xq: np.ndarray, mode: str = "double", inputs: dict | None = None) -> dict[str, np.ndarray]:
    """Run the integer graph on int8 channels-last input (N, T, C); returns every layer's int8 output.

    `inputs` (optional, name -> int8 array) feeds a layer from a given tensor instead of the previous
    layer's output: the per-layer explain mode feeds each layer Brevitas's own input to isolate it.
    """
    if mode not in MODES:
        raise ValueError(f"unknown rounding mode {mode} (known: {', '.join(MODES)})")
    outs = {"input": np.asarray(xq, np.int8)}
    prev = "input"
    for layer in graph.layers:
        src = inputs[prev] if inputs is not None and prev in inputs else outs[prev]
        op_mode = _OP_MODE[mode].get(layer.op, "single" if mode == "single" else "double")
        outs[layer.name] = KERNELS[layer.op](layer, src, op_mode)
        prev = layer.name
    return outs


def dequantize(graph: IntGraph, yq: np.ndarray) -> np.ndarray:
    return (yq.astype(np.float32) - graph.output_zp) * np.float32(graph.output_scale)
