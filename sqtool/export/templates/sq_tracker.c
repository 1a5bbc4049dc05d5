/*
 * sq_tracker.c - see sq_tracker.h. C99; float64 in the order of sqtool's tracker, so both give the same bits.
 */
#include <math.h>
#include <string.h>

#include "sq_tracker.h"

/* 0 for NaN and +-Inf, read from the double's bits: under -ffast-math the compiler drops an isfinite() test. */
static int sq_trk_finite(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return (u & 0x7ff0000000000000u) != 0x7ff0000000000000u;
}

void sq_tracker_init(sq_tracker_t *t)
{
    t->state = 0.0;
    t->has_state = 0;
    t->pushes = 0;
    t->has_hr = 0;
}

double sq_tracker_update(sq_tracker_t *t, double est, int ok)
{
    const int finite = sq_trk_finite(est) && SQ_TRK_LO_BPM <= est && est <= SQ_TRK_HI_BPM;
    double d;
    t->has_hr = t->has_state || finite;
    if (!(ok && finite)) {
        if (!t->has_state) {                     /* nothing to hold yet: the raw estimate or nothing */
            return finite ? est : (double)NAN;
        }
        return t->state;
    }
    if (!t->has_state) {
        t->state = est;
        t->has_state = 1;
        return t->state;
    }
    d = est - t->state;
    if (fabs(d) > SQ_TRK_MAX_STEP_BPM) {
        const int32_t sgn = d > 0.0 ? 1 : -1;
        t->pushes = t->pushes * sgn > 0 ? t->pushes + sgn : sgn;
        if ((t->pushes < 0 ? -t->pushes : t->pushes) >= SQ_TRK_RESET_AFTER) {
            t->state = est;
            t->pushes = 0;
            return t->state;
        }
        d = d > SQ_TRK_MAX_STEP_BPM ? SQ_TRK_MAX_STEP_BPM : -SQ_TRK_MAX_STEP_BPM;
    } else {
        t->pushes = 0;
    }
    t->state = t->state + SQ_TRK_ALPHA * d;
    return t->state;
}

double sq_tracker_hr(const int8_t *y)
{
    return SQ_TRK_HR_SCALE * ((double)y[SQ_TRK_HR_INDEX] - SQ_TRK_HR_ZERO_POINT);
}

int sq_tracker_ok(const int8_t *y, float flagged)
{
    int ok = (double)flagged < SQ_TRK_MAX_FLAGGED;
#if SQ_TRK_QUALITY_INDEX >= 0
    ok = ok && SQ_TRK_QUALITY_SCALE * ((double)y[SQ_TRK_QUALITY_INDEX] - SQ_TRK_QUALITY_ZERO_POINT) > 0.0;
#else
    (void)y;
#endif
    return ok;
}

double sq_tracker_push(sq_tracker_t *t, const int8_t *y, float flagged)
{
    return sq_tracker_update(t, sq_tracker_hr(y), sq_tracker_ok(y, flagged));
}
