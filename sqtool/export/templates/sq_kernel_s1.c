/* ------------------------------------------------------------------ sq_kernel_s1.c (sqtool template)
 *
 * Stride-1 'same' convolutions (the spectral models: dilated convs over heart-rate bins and the 1x1
 * head), pasted in by sqtool's C exporter when every layer of the graph is one. Everything the inner
 * loop touches is arranged so that it is one long run of SMLADs:
 *
 *   activations  int16 channel pairs, one 32-bit word per pair (ch 2p | ch 2p+1 << 16), channels-last
 *                rows with `pad` rows of the input zero point before and after the T real rows and
 *                2 * dil spare rows after those (read by the last tile, results discarded): the
 *                "expanded" buffer of a layer. The first layer's is built from the int8 input once
 *                (sq_s1_expand); every other layer's is written directly by the previous layer's
 *                requantization (one packed word per channel pair), so no layer sign-extends inputs.
 *                Every access to these buffers is a uint32_t word (C99 strict aliasing: no int16_t
 *                stores into them) and every half is packed / unpacked with shifts, so the portable
 *                path does not depend on the byte order; the DSP path (SXTB16 of int8 bytes loaded
 *                as a word) is little-endian only, and SQ_DSP is off on big-endian ARM.
 *   weights      int16 pairs in the same channel-pair order, pre-arranged at export time in the order
 *                the tile consumes them: per group of 2 output channels, per input pair p, per tap j,
 *                one 64-bit word (channel 2g | channel 2g+1 << 32). Build switch SQ_WEIGHTS_INT8=1:
 *                packed int8 words instead (half the bytes), expanded with SXTB16 (sq_s1_weights).
 *                Either way a group's weights (and its bias and requantization) are first copied to a
 *                small volatile buffer on the stack, so that the tiles read them with sp-relative LDRDs
 *                (no base register) and the compiler can neither hoist nor spill them.
 *   tile         2 output channels x 4 output positions t + m dil (m < 4). Position m at tap j reads row
 *                t + (j + m) dil, so the positions share a sliding window of rows: per tap 1 input load,
 *                1 LDRD of weights, 8 SMLAD (16 MACs for 10 instructions); the row of tap j + 3 is loaded
 *                after position 0's SMLADs of tap j, when row j is dead, so 8 accumulators + 3 rows + 2
 *                weights + 1 row pointer = 14 registers, no spills (GCC 12, -O2; see the per-layer
 *                functions below). The tap and pair loops have compile-time trip counts (the kernel is
 *                inlined into one function per layer, sq_l<i>_conv, with constant shapes) and are fully
 *                unrolled. Each chain of positions r + m dil is covered exactly by 4-position tiles and
 *                at most one 3- and one 2-position tile (no wasted outputs; a chain of 1 position uses a
 *                2-tile whose second position falls in the spare rows, not stored). Outputs are
 *                requantized channel by channel (parameters loaded once per tile) and stored as one
 *                packed word per position (PKHBT + STR on the M4).
 *   requant      "fast" layers (export-time check: multiplier in (2^-23, 0.5) per channel, mantissa
 *                q > 2^30, accumulator bound < 2^30): weights and bias are stored doubled, so the
 *                accumulator is a2 = 2 acc, and TFLite's requantization including the output zero
 *                point becomes one SMLAL with a 64-bit addend, one shift and one saturation:
 *                  single rounding: (a2 q + (rnd << 32)) >> (32 + r)
 *                  double rounding: (a2 q + 2^31 + ((rnd + (acc < 0 ? -1 : 0)) << 32)) >> (32 + r)
 *                with r = -shift and rnd = 2^(r-1) + zp_out 2^r, exact by floor(floor(x / a) / b) =
 *                floor(x / (a b)) and RoundingDivideByPOT(h, r) = (h + 2^(r-1) - (h < 0)) >> r, where
 *                h < 0 <=> acc < 0 when q > 2^30. Other layers keep the undoubled accumulator and the
 *                general sq_requant. "Shift" layers (fast, and act_min >= zp_out so that the sign term is
 *                hidden by the clamp; export-time check s1_shift in sqtool/export/c.py) scale each channel's
 *                weights and bias by 2^(1 + R - r) instead of 2, R one shift for the whole layer (a compile-
 *                time constant), and requantize with SMULL, ADD of the high word and SSAT(ASR #R): 3
 *                instructions, q and the addend of the build's rounding mode read with one LDRD (gk).
 * The portable path (no DSP) runs the same tiles with a C SMLAD; both give the same int8 outputs. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__arm__)
/* GCC's pre-allocation scheduler hoists the unrolled loads ahead of their SMLADs and runs the tile out
 * of registers (spills: +40 % instructions on the M4); the post-allocation scheduler still runs. */
