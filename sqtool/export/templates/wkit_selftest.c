/*
 * example/selftest.c - the bit-exactness check of the device loop for a board without a file system or stdio.
 *
 *   int sq_window_selftest(void);               (declared in c/sq_window.h)
 *
 * Streams the test recording of test_vectors/sq_wvectors.h (recording.bin as a C array of int16 ADC counts, its
 * dropout as a sample range: synthetic signal, no subject data) through sq_window_push and sq_model_run and
 * compares every window with the expected lines (expected.txt as a C array): its index, its dropout share in
 * permille, the FNV-1a hash of its int8 input codes and its int8 outputs; for a heart-rate model (SQ_WVEC_TRACKED)
 * also the tracked heart rate of c/sq_tracker.c in milli-BPM.
 * Returns 0 when all are equal; k > 0: window k - 1 is the first that differs (or is missing, or is one too many);
 * -1: the front end or the network returned an error. Uses no stdio, no malloc.
 *
 * In your firmware: compile this file with the c/ sources and -Ic -Itest_vectors, call sq_window_selftest() once
 * (its front-end state and buffers are static: about sizeof(sq_window_t) + the input window; the recording takes
 * 2 * SQ_WVEC_N * SQ_WVEC_NCH bytes of flash). With -DSQ_SELFTEST_MAIN it has a main() whose exit status is 0 when
 * bit-exact (`make selftest` on the host).
 */
#include <math.h>
#include <stdint.h>

#include "sq_model.h"
#include "sq_window.h"
#include "sq_wvectors.h"

#if SQ_WVEC_NCH != SQ_WF_NCH || SQ_WVEC_N_OUT != SQ_OUTPUT_SIZE
#error "test_vectors/sq_wvectors.h is for another channel count or model than c/: export them together"
#endif

#if SQ_WVEC_TRACKED
#include "sq_tracker.h"
static sq_tracker_t sq_st_trk;
#endif

static sq_window_t sq_st_fe;
static int8_t sq_st_x[SQ_WF_T * SQ_WF_NCH];
static int8_t sq_st_y[SQ_OUTPUT_SIZE];

/* The network on the window in sq_st_x; 1 when it and its outputs are expected window w. */
static int sq_st_same(int32_t w)
{
    const int32_t *e = sq_wvec_lines[w];
    int32_t i;
    if (sq_model_run(sq_st_x, sq_st_y) != 0) {
        return -1;
    }
    if ((int32_t)sq_st_fe.index != e[0] || (int32_t)(sq_st_fe.flagged * 1000.0f + 0.5f) != e[1] ||
        sq_window_hash(sq_st_x) != sq_wvec_fnv[w]) {
        return 0;
    }
    for (i = 0; i < SQ_OUTPUT_SIZE; ++i) {
        if ((int32_t)sq_st_y[i] != e[2 + i]) {
            return 0;
        }
    }
#if SQ_WVEC_TRACKED
    {
        const double hr = sq_tracker_push(&sq_st_trk, sq_st_y, sq_st_fe.flagged);
        if ((!sq_st_trk.has_hr ? -1L : (long)floor(hr * 1000.0 + 0.5)) != (long)sq_wvec_tracked[w]) {
            return 0;
        }
    }
#endif
    return 1;
}

int sq_window_selftest(void)
{
    float sample[SQ_WF_NCH];
    int32_t n, c, w = 0;
    int got, same;
    if (sq_window_init(&sq_st_fe) != SQ_WF_OK) {
        return -1;
    }
#if SQ_WVEC_TRACKED
    sq_tracker_init(&sq_st_trk);
#endif
    for (n = 0; n <= SQ_WVEC_N; ++n) {
        if (n < SQ_WVEC_N) {
            const int gap = n >= SQ_WVEC_GAP_FROM && n < SQ_WVEC_GAP_TO;
            for (c = 0; c < SQ_WF_NCH; ++c) {
                sample[c] = gap ? (float)NAN : (float)sq_wvec_recording[n * SQ_WF_NCH + c];
            }
            got = sq_window_push(&sq_st_fe, sample, sq_st_x);
        } else {
            got = sq_window_finish(&sq_st_fe, sq_st_x);      /* the recording's end: its last windows */
        }
        while (got > 0) {
            if (w >= SQ_WVEC_N_WINDOWS) {
                return (int)w + 1;
            }
            same = sq_st_same(w);
            if (same < 0) {
                return -1;
            }
            if (!same) {
                return (int)w + 1;
            }
            ++w;
            got = n < SQ_WVEC_N ? 0 : sq_window_finish(&sq_st_fe, sq_st_x);
        }
        if (got < 0) {
            return -1;
        }
    }
    return w == SQ_WVEC_N_WINDOWS ? 0 : (int)w + 1;
}

#ifdef SQ_SELFTEST_MAIN
int main(void)
{
    return sq_window_selftest();
}
#endif
