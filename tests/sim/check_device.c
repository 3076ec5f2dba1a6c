/* The device path (--device gpu, docs/gpu.md) against the CPU path, end to
 * end through the binary. Without an offload device GCC runs the target
 * regions on the host (ROUTESIM_ALLOW_HOST_FALLBACK=1), so these tests
 * check the device code's arithmetic and the engine's plumbing on any
 * machine: results.csv must be byte-identical to --device cpu for every
 * router with a device hook, on bf16 and f32 traces, several chunk sizes
 * and thread counts, and the run must say the router ran on the device (a
 * hook that went missing fails the test). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#define FALLBACK "ROUTESIM_ALLOW_HOST_FALLBACK"

/* The metrics every comparison measures (each test runs in its own process). */
static const char *metrics = "load,entropy,activation";

/* Every router with a device hook, in configurations the device takes
 * (softmax and sigmoid scoring, with and without renormalisation, groups). */
static const char *const device_routers[] = {
    "topk:k=2",
    "topk:k=6,renorm=0,scale=1.5",
    "pnorm_topk:k=4",
    "group_limited:n_group=8,topk_group=3,k=6",
    "group_limited:n_group=4,topk_group=4,k=3",
    "deepseek_v3:n_group=8,topk_group=4,k=8",
    "deepseek_v3:n_group=1,topk_group=1,k=4",
    "sqrt_softplus:k=6",
    "random:k=3,seed=7",
    "topp:p=0.7",
    "threshold:t=0.6",
    "dynmole:h_max=1,top_p=0.5,keep_top_k=1",
    "hash",
    "hash:mode=balanced",
    "hash:mode=pair,seed=2",
    "sigmoid_topk:k=2",
    "sigmoid_topk:k=6,renorm=1",
    "null_experts:n_null=4,k=6,c=0.5",
    "topk:k=2,capacity_factor=1,drop_policy=random", /* the capacity stage on the CPU after the device */
};

/* A DeepSeek-V3-shaped trace (sigmoid scoring, a selection bias, 256
 * experts in 8 groups) stored as bf16, and a 64-expert f32 one. */
static const char *bf16_trace(void)
{
    static char path[4096]; /* rs_test_path's buffers rotate */
    snprintf(path, sizeof path, "%s", rs_test_path("ds_bf16.h5"));
    if (!rs_test_file_exists(path))
        ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("gen --preset deepseek-v3 --layers 2 --tokens 400 --seed 3 "
                                                     "--dtype bfloat16 --no-progress -o %s",
                                                     path),
                                         NULL, NULL),
                         0);
    return path;
}

static const char *f32_trace(void)
{
    static char path[4096]; /* rs_test_path's buffers rotate */
    snprintf(path, sizeof path, "%s", rs_test_path("olmoe_f32.h5"));
    if (!rs_test_file_exists(path))
        ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("gen --preset olmoe --layers 3 --tokens 500 --seed 5 "
                                                     "--no-progress -o %s",
                                                     path),
                                         NULL, NULL),
                         0);
    return path;
}

/* results.csv of `route` on the device (host fallback) or the CPU; err
 * receives stderr. */
static char *route_csv(const char *trace, const char *router, const char *device, int chunk, int threads,
                       const char *extra, char **err)
{
    static int count;
    char csv[4096];
    snprintf(csv, sizeof csv, "%s", rs_test_path(rs_test_cmd("route_%d.csv", count++)));
    char *out = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("route %s --router '%s' --metrics %s --device %s --chunk-tokens %d "
                                         "--threads %d --no-progress --csv %s %s",
                                         trace, router, metrics, device, chunk, threads, csv, extra ? extra : ""),
                             &out, err);
    ck_assert_msg(rc == 0, "%s on %s (%s): %s", router, trace, device, err && *err ? *err : "");
    free(out);
    char *text = rs_test_read_file(csv);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* Routers whose scores are not the softmax (entropy reads their own
 * normalised scores, computed with libm: entropy stays on the CPU). */
