/*
 * pipeline_host.c - sizes of the exported pipeline's types for a host caller (ctypes): `sqtool bench` and
 * `sqtool predict` build this file with the export's c/ sources into a shared library and then call the
 * pipeline's own API (sq_pipeline_init_device, sq_pipeline_push) directly, one push per whole recording.
 * The caller owns the state buffer (sq_pl_host_state_bytes() bytes, 8-byte aligned) and the result array
 * (sq_pl_host_max_results(n) results of sq_pl_host_result_bytes() bytes each).
 */
#include "sq_pipeline.h"

int sq_pl_host_state_bytes(void);
int sq_pl_host_result_bytes(void);
int sq_pl_host_max_results(int n);
long sq_pl_host_fs_in_mhz(void);
int sq_pl_host_channels(void);
int sq_pl_host_ppg_sensors(void);

int sq_pl_host_state_bytes(void) { return SQ_PL_STATE_BYTES; }

int sq_pl_host_result_bytes(void) { return (int)sizeof(sq_result_t); }

int sq_pl_host_max_results(int n) { return SQ_PL_MAX_RESULTS(n); }

long sq_pl_host_fs_in_mhz(void) { return (long)SQ_PL_FS_IN_MHZ; }

int sq_pl_host_channels(void) { return SQ_FE_NCH; }

#ifdef SQ_FE_N_PPG
int sq_pl_host_ppg_sensors(void) { return SQ_FE_N_PPG; }
#else
int sq_pl_host_ppg_sensors(void) { return 1; }          /* exports older than the PPG sensor count: one */
#endif
