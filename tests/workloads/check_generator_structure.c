/* The generator's structure settings, each measured on the logits read
 * back: locality, noise, token dependence, popularity skew, domains, layer
 * affinity and the DeepSeek-V3 selection bias. Part of the "generator" suite. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/workloads/check_generator.h"

/* Share of consecutive tokens of one sequence with the same top-1 expert. */
static double consecutive_same_top1(const gen_loaded *t)
{
    long same = 0, pairs = 0;
    for (int l = 0; l < t->L; l++)
        for (int i = 1; i < t->T; i++)
            if (t->seq[i] == t->seq[i - 1]) {
                pairs++;
                same += gen_test_top1(t, i, l) == gen_test_top1(t, i - 1, l);
            }
    return (double)same / (double)pairs;
}

/* Over token ids seen at least 5 times: the share of their occurrences
 * routed (top-1) to the id's most common expert, averaged over ids and layers. */
static double token_agreement(const gen_loaded *t, int vocab)
{
    int *counts = calloc((size_t)vocab * t->E, sizeof *counts);
    ck_assert_ptr_nonnull(counts);
    double total = 0;
    int terms = 0;
    for (int l = 0; l < t->L; l++) {
        memset(counts, 0, (size_t)vocab * t->E * sizeof *counts);
        for (int i = 0; i < t->T; i++)
            counts[(size_t)t->ids[i] * t->E + gen_test_top1(t, i, l)]++;
        for (int v = 0; v < vocab; v++) {
            int seen = 0, most = 0;
            for (int e = 0; e < t->E; e++) {
                seen += counts[(size_t)v * t->E + e];
                most = counts[(size_t)v * t->E + e] > most ? counts[(size_t)v * t->E + e] : most;
            }
            if (seen >= 5) {
                total += (double)most / seen;
                terms++;
            }
        }
    }
    free(counts);
    ck_assert_int_gt(terms, 0);
    return total / terms;
}

/* Coefficient of variation of top-1 loads, averaged over layers. */
static double top1_load_cv(const gen_loaded *t)
{
    double load[64], sum = 0;
    ck_assert_int_le(t->E, 64);
    for (int l = 0; l < t->L; l++) {
        memset(load, 0, sizeof load);
        for (int i = 0; i < t->T; i++)
            load[gen_test_top1(t, i, l)] += 1;
        sum += gen_test_cv(load, t->E);
    }
    return sum / t->L;
}

/* Per expert, the CV across domains of its top-1 frequency within each
 * domain, averaged over experts and layers (metrics.md domain_specialization). */
static double domain_spread(const gen_loaded *t, int domains)
{
    double freq[16][64], tokens[16], across[16], sum = 0;
    ck_assert_int_le(domains, 16);
    ck_assert_int_le(t->E, 64);
    for (int l = 0; l < t->L; l++) {
        memset(freq, 0, sizeof freq);
        memset(tokens, 0, sizeof tokens);
        for (int i = 0; i < t->T; i++) {
            int d = t->domain[t->seq[i]];
            freq[d][gen_test_top1(t, i, l)] += 1;
            tokens[d] += 1;
        }
        for (int e = 0; e < t->E; e++) {
            for (int d = 0; d < domains; d++)
                across[d] = tokens[d] > 0 ? freq[d][e] / tokens[d] : 0;
            sum += gen_test_cv(across, domains);
        }
    }
    return sum / (t->L * t->E);
}

/* Share of tokens whose layer l+1 top-1 is the most common successor of
 * their layer l top-1, averaged over layer pairs. */
static double affinity_predictability(const gen_loaded *t)
{
    int counts[64][64];
    double sum = 0;
    ck_assert_int_le(t->E, 64);
    for (int l = 0; l + 1 < t->L; l++) {
        memset(counts, 0, sizeof counts);
        for (int i = 0; i < t->T; i++)
            counts[gen_test_top1(t, i, l)][gen_test_top1(t, i, l + 1)]++;
        long best = 0;
        for (int a = 0; a < t->E; a++) {
            int most = 0;
            for (int b = 0; b < t->E; b++)
                most = counts[a][b] > most ? counts[a][b] : most;
            best += most;
        }
        sum += (double)best / t->T;
    }
    return sum / (t->L - 1);
}

/* Generates base+",setting=low" and base+",setting=high" and returns the statistic of each. */
static void measure_pair(const char *base, const char *low, const char *high, double (*stat)(const gen_loaded *),
                         double *at_low, double *at_high)
{
    char path[1024], settings[512];
    gen_loaded t;
    snprintf(settings, sizeof settings, "%s,%s", base, low);
    gen_test_generate(path, sizeof path, "low.h5", settings);
    gen_test_load(&t, path);
    *at_low = stat(&t);
    gen_test_unload(&t);
    snprintf(settings, sizeof settings, "%s,%s", base, high);
    gen_test_generate(path, sizeof path, "high.h5", settings);
    gen_test_load(&t, path);
    *at_high = stat(&t);
    gen_test_unload(&t);
}

#define BASE "preset=small,tokens=4000,seed=11"

START_TEST(test_locality_raises_consecutive_agreement)
{
    double low, high;
    measure_pair(BASE ",seq_len=200,locality_scale=1.5", "locality=0", "locality=0.97", consecutive_same_top1, &low,
                 &high);
    ck_assert_msg(high > low + 0.1, "same top-1 of consecutive tokens: %.3f at locality 0, %.3f at 0.97", low, high);
}
END_TEST