static int softmax_scored(const char *router)
{
    return strncmp(router, "deepseek_v3", 11) != 0 && strncmp(router, "sigmoid_topk", 12) != 0 &&
           strncmp(router, "sqrt_softplus", 13) != 0;
}

/* The router ran on the device, as the run's one line says, and so did
 * the activation metric unless a capacity stage follows the router. */
static void check_on_device(const char *err, const char *router)
{
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(router, ":"), router);
    const char *line = strstr(err, "routesim: device gpu:");
    ck_assert_msg(line, "no device line for %s: %s", router, err);
    const char *on = strstr(line, "on the device:"), *cpu = strstr(line, "on the CPU:");
    const char *at = on ? strstr(on, name) : NULL;
    ck_assert_msg(on && cpu && at && at < cpu, "%s did not run on the device: %s", router, line);
    if (!strstr(router, "capacity")) {
        const char *metrics = strstr(on, ", metrics "), *activation = metrics ? strstr(metrics, "activation") : NULL;
        ck_assert_msg(activation && activation < cpu, "%s: activation was not measured on the device: %s", router,
                      line);
        /* entropy of a softmax-scored router runs there too (other scorings
         * need libm per expert), and then the host computes no softmax */
        const char *entropy = strstr(metrics, "entropy");
        if (softmax_scored(router))
            ck_assert_msg(entropy && entropy < cpu && strstr(line, "softmax on the host: no"),
                          "%s: entropy was not measured on the device, or the host ran the softmax: %s", router, line);
        else
            ck_assert_msg(!entropy || entropy > cpu, "%s: entropy on the device for a router not scored by softmax: %s",
                          router, line);
    }
    /* the host widens and checks the logits only when something there reads
     * them: entropy or load of a router not scored by softmax, the capacity
     * stage, null_experts' weights */
    const int device_widens =
        softmax_scored(router) && !strstr(router, "capacity") && strncmp(router, "null_experts", 12) != 0;
    ck_assert_msg(strstr(line, device_widens ? "logits widened and checked on the device"
                                             : "logits widened and checked on the host"),
                  "%s: %s", router, line);
}

/* Two files hold the same bytes. */
static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int x = fgetc(fa), y = fgetc(fb);
        same = x == y;
        if (x == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

/* results.csv, and the decisions file (ids and weights, which these
 * metrics do not read), of --device gpu equal --device cpu's. */
static void compare_paths(const char *trace, const char *router)
{
    static const int chunks[] = {400, 97, 33};
    setenv(FALLBACK, "1", 1);
    char cpu_decisions[4096], gpu_decisions[4096], cpu_out[4200], gpu_out[4200]; /* the helpers' buffers rotate */
    snprintf(cpu_decisions, sizeof cpu_decisions, "%s", rs_test_path("cpu_decisions.h5"));
    snprintf(gpu_decisions, sizeof gpu_decisions, "%s", rs_test_path("gpu_decisions.h5"));
    snprintf(cpu_out, sizeof cpu_out, "--force --out %s", cpu_decisions);
    snprintf(gpu_out, sizeof gpu_out, "--force --out %s", gpu_decisions);
    char *reference = route_csv(trace, router, "cpu", 400, 1, cpu_out, NULL);
    ck_assert_msg(strchr(reference, '\n') && strstr(reference, "load"), "%s: no rows", router);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        for (int threads = 1; threads <= 2; threads++) {
            /* with 2 threads no decisions file: nothing on the CPU reads the
             * decisions of a router whose metrics all ran on the device, and
             * they stay there */
            char *err = NULL;
            char *gpu = route_csv(trace, router, "gpu", chunks[c], threads, threads == 1 ? gpu_out : NULL, &err);
            check_on_device(err, router);
            ck_assert_msg(strcmp(gpu, reference) == 0, "%s on %s: --device gpu (chunks of %d, %d threads) differs "
                          "from --device cpu", router, trace, chunks[c], threads);
            if (threads == 1)
                ck_assert_msg(same_file(gpu_decisions, cpu_decisions), "%s on %s: decisions of --device gpu (chunks "
                              "of %d, %d threads) differ from --device cpu's", router, trace, chunks[c], threads);
            free(gpu);
            free(err);
        }
    }
    free(reference);
}

