/* Breakdowns (--by, config "breakdown"): a group's rows equal the rows of
 * a trace holding only the group's tokens (its sequences for a domain, each
 * sequence's prefill or decode part for a phase), for every family whose
 * numbers do not depend on where tokens sit in the whole trace; results do
 * not depend on threads or chunk size; missing datasets and unknown names
 * are refused in one line. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/query/check_query.h"
#include "tests/test_util.h"

enum { T = 420, L = 3, E = 6, S = 6 };
static const int64_t offsets[S + 1] = {0, 60, 130, 131, 250, 330, 420};
static const int32_t domains[S] = {0, 2, 0, 2, 0, 0}; /* label 1 names no sequence */
static const char *const domain_names[] = {"math", "unused", "code"};
/* every metric whose rows hold on a sub-trace (batch_tokens > T: one batch) */
static const char *const metrics =
    "load,entropy,srp:m=4,sch:m=4,activation,locality,affinity,specialization,cache:slots=3,policy=belady";

static float *logits;
static uint8_t phase[T];

/* The trace, and (keep != NULL) the trace of the tokens keep marks, each
 * sequence's kept tokens as one sequence (empty ones dropped). */
static void write_trace(const char *path, const uint8_t *keep)
{
    if (!logits) {
        logits = rs_test_random_logits(T, L, E, 11);
        for (int s = 0; s < S; s++) /* the first 40% of each sequence is its prompt */
            for (int64_t t = offsets[s]; t < offsets[s + 1]; t++)
                phase[t] = t >= offsets[s] + (offsets[s + 1] - offsets[s]) * 2 / 5;
    }
    static float sub_logits[T * L * E];
    static uint8_t sub_phase[T];
    int64_t sub_offsets[S + 1] = {0};
    int32_t sub_domains[S];
    int n = 0, ns = 0;
    for (int s = 0; s < S; s++) {
        int start = n;
        for (int64_t t = offsets[s]; t < offsets[s + 1]; t++) {
            if (keep && !keep[t])
                continue;
            memcpy(sub_logits + (size_t)n * L * E, logits + (size_t)t * L * E, sizeof(float) * L * E);
            sub_phase[n++] = phase[t];
        }
        if (n > start) {
            sub_domains[ns] = domains[s];
            sub_offsets[++ns] = n;
        }
    }
    rs_test_trace tt = {.T = n, .L = L, .E = E, .num_seq = ns, .offsets = sub_offsets, .logits = sub_logits,
                        .scoring = "softmax", .top_k = 2, .norm_topk = 1, .domain = sub_domains,
                        .num_domains = 3, .domain_names = domain_names, .phase = sub_phase};
    rs_test_write_trace(path, &tt);
}

/* "metric,key,layer,value" of each row of a results.csv (its last four fields). */
static char **csv_rows(const char *path, int *count)
{
    char *text = rs_test_read_file(path);
    ck_assert_ptr_nonnull(text);
    char **rows = calloc(4096, sizeof *rows);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "run,", 4) == 0)
            continue;
        char *p = line;
        for (int commas = 0; commas < 4 && p; commas++)
            p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
        ck_assert_ptr_nonnull(p);
        ck_assert_int_lt(n, 4096);
        rows[n++] = strdup(p);
    }
    free(text);
    *count = n;
    return rows;
}

static void free_rows(char **rows, int n)
{
    for (int i = 0; i < n; i++)
        free(rows[i]);
    free(rows);
}

static void route_csv(const char *trace, const char *by, const char *csv)
{
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --metrics %s %s%s --csv %s --force --no-progress",
                                         trace, metrics, by ? "--by " : "", by ? by : "", csv),
                             NULL, &err);
    ck_assert_msg(rc == 0, "route failed: %s", err);
    free(err);
}

/* Every row of the sub-trace appears in the whole trace's breakdown with
 * `group` appended to its key, value for value. */
