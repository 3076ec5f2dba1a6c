#include "workloads/import/import_csv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "workloads/trace/trace_size.h"

/* ---- CSV ---- */

int rs_csv_open(rs_csv_reader *r, const char *path, rs_error *err)
{
    memset(r, 0, sizeof *r);
    r->label = strcmp(path, "-") == 0 ? "<stdin>" : path;
    r->next_line = 1;
    RS_TRY(rs_line_reader_open(&r->lines, path, r->label, err));
    r->text_cap = 1 << 12;
    r->fields_cap = 64;
    r->text = malloc(r->text_cap);
    r->offsets = malloc((size_t)r->fields_cap * sizeof *r->offsets);
    RS_CHECK(r->text && r->offsets, err, "%s: out of memory", r->label);
    return 0;
}

void rs_csv_close(rs_csv_reader *r)
{
    rs_line_reader_close(&r->lines);
    free(r->text);
    free(r->offsets);
    memset(r, 0, sizeof *r);
}

static int put_char(rs_csv_reader *r, size_t *used, char c, rs_error *err)
{
    if (*used + 1 >= r->text_cap) {
        char *grown = realloc(r->text, r->text_cap * 2);
        RS_CHECK(grown, err, "%s: out of memory for the record at line %lld", r->label, (long long)r->line);
        r->text = grown;
        r->text_cap *= 2;
    }
    r->text[(*used)++] = c;
    return 0;
}

static int start_field(rs_csv_reader *r, size_t used, rs_error *err)
{
    if (r->num_fields == r->fields_cap) {
        size_t *grown = realloc(r->offsets, (size_t)r->fields_cap * 2 * sizeof *grown);
        RS_CHECK(grown, err, "%s: out of memory", r->label);
        r->offsets = grown;
        r->fields_cap *= 2;
    }
    r->offsets[r->num_fields++] = used;
    return 0;
}

int rs_csv_next(rs_csv_reader *r, rs_error *err)
{
    size_t len = 0, used = 0;
    int got;
    /* skip blank lines between records */
    do {
        got = rs_line_reader_next(&r->lines, &len, r->label, err);
        if (got <= 0)
            return got;
        r->line = r->next_line++;
        if (len > 0 && r->lines.buf[len - 1] == '\r')
            r->lines.buf[--len] = '\0';
    } while (len == 0);
    const char *s = r->lines.buf;
    if (r->line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte order mark */
        s += 3;
    r->num_fields = 0;
    RS_TRY(start_field(r, used, err));
    int quoted = 0, in_quotes = 0;
    for (;;) {
        char c = *s;
        if (c == '\0') {
            if (!in_quotes)
                break;
            /* a quoted field goes on over the line break */
            got = rs_line_reader_next(&r->lines, &len, r->label, err);
            RS_TRY(got < 0 ? -1 : 0);
            RS_CHECK(got == 1, err, "%s: line %lld: a quoted field is never closed", r->label, (long long)r->line);
            r->next_line++;
            if (len > 0 && r->lines.buf[len - 1] == '\r')
                r->lines.buf[--len] = '\0';
            RS_TRY(put_char(r, &used, '\n', err));
            s = r->lines.buf;
            continue;
        }
        s++;
        if (in_quotes) {
            if (c == '"' && *s == '"') {
                RS_TRY(put_char(r, &used, '"', err));
                s++;
            } else if (c == '"') {
                in_quotes = 0;
            } else {
                RS_TRY(put_char(r, &used, c, err));
            }
        } else if (c == ',') {
            RS_TRY(put_char(r, &used, '\0', err));
            RS_TRY(start_field(r, used, err));
            quoted = 0;
        } else if (c == '"' && !quoted && used == r->offsets[r->num_fields - 1]) {
            in_quotes = quoted = 1;
        } else {
            RS_TRY(put_char(r, &used, c, err));
        }
    }
    RS_TRY(put_char(r, &used, '\0', err));
    return 1;
}

int rs_csv_read_header(rs_csv_reader *r, rs_csv_header *h, rs_error *err)
{
    memset(h, 0, sizeof *h);
    int got = rs_csv_next(r, err);
    RS_TRY(got < 0 ? -1 : 0);
    RS_CHECK(got == 1, err, "%s: empty input (expected a header line of column names)", r->label);
    h->names = calloc((size_t)r->num_fields, sizeof *h->names);
    RS_CHECK(h->names, err, "%s: out of memory", r->label);
    h->count = r->num_fields;
    for (int i = 0; i < r->num_fields; i++) {
        h->names[i] = strdup(rs_csv_field(r, i));
        RS_CHECK(h->names[i], err, "%s: out of memory", r->label);
        for (int j = 0; j < i; j++)
            RS_CHECK(strcmp(h->names[i], h->names[j]) != 0, err, "%s: line 1: column '%s' appears twice", r->label,
                     h->names[i]);
    }
    return 0;
}

int rs_csv_column(const rs_csv_header *h, const char *name)
{
    for (int i = 0; i < h->count; i++)
        if (strcmp(h->names[i], name) == 0)
            return i;
    return -1;
}

void rs_csv_header_free(rs_csv_header *h)
{
    for (int i = 0; h->names && i < h->count; i++)
        free(h->names[i]);
    free(h->names);
    memset(h, 0, sizeof *h);
}

static const char *trim(const char *cell, size_t *len)
{
    while (*cell == ' ' || *cell == '\t')
        cell++;
    size_t n = strlen(cell);
    while (n > 0 && (cell[n - 1] == ' ' || cell[n - 1] == '\t'))
        n--;
    *len = n;
    return cell;
}

int rs_csv_parse_number(const char *cell, double *out, int *is_empty)
{
    size_t n;
    cell = trim(cell, &n);
    *is_empty = n == 0;
    if (n == 0)
        return 1;
    char buf[128];
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, cell, n);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 1;
}

