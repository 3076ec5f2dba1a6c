#include "sim/engine/kernels.h"

#include <math.h>
#include <string.h>

#include "routesim/fastmath.h"
#include "routesim/vector.h"
#include "sim/engine/softmax_core.h"

float rs_expf(float x) { return rs_fast_expf(x); }

RS_VECTOR_CLONES
void rs_softmax_row(const float *z, float *p, int E, rs_softmax_stat *stat)
{
    double sum, dot;
    const float max = rs_softmax_core(z, p, E, &sum, &dot);
    /* sum >= 1 (the maximum's term) and dot <= 0: both parts of the
     * entropy are >= 0, and nothing cancels */
    const double log_norm = log(sum), shifted_mean = dot / sum;
    stat->lse = (double)max + log_norm;
    stat->mean_logit = (double)max + shifted_mean;
    stat->log_norm = log_norm;
    stat->entropy = log_norm - shifted_mean;
}

void rs_softmax_rows(const float *z, float *p, rs_softmax_stat *stats, size_t rows, int E)
{
    for (size_t r = 0; r < rows; r++)
        rs_softmax_row(z + r * (size_t)E, p + r * (size_t)E, E, &stats[r]);
}

RS_VECTOR_CLONES
int rs_any_nonfinite(const float *x, size_t count)
{
    uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t i = 0; i < count; i++)
        bad |= (rs_float_bits(x[i]) & 0x7f800000u) == 0x7f800000u;
    return bad != 0;
}

int64_t rs_first_nonfinite(const float *x, size_t count)
{
    if (!rs_any_nonfinite(x, count))
        return -1;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(x[i]))
            return (int64_t)i;
    return -1;
}
