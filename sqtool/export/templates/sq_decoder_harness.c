/* sq_decoder_harness.c: host test/benchmark driver for sq_decoder (not firmware).
 *
 *     harness IN.bin OUT.bin [REPEAT]
 *
 * IN.bin:  int32 W, int32 F, int32 C, then W * F int8 logits (row-major), then W uint8 valid flags, then
 *          (C > 0) W * F * C int8 front-end spectra (channels-last) for sq_decoder_step_spec.
 * OUT.bin: per window 6 int32: hr_mbpm, lo_mbpm, hi_mbpm, conf_q15, argmax, valid (host byte order).
 * REPEAT (default 1) runs the whole sequence that many times (for instruction counts); OUT holds the last.
 * Exit status: 0 ok, 2 usage/IO, 3 grid mismatch, 4 decoder error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sq_decoder.h"

int main(int argc, char **argv)
{
    FILE *fi, *fo;
    int32_t hdr[3];
    int8_t *logits, *spec = NULL;
    uint8_t *valid;
    int32_t w, t, rep, nrep = 1;
    sq_decoder_t dec;
    sq_decoder_out_t out;

    if (argc < 3) {
        fprintf(stderr, "usage: %s IN.bin OUT.bin [REPEAT]\n", argv[0]);
        return 2;
    }
    if (argc > 3) {
        nrep = atoi(argv[3]);
    }
    fi = fopen(argv[1], "rb");
    if (fi == NULL || fread(hdr, sizeof(int32_t), 3, fi) != 3) {
        return 2;
    }
    if (hdr[1] != SQ_DEC_NBINS || hdr[0] < 0 || hdr[2] < 0 || hdr[2] > 8) {
        fprintf(stderr, "file has %d bins, decoder has %d\n", (int)hdr[1], SQ_DEC_NBINS);
        return 3;
    }
    w = hdr[0];
    logits = (int8_t *)malloc((size_t)w * SQ_DEC_NBINS + 1);     /* the harness may allocate; the decoder does not */
    valid = (uint8_t *)malloc((size_t)w + 1);
    if (logits == NULL || valid == NULL
        || fread(logits, 1, (size_t)w * SQ_DEC_NBINS, fi) != (size_t)w * SQ_DEC_NBINS
        || fread(valid, 1, (size_t)w, fi) != (size_t)w) {
        return 2;
    }
    if (hdr[2] > 0) {
        size_t n = (size_t)w * SQ_DEC_NBINS * (size_t)hdr[2];
        spec = (int8_t *)malloc(n + 1);
        if (spec == NULL || fread(spec, 1, n, fi) != n) {
            return 2;
        }
    }
    fclose(fi);
    fo = fopen(argv[2], "wb");
    if (fo == NULL) {
        return 2;
    }
    for (rep = 0; rep < nrep; rep++) {
        if (sq_decoder_init(&dec) != SQ_DEC_OK) {
            return 4;
        }
        for (t = 0; t < w; t++) {
            /* an invalid window is passed without logits, as firmware with a gated-out window would */
            const int8_t *x = valid[t] ? logits + (size_t)t * SQ_DEC_NBINS : NULL;
            const int8_t *sp = spec != NULL && valid[t] ? spec + (size_t)t * SQ_DEC_NBINS * (size_t)hdr[2] : NULL;
            if ((spec != NULL ? sq_decoder_step_spec(&dec, x, sp, (int)hdr[2], valid[t], &out)
                              : sq_decoder_step(&dec, x, valid[t], &out)) != SQ_DEC_OK) {
                return 4;
            }
            if (rep == nrep - 1) {
                int32_t row[6];
                row[0] = out.hr_mbpm;
                row[1] = out.lo_mbpm;
                row[2] = out.hi_mbpm;
                row[3] = out.conf_q15;
                row[4] = out.argmax;
                row[5] = out.valid;
                if (fwrite(row, sizeof(int32_t), 6, fo) != 6) {
                    return 2;
                }
            }
        }
    }
    if (sq_decoder_init(NULL) != SQ_DEC_ERR_NULL || sq_decoder_step(&dec, NULL, 1, &out) != SQ_DEC_ERR_NULL
        || sq_decoder_step(NULL, logits, 1, &out) != SQ_DEC_ERR_NULL
        || sq_decoder_step(&dec, logits, 1, NULL) != SQ_DEC_ERR_NULL) {
        return 4;
    }
    if (SQ_DEC_EVIDENCE && (sq_decoder_step(&dec, logits, 1, &out) != SQ_DEC_ERR_SPEC
                            || sq_decoder_step_spec(&dec, logits, logits, 0, 1, &out) != SQ_DEC_ERR_SPEC)) {
        return 4;
    }
    fclose(fo);
    free(logits);
    free(valid);
    free(spec);
    return 0;
}
