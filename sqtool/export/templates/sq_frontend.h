/*
 * sq_frontend.h - fixed-point streaming front end of the wrist heart-rate monitor (C99, no malloc,
 * no float, re-entrant: all state lives in a caller-owned sq_frontend_t).
 *
 * int16 samples at SQ_FE_FS_IN (SQ_FE_N_PPG PPG sensors, and acc x, y, z when SQ_FE_NCH > 1) -> every
 * SQ_FE_HOP model-rate samples, once SQ_FE_T exist, one window of int8 spectrum codes (SQ_FE_NBINS bins x
 * SQ_FE_NCH channels, channels-last) plus its flagged fraction in Q15. Bit-exact with the numpy
 * reference sqtool/data/frontend.py (same contract; see its docstring and sq_frontend_tables.h):
 *   gap hold -> polyphase FIR resampler (Q15) -> causal Butterworth band-pass (Q30 DF1 biquads)
 *   -> ring of T samples -> [silence: a channel whose T resampled samples span <= SQ_FE_QUIET counts
 *   (a stuck sensor, a still axis) is coded as an all-zero window, not as the band-pass's rounding dead band
 *   scaled to full range] -> block floating point + Hann (Q15) -> direct DFT at the bin frequencies
 *   (cos table, int32 accumulators, proven overflow-free) -> power -> [SQ_FE_N_PPG == 2: the PPG sensors'
 *   spectra, each normalised to 2^SQ_FE_NORM_FRAC at its own max, summed into the ppg channel]
 *   -> [SQ_FE_NCH == 2: the three axes' powers, put on one scale, summed into one acc channel]
 *   -> per-channel max -> int8 codes.
 * The SQ_FE_NIN = SQ_FE_N_PPG (+ 3 axes when SQ_FE_NCH > 1) input channels each get a resampler, band-pass,
 * ring and DFT channel; the codes always have SQ_FE_NCH channels (ppg; ppg, acc; or ppg, acc_x, acc_y,
 * acc_z), whatever N_PPG is.
 *
 * Usage:
 *   sq_frontend_t fe;  sq_frontend_init(&fe);
 *   while (n > 0) {
 *       int used, r = sq_frontend_push(&fe, ppg, acc, gap, n, &used);
 *       if (r < 0) error;
 *       ppg += SQ_FE_N_PPG * used; if (acc) acc += 3 * used; if (gap) gap += used; n -= used;
 *       if (r == 1) sq_frontend_window(&fe, codes, &flagged_q15);   // before pushing again
 *   }
 * Window i covers model samples [i HOP, i HOP + T), device time [i HOP/FS, i HOP/FS + T/FS), and is
 * ready on the input sample that produces model sample i HOP + T - 1.
 *
 * Right shifts of negative values are arithmetic on every compiler we target (gcc, clang,
 * arm-none-eabi-gcc). On ARMv7E-M (__ARM_FEATURE_DSP) the DFT inner loop uses the ACLE __smlad
 * intrinsic; -DSQ_FE_NO_DSP forces the portable path, which gives identical results.
 */
#ifndef SQ_FRONTEND_H
#define SQ_FRONTEND_H

#include <stdint.h>

#include "sq_frontend_tables.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_FE_OK              0
#define SQ_FE_ERR_NULL      (-1)   /* NULL state, ppg, consumed or out; acc NULL when SQ_FE_NCH > 1 */

#if SQ_FE_N_PPG < 1 || SQ_FE_N_PPG > 2 || (SQ_FE_NCH != 1 && SQ_FE_NCH != 2 && SQ_FE_NCH != 4) \
    || SQ_FE_NIN != SQ_FE_N_PPG + (SQ_FE_NCH > 1 ? 3 : 0)
#error "sq_frontend: SQ_FE_N_PPG must be 1 or 2, SQ_FE_NCH 1, 2 or 4, and SQ_FE_NIN = SQ_FE_N_PPG (+ 3 axes)"
#endif
#define SQ_FE_PEXP_NONE     (-2147483647 - 1)   /* the power exponent of an all-zero input channel */
#define SQ_FE_QUIET         4      /* = sqtool.data.frontend.QUIET: resampled samples spanning <= this: silence */
#define SQ_FE_NSLOT         ((SQ_FE_T + SQ_FE_HOP - 1) / SQ_FE_HOP)   /* windows in flight at once */
#define SQ_FE_ERR_ARG       (-2)   /* n < 0 */
#define SQ_FE_ERR_PENDING   (-3)   /* push while a window is ready: call sq_frontend_window first */
#define SQ_FE_ERR_NO_WINDOW (-4)   /* sq_frontend_window without a ready window */
#define SQ_FE_ERR_STATE     (-5)   /* a ring / phase / countdown index out of its range: never initialised */

