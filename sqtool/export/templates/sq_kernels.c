/* ------------------------------------------------------------------ sq_kernels.c (sqtool template)
 *
 * The integer kernels of sq_model.c, pasted in by sqtool's C exporter after the generated constant
 * tables (SQ_SPAN_MAX is defined there). Channels-last activations, TFLite's integer arithmetic.
 *
 * ARMv7E-M / ARMv8-M DSP extension (Cortex-M4, M7, M33 with DSP, M55): SXTB16 + SMLAD via the ACLE
 * intrinsics of <arm_acle.h>, 2 MACs per instruction. Everything else (host, M0/M3, -DSQ_NO_DSP) runs
 * the portable C path on the same packed data, with the same int8 results. */
#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(__ARM_BIG_ENDIAN) && \
    !defined(SQ_NO_DSP)
#define SQ_DSP 1
#include <arm_acle.h>
#else
#define SQ_DSP 0
#endif

/* ------------------------------------------------------------------ requantization (TFLite) */

/* Per output channel, 4 int32 precomputed at export time for the selected rounding mode (rq):
 *   SQ_SINGLE_ROUNDING=1:  q, total = 31 - shift, round = 2^(total - 1) as (low, high) words
 *   SQ_SINGLE_ROUNDING=0:  q, left = max(shift, 0), right = max(-shift, 0), mask = 2^right - 1
 * where the real multiplier is q * 2^(shift - 31), q in [2^30, 2^31) (TFLite QuantizeMultiplier). */
#if SQ_SINGLE_ROUNDING
/* One rounding of the exact product: (x * q + 2^(30 - shift)) >> (31 - shift). */
static inline int32_t sq_requant(int32_t x, const int32_t *rq)
{
    const int64_t round = (int64_t)(((uint64_t)(uint32_t)rq[3] << 32) | (uint64_t)(uint32_t)rq[2]);
    return (int32_t)(((int64_t)x * (int64_t)rq[0] + round) >> rq[1]);
}
#else
/* TFLite MultiplyByQuantizedMultiplier, default (double rounding) build:
 *   RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, q), right).
 * SaturatingRoundingDoublingHighMul rounds a * b / 2^31 half away from zero (nudge +-2^30, then a
 * division truncating toward zero); for b > 0 that equals the floor (a * b + 2^30) >> 31, one
 * SMLAL (the saturating case a == b == INT32_MIN cannot occur: q is in [2^30, 2^31) or 0).
 * RoundingDivideByPOT is gemmlowp's: x / 2^right rounded half away from zero. */
static inline int32_t sq_requant(int32_t x, const int32_t *rq)
{
    const int32_t xl = (int32_t)((uint32_t)x << rq[1]);
    const int32_t hi = (int32_t)(((int64_t)xl * (int64_t)rq[0] + ((int64_t)1 << 30)) >> 31);
    const int32_t mask = rq[3];
    const int32_t threshold = (mask >> 1) + (hi < 0 ? 1 : 0);
    return (hi >> rq[2]) + ((hi & mask) > threshold ? 1 : 0);
}
#endif

static inline int8_t sq_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* ------------------------------------------------------------------ dot products */

/* Four int8 dot products with four packed weight rows w, added to acc[0..3]. The input is `taps`
 * runs of n4 blocks of 4 int8 values, consecutive runs `step` bytes apart (one run for a contiguous
 * receptive field; K runs of Cin values, dilation * Cin apart, for a dilated conv). Every block
 * starts on a 4-byte boundary: the caller guarantees it, so the word loads are aligned.
 *
 * Packed weights (written at export time): for each block of 4 inputs (x0, x1, x2, x3) and each of
 * the 4 rows, two 32-bit words of two int16 halves (low | high << 16):
 *     even = w0 | w2 << 16,   odd = w1 | w3 << 16        -> 8 words per block, rows interleaved,
 * the order in which SXTB16 splits a little-endian word of 4 int8 inputs: SXTB16(x) = (x0, x2),
 * SXTB16(x ROR 8) = (x1, x3). SMLAD adds both 16 x 16 products to an accumulator, so one block is
 * 16 MACs for 1 input load, 2 SXTB16, 4 LDRD of weights and 8 SMLAD: the inputs are read once for 4
 * output channels. Padding inputs and rows carry zero weights. */
#if SQ_DSP
/* Two consecutive weight words in one LDRD, post-incrementing the pointer (the weight tables are
 * uint32_t arrays, so word-aligned as LDRD requires). There is no ACLE intrinsic for LDRD, and GCC 12
 * for Cortex-M4 splits 64-bit loads into two LDRs (about 4 instructions more per 16 MACs). */
