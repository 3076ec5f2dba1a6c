#include "workloads/import/import_routellm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/import/import_csv.h"
#include "workloads/import/importer.h"

/* Columns that are never models. */
static const char *const meta_columns[] = {"subject", "row", "contaminated", "prompt", "question", "id", NULL};

static int is_meta(const char *name, const char *domain_column)
{
    for (int i = 0; meta_columns[i]; i++)
        if (strcmp(name, meta_columns[i]) == 0)
            return 1;
    return domain_column && strcmp(name, domain_column) == 0;
}

/* The model columns: --models in order, else every other column in file order. */
static int pick_models(const rs_csv_header *h, const rs_import_routellm_options *opt, const char *domain_column,
                       int **columns, int *count, rs_error *err)
{
    *columns = malloc((size_t)(h->count > 0 ? h->count : 1) * sizeof **columns);
    RS_CHECK(*columns, err, "out of memory");
    *count = 0;
    if (!opt->models) {
        for (int c = 0; c < h->count; c++)
            if (!is_meta(h->names[c], domain_column))
                (*columns)[(*count)++] = c;
        RS_CHECK(*count > 0, err, "%s: no model columns (every column is one of subject, row, contaminated, the "
                 "domain column); name them with --models", opt->input);
        return 0;
    }
    for (const char *item = opt->models; *item;) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        int found = -1;
        for (int c = 0; c < h->count; c++)
            if (strlen(h->names[c]) == len && memcmp(h->names[c], item, len) == 0)
                found = c;
        RS_CHECK(found >= 0, err, "%s: --models: no column '%.*s' in the header", opt->input, (int)len, item);
        for (int i = 0; i < *count; i++)
            RS_CHECK((*columns)[i] != found, err, "--models: '%.*s' is listed twice", (int)len, item);
        RS_CHECK(*count < h->count, err, "--models: too many models");
        (*columns)[(*count)++] = found;
        item += len + (comma != NULL);
    }
    RS_CHECK(*count > 0, err, "--models: no model named");
    return 0;
}

/* --cost a=30,b=0.6: one price per model, every model priced. */
static int parse_costs(const char *text, const rs_query_table *q, float *cost, rs_error *err)
{
    int E = q->E;
    int *given = calloc((size_t)E, sizeof *given);
    RS_CHECK(given, err, "out of memory");
    int rc = 0;
    for (const char *item = text; *item && rc == 0;) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        const char *eq = memchr(item, '=', len);
        if (!eq) {
            rc = rs_fail(err, "--cost: expected MODEL=PRICE, got '%.*s'", (int)len, item);
            break;
        }
        size_t name_len = (size_t)(eq - item);
        int e = -1;
        for (int m = 0; m < E; m++)
            if (strlen(q->model_names[m]) == name_len && memcmp(q->model_names[m], item, name_len) == 0)
                e = m;
        char number[64];
        size_t num_len = len - name_len - 1;
        double v = 0;
        int empty = 0;
        if (e < 0)
            rc = rs_fail(err, "--cost: '%.*s' is not a model column", (int)name_len, item);
        else if (given[e])
            rc = rs_fail(err, "--cost: model '%s' priced twice", q->model_names[e]);
        else if (num_len == 0 || num_len >= sizeof number)
            rc = rs_fail(err, "--cost: %s: expected a price", q->model_names[e]);
        if (rc == 0) {
            memcpy(number, eq + 1, num_len);
            number[num_len] = '\0';
            if (rs_csv_parse_number(number, &v, &empty) != 1 || empty || v < 0)
                rc = rs_fail(err, "--cost: %s: '%s' is not a price (a finite number >= 0)", q->model_names[e], number);
        }
        if (rc == 0) {
            cost[e] = (float)v;
            given[e] = 1;
        }
        item += len + (comma != NULL);
    }
    for (int e = 0; e < E && rc == 0; e++)
        if (!given[e])
            rc = rs_fail(err, "--cost: no price for model '%s' (price every model)", q->model_names[e]);
    free(given);
    return rc;
}

