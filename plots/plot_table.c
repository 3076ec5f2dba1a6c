/* The results table as figures see it (sim/results/results_reader.c reads
 * it): each run's display name, seed repeats set aside, the sweeps; and
 * the helpers the kinds use on metrics and keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plots/plot_internal.h"

void rs_plot_trace_stem(const char *trace, char *buf, size_t size)
{
    const char *base = strrchr(trace, '/') ? strrchr(trace, '/') + 1 : trace;
    const char *dot = strrchr(base, '.');
    snprintf(buf, size, "%.*s", dot && dot > base ? (int)(dot - base) : (int)strlen(base), base);
}

/* Figures name a run by its label; a label that other traces' runs share
 * gets the trace's name too ("native (mixtral)"), or its path when the
 * names clash as well. */
static int run_names(rs_plot_table *t, rs_error *err)
{
    for (int i = 0; i < t->num_runs; i++) {
        rs_plot_run *run = &t->runs[i];
        int shared = 0, stem_shared = 0;
        char mine[256], other[256];
        rs_plot_trace_stem(run->trace, mine, sizeof mine);
        for (int j = 0; j < t->num_runs; j++) {
            if (j == i || strcmp(t->runs[j].label, run->label) != 0)
                continue;
            shared = 1;
            rs_plot_trace_stem(t->runs[j].trace, other, sizeof other);
            stem_shared |= strcmp(mine, other) == 0;
        }
        const char *at = strstr(run->label, "@seed=");
        run->repeat = 0;
        for (int j = 0; at && j < t->num_runs && !run->repeat; j++)
            run->repeat = strncmp(t->runs[j].label, run->label, (size_t)(at - run->label)) == 0 &&
                          t->runs[j].label[at - run->label] == '\0' && strcmp(t->runs[j].trace, run->trace) == 0;
        size_t len = strlen(run->label) + strlen(run->trace) + 8;
        run->name = malloc(len);
        RS_CHECK(run->name, err, "out of memory");
        if (!shared)
            snprintf(run->name, len, "%s", run->label);
        else
            snprintf(run->name, len, "%s (%s)", run->label, stem_shared ? run->trace : mine);
    }
    return 0;
}

int rs_plot_table_read(rs_plot_table *t, const char *results_dir, rs_error *err)
{
    memset(t, 0, sizeof *t);
    RS_TRY(rs_results_table_read(&t->results, results_dir, err));
    const rs_results_table *r = &t->results;
    t->runs = calloc((size_t)(r->num_runs ? r->num_runs : 1), sizeof *t->runs);
    int rc = t->runs ? 0 : rs_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < r->num_runs; i++)
        t->runs[i] = (rs_plot_run){.label = r->runs[i].label,
                                   .trace = r->runs[i].trace,
                                   .router = r->runs[i].router,
                                   .params = r->runs[i].params,
                                   .entry = r->runs[i].entry};
    if (rc == 0)
        t->num_runs = r->num_runs;
    if (rc == 0)
        rc = run_names(t, err);
    if (rc == 0)
        rc = rs_plot_sweeps_find(t, err);
    if (rc != 0)
        rs_plot_table_free(t);
    return rc;
}

void rs_plot_table_free(rs_plot_table *t)
{
    rs_plot_sweeps_free(t);
    for (int i = 0; i < t->num_runs; i++)
        free(t->runs[i].name);
    free(t->runs);
    rs_results_table_free(&t->results);
    memset(t, 0, sizeof *t);
}

const rs_plot_value *rs_plot_table_find(const rs_plot_table *t, int metric, int run, int key, int layer)
{
    return t->runs[run].repeat ? NULL : rs_results_table_find(&t->results, metric, run, key, layer);
}

int rs_plot_metric_matches(const char *metric, const char *filter)
{
    if (!filter)
        return 1;
    if (strcmp(metric, filter) == 0)
        return 1;
    size_t len = strlen(filter);
    return !strchr(filter, '.') && strncmp(metric, filter, len) == 0 && metric[len] == '.';
}

int rs_plot_num_traces(const rs_plot_table *t)
{
    int n = 0;
    for (int i = 0; i < t->num_runs; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(t->runs[j].trace, t->runs[i].trace) == 0;
        n += !seen;
    }
    return n;
}

int rs_plot_key_part(const char *key, const char *name, char *buf, size_t size)
{
    size_t nlen = strlen(name);
    for (const char *p = key; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            snprintf(buf, size, "%.*s", (int)(len - nlen - 1), p + nlen + 1);
            return 1;
        }
        p = end ? end + 1 : p + len;
    }
    return 0;
}

void rs_plot_key_without(const char *key, const char *name, char *buf, size_t size)
{
    size_t nlen = strlen(name), used = 0;
    buf[0] = '\0';
    for (const char *p = key; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && !(len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '='))
            used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%.*s", used ? ";" : "", (int)len,
                                     p);
        p = end ? end + 1 : p + len;
    }
}

enum { PARTS_VARYING, PARTS_SHARED };
enum { AS_TEXT, AS_KEY, AS_NAMES };

/* The parts of key whose values vary among keys (or are missing in some),
 * or those every key shares, written as text ("name=value, ...", a varying
 * policy's value alone), as a key ("name=value;..." in key order) or as
 * names ("name and name"). */
static void key_parts(const char *const *keys, int n, const char *key, int which, int form, char *buf, size_t size)
{
    static const char *const separators[] = {", ", ";", " and "};
    size_t used = 0;
    buf[0] = '\0';
    for (const char *p = key; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq) {
            char name[64], mine[256], other[256];
            snprintf(name, sizeof name, "%.*s", (int)(eq - p), p);
            rs_plot_key_part(key, name, mine, sizeof mine);
            int varies = 0;
            for (int i = 0; i < n && !varies; i++)
                varies = !rs_plot_key_part(keys[i], name, other, sizeof other) || strcmp(mine, other) != 0;
            /* "lru" says enough among lines that differ in policy */
            int bare = form == AS_TEXT && which == PARTS_VARYING && strcmp(name, "policy") == 0;
            if (varies == (which == PARTS_VARYING)) {
                const char *sep = used ? separators[form] : "";
                if (form == AS_NAMES)
                    used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s", sep, name);
                else
                    used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s%s%s", sep,
                                             bare ? "" : name, bare ? "" : "=", mine);
            }
        }
        p = end ? end + 1 : p + len;
    }
}

void rs_plot_key_varying(const char *const *keys, int n, const char *key, char *buf, size_t size)
{
    key_parts(keys, n, key, PARTS_VARYING, AS_TEXT, buf, size);
}

void rs_plot_key_varying_key(const char *const *keys, int n, const char *key, char *buf, size_t size)
{
    key_parts(keys, n, key, PARTS_VARYING, AS_KEY, buf, size);
}

void rs_plot_key_varying_names(const char *const *keys, int n, char *buf, size_t size)
{
    key_parts(keys, n, n > 0 ? keys[0] : "", PARTS_VARYING, AS_NAMES, buf, size);
}

void rs_plot_key_shared(const char *const *keys, int n, char *buf, size_t size)
{
    key_parts(keys, n, n > 0 ? keys[0] : "", PARTS_SHARED, AS_TEXT, buf, size);
}
