/* One token's decision row, for routers that decide token by token (dynamic
 * k, sampled top-k, the stateful balancing rules): the row and the logits of
 * a token, a skipped token's row padded, and rows filled from a ranking.
 * Static inline, so the per-token loops stay plain loops. */
#ifndef ROUTESIM_TOKEN_ROW_H
#define ROUTESIM_TOKEN_ROW_H

#include <math.h>
#include <stdint.h>

#include "routesim/chunk.h"
#include "routesim/select.h"

/* 1 when the token's logits were found not finite (its row is cleared by the engine). */
static inline int rs_token_skipped(const rs_chunk *c, int t) { return c->valid && !c->valid[t]; }

/* Points *ids and *w at the decision row of token t at layer and returns
 * its logits; for a skipped token, pads the row (-1 / 0) and returns NULL. */
static inline const float *rs_token_row(const rs_chunk *c, rs_decisions *out, int t, int layer, int32_t **ids,
                                        float **w)
{
    size_t row = rs_decision_row(c, out, t, layer);
    *ids = out->ids + row;
    *w = out->weights + row;
    if (rs_token_skipped(c, t)) {
        rs_pad_row(*ids, *w, 0, out->kmax);
        return NULL;
    }
    return rs_chunk_logits(c, t, layer);
}

/* The first m ranked experts, each weighted by its probability p_e (not
 * renormalised), then -1 padding to kmax. */
static inline void rs_row_ranked_probs(int32_t *ids, float *w, const int32_t *order, const float *p, int m, int kmax)
{
    for (int j = 0; j < m; j++) {
        ids[j] = order[j];
        w[j] = p[ids[j]];
    }
    rs_pad_row(ids, w, m, kmax);
}

/* The first m >= 1 ranked experts weighted by the softmax of v over them,
 * exp(v_e - v_first) / sum, in double. */
static inline void rs_row_ranked_softmax(int32_t *ids, float *w, const int32_t *order, const float *v, int m)
{
    double top = v[order[0]], sum = 0.0;
    for (int j = 0; j < m; j++)
        sum += exp((double)v[order[j]] - top);
    for (int j = 0; j < m; j++) {
        ids[j] = order[j];
        w[j] = (float)(exp((double)v[ids[j]] - top) / sum);
    }
}

#endif