#pragma GCC optimize("no-schedule-insns")
#endif
/* Complete unrolling of the tap and pair loops on DSP / Helium cores (the portable path, for M0/M3
 * and hosts, stays rolled: a few KB of code less). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define SQ_UNROLL_ON _Pragma("GCC unroll 16")
#define SQ_S1_INLINE static inline __attribute__((always_inline))
#define SQ_S1_NOINLINE __attribute__((noinline))
#elif defined(__clang__)
#define SQ_UNROLL_ON _Pragma("unroll")
#define SQ_S1_INLINE static inline __attribute__((always_inline))
#define SQ_S1_NOINLINE __attribute__((noinline))
#else
#define SQ_UNROLL_ON
#define SQ_S1_INLINE static inline
#define SQ_S1_NOINLINE
#endif

#if defined(__ARM_FEATURE_MVE) && !defined(SQ_NO_MVE) && !defined(SQ_NO_DSP) && !defined(__ARM_BIG_ENDIAN)
#define SQ_MVE 1
#else
#define SQ_MVE 0
#endif

#if SQ_DSP
#define SQ_UNROLL SQ_UNROLL_ON
#else
#define SQ_UNROLL
#endif

#if SQ_DSP
#define SQ_MAC2(acc, x, w) ((acc) = __smlad((int16x2_t)(x), (int16x2_t)(w), (acc)))
#if defined(__GNUC__) && !defined(__clang__)
/* GCC's __ssat (arm_acle.h) stores the builtin's unsigned result in an int32_t inside the macro, which
 * -Wsign-conversion reports at the call site: the same builtin, converted here. */
#define SQ_SSAT8(v) ((int32_t)__builtin_arm_ssat((v), 8))
#else
#define SQ_SSAT8(v) __ssat((v), 8)
#endif
#else
#define SQ_MAC2(acc, x, w) \
    ((acc) += sq_lo16(x) * sq_lo16(w) + sq_hi16(x) * sq_hi16(w))
#endif

/* The stored weight words of the stride-1 kernels: 64-bit (channel 0 | channel 1 << 32, int16 pairs) or,
 * with SQ_WEIGHTS_INT8, 32-bit words of 4 int8 weights (expanded per group, see sq_s1_weights). */
#if SQ_WEIGHTS_INT8
#define SQ_S1_WTYPE uint32_t
#else
#define SQ_S1_WTYPE uint64_t
#endif

