/* native: the model's own rule, read from the trace's root attributes
 * top_k, scoring, norm_topk and, for grouped routing, n_group, topk_group and
 * routed_scaling_factor, run by the router that implements it:
 *   softmax        -> topk (k = top_k, renorm = norm_topk), or with
 *                     n_group > 1 group_limited (DeepSeek-V2; never
 *                     renormalises)
 *   sigmoid        -> sigmoid_topk (k, renorm), or, when the trace has
 *                     /router/bias, deepseek_v3 (DeepSeek-V3; n_group and
 *                     topk_group from the trace, 1 when absent)
 *   sqrt_softplus  -> sqrt_softplus (k)
 * Weights are multiplied by routed_scaling_factor (1 when absent). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/router.h"
#include "routers/common/router_params.h"

typedef struct native_state {
    const rs_router_type *type; /* the router that runs */
    void *state;
    rs_params params;
} native_state;

static void native_destroy(void *state)
{
    native_state *s = state;
    if (!s)
        return;
    if (s->type && s->state)
        s->type->destroy(s->state);
    if (s->type)
        rs_params_free(&s->params);
    free(s);
}

/* Names every missing attribute in one message. */
static int check_attributes(const rs_trace_info *tr, rs_error *err)
{
    char missing[128] = "";
    size_t len = 0;
    const char *names[3] = {"top_k", "scoring", "norm_topk"};
    const int absent[3] = {tr->top_k <= 0, !tr->scoring || !tr->scoring[0], tr->norm_topk < 0};
    int count = 0;
    for (int i = 0; i < 3; i++)
        if (absent[i])
            len += (size_t)snprintf(missing + len, sizeof missing - len, "%s'%s'", count++ ? ", " : "", names[i]);
    if (count == 0)
        return 0;
    return rs_fail(err,
                   "router native: %s: root attribute%s %s missing (the model's own rule needs top_k, scoring and "
                   "norm_topk; name a router instead, e.g. topk:k=2)",
                   tr->path, count > 1 ? "s" : "", missing);
}

/* Sets name=value when the delegate has that parameter; returns 1 if it has. */
static int set_if_known(native_state *s, const char *name, const char *value, rs_error *err, int *failed)
{
    for (int i = 0; i < s->params.n; i++)
        if (strcmp(s->params.defs[i].name, name) == 0) {
            *failed |= rs_params_set(&s->params, name, value, err) != 0;
            return 1;
        }
    return 0;
}

