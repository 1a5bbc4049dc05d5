/*
 * sq_tracker.h - the heart-rate tracker of a time-domain heart-rate model on the device: sqtool's slew-limited
 * tracker (sqtool/data/hr_tracker.py, what `sqtool bench` scores and `sqtool predict` writes as
 * hr_tracked_bpm), bit for bit: float64 arithmetic in the same order (a Cortex-M4F computes it in software, a few
 * hundred cycles per 2 s hop). Per window, after sq_model_run:
 *
 *     static sq_tracker_t trk;
 *     sq_tracker_init(&trk);                           // once, at the start of a recording
 *     double hr = sq_tracker_push(&trk, y, w.flagged); // y: the network's int8 outputs, w: the sq_window_t
 *
 * hr is the tracked heart rate in BPM; trk.has_hr is 0 while there is none yet (hr is NaN then: test has_hr, not
 * isnan(), which -ffast-math compiles away). A window moves the state only when
 * fewer than SQ_TRK_MAX_FLAGGED of its samples were dropouts and, for a model with a quality head, its
 * quality logit is > 0; then the state moves toward the window's hr_bpm by at most SQ_TRK_MAX_STEP_BPM, smoothed
 * with weight SQ_TRK_ALPHA, and re-acquires after SQ_TRK_RESET_AFTER limited steps in one direction. Constants:
 * sq_tracker_cfg.h (generated from the model's export: output indices and their int8 scales).
 */
#ifndef SQ_TRACKER_H
#define SQ_TRACKER_H

#include <stdint.h>

#include "sq_tracker_cfg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double state;                          /* the tracked heart rate, BPM (valid when has_state) */
    int32_t has_state;
    int32_t pushes;                        /* consecutive limited steps in one direction, signed */
    int32_t has_hr;                        /* 1 when the last update returned a heart rate, 0: none (NaN) */
} sq_tracker_t;

void sq_tracker_init(sq_tracker_t *t);
/* One window: est = its heart rate in BPM (NaN or Inf: none), ok = whether it may move the state. The tracked HR
 * (t->has_hr says whether there is one). */
double sq_tracker_update(sq_tracker_t *t, double est, int ok);
/* The window's hr_bpm from the network's int8 outputs: scale * (code - zero_point), metadata.json's
 * output_quantization. */
double sq_tracker_hr(const int8_t *y);
/* Whether the window may move the state: dropout share below SQ_TRK_MAX_FLAGGED and the quality logit > 0. */
int sq_tracker_ok(const int8_t *y, float flagged);
/* sq_tracker_update(t, sq_tracker_hr(y), sq_tracker_ok(y, flagged)). */
double sq_tracker_push(sq_tracker_t *t, const int8_t *y, float flagged);

#ifdef __cplusplus
}
#endif

#endif /* SQ_TRACKER_H */
