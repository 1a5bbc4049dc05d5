/*
 * sq_window.h - the preprocessing of a time-domain model (af, rr, quality, bp, hr students and teachers) on the
 * device: device-rate samples in, the network's int8 input window out, every hop. C99, float32 (a Cortex-M4F's
 * FPU), no malloc. The steps of INTEGRATION.md, as sqtool predict and bench run them (sqtool/firmware_bench/stream.py,
 * filter "window", or "causal" below):
 *
 *   1. a non-finite sample (NaN / Inf: a dropout) holds the channel's last good value and is counted in its window;
 *   2. the channel's first sample is subtracted (the resampler's zero padding then rings on nothing);
 *   3. polyphase resampling to the model rate, scipy.signal.resample_poly's filter and alignment;
 *   4. the Butterworth band-pass: zero phase (SQ_WF_ZERO_PHASE, sqtool's "window" filter, a zero-phase model's:
 *      sosfiltfilt's odd extension, steady-state start, forward and back, over the window plus SQ_WF_CTX_PRE samples
 *      before it and SQ_WF_CTX_POST after, cropped to the window), or causal (SQ_WF_CAUSAL, sqtool's "causal" filter:
 *      one running filter started in its first sample's steady state, no look-ahead; what a model trained with `sqtool train
 *      finetune --band-phase causal` was trained on, and export's default for it; for a zero-phase model, a phase lag
 *      it was not trained with: `sqtool predict --filter causal` measures what it costs);
 *   5. per window and channel normalisation (min-max or z-score, SQ_WF_NORM), shift-invariant, so step 2's offset
 *      is never added back (in float32 a large ADC level would cost the pulse its precision; the band-pass of a
 *      constant started in its steady state is that steady state);
 *   6. the int8 input codes of the network: q = clip(round(x / SQ_WF_IN_SCALE) + SQ_WF_IN_ZP), round half away
 *      from zero, channels-last (out[t * SQ_WF_NCH + c]), what sq_model_run takes.
 *
 *     static sq_window_t w;
 *     static int8_t x[SQ_WF_T * SQ_WF_NCH];
 *     sq_window_init(&w);
 *     // per device sample (SQ_WF_NCH floats, the channels in metadata.json "channels" order, at SQ_WF_FS_IN Hz):
 *     if (sq_window_push(&w, sample, x) > 0) {
 *         // window w.index is ready in x (w.flagged: the share of its device samples that were dropouts)
 *         sq_model_run(x, out);
 *     }
 *
 * Window i covers seconds [i SQ_WF_HOP_S, i SQ_WF_HOP_S + SQ_WF_WINDOW_S) from the first sample and is ready
 * SQ_WF_LATENCY_S after its last sample (the resampler's and the band-pass's look-ahead). The sample counters wrap
 * past 2^32 (194 days at 256 Hz) without a break in the windows; the window index, uint32, wraps after 2^32
 * windows (136 years at a 1 s hop): stream that long and re-init before. At the end of a recording
 * (not needed on a device that streams on) sq_window_finish returns the windows still pending, one per call, as
 * the sqtool stream does when a recording ends. The float arithmetic differs from sqtool's float64 in the last bits,
 * so an input code can differ by one where a value falls on a rounding boundary (tests/export/test_c_window.py).
 */
#ifndef SQ_WINDOW_H
#define SQ_WINDOW_H

#include <stdint.h>

#include "sq_window_tables.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_WF_OK          0
#define SQ_WF_ERR_NULL  (-1)   /* NULL state, sample or output */
#define SQ_WF_ERR_STATE (-7)   /* not initialised (sq_window_init) */

#define SQ_WF_MAGIC 0x53515746u  /* "SQWF" */

typedef struct {
    float hist[SQ_WF_NCH][2 * SQ_WF_HIN];  /* the resampler's last inputs (offset removed), ring by input index,
                                              each twice (at i mod HIN and HIN later) */
    float model[SQ_WF_NCH][SQ_WF_MB];      /* model-rate samples, ring by sample index */
    uint8_t flags[SQ_WF_DR];               /* device-rate dropout flags, ring by sample index */
    float work[SQ_WF_WORK];                /* one channel's filter segment with its odd extensions */
    float last[SQ_WF_NCH];                 /* last good sample (dropout hold) */
    float offset[SQ_WF_NCH];               /* the first sample, removed before resampling */
    uint32_t n_in;                         /* device samples received, modulo 2^32 (like n_model and ri: */
    uint32_t n_model;                      /* model-rate samples made   compared by their differences) */
    uint32_t ri, rp;                       /* the next one's last input and polyphase branch */
    uint32_t hpos, fpos, mpos;             /* the ring slots of input n_in (hist, flags) and of model sample n_model */
#if SQ_WF_CAUSAL
    float z[SQ_WF_NCH][SQ_WF_NSOS][2];     /* the running band-pass's state */
#endif
    uint32_t next;                         /* the next window's index */
    uint32_t index;                        /* the window just returned */
    float flagged;                         /* its share of dropout samples */
    int32_t final;                         /* sq_window_finish called: the tail is resampled, zero padded */
    uint32_t magic;
} sq_window_t;

int sq_window_init(sq_window_t *s);
/* One device sample of every channel in; 1 when a window is ready in out (SQ_WF_T * SQ_WF_NCH int8 codes,
 * channels-last; s->index, s->flagged say which and how complete), 0 when none is, or an SQ_WF_ERR_*. */
int sq_window_push(sq_window_t *s, const float *sample, int8_t *out);
/* End of the recording: the windows still pending, one per call (1, out filled), then 0. No push after it. */
int sq_window_finish(sq_window_t *s, int8_t *out);
/* FNV-1a (32 bit) of a window's SQ_WF_T * SQ_WF_NCH input codes: the third field of each line of the kit's
 * test_vectors/expected.txt, to compare a port's inputs with sqtool's window by window without printing them. */
uint32_t sq_window_hash(const int8_t *x);
/* The kit's bit-exactness check for a board without files, defined in example/selftest.c (compile it with the c/
 * sources and -Itest_vectors): 0 when every window equals the vectors compiled in (that file says the rest). */
int sq_window_selftest(void);

#ifdef __cplusplus
}
#endif

#endif /* SQ_WINDOW_H */
