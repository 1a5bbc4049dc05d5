/*
 * acc_check.c - the kit's accelerometer resampler against sqtool's reference: pushes test_vectors/acc_in.bin
 * (int16 x, y, z triples at SQ_AR_FS_ACC Hz) through sq_acc_rs_push in several chunk sizes and compares every
 * output with test_vectors/acc_expected.bin (the triples sqtool/data/acc_resampler.py made). `make check` runs it.
 *
 *     acc_check acc_in.bin acc_expected.bin      exit 0 = bit-exact for every chunking
 */
#include <stdio.h>
#include <stdlib.h>

#include "sq_acc_resampler.h"

#define SQ_ACC_CHECK_MAX_CHUNK 64

static long sq_read_all(const char *path, int16_t **buf)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f) return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return -1; }
    *buf = (int16_t *)malloc((size_t)(n > 0 ? n : 2));
    if (!*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); return -1; }
    fclose(f);
    return n / 2;                                  /* int16 values (little-endian host assumed, as the files) */
}

int main(int argc, char **argv)
{
    static const int chunks[] = {1, 5, 7, SQ_ACC_CHECK_MAX_CHUNK};
    static int16_t out[3 * SQ_AR_MAX_OUT(SQ_ACC_CHECK_MAX_CHUNK)];
    int16_t *in = NULL, *want = NULL;
    long n_in, n_want, at, k, i;
    unsigned c;
    sq_acc_rs_t s;
    if (argc != 3) { fprintf(stderr, "usage: acc_check acc_in.bin acc_expected.bin\n"); return 2; }
    n_in = sq_read_all(argv[1], &in);
    n_want = sq_read_all(argv[2], &want);
    if (n_in <= 0 || n_want <= 0 || n_in % 3 || n_want % 3) {
        fprintf(stderr, "acc_check: cannot read the test vectors (missing, empty or not x, y, z triples)\n");
        return 2;
    }
    n_in /= 3;
    n_want /= 3;
    for (c = 0; c < sizeof chunks / sizeof chunks[0]; ++c) {
        sq_acc_rs_init(&s);
        for (at = 0, k = 0; at < n_in; at += chunks[c]) {
            int m = (int)(n_in - at < chunks[c] ? n_in - at : chunks[c]);
            int r = sq_acc_rs_push(&s, in + 3 * at, m, out, SQ_AR_MAX_OUT(SQ_ACC_CHECK_MAX_CHUNK));
            if (r < 0 || k + r > n_want) { printf("acc resampler chunks %d: MISMATCH (push %d)\n", chunks[c], r); return 1; }
            for (i = 0; i < 3L * r; ++i)
                if (out[i] != want[3 * k + i]) {
                    printf("acc resampler chunks %d: MISMATCH at output %ld\n", chunks[c], k + i / 3);
                    return 1;
                }
            k += r;
        }
        if (k != n_want) { printf("acc resampler chunks %d: MISMATCH (%ld outputs, %ld expected)\n", chunks[c], k, n_want); return 1; }
        printf("acc resampler chunks %d: bit-exact (%ld outputs)\n", chunks[c], k);
    }
    free(in);
    free(want);
    return 0;
}
