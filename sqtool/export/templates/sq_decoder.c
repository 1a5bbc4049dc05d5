/* sq_decoder.c: fixed-point HMM heart-rate decoder, bit-exact with sqtool.models.decoder.IntDecoder.
 *
 * Per window: predict (symmetric Q15 Gaussian taps over the Q20 posterior, 64-bit accumulators),
 * add the uniform floor, multiply by the likelihood LUT[min(255, max(e) - e[k])] (Q24) of the emission
 * e[k] = logits[k] (- PEN[clip(ppg_k - max acc_k, 0, 254)] with SQ_DEC_EVIDENCE), normalise to a
 * sum of exactly 2^20 with one 64-bit division, then read out the refined argmax, the central interval
 * and the confidence (calibrated through SQ_DEC_CONF_KNOTS knots when the model has them); with SQ_DEC_SPREAD
 * the reported interval is hr -+ (C + K S) instead (clamped to the grid's extent), S the recent |network's own
 * argmax - hr|. Formats and overflow bounds: see the Python module's docstring.
 */
#define SQ_DEC_DEFINE_TABLES
#include "sq_decoder.h"

#define SQ_DEC_POST_BITS 20
#define SQ_DEC_POST_ONE ((uint32_t)1 << SQ_DEC_POST_BITS)
#define SQ_DEC_PRIOR_SHIFT 4        /* c <= 2^35 -> prior part <= 2^31 */
#define SQ_DEC_NORM_SHIFT 43        /* p = ((prod >> s) * floor(2^63 / T) + 2^42) >> 43 */
/* the grid's extent, milli-BPM: the outer edges of the first and the last bin (half a step, rounded outwards) */
#define SQ_DEC_EDGE_LO_MBPM (SQ_DEC_BIN_LO_MBPM - (SQ_DEC_BIN_STEP_MBPM + 1) / 2)
#define SQ_DEC_EDGE_HI_MBPM \
    (SQ_DEC_BIN_LO_MBPM + SQ_DEC_BIN_STEP_MBPM * (SQ_DEC_NBINS - 1) + (SQ_DEC_BIN_STEP_MBPM + 1) / 2)

/* num / den rounded half away from zero, den > 0 */
static int32_t sq_dec_div_round(int64_t num, int32_t den)
{
    int64_t h = den / 2;
    return (int32_t)(num >= 0 ? (num + h) / den : -((-num + h) / den));
}

int sq_decoder_init(sq_decoder_t *s)
{
    int k;
    if (s == 0) {
        return SQ_DEC_ERR_NULL;
    }
    for (k = 0; k < SQ_DEC_NBINS + 2 * SQ_DEC_RADIUS; k++) {
        s->post[k] = 0u;
    }
    for (k = 0; k < SQ_DEC_NBINS; k++) {
        s->post[SQ_DEC_RADIUS + k] = sq_dec_start[k];
        s->prior[k] = 0u;
    }
    s->started = 0u;
    s->spread = 0u;
    s->spread_started = 0u;
    return SQ_DEC_OK;
}

/* prior[j] = round((t * p)[j] / 16) + FLOOR_ADD, or the posterior itself before the first window */
static void sq_dec_predict(sq_decoder_t *s)
{
    const uint32_t *p = s->post + SQ_DEC_RADIUS;
    int j, d;
    if (!s->started) {
        for (j = 0; j < SQ_DEC_NBINS; j++) {
            s->prior[j] = p[j];
        }
        return;
    }
    for (j = 0; j < SQ_DEC_NBINS; j++) {
        uint64_t acc = (uint64_t)sq_dec_taps[0] * p[j];
        for (d = 1; d <= SQ_DEC_RADIUS; d++) {
            acc += (uint64_t)sq_dec_taps[d] * (p[j - d] + p[j + d]);       /* each pair <= 2^20 */
        }
        s->prior[j] = (uint32_t)((acc + ((uint64_t)1 << (SQ_DEC_PRIOR_SHIFT - 1))) >> SQ_DEC_PRIOR_SHIFT)
                      + SQ_DEC_FLOOR_ADD;
    }
}

