/* Reading one field of one JSON-lines row: finding its key, checking its
 * JSON type and range, and the messages that name the file, the line and
 * the key when it is wrong. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow_array.h"
#include "workloads/import/import_jsonl_internal.h"

int rs_jsonl_fail_line(const import_state *st, int64_t line, const char *key, rs_error *err, const char *fmt, ...)
{
    char problem[RS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return rs_fail(err, "%s: line %lld: %s: %s", st->label, (long long)line, key, problem);
}

const char *rs_jsonl_type_name(const cJSON *v)
{
    return cJSON_IsNumber(v)   ? "a number"
           : cJSON_IsString(v) ? "a string"
           : cJSON_IsBool(v)   ? "a boolean"
           : cJSON_IsArray(v)  ? "an array"
           : cJSON_IsObject(v) ? "an object"
                               : "null";
}

int rs_jsonl_integer(const import_state *st, int64_t line, const char *key, const cJSON *v, int64_t lo, int64_t hi,
                     int64_t *out, rs_error *err)
{
    if (!cJSON_IsNumber(v))
        return rs_jsonl_fail_line(st, line, key, err, "expected an integer, got %s", rs_jsonl_type_name(v));
    double d = v->valuedouble;
    /* beyond 2^53 a double is not exact: refused rather than silently rounded */
    if (d != floor(d) || fabs(d) > 9007199254740992.0)
        return rs_jsonl_fail_line(st, line, key, err, "expected an integer, got %.17g", d);
    if (d < (double)lo || d > (double)hi)
        return rs_jsonl_fail_line(st, line, key, err, "%.0f is outside [%lld, %lld]", d, (long long)lo,
                                  (long long)hi);
    *out = (int64_t)d;
    return 0;
}

const cJSON *rs_jsonl_lookup(const cJSON *obj, const char *path)
{
    char part[RS_JSONL_KEY_MAX];
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        memcpy(part, path, n);
        part[n] = '\0';
        obj = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, part) : NULL;
        if (!obj || !dot)
            return obj;
        path = dot + 1;
    }
}

const cJSON *rs_jsonl_require(const import_state *st, const cJSON *obj, int64_t line, const char *field,
                              const char *key, const char *mapping, rs_error *err)
{
    const cJSON *v = rs_jsonl_lookup(obj, key);
    if (!v)
        rs_jsonl_fail_line(st, line, key, err, "missing key (--map %s=%s)", field, mapping);
    return v;
}

int rs_jsonl_integer_field(const import_state *st, const cJSON *obj, int64_t line, const char *field,
                           const char *key, int64_t max, int64_t *out, rs_error *err)
{
    const cJSON *v = rs_jsonl_require(st, obj, line, field, key, key, err);
    return v ? rs_jsonl_integer(st, line, key, v, 0, max, out, err) : -1;
}

/* Appends text to a growing string; -1 when out of memory. */
static int append(char **buf, int64_t *len, int64_t *cap, const char *text, size_t n)
{
    if (rs_grow_array(buf, cap, *len + (int64_t)n + 1, 1, 64) != 0)
        return -1;
    memcpy(*buf + *len, text, n);
    *len += (int64_t)n;
    (*buf)[*len] = '\0';
    return 0;
}

/* A string id in JSON quotes, '"' and '\' escaped, so that two different
 * tuples never give the same text. */
static int append_quoted(char **buf, int64_t *len, int64_t *cap, const char *s)
{
    int rc = append(buf, len, cap, "\"", 1);
    for (; rc == 0 && *s; s++)
        rc = *s == '"' || *s == '\\' ? append(buf, len, cap, "\\", 1) || append(buf, len, cap, s, 1)
                                     : append(buf, len, cap, s, 1);
    return rc || append(buf, len, cap, "\"", 1);
}

