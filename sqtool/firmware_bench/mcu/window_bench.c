/*
 * window_bench.c - a time-domain export's whole device loop under QEMU (or the host): device samples ->
 * sq_window_push (c/sq_window.c, `sqtool export --device-fs HZ`) -> sq_model_run (c/sq_model.c), per recording.
 *
 *   input   sq_win_in.bin: int32 R, int32 C, then per recording int32 N and N x C float32 device samples
 *           (sample-major, NaN = a dropout); the front end starts afresh for each recording
 *   chunk   SQ_BENCH_CHUNK samples per counted bracket of the front end (compile-time)
 *   output  sq_win_out.bin: per window int32 recording, int32 index, float32 flagged, SQ_INPUT_SIZE int8 input
 *           codes, SQ_OUTPUT_SIZE int8 outputs
 *           sq_stages.bin: one byte per counted bracket: 0 the front end (a chunk of pushes, the windows they
 *           made included), 1 the network (one window), 2 one sq_window_finish call (a window made at a recording's
 *           end), in the order the plugin writes its counts (written in blocks: the harness keeps little RAM)
 *           sq_stats.txt: recordings=, windows=, stages=, status=, stack_high_water=, front_end_state_bytes=
 *           sq_times.bin (host build only): one float64 per counted bracket, its wall time in seconds
 *           (CLOCK_MONOTONIC), in the order of sq_stages.bin
 * -DSQ_WF_ONLY builds the front end alone (no sq_model.c: its windows' codes, one zero byte for the outputs), what
 * tests/export/test_c_window.py compares with the Python stream.
 * Exit status: 0 ok, 2 I/O error, 3 the front end or the network returned an error.
 */
#ifdef SQ_HOST
#define _POSIX_C_SOURCE 199309L        /* clock_gettime */
#include <time.h>
#endif
#include <stdint.h>
#include <stdio.h>

#include "sq_bench.h"
#include "sq_window.h"

#ifdef SQ_WF_ONLY                      /* the front end alone: a network that outputs one zero byte */
#define SQ_INPUT_SIZE (SQ_WF_T * SQ_WF_NCH)
#define SQ_OUTPUT_SIZE 1
static int sq_model_run(const int8_t *in, int8_t *out)
{
    (void)in;
    out[0] = 0;
    return 0;
}
#else
#include "sq_model.h"
#endif

#ifndef SQ_BENCH_CHUNK
#define SQ_BENCH_CHUNK 100
#endif
#define TAG_BLOCK 1024
#define MAX_READY 8                    /* windows one chunk can make (hop >= 1 s, chunk <= 1 s of samples) */

static sq_window_t fe;
static float samples[SQ_BENCH_CHUNK * SQ_WF_NCH];
static int8_t ready[MAX_READY][SQ_INPUT_SIZE];
static uint32_t ready_index[MAX_READY];
static float ready_flagged[MAX_READY];
static int8_t result[SQ_OUTPUT_SIZE];
static uint8_t tags[TAG_BLOCK];
static uint32_t n_stages;
static FILE *ftags;

#ifdef SQ_HOST                           /* the host build times each bracket too */
static double times[TAG_BLOCK];
static struct timespec t_begin;
static FILE *ftimes;
#endif

/* A counted bracket of `stage`: tagged, then begun; outside the markers, so the plugin counts none of this. */
static void begin(int stage)
{
    tags[n_stages % TAG_BLOCK] = (uint8_t)stage;
#ifdef SQ_HOST
    clock_gettime(CLOCK_MONOTONIC, &t_begin);
#endif
    sq_bench_begin();
}

static void end(void)
{
    sq_bench_end();
#ifdef SQ_HOST
    {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        times[n_stages % TAG_BLOCK] = (double)(t.tv_sec - t_begin.tv_sec)
                                      + 1e-9 * (double)(t.tv_nsec - t_begin.tv_nsec);
    }
#endif
    if (++n_stages % TAG_BLOCK == 0) {
        fwrite(tags, 1, TAG_BLOCK, ftags);
#ifdef SQ_HOST
        fwrite(times, sizeof(double), TAG_BLOCK, ftimes);
#endif
    }
}

