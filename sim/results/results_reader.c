/* Reads a results directory back: RESULTS_DIR/results.csv (the tidy long
 * form of docs/config.md "Results") as one value per (run, metric, key,
 * layer), with the interval from the companion rows whose key carries
 * stat=ci_low / stat=ci_high; results.json, when present, adds the
 * experiment's name and each run's config entry. */
#include "sim/results/results_reader.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/read_file.h"

static const char *const csv_header[] = {"run", "trace", "router", "params", "metric", "key", "layer", "value"};
enum { NUM_COLUMNS = 8, COL_RUN = 0, COL_TRACE, COL_ROUTER, COL_PARAMS, COL_METRIC, COL_KEY, COL_LAYER, COL_VALUE };
enum { STAT_POINT, STAT_LOW, STAT_HIGH, STAT_OTHER };

/* ---- strings to dense ids, in order of first appearance ---- */

typedef struct intern_table {
    char **names;
    int n, cap;
    int *slots; /* open addressing: id + 1, 0 = empty */
    size_t num_slots;
} intern_table;

static uint64_t hash_string(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int intern_grow(intern_table *t)
{
    size_t num = t->num_slots ? 2 * t->num_slots : 64;
    int *slots = calloc(num, sizeof *slots);
    if (!slots)
        return -1;
    for (int i = 0; i < t->n; i++) {
        size_t j = hash_string(t->names[i]) & (num - 1);
        while (slots[j])
            j = (j + 1) & (num - 1);
        slots[j] = i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->num_slots = num;
    return 0;
}

/* The slot holding s, or the empty slot where it would go (num_slots > 0). */
static size_t intern_slot(const intern_table *t, const char *s)
{
    size_t j = hash_string(s) & (t->num_slots - 1);
    while (t->slots[j] && strcmp(t->names[t->slots[j] - 1], s) != 0)
        j = (j + 1) & (t->num_slots - 1);
    return j;
}

/* Returns the id of s (adding it), or -1 when out of memory; *added says whether it is new. */
static int intern(intern_table *t, const char *s, int *added)
{
    if (added)
        *added = 0;
    if ((size_t)(t->n + 1) * 2 > t->num_slots && intern_grow(t) != 0)
        return -1;
    size_t j = intern_slot(t, s);
    if (t->slots[j])
        return t->slots[j] - 1;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        char **grown = realloc(t->names, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        t->names = grown;
        t->cap = cap;
    }
    char *copy = strdup(s);
    if (!copy)
        return -1;
    t->names[t->n] = copy;
    t->slots[j] = ++t->n;
    if (added)
        *added = 1;
    return t->n - 1;
}

static int intern_find(const intern_table *t, const char *s)
{
    return t->num_slots ? t->slots[intern_slot(t, s)] - 1 : -1;
}

/* Hands the names over (the caller frees them) and frees the rest. */
static char **intern_release(intern_table *t)
{
    char **names = t->names;
    free(t->slots);
    memset(t, 0, sizeof *t);
    return names;
}

static void intern_free(intern_table *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* ---- CSV records (RFC 4180, as rs_results_write_csv writes them) ---- */

typedef struct record {
    char *buf;
    size_t len, cap;
    size_t start[NUM_COLUMNS];
    int fields;
} record;

static int record_put(record *r, char c)
{
    if (r->len + 1 >= r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 512;
        char *grown = realloc(r->buf, cap);
        if (!grown)
            return -1;
        r->buf = grown;
        r->cap = cap;
    }
    r->buf[r->len++] = c;
    return 0;
}

/* Reads one record; returns 1, 0 at the end of the file, or -1 with a message. */
static int read_record(FILE *f, record *r, long *line, const char *path, rs_error *err)
{
    r->len = 0;
    r->fields = 0;
    int c = getc(f);
    if (c == EOF)
        return 0;
    long first_line = ++*line;
    int quoted = 0, at_start = 1;
    r->start[r->fields++] = 0;
    for (;; c = getc(f)) {
        if (c == EOF) {
            RS_CHECK(!quoted, err, "%s: line %ld: unterminated quoted field", path, first_line);
            break;
        }
        if (quoted) {
            if (c == '"') {
                int next = getc(f);
                if (next != '"') {
                    quoted = 0;
                    ungetc(next, f);
                    continue;
                }
            } else if (c == '\n') {
                ++*line;
            }
        } else if (c == '"' && at_start) {
            quoted = 1;
            at_start = 0;
            continue;
        } else if (c == ',') {
            RS_CHECK(record_put(r, '\0') == 0, err, "out of memory");
            RS_CHECK(r->fields < NUM_COLUMNS, err, "%s: line %ld: more than %d fields", path, first_line, NUM_COLUMNS);
            r->start[r->fields++] = r->len;
            at_start = 1;
            continue;
        } else if (c == '\n') {
            break;
        } else if (c == '\r') {
            continue;
        }
        at_start = 0;
        RS_CHECK(record_put(r, (char)c) == 0, err, "out of memory");
    }
    RS_CHECK(record_put(r, '\0') == 0, err, "out of memory");
    return 1;
}

static const char *field(const record *r, int i) { return r->buf + r->start[i]; }

/* ---- rows ---- */

typedef struct raw_row {
    int metric, run, key, layer, stat;
    size_t order;
    double value;
} raw_row;

static int compare_rows(const void *pa, const void *pb)
{
    const raw_row *a = pa, *b = pb;
    if (a->metric != b->metric)
        return a->metric < b->metric ? -1 : 1;
    if (a->run != b->run)
        return a->run < b->run ? -1 : 1;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->layer != b->layer)
        return a->layer < b->layer ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Splits off the stat= part of a key: the rest goes to out (parts in order). */
static int split_stat(const char *key, char *out, size_t size)
{
    int stat = STAT_POINT;
    size_t used = 0;
    out[0] = '\0';
    for (const char *p = key; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 5 && strncmp(p, "stat=", 5) == 0) {
            if (len == 11 && strncmp(p + 5, "ci_low", 6) == 0)
                stat = STAT_LOW;
            else if (len == 12 && strncmp(p + 5, "ci_high", 7) == 0)
                stat = STAT_HIGH;
            else
                stat = STAT_OTHER;
        } else if (len > 0) {
            used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%s%.*s", used ? ";" : "", (int)len,
                                     p);
        }
        p = end ? end + 1 : p + len;
    }
    return stat;
}

int rs_results_parse_number(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE)
        return 0;
    *out = v;
    return 1;
}

