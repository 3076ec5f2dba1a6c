/* The embedding API (include/routesim/embed.h): rs_route writes what
 * `routesim route --csv` writes, and a callback router (a top-k written as
 * a host function) gives the built-in topk's metrics to the last digit,
 * with and without the capacity stage, across threads and chunk sizes;
 * failing, malformed and stateful callbacks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/embed.h"
#include "routesim/plugin.h"
#include "tests/test_util.h"
#include "version.h"

static const char *trace_path(void)
{
    static char path[1100];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", rs_test_path("embed.h5"));
        int T = 700, L = 3, E = 8;
        float *logits = rs_test_random_logits(T, L, E, 11);
        for (int t = 0; t < 40; t++) /* ties: equal logits at a few tokens */
            logits[(size_t)t * L * E + 1] = logits[(size_t)t * L * E + 2];
        int64_t offsets[] = {0, 150, 151, 420, 700};
        int32_t *ids = malloc(T * sizeof *ids);
        for (int t = 0; t < T; t++)
            ids[t] = (t * 7) % 50;
        rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 4, .offsets = offsets, .logits = logits, .token_ids = ids};
        rs_test_write_trace(path, &tt);
        free(logits);
        free(ids);
    }
    return path;
}

/* The metric columns (metric,key,layer,value) of a results.csv: the run,
 * trace, router and params columns name the router and so differ. */
static char *metric_columns(const char *csv_path)
{
    char *text = rs_test_read_file(csv_path);
    ck_assert_ptr_nonnull(text);
    char *out = malloc(strlen(text) + 1), *w = out;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const char *p = line;
        for (int field = 0; field < 5; field++) { /* quoted fields may hold commas */
            int quoted = 0;
            while (*p && (quoted || *p != ','))
                quoted ^= *p++ == '"';
            ck_assert_int_eq(*p, ',');
            p++;
        }
        w += sprintf(w, "%s\n", p);
    }
    free(text);
    return out;
}

/* Top-k of the softmax, ties to the lower index, weights p (topk:renorm=0). */
static int host_topk(rs_block *b, char *msg, size_t size)
{
    (void)msg;
    (void)size;
    int k = atoi(strstr(b->params, "k=") + 2);
    for (int t = 0; t < b->n; t++) {
        const float *p = b->probs + (size_t)t * b->probs_stride;
        int32_t *ids = b->ids + (size_t)t * b->out_stride;
        float *w = b->weights + (size_t)t * b->out_stride;
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < b->num_experts; e++) {
                int taken = 0;
                for (int i = 0; i < j; i++)
                    taken |= ids[i] == e;
                if (!taken && (best < 0 || p[e] > p[best]))
                    best = e;
            }
            ids[j] = best;
            w[j] = p[best];
        }
    }
    return 0;
}

static void register_router(const char *name, int kmax, int stateful, const char *params, rs_block_fn fn, void *user)
{
    rs_callback_router desc = {.struct_size = sizeof desc,
                               .name = name,
                               .kmax = kmax,
                               .stateful = stateful,
                               .params = params,
                               .fn = fn,
                               .user = user};
    rs_error err = {{0}};
    ck_assert_msg(rs_callback_router_register(&desc, &err) == 0, "%s", err.msg);
}

static int route(const char *router, const char *metrics, int threads, int chunk, const char *csv, const char *out,
                 rs_error *err)
{
    rs_route_options opt;
    rs_route_options_init(&opt);
    opt.trace = trace_path();
    opt.router = router;
    opt.metrics = metrics;
    opt.threads = threads;
    opt.chunk_tokens = chunk;
    opt.batch_tokens = 64;
    opt.results_csv = csv;
    opt.decisions = out;
    return rs_route(&opt, err);
}

START_TEST(version_and_sizes)
{
    ck_assert_str_eq(rs_version(), ROUTESIM_VERSION);
    int n = 0;
    const size_t *sizes = rs_struct_sizes(&n);
    ck_assert_int_eq(n, RS_PLUGIN_NUM_STRUCTS + 3);
    ck_assert_uint_eq(sizes[0], sizeof(rs_error));
    ck_assert_uint_eq(sizes[n - 3], sizeof(rs_route_options));
    ck_assert_uint_eq(sizes[n - 2], sizeof(rs_block));
    ck_assert_uint_eq(sizes[n - 1], sizeof(rs_callback_router));
    rs_route_options opt;
    rs_route_options_init(&opt);
    opt.struct_size = 8;
    rs_error err = {{0}};
    ck_assert_int_ne(rs_route(&opt, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "rebuild the binding"));
}
END_TEST

