/* routesim import routerarena: a RouterArena prediction file (RouteWorks/
 * RouterArena router_inference/generate_prediction_file.py writes it, as a
 * JSON list of {"global index", "prompt", "prediction", "generated_result",
 * "cost", "accuracy"}; llm_evaluation/run.py fills in cost and accuracy)
 * and the model_cost.json prices, as a unit = query trace of the router's
 * recorded decisions: the chosen model of every query is /router/topk_ids
 * (replay reproduces the router), its accuracy and cost the outcome of that
 * model; the other models' outcomes were never measured (NaN quality).
 * Records stream through one at a time; per query 16 bytes and its global
 * index are kept (docs/import.md). */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text_buffer.h"
#include "core/json_keys.h"
#include "core/read_file.h"
#include "workloads/import/importer.h"
#include "workloads/import/json_array_reader.h"
#include "workloads/trace/output_check.h"
#include "workloads/trace/trace_size.h"
#include "workloads/trace/trace_writer.h"

static const char input_price_key[] = "input_token_price_per_million";
static const char output_price_key[] = "output_token_price_per_million";

/* ---- names -> indices --------------------------------------------------- */

/* Open addressing over owned copies of the names; value = the name's index. */
typedef struct name_map {
    char **names;
    int64_t *values;
    int64_t slots, count;
} name_map;

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int64_t name_map_find(const name_map *m, const char *name)
{
    if (m->slots == 0)
        return -1;
    for (uint64_t i = name_hash(name) & (uint64_t)(m->slots - 1);; i = (i + 1) & (uint64_t)(m->slots - 1)) {
        if (!m->names[i])
            return -1;
        if (strcmp(m->names[i], name) == 0)
            return m->values[i];
    }
}

static int name_map_put(name_map *m, const char *name, int64_t value, rs_error *err)
{
    if (2 * (m->count + 1) > m->slots) {
        name_map grown = {.slots = m->slots ? 2 * m->slots : 64, .count = m->count};
        grown.names = calloc((size_t)grown.slots, sizeof *grown.names);
        grown.values = malloc((size_t)grown.slots * sizeof *grown.values);
        if (!grown.names || !grown.values) {
            free(grown.names);
            free(grown.values);
            return rs_fail(err, "out of memory");
        }
        for (int64_t s = 0; s < m->slots; s++) {
            if (!m->names[s])
                continue;
            uint64_t i = name_hash(m->names[s]) & (uint64_t)(grown.slots - 1);
            while (grown.names[i])
                i = (i + 1) & (uint64_t)(grown.slots - 1);
            grown.names[i] = m->names[s];
            grown.values[i] = m->values[s];
        }
        free(m->names);
        free(m->values);
        *m = grown;
    }
    uint64_t i = name_hash(name) & (uint64_t)(m->slots - 1);
    while (m->names[i])
        i = (i + 1) & (uint64_t)(m->slots - 1);
    m->names[i] = strdup(name);
    RS_CHECK(m->names[i], err, "out of memory");
    m->values[i] = value;
    m->count++;
    return 0;
}

static void name_map_free(name_map *m)
{
    for (int64_t s = 0; s < m->slots; s++)
        free(m->names[s]);
    free(m->names);
    free(m->values);
    memset(m, 0, sizeof *m);
}

/* ---- state ---------------------------------------------------------------- */

typedef struct priced_model {
    const char *name;      /* the key in model_cost.json (owned by the cJSON tree) */
    double input, output;  /* USD per million tokens */
    int32_t column;        /* its model index in the trace, -1 when not a model of the trace */
    int predicted;
} priced_model;

typedef struct arena_import {
    const rs_import_job *job;
    const char *costs_path;
    const char *models;        /* --models, or NULL */
    cJSON *costs;              /* model_cost.json */
    priced_model *priced;      /* [num_priced] in file order */
    int num_priced;
    name_map priced_index;     /* name -> index into priced */
    int num_models;            /* E */
    const char **model_names;  /* [E] */
    /* per query, in file order */
    int64_t T, cap;
    int32_t *choice;           /* index into priced */
    float *accuracy;           /* NaN: not evaluated */
    float *cost;               /* USD; 0 when not recorded */
    int32_t *domain;
    name_map seen;             /* global index -> record */
    name_map domain_index;     /* dataset -> label */
    char **domain_names;
    int num_domains, domains_cap;
    /* for the report and the notes */
    int64_t evaluated, cost_checked, cost_differs, first_differs;
    double accuracy_sum, cost_sum;
} arena_import;

