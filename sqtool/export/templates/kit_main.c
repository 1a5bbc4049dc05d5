/*
 * example/main.c - stream a recording through the heart-rate pipeline and print one line per result.
 *
 *   host:  ./build/host/example RECORDING.bin [CHUNKS]      (defaults: test_vectors/recording.bin, 25)
 *   MPS2:  qemu-system-arm -M mps2-an386 -semihosting-config enable=on,target=native -kernel example.elf
 *          (reads recording.bin from QEMU's working directory through semihosting; chunk SQ_EXAMPLE_CHUNKS)
 *
 * RECORDING.bin: frames of (SQ_FE_NIN samples, then 1 gap flag), int16 little endian, at SQ_FE_FS_IN Hz:
 *   ppg [ppg2] [acc_x acc_y acc_z] gap   (SQ_FE_N_PPG PPG sensors; gap != 0: the time step is a dropout)
 * The pipeline takes the SQ_FE_N_PPG sensors interleaved per time step (ppg, ppg2, ppg, ppg2, ...).
 * CHUNKS: samples per push, or a comma-separated cycle of sizes ("1,7,0,125": zero-length pushes are
 * allowed), each at most SQ_EXAMPLE_MAX_CHUNK.
 * Output, one line per hop: index hr_mbpm lo_mbpm hi_mbpm conf_q15 flagged_q15 valid no_pulse
 * (test_vectors/expected.txt holds these lines for test_vectors/recording.bin; any chunking gives them).
 * These are the raw results, for the parity check: a display would hold the last valid hr_mbpm through
 * results with valid = 0 (README, "Invalid windows").
 * Exit status: 0 ok, 2 I/O or argument error, 3 pipeline error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sq_pipeline.h"

#ifndef SQ_EXAMPLE_MAX_CHUNK
#define SQ_EXAMPLE_MAX_CHUNK 512
#endif
#ifndef SQ_EXAMPLE_CHUNKS
#define SQ_EXAMPLE_CHUNKS "25"
#endif
#ifndef SQ_EXAMPLE_INPUT
#define SQ_EXAMPLE_INPUT "recording.bin"
#endif
#define SQ_EX_FRAME (SQ_FE_NIN + 1)
#define SQ_EX_MAX_SIZES 16

static sq_pipeline_t pipe_state;                        /* ~SQ_PL_STATE_BYTES of RAM */
static int16_t frames[SQ_EXAMPLE_MAX_CHUNK * SQ_EX_FRAME];
static int16_t ppg[SQ_FE_N_PPG * SQ_EXAMPLE_MAX_CHUNK];
static int16_t acc[3 * SQ_EXAMPLE_MAX_CHUNK];
static uint8_t gap[SQ_EXAMPLE_MAX_CHUNK];
static sq_result_t results[SQ_PL_MAX_RESULTS(SQ_EXAMPLE_MAX_CHUNK)];

/* recording.bin is little endian: a big-endian host or core swaps the bytes of each sample it reads */
static int big_endian(void)
{
    const uint16_t one = 1u;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 0u;
}

static int parse_sizes(const char *s, int *sizes)
{
    int n = 0;
    while (*s && n < SQ_EX_MAX_SIZES) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > SQ_EXAMPLE_MAX_CHUNK) return -1;
        sizes[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0') return -1;
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : SQ_EXAMPLE_INPUT;
    int sizes[SQ_EX_MAX_SIZES], n_sizes, turn = 0, nonzero = 0, i;
    const int swap = big_endian();
    FILE *f;
    n_sizes = parse_sizes(argc > 2 ? argv[2] : SQ_EXAMPLE_CHUNKS, sizes);
    for (i = 0; i < n_sizes; ++i) nonzero |= sizes[i] > 0;
    if (n_sizes <= 0 || !nonzero) {
        fprintf(stderr, "example: bad chunk sizes (1..%d, comma-separated)\n", SQ_EXAMPLE_MAX_CHUNK);
        return 2;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "example: cannot open %s\n", path);
        return 2;
    }
    /* a real board passes its own rate and sensor count: a mismatch with the export is refused */
    if (sq_pipeline_init_device(&pipe_state, SQ_PL_FS_IN_MHZ, SQ_FE_N_PPG) != SQ_PL_OK) return 3;
    for (;;) {
        const int want = sizes[turn++ % n_sizes];
        const size_t frame_bytes = sizeof(int16_t) * SQ_EX_FRAME;
        const size_t got = fread(frames, 1, frame_bytes * (size_t)want, f);
        int n = (int)(got / frame_bytes), k, j;
        if (ferror(f) || got % frame_bytes != 0) {       /* a read error, or a file cut inside a frame */
            fprintf(stderr, "example: %s: %s\n", path, ferror(f) ? "read error"
                    : "ends inside a frame (its size is not a whole number of frames: truncated?)");
            fclose(f);
            return 2;
        }
        for (j = 0; j < n * SQ_EX_FRAME && swap; ++j) {
            const uint16_t u = (uint16_t)frames[j];
            frames[j] = (int16_t)(uint16_t)((u >> 8) | (u << 8));
        }
        for (j = 0; j < n; ++j) {                       /* de-interleave one chunk */
            const int16_t *fr = &frames[j * SQ_EX_FRAME];
            ppg[SQ_FE_N_PPG * j] = fr[0];                 /* the PPG sensors, interleaved */
#if SQ_FE_N_PPG == 2
            ppg[2 * j + 1] = fr[1];
#endif
#if SQ_FE_NCH > 1
            acc[3 * j] = fr[SQ_FE_N_PPG];
            acc[3 * j + 1] = fr[SQ_FE_N_PPG + 1];
            acc[3 * j + 2] = fr[SQ_FE_N_PPG + 2];
#endif
            gap[j] = (uint8_t)(fr[SQ_EX_FRAME - 1] != 0);
        }
        k = sq_pipeline_push(&pipe_state, ppg, acc, gap, n, results, SQ_PL_MAX_RESULTS(SQ_EXAMPLE_MAX_CHUNK));
        if (k < 0) {
            fprintf(stderr, "example: sq_pipeline_push returned %d\n", k);
            fclose(f);
            return 3;
        }
        for (j = 0; j < k; ++j) {
            const sq_result_t *r = &results[j];
            printf("%lu %ld %ld %ld %u %u %u %u\n", (unsigned long)r->index, (long)r->hr_mbpm, (long)r->lo_mbpm,
                   (long)r->hi_mbpm, (unsigned)r->conf_q15, (unsigned)r->flagged_q15, (unsigned)r->valid,
                   (unsigned)r->no_pulse);
        }
        if (n < want || (want > 0 && feof(f))) break;
    }
    fclose(f);
    return 0;
}
