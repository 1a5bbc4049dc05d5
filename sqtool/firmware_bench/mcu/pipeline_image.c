/*
 * pipeline_image.c - the smallest firmware that links the whole pipeline (front end, network, decoder, glue): one
 * init and one push, no stdio. With -DSQ_IMAGE_EMPTY the same image without the pipeline: the difference of the two
 * images' flash is what the pipeline adds to a firmware (its code and const data, and the runtime helpers only it
 * calls). benchmarks/kit_other_cores.py measures it; sq_image_state's symbol size is sizeof(sq_pipeline_t) on the
 * target. It is linked, not run.
 */
#include <stdint.h>

#include "sq_pipeline.h"

#ifdef SQ_IMAGE_EMPTY
int main(void)
{
    return 0;
}
#else
static sq_pipeline_t sq_image_state;
static int16_t sq_image_ppg[SQ_FE_N_PPG];
static int16_t sq_image_acc[3];
static uint8_t sq_image_gap[1];
static sq_result_t sq_image_res[2];

int main(void)
{
    int k = sq_pipeline_init_device(&sq_image_state, SQ_PL_FS_IN_MHZ, SQ_FE_N_PPG);
    if (k == SQ_PL_OK) {
        k = sq_pipeline_push(&sq_image_state, sq_image_ppg, sq_image_acc, sq_image_gap, 1, sq_image_res, 2);
    }
    return k < 0 ? 1 : 0;
}
#endif