static int parse_layer(const char *text, int *layer)
{
    if (strcmp(text, "all") == 0) {
        *layer = -1;
        return 1;
    }
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < 0 || v > 1000000)
        return 0;
    *layer = (int)v;
    return 1;
}

static int add_run(rs_results_table *t, int id, const record *r)
{
    if (id < t->num_runs)
        return 0;
    rs_results_table_run *grown = realloc(t->runs, (size_t)(id + 1) * sizeof *grown);
    if (!grown)
        return -1;
    t->runs = grown;
    rs_results_table_run *run = &t->runs[id];
    run->label = strdup(field(r, COL_RUN));
    run->trace = strdup(field(r, COL_TRACE));
    run->router = strdup(field(r, COL_ROUTER));
    run->params = strdup(field(r, COL_PARAMS));
    run->entry = -1;
    t->num_runs = id + 1;
    return run->label && run->trace && run->router && run->params ? 0 : -1;
}

/* Merges the sorted rows into values, one per (metric, run, key, layer). */
static int build_values(rs_results_table *t, raw_row *rows, size_t n, rs_error *err)
{
    t->values = calloc(n ? n : 1, sizeof *t->values);
    RS_CHECK(t->values, err, "out of memory");
    for (int m = 0; m < t->num_metrics; m++)
        t->metrics[m].first = t->metrics[m].count = 0;
    size_t nv = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        rs_results_table_value *v = &t->values[nv];
        *v = (rs_results_table_value){.run = rows[i].run, .key = rows[i].key, .layer = rows[i].layer,
                             .value = NAN, .ci_low = NAN, .ci_high = NAN};
        int low = 0, high = 0;
        for (; j < n && rows[j].metric == rows[i].metric && rows[j].run == rows[i].run &&
               rows[j].key == rows[i].key && rows[j].layer == rows[i].layer;
             j++) {
            /* a repeated row keeps its first value, like a reader of the CSV would */
            if (rows[j].stat == STAT_POINT && !v->has_value) {
                v->value = rows[j].value;
                v->has_value = 1;
            } else if (rows[j].stat == STAT_LOW && !low) {
                v->ci_low = rows[j].value;
                low = 1;
            } else if (rows[j].stat == STAT_HIGH && !high) {
                v->ci_high = rows[j].value;
                high = 1;
            }
        }
        v->has_ci = low && high;
        if (v->has_value || v->has_ci) {
            rs_results_table_metric *m = &t->metrics[rows[i].metric];
            if (m->count == 0)
                m->first = nv;
            m->count++;
            if (v->layer + 1 > m->num_layers)
                m->num_layers = v->layer + 1;
            m->any_ci |= v->has_ci;
            nv++;
        }
        i = j;
    }
    t->num_values = nv;
    return 0;
}

