/*
 * pipeline_bench.c - run the exported heart-rate pipeline (sq_pipeline.h) on a recording under QEMU (or
 * the host) and measure it.
 *
 *   input   sq_rec.bin: frames of (SQ_FE_NIN int16 samples: PPG sensors, acc x y z; 1 int16 gap flag), as the kit's example reads
 *   chunk   SQ_BENCH_CHUNK samples per sq_pipeline_push (compile-time; the last push may be shorter)
 *   output  sq_results.txt: one line per result "index hr lo hi conf flagged valid no_pulse" (the kit's format)
 *           sq_stats.txt: pushes=, results=, status=, stack_high_water= (deepest stack used by one
 *           sq_pipeline_push call, measured from the caller's SP: the pipeline call alone), stages=
 *           sq_stages.bin (SQ_PL_BENCH builds): one byte per counted bracket, its stage (0 front end per
 *           sample, 1 network, 2 decoder, 3 front end per window), in the order the plugin writes its counts
 *
 * Two builds: without SQ_PL_BENCH each whole sq_pipeline_push call is bracketed by sq_bench_begin/end
 * (the instruction-counting plugin writes one count per push); with -DSQ_PL_BENCH the pipeline brackets
 * its stages itself through sq_pl_bench_begin/end below (one count per stage call). The stack is
 * painted before every push and scanned after it, outside the brackets.
 * Exit status: 0 ok, 2 I/O error, 3 the pipeline returned an error.
 */
#include <stdint.h>
#include <stdio.h>

#include "sq_bench.h"
#include "sq_pipeline.h"

#ifndef SQ_BENCH_CHUNK
#define SQ_BENCH_CHUNK 125
#endif
#define FRAME (SQ_FE_NIN + 1)
#define MAX_STAGES 65536

static sq_pipeline_t pl;
static int16_t frames[SQ_BENCH_CHUNK * FRAME];
static int16_t ppg[SQ_FE_N_PPG * SQ_BENCH_CHUNK];
static int16_t acc[3 * SQ_BENCH_CHUNK];
static uint8_t gap[SQ_BENCH_CHUNK];
static sq_result_t res[SQ_PL_MAX_RESULTS(SQ_BENCH_CHUNK)];

#ifdef SQ_PL_BENCH
static uint8_t stages[MAX_STAGES];
static uint32_t n_stages;

void sq_pl_bench_begin(int stage)
{
    if (n_stages < MAX_STAGES) stages[n_stages] = (uint8_t)stage;
    n_stages++;
    sq_bench_begin();
}

void sq_pl_bench_end(int stage)
{
    (void)stage;
    sq_bench_end();
}
#endif

#ifdef SQ_HOST
static uintptr_t sp_now(void) { return 0; }
static uint32_t stack_used(uintptr_t sp) { (void)sp; return 0; }
static void paint(void) {}
#else
extern uint32_t __heap_end[];          /* bottom of the stack region (picolibc.ld) */
#define PAINT 0xC5C5C5C5u

static inline uintptr_t sp_now(void)
{
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Fill the stack region below this function's frame (minus a margin) with the pattern. */
__attribute__((noinline)) static void paint(void)
{
    volatile uint32_t *p = __heap_end;
    uint32_t *hi = (uint32_t *)(sp_now() - 64u);
    while (p < hi) *p++ = PAINT;
}

/* Bytes between the caller's SP `sp` and the deepest word that is no longer the pattern. */
static uint32_t stack_used(uintptr_t sp)
{
    uint32_t *p = __heap_end;
    while ((uintptr_t)p < sp && *p == PAINT) p++;
    return (uint32_t)(sp - (uintptr_t)p);
}
#endif

int main(void)
{
    FILE *fin = fopen("sq_rec.bin", "rb");
    FILE *fout = fopen("sq_results.txt", "w");
    long pushes = 0, results = 0;
    uint32_t hwm = 0;
    int status = 0;
    if (!fin || !fout) {
        fprintf(stderr, "pipeline_bench: cannot open sq_rec.bin or sq_results.txt\n");
        return 2;
    }
    sq_pipeline_init(&pl);
    for (;;) {
        int n = (int)fread(frames, sizeof(int16_t) * FRAME, SQ_BENCH_CHUNK, fin), k, j;
        uintptr_t sp;
        uint32_t used;
        if (n <= 0) break;
        for (j = 0; j < n; ++j) {
            const int16_t *fr = &frames[j * FRAME];
            ppg[SQ_FE_N_PPG * j] = fr[0];                 /* the PPG sensors, interleaved */
#if SQ_FE_N_PPG == 2
            ppg[2 * j + 1] = fr[1];
#endif
#if SQ_FE_NCH > 1
            acc[3 * j] = fr[SQ_FE_N_PPG];
            acc[3 * j + 1] = fr[SQ_FE_N_PPG + 1];
            acc[3 * j + 2] = fr[SQ_FE_N_PPG + 2];
#endif
            gap[j] = (uint8_t)(fr[FRAME - 1] != 0);
        }
        paint();
        sp = sp_now();
#ifndef SQ_PL_BENCH
        sq_bench_begin();
#endif
        k = sq_pipeline_push(&pl, ppg, acc, gap, n, res, SQ_PL_MAX_RESULTS(SQ_BENCH_CHUNK));
#ifndef SQ_PL_BENCH
        sq_bench_end();
#endif
        used = stack_used(sp);
        if (used > hwm) hwm = used;
        pushes++;
        if (k < 0) {
            status = k;
            break;
        }
        for (j = 0; j < k; ++j) {
            const sq_result_t *r = &res[j];
            fprintf(fout, "%lu %ld %ld %ld %u %u %u %u\n", (unsigned long)r->index, (long)r->hr_mbpm,
                    (long)r->lo_mbpm, (long)r->hi_mbpm, (unsigned)r->conf_q15, (unsigned)r->flagged_q15,
                    (unsigned)r->valid, (unsigned)r->no_pulse);
        }
        results += k;
        if (n < SQ_BENCH_CHUNK) break;
    }
    fclose(fin);
    fclose(fout);
    {
        FILE *fs = fopen("sq_stats.txt", "w");
        if (!fs) return 2;
#ifdef SQ_PL_BENCH
        fprintf(fs, "stages=%lu\n", (unsigned long)n_stages);
#endif
        fprintf(fs, "pushes=%ld\nresults=%ld\nstatus=%d\nstack_high_water=%lu\nstate_bytes=%lu\n", pushes,
                results, status, (unsigned long)hwm, (unsigned long)sizeof pl);
        fclose(fs);
    }
#ifdef SQ_PL_BENCH
    {
        FILE *fg = fopen("sq_stages.bin", "wb");
        uint32_t m = n_stages < MAX_STAGES ? n_stages : MAX_STAGES;
        if (!fg || fwrite(stages, 1, m, fg) != m) return 2;
        fclose(fg);
    }
#endif
    return status ? 3 : 0;
}
