/* sq_bench.h - what the benchmark harness needs from the board support (startup.c) */
#ifndef SQ_BENCH_H
#define SQ_BENCH_H
#include <stdint.h>

/* Marker functions: the QEMU plugin counts instructions executed from a call of sq_bench_begin() to
 * the next call of sq_bench_end() (looked up by name in the ELF). Never inlined. */
void sq_bench_begin(void);
void sq_bench_end(void);

/* Stack painting: fill the unused stack below the caller with a pattern, later find the deepest
 * word that was overwritten. Returns the high-water mark in bytes (0 on the host build). */
void sq_stack_paint(void);
uint32_t sq_stack_high_water(void);

#endif
