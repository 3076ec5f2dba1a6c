/* Sizes of outputs before they are written: the bytes a trace layout takes
 * (worked out by hand below), the check against the limit and the free disk
 * space, and `routesim gen` refusing a trace that would fill the disk. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/output_space.h"
#include "tests/test_util.h"
#include "workloads/trace/trace_size.h"

START_TEST(layout_bytes_by_hand)
{
    /* Per token: logits 2 x 4 x 2 bytes (float16) = 16, top-k ids and weights
     * 2 x 2 x 8 = 32, token id 4, phase 1: 53. Fixed: offsets 4 x 8 = 32,
     * domains 3 x 4 = 12, bias 2 x 4 x 4 = 32: 76. 10 tokens: 530 + 76 = 606. */
    rs_trace_layout tokens = {.num_layers = 2, .num_experts = 4, .logits = RS_LOGITS_F16, .topk_k = 2,
                              .topk_weights = 1, .token_ids = 1, .phase = 1, .num_domains = 3};
    double per_token = 0;
    ck_assert_double_eq(rs_trace_layout_bytes(&tokens, 10, 3, &per_token), 606);
    ck_assert_double_eq(per_token, 53);
    /* Top-k only, no weights: 2 layers x 3 ids x 4 bytes = 24 per token; offsets 2 x 8 = 16. */
    rs_trace_layout topk = {.num_layers = 2, .num_experts = 8, .logits = RS_LOGITS_NONE, .topk_k = 3};
    ck_assert_double_eq(rs_trace_layout_bytes(&topk, 1000, 1, NULL), 24016);
    /* Query outcomes: quality and cost 3 x 4 each = 24 per query; offsets 6 x 8 = 48, domains 5 x 4 = 20. */
    rs_trace_layout query = {.num_layers = 1, .num_experts = 3, .logits = RS_LOGITS_NONE, .unit = "query",
                             .num_domains = 2, .outcome_quality = 1, .outcome_cost = RS_COST_PER_QUERY};
    ck_assert_double_eq(rs_trace_layout_bytes(&query, 5, 5, NULL), 188);
}
END_TEST

/* The estimate is the datasets' bytes: the file holds them plus HDF5's
 * records and the unused tail of each dataset's last chunk (under 2 MiB). */
START_TEST(layout_bytes_match_a_written_trace)
{
    const char *path = rs_test_path("sized.h5");
    char args[2048];
    snprintf(args, sizeof args, "gen --preset small --tokens 20000 --seq-len-sigma 0 --no-progress -o '%s'", path);
    ck_assert_int_eq(rs_test_run_cli(args, NULL, NULL), 0);
    /* small: 4 layers x 8 experts x 4 bytes + a token id = 132 bytes a token;
     * 20000 / 64 = 312.5 -> 313 sequences; 6 domains. */
    rs_trace_layout layout = {.num_layers = 4, .num_experts = 8, .logits = RS_LOGITS_F32, .token_ids = 1,
                              .num_domains = 6};
    double estimate = rs_trace_layout_bytes(&layout, 20000, 313, NULL);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_msg(estimate <= (double)st.st_size && (double)st.st_size <= estimate + 2 * 1048576.0,
                  "estimate %.0f bytes, file %lld bytes", estimate, (long long)st.st_size);
}
END_TEST

START_TEST(space_check_limits_and_free_space)
{
    rs_error err = {{0}};
    const char *path = rs_test_path("out.h5");
    ck_assert_msg(rs_output_space_check(path, 1000, "10 tokens x 100 bytes", 0, NULL, &err) == 0, "%s", err.msg);

    /* over the default limit: 65 GiB */
    ck_assert_int_eq(rs_output_space_check(path, 65.0 * 1073741824.0, "detail", 0, NULL, &err), -1);
    char want[2048];
    snprintf(want, sizeof want,
             "%s: the output would take 65.0 GiB (detail), more than the limit of 64 GiB (--max-output-gb N raises "
             "it, --no-size-limit lifts it)",
             path);
    ck_assert_str_eq(err.msg, want);
    rs_output_limit low = {.max_gib = 0.5, .lift = "raise it here"};
    ck_assert_int_eq(rs_output_space_check(path, 1073741824.0, "detail", 0, &low, &err), -1);
    ck_assert_msg(strstr(err.msg, "1.0 GiB (detail), more than the limit of 0.5 GiB (raise it here)"), "%s", err.msg);
    /* the limit applies to compressed outputs too (their size before compression) */
    ck_assert_int_eq(rs_output_space_check(path, 1073741824.0, "detail", 1, &low, &err), -1);

    /* within a huge limit, but more than any test disk holds (1 EiB) */
    rs_output_limit huge = {.max_gib = 1e12};
    ck_assert_int_eq(rs_output_space_check(path, 1152921504606846976.0, "detail", 0, &huge, &err), -1);
    snprintf(want, sizeof want, "%s: the output would take 1.0 EiB (detail), but only ", path);
    ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
    snprintf(want, sizeof want, "are free on the file system of '%s'", rs_test_dir());
    ck_assert_msg(strstr(err.msg, want), "%s", err.msg);
    /* compressed: the size on disk is unknown, so free space is not judged */
    ck_assert_int_eq(rs_output_space_check(path, 1152921504606846976.0, "detail", 1, &huge, &err), 0);
    /* no limit checks nothing */
    rs_output_limit none = {.max_gib = -1};
    ck_assert_int_eq(rs_output_space_check(path, 1e30, "detail", 0, &none, &err), 0);
    /* a path without a directory is in the working directory */
    ck_assert_int_eq(rs_output_space_check("plain.h5", 1152921504606846976.0, "detail", 0, &huge, &err), -1);
    ck_assert_msg(strstr(err.msg, "free on the file system of '.'"), "%s", err.msg);

    char text[32];
    rs_format_bytes(512, text, sizeof text);
    ck_assert_str_eq(text, "512 bytes");
    rs_format_bytes(1536, text, sizeof text);
    ck_assert_str_eq(text, "1.5 KiB");
    rs_format_bytes(64.0 * 1073741824.0, text, sizeof text);
    ck_assert_str_eq(text, "64.0 GiB");
}
END_TEST