/* results.json: the experiment name and runs[].entry (the config routers[] entry). */
static int read_json(rs_results_table *t, const char *dir, const intern_table *runs, rs_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/results.json", dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return 0; /* optional */
    char *text = rs_read_file(path);
    RS_CHECK(text, err, "%s: cannot read: %s", path, strerror(errno));
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return rs_fail(err, "%s: malformed JSON (expected the object routesim run writes)", path);
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (cJSON_IsString(name) && name->valuestring[0])
        t->name = strdup(name->valuestring);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "runs");
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(item, "run");
        const cJSON *trace = cJSON_GetObjectItemCaseSensitive(item, "trace");
        const cJSON *entry = cJSON_GetObjectItemCaseSensitive(item, "entry");
        if (!cJSON_IsString(label) || !cJSON_IsString(trace) || !cJSON_IsNumber(entry))
            continue;
        char run_id[4096];
        snprintf(run_id, sizeof run_id, "%s\x1f%s", label->valuestring, trace->valuestring);
        int id = intern_find(runs, run_id);
        if (id >= 0)
            t->runs[id].entry = entry->valueint;
    }
    cJSON_Delete(root);
    return 0;
}

static int read_csv(rs_results_table *t, FILE *f, const char *path, rs_error *err)
{
    intern_table runs = {0}, keys = {0}, metrics = {0};
    record r = {0};
    raw_row *rows = NULL;
    size_t n = 0, cap = 0;
    long line = 0;
    int rc = read_record(f, &r, &line, path, err);
    if (rc == 0)
        rc = rs_fail(err, "%s: empty file (expected the header %s,%s,%s,%s,%s,%s,%s,%s)", path, csv_header[0],
                     csv_header[1], csv_header[2], csv_header[3], csv_header[4], csv_header[5], csv_header[6],
                     csv_header[7]);
    else if (rc > 0) {
        int ok = r.fields == NUM_COLUMNS;
        for (int i = 0; ok && i < NUM_COLUMNS; i++)
            ok = strcmp(field(&r, i), csv_header[i]) == 0;
        rc = ok ? 0 : rs_fail(err, "%s: line 1: expected the header run,trace,router,params,metric,key,layer,value",
                              path);
    }
    char key[4096];
    while (rc == 0 && (rc = read_record(f, &r, &line, path, err)) > 0) {
        rc = 0;
        if (r.len == 1 && r.fields == 1)
            continue; /* blank line */
        if (r.fields != NUM_COLUMNS) {
            rc = rs_fail(err, "%s: line %ld: expected %d fields, got %d", path, line, NUM_COLUMNS, r.fields);
            break;
        }
        raw_row row = {.order = n};
        if (!parse_layer(field(&r, COL_LAYER), &row.layer)) {
            rc = rs_fail(err, "%s: line %ld: layer: expected 'all' or a layer index, got '%s'", path, line,
                         field(&r, COL_LAYER));
            break;
        }
        if (!rs_results_parse_number(field(&r, COL_VALUE), &row.value)) {
            rc = rs_fail(err, "%s: line %ld: value: expected a number or nan, got '%s'", path, line,
                         field(&r, COL_VALUE));
            break;
        }
        if (!field(&r, COL_METRIC)[0]) {
            rc = rs_fail(err, "%s: line %ld: metric: empty", path, line);
            break;
        }
        row.stat = split_stat(field(&r, COL_KEY), key, sizeof key);
        if (row.stat == STAT_OTHER)
            continue; /* statistics other than the interval are not plotted */
        int added = 0;
        char run_id[4096]; /* labels repeat across traces (one config router on several traces) */
        snprintf(run_id, sizeof run_id, "%s\x1f%s", field(&r, COL_RUN), field(&r, COL_TRACE));
        row.run = intern(&runs, run_id, &added);
        row.key = intern(&keys, key, NULL);
        row.metric = intern(&metrics, field(&r, COL_METRIC), NULL);
        if (row.run < 0 || row.key < 0 || row.metric < 0 || (added && add_run(t, row.run, &r) != 0)) {
            rc = rs_fail(err, "out of memory");
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            raw_row *grown = realloc(rows, cap * sizeof *grown);
            if (!grown) {
                rc = rs_fail(err, "out of memory");
                break;
            }
            rows = grown;
        }
        rows[n++] = row;
    }
    if (rc == 0 && ferror(f))
        rc = rs_fail(err, "%s: read error", path);
    if (rc == 0 && n == 0)
        rc = rs_fail(err, "%s: no result rows", path);
    if (rc == 0) {
        t->num_metrics = metrics.n;
        t->metrics = calloc((size_t)metrics.n, sizeof *t->metrics);
        rc = t->metrics ? 0 : rs_fail(err, "out of memory");
    }
    if (rc == 0) {
        char **names = intern_release(&metrics);
        for (int m = 0; m < t->num_metrics; m++)
            t->metrics[m].name = names[m];
        free(names);
        t->num_keys = keys.n;
        t->keys = intern_release(&keys);
        qsort(rows, n, sizeof *rows, compare_rows);
        rc = build_values(t, rows, n, err);
    }
    if (rc == 0) {
        const char *dir_end = strrchr(path, '/');
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", dir_end ? (int)(dir_end - path) : 1, dir_end ? path : ".");
        rc = read_json(t, dir, &runs, err);
    }
    free(rows);
    free(r.buf);
    intern_free(&runs);
    intern_free(&keys);
    intern_free(&metrics);
    return rc;
}

