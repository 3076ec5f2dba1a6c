/* routesim import llmrouterbench: the results tree of LLMRouterBench
 * (ynulihao/LLMRouterBench, data_collector/storage.py save_result writes
 * results/bench/<dataset>/<split>/<model>/<dataset>-<split>-<model>-
 * <YYYYMMDD_HHMMSS>.json, one JSON object per (dataset, split, model) run
 * with its records: index, score, cost, tokens) into a unit = query trace:
 * per query (dataset, split, index) the score and cost of every model
 * (docs/import.md).
 *
 * Which files count is decided as the project's own loader decides it
 * (baselines/data_loader.py BaselineDataLoader): every *.json under the
 * directory, demo runs ("demo" true) left out, then per (dataset_name,
 * split, model_name) of the file's content the newest by the timestamp in
 * the file name (else the modification time); a null score is read as 0.
 * Unlike the loader, which skips a file it cannot read with a warning (and
 * so may fall back to an older run), a malformed file is an error. Each
 * file is parsed on its own and only its (index, score, cost) triples are
 * kept, for the newest file of each group. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/read_file.h"
#include "core/text_buffer.h"
#include "core/json_keys.h"
#include "workloads/import/import_csv.h"
#include "workloads/import/importer.h"

enum { MAX_DEPTH = 64 }; /* directory levels walked (results/bench/<dataset>/<split>/<model> is 3) */

/* ---- finding the files ---------------------------------------------------- */

typedef struct path_list {
    char **paths;
    int64_t count, cap;
} path_list;

