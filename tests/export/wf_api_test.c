/*
 * wf_api_test.c - bad input and bookkeeping of sq_window (built by tests/export/test_c_window.py, also under
 * ASan + UBSan). Prints "FAIL <what>" lines and exits 1 on any failure, else prints "ok".
 *
 *   NULL state / sample / output; a state never initialised (zero, or garbage) refused and left untouched; a push
 *   after sq_window_finish refused; finish on an empty stream makes nothing, called again still nothing; a stream
 *   of extreme samples (+-1e30, +-FLT_MAX, Inf, NaN, denormals, all-NaN from the start) makes windows of defined
 *   codes (the sanitizers see no overflow, the float-to-int conversion stays in range); two streams of the same
 *   samples through two states give the same codes, and a re-init restarts the window index at 0.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sq_window.h"

static sq_window_t a, b, junk;
static int8_t xa[SQ_WF_T * SQ_WF_NCH], xb[SQ_WF_T * SQ_WF_NCH];
static int fails;

#define CHECK(cond, what) do { if (!(cond)) { printf("FAIL %s (line %d)\n", what, __LINE__); ++fails; } } while (0)

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static float extreme(uint32_t *seed, long i)
{
    static const float pick[] = {1e30f, -1e30f, FLT_MAX, -FLT_MAX, 1e-40f, 0.0f, 3.0f};
    uint32_t r = lcg(seed) % 16;
    if (r == 0) return INFINITY;
    if (r == 1) return NAN;
    if (r < 9) return pick[r - 2];
    return (float)((i % 50) - 25);
}

int main(void)
{
    float sample[SQ_WF_NCH];
    uint32_t seed = 7u;
    long i, n = 4L * SQ_WF_T_DEV + 17, made = 0;
    int c, ra, rb;

    /* NULL pointers and states never initialised */
    CHECK(sq_window_init(NULL) == SQ_WF_ERR_NULL, "init NULL");
    memset(sample, 0, sizeof sample);
    CHECK(sq_window_push(NULL, sample, xa) == SQ_WF_ERR_NULL, "push NULL state");
    sq_window_init(&a);
    CHECK(sq_window_push(&a, NULL, xa) == SQ_WF_ERR_NULL, "push NULL sample");
    CHECK(sq_window_push(&a, sample, NULL) == SQ_WF_ERR_NULL, "push NULL out");
    CHECK(sq_window_finish(NULL, xa) == SQ_WF_ERR_NULL, "finish NULL state");
    memset(&junk, 0, sizeof junk);
    CHECK(sq_window_push(&junk, sample, xa) == SQ_WF_ERR_STATE, "push zero state");
    memset(&junk, 0x5A, sizeof junk);
    CHECK(sq_window_push(&junk, sample, xa) == SQ_WF_ERR_STATE, "push garbage state");
    CHECK(sq_window_finish(&junk, xa) == SQ_WF_ERR_STATE, "finish garbage state");

    /* an empty stream: nothing, twice; then no push */
    sq_window_init(&a);
    CHECK(sq_window_finish(&a, xa) == 0, "finish empty");
    CHECK(sq_window_finish(&a, xa) == 0, "finish empty again");
    CHECK(sq_window_push(&a, sample, xa) == SQ_WF_ERR_STATE, "push after finish");

    /* extreme samples through two states: the same windows, defined codes */
    sq_window_init(&a);
    sq_window_init(&b);
    for (i = 0; i < n; ++i) {
        for (c = 0; c < SQ_WF_NCH; ++c) sample[c] = i < 5 ? NAN : extreme(&seed, i + c);
        ra = sq_window_push(&a, sample, xa);
        rb = sq_window_push(&b, sample, xb);
        CHECK(ra == rb && ra >= 0, "push extreme");
        if (ra > 0) {
            CHECK(a.index == (uint32_t)made && memcmp(xa, xb, sizeof xa) == 0, "same window");
            CHECK(a.flagged >= 0.0f && a.flagged <= 1.0f, "flagged share");
            made++;
        }
    }
    while ((ra = sq_window_finish(&a, xa)) > 0) {
        rb = sq_window_finish(&b, xb);
        CHECK(rb == ra && memcmp(xa, xb, sizeof xa) == 0 && a.index == (uint32_t)made, "same finish window");
        made++;
    }
    CHECK(ra == 0 && sq_window_finish(&b, xb) == 0, "finish ends");
    CHECK(made >= 4, "windows made");

    /* a re-init restarts the index */
    sq_window_init(&a);
    for (i = 0, ra = 0; i < n && ra == 0; ++i) {
        for (c = 0; c < SQ_WF_NCH; ++c) sample[c] = (float)(i % 40);
        ra = sq_window_push(&a, sample, xa);
    }
    CHECK(ra == 1 && a.index == 0, "re-init index");
    if (fails) return 1;
    printf("ok\n");
    return 0;
}
