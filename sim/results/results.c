#include "sim/results/results.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/number_text.h"
#include "core/output_path.h"

void rs_results_init(rs_results *r) { memset(r, 0, sizeof *r); }

void rs_results_free(rs_results *r)
{
    for (int i = 0; i < r->num_runs; i++) {
        free(r->runs[i].label);
        free(r->runs[i].trace);
        free(r->runs[i].router);
        free(r->runs[i].params);
        free(r->runs[i].spec);
    }
    for (size_t i = 0; i < r->num_rows; i++) {
        free(r->rows[i].metric);
        free(r->rows[i].key);
    }
    free(r->runs);
    free(r->rows);
    memset(r, 0, sizeof *r);
}

int rs_results_add_run(rs_results *r, const char *label, const char *trace, const char *router, const char *params,
                       const char *spec)
{
    if (r->num_runs == r->cap_runs) {
        int cap = r->cap_runs ? 2 * r->cap_runs : 8;
        rs_result_run *grown = realloc(r->runs, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        r->runs = grown;
        r->cap_runs = cap;
    }
    rs_result_run *run = &r->runs[r->num_runs];
    run->label = strdup(label);
    run->trace = strdup(trace);
    run->router = strdup(router);
    run->params = strdup(params);
    run->spec = strdup(spec);
    run->entry = -1;
    if (!run->label || !run->trace || !run->router || !run->params || !run->spec) {
        free(run->label);
        free(run->trace);
        free(run->router);
        free(run->params);
        free(run->spec);
        return -1;
    }
    return r->num_runs++;
}

int rs_results_add_row(rs_results *r, int run, const char *metric, const char *key, int layer, double value)
{
    if (r->num_rows == r->cap_rows) {
        size_t cap = r->cap_rows ? 2 * r->cap_rows : 256;
        rs_result_row *grown = realloc(r->rows, cap * sizeof *grown);
        if (!grown)
            return -1;
        r->rows = grown;
        r->cap_rows = cap;
    }
    rs_result_row *row = &r->rows[r->num_rows];
    row->run = run;
    row->metric = strdup(metric);
    row->key = strdup(key ? key : "");
    row->layer = layer;
    row->value = value;
    if (!row->metric || !row->key) {
        free(row->metric);
        free(row->key);
        return -1;
    }
    r->num_rows++;
    return 0;
}

void rs_format_value(double v, char *buf, size_t size)
{
    rs_number_text(v, buf, size);
}

/* RFC 4180: quote a field holding a comma, quote or newline. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int rs_results_write_csv(const rs_results *r, const char *path, rs_error *err)
{
    char tmp[4200];
    RS_TRY(rs_temp_path(path, tmp, sizeof tmp, err));
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rs_temp_discard(tmp);
        return rs_fail(err, "%s: cannot write results (is the directory writable?)", path);
    }
    fputs(RS_RESULTS_CSV_HEADER, f);
    for (size_t i = 0; i < r->num_rows; i++) {
        const rs_result_row *row = &r->rows[i];
        const rs_result_run *run = &r->runs[row->run];
        char layer[32], value[64];
        if (row->layer < 0)
            snprintf(layer, sizeof layer, "all");
        else
            snprintf(layer, sizeof layer, "%d", row->layer);
        rs_format_value(row->value, value, sizeof value);
        const char *fields[] = {run->label, run->trace, run->router, run->params, row->metric, row->key, layer, value};
        for (size_t j = 0; j < sizeof fields / sizeof fields[0]; j++) {
            if (j)
                fputc(',', f);
            csv_field(f, fields[j]);
        }
        fputc('\n', f);
    }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad) {
        rs_temp_discard(tmp);
        return rs_fail(err, "%s: write failed (disk full?)", path);
    }
    return rs_commit_path(tmp, path, err);
}

void rs_key_with_stat(const char *key, const char *value, char *buf, size_t size)
{
    size_t len = 0;
    int placed = 0;
    const char *p = key;
    buf[0] = '\0';
    while (*p) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t name = eq ? (size_t)(eq - p) : n;
        int cmp = strncmp(p, "stat", name < 4 ? name : 4);
        if (!placed && (cmp > 0 || (cmp == 0 && name > 4))) {
            len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%sstat=%s", len ? ";" : "", value);
            placed = 1;
        }
        len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%.*s", len ? ";" : "", (int)n, p);
        p = end ? end + 1 : p + n;
    }
    if (!placed)
        snprintf(buf + len, len < size ? size - len : 0, "%sstat=%s", len ? ";" : "", value);
}
