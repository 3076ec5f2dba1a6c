/* entropy's tsallis_entropy, z_loss and topk_margin: hand-computed cases,
 * parameters and their keys, merges, and the CLI's thread/chunk
 * invariance. router_entropy and selected_mass are covered by
 * check_metrics.c. The engine's softmax is float (about 1e-7 relative), so
 * values derived from it are compared to 1e-6. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "routesim/select.h"
#include "core/metric_sink.h"
#include "tests/test_util.h"

static const rs_metric_type *family(void)
{
    const rs_metric_type *t = rs_metric_find("entropy");
    ck_assert_ptr_nonnull(t);
    return t;
}

/* params: "q=2,k=1" or "" for the defaults; returns NULL and fills err when create fails. */
static void *try_make_acc(const rs_trace_info *info, int kmax, const char *params, rs_error *err)
{
    const rs_metric_type *t = family();
    rs_params p;
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, err), 0);
    if (params[0])
        ck_assert_msg(rs_params_parse_list(&p, params, err) == 0, "%s", err->msg);
    rs_metric_setup setup = {.trace = info, .batch_tokens = 64, .kmax = kmax};
    void *acc = NULL;
    int rc = t->create(&acc, &p, &setup, err);
    rs_params_free(&p);
    return rc == 0 ? acc : NULL;
}

static void *make_acc(const rs_trace_info *info, int kmax, const char *params)
{
    rs_error err = {{0}};
    void *acc = try_make_acc(info, kmax, params, &err);
    ck_assert_msg(acc, "%s", err.msg);
    return acc;
}

static void update(void *acc, const rs_chunk *c, const rs_decisions *d)
{
    for (int l = 0; l < c->L; l++)
        family()->update_layer(acc, c, l, d, NULL);
}

static int output(const char *name)
{
    const rs_metric_type *t = family();
    for (int o = 0; o < t->num_outputs; o++)
        if (strcmp(t->outputs[o].name, name) == 0)
            return o;
    ck_abort_msg("no output %s", name);
    return -1;
}

static double value(const rs_metric_sink *sink, const char *name, int layer)
{
    return rs_metric_sink_value(sink, output(name), layer, "");
}

/* Four tokens with p = [.4 .3 .2 .1] (logits log p + 3, so lse = 3). */
static void four_tokens(rs_test_chunk *tc, int n)
{
    const float p[4] = {0.4f, 0.3f, 0.2f, 0.1f};
    float z[8 * 4];
    for (int t = 0; t < n; t++)
        for (int e = 0; e < 4; e++)
            z[t * 4 + e] = logf(p[e]) + 3.0f;
    rs_test_chunk_init(tc, 0, n, 1, 4, z);
}

/* By hand, q = 2: sum p^2 = .16 + .09 + .04 + .01 = .30, Tsallis (1 - .3) / (2 - 1)
 * = .7, maximum (1 - 4^-1) / 1 = .75, normalised .7 / .75 = 14/15.
 * z_loss = lse^2 = 3^2 = 9. */
START_TEST(tsallis_and_z_loss_hand_case)
{
    rs_test_chunk tc;
    four_tokens(&tc, 4);
    int32_t ids[4] = {0, 0, 1, 2};
    float w[4] = {1, 1, 1, 1};
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    rs_trace_info info = {.path = "e.h5", .num_layers = 1, .num_experts = 4, .has_logits = 1, .unit = "token"};
    void *acc = make_acc(&info, 1, "q=2");
    update(acc, &tc.chunk, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    ck_assert_double_eq_tol(value(&sink, "tsallis_entropy", 0), 14.0 / 15.0, 1e-6);
    ck_assert_double_eq_tol(value(&sink, "z_loss", 0), 9.0, 1e-5);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);

    /* default q = 1.1, by the formula */
    double s = pow(.4, 1.1) + pow(.3, 1.1) + pow(.2, 1.1) + pow(.1, 1.1);
    double want = (1 - s) / (1 - pow(4.0, -0.1));
    acc = make_acc(&info, 1, "");
    update(acc, &tc.chunk, &d);
    family()->finalize(acc, &sink);
    ck_assert_double_eq_tol(value(&sink, "tsallis_entropy", 0), want, 1e-6);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);

    /* q = 1 is the Shannon limit: exactly router_entropy */
    acc = make_acc(&info, 1, "q=1");
    update(acc, &tc.chunk, &d);
    family()->finalize(acc, &sink);
    double shannon = value(&sink, "router_entropy", 0);
    ck_assert(memcmp(&shannon, &(double){value(&sink, "tsallis_entropy", 0)}, sizeof shannon) == 0);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    rs_test_chunk_free(&tc);
}
END_TEST