/* The network on one window (counted), then the window and its outputs written. */
static int run_window(FILE *fout, int32_t rec, uint32_t index, float flagged, const int8_t *x)
{
    int32_t idx = (int32_t)index;
    int rc;
    begin(1);
    rc = sq_model_run(x, result);
    end();
    if (fwrite(&rec, sizeof rec, 1, fout) != 1 || fwrite(&idx, sizeof idx, 1, fout) != 1
        || fwrite(&flagged, sizeof flagged, 1, fout) != 1 || fwrite(x, 1, SQ_INPUT_SIZE, fout) != SQ_INPUT_SIZE
        || fwrite(result, 1, SQ_OUTPUT_SIZE, fout) != SQ_OUTPUT_SIZE)
        return 2;
    return rc ? 3 : 0;
}

int main(void)
{
    FILE *fin = fopen("sq_win_in.bin", "rb");
    FILE *fout = fopen("sq_win_out.bin", "wb");
    FILE *fs;
    int32_t hdr[2], n, r;
    int got;
    long windows = 0;
    int status = 0;
    ftags = fopen("sq_stages.bin", "wb");
    if (!fin || !fout || !ftags) {
        fprintf(stderr, "window_bench: cannot open sq_win_in.bin, sq_win_out.bin or sq_stages.bin\n");
        return 2;
    }
#ifdef SQ_HOST
    ftimes = fopen("sq_times.bin", "wb");
    if (!ftimes) {
        fprintf(stderr, "window_bench: cannot open sq_times.bin\n");
        return 2;
    }
#endif
    if (fread(hdr, sizeof(int32_t), 2, fin) != 2 || hdr[1] != SQ_WF_NCH) return 2;
    sq_stack_paint();
    for (r = 0; r < hdr[0] && status == 0; ++r) {
        int32_t done = 0;
        if (fread(&n, sizeof n, 1, fin) != 1 || n < 0) return 2;
        sq_window_init(&fe);
        while (done < n && status == 0) {
            int m = n - done < SQ_BENCH_CHUNK ? (int)(n - done) : SQ_BENCH_CHUNK, j, k = 0;
            if (fread(samples, sizeof(float) * SQ_WF_NCH, (size_t)m, fin) != (size_t)m) return 2;
            begin(0);
            for (j = 0; j < m; ++j) {
                int got = sq_window_push(&fe, &samples[j * SQ_WF_NCH], ready[k < MAX_READY ? k : MAX_READY - 1]);
                if (got < 0) status = 3;
                if (got > 0 && k < MAX_READY) {
                    ready_index[k] = fe.index;
                    ready_flagged[k] = fe.flagged;
                    k++;
                }
            }
            end();
            for (j = 0; j < k && status == 0; ++j, ++windows)
                status = run_window(fout, r, ready_index[j], ready_flagged[j], ready[j]);
            done += m;
        }
        while (status == 0) {                     /* the recording's end: its last windows, each counted */
            begin(2);
            got = sq_window_finish(&fe, ready[0]);
            end();
            if (got <= 0) {
                if (got < 0) status = 3;
                break;
            }
            status = run_window(fout, r, fe.index, fe.flagged, ready[0]);
            windows++;
        }
    }
    fclose(fin);
    fclose(fout);
    if (n_stages % TAG_BLOCK) fwrite(tags, 1, n_stages % TAG_BLOCK, ftags);
    fclose(ftags);
#ifdef SQ_HOST
    if (n_stages % TAG_BLOCK) fwrite(times, sizeof(double), n_stages % TAG_BLOCK, ftimes);
    fclose(ftimes);
#endif
    fs = fopen("sq_stats.txt", "w");
    if (!fs) return 2;
    fprintf(fs, "recordings=%ld\nwindows=%ld\nstages=%lu\nstatus=%d\nstack_high_water=%lu\n"
            "front_end_state_bytes=%lu\n", (long)r, windows, (unsigned long)n_stages, status,
            (unsigned long)sq_stack_high_water(), (unsigned long)sizeof fe);
    fclose(fs);
    return status ? 3 : 0;
}
