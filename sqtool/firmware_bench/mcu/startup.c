/*
 * startup.c - board support for the benchmark firmware on QEMU's Cortex-M boards.
 *
 * picolibc's crt0 (`--crt0=hosted`) does the reset work: enable the FPU, copy .data, zero .bss, set up
 * TLS, call main() and exit() with its return value through semihosting, which becomes QEMU's exit
 * status. This file adds what a benchmark needs on top:
 *
 *   - fault handlers that report the fault over semihosting and EXIT with a distinctive status
 *     (HardFault 201, MemManage 202, BusFault 203, UsageFault 204) instead of spinning forever, so a
 *     crashing model is a reported failure, not a hang;
 *   - the marker functions the instruction-counting plugin looks for;
 *   - stack painting: the stack below the caller is filled with a pattern before inference and scanned
 *     after it; the deepest overwritten word gives the stack high-water mark.
 *
 * The host build (SQ_HOST) keeps only the markers (used by valgrind's --toggle-collect).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sq_bench.h"

__attribute__((noinline)) void sq_bench_begin(void) { __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void sq_bench_end(void) { __asm__ volatile("" ::: "memory"); }

#ifdef SQ_HOST

void sq_stack_paint(void) {}
uint32_t sq_stack_high_water(void) { return 0; }

#else

#define PAINT 0xC5C5C5C5u
#define MARGIN 64u                  /* bytes left unpainted below the caller's stack pointer */

extern uint32_t __stack[];          /* top of the stack (initial SP), from the linker script */
extern uint32_t __heap_end[];       /* bottom of the reserved stack region (no heap is used) */

static inline uint32_t *current_sp(void)
{
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

__attribute__((noinline)) void sq_stack_paint(void)
{
    uint32_t *lo = __heap_end, *hi = current_sp() - MARGIN / 4;
    for (volatile uint32_t *p = lo; p < hi; p++)
        *p = PAINT;
}

uint32_t sq_stack_high_water(void)
{
    uint32_t *p = __heap_end;
    while (p < __stack && *p == PAINT)
        p++;
    return (uint32_t)((uintptr_t)__stack - (uintptr_t)p);
}

static void fault_exit(const char *what, int code)
{
    /* semihosting works from handler mode; the message goes to QEMU's stderr */
    fprintf(stderr, "sq_bench: %s\n", what);
    _exit(code);
}

/* picolibc's vector table names these (weak there); declared for -Wmissing-prototypes */
void arm_hardfault_isr(void);
void arm_memmanage_isr(void);
void arm_busfault_isr(void);
void arm_usagefault_isr(void);

void arm_hardfault_isr(void) { fault_exit("HardFault", 201); }
void arm_memmanage_isr(void) { fault_exit("MemManage fault", 202); }
void arm_busfault_isr(void) { fault_exit("BusFault", 203); }
void arm_usagefault_isr(void) { fault_exit("UsageFault", 204); }

#endif