static int is_true(const char *cell)
{
    float v = 0;
    return rs_csv_parse_quality(cell, &v) == 0 && v != 0 && v == v;
}

int rs_import_routellm(const rs_import_routellm_options *opt, rs_import_query_report *report, rs_error *err)
{
    memset(report, 0, sizeof *report);
    rs_csv_reader csv;
    rs_csv_header h = {0};
    rs_query_table q = {0};
    int *columns = NULL, num_models = 0;
    char source[512];
    int rc = rs_csv_open(&csv, opt->input, err);
    if (rc != 0) {
        rs_csv_close(&csv);
        return -1;
    }
    rc = rs_csv_read_header(&csv, &h, err);
    const char *domain_column = opt->domain_column;
    int domain = -1, contaminated = -1;
    if (rc == 0) {
        if (!domain_column)
            domain_column = rs_csv_column(&h, "subject") >= 0 ? "subject" : "";
        if (domain_column[0] && strcmp(domain_column, "none") != 0) {
            domain = rs_csv_column(&h, domain_column);
            if (domain < 0)
                rc = rs_fail(err, "%s: --domain-column: no column '%s' in the header", opt->input, domain_column);
        }
        contaminated = rs_csv_column(&h, "contaminated");
        if (rc == 0 && opt->decontaminate && contaminated < 0)
            rc = rs_fail(err, "%s: --decontaminate: the header has no 'contaminated' column", opt->input);
    }
    if (rc == 0)
        rc = pick_models(&h, opt, domain >= 0 ? domain_column : NULL, &columns, &num_models, err);
    if (rc == 0)
        rc = rs_query_table_init(&q, num_models, 0, domain >= 0, err);
    for (int e = 0; e < num_models && rc == 0; e++)
        if (!(q.model_names[e] = strdup(h.names[columns[e]])))
            rc = rs_fail(err, "out of memory");
    if (rc == 0 && opt->cost) {
        q.model_cost = malloc((size_t)num_models * sizeof *q.model_cost);
        rc = q.model_cost ? parse_costs(opt->cost, &q, q.model_cost, err) : rs_fail(err, "out of memory");
    }
    int got = 0;
    while (rc == 0 && (got = rs_csv_next(&csv, err)) == 1) {
        report->rows++;
        if (csv.num_fields != h.count) {
            rc = rs_fail(err, "%s: line %lld: %d fields, the header has %d", opt->input, (long long)csv.line,
                         csv.num_fields, h.count);
            break;
        }
        if (opt->decontaminate && is_true(rs_csv_field(&csv, contaminated))) {
            report->dropped++;
            continue;
        }
        int64_t t = rs_query_table_add(&q, err);
        if (t < 0) {
            rc = -1;
            break;
        }
        for (int e = 0; e < num_models && rc == 0; e++) {
            const char *cell = rs_csv_field(&csv, columns[e]);
            if (rs_csv_parse_quality(cell, &q.quality[t * num_models + e]) != 0)
                rc = rs_fail(err, "%s: line %lld, column %s: '%s' is not a quality (a number, true/false, or empty for "
                             "not evaluated)", opt->input, (long long)csv.line, h.names[columns[e]], cell);
            else if (!rs_import_quality_in_range(q.quality[t * num_models + e], opt->max_quality))
                rc = rs_fail(err, "%s: line %lld, column %s: quality %s is outside [0, %g] (--max-quality sets the top "
                             "of a graded score)", opt->input, (long long)csv.line, h.names[columns[e]], cell,
                             opt->max_quality > 0 ? opt->max_quality : RS_IMPORT_DEFAULT_MAX_QUALITY);
        }
        if (rc == 0 && domain >= 0)
            rc = rs_query_table_domain(&q, rs_csv_field(&csv, domain), &q.domain[t], err);
    }
    if (rc == 0 && got < 0)
        rc = -1;
    if (rc == 0 && q.T == 0)
        rc = rs_fail(err, "%s: no questions to import%s", opt->input, report->dropped ? " (all contaminated)" : "");
    if (rc == 0) {
        const char *base = strrchr(opt->input, '/');
        snprintf(source, sizeof source, "routesim import routellm %s%s", base ? base + 1 : opt->input,
                 opt->decontaminate ? " --decontaminate" : "");
        rc = rs_query_table_write(&q, opt->output, source, opt->gzip_level, &opt->limit, err);
    }
    if (rc == 0)
        rs_import_query_summarise(&q, report);
    free(columns);
    rs_query_table_free(&q);
    rs_csv_header_free(&h);
    rs_csv_close(&csv);
    return rc;
}