#if !SQ_MVE
/* int8 rows x (t, cin) -> expanded rows (pairs, zero point padding, spare rows filled too). */
static void sq_s1_expand(const int8_t *x, int32_t t, int32_t cin, uint32_t *xe, int32_t pad, int32_t spare,
                         int32_t zp)
{
    const int32_t cp = (cin + 1) >> 1;
    const uint32_t zz = ((uint32_t)zp & 0xFFFFu) | ((uint32_t)zp << 16);
    int32_t i, p;
    for (i = 0; i < pad * cp; ++i) {
        xe[i] = zz;
    }
    xe += pad * cp;
#if SQ_DSP
    if (cin == 4 && ((uintptr_t)x & 3u) == 0) {         /* one aligned word per row: SXTB16 + PKH */
        for (i = 0; i < t; ++i) {
            uint32_t w;
            int16x2_t e, o;
            memcpy(&w, x + 4 * i, 4);
            e = __sxtb16((int8x4_t)w);                  /* (x0, x2) */
            o = __sxtb16((int8x4_t)(w >> 8));           /* (x1, x3) */
            xe[2 * i] = ((uint32_t)e & 0xFFFFu) | ((uint32_t)o << 16);
            xe[2 * i + 1] = ((uint32_t)e >> 16) | ((uint32_t)o & 0xFFFF0000u);
        }
        x += 4 * t;
        xe += 2 * t;
        t = 0;
    }
#endif
    for (i = 0; i < t; ++i, x += cin) {
        for (p = 0; p < cp; ++p) {
            const int32_t a = x[2 * p], b = 2 * p + 1 < cin ? x[2 * p + 1] : 0;
            *xe++ = ((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16);
        }
    }
    for (i = 0; i < (pad + spare) * cp; ++i) {
        xe[i] = zz;
    }
}

/* The zero point rows of an expanded buffer the previous layer writes the middle of. */
static void sq_s1_pads(uint32_t *xe, int32_t t, int32_t cp, int32_t pad, int32_t spare, int32_t zp)
{
    const uint32_t zz = ((uint32_t)zp & 0xFFFFu) | ((uint32_t)zp << 16);
    uint32_t *tail = xe + (pad + t) * cp;
    int32_t i;
    for (i = 0; i < pad * cp; ++i) {
        xe[i] = zz;
    }
    for (i = 0; i < (pad + spare) * cp; ++i) {
        tail[i] = zz;
    }
}

#endif /* !SQ_MVE */

/* Requantization of one channel, loaded once per group of 2 channels (see the header comment). */
typedef struct {
    int32_t q, rnd, r;                                  /* fast: q, 2^(r-1) + zp_out 2^r, r */
    const int32_t *rq;                                  /* general: sq_requant's 4 parameters */
} sq_s1_rq_t;

SQ_S1_INLINE sq_s1_rq_t sq_s1_rq(const int32_t *rq)
{
    sq_s1_rq_t p;
    p.q = rq[0];
    p.rnd = rq[1];
    p.r = rq[2];
    p.rq = rq;
    return p;
}

/* The same from the group's copy on the stack (gq: 4 words per channel, see sq_conv_s1); "shift" layers
 * (fast == 2) keep q and the addend of their rounding mode (no per-channel shift). */
SQ_S1_INLINE sq_s1_rq_t sq_s1_rqv(const volatile int32_t *gq, const volatile uint64_t *gk, const int32_t *rq,
                                  int32_t fast)
{
    sq_s1_rq_t p;
    if (fast == 2) {                                    /* one LDRD: q | addend << 32 */
        const uint64_t v = *gk;
        p.q = (int32_t)(uint32_t)v;
        p.rnd = (int32_t)(uint32_t)(v >> 32);
        p.r = 0;
    } else {
        p.q = gq[0];
        p.rnd = gq[1];
        p.r = gq[2];
    }
    p.rq = rq;
    return p;
}

/* Requantize one accumulator (out_zp included) and clamp to the activation range. */
SQ_S1_INLINE int32_t sq_s1_requant(int32_t a, sq_s1_rq_t p, int32_t fast, int32_t rs, int32_t out_zp,
                                   int32_t act_min, int32_t act_max)
{
    int32_t v;
    if (fast == 2) {                                    /* SMULL, ADD, SSAT with ASR #rs */
        v = ((int32_t)(((int64_t)a * p.q) >> 32) + p.rnd) >> rs;
    } else if (fast) {
#if SQ_SINGLE_ROUNDING
        const int64_t add = (int64_t)((uint64_t)(uint32_t)p.rnd << 32);
#else
        const int64_t add = (int64_t)(((uint64_t)(uint32_t)(p.rnd + (a >> 31)) << 32) | 0x80000000u);
#endif
        v = (int32_t)(((int64_t)a * p.q + add) >> 32) >> p.r;
    } else {
        v = sq_requant(a, p.rq) + out_zp;
    }
#if SQ_DSP
    if (act_min == -128 && act_max == 127) {
        return SQ_SSAT8(v);
    }
#endif
    return v < act_min ? act_min : (v > act_max ? act_max : v);
}

/* Requantize the accumulators of a tile (a[2m + c]: position to + m dil, channel 2g + c, m < np) and
 * store the first `keep` positions: one word per position (two int16 halves) into the next layer's
 * expanded rows, or int8 values (the last layer). Channel by channel, so that each channel's parameters
 * are loaded once per tile and stay in registers for its np outputs. */
SQ_S1_INLINE void sq_s1_out(int32_t *a, int32_t np, int32_t keep, int32_t to, int32_t dil, int32_t g, int32_t cout,
                            const int32_t *rq, const volatile int32_t *gq, const volatile uint64_t *gk, int32_t fast, int32_t rs, int32_t out_zp,
                            int32_t act_min, int32_t act_max,
                            uint32_t *y16, int32_t ycp, int8_t *y8)
{
    int32_t m, c;
    SQ_UNROLL_ON
    for (c = 0; c < 2; ++c) {
        const sq_s1_rq_t p = sq_s1_rqv(gq + 4 * c, gk + c, rq + 8 * g + 4 * c, fast);
        SQ_UNROLL_ON
        for (m = 0; m < np; ++m) {
            a[2 * m + c] = sq_s1_requant(a[2 * m + c], p, fast, rs, out_zp, act_min, act_max);
        }
    }
    SQ_UNROLL_ON
    for (m = 0; m < keep; ++m) {
        const int32_t o = to + m * dil;
        if (y16 != NULL) {                              /* one packed word (PKHBT + STR on the M4) */
            y16[o * ycp + g] = ((uint32_t)a[2 * m] & 0xFFFFu) | ((uint32_t)a[2 * m + 1] << 16);
        } else {
            y8[o * cout + 2 * g] = (int8_t)a[2 * m];
            if (2 * g + 1 < cout) {
                y8[o * cout + 2 * g + 1] = (int8_t)a[2 * m + 1];
            }
        }
    }
}

#if SQ_WEIGHTS_INT8
/* SQ_WEIGHTS_INT8: the weights of one group of 2 output channels (n = K * cp stored words, one per input
 * pair p and tap j: the int8 weights c0 in 2p, c1 in 2p, c0 in 2p+1, c1 in 2p+1) expanded into the
 * layout of the int16 build, one 64-bit word per (p, j) = channel 0's int16 pair | channel 1's << 32:
 * SXTB16 of the word gives channel 0's pair, SXTB16 of the word rotated by 8 channel 1's; doubled for
 * fast layers (SADD16, no carry between the halves). Once per group: the tiles then read wl. */
SQ_S1_INLINE void sq_s1_weights(const uint32_t *w, int32_t n, int32_t fast, volatile uint64_t *wl)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const uint32_t v = w[i];
#if SQ_DSP
        int16x2_t e = __sxtb16((int8x4_t)v), o = __sxtb16((int8x4_t)((v >> 8) | (v << 24)));
        if (fast) {
            e = __sadd16(e, e);
            o = __sadd16(o, o);
        }
        wl[i] = (uint64_t)(uint32_t)e | (uint64_t)(uint32_t)o << 32;
#else
        const int32_t s = fast ? 2 : 1;
        const int32_t b0 = (int8_t)(uint8_t)v, b1 = (int8_t)(uint8_t)(v >> 8);
        const int32_t b2 = (int8_t)(uint8_t)(v >> 16), b3 = (int8_t)(uint8_t)(v >> 24);
        const uint32_t e = ((uint32_t)(s * b0) & 0xFFFFu) | ((uint32_t)(s * b2) << 16);
        const uint32_t o = ((uint32_t)(s * b1) & 0xFFFFu) | ((uint32_t)(s * b3) << 16);
        wl[i] = (uint64_t)e | (uint64_t)o << 32;
#endif
    }
}
#endif