static uint64_t sq_dec_prod(const sq_decoder_t *s, int valid, int16_t mx, int k)
{
    int32_t d;
    if (!valid) {
        return s->prior[k];
    }
    d = (int32_t)mx - s->emit[k];
    return (uint64_t)s->prior[k] * sq_dec_lut[d > 255 ? 255 : d];
}

/* emit[k] = logits[k] (- the evidence penalty); returns max(emit) */
static int16_t sq_dec_emission(sq_decoder_t *s, const int8_t *logits, const int8_t *spec, int n_ch)
{
    int16_t mx = -32768;
    int k;
#if SQ_DEC_EVIDENCE
    int c;
    for (k = 0; k < SQ_DEC_NBINS; k++) {
        const int8_t *b = spec + k * n_ch;
        int16_t acc = -127, n;
        for (c = 1; c < n_ch; c++) {
            if (b[c] > acc) {
                acc = b[c];
            }
        }
        n = (int16_t)(b[0] - acc);
        s->emit[k] = (int16_t)(logits[k] - sq_dec_pen[n < 0 ? 0 : (n > 254 ? 254 : n)]);
    }
#else
    (void)spec;
    (void)n_ch;
    for (k = 0; k < SQ_DEC_NBINS; k++) {
        s->emit[k] = logits[k];
    }
#endif
    for (k = 0; k < SQ_DEC_NBINS; k++) {
        if (s->emit[k] > mx) {
            mx = s->emit[k];
        }
    }
    return mx;
}

/* posterior = prior * likelihood, normalised to a sum of exactly 2^20 */
static void sq_dec_update(sq_decoder_t *s, const int8_t *logits, const int8_t *spec, int n_ch, int valid)
{
    uint32_t *p = s->post + SQ_DEC_RADIUS;
    int16_t mx = 0;
    uint64_t total = 0u, rcp;
    uint32_t sum = 0u, best = 0u;
    int k, shift = 0, arg = 0;

    if (valid) {
        mx = sq_dec_emission(s, logits, spec, n_ch);
    }
    for (k = 0; k < SQ_DEC_NBINS; k++) {
        total += sq_dec_prod(s, valid, mx, k);
    }
    if (total == 0u) {                          /* floor 0 and no overlap: restart from the likelihood */
        for (k = 0; k < SQ_DEC_NBINS; k++) {
            s->prior[k] = 1u;
            total += sq_dec_prod(s, valid, mx, k);
        }
    }
    while ((total >> shift) > 0xFFFFFFFFu) {
        shift++;
    }
    rcp = ((uint64_t)1 << 63) / (total >> shift);
    for (k = 0; k < SQ_DEC_NBINS; k++) {
        uint64_t v = ((sq_dec_prod(s, valid, mx, k) >> shift) * rcp
                      + ((uint64_t)1 << (SQ_DEC_NORM_SHIFT - 1))) >> SQ_DEC_NORM_SHIFT;
        p[k] = (uint32_t)v;
        sum += (uint32_t)v;
        if ((uint32_t)v > best) {
            best = (uint32_t)v;
            arg = k;
        }
    }
    p[arg] += SQ_DEC_POST_ONE - sum;            /* modular: adds the signed deficit, |deficit| <= F/2 + 2 */
}

#if SQ_DEC_CONF_KNOTS
/* the conf calibration: piecewise linear between the Q15 knots, constant outside them */
static uint16_t sq_dec_calibrate(uint32_t raw)
{
    int k;
    if (raw <= sq_dec_calib_x[0]) {
        return sq_dec_calib_y[0];
    }
    for (k = 0; k < SQ_DEC_CONF_KNOTS - 1; k++) {
        if (raw < sq_dec_calib_x[k + 1]) {
            uint32_t dx = (uint32_t)sq_dec_calib_x[k + 1] - sq_dec_calib_x[k];
            uint32_t dy = (uint32_t)sq_dec_calib_y[k + 1] - sq_dec_calib_y[k];
            return (uint16_t)(sq_dec_calib_y[k] + (dy * (raw - sq_dec_calib_x[k]) + dx / 2u) / dx);
        }
    }
    return sq_dec_calib_y[SQ_DEC_CONF_KNOTS - 1];
}
#endif