int rs_csv_parse_quality(const char *cell, float *out)
{
    size_t n;
    const char *c = trim(cell, &n);
    if (n == 0 || (n == 2 && strncasecmp(c, "NA", 2) == 0) || (n == 3 && strncasecmp(c, "NaN", 3) == 0) ||
        (n == 4 && strncasecmp(c, "None", 4) == 0)) {
        *out = NAN;
        return 0;
    }
    if (n == 4 && strncasecmp(c, "true", 4) == 0) {
        *out = 1.0f;
        return 0;
    }
    if (n == 5 && strncasecmp(c, "false", 5) == 0) {
        *out = 0.0f;
        return 0;
    }
    double v = 0;
    int empty = 0;
    if (rs_csv_parse_number(cell, &v, &empty) != 1 || !isfinite((float)v))
        return -1;
    *out = (float)v;
    return 0;
}

/* ---- the query table ---- */

int rs_query_table_init(rs_query_table *q, int E, int cost_per_query, int with_domains, rs_error *err)
{
    memset(q, 0, sizeof *q);
    q->E = E;
    q->cost_per_query = cost_per_query;
    q->model_names = calloc((size_t)E, sizeof *q->model_names);
    RS_CHECK(q->model_names, err, "out of memory");
    q->num_domains = with_domains ? 0 : -1;
    return 0;
}

int64_t rs_query_table_add(rs_query_table *q, rs_error *err)
{
    if (q->T == q->cap) {
        int64_t cap = q->cap ? 2 * q->cap : 4096;
        size_t cells = (size_t)cap * (size_t)q->E;
        float *quality = realloc(q->quality, cells * sizeof *quality);
        if (quality)
            q->quality = quality;
        float *cost = q->cost_per_query ? realloc(q->cost, cells * sizeof *cost) : NULL;
        if (cost)
            q->cost = cost;
        int32_t *domain = q->num_domains >= 0 ? realloc(q->domain, (size_t)cap * sizeof *domain) : NULL;
        if (domain)
            q->domain = domain;
        if (!quality || (q->cost_per_query && !cost) || (q->num_domains >= 0 && !domain))
            return rs_fail(err, "out of memory for %lld queries", (long long)cap);
        q->cap = cap;
    }
    int64_t t = q->T++;
    for (int e = 0; e < q->E; e++) {
        q->quality[t * q->E + e] = NAN;
        if (q->cost)
            q->cost[t * q->E + e] = 0.0f;
    }
    if (q->domain)
        q->domain[t] = -1;
    return t;
}