static void arena_free(arena_import *a)
{
    cJSON_Delete(a->costs);
    free(a->priced);
    free(a->model_names);
    free(a->choice);
    free(a->accuracy);
    free(a->cost);
    free(a->domain);
    name_map_free(&a->priced_index);
    name_map_free(&a->seen);
    name_map_free(&a->domain_index);
    for (int d = 0; d < a->num_domains; d++)
        free(a->domain_names[d]);
    free(a->domain_names);
}

static const char *json_type(const cJSON *v)
{
    return !v                ? "nothing"
           : cJSON_IsNull(v)   ? "null"
           : cJSON_IsBool(v)   ? "a boolean"
           : cJSON_IsNumber(v) ? "a number"
           : cJSON_IsString(v) ? "a string"
           : cJSON_IsArray(v)  ? "an array"
                               : "an object";
}

/* A name from the input, fit for a one-line message: at most 120 bytes,
 * control characters shown as '?'. */
typedef struct shown_name {
    char text[128];
} shown_name;

static shown_name shown(const char *name)
{
    shown_name s;
    size_t n = 0;
    for (; name[n] && n < 120; n++)
        s.text[n] = (unsigned char)name[n] < 32 || name[n] == 127 ? '?' : name[n];
    if (name[n])
        memcpy(s.text + n, "...", 4);
    else
        s.text[n] = '\0';
    return s;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- model_cost.json ----------------------------------------------------- */

static int read_price(const char *path, const cJSON *entry, const char *key, double *price, rs_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, key);
    RS_CHECK(v, err, "%s: %s: %s: missing (model_cost.json gives each model both prices, USD per million tokens)",
             path, shown(entry->string).text, key);
    RS_CHECK(cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0, err,
             "%s: %s: %s: expected a price >= 0, got %s", path, shown(entry->string).text, key,
             cJSON_IsNumber(v) ? "a negative or infinite one" : json_type(v));
    *price = v->valuedouble;
    return 0;
}

static int read_costs(arena_import *a, rs_error *err)
{
    const char *path = a->costs_path;
    RS_CHECK(!rs_is_directory(path), err, "%s: is a directory, expected RouterArena's model_cost.json", path);
    char *text = rs_read_file(path);
    RS_CHECK(text, err, "%s: cannot read (%s)", path, strerror(errno));
    const char *end = NULL;
    a->costs = cJSON_ParseWithOpts(text, &end, 1);
    long long offset = end ? (long long)(end - text) : 0, line = 1;
    for (long long i = 0; !a->costs && i < offset; i++)
        line += text[i] == '\n';
    free(text);
    RS_CHECK(a->costs, err, "%s: line %lld: malformed JSON", path, line);
    char key[256];
    RS_CHECK(!rs_json_duplicate_key(a->costs, key, sizeof key), err, "%s: %s: key given twice in one object", path,
             shown(key).text);
    RS_CHECK(cJSON_IsObject(a->costs), err,
             "%s: expected a JSON object {\"model\": {\"%s\": P, \"%s\": P}, ...}, got %s", path, input_price_key,
             output_price_key, json_type(a->costs));
    a->num_priced = cJSON_GetArraySize(a->costs);
    RS_CHECK(a->num_priced > 0, err, "%s: no models priced", path);
    a->priced = calloc((size_t)a->num_priced, sizeof *a->priced);
    RS_CHECK(a->priced, err, "out of memory");
    int m = 0;
    for (const cJSON *entry = a->costs->child; entry; entry = entry->next, m++) {
        RS_CHECK(cJSON_IsObject(entry), err, "%s: %s: expected {\"%s\": P, \"%s\": P}, got %s", path,
                 shown(entry->string).text, input_price_key, output_price_key, json_type(entry));
        priced_model *p = &a->priced[m];
        p->name = entry->string;
        p->column = -1;
        RS_TRY(read_price(path, entry, input_price_key, &p->input, err));
        RS_TRY(read_price(path, entry, output_price_key, &p->output, err));
        RS_TRY(name_map_put(&a->priced_index, p->name, m, err));
    }
    return 0;
}

