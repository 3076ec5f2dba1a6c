#include "sim/experiment/run_cache.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/output_path.h"
#include "core/read_file.h"
#include "version.h"

/* A growing string. */
typedef struct text {
    char *s;
    size_t len, cap;
    int failed;
} text;

static void append(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->s && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *grown = realloc(t->s, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
}

/* Path, size and modification time: a changed trace file gets new keys. */
static void append_file(text *t, const char *label, const char *path)
{
    struct stat st;
    char *real = realpath(path, NULL);
    if (stat(path, &st) == 0)
        append(t, "%s %s %lld %lld.%09ld\n", label, real ? real : path, (long long)st.st_size,
               (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    else
        append(t, "%s %s missing\n", label, real ? real : path);
    free(real);
}

char *rs_run_cache_key(const rs_config *cfg, const rs_engine_options *opt, const char *trace_path, int r,
                       rs_error *err)
{
    text t = {0};
    char spec[2400], params[2048];
    append(&t, "routesim %s %s\n", ROUTESIM_VERSION, ROUTESIM_REVISION);
    append_file(&t, "trace", trace_path);
    rs_router_spec_string(&cfg->routers[r], spec, sizeof spec);
    append(&t, "router %s\nlabel %s\n", spec, cfg->routers[r].label);
    for (int m = 0; m < cfg->num_metrics; m++) {
        const rs_metric_spec *ms = &cfg->metrics[m];
        char outputs[2048];
        rs_params_format(&ms->params, ~0ULL, 0, ";", params, sizeof params);
        rs_metric_outputs_format(ms, outputs, sizeof outputs);
        append(&t, "metric %s %s%s%s\n", ms->type->name, params, outputs[0] ? " outputs=" : "", outputs);
    }
    append(&t, "batch_tokens %d\nskip_nonfinite %d\n", opt->batch_tokens, opt->skip_nonfinite);
    append(&t, "bootstrap %d %d %.17g %llu\n", opt->bootstrap, opt->bootstrap_blocks, opt->bootstrap_level,
           (unsigned long long)opt->bootstrap_seed);
    if (opt->breakdown) { /* absent otherwise: keys of runs stored before breakdowns stay valid */
        char dims[64];
        rs_breakdown_format(opt->breakdown, dims, sizeof dims);
        append(&t, "breakdown %s\n", dims);
    }
    if (opt->reference) {
        rs_router_spec_string(opt->reference, spec, sizeof spec);
        append(&t, "reference %s\n", spec);
        if (cfg->reference_trace)
            append_file(&t, "reference_trace", cfg->reference_trace);
    }
    if (t.failed) {
        free(t.s);
        rs_fail(err, "out of memory");
        return NULL;
    }
    return t.s;
}

/* 64-bit FNV-1a of the key: the file name (the key itself is checked). */
static void key_path(const char *dir, const char *key, const char *suffix, char *buf, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    snprintf(buf, size, "%s/runs/%016llx%s", dir, (unsigned long long)h, suffix);
}

static void entry_path(const char *dir, const char *key, char *buf, size_t size)
{
    key_path(dir, key, ".json", buf, size);
}

void rs_run_cache_checkpoint_path(const char *dir, const char *pass_key, char *buf, size_t size)
{
    key_path(dir, pass_key, ".ckpt", buf, size);
}

/* Exact: %.17g reads back as the same double (cJSON's printing may round). */
static cJSON *value_json(double v)
{
    if (!isfinite(v))
        return cJSON_CreateString(isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    char text[40];
    snprintf(text, sizeof text, "%.17g", v);
    return cJSON_CreateRaw(text);
}

static int value_of(const cJSON *j, double *v)
{
    if (cJSON_IsNumber(j)) {
        *v = j->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(j))
        return -1;
    *v = strcmp(j->valuestring, "nan") == 0 ? NAN : strcmp(j->valuestring, "inf") == 0 ? INFINITY : -INFINITY;
    return 0;
}

static const char *string_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int rs_run_cache_load(const char *dir, const char *key, rs_results *results, int *run, rs_error *err)
{
    char path[4200];
    entry_path(dir, key, path, sizeof path);
    char *body = rs_read_file(path);
    if (!body)
        return 0;
    int rc = rs_run_cache_decode(body, key, results, run, err);
    free(body);
    return rc;
}

int rs_run_cache_decode(const char *body, const char *key, rs_results *results, int *run, rs_error *err)
{
    cJSON *doc = cJSON_Parse(body);
    const cJSON *desc = doc ? cJSON_GetObjectItemCaseSensitive(doc, "run") : NULL;
    const cJSON *rows = doc ? cJSON_GetObjectItemCaseSensitive(doc, "rows") : NULL;
    const char *stored = doc ? string_of(doc, "key") : NULL;
    const char *fields[5] = {NULL};
    static const char *const names[5] = {"label", "trace", "router", "params", "spec"};
    for (int i = 0; i < 5 && desc; i++)
        fields[i] = string_of(desc, names[i]);
    int usable = stored && (!key || strcmp(stored, key) == 0) && cJSON_IsArray(rows) && fields[0] && fields[1] && fields[2] &&
                 fields[3] && fields[4];
    if (!usable) { /* another key with the same hash, or a damaged entry: recompute */
        cJSON_Delete(doc);
        return 0;
    }
    size_t first_row = results->num_rows;
    int r = rs_results_add_run(results, fields[0], fields[1], fields[2], fields[3], fields[4]);
    int rc = r < 0 ? rs_fail(err, "out of memory") : 0;
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive(desc, "entry");
    if (r >= 0 && cJSON_IsNumber(entry))
        results->runs[r].entry = (int)entry->valuedouble;
    for (const cJSON *row = rows->child; row && rc == 0; row = row->next) {
        const cJSON *metric = cJSON_GetArrayItem(row, 0), *k = cJSON_GetArrayItem(row, 1),
                    *layer = cJSON_GetArrayItem(row, 2), *value = cJSON_GetArrayItem(row, 3);
        double v = 0;
        if (!cJSON_IsString(metric) || !cJSON_IsString(k) || !cJSON_IsNumber(layer) || value_of(value, &v) != 0) {
            rc = 1; /* damaged: recompute */
            break;
        }
        if (rs_results_add_row(results, r, metric->valuestring, k->valuestring, (int)layer->valuedouble, v) != 0)
            rc = rs_fail(err, "out of memory");
    }
    cJSON_Delete(doc);
    if (rc != 0) { /* leave no half-loaded run behind */
        for (size_t i = first_row; i < results->num_rows; i++) {
            free(results->rows[i].metric);
            free(results->rows[i].key);
        }
        results->num_rows = first_row;
        if (r >= 0) {
            rs_result_run *x = &results->runs[--results->num_runs];
            free(x->label);
            free(x->trace);
            free(x->router);
            free(x->params);
            free(x->spec);
        }
        return rc < 0 ? -1 : 0;
    }
    *run = r;
    return 1;
}

char *rs_run_cache_encode(const char *key, const rs_results *results, int run)
{
    cJSON *doc = cJSON_CreateObject(), *desc = cJSON_CreateObject(), *rows = cJSON_CreateArray();
    int ok = doc && desc && rows;
    if (ok) {
        const rs_result_run *x = &results->runs[run];
        cJSON_AddStringToObject(doc, "key", key);
        cJSON_AddStringToObject(desc, "label", x->label);
        cJSON_AddStringToObject(desc, "trace", x->trace);
        cJSON_AddStringToObject(desc, "router", x->router);
        cJSON_AddStringToObject(desc, "params", x->params);
        cJSON_AddStringToObject(desc, "spec", x->spec);
        cJSON_AddNumberToObject(desc, "entry", x->entry);
        cJSON_AddItemToObject(doc, "run", desc);
        cJSON_AddItemToObject(doc, "rows", rows);
        desc = rows = NULL;
        cJSON *doc_rows = cJSON_GetObjectItemCaseSensitive(doc, "rows");
        for (size_t i = 0; i < results->num_rows && ok; i++) {
            const rs_result_row *y = &results->rows[i];
            if (y->run != run)
                continue;
            cJSON *row = cJSON_CreateArray();
            ok = row != NULL;
            if (ok) {
                cJSON_AddItemToArray(row, cJSON_CreateString(y->metric));
                cJSON_AddItemToArray(row, cJSON_CreateString(y->key));
                cJSON_AddItemToArray(row, cJSON_CreateNumber(y->layer));
                cJSON_AddItemToArray(row, value_json(y->value));
                cJSON_AddItemToArray(doc_rows, row);
            }
        }
    }
    char *body = ok ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    cJSON_Delete(desc);
    cJSON_Delete(rows);
    return body;
}

int rs_run_cache_store(const char *dir, const char *key, const rs_results *results, int run, rs_error *err)
{
    char runs[4200], path[4200], tmp[4300];
    snprintf(runs, sizeof runs, "%s/runs", dir);
    RS_TRY(rs_make_dirs(runs, err));
    entry_path(dir, key, path, sizeof path);
    RS_TRY(rs_temp_path(path, tmp, sizeof tmp, err));
    char *body = rs_run_cache_encode(key, results, run);
    if (!body) {
        rs_temp_discard(tmp);
        return rs_fail(err, "out of memory");
    }
    FILE *f = fopen(tmp, "wb");
    int rc = 0;
    if (!f) {
        rc = rs_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
        rs_temp_discard(tmp);
    } else {
        size_t len = strlen(body);
        int bad = fwrite(body, 1, len, f) != len;
        bad |= fclose(f) != 0;
        rc = bad ? rs_fail(err, "%s: cannot write", tmp) : rs_commit_path(tmp, path, err);
        if (bad)
            rs_temp_discard(tmp);
    }
    free(body);
    return rc;
}
