/* metric_sweep: a metric (layer = all) against a numeric parameter of the
 * metric itself that a config swept ("params": {"replicas": [0, 32, 64]}
 * in a metric entry). Such values sit in one run under different keys
 * (replicas=0, replicas=32, ...), unlike a router sweep (the sweep kind),
 * which makes one run per value. One line per run and policy (when the key
 * has policy=); the key's other parts that vary (stats, rebalance_every,
 * ...) give one figure per combination. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plots/plot_internal.h"

/* A figure holds at most this many lines (the palette's eight colours);
 * more, from several runs, make one figure per run. */
enum { MAX_LINES = 8 };

/* Metrics whose parameters have a figure kind of their own: cache sizes
 * (cache), segment lengths (segment). Named with --metric, they are drawn
 * here too. */
static int own_kind(const char *metric)
{
    return strncmp(metric, "cache.", 6) == 0 || strncmp(metric, "srp.", 4) == 0 || strncmp(metric, "sch.", 4) == 0;
}

/* One line: the layer=all values of a run under the keys that differ only
 * in the parameter on x. */
typedef struct line {
    int run, rest; /* rest: index into line_set.rests */
    char *split;   /* the rest's varying parts other than policy: which figure the line is in */
    int points, varies;
} line;

typedef struct line_set {
    line *items;
    int n;
    char **rests; /* distinct keys without the parameter on x */
    int num_rests;
    double *x_of; /* per key id: the parameter's value, NAN when absent */
    int *rest_of; /* per key id: index into rests, -1 when the metric has no such key */
    int *line_of; /* per value of the metric (index - first): its line, -1 none */
} line_set;

static void lines_free(line_set *ls)
{
    for (int i = 0; i < ls->n; i++)
        free(ls->items[i].split);
    for (int i = 0; i < ls->num_rests; i++)
        free(ls->rests[i]);
    free(ls->items);
    free(ls->rests);
    free(ls->x_of);
    free(ls->rest_of);
    free(ls->line_of);
    memset(ls, 0, sizeof *ls);
}

static int usable_value(const rs_plot_table *t, const rs_plot_value *v)
{
    return v->layer == -1 && v->has_value && isfinite(v->value) && !t->runs[v->run].repeat;
}

enum { REST_SIZE = sizeof((rs_plot_figure *)0)->rest };

/* x and rest of every key of metric m that names param with a number. */
static int keys_split(const rs_plot_table *t, int m, const char *param, line_set *ls, rs_error *err)
{
    const int K = t->results.num_keys ? t->results.num_keys : 1;
    int *keys = malloc((size_t)K * sizeof *keys);
    ls->x_of = malloc((size_t)K * sizeof *ls->x_of);
    ls->rest_of = malloc((size_t)K * sizeof *ls->rest_of);
    ls->rests = calloc((size_t)K, sizeof *ls->rests);
    int rc = keys && ls->x_of && ls->rest_of && ls->rests ? 0 : rs_fail(err, "out of memory");
    for (int k = 0; rc == 0 && k < K; k++) {
        ls->x_of[k] = NAN;
        ls->rest_of[k] = -1;
    }
    int n = rc == 0 ? rs_results_metric_keys(&t->results, m, keys, t->results.num_keys) : 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *key = t->results.keys[keys[i]];
        char text[64], rest[REST_SIZE];
        double x;
        if (strlen(key) >= sizeof rest || !rs_plot_key_part(key, param, text, sizeof text) ||
            !rs_results_parse_number(text, &x) || !isfinite(x))
            continue; /* no x, or a key too long to name a figure by */
        rs_plot_key_without(key, param, rest, sizeof rest);
        int r = 0;
        while (r < ls->num_rests && strcmp(ls->rests[r], rest) != 0)
            r++;
        if (r == ls->num_rests && !(ls->rests[ls->num_rests++] = strdup(rest)))
            rc = rs_fail(err, "out of memory");
        ls->x_of[keys[i]] = x;
        ls->rest_of[keys[i]] = r;
    }
    free(keys);
    return rc;
}

/* The split key of every line: the parts of its rest, policy aside, that
 * differ among the lines. */
static int split_keys(line_set *ls, rs_error *err)
{
    const int n = ls->n;
    const char **no_policy = malloc((size_t)(n ? n : 1) * sizeof *no_policy);
    char *buf = malloc((size_t)(n ? n : 1) * REST_SIZE);
    int rc = no_policy && buf ? 0 : rs_fail(err, "out of memory");
    for (int j = 0; rc == 0 && j < n; j++) {
        rs_plot_key_without(ls->rests[ls->items[j].rest], "policy", buf + (size_t)j * REST_SIZE, REST_SIZE);
        no_policy[j] = buf + (size_t)j * REST_SIZE;
    }
    for (int j = 0; rc == 0 && j < n; j++) {
        char split[REST_SIZE];
        rs_plot_key_varying_key(no_policy, n, no_policy[j], split, sizeof split);
        if (!(ls->items[j].split = strdup(split)))
            rc = rs_fail(err, "out of memory");
    }
    free(no_policy);
    free(buf);
    return rc;
}

