/* The post-run stage of cross-run metrics: which runs form a curve (the
 * runs of one swept config entry on one trace), their outcome numbers as
 * the curve's points, and one results run per curve holding what each
 * metric of metrics/curves/registry.def computes from them. */
#include "sim/experiment/curves.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/curves/curve_metric.h"
#include "routesim/metric.h"

enum { POINT_QUALITY, POINT_COST, POINT_STRONG_CALLS, POINT_STRONG_QUALITY, POINT_WEAK_QUALITY, POINT_FIELDS };
static const char *const point_outputs[POINT_FIELDS] = {"quality", "cost_total", "strong_calls", "strong_quality",
                                                        "weak_quality"};

/* The key results use for output `name` of an outcome spec. */
static void output_key(const rs_metric_spec *spec, const char *name, char *key, size_t size)
{
    key[0] = '\0';
    for (int o = 0; o < spec->type->num_outputs; o++)
        if (strcmp(spec->type->outputs[o].name, name) == 0)
            rs_params_format(&spec->params, spec->type->outputs[o].uses_params, 0, ";", key, size);
}

static int find_run(const rs_results *r, const char *label, const char *trace)
{
    for (int i = 0; i < r->num_runs; i++)
        if (strcmp(r->runs[i].label, label) == 0 && strcmp(r->runs[i].trace, trace) == 0)
            return i;
    return -1;
}

/* The layer=all value of (run, metric, key), NaN when absent. */
static double find_value(const rs_results *r, int run, const char *metric, const char *key)
{
    for (size_t i = 0; i < r->num_rows; i++) {
        const rs_result_row *row = &r->rows[i];
        if (row->run == run && row->layer < 0 && strcmp(row->metric, metric) == 0 && strcmp(row->key, key) == 0)
            return row->value;
    }
    return NAN;
}

/* One swept entry on one trace. */
typedef struct sweep {
    int entry, first_spec, count;
    double *point[POINT_FIELDS]; /* [count] */
} sweep;

static void free_sweeps(sweep *s, int n)
{
    for (int i = 0; i < n; i++)
        free(s[i].point[0]);
    free(s);
}

/* "name:lambda=*" and "lambda=0,0.1,1" from the entry's specs: a parameter is swept when its value differs
 * (',' never occurs in a value: it separates parameters in a spec). */
static void describe_sweep(const rs_config *cfg, const sweep *s, char *label, size_t label_size, char *params,
                           size_t params_size)
{
    const rs_router_spec *first = &cfg->routers[s->first_spec];
    const char *name = first->preset ? first->preset->name : first->type->name;
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(cfg->json, "routers");
    const cJSON *entry = cJSON_GetArrayItem(entries, s->entry);
    const cJSON *given = cJSON_IsObject(entry) ? cJSON_GetObjectItemCaseSensitive(entry, "label") : NULL;
    if (cJSON_IsString(given))
        name = given->valuestring;
    size_t lu = (size_t)snprintf(label, label_size, "%s", name), pu = 0;
    params[0] = '\0';
    int swept = 0;
    for (int p = 0; p < first->params.n; p++) {
        char a[512], b[512];
        rs_param_value_text(&first->params, p, a, sizeof a);
        int differs = 0;
        for (int r = 1; r < s->count && !differs; r++) {
            rs_param_value_text(&cfg->routers[s->first_spec + r].params, p, b, sizeof b);
            differs = strcmp(a, b) != 0;
        }
        if (!differs)
            continue;
        const char *pname = first->params.defs[p].name;
        if (lu < label_size)
            lu += (size_t)snprintf(label + lu, label_size - lu, "%s%s=*", swept ? "," : ":", pname);
        if (pu < params_size)
            pu += (size_t)snprintf(params + pu, params_size - pu, "%s%s=", swept ? ";" : "", pname);
        for (int r = 0; r < s->count && pu < params_size; r++) {
            rs_param_value_text(&cfg->routers[s->first_spec + r].params, p, b, sizeof b);
            pu += (size_t)snprintf(params + pu, params_size - pu, "%s%s", r ? "," : "", b);
        }
        swept++;
    }
}

/* One results row of every curve: a metric, and the key and parameter
 * value it is computed for. */
typedef struct curve_row {
    const rs_curve_metric_type *type;
    char key[128];
    double param;
} curve_row;

/* The rows each curve gets, in registry order; a keyed metric once per
 * distinct value of its parameter among the outcome specs. Returns how
 * many it stored (at most max). */
static int plan_rows(const rs_config *cfg, const rs_metric_spec *outcome, curve_row *rows, int max)
{
    int n = 0;
    for (int i = 0; i < rs_curve_metric_count(); i++) {
        const rs_curve_metric_type *type = rs_curve_metric_at(i);
        if (!type->key_param) {
            if (n < max)
                rows[n++] = (curve_row){.type = type};
            continue;
        }
        for (int m = 0; m < cfg->num_metrics; m++) {
            if (cfg->metrics[m].type != outcome->type)
                continue;
            double value = rs_param_float(&cfg->metrics[m].params, type->key_param);
            int seen = 0;
            for (int k = 0; k < m; k++)
                seen |= cfg->metrics[k].type == outcome->type &&
                        rs_param_float(&cfg->metrics[k].params, type->key_param) == value;
            if (seen || n >= max)
                continue;
            curve_row *row = &rows[n++];
            *row = (curve_row){.type = type, .param = value};
            for (int k = 0; k < cfg->metrics[m].params.n; k++)
                if (strcmp(cfg->metrics[m].params.defs[k].name, type->key_param) == 0)
                    rs_params_format(&cfg->metrics[m].params, 1ull << k, 0, ";", row->key, sizeof row->key);
        }
    }
    return n;
}