static inline void sq_ldrd(const uint32_t **p, uint32_t *a, uint32_t *b)
{
    __asm__("ldrd %0, %1, [%2], #8" : "=&r"(*a), "=&r"(*b), "+r"(*p) : "m"(*(const uint32_t(*)[2]) * p));
}

/* One block of 4 inputs (an aligned word) against 4 packed rows: 16 MACs. SXTB16 of the word shifted
 * right by 8 picks bytes 1 and 3 = (x1, x3) (byte 3 of the shifted word is never read). */
#define SQ_BLOCK4()                                                                 \
    do {                                                                            \
        uint32_t xw, wa, wb;                                                        \
        int16x2_t xe, xo;                                                           \
        memcpy(&xw, xp, 4);                            /* one aligned 32-bit load */ \
        xp += 4;                                                                    \
        xe = __sxtb16((int8x4_t)xw);                   /* (x0, x2) */               \
        xo = __sxtb16((int8x4_t)(xw >> 8));            /* (x1, x3) */               \
        sq_ldrd(&w, &wa, &wb);                                                      \
        a0 = __smlad(xe, (int16x2_t)wa, a0);                                        \
        a0 = __smlad(xo, (int16x2_t)wb, a0);                                        \
        sq_ldrd(&w, &wa, &wb);                                                      \
        a1 = __smlad(xe, (int16x2_t)wa, a1);                                        \
        a1 = __smlad(xo, (int16x2_t)wb, a1);                                        \
        sq_ldrd(&w, &wa, &wb);                                                      \
        a2 = __smlad(xe, (int16x2_t)wa, a2);                                        \
        a2 = __smlad(xo, (int16x2_t)wb, a2);                                        \
        sq_ldrd(&w, &wa, &wb);                                                      \
        a3 = __smlad(xe, (int16x2_t)wa, a3);                                        \
        a3 = __smlad(xo, (int16x2_t)wb, a3);                                        \
    } while (0)