START_TEST(route_writes_what_the_cli_writes)
{
    char lib_csv[1100];
    snprintf(lib_csv, sizeof lib_csv, "%s", rs_test_path("lib/results.csv"));
    rs_error err = {{0}};
    ck_assert_msg(route("topk:k=2,capacity_factor=1", "load,entropy,agreement", 2, 100, lib_csv, NULL, &err) != 0,
                  "agreement needs a reference");
    rs_route_options opt;
    rs_route_options_init(&opt);
    opt.trace = trace_path();
    opt.router = "topk:k=2,capacity_factor=1";
    opt.metrics = "load,entropy,agreement";
    opt.reference = "topk:k=1";
    opt.batch_tokens = 64;
    opt.results_csv = lib_csv;
    ck_assert_msg(rs_route(&opt, &err) == 0, "%s", err.msg);
    char cmd[4000];
    const char *cli_csv = rs_test_path("cli.csv");
    snprintf(cmd, sizeof cmd,
             "route %s --router topk:k=2,capacity_factor=1 --metrics load,entropy,agreement --reference topk:k=1 "
             "--batch-tokens 64 --csv %s --no-progress",
             trace_path(), cli_csv);
    ck_assert_int_eq(rs_test_run_cli(cmd, NULL, NULL), 0);
    char *a = rs_test_read_file(lib_csv), *b = rs_test_read_file(cli_csv);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(a, b);
    ck_assert_ptr_nonnull(strstr(a, "agreement."));
    free(a);
    free(b);
}
END_TEST

START_TEST(callback_topk_equals_builtin)
{
    register_router("host_topk", 4, 0, "k=2", host_topk, NULL);
    static const char *const stages[] = {"", ",capacity_factor=1", ",capacity_factor=1.25,drop_policy=probs"};
    static const int threads[] = {1, 3}, chunks[] = {0, 97};
    for (size_t s = 0; s < sizeof stages / sizeof *stages; s++) {
        char builtin[200], host[200];
        snprintf(builtin, sizeof builtin, "topk:k=3,renorm=0%s", stages[s]);
        snprintf(host, sizeof host, "host_topk:k=3%s", stages[s]);
        rs_error err = {{0}};
        const char *want_csv = rs_test_path("builtin.csv");
        ck_assert_msg(route(builtin, "load,entropy,locality", 1, 0, want_csv, NULL, &err) == 0, "%s", err.msg);
        char *want = metric_columns(want_csv);
        for (int i = 0; i < 2; i++) {
            for (int c = 0; c < 2; c++) {
                const char *got_csv = rs_test_path("host.csv");
                ck_assert_msg(route(host, "load,entropy,locality", threads[i], chunks[c], got_csv, NULL, &err) == 0,
                              "%s", err.msg);
                char *got = metric_columns(got_csv);
                ck_assert_msg(strcmp(got, want) == 0, "%s with %d threads, chunks of %d: metrics differ", host,
                              threads[i], chunks[c]);
                free(got);
            }
        }
        free(want);
    }
}
END_TEST

static int fails(rs_block *b, char *msg, size_t size)
{
    if (b->layer == 1 && b->t0 + b->n > 300)
        snprintf(msg, size, "ValueError: no good");
    return b->layer == 1 && b->t0 + b->n > 300;
}

static int out_of_range(rs_block *b, char *msg, size_t size)
{
    host_topk(b, msg, size);
    b->ids[b->out_stride * (size_t)(b->n - 1)] = (int32_t)b->num_experts;
    return 0;
}

static int twice(rs_block *b, char *msg, size_t size)
{
    host_topk(b, msg, size);
    b->ids[1] = b->ids[0];
    return 0;
}

static void expect_failure(const char *router, const char *want)
{
    char out[1100];
    snprintf(out, sizeof out, "%s", rs_test_path("failed-decisions.h5"));
    const char *csv = rs_test_path("failed/results.csv");
    rs_error err = {{0}};
    ck_assert_int_ne(route(router, "load", 2, 128, csv, out, &err), 0);
    ck_assert_msg(strstr(err.msg, want) != NULL, "'%s' not in '%s'", want, err.msg);
    ck_assert_msg(strncmp(err.msg, "router ", 7) == 0, "the message names the router: %s", err.msg);
    ck_assert(!rs_test_file_exists(out));
    ck_assert(!rs_test_file_exists(csv));
}

START_TEST(failing_callbacks_stop_the_run)
{
    register_router("host_fails", 2, 0, NULL, fails, NULL);
    register_router("host_out_of_range", 2, 0, "k=2", out_of_range, NULL);
    register_router("host_twice", 2, 0, "k=2", twice, NULL);
    expect_failure("host_fails", "router host_fails: layer 1, tokens ");
    expect_failure("host_fails", "ValueError: no good");
    expect_failure("host_out_of_range", "expert id 8 out of range [0, 8)");
    expect_failure("host_twice", "chosen twice");
}
END_TEST