static int add_trace_curves(rs_results *results, const rs_config *cfg, const char *trace,
                            const rs_metric_spec *outcome, rs_error *err)
{
    sweep *sweeps = calloc((size_t)cfg->num_routers + 1, sizeof *sweeps);
    RS_CHECK(sweeps, err, "out of memory");
    int num = 0;
    for (int i = 0; i < cfg->num_routers;) { /* a config entry's specs are consecutive */
        int j = i;
        while (j < cfg->num_routers && cfg->routers[j].entry == cfg->routers[i].entry)
            j++;
        sweep *s = &sweeps[num];
        *s = (sweep){.entry = cfg->routers[i].entry, .first_spec = i, .count = j - i};
        int runs_found = s->count >= 2;
        for (int r = i; r < j && runs_found; r++)
            runs_found = find_run(results, cfg->routers[r].label, trace) >= 0;
        i = j;
        if (!runs_found)
            continue;
        double *buf = malloc((size_t)POINT_FIELDS * (size_t)s->count * sizeof *buf);
        if (!buf) {
            free_sweeps(sweeps, num);
            return rs_fail(err, "out of memory");
        }
        for (int f = 0; f < POINT_FIELDS; f++) {
            s->point[f] = buf + (size_t)f * (size_t)s->count;
            char metric[64], key[1024];
            snprintf(metric, sizeof metric, "outcome.%s", point_outputs[f]);
            output_key(outcome, point_outputs[f], key, sizeof key);
            for (int r = 0; r < s->count; r++)
                s->point[f][r] = find_value(results, find_run(results, cfg->routers[s->first_spec + r].label, trace),
                                            metric, key);
        }
        num++;
    }
    int max_rows = rs_curve_metric_count() * (cfg->num_metrics + 1);
    size_t size = (size_t)(num > 0 ? num : 1);
    rs_curve *curves = malloc(size * sizeof *curves);
    curve_row *rows = malloc((size_t)max_rows * sizeof *rows);
    double *values = malloc((size_t)max_rows * size * sizeof *values); /* [row][curve] */
    int rc = curves && rows && values ? 0 : rs_fail(err, "out of memory");
    for (int c = 0; c < num && rc == 0; c++)
        curves[c] = (rs_curve){.cost = sweeps[c].point[POINT_COST],
                               .quality = sweeps[c].point[POINT_QUALITY],
                               .strong_calls = sweeps[c].point[POINT_STRONG_CALLS],
                               .n = sweeps[c].count,
                               .q_weak = sweeps[c].point[POINT_WEAK_QUALITY][0],
                               .q_strong = sweeps[c].point[POINT_STRONG_QUALITY][0]};
    int num_rows = rc == 0 ? plan_rows(cfg, outcome, rows, max_rows) : 0;
    for (int r = 0; r < num_rows && rc == 0 && num > 0; r++)
        rc = rows[r].type->compute(curves, num, rows[r].param, values + (size_t)r * size, err);
    for (int c = 0; c < num && rc == 0; c++) {
        const sweep *s = &sweeps[c];
        char label[512], params[2048];
        describe_sweep(cfg, s, label, sizeof label, params, sizeof params);
        char unique[540];
        snprintf(unique, sizeof unique, "%s", label);
        for (int copy = 2; find_run(results, unique, trace) >= 0; copy++)
            snprintf(unique, sizeof unique, "%s#%d", label, copy);
        const rs_router_spec *first = &cfg->routers[s->first_spec];
        int run = rs_results_add_run(results, unique, trace, first->type->name, params, "");
        if (run < 0) {
            rc = rs_fail(err, "out of memory");
            break;
        }
        results->runs[run].entry = first->entry;
        for (int r = 0; r < num_rows && rc == 0; r++) {
            char metric[64];
            snprintf(metric, sizeof metric, RS_CURVE_FAMILY ".%s", rows[r].type->output.name);
            rc = rs_results_add_row(results, run, metric, rows[r].key, -1, values[(size_t)r * size + (size_t)c]);
        }
        if (rc != 0)
            rc = rs_fail(err, "out of memory");
    }
    free(curves);
    free(rows);
    free(values);
    free_sweeps(sweeps, num);
    return rc;
}

int rs_curves_add(rs_results *results, const rs_config *cfg, rs_error *err)
{
    const rs_metric_spec *outcome = NULL;
    for (int m = 0; m < cfg->num_metrics && !outcome; m++)
        if (strcmp(cfg->metrics[m].type->name, "outcome") == 0)
            outcome = &cfg->metrics[m];
    if (!outcome)
        return 0;
    for (int t = 0; t < cfg->num_traces; t++) {
        int seen = 0;
        for (int u = 0; u < t; u++)
            seen |= strcmp(cfg->traces[u].path, cfg->traces[t].path) == 0;
        if (!seen)
            RS_TRY(add_trace_curves(results, cfg, cfg->traces[t].path, outcome, err));
    }
    return 0;
}