/* The lines of metric m against param: (run, rest) pairs with two or more
 * x values, each with its split key. */
static int lines_find(const rs_plot_table *t, int m, const char *param, line_set *ls, rs_error *err)
{
    memset(ls, 0, sizeof *ls);
    const rs_plot_metric *pm = &t->results.metrics[m];
    int rc = keys_split(t, m, param, ls, err);
    ls->line_of = rc == 0 ? malloc((pm->count ? pm->count : 1) * sizeof *ls->line_of) : NULL;
    if (rc == 0 && !ls->line_of)
        rc = rs_fail(err, "out of memory");
    /* values are sorted by run: a run's lines are found among those since its first value */
    int run_start = 0, last_run = -1;
    for (size_t i = 0; rc == 0 && i < pm->count; i++) {
        const rs_plot_value *v = &t->results.values[pm->first + i];
        ls->line_of[i] = -1;
        if (!usable_value(t, v) || ls->rest_of[v->key] < 0)
            continue;
        if (v->run != last_run) {
            last_run = v->run;
            run_start = ls->n;
        }
        int found = -1;
        for (int j = run_start; j < ls->n && found < 0; j++)
            if (ls->items[j].run == v->run && ls->items[j].rest == ls->rest_of[v->key])
                found = j;
        if (found < 0) {
            line *grown = realloc(ls->items, (size_t)(ls->n + 1) * sizeof *grown);
            if (!grown) {
                rc = rs_fail(err, "out of memory");
                break;
            }
            ls->items = grown;
            ls->items[ls->n] = (line){.run = v->run, .rest = ls->rest_of[v->key]};
            found = ls->n++;
        }
        ls->line_of[i] = found;
    }
    /* two x values make a line; note whether y changes along it */
    double *first = rc == 0 ? malloc((size_t)(ls->n ? ls->n : 1) * 2 * sizeof *first) : NULL;
    int *renumber = rc == 0 ? malloc((size_t)(ls->n ? ls->n : 1) * sizeof *renumber) : NULL;
    if (rc == 0 && (!first || !renumber))
        rc = rs_fail(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < pm->count; i++) {
        int j = ls->line_of[i];
        if (j < 0)
            continue;
        const rs_plot_value *v = &t->results.values[pm->first + i];
        line *ln = &ls->items[j];
        double x = ls->x_of[v->key];
        if (ln->points == 0) {
            first[2 * j] = x;
            first[2 * j + 1] = v->value;
            ln->points = 1;
        } else {
            ln->points += ln->points == 1 && x != first[2 * j]; /* 2 is enough */
            ln->varies |= v->value != first[2 * j + 1];
        }
    }
    int kept = 0;
    for (int j = 0; rc == 0 && j < ls->n; j++) {
        renumber[j] = ls->items[j].points >= 2 ? kept : -1;
        if (renumber[j] >= 0)
            ls->items[kept++] = ls->items[j];
    }
    for (size_t i = 0; rc == 0 && i < pm->count; i++)
        if (ls->line_of[i] >= 0)
            ls->line_of[i] = renumber[ls->line_of[i]];
    if (rc == 0)
        ls->n = kept;
    free(first);
    free(renumber);
    if (rc == 0)
        rc = split_keys(ls, err);
    if (rc != 0)
        lines_free(ls);
    return rc;
}

/* The lines of a figure: its split key, and its run when it has one. */
static int in_figure(const line *ln, const char *split, int run)
{
    return strcmp(ln->split, split) == 0 && (run < 0 || ln->run == run);
}

/* The parameters a metric's keys name with two or more numbers (numeric
 * ones its family declares; any numeric part of an unknown family's metric
 * when it was named), and whether the keys hold a part that is no
 * parameter (an index: expert=, device=, decile=): such a metric is a
 * histogram, not a sweep. */