/* Per layer, the next token a stateful router must see. */
typedef struct order_log {
    int64_t next[3];
    int bad;
    int64_t seq_seen, pos_bad;
} order_log;

static int check_order(rs_block *b, char *msg, size_t size)
{
    order_log *log = b->user;
    if (b->t0 != log->next[b->layer])
        log->bad++;
    log->next[b->layer] = b->t0 + b->n;
    static const int64_t offsets[] = {0, 150, 151, 420, 700};
    for (int t = 0; t < b->n; t++) {
        int64_t g = b->t0 + t, s = b->sequence[t];
        if (s < 0 || s > 3 || g < offsets[s] || g >= offsets[s + 1] || b->position[t] != g - offsets[s])
            log->pos_bad++;
        if (b->token_ids[t] != (int32_t)((g * 7) % 50))
            log->pos_bad++;
    }
    return host_topk(b, msg, size);
}

START_TEST(stateful_callback_sees_layers_in_order)
{
    order_log log = {{0}, 0, 0, 0};
    register_router("host_ordered", 2, 1, "k=1", check_order, &log);
    rs_error err = {{0}};
    ck_assert_msg(route("host_ordered", "load", 3, 100, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(log.bad, 0);
    ck_assert_int_eq(log.pos_bad, 0);
    for (int l = 0; l < 3; l++)
        ck_assert_int_eq(log.next[l], 700);
}
END_TEST

static char seen_params[256];

static int remember_params(rs_block *b, char *msg, size_t size)
{
    snprintf(seen_params, sizeof seen_params, "%s", b->params);
    return host_topk(b, msg, size);
}

START_TEST(parameters_and_registration)
{
    register_router("host_params", 2, 0, "k=1,temp=0.5,greedy=true,mode=fast", remember_params, NULL);
    rs_error err = {{0}};
    ck_assert_msg(route("host_params:k=2,mode=slow,capacity_factor=2", "load", 1, 0, NULL, NULL, &err) == 0, "%s",
                  err.msg);
    ck_assert_str_eq(seen_params, "greedy=1,k=2,mode=slow,temp=0.5");
    ck_assert_int_ne(route("host_params:temp=hot", "load", 1, 0, NULL, NULL, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "temp"));
    /* re-registering replaces; a built-in name is refused */
    register_router("host_params", 3, 0, "k=3", remember_params, NULL);
    ck_assert_msg(route("host_params", "load", 1, 0, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(seen_params, "k=3");
    rs_callback_router desc = {.struct_size = sizeof desc, .name = "topk", .kmax = 2, .fn = host_topk};
    ck_assert_int_ne(rs_callback_router_register(&desc, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "built-in or plugin router"));
    desc.name = "bad:name";
    ck_assert_int_ne(rs_callback_router_register(&desc, &err), 0);
    desc.name = "host_zero";
    desc.kmax = 0;
    ck_assert_int_ne(rs_callback_router_register(&desc, &err), 0);
    char *json = rs_routers_json(&err);
    ck_assert_ptr_nonnull(json);
    ck_assert_ptr_nonnull(strstr(json, "\"name\":\"host_params\""));
    rs_free(json);
}
END_TEST

START_TEST(descriptions_as_json)
{
    rs_error err = {{0}};
    char *info = rs_trace_info_json(trace_path(), &err);
    ck_assert_msg(info != NULL, "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(info, "\"num_tokens\":700"));
    ck_assert_ptr_nonnull(strstr(info, "\"num_sequences\":4"));
    ck_assert_ptr_nonnull(strstr(info, "\"has_token_ids\":true"));
    rs_free(info);
    ck_assert_ptr_null(rs_trace_info_json(rs_test_path("missing.h5"), &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "missing.h5"));
    char *metrics = rs_metrics_json(&err);
    ck_assert_ptr_nonnull(metrics);
    ck_assert_ptr_nonnull(strstr(metrics, "\"name\":\"load\""));
    ck_assert_ptr_nonnull(strstr(metrics, "\"name\":\"curve\""));
    rs_free(metrics);
}
END_TEST

Suite *embed_suite(void)
{
    Suite *s = suite_create("embed");
    TCase *tc = tcase_create("embed");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, version_and_sizes);
    tcase_add_test(tc, route_writes_what_the_cli_writes);
    tcase_add_test(tc, callback_topk_equals_builtin);
    tcase_add_test(tc, failing_callbacks_stop_the_run);
    tcase_add_test(tc, stateful_callback_sees_layers_in_order);
    tcase_add_test(tc, parameters_and_registration);
    tcase_add_test(tc, descriptions_as_json);
    suite_add_tcase(s, tc);
    return s;
}
