/*
 * pl_api_test.c - bad input and bookkeeping of sq_pipeline_push (built by tests/export/test_c_pipeline.py,
 * also under ASan + UBSan). Prints "FAIL <what>" lines and exits 1 on any failure, else prints "ok".
 *
 *   NULL state / ppg / acc / out, n < 0, max_out < 0, n = 0 (also with NULL pointers), the rate check,
 *   SQ_PL_ERR_OVERFLOW leaving the state untouched, and sq_pipeline_pending == the number of results of
 *   every push (pseudo-random chunk sizes) and <= SQ_PL_MAX_RESULTS(n);
 *   a state never initialised (all zero, or 0x5A garbage, also garbage that holds the magic by chance):
 *   push and pending return SQ_PL_ERR_STATE and leave it untouched (the front end's own push / window:
 *   SQ_FE_ERR_STATE); once initialised, the same pushes give the results of a fresh pipeline, and a
 *   re-init restarts the result index at 0 with the same results; a refused init (wrong rate or sensor count) of a
 *   streaming state leaves it refusing push / pending (SQ_PL_ERR_STATE) until an init succeeds.
 */
#include <stdio.h>
#include <string.h>

#include "sq_pipeline.h"

#define N_SIG 12000
static int16_t ppg[SQ_FE_N_PPG * N_SIG], acc[3 * N_SIG];
static uint8_t gap[N_SIG];
static sq_pipeline_t a, b, zero, junk, copy;
static sq_frontend_t fe_zero;
static sq_result_t ra[64], rb[64], rz[64], rj[64];
static int fails;

#define CHECK(cond, what) do { if (!(cond)) { printf("FAIL %s (line %d)\n", what, __LINE__); ++fails; } } while (0)

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

