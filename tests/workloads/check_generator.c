/* The synthetic trace generator: determinism, streaming, preset shapes,
 * storage dtypes, recorded top-k, settings and the `routesim gen` command
 * line. The effect of each structure setting is in check_generator_structure.c. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/workloads/check_generator.h"
#include "tests/test_util.h"
#include "routesim/fastmath.h"
#include "workloads/generator/generator.h"
#include "workloads/trace/trace.h"

/* ---- generating and reading back ------------------------------------ */

/* Generates `settings` ("key=value,...") into the scratch file `name`. */
void gen_test_generate(char *path, size_t size, const char *name, const char *settings)
{
    snprintf(path, size, "%s", rs_test_path(name));
    rs_params p;
    rs_error err = {{0}};
    ck_assert_msg(rs_generator_params_init(&p, "test", &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_params_parse_list(&p, settings, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_generate_trace(path, &p, NULL, 0, &err) == 0, "%s: %s", settings, err.msg);
    rs_params_free(&p);
}

void gen_test_load(gen_loaded *t, const char *path)
{
    memset(t, 0, sizeof *t);
    rs_error err = {{0}};
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    const rs_trace_info *info = rs_trace_get_info(tr);
    t->T = (int)info->num_tokens, t->L = info->num_layers, t->E = info->num_experts;
    t->S = (int)info->num_sequences, t->K = info->recorded_k;
    t->dtype = rs_trace_logits_dtype(tr);
    t->domain_names = rs_trace_domain_name_count(tr);
    size_t cells = (size_t)t->T * t->L * t->E;
    t->z = malloc(cells * sizeof *t->z);
    void *scratch = malloc(cells * sizeof(float));
    t->ids = malloc((size_t)t->T * sizeof *t->ids);
    t->offsets = malloc((size_t)(t->S + 1) * sizeof *t->offsets);
    t->domain = malloc((size_t)t->S * sizeof *t->domain);
    t->seq = malloc((size_t)t->T * sizeof *t->seq);
    ck_assert(t->z && scratch && t->ids && t->offsets && t->domain && t->seq);
    ck_assert_msg(rs_trace_read_logits(tr, 0, t->T, t->z, scratch, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_trace_read_token_ids(tr, 0, t->T, t->ids, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_trace_read_offsets(tr, 0, t->S + 1, t->offsets, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_trace_read_domain(tr, 0, t->S, t->domain, &err) == 0, "%s", err.msg);
    free(scratch);
    for (int s = 0; s < t->S; s++)
        for (int64_t i = t->offsets[s]; i < t->offsets[s + 1]; i++)
            t->seq[i] = s;
    if (info->has_bias) {
        t->bias = malloc((size_t)t->L * t->E * sizeof *t->bias);
        ck_assert_msg(rs_trace_read_bias(tr, t->bias, &err) == 0, "%s", err.msg);
    }
    if (t->K > 0) {
        t->topk_ids = malloc((size_t)t->T * t->L * t->K * sizeof *t->topk_ids);
        t->topk_weights = malloc((size_t)t->T * t->L * t->K * sizeof *t->topk_weights);
        ck_assert_msg(rs_trace_read_topk(tr, 0, t->T, t->topk_ids, t->topk_weights, &err) == 0, "%s", err.msg);
    }
    rs_trace_close(tr);
}

void gen_test_unload(gen_loaded *t)
{
    free(t->z);
    free(t->ids);
    free(t->offsets);
    free(t->domain);
    free(t->seq);
    free(t->bias);
    free(t->topk_ids);
    free(t->topk_weights);
}

const float *gen_test_row(const gen_loaded *t, int token, int layer)
{
    return t->z + ((size_t)token * t->L + layer) * t->E;
}

int gen_test_top1(const gen_loaded *t, int token, int layer)
{
    const float *z = gen_test_row(t, token, layer);
    int best = 0;
    for (int e = 1; e < t->E; e++)
        if (z[e] > z[best])
            best = e;
    return best;
}

double gen_test_cv(const double *x, int n)
{
    double mean = 0, sq = 0;
    for (int i = 0; i < n; i++)
        mean += x[i] / n;
    for (int i = 0; i < n; i++)
        sq += (x[i] - mean) * (x[i] - mean) / n;
    return mean > 0 ? sqrt(sq) / mean : 0;
}

/* ---- tests ------------------------------------------------------------ */

START_TEST(test_same_seed_same_logits)
{
    char a[1024], b[1024], c[1024];
    gen_test_generate(a, sizeof a, "a.h5", "preset=small,tokens=300,seed=5");
    gen_test_generate(b, sizeof b, "b.h5", "preset=small,tokens=300,seed=5");
    gen_test_generate(c, sizeof c, "c.h5", "preset=small,tokens=300,seed=6");
    gen_loaded x, y, z;
    gen_test_load(&x, a);
    gen_test_load(&y, b);
    gen_test_load(&z, c);
    size_t bytes = (size_t)x.T * x.L * x.E * sizeof(float);
    ck_assert_int_eq(x.T, 300);
    ck_assert(memcmp(x.z, y.z, bytes) == 0);
    ck_assert(memcmp(x.ids, y.ids, (size_t)x.T * sizeof *x.ids) == 0);
    ck_assert_int_eq(x.S, y.S);
    ck_assert(memcmp(x.offsets, y.offsets, (size_t)(x.S + 1) * sizeof *x.offsets) == 0);
    ck_assert(memcmp(x.z, z.z, bytes) != 0);
    ck_assert(memcmp(x.ids, z.ids, (size_t)x.T * sizeof *x.ids) != 0);
    gen_test_unload(&x);
    gen_test_unload(&y);
    gen_test_unload(&z);
}
END_TEST

/* Streaming: the first tokens do not depend on how many follow. */
START_TEST(test_prefix_independent_of_length)
{
    char a[1024], b[1024];
    gen_test_generate(a, sizeof a, "short.h5", "preset=small,tokens=200,seed=9,seq_len=50");
    gen_test_generate(b, sizeof b, "long.h5", "preset=small,tokens=700,seed=9,seq_len=50");
    gen_loaded x, y;
    gen_test_load(&x, a);
    gen_test_load(&y, b);
    ck_assert(memcmp(x.z, y.z, (size_t)x.T * x.L * x.E * sizeof(float)) == 0);
    ck_assert(memcmp(x.ids, y.ids, (size_t)x.T * sizeof *x.ids) == 0);
    gen_test_unload(&x);
    gen_test_unload(&y);
}
END_TEST

static const struct {
    const char *name, *model;
    int L, E, k;
    const char *scoring;
    int norm_topk, has_bias, tokens;
} expected_presets[] = {
    {"mixtral", "mistralai/Mixtral-8x7B-v0.1", 32, 8, 2, "softmax", 1, 0, 200},
    {"olmoe", "allenai/OLMoE-1B-7B-0924", 16, 64, 8, "softmax", 0, 0, 100},
    {"qwen3-moe", "Qwen/Qwen3-30B-A3B", 48, 128, 8, "softmax", 1, 0, 60},
    {"deepseek-v3", "deepseek-ai/DeepSeek-V3", 58, 256, 8, "sigmoid", 1, 1, 50},
    {"qwen1.5-moe", "Qwen/Qwen1.5-MoE-A2.7B", 24, 60, 4, "softmax", 0, 0, 100},
    {"deepseek-v2-lite", "deepseek-ai/DeepSeek-V2-Lite", 26, 64, 6, "softmax", 0, 0, 100},
    {"small", "", 4, 8, 2, "softmax", 1, 0, 200},
};

START_TEST(test_preset_shape_and_attributes)
{
    const int i = _i;
    ck_assert_int_eq(rs_generator_preset_count(), (int)(sizeof expected_presets / sizeof expected_presets[0]));
    ck_assert_str_eq(rs_generator_preset_name(i), expected_presets[i].name);
    char path[1024], settings[256], vocab_text[32];
    snprintf(settings, sizeof settings, "preset=%s,tokens=%d,seed=1,seq_len=40", expected_presets[i].name,
             expected_presets[i].tokens);
    gen_test_generate(path, sizeof path, "preset.h5", settings);

    rs_error err = {{0}};
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    const rs_trace_info *info = rs_trace_get_info(tr);
    ck_assert_int_eq(info->num_tokens, expected_presets[i].tokens);
    ck_assert_int_eq(info->num_layers, expected_presets[i].L);
    ck_assert_int_eq(info->num_experts, expected_presets[i].E);
    ck_assert_int_eq(info->top_k, expected_presets[i].k);
    ck_assert_str_eq(info->scoring, expected_presets[i].scoring);
    ck_assert_int_eq(info->norm_topk, expected_presets[i].norm_topk);
    ck_assert_str_eq(info->model, expected_presets[i].model);
    ck_assert_int_eq(info->has_bias, expected_presets[i].has_bias);
    ck_assert(info->has_logits && info->has_token_ids && info->has_domain);
    ck_assert_int_eq(info->recorded_k, 0);
    ck_assert_int_gt(info->num_sequences, 1);
    ck_assert_msg(strncmp(rs_trace_source(tr), "routesim gen ", 13) == 0, "source: %s", rs_trace_source(tr));
    char needle[64];
    snprintf(needle, sizeof needle, "preset=%s ", expected_presets[i].name);
    ck_assert_msg(strstr(rs_trace_source(tr), needle), "source: %s", rs_trace_source(tr));
    rs_trace_close(tr);

    ck_assert_int_gt(rs_generator_default_text(i, "vocab", vocab_text, sizeof vocab_text), 0);
    gen_loaded t;
    gen_test_load(&t, path);
    for (size_t j = 0; j < (size_t)t.T * t.L * t.E; j++)
        ck_assert_msg(isfinite(t.z[j]), "logit %zu is not finite", j);
    for (int j = 0; j < t.T; j++)
        ck_assert(t.ids[j] >= 0 && t.ids[j] < atoi(vocab_text));
    for (int s = 0; s < t.S; s++)
        ck_assert(t.domain[s] >= 0 && t.domain[s] < t.domain_names);
    gen_test_unload(&t);
}
END_TEST






START_TEST(test_sequence_lengths)
{
    char path[1024];
    gen_loaded t;
    gen_test_generate(path, sizeof path, "fixed.h5", "preset=small,tokens=1000,seed=2,seq_len=32,seq_len_sigma=0");
    gen_test_load(&t, path);
    ck_assert_int_eq(t.S, 32); /* 31 full sequences and a last one of 8 tokens */
    for (int s = 0; s < 31; s++)
        ck_assert_int_eq(t.offsets[s + 1] - t.offsets[s], 32);
    ck_assert_int_eq(t.offsets[32] - t.offsets[31], 8);
    gen_test_unload(&t);

    gen_test_generate(path, sizeof path, "varied.h5", "preset=small,tokens=20000,seed=2,seq_len=32,seq_len_sigma=1");
    gen_test_load(&t, path);
    int64_t min = t.offsets[1], max = 0;
    for (int s = 0; s + 1 < t.S; s++) {
        int64_t len = t.offsets[s + 1] - t.offsets[s];
        min = len < min ? len : min;
        max = len > max ? len : max;
    }
    double mean = 20000.0 / t.S;
    ck_assert_msg(mean > 20 && mean < 48, "mean sequence length %.1f for seq_len=32", mean);
    ck_assert_msg(max > 3 * min, "lengths %lld..%lld barely vary", (long long)min, (long long)max);
    gen_test_unload(&t);
}
END_TEST

START_TEST(test_half_dtypes_round_float32)
{
    static const struct {
        const char *dtype;
        rs_logits_dtype id;
        double rel;
    } cases[] = {{"float16", RS_LOGITS_F16, 0x1p-11}, {"bfloat16", RS_LOGITS_BF16, 0x1p-8}};
    char path[1024], settings[256];
    gen_loaded ref, t;
    gen_test_generate(path, sizeof path, "f32.h5", "preset=small,tokens=300,seed=4");
    gen_test_load(&ref, path);
    for (int c = 0; c < 2; c++) {
        snprintf(settings, sizeof settings, "preset=small,tokens=300,seed=4,dtype=%s", cases[c].dtype);
        gen_test_generate(path, sizeof path, "half.h5", settings);
        gen_test_load(&t, path);
        ck_assert_int_eq(t.dtype, cases[c].id);
        double worst = 0;
        for (size_t j = 0; j < (size_t)t.T * t.L * t.E; j++) {
            double diff = fabs((double)t.z[j] - ref.z[j]);
            ck_assert_msg(diff <= fabs(ref.z[j]) * cases[c].rel + 1e-7, "%s logit %zu: %g vs %g", cases[c].dtype, j,
                          t.z[j], ref.z[j]);
            worst = diff > worst ? diff : worst;
        }
        ck_assert_msg(worst > 0, "%s logits are not rounded", cases[c].dtype);
        gen_test_unload(&t);
    }
    gen_test_unload(&ref);
}
END_TEST

/* The rule the trace's attributes name, recomputed from the stored logits by
 * brute force: ids by (-score, index); for a grouped sigmoid rule only the
 * experts of the topk_group groups with the largest sum of their two largest
 * biased scores compete (ties to the lower group), and the weights are
 * multiplied by routed_scaling_factor. The sigmoid is the generator's
 * (rs_fast_sigmoidf), so an exact comparison of ids is fair. */
static void check_recorded_topk(const char *settings, int sigmoid, int norm, int n_group, int topk_group,
                                double scale)
{
    char path[1024];
    gen_test_generate(path, sizeof path, "topk.h5", settings);
    gen_loaded t;
    gen_test_load(&t, path);
    ck_assert_int_gt(t.K, 0);
    ck_assert(!sigmoid || t.bias);
    rs_error err = {{0}};
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rs_trace_get_info(tr)->n_group, n_group);
    ck_assert_int_eq(rs_trace_get_info(tr)->topk_group, topk_group);
    ck_assert(rs_trace_get_info(tr)->routed_scaling_factor == (scale == 1 ? 0 : scale));
    rs_trace_close(tr);
    float score[256];
    ck_assert_int_le(t.E, 256);
    const int groups = n_group > 0 ? n_group : 1, kept = n_group > 0 ? topk_group : 1, size = t.E / groups;
    for (int i = 0; i < t.T; i++)
        for (int l = 0; l < t.L; l++) {
            const float *z = gen_test_row(&t, i, l);
            for (int e = 0; e < t.E; e++)
                score[e] = sigmoid ? rs_fast_sigmoidf(z[e]) + t.bias[l * t.E + e] : z[e];
            int allowed[256];
            float group_score[256];
            for (int g = 0; g < groups; g++) {
                float first = -INFINITY, second = -INFINITY;
                for (int e = g * size; e < (g + 1) * size; e++) {
                    if (score[e] > first) {
                        second = first;
                        first = score[e];
                    } else if (score[e] > second) {
                        second = score[e];
                    }
                }
                group_score[g] = first + second;
            }
            for (int g = 0; g < groups; g++) {
                int better = 0; /* groups ranked above g */
                for (int h = 0; h < groups; h++)
                    better += group_score[h] > group_score[g] || (group_score[h] == group_score[g] && h < g);
                for (int e = g * size; e < (g + 1) * size; e++)
                    allowed[e] = better < kept;
            }
            double mass = 0, max = z[0], chosen[256];
            for (int e = 1; e < t.E; e++)
                max = z[e] > max ? z[e] : max;
            for (int e = 0; e < t.E; e++)
                mass += exp(z[e] - max);
            const int32_t *ids = t.topk_ids + ((size_t)i * t.L + l) * t.K;
            const float *w = t.topk_weights + ((size_t)i * t.L + l) * t.K;
            double sum = 0;
            for (int r = 0; r < t.K; r++) {
                int best = -1;
                for (int e = 0; e < t.E; e++) {
                    int taken = 0;
                    for (int q = 0; q < r; q++)
                        taken |= ids[q] == e;
                    if (!taken && allowed[e] && (best < 0 || score[e] > score[best]))
                        best = e;
                }
                ck_assert_msg(ids[r] == best, "%s: token %d layer %d rank %d: id %d, expected %d", settings, i, l, r,
                              ids[r], best);
                chosen[r] = sigmoid ? 1.0 / (1.0 + exp(-z[best])) : exp(z[best] - max) / mass;
                sum += chosen[r];
            }
            for (int r = 0; r < t.K; r++) {
                double want = (norm ? chosen[r] / sum : chosen[r]) * scale;
                ck_assert_msg(fabs(w[r] - want) <= 1e-5 * (1 + want), "%s: weight %g, expected %g", settings, w[r],
                              want);
            }
        }
    gen_test_unload(&t);
}

START_TEST(test_record_topk_matches_logits)
{
    check_recorded_topk("preset=small,tokens=300,seed=8,record_topk=1", 0, 1, 0, 0, 1);
    check_recorded_topk("preset=small,tokens=300,seed=8,record_topk=1,dtype=float16", 0, 1, 0, 0, 1);
    check_recorded_topk("preset=olmoe,tokens=40,seed=8,record_topk=1", 0, 0, 0, 0, 1);
    /* DeepSeek-V3's grouped rule: 8 groups of 32, 4 kept, weights x2.5 */
    check_recorded_topk("preset=deepseek-v3,tokens=30,seed=8,record_topk=1,dtype=bfloat16", 1, 1, 8, 4, 2.5);
    /* reshaped: 8 groups of 4 experts still hold k = 8 */
    check_recorded_topk("preset=deepseek-v3,tokens=60,seed=2,record_topk=1,layers=3,experts=32", 1, 1, 8, 4, 2.5);
    /* 12 experts do not split into 8 groups: plain top-k on s + b, still x2.5 */
    check_recorded_topk("preset=deepseek-v3,tokens=60,seed=2,record_topk=1,layers=3,experts=12,k=3", 1, 1, 0, 0,
                        2.5);
}
END_TEST

START_TEST(test_overrides_and_checks)
{
    char path[1024];
    gen_test_generate(path, sizeof path, "reshaped.h5", "preset=mixtral,tokens=20,layers=3,experts=16,k=4");
    rs_error err = {{0}};
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    const rs_trace_info *info = rs_trace_get_info(tr);
    ck_assert_int_eq(info->num_layers, 3);
    ck_assert_int_eq(info->num_experts, 16);
    ck_assert_int_eq(info->top_k, 4);
    ck_assert_str_eq(info->model, ""); /* no longer the real model's shape */
    rs_trace_close(tr);

    static const struct {
        const char *settings, *message;
    } bad[] = {
        {"preset=small,k=9", "k=9"},
        {"preset=small,bias_correction=1", "bias_correction"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rs_params p;
        ck_assert(rs_generator_params_init(&p, "test", &err) == 0);
        ck_assert(rs_params_parse_list(&p, bad[i].settings, &err) == 0);
        rs_error_clear(&err);
        ck_assert_int_ne(rs_generator_check(&p, &err), 0);
        ck_assert_msg(strstr(err.msg, bad[i].message), "message '%s' lacks '%s'", err.msg, bad[i].message);
        ck_assert_int_ne(rs_generate_trace(rs_test_path("never.h5"), &p, NULL, 0, &err), 0);
        ck_assert(!rs_test_file_exists(rs_test_path("never.h5")));
        rs_params_free(&p);
    }
}
END_TEST

START_TEST(test_settings_table)
{
    int n = 0;
    const rs_param_def *defs = rs_generator_param_defs(&n);
    ck_assert_int_ge(n, 20);
    ck_assert_int_le(n, RS_PARAMS_MAX);
    char text[64];
    for (int i = 0; i < n; i++) {
        for (const char *c = defs[i].name; *c; c++)
            ck_assert_msg((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_', "setting name %s",
                          defs[i].name);
        for (int p = 0; p < rs_generator_preset_count(); p++)
            ck_assert_msg(rs_generator_default_text(p, defs[i].name, text, sizeof text) > 0, "%s has no default",
                          defs[i].name);
    }
    ck_assert_int_eq(rs_generator_default_text(0, "no_such_setting", text, sizeof text), -1);
    rs_params p;
    rs_error err = {{0}};
    ck_assert(rs_generator_params_init(&p, "test", &err) == 0);
    for (int i = 0; i < rs_generator_preset_count(); i++) {
        ck_assert_msg(rs_params_set(&p, "preset", rs_generator_preset_name(i), &err) == 0, "%s", err.msg);
        ck_assert_int_eq(rs_param_int(&p, "preset"), i);
        ck_assert_msg(rs_generator_check(&p, &err) == 0, "%s", err.msg);
    }
    ck_assert(!rs_param_is_set(&p, "locality")); /* preset-dependent until given */
    ck_assert_int_ne(rs_params_set(&p, "locality", "1.5", &err), 0);
    ck_assert_int_ne(rs_params_set(&p, "tokens", "0", &err), 0);
    ck_assert_int_ne(rs_params_set(&p, "dtype", "float64", &err), 0);
    ck_assert_int_eq(rs_params_set(&p, "locality", "0.5", &err), 0);
    ck_assert(rs_param_is_set(&p, "locality"));
    rs_params_free(&p);
}
END_TEST

START_TEST(test_cli_generates_valid_trace)
{
    char args[2048], *out = NULL, *err = NULL;
    const char *path = rs_test_path("cli.h5");
    snprintf(args, sizeof args, "gen --preset small --tokens 500 --seed 3 -o '%s'", path);
    ck_assert_int_eq(rs_test_run_cli(args, NULL, &err), 0);
    free(err);
    snprintf(args, sizeof args, "info '%s'", path);
    ck_assert_int_eq(rs_test_run_cli(args, &out, NULL), 0);
    ck_assert_msg(strstr(out, "T = 500"), "info: %s", out);
    free(out);
    snprintf(args, sizeof args, "gen --preset=small --tokens=100 --seq-len 16 --record-topk 1 -o '%s'", path);
    ck_assert_int_eq(rs_test_run_cli(args, NULL, NULL), 0);
    gen_loaded t;
    gen_test_load(&t, path);
    ck_assert_int_eq(t.T, 100);
    ck_assert_int_eq(t.K, 2);
    gen_test_unload(&t);
}
END_TEST

/* A generated DeepSeek-V3 trace names its grouped rule, `info` prints it,
 * and `native` on it reproduces the recorded routing exactly. */
START_TEST(test_cli_native_reproduces_recorded_deepseek_v3)
{
    char args[2048], *out = NULL;
    const char *path = rs_test_path("dsv3.h5");
    snprintf(args, sizeof args,
             "gen --preset deepseek-v3 --layers 3 --experts 64 --tokens 400 --seed 4 --record_topk 1 "
             "--dtype bfloat16 -o '%s' --no-progress", path);
    ck_assert_int_eq(rs_test_run_cli(args, NULL, NULL), 0);
    snprintf(args, sizeof args, "info '%s'", path);
    ck_assert_int_eq(rs_test_run_cli(args, &out, NULL), 0);
    ck_assert_msg(strstr(out, "routing    top_k = 8, scoring = sigmoid, norm_topk = 1, n_group = 8, topk_group = 4, "
                              "routed_scaling_factor = 2.5\n"),
                  "info: %s", out);
    free(out);
    const char *routers[] = {"native", "deepseek_v3:n_group=1,topk_group=1,scale=2.5"};
    for (int r = 0; r < 2; r++) {
        snprintf(args, sizeof args, "route '%s' --router %s --reference replay --metrics agreement.jaccard", path,
                 routers[r]);
        ck_assert_int_eq(rs_test_run_cli(args, &out, NULL), 0);
        const char *line = strstr(out, "agreement.jaccard");
        double jaccard = -1;
        ck_assert_msg(line && sscanf(line, "agreement.jaccard %lf", &jaccard) == 1, "route: %s", out);
        if (r == 0)
            ck_assert_msg(jaccard == 1, "native against the recorded routing: jaccard %g", jaccard);
        else /* without the groups the choice differs: the test can tell */
            ck_assert_msg(jaccard < 0.99, "ungrouped against the recorded routing: jaccard %g", jaccard);
        free(out);
    }
    snprintf(args, sizeof args, "gen --preset small --tokens 50 -o '%s' --no-progress", path);
    ck_assert_int_eq(rs_test_run_cli(args, NULL, NULL), 0);
    snprintf(args, sizeof args, "info '%s'", path);
    ck_assert_int_eq(rs_test_run_cli(args, &out, NULL), 0);
    ck_assert_msg(!strstr(out, "n_group") && !strstr(out, "routed_scaling_factor"), "info: %s", out);
    free(out);
}
END_TEST

START_TEST(test_cli_help_and_presets)
{
    char *out = NULL;
    ck_assert_int_eq(rs_test_run_cli("gen --help", &out, NULL), 0);
    int n = 0;
    const rs_param_def *defs = rs_generator_param_defs(&n);
    for (int i = 0; i < n; i++) {
        char option[64];
        snprintf(option, sizeof option, "--%s ", defs[i].name);
        ck_assert_msg(strstr(out, option), "--help lacks %s", option);
    }
    for (int i = 0; i < rs_generator_preset_count(); i++)
        ck_assert_msg(strstr(out, rs_generator_preset_name(i)), "--help lacks %s", rs_generator_preset_name(i));
    free(out);
    ck_assert_int_eq(rs_test_run_cli("gen --list-presets", &out, NULL), 0);
    for (int i = 0; i < rs_generator_preset_count(); i++)
        ck_assert_msg(strstr(out, rs_generator_preset_summary(i)), "--list-presets lacks %s",
                      rs_generator_preset_name(i));
    free(out);
}
END_TEST

START_TEST(test_cli_usage_errors)
{
    static const struct {
        const char *options, *message;
    } cases[] = {
        {"--preset nosuch", "preset"},
        {"--preset small --locality 2", "locality"},
        {"--preset small --bogus 1", "--bogus"},
        {"--preset small --tokens x", "tokens"},
        {"--preset small --k 9", "k=9"},
        {"--preset small --seed", "--seed"},
    };
    const char *path = rs_test_path("bad.h5");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[2048], *err = NULL;
        snprintf(args, sizeof args, "gen -o '%s' %s", path, cases[i].options);
        ck_assert_int_eq(rs_test_run_cli(args, NULL, &err), 2);
        ck_assert_msg(strstr(err, cases[i].message), "'%s': stderr '%s' lacks '%s'", cases[i].options, err,
                      cases[i].message);
        ck_assert_msg(!strchr(err, '\n') || strchr(err, '\n') == err + strlen(err) - 1, "more than one line: %s", err);
        free(err);
        ck_assert(!rs_test_file_exists(path));
    }
    ck_assert_int_eq(rs_test_run_cli("gen --preset small", NULL, NULL), 2);
}
END_TEST

/* docs/generator.md's tables are what `routesim gen --markdown` prints. */
START_TEST(test_docs_tables_in_step)
{
    const char *src = getenv("ROUTESIM_SRC");
    ck_assert_msg(src != NULL, "ROUTESIM_SRC is not set (run the tests through make check)");
    char path[2048];
    snprintf(path, sizeof path, "%s/docs/generator.md", src);
    char *text = rs_test_read_file(path), *out = NULL;
    ck_assert_msg(text != NULL, "cannot read %s", path);
    const char *begin = "<!-- BEGIN GENERATED: routesim gen --markdown -->\n";
    char *start = strstr(text, begin), *end = start ? strstr(start, "<!-- END GENERATED -->") : NULL;
    ck_assert_msg(start && end, "docs/generator.md has no generated section");
    start += strlen(begin);
    *end = '\0';
    ck_assert_int_eq(rs_test_run_cli("gen --markdown", &out, NULL), 0);
    ck_assert_msg(strcmp(start, out) == 0, "docs/generator.md is out of date: paste `routesim gen --markdown`");
    free(out);
    free(text);
}
END_TEST

Suite *generator_suite(void)
{
    Suite *s = suite_create("generator");
    TCase *core = tcase_create("core");
    tcase_set_timeout(core, 120);
    tcase_add_test(core, test_same_seed_same_logits);
    tcase_add_test(core, test_prefix_independent_of_length);
    tcase_add_loop_test(core, test_preset_shape_and_attributes, 0,
                        (int)(sizeof expected_presets / sizeof expected_presets[0]));
    tcase_add_test(core, test_sequence_lengths);
    tcase_add_test(core, test_half_dtypes_round_float32);
    tcase_add_test(core, test_record_topk_matches_logits);
    tcase_add_test(core, test_overrides_and_checks);
    tcase_add_test(core, test_settings_table);
    suite_add_tcase(s, core);

    suite_add_tcase(s, generator_structure_tcase());


    TCase *cli = tcase_create("cli");
    tcase_set_timeout(cli, 60);
    tcase_add_test(cli, test_cli_generates_valid_trace);
    tcase_add_test(cli, test_cli_native_reproduces_recorded_deepseek_v3);
    tcase_add_test(cli, test_cli_help_and_presets);
    tcase_add_test(cli, test_cli_usage_errors);
    tcase_add_test(cli, test_docs_tables_in_step);
    suite_add_tcase(s, cli);
    return s;
}
