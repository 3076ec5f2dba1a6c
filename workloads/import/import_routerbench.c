#include "workloads/import/import_routerbench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/import/importer.h"

static const char cost_suffix[] = "|total_cost";

/* The model whose cost column is `name`, or NULL: "<model>|total_cost". */
static int cost_column_model(const char *name, size_t *model_len)
{
    size_t n = strlen(name), s = sizeof cost_suffix - 1;
    if (n <= s || strcmp(name + n - s, cost_suffix) != 0)
        return 0;
    *model_len = n - s;
    return 1;
}

/* Quality and cost columns of each model: every "<model>|total_cost" column
 * names a model whose quality column "<model>" must exist. */
static int find_models(const rs_csv_header *h, const rs_import_routerbench_options *opt, int **quality_col,
                       int **cost_col, int *count, rs_error *err)
{
    *quality_col = malloc((size_t)(h->count + 1) * sizeof **quality_col);
    *cost_col = malloc((size_t)(h->count + 1) * sizeof **cost_col);
    RS_CHECK(*quality_col && *cost_col, err, "out of memory");
    *count = 0;
    for (int c = 0; c < h->count; c++) {
        size_t len = 0;
        if (!cost_column_model(h->names[c], &len))
            continue;
        int q = -1;
        for (int k = 0; k < h->count; k++)
            if (strlen(h->names[k]) == len && memcmp(h->names[k], h->names[c], len) == 0)
                q = k;
        RS_CHECK(q >= 0, err, "%s: column '%.*s' missing: the header has '%s' but not the model's quality column",
                 opt->input, (int)len, h->names[c], h->names[c]);
        (*quality_col)[*count] = q;
        (*cost_col)[(*count)++] = c;
    }
    RS_CHECK(*count > 0, err, "%s: no model columns: a RouterBench table has '<model>' and '<model>%s' per model",
             opt->input, cost_suffix);
    if (!opt->models)
        return 0;
    /* --models: a subset, in the order given */
    int *q_sel = malloc((size_t)*count * sizeof *q_sel), *c_sel = malloc((size_t)*count * sizeof *c_sel), n = 0;
    if (!q_sel || !c_sel) {
        free(q_sel);
        free(c_sel);
        return rs_fail(err, "out of memory");
    }
    int rc = 0;
    for (const char *item = opt->models; *item && rc == 0;) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        int found = -1;
        for (int m = 0; m < *count; m++) {
            const char *name = h->names[(*quality_col)[m]];
            if (strlen(name) == len && memcmp(name, item, len) == 0)
                found = m;
        }
        for (int i = 0; i < n && found >= 0 && rc == 0; i++)
            if (q_sel[i] == (*quality_col)[found])
                rc = rs_fail(err, "--models: '%.*s' is listed twice", (int)len, item);
        if (found < 0 && rc == 0)
            rc = rs_fail(err, "%s: --models: no model '%.*s' (a model has columns '<model>' and '<model>%s')",
                         opt->input, (int)len, item, cost_suffix);
        if (rc == 0) {
            q_sel[n] = (*quality_col)[found];
            c_sel[n++] = (*cost_col)[found];
        }
        item += len + (comma != NULL);
    }
    if (rc == 0 && n == 0)
        rc = rs_fail(err, "--models: no model named");
    if (rc == 0) {
        memcpy(*quality_col, q_sel, (size_t)n * sizeof *q_sel);
        memcpy(*cost_col, c_sel, (size_t)n * sizeof *c_sel);
        *count = n;
    }
    free(q_sel);
    free(c_sel);
    return rc;
}