/* MACs of one tile of 2 channels x 4 positions t0 + m dil (see sq_conv_s1): per tap 1 input load,
 * 1 LDRD of weights, 8 SMLAD (16 MACs for 10 instructions). The weights are the group's copy in a stack
 * buffer (wl, addressed off the stack pointer: no base register), and the input row of tap j + 3 is
 * loaded after position 0's SMLADs of tap j, when row j is dead: 8 accumulators + 3 rows + 2 weights +
 * 1 pointer = 14 registers. */
SQ_S1_INLINE void sq_s1_tile4(const uint32_t *xq, int32_t cp, int32_t k, int32_t dr, const volatile uint64_t *wp, int32_t *a)
{
    int32_t a00 = a[0], a01 = a[1], a10 = a[0], a11 = a[1], a20 = a[0], a21 = a[1], a30 = a[0], a31 = a[1];
    int32_t p, j;
    SQ_UNROLL
    for (p = 0; p < cp; ++p) {
        const uint32_t *xr = xq + p;
        uint32_t x0 = xr[0], x1 = xr[dr], x2 = xr[2 * dr];
        SQ_UNROLL
        for (j = 0; j < k; ++j) {
            const uint64_t ww = wp[k * p + j];
            const uint32_t wa = (uint32_t)ww, wb = (uint32_t)(ww >> 32);
            uint32_t x3;
            SQ_MAC2(a00, x0, wa);
            SQ_MAC2(a01, x0, wb);
            x3 = xr[(j + 3) * dr];
            SQ_MAC2(a10, x1, wa);
            SQ_MAC2(a11, x1, wb);
            SQ_MAC2(a20, x2, wa);
            SQ_MAC2(a21, x2, wb);
            SQ_MAC2(a30, x3, wa);
            SQ_MAC2(a31, x3, wb);
            x0 = x1;
            x1 = x2;
            x2 = x3;
        }
    }
    a[0] = a00;
    a[1] = a01;
    a[2] = a10;
    a[3] = a11;
    a[4] = a20;
    a[5] = a21;
    a[6] = a30;
    a[7] = a31;
}