static int candidate_params(const rs_plot_table *t, int m, int named, char (*names)[64], int max, int *histogram)
{
    const rs_plot_metric *pm = &t->results.metrics[m];
    double first[16];
    int varies[16] = {0}, n = 0, last_key = -1;
    *histogram = 0;
    max = max < 16 ? max : 16;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        if (t->results.values[i].key == last_key)
            continue;
        last_key = t->results.values[i].key;
        const char *key = t->results.keys[last_key];
        for (const char *p = key; *p;) {
            const char *end = strchr(p, ';');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            const char *eq = memchr(p, '=', len);
            char name[64], value[64];
            double x;
            if (eq && (size_t)(eq - p) < sizeof name) {
                snprintf(name, sizeof name, "%.*s", (int)(eq - p), p);
                int numeric = 0, known = rs_plot_metric_param(pm->name, name, NULL, &numeric);
                *histogram |= known == 0;
                if (rs_plot_key_part(key, name, value, sizeof value) && rs_results_parse_number(value, &x) &&
                    isfinite(x) && (known == 1 ? numeric : known < 0 && named)) {
                    int j = 0;
                    while (j < n && strcmp(names[j], name) != 0)
                        j++;
                    if (j == n && n < max) {
                        snprintf(names[n], sizeof names[0], "%s", name);
                        first[n++] = x;
                    } else if (j < n) {
                        varies[j] |= x != first[j];
                    }
                }
            }
            p = end ? end + 1 : p + len;
        }
    }
    int kept = 0;
    for (int j = 0; j < n; j++)
        if (varies[j])
            memmove(names[kept++], names[j], sizeof names[0]);
    return kept;
}

/* The figures of metric m against param: one per split key (one per run
 * and split key when that holds too many lines). stamp: num_runs ints. */
static int plan_param(const rs_plot_table *t, int m, const char *param, int named, int *stamp,
                      rs_plot_figures *out, rs_error *err)
{
    line_set ls;
    RS_TRY(lines_find(t, m, param, &ls, err));
    for (int r = 0; r < t->num_runs; r++)
        stamp[r] = -1;
    int rc = 0;
    for (int j = 0; rc == 0 && j < ls.n; j++) {
        const char *split = ls.items[j].split;
        int first = 1, lines = 0, runs = 0, varies = 0;
        for (int i = 0; i < j && first; i++)
            first = strcmp(ls.items[i].split, split) != 0; /* a figure is planned at its first line */
        for (int i = j; first && i < ls.n; i++) {
            if (strcmp(ls.items[i].split, split) != 0)
                continue;
            lines++;
            varies |= ls.items[i].varies;
            runs += stamp[ls.items[i].run] != j;
            stamp[ls.items[i].run] = j; /* the runs with a line in this figure */
        }
        if (!first || (!varies && !named))
            continue;
        int per_run = lines > MAX_LINES && runs > 1;
        for (int r = per_run ? 0 : -1; rc == 0 && r < (per_run ? t->num_runs : 0); r++) {
            if (r >= 0 && stamp[r] != j)
                continue;
            char suffix[1400], run[128] = "", stem[192];
            if (r >= 0)
                rs_plot_run_suffix(t, r, run, sizeof run);
            snprintf(suffix, sizeof suffix, "vs-%s%s%s%s%s", param, split[0] ? "-" : "", split, run[0] ? "-" : "",
                     run);
            rs_plot_stem(stem, sizeof stem, "metric_sweep", t->results.metrics[m].name, NULL, suffix);
            rs_plot_figure *fig = rs_plot_figures_add_new(out, RS_PLOT_KIND_metric_sweep, stem, err);
            if (!fig) {
                rc = -1;
                break;
            }
            fig->metric = m;
            fig->run = r;
            fig->one_rest = 1;
            snprintf(fig->param, sizeof fig->param, "%.63s", param);
            snprintf(fig->rest, sizeof fig->rest, "%s", split);
        }
    }
    lines_free(&ls);
    return rc;
}

static int metric_sweep_plan(const rs_plot_table *t, const char *metric, rs_plot_figures *out, rs_error *err)
{
    int *stamp = malloc((size_t)(t->num_runs ? t->num_runs : 1) * sizeof *stamp);
    RS_CHECK(stamp, err, "out of memory");
    int rc = 0;
    for (int m = 0; rc == 0 && m < t->results.num_metrics; m++) {
        const char *name = t->results.metrics[m].name;
        if (!rs_plot_metric_matches(name, metric) || (!metric && own_kind(name)))
            continue;
        char params[16][64];
        int histogram = 0, np = candidate_params(t, m, metric != NULL, params, 16, &histogram);
        if (histogram && !metric)
            continue;
        for (int p = 0; rc == 0 && p < np; p++)
            rc = plan_param(t, m, params[p], metric != NULL, stamp, out, err);
    }
    free(stamp);
    return rc;
}

/* What tells the figure's lines apart: "run and policy", "policy", "run". */
static void line_names(const char *const *rests, int n, int runs, char *buf, size_t size)
{
    const int with_run = runs > 1;
    size_t used = (size_t)snprintf(buf, size, "%s", with_run ? "run and " : "");
    rs_plot_key_varying_names(rests, n, buf + (used < size ? used : size - 1), used < size ? size - used : 1);
    if (!buf[used < size ? used : size - 1]) /* nothing but the run varies */
        snprintf(buf, size, "run");
}