static void sq_dec_readout(const sq_decoder_t *s, sq_decoder_out_t *out)
{
    const uint32_t *p = s->post + SQ_DEC_RADIUS;
    uint32_t best = 0u, cum = 0u, conf = 0u;
    int32_t den = 0;
    int64_t num = 0;
    int k, a = 0, i0, i1, lo_done = 0;

    for (k = 0; k < SQ_DEC_NBINS; k++) {
        if (p[k] > best) {
            best = p[k];
            a = k;
        }
    }
    i0 = a - SQ_DEC_REFINE < 0 ? 0 : a - SQ_DEC_REFINE;
    i1 = a + SQ_DEC_REFINE > SQ_DEC_NBINS - 1 ? SQ_DEC_NBINS - 1 : a + SQ_DEC_REFINE;
    for (k = i0; k <= i1; k++) {
        num += (int64_t)(k - a) * (int64_t)p[k];
        den += (int32_t)p[k];
    }
    out->hr_mbpm = SQ_DEC_BIN_LO_MBPM + SQ_DEC_BIN_STEP_MBPM * a
                   + sq_dec_div_round((int64_t)SQ_DEC_BIN_STEP_MBPM * num, den);
    /* the grid's ends: the loop below always replaces both (the posterior sums to 2^20 >= either quantile); set
       here so that no compiler (-flto -Werror=maybe-uninitialized) reads them as possibly unset */
    out->lo_mbpm = SQ_DEC_BIN_LO_MBPM;
    out->hi_mbpm = SQ_DEC_BIN_LO_MBPM + SQ_DEC_BIN_STEP_MBPM * (SQ_DEC_NBINS - 1);

    for (k = 0; k < SQ_DEC_NBINS; k++) {
        uint32_t prev = cum;
        cum += p[k];
        if (!lo_done && cum >= SQ_DEC_Q_LO) {
            out->lo_mbpm = SQ_DEC_BIN_LO_MBPM + SQ_DEC_BIN_STEP_MBPM * k
                           + sq_dec_div_round((int64_t)SQ_DEC_BIN_STEP_MBPM
                                              * (2 * ((int64_t)SQ_DEC_Q_LO - prev) - (int64_t)p[k]),
                                              2 * (int32_t)p[k]);
            lo_done = 1;
        }
        if (cum >= SQ_DEC_Q_HI) {
            out->hi_mbpm = SQ_DEC_BIN_LO_MBPM + SQ_DEC_BIN_STEP_MBPM * k
                           + sq_dec_div_round((int64_t)SQ_DEC_BIN_STEP_MBPM
                                              * (2 * ((int64_t)SQ_DEC_Q_HI - prev) - (int64_t)p[k]),
                                              2 * (int32_t)p[k]);
            break;
        }
    }
    if (out->lo_mbpm > out->hr_mbpm) {         /* the interval holds the reported hr (a two-peaked posterior's */
        out->lo_mbpm = out->hr_mbpm;           /* equal-tailed interval can leave its largest peak out) */
    }
    if (out->hi_mbpm < out->hr_mbpm) {
        out->hi_mbpm = out->hr_mbpm;
    }

#if SQ_DEC_CONF_WIDTH
    {                                          /* conf = 1 - (hi - lo) / grid extent, Q15 */
        int64_t w = (int64_t)out->hi_mbpm - (int64_t)out->lo_mbpm;
        uint64_t d = ((uint64_t)(w > 0 ? w : 0) * SQ_DEC_CONF_INV + 32768u) >> 16;
        (void)conf;
        out->conf_q15 = (uint16_t)(32768u - (d > 32768u ? 32768u : (uint32_t)d));
    }
#else
    i0 = a - SQ_DEC_CONF_BINS < 0 ? 0 : a - SQ_DEC_CONF_BINS;
    i1 = a + SQ_DEC_CONF_BINS > SQ_DEC_NBINS - 1 ? SQ_DEC_NBINS - 1 : a + SQ_DEC_CONF_BINS;
    for (k = i0; k <= i1; k++) {
        conf += p[k];
    }
    out->conf_q15 = (uint16_t)((conf + ((uint32_t)1 << (SQ_DEC_POST_BITS - 16))) >> (SQ_DEC_POST_BITS - 15));
#endif
#if SQ_DEC_CONF_KNOTS
    out->conf_q15 = sq_dec_calibrate(out->conf_q15);
#endif
    out->argmax = (int16_t)a;
}