int rs_query_table_domain(rs_query_table *q, const char *name, int32_t *label, rs_error *err)
{
    for (int d = 0; d < q->num_domains; d++) {
        if (strcmp(q->domain_names[d], name) == 0) {
            *label = d;
            return 0;
        }
    }
    if (q->num_domains == q->domains_cap) {
        int cap = q->domains_cap ? 2 * q->domains_cap : 64;
        char **grown = realloc(q->domain_names, (size_t)cap * sizeof *grown);
        RS_CHECK(grown, err, "out of memory");
        q->domain_names = grown;
        q->domains_cap = cap;
    }
    q->domain_names[q->num_domains] = strdup(name);
    RS_CHECK(q->domain_names[q->num_domains], err, "out of memory");
    *label = q->num_domains++;
    return 0;
}

void rs_query_table_free(rs_query_table *q)
{
    for (int e = 0; q->model_names && e < q->E; e++)
        free(q->model_names[e]);
    for (int d = 0; d < q->num_domains; d++)
        free(q->domain_names[d]);
    free(q->model_names);
    free(q->domain_names);
    free(q->quality);
    free(q->cost);
    free(q->model_cost);
    free(q->domain);
    memset(q, 0, sizeof *q);
}

int64_t rs_query_table_unscored(const rs_query_table *q)
{
    int64_t n = 0;
    for (int64_t t = 0; t < q->T; t++) {
        int evaluated = 0;
        for (int e = 0; e < q->E; e++)
            evaluated |= !isnan(q->quality[t * q->E + e]);
        n += !evaluated;
    }
    return n;
}

void rs_import_query_summarise(const rs_query_table *q, rs_import_query_report *r)
{
    r->queries = q->T;
    r->num_models = q->E;
    r->num_domains = q->num_domains > 0 ? q->num_domains : 0;
    r->unscored = rs_query_table_unscored(q);
    double oracle = 0;
    for (int e = 0; e < q->E && e < 64; e++) {
        double sum = 0;
        int64_t n = 0;
        for (int64_t t = 0; t < q->T; t++) {
            float v = q->quality[t * q->E + e];
            if (v == v) {
                sum += v;
                n++;
            }
        }
        r->quality[e] = n ? sum / (double)n : NAN;
        snprintf(r->model_names[e], sizeof r->model_names[e], "%s",
                 q->model_names && q->model_names[e] ? q->model_names[e] : "");
    }
    for (int64_t t = 0; t < q->T; t++) {
        double best = -INFINITY;
        for (int e = 0; e < q->E; e++) {
            float v = q->quality[t * q->E + e];
            if (v == v && v > best)
                best = v;
        }
        oracle += best > 0 ? best : 0;
    }
    r->oracle = q->T ? oracle / (double)q->T : NAN;
}

static const char *plural(int64_t n) { return n == 1 ? "" : "s"; }

void rs_import_query_print(const char *format, const char *input, const char *output, const rs_import_query_report *r)
{
    fprintf(stderr, "routesim: imported %lld row%s from %s into %s (%s): %lld quer%s", (long long)r->rows,
            plural(r->rows), strcmp(input, "-") == 0 ? "<stdin>" : input, output, format, (long long)r->queries,
            r->queries == 1 ? "y" : "ies");
    if (r->dropped)
        fprintf(stderr, " (%lld contaminated row%s dropped)", (long long)r->dropped, plural(r->dropped));
    fprintf(stderr, ", %d model%s, %d domain%s", r->num_models, plural(r->num_models), r->num_domains,
            plural(r->num_domains));
    if (r->unscored)
        fprintf(stderr, ", %lld quer%s no model was evaluated on (left out of outcome metrics)",
                (long long)r->unscored, r->unscored == 1 ? "y" : "ies");
    fprintf(stderr, "; mean quality:");
    for (int e = 0; e < r->num_models && e < 64; e++)
        fprintf(stderr, "%s %s %.5f", e ? "," : "", r->model_names[e][0] ? r->model_names[e] : "(unnamed)",
                r->quality[e]);
    if (r->num_models > 64)
        fprintf(stderr, ", ... (%d more)", r->num_models - 64);
    fprintf(stderr, "; per-query oracle %.5f\n", r->oracle);
}

