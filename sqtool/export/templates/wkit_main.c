/*
 * example/main.c - a recording file through the model's whole device loop: the C front end (c/sq_window.c) and
 * the network (c/sq_model.c), one line per window. C99, no malloc; on the host and on the MPS2 AN386 board
 * (Cortex-M4 under QEMU, the file read through semihosting).
 *
 *   example [RECORDING.bin [codes]]          (default: recording.bin in the working directory, as on the board)
 *
 * RECORDING.bin: int32 C (= SQ_WF_NCH), int32 N, then N samples of C float32 each (sample-major, the channels in
 * metadata.json "channels" order, at SQ_WF_FS_IN Hz; NaN = a dropout), little-endian.
 * Output, per window: "index flagged_permille input_fnv1a out_0 ... out_K-1" (the window's index, its share of
 * dropout samples in permille, the FNV-1a of its SQ_WF_T x SQ_WF_NCH input codes (sq_window_hash), its int8 output
 * codes; value = scale * (code - zero_point) with metadata.json's output_quantization); with "codes", a second
 * line per window: "codes c_0 ... c_n-1", the input codes themselves. test_vectors/expected.txt is this program's
 * output on test_vectors/recording.bin built on the host: `make check` compares yours with it.
 * A heart-rate model (SQ_KIT_TRACKER 1) ends each window line with " | hr_tracked_mbpm": c/sq_tracker.c's tracked
 * heart rate in milli-BPM, rounded half up (-1 until its first accepted window), the whole loop to its last output.
 * Exit status: 0 ok, 1 usage, 2 I/O or a recording for another channel count, 3 the front end or the network failed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sq_model.h"
#include "sq_window.h"

#define SQ_KIT_TRACKER @TRACKER@        /* 1: a heart-rate model, whose export ships c/sq_tracker.c */
#if SQ_KIT_TRACKER
#include "sq_tracker.h"
static sq_tracker_t trk;
#endif

#define CHUNK 256                                   /* samples read per fread */

static sq_window_t fe;
static float samples[CHUNK * SQ_WF_NCH];
static int8_t x[SQ_WF_T * SQ_WF_NCH];
static int8_t y[SQ_OUTPUT_SIZE];

/* The network on the window in x, its line (and its codes' line). */
static int window_line(int with_codes)
{
    int32_t i;
    if (sq_model_run(x, y) != 0) {
        return 3;
    }
    printf("%lu %ld %lu", (unsigned long)fe.index, (long)(fe.flagged * 1000.0f + 0.5f),
           (unsigned long)sq_window_hash(x));
    for (i = 0; i < SQ_OUTPUT_SIZE; ++i) {
        printf(" %d", (int)y[i]);
    }
#if SQ_KIT_TRACKER
    {
        const double hr = sq_tracker_push(&trk, y, fe.flagged);
        printf(" | %ld", !trk.has_hr ? -1L : (long)floor(hr * 1000.0 + 0.5));
    }
#endif
    printf("\n");
    if (with_codes) {
        printf("codes");
        for (i = 0; i < SQ_WF_T * SQ_WF_NCH; ++i) {
            printf(" %d", (int)x[i]);
        }
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "recording.bin";
    FILE *f;
    int32_t hdr[2], done = 0;
    int with_codes, got, rc = 0;
    if (argc > 3 || (argc == 3 && strcmp(argv[2], "codes") != 0)) {
        fprintf(stderr, "usage: %s [RECORDING.bin [codes]]\n", argv[0]);
        return 1;
    }
    with_codes = argc == 3;
    f = fopen(path, "rb");
    if (!f || fread(hdr, sizeof(int32_t), 2, f) != 2 || hdr[0] != SQ_WF_NCH || hdr[1] < 0) {
        fprintf(stderr, "%s: cannot read it, or not %d channels\n", path, SQ_WF_NCH);
        return 2;
    }
    if (sq_window_init(&fe) != SQ_WF_OK) {
        return 3;
    }
#if SQ_KIT_TRACKER
    sq_tracker_init(&trk);
#endif
    while (done < hdr[1] && rc == 0) {
        const int32_t m = hdr[1] - done < CHUNK ? hdr[1] - done : CHUNK;
        int32_t j;
        if (fread(samples, sizeof(float) * SQ_WF_NCH, (size_t)m, f) != (size_t)m) {
            fprintf(stderr, "%s: shorter than its header says\n", path);
            return 2;
        }
        for (j = 0; j < m && rc == 0; ++j) {
            got = sq_window_push(&fe, &samples[j * SQ_WF_NCH], x);
            rc = got < 0 ? 3 : got > 0 ? window_line(with_codes) : 0;
        }
        done += m;
    }
    fclose(f);
    while (rc == 0 && (got = sq_window_finish(&fe, x)) != 0) {     /* the recording's end: its last windows */
        rc = got < 0 ? 3 : window_line(with_codes);
    }
    return rc;
}
