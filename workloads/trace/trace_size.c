#include "workloads/trace/trace_size.h"

#include <stdio.h>
#include <string.h>

double rs_trace_layout_bytes(const rs_trace_layout *l, int64_t tokens, int64_t sequences, double *per_token)
{
    const double L = l->num_layers, E = l->num_experts;
    double logit_bytes = l->logits == RS_LOGITS_NONE ? 0 : l->logits == RS_LOGITS_F32 ? 4 : 2;
    double token = L * E * logit_bytes;                              /* /router/logits */
    token += L * l->topk_k * (4.0 + (l->topk_weights ? 4.0 : 0.0)); /* /router/topk_ids, _weights */
    token += (l->token_ids ? 4.0 : 0.0) + (l->phase ? 1.0 : 0.0);   /* /tokens/ids, /tokens/phase */
    token += l->outcome_quality ? 4.0 * E : 0.0;                     /* /outcome/quality */
    token += l->outcome_cost == RS_COST_PER_QUERY ? 4.0 * E : 0.0;   /* /outcome/cost [T, E] */
    double fixed = 8.0 * ((double)sequences + 1) + (l->num_domains > 0 ? 4.0 * (double)sequences : 0.0);
    fixed += l->outcome_cost == RS_COST_PER_MODEL ? 4.0 * E : 0.0;
    fixed += l->logits != RS_LOGITS_NONE ? 4.0 * L * E : 0.0; /* /router/bias, when the writer gets one */
    if (per_token)
        *per_token = token;
    return token * (double)tokens + fixed;
}

int rs_trace_size_check(const char *path, const rs_trace_layout *layout, int64_t tokens, int64_t sequences,
                        const rs_output_limit *limit, rs_error *err)
{
    double per_token = 0;
    double bytes = rs_trace_layout_bytes(layout, tokens, sequences, &per_token);
    const char *unit = layout->unit && strcmp(layout->unit, "query") == 0 ? "queries" : "tokens";
    char detail[128];
    snprintf(detail, sizeof detail, "%lld %s x %.0f bytes", (long long)tokens, unit, per_token);
    return rs_output_space_check(path, bytes, detail, layout->gzip_level > 0, limit, err);
}
