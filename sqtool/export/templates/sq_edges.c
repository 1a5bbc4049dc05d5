/* ------------------------------------------------------------------ sq_edges.c (sqtool template)
 *
 * The float edges, compiled only with SQ_FLOAT_HELPERS (default 1, see sq_model.h). */
#if SQ_FLOAT_HELPERS

void sq_quantize_input(const float *x, int8_t *q)
{
    int32_t i;
    for (i = 0; i < SQ_INPUT_SIZE; ++i) {
        float v = x[i] / SQ_INPUT_SCALE;
        int32_t r;
        if (!(v >= -1000.0f && v <= 1000.0f)) {        /* out of range, or NaN (-> the real zero) */
            v = v > 0.0f ? 1000.0f : (v < 0.0f ? -1000.0f : 0.0f);
        }
        r = (int32_t)(v >= 0.0f ? v + 0.5f : v - 0.5f) + SQ_INPUT_ZERO_POINT;   /* round half away */
        q[i] = sq_clamp(r, -128, 127);
    }
}

void sq_dequantize_output(const int8_t *q, float *y)
{
    int32_t i;
    for (i = 0; i < SQ_OUTPUT_SIZE; ++i) {
        y[i] = (float)((int32_t)q[i] - SQ_OUTPUT_ZERO_POINT) * SQ_OUTPUT_SCALE;
    }
}
#endif /* SQ_FLOAT_HELPERS */
