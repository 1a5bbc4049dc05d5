/*
 * sq_pipeline.h - the whole wrist heart-rate monitor as one streaming C99 call: int16 sensor samples
 * at the device rate in, one heart-rate result per hop (2 s) out. No malloc; the heart-rate path is
 * integer-only (sq_model.c's float helpers sq_quantize_input / sq_dequantize_output are never called by it: they
 * drop out with -ffunction-sections -Wl,--gc-sections, as the kit's Makefile links, and -DSQ_FLOAT_HELPERS=0
 * leaves them out of the build, so no float code is linked without section GC); each pipeline's state is
 * in a caller-owned sq_pipeline_t, but the pipelines of ONE model share its network arena (see below: one at a
 * time); bit-exact with the Python integer reference sqtool/export/pipeline.py (PipelineRef).
 *
 *   ppg (SQ_FE_N_PPG sensors) [+ acc x, y, z] int16 at SQ_FE_FS_IN Hz, optional per-sample gap flags
 *     -> front end (sq_frontend.h): gap hold, polyphase FIR resampler to SQ_FE_FS Hz, causal
 *        Butterworth band-pass, ring of SQ_FE_T samples, every SQ_FE_HOP samples one window of int8
 *        spectrum codes (SQ_FE_NBINS bins x SQ_FE_NCH channels, channels-last) + its flagged fraction;
 *        with SQ_FE_N_PPG == 2 sensors, the ppg channel is the sum of both sensors' spectra, each
 *        normalised to its own max (metadata frontend.steps; their mean would give the same codes, which
 *        are scaled to the window's max) (the network's input stays SQ_FE_NCH channels)
 *     -> network (sq_model.h): int8 codes -> SQ_DEC_NBINS int8 logits, one per heart-rate bin; skipped
 *        when more than half of the window's input samples were flagged or every PPG sensor is quiet
 *        (stuck, railed, all-zero: resampled samples spanning <= SQ_FE_QUIET) (valid = 0)
 *     -> decoder (sq_decoder.h): fixed-point HMM forward filter over the bins -> HR, an interval [lo, hi]
 *        (the posterior's SQ_DEC_Q_LO..SQ_DEC_Q_HI quantiles, Q20: the central mass that held the truth on
 *        90 % of the training subjects' windows), confidence (predict-only on a skipped window)
 *     -> pulse presence: no_pulse = 1 when the ppg spectrum has been as flat as noise (off the wrist, no
 *        perfusion) over the last SQ_PL_NO_PULSE_WINDOWS windows; a separate output, valid is unchanged
 *
 * Usage:
 *     static sq_pipeline_t hr;                            // ~SQ_PL_STATE_BYTES, caller-owned
 *     sq_result_t res[SQ_PL_MAX_RESULTS(CHUNK)];          // enough for any push of CHUNK samples
 *     if (sq_pipeline_init_device(&hr, board_fs_mhz, board_n_ppg) != SQ_PL_OK) error;
 *                                                         // what the board really runs (milli-Hz, sensors);
 *                                                         // refused unless SQ_PL_FS_IN_MHZ / SQ_PL_N_PPG
 *     for (;;) {                                          // any chunk size, 1 .. CHUNK samples
 *         int k = sq_pipeline_push(&hr, ppg, acc, gap, n, res, SQ_PL_MAX_RESULTS(CHUNK));
 *         if (k < 0) error;                               // nothing was consumed
 *         for (i = 0; i < k; ++i) report(res[i].hr_mbpm / 1000, ...);
 *     }
 *
 * Sizing max_out: a push of n samples completes at most SQ_PL_MAX_RESULTS(n) windows (one hop =
 * SQ_FE_HOP_S seconds of signal); a push that would complete more than max_out windows is refused
 * (SQ_PL_ERR_OVERFLOW) BEFORE consuming anything, so the caller can split the chunk and retry.
 *
 * Units: hr/lo/hi in milli-BPM; conf_q15 and flagged_q15 in Q15 (32768 = 1). SQ_FE_FS_IN is a float
 * constant (Hz); in #if use SQ_PL_FS_IN_MHZ (milli-Hz, integer). Result `index` i covers
 * the device time [i SQ_FE_HOP_S, i SQ_FE_HOP_S + SQ_FE_WINDOW_S) s from the first sample pushed after the
 * last init (index restarts at 0 on every init): it counts samples pushed, not time, so push samples lost
 * to a FIFO overrun as flagged gap samples (any value, gap != 0) rather than dropping them.
 *
 * The network's activation arena is a static buffer inside sq_model.c; place it with
 * -DSQ_ARENA_SECTION='__attribute__((section(".my_ram")))'. sq_model_run is synchronous and shares
 * that arena between all pipelines of ONE model: do not run two pipelines of the same model from
 * different threads / interrupt levels at once (different models, i.e. prefixes, are independent).
 * The requantization is single rounding (SQ_SINGLE_ROUNDING=1, Brevitas / QAT semantics; the
 * exporter sets it as sq_model.h's default): sq_pipeline.c refuses to build with the other mode.
 */
