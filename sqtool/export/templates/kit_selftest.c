/*
 * example/selftest.c - the bit-exactness check for a board without a file system or stdio.
 *
 *   int sq_selftest(void);                      (declared in c/sq_pipeline.h)
 *
 * Streams the test recording of test_vectors/sq_vectors.h (recording.bin as a C array: synthetic signal,
 * no subject data) through the pipeline in changing chunk sizes (1, 7, 0, 25, 125 samples per push) and
 * compares every field of every result with the expected results (expected.txt as a C array).
 * Then the pulse-presence check (the recording has a pulse throughout: its no_pulse is always 0): it re-initialises
 * the pipeline and pushes SQ_VEC_NOISE_N_SAMPLES time steps of noise that it generates itself (xorshift32 from
 * SQ_VEC_NOISE_SEED, every input -2048 .. 2047, no gaps; sqtool's kit.xorshift_noise), in the same chunk sizes, and
 * compares the first result with no_pulse = 1, their count and a checksum of every field of every result (FNV-1a)
 * with the numbers sqtool's reference gave on the same stream (a few constants in sq_vectors.h, no flash for data).
 * With an accelerometer resampler (an export with --device-acc-fs: the vectors define SQ_VEC_ACC_N_IN) it then
 * streams the accelerometer vectors (test_vectors/acc_in.bin as a C array) through sq_acc_rs_push in chunks of 1, 5,
 * 7 and 64 samples and compares every output with acc_expected.bin's.
 * Returns 0 when all are equal; k > 0: result k - 1 is the first that differs (or is missing, or is one
 * too many); SQ_SELFTEST_ERR_NO_PULSE (-17): no_pulse on the noise stream differs (a detector that never, or always,
 * reports); SQ_SELFTEST_ERR_NOISE (-18): another field or the number of results on the noise stream differs;
 * SQ_SELFTEST_ERR_ACC (-16): the resampler's outputs differ from the vectors (or it refused a push);
 * another k < 0: the SQ_PL_ERR_* a push or the init returned. Uses no stdio, no malloc, no float.
 *
 * In your firmware: compile this file with the c/ sources and -Ic -Itest_vectors, call sq_selftest() once
 * (its pipeline state and buffers are static: about sizeof(sq_pipeline_t) + 2 KB of RAM, plus the
 * network arena it shares with your own pipeline: do not run both at once; the recording takes
 * 2 * SQ_VEC_N_SAMPLES * SQ_VEC_FRAME bytes of flash). With -DSQ_SELFTEST_MAIN it has a main() whose
 * exit status is 0 when bit-exact (`make selftest` on the host), 1..99 the first bad result + 1, 101 the
 * accelerometer resampler, 102 no_pulse on the noise stream, 103 another field on it, 100 any other error.
 */
#include <stddef.h>
#include <stdint.h>

#include "sq_pipeline.h"
#include "sq_vectors.h"
#ifdef SQ_VEC_ACC_N_IN
#include "sq_acc_resampler.h"
#endif

#define SQ_ST_MAX_CHUNK 125
#define SQ_ST_N_SIZES 5

#if SQ_VEC_FRAME != SQ_FE_NIN + 1
#error "test_vectors/sq_vectors.h is for another sensor layout than c/sq_pipeline.h: export them together"
#endif
#ifndef SQ_VEC_NOISE_N_SAMPLES
#error "test_vectors/sq_vectors.h is older than example/selftest.c (no noise stream): export them together"
#endif

static sq_pipeline_t sq_st_pipe;
static int16_t sq_st_ppg[SQ_FE_N_PPG * SQ_ST_MAX_CHUNK];
static int16_t sq_st_acc[3 * SQ_ST_MAX_CHUNK];
static uint8_t sq_st_gap[SQ_ST_MAX_CHUNK];
static sq_result_t sq_st_res[SQ_PL_MAX_RESULTS(SQ_ST_MAX_CHUNK)];
static uint32_t sq_st_rng;                              /* the noise stream's xorshift32 state */
static int32_t sq_st_n_res, sq_st_first, sq_st_hops;    /* a stream's results; the noise's no_pulse: first, count */
static uint32_t sq_st_sum;                              /* the noise's results: FNV-1a of every field */

/* 1 when result r equals expected line i (index hr_mbpm lo_mbpm hi_mbpm conf_q15 flagged_q15 valid
 * no_pulse) */
