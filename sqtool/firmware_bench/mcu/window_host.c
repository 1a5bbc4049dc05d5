/* window_host.c: host driver of an export's C front end, c/sq_window.c (sqtool bench runtime c_window; tests).
 *
 *     harness IN.bin OUT.bin
 *
 * IN.bin:  int32 N, int32 C, then N * C float32 device samples (sample-major: channel c of sample n at n C + c;
 *          NaN = a dropout).
 * OUT.bin: per window int32 index, float32 flagged, then SQ_WF_T * SQ_WF_NCH int8 input codes (channels-last):
 *          every window sq_window_push returns, then every one sq_window_finish returns (host byte order).
 * Exit status: 0 ok, 2 usage/IO, 3 channel count mismatch, 4 front end error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sq_window.h"

static int put(FILE *fo, const sq_window_t *s, const int8_t *x)
{
    int32_t i = (int32_t)s->index;
    float f = s->flagged;
    return fwrite(&i, sizeof i, 1, fo) == 1 && fwrite(&f, sizeof f, 1, fo) == 1
        && fwrite(x, 1, SQ_WF_T * SQ_WF_NCH, fo) == (size_t)(SQ_WF_T * SQ_WF_NCH);
}

int main(int argc, char **argv)
{
    static sq_window_t s;
    static int8_t x[SQ_WF_T * SQ_WF_NCH];
    float sample[SQ_WF_NCH];
    int32_t hdr[2], n;
    int r;
    FILE *fi, *fo;

    if (argc < 3) {
        fprintf(stderr, "usage: %s IN.bin OUT.bin\n", argv[0]);
        return 2;
    }
    fi = fopen(argv[1], "rb");
    if (fi == NULL || fread(hdr, sizeof(int32_t), 2, fi) != 2 || hdr[0] < 0) return 2;
    if (hdr[1] != SQ_WF_NCH) {
        fprintf(stderr, "file has %d channels, the front end %d\n", (int)hdr[1], SQ_WF_NCH);
        return 3;
    }
    fo = fopen(argv[2], "wb");
    if (fo == NULL) return 2;
    sq_window_init(&s);
    for (n = 0; n < hdr[0]; ++n) {
        if (fread(sample, sizeof(float), SQ_WF_NCH, fi) != SQ_WF_NCH) return 2;
        r = sq_window_push(&s, sample, x);
        if (r < 0) return 4;
        if (r > 0 && !put(fo, &s, x)) return 2;
    }
    while ((r = sq_window_finish(&s, x)) > 0)
        if (!put(fo, &s, x)) return 2;
    fclose(fi);
    return (fclose(fo) == 0 && r == 0) ? 0 : (r < 0 ? 4 : 2);
}