int rs_import_quality_in_range(float quality, double max_quality)
{
    return isnan(quality) || (quality >= 0 && quality <= (max_quality > 0 ? max_quality : RS_IMPORT_DEFAULT_MAX_QUALITY));
}

int rs_query_table_write(const rs_query_table *q, const char *path, const char *source, int gzip_level,
                         const rs_output_limit *limit, rs_error *err)
{
    RS_CHECK(q->T > 0, err, "%s: no queries to write", path);
    const char *empty = "(none)";
    const char **domain_names = NULL;
    if (q->num_domains > 0) {
        domain_names = malloc((size_t)q->num_domains * sizeof *domain_names);
        RS_CHECK(domain_names, err, "out of memory");
        for (int d = 0; d < q->num_domains; d++)
            domain_names[d] = q->domain_names[d][0] ? q->domain_names[d] : empty;
    }
    rs_trace_layout layout = {
        .num_layers = 1,
        .num_experts = q->E,
        .logits = RS_LOGITS_NONE,
        .unit = "query",
        .source = source,
        .import_notes = q->import_notes,
        .top_k = 0,
        .norm_topk = -1,
        .num_domains = q->num_domains > 0 ? q->num_domains : 0,
        .domain_names = domain_names,
        .expert_names = (const char *const *)q->model_names,
        .gzip_level = gzip_level,
        .outcome_quality = 1,
        .outcome_cost = q->cost_per_query ? RS_COST_PER_QUERY : q->model_cost ? RS_COST_PER_MODEL : RS_COST_NONE,
    };
    rs_trace_writer *w = NULL;
    int rc = rs_trace_size_check(path, &layout, q->T, q->T, limit, err);
    if (rc == 0)
        rc = rs_trace_writer_create(&w, path, &layout, err);
    free(domain_names);
    RS_TRY(rc);
    if (q->model_cost)
        rc = rs_trace_writer_set_model_cost(w, q->model_cost, err);
    enum { BLOCK = 65536 };
    for (int64_t t0 = 0; t0 < q->T && rc == 0; t0 += BLOCK) {
        int n = (int)(q->T - t0 < BLOCK ? q->T - t0 : BLOCK);
        rc = rs_trace_writer_append(w, n, NULL, NULL, NULL, NULL, NULL, err);
        if (rc == 0)
            rc = rs_trace_writer_append_outcome(w, n, q->quality + t0 * q->E, q->cost ? q->cost + t0 * q->E : NULL,
                                                err);
    }
    /* every query its own sequence, so each keeps its own domain label and the file order */
    int64_t *ends = rc == 0 ? malloc(BLOCK * sizeof *ends) : NULL;
    int32_t *labels = rc == 0 ? calloc(BLOCK, sizeof *labels) : NULL;
    if (rc == 0 && (!ends || !labels))
        rc = rs_fail(err, "out of memory");
    for (int64_t t0 = 0; t0 < q->T && rc == 0; t0 += BLOCK) {
        int n = (int)(q->T - t0 < BLOCK ? q->T - t0 : BLOCK);
        for (int i = 0; i < n; i++) {
            ends[i] = t0 + i + 1;
            labels[i] = q->domain && q->num_domains > 0 ? q->domain[t0 + i] : 0;
        }
        rc = rs_trace_writer_end_sequences(w, n, ends, labels, err);
    }
    free(ends);
    free(labels);
    if (rc != 0) {
        rs_trace_writer_abort(w);
        return -1;
    }
    return rs_trace_writer_finish(w, err);
}