int rs_jsonl_composite_id(const import_state *st, const cJSON *obj, int64_t line, char **out, rs_error *err)
{
    const char *keys = st->opt->map.seq;
    char *buf = NULL;
    int64_t len = 0, cap = 0;
    int rc = 0;
    for (const char *part = keys; rc == 0;) {
        const char *plus = strchr(part, '+');
        char key[RS_JSONL_KEY_MAX];
        size_t n = plus ? (size_t)(plus - part) : strlen(part);
        memcpy(key, part, n);
        key[n] = '\0';
        const cJSON *v = rs_jsonl_require(st, obj, line, "seq", key, keys, err);
        int64_t number;
        char digits[32];
        if (!v) {
            rc = -1;
        } else if (cJSON_IsString(v)) {
            rc = append(&buf, &len, &cap, part == keys ? "" : "+", part == keys ? 0 : 1) ||
                 append_quoted(&buf, &len, &cap, v->valuestring);
        } else if (!cJSON_IsNumber(v)) {
            rc = rs_jsonl_fail_line(st, line, key, err, "expected an integer or a string (part of --map seq=%s), "
                                    "got %s", keys, rs_jsonl_type_name(v));
        } else if ((rc = rs_jsonl_integer(st, line, key, v, INT64_MIN, INT64_MAX, &number, err)) == 0) {
            int d = snprintf(digits, sizeof digits, "%s%lld", part == keys ? "" : "+", (long long)number);
            rc = append(&buf, &len, &cap, digits, (size_t)d);
        }
        if (rc > 0) /* append failed */
            rc = rs_fail(err, "%s: out of memory at line %lld", st->label, (long long)line);
        if (!plus)
            break;
        part = plus + 1;
    }
    if (rc != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

int rs_jsonl_label(const import_state *st, const cJSON *obj, int64_t line, const char *field, const char *key,
                   char **out, rs_error *err)
{
    const cJSON *v = rs_jsonl_require(st, obj, line, field, key, key, err);
    if (!v)
        return -1;
    int64_t number;
    char digits[32];
    if (cJSON_IsString(v)) {
        *out = strdup(v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        RS_TRY(rs_jsonl_integer(st, line, key, v, INT64_MIN, INT64_MAX, &number, err));
        snprintf(digits, sizeof digits, "%lld", (long long)number);
        *out = strdup(digits);
    } else {
        return rs_jsonl_fail_line(st, line, key, err, "expected a string or an integer, got %s",
                                  rs_jsonl_type_name(v));
    }
    RS_CHECK(*out, err, "%s: out of memory at line %lld", st->label, (long long)line);
    return 0;
}

/* A JSON number that float32 holds (finite after conversion). */
static int get_float(const import_state *st, int64_t line, const char *key, const cJSON *v, float *out,
                     rs_error *err)
{
    if (!cJSON_IsNumber(v))
        return rs_jsonl_fail_line(st, line, key, err, "expected a number, got %s", rs_jsonl_type_name(v));
    if (!isfinite((float)v->valuedouble))
        return rs_jsonl_fail_line(st, line, key, err, "%g does not fit in float32", v->valuedouble);
    *out = (float)v->valuedouble;
    return 0;
}

int rs_jsonl_parse_experts(import_state *st, const cJSON *obj, int64_t line, log_row *row, rs_error *err)
{
    const rs_jsonl_key_map *map = &st->opt->map;
    const int E = st->opt->num_experts;
    const cJSON *list = rs_jsonl_require(st, obj, line, "experts", map->experts, map->experts, err);
    if (!list)
        return -1;
    if (!cJSON_IsArray(list))
        return rs_jsonl_fail_line(st, line, map->experts, err, "expected an array of expert ids, got %s",
                                  rs_jsonl_type_name(list));
    int n = cJSON_GetArraySize(list);
    if (n > E)
        return rs_jsonl_fail_line(st, line, map->experts, err, "%d experts listed, more than --experts %d", n, E);
    const cJSON *weights = NULL;
    if (map->weights[0]) {
        weights = rs_jsonl_require(st, obj, line, "weights", map->weights, map->weights, err);
        if (!weights)
            return -1;
        if (!cJSON_IsArray(weights))
            return rs_jsonl_fail_line(st, line, map->weights, err, "expected an array of numbers, got %s",
                                      rs_jsonl_type_name(weights));
        if (cJSON_GetArraySize(weights) != n)
            return rs_jsonl_fail_line(st, line, map->weights, err, "%d weights for %d experts (%s)",
                                      cJSON_GetArraySize(weights), n, map->experts);
    }
    if (rs_grow_array(&st->experts, &st->experts_cap, st->pool_len + n, sizeof *st->experts, 64) != 0 ||
        (weights && rs_grow_array(&st->weights, &st->weights_cap, st->pool_len + n, sizeof *st->weights, 64) != 0))
        return rs_fail(err, "%s: out of memory at line %lld", st->label, (long long)line);
    /* An empty first list leaves the pool unallocated: no pointer into it then. */
    int32_t *ids = n > 0 ? st->experts + st->pool_len : NULL;
    const cJSON *item = list->child, *w = weights ? weights->child : NULL;
    for (int j = 0; j < n; j++, item = item->next) {
        char key[RS_JSONL_KEY_MAX + 16];
        snprintf(key, sizeof key, "%s[%d]", map->experts, j);
        int64_t id;
        RS_TRY(rs_jsonl_integer(st, line, key, item, INT64_MIN, INT64_MAX, &id, err));
        if (id < 0 || id >= E)
            return rs_jsonl_fail_line(st, line, key, err, "expert %lld is outside [0, %d) (--experts %d)",
                                      (long long)id, E, E);
        for (int i = 0; i < j; i++)
            if (ids[i] == id)
                return rs_jsonl_fail_line(st, line, key, err, "expert %lld is listed twice", (long long)id);
        ids[j] = (int32_t)id;
        if (w) {
            snprintf(key, sizeof key, "%s[%d]", map->weights, j);
            float weight;
            RS_TRY(get_float(st, line, key, w, &weight, err));
            if (weight < 0)
                return rs_jsonl_fail_line(st, line, key, err, "%g is negative (combine weights are >= 0; is --map "
                                          "weights=%s a logit?)", w->valuedouble, map->weights);
            st->weights[st->pool_len + j] = weight;
            w = w->next;
        }
    }
    row->first_expert = st->pool_len;
    row->num_experts = n;
    st->pool_len += n;
    if (n > st->k)
        st->k = n;
    return 0;
}

int rs_jsonl_parse_logits(import_state *st, const cJSON *obj, int64_t line, log_row *row, rs_error *err)
{
    const char *key = st->opt->map.logits;
    const int E = st->opt->num_experts;
    const cJSON *list = rs_jsonl_require(st, obj, line, "logits", key, key, err);
    if (!list)
        return -1;
    if (!cJSON_IsArray(list))
        return rs_jsonl_fail_line(st, line, key, err, "expected an array of %d numbers (one per expert), got %s", E,
                                  rs_jsonl_type_name(list));
    int n = cJSON_GetArraySize(list);
    if (n != E)
        return rs_jsonl_fail_line(st, line, key, err, "%d logits, expected one per expert: %d (--experts %d)", n, E,
                                  E);
    if (rs_grow_array(&st->logits, &st->logits_cap, st->logits_len + E, sizeof *st->logits, 1024) != 0)
        return rs_fail(err, "%s: out of memory at line %lld", st->label, (long long)line);
    const cJSON *item = list->child;
    for (int e = 0; e < E; e++, item = item->next) {
        char item_key[RS_JSONL_KEY_MAX + 16];
        snprintf(item_key, sizeof item_key, "%s[%d]", key, e);
        RS_TRY(get_float(st, line, item_key, item, &st->logits[st->logits_len + e], err));
    }
    row->logits_at = st->logits_len;
    st->logits_len += E;
    return 0;
}