static int sq_st_same(const sq_result_t *r, int32_t i)
{
    const int32_t *e = sq_vec_expected[i];
    return (int32_t)r->index == e[0] && r->hr_mbpm == e[1] && r->lo_mbpm == e[2] && r->hi_mbpm == e[3] &&
           (int32_t)r->conf_q15 == e[4] && (int32_t)r->flagged_q15 == e[5] && (int32_t)r->valid == e[6] &&
           (int32_t)r->no_pulse == e[7];
}

#ifdef SQ_VEC_ACC_N_IN
#define SQ_ST_ACC_MAX_CHUNK 64
static sq_acc_rs_t sq_st_ars;
static int16_t sq_st_acc_out[3 * SQ_AR_MAX_OUT(SQ_ST_ACC_MAX_CHUNK)];

/* The accelerometer resampler against the vectors in chunks of 1, 5, 7 and 64 samples: 0 when every output of every
 * chunking equals sq_vec_acc_expected, else SQ_SELFTEST_ERR_ACC. */
static int sq_st_acc_resampler(void)
{
    static const int32_t sizes[4] = {1, 5, 7, SQ_ST_ACC_MAX_CHUNK};
    int32_t s;
    for (s = 0; s < 4; ++s) {
        int32_t pos = 0, n_out = 0;
        if (sq_acc_rs_init_fs(&sq_st_ars, SQ_AR_FS_ACC_MHZ) != SQ_AR_OK) {
            return SQ_SELFTEST_ERR_ACC;
        }
        while (pos < SQ_VEC_ACC_N_IN) {
            const int32_t left = SQ_VEC_ACC_N_IN - pos;
            const int32_t n = sizes[s] < left ? sizes[s] : left;
            const int k = sq_acc_rs_push(&sq_st_ars, &sq_vec_acc_in[3 * pos], (int)n, sq_st_acc_out,
                                         SQ_AR_MAX_OUT(SQ_ST_ACC_MAX_CHUNK));
            int32_t j;
            if (k < 0 || n_out + k > SQ_VEC_ACC_N_OUT) {
                return SQ_SELFTEST_ERR_ACC;
            }
            for (j = 0; j < 3 * k; ++j) {
                if (sq_st_acc_out[j] != sq_vec_acc_expected[3 * n_out + j]) {
                    return SQ_SELFTEST_ERR_ACC;
                }
            }
            n_out += k;
            pos += n;
        }
        if (n_out != SQ_VEC_ACC_N_OUT) {
            return SQ_SELFTEST_ERR_ACC;
        }
    }
    return 0;
}
#endif

/* The next value of the noise stream: xorshift32 (13, 17, 5), the new state's top 12 bits less 2048. */
static int16_t sq_st_noise(void)
{
    uint32_t x = sq_st_rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    sq_st_rng = x;
    return (int16_t)((int32_t)(x >> 20) - 2048);
}

/* One chunk of n time steps from pos into the push buffers: the recording's (de-interleaved), or with noise the next
 * values of the noise stream in the frame's order (the PPG sensors, then acc x, y, z) and no gaps. */
static void sq_st_fill(int32_t pos, int32_t n, int noise)
{
    int32_t j;
    for (j = 0; j < n; ++j) {
        const int16_t *fr = noise ? NULL : &sq_vec_recording[(pos + j) * SQ_VEC_FRAME];
        int32_t c;
        for (c = 0; c < SQ_FE_N_PPG; ++c) {
            sq_st_ppg[SQ_FE_N_PPG * j + c] = noise ? sq_st_noise() : fr[c];
        }
#if SQ_FE_NCH > 1
        for (c = 0; c < 3; ++c) {
            sq_st_acc[3 * j + c] = noise ? sq_st_noise() : fr[SQ_FE_N_PPG + c];
        }
#endif
        sq_st_gap[j] = (uint8_t)(!noise && fr[SQ_VEC_FRAME - 1] != 0);
    }
}