static int metric_sweep_write(const rs_plot_table *t, const rs_plot_figure *fig, const rs_plot_target *tg,
                              rs_error *err)
{
    const rs_plot_metric *pm = &t->results.metrics[fig->metric];
    line_set ls;
    RS_TRY(lines_find(t, fig->metric, fig->param, &ls, err));
    const char **rests = malloc((size_t)(ls.n ? ls.n : 1) * sizeof *rests);
    int *members = malloc((size_t)(ls.n ? ls.n : 1) * sizeof *members);
    int n = 0, runs = 0, rc = rests && members ? 0 : rs_fail(err, "out of memory");
    for (int j = 0; rc == 0 && j < ls.n; j++) {
        if (!in_figure(&ls.items[j], fig->rest, fig->run))
            continue;
        int seen = 0;
        for (int q = 0; q < n && !seen; q++)
            seen = ls.items[members[q]].run == ls.items[j].run;
        runs += !seen;
        rests[n] = ls.rests[ls.items[j].rest];
        members[n++] = j;
    }
    rs_plot_chart chart = {.single_height = 2.6, .double_height = 2.9};
    rs_plot_metric_axis(pm->name, &chart.y);
    const char *help = "";
    rs_plot_metric_param(pm->name, fig->param, &help, NULL);
    /* a short description reads well on an axis; a long one goes in the caption */
    snprintf(chart.xlabel, sizeof chart.xlabel, "%s%s%s", fig->param, strlen(help) <= 36 && help[0] ? ": " : "",
             strlen(help) <= 36 ? help : "");
    chart.tics_at_x = 1;
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; rc == 0 && s < n; s++) {
        const line *ln = &ls.items[members[s]];
        char varying[512], label[768];
        rs_plot_key_varying(rests, n, ls.rests[ln->rest], varying, sizeof varying);
        if (runs > 1 || !varying[0])
            snprintf(label, sizeof label, "%s%s%s", t->runs[ln->run].name, varying[0] ? ", " : "", varying);
        else
            snprintf(label, sizeof label, "%s", varying);
        rs_plot_series *series = rs_plot_chart_series(&chart, label, RS_PLOT_LINE, err);
        rc = series ? 0 : -1;
        for (size_t i = 0; rc == 0 && i < pm->count; i++) {
            const rs_plot_value *v = &t->results.values[pm->first + i];
            if (ls.line_of[i] != members[s])
                continue;
            double x = ls.x_of[v->key];
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
            rc = rs_plot_series_add(series, x, v->value, v->has_ci ? v->ci_low : NAN, v->has_ci ? v->ci_high : NAN,
                                    err);
        }
        if (rc == 0)
            rs_plot_series_sort(series);
    }
    chart.logx = lo > 0 && hi / lo >= 100 ? 10 : 0;
    char what[2048], common[1024] = "", per[256];
    if (rc == 0) {
        rs_plot_key_shared(rests, n, common, sizeof common);
        line_names(rests, n, runs, per, sizeof per);
    }
    const char *one_run = fig->run >= 0 ? t->runs[fig->run].name : NULL;
    snprintf(what, sizeof what, "%s against its parameter %s, one line per %s%s%s%s%s", pm->name, fig->param, per,
             one_run ? " of run " : "", one_run ? one_run : "", fig->rest[0] ? ", " : "", fig->rest);
    if (rc == 0)
        rc = rs_plot_chart_write(&chart, fig, tg, what, err);
    if (rc == 0) {
        char caption[4096];
        const char *def = rs_plot_metric_definition(pm->name);
        if (!one_run && runs == 1 && n > 0)
            one_run = t->runs[ls.items[members[0]].run].name;
        snprintf(caption, sizeof caption,
                 "%s (%s, layer = all) against the metric parameter %s%s%s%s, swept within each run (one key per "
                 "value), one line per %s%s%s%s%s.%s%s",
                 pm->name, chart.y.label, fig->param, help[0] ? " (" : "", help, help[0] ? ")" : "", per,
                 one_run ? " of run " : "", one_run ? one_run : "", common[0] ? "; all lines: " : "", common,
                 def[0] ? " Definition: " : "", def);
        rc = rs_plot_write_caption(tg, fig, caption, err);
    }
    rs_plot_chart_free(&chart);
    free(rests);
    free(members);
    lines_free(&ls);
    return rc;
}

static const rs_plot_kind metric_sweep_kind = {
    .name = "metric_sweep",
    .needs = "a metric's layer=all rows under keys that differ in one numeric metric parameter (a metric entry "
             "sweeping it, e.g. placement's replicas)",
    .plan = metric_sweep_plan,
    .write = metric_sweep_write,
};

const rs_plot_kind *const rs_plot_kind_metric_sweep = &metric_sweep_kind;