/* MACs of one tile: channels 2g, 2g + 1 x 3 positions t0 + m dil (xq = row t0 of the expanded input),
 * accumulators a[0..5] = (pos 0 ch 0, pos 0 ch 1, pos 1 ch 0, ...), weights wp: one 64-bit word per
 * (pair, tap) = channel 0's int16 pair | channel 1's << 32 (one LDRD). Position m at tap j reads row
 * t0 + (j + m) dil, so the positions share a sliding window of 3 rows: per tap 1 input load, 1 LDRD,
 * 6 SMLAD (12 MACs for 8 instructions); 6 accumulators + 3 rows + 2 weights + 2 pointers = 13
 * registers. */
SQ_S1_INLINE void sq_s1_tile3(const uint32_t *xq, int32_t cp, int32_t k, int32_t dr, const volatile uint64_t *wp, int32_t *a)
{
    int32_t a00 = a[0], a01 = a[1], a10 = a[0], a11 = a[1], a20 = a[0], a21 = a[1];
    int32_t p, j;
    SQ_UNROLL
    for (p = 0; p < cp; ++p) {
        const uint32_t *xr = xq + p;
        uint32_t x0 = xr[0], x1 = xr[dr];
        SQ_UNROLL
        for (j = 0; j < k; ++j) {
            const uint32_t x2 = xr[(j + 2) * dr];
            const uint64_t ww = wp[k * p + j];
            const uint32_t wa = (uint32_t)ww, wb = (uint32_t)(ww >> 32);
            SQ_MAC2(a00, x0, wa);
            SQ_MAC2(a01, x0, wb);
            SQ_MAC2(a10, x1, wa);
            SQ_MAC2(a11, x1, wb);
            SQ_MAC2(a20, x2, wa);
            SQ_MAC2(a21, x2, wb);
            x0 = x1;
            x1 = x2;
        }
    }
    a[0] = a00;
    a[1] = a01;
    a[2] = a10;
    a[3] = a11;
    a[4] = a20;
    a[5] = a21;
}

