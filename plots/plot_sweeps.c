/* Sweeps: runs of one trace and router (and config entry, when
 * results.json records it) with the same parameter names, whose values
 * differ. The varying numeric parameter with the most distinct values goes
 * on x (ties: the first by name); the other varying parameters split the
 * runs into one sweep per combination of their values (a grid). When no
 * varying parameter is numeric (random_mix over "weights"), the one with
 * the most distinct values makes a sweep without a numeric x: the
 * cost_quality figure still draws it as one curve. */
#include <stdlib.h>
#include <string.h>

#include "plots/plot_internal.h"

enum { MAX_PARAMS = 64 };

typedef struct param_list {
    int n;
    char name[MAX_PARAMS][64];
    char value[MAX_PARAMS][128];
} param_list;

/* "k=2;renorm=1" -> pairs (results.csv params are sorted by name). */
static void parse_params(const char *text, param_list *p)
{
    p->n = 0;
    for (const char *s = text; *s && p->n < MAX_PARAMS;) {
        const char *end = strchr(s, ';');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (eq) {
            snprintf(p->name[p->n], sizeof p->name[0], "%.*s", (int)(eq - s), s);
            snprintf(p->value[p->n], sizeof p->value[0], "%.*s", (int)(len - (size_t)(eq - s) - 1), eq + 1);
            p->n++;
        }
        s = end ? end + 1 : s + len;
    }
}

static const char *param_value(const param_list *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->name[i], name) == 0)
            return p->value[i];
    return NULL;
}

/* The parameter names of a params string, in order ("k;renorm;scale"). */
static void param_names(const char *params, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const char *s = params; *s;) {
        const char *end = strchr(s, ';');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (eq)
            used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%.*s", used ? ";" : "",
                                     (int)(eq - s), s);
        s = end ? end + 1 : s + len;
    }
}

/* Runs of one sweep share trace, router and config entry, and name the same
 * parameters: an entry that sets capacity_factor is not a sweep point of
 * one that does not, even when results.json does not say which entry a
 * run came from. */
static int same_group(const rs_plot_run *a, const rs_plot_run *b)
{
    if (strcmp(a->trace, b->trace) != 0 || strcmp(a->router, b->router) != 0 || a->entry != b->entry)
        return 0;
    char x[2048], y[2048];
    param_names(a->params, x, sizeof x);
    param_names(b->params, y, sizeof y);
    return strcmp(x, y) == 0;
}

/* The run label without its "param=value" part: "topk:k=2,renorm=0" -> "topk:renorm=0". */
static void label_without(const char *label, const char *param, const char *router, char *buf, size_t size)
{
    const char *colon = strchr(label, ':');
    size_t plen = strlen(param);
    int found = 0;
    if (colon) {
        size_t used = (size_t)snprintf(buf, size, "%.*s", (int)(colon - label), label);
        int parts = 0;
        for (const char *s = colon + 1; *s;) {
            const char *end = strchr(s, ',');
            size_t len = end ? (size_t)(end - s) : strlen(s);
            if (len > plen && strncmp(s, param, plen) == 0 && s[plen] == '=') {
                found = 1;
            } else if (len > 0) {
                used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%.*s", parts ? "," : ":",
                                         (int)len, s);
                parts++;
            }
            s = end ? end + 1 : s + len;
        }
    }
    if (!found)
        snprintf(buf, size, "%s", router);
}

static int add_sweep(rs_plot_table *t, const char *param, const char *label, int numeric, const int *runs,
                     const double *x, int n, rs_error *err)
{
    rs_plot_sweep *grown = realloc(t->sweeps, (size_t)(t->num_sweeps + 1) * sizeof *grown);
    RS_CHECK(grown, err, "out of memory");
    t->sweeps = grown;
    rs_plot_sweep *s = &t->sweeps[t->num_sweeps];
    memset(s, 0, sizeof *s);
    s->runs = malloc((size_t)n * sizeof *s->runs);
    s->x = malloc((size_t)n * sizeof *s->x);
    if (!s->runs || !s->x) {
        free(s->runs);
        free(s->x);
        return rs_fail(err, "out of memory");
    }
    t->num_sweeps++;
    snprintf(s->param, sizeof s->param, "%s", param);
    snprintf(s->label, sizeof s->label, "%s", label);
    s->numeric = numeric;
    /* sorted by x; a repeated x keeps its first run */
    for (int i = 0; i < n; i++) {
        int at = s->n, dup = 0;
        for (int j = 0; j < s->n && !dup; j++)
            dup = s->x[j] == x[i];
        if (dup)
            continue;
        while (at > 0 && s->x[at - 1] > x[i]) {
            s->x[at] = s->x[at - 1];
            s->runs[at] = s->runs[at - 1];
            at--;
        }
        s->x[at] = x[i];
        s->runs[at] = runs[i];
        s->n++;
    }
    if (s->n < 2) { /* every run had the same x: not a sweep */
        free(s->runs);
        free(s->x);
        t->num_sweeps--;
    }
    return 0;
}

