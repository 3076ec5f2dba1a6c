/* Parameter values read the same wherever they become text, through the
 * routesim binary: a sweep over lambda = 10, 11, 1e-8 and a metric swept
 * over q = 1.5, 2 give runs labelled lambda=10 (never 1e+01), lambda=11,
 * lambda=1e-08 and keys q=1.5, q=2 in results.csv, results.json and the
 * console table; `route` labels its run the same way. Every value in
 * results.csv is the shortest text that reads back as its double. */
#include <check.h>
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/number_text.h"
#include "tests/test_util.h"

enum { T = 200, L = 2, E = 8 };

static const char *const labels[] = {"ema_penalty:k=2,lambda=10", "ema_penalty:k=2,lambda=11",
                                     "ema_penalty:k=2,lambda=1e-08"};

static const char *write_trace(void)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s", rs_test_path("labels.h5"));
    float *logits = rs_test_random_logits(T, L, E, 7);
    static const int64_t offsets[] = {0, 80, T};
    rs_test_trace tt = {.T = T, .L = L, .E = E, .K = 2, .num_seq = 2, .offsets = offsets, .logits = logits};
    rs_test_write_trace(path, &tt);
    free(logits);
    return path;
}

/* Field `index` (0-based) of a CSV line whose first field may be quoted. */
static void csv_field(const char *line, int index, char *buf, size_t size)
{
    const char *s = line;
    for (int i = 0; i < index; i++) {
        if (*s == '"')
            s = strchr(s + 1, '"') + 1;
        s = strchr(s, ',') + 1;
    }
    size_t len = *s == '"' ? (size_t)(strchr(s + 1, '"') - s + 1) : strcspn(s, ",\n");
    snprintf(buf, size, "%.*s", (int)len, s);
}

START_TEST(sweep_labels_read_as_written)
{
    const char *trace = write_trace();
    const char *config = rs_test_path("labels.json");
    const char *out_dir = rs_test_path("labels-out");
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"traces\": [\"%s\"], \"routers\": [{\"name\": \"ema_penalty\", \"params\": {\"k\": 2, "
            "\"lambda\": [10, 11, 1e-8]}}], \"metrics\": [{\"name\": \"load\"}, {\"name\": \"entropy\", \"params\": "
            "{\"q\": [1.5, 2]}}], \"batch_tokens\": 50, \"plots\": [], \"output\": \"%s\"}\n",
            trace, out_dir);
    fclose(f);
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("run %s --threads 1", config), &out, &err);
    ck_assert_msg(rc == 0, "%s", err);

    /* results.csv: run labels, params and keys */
    char *csv = rs_test_read_file(rs_test_cmd("%s/results.csv", out_dir));
    ck_assert_ptr_nonnull(csv);
    for (int i = 0; i < 3; i++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\n\"%s\",", labels[i]);
        ck_assert_msg(strstr(csv, quoted), "no run %s in\n%.2000s", labels[i], csv);
    }
    ck_assert_ptr_nonnull(strstr(csv, ";lambda=10;"));
    ck_assert_ptr_nonnull(strstr(csv, ";lambda=1e-08;"));
    ck_assert_ptr_nonnull(strstr(csv, ",entropy.tsallis_entropy,q=2,"));
    ck_assert_ptr_nonnull(strstr(csv, ",entropy.tsallis_entropy,q=1.5,"));
    ck_assert_ptr_null(strstr(csv, "e+01"));
    /* every value is the shortest text of its double */
    int values = 0;
    for (const char *line = strchr(csv, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        char value[64], again[RS_NUMBER_TEXT_MAX];
        csv_field(line, 7, value, sizeof value);
        rs_number_text(strtod(value, NULL), again, sizeof again);
        ck_assert_str_eq(value, again);
        values++;
    }
    ck_assert_int_gt(values, 30);
    free(csv);

    /* results.json: the same labels and keys */
    char *json_text = rs_test_read_file(rs_test_cmd("%s/results.json", out_dir));
    cJSON *json = cJSON_Parse(json_text);
    ck_assert_ptr_nonnull(json);
    const cJSON *runs = cJSON_GetObjectItem(json, "runs");
    ck_assert_int_eq(cJSON_GetArraySize(runs), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(runs, i), "run")->valuestring, labels[i]);
    int q2 = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(json, "results"))
        q2 += strcmp(cJSON_GetObjectItem(row, "key")->valuestring, "q=2") == 0;
    ck_assert_int_gt(q2, 0);
    cJSON_Delete(json);
    free(json_text);

    /* the console table */
    for (int i = 0; i < 3; i++)
        ck_assert_msg(strstr(out, labels[i]), "no column %s in\n%s", labels[i], out);
    ck_assert_ptr_nonnull(strstr(out, "\nentropy.tsallis_entropy[q=2] "));
    ck_assert_ptr_nonnull(strstr(out, "\nentropy.tsallis_entropy[q=1.5] "));
    ck_assert_ptr_null(strstr(out, "e+01"));
    free(out);
    free(err);
}
END_TEST

START_TEST(route_labels_its_run_the_same_way)
{
    const char *trace = write_trace();
    const char *csv_path = rs_test_path("route.csv");
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(
        rs_test_cmd("route %s --router ema_penalty:k=2,lambda=10.0 --metrics entropy:q=2.0 --csv %s --no-progress",
                    trace, csv_path),
        &out, &err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_msg(strstr(out, "ema_penalty:k=2,lambda=10\n"), "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\nentropy.tsallis_entropy[q=2] "));
    char *csv = rs_test_read_file(csv_path);
    ck_assert_ptr_nonnull(csv);
    ck_assert_ptr_nonnull(strstr(csv, "\n\"ema_penalty:k=2,lambda=10\","));
    ck_assert_ptr_nonnull(strstr(csv, ",entropy.tsallis_entropy,q=2,"));
    free(csv);
    free(out);
    free(err);
}
END_TEST

Suite *number_labels_suite(void)
{
    Suite *s = suite_create("number_labels");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sweep_labels_read_as_written);
    tcase_add_test(tc, route_labels_its_run_the_same_way);
    suite_add_tcase(s, tc);
    return s;
}
