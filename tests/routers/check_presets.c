/* Presets resolve to their base router with the model's values (the table
 * below is copied by hand from the "Preset facts" of the routing spec, not
 * from the descriptors), and `native` picks the rule a trace's root
 * attributes name. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/router.h"
#include "sim/config/spec.h"
#include "tests/test_util.h"
#include "workloads/trace/trace.h"
#include "workloads/trace/trace_writer.h"

static const struct preset_fact {
    const char *name, *base, *values;
} facts[] = {
    {"mixtral", "topk", "k=2,renorm=1"},
    {"qwen1.5-moe", "topk", "k=4,renorm=0"},
    {"qwen2-moe", "topk", "k=8,renorm=0"},
    {"qwen3-moe", "topk", "k=8,renorm=1"},
    {"olmoe", "topk", "k=8,renorm=0"},
    {"deepseek-v2", "group_limited", "n_group=8,topk_group=3,k=6,scale=16"},
    {"deepseek-v2-lite", "topk", "k=6,renorm=0"},
    {"deepseek-v3", "deepseek_v3", "n_group=8,topk_group=4,k=8,scale=2.5"},
    {"dbrx", "pnorm_topk", "k=4,p=1"},
    {"switch-base-128", "switch", "capacity_factor=0,min_capacity=64,group=sequence"},
    {"nllb-moe", "gshard_top2", "policy=all"},
    {"jamba", "topk", "k=2,renorm=0"},
    {"grok-1", "topk", "k=2,renorm=0"},
    {"phi-3.5-moe", "sparsemixer", "eps=0.01"},
    {"granite-moe", "topk", "k=8,renorm=1"},
    {"jetmoe", "topk", "k=2,renorm=1"},
    {"gpt-oss", "topk", "k=4,renorm=1"},
    {"llama-4", "sigmoid_topk", "k=1,renorm=0"},
};
enum { NUM_FACTS = sizeof facts / sizeof facts[0] };

/* Index of a parameter in the spec's table, or -1. */
static int param_index(const rs_router_spec *spec, const char *name)
{
    for (int i = 0; i < spec->params.n; i++)
        if (strcmp(spec->params.defs[i].name, name) == 0)
            return i;
    return -1;
}

/* Checks every key=value of `values` against the spec's parameters and
 * whether the user gave them (explicit) or the preset did. */
static void expect_values(const rs_router_spec *spec, const char *values, int explicit_)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", values);
    char *save = NULL;
    for (char *pair = strtok_r(buf, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(pair, '=');
        *eq = '\0';
        int i = param_index(spec, pair);
        ck_assert_msg(i >= 0, "%s: no parameter %s", spec->label, pair);
        char text[64];
        rs_param_value_text(&spec->params, i, text, sizeof text);
        ck_assert_msg(strcmp(text, eq + 1) == 0, "%s: %s=%s, want %s", spec->label, pair, text, eq + 1);
        ck_assert_msg(spec->params.v[i].explicit_ == explicit_, "%s: %s explicit=%d", spec->label, pair,
                      spec->params.v[i].explicit_);
    }
}

START_TEST(every_preset_resolves_to_its_base)
{
    const struct preset_fact *f = &facts[_i];
    const rs_router_type *preset = rs_router_find(f->name);
    ck_assert_msg(preset != NULL, "preset %s is not registered", f->name);
    ck_assert_msg(preset->flags & RS_ROUTER_PRESET, "%s is not flagged as a preset", f->name);
    ck_assert_str_eq(preset->preset_of, f->base);
    ck_assert(preset->summary && preset->source && !preset->create && !preset->route_layer);
    rs_router_spec spec;
    rs_error err = {{0}};
    const rs_router_type *base = rs_router_find(f->base);
    ck_assert_msg(base != NULL, "preset %s: base router %s is not registered", f->name, f->base);
    ck_assert_msg(rs_router_spec_parse(&spec, f->name, &err) == 0, "%s", err.msg);
    ck_assert_ptr_eq(spec.type, base);
    ck_assert_ptr_eq(spec.preset, preset);
    ck_assert_str_eq(spec.label, f->name);
    expect_values(&spec, f->values, 0);
    /* the spec string recreates the run with the base router */
    char text[1024];
    rs_router_spec_string(&spec, text, sizeof text);
    ck_assert_msg(strncmp(text, f->base, strlen(f->base)) == 0 && (text[strlen(f->base)] == ':' || !text[strlen(f->base)]),
                  "%s: spec string %s", f->name, text);
    rs_router_spec_free(&spec);
}
END_TEST