#ifndef SQ_PIPELINE_H
#define SQ_PIPELINE_H

#include <stdint.h>

#include "sq_decoder.h"
#include "sq_frontend.h"
#include "sq_model.h"
#include "sq_pipeline_cfg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_PL_OK             0
#define SQ_PL_ERR_NULL     (-1)   /* NULL state; NULL ppg (or acc when SQ_FE_NCH > 1: the model reads the
                                     accelerometer) when n > 0; NULL out when the push completes a window */
#define SQ_PL_ERR_ARG      (-2)   /* n < 0 or max_out < 0 */
#define SQ_PL_ERR_OVERFLOW (-3)   /* the push would complete more than max_out windows (nothing consumed) */
#define SQ_PL_ERR_MODEL    (-4)   /* sq_model_run or an inner stage failed (cannot happen with valid state) */
#define SQ_PL_ERR_RATE     (-5)   /* sq_pipeline_init_fs: the device rate is not the exported SQ_FE_FS_IN */
#define SQ_PL_ERR_SENSORS  (-6)   /* sq_pipeline_init_device: the device's PPG sensors are not SQ_FE_N_PPG */
#define SQ_PL_ERR_STATE    (-7)   /* push / pending: no sq_pipeline_init* has initialised the state (magic) */

/* sq_pipeline_t.magic after a successful sq_pipeline_init*: push and pending refuse any other value. */
#define SQ_PL_MAGIC 0x53515031u   /* "SQP1" */

/* A window is scored by the network only when its flagged fraction is at most 1/2 (Q15). */
#define SQ_PL_MAX_FLAGGED_Q15 16384u

/* Results a push of n samples can produce at most (n >= 0; 64-bit arithmetic, any int n). */
#define SQ_PL_MAX_RESULTS(n) \
    ((int)((((int64_t)(n) * SQ_FE_UP) / SQ_FE_DOWN + 1) / SQ_FE_HOP + 1))

typedef struct {
    uint32_t index;        /* window index: covers [index * HOP_S, index * HOP_S + WINDOW_S) s */
    int32_t hr_mbpm;       /* heart rate, milli-BPM */
    int32_t lo_mbpm;       /* interval, milli-BPM (its calibration, if any: MODEL_CARD.md, README.md) */
    int32_t hi_mbpm;
    uint16_t conf_q15;     /* posterior mass within +-SQ_DEC_CONF_BINS bins of the estimate (or, SQ_DEC_CONF_WIDTH, 1 - interval width / grid extent), 32768 = 1; with SQ_DEC_CONF_KNOTS calibrated to 1 - expected abs error / grid extent */
    uint16_t flagged_q15;  /* fraction of the window's input samples flagged as gaps, 32768 = 1 */
    uint8_t valid;         /* 1: the network scored this window; 0: too many gaps or a quiet PPG, decoder
                              prediction only */
    uint8_t no_pulse;      /* 1: no pulse (off the wrist, no perfusion): the ppg spectrum's flatness over the last
                              SQ_PL_NO_PULSE_WINDOWS windows was noise's (their mean log2(AM / GM) of code + 128,
                              Q8, <= SQ_PL_NO_PULSE_MAX_Q8); 0 before that many windows. Independent of valid */
} sq_result_t;

