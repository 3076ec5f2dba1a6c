/* rs_router_scores with a lookup for bfloat16 logits: a float whose low 16
 * bits are zero is one of 65536 bfloat16 values, and traces are mostly
 * stored as bfloat16, so a table per scoring holds every score such a row
 * needs: the very double rs_router_score returns for that logit (the same
 * function fills it), read instead of an exp() per expert. */
#include "metrics/router_probs.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define BF16_VALUES 65536

static double sigmoid_scores[BF16_VALUES], sqrt_softplus_scores[BF16_VALUES];
static pthread_once_t sigmoid_once = PTHREAD_ONCE_INIT, sqrt_softplus_once = PTHREAD_ONCE_INIT;

static float bf16_logit(uint32_t b)
{
    uint32_t bits = b << 16;
    float z;
    memcpy(&z, &bits, sizeof z);
    return z;
}

static void fill_sigmoid(void)
{
    for (uint32_t b = 0; b < BF16_VALUES; b++)
        sigmoid_scores[b] = rs_router_score(RS_SCORING_SIGMOID, bf16_logit(b));
}

static void fill_sqrt_softplus(void)
{
    for (uint32_t b = 0; b < BF16_VALUES; b++)
        sqrt_softplus_scores[b] = rs_router_score(RS_SCORING_SQRT_SOFTPLUS, bf16_logit(b));
}

double rs_router_scores(rs_scoring scoring, const float *z, int E, double *s)
{
    /* any scoring but sqrt_softplus scores with the sigmoid (rs_router_score) */
    const int softplus = scoring == RS_SCORING_SQRT_SOFTPLUS;
    pthread_once(softplus ? &sqrt_softplus_once : &sigmoid_once, softplus ? fill_sqrt_softplus : fill_sigmoid);
    const double *table = softplus ? sqrt_softplus_scores : sigmoid_scores;
    double sum = 0.0;
    for (int e = 0; e < E; e++) {
        uint32_t bits;
        memcpy(&bits, &z[e], sizeof bits);
        s[e] = (bits & 0xffffu) == 0 ? table[bits >> 16] : rs_router_score(scoring, z[e]);
        sum += s[e];
    }
    return sum;
}