START_TEST(test_noise_lowers_consecutive_agreement)
{
    double low, high;
    measure_pair(BASE ",seq_len=200", "noise=0.2", "noise=3", consecutive_same_top1, &low, &high);
    ck_assert_msg(low > high + 0.05, "same top-1 of consecutive tokens: %.3f at noise 0.2, %.3f at 3", low, high);
}
END_TEST

static double agreement_vocab40(const gen_loaded *t) { return token_agreement(t, 40); }

START_TEST(test_token_dependence_raises_same_id_agreement)
{
    double low, high;
    measure_pair(BASE ",vocab=40", "token_dependence=0", "token_dependence=2", agreement_vocab40, &low, &high);
    ck_assert_msg(high > low + 0.1, "same-id agreement: %.3f without token dependence, %.3f with", low, high);
}
END_TEST

START_TEST(test_skew_raises_load_cv)
{
    double low, high;
    measure_pair(BASE ",skew_spread=0", "skew=0", "skew=1.5", top1_load_cv, &low, &high);
    ck_assert_msg(high > low + 0.2, "top-1 load CV: %.3f at skew 0, %.3f at skew 1.5", low, high);
}
END_TEST

static double spread_4_domains(const gen_loaded *t) { return domain_spread(t, 4); }

START_TEST(test_domains_make_loads_differ)
{
    double low, high;
    measure_pair("preset=small,tokens=6000,seed=11,domains=4,seq_len=50", "domain_scale=0", "domain_scale=1.5", spread_4_domains,
                 &low, &high);
    ck_assert_msg(high > low + 0.1, "CV across domains of expert frequency: %.3f without, %.3f with domain bias", low,
                  high);

    char path[1024];
    gen_test_generate(path, sizeof path, "one-domain.h5", BASE ",domains=1,seq_len=50");
    gen_loaded t;
    gen_test_load(&t, path);
    ck_assert_int_eq(t.domain_names, 1);
    for (int s = 0; s < t.S; s++)
        ck_assert_int_eq(t.domain[s], 0);
    gen_test_unload(&t);
}
END_TEST

START_TEST(test_layer_affinity_raises_predictability)
{
    double low, high;
    measure_pair(BASE, "layer_affinity=0", "layer_affinity=0.9", affinity_predictability, &low, &high);
    ck_assert_msg(high > low + 0.1, "layer l+1 top-1 predictability: %.3f at affinity 0, %.3f at 0.9", low, high);
}
END_TEST

/* The bias opposes each expert's average logit and, at full strength, evens out sigmoid top-k loads. */
START_TEST(test_deepseek_bias_counteracts_popularity)
{
    char path[1024];
    gen_test_generate(path, sizeof path, "bias.h5",
                      "preset=deepseek-v3,layers=2,experts=32,tokens=2000,seed=3,skew=0.8,domain_scale=0,bias_correction=1,"
                      "locality_scale=0.5");
    gen_loaded t;
    gen_test_load(&t, path);
    ck_assert_ptr_nonnull(t.bias);
    const int k = 8;
    for (int l = 0; l < t.L; l++) {
        double mean_z[32] = {0}, load_plain[32] = {0}, load_biased[32] = {0}, zbar = 0, bbar = 0, cov = 0;
        for (int i = 0; i < t.T; i++) {
            const float *z = gen_test_row(&t, i, l);
            for (int pass = 0; pass < 2; pass++) {
                float score[32];
                for (int e = 0; e < t.E; e++)
                    score[e] = 1.0f / (1.0f + expf(-z[e])) + (pass ? t.bias[l * t.E + e] : 0.0f);
                for (int r = 0; r < k; r++) {
                    int best = 0;
                    for (int e = 1; e < t.E; e++)
                        if (score[e] > score[best])
                            best = e;
                    (pass ? load_biased : load_plain)[best] += 1;
                    score[best] = -INFINITY;
                }
            }
            for (int e = 0; e < t.E; e++)
                mean_z[e] += z[e] / t.T;
        }
        for (int e = 0; e < t.E; e++) {
            zbar += mean_z[e] / t.E;
            bbar += t.bias[l * t.E + e] / t.E;
        }
        for (int e = 0; e < t.E; e++)
            cov += (mean_z[e] - zbar) * (t.bias[l * t.E + e] - bbar);
        ck_assert_msg(cov < 0, "layer %d: bias does not oppose popularity (cov %g)", l, cov);
        double plain = gen_test_cv(load_plain, t.E), biased = gen_test_cv(load_biased, t.E);
        ck_assert_msg(biased < 0.6 * plain, "layer %d: load CV %.3f with bias, %.3f without", l, biased, plain);
    }
    gen_test_unload(&t);
}
END_TEST

TCase *generator_structure_tcase(void)
{
    TCase *tc = tcase_create("structure");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_locality_raises_consecutive_agreement);
    tcase_add_test(tc, test_noise_lowers_consecutive_agreement);
    tcase_add_test(tc, test_token_dependence_raises_same_id_agreement);
    tcase_add_test(tc, test_skew_raises_load_cv);
    tcase_add_test(tc, test_domains_make_loads_differ);
    tcase_add_test(tc, test_layer_affinity_raises_predictability);
    tcase_add_test(tc, test_deepseek_bias_counteracts_popularity);
    return tc;
}
