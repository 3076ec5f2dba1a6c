/* load.expert_share (load with per_expert=1), the per-expert loads the
 * heatmap figure draws. Expected values by hand in the comments. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "core/metric_sink.h"
#include "tests/test_util.h"

static int output_index(const rs_metric_type *t, const char *name)
{
    for (int i = 0; i < t->num_outputs; i++)
        if (strcmp(t->outputs[i].name, name) == 0)
            return i;
    ck_abort_msg("no output %s", name);
    return -1;
}

/* Runs load over one chunk of two layers and returns its sink. Layer 0
 * picks experts 0,0,1,0,2,0 (k = 1); layer 1 picks nothing (all -1). */
static rs_metric_sink run_load(const char *per_expert)
{
    const rs_metric_type *t = rs_metric_find("load");
    ck_assert_ptr_nonnull(t);
    rs_trace_info info = {.path = "m.h5", .num_layers = 2, .num_experts = 4, .has_logits = 1, .unit = "token"};
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    if (per_expert)
        ck_assert_msg(rs_params_set(&p, "per_expert", per_expert, &err) == 0, "%s", err.msg);
    rs_metric_setup setup = {.trace = &info, .batch_tokens = 4, .kmax = 1};
    void *acc = NULL;
    ck_assert_msg(t->create(&acc, &p, &setup, &err) == 0, "%s", err.msg);
    rs_params_free(&p);
    float z[6 * 2 * 4] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 6, 2, 4, z);
    int32_t ids[6 * 2];
    float w[6 * 2];
    const int32_t chosen[6] = {0, 0, 1, 0, 2, 0};
    for (int tok = 0; tok < 6; tok++) {
        ids[tok * 2 + 0] = chosen[tok];
        ids[tok * 2 + 1] = -1;
        w[tok * 2 + 0] = 1.0f;
        w[tok * 2 + 1] = 0.0f;
    }
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    for (int l = 0; l < 2; l++)
        t->update_layer(acc, &tc.chunk, l, &d, NULL);
    rs_metric_sink sink = {0};
    t->finalize(acc, &sink);
    t->destroy(acc);
    rs_test_chunk_free(&tc);
    return sink;
}

START_TEST(expert_share_by_hand)
{
    const rs_metric_type *t = rs_metric_find("load");
    int share = output_index(t, "expert_share");
    rs_metric_sink sink = run_load("1");
    /* layer 0: loads [4, 1, 1, 0] of 6 assignments */
    const double want[4] = {4.0 / 6, 1.0 / 6, 1.0 / 6, 0.0};
    for (int e = 0; e < 4; e++) {
        char key[32];
        snprintf(key, sizeof key, "expert=%d", e);
        ck_assert_double_eq_tol(rs_metric_sink_value(&sink, share, 0, key), want[e], 1e-15);
        /* layer 1 has no assignments: undefined, not 0 */
        ck_assert(isnan(rs_metric_sink_value(&sink, share, 1, key)));
    }
    rs_metric_sink_free(&sink);
}
END_TEST

START_TEST(expert_share_only_when_asked)
{
    const rs_metric_type *t = rs_metric_find("load");
    int share = output_index(t, "expert_share");
    rs_metric_sink sink = run_load(NULL); /* default per_expert=0 */
    for (size_t i = 0; i < sink.n; i++)
        ck_assert_int_ne(sink.rows[i].output, share);
    /* the other outputs do not change: maxvio of [4,1,1,0] = 4 / 1.5 - 1 */
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, output_index(t, "maxvio"), 0, ""), 4 / 1.5 - 1, 1e-12);
    rs_metric_sink_free(&sink);
    rs_metric_sink with = run_load("1");
    ck_assert_double_eq_tol(rs_metric_sink_value(&with, output_index(t, "maxvio"), 0, ""), 4 / 1.5 - 1, 1e-12);
    rs_metric_sink_free(&with);
}
END_TEST

START_TEST(expert_share_through_the_engine)
{
    /* Per layer the shares sum to 1; layer=all is their mean over layers. */
    const char *trace = rs_test_path("t.h5"), *dir = rs_test_path("out");
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("gen --preset mixtral --tokens 300 --layers 3 --seed 5 -o %s", trace), NULL,
                                     NULL),
                     0);
    const char *config = rs_test_path("c.json");
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"traces\": [\"%s\"], \"routers\": [\"topk:k=2\"], \"metrics\": [{\"name\": \"load\", "
            "\"params\": {\"per_expert\": 1}}], \"output\": \"%s\"}",
            trace, dir);
    fclose(f);
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("run %s -q --no-progress", config), NULL, &err);
    ck_assert_msg(rc == 0, "%s", err);
    free(err);
    char *csv = rs_test_read_file(rs_test_cmd("%s/results.csv", dir));
    ck_assert_ptr_nonnull(csv);
    double sum[3] = {0}, per_expert[8][3] = {{0}}, all[8] = {0};
    int rows = 0;
    for (char *line = strtok(csv, "\n"); line; line = strtok(NULL, "\n")) {
        char *m = strstr(line, ",load.expert_share,expert=");
        if (!m)
            continue;
        int e = -1;
        char layer[16];
        double v = NAN;
        ck_assert_int_eq(sscanf(m, ",load.expert_share,expert=%d,%15[^,],%lf", &e, layer, &v), 3);
        ck_assert(e >= 0 && e < 8);
        if (strcmp(layer, "all") == 0) {
            all[e] = v;
        } else {
            int l = atoi(layer);
            sum[l] += v;
            per_expert[e][l] = v;
        }
        rows++;
    }
    free(csv);
    ck_assert_int_eq(rows, 8 * 4); /* 8 experts x (3 layers + all) */
    for (int l = 0; l < 3; l++)
        ck_assert_double_eq_tol(sum[l], 1.0, 1e-12);
    for (int e = 0; e < 8; e++)
        ck_assert_double_eq_tol(all[e], (per_expert[e][0] + per_expert[e][1] + per_expert[e][2]) / 3, 1e-12);
}
END_TEST

Suite *plot_expert_share_suite(void)
{
    Suite *s = suite_create("plot_expert_share");
    TCase *tc = tcase_create("expert_share");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, expert_share_by_hand);
    tcase_add_test(tc, expert_share_only_when_asked);
    tcase_add_test(tc, expert_share_through_the_engine);
    suite_add_tcase(s, tc);
    return s;
}