START_TEST(test_device_routers_bf16)
{
    compare_paths(bf16_trace(), device_routers[_i]);
}
END_TEST

START_TEST(test_device_routers_f32)
{
    if (strncmp(device_routers[_i], "deepseek_v3", 11) == 0) /* needs 256 experts in 8 groups: bf16 trace only */
        return;
    compare_paths(f32_trace(), device_routers[_i]);
}
END_TEST

/* With only the metrics that have device hooks, nothing on the CPU reads
 * the decisions or the softmax: they stay on the device, and the results
 * are still the CPU's. */
START_TEST(test_device_metrics_on_device)
{
    static const char *const routers[] = {"topk:k=4", "topp:p=0.7", "hash", "random:k=2", "deepseek_v3"};
    metrics = "load,activation";
    setenv(FALLBACK, "1", 1);
    for (size_t i = 0; i < sizeof routers / sizeof routers[0]; i++) {
        char *err = NULL;
        char *cpu = route_csv(bf16_trace(), routers[i], "cpu", 97, 2, NULL, NULL);
        char *gpu = route_csv(bf16_trace(), routers[i], "gpu", 97, 2, NULL, &err);
        ck_assert_msg(strcmp(gpu, cpu) == 0, "%s: --device gpu differs from --device cpu", routers[i]);
        /* load's aux_loss needs libm for sigmoid scoring: deepseek_v3's load runs on the CPU */
        const char *want = strncmp(routers[i], "deepseek", 8) == 0 ? "metrics activation;" : "metrics load, activation;";
        ck_assert_msg(strstr(err, want), "%s: %s", routers[i], err);
        free(cpu);
        free(gpu);
        free(err);
    }
}
END_TEST

/* entropy's parameters and output subsets on the device: q = 1 (tsallis
 * is router_entropy), q != 1 (the device's power sums), a fixed k below and
 * above the small-rank buffer of topk_margin (Wirth's selection on the
 * device), and outputs that leave slots of the per-row values out. The
 * results equal the CPU's and entropy is measured on the device. */
START_TEST(test_device_entropy_params)
{
    static const char *const variants[] = {
        "entropy:q=[1,0.5,2],k=[1,20]",
        "entropy.router_entropy,entropy.z_loss",
        "load,entropy.topk_margin,entropy.selected_mass,activation",
    };
    static const char *const routers[] = {"topk:k=4", "topp:p=0.6"};
    setenv(FALLBACK, "1", 1);
    for (int f32 = 0; f32 <= 1; f32++)
        for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
            for (size_t r = 0; r < sizeof routers / sizeof routers[0]; r++) {
                metrics = variants[v];
                const char *trace = f32 ? f32_trace() : bf16_trace();
                char *err = NULL;
                char *cpu = route_csv(trace, routers[r], "cpu", 97, 2, NULL, NULL);
                char *gpu = route_csv(trace, routers[r], "gpu", 97, 2, NULL, &err);
                ck_assert_msg(strstr(cpu, "entropy."), "%s: no entropy rows", variants[v]);
                ck_assert_msg(strcmp(gpu, cpu) == 0, "%s with %s on %s: --device gpu differs from --device cpu",
                              variants[v], routers[r], trace);
                const char *on = strstr(err, "on the device:"), *cpu_part = on ? strstr(on, "on the CPU:") : NULL;
                const char *entropy = on ? strstr(on, "entropy") : NULL;
                ck_assert_msg(entropy && entropy < cpu_part && strstr(err, "softmax on the host: no"), "%s: %s",
                              variants[v], err);
                free(cpu);
                free(gpu);
                free(err);
            }
}
END_TEST