START_TEST(user_values_override_preset_values)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&spec, "mixtral:k=3", &err) == 0, "%s", err.msg);
    ck_assert_ptr_eq(spec.type, rs_router_find("topk"));
    expect_values(&spec, "k=3", 1);
    expect_values(&spec, "renorm=1", 0);
    ck_assert_str_eq(spec.label, "mixtral:k=3");
    rs_router_spec_free(&spec);

    ck_assert_msg(rs_router_spec_parse(&spec, "deepseek-v2:scale=1,topk_group=2", &err) == 0, "%s", err.msg);
    expect_values(&spec, "scale=1,topk_group=2", 1);
    expect_values(&spec, "n_group=8,k=6", 0);
    ck_assert_str_eq(spec.label, "deepseek-v2:scale=1,topk_group=2");
    rs_router_spec_free(&spec);

    /* a preset checks values against its base router's table */
    ck_assert_int_eq(rs_router_spec_parse(&spec, "olmoe:eps=1", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown parameter 'eps'"));
}
END_TEST

START_TEST(preset_names_do_not_shadow_routers)
{
    /* `switch` stays the router; the Switch-base-128 preset has its own name */
    const rs_router_type *sw = rs_router_find("switch");
    ck_assert_ptr_nonnull(sw);
    ck_assert(!(sw->flags & RS_ROUTER_PRESET));
    ck_assert(!(rs_router_find("deepseek_v3")->flags & RS_ROUTER_PRESET));
    int presets = 0;
    for (int i = 0; i < rs_router_count(); i++) {
        const rs_router_type *t = rs_router_at(i);
        ck_assert_ptr_eq(rs_router_find(t->name), t); /* names are unique */
        presets += (t->flags & RS_ROUTER_PRESET) != 0;
    }
    ck_assert_int_ge(presets, NUM_FACTS);
}
END_TEST

/* ---- native ---- */

enum { NT = 6, NL = 2, NE = 8 };

/* Grouped-routing attributes of a test trace; 0 = omitted. */
typedef struct grouping {
    int n_group, topk_group;
    double routed_scaling_factor;
} grouping;

/* Writes and opens a trace with the given root attributes (NULL / 0 / -1 =
 * omitted) and an optional /router/bias; NULL when opening fails (message in
 * open_err when given). */
static rs_trace *grouped_trace(const char *name, const char *scoring, int top_k, int norm_topk, grouping g,
                               const float *z, const float *bias, rs_error *open_err)
{
    const char *path = rs_test_path(name);
    rs_trace_layout layout = {.num_layers = NL, .num_experts = NE, .logits = RS_LOGITS_F32, .scoring = scoring,
                              .top_k = top_k, .norm_topk = norm_topk, .n_group = g.n_group,
                              .topk_group = g.topk_group, .routed_scaling_factor = g.routed_scaling_factor};
    rs_error err = {{0}};
    rs_trace_writer *w = NULL;
    ck_assert_msg(rs_trace_writer_create(&w, path, &layout, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_trace_writer_append(w, NT, z, NULL, NULL, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_trace_writer_end_sequence(w, 0, &err) == 0, "%s", err.msg);
    if (bias)
        ck_assert_msg(rs_trace_writer_set_bias(w, bias, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_trace_writer_finish(w, &err) == 0, "%s", err.msg);
    rs_trace *tr = NULL;
    if (open_err)
        return rs_trace_open(&tr, path, open_err) == 0 ? tr : NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    return tr;
}

static rs_trace *native_trace(const char *name, const char *scoring, int top_k, int norm_topk, const float *z,
                              const float *bias)
{
    return grouped_trace(name, scoring, top_k, norm_topk, (grouping){0, 0, 0}, z, bias, NULL);
}

/* Routes the chunk with spec for the trace; returns kmax, -1 when create
 * fails (message in err). */
static int route_on(const char *text, const rs_trace_info *info, const rs_test_chunk *tc, int32_t *ids, float *w,
                    rs_error *err)
{
    rs_router_spec spec;
    ck_assert_msg(rs_router_spec_parse(&spec, text, err) == 0, "%s", err->msg);
    rs_router_setup setup = {.trace = info, .batch_tokens = 64};
    rs_router_shape shape = {.needs = spec.type->needs};
    void *state = NULL;
    if (spec.type->create(&state, &shape, &spec.params, &setup, err) != 0) {
        rs_router_spec_free(&spec);
        return -1;
    }
    rs_decisions dec = {.kmax = shape.kmax, .ids = ids, .weights = w};
    for (int l = 0; l < NL; l++)
        spec.type->route_layer(state, &tc->chunk, l, &dec);
    spec.type->destroy(state);
    rs_router_spec_free(&spec);
    return shape.kmax;
}

START_TEST(native_follows_the_trace_attributes)
{
    static const struct {
        const char *scoring;
        int top_k, norm_topk, bias;
        const char *same_as;
    } cases[] = {
        {"softmax", 2, 1, 0, "topk:k=2,renorm=1"},
        {"softmax", 3, 0, 0, "topk:k=3,renorm=0"},
        {"sigmoid", 1, 0, 0, "sigmoid_topk:k=1,renorm=0"},
        {"sigmoid", 2, 1, 0, "sigmoid_topk:k=2,renorm=1"},
        {"sigmoid", 2, 1, 1, "deepseek_v3:k=2,n_group=1,topk_group=1,scale=1"},
        {"sqrt_softplus", 3, 1, 0, "sqrt_softplus:k=3,scale=1"},
        {"sqrt_softplus", 3, 1, 1, "sqrt_softplus:k=3,scale=1"},
    };
    float *z = rs_test_random_logits(NT, NL, NE, 23);
    float bias[NL * NE];
    for (int i = 0; i < NL * NE; i++)
        bias[i] = (float)((i * 5) % 7 - 3) * 0.3f; /* large enough to change selections */
    const int n = (int)(sizeof cases / sizeof cases[0]);
    for (int c = 0; c < n; c++) {
        char name[32];
        snprintf(name, sizeof name, "native%d.h5", c);
        rs_trace *tr = native_trace(name, cases[c].scoring, cases[c].top_k, cases[c].norm_topk, z,
                                    cases[c].bias ? bias : NULL);
        const rs_trace_info *info = rs_trace_get_info(tr);
        rs_test_chunk tc;
        rs_test_chunk_init(&tc, 0, NT, NL, NE, z);
        tc.chunk.bias = cases[c].bias ? bias : NULL;
        int32_t ids[2][NT * NL * NE];
        float w[2][NT * NL * NE];
        rs_error err = {{0}};
        int k = route_on("native", info, &tc, ids[0], w[0], &err);
        ck_assert_msg(k == cases[c].top_k, "native on %s: %s", cases[c].same_as, err.msg);
        ck_assert_int_eq(route_on(cases[c].same_as, info, &tc, ids[1], w[1], &err), k);
        ck_assert_msg(memcmp(ids[0], ids[1], (size_t)NT * NL * k * sizeof ids[0][0]) == 0, "native != %s",
                      cases[c].same_as);
        ck_assert_msg(memcmp(w[0], w[1], (size_t)NT * NL * k * sizeof w[0][0]) == 0, "native != %s (weights)",
                      cases[c].same_as);
        rs_test_chunk_free(&tc);
        rs_trace_close(tr);
    }
    free(z);
}
END_TEST

START_TEST(native_names_missing_attributes)
{
    static const struct {
        const char *scoring;
        int top_k, norm_topk, bias;
        const char *message;
    } cases[] = {
        {NULL, 0, -1, 0, "root attributes 'top_k', 'scoring', 'norm_topk' missing"},
        {"softmax", 2, -1, 0, "root attribute 'norm_topk' missing"},
        {NULL, 2, 1, 0, "root attribute 'scoring' missing"},
        {"sigmoid", 0, 1, 0, "root attribute 'top_k' missing"},
        {"sigmoid", 2, 0, 1, "norm_topk=0 with scoring=sigmoid, but router deepseek_v3 always renormalises"},
        {"sqrt_softplus", 2, 0, 0, "norm_topk=0 with scoring=sqrt_softplus, but router sqrt_softplus always"},
    };
    float *z = rs_test_random_logits(NT, NL, NE, 3);
    float bias[NL * NE] = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, "missing%zu.h5", c);
        rs_trace *tr = native_trace(name, cases[c].scoring, cases[c].top_k, cases[c].norm_topk, z,
                                    cases[c].bias ? bias : NULL);
        rs_test_chunk tc;
        rs_test_chunk_init(&tc, 0, NT, NL, NE, z);
        int32_t ids[NT * NL * NE];
        float w[NT * NL * NE];
        rs_error err = {{0}};
        ck_assert_int_eq(route_on("native", rs_trace_get_info(tr), &tc, ids, w, &err), -1);
        ck_assert_msg(strstr(err.msg, cases[c].message) != NULL, "got '%s', want '%s'", err.msg, cases[c].message);
        if (c < 4) /* names the file and starts with the router */
            ck_assert_msg(strncmp(err.msg, "router native: ", 15) == 0 && strstr(err.msg, name), "%s", err.msg);
        rs_test_chunk_free(&tc);
        rs_trace_close(tr);
    }
    free(z);
}
END_TEST

/* With n_group, topk_group and routed_scaling_factor, native runs the
 * grouped router of the scoring with exactly those values. */
START_TEST(native_follows_grouped_attributes)
{
    static const struct {
        const char *scoring;
        int top_k, norm_topk, bias;
        grouping g;
        const char *same_as;
    } cases[] = {
        {"sigmoid", 3, 1, 1, {4, 2, 2.5}, "deepseek_v3:k=3,n_group=4,topk_group=2,scale=2.5"},
        {"sigmoid", 2, 1, 1, {2, 1, 0}, "deepseek_v3:k=2,n_group=2,topk_group=1,scale=1"},
        {"sigmoid", 2, 1, 1, {0, 0, 2.5}, "deepseek_v3:k=2,n_group=1,topk_group=1,scale=2.5"},
        {"softmax", 2, 0, 0, {4, 2, 16}, "group_limited:k=2,n_group=4,topk_group=2,scale=16"},
        {"softmax", 2, 1, 0, {1, 1, 2}, "topk:k=2,renorm=1,scale=2"},
        {"sqrt_softplus", 3, 1, 1, {0, 0, 1.5}, "sqrt_softplus:k=3,scale=1.5"},
    };
    float *z = rs_test_random_logits(NT, NL, NE, 31);
    float bias[NL * NE];
    for (int i = 0; i < NL * NE; i++)
        bias[i] = (float)((i * 3) % 5 - 2) * 0.2f;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, "grouped%zu.h5", c);
        rs_trace *tr = grouped_trace(name, cases[c].scoring, cases[c].top_k, cases[c].norm_topk, cases[c].g, z,
                                     cases[c].bias ? bias : NULL, NULL);
        const rs_trace_info *info = rs_trace_get_info(tr);
        ck_assert_int_eq(info->n_group, cases[c].g.n_group);
        ck_assert_int_eq(info->topk_group, cases[c].g.topk_group);
        ck_assert(info->routed_scaling_factor == cases[c].g.routed_scaling_factor);
        rs_test_chunk tc;
        rs_test_chunk_init(&tc, 0, NT, NL, NE, z);
        tc.chunk.bias = cases[c].bias ? bias : NULL;
        int32_t ids[2][NT * NL * NE];
        float w[2][NT * NL * NE];
        rs_error err = {{0}};
        int k = route_on("native", info, &tc, ids[0], w[0], &err);
        ck_assert_msg(k == cases[c].top_k, "native on %s: %s", cases[c].same_as, err.msg);
        ck_assert_int_eq(route_on(cases[c].same_as, info, &tc, ids[1], w[1], &err), k);
        ck_assert_msg(memcmp(ids[0], ids[1], (size_t)NT * NL * k * sizeof ids[0][0]) == 0, "native != %s",
                      cases[c].same_as);
        ck_assert_msg(memcmp(w[0], w[1], (size_t)NT * NL * k * sizeof w[0][0]) == 0, "native != %s (weights)",
                      cases[c].same_as);
        rs_test_chunk_free(&tc);
        rs_trace_close(tr);
    }
    free(z);
}
END_TEST

