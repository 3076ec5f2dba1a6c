/* Probability-based metrics under each scoring function (metrics/router_probs.h):
 * one token, E = 4, logits z = (2, 1, 0, -1), by hand.
 *
 *   softmax        p = e^z / sum = (.6439143, .2368828, .0871443, .0320586)
 *   sigmoid        s = (.8807971, .7310586, .5, .2689414), sum 2.3807971,
 *                  p = s / sum = (.3699589, .3070646, .2100137, .1129628)
 *   sqrt_softplus  s = sqrt(log(1 + e^z)) = (1.4583990, 1.1459765, .8325546, .5596981),
 *                  sum 3.9966279, p = (.3649074, .2867358, .2083143, .1400425)
 *
 * mass_retained of S = {0, 1} against R = {1, 2}: (p0 + p1) / (p1 + p2) =
 * (e^2 + e) / (e + 1) = e (softmax), (.8807971 + .7310586) /
 * (.7310586 + .5) = 1.3093249 (sigmoid), (1.4583990 + 1.1459765) /
 * (1.1459765 + .8325546) = 1.3163178 (sqrt_softplus). Against R = every
 * expert it is the selected mass p0 + p1: .8807971, .6770235, .6516432, and
 * 1 for S = every expert. router_entropy = -sum p log p / log 4: .6835034,
 * .9410016, .9580484; tsallis_entropy (q = 1.1) = (1 - sum p^1.1) / (1 -
 * 4^-0.1): .6775102, .9400729, .9571468; aux_loss of the top-2 selection =
 * E sum f P = 4 (p0 + p1) / 2: 1.7615942, 1.3540471, 1.3032864. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "core/metric_sink.h"
#include "metrics/router_probs.h"
#include "routesim/metric.h"
#include "tests/test_util.h"

static const float logits[4] = {2, 1, 0, -1};

static const rs_scoring scorings[3] = {RS_SCORING_SOFTMAX, RS_SCORING_SIGMOID, RS_SCORING_SQRT_SOFTPLUS};

static double output_value(const rs_metric_sink *sink, const rs_metric_type *t, const char *output)
{
    for (int o = 0; o < t->num_outputs; o++)
        if (strcmp(t->outputs[o].name, output) == 0)
            return rs_metric_sink_value(sink, o, 0, NULL);
    ck_abort_msg("no output %s", output);
    return NAN;
}

/* One layer of one token measured by family `name` with the router's
 * selection s_ids (kmax 4) and the reference's r_ids; sink gets the rows. */
static void measure(const char *name, rs_scoring scoring, rs_scoring reference_scoring, const int32_t *s_ids,
                    const int32_t *r_ids, rs_metric_sink *sink)
{
    const rs_metric_type *t = rs_metric_find(name);
    ck_assert_ptr_nonnull(t);
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 1, 1, 4, logits);
    int32_t s_row[4], r_row[4];
    float w[4] = {.25f, .25f, .25f, .25f};
    memcpy(s_row, s_ids, sizeof s_row);
    memcpy(r_row, r_ids, sizeof r_row);
    rs_decisions s = {.kmax = 4, .ids = s_row, .weights = w}, r = {.kmax = 4, .ids = r_row, .weights = w};
    rs_trace_info info = {.path = "s.h5", .num_tokens = 1, .num_sequences = 1, .num_layers = 1, .num_experts = 4,
                          .has_logits = 1, .unit = "token"};
    rs_params params;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&params, t->params, t->num_params, t->name, &err), 0);
    rs_metric_setup setup = {.trace = &info, .batch_tokens = 8, .kmax = 4, .reference_trace = &info,
                             .reference_kmax = 4, .scoring = scoring, .reference_scoring = reference_scoring};
    void *acc = NULL;
    ck_assert_msg(t->create(&acc, &params, &setup, &err) == 0, "%s", err.msg);
    rs_metric_ref ref = {&tc.chunk, &r};
    t->update_layer(acc, &tc.chunk, 0, &s, (t->flags & RS_METRIC_REFERENCE) ? &ref : NULL);
    memset(sink, 0, sizeof *sink);
    t->finalize(acc, sink);
    t->destroy(acc);
    rs_params_free(&params);
    rs_test_chunk_free(&tc);
}

static double measured(const char *name, const char *output, rs_scoring scoring, rs_scoring reference_scoring,
                       const int32_t *s_ids, const int32_t *r_ids)
{
    rs_metric_sink sink;
    measure(name, scoring, reference_scoring, s_ids, r_ids, &sink);
    double v = output_value(&sink, rs_metric_find(name), output);
    rs_metric_sink_free(&sink);
    return v;
}

static const int32_t top2[4] = {0, 1, -1, -1}, mid2[4] = {1, 2, -1, -1}, every[4] = {0, 1, 2, 3};