#if SQ_DEC_SPREAD
/* interval hr -+ H, H = C + K S: S, the exponential mean (weight 2^-SHIFT) of |network argmax - hr|, milli-BPM x 2^8,
 * updated on a valid window (net_arg >= 0: the first largest int8 logit), held otherwise; clamped to the grid's
 * extent (hr lies on the grid: EDGE_LO <= hr <= EDGE_HI, so the interval still holds it) */
static void sq_dec_spread(sq_decoder_t *s, int net_arg, sq_decoder_out_t *out)
{
    uint32_t h;
    if (net_arg >= 0) {
        int32_t e = SQ_DEC_BIN_LO_MBPM + SQ_DEC_BIN_STEP_MBPM * net_arg - out->hr_mbpm;
        uint32_t d = (uint32_t)(e < 0 ? -e : e) << 8;
        if (s->spread_started) {
            s->spread = s->spread - (s->spread >> SQ_DEC_SPREAD_SHIFT) + (d >> SQ_DEC_SPREAD_SHIFT);
        } else {
            s->spread = d;
            s->spread_started = 1u;
        }
    }
    h = SQ_DEC_SPREAD_C_MBPM + (uint32_t)(((uint64_t)SQ_DEC_SPREAD_K_Q8 * s->spread + 32768u) >> 16);
    out->lo_mbpm = (uint32_t)(out->hr_mbpm - SQ_DEC_EDGE_LO_MBPM) > h ? out->hr_mbpm - (int32_t)h
                                                                      : SQ_DEC_EDGE_LO_MBPM;
    out->hi_mbpm = (uint32_t)(SQ_DEC_EDGE_HI_MBPM - out->hr_mbpm) > h ? out->hr_mbpm + (int32_t)h
                                                                      : SQ_DEC_EDGE_HI_MBPM;
}

/* the first largest of the network's own int8 logits */
static int sq_dec_net_argmax(const int8_t *logits)
{
    int k, a = 0;
    for (k = 1; k < SQ_DEC_NBINS; k++) {
        if (logits[k] > logits[a]) {
            a = k;
        }
    }
    return a;
}
#endif

int sq_decoder_step_spec(sq_decoder_t *s, const int8_t *logits, const int8_t *spec, int n_ch, int valid,
                         sq_decoder_out_t *out)
{
    if (s == 0 || out == 0 || (valid && logits == 0)) {
        return SQ_DEC_ERR_NULL;
    }
    if (SQ_DEC_EVIDENCE && valid && (spec == 0 || n_ch < 1 || n_ch > 8)) {
        return SQ_DEC_ERR_SPEC;
    }
    valid = valid ? 1 : 0;
    sq_dec_predict(s);
    s->started = 1u;
    sq_dec_update(s, logits, spec, n_ch, valid);
    sq_dec_readout(s, out);
#if SQ_DEC_SPREAD
    sq_dec_spread(s, valid ? sq_dec_net_argmax(logits) : -1, out);
#endif
    out->valid = (uint8_t)valid;
    return SQ_DEC_OK;
}

int sq_decoder_step(sq_decoder_t *s, const int8_t *logits, int valid, sq_decoder_out_t *out)
{
    return sq_decoder_step_spec(s, logits, 0, 0, valid, out);
}
