#include "core/json_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare_keys(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* A key of obj given twice, or NULL. Large objects are sorted so that a
 * hostile input with many keys costs n log n, not n^2. */
static const cJSON *repeated_key(const cJSON *obj)
{
    size_t n = 0;
    for (const cJSON *v = obj->child; v; v = v->next)
        n++;
    const cJSON **sorted = n > 16 ? malloc(n * sizeof *sorted) : NULL;
    if (!sorted) {
        for (const cJSON *v = obj->child; v; v = v->next)
            for (const cJSON *w = v->next; w; w = w->next)
                if (strcmp(v->string, w->string) == 0)
                    return w;
        return NULL;
    }
    size_t i = 0;
    for (const cJSON *v = obj->child; v; v = v->next)
        sorted[i++] = v;
    qsort(sorted, n, sizeof *sorted, compare_keys);
    const cJSON *found = NULL;
    for (i = 1; i < n && !found; i++)
        if (strcmp(sorted[i - 1]->string, sorted[i]->string) == 0)
            found = sorted[i];
    free(sorted);
    return found;
}

static int search(const cJSON *node, char *path, size_t size, size_t len)
{
    if (cJSON_IsObject(node)) {
        const cJSON *twice = repeated_key(node);
        if (twice) {
            snprintf(path + len, size - len, "%s%s", len ? "." : "", twice->string);
            return 1;
        }
    }
    if (!cJSON_IsObject(node) && !cJSON_IsArray(node))
        return 0;
    int i = 0;
    for (const cJSON *v = node->child; v; v = v->next, i++) {
        int n = cJSON_IsObject(node) ? snprintf(path + len, size - len, "%s%s", len ? "." : "", v->string)
                                     : snprintf(path + len, size - len, "[%d]", i);
        size_t next = len + (n > 0 ? (size_t)n : 0);
        if (next >= size)
            next = size - 1;
        if (search(v, path, size, next))
            return 1;
    }
    path[len] = '\0';
    return 0;
}

int rs_json_duplicate_key(const cJSON *node, char *path, size_t size)
{
    if (size == 0)
        return 0;
    path[0] = '\0';
    return node ? search(node, path, size, 0) : 0;
}