static int same_value(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

/* The place of value v among the distinct values of a parameter, in order of first appearance. */
static int value_ordinal(const param_list *params, int n, const char *name, const char *v)
{
    int ordinal = 0;
    for (int q = 0; q < n; q++) {
        const char *w = param_value(&params[q], name);
        int earlier = 0;
        for (int r = 0; r < q && !earlier; r++)
            earlier = same_value(param_value(&params[r], name), w);
        if (earlier)
            continue;
        if (same_value(w, v))
            return ordinal;
        ordinal++;
    }
    return ordinal;
}

/* One group (same trace, router, entry): find x and split by the rest. */
static int group_sweeps(rs_plot_table *t, const int *members, int n, param_list *params, rs_error *err)
{
    /* parameters whose values differ within the group */
    char varying[MAX_PARAMS][64];
    int num_varying = 0;
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < params[i].n; p++) {
            const char *name = params[i].name[p];
            int differs = 0, listed = 0;
            for (int j = 0; j < n && !differs; j++) {
                const char *v = param_value(&params[j], name);
                differs = !v || strcmp(v, params[i].value[p]) != 0;
            }
            for (int k = 0; k < num_varying && !listed; k++)
                listed = strcmp(varying[k], name) == 0;
            if (differs && !listed && num_varying < MAX_PARAMS)
                snprintf(varying[num_varying++], sizeof varying[0], "%s", name);
        }
    }
    int best = -1, best_distinct = 0;
    for (int k = 0; k < num_varying; k++) {
        int numeric = 1, distinct = 0;
        for (int i = 0; i < n && numeric; i++) {
            const char *v = param_value(&params[i], varying[k]);
            double x;
            numeric = v && rs_results_parse_number(v, &x);
            int seen = 0;
            for (int j = 0; j < i && !seen && numeric; j++)
                seen = strcmp(param_value(&params[j], varying[k]), v) == 0;
            distinct += numeric && !seen;
        }
        if (numeric && (distinct > best_distinct ||
                        (distinct == best_distinct && best >= 0 && strcmp(varying[k], varying[best]) < 0))) {
            best = k;
            best_distinct = distinct;
        }
    }
    int numeric = best >= 0;
    for (int k = 0; !numeric && k < num_varying; k++) {
        int distinct = 0;
        for (int i = 0; i < n; i++) {
            const char *v = param_value(&params[i], varying[k]);
            int seen = 0;
            for (int j = 0; j < i && !seen; j++)
                seen = same_value(param_value(&params[j], varying[k]), v);
            distinct += !seen;
        }
        if (distinct > best_distinct) {
            best = k;
            best_distinct = distinct;
        }
    }
    if (best < 0)
        return 0;
    const char *xname = varying[best];
    /* split by the other varying parameters */
    int *runs = malloc((size_t)n * sizeof *runs);
    double *x = malloc((size_t)n * sizeof *x);
    char *done = calloc((size_t)n, 1);
    int rc = runs && x && done ? 0 : rs_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        if (done[i])
            continue;
        int m = 0;
        for (int j = i; j < n; j++) {
            int same = 1;
            for (int k = 0; k < num_varying && same; k++) {
                if (k == best)
                    continue;
                same = same_value(param_value(&params[i], varying[k]), param_value(&params[j], varying[k]));
            }
            if (!same || done[j])
                continue;
            done[j] = 1;
            runs[m] = members[j];
            if (numeric) {
                rs_results_parse_number(param_value(&params[j], xname), &x[m]);
            } else {
                x[m] = value_ordinal(params, n, xname, param_value(&params[j], xname));
            }
            m++;
        }
        char label[256];
        label_without(t->runs[members[i]].label, xname, t->runs[members[i]].router, label, sizeof label);
        rc = add_sweep(t, xname, label, numeric, runs, x, m, err);
    }
    free(runs);
    free(x);
    free(done);
    return rc;
}

int rs_plot_sweeps_find(rs_plot_table *t, rs_error *err)
{
    int *members = malloc((size_t)t->num_runs * sizeof *members);
    param_list *params = malloc((size_t)t->num_runs * sizeof *params);
    char *grouped = calloc((size_t)t->num_runs + 1, 1);
    int rc = members && params && grouped ? 0 : rs_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < t->num_runs; i++) {
        if (grouped[i] || t->runs[i].repeat)
            continue;
        int n = 0;
        for (int j = i; j < t->num_runs; j++) {
            if (!grouped[j] && !t->runs[j].repeat && same_group(&t->runs[i], &t->runs[j])) {
                grouped[j] = 1;
                members[n] = j;
                parse_params(t->runs[j].params, &params[n]);
                n++;
            }
        }
        if (n >= 2)
            rc = group_sweeps(t, members, n, params, err);
    }
    free(members);
    free(params);
    free(grouped);
    return rc;
}

void rs_plot_sweeps_free(rs_plot_table *t)
{
    for (int i = 0; i < t->num_sweeps; i++) {
        free(t->sweeps[i].runs);
        free(t->sweeps[i].x);
    }
    free(t->sweeps);
    t->sweeps = NULL;
    t->num_sweeps = 0;
}