/* Uniform p: Tsallis entropy is at its maximum (1) for any q; one expert
 * certain (p = [1, 0, 0, 0] up to float): about 0. */
START_TEST(tsallis_extremes)
{
    float z[2 * 4] = {0, 0, 0, 0, 100, 0, 0, 0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 2, 1, 4, z);
    const uint8_t only_first[2] = {1, 0}, only_second[2] = {0, 1};
    int32_t ids[2] = {0, 0};
    float w[2] = {1, 1};
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    rs_trace_info info = {.path = "e.h5", .num_layers = 1, .num_experts = 4, .has_logits = 1, .unit = "token"};
    const char *qs[] = {"q=0.5", "q=1.1", "q=3"};
    for (int i = 0; i < 3; i++) {
        tc.chunk.valid = only_first;
        void *acc = make_acc(&info, 1, qs[i]);
        update(acc, &tc.chunk, &d);
        rs_metric_sink sink = {0};
        family()->finalize(acc, &sink);
        ck_assert_double_eq_tol(value(&sink, "tsallis_entropy", 0), 1.0, 1e-6);
        rs_metric_sink_free(&sink);
        family()->destroy(acc);
        tc.chunk.valid = only_second;
        acc = make_acc(&info, 1, qs[i]);
        update(acc, &tc.chunk, &d);
        family()->finalize(acc, &sink);
        ck_assert_double_eq_tol(value(&sink, "tsallis_entropy", 0), 0.0, 1e-6);
        ck_assert_double_eq_tol(value(&sink, "z_loss", 0), 100.0 * 100.0, 1e-3);
        rs_metric_sink_free(&sink);
        family()->destroy(acc);
    }
    rs_test_chunk_free(&tc);
}
END_TEST

/* topk_margin, E = 4, kmax = 2, logits (sorted descending in brackets):
 *   t0 [3 1 2 0]  ids {0, _}                 k = 1: z(1) - z(2) = 3 - 2 = 1
 *   t1 [0 0 0 0]  ids {1, 2}                 k = 2: 0 - 0 = 0 (tie)
 *   t2 [5 -1 4 2] ids {_, _}, slot 0 dropped k = 1 requested: 5 - 4 = 1
 *   t3 [1 2 3 4]  ids {_, _}, nothing asked  no boundary: left out
 *   t4 skipped (invalid)
 * By hand: mean (1 + 0 + 1) / 3 = 2/3. With k = 2 for every token:
 * t0 2 - 1 = 1, t1 0, t2 4 - 2 = 2, t3 3 - 2 = 1: mean 4 / 4 = 1. */