/* A row where the group rule changes the choice, worked by hand. Sigmoid
 * scores (bias 0) by group of two: {0.9, 0.1} sums 1.0, {0.6, 0.6} 1.2,
 * {0.55, 0.55} 1.1, {0.85, 0.05} 0.9. Keeping topk_group = 2 groups leaves
 * groups 1 and 2; their top 2 are experts 2 and 3 (0.6 each, the tie to the
 * lower index), weights 0.6 / 1.2 * 2.5 = 1.25 each. Plain sigmoid top-2
 * takes experts 0 (0.9) and 6 (0.85): what native does on the same trace
 * without the grouping attributes, weights 0.9 / 1.75 and 0.85 / 1.75. */
START_TEST(native_grouped_rule_by_hand)
{
    static const double s[NE] = {0.9, 0.1, 0.6, 0.6, 0.55, 0.55, 0.85, 0.05};
    float z[NT * NL * NE], bias[NL * NE] = {0};
    for (int i = 0; i < NT * NL * NE; i++)
        z[i] = (float)log(s[i % NE] / (1 - s[i % NE]));
    const struct {
        grouping g;
        int32_t want[2];
        double weight[2];
    } cases[] = {
        {{4, 2, 2.5}, {2, 3}, {1.25, 1.25}},
        {{0, 0, 0}, {0, 6}, {0.9 / 1.75, 0.85 / 1.75}}, /* a trace without the attributes: as before */
    };
    for (int c = 0; c < 2; c++) {
        char name[32];
        snprintf(name, sizeof name, "byhand%d.h5", c);
        rs_trace *tr = grouped_trace(name, "sigmoid", 2, 1, cases[c].g, z, bias, NULL);
        rs_test_chunk tc;
        rs_test_chunk_init(&tc, 0, NT, NL, NE, z);
        tc.chunk.bias = bias;
        int32_t ids[NT * NL * 2], plain[NT * NL * 2];
        float w[NT * NL * 2], plain_w[NT * NL * 2];
        rs_error err = {{0}};
        ck_assert_msg(route_on("native", rs_trace_get_info(tr), &tc, ids, w, &err) == 2, "%s", err.msg);
        ck_assert_int_eq(route_on("sigmoid_topk:k=2,renorm=1", rs_trace_get_info(tr), &tc, plain, plain_w, &err), 2);
        for (int row = 0; row < NT * NL; row++) {
            for (int j = 0; j < 2; j++) {
                ck_assert_int_eq(ids[row * 2 + j], cases[c].want[j]);
                ck_assert_msg(fabs(w[row * 2 + j] - cases[c].weight[j]) < 1e-5, "weight %g, want %g",
                              w[row * 2 + j], cases[c].weight[j]);
            }
            /* plain sigmoid top-k differs exactly when the trace is grouped */
            ck_assert_int_eq(plain[row * 2] == ids[row * 2] && plain[row * 2 + 1] == ids[row * 2 + 1], c == 1);
        }
        rs_test_chunk_free(&tc);
        rs_trace_close(tr);
    }
}
END_TEST

