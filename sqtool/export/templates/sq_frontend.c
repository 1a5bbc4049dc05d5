/*
 * sq_frontend.c - fixed-point streaming front end (see sq_frontend.h and sqtool/data/frontend.py,
 * whose integer arithmetic this file reproduces bit for bit).
 */
#define SQ_FE_DEFINE_TABLES
#include "sq_frontend.h"

#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(SQ_FE_NO_DSP)
#include <arm_acle.h>
#define SQ_FE_USE_DSP 1
#else
#define SQ_FE_USE_DSP 0
#endif

#define SQ_FE_HALF_N (SQ_FE_N / 2)

static int32_t sq_fe_sat(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

#if SQ_FE_USE_DSP
/* acc + lo(x) lo(y) + hi(x) hi(y): exact, the DFT bound keeps every partial sum inside int32 */
#define SQ_FE_MAC2(acc, x, y) ((acc) = __smlad((int16x2_t)(x), (int16x2_t)(y), (acc)))
#else
static int32_t sq_fe_lo16(uint32_t w)
{
    int32_t v = (int32_t)(w & 0xFFFFu);
    return v >= 0x8000 ? v - 0x10000 : v;
}

static int32_t sq_fe_hi16(uint32_t w)
{
    int32_t v = (int32_t)(w >> 16);
    return v >= 0x8000 ? v - 0x10000 : v;
}
#define SQ_FE_MAC2(acc, x, y) \
    ((acc) += sq_fe_lo16(x) * sq_fe_lo16(y) + sq_fe_hi16(x) * sq_fe_hi16(y))
#endif

int sq_frontend_init(sq_frontend_t *s)
{
    int c, i, j;
    if (!s) return SQ_FE_ERR_NULL;
    for (c = 0; c < SQ_FE_NIN; ++c) {
        s->last[c] = 0;
        for (i = 0; i < 2 * SQ_FE_TAPS; ++i) s->hist[c][i] = 0;
        for (i = 0; i < SQ_FE_NSOS; ++i)
            for (j = 0; j < 4; ++j) s->iir[c][i][j] = 0;
        for (i = 0; i < SQ_FE_T; ++i) s->ring[c][i] = 0;
        for (i = 0; i < SQ_FE_NSLOT; ++i) { s->qlo[c][i] = 0; s->qhi[c][i] = 0; }
    }
    s->qnext = 0;               /* model sample 0 starts window 0 (slot 0) */
    s->qslot = 0;
    for (i = 0; i < SQ_FE_T; ++i) { s->own_cnt[i] = 0; s->own_flag[i] = 0; }
    s->hpos = 0;
    s->phase = 0;
    s->due = 1;                 /* output 0 is computed on input 0 */
    s->rpos = 0;
    s->pend_cnt = 0;
    s->pend_flag = 0;
    s->to_win = SQ_FE_T;
    s->ready = 0;
    s->win_index = 0;
    s->ppg_quiet = 0;
    return SQ_FE_OK;
}

/* The indices push and window read, each within the range an initialised state keeps it in (a few compares
 * per call): an all-zero state (due = 0) or garbage fails it, so neither indexes hist / ring / the FIR phases
 * out of bounds nor counts `due` down past zero. Filter and history values are not checked (garbage there is
 * only wrong output): it is a bounds guard, not a proof of initialisation. */
static int sq_fe_state_ok(const sq_frontend_t *s)
{
    return s->hpos >= 0 && s->hpos < SQ_FE_TAPS && s->phase >= 0 && s->phase < SQ_FE_UP
        && s->due >= 1 && s->due <= (SQ_FE_UP - 1 + SQ_FE_DOWN) / SQ_FE_UP        /* down-sampling: DOWN >= UP */
        && s->rpos >= 0 && s->rpos < SQ_FE_T && s->to_win >= 1 && s->to_win <= SQ_FE_T
        && s->qnext >= 0 && s->qnext < SQ_FE_HOP && s->qslot >= 0 && s->qslot < SQ_FE_NSLOT;
}

/* One model-rate sample per channel: FIR at the current phase, its min / max into every window in flight
 * (a window starting here resets its slot first), band-pass, into the ring. */
static void sq_fe_produce(sq_frontend_t *s)
{
    const int16_t *g = sq_fe_fir[s->phase];
    const int start = s->qnext == 0;
    int c, i, k;
    for (c = 0; c < SQ_FE_NIN; ++c) {
        const int16_t *h = &s->hist[c][s->hpos + SQ_FE_TAPS - 1];   /* newest input */
        int16_t *lo = s->qlo[c], *hi = s->qhi[c];
        int32_t acc = 0, y;
        for (i = 0; i < SQ_FE_TAPS; ++i) acc += (int32_t)g[i] * h[-i];   /* |acc| <= 32768 * 65535 */
        y = sq_fe_sat((acc + (1 << 14)) >> 15, -32768, 32767);
        if (start) { lo[s->qslot] = (int16_t)y; hi[s->qslot] = (int16_t)y; }
        for (i = 0; i < SQ_FE_NSLOT; ++i) {
            if (y < lo[i]) lo[i] = (int16_t)y;
            if (y > hi[i]) hi[i] = (int16_t)y;
        }
        for (k = 0; k < SQ_FE_NSOS; ++k) {
            const int32_t *b = sq_fe_sos[k];
            int32_t *st = s->iir[c][k];
            int64_t a = (int64_t)b[0] * y + (int64_t)b[1] * st[0] + (int64_t)b[2] * st[1]
                      - (int64_t)b[3] * st[2] - (int64_t)b[4] * st[3];
            int64_t o = (a + ((int64_t)1 << (SQ_FE_IIR_FRAC - 1))) >> SQ_FE_IIR_FRAC;
            const int64_t smin = k == SQ_FE_NSOS - 1 ? -32768 : -SQ_FE_MID_SAT - 1;
            const int64_t smax = k == SQ_FE_NSOS - 1 ? 32767 : SQ_FE_MID_SAT;
            o = o < smin ? smin : (o > smax ? smax : o);
            st[1] = st[0]; st[0] = y;
            st[3] = st[2]; st[2] = (int32_t)o;
            y = (int32_t)o;
        }
        s->ring[c][s->rpos] = (int16_t)y;
    }
    if (start) {
        s->qnext = SQ_FE_HOP;
        if (++s->qslot == SQ_FE_NSLOT) s->qslot = 0;
    }
    --s->qnext;
    s->own_cnt[s->rpos] = (uint8_t)s->pend_cnt;
    s->own_flag[s->rpos] = (uint8_t)s->pend_flag;
    s->pend_cnt = 0;
    s->pend_flag = 0;
    if (++s->rpos == SQ_FE_T) s->rpos = 0;
    s->phase += SQ_FE_DOWN;
    s->due = s->phase / SQ_FE_UP;
    s->phase -= s->due * SQ_FE_UP;
    if (--s->to_win == 0) {
        s->ready = 1;
        s->to_win = SQ_FE_HOP;
    }
}

int sq_frontend_push(sq_frontend_t *s, const int16_t *ppg, const int16_t *acc, const uint8_t *gap,
                     int n, int *consumed)
{
    int i = 0, c;
    if (!s || !ppg || !consumed) return SQ_FE_ERR_NULL;
    *consumed = 0;
#if SQ_FE_NCH > 1
    if (!acc) return SQ_FE_ERR_NULL;
#else
    (void)acc;
#endif
    if (n < 0) return SQ_FE_ERR_ARG;
    if (!sq_fe_state_ok(s)) return SQ_FE_ERR_STATE;
    if (s->ready) return SQ_FE_ERR_PENDING;
    while (i < n) {
        int flag = gap != 0 && gap[i] != 0;
        int p = s->hpos;
        if (!flag) {
            s->last[0] = ppg[SQ_FE_N_PPG * i];
#if SQ_FE_N_PPG == 2
            s->last[1] = ppg[2 * i + 1];
#endif
#if SQ_FE_NCH > 1
            s->last[SQ_FE_N_PPG] = acc[3 * i];
            s->last[SQ_FE_N_PPG + 1] = acc[3 * i + 1];
            s->last[SQ_FE_N_PPG + 2] = acc[3 * i + 2];
#endif
        }
        for (c = 0; c < SQ_FE_NIN; ++c) {
            s->hist[c][p] = s->last[c];
            s->hist[c][p + SQ_FE_TAPS] = s->last[c];
        }
        s->hpos = p + 1 == SQ_FE_TAPS ? 0 : p + 1;
        s->pend_cnt += 1;
        s->pend_flag += flag;
        ++i;
        if (--s->due == 0) {
            sq_fe_produce(s);
            if (s->ready) break;
        }
    }
    *consumed = i;
    return s->ready;
}

/* Block floating point + Hann: ring channel c (oldest first) -> s->xw[n][c] packed int16 pairs; a quiet
 * channel (its resampled samples span <= SQ_FE_QUIET) as all zeros. */
static void sq_fe_prepare(sq_frontend_t *s, int c, int quiet)
{
    const int16_t *r = s->ring[c];
    int32_t x[SQ_FE_T];
    int32_t mx = 0, n, j = 0, sh = 0, rs = 0;
    for (n = s->rpos; n < SQ_FE_T; ++n) x[j++] = quiet ? 0 : r[n];
    for (n = 0; n < s->rpos; ++n) x[j++] = quiet ? 0 : r[n];
    for (n = 0; n < SQ_FE_T; ++n) {
        int32_t a = x[n] < 0 ? -x[n] : x[n];
        if (a > mx) mx = a;
    }
    if (mx > SQ_FE_XMAX) {
        rs = 1;
        while (((mx + ((1 << rs) >> 1)) >> rs) > SQ_FE_XMAX) ++rs;
    } else if (mx > 0) {
        while ((mx << (sh + 1)) <= SQ_FE_XMAX) ++sh;
    }
#if SQ_FE_NCH == 2
    s->pexp[c] = mx > 0 ? 2 * (rs - sh) : SQ_FE_PEXP_NONE;       /* the power's scale: P * 2^pexp */
#endif
    for (n = 0; n < SQ_FE_T; ++n) {
        int32_t v = rs ? (x[n] + (1 << (rs - 1))) >> rs : x[n] * (1 << sh);   /* |v| <= XMAX */
        x[n] = (v * sq_fe_hann[n] + (1 << 14)) >> 15;
    }
    for (n = 0; n < SQ_FE_T / 2; ++n)
        s->xw[n][c] = (uint32_t)(uint16_t)x[2 * n] | ((uint32_t)(uint16_t)x[2 * n + 1] << 16);
}

static uint32_t sq_fe_power(int32_t re, int32_t im)
{
    int32_t r = (re + (1 << (SQ_FE_POWER_SHIFT - 1))) >> SQ_FE_POWER_SHIFT;
    int32_t i = (im + (1 << (SQ_FE_POWER_SHIFT - 1))) >> SQ_FE_POWER_SHIFT;
    return (uint32_t)((int64_t)r * r + (int64_t)i * i);                        /* <= 2^31 */
}

#if SQ_FE_USE_DSP
/* Two consecutive words in one LDRD, post-incrementing the pointer (word-aligned uint32_t data). */
static inline void sq_fe_ldrd(const uint32_t **p, uint32_t *a, uint32_t *b)
{
    __asm__("ldrd %0, %1, [%2], #8" : "=&r"(*a), "=&r"(*b), "+r"(*p) : "m"(*(const uint32_t(*)[2]) * p));
}
#else
static inline void sq_fe_ldrd(const uint32_t **p, uint32_t *a, uint32_t *b)
{
    *a = (*p)[0];
    *b = (*p)[1];
    *p += 2;
}
#endif

/* Direct DFT at the NBINS bin frequencies, all NIN input channels at once: per bin and pair of samples
 * (n, n+1), the (cos, sin) words of both are loaded and repacked once as (cos n, cos n+1) and (sin n, sin n+1)
 * and feed 2 * NIN dual MACs; the NIN sample-pair words of one n are consecutive (LDRD pairs, one LDR for an
 * odd NIN). The table pointer advances 2k entries per pair (one wrap at most: 2 KMAX < N). xw: T/2 rows of
 * NIN words; pw[b * NIN + c] = power. Any summation order is exact (see the DFT bound). */
#define SQ_FE_MAC_CH(x0, re, im, cc, ss)                                    \
    do {                                                                    \
        SQ_FE_MAC2(re, x0, cc);                                             \
        SQ_FE_MAC2(im, x0, ss);                                             \
    } while (0)
#if SQ_FE_NIN == 1
#define SQ_FE_MACS(cc, ss)                                                  \
    do {                                                                    \
        const uint32_t x0 = *x++;                                           \
        SQ_FE_MAC_CH(x0, re0, im0, cc, ss);                                 \
    } while (0)
#elif SQ_FE_NIN == 2
#define SQ_FE_MACS(cc, ss)                                                  \
    do {                                                                    \
        uint32_t x0, x1;                                                    \
        sq_fe_ldrd(&x, &x0, &x1);                                           \
        SQ_FE_MAC_CH(x0, re0, im0, cc, ss);                                 \
        SQ_FE_MAC_CH(x1, re1, im1, cc, ss);                                 \
    } while (0)
#elif SQ_FE_NIN == 4
#define SQ_FE_MACS(cc, ss)                                                  \
    do {                                                                    \
        uint32_t x0, x1;                                                    \
        sq_fe_ldrd(&x, &x0, &x1);                                           \
        SQ_FE_MAC_CH(x0, re0, im0, cc, ss);                                 \
        SQ_FE_MAC_CH(x1, re1, im1, cc, ss);                                 \
        sq_fe_ldrd(&x, &x0, &x1);                                           \
        SQ_FE_MAC_CH(x0, re2, im2, cc, ss);                                 \
        SQ_FE_MAC_CH(x1, re3, im3, cc, ss);                                 \
    } while (0)
#else /* SQ_FE_NIN == 5 */
#define SQ_FE_MACS(cc, ss)                                                  \
    do {                                                                    \
        uint32_t x0, x1;                                                    \
        sq_fe_ldrd(&x, &x0, &x1);                                           \
        SQ_FE_MAC_CH(x0, re0, im0, cc, ss);                                 \
        SQ_FE_MAC_CH(x1, re1, im1, cc, ss);                                 \
        sq_fe_ldrd(&x, &x0, &x1);                                           \
        SQ_FE_MAC_CH(x0, re2, im2, cc, ss);                                 \
        SQ_FE_MAC_CH(x1, re3, im3, cc, ss);                                 \
        x0 = *x++;                                                          \
        SQ_FE_MAC_CH(x0, re4, im4, cc, ss);                                 \
    } while (0)
#endif
/* One pair of samples (n, n+1) of one bin: repack the two (cos, sin) words, 2 * NIN dual MACs, advance
 * the table pointer by 2k entries (one wrap at most: 2 KMAX < N; the table holds N + 2 KMAX entries). */
#define SQ_FE_PAIR()                                                        \
    do {                                                                    \
        const uint32_t w0 = q[0], w1 = q[k];      /* sample n, n + 1 */     \
        const uint32_t cc = (w0 & 0xFFFFu) | (w1 << 16);                    \
        const uint32_t ss = (w1 & 0xFFFF0000u) | (w0 >> 16);                \
        SQ_FE_MACS(cc, ss);                                                 \
        q += 2 * k;                                                         \
        if (q >= wrap) q -= SQ_FE_N;                                        \
    } while (0)

static void sq_fe_dft(const uint32_t *xw, uint32_t *pw)
{
    int b;
    for (b = 0; b < SQ_FE_NBINS; ++b) {
        const int32_t k = SQ_FE_K0 + b;
        const uint32_t *q = sq_fe_cs, *const wrap = sq_fe_cs + SQ_FE_N;    /* q = &cs[(k n) mod N] */
        const uint32_t *x = xw, *const xend = xw + SQ_FE_NIN * (SQ_FE_T / 2);
        int32_t re0 = 0, im0 = 0;
#if SQ_FE_NIN >= 2
        int32_t re1 = 0, im1 = 0;
#endif
#if SQ_FE_NIN >= 4
        int32_t re2 = 0, im2 = 0, re3 = 0, im3 = 0;
#endif
#if SQ_FE_NIN == 5
        int32_t re4 = 0, im4 = 0;
#endif
        do {
            SQ_FE_PAIR();
#if (SQ_FE_T / 2) % 2 == 0
            SQ_FE_PAIR();                         /* an even number of pairs: two per iteration */
#endif
        } while (x != xend);
        pw[b * SQ_FE_NIN] = sq_fe_power(re0, im0);
#if SQ_FE_NIN >= 2
        pw[b * SQ_FE_NIN + 1] = sq_fe_power(re1, im1);
#endif
#if SQ_FE_NIN >= 4
        pw[b * SQ_FE_NIN + 2] = sq_fe_power(re2, im2);
        pw[b * SQ_FE_NIN + 3] = sq_fe_power(re3, im3);
#endif
#if SQ_FE_NIN == 5
        pw[b * SQ_FE_NIN + 4] = sq_fe_power(re4, im4);
#endif
    }
}

#if SQ_FE_N_PPG > 1
/* The PPG sensors (input channels 0 .. N_PPG-1) -> channel 0's power: per sensor q = max(0, bitlen(Pmax) -
 * NORM_BITS), u = ((P >> q) << NORM_FRAC + (Pmax >> q) / 2) / (Pmax >> q) (uint32: < 2^31 + 2^14; the max bin
 * exactly 2^NORM_FRAC; a sensor with Pmax == 0 adds 0), summed over the sensors into pw[b * NIN]. */
static void sq_fe_combine_ppg(uint32_t *pw)
{
    uint32_t pm[SQ_FE_N_PPG];
    int q[SQ_FE_N_PPG], b, c;
    for (c = 0; c < SQ_FE_N_PPG; ++c) {
        uint32_t pmax = 0;
        for (b = 0; b < SQ_FE_NBINS; ++b)
            if (pw[b * SQ_FE_NIN + c] > pmax) pmax = pw[b * SQ_FE_NIN + c];
        q[c] = 0;
        while ((pmax >> q[c]) >= (1u << SQ_FE_NORM_BITS)) ++q[c];
        pm[c] = pmax >> q[c];
    }
    for (b = 0; b < SQ_FE_NBINS; ++b) {
        uint32_t sum = 0;
        for (c = 0; c < SQ_FE_N_PPG; ++c)
            if (pm[c] != 0u)
                sum += (((pw[b * SQ_FE_NIN + c] >> q[c]) << SQ_FE_NORM_FRAC) + (pm[c] >> 1)) / pm[c];
        pw[b * SQ_FE_NIN] = sum;                                   /* <= N_PPG * 2^NORM_FRAC */
    }
}
#endif

#if SQ_FE_NCH == 2
/* The three axes (input channels N_PPG .. N_PPG+2) -> one acc power, |X|^2 + |Y|^2 + |Z|^2 on one scale: each
 * axis' power shifted right by emax - its exponent (emax: the largest of the non-zero axes; a shift >= 32
 * gives 0; an all-zero axis adds 0), summed (< 2^33: uint64), rounded >> 2 (< 2^31) into pw[b * NIN + N_PPG]. */
static void sq_fe_combine_acc(uint32_t *pw, const int32_t *pexp)
{
    int32_t emax = SQ_FE_PEXP_NONE, sh[3];
    int a, b;
    for (a = 0; a < 3; ++a)
        if (pexp[SQ_FE_N_PPG + a] > emax) emax = pexp[SQ_FE_N_PPG + a];
    for (a = 0; a < 3; ++a)
        sh[a] = pexp[SQ_FE_N_PPG + a] == SQ_FE_PEXP_NONE ? 32 : emax - pexp[SQ_FE_N_PPG + a];
    for (b = 0; b < SQ_FE_NBINS; ++b) {
        const uint32_t *p = pw + b * SQ_FE_NIN + SQ_FE_N_PPG;
        uint64_t sum = 2u;
        for (a = 0; a < 3; ++a)
            if (sh[a] < 32) sum += p[a] >> sh[a];
        pw[b * SQ_FE_NIN + SQ_FE_N_PPG] = (uint32_t)(sum >> 2);
    }
}
#endif

int sq_frontend_window(sq_frontend_t *s, int8_t *out, uint16_t *flagged_q15)
{
    int c, b, idx, slot;
    uint32_t cnt = 0, flg = 0;
    if (!s || !out) return SQ_FE_ERR_NULL;
    if (!sq_fe_state_ok(s)) return SQ_FE_ERR_STATE;
    if (!s->ready) return SQ_FE_ERR_NO_WINDOW;
    slot = (int)(s->win_index % (uint32_t)SQ_FE_NSLOT);            /* this window's min / max slot */
    s->ppg_quiet = 1;
    for (c = 0; c < SQ_FE_NIN; ++c) {
        const int quiet = (int32_t)s->qhi[c][slot] - s->qlo[c][slot] <= SQ_FE_QUIET;
        if (c < SQ_FE_N_PPG && !quiet) s->ppg_quiet = 0;
        sq_fe_prepare(s, c, quiet);
    }
    sq_fe_dft(&s->xw[0][0], s->pw);
#if SQ_FE_N_PPG > 1
    sq_fe_combine_ppg(s->pw);
#endif
#if SQ_FE_NCH == 2
    sq_fe_combine_acc(s->pw, s->pexp);
#endif
    for (c = 0; c < SQ_FE_NCH; ++c) {
        const int col = c == 0 ? 0 : c + SQ_FE_N_PPG - 1;            /* channel c's power column in pw */
        uint32_t pmax = 0, pm;
        int q = 0;
        for (b = 0; b < SQ_FE_NBINS; ++b)
            if (s->pw[b * SQ_FE_NIN + col] > pmax) pmax = s->pw[b * SQ_FE_NIN + col];
        if (pmax == 0) {
            for (b = 0; b < SQ_FE_NBINS; ++b) out[b * SQ_FE_NCH + c] = -127;
            continue;
        }
        while ((pmax >> q) >= (1u << SQ_FE_CODE_BITS)) ++q;
        pm = pmax >> q;
        for (b = 0; b < SQ_FE_NBINS; ++b) {
            uint32_t pb = s->pw[b * SQ_FE_NIN + col] >> q;
            out[b * SQ_FE_NCH + c] = (int8_t)((int32_t)((508u * pb + pm) / (2u * pm)) - 127);
        }
    }
    for (b = 0; b < SQ_FE_T; ++b) { cnt += s->own_cnt[b]; flg += s->own_flag[b]; }
    if (flagged_q15) *flagged_q15 = (uint16_t)(cnt ? (flg * 32768u + cnt / 2u) / cnt : 0u);
    idx = (int)(s->win_index & 0x7FFFFFFFu);
    s->win_index += 1;
    s->ready = 0;
    return idx;
}