START_TEST(topk_margin_hand_case)
{
    float z[5 * 4] = {3, 1, 2, 0, 0, 0, 0, 0, 5, -1, 4, 2, 1, 2, 3, 4, 9, 8, 7, 6};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 5, 1, 4, z);
    const uint8_t valid[5] = {1, 1, 1, 1, 0};
    tc.chunk.valid = valid;
    int32_t ids[10] = {0, -1, 1, 2, -1, -1, -1, -1, 0, 1};
    float w[10] = {1, 0, .5f, .5f, 0, 0, 0, 0, .5f, .5f};
    uint8_t dropped[10] = {0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
    rs_decisions d = {.kmax = 2, .ids = ids, .weights = w, .dropped = dropped};
    rs_trace_info info = {.path = "e.h5", .num_layers = 1, .num_experts = 4, .has_logits = 1, .unit = "token"};
    void *acc = make_acc(&info, 2, "");
    update(acc, &tc.chunk, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    ck_assert_double_eq_tol(value(&sink, "topk_margin", 0), 2.0 / 3.0, 1e-15);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    acc = make_acc(&info, 2, "k=2");
    update(acc, &tc.chunk, &d);
    family()->finalize(acc, &sink);
    ck_assert_double_eq(value(&sink, "topk_margin", 0), 1.0);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    rs_test_chunk_free(&tc);
}
END_TEST

/* Against sorting, on random rows with ties, for every k: with the
 * router's own k when its selection is a top-k of the logits (one pass)
 * and when it is not (experts 0..k-1: the general selection), and with the
 * parameter k. */
START_TEST(topk_margin_matches_sorting)
{
    enum { N = 200, E = 13 };
    float *z = rs_test_random_logits(N, 1, E, 3);
    for (int i = 0; i < N * E; i++)
        z[i] = roundf(z[i] * 2.0f) / 2.0f; /* ties */
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, N, 1, E, z);
    int32_t *ids = malloc(sizeof(int32_t) * N * E);
    float *w = calloc(N * E, sizeof *w), vals[E];
    rs_trace_info info = {.path = "e.h5", .num_layers = 1, .num_experts = E, .has_logits = 1, .unit = "token"};
    for (int k = 1; k < E; k++) {
        double sum = 0;
        for (int t = 0; t < N; t++) {
            float row[E];
            memcpy(row, z + t * E, sizeof row);
            for (int i = 1; i < E; i++) /* insertion sort, descending */
                for (int j = i; j > 0 && row[j] > row[j - 1]; j--) {
                    float x = row[j];
                    row[j] = row[j - 1];
                    row[j - 1] = x;
                }
            sum += (double)row[k - 1] - (double)row[k];
        }
        for (int how = 0; how < 3; how++) {
            for (int t = 0; t < N; t++) {
                if (how == 0)
                    rs_topk_indices(z + t * E, E, k, ids + t * k, vals);
                else
                    for (int j = 0; j < k; j++)
                        ids[t * k + j] = j;
            }
            rs_decisions d = {.kmax = k, .ids = ids, .weights = w};
            char params[16] = "";
            if (how == 2)
                snprintf(params, sizeof params, "k=%d", k);
            void *acc = make_acc(&info, k, params);
            update(acc, &tc.chunk, &d);
            rs_metric_sink sink = {0};
            family()->finalize(acc, &sink);
            ck_assert_msg(fabs(value(&sink, "topk_margin", 0) - sum / N) <= 1e-12, "k=%d way %d: %.17g != %.17g", k,
                          how, value(&sink, "topk_margin", 0), sum / N);
            rs_metric_sink_free(&sink);
            family()->destroy(acc);
        }
    }
    free(z);
    free(ids);
    free(w);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(entropy_parameter_errors)
{
    rs_trace_info info = {.path = "e.h5", .num_layers = 1, .num_experts = 4, .has_logits = 1, .unit = "token"};
    rs_error err = {{0}};
    ck_assert_ptr_null(try_make_acc(&info, 2, "k=4", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "parameter k=4"));
    rs_params p;
    ck_assert_int_eq(rs_params_init(&p, family()->params, family()->num_params, "metric entropy", &err), 0);
    ck_assert_int_ne(rs_params_parse_list(&p, "q=0", &err), 0); /* below the range */
    ck_assert_ptr_nonnull(strstr(err.msg, "q"));
    rs_params_free(&p);
}
END_TEST

/* Random top-2 with drops, split anywhere: merged halves == whole, bit for bit. */
START_TEST(entropy_merge_equals_whole)
{
    enum { N = 257, L = 2, E = 6, K = 2 };
    float *z = rs_test_random_logits(N, L, E, 9);
    int32_t *ids = malloc(sizeof(int32_t) * N * L * K);
    float *w = malloc(sizeof(float) * N * L * K), vals[K];
    uint8_t *dropped = calloc(N * L * K, 1);
    for (int r = 0; r < N * L; r++) {
        rs_topk_indices(z + (size_t)r * E, E, K, ids + (size_t)r * K, vals);
        w[r * K] = w[r * K + 1] = 0.5f;
        if (r % 5 == 0) {
            ids[r * K + 1] = -1;
            dropped[r * K + 1] = 1;
        }
    }
    rs_trace_info info = {.path = "e.h5", .num_layers = L, .num_experts = E, .has_logits = 1, .unit = "token"};
    const int splits[] = {1, 128, 256};
    for (int s = 0; s < 3; s++) {
        int split = splits[s];
        rs_test_chunk whole, a, b;
        rs_test_chunk_init(&whole, 0, N, L, E, z);
        rs_test_chunk_init(&a, 0, split, L, E, z);
        rs_test_chunk_init(&b, split, N - split, L, E, z + (size_t)split * L * E);
        size_t off = (size_t)split * L * K;
        rs_decisions dw = {.kmax = K, .ids = ids, .weights = w, .dropped = dropped};
        rs_decisions db = {.kmax = K, .ids = ids + off, .weights = w + off, .dropped = dropped + off};
        void *x = make_acc(&info, K, "q=1.7"), *y = make_acc(&info, K, "q=1.7"), *v = make_acc(&info, K, "q=1.7");
        update(x, &whole.chunk, &dw);
        update(y, &a.chunk, &dw);
        update(v, &b.chunk, &db);
        rs_error err = {{0}};
        ck_assert_int_eq(family()->merge(y, v, &err), 0);
        char what[32];
        snprintf(what, sizeof what, "split at %d", split);
        rs_test_same_rows(family(), x, y, what);
        family()->destroy(x);
        family()->destroy(y);
        family()->destroy(v);
        rs_test_chunk_free(&whole);
        rs_test_chunk_free(&a);
        rs_test_chunk_free(&b);
    }
    free(z);
    free(ids);
    free(w);
    free(dropped);
}
END_TEST

/* Rows whose scale spans the float range: random normal logits, constant
 * rows, one value far above or below zeros, mixed signs, a small spread on a
 * large offset, and +-FLT_MAX. 10^-30 .. 3e38. */
enum { SCALES = 12, KINDS = 7 };
static const float row_scales[SCALES] = {1e-30f, 1e-10f, 1e-3f, 1.0f, 10.0f, 100.0f,
                                         1e3f,   1e10f,  1e20f, 1e30f, 1e38f, 3.4e38f};

static void extreme_row(float *z, int E, int kind, float scale, const float *normal)
{
    for (int e = 0; e < E; e++) {
        switch (kind) {
        case 0: z[e] = normal[e] * scale; break;
        case 1: z[e] = scale; break; /* constant */
        case 2: z[e] = e == E / 2 ? scale : 0.0f; break;
        case 3: z[e] = e == E / 3 ? -scale : 0.0f; break;
        case 4: z[e] = (e % 2 ? -scale : scale) * (0.5f + 0.5f * fabsf(normal[e])) / 2.0f; break;
        case 5: z[e] = scale * (1.0f + 1e-3f * normal[e]); break;
        default: z[e] = e % 3 == 0 ? FLT_MAX : e % 3 == 1 ? -FLT_MAX : normal[e] * scale; break;
        }
        if (!isfinite(z[e])) /* finite logits only: a product past FLT_MAX is FLT_MAX */
            z[e] = z[e] > 0 ? FLT_MAX : -FLT_MAX;
    }
}

/* The reference in long double from the same float logits: shifted by the
 * maximum, nothing rounds away. */
typedef struct row_reference {
    long double entropy, log_norm; /* nats */
    long double shannon;           /* entropy / log E */
    long double tsallis[3];        /* normalised, q = tsallis_q[i] */
    long double mass;              /* of the two largest */
} row_reference;

static const double tsallis_q[3] = {0.5, 1.1, 3.0};

static row_reference reference_row(const float *z, int E, const int32_t *ids, int K)
{
    long double m = z[0];
    for (int e = 1; e < E; e++)
        m = z[e] > m ? z[e] : m;
    long double sum = 0, dot = 0;
    for (int e = 0; e < E; e++) {
        long double x = (long double)z[e] - m;
        sum += expl(x);
        dot += expl(x) * x;
    }
    row_reference r;
    r.log_norm = logl(sum);
    r.entropy = r.log_norm - dot / sum;
    r.shannon = r.entropy / logl((long double)E);
    for (int i = 0; i < 3; i++) {
        long double q = tsallis_q[i], power = 0;
        for (int e = 0; e < E; e++)
            power += expl(q * (((long double)z[e] - m) - r.log_norm));
        r.tsallis[i] = (1 - power) / (1 - powl((long double)E, 1 - q));
    }
    r.mass = 0;
    for (int j = 0; j < K; j++)
        r.mass += expl(((long double)z[ids[j]] - m) - r.log_norm);
    return r;
}

/* Every row above as its own layer of one token: router_entropy,
 * tsallis_entropy (q = 0.5, 1.1, 3) and selected_mass stay in [0, 1] and
 * agree with the long-double reference to 1e-6 (the engine's softmax is
 * float32, about 1e-7 relative); the kernel's entropy and log_norm agree
 * to 1e-6 of log E. Constant rows give exactly 1. */
static void check_extreme_rows(int E)
{
    enum { K = 2 };
    const int L = SCALES * KINDS;
    float *z = malloc(sizeof(float) * (size_t)L * (size_t)E);
    float *normal = rs_test_random_logits(1, L, E, 23);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)L * K);
    float *w = malloc(sizeof(float) * (size_t)L * K), vals[K];
    ck_assert(z && ids && w);
    for (int s = 0; s < SCALES; s++)
        for (int k = 0; k < KINDS; k++) {
            int l = s * KINDS + k;
            extreme_row(z + (size_t)l * E, E, k, row_scales[s], normal + (size_t)l * E);
            rs_topk_indices(z + (size_t)l * E, E, K, ids + (size_t)l * K, vals);
            w[l * K] = w[l * K + 1] = 0.5f;
        }
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 1, L, E, z);
    rs_decisions d = {.kmax = K, .ids = ids, .weights = w};
    rs_trace_info info = {.path = "x.h5", .num_layers = L, .num_experts = E, .has_logits = 1, .unit = "token"};
    rs_metric_sink sinks[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        char q[32];
        snprintf(q, sizeof q, "q=%g", tsallis_q[i]);
        void *acc = make_acc(&info, K, q);
        update(acc, &tc.chunk, &d);
        family()->finalize(acc, &sinks[i]);
        family()->destroy(acc);
    }
    const double tol = 1e-6, log_e = log((double)E);
    for (int l = 0; l < L; l++) {
        const float *row = z + (size_t)l * E;
        row_reference r = reference_row(row, E, ids + (size_t)l * K, K);
        const int kind = l % KINDS;
        const double scale = row_scales[l / KINDS];
        ck_assert_msg(tc.entropy[l] >= 0 && fabsl(tc.entropy[l] - r.entropy) <= tol * log_e &&
                          fabsl(tc.log_norm[l] - r.log_norm) <= tol * log_e,
                      "E=%d kind %d scale %g: kernel entropy %.17g log_norm %.17g, reference %.17Lg %.17Lg", E, kind,
                      scale, tc.entropy[l], tc.log_norm[l], r.entropy, r.log_norm);
        const double shannon = value(&sinks[1], "router_entropy", l), mass = value(&sinks[1], "selected_mass", l);
        ck_assert_msg(shannon >= 0 && shannon <= 1 && fabsl(shannon - r.shannon) <= tol,
                      "E=%d kind %d scale %g: router_entropy %.17g, reference %.17Lg", E, kind, scale, shannon,
                      r.shannon);
        if (kind == 1)
            ck_assert_msg(shannon == 1.0, "E=%d constant row of %g: router_entropy %.17g, not 1", E, scale, shannon);
        ck_assert_msg(mass >= 0 && mass <= 1 && fabsl(mass - r.mass) <= tol,
                      "E=%d kind %d scale %g: selected_mass %.17g, reference %.17Lg", E, kind, scale, mass, r.mass);
        for (int i = 0; i < 3; i++) {
            const double v = value(&sinks[i], "tsallis_entropy", l);
            ck_assert_msg(v >= 0 && v <= 1 && fabsl(v - r.tsallis[i]) <= tol,
                          "E=%d kind %d scale %g q=%g: tsallis_entropy %.17g, reference %.17Lg", E, kind, scale,
                          tsallis_q[i], v, r.tsallis[i]);
        }
    }
    for (int i = 0; i < 3; i++)
        rs_metric_sink_free(&sinks[i]);
    rs_test_chunk_free(&tc);
    free(z);
    free(normal);
    free(ids);
    free(w);
}

