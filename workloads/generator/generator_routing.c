/* The preset's own routing rule, which `record_topk=1` writes as
 * /router/topk_ids and _weights. The sigmoid rule is DeepSeek-V3's
 * (routers/token_choice/deepseek_v3.c) computed the same way, float32 with
 * the same sigmoid and the same group step (core/group_select.h), so the
 * `native` router reproduces the recorded ids exactly. */
#include "workloads/generator/generator_model.h"

#include <math.h>
#include <string.h>

#include "core/group_select.h"
#include "routesim/fastmath.h"
#include "routesim/select.h"

/* The k largest scores, best first; ties go to the lower index. */
static void top_k(const float *score, int E, int k, int32_t *ids)
{
    int n = 0;
    for (int e = 0; e < E; e++) {
        const float v = score[e];
        if (n == k && !(v > score[ids[k - 1]]))
            continue;
        int pos = n < k ? n++ : k - 1;
        while (pos > 0 && v > score[ids[pos - 1]]) {
            ids[pos] = ids[pos - 1];
            pos--;
        }
        ids[pos] = e;
    }
}

/* s = sigmoid(z); s + bias selects, within the topk_group best groups when
 * grouped; the unbiased s weigh, renormalised when norm_topk, times the
 * routed scaling factor. */
static void sigmoid_rule(const rs_gen_config *c, const float *bias, const float *z, float *score, int32_t *ids,
                         float *weights)
{
    const int E = c->E, k = c->k;
    float biased[RS_GEN_MAX_EXPERTS], vals[RS_GEN_MAX_EXPERTS];
    for (int e = 0; e < E; e++) {
        score[e] = rs_fast_sigmoidf(z[e]);
        biased[e] = score[e] + (bias ? bias[e] : 0.0f);
    }
    if (c->n_group > 1) {
        double group_score[RS_MAX_GROUPS];
        uint8_t keep[RS_MAX_GROUPS];
        const int size = E / c->n_group;
        rs_group_scores(biased, c->n_group, size, 1, group_score);
        rs_keep_top_groups(group_score, c->n_group, c->topk_group, keep);
        rs_mask_groups(biased, c->n_group, size, keep);
    }
    rs_topk_indices(biased, E, k, ids, vals);
    float sum = 0.0f;
    for (int i = 0; i < k; i++)
        sum += score[ids[i]];
    const float scale = (float)c->routed_scaling_factor;
    for (int i = 0; i < k; i++)
        weights[i] = c->norm_topk ? score[ids[i]] / sum * scale : score[ids[i]] * scale;
}

void rs_gen_native_topk(const rs_gen_config *c, const float *bias, const float *z, float *score, int32_t *ids,
                        float *weights)
{
    const int E = c->E, k = c->k;
    if (c->sigmoid) {
        sigmoid_rule(c, bias, z, score, ids, weights);
        return;
    }
    top_k(z, E, k, ids);
    float max = z[0];
    for (int e = 1; e < E; e++)
        max = z[e] > max ? z[e] : max;
    double total = 0;
    for (int e = 0; e < E; e++)
        total += exp((double)z[e] - max);
    for (int i = 0; i < k; i++)
        weights[i] = (float)(exp((double)z[ids[i]] - max) / total);
    if (c->norm_topk) {
        double sum = 0;
        for (int i = 0; i < k; i++)
            sum += weights[i];
        for (int i = 0; i < k; i++)
            weights[i] = (float)(weights[i] / sum);
    }
}