/* Caps the size of files this test (and the commands it runs) may write at
 * 64 MiB, so that a regression fails with SIGXFSZ instead of filling the
 * disk; uncap_file_size restores the limit before. */
static struct rlimit saved_file_size;

static void cap_file_size(void)
{
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved_file_size), 0);
    struct rlimit cap = saved_file_size;
    if (cap.rlim_cur == RLIM_INFINITY || cap.rlim_cur > (rlim_t)64 << 20)
        cap.rlim_cur = (rlim_t)64 << 20;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &cap), 0);
}

static void uncap_file_size(void) { ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved_file_size), 0); }

/* No file of the scratch directory starts with prefix (a trace or its temporary file). */
static void assert_no_file_like(const char *prefix)
{
    DIR *d = opendir(rs_test_dir());
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        ck_assert_msg(strncmp(e->d_name, prefix, strlen(prefix)) != 0, "%s left behind", e->d_name);
    closedir(d);
}

static void expect_refusal(const char *options, const char *out_name, const char *needle)
{
    char args[2048], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "gen --no-progress -o '%s' %s", rs_test_path(out_name), options);
    ck_assert_int_eq(rs_test_run_cli(args, &out, &err), 1);
    ck_assert_msg(strstr(err, needle), "'%s': stderr '%s' lacks '%s'", options, err, needle);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "more than one line: %s", err);
    free(out), free(err);
    assert_no_file_like(out_name);
}

START_TEST(gen_refuses_a_trace_over_the_limit)
{
    cap_file_size();
    /* mixtral: 32 layers x 8 experts x 4 bytes + a token id = 1028 bytes a token;
     * 1e12 tokens = 935.0 TiB. */
    expect_refusal("--tokens 1000000000000", "huge.h5",
                   "huge.h5: the output would take 935.0 TiB (1000000000000 tokens x 1028 bytes), more than the limit "
                   "of 64 GiB (--max-output-gb N raises it, --no-size-limit lifts it)");
    expect_refusal("--tokens 1000000000000 --max-output-gb 1e9", "huge.h5", "but only ");
    /* small: 132 bytes a token x 2000 tokens = 264000, plus offsets 33 x 8, domains 32 x 4 and room for a bias
     * 4 x 8 x 4: 264520 bytes = 258.3 KiB > 0.0001 GiB (104.9 KiB) */
    expect_refusal("--preset small --tokens 2000 --max-output-gb 0.0001", "limited.h5",
                   "the output would take 258.3 KiB (2000 tokens x 132 bytes), more than the limit of 0.0001 GiB");
    char args[2048], *err = NULL;
    snprintf(args, sizeof args, "gen --preset small --tokens 2000 --max-output-gb 0.0001 --no-size-limit -o '%s'",
             rs_test_path("lifted.h5"));
    ck_assert_msg(rs_test_run_cli(args, NULL, &err) == 0, "%s", err);
    free(err);
    const char *usage[] = {"--max-output-gb 0", "--max-output-gb -3", "--max-output-gb many", "--max-output-gb"};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        snprintf(args, sizeof args, "gen --preset small -o '%s' %s", rs_test_path("usage.h5"), usage[i]);
        ck_assert_msg(rs_test_run_cli(args, NULL, &err) == 2, "'%s': %s", usage[i], err);
        free(err);
    }

    /* a config's generated trace: its own "max_output_gb" */
    const char *config = rs_test_path("limited.json");
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"traces\": [{\"path\": \"%s\", \"generate\": {\"preset\": \"small\", \"tokens\": 2000}, "
               "\"max_output_gb\": 0.0001}], \"routers\": [\"topk\"], \"output\": \"%s\"}",
            rs_test_path("config-trace.h5"), rs_test_path("config-out"));
    fclose(f);
    snprintf(args, sizeof args, "run '%s' --no-progress", config);
    ck_assert_int_eq(rs_test_run_cli(args, NULL, &err), 1);
    ck_assert_msg(strstr(err, "config-trace.h5: the output would take 258.3 KiB") &&
                      strstr(err, "(the trace's \"max_output_gb\" in the config raises it)"),
                  "%s", err);
    free(err);
    assert_no_file_like("config-trace.h5");
    uncap_file_size();
}
END_TEST

Suite *output_size_suite(void)
{
    Suite *s = suite_create("output_size");
    TCase *tc = tcase_create("output_size");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, layout_bytes_by_hand);
    tcase_add_test(tc, layout_bytes_match_a_written_trace);
    tcase_add_test(tc, space_check_limits_and_free_space);
    tcase_add_test(tc, gen_refuses_a_trace_over_the_limit);
    suite_add_tcase(s, tc);
    return s;
}