START_TEST(entropies_in_range_for_any_scale)
{
    const int widths[] = {2, 8, 37, 64, 256};
    check_extreme_rows(widths[_i]);
}
END_TEST

/* Tokens whose rows mix every scale above: results.csv is the same bytes
 * for 1 and 2 threads and three chunk sizes, and every entropy in it lies
 * in [0, 1]. */
START_TEST(extreme_logits_thread_and_chunk_invariant)
{
    enum { T = 300, L = 2, E = 8, S = 3 };
    const int64_t offsets[S + 1] = {0, 120, 121, 300};
    float *normal = rs_test_random_logits(T, L, E, 31), *z = malloc(sizeof(float) * T * L * E);
    ck_assert_ptr_nonnull(z);
    for (int r = 0; r < T * L; r++)
        extreme_row(z + (size_t)r * E, E, r % KINDS, row_scales[(r / KINDS) % SCALES], normal + (size_t)r * E);
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = S, .offsets = offsets, .logits = z, .top_k = 2};
    char *csv = rs_test_config_csv("extreme", &tt,
                                   "\"routers\": [\"topk:k=2\", \"topp:p=0.9\"], "
                                   "\"metrics\": [{\"name\": \"entropy\", \"params\": {\"q\": [0.5, 1.1, 3]}}]",
                                   300, 7, 64);
    int values = 0;
    for (const char *line = strstr(csv, "entropy."); line; line = strstr(line + 1, "entropy.")) {
        if (strncmp(line, "entropy.router_entropy,", 23) && strncmp(line, "entropy.tsallis_entropy,", 24) &&
            strncmp(line, "entropy.selected_mass,", 22))
            continue;
        const char *v = strrchr(strchr(line, '\n') ? line : line, ','); /* the value ends the line */
        const char *end = strchr(line, '\n');
        for (const char *c = line; c < end; c++)
            if (*c == ',')
                v = c;
        double x = strtod(v + 1, NULL);
        ck_assert_msg(x >= 0 && x <= 1, "out of [0, 1]: %.*s", (int)(end - line), line);
        values++;
    }
    ck_assert_int_eq(values, 2 * (L + 1) * (1 + 3 + 1));
    free(csv);
    free(z);
    free(normal);
}
END_TEST

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* A sweep of q: only tsallis_entropy's key names q, and the other outputs
 * are filed once; results.csv is the same for 1 and 2 threads and two
 * chunk sizes. */
