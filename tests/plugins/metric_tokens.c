/* A metric family from a plugin: per layer, the tokens routed and the
 * experts they got. Small enough to check by hand: a trace of T tokens
 * gives tokens = T at every layer, assignments = T * k for top-k. */
#include <stdint.h>
#include <stdlib.h>

#include "routesim/plugin.h"

enum { OUT_TOKENS, OUT_ASSIGNMENTS };

static const rs_metric_output tokens_outputs[] = {
    [OUT_TOKENS] = {"tokens", "valid tokens routed", 0, RS_AGG_MEAN},
    [OUT_ASSIGNMENTS] = {"assignments", "experts given to them (ids >= 0)", 0, RS_AGG_SUM},
};

typedef struct tokens_acc {
    int L;
    int64_t *counts; /* [L][2]: tokens, assignments */
} tokens_acc;

static void tokens_destroy(void *p)
{
    tokens_acc *a = p;
    if (a)
        free(a->counts);
    free(a);
}

static int tokens_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    (void)params;
    tokens_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric plugin_tokens: out of memory");
    a->L = setup->trace->num_layers;
    a->counts = calloc((size_t)a->L * 2, sizeof *a->counts);
    if (!a->counts) {
        free(a);
        return rs_fail(err, "metric plugin_tokens: out of memory");
    }
    *out = a;
    return 0;
}

static void tokens_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                                const rs_metric_ref *ref)
{
    (void)ref;
    int64_t *counts = ((tokens_acc *)p)->counts + 2 * layer;
    for (int t = 0; t < c->n; t++) {
        if (c->valid && !c->valid[t])
            continue;
        const int32_t *ids = dec->ids + rs_decision_row(c, dec, t, layer);
        counts[OUT_TOKENS]++;
        for (int j = 0; j < dec->kmax; j++)
            counts[OUT_ASSIGNMENTS] += ids[j] >= 0;
    }
}

static int tokens_merge(void *p, const void *q, rs_error *err)
{
    tokens_acc *a = p;
    const tokens_acc *b = q;
    RS_CHECK(a->L == b->L, err, "metric plugin_tokens: merging unlike accumulators");
    for (int i = 0; i < 2 * a->L; i++)
        a->counts[i] += b->counts[i];
    return 0;
}

static void tokens_finalize(const void *p, rs_metric_sink *sink)
{
    const tokens_acc *a = p;
    for (int l = 0; l < a->L; l++) {
        rs_metric_emit(sink, OUT_TOKENS, l, NULL, (double)a->counts[2 * l]);
        rs_metric_emit(sink, OUT_ASSIGNMENTS, l, NULL, (double)a->counts[2 * l + 1]);
    }
}

static const rs_metric_type plugin_tokens = {
    .name = "plugin_tokens",
    .summary = "tokens routed and experts given, per layer (test plugin)",
    .source = "tests/plugins/metric_tokens.c",
    .outputs = tokens_outputs,
    .num_outputs = sizeof tokens_outputs / sizeof tokens_outputs[0],
    .needs = 0,
    .create = tokens_create,
    .update_layer = tokens_update_layer,
    .merge = tokens_merge,
    .finalize = tokens_finalize,
    .destroy = tokens_destroy,
};

RS_PLUGIN_ABI;

int routesim_register(rs_error *err) { return rs_metric_register(&plugin_tokens, err); }
