/* The JSON-lines importer's key map: which JSON key holds which field
 * (--map FIELD=KEY,...). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "workloads/import/import_jsonl.h"

static const struct map_field {
    const char *name;
    size_t offset;
    int required;
} map_fields[] = {
    {"seq", offsetof(rs_jsonl_key_map, seq), 1},
    {"token", offsetof(rs_jsonl_key_map, token), 1},
    {"layer", offsetof(rs_jsonl_key_map, layer), 1},
    {"experts", offsetof(rs_jsonl_key_map, experts), 1}, /* unless logits are read */
    {"weights", offsetof(rs_jsonl_key_map, weights), 0},
    {"token_id", offsetof(rs_jsonl_key_map, token_id), 0},
    {"logits", offsetof(rs_jsonl_key_map, logits), 0},
    {"domain", offsetof(rs_jsonl_key_map, domain), 0},
};
enum { NUM_FIELDS = (int)(sizeof map_fields / sizeof map_fields[0]) };
#define FIELD_NAMES "seq, token, layer, experts, weights, token_id, logits, domain"

void rs_jsonl_key_map_defaults(rs_jsonl_key_map *map)
{
    memset(map, 0, sizeof *map);
    for (int i = 0; i < NUM_FIELDS; i++)
        if (map_fields[i].required)
            strcpy((char *)map + map_fields[i].offset, map_fields[i].name);
}

/* A dotted path needs a name between every pair of dots. */
static int valid_path(const char *key, size_t n)
{
    if (n == 0 || key[0] == '.' || key[n - 1] == '.')
        return 0;
    for (size_t i = 1; i < n; i++)
        if (key[i] == '.' && key[i - 1] == '.')
            return 0;
    return 1;
}

/* A key or dotted path; for seq, up to RS_JSONL_SEQ_PARTS of them joined by '+'. */
static int valid_key(const char *field, const char *key)
{
    if (strcmp(field, "seq") != 0)
        return valid_path(key, strlen(key));
    int parts = 0;
    for (const char *part = key;; parts++) {
        const char *plus = strchr(part, '+');
        size_t n = plus ? (size_t)(plus - part) : strlen(part);
        if (!valid_path(part, n) || parts + 1 > RS_JSONL_SEQ_PARTS)
            return 0;
        if (!plus)
            return 1;
        part = plus + 1;
    }
}

static const char *key_of(const rs_jsonl_key_map *map, int field)
{
    return (const char *)map + map_fields[field].offset;
}

int rs_jsonl_key_map_check(const rs_jsonl_key_map *map, const char *prefix, rs_error *err)
{
    for (int i = 0; i < NUM_FIELDS; i++) {
        const char *key = key_of(map, i);
        const int required = map_fields[i].required && !(strcmp(map_fields[i].name, "experts") == 0 && map->logits[0]);
        RS_CHECK(key[0] || !required, err, "%s--map: %s needs a key%s", prefix, map_fields[i].name,
                 strcmp(map_fields[i].name, "experts") == 0 ? " (or map logits)" : "");
        if (key[0] && !valid_key(map_fields[i].name, key)) {
            if (strcmp(map_fields[i].name, "seq") == 0 && strchr(key, '+'))
                return rs_fail(err, "%s--map: seq: '%s' is not keys or dotted paths joined by '+' (at most %d)",
                               prefix, key, RS_JSONL_SEQ_PARTS);
            return rs_fail(err, "%s--map: %s: '%s' is not a key or dotted path", prefix, map_fields[i].name, key);
        }
    }
    RS_CHECK(!map->weights[0] || map->experts[0], err,
             "%s--map: weights=%s needs experts (the weights are those of the listed experts)", prefix, map->weights);
    return 0;
}

int rs_jsonl_key_map_parse(rs_jsonl_key_map *map, const char *text, rs_error *err)
{
    const char *item = text;
    unsigned mapped = 0; /* bit i: map_fields[i] was named already */
    while (*item) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        const char *eq = memchr(item, '=', len);
        RS_CHECK(eq, err, "--map: expected FIELD=KEY, got '%.*s'", (int)len, item);
        size_t name_len = (size_t)(eq - item), key_len = len - name_len - 1;
        int field = -1;
        for (int i = 0; i < NUM_FIELDS; i++)
            if (strlen(map_fields[i].name) == name_len && memcmp(map_fields[i].name, item, name_len) == 0)
                field = i;
        RS_CHECK(field >= 0, err, "--map: unknown field '%.*s' (fields: " FIELD_NAMES ")", (int)name_len, item);
        RS_CHECK(!(mapped & (1u << field)), err, "--map: field %s is mapped twice (to '%s' and '%.*s')",
                 map_fields[field].name, key_of(map, field), (int)key_len, eq + 1);
        mapped |= 1u << field;
        RS_CHECK(key_len < RS_JSONL_KEY_MAX, err, "--map: %s: key longer than %d characters", map_fields[field].name,
                 RS_JSONL_KEY_MAX - 1);
        char *dest = (char *)map + map_fields[field].offset;
        memcpy(dest, eq + 1, key_len);
        dest[key_len] = '\0';
        item += len + (comma != NULL);
    }
    return rs_jsonl_key_map_check(map, "", err);
}
