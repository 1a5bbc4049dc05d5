/*
 * sq_acc_resampler.c - see sq_acc_resampler.h; the arithmetic of sqtool/data/acc_resampler.py, bit for bit.
 */
#ifndef SQ_AR_DEFINE_TABLES
#define SQ_AR_DEFINE_TABLES
#endif
#include "sq_acc_resampler.h"

int sq_acc_rs_init(sq_acc_rs_t *s)
{
    int c, i;
    if (!s) return SQ_AR_ERR_NULL;
    for (c = 0; c < 3; ++c)
        for (i = 0; i < 2 * SQ_AR_TAPS; ++i) s->hist[c][i] = 0;
    s->hpos = 0;
    s->phase = 0;
    s->due = 1;                       /* output 0 is due on input 0 */
    s->magic = SQ_AR_MAGIC;
    return SQ_AR_OK;
}

int sq_acc_rs_init_fs(sq_acc_rs_t *s, uint32_t fs_acc_mhz)
{
    if (!s) return SQ_AR_ERR_NULL;
    if (fs_acc_mhz != SQ_AR_FS_ACC_MHZ) {
        s->magic = 0u;                /* refused: no stream at the wrong rate goes on */
        return SQ_AR_ERR_RATE;
    }
    return sq_acc_rs_init(s);
}

static int sq_ar_state_ok(const sq_acc_rs_t *s)
{
    return s->magic == SQ_AR_MAGIC && s->hpos >= 0 && s->hpos < SQ_AR_TAPS && s->phase >= 0
        && s->phase < SQ_AR_UP && s->due >= 1 && s->due <= (SQ_AR_DOWN + SQ_AR_UP - 1) / SQ_AR_UP + 1;
}

int sq_acc_rs_count(const sq_acc_rs_t *s, int m)
{
    int32_t phase, due;
    int i, k = 0;
    if (!s) return SQ_AR_ERR_NULL;
    if (m < 0 || m > SQ_AR_MAX_PUSH) return SQ_AR_ERR_ARG;
    if (!sq_ar_state_ok(s)) return SQ_AR_ERR_STATE;
    phase = s->phase;
    due = s->due;
    for (i = 0; i < m; ++i) {
        --due;
        while (due == 0) {
            ++k;
            phase += SQ_AR_DOWN;
            due = phase / SQ_AR_UP;
            phase -= due * SQ_AR_UP;
        }
    }
    return k;
}

int sq_acc_rs_push(sq_acc_rs_t *s, const int16_t *in, int m, int16_t *out, int max_out)
{
    int i, c, j, k = 0, need;
    if (!s) return SQ_AR_ERR_NULL;
    if (m < 0 || m > SQ_AR_MAX_PUSH || max_out < 0) return SQ_AR_ERR_ARG;
    if (!sq_ar_state_ok(s)) return SQ_AR_ERR_STATE;
    if (m > 0 && !in) return SQ_AR_ERR_NULL;
    need = sq_acc_rs_count(s, m);
    if (need > max_out) return SQ_AR_ERR_OVERFLOW;
    if (need > 0 && !out) return SQ_AR_ERR_NULL;
    for (i = 0; i < m; ++i) {
        int p = s->hpos;
        for (c = 0; c < 3; ++c) {
            s->hist[c][p] = in[3 * i + c];
            s->hist[c][p + SQ_AR_TAPS] = in[3 * i + c];
        }
        s->hpos = p + 1 == SQ_AR_TAPS ? 0 : p + 1;
        --s->due;
        while (s->due == 0) {
            const int16_t *g = sq_ar_fir[s->phase];
            for (c = 0; c < 3; ++c) {
                const int16_t *h = &s->hist[c][p + SQ_AR_TAPS];   /* newest input; h[-j]: j samples before */
                int32_t acc = 0;
                for (j = 0; j < SQ_AR_TAPS; ++j) acc += (int32_t)g[j] * h[-j];   /* |acc| <= 65535 * 32768 */
                acc = (acc + (1 << 14)) >> 15;
                out[3 * k + c] = (int16_t)(acc < -32768 ? -32768 : (acc > 32767 ? 32767 : acc));
            }
            ++k;
            s->phase += SQ_AR_DOWN;
            s->due = s->phase / SQ_AR_UP;
            s->phase -= s->due * SQ_AR_UP;
        }
    }
    return k;
}