/* float16 logits go to the device as stored and are widened there: the
 * same floats as the host's widening. */
START_TEST(test_device_f16)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", rs_test_path("f16.h5"));
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("gen --preset olmoe --layers 2 --tokens 300 --seed 8 "
                                                 "--dtype float16 --no-progress -o %s",
                                                 path),
                                     NULL, NULL),
                     0);
    compare_paths(path, "topk:k=8");
    compare_paths(path, "threshold:t=0.5");
}
END_TEST

/* Configurations a hook declines (k beyond its scratch, p != 1 needing
 * pow) and routers without one run on the CPU, with the CPU's results, and
 * the line says so. */
START_TEST(test_device_declined_on_cpu)
{
    static const char *const routers[] = {"pnorm_topk:k=4,p=2", "topk:k=65", "dynmole", "switch"};
    const char *trace = bf16_trace();
    setenv(FALLBACK, "1", 1);
    for (size_t i = 0; i < sizeof routers / sizeof routers[0]; i++) {
        char *err = NULL;
        char *cpu = route_csv(trace, routers[i], "cpu", 128, 2, NULL, NULL);
        char *gpu = route_csv(trace, routers[i], "gpu", 128, 2, NULL, &err);
        ck_assert_str_eq(gpu, cpu);
        const char *line = strstr(err, "on the CPU: routers ");
        ck_assert_msg(line && strstr(line, rs_test_cmd("%.*s", (int)strcspn(routers[i], ":"), routers[i])),
                      "%s: %s", routers[i], err);
        free(cpu);
        free(gpu);
        free(err);
    }
}
END_TEST

/* Without a device and without the fallback variable: one line, exit 1,
 * no results file. (Skipped on a machine that has a device.) */
START_TEST(test_device_missing_fails)
{
    unsetenv(FALLBACK);
    const char *csv = rs_test_path("none.csv");
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --device gpu --no-progress --csv %s",
                                         f32_trace(), csv),
                             &out, &err);
    if (rc == 0 && strstr(err, "OpenMP device")) { /* a real device is present */
        free(out);
        free(err);
        return;
    }
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "--device gpu: no GPU found") && strstr(err, FALLBACK "=1"), "%s", err);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
    ck_assert(!rs_test_file_exists(csv));
    rc = rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --device tpu", f32_trace()), NULL, NULL);
    ck_assert_int_ne(rc, 0);
    free(out);
    free(err);
}
END_TEST

/* "device": "gpu" in a config: the same results.csv as "device": "cpu";
 * another value is refused naming the field. */
START_TEST(test_device_config)
{
    const char *trace = bf16_trace();
    char *csv[2];
    setenv(FALLBACK, "1", 1);
    for (int gpu = 0; gpu <= 1; gpu++) {
        const char *config = rs_test_path(rs_test_cmd("device_%d.json", gpu));
        const char *output = rs_test_path(rs_test_cmd("device_out_%d", gpu));
        FILE *f = fopen(config, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f,
                "{\"traces\": [\"%s\"], \"routers\": [\"topk:k=8\", \"deepseek_v3\", \"pnorm_topk:k=2,p=3\"], "
                "\"metrics\": [\"load\", \"entropy\", \"activation\"], \"output\": \"%s\", \"chunk_tokens\": 150, "
                "\"device\": \"%s\"}\n",
                trace, output, gpu ? "gpu" : "cpu");
        fclose(f);
        char *err = NULL;
        int rc = rs_test_run_cli(rs_test_cmd("run %s --no-plots --no-progress -q", config), NULL, &err);
        ck_assert_msg(rc == 0, "%s", err);
        if (gpu)
            ck_assert_msg(strstr(err, "routers topk, deepseek_v3, metrics load, entropy, activation; on the CPU: routers pnorm_topk"), "%s", err);
        free(err);
        csv[gpu] = rs_test_read_file(rs_test_cmd("%s/results.csv", output));
        ck_assert_ptr_nonnull(csv[gpu]);
    }
    ck_assert_str_eq(csv[1], csv[0]);
    free(csv[0]);
    free(csv[1]);
    const char *bad = rs_test_path("device_bad.json");
    FILE *f = fopen(bad, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"traces\": [\"%s\"], \"routers\": [\"topk:k=2\"], \"device\": \"tpu\"}\n", trace);
    fclose(f);
    char *err = NULL;
    ck_assert_int_ne(rs_test_run_cli(rs_test_cmd("run %s --no-plots --no-progress -q", bad), NULL, &err), 0);
    ck_assert_msg(strstr(err, "device: expected \"cpu\" or \"gpu\""), "%s", err);
    free(err);
}
END_TEST