static int path_push(path_list *l, char *path)
{
    if (l->count == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 64;
        char **grown = realloc(l->paths, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        l->paths = grown;
        l->cap = cap;
    }
    l->paths[l->count++] = path;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with_json(const char *name)
{
    size_t n = strlen(name);
    return n >= 5 && strcmp(name + n - 5, ".json") == 0;
}

/* Every regular file named *.json below dir, in path order (entries sorted
 * per directory). Symbolic links to directories are not followed. */
static int find_json_files(const char *dir, int depth, path_list *out, rs_error *err)
{
    RS_CHECK(depth <= MAX_DEPTH, err, "%s: more than %d directory levels", dir, MAX_DEPTH);
    DIR *d = opendir(dir);
    RS_CHECK(d, err, "%s: cannot open directory (%s)", dir, strerror(errno));
    path_list names = {0};
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *name = strdup(e->d_name);
        if (!name || path_push(&names, name) != 0) {
            free(name);
            rc = rs_fail(err, "out of memory");
        }
    }
    closedir(d);
    if (names.count > 1)
        qsort(names.paths, (size_t)names.count, sizeof *names.paths, compare_names);
    for (int64_t i = 0; i < names.count && rc == 0; i++) {
        size_t len = strlen(dir) + strlen(names.paths[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            rc = rs_fail(err, "out of memory");
            break;
        }
        snprintf(path, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names.paths[i]);
        struct stat link, target;
        int is_dir = lstat(path, &link) == 0 && S_ISDIR(link.st_mode);
        int is_file = !is_dir && stat(path, &target) == 0 && S_ISREG(target.st_mode);
        if (is_dir)
            rc = find_json_files(path, depth + 1, out, err);
        if (is_file && ends_with_json(names.paths[i])) {
            if (path_push(out, path) != 0)
                rc = rs_fail(err, "out of memory");
            else
                path = NULL;
        }
        free(path);
    }
    for (int64_t i = 0; i < names.count; i++)
        free(names.paths[i]);
    free(names.paths);
    return rc;
}

/* The loader's "newest": YYYYMMDDHHMMSS when the name ends in
 * <8 digits>_<6 digits>.json, else the modification time in whole seconds
 * (baselines/data_loader.py _get_latest_file_by_timestamp). */
static int64_t file_stamp(const char *path, int *from_name)
{
    const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
    size_t n = strlen(name);
    *from_name = 0;
    if (n >= 20) {
        const char *s = name + n - 20; /* DDDDDDDD_DDDDDD.json */
        int ok = s[8] == '_';
        int64_t v = 0;
        for (int i = 0; i < 15 && ok; i++) {
            if (i == 8)
                continue;
            ok = s[i] >= '0' && s[i] <= '9';
            v = v * 10 + (s[i] - '0');
        }
        if (ok) {
            *from_name = 1;
            return v;
        }
    }
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
}

/* ---- reading one results file --------------------------------------------- */

typedef struct record {
    int64_t index;
    int64_t position; /* in the file's records array */
    float score, cost;
} record;

typedef struct results_file {
    char *dataset, *split, *model;
    record *records;
    int64_t count;
    int64_t null_scores, missing_costs;
} results_file;

static void results_file_free(results_file *r)
{
    free(r->dataset);
    free(r->split);
    free(r->model);
    free(r->records);
    memset(r, 0, sizeof *r);
}

static const char *json_type(const cJSON *v)
{
    return !v                  ? "nothing"
           : cJSON_IsNumber(v) ? "a number"
           : cJSON_IsString(v) ? "a string"
           : cJSON_IsBool(v)   ? "a boolean"
           : cJSON_IsArray(v)  ? "an array"
           : cJSON_IsObject(v) ? "an object"
                               : "null";
}

/* Python's truthiness of a JSON value: what `data.get('demo', False)` tests. */
static int truthy(const cJSON *v)
{
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
        return 0;
    if (cJSON_IsNumber(v))
        return v->valuedouble != 0;
    if (cJSON_IsString(v))
        return v->valuestring[0] != '\0';
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        return v->child != NULL;
    return 1;
}

static __attribute__((format(printf, 4, 5))) int fail_record(const char *path, int64_t i, rs_error *err,
                                                             const char *fmt, ...)
{
    char problem[RS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return rs_fail(err, "%s: records[%lld]: %s", path, (long long)i, problem);
}

static int name_field(const char *path, const cJSON *doc, const char *key, char **out, rs_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    RS_CHECK(v, err, "%s: %s: missing (save_result writes it)", path, key);
    RS_CHECK(cJSON_IsString(v), err, "%s: %s: expected a string, got %s", path, key, json_type(v));
    RS_CHECK(v->valuestring[0], err, "%s: %s: empty", path, key);
    *out = strdup(v->valuestring);
    RS_CHECK(*out, err, "out of memory");
    return 0;
}

static int compare_records(const void *a, const void *b)
{
    const record *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index ? 1 : (x->position > y->position) - (x->position < y->position);
}

/* One record: index (an integer >= 0), score (a number in [0, max], a
 * boolean, or null / missing = 0 as the loader reads it), cost (a number
 * >= 0, missing = 0 as the loader reads it). */
static int read_record(const char *path, const cJSON *item, int64_t i, double max_quality, record *out,
                       results_file *r, rs_error *err)
{
    if (!cJSON_IsObject(item))
        return fail_record(path, i, err, "expected an object, got %s", json_type(item));
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(item, "index");
    if (!index)
        return fail_record(path, i, err, "index: missing");
    if (!cJSON_IsNumber(index) || index->valuedouble != floor(index->valuedouble))
        return fail_record(path, i, err, "index: expected an integer, got %s",
                           cJSON_IsNumber(index) ? "a fraction" : json_type(index));
    if (index->valuedouble < 0 || index->valuedouble > 9007199254740992.0)
        return fail_record(path, i, err, "index: %.17g is outside [0, 2^53]", index->valuedouble);
    out->index = (int64_t)index->valuedouble;
    out->position = i;
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(item, "score");
    if (!score || cJSON_IsNull(score)) {
        out->score = 0.0f; /* baselines/data_loader.py: score if not None else 0.0 */
        r->null_scores++;
    } else if (cJSON_IsBool(score)) {
        out->score = cJSON_IsTrue(score) ? 1.0f : 0.0f;
    } else if (cJSON_IsNumber(score)) {
        double v = score->valuedouble;
        if (!(v >= 0 && v <= max_quality))
            return fail_record(path, i, err, "score: %.15g is outside [0, %g] (--max-quality sets the top of a "
                               "graded score)", v, max_quality);
        out->score = (float)v;
    } else {
        return fail_record(path, i, err, "score: expected a number or null, got %s%s%.40s%s", json_type(score),
                           cJSON_IsString(score) ? " '" : "", cJSON_IsString(score) ? score->valuestring : "",
                           cJSON_IsString(score) ? "'" : "");
    }
    const cJSON *cost = cJSON_GetObjectItemCaseSensitive(item, "cost");
    if (!cost) {
        out->cost = 0.0f; /* the loader: record_data.get('cost', 0.0) */
        r->missing_costs++;
    } else if (!cJSON_IsNumber(cost)) {
        return fail_record(path, i, err, "cost: expected a number >= 0 (USD), got %s", json_type(cost));
    } else if (!(cost->valuedouble >= 0) || !isfinite((float)cost->valuedouble)) {
        return fail_record(path, i, err, "cost: %.15g is not a cost (a finite number >= 0, USD)", cost->valuedouble);
    } else {
        out->cost = (float)cost->valuedouble;
    }
    return 0;
}

/* The whole file; *size its length. NULL with errno set when unreadable. */
/* 1 when the text stops inside a string, object or array: a file cut off
 * (a copy or a write that did not finish) rather than one written wrong. */
static int ends_early(const char *text, size_t size)
{
    int64_t depth = 0;
    int in_string = 0;
    for (size_t i = 0; i < size; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return in_string || depth > 0;
}

/* Parses one file. *demo is set (and nothing else read) for a demo run. */
static int read_results_file(const char *path, double max_quality, int *demo, results_file *r, rs_error *err)
{
    memset(r, 0, sizeof *r);
    *demo = 0;
    errno = 0;
    char *text = rs_read_file(path);
    RS_CHECK(text, err, "%s: cannot read (%s)", path, strerror(errno ? errno : EIO));
    const size_t size = strlen(text); /* cJSON stops at a NUL byte anyway */
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    int rc = 0;
    if (!doc) {
        size_t at = end && end >= text && end <= text + size ? (size_t)(end - text) : 0;
        long long line = 1, column = 1;
        for (size_t i = 0; i < at; i++, column++)
            if (text[i] == '\n')
                line++, column = 0;
        int not_finite = strncmp(text + at, "NaN", 3) == 0 || strncmp(text + at, "Infinity", 8) == 0 ||
                         strncmp(text + at, "-Infinity", 9) == 0;
        rc = rs_fail(err, "%s: malformed JSON at line %lld, column %lld%s", path, line, column,
                     ends_early(text, size) ? " (the file ends early: truncated?)"
                     : not_finite ? " (NaN / Infinity: Python writes them for a float that is not finite)"
                                  : "");
    }
    free(text);
    RS_TRY(rc);
    char twice[256];
    if (rs_json_duplicate_key(doc, twice, sizeof twice))
        rc = rs_fail(err, "%s: %s: key given twice in one object", path, twice);
    if (rc == 0 && !cJSON_IsObject(doc))
        rc = rs_fail(err, "%s: expected a JSON object (a save_result file), got %s", path, json_type(doc));
    if (rc == 0 && truthy(cJSON_GetObjectItemCaseSensitive(doc, "demo"))) {
        *demo = 1;
        cJSON_Delete(doc);
        return 0;
    }
    if (rc == 0)
        rc = name_field(path, doc, "dataset_name", &r->dataset, err);
    if (rc == 0)
        rc = name_field(path, doc, "split", &r->split, err);
    if (rc == 0)
        rc = name_field(path, doc, "model_name", &r->model, err);
    const cJSON *records = rc == 0 ? cJSON_GetObjectItemCaseSensitive(doc, "records") : NULL;
    if (rc == 0 && !cJSON_IsArray(records))
        rc = rs_fail(err, "%s: records: %s", path,
                     records ? "expected an array" : "missing (save_result writes it)");
    int64_t n = rc == 0 ? cJSON_GetArraySize(records) : 0;
    if (rc == 0 && n > 0 && !(r->records = malloc((size_t)n * sizeof *r->records)))
        rc = rs_fail(err, "out of memory");
    int64_t i = 0;
    for (const cJSON *item = rc == 0 ? records->child : NULL; item && rc == 0; item = item->next, i++)
        rc = read_record(path, item, i, max_quality, &r->records[i], r, err);
    cJSON_Delete(doc);
    if (rc == 0) {
        r->count = n;
        qsort(r->records, (size_t)n, sizeof *r->records, compare_records);
        for (int64_t j = 1; j < n && rc == 0; j++)
            if (r->records[j].index == r->records[j - 1].index)
                rc = fail_record(path, r->records[j].position, err, "index %lld is given twice (records[%lld])",
                                 (long long)r->records[j].index, (long long)r->records[j - 1].position);
    }
    if (rc != 0)
        results_file_free(r);
    return rc;
}

/* ---- choosing the newest file per group ------------------------------------ */

typedef struct group {
    results_file data; /* of the kept file */
    const char *path;  /* the kept file */
    int64_t stamp;
    int64_t tied;      /* other files with the same stamp (the first by path is kept) */
} group;

typedef struct selection {
    group *groups;
    int64_t count, cap;
    int64_t *slots; /* open addressing over groups, -1 = empty */
    int64_t num_slots;
    int64_t demo_files, older_files, tied_groups, stamps_from_mtime;
} selection;

static uint64_t hash_names(const results_file *r)
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[3] = {r->dataset, r->split, r->model};
    for (int p = 0; p < 3; p++) {
        for (const unsigned char *c = (const unsigned char *)parts[p]; *c; c++)
            h = (h ^ *c) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; /* a separator no name holds */
    }
    return h;
}

static int same_names(const results_file *a, const results_file *b)
{
    return strcmp(a->dataset, b->dataset) == 0 && strcmp(a->split, b->split) == 0 && strcmp(a->model, b->model) == 0;
}

static int rehash(selection *s, rs_error *err)
{
    int64_t n = s->num_slots ? 2 * s->num_slots : 256;
    int64_t *slots = malloc((size_t)n * sizeof *slots);
    RS_CHECK(slots, err, "out of memory");
    for (int64_t i = 0; i < n; i++)
        slots[i] = -1;
    for (int64_t g = 0; g < s->count; g++) {
        int64_t at = (int64_t)(hash_names(&s->groups[g].data) & (uint64_t)(n - 1));
        while (slots[at] >= 0)
            at = (at + 1) & (n - 1);
        slots[at] = g;
    }
    free(s->slots);
    s->slots = slots;
    s->num_slots = n;
    return 0;
}

/* Keeps r (taking its data) when it is the newest of its group so far. */
static int offer(selection *s, const char *path, int64_t stamp, results_file *r, rs_error *err)
{
    if (2 * (s->count + 1) > s->num_slots)
        RS_TRY(rehash(s, err));
    int64_t at = (int64_t)(hash_names(r) & (uint64_t)(s->num_slots - 1));
    while (s->slots[at] >= 0 && !same_names(&s->groups[s->slots[at]].data, r))
        at = (at + 1) & (s->num_slots - 1);
    if (s->slots[at] < 0) {
        if (s->count == s->cap) {
            int64_t cap = s->cap ? 2 * s->cap : 64;
            group *grown = realloc(s->groups, (size_t)cap * sizeof *grown);
            RS_CHECK(grown, err, "out of memory");
            s->groups = grown;
            s->cap = cap;
        }
        s->groups[s->count] = (group){.data = *r, .path = path, .stamp = stamp};
        s->slots[at] = s->count++;
        memset(r, 0, sizeof *r);
        return 0;
    }
    group *g = &s->groups[s->slots[at]];
    s->older_files++;
    if (stamp > g->stamp) {
        results_file_free(&g->data);
        g->data = *r;
        g->path = path;
        g->stamp = stamp;
        g->tied = 0;
        memset(r, 0, sizeof *r);
    } else if (stamp == g->stamp) {
        s->tied_groups += g->tied++ == 0;
    }
    results_file_free(r);
    return 0;
}

/* ---- the query table ------------------------------------------------------- */

static int compare_groups(const void *a, const void *b)
{
    const results_file *x = &((const group *)a)->data, *y = &((const group *)b)->data;
    int c = strcmp(x->dataset, y->dataset);
    if (c == 0)
        c = strcmp(x->split, y->split);
    return c ? c : strcmp(x->model, y->model);
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t find_index(const int64_t *sorted, int64_t n, int64_t value)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct tally {
    int64_t null_scores, missing_costs, unevaluated, records;
} tally;

/* Queries in (dataset, split, index) order, models in name order. */
static int build_table(selection *s, rs_query_table *q, tally *t, rs_error *err)
{
    qsort(s->groups, (size_t)s->count, sizeof *s->groups, compare_groups);
    char **models = malloc((size_t)s->count * sizeof *models);
    RS_CHECK(models, err, "out of memory");
    int E = 0;
    for (int64_t g = 0; g < s->count; g++)
        models[E++] = s->groups[g].data.model;
    qsort(models, (size_t)E, sizeof *models, compare_names);
    int unique = 0;
    for (int e = 0; e < E; e++)
        if (unique == 0 || strcmp(models[unique - 1], models[e]) != 0)
            models[unique++] = models[e];
    E = unique;
    int rc = rs_query_table_init(q, E, 1, 1, err);
    for (int e = 0; e < E && rc == 0; e++)
        if (!(q->model_names[e] = strdup(models[e])))
            rc = rs_fail(err, "out of memory");
    int64_t *indices = NULL;
    for (int64_t g0 = 0; g0 < s->count && rc == 0;) {
        int64_t g1 = g0, n = 0;
        while (g1 < s->count && strcmp(s->groups[g1].data.dataset, s->groups[g0].data.dataset) == 0 &&
               strcmp(s->groups[g1].data.split, s->groups[g0].data.split) == 0)
            n += s->groups[g1++].data.count;
        /* the (dataset, split)'s queries: every index some model has */
        int64_t *grown = realloc(indices, (size_t)(n ? n : 1) * sizeof *indices);
        if (!grown) {
            rc = rs_fail(err, "out of memory");
            break;
        }
        indices = grown;
        int64_t m = 0;
        for (int64_t g = g0; g < g1; g++)
            for (int64_t i = 0; i < s->groups[g].data.count; i++)
                indices[m++] = s->groups[g].data.records[i].index;
        qsort(indices, (size_t)m, sizeof *indices, compare_int64);
        int64_t queries = 0;
        for (int64_t i = 0; i < m; i++)
            if (queries == 0 || indices[queries - 1] != indices[i])
                indices[queries++] = indices[i];
        int32_t label = 0;
        rc = rs_query_table_domain(q, s->groups[g0].data.dataset, &label, err);
        const int64_t t0 = q->T;
        for (int64_t i = 0; i < queries && rc == 0; i++) {
            int64_t t = rs_query_table_add(q, err);
            if (t < 0)
                rc = -1;
            else
                q->domain[t] = label;
        }
        for (int64_t g = g0; g < g1 && rc == 0; g++) {
            const results_file *r = &s->groups[g].data;
            int e = 0;
            while (strcmp(q->model_names[e], r->model) != 0)
                e++;
            for (int64_t i = 0; i < r->count; i++) {
                int64_t t = t0 + find_index(indices, queries, r->records[i].index);
                q->quality[t * E + e] = r->records[i].score;
                q->cost[t * E + e] = r->records[i].cost;
            }
            t->records += r->count;
            t->null_scores += r->null_scores;
            t->missing_costs += r->missing_costs;
            t->unevaluated += queries - r->count;
        }
        /* a model with no file for this (dataset, split) evaluated none of its queries */
        int64_t models_here = g1 - g0;
        t->unevaluated += (E - models_here) * queries;
        g0 = g1;
    }
    free(indices);
    free(models);
    return rc;
}

/* ---- notes ------------------------------------------------------------------ */

static void write_notes(const selection *s, const rs_query_table *q, const tally *t, int64_t files, rs_text *out)
{
    rs_text_addf(out, "%lld *.json files (data_collector/storage.py save_result): kept the newest non-demo file per "
             "(dataset_name, split, model_name) as baselines/data_loader.py does (the YYYYMMDD_HHMMSS stamp of the "
             "file name, else its modification time): %lld kept, %lld demo runs and %lld older runs left out\n",
        (long long)files, (long long)s->count, (long long)s->demo_files, (long long)s->older_files);
    if (s->stamps_from_mtime)
        rs_text_addf(out, "%lld files without a YYYYMMDD_HHMMSS name (legacy result.json) dated by their modification time, "
                 "older than any named run\n",
            (long long)s->stamps_from_mtime);
    if (s->tied_groups)
        rs_text_addf(out, "%lld groups had files with equal timestamps: kept the first by path (the loader keeps whichever "
                 "its directory walk lists first)\n",
            (long long)s->tied_groups);
    rs_text_addf(out, "queries: one per (dataset_name, split, index), in that order; domain = dataset_name (%d datasets); "
             "models in name order\n",
        q->num_domains);
    /* datasets run on several splits (groups are in dataset, split, model order) */
    for (int64_t g0 = 0, shown = 0; g0 < s->count && shown < 5;) {
        int64_t g1 = g0, splits = 0;
        for (; g1 < s->count && strcmp(s->groups[g1].data.dataset, s->groups[g0].data.dataset) == 0; g1++)
            splits += g1 == g0 || strcmp(s->groups[g1].data.split, s->groups[g1 - 1].data.split) != 0;
        if (splits > 1) {
            rs_text_addf(out, "dataset %s has %lld splits (", s->groups[g0].data.dataset, (long long)splits);
            for (int64_t g = g0, listed = 0; g < g1; g++)
                if (g == g0 || strcmp(s->groups[g].data.split, s->groups[g - 1].data.split) != 0)
                    rs_text_addf(out, "%s%s", listed++ ? ", " : "", s->groups[g].data.split);
            rs_text_addf(out, "): their queries are separate, under one domain\n");
            shown++;
        }
        g0 = g1;
    }
    rs_text_addf(out, "quality = score; a null or missing score is read as 0, as the loader does (%lld of %lld records)\n",
        (long long)t->null_scores, (long long)t->records);
    rs_text_addf(out, "cost = the record's cost in USD%s\n",
        t->missing_costs ? "" : ", per query and model");
    if (t->missing_costs)
        rs_text_addf(out, "a missing cost is read as 0, as the loader does (%lld records)\n", (long long)t->missing_costs);
    if (t->unevaluated)
        rs_text_addf(out, "%lld (query, model) pairs have no record: quality NaN (not evaluated), cost 0\n",
            (long long)t->unevaluated);
    rs_text_addf(out, "prompt_tokens and completion_tokens are not stored (the trace has no field for them)");
}

/* ---- the importer ---------------------------------------------------------- */

static int llmrouterbench_run(const rs_import_job *job, rs_error *err)
{
    const char *dir = job->input;
    const double max_quality = rs_param_float(job->options, "max_quality");
    path_list files = {0};
    selection s = {0};
    rs_query_table q = {0};
    tally t = {0};
    rs_text notes = {0};
    int rc = find_json_files(dir, 0, &files, err);
    if (rc == 0 && files.count == 0)
        rc = rs_fail(err, "%s: no *.json files (the results directory of LLMRouterBench, results/bench)", dir);
    for (int64_t i = 0; i < files.count && rc == 0; i++) {
        results_file r;
        int demo = 0, from_name = 0;
        rc = read_results_file(files.paths[i], max_quality, &demo, &r, err);
        if (rc != 0)
            break;
        if (demo) {
            s.demo_files++;
            continue;
        }
        int64_t stamp = file_stamp(files.paths[i], &from_name);
        s.stamps_from_mtime += !from_name;
        rc = offer(&s, files.paths[i], stamp, &r, err);
        results_file_free(&r);
    }
    if (rc == 0 && s.count == 0)
        rc = rs_fail(err, "%s: all %lld *.json files are demo runs (\"demo\": true), which the loader leaves out",
                     dir, (long long)files.count);
    if (rc == 0)
        rc = build_table(&s, &q, &t, err);
    if (rc == 0 && q.T == 0)
        rc = rs_fail(err, "%s: the kept files hold no records", dir);
    if (rc == 0) {
        write_notes(&s, &q, &t, files.count, &notes);
        if (!notes.buf || notes.failed)
            rc = rs_fail(err, "out of memory");
    }
    if (rc == 0) {
        char source[1200];
        snprintf(source, sizeof source, "routesim import llmrouterbench %s", dir);
        q.import_notes = notes.buf;
        rc = rs_query_table_write(&q, job->output, source, (int)rs_param_int(job->options, "gzip"), &job->limit,
                                  err);
    }
    if (rc == 0 && !job->quiet) {
        rs_import_query_report report;
        memset(&report, 0, sizeof report);
        rs_import_query_summarise(&q, &report);
        report.rows = t.records;
        rs_import_query_print("llmrouterbench", dir, job->output, &report);
        rs_text_print_lines(stderr, "routesim: note: ", notes.buf);
    }
    free(notes.buf);
    rs_query_table_free(&q);
    for (int64_t g = 0; g < s.count; g++)
        results_file_free(&s.groups[g].data);
    free(s.groups);
    free(s.slots);
    for (int64_t i = 0; i < files.count; i++)
        free(files.paths[i]);
    free(files.paths);
    return rc;
}

static const rs_param_def llmrouterbench_options[] = {
    {"gzip", RS_PARAM_INT, "0", 0, 9, NULL, "compress the datasets with gzip LEVEL 1-9 (default 0: none)"},
    {"max_quality", RS_PARAM_FLOAT, "1", 1e-6, 1e6, NULL,
     "the top of the score scale: every score must lie in [0, X] (default 1: correctness or a score in [0, 1])"},
};
static const rs_import_option_form llmrouterbench_forms[] = {{"LEVEL", 0}, {"X", 0}};
_Static_assert(sizeof llmrouterbench_forms / sizeof llmrouterbench_forms[0] ==
                   sizeof llmrouterbench_options / sizeof llmrouterbench_options[0],
               "one form per option");

static const rs_importer_type llmrouterbench_type = {
    .name = "llmrouterbench",
    .summary = "LLMRouterBench results/bench tree: a JSON file per (dataset, split, model) run",
    .input = "LLMRouterBench's results directory (results/bench)",
    .help = "Converts LLMRouterBench's results (data_collector/storage.py save_result:\n"
            "results/bench/<dataset>/<split>/<model>/<dataset>-<split>-<model>-<YYYYMMDD_HHMMSS>.json)\n"
            "into a unit = query trace: a query per (dataset_name, split, index), /outcome/quality\n"
            "= the record's score and /outcome/cost [T, E] = its cost (USD) per model, models in name\n"
            "order, dataset_name in /sequences/domain. As baselines/data_loader.py does: every *.json\n"
            "under DIR is read, demo runs are left out, the newest file per (dataset_name, split,\n"
            "model_name) is kept (by the timestamp in its name, else its modification time), and a\n"
            "null score counts as 0. A query a model has no record for is NaN (not evaluated).\n"
            "A file that is not valid JSON or lacks a field is an error (the loader skips it).\n",
    .example = "python -m data_collector.cli run config/data_collector_example.yaml\n"
               "routesim import llmrouterbench results/bench -o llmrouterbench.h5",
    .options = llmrouterbench_options,
    .forms = llmrouterbench_forms,
    .num_options = sizeof llmrouterbench_options / sizeof llmrouterbench_options[0],
    .flags = RS_IMPORTER_CONFIG | RS_IMPORTER_DIRECTORY,
    .run = llmrouterbench_run,
};
const rs_importer_type *const rs_importer_llmrouterbench = &llmrouterbench_type;
