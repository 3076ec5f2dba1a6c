/* RouterArena's arena score (arXiv:2510.00202; RouteWorks/RouterArena
 * llm_evaluation/run.py compute_arena_score), the outcome family's
 * arena_score: accuracy A in [0, 1] and cost c in USD per 1,000 queries,
 *
 *   C = (log2 c_max - log2 c) / (log2 c_max - log2 c_min), c clamped to [c_min, c_max]
 *   S = (1 + beta) A C / (beta A + C)
 *
 * with RouterArena's c_min = 0.0044, c_max = 200, beta = 0.1 by default.
 * Where compute_arena_score raises (c <= 0, A outside [0, 1]) or divides
 * by zero (A = 0 at c >= c_max), the score is NaN. */
#ifndef ROUTESIM_ARENA_SCORE_H
#define ROUTESIM_ARENA_SCORE_H

#include <math.h>

#define RS_ARENA_BETA 0.1
#define RS_ARENA_COST_MIN 0.0044
#define RS_ARENA_COST_MAX 200.0

static inline double rs_arena_score(double accuracy, double cost_per_1k, double beta)
{
    if (!(cost_per_1k > 0) || !(accuracy >= 0 && accuracy <= 1))
        return NAN;
    double c = fmin(fmax(cost_per_1k, RS_ARENA_COST_MIN), RS_ARENA_COST_MAX);
    double normalised = (log2(RS_ARENA_COST_MAX) - log2(c)) / (log2(RS_ARENA_COST_MAX) - log2(RS_ARENA_COST_MIN));
    double denominator = beta * accuracy + normalised;
    return denominator != 0 ? (1 + beta) * accuracy * normalised / denominator : NAN;
}

#endif