/* ---- the importer ---- */

static const rs_param_def routellm_options[] = {
    {"models", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "the model columns, in this order (default: every column but subject, row, contaminated, prompt, question, id "
     "and the domain column)"},
    {"cost", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "cost of one call to each model (e.g. USD per million output tokens): /outcome/cost [E]; every model needs a "
     "price. Default: no cost"},
    {"decontaminate", RS_PARAM_BOOL, "0", 0, 1, NULL,
     "drop rows whose 'contaminated' column is 1 / true (RouteLLM's benchmarks)"},
    {"domain_column", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "the domain of each question (default: 'subject' when present; 'none')"},
    {"gzip", RS_PARAM_INT, "0", 0, 9, NULL, "compress the datasets with gzip LEVEL 1-9 (default 0: none)"},
    {"max_quality", RS_PARAM_FLOAT, "1", 1e-6, 1e6, NULL,
     "the top of the quality scale: every quality must lie in [0, X] (default 1: correctness or a score in [0, 1])"},
};
static const rs_import_option_form routellm_forms[] = {
    {"A,B", 0}, {"A=P,B=P", RS_IMPORT_PRICES}, {NULL, 0}, {"NAME", 0}, {"LEVEL", 0}, {"X", 0},
};
_Static_assert(sizeof routellm_forms / sizeof routellm_forms[0] == sizeof routellm_options / sizeof routellm_options[0],
               "one form per option");

static int routellm_run(const rs_import_job *job, rs_error *err)
{
    const rs_params *p = job->options;
    rs_import_routellm_options opt = {
        .input = job->input,
        .output = job->output,
        .models = rs_param_str(p, "models"),
        .domain_column = rs_param_str(p, "domain_column"),
        .cost = rs_param_str(p, "cost"),
        .decontaminate = rs_param_bool(p, "decontaminate"),
        .gzip_level = (int)rs_param_int(p, "gzip"),
        .max_quality = rs_param_float(p, "max_quality"),
        .limit = job->limit,
    };
    rs_import_query_report report;
    RS_TRY(rs_import_routellm(&opt, &report, err));
    if (!job->quiet)
        rs_import_query_print("routellm", job->input, job->output, &report);
    return 0;
}

static const rs_importer_type routellm_type = {
    .name = "routellm",
    .summary = "per-question correctness CSV, a column per model (RouteLLM evals): a unit = query trace",
    .input = "the CSV",
    .help = "Converts a RouteLLM-style per-question correctness table (one row per question, one\n"
            "column per model holding 1/0, true/false or a score; empty = not evaluated) into a\n"
            "unit = query trace: /outcome/quality [T, E], the models as expert_names, every\n"
            "question its own sequence in file order, its domain in /sequences/domain.\n"
            "INPUT may be gzip-compressed; '-' reads standard input.\n",
    .example = "(data/routellm in the repository, list prices per million output tokens)\n"
               "routesim import routellm mmlu.csv -o mmlu.h5 --decontaminate \\\n"
               "    --cost mixtral_8x7b_instruct=0.6,gpt_4_1106_preview=30",
    .options = routellm_options,
    .forms = routellm_forms,
    .num_options = sizeof routellm_options / sizeof routellm_options[0],
    .flags = RS_IMPORTER_CONFIG,
    .run = routellm_run,
};
const rs_importer_type *const rs_importer_routellm = &routellm_type;
