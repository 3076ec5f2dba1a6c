/* The probability distribution that probability-based metrics read for a
 * router (docs/metrics.md, "Router probabilities"): p = softmax(z) for a
 * softmax-scoring router (the engine's chunk probs), else the router's own
 * scores normalised over the experts, p_e = s_e / sum_j s_j, as DeepSeek-V3
 * normalises its sigmoid affinities for its sequence-wise balance loss
 * (arXiv 2412.19437, s'_{i,t}). Scores are computed in double from the
 * float32 logits, so they do not underflow where softmax would not. */
#ifndef ROUTESIM_METRICS_ROUTER_PROBS_H
#define ROUTESIM_METRICS_ROUTER_PROBS_H

#include <math.h>

#include "routesim/chunk.h"

/* One expert's score s(z) under a scoring other than softmax. */
static inline double rs_router_score(rs_scoring scoring, float z)
{
    if (scoring == RS_SCORING_SQRT_SOFTPLUS) /* softplus(z) = z above 20, as the sqrt_softplus router */
        return sqrt(z > 20.0f ? (double)z : log1p(exp((double)z)));
    return 1.0 / (1.0 + exp(-(double)z));
}

/* s[e] = rs_router_score of every expert of a row; returns their sum (0
 * only if every score underflows: no distribution). The same bits as the
 * plain loop; bfloat16 logits are looked up (router_probs.c). */
double rs_router_scores(rs_scoring scoring, const float *z, int E, double *s);

#endif
