/*
 * harness_main.c - run the generated model (sq_model.h API) on a batch of int8 windows.
 *
 *   input  file: N windows back to back, SQ_INPUT_SIZE int8 each (channels-last, already quantized)
 *   output file: N x (SQ_OUTPUT_SIZE int8) results
 *   stats  file: "windows=N\nstatus=S\nstack_high_water=B\n" (S = first non-zero sq_model_run status)
 *
 * On the MCU the files are opened through semihosting relative to QEMU's working directory (fixed
 * names sq_in.bin, sq_out.bin, sq_stats.txt); on the host they are argv[1..3]. Each inference is
 * bracketed by sq_bench_begin()/sq_bench_end() so the QEMU plugin (or valgrind) counts exactly it.
 * Exit status: 0 ok, 2 I/O error, 3 the model returned an error.
 */
#include <stdint.h>
#include <stdio.h>

#include "sq_bench.h"
#include "sq_model.h"

static int8_t window[SQ_INPUT_SIZE];
static int8_t result[SQ_OUTPUT_SIZE];

int main(int argc, char **argv)
{
    const char *in_path = "sq_in.bin", *out_path = "sq_out.bin", *stats_path = "sq_stats.txt";
    if (argc >= 4) {
        in_path = argv[1];
        out_path = argv[2];
        stats_path = argv[3];
    }
    FILE *fin = fopen(in_path, "rb");
    FILE *fout = fopen(out_path, "wb");
    if (!fin || !fout) {
        fprintf(stderr, "sq_bench: cannot open %s or %s\n", in_path, out_path);
        return 2;
    }
    sq_stack_paint();
    long n = 0;
    int status = 0;
    while (fread(window, 1, sizeof window, fin) == sizeof window) {
        sq_bench_begin();
        int rc = sq_model_run(window, result);
        sq_bench_end();
        if (rc != 0 && status == 0)
            status = rc;
        if (fwrite(result, 1, sizeof result, fout) != sizeof result) {
            fprintf(stderr, "sq_bench: write failed\n");
            return 2;
        }
        n++;
    }
    uint32_t hwm = sq_stack_high_water();
    fclose(fin);
    fclose(fout);
    FILE *fs = fopen(stats_path, "w");
    if (!fs)
        return 2;
    fprintf(fs, "windows=%ld\nstatus=%d\nstack_high_water=%lu\n", n, status, (unsigned long)hwm);
    fclose(fs);
    return status ? 3 : 0;
}
