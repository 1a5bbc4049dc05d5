/*
 * sq_pipeline.c - streaming heart-rate pipeline: front end -> network -> decoder (see sq_pipeline.h and
 * sqtool/export/pipeline.py, whose integer arithmetic this file reproduces bit for bit).
 *
 * Benchmark hooks: building with -DSQ_PL_BENCH brackets every stage with calls of
 * sq_pl_bench_begin(stage) / sq_pl_bench_end(stage) (stage 0 = front end per sample: resampler and band-pass,
 * 3 = front end per window: spectra and codes, 1 = network, 2 = decoder),
 * which the benchmark harness provides; without it they compile to nothing.
 */
#include "sq_pipeline.h"

#include <stddef.h>

#if !SQ_SINGLE_ROUNDING
#error "sq_pipeline: the network must be built with single rounding (SQ_SINGLE_ROUNDING=1), as the reference"
#endif

#if SQ_DEC_NBINS != SQ_FE_NBINS || SQ_OUTPUT_SIZE != SQ_DEC_NBINS || SQ_INPUT_SIZE != SQ_FE_NBINS * SQ_FE_NCH
#error "sq_pipeline: front end, network and decoder disagree on the bins or channels"
#endif

#if SQ_PL_N_PPG != SQ_FE_N_PPG
#error "sq_pipeline: the pipeline config and the front end disagree on the PPG sensors"
#endif

#ifdef SQ_PL_BENCH
void sq_pl_bench_begin(int stage);
void sq_pl_bench_end(int stage);
#define SQ_PL_BEGIN(s) sq_pl_bench_begin(s)
#define SQ_PL_END(s) sq_pl_bench_end(s)
#else
#define SQ_PL_BEGIN(s) ((void)0)
#define SQ_PL_END(s) ((void)0)
#endif

static const uint8_t sq_pl_log2_frac[128] = SQ_PL_LOG2_FRAC_Q8;   /* round(256 log2(1 + j / 128)) */

/* 256 log2(x), x >= 1: 256 (bit length - 1) + the table at x's top 8 bits (= pipeline.ilog2_q8). */
static int32_t sq_pl_ilog2_q8(uint32_t x)
{
    int32_t e = 0;
    uint32_t m;
    while ((x >> (e + 1)) != 0u) ++e;
    m = e >= 7 ? x >> (e - 7) : x << (7 - e);                   /* 128 .. 255 */
    return 256 * e + sq_pl_log2_frac[m - 128u];
}

/* The ppg channel's flatness (= pipeline.flatness_q8): v = code + 128, max(0, F (L(sum v) - L(F)) - sum L(v)) / F. */
static uint16_t sq_pl_flatness_q8(const int8_t *codes)
{
    int32_t s = 0, g;
    uint32_t a = 0;
    int b;
    for (b = 0; b < SQ_FE_NBINS; ++b) {
        const uint32_t v = (uint32_t)((int32_t)codes[b * SQ_FE_NCH] + 128);
        a += v;
        s += sq_pl_ilog2_q8(v);
    }
    g = SQ_FE_NBINS * (sq_pl_ilog2_q8(a) - sq_pl_ilog2_q8(SQ_FE_NBINS)) - s;
    return (uint16_t)(g > 0 ? g / SQ_FE_NBINS : 0);
}

/* This window's flatness into the ring; 1 when the last SQ_PL_NO_PULSE_WINDOWS sum to at most their threshold. */
static uint8_t sq_pl_no_pulse(sq_pipeline_t *p, const int8_t *codes)
{
    const uint16_t g = sq_pl_flatness_q8(codes);
    p->flat_sum += g;
    p->flat_sum -= p->flat_ring[p->flat_pos];                   /* 0 until the ring is full */
    p->flat_ring[p->flat_pos] = g;
    if (++p->flat_pos == SQ_PL_NO_PULSE_WINDOWS) p->flat_pos = 0;
    if (p->flat_seen < SQ_PL_NO_PULSE_WINDOWS) ++p->flat_seen;
    return (uint8_t)(p->flat_seen == SQ_PL_NO_PULSE_WINDOWS
                     && p->flat_sum <= (uint32_t)SQ_PL_NO_PULSE_WINDOWS * SQ_PL_NO_PULSE_MAX_Q8);
}

int sq_pipeline_init(sq_pipeline_t *p)
{
    unsigned i;
    if (p == NULL) return SQ_PL_ERR_NULL;
    if (sq_frontend_init(&p->fe) != SQ_FE_OK || sq_decoder_init(&p->dec) != SQ_DEC_OK) return SQ_PL_ERR_NULL;
    for (i = 0; i < sizeof p->window_words / sizeof p->window_words[0]; ++i) p->window_words[i] = 0u;
    for (i = 0; i < sizeof p->logit_words / sizeof p->logit_words[0]; ++i) p->logit_words[i] = 0u;
    for (i = 0; i < SQ_PL_NO_PULSE_WINDOWS; ++i) p->flat_ring[i] = 0u;
    p->flat_sum = 0u;
    p->flat_seen = 0u;
    p->flat_pos = 0u;
    p->magic = SQ_PL_MAGIC;
    return SQ_PL_OK;
}

/* A refused init un-initialises the state: the stream it held was for the device the caller no longer has, so
 * push / pending return SQ_PL_ERR_STATE until an init succeeds, rather than go on reading samples at another rate
 * (or sensor count) as the old stream's. */
static int sq_pl_refuse(sq_pipeline_t *p, int err)
{
    p->magic = 0u;
    return err;
}