/* The same with 2 positions (the end of a chain of positions that 3 does not divide). */
SQ_S1_INLINE void sq_s1_tile2(const uint32_t *xq, int32_t cp, int32_t k, int32_t dr, const volatile uint64_t *wp, int32_t *a)
{
    int32_t a00 = a[0], a01 = a[1], a10 = a[0], a11 = a[1];
    int32_t p, j;
    SQ_UNROLL
    for (p = 0; p < cp; ++p) {
        const uint32_t *xr = xq + p;
        uint32_t x0 = xr[0];
        SQ_UNROLL
        for (j = 0; j < k; ++j) {
            const uint32_t x1 = xr[(j + 1) * dr];
            const uint64_t ww = wp[k * p + j];
            const uint32_t wa = (uint32_t)ww, wb = (uint32_t)(ww >> 32);
            SQ_MAC2(a00, x0, wa);
            SQ_MAC2(a01, x0, wb);
            SQ_MAC2(a10, x1, wa);
            SQ_MAC2(a11, x1, wb);
            x0 = x1;
        }
    }
    a[0] = a00;
    a[1] = a01;
    a[2] = a10;
    a[3] = a11;
}

/* Conv1d, stride 1, 'same' padding pad = dil (k - 1) / 2, over an expanded input xe (see above; row 0
 * of xe is the first padding row) -> either the next layer's expanded buffer y16 (its row 0 = the first
 * real row, ycp words per row) or int8 rows y8 (t, cout). All shape arguments are compile-time
 * constants at the call site (the function is inlined per layer).
 *
 * Per group of 2 output channels (requantization parameters loaded once), every chain of positions
 * r, r + dil, r + 2 dil, ... (r < dil, n positions) is covered exactly by 3-position tiles and 0-2
 * 2-position tiles (n = 3 a + 2 b, b = (-n) mod 3): no output is computed twice or past the end, except
 * for a chain of 1 position (one 2-tile whose second position falls in the spare rows, not stored).
 * Taps in the 'same' padding read zero point rows: no tile has a bounds check. */