static void check_group(const char *by, const char *group, const uint8_t *keep)
{
    const char *whole = rs_test_path("bd_whole.h5"), *sub = rs_test_path("bd_sub.h5");
    write_trace(whole, NULL);
    write_trace(sub, keep);
    const char *a = rs_test_path("bd_a.csv"), *b = rs_test_path("bd_b.csv");
    route_csv(whole, by, a);
    route_csv(sub, NULL, b);
    int na = 0, nb = 0;
    char **ra = csv_rows(a, &na), **rb = csv_rows(b, &nb);
    ck_assert_int_gt(nb, 50);
    for (int i = 0; i < nb; i++) {
        /* metric,key,layer,value -> metric,key;group,layer,value */
        char want[1024];
        char *k = strchr(rb[i], ','), *l = strchr(k + 1, ',');
        snprintf(want, sizeof want, "%.*s%s%s%s", (int)(l - rb[i]), rb[i], l == k + 1 ? "" : ";", group, l);
        int found = 0;
        for (int j = 0; j < na && !found; j++)
            found = strcmp(ra[j], want) == 0;
        ck_assert_msg(found, "%s: no row '%s' in the breakdown of the whole trace", group, want);
    }
    free_rows(ra, na);
    free_rows(rb, nb);
}

START_TEST(test_domain_rows_equal_subtrace)
{
    write_trace(rs_test_path("bd_init.h5"), NULL);
    static const struct {
        int32_t label;
        const char *group;
    } cases[] = {{0, "domain=math"}, {2, "domain=code"}};
    for (int c = 0; c < 2; c++) {
        uint8_t keep[T];
        for (int s = 0; s < S; s++)
            for (int64_t t = offsets[s]; t < offsets[s + 1]; t++)
                keep[t] = domains[s] == cases[c].label;
        check_group("domain", cases[c].group, keep);
    }
}
END_TEST

START_TEST(test_phase_rows_equal_subtrace)
{
    write_trace(rs_test_path("bd_init.h5"), NULL);
    for (int p = 0; p < 2; p++) {
        uint8_t keep[T];
        for (int t = 0; t < T; t++)
            keep[t] = phase[t] == p;
        check_group("domain,phase", p ? "phase=decode" : "phase=prefill", keep);
    }
}
END_TEST

/* Only the groups the trace holds, each once per row of the whole run; the
 * whole run's rows unchanged by the breakdown. */
START_TEST(test_groups_listed)
{
    const char *whole = rs_test_path("bd_list.h5");
    write_trace(whole, NULL);
    const char *a = rs_test_path("bd_plain.csv"), *b = rs_test_path("bd_by.csv");
    route_csv(whole, NULL, a);
    route_csv(whole, "phase,domain", b);
    int na = 0, nb = 0;
    char **ra = csv_rows(a, &na), **rb = csv_rows(b, &nb);
    ck_assert_int_eq(nb, 5 * na); /* whole, math, code, prefill, decode */
    int whole_rows = 0, groups[4] = {0};
    static const char *const names[4] = {"domain=math", "domain=code", "phase=prefill", "phase=decode"};
    for (int i = 0; i < nb; i++) {
        ck_assert_msg(!strstr(rb[i], "domain=unused"), "a label no sequence has got rows: %s", rb[i]);
        int g = -1;
        for (int n = 0; n < 4; n++)
            if (strstr(rb[i], names[n]))
                g = n;
        if (g >= 0) {
            groups[g]++;
        } else {
            ck_assert_str_eq(rb[i], ra[whole_rows]); /* the whole run's rows, in order */
            whole_rows++;
        }
    }
    ck_assert_int_eq(whole_rows, na);
    for (int n = 0; n < 4; n++)
        ck_assert_int_eq(groups[n], na);
    free_rows(ra, na);
    free_rows(rb, nb);
}
END_TEST

/* From a config: the same bytes for 1 and 2 threads and any chunk size,
 * with bootstrap intervals per group. */
START_TEST(test_config_invariant)
{
    const char *path = rs_test_path("bd_cfg.h5");
    write_trace(path, NULL);
    char *config = rs_test_cmd("%s", rs_test_path("bd_cfg.json"));
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"name\": \"bd\", \"traces\": [\"%s\"], \"routers\": [\"topk:k=2\", \"expert_choice:group=sequence\"],"
            " \"metrics\": [\"load\", {\"name\": \"cache\", \"params\": {\"slots\": 3}}, \"srp\"],"
            " \"breakdown\": [\"domain\", \"phase\"], \"bootstrap\": {\"resamples\": 20, \"blocks\": 6},"
            " \"batch_tokens\": 50}",
            path);
    fclose(f);
    char *csv = rs_test_invariant_csv(config, 7, 64, 1000);
    ck_assert_ptr_nonnull(strstr(csv, "load.maxvio,domain=code,all,"));
    ck_assert_ptr_nonnull(strstr(csv, "load.maxvio,phase=decode;stat=ci_low,all,"));
    ck_assert_ptr_nonnull(strstr(csv, "cache.hit_rate,policy=lru;scope=layer;slots=3;domain=math,all,"));
    free(csv);
}
END_TEST

