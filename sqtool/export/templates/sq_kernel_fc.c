/* ------------------------------------------------------------------ sq_kernel_fc.c (sqtool template) */

/* Fully connected: x (cin) -> y (cout); w (cout, cin); per-tensor requantization rq. */
static void sq_fc(const int8_t *x, int32_t cin, int8_t *y, int32_t cout, const int8_t *w, const int32_t *bias,
                  const int32_t *rq, int32_t in_zp, int32_t out_zp, int32_t act_min, int32_t act_max)
{
    int32_t co, ci;
    for (co = 0; co < cout; ++co) {
        int32_t acc = bias[co];
        for (ci = 0; ci < cin; ++ci) {
            acc += ((int32_t)x[ci] - in_zp) * (int32_t)w[co * cin + ci];
        }
        y[co] = sq_clamp(sq_requant(acc, rq) + out_zp, act_min, act_max);
    }
}