int rs_import_routerbench(const rs_import_routerbench_options *opt, rs_import_query_report *report, rs_error *err)
{
    memset(report, 0, sizeof *report);
    rs_csv_reader csv;
    rs_csv_header h = {0};
    rs_query_table q = {0};
    int *quality_col = NULL, *cost_col = NULL, E = 0;
    if (rs_csv_open(&csv, opt->input, err) != 0) {
        rs_csv_close(&csv);
        return -1;
    }
    int rc = rs_csv_read_header(&csv, &h, err);
    int domain = rc == 0 ? rs_csv_column(&h, "eval_name") : -1;
    if (rc == 0 && domain < 0)
        rc = rs_fail(err, "%s: no 'eval_name' column (RouterBench names each prompt's benchmark there)", opt->input);
    if (rc == 0)
        rc = find_models(&h, opt, &quality_col, &cost_col, &E, err);
    if (rc == 0)
        rc = rs_query_table_init(&q, E, 1, 1, err);
    for (int e = 0; e < E && rc == 0; e++)
        if (!(q.model_names[e] = strdup(h.names[quality_col[e]])))
            rc = rs_fail(err, "out of memory");
    int got = 0;
    while (rc == 0 && (got = rs_csv_next(&csv, err)) == 1) {
        report->rows++;
        if (csv.num_fields != h.count) {
            rc = rs_fail(err, "%s: line %lld: %d fields, the header has %d", opt->input, (long long)csv.line,
                         csv.num_fields, h.count);
            break;
        }
        int64_t t = rs_query_table_add(&q, err);
        if (t < 0) {
            rc = -1;
            break;
        }
        for (int e = 0; e < E && rc == 0; e++) {
            const char *cell = rs_csv_field(&csv, quality_col[e]);
            float *quality = &q.quality[t * E + e];
            if (rs_csv_parse_quality(cell, quality) != 0) {
                rc = rs_fail(err, "%s: line %lld, column %s: '%s' is not a quality (a number, or empty for not "
                             "evaluated)", opt->input, (long long)csv.line, h.names[quality_col[e]], cell);
                break;
            }
            if (!rs_import_quality_in_range(*quality, opt->max_quality)) {
                rc = rs_fail(err, "%s: line %lld, column %s: quality %s is outside [0, %g] (--max-quality sets the "
                             "top of a graded score)", opt->input, (long long)csv.line, h.names[quality_col[e]], cell,
                             opt->max_quality > 0 ? opt->max_quality : RS_IMPORT_DEFAULT_MAX_QUALITY);
                break;
            }
            const char *cost_cell = rs_csv_field(&csv, cost_col[e]);
            double cost = 0;
            int empty = 0;
            if (rs_csv_parse_number(cost_cell, &cost, &empty) != 1 || (!empty && cost < 0))
                rc = rs_fail(err, "%s: line %lld, column %s: '%s' is not a cost (a finite number >= 0)", opt->input,
                             (long long)csv.line, h.names[cost_col[e]], cost_cell);
            else if (empty && !isnan(*quality))
                rc = rs_fail(err, "%s: line %lld, column %s: empty, but %s has a quality there (a model evaluated on "
                             "a prompt needs its cost)", opt->input, (long long)csv.line, h.names[cost_col[e]],
                             h.names[quality_col[e]]);
            q.cost[t * E + e] = empty ? 0.0f : (float)cost; /* not evaluated: never paid for an answer */
        }
        if (rc == 0)
            rc = rs_query_table_domain(&q, rs_csv_field(&csv, domain), &q.domain[t], err);
    }
    if (rc == 0 && got < 0)
        rc = -1;
    if (rc == 0 && q.T == 0)
        rc = rs_fail(err, "%s: no prompts to import", opt->input);
    if (rc == 0) {
        char source[512];
        const char *base = strrchr(opt->input, '/');
        snprintf(source, sizeof source, "routesim import routerbench %s", base ? base + 1 : opt->input);
        rc = rs_query_table_write(&q, opt->output, source, opt->gzip_level, &opt->limit, err);
    }
    if (rc == 0)
        rs_import_query_summarise(&q, report);
    free(quality_col);
    free(cost_col);
    rs_query_table_free(&q);
    rs_csv_header_free(&h);
    rs_csv_close(&csv);
    return rc;
}

/* ---- the importer ---- */

static const rs_param_def routerbench_options[] = {
    {"models", RS_PARAM_STRING, NULL, 0, 0, NULL, "a subset of the models, in this order (default: all, in column order)"},
    {"gzip", RS_PARAM_INT, "0", 0, 9, NULL, "compress the datasets with gzip LEVEL 1-9 (default 0: none)"},
    {"max_quality", RS_PARAM_FLOAT, "1", 1e-6, 1e6, NULL,
     "the top of the quality scale: every quality must lie in [0, X] (default 1: correctness or a score in [0, 1])"},
};
static const rs_import_option_form routerbench_forms[] = {{"A,B", 0}, {"LEVEL", 0}, {"X", 0}};
_Static_assert(sizeof routerbench_forms / sizeof routerbench_forms[0] ==
                   sizeof routerbench_options / sizeof routerbench_options[0],
               "one form per option");

static int routerbench_run(const rs_import_job *job, rs_error *err)
{
    rs_import_routerbench_options opt = {
        .input = job->input,
        .output = job->output,
        .models = rs_param_str(job->options, "models"),
        .gzip_level = (int)rs_param_int(job->options, "gzip"),
        .max_quality = rs_param_float(job->options, "max_quality"),
        .limit = job->limit,
    };
    rs_import_query_report report;
    RS_TRY(rs_import_routerbench(&opt, &report, err));
    if (!job->quiet)
        rs_import_query_print("routerbench", job->input, job->output, &report);
    return 0;
}

static const rs_importer_type routerbench_type = {
    .name = "routerbench",
    .summary = "wide CSV, a row per prompt: <model> quality and <model>|total_cost columns (RouterBench)",
    .input = "the CSV",
    .help = "Converts a RouterBench wide table (one row per prompt; per model a column '<model>'\n"
            "with its quality and '<model>|total_cost' with the cost of that call; empty cells =\n"
            "not evaluated; 'eval_name' = the benchmark) into a unit = query trace:\n"
            "/outcome/quality and /outcome/cost [T, E], every prompt its own sequence in file\n"
            "order, eval_name in /sequences/domain. Other columns (prompt, responses, oracle\n"
            "columns) are ignored. Export RouterBench's pickle with pandas' to_csv first.\n"
            "INPUT may be gzip-compressed; '-' reads standard input.\n",
    .options = routerbench_options,
    .forms = routerbench_forms,
    .num_options = sizeof routerbench_options / sizeof routerbench_options[0],
    .flags = RS_IMPORTER_CONFIG,
    .run = routerbench_run,
};
const rs_importer_type *const rs_importer_routerbench = &routerbench_type;