static int native_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                         rs_error *err)
{
    (void)params;
    const rs_trace_info *tr = setup->trace;
    RS_TRY(check_attributes(tr, err));
    const int grouped = tr->n_group > 1;
    const char *runs;
    if (strcmp(tr->scoring, "softmax") == 0)
        runs = grouped ? "group_limited" : "topk";
    else if (strcmp(tr->scoring, "sigmoid") == 0)
        runs = tr->has_bias ? "deepseek_v3" : "sigmoid_topk";
    else if (strcmp(tr->scoring, "sqrt_softplus") == 0)
        runs = "sqrt_softplus";
    else
        return rs_fail(err, "router native: %s: root attribute 'scoring' is \"%s\" (expected softmax, sigmoid or "
                       "sqrt_softplus)", tr->path, tr->scoring);
    const rs_router_type *type = rs_router_find(runs);
    RS_CHECK(type && type->create, err, "router native: %s: scoring=%s needs router %s, which is not registered",
             tr->path, tr->scoring, runs);
    native_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router native: out of memory");
    char owner[96];
    snprintf(owner, sizeof owner, "router native (%s)", runs);
    if (rs_router_params_init(&s->params, type, NULL, owner, err) != 0) {
        free(s);
        return -1;
    }
    s->type = type;
    char k[24], renorm[4], n_group[24], topk_group[24], scale[32];
    const double scaling = tr->routed_scaling_factor > 0 ? tr->routed_scaling_factor : 1.0;
    snprintf(k, sizeof k, "%d", tr->top_k);
    snprintf(renorm, sizeof renorm, "%d", tr->norm_topk ? 1 : 0);
    snprintf(n_group, sizeof n_group, "%d", tr->n_group > 0 ? tr->n_group : 1);
    snprintf(topk_group, sizeof topk_group, "%d", tr->topk_group > 0 ? tr->topk_group : 1);
    snprintf(scale, sizeof scale, "%.17g", scaling);
    int failed = 0;
    set_if_known(s, "k", k, err, &failed);
    int has_scale = set_if_known(s, "scale", scale, err, &failed);
    int has_groups = set_if_known(s, "n_group", n_group, err, &failed);
    set_if_known(s, "topk_group", topk_group, err, &failed);
    int has_renorm = set_if_known(s, "renorm", renorm, err, &failed);
    if (!failed && !has_renorm && tr->norm_topk != (strcmp(runs, "group_limited") != 0)) {
        rs_fail(err, "router native: %s: norm_topk=%d with scoring=%s, but router %s %s", tr->path, tr->norm_topk,
                tr->scoring, runs, tr->norm_topk ? "never renormalises" : "always renormalises");
        failed = 1;
    }
    if (!failed && grouped && !has_groups) {
        rs_fail(err, "router native: %s: n_group=%d with scoring=%s%s, but router %s has no group limiting%s",
                tr->path, tr->n_group, tr->scoring, tr->has_bias ? "" : " and no /router/bias", runs,
                strcmp(tr->scoring, "sigmoid") == 0 ? " (grouped sigmoid routing needs /router/bias, "
                                                       "e_score_correction_bias)" : "");
        failed = 1;
    }
    if (!failed && !has_scale && scaling != 1.0) {
        rs_fail(err, "router native: %s: routed_scaling_factor=%g with scoring=%s, but router %s has no scale",
                tr->path, scaling, tr->scoring, runs);
        failed = 1;
    }
    shape->needs |= type->needs;
    if (failed || type->create(&s->state, shape, &s->params, setup, err) != 0) {
        s->state = NULL;
        native_destroy(s);
        return -1;
    }
    *state = s;
    return 0;
}

static int native_prepare_chunk(void *state, const rs_chunk *chunk, rs_error *err)
{
    native_state *s = state;
    return s->type->prepare_chunk ? s->type->prepare_chunk(s->state, chunk, err) : 0;
}

static void native_route_layer(void *state, const rs_chunk *chunk, int layer, rs_decisions *out)
{
    native_state *s = state;
    s->type->route_layer(s->state, chunk, layer, out);
}

/* The router it runs keeps the state, if any. */
static void native_checkpoint(void *state, rs_state_io *io)
{
    native_state *s = state;
    if (s->type->checkpoint)
        s->type->checkpoint(s->state, io);
}

static const rs_router_type native_type = {
    .name = "native",
    .summary = "the model's own rule from the trace's root attributes top_k, scoring, norm_topk and, when present, "
               "n_group, topk_group, routed_scaling_factor",
    .formula = "scoring = softmax: topk:k=top_k,renorm=norm_topk,scale=rsf, or with n_group > 1 "
               "group_limited:k=top_k,n_group,topk_group,scale=rsf (norm_topk=0); sigmoid: "
               "sigmoid_topk:k=top_k,renorm=norm_topk (rsf 1), or with /router/bias "
               "deepseek_v3:k=top_k,n_group,topk_group,scale=rsf (norm_topk=1); sqrt_softplus: "
               "sqrt_softplus:k=top_k,scale=rsf; n_group, topk_group and rsf (routed_scaling_factor) are 1 when "
               "absent",
    .source = "reference rule: the trace's own model (docs/trace-format.md root attributes)",
    .params = NULL,
    .num_params = 0,
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = native_create,
    .prepare_chunk = native_prepare_chunk,
    .route_layer = native_route_layer,
    .destroy = native_destroy,
    .checkpoint = native_checkpoint,
};

const rs_router_type *const rs_router_native = &native_type;