SQ_S1_INLINE void sq_conv_s1(const uint32_t *xe, int32_t t, int32_t cp, int32_t k, int32_t dil, int32_t cout,
                             const SQ_S1_WTYPE *w, const int32_t *bias, const int32_t *rq, int32_t fast,
                             int32_t rs, int32_t out_zp, int32_t act_min, int32_t act_max, uint32_t *y16, int32_t ycp, int8_t *y8)
{
    volatile uint64_t wl[SQ_S1_TAPS_MAX];               /* this group's weights (stack: addressed off sp) */
    volatile int32_t gq[10];                            /* its requantization (2 x 4 words) and bias */
    volatile uint64_t gk[2];                            /* "shift" layers: q | addend << 32 per channel */
    const int32_t dr = dil * cp;                        /* words between taps */
    int32_t g, r, i;
    for (g = 0; 2 * g < cout; ++g) {
        for (i = 0; i < 8; ++i) {
            gq[i] = rq[8 * g + i];
        }
        for (i = 0; i < 2 && fast == 2; ++i) {
            gk[i] = (uint64_t)(uint32_t)rq[8 * g + 4 * i]
                    | (uint64_t)(uint32_t)rq[8 * g + 4 * i + (SQ_SINGLE_ROUNDING ? 2 : 1)] << 32;
        }
        gq[8] = bias[2 * g];
        gq[9] = bias[2 * g + 1];
#if SQ_WEIGHTS_INT8
        sq_s1_weights(w + g * k * cp, k * cp, fast, wl);
#else
        SQ_UNROLL
        for (i = 0; i < cp; ++i) {
            SQ_UNROLL
            for (r = 0; r < k; ++r) {
                wl[k * i + r] = w[(g * cp + i) * k + r];
            }
        }
#endif
        for (r = 0; r < dil; ++r) {
            const int32_t n = (t - r + dil - 1) / dil;  /* positions r + m dil < t */
            const int32_t m4 = n % 4;
            const int32_t n4 = n == 1 ? 0 : (m4 == 1 ? (n - 5) / 4 : n / 4);
            const int32_t n3 = n == 1 ? 0 : (m4 == 1 || m4 == 3);
            const int32_t n2 = n == 1 ? 1 : (m4 == 1 || m4 == 2);
            int32_t to = r;
            for (i = 0; i < n4; ++i, to += 4 * dil) {
                int32_t a[8];
                a[0] = gq[8];
                a[1] = gq[9];
                sq_s1_tile4(xe + to * cp, cp, k, dr, wl, a);
                sq_s1_out(a, 4, 4, to, dil, g, cout, rq, gq, gk, fast, rs, out_zp, act_min, act_max, y16, ycp, y8);
            }
            for (i = 0; i < n3; ++i, to += 3 * dil) {
                int32_t a[6];
                a[0] = gq[8];
                a[1] = gq[9];
                sq_s1_tile3(xe + to * cp, cp, k, dr, wl, a);
                sq_s1_out(a, 3, 3, to, dil, g, cout, rq, gq, gk, fast, rs, out_zp, act_min, act_max, y16, ycp, y8);
            }
            for (i = 0; i < n2; ++i, to += 2 * dil) {
                int32_t a[4];
                a[0] = gq[8];
                a[1] = gq[9];
                sq_s1_tile2(xe + to * cp, cp, k, dr, wl, a);
                sq_s1_out(a, 2, to + dil < t ? 2 : 1, to, dil, g, cout, rq, gq, gk, fast, rs, out_zp, act_min, act_max, y16, ycp,
                          y8);
            }
        }
    }
}

#if SQ_MVE
/* ------------------------------------------------------------------ Helium (MVE) path
 *
 * Cortex-M55 / M85 (__ARM_FEATURE_MVE, disable with -DSQ_NO_MVE): int8 activations, channels-last rows
 * with `pad` rows of the input zero point before and after (no spare rows), int8 weights as rows of
 * K * Cin values padded with zeros to a multiple of 16 (d16). Each output is a dot product of d16 / 16
 * VMLADAVA.S8 (16 MACs each, predicated on the last chunk): for dil == 1 read straight from the rows
 * (one contiguous span), otherwise from an im2col scratch of the K dilated taps. Same requantization
 * as the DSP path (the doubled accumulator is formed before it), so the outputs are the same int8. */
#include <arm_mve.h>

#define SQ_MVE_COLMAX 512

/* int8 rows x (t, cin) -> padded rows xe ((pad + t + pad) x cin). */
static void sq_mve_rows(const int8_t *x, int32_t t, int32_t cin, int8_t *xe, int32_t pad, int32_t zp)
{
    memset(xe, (int)zp, (size_t)(pad * cin));
    memcpy(xe + pad * cin, x, (size_t)(t * cin));
    memset(xe + (pad + t) * cin, (int)zp, (size_t)(pad * cin));
}

/* The zero point rows around the t real rows the previous layer writes. */
static void sq_mve_pads(int8_t *xe, int32_t t, int32_t cin, int32_t pad, int32_t zp)
{
    memset(xe, (int)zp, (size_t)(pad * cin));
    memset(xe + (pad + t) * cin, (int)zp, (size_t)(pad * cin));
}