/* Non-finite logits: the same error without --skip-nonfinite, and the same
 * skipped tokens and results with it, on f32 and bf16 traces, checked on
 * the device (every router and metric there: the host only reads the
 * logits) and on the host (sigmoid_topk finishes its weights from the
 * host's logits). Two traces: an infinity (token 20) before a NaN (token
 * 177), and a NaN first (token 5, the last expert of the last layer: the
 * position of a token's first bad value counts layers too). */
START_TEST(test_device_nonfinite)
{
    enum { T = 300, L = 2, E = 16 };
    static const int64_t offsets[] = {0, 140, 300};
    static const char *const routers[] = {"topk:k=2", "sigmoid_topk:k=2"};
    static const char *const expected[] = {"infinite value at token 20, layer 0, expert 2",
                                           "NaN value at token 5, layer 1, expert 15"};
    setenv(FALLBACK, "1", 1);
    for (int bf16 = 0; bf16 <= 1; bf16++)
        for (int variant = 0; variant <= 1; variant++) {
            char trace[4096];
            snprintf(trace, sizeof trace, "%s", rs_test_path(rs_test_cmd("nan_%d_%d.h5", bf16, variant)));
            float *z = rs_test_random_logits(T, L, E, 4);
            z[(size_t)(177 * L + 1) * E + 5] = NAN;
            if (variant == 0)
                z[(size_t)(20 * L) * E + 2] = INFINITY;
            else {
                z[(size_t)(5 * L + 1) * E + 15] = NAN;
                z[(size_t)(90 * L) * E] = -INFINITY;
            }
            rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 2, .offsets = offsets, .logits = z,
                                .dtype = bf16 ? RS_LOGITS_BF16 : RS_LOGITS_F32};
            rs_test_write_trace(trace, &tt);
            free(z);
            for (size_t r = 0; r < sizeof routers / sizeof routers[0]; r++) {
                const char *where = r == 0 ? "checked on the device" : "checked on the host";
                char *errors[2];
                for (int gpu = 0; gpu <= 1; gpu++) {
                    char *err = NULL;
                    int rc = rs_test_run_cli(rs_test_cmd("route %s --router %s --metrics load,entropy,activation "
                                                         "--device %s --chunk-tokens 64 --no-progress",
                                                         trace, routers[r], gpu ? "gpu" : "cpu"),
                                             NULL, &err);
                    ck_assert_int_ne(rc, 0);
                    const char *line = strstr(err, "routesim: error:");
                    ck_assert_msg(line && strstr(line, expected[variant]), "%s", err);
                    if (gpu)
                        ck_assert_msg(strstr(err, where), "%s: not %s: %s", routers[r], where, err);
                    errors[gpu] = strdup(line);
                    free(err);
                }
                ck_assert_str_eq(errors[1], errors[0]);
                free(errors[0]);
                free(errors[1]);
                for (int chunk = 64; chunk <= 300; chunk += 236) {
                    char *err = NULL;
                    char *cpu = route_csv(trace, routers[r], "cpu", chunk, 2, "--skip-nonfinite", NULL);
                    char *gpu = route_csv(trace, routers[r], "gpu", chunk, 2, "--skip-nonfinite", &err);
                    ck_assert_msg(strcmp(gpu, cpu) == 0, "%s on %s, chunks of %d: --device gpu differs", routers[r],
                                  trace, chunk);
                    ck_assert_msg(strstr(err, variant == 0 ? "skipped 2 tokens" : "skipped 3 tokens") &&
                                      strstr(err, where),
                                  "%s", err);
                    free(cpu);
                    free(gpu);
                    free(err);
                }
            }
        }
}
END_TEST