START_TEST(scoring_mass_retained_by_hand)
{
    const double against_mid[3] = {exp(1.0), 1.3093249050761304, 1.3163177842757954};
    const double against_all[3] = {0.8807970779778824, 0.6770235361582804, 0.6516432097836458};
    for (int i = 0; i < 3; i++) {
        /* p_ref is the reference's: the measured router's scoring does not matter */
        rs_scoring other = scorings[(i + 1) % 3];
        ck_assert_double_eq_tol(measured("agreement", "mass_retained", other, scorings[i], top2, mid2),
                                against_mid[i], 1e-5);
        ck_assert_double_eq_tol(measured("agreement", "mass_retained", other, scorings[i], top2, every),
                                against_all[i], 1e-6);
        /* top-E against top-E keeps everything */
        ck_assert_double_eq_tol(measured("agreement", "mass_retained", other, scorings[i], every, every), 1.0, 1e-12);
    }
}
END_TEST

START_TEST(scoring_entropy_by_hand)
{
    const double mass[3] = {0.8807970779778824, 0.6770235361582804, 0.6516432097836458};
    const double shannon[3] = {0.6835034394931654, 0.9410015523016578, 0.9580483849934053};
    const double tsallis[3] = {0.6775101689322583, 0.940072896748732, 0.9571468111383029};
    for (int i = 0; i < 3; i++) {
        rs_metric_sink sink;
        /* the reference's scoring does not matter here */
        measure("entropy", scorings[i], scorings[(i + 2) % 3], top2, mid2, &sink);
        const rs_metric_type *t = rs_metric_find("entropy");
        ck_assert_double_eq_tol(output_value(&sink, t, "selected_mass"), mass[i], 1e-6);
        ck_assert_double_eq_tol(output_value(&sink, t, "router_entropy"), shannon[i], 1e-6);
        ck_assert_double_eq_tol(output_value(&sink, t, "tsallis_entropy"), tsallis[i], 1e-5);
        /* z-loss and the margin are the logits' whatever the scoring: lse = log sum e^z */
        ck_assert_double_eq_tol(output_value(&sink, t, "z_loss"), pow(log(11.475217368561138), 2), 1e-5);
        ck_assert_double_eq_tol(output_value(&sink, t, "topk_margin"), 1.0, 1e-12);
        rs_metric_sink_free(&sink);
    }
    /* the whole distribution selected: mass 1 under every scoring */
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(measured("entropy", "selected_mass", scorings[i], scorings[i], every, every), 1.0,
                                1e-6);
}
END_TEST

/* rs_router_scores looks bfloat16 logits up in a table: every one of the
 * 65536 bfloat16 values (NaNs and infinities included), and floats that are
 * not bfloat16, give the same bits as rs_router_score, and the same sum as
 * adding those scores in expert order. */
START_TEST(scoring_table_matches_formula)
{
    enum { ROW = 1024 };
    float z[ROW];
    double s[ROW];
    for (int m = 1; m < 3; m++) {
        for (uint32_t start = 0; start < 65536 + 3 * ROW; start += ROW) {
            for (int e = 0; e < ROW; e++) {
                uint32_t b = start + (uint32_t)e;
                /* past the bfloat16 values: floats with low bits set */
                uint32_t bits = b < 65536 ? b << 16 : (b * 2654435761u) | 1u;
                memcpy(&z[e], &bits, sizeof bits);
            }
            double sum = rs_router_scores(scorings[m], z, ROW, s), want_sum = 0.0;
            for (int e = 0; e < ROW; e++) {
                double want = rs_router_score(scorings[m], z[e]);
                want_sum += want;
                ck_assert_msg(memcmp(&s[e], &want, sizeof want) == 0, "scoring %d logit %a: %a, formula %a", m,
                              (double)z[e], s[e], want);
            }
            ck_assert(memcmp(&sum, &want_sum, sizeof sum) == 0 || (isnan(sum) && isnan(want_sum)));
        }
    }
}
END_TEST

START_TEST(scoring_aux_loss_by_hand)
{
    const double aux[3] = {1.7615941559557649, 1.3540470723165607, 1.3032864195672915};
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(measured("load", "aux_loss", scorings[i], scorings[i], top2, mid2), aux[i], 1e-6);
}
END_TEST

Suite *metrics_scoring_suite(void)
{
    Suite *s = suite_create("metrics_scoring");
    TCase *tc = tcase_create("scoring");
    tcase_add_test(tc, scoring_mass_retained_by_hand);
    tcase_add_test(tc, scoring_entropy_by_hand);
    tcase_add_test(tc, scoring_aux_loss_by_hand);
    tcase_add_test(tc, scoring_table_matches_formula);
    suite_add_tcase(s, tc);
    return s;
}
