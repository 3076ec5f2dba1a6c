/* Models of a query trace (unit = query: the "experts" are candidate
 * models), named by their expert_names entry or by index. */
#include "workloads/trace/query_models.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "a, b, c" of the model names, shortened. */
static void model_names(const rs_trace_info *info, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int e = 0; e < info->num_experts && used + 8 < size; e++) {
        const char *name = info->expert_names ? info->expert_names[e] : NULL;
        int n = name ? snprintf(buf + used, size - used, "%s%s", e ? ", " : "", name)
                     : snprintf(buf + used, size - used, "%s%d", e ? ", " : "", e);
        used += n > 0 ? (size_t)n : 0;
    }
    if (used >= size)
        snprintf(buf + size - 5, 5, "...");
}

static int is_index(const char *text, size_t len)
{
    if (len == 0 || len > 9)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)text[i]))
            return 0;
    return 1;
}

/* The model named by text[0..len). */
static int find_model(const rs_trace_info *info, const char *text, size_t len)
{
    for (int e = 0; info->expert_names && e < info->num_experts; e++)
        if (strlen(info->expert_names[e]) == len && memcmp(info->expert_names[e], text, len) == 0)
            return e;
    if (is_index(text, len)) {
        long e = strtol(text, NULL, 10);
        if (e < info->num_experts)
            return (int)e;
    }
    return -1;
}

static int unknown_model(const rs_trace_info *info, const char *router, const char *param, const char *text,
                         size_t len, rs_error *err)
{
    char names[512];
    model_names(info, names, sizeof names);
    return rs_fail(err, "%s: parameter %s: '%.*s' is not a model of %s (models: %s; or an index 0..%d)", router, param,
                   (int)len, text, info->path, names, info->num_experts - 1);
}

int rs_query_model(const rs_trace_info *info, const char *router, const char *param, const char *text, int *out,
                   rs_error *err)
{
    *out = find_model(info, text, strlen(text));
    if (*out < 0)
        return unknown_model(info, router, param, text, strlen(text), err);
    return 0;
}

int rs_query_model_list(const rs_trace_info *info, const char *router, const char *param, const char *text,
                        int *out, int max, int *count, rs_error *err)
{
    *count = 0;
    for (const char *item = text;;) {
        const char *bar = strchr(item, '|');
        size_t len = bar ? (size_t)(bar - item) : strlen(item);
        int e = find_model(info, item, len);
        if (e < 0)
            return unknown_model(info, router, param, item, len, err);
        for (int i = 0; i < *count; i++)
            RS_CHECK(out[i] != e, err, "%s: parameter %s: model '%.*s' is listed twice", router, param, (int)len, item);
        RS_CHECK(*count < max, err, "%s: parameter %s: more than %d models", router, param, max);
        out[(*count)++] = e;
        if (!bar)
            break;
        item = bar + 1;
    }
    return 0;
}