typedef struct {
    uint32_t magic;                                     /* SQ_PL_MAGIC once initialised (see SQ_PL_ERR_STATE) */
    sq_frontend_t fe;                                   /* front end state (rings, filters, work) */
    sq_decoder_t dec;                                   /* decoder posterior */
    uint32_t window_words[(SQ_FE_NBINS * SQ_FE_NCH + 3) / 4];   /* int8 codes, word-aligned */
    uint32_t logit_words[(SQ_DEC_NBINS + 3) / 4];       /* int8 logits, word-aligned */
    uint16_t flat_ring[SQ_PL_NO_PULSE_WINDOWS];         /* the last windows' flatness, Q8 (no_pulse) */
    uint32_t flat_sum;                                  /* their sum */
    uint32_t flat_seen;                                 /* windows seen, up to SQ_PL_NO_PULSE_WINDOWS */
    uint32_t flat_pos;                                  /* next ring slot */
} sq_pipeline_t;

#define SQ_PL_STATE_BYTES ((int)sizeof(sq_pipeline_t))

/* Reset everything (front end history, decoder to its start distribution, result index to 0). SQ_PL_OK or
 * SQ_PL_ERR_NULL. Call one of the three inits before the first push: a state that was never initialised (a
 * zeroed static, RAM left as it was) is refused with SQ_PL_ERR_STATE. */
int sq_pipeline_init(sq_pipeline_t *p);

/* As sq_pipeline_init, refusing a device rate (milli-Hz) other than the exported one: SQ_PL_ERR_RATE. A refused
 * init leaves the state uninitialised, even one that was streaming: push and pending return SQ_PL_ERR_STATE until
 * an init succeeds (samples at the wrong rate never reach the old stream). */
int sq_pipeline_init_fs(sq_pipeline_t *p, uint32_t fs_in_mhz);

/* As sq_pipeline_init_fs, also refusing a device with n_ppg PPG sensors other than the exported
 * SQ_FE_N_PPG (SQ_PL_N_PPG): SQ_PL_ERR_SENSORS (the state then uninitialised too). Call it with what the board
 * really has, not with SQ_PL_FS_IN_MHZ / SQ_PL_N_PPG (those always pass). */
int sq_pipeline_init_device(sq_pipeline_t *p, uint32_t fs_in_mhz, int n_ppg);

/* Push n samples (n >= 0 time steps, any size): ppg[SQ_FE_N_PPG n], the PPG sensors interleaved per time
 * step (N_PPG == 2: ppg, ppg2, ppg, ppg2, ...); acc[3 n] interleaved x, y, z (ignored, may be NULL, when
 * SQ_FE_NCH == 1); gap[n] non-zero = dropout time step (or NULL: no gaps). Writes one result per completed
 * window into out[0 .. k-1] and returns k (0 <= k <= max_out), or a negative SQ_PL_ERR_* code, in which
 * case nothing was consumed and the state is unchanged (SQ_PL_ERR_STATE: the state was never initialised). */
int sq_pipeline_push(sq_pipeline_t *p, const int16_t *ppg, const int16_t *acc, const uint8_t *gap, int n,
                     sq_result_t *out, int max_out);

/* Windows the next push of n samples would complete (>= 0), or a negative error code (SQ_PL_ERR_NULL,
 * SQ_PL_ERR_STATE, SQ_PL_ERR_ARG). */
int sq_pipeline_pending(const sq_pipeline_t *p, int n);

/* The kit's bit-exactness check for a board without files, defined in example/selftest.c (compile it with the c/
 * sources and -Itest_vectors): 0 when every result equals the vectors compiled in (that file says the rest);
 * SQ_SELFTEST_ERR_ACC: an export's accelerometer resampler (--device-acc-fs) differs from its vectors;
 * SQ_SELFTEST_ERR_NO_PULSE: no_pulse on the self-test's noise stream differs from sqtool's (the pulse-presence
 * detector); SQ_SELFTEST_ERR_NOISE: another field of the noise stream's results does. */
#define SQ_SELFTEST_ERR_ACC (-16)
#define SQ_SELFTEST_ERR_NO_PULSE (-17)
#define SQ_SELFTEST_ERR_NOISE (-18)
int sq_selftest(void);

#ifdef __cplusplus
}
#endif

#endif /* SQ_PIPELINE_H */