START_TEST(entropy_cli_keys_threads_and_chunks)
{
    enum { T = 300, L = 2, E = 8, S = 3 };
    const int64_t offsets[S + 1] = {0, 100, 101, 300};
    float *z = rs_test_random_logits(T, L, E, 17);
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = S, .offsets = offsets, .logits = z, .top_k = 2};
    const char *trace = rs_test_path("ent.h5");
    rs_test_write_trace(trace, &tt);
    free(z);
    const char *config = rs_test_path("ent.json");
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"name\": \"ent\", \"traces\": [\"%s\"], \"routers\": [\"topk:k=2\", \"topp:p=0.5\"], "
            "\"metrics\": [{\"name\": \"entropy\", \"params\": {\"q\": [1.1, 2]}}], \"batch_tokens\": 50}",
            trace);
    fclose(f);
    char *ref = rs_test_invariant_csv(config, 29, 300, 300);
    /* 2 routers x (L + 1) rows per output and key */
    ck_assert_int_eq(count(ref, ",entropy.router_entropy,,"), 2 * (L + 1));
    ck_assert_int_eq(count(ref, ",entropy.tsallis_entropy,q=1.1,"), 2 * (L + 1));
    ck_assert_int_eq(count(ref, ",entropy.tsallis_entropy,q=2,"), 2 * (L + 1));
    ck_assert_int_eq(count(ref, ",entropy.z_loss,,"), 2 * (L + 1));
    ck_assert_int_eq(count(ref, ",entropy.topk_margin,,"), 2 * (L + 1));
    free(ref);
}
END_TEST

Suite *metrics_entropy_suite(void)
{
    Suite *s = suite_create("metrics_entropy");
    TCase *tc = tcase_create("entropy");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tsallis_and_z_loss_hand_case);
    tcase_add_test(tc, tsallis_extremes);
    tcase_add_loop_test(tc, entropies_in_range_for_any_scale, 0, 5);
    tcase_add_test(tc, extreme_logits_thread_and_chunk_invariant);
    tcase_add_test(tc, topk_margin_hand_case);
    tcase_add_test(tc, topk_margin_matches_sorting);
    tcase_add_test(tc, entropy_parameter_errors);
    tcase_add_test(tc, entropy_merge_equals_whole);
    tcase_add_test(tc, entropy_cli_keys_threads_and_chunks);
    suite_add_tcase(s, tc);
    return s;
}