typedef struct {
    int16_t last[SQ_FE_NIN];                      /* last good sample per input channel (gap hold) */
    int16_t hist[SQ_FE_NIN][2 * SQ_FE_TAPS];      /* last TAPS inputs, each written at pos and pos+TAPS */
    int32_t hpos;                                 /* oldest input in hist */
    int32_t phase;                                /* (m * DOWN) mod UP of the next output m */
    int32_t due;                                  /* inputs until the next output (incl. its own) */
    int32_t iir[SQ_FE_NIN][SQ_FE_NSOS][4];        /* DF1 state per section: x1 x2 y1 y2 */
    int16_t ring[SQ_FE_NIN][SQ_FE_T];             /* last T band-passed model-rate samples */
    int16_t qlo[SQ_FE_NIN][SQ_FE_NSLOT];          /* min / max of the resampled samples of window j (slot */
    int16_t qhi[SQ_FE_NIN][SQ_FE_NSLOT];          /* j mod NSLOT) since its start: the silence rule */
    int32_t qnext, qslot;                         /* model samples until the next window starts; its slot */
    uint8_t own_cnt[SQ_FE_T];                     /* inputs owned by each model sample in the ring */
    uint8_t own_flag[SQ_FE_T];                    /* ... of which flagged */
    int32_t rpos;                                 /* next write position in the ring (= oldest) */
    int32_t pend_cnt, pend_flag;                  /* inputs since the last model sample */
    int32_t to_win;                               /* model samples until the next window */
    int32_t ready;                                /* a window is ready */
    uint32_t win_index;                           /* index of the next window */
    int32_t ppg_quiet;                            /* the last window read: 1 = every PPG sensor quiet (its */
                                                  /* resampled samples span <= SQ_FE_QUIET: stuck/railed/0) */
    uint32_t xw[SQ_FE_T / 2][SQ_FE_NIN];          /* work: windowed sample pairs (n, n+1), channels interleaved */
    uint32_t pw[SQ_FE_NBINS * SQ_FE_NIN];         /* work: power per bin and input channel (<= 2^31) */
#if SQ_FE_NCH == 2
    int32_t pexp[SQ_FE_NIN];                      /* work: its scale, P * 2^pexp (block floating point) */
#endif
} sq_frontend_t;

/* Reset the state (zero history, no window yet). 0, or SQ_FE_ERR_NULL. Push and window range-check the
 * state's indices on entry (SQ_FE_ERR_STATE: an all-zero state, most garbage); that is no proof of an
 * initialised state: sq_pipeline_t adds a magic word for that. */
int sq_frontend_init(sq_frontend_t *s);

/* Consume samples until all n are used or a window is ready. ppg: SQ_FE_N_PPG * n samples, the sensors
 * interleaved per time step (ppg, ppg2, ppg, ppg2, ... when N_PPG == 2); acc: 3 * n interleaved x, y, z
 * (ignored, may be NULL, when SQ_FE_NCH == 1); gap: n flags (non-zero = dropout of the whole time step:
 * every sensor and axis holds its last good sample) or NULL.
 * *consumed = samples used. Returns 1 when a window is ready (call sq_frontend_window before the next
 * push), 0 when all n were used without completing one, negative on error (nothing consumed; SQ_FE_ERR_STATE:
 * the state was never initialised). */
int sq_frontend_push(sq_frontend_t *s, const int16_t *ppg, const int16_t *acc, const uint8_t *gap,
                     int n, int *consumed);

/* The ready window's codes: out[b * SQ_FE_NCH + c] in [-127, 127] (channels-last); *flagged_q15 =
 * flagged inputs * 32768 / inputs, rounded (flagged_q15 may be NULL); s->ppg_quiet = 1 when every PPG
 * sensor of this window is quiet (sqtool.data.frontend's FrontEndWindow.ppg_quiet). Returns the window's
 * index (>= 0), or SQ_FE_ERR_NULL / SQ_FE_ERR_STATE / SQ_FE_ERR_NO_WINDOW. */
int sq_frontend_window(sq_frontend_t *s, int8_t *out, uint16_t *flagged_q15);

#ifdef __cplusplus
}
#endif

#endif /* SQ_FRONTEND_H */