/* Grouping native cannot run, and grouping attributes a trace may not hold. */
START_TEST(native_grouped_errors)
{
    static const struct {
        const char *scoring;
        int norm_topk, bias;
        grouping g;
        const char *message; /* from native's create */
    } refused[] = {
        {"sigmoid", 1, 0, {4, 2, 0}, "n_group=4 with scoring=sigmoid and no /router/bias, but router sigmoid_topk has "
                                     "no group limiting (grouped sigmoid routing needs /router/bias"},
        {"softmax", 1, 0, {4, 2, 0}, "norm_topk=1 with scoring=softmax, but router group_limited never renormalises"},
        {"sigmoid", 1, 0, {0, 0, 2.5}, "routed_scaling_factor=2.5 with scoring=sigmoid, but router sigmoid_topk has no "
                                       "scale"},
    };
    float *z = rs_test_random_logits(NT, NL, NE, 5);
    float bias[NL * NE] = {0};
    for (size_t c = 0; c < sizeof refused / sizeof refused[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, "refused%zu.h5", c);
        rs_trace *tr = grouped_trace(name, refused[c].scoring, 2, refused[c].norm_topk, refused[c].g, z,
                                     refused[c].bias ? bias : NULL, NULL);
        rs_test_chunk tc;
        rs_test_chunk_init(&tc, 0, NT, NL, NE, z);
        int32_t ids[NT * NL * NE];
        float w[NT * NL * NE];
        rs_error err = {{0}};
        ck_assert_int_eq(route_on("native", rs_trace_get_info(tr), &tc, ids, w, &err), -1);
        ck_assert_msg(strstr(err.msg, refused[c].message) && strstr(err.msg, name), "got '%s', want '%s'", err.msg,
                      refused[c].message);
        rs_test_chunk_free(&tc);
        rs_trace_close(tr);
    }
    static const struct {
        grouping g;
        const char *message; /* from opening the trace */
    } invalid[] = {
        {{3, 1, 0}, "root attribute 'n_group' = 3 must divide num_experts = 8"},
        {{2, 4, 0}, "root attribute 'topk_group' = 4 exceeds n_group = 2"},
        {{16, 1, 0}, "root attribute 'n_group' = 16 must be in [1, 8]"},
    };
    for (size_t c = 0; c < sizeof invalid / sizeof invalid[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, "invalid%zu.h5", c);
        rs_error err = {{0}};
        ck_assert_ptr_null(grouped_trace(name, "sigmoid", 2, 1, invalid[c].g, z, bias, &err));
        ck_assert_msg(strstr(err.msg, invalid[c].message) && strstr(err.msg, name), "got '%s', want '%s'", err.msg,
                      invalid[c].message);
    }
    free(z);
}
END_TEST

Suite *presets_suite(void)
{
    Suite *s = suite_create("presets");
    TCase *tc = tcase_create("presets");
    tcase_add_loop_test(tc, every_preset_resolves_to_its_base, 0, NUM_FACTS);
    tcase_add_test(tc, user_values_override_preset_values);
    tcase_add_test(tc, preset_names_do_not_shadow_routers);
    tcase_add_test(tc, native_follows_the_trace_attributes);
    tcase_add_test(tc, native_names_missing_attributes);
    tcase_add_test(tc, native_follows_grouped_attributes);
    tcase_add_test(tc, native_grouped_rule_by_hand);
    tcase_add_test(tc, native_grouped_errors);
    suite_add_tcase(s, tc);
    return s;
}