START_TEST(test_refusals)
{
    const char *plain = rs_test_path("bd_plain.h5");
    float *z = rs_test_random_logits(40, 2, 4, 3);
    int64_t off[2] = {0, 40};
    rs_test_trace tt = {.T = 40, .L = 2, .E = 4, .num_seq = 1, .offsets = off, .logits = z};
    rs_test_write_trace(plain, &tt);
    free(z);
    char *err = NULL;
    ck_assert_int_ne(rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --by domain", plain), NULL, &err), 0);
    ck_assert_msg(strstr(err, plain) && strstr(err, "/sequences/domain") && !strchr(strchr(err, '\n') + 1, '\n'),
                  "%s", err);
    free(err);
    ck_assert_int_ne(rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --by phase", plain), NULL, &err), 0);
    ck_assert_msg(strstr(err, "/tokens/phase"), "%s", err);
    free(err);
    ck_assert_int_ne(rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --by region", plain), NULL, &err), 0);
    ck_assert_msg(strstr(err, "unknown breakdown 'region'"), "%s", err);
    free(err);
    char *config = rs_test_cmd("%s", rs_test_path("bd_bad.json"));
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"traces\": [\"%s\"], \"routers\": [\"topk:k=2\"], \"breakdown\": [\"domain\", \"task\"]}", plain);
    fclose(f);
    ck_assert_int_ne(rs_test_run_cli(rs_test_cmd("run %s --no-plots", config), NULL, &err), 0);
    ck_assert_msg(strstr(err, "bd_bad.json: breakdown[1]"), "%s", err);
    free(err);
}
END_TEST

/* Queries: outcome rows per domain, counted by hand. Model a answers
 * d0's q0, q4 with quality 1, 0 (q2 is scored by nobody: skipped in d0
 * only) and d1's q1, q3, q5 with 0, 1, 1. */
START_TEST(test_outcome_by_domain)
{
    static const float quality[6 * 2] = {1, 0, 0, 1, NAN, NAN, 1, 1, 0, 1, 1, 0};
    static const int32_t labels[6] = {0, 1, 0, 1, 0, 1};
    static const char *const names[2] = {"a", "b"};
    query_trace q = {.T = 6, .E = 2, .quality = quality, .domain = labels, .num_domains = 2, .names = names};
    const char *path = rs_test_path("bd_queries.h5"), *csv = rs_test_path("bd_queries.csv");
    query_trace_write(path, &q);
    char *err = NULL;
    ck_assert_msg(rs_test_run_cli(rs_test_cmd("route %s --router fixed:model=a --metrics outcome --by domain --csv %s",
                                              path, csv),
                                  NULL, &err) == 0,
                  "%s", err);
    free(err);
    char *text = rs_test_read_file(csv);
    static const char *const want[] = {
        "outcome.queries,,all,5,",          "outcome.skipped,,all,1,",          "outcome.quality,,all,0.6",
        "outcome.queries,domain=d0,all,2,", "outcome.skipped,domain=d0,all,1,", "outcome.quality,domain=d0,all,0.5",
        "outcome.queries,domain=d1,all,3,", "outcome.skipped,domain=d1,all,0,", "outcome.quality,domain=d1,all,0.6666666666666666"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s", want[i]);
        size_t len = strlen(line);
        if (line[len - 1] == ',')
            line[len - 1] = '\n'; /* the value ends its line */
        ck_assert_msg(strstr(text, line), "no row '%s' in\n%s", want[i], text);
    }
    free(text);
}
END_TEST

Suite *breakdown_suite(void)
{
    Suite *s = suite_create("breakdown");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_domain_rows_equal_subtrace);
    tcase_add_test(tc, test_phase_rows_equal_subtrace);
    tcase_add_test(tc, test_groups_listed);
    tcase_add_test(tc, test_config_invariant);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_outcome_by_domain);
    suite_add_tcase(s, tc);
    return s;
}
