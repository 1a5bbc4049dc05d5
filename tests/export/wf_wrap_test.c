/*
 * wf_wrap_test.c - sq_window across the 2^32 wrap of its sample counters (built by tests/export/test_c_window.py).
 *
 *   wf_wrap_test SHIFT N SKIP
 *
 * Two states take the same N samples: `a` from sq_window_init, `b` from sq_window_init with its counters set as
 * after SHIFT windows of streaming (n_in and ri + SHIFT HOP_DEV, n_model + SHIFT HOP, next + SHIFT, all modulo
 * 2^32 as uint32 counters hold them), so that one of them wraps past 2^32 inside the N samples (a device that has
 * streamed for months: 2^32 samples are 194 days at 256 Hz). The rings of both are all zero, and the stream starts
 * with a second of zero samples, so both states are the same but for the counters; from window SKIP on (a's first
 * windows see the stream's start, b's see zeros before it) every window of a must come out of b too, with index +
 * SHIFT, the same codes and the same dropout share, the windows of sq_window_finish as well.
 * Prints "FAIL <what>" lines and exits 1 on any failure, else "ok <windows compared>".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sq_window.h"

static sq_window_t a, b;
static int8_t xa[SQ_WF_T * SQ_WF_NCH], xb[SQ_WF_T * SQ_WF_NCH];
static int fails;

#define CHECK(cond, what) do { if (!(cond)) { printf("FAIL %s (line %d)\n", what, __LINE__); ++fails; } } while (0)

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* a pulse at 78 /min on an ADC level, noise, a dropout every 7.3 s; the first second all zero */
static void sample(long i, uint32_t *seed, float *x)
{
    int c;
    for (c = 0; c < SQ_WF_NCH; ++c) {
        const float t = (float)i / SQ_WF_FS_IN;
        x[c] = (float)i < SQ_WF_FS_IN ? 0.0f
               : 2000.0f + 300.0f * sinf(8.17f * t + (float)c) + (float)(lcg(seed) % 41u) - 20.0f;
        if (i % (long)(7.3f * SQ_WF_FS_IN) == 5) x[c] = NAN;
    }
}

/* One window of each: the same window (a's index >= skip), or a's before skip (b's differs: the start) */
static long compare(uint32_t shift, uint32_t skip, int ra, int rb)
{
    CHECK(ra >= 0 && rb >= 0, "no error");
    if (ra != rb) {
        printf("FAIL a made %s window %lu, b %s (n_in %lu, n_model %lu)\n", ra ? "its" : "no", (unsigned long)a.index,
               rb ? "one" : "none", (unsigned long)b.n_in, (unsigned long)b.n_model);
        ++fails;
        return 0;
    }
    if (ra == 0) return 0;
    CHECK(b.index == a.index + shift, "the window index, shifted");
    if (a.index < skip) return 0;
    if (memcmp(xa, xb, sizeof xa) != 0 || a.flagged != b.flagged) {
        printf("FAIL window %lu: codes or dropout share differ\n", (unsigned long)a.index);
        ++fails;
    }
    return 1;
}

int main(int argc, char **argv)
{
    uint32_t shift, skip, seed = 11u;
    long n, i, compared = 0;
    float x[SQ_WF_NCH];
    int ra, rb;
    if (argc != 4) return 2;
    shift = (uint32_t)strtoul(argv[1], NULL, 10);
    n = atol(argv[2]);
    skip = (uint32_t)strtoul(argv[3], NULL, 10);
    sq_window_init(&a);
    sq_window_init(&b);
    b.n_in += shift * (uint32_t)SQ_WF_HOP_DEV;
    b.ri += shift * (uint32_t)SQ_WF_HOP_DEV;
    b.n_model += shift * (uint32_t)SQ_WF_HOP;
    b.next += shift;
    for (i = 0; i < n && fails < 5; ++i) {
        sample(i, &seed, x);
        ra = sq_window_push(&a, x, xa);
        rb = sq_window_push(&b, x, xb);
        compared += compare(shift, skip, ra, rb);
    }
    do {
        ra = sq_window_finish(&a, xa);
        rb = sq_window_finish(&b, xb);
        compared += compare(shift, skip, ra, rb);
    } while (ra > 0 && fails < 5);
    if (fails) return 1;
    printf("ok %ld\n", compared);
    return 0;
}