int sq_pipeline_init_fs(sq_pipeline_t *p, uint32_t fs_in_mhz)
{
    if (p == NULL) return SQ_PL_ERR_NULL;
    if (fs_in_mhz != SQ_PL_FS_IN_MHZ) return sq_pl_refuse(p, SQ_PL_ERR_RATE);
    return sq_pipeline_init(p);
}

int sq_pipeline_init_device(sq_pipeline_t *p, uint32_t fs_in_mhz, int n_ppg)
{
    if (p == NULL) return SQ_PL_ERR_NULL;
    if (fs_in_mhz != SQ_PL_FS_IN_MHZ) return sq_pl_refuse(p, SQ_PL_ERR_RATE);
    if (n_ppg != SQ_FE_N_PPG) return sq_pl_refuse(p, SQ_PL_ERR_SENSORS);
    return sq_pipeline_init(p);
}

/* The guard of every entry point that reads the state: a state no init has set up (a zeroed static, RAM
 * left as it was at power-up) fails it, except garbage that happens to hold the magic (odds 2^-32 for
 * random RAM); the front end also range-checks its indices on entry (SQ_FE_ERR_STATE). */
static int sq_pl_initialised(const sq_pipeline_t *p)
{
    return p->magic == SQ_PL_MAGIC;
}

/* Windows completed by the next n inputs, from the front end's counters (exact, O(1)): the next model
 * sample is produced on input (due - 1) of the chunk with phase `phase`; the j-th after it on input
 * due - 1 + floor((phase + j DOWN) / UP); a window completes every HOP model samples, the next one
 * after `to_win` more. */
int sq_pipeline_pending(const sq_pipeline_t *p, int n)
{
    int64_t span, outputs;
    if (p == NULL) return SQ_PL_ERR_NULL;
    if (!sq_pl_initialised(p)) return SQ_PL_ERR_STATE;
    if (n < 0) return SQ_PL_ERR_ARG;
    if ((int64_t)n < (int64_t)p->fe.due) return 0;
    span = ((int64_t)n - p->fe.due + 1) * SQ_FE_UP - p->fe.phase;        /* > 0 */
    outputs = (span + SQ_FE_DOWN - 1) / SQ_FE_DOWN;
    if (outputs < p->fe.to_win) return 0;
    return (int)((outputs - p->fe.to_win) / SQ_FE_HOP + 1);
}

/* The ready window: codes -> (network if valid: at most half flagged, PPG not quiet) -> decoder -> *r;
 * pulse presence from the same codes. */
static int sq_pl_score(sq_pipeline_t *p, sq_result_t *r)
{
    int8_t *codes = (int8_t *)p->window_words;
    int8_t *logits = (int8_t *)p->logit_words;
    uint16_t flagged = 0;
    sq_decoder_out_t d;
    int idx, valid;
    SQ_PL_BEGIN(3);
    idx = sq_frontend_window(&p->fe, codes, &flagged);
    SQ_PL_END(3);
    if (idx < 0) return SQ_PL_ERR_MODEL;
    valid = flagged <= SQ_PL_MAX_FLAGGED_Q15 && !p->fe.ppg_quiet;   /* = pipeline.scores */
    if (valid) {
        int rc;
        SQ_PL_BEGIN(1);
        rc = sq_model_run(codes, logits);
        SQ_PL_END(1);
        if (rc != 0) return SQ_PL_ERR_MODEL;
    }
    SQ_PL_BEGIN(2);
    if (sq_decoder_step_spec(&p->dec, logits, codes, SQ_FE_NCH, valid, &d) != SQ_DEC_OK) return SQ_PL_ERR_MODEL;
    SQ_PL_END(2);
    r->index = (uint32_t)idx;
    r->hr_mbpm = d.hr_mbpm;
    r->lo_mbpm = d.lo_mbpm;
    r->hi_mbpm = d.hi_mbpm;
    r->conf_q15 = d.conf_q15;
    r->flagged_q15 = flagged;
    r->valid = (uint8_t)valid;
    r->no_pulse = sq_pl_no_pulse(p, codes);
    return SQ_PL_OK;
}

int sq_pipeline_push(sq_pipeline_t *p, const int16_t *ppg, const int16_t *acc, const uint8_t *gap, int n,
                     sq_result_t *out, int max_out)
{
    int k = 0, need;
    if (p == NULL) return SQ_PL_ERR_NULL;
    if (!sq_pl_initialised(p)) return SQ_PL_ERR_STATE;
    if (n < 0 || max_out < 0) return SQ_PL_ERR_ARG;
    if (n == 0) return 0;
    if (ppg == NULL) return SQ_PL_ERR_NULL;
#if SQ_FE_NCH > 1
    if (acc == NULL) return SQ_PL_ERR_NULL;
#endif
    need = sq_pipeline_pending(p, n);
    if (need > max_out) return SQ_PL_ERR_OVERFLOW;
    if (need > 0 && out == NULL) return SQ_PL_ERR_NULL;
    while (n > 0) {
        int used = 0, r;
        SQ_PL_BEGIN(0);
        r = sq_frontend_push(&p->fe, ppg, acc, gap, n, &used);
        SQ_PL_END(0);
        if (r == SQ_FE_ERR_STATE) return SQ_PL_ERR_STATE;     /* first call only: nothing consumed yet */
        if (r < 0) return SQ_PL_ERR_MODEL;                    /* arguments were checked: unreachable */
        ppg += SQ_FE_N_PPG * used;
        if (acc != NULL) acc += 3 * used;
        if (gap != NULL) gap += used;
        n -= used;
        if (r == 1) {
            int rc;
            if (k >= max_out) return SQ_PL_ERR_OVERFLOW;      /* guarded by sq_pipeline_pending */
            rc = sq_pl_score(p, &out[k]);
            if (rc < 0) return rc;
            ++k;
        }
    }
    return k;
}
