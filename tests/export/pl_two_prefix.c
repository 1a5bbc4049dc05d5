/*
 * pl_two_prefix.c - two exported pipelines (prefixes sq and hr2, different device rates) linked into ONE
 * binary, run interleaved on two recordings (kit format: NIN int16 samples + 1 int16 gap flag per frame; the
 * first N_PPG samples are the PPG sensors, the pipelines get them interleaved as they are).
 *
 *   pl_two_prefix REC_SQ REC_HR2 CHUNK  ->  "sq <result line>" and "hr2 <result line>" lines
 */
#include <stdio.h>
#include <stdlib.h>

#include "hr2_pipeline.h"
#include "sq_pipeline.h"

#define MAXC 512
static sq_pipeline_t pa;
static hr2_pipeline_t pb;

static int feed(FILE *f, int chunk, int nin, int nppg, int16_t *ppg, int16_t *acc, uint8_t *gap)
{
    int16_t fr[6];
    int j, c;
    for (j = 0; j < chunk; ++j) {
        if (fread(fr, sizeof(int16_t), (size_t)(nin + 1), f) != (size_t)(nin + 1)) break;
        for (c = 0; c < nppg; ++c) ppg[nppg * j + c] = fr[c];
        for (c = nppg; c < nin; ++c) acc[3 * j + c - nppg] = fr[c];
        gap[j] = (uint8_t)(fr[nin] != 0);
    }
    return j;
}

int main(int argc, char **argv)
{
    static int16_t ppg[2 * MAXC], acc[3 * MAXC];
    static uint8_t gap[MAXC];
    sq_result_t ra[8];
    hr2_result_t rb[8];
    FILE *fa, *fb;
    int chunk, done_a = 0, done_b = 0, i;
    if (argc < 4) return 2;
    fa = fopen(argv[1], "rb");
    fb = fopen(argv[2], "rb");
    chunk = atoi(argv[3]);
    if (!fa || !fb || chunk < 1 || chunk > MAXC) return 2;
    if (sq_pipeline_init(&pa) || hr2_pipeline_init_device(&pb, HR2_PL_FS_IN_MHZ, HR2_FE_N_PPG)) return 3;
    while (!done_a || !done_b) {
        if (!done_a) {
            int n = feed(fa, chunk, SQ_FE_NIN, SQ_FE_N_PPG, ppg, acc, gap), k;
            k = sq_pipeline_push(&pa, ppg, acc, gap, n, ra, 8);
            if (k < 0) return 3;
            for (i = 0; i < k; ++i)
                printf("sq %lu %ld %ld %ld %u %u %u\n", (unsigned long)ra[i].index, (long)ra[i].hr_mbpm,
                       (long)ra[i].lo_mbpm, (long)ra[i].hi_mbpm, (unsigned)ra[i].conf_q15,
                       (unsigned)ra[i].flagged_q15, (unsigned)ra[i].valid);
            done_a = n < chunk;
        }
        if (!done_b) {
            int n = feed(fb, chunk, HR2_FE_NIN, HR2_FE_N_PPG, ppg, acc, gap), k;
            k = hr2_pipeline_push(&pb, ppg, acc, gap, n, rb, 8);
            if (k < 0) return 3;
            for (i = 0; i < k; ++i)
                printf("hr2 %lu %ld %ld %ld %u %u %u\n", (unsigned long)rb[i].index, (long)rb[i].hr_mbpm,
                       (long)rb[i].lo_mbpm, (long)rb[i].hi_mbpm, (unsigned)rb[i].conf_q15,
                       (unsigned)rb[i].flagged_q15, (unsigned)rb[i].valid);
            done_b = n < chunk;
        }
    }
    fclose(fa);
    fclose(fb);
    return 0;
}