int rs_results_table_read(rs_results_table *t, const char *results_dir, rs_error *err)
{
    memset(t, 0, sizeof *t);
    struct stat st;
    if (stat(results_dir, &st) != 0)
        return rs_fail(err, "%s: no such results directory (routesim run writes one; see its \"output\" key)",
                       results_dir);
    RS_CHECK(S_ISDIR(st.st_mode), err, "%s: not a directory (expected a results directory holding results.csv)",
             results_dir);
    int len = snprintf(t->csv_path, sizeof t->csv_path, "%s/results.csv", results_dir);
    RS_CHECK(len > 0 && (size_t)len < sizeof t->csv_path, err, "%s: path too long", results_dir);
    RS_CHECK(!rs_is_directory(t->csv_path), err, "%s: is a directory, expected the results table", t->csv_path);
    FILE *f = fopen(t->csv_path, "r");
    RS_CHECK(f, err, "%s: cannot read: %s (routesim run writes it)", t->csv_path, strerror(errno));
    int rc = read_csv(t, f, t->csv_path, err);
    fclose(f);
    if (rc != 0)
        rs_results_table_free(t);
    return rc;
}

void rs_results_table_free(rs_results_table *t)
{
    for (int i = 0; i < t->num_runs; i++) {
        free(t->runs[i].label);
        free(t->runs[i].trace);
        free(t->runs[i].router);
        free(t->runs[i].params);
    }
    for (int i = 0; i < t->num_keys; i++)
        free(t->keys[i]);
    for (int i = 0; i < t->num_metrics; i++)
        free(t->metrics[i].name);
    free(t->runs);
    free(t->keys);
    free(t->metrics);
    free(t->values);
    free(t->name);
    memset(t, 0, sizeof *t);
}

int rs_results_find_metric(const rs_results_table *t, const char *name)
{
    for (int m = 0; m < t->num_metrics; m++)
        if (strcmp(t->metrics[m].name, name) == 0)
            return m;
    return -1;
}

const rs_results_table_value *rs_results_table_find(const rs_results_table *t, int metric, int run, int key, int layer)
{
    if (metric < 0)
        return NULL;
    size_t lo = t->metrics[metric].first, hi = lo + t->metrics[metric].count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const rs_results_table_value *v = &t->values[mid];
        int c = v->run != run ? (v->run < run ? -1 : 1)
                : v->key != key ? (v->key < key ? -1 : 1)
                : v->layer != layer ? (v->layer < layer ? -1 : 1) : 0;
        if (c == 0)
            return v;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int rs_results_metric_keys(const rs_results_table *t, int metric, int *keys, int max)
{
    int n = 0;
    const rs_results_table_metric *m = &t->metrics[metric];
    for (size_t i = m->first; i < m->first + m->count && n < max; i++) {
        int k = t->values[i].key, seen = 0;
        for (int j = 0; j < n && !seen; j++)
            seen = keys[j] == k;
        if (seen)
            continue;
        int at = n++; /* insertion keeps key ids (first appearance) in order */
        while (at > 0 && keys[at - 1] > k) {
            keys[at] = keys[at - 1];
            at--;
        }
        keys[at] = k;
    }
    return n;
}