int main(void)
{
    uint32_t seed = 12345u;
    int i, pos, total = 0, streamed;
    for (i = 0; i < N_SIG; ++i) {
        ppg[SQ_FE_N_PPG * i] = (int16_t)((int32_t)(lcg(&seed) & 0xFFFF) - 32768);
#if SQ_FE_N_PPG == 2
        ppg[2 * i + 1] = (int16_t)(ppg[2 * i] / 4 + (int32_t)(i % 97) * 10);
#endif
        acc[3 * i] = (int16_t)(i * 7);
        acc[3 * i + 1] = (int16_t)(-i * 3);
        acc[3 * i + 2] = (int16_t)(4096 + (i % 50));
        gap[i] = (uint8_t)((i / 500) % 4 == 1);
    }
    /* init */
    CHECK(sq_pipeline_init(NULL) == SQ_PL_ERR_NULL, "init NULL");
    CHECK(sq_pipeline_init_fs(NULL, SQ_PL_FS_IN_MHZ) == SQ_PL_ERR_NULL, "init_fs NULL");
    CHECK(sq_pipeline_init_fs(&a, SQ_PL_FS_IN_MHZ + 1000u) == SQ_PL_ERR_RATE, "init_fs wrong rate");
    CHECK(sq_pipeline_init_fs(&a, SQ_PL_FS_IN_MHZ) == SQ_PL_OK, "init_fs right rate");
    CHECK(sq_pipeline_init_device(NULL, SQ_PL_FS_IN_MHZ, SQ_FE_N_PPG) == SQ_PL_ERR_NULL, "init_device NULL");
    CHECK(sq_pipeline_init_device(&a, SQ_PL_FS_IN_MHZ, 3 - SQ_FE_N_PPG) == SQ_PL_ERR_SENSORS, "init_device sensors");
    CHECK(sq_pipeline_init_device(&a, SQ_PL_FS_IN_MHZ + 1000u, SQ_FE_N_PPG) == SQ_PL_ERR_RATE, "init_device rate");
    CHECK(sq_pipeline_init_device(&a, SQ_PL_FS_IN_MHZ, SQ_FE_N_PPG) == SQ_PL_OK, "init_device right");
    CHECK(sq_pipeline_init(&b) == SQ_PL_OK, "init");
    /* bad pushes: nothing consumed */
    CHECK(sq_pipeline_push(NULL, ppg, acc, gap, 10, ra, 4) == SQ_PL_ERR_NULL, "push NULL state");
    CHECK(sq_pipeline_push(&a, NULL, acc, gap, 10, ra, 4) == SQ_PL_ERR_NULL, "push NULL ppg");
#if SQ_FE_NCH > 1
    CHECK(sq_pipeline_push(&a, ppg, NULL, gap, 10, ra, 4) == SQ_PL_ERR_NULL, "push NULL acc");
#endif
    CHECK(sq_pipeline_push(&a, ppg, acc, gap, -1, ra, 4) == SQ_PL_ERR_ARG, "push n < 0");
    CHECK(sq_pipeline_push(&a, ppg, acc, gap, 10, ra, -1) == SQ_PL_ERR_ARG, "push max_out < 0");
    CHECK(sq_pipeline_push(&a, NULL, NULL, NULL, 0, NULL, 0) == 0, "push n = 0 with NULL pointers");
    CHECK(sq_pipeline_pending(NULL, 5) == SQ_PL_ERR_NULL, "pending NULL");
    CHECK(sq_pipeline_pending(&a, -5) == SQ_PL_ERR_ARG, "pending n < 0");
    CHECK(memcmp(&a, &b, sizeof a) == 0, "bad pushes left the state untouched");
    /* a push that completes no window may pass out = NULL */
    CHECK(sq_pipeline_pending(&a, 10) == 0, "no window in 10 samples");
    CHECK(sq_pipeline_push(&a, ppg, acc, gap, 10, NULL, 0) == 0, "push without window, out NULL");
    CHECK(sq_pipeline_push(&b, ppg, acc, gap, 10, NULL, 0) == 0, "same on b");
    pos = 10;
    /* one that completes windows: NULL out / too small max_out are refused, state untouched */
    {
        const int n = 4000, need = sq_pipeline_pending(&a, n);
        CHECK(need >= 2, "4000 samples complete windows");
        CHECK(need <= SQ_PL_MAX_RESULTS(n), "pending <= SQ_PL_MAX_RESULTS");
        CHECK(sq_pipeline_push(&a, ppg + SQ_FE_N_PPG * pos, acc + 3 * pos, gap + pos, n, NULL, 64) == SQ_PL_ERR_NULL, "NULL out");
        CHECK(sq_pipeline_push(&a, ppg + SQ_FE_N_PPG * pos, acc + 3 * pos, gap + pos, n, ra, need - 1) == SQ_PL_ERR_OVERFLOW,
              "max_out too small");
        CHECK(memcmp(&a, &b, sizeof a) == 0, "refused pushes left the state untouched");
        CHECK(sq_pipeline_push(&a, ppg + SQ_FE_N_PPG * pos, acc + 3 * pos, gap + pos, n, ra, need) == need, "exact max_out");
        CHECK(sq_pipeline_push(&b, ppg + SQ_FE_N_PPG * pos, acc + 3 * pos, gap + pos, n, rb, 64) == need, "same on b");
        CHECK(memcmp(ra, rb, (size_t)need * sizeof ra[0]) == 0, "same results");
        pos += n;
        total += need;
    }
    /* pseudo-random chunks: pending predicts every push exactly */
    while (pos < N_SIG) {
        int n = (int)(lcg(&seed) % 700u), need, k;
        if (n > N_SIG - pos) n = N_SIG - pos;
        need = sq_pipeline_pending(&a, n);
        CHECK(need >= 0 && need <= SQ_PL_MAX_RESULTS(n), "pending within SQ_PL_MAX_RESULTS");
        k = sq_pipeline_push(&a, ppg + SQ_FE_N_PPG * pos, acc + 3 * pos, gap + pos, n, ra, 64);
        CHECK(k == need, "pending == results");
        for (i = 0; i < k; ++i) {
            CHECK(ra[i].index == (uint32_t)(total + i), "consecutive indices");
            CHECK(ra[i].valid == (ra[i].flagged_q15 <= SQ_PL_MAX_FLAGGED_Q15), "valid iff flagged <= 1/2");
            CHECK(ra[i].lo_mbpm <= ra[i].hi_mbpm, "interval ordered");
            CHECK(ra[i].conf_q15 <= 32768u, "conf range");
        }
        total += k;
        pos += n;
    }
    CHECK(total > 30, "results over 96 s");
    streamed = total;
    /* a refused init un-initialises a streaming state: no more samples reach the old stream until an init succeeds */
    memcpy(&b, &a, sizeof a);
    CHECK(sq_pipeline_pending(&b, 250) >= 0 && sq_pipeline_push(&b, ppg, acc, gap, 1, ra, 64) >= 0, "b streams");
    CHECK(sq_pipeline_init_device(&b, SQ_PL_FS_IN_MHZ + 1000u, SQ_FE_N_PPG) == SQ_PL_ERR_RATE, "re-init, wrong rate");
    CHECK(sq_pipeline_push(&b, ppg, acc, gap, 250, ra, 64) == SQ_PL_ERR_STATE, "push after a refused rate");
    CHECK(sq_pipeline_pending(&b, 250) == SQ_PL_ERR_STATE, "pending after a refused rate");
    memcpy(&b, &a, sizeof a);
    CHECK(sq_pipeline_init_device(&b, SQ_PL_FS_IN_MHZ, 3 - SQ_FE_N_PPG) == SQ_PL_ERR_SENSORS, "re-init, wrong sensors");
    CHECK(sq_pipeline_push(&b, ppg, acc, gap, 250, ra, 64) == SQ_PL_ERR_STATE, "push after refused sensors");
    memcpy(&b, &a, sizeof a);
    CHECK(sq_pipeline_init_fs(&b, SQ_PL_FS_IN_MHZ - 1u) == SQ_PL_ERR_RATE, "re-init_fs, wrong rate");
    CHECK(sq_pipeline_push(&b, ppg, acc, gap, 250, ra, 64) == SQ_PL_ERR_STATE, "push after a refused init_fs");
    CHECK(sq_pipeline_init_device(&b, SQ_PL_FS_IN_MHZ, SQ_FE_N_PPG) == SQ_PL_OK, "a right init after a refused one");
    CHECK(sq_pipeline_push(&b, ppg, acc, gap, 250, ra, 64) >= 0, "streams again");
    /* never initialised: a zeroed static and garbage RAM are refused, untouched, until an init */
    memset(&junk, 0x5A, sizeof junk);
    memcpy(&copy, &junk, sizeof junk);
    for (i = 0; i < 2; ++i) {
        sq_pipeline_t *u = i == 0 ? &zero : &junk;
        int j;
        for (j = 0; j < 3; ++j)
            CHECK(sq_pipeline_push(u, ppg, acc, gap, 250, ra, 64) == SQ_PL_ERR_STATE, "uninitialised push");
        CHECK(sq_pipeline_push(u, ppg, acc, gap, 0, ra, 64) == SQ_PL_ERR_STATE, "uninitialised push n = 0");
        CHECK(sq_pipeline_pending(u, 250) == SQ_PL_ERR_STATE, "uninitialised pending");
        CHECK(sq_pipeline_pending(u, 0) == SQ_PL_ERR_STATE, "uninitialised pending n = 0");
    }
    {
        static const sq_pipeline_t all_zero;
        CHECK(memcmp(&zero, &all_zero, sizeof zero) == 0 && memcmp(&junk, &copy, sizeof junk) == 0,
              "refused pushes left the uninitialised states untouched");
    }
    copy.magic = SQ_PL_MAGIC;                     /* garbage that holds the magic: the front end's index check */
    CHECK(sq_pipeline_push(&copy, ppg, acc, gap, 250, ra, 64) == SQ_PL_ERR_STATE, "garbage with the magic");
    {
        int used = -1;
        int8_t codes[SQ_FE_NBINS * SQ_FE_NCH];
        CHECK(sq_frontend_push(&fe_zero, ppg, acc, gap, 10, &used) == SQ_FE_ERR_STATE && used == 0,
              "front end push on a zero state");
        CHECK(sq_frontend_window(&fe_zero, codes, NULL) == SQ_FE_ERR_STATE, "front end window on a zero state");
    }
    /* initialised, the same pushes give results, equal to a fresh pipeline's; a re-init starts over at index 0 */
    CHECK(sq_pipeline_init(&zero) == SQ_PL_OK, "init the zero state");
    CHECK(sq_pipeline_init_device(&junk, SQ_PL_FS_IN_MHZ, SQ_FE_N_PPG) == SQ_PL_OK, "init the garbage state");
    CHECK(sq_pipeline_init(&a) == SQ_PL_OK, "re-init a");
    for (pos = 0, total = 0; pos < 4000; pos += 250) {
        const int need = sq_pipeline_pending(&a, 250);
        const int ka = sq_pipeline_push(&a, ppg + SQ_FE_N_PPG * pos, acc + 3 * pos, gap + pos, 250, ra, 64);
        const int kz = sq_pipeline_push(&zero, ppg + SQ_FE_N_PPG * pos, acc + 3 * pos, gap + pos, 250, rz, 64);
        const int kj = sq_pipeline_push(&junk, ppg + SQ_FE_N_PPG * pos, acc + 3 * pos, gap + pos, 250, rj, 64);
        CHECK(ka == need && kz == need && kj == need, "initialised pushes give results");
        if (ka > 0) {
            CHECK(memcmp(ra, rz, (size_t)ka * sizeof ra[0]) == 0 && memcmp(ra, rj, (size_t)ka * sizeof ra[0]) == 0,
                  "same results as a fresh pipeline");
            CHECK(ra[0].index == (uint32_t)total, "index restarts at 0 after a re-init");
            total += ka;
        }
    }
    CHECK(total >= 10, "results after init");
    if (fails) return 1;
    printf("ok %d results (+ %d after the inits)\n", streamed, total);
    return 0;
}
