/* ------------------------------------------------------------------ sq_kernel_mean.c (sqtool template) */

/* Mean over time: x (t, c) -> y (c); integer sum, one requantization (TFLite integer MEAN). */
static void sq_mean(const int8_t *x, int32_t t, int32_t c, int8_t *y, const int32_t *rq, int32_t in_zp,
                    int32_t out_zp)
{
    int32_t ti, ci;
    for (ci = 0; ci < c; ++ci) {
        const int8_t *xp = x + ci;
        int32_t acc = -t * in_zp;
        for (ti = 0; ti < t; ++ti, xp += c) {
            acc += *xp;
        }
        y[ci] = sq_clamp(sq_requant(acc, rq) + out_zp, -128, 127);
    }
}
