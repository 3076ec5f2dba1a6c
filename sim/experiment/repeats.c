/* Seeds repeats: a stochastic router run once per seed (config `seeds`)
 * gets a summary run labelled like the router itself, holding the mean over
 * seeds of every point-estimate row and Student's t interval of that mean. */
#include "sim/experiment/repeats.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* text without the part named `name` (parts separated by sep). */
static void without_part(const char *text, const char *name, char sep, char *buf, size_t size)
{
    size_t len = 0, nlen = strlen(name);
    buf[0] = '\0';
    for (const char *p = text; *p;) {
        const char *end = strchr(p, sep);
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (!(n > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '='))
            len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%.*s", len ? (char[]){sep, 0} : "",
                                    (int)n, p);
        p = end ? end + 1 : p + n;
    }
}

/* Indices of run's rows, in order. */
static size_t rows_of(const rs_results *res, int run, size_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < res->num_rows; i++)
        if (res->rows[i].run == run)
            out[n++] = i;
    return n;
}

static int summarize(rs_results *res, const rs_router_spec *spec, const int *members, int m, double level,
                     rs_error *err)
{
    const rs_result_run *first = &res->runs[members[0]];
    char params[2048], full[2400], trace[1024], router[256];
    without_part(first->params, "seed", ';', params, sizeof params);
    const char *colon = strchr(first->spec, ':');
    if (colon) {
        char tail[2048];
        without_part(colon + 1, "seed", ',', tail, sizeof tail);
        snprintf(full, sizeof full, "%.*s%s%s", (int)(colon - first->spec), first->spec, tail[0] ? ":" : "", tail);
    } else {
        snprintf(full, sizeof full, "%s", first->spec);
    }
    snprintf(trace, sizeof trace, "%s", first->trace);
    snprintf(router, sizeof router, "%s", first->router);
    int run = rs_results_add_run(res, spec->repeat_label, trace, router, params, full);
    RS_CHECK(run >= 0, err, "out of memory");
    res->runs[run].entry = spec->entry;

    size_t **idx = calloc((size_t)m, sizeof *idx), *count = calloc((size_t)m, sizeof *count);
    double *v = malloc((size_t)m * sizeof *v);
    int rc = idx && count && v ? 0 : rs_fail(err, "out of memory");
    for (int j = 0; j < m && rc == 0; j++) {
        idx[j] = malloc((res->num_rows + 1) * sizeof *idx[j]);
        rc = idx[j] ? 0 : rs_fail(err, "out of memory");
        if (rc == 0)
            count[j] = rows_of(res, members[j], idx[j]);
    }
    for (size_t i = 0; i < (rc == 0 ? count[0] : 0) && rc == 0; i++) {
        const rs_result_row *want = &res->rows[idx[0][i]];
        if (strstr(want->key, "stat="))
            continue; /* intervals of the single runs */
        int n = 0;
        double sum = 0;
        for (int j = 0; j < m; j++) {
            size_t k = i;
            if (k >= count[j] || !rs_result_row_same(want, &res->rows[idx[j][k]]))
                for (k = 0; k < count[j] && !rs_result_row_same(want, &res->rows[idx[j][k]]); k++)
                    ;
            if (k < count[j] && isfinite(res->rows[idx[j][k]].value)) {
                v[n] = res->rows[idx[j][k]].value;
                sum += v[n++];
            }
        }
        double mean = n ? sum / n : NAN, sq = 0;
        for (int j = 0; j < n; j++)
            sq += (v[j] - mean) * (v[j] - mean);
        double half = n >= 2 ? gsl_cdf_tdist_Pinv((1 + level) / 2, n - 1) * sqrt(sq / (n - 1)) / sqrt(n) : NAN;
        char metric[256], key[1300], low[1400], high[1400];
        snprintf(metric, sizeof metric, "%s", want->metric);
        snprintf(key, sizeof key, "%s", want->key);
        int layer = want->layer;
        rs_key_with_stat(key, "ci_low", low, sizeof low);
        rs_key_with_stat(key, "ci_high", high, sizeof high);
        /* adding rows may move res->rows; want is not used below */
        if (rs_results_add_row(res, run, metric, key, layer, mean) != 0 ||
            rs_results_add_row(res, run, metric, low, layer, mean - half) != 0 ||
            rs_results_add_row(res, run, metric, high, layer, mean + half) != 0)
            rc = rs_fail(err, "out of memory");
    }
    for (int j = 0; idx && j < m; j++)
        free(idx[j]);
    free(idx);
    free(count);
    free(v);
    return rc;
}

int rs_summarize_repeats(rs_results *res, const rs_router_spec *specs, const int *runs, int n, double level,
                         rs_error *err)
{
    int *members = malloc(((size_t)n + 1) * sizeof *members);
    RS_CHECK(members, err, "out of memory");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (specs[i].repeat != i)
            continue; /* not the first of a group */
        int m = 0;
        for (int j = i; j < n; j++)
            if (specs[j].repeat == i && runs[j] >= 0)
                members[m++] = runs[j];
        if (m > 0)
            rc = summarize(res, &specs[i], members, m, level > 0 ? level : 0.95, err);
    }
    free(members);
    return rc;
}
