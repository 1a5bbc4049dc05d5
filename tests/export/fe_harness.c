/*
 * fe_harness.c - host harness for the generated front end (tests/export/test_c_frontend.py).
 *
 * stdin (little-endian): int32 n, int32 has_gap, int32 n_chunks, int32 chunk[n_chunks] (sizes, cycled
 * until n samples are pushed), int16 ppg[SQ_FE_N_PPG n] (sensors interleaved per time step), int16
 * acc[3 n] (interleaved x, y, z; only when SQ_FE_NCH > 1), uint8 gap[n] (only when has_gap).
 * stdout: per window: int32 index, uint16 flagged_q15, int8 codes[SQ_FE_NBINS * SQ_FE_NCH], int16
 * ring[SQ_FE_NIN][SQ_FE_T] (the window's band-passed model-rate samples, oldest first: checks steps 1-3).
 * `fe_harness selftest` checks the API's error contract instead and exits 0 when it holds.
 * Built with -DFE_FILES (the Cortex-M4 build under QEMU: semihosting, no stdin) it reads fe_in.bin and
 * writes fe_out.bin instead. With -DFE_BENCH each hop (the pushes that complete a window + the window)
 * runs between sq_bench_begin() and sq_bench_end(), which the QEMU plugin / callgrind count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sq_frontend.h"
#ifdef FE_BENCH
#include "sq_bench.h"
#define BENCH_BEGIN() sq_bench_begin()
#define BENCH_END() sq_bench_end()
#else
#define BENCH_BEGIN() ((void)0)
#define BENCH_END() ((void)0)
#endif

static FILE *fin, *fout;

static int read_all(void *p, size_t size, size_t n)
{
    return fread(p, size, n, fin) == n;
}

static int selftest(void)
{
    static sq_frontend_t s;
    int16_t ppg[8] = {0, 0, 0, 0, 0, 0, 0, 0}, acc[12] = {0};
    int8_t out[SQ_FE_NBINS * SQ_FE_NCH];
    int used = 123, fails = 0;
#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "selftest failed: %s\n", #cond); ++fails; } } while (0)
    CHECK(sq_frontend_init(NULL) == SQ_FE_ERR_NULL);
    CHECK(sq_frontend_init(&s) == SQ_FE_OK);
    CHECK(sq_frontend_push(NULL, ppg, acc, NULL, 4, &used) == SQ_FE_ERR_NULL);
    CHECK(sq_frontend_push(&s, NULL, acc, NULL, 4, &used) == SQ_FE_ERR_NULL);
    CHECK(sq_frontend_push(&s, ppg, acc, NULL, 4, NULL) == SQ_FE_ERR_NULL);
#if SQ_FE_NCH > 1
    CHECK(sq_frontend_push(&s, ppg, NULL, NULL, 4, &used) == SQ_FE_ERR_NULL);
#endif
    CHECK(sq_frontend_push(&s, ppg, acc, NULL, -1, &used) == SQ_FE_ERR_ARG && used == 0);
    CHECK(sq_frontend_push(&s, ppg, acc, NULL, 0, &used) == 0 && used == 0);
    CHECK(sq_frontend_window(&s, out, NULL) == SQ_FE_ERR_NO_WINDOW);
    CHECK(sq_frontend_window(NULL, out, NULL) == SQ_FE_ERR_NULL);
    {   /* run to the first window, then check PENDING and the all-zero codes */
        int r = 0, total = 0, i;
        while (r == 0 && total < 1000000) {
            r = sq_frontend_push(&s, ppg, acc, NULL, 4, &used);
            total += used;
        }
        CHECK(r == 1);
        CHECK(sq_frontend_push(&s, ppg, acc, NULL, 4, &used) == SQ_FE_ERR_PENDING && used == 0);
        CHECK(sq_frontend_window(&s, NULL, NULL) == SQ_FE_ERR_NULL);
        CHECK(sq_frontend_window(&s, out, NULL) == 0);
        for (i = 0; i < SQ_FE_NBINS * SQ_FE_NCH; ++i) CHECK(out[i] == -127);
        CHECK(sq_frontend_window(&s, out, NULL) == SQ_FE_ERR_NO_WINDOW);
    }
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    static sq_frontend_t s;
    int32_t hdr[3], *chunks;
    int16_t *ppg, *acc = NULL;
    uint8_t *gap = NULL;
    int8_t out[SQ_FE_NBINS * SQ_FE_NCH];
    int n, pos = 0, ci = 0;
    if (argc > 1 && strcmp(argv[1], "selftest") == 0) return selftest();
#ifdef FE_FILES
    fin = fopen("fe_in.bin", "rb");
    fout = fopen("fe_out.bin", "wb");
    if (!fin || !fout) return 2;
#else
    fin = stdin;
    fout = stdout;
#endif
    if (!read_all(hdr, 4, 3) || hdr[0] < 0 || hdr[2] < 1) return 2;
    n = hdr[0];
    chunks = malloc(sizeof(int32_t) * (size_t)hdr[2]);
    ppg = malloc(sizeof(int16_t) * (SQ_FE_N_PPG * (size_t)n + 1));
    if (!chunks || !ppg || !read_all(chunks, 4, (size_t)hdr[2]) || !read_all(ppg, 2, SQ_FE_N_PPG * (size_t)n))
        return 2;
    if (SQ_FE_NCH > 1) {
        acc = malloc(sizeof(int16_t) * (3 * (size_t)n + 1));
        if (!acc || !read_all(acc, 2, 3 * (size_t)n)) return 2;
    }
    if (hdr[1]) {
        gap = malloc((size_t)n + 1);
        if (!gap || !read_all(gap, 1, (size_t)n)) return 2;
    }
    if (sq_frontend_init(&s) != SQ_FE_OK) return 3;
    BENCH_BEGIN();
    while (pos < n) {
        int want = chunks[ci++ % hdr[2]], left;
        if (want > n - pos) want = n - pos;
        left = want;
        while (left > 0 || s.ready) {
            int used = 0, r;
            r = sq_frontend_push(&s, ppg + SQ_FE_N_PPG * pos, acc ? acc + 3 * pos : NULL, gap ? gap + pos : NULL, left, &used);
            if (r < 0) return 4;
            pos += used;
            left -= used;
            if (r == 1) {
                uint16_t fq = 0;
                int32_t idx = sq_frontend_window(&s, out, &fq);
                if (idx < 0) return 5;
                BENCH_END();
                fwrite(&idx, 4, 1, fout);
                fwrite(&fq, 2, 1, fout);
                fwrite(out, 1, sizeof out, fout);
                {
                    int c, k;
                    for (c = 0; c < SQ_FE_NIN; ++c)
                        for (k = 0; k < SQ_FE_T; ++k)
                            fwrite(&s.ring[c][(s.rpos + k) % SQ_FE_T], 2, 1, fout);
                }
                BENCH_BEGIN();
            }
        }
    }
    BENCH_END();
    free(chunks); free(ppg); free(acc); free(gap);
    if (fout != stdout) fclose(fout);
    return 0;
}
