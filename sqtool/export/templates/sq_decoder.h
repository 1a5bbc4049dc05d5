/* sq_decoder.h: fixed-point HMM heart-rate decoder (causal forward filter over heart-rate bins).
 *
 * Bit-exact with sqtool.models.decoder.IntDecoder; the formats and the no-overflow bounds are in that
 * module's docstring. One call per hop (2 s) with the network's int8 logits over the SQ_DEC_NBINS bins
 * (zero point 0); the tables and the grid come from the generated sq_decoder_tables.h.
 *
 *     sq_decoder_t dec;                      // caller-owned state, no malloc: about (2 F + 2 R) * 4 + 2 F + 8
 *                                            // bytes (F = SQ_DEC_NBINS, R = SQ_DEC_RADIUS; 134 bins, R = 12: 1444)
 *     sq_decoder_init(&dec);
 *     sq_decoder_step(&dec, logits, valid, &out);   // out.hr_mbpm, out.lo_mbpm, out.hi_mbpm, out.conf_q15
 *
 * A decoder exported with SQ_DEC_EVIDENCE = 1 also weighs the window's motion-subtracted PPG spectrum
 * (the front end's int8 codes): call sq_decoder_step_spec(&dec, logits, spec, n_ch, valid, &out) instead.
 *
 * No float, no globals except const tables: re-entrant, several decoders may run side by side.
 */
#ifndef SQ_DECODER_H
#define SQ_DECODER_H

#include <stdint.h>

#include "sq_decoder_tables.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_DEC_OK 0
#define SQ_DEC_ERR_NULL (-1)
#define SQ_DEC_ERR_SPEC (-2)    /* an evidence decoder stepped without a spectrum, or n_ch outside 1..8 */

typedef struct {
    uint32_t post[SQ_DEC_NBINS + 2 * SQ_DEC_RADIUS];  /* Q20 posterior (sum 2^20), SQ_DEC_RADIUS zero pads each side */
    uint32_t prior[SQ_DEC_NBINS];                     /* scratch: prior of the current window */
    int16_t emit[SQ_DEC_NBINS];                       /* scratch: logits - evidence penalty, logit units */
    uint32_t spread;                                  /* S of the spread interval, milli-BPM x 2^8 (SQ_DEC_SPREAD) */
    uint8_t started;                                  /* 0 until the first window: it is not predicted */
    uint8_t spread_started;                           /* 0 until the first valid window (SQ_DEC_SPREAD) */
} sq_decoder_t;

typedef struct {
    int32_t hr_mbpm;      /* reported heart rate, milli-BPM */
    int32_t lo_mbpm;      /* interval, milli-BPM: SQ_DEC_Q_LO .. SQ_DEC_Q_HI of the posterior, or (SQ_DEC_SPREAD) hr -+ (C + K S) */
    int32_t hi_mbpm;      /* lo <= hr <= hi, both within the grid's extent: BIN_LO_MBPM - STEP_MBPM / 2 .. BIN_LO_MBPM
                             + STEP_MBPM (NBINS - 1) + STEP_MBPM / 2 (a half step rounded outwards to whole mBPM) */
    uint16_t conf_q15;    /* posterior mass within +-SQ_DEC_CONF_BINS bins of the argmax (or, SQ_DEC_CONF_WIDTH, 1 - interval width / grid extent), 32768 = 1; with SQ_DEC_CONF_KNOTS calibrated to 1 - expected abs error / grid extent */
    int16_t argmax;       /* bin index of the posterior's (first) maximum */
    uint8_t valid;        /* the window's likelihood was used (0: predicted only) */
} sq_decoder_out_t;

/* Reset to the start distribution. Returns SQ_DEC_OK or SQ_DEC_ERR_NULL. */
int sq_decoder_init(sq_decoder_t *s);

/* One window: logits[SQ_DEC_NBINS] int8 (read only when valid != 0), valid = 0 for a gated-out window.
 * Returns SQ_DEC_OK or SQ_DEC_ERR_NULL (s, out, or logits with valid != 0). */
int sq_decoder_step(sq_decoder_t *s, const int8_t *logits, int valid, sq_decoder_out_t *out);

/* One window with its front-end spectrum spec[SQ_DEC_NBINS * n_ch] int8, channels-last (ppg, then the
 * accelerometer axes; n_ch = 1..8), read only when valid and SQ_DEC_EVIDENCE. Returns SQ_DEC_OK,
 * SQ_DEC_ERR_NULL, or SQ_DEC_ERR_SPEC (SQ_DEC_EVIDENCE and a valid window without spec, or n_ch out of range).
 * sq_decoder_step is this with spec = 0: SQ_DEC_ERR_SPEC for a valid window of an evidence decoder. */
int sq_decoder_step_spec(sq_decoder_t *s, const int8_t *logits, const int8_t *spec, int n_ch, int valid,
                         sq_decoder_out_t *out);

#ifdef __cplusplus
}
#endif

#endif /* SQ_DECODER_H */
