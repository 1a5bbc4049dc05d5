/*
 * insn_count.c - a QEMU TCG plugin that counts guest INSTRUCTIONS (not cycles) executed between two
 * marker functions of the firmware, e.g. sq_bench_begin() and sq_bench_end().
 *
 *   qemu-system-arm ... -plugin ./insn_count.so,begin=0x1234,end=0x1256,out=counts.txt
 *
 * begin / end are the entry addresses of the marker functions (from `arm-none-eabi-nm`, Thumb bit
 * ignored). A marker function is only ever entered by a call, so a translation block (TB) starts at its
 * entry address. Every executed TB adds its instruction count while counting is on; entering the
 * `begin` TB switches counting on (its few instructions are counted), entering the `end` TB switches
 * it off and appends one line "<instructions>" per begin/end pair to `out`. The count is deterministic:
 * the same ELF gives the same numbers on every run.
 *
 * Debian ships no qemu-plugin.h, so the few plugin API declarations used are written out below
 * (QEMU plugin API version 1, QEMU 7.x/8.x: include/qemu/qemu-plugin.h).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the subset of the QEMU plugin API this plugin uses ---- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;        /* opaque here: only passed through */
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_outs(const char *string);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* ---- plugin state (the boards used are single-core) ---- */
static uint64_t begin_addr = UINT64_MAX, end_addr = UINT64_MAX;
static FILE *out;
static bool counting;
static uint64_t count, total, pairs, unmatched;

/* userdata of a TB: its instruction count in the low 32 bits, a marker tag in the top 2 bits */
#define TAG_BEGIN (1ull << 62)
#define TAG_END (1ull << 63)

static void tb_exec(unsigned int vcpu, void *udata)
{
    uint64_t u = (uint64_t)(uintptr_t)udata;
    (void)vcpu;
    if (u & TAG_END) {
        if (counting) {
            fprintf(out, "%" PRIu64 "\n", count);
            fflush(out);
            total += count;
            pairs++;
        } else {
            unmatched++;
        }
        counting = false;
        return;
    }
    if (u & TAG_BEGIN) {
        if (counting)
            unmatched++;
        counting = true;
        count = 0;
    }
    if (counting)
        count += u & 0xffffffffu;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint64_t pc = qemu_plugin_tb_vaddr(tb) & ~1ull;
    uint64_t u = (uint64_t)qemu_plugin_tb_n_insns(tb);
    (void)id;
    if (pc == begin_addr)
        u |= TAG_BEGIN;
    else if (pc == end_addr)
        u |= TAG_END;
    /* sizeof(void *) == 8 on the hosts this runs on: the tag bits survive the cast */
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)u);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    fprintf(out, "# pairs=%" PRIu64 " total=%" PRIu64 " unmatched=%" PRIu64 " open=%d\n", pairs, total,
            unmatched, counting ? 1 : 0);
    fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    const char *path = NULL;
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "begin=", 6) == 0)
            begin_addr = strtoull(argv[i] + 6, NULL, 0) & ~1ull;
        else if (strncmp(argv[i], "end=", 4) == 0)
            end_addr = strtoull(argv[i] + 4, NULL, 0) & ~1ull;
        else if (strncmp(argv[i], "out=", 4) == 0)
            path = argv[i] + 4;
        else {
            fprintf(stderr, "insn_count: unknown argument '%s' (begin=ADDR,end=ADDR,out=FILE)\n", argv[i]);
            return -1;
        }
    }
    if (begin_addr == UINT64_MAX || end_addr == UINT64_MAX || path == NULL) {
        fprintf(stderr, "insn_count: needs begin=ADDR,end=ADDR,out=FILE\n");
        return -1;
    }
    out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "insn_count: cannot open %s\n", path);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