/* acc += <x[i .. i+16), w[i .. i+16)>: a whole chunk, or the predicated tail of a d-long row. */
#define SQ_MVE_DOT(acc, xv, wr, i, d)                                                               \
    ((acc) = (i) + 16 <= (d) ? vmladavaq_s8((acc), (xv), vldrbq_s8((wr) + (i)))                     \
                             : vmladavaq_p_s8((acc), (xv), vldrbq_s8((wr) + (i)), vctp8q((uint32_t)((d) - (i)))))

SQ_S1_INLINE void sq_conv_mve(const int8_t *xe, int32_t t, int32_t cin, int32_t k, int32_t dil, int32_t cout,
                              const int8_t *w, const int32_t *bias, const int32_t *rq, int32_t fast, int32_t out_zp,
                              int32_t act_min, int32_t act_max, int8_t *y)
{
    int8_t col[SQ_MVE_COLMAX];
    const int32_t d = k * cin, d16 = (d + 15) & ~15;
    int32_t to, co, i, j;
    for (to = 0; to < t; ++to, y += cout) {
        const int8_t *xs = xe + to * cin;               /* tap 0 of position to (rows start at -pad) */
        const int8_t *xv = xs;
        if (dil != 1 && k != 1) {                       /* im2col of the k dilated taps */
            for (j = 0; j < k; ++j) {
                memcpy(col + j * cin, xs + j * dil * cin, (size_t)cin);
            }
            xv = col;
        }
        for (co = 0; co + 4 <= cout; co += 4) {         /* 4 channels: each input chunk loaded once */
            const int8_t *wr = w + co * d16;
            int32_t a0 = bias[co], a1 = bias[co + 1], a2 = bias[co + 2], a3 = bias[co + 3];
            SQ_UNROLL
            for (i = 0; i < d16; i += 16) {
                const int8x16_t xq = i + 16 <= d ? vldrbq_s8(xv + i) : vldrbq_z_s8(xv + i, vctp8q((uint32_t)(d - i)));
                SQ_MVE_DOT(a0, xq, wr, i, d);
                SQ_MVE_DOT(a1, xq, wr + d16, i, d);
                SQ_MVE_DOT(a2, xq, wr + 2 * d16, i, d);
                SQ_MVE_DOT(a3, xq, wr + 3 * d16, i, d);
            }
            y[co] = (int8_t)sq_s1_requant(fast ? 2 * a0 : a0, sq_s1_rq(rq + 4 * co), fast, 0, out_zp,
                                          act_min, act_max);
            y[co + 1] = (int8_t)sq_s1_requant(fast ? 2 * a1 : a1, sq_s1_rq(rq + 4 * co + 4), fast, 0, out_zp,
                                          act_min, act_max);
            y[co + 2] = (int8_t)sq_s1_requant(fast ? 2 * a2 : a2, sq_s1_rq(rq + 4 * co + 8), fast, 0, out_zp,
                                          act_min, act_max);
            y[co + 3] = (int8_t)sq_s1_requant(fast ? 2 * a3 : a3, sq_s1_rq(rq + 4 * co + 12), fast, 0, out_zp,
                                          act_min, act_max);
        }
        for (; co < cout; ++co) {
            const int8_t *wr = w + co * d16;
            int32_t a0 = bias[co];
            SQ_UNROLL
            for (i = 0; i < d16; i += 16) {
                const int8x16_t xq = i + 16 <= d ? vldrbq_s8(xv + i) : vldrbq_z_s8(xv + i, vctp8q((uint32_t)(d - i)));
                SQ_MVE_DOT(a0, xq, wr, i, d);
            }
            y[co] = (int8_t)sq_s1_requant(fast ? 2 * a0 : a0, sq_s1_rq(rq + 4 * co), fast, 0, out_zp,
                                          act_min, act_max);
        }
    }
}
#endif