/* --models A,B: the trace's models in this order, every one priced. */
static int pick_listed_models(arena_import *a, rs_error *err)
{
    int count = 1;
    for (const char *c = a->models; *c; c++)
        count += *c == ',';
    a->model_names = calloc((size_t)count, sizeof *a->model_names);
    RS_CHECK(a->model_names, err, "out of memory");
    char name[512];
    for (const char *item = a->models; *item;) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        RS_CHECK(len > 0 && len < sizeof name, err, "--models: expected model names separated by commas, got '%s'",
                 shown(a->models).text);
        memcpy(name, item, len);
        name[len] = '\0';
        int64_t m = name_map_find(&a->priced_index, name);
        RS_CHECK(m >= 0, err, "--models: model '%s' has no price in %s", shown(name).text, a->costs_path);
        RS_CHECK(a->priced[m].column < 0, err, "--models: '%s' is listed twice", shown(name).text);
        a->priced[m].column = a->num_models;
        a->model_names[a->num_models++] = a->priced[m].name;
        item += len + (comma != NULL);
    }
    RS_CHECK(a->num_models > 0, err, "--models: no model named");
    return 0;
}

/* ---- the prediction file ------------------------------------------------- */

/* "FILE: record N (global index 'X'): " before a message. */
static __attribute__((format(printf, 5, 6))) int fail_record(const arena_import *a, int64_t record,
                                                             const char *global_index, rs_error *err,
                                                             const char *fmt, ...)
{
    char what[RS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (global_index)
        return rs_fail(err, "%s: record %lld (global index '%s'): %s", a->job->input, (long long)record,
                       shown(global_index).text, what);
    return rs_fail(err, "%s: record %lld: %s", a->job->input, (long long)record, what);
}

static int grow_queries(arena_import *a, rs_error *err)
{
    if (a->T < a->cap)
        return 0;
    int64_t cap = a->cap ? 2 * a->cap : 1024;
    int32_t *choice = realloc(a->choice, (size_t)cap * sizeof *choice);
    if (choice)
        a->choice = choice;
    float *accuracy = realloc(a->accuracy, (size_t)cap * sizeof *accuracy);
    if (accuracy)
        a->accuracy = accuracy;
    float *cost = realloc(a->cost, (size_t)cap * sizeof *cost);
    if (cost)
        a->cost = cost;
    int32_t *domain = realloc(a->domain, (size_t)cap * sizeof *domain);
    if (domain)
        a->domain = domain;
    RS_CHECK(choice && accuracy && cost && domain, err, "out of memory for %lld queries", (long long)cap);
    a->cap = cap;
    return 0;
}

/* The dataset of a global index, as RouterArena's evaluator reads it
 * (evaluate_models.py determine_dataset_from_global_index): the text
 * before the first '_', or all of it. */
static int domain_of(arena_import *a, const char *global_index, int32_t *label, rs_error *err)
{
    char dataset[256];
    size_t len = strcspn(global_index, "_");
    if (len >= sizeof dataset)
        len = sizeof dataset - 1;
    memcpy(dataset, global_index, len);
    dataset[len] = '\0';
    if (len == 0) /* "_12": no dataset named */
        snprintf(dataset, sizeof dataset, "(none)");
    int64_t found = name_map_find(&a->domain_index, dataset);
    if (found >= 0) {
        *label = (int32_t)found;
        return 0;
    }
    RS_CHECK(a->num_domains < INT32_MAX / 2, err, "%s: too many datasets", a->job->input);
    if (a->num_domains == a->domains_cap) {
        int cap = a->domains_cap ? 2 * a->domains_cap : 32;
        char **grown = realloc(a->domain_names, (size_t)cap * sizeof *grown);
        RS_CHECK(grown, err, "out of memory");
        a->domain_names = grown;
        a->domains_cap = cap;
    }
    a->domain_names[a->num_domains] = strdup(dataset);
    RS_CHECK(a->domain_names[a->num_domains], err, "out of memory");
    RS_TRY(name_map_put(&a->domain_index, dataset, a->num_domains, err));
    *label = a->num_domains++;
    return 0;
}

/* A number or null (*given = 0); RouterArena's accuracy may also be a
 * boolean (a scorer's True is an int in Python). */
static int number_or_null(const arena_import *a, int64_t record, const char *gi, const cJSON *obj, const char *key,
                          int booleans, double *value, int *given, rs_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return fail_record(a, record, gi, err, "%s: missing key (llm_evaluation/run.py writes it, null until "
                           "evaluated)", key);
    *given = !cJSON_IsNull(v);
    if (!*given)
        return 0;
    if (booleans && cJSON_IsBool(v)) {
        *value = cJSON_IsTrue(v) ? 1.0 : 0.0;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fail_record(a, record, gi, err, "%s: expected a number or null, got %s", key,
                           cJSON_IsNumber(v) ? "one out of range" : json_type(v));
    *value = v->valuedouble;
    return 0;
}

/* What llm_evaluation/run.py would compute as the cost of this answer
 * (evaluate_models.py calculate_inference_cost: tokens / 1e6 * price per
 * million, input plus output); 0 when the record holds no token usage. */
static int usage_cost(const cJSON *record, const priced_model *p, double *cost)
{
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(record, "generated_result");
    const cJSON *usage = cJSON_IsObject(result) ? cJSON_GetObjectItemCaseSensitive(result, "token_usage") : NULL;
    if (!cJSON_IsObject(usage))
        return 0;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(usage, "input_tokens");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(usage, "output_tokens");
    if ((in && !cJSON_IsNumber(in)) || (out && !cJSON_IsNumber(out)) || (!in && !out))
        return 0;
    double input_tokens = in ? in->valuedouble : 0, output_tokens = out ? out->valuedouble : 0;
    *cost = input_tokens / 1000000.0 * p->input + output_tokens / 1000000.0 * p->output;
    return 1;
}

static int read_record(arena_import *a, const cJSON *obj, int64_t record, rs_error *err)
{
    if (!cJSON_IsObject(obj))
        return fail_record(a, record, NULL, err, "expected an object {\"global index\", \"prediction\", \"cost\", "
                           "\"accuracy\", ...}, got %s", json_type(obj));
    /* llm_evaluation/run.py reads "global index", else "global_index" */
    const cJSON *gi = cJSON_GetObjectItemCaseSensitive(obj, "global index");
    const cJSON *alias = cJSON_GetObjectItemCaseSensitive(obj, "global_index");
    if (alias && !(cJSON_IsString(gi) && gi->valuestring[0]))
        gi = alias;
    if (!gi)
        return fail_record(a, record, NULL, err, "global index: missing key");
    if (!cJSON_IsString(gi) || !gi->valuestring[0])
        return fail_record(a, record, NULL, err, "global index: expected a non-empty string, got %s",
                           cJSON_IsString(gi) ? "an empty one" : json_type(gi));
    const char *index = gi->valuestring;
    int64_t earlier = name_map_find(&a->seen, index);
    if (earlier >= 0)
        return fail_record(a, record, index, err, "global index: already given in record %lld", (long long)earlier);

    const cJSON *pred = cJSON_GetObjectItemCaseSensitive(obj, "prediction");
    if (!pred)
        return fail_record(a, record, index, err, "prediction: missing key");
    if (!cJSON_IsString(pred) || !pred->valuestring[0])
        return fail_record(a, record, index, err, "prediction: expected a model name, got %s",
                           cJSON_IsString(pred) ? "an empty string" : json_type(pred));
    int64_t m = name_map_find(&a->priced_index, pred->valuestring);
    if (m < 0)
        return fail_record(a, record, index, err, "prediction: model '%s' has no price in %s",
                           shown(pred->valuestring).text, a->costs_path);
    if (a->models && a->priced[m].column < 0)
        return fail_record(a, record, index, err, "prediction: model '%s' is not one of --models %s",
                           shown(pred->valuestring).text, shown(a->models).text);

    double accuracy = 0, cost = 0;
    int has_accuracy = 0, has_cost = 0;
    RS_TRY(number_or_null(a, record, index, obj, "accuracy", 1, &accuracy, &has_accuracy, err));
    RS_TRY(number_or_null(a, record, index, obj, "cost", 0, &cost, &has_cost, err));
    if (has_accuracy && (accuracy < 0 || accuracy > 1))
        return fail_record(a, record, index, err, "accuracy: %g is outside [0, 1]", accuracy);
    if (has_cost && cost < 0)
        return fail_record(a, record, index, err, "cost: %g is negative", cost);
    if (has_cost && !has_accuracy)
        return fail_record(a, record, index, err, "cost: %g recorded without an accuracy (llm_evaluation/run.py "
                           "records both)", cost);

    RS_TRY(grow_queries(a, err));
    int64_t t = a->T;
    RS_TRY(domain_of(a, index, &a->domain[t], err));
    RS_TRY(name_map_put(&a->seen, index, record, err));
    a->choice[t] = (int32_t)m;
    a->accuracy[t] = has_accuracy ? (float)accuracy : NAN;
    a->cost[t] = has_cost ? (float)cost : 0.0f;
    a->priced[m].predicted = 1;
    if (has_accuracy) {
        a->evaluated++;
        a->accuracy_sum += accuracy;
        a->cost_sum += cost;
    }
    double expected = 0;
    if (has_cost && usage_cost(obj, &a->priced[m], &expected)) {
        a->cost_checked++;
        if (fabs(expected - cost) > 1e-9 * fmax(fabs(expected), fabs(cost)) + 1e-15 && a->cost_differs++ == 0)
            a->first_differs = record;
    }
    a->T++;
    return 0;
}

static int read_predictions(arena_import *a, rs_error *err)
{
    rs_json_array_reader reader;
    const char *label = strcmp(a->job->input, "-") == 0 ? "<stdin>" : a->job->input;
    int rc = rs_json_array_open(&reader, a->job->input, label, err);
    for (int got = rc == 0; got == 1;) {
        cJSON *obj = NULL;
        got = rs_json_array_next(&reader, &obj, err);
        if (got == 1)
            got = read_record(a, obj, reader.index - 1, err) == 0 ? 1 : -1;
        cJSON_Delete(obj);
        rc = got < 0 ? -1 : 0;
    }
    rs_json_array_close(&reader);
    RS_TRY(rc);
    RS_CHECK(a->T > 0, err, "%s: no predictions (an empty list)", label);
    return 0;
}

/* Without --models: the predicted models, in the order of model_cost.json. */
static int pick_predicted_models(arena_import *a, rs_error *err)
{
    a->model_names = calloc((size_t)a->num_priced, sizeof *a->model_names);
    RS_CHECK(a->model_names, err, "out of memory");
    for (int m = 0; m < a->num_priced; m++)
        if (a->priced[m].predicted) {
            a->priced[m].column = a->num_models;
            a->model_names[a->num_models++] = a->priced[m].name;
        }
    return 0;
}

/* ---- the trace ------------------------------------------------------------- */

static int add_note(char **notes, size_t *len, rs_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int add_note(char **notes, size_t *len, rs_error *err, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t add = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    char *grown = realloc(*notes, *len + add + 2);
    RS_CHECK(grown, err, "out of memory");
    *notes = grown;
    if (*len)
        (*notes)[(*len)++] = '\n';
    memcpy(*notes + *len, line, add);
    *len += add;
    (*notes)[*len] = '\0';
    return 0;
}

static int make_notes(const arena_import *a, char **notes, rs_error *err)
{
    size_t len = 0;
    int unpredicted = 0;
    for (int m = 0; m < a->num_priced; m++)
        unpredicted += !a->priced[m].predicted && a->priced[m].column < 0;
    RS_TRY(add_note(notes, &len, err, "one query per record, in file order; its domain is the dataset its global "
                    "index names (the text before the first '_'); prompts and generated answers are not kept"));
    RS_TRY(add_note(notes, &len, err, "the router's choice ('prediction') is /router/topk_ids: replay reproduces "
                    "its decisions"));
    RS_TRY(add_note(notes, &len, err, "only the chosen model was evaluated: the other %d model(s) of each query "
                    "have quality NaN (not evaluated) and cost 0, so a router choosing them is skipped there",
                    a->num_models - 1));
    RS_TRY(add_note(notes, &len, err, "quality = 'accuracy', cost = 'cost' (USD, stored as float32) of the chosen "
                    "model, as llm_evaluation/run.py recorded them"));
    if (a->evaluated < a->T)
        RS_TRY(add_note(notes, &len, err, "%lld of %lld records have no accuracy (not evaluated): every quality "
                        "NaN, so outcome leaves them out (skipped); arena_score counts them in the cost per "
                        "query as RouterArena does", (long long)(a->T - a->evaluated), (long long)a->T));
    if (a->cost_differs)
        RS_TRY(add_note(notes, &len, err, "%lld of %lld recorded costs differ from token_usage x the prices of %s "
                        "(the first: record %lld); the recorded cost is kept", (long long)a->cost_differs,
                        (long long)a->cost_checked, base_name(a->costs_path), (long long)a->first_differs));
    if (unpredicted)
        RS_TRY(add_note(notes, &len, err, "%d model(s) of %s are never predicted and not in the trace (--models "
                        "keeps them)", unpredicted, base_name(a->costs_path)));
    return 0;
}

static int write_trace(const arena_import *a, rs_error *err)
{
    const rs_import_job *job = a->job;
    char source[1024];
    snprintf(source, sizeof source, "routesim import routerarena %s --costs %s", base_name(job->input),
             base_name(a->costs_path));
    char *notes = NULL;
    int rc = make_notes(a, &notes, err);
    const int E = a->num_models;
    rs_trace_layout layout = {
        .num_layers = 1,
        .num_experts = E,
        .logits = RS_LOGITS_NONE,
        .topk_k = 1,
        .unit = "query",
        .source = source,
        .import_notes = notes,
        .norm_topk = -1,
        .num_domains = a->num_domains,
        .domain_names = (const char *const *)a->domain_names,
        .expert_names = a->model_names,
        .gzip_level = (int)rs_param_int(job->options, "gzip"),
        .outcome_quality = 1,
        .outcome_cost = RS_COST_PER_QUERY,
    };
    rs_trace_writer *w = NULL;
    if (rc == 0)
        rc = rs_trace_size_check(job->output, &layout, a->T, a->T, &job->limit, err);
    if (rc == 0)
        rc = rs_trace_writer_create(&w, job->output, &layout, err);
    if (rc != 0) {
        free(notes);
        return -1;
    }
    enum { BLOCK = 4096 };
    float *quality = malloc((size_t)BLOCK * (size_t)E * sizeof *quality);
    float *cost = malloc((size_t)BLOCK * (size_t)E * sizeof *cost);
    int32_t *ids = malloc(BLOCK * sizeof *ids);
    int64_t *ends = malloc(BLOCK * sizeof *ends);
    if (!quality || !cost || !ids || !ends)
        rc = rs_fail(err, "out of memory");
    for (int64_t t0 = 0; t0 < a->T && rc == 0; t0 += BLOCK) {
        int n = (int)(a->T - t0 < BLOCK ? a->T - t0 : BLOCK);
        for (int i = 0; i < n; i++) {
            int64_t t = t0 + i;
            int column = a->priced[a->choice[t]].column;
            for (int e = 0; e < E; e++) {
                quality[(size_t)i * E + e] = NAN;
                cost[(size_t)i * E + e] = 0.0f;
            }
            quality[(size_t)i * E + column] = a->accuracy[t];
            cost[(size_t)i * E + column] = a->cost[t];
            ids[i] = column;
            ends[i] = t + 1; /* every query its own sequence, with its own domain */
        }
        rc = rs_trace_writer_append(w, n, NULL, ids, NULL, NULL, NULL, err);
        if (rc == 0)
            rc = rs_trace_writer_append_outcome(w, n, quality, cost, err);
        if (rc == 0)
            rc = rs_trace_writer_end_sequences(w, n, ends, a->domain + t0, err);
    }
    free(quality);
    free(cost);
    free(ids);
    free(ends);
    if (rc == 0)
        rc = rs_trace_writer_finish(w, err); /* writes the attributes: the notes live until here */
    else
        rs_trace_writer_abort(w);
    free(notes);
    return rc;
}

static void print_report(const arena_import *a)
{
    const rs_import_job *job = a->job;
    fprintf(stderr, "routesim: imported %lld predictions from %s into %s (routerarena): %d models, %d domains; "
            "%lld evaluated",
            (long long)a->T, strcmp(job->input, "-") == 0 ? "<stdin>" : job->input, job->output, a->num_models,
            a->num_domains, (long long)a->evaluated);
    if (a->evaluated > 0)
        fprintf(stderr, ", mean accuracy %.6f, cost per 1,000 queries %.6f USD",
                a->accuracy_sum / (double)a->evaluated, a->cost_sum / (double)a->T * 1000.0);
    fprintf(stderr, "\n");
}

static int routerarena_run(const rs_import_job *job, rs_error *err)
{
    arena_import a = {.job = job,
                      .costs_path = rs_param_str(job->options, "costs"),
                      .models = rs_param_str(job->options, "models")};
    RS_CHECK(a.costs_path, err, "routerarena: --costs FILE is required (RouterArena's model_cost/cost.json)");
    const char *inputs[] = {job->input, a.costs_path};
    rs_output_check check = {.path = job->output, .kind = RS_FILE_TRACE, .what = "trace", .inputs = inputs,
                             .num_inputs = 2, .force = job->force};
    int rc = rs_output_check_path(&check, err);
    if (rc == 0)
        rc = read_costs(&a, err);
    if (rc == 0 && a.models)
        rc = pick_listed_models(&a, err);
    if (rc == 0)
        rc = read_predictions(&a, err);
    if (rc == 0 && !a.models)
        rc = pick_predicted_models(&a, err);
    if (rc == 0)
        rc = write_trace(&a, err);
    if (rc == 0 && !job->quiet) {
        print_report(&a);
        char *notes = NULL;
        if (make_notes(&a, &notes, err) == 0 && notes)
            rs_text_print_lines(stderr, "routesim: note: ", notes);
        free(notes);
    }
    arena_free(&a);
    return rc;
}

/* ---- the importer ---- */

static const rs_param_def routerarena_options[] = {
    {"costs", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "RouterArena's model_cost/cost.json: per model input_token_price_per_million and "
     "output_token_price_per_million (required; every predicted model needs a price)"},
    {"models", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "the candidate models, in this order (e.g. the router config's pipeline_params.models); every prediction must "
     "be one of them. Default: the models the predictions name, in the order of the cost file"},
    {"gzip", RS_PARAM_INT, "0", 0, 9, NULL, "compress the datasets with gzip LEVEL 1-9 (default 0: none)"},
};
static const rs_import_option_form routerarena_forms[] = {{"FILE", RS_IMPORT_REQUIRED}, {"A,B", 0}, {"LEVEL", 0}};
_Static_assert(sizeof routerarena_forms / sizeof routerarena_forms[0] ==
                   sizeof routerarena_options / sizeof routerarena_options[0],
               "one form per option");

static const rs_importer_type routerarena_type = {
    .name = "routerarena",
    .summary = "a RouterArena prediction file (global index, prediction, cost, accuracy) and model_cost.json: the "
               "router's decisions as a unit = query trace",
    .input = "the prediction file",
    .help = "Converts a RouterArena prediction file (router_inference/predictions/<router>.json: a JSON\n"
            "list of records with \"global index\", \"prediction\" (the model the router chose),\n"
            "\"cost\" and \"accuracy\", filled in by llm_evaluation/run.py) into a unit = query\n"
            "trace of the router's decisions: the chosen model as /router/topk_ids (score it with\n"
            "--router replay), its accuracy and cost as that model's /outcome/quality and\n"
            "/outcome/cost; the other models were not evaluated (NaN quality). Every query is its\n"
            "own sequence in file order, its dataset (the global index up to the first '_') its\n"
            "domain. --costs gives RouterArena's prices (model_cost/cost.json); every predicted\n"
            "model needs one. Records without an accuracy are kept, not evaluated.\n"
            "INPUT may be gzip-compressed; '-' reads standard input.\n",
    .example = "(in a RouterArena checkout, after llm_evaluation/run.py my-router sub_10)\n"
               "routesim import routerarena router_inference/predictions/my-router.json \\\n"
               "    --costs model_cost/cost.json -o my-router.h5\n"
               "routesim route my-router.h5 --router replay --metrics outcome",
    .options = routerarena_options,
    .forms = routerarena_forms,
    .num_options = sizeof routerarena_options / sizeof routerarena_options[0],
    .flags = RS_IMPORTER_CONFIG,
    .run = routerarena_run,
};
const rs_importer_type *const rs_importer_routerarena = &routerarena_type;