/* The number of chunks the run's last line reports. */
static int device_chunks(const char *err)
{
    const char *last = NULL;
    for (const char *p = strstr(err, " chunks, "); p; p = strstr(p + 1, " chunks, "))
        last = p;
    ck_assert_msg(last, "no chunk count: %s", err);
    while (last > err && last[-1] >= '0' && last[-1] <= '9')
        last--;
    return atoi(last);
}

/* The memory budget (--memory-mb) counts the logits as the host holds
 * them: a bf16 chunk the device widens takes 2 bytes a logit on the host
 * (the 16-bit words only), one the host widens 6 (the words and their
 * floats), so the same budget holds more tokens a chunk: fewer chunks for
 * topk (every metric on the device) than for sigmoid_topk (its weights
 * read the host's floats), of the same k, and the CPU's results. Computed
 * for this trace (2 layers, 256 experts, 400 tokens, 1 MiB, 1 thread):
 * about 3.3 KB a token (2 chunks) against 7.4 KB (3 chunks). */
START_TEST(test_device_memory_budget)
{
    static const char *const routers[] = {"topk:k=4", "sigmoid_topk:k=4"};
    int chunks[2];
    setenv(FALLBACK, "1", 1);
    for (int r = 0; r < 2; r++) {
        char *cpu = NULL, *gpu = NULL, *err = NULL, *out = NULL;
        const char *csv[2] = {rs_test_path(rs_test_cmd("budget_cpu_%d.csv", r)),
                              rs_test_path(rs_test_cmd("budget_gpu_%d.csv", r))};
        for (int g = 0; g <= 1; g++) {
            int rc = rs_test_run_cli(rs_test_cmd("route %s --router %s --metrics load,entropy,activation --device %s "
                                                 "--memory-mb 1 --threads 1 --no-progress --csv %s",
                                                 bf16_trace(), routers[r], g ? "gpu" : "cpu", csv[g]),
                                     &out, g ? &err : NULL);
            ck_assert_int_eq(rc, 0);
            free(out);
        }
        cpu = rs_test_read_file(csv[0]);
        gpu = rs_test_read_file(csv[1]);
        ck_assert_msg(cpu && gpu && strcmp(cpu, gpu) == 0, "%s: --device gpu differs under --memory-mb 1", routers[r]);
        ck_assert_msg(strstr(err, r == 0 ? "checked on the device" : "checked on the host"), "%s", err);
        chunks[r] = device_chunks(err);
        free(cpu);
        free(gpu);
        free(err);
    }
    ck_assert_msg(chunks[0] == 2 && chunks[1] == 3, "chunks under 1 MiB: %d with the device's widening, %d with the "
                  "host's", chunks[0], chunks[1]);
}
END_TEST

Suite *device_suite(void)
{
    Suite *s = suite_create("device");
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, 240);
    const int n = (int)(sizeof device_routers / sizeof device_routers[0]);
    tcase_add_loop_test(tc, test_device_routers_bf16, 0, n);
    tcase_add_loop_test(tc, test_device_routers_f32, 0, n);
    tcase_add_test(tc, test_device_f16);
    tcase_add_test(tc, test_device_metrics_on_device);
    tcase_add_test(tc, test_device_entropy_params);
    tcase_add_test(tc, test_device_declined_on_cpu);
    tcase_add_test(tc, test_device_missing_fails);
    tcase_add_test(tc, test_device_config);
    tcase_add_test(tc, test_device_nonfinite);
    tcase_add_test(tc, test_device_memory_budget);
    suite_add_tcase(s, tc);
    return s;
}
