/* Test harness for <prefix>_acc_resampler: stdin = int32 m, int32 n_chunks, int32 chunk sizes, m x 3 int16 (x, y,
 * z interleaved); stdout = every output sample (3 int16), in order. Exit 2 on a push error, 3-5 when a bad
 * call is not refused as documented (5: sq_acc_rs_init_fs's rate check). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sq_acc_resampler.h"

int main(void)
{
    int32_t m, nc, i, at = 0;
    int32_t *chunks;
    int16_t *in, *out;
    sq_acc_rs_t s;
    if (fread(&m, 4, 1, stdin) != 1 || fread(&nc, 4, 1, stdin) != 1) return 1;
    chunks = (int32_t *)malloc(sizeof(int32_t) * (size_t)(nc > 0 ? nc : 1));
    in = (int16_t *)malloc(sizeof(int16_t) * 3u * (size_t)(m > 0 ? m : 1));
    out = (int16_t *)malloc(sizeof(int16_t) * 3u * (size_t)SQ_AR_MAX_OUT(m > 0 ? m : 1));
    if (!chunks || !in || !out) return 1;
    if (fread(chunks, 4, (size_t)nc, stdin) != (size_t)nc || fread(in, 2, 3u * (size_t)m, stdin) != 3u * (size_t)m)
        return 1;
    memset(&s, 0xA5, sizeof s);                                              /* garbage, as RAM left as it was */
    if (sq_acc_rs_push(&s, in, 1, out, 8) != SQ_AR_ERR_STATE) return 3;     /* never initialised: refused */
    s.magic = 0;
    if (sq_acc_rs_push(&s, in, 1, out, 8) != SQ_AR_ERR_STATE) return 3;
    sq_acc_rs_init(&s);
    if (sq_acc_rs_init_fs(&s, SQ_AR_FS_ACC_MHZ + 1000u) != SQ_AR_ERR_RATE) return 5;   /* another accelerometer rate */
    if (sq_acc_rs_push(&s, in, 1, out, 8) != SQ_AR_ERR_STATE) return 5;              /* refused: no stream goes on */
    if (sq_acc_rs_init_fs(NULL, SQ_AR_FS_ACC_MHZ) != SQ_AR_ERR_NULL) return 5;
    if (sq_acc_rs_init_fs(&s, SQ_AR_FS_ACC_MHZ) != SQ_AR_OK) return 5;
    if (sq_acc_rs_push(&s, in, 1, out, -1) != SQ_AR_ERR_ARG) return 3;
    if (sq_acc_rs_count(&s, SQ_AR_MAX_PUSH + 1) != SQ_AR_ERR_ARG) return 3;     /* its outputs would overflow an int */
    if (sq_acc_rs_push(&s, in, SQ_AR_MAX_PUSH + 1, out, 8) != SQ_AR_ERR_ARG) return 3;
    for (i = 0; at < m; i = (i + 1) % (nc > 0 ? nc : 1)) {
        int n = chunks[i] < m - at ? chunks[i] : m - at;
        int want = sq_acc_rs_count(&s, n), k;
        if (want > 0 && sq_acc_rs_push(&s, in + 3 * at, n, out, want - 1) != SQ_AR_ERR_OVERFLOW) return 4;
        k = sq_acc_rs_push(&s, in + 3 * at, n, out, SQ_AR_MAX_OUT(n));
        if (k < 0 || k != want) return 2;
        fwrite(out, 2, 3u * (size_t)k, stdout);
        at += n;
    }
    free(chunks); free(in); free(out);
    return 0;
}