/* The noise stream's result r (number k): its no_pulse and every field into sq_st_first, sq_st_hops, sq_st_sum. */
static void sq_st_tally(const sq_result_t *r, int32_t k)
{
    const uint32_t f[8] = {(uint32_t)r->index, (uint32_t)r->hr_mbpm, (uint32_t)r->lo_mbpm, (uint32_t)r->hi_mbpm,
                           (uint32_t)r->conf_q15, (uint32_t)r->flagged_q15, (uint32_t)r->valid, (uint32_t)r->no_pulse};
    int32_t j;
    for (j = 0; j < 8; ++j) {
        sq_st_sum = (sq_st_sum ^ f[j]) * 16777619u;
    }
    if (r->no_pulse) {
        sq_st_first = sq_st_first < 0 ? k : sq_st_first;
        ++sq_st_hops;
    }
}

/* n_samples time steps of the recording (noise 0: each result compared with the expected one) or of the noise stream
 * (noise 1: tallied) through a freshly initialised pipeline in chunks of 1, 7, 0, 25, 125; sq_st_n_res counts the
 * results. 0, the SQ_PL_ERR_* of the init or a push, or k + 1 when the recording's result k differs. */
static int sq_st_stream(int32_t n_samples, int noise)
{
    static const int32_t sizes[SQ_ST_N_SIZES] = {1, 7, 0, 25, SQ_ST_MAX_CHUNK};
    int32_t pos = 0, turn = 0;
    int rc = sq_pipeline_init_device(&sq_st_pipe, SQ_PL_FS_IN_MHZ, SQ_FE_N_PPG);
    if (rc != SQ_PL_OK) {
        return rc < 0 ? rc : -1;
    }
    sq_st_n_res = 0;
    sq_st_rng = SQ_VEC_NOISE_SEED;
    sq_st_first = -1;
    sq_st_hops = 0;
    sq_st_sum = 2166136261u;
    while (pos < n_samples) {
        const int32_t left = n_samples - pos, want = sizes[turn++ % SQ_ST_N_SIZES];
        const int32_t n = want < left ? want : left;
        int32_t j;
        int k;
        sq_st_fill(pos, n, noise);
        k = sq_pipeline_push(&sq_st_pipe, sq_st_ppg, sq_st_acc, sq_st_gap, (int)n, sq_st_res,
                             SQ_PL_MAX_RESULTS(SQ_ST_MAX_CHUNK));
        if (k < 0) {
            return k;
        }
        for (j = 0; j < k; ++j, ++sq_st_n_res) {
            if (noise) {
                sq_st_tally(&sq_st_res[j], sq_st_n_res);
            } else if (sq_st_n_res >= SQ_VEC_N_RESULTS || !sq_st_same(&sq_st_res[j], sq_st_n_res)) {
                return (int)sq_st_n_res + 1;
            }
        }
        pos += n;
    }
    return 0;
}

int sq_selftest(void)
{
    int rc = sq_st_stream(SQ_VEC_N_SAMPLES, 0);
    if (rc != 0) {
        return rc;
    }
    if (sq_st_n_res != SQ_VEC_N_RESULTS) {
        return (int)sq_st_n_res + 1;
    }
    rc = sq_st_stream(SQ_VEC_NOISE_N_SAMPLES, 1);
    if (rc != 0) {
        return rc;
    }
    if (sq_st_first != SQ_VEC_NOISE_FIRST_NO_PULSE || sq_st_hops != SQ_VEC_NOISE_NO_PULSE) {
        return SQ_SELFTEST_ERR_NO_PULSE;
    }
    if (sq_st_n_res != SQ_VEC_NOISE_N_RESULTS || sq_st_sum != SQ_VEC_NOISE_CHECKSUM) {
        return SQ_SELFTEST_ERR_NOISE;
    }
#ifdef SQ_VEC_ACC_N_IN
    return sq_st_acc_resampler();
#else
    return 0;
#endif
}

#ifdef SQ_SELFTEST_MAIN
int main(void)
{
    const int r = sq_selftest();
    if (r == SQ_SELFTEST_ERR_ACC) {
        return 101;                                     /* the accelerometer resampler */
    }
    if (r == SQ_SELFTEST_ERR_NO_PULSE || r == SQ_SELFTEST_ERR_NOISE) {
        return r == SQ_SELFTEST_ERR_NO_PULSE ? 102 : 103;   /* the noise stream: no_pulse; another field */
    }
    return r == 0 ? 0 : (r > 0 && r < 100 ? r : 100);  /* exit status 1..99: the first bad result + 1 */
}
#endif
