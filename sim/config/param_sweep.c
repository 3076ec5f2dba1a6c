/* Parameter sweeps in configs: a params object whose values may be lists
 * expands into several parameter sets, every combination (grid) or the
 * i-th value of every list together (zip). */
#include "sim/config/param_sweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_COMBINATIONS = 100000 };

/* Text form of a scalar JSON value, as rs_params_set reads it. */
static int scalar_text(const cJSON *v, char *buf, size_t size)
{
    if (cJSON_IsBool(v))
        snprintf(buf, size, "%d", cJSON_IsTrue(v) ? 1 : 0);
    else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9e15)
            snprintf(buf, size, "%.0f", d);
        else
            snprintf(buf, size, "%.17g", d);
    } else if (cJSON_IsString(v))
        snprintf(buf, size, "%s", v->valuestring);
    else if (cJSON_IsNull(v))
        snprintf(buf, size, "none");
    else
        return -1;
    return 0;
}

int rs_params_set_json(rs_params *p, const char *key, const cJSON *v, const char *source, const char *path,
                         rs_error *err)
{
    char text[1024];
    if (scalar_text(v, text, sizeof text) != 0)
        return rs_fail(err, "%s: %s.%s: expected a number, string, boolean or a list of them", source, path, key);
    /* Report the JSON path, not the router's own name for itself. */
    char owner[sizeof p->owner];
    memcpy(owner, p->owner, sizeof owner);
    snprintf(p->owner, sizeof p->owner, "%s: %s", source, path);
    int rc = rs_params_set(p, key, text, err);
    memcpy(p->owner, owner, sizeof owner);
    return rc;
}

static int compare_texts(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Two parameter sets of one entry alike (a list holding a value twice, or
 * zipped lists pairing the same values twice) would be the same run twice:
 * refused. Sets are compared on their swept parameters, as text. */
static int repeated_set(const rs_params *sets, int total, const cJSON *params, const char *source, const char *path,
                        rs_error *err)
{
    unsigned long long mask = 0;
    for (const cJSON *v = params->child; v; v = v->next)
        for (int j = 0; cJSON_IsArray(v) && j < sets[0].n; j++)
            if (strcmp(sets[0].defs[j].name, v->string) == 0)
                mask |= 1ULL << j;
    char **texts = calloc((size_t)total, sizeof *texts);
    RS_CHECK(texts, err, "out of memory");
    int rc = 0;
    for (int c = 0; c < total && rc == 0; c++) {
        char text[1024];
        rs_params_format(&sets[c], mask, 0, ",", text, sizeof text);
        if (!(texts[c] = strdup(text)))
            rc = rs_fail(err, "out of memory");
    }
    if (rc == 0) {
        qsort(texts, (size_t)total, sizeof *texts, compare_texts);
        for (int c = 1; c < total && rc == 0; c++)
            if (strcmp(texts[c - 1], texts[c]) == 0)
                rc = rs_fail(err, "%s: %s: the lists give %s twice (the same run would repeat)", source, path,
                             texts[c]);
    }
    for (int c = 0; c < total; c++)
        free(texts[c]);
    free(texts);
    return rc;
}

void rs_param_sets_free(rs_params *sets, int count)
{
    for (int i = 0; i < count; i++)
        rs_params_free(&sets[i]);
    free(sets);
}

int rs_params_expand(const rs_params *base, const cJSON *params, rs_sweep sweep, const char *source,
                     const char *path, rs_params **out, int *count, rs_error *err)
{
    *out = NULL;
    *count = 0;
    int total = 1;
    const char *first_list = NULL;
    if (params) {
        if (!cJSON_IsObject(params))
            return rs_fail(err, "%s: %s: expected an object of parameter values", source, path);
        for (const cJSON *v = params->child; v; v = v->next) {
            if (!cJSON_IsArray(v))
                continue;
            int n = cJSON_GetArraySize(v);
            if (n == 0)
                return rs_fail(err, "%s: %s.%s: empty list", source, path, v->string);
            if (sweep == RS_SWEEP_ZIP) {
                if (first_list && n != total)
                    return rs_fail(err, "%s: %s.%s: sweep \"zip\" pairs lists of equal length, but %s has %d values "
                                   "and %s has %d",
                                   source, path, v->string, first_list, total, v->string, n);
                first_list = first_list ? first_list : v->string;
                total = n;
                continue;
            }
            if ((long long)total * n > MAX_COMBINATIONS)
                return rs_fail(err, "%s: %s: more than %d combinations", source, path, MAX_COMBINATIONS);
            total *= n;
        }
    }
    rs_params *sets = calloc((size_t)total, sizeof *sets);
    RS_CHECK(sets, err, "out of memory");
    for (int c = 0; c < total; c++) {
        if (rs_params_copy(&sets[c], base, err) != 0) {
            rs_param_sets_free(sets, c);
            return -1;
        }
        /* Mixed-radix digits of c, the last list varying fastest. */
        int rest = c;
        int ndigits = 0;
        const cJSON *lists[RS_PARAMS_MAX + 8];
        for (const cJSON *v = params ? params->child : NULL; v; v = v->next)
            if (cJSON_IsArray(v) && ndigits < (int)(sizeof lists / sizeof lists[0]))
                lists[ndigits++] = v;
        int digit[RS_PARAMS_MAX + 8];
        for (int d = ndigits - 1; d >= 0; d--) {
            int n = cJSON_GetArraySize(lists[d]);
            digit[d] = sweep == RS_SWEEP_ZIP ? c : rest % n;
            rest /= n;
        }
        int d = 0;
        for (const cJSON *v = params ? params->child : NULL; v; v = v->next) {
            const cJSON *value = v;
            char where[512];
            snprintf(where, sizeof where, "%s", path);
            if (cJSON_IsArray(v)) {
                value = cJSON_GetArrayItem(v, digit[d++]);
                if (cJSON_IsArray(value) || cJSON_IsObject(value)) {
                    rs_param_sets_free(sets, c + 1);
                    return rs_fail(err, "%s: %s.%s: list items must be numbers, strings or booleans", source, path,
                                   v->string);
                }
            }
            /* A router's parameters print as "name:k=v,k=v" (results, the run
             * store, decisions files) and a metric's as "k=v;k=v" (results keys):
             * a text value holding ',' or ';' would not read back. */
            if (cJSON_IsString(value) && strpbrk(value->valuestring, ",;")) {
                rs_param_sets_free(sets, c + 1);
                return rs_fail(err, "%s: %s.%s: '%s': a text value cannot hold ',' or ';' (they separate parameters)",
                               source, path, v->string, value->valuestring);
            }
            if (rs_params_set_json(&sets[c], v->string, value, source, where, err) != 0) {
                rs_param_sets_free(sets, c + 1);
                return -1;
            }
        }
    }
    if (total > 1 && repeated_set(sets, total, params, source, path, err) != 0) {
        rs_param_sets_free(sets, total);
        return -1;
    }
    *out = sets;
    *count = total;
    return 0;
}