static inline void sq_dot4_taps(const int8_t *x, int32_t taps, int32_t step, int32_t n4, const uint32_t *w,
                                int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t j, b;
    for (j = 0; j < taps; ++j, x += step) {
        const int8_t *xp = x;
        for (b = n4 >> 1; b > 0; --b) {                /* unrolled by 2: 32 MACs per iteration */
            SQ_BLOCK4();
            SQ_BLOCK4();
        }
        if (n4 & 1) {
            SQ_BLOCK4();
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#else
/* The signed int16 in the low / high half of a packed weight word (two's complement conversions and
 * arithmetic right shifts, as on every compiler we target). */
static inline int32_t sq_lo16(uint32_t v)
{
    return (int32_t)(int16_t)(uint16_t)v;
}

static inline int32_t sq_hi16(uint32_t v)
{
    return (int32_t)v >> 16;
}

static inline void sq_dot4_taps(const int8_t *x, int32_t taps, int32_t step, int32_t n4, const uint32_t *w,
                                int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t j, b;
    for (j = 0; j < taps; ++j, x += step) {
        const int8_t *xp = x;
        for (b = 0; b < n4; ++b) {
            const int32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
            a0 += x0 * sq_lo16(w[0]) + x2 * sq_hi16(w[0]) + x1 * sq_lo16(w[1]) + x3 * sq_hi16(w[1]);
            a1 += x0 * sq_lo16(w[2]) + x2 * sq_hi16(w[2]) + x1 * sq_lo16(w[3]) + x3 * sq_hi16(w[3]);
            a2 += x0 * sq_lo16(w[4]) + x2 * sq_hi16(w[4]) + x1 * sq_lo16(w[5]) + x3 * sq_hi16(w[5]);
            a3 += x0 * sq_lo16(w[6]) + x2 * sq_hi16(w[6]) + x1 * sq_lo16(w[7]) + x3 * sq_hi16(w[7]);
            xp += 4;
            w += 8;
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

/* ------------------------------------------------------------------ kernels (channels-last) */
#ifndef SQ_S1_GRAPH /* stride-1 graphs use sq_kernel_s1.c instead */

/* Conv1d with dilation, SAME zero padding: x (t_in, cin) -> y (t_out, cout); per-channel rq.
 *
 * Output time `to` reads taps t0 + j * dil, t0 = to * stride - pad, j = 0 .. k - 1. Channels-last makes
 * each tap one contiguous run of cin int8 values, and the receptive field k runs dil * cin bytes apart
 * (one contiguous span of k * cin values when dil == 1); each output is its dot product with a weight
 * row (cout, k * cin), packed in blocks of 4 inputs. The input zero point is folded into the bias at
 * export time (bias' = bias - zp_in * sum(w), exactly TFLite's int32 accumulator), so the inner loop is
 * a pure int8 dot product; taps in the padding must then hold zp_in (the real zero), which the folded
 * bias cancels exactly.
 *
 * The inputs are read in place when the receptive field lies inside the input and every block is
 * word-aligned: a contiguous span starting on a 4-byte boundary (its last 1-3 values through a
 * zero-padded word), or, dilated, cin a multiple of 4 (blocks never straddle taps, so the packed rows
 * of the contiguous layout serve unchanged) and x aligned. Otherwise (edges, odd cin, unaligned starts)
 * the k taps are gathered into an aligned scratch span, zp_in in the padding, zero-filled to a whole
 * block. Weights are packed 4 output channels at a time (cout rounded up to 4; bias and rq padded
 * alike, padded channels not stored). */
static void sq_conv(const int8_t *x, int32_t t_in, int32_t cin, int8_t *y, int32_t t_out, int32_t cout,
                    int32_t k, int32_t stride, int32_t pad, int32_t dil, const uint32_t *w, const int32_t *bias,
                    const int32_t *rq, int32_t in_zp, int32_t out_zp, int32_t act_min, int32_t act_max)
{
    uint32_t span_words[(SQ_SPAN_MAX + 3) / 4];         /* word-aligned scratch span */
    int8_t *span = (int8_t *)span_words;
    const int32_t d = k * cin;
    const int32_t d4 = (d + 3) >> 2;
    const int32_t wrow = 8 * d4;                        /* words per group of 4 output channels */
    const int32_t taps_in_place = (dil != 1 && k != 1 && (cin & 3) == 0 && ((uintptr_t)x & 3u) == 0);
    int32_t to, co, j;
    for (to = 0; to < t_out; ++to) {
        const int32_t t0 = to * stride - pad;
        const int8_t *xs = x + t0 * cin;
        int32_t taps = 1, step = 0, n4 = d4, rem = 0;
        const uint32_t *wp = w;
        const int32_t *r = rq;
        int8_t *yp = y + to * cout;
        const int32_t inside = (t0 >= 0 && t0 + (k - 1) * dil < t_in);
        if (inside && (dil == 1 || k == 1) && ((uintptr_t)xs & 3u) == 0) {
            n4 = d >> 2;                                /* one contiguous span, read in place */
            rem = d & 3;
        } else if (inside && taps_in_place) {
            taps = k;                                   /* k runs of cin, read in place */
            step = dil * cin;
            n4 = cin >> 2;
        } else {
            for (j = 0; j < k; ++j) {                   /* gather the taps into the scratch span */
                const int32_t ti = t0 + j * dil;
                if (ti >= 0 && ti < t_in) {
                    memcpy(span + j * cin, x + ti * cin, (size_t)cin);
                } else {
                    memset(span + j * cin, (int)in_zp, (size_t)cin);
                }
            }
            for (j = d; j < 4 * d4; ++j) {
                span[j] = 0;                            /* meets zero weights */
            }
            xs = span;
        }
        for (co = 0; co < cout; co += 4, wp += wrow, r += 16) {
            int32_t acc[4];
            acc[0] = bias[co];
            acc[1] = bias[co + 1];
            acc[2] = bias[co + 2];
            acc[3] = bias[co + 3];
            sq_dot4_taps(xs, taps, step, n4, wp, acc);
            if (rem != 0) {
                uint32_t tail = 0;                      /* last 1-3 inputs, zero-padded, aligned */
                memcpy(&tail, xs + 4 * n4, (size_t)rem);
                sq_dot4_taps((const int8_t *)&tail, 1, 0, 1, wp + 8 * n4, acc);
            }
            if (co + 4 <= cout) {
                yp[co] = sq_clamp(sq_requant(acc[0], r) + out_zp, act_min, act_max);
                yp[co + 1] = sq_clamp(sq_requant(acc[1], r + 4) + out_zp, act_min, act_max);
                yp[co + 2] = sq_clamp(sq_requant(acc[2], r + 8) + out_zp, act_min, act_max);
                yp[co + 3] = sq_clamp(sq_requant(acc[3], r + 12) + out_zp, act_min, act_max);
            } else {
                for (j = 0; co + j < cout; ++j) {
                    yp[co + j] = sq_clamp(sq_requant(acc[j], r + 4 * j) + out_zp, act_min, act_max);
                }
            }
        }
    }
}
#endif /* SQ_S1_GRAPH */
