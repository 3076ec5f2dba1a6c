#include "workloads/import/import_jsonl.h"

#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/grow_array.h"
#include "core/json_keys.h"
#include "workloads/import/importer.h"
#include "workloads/import/line_reader.h"
#include "workloads/trace/trace_size.h"
#include "workloads/trace/trace_writer.h"

/* ---- key map ---------------------------------------------------------- */

static const struct map_field {
    const char *name;
    size_t offset;
    int required;
} map_fields[] = {
    {"seq", offsetof(rs_jsonl_key_map, seq), 1},
    {"token", offsetof(rs_jsonl_key_map, token), 1},
    {"layer", offsetof(rs_jsonl_key_map, layer), 1},
    {"experts", offsetof(rs_jsonl_key_map, experts), 1},
    {"weights", offsetof(rs_jsonl_key_map, weights), 0},
    {"token_id", offsetof(rs_jsonl_key_map, token_id), 0},
};

void rs_jsonl_key_map_defaults(rs_jsonl_key_map *map)
{
    memset(map, 0, sizeof *map);
    for (size_t i = 0; i < sizeof map_fields / sizeof map_fields[0]; i++)
        if (map_fields[i].required)
            strcpy((char *)map + map_fields[i].offset, map_fields[i].name);
}

/* A dotted path needs a name between every pair of dots. */
static int valid_path(const char *key)
{
    size_t n = strlen(key);
    return n > 0 && key[0] != '.' && key[n - 1] != '.' && !strstr(key, "..");
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
        const struct map_field *field = NULL;
        for (size_t i = 0; i < sizeof map_fields / sizeof map_fields[0]; i++)
            if (strlen(map_fields[i].name) == name_len && memcmp(map_fields[i].name, item, name_len) == 0)
                field = &map_fields[i];
        RS_CHECK(field, err, "--map: unknown field '%.*s' (fields: seq, token, layer, experts, weights, token_id)",
                 (int)name_len, item);
        unsigned bit = 1u << (field - map_fields);
        RS_CHECK(!(mapped & bit), err, "--map: field %s is mapped twice (to '%s' and '%.*s')", field->name,
                 (const char *)map + field->offset, (int)(len - name_len - 1), eq + 1);
        mapped |= bit;
        RS_CHECK(key_len < RS_JSONL_KEY_MAX, err, "--map: %s: key longer than %d characters", field->name,
                 RS_JSONL_KEY_MAX - 1);
        char *dest = (char *)map + field->offset;
        memcpy(dest, eq + 1, key_len);
        dest[key_len] = '\0';
        RS_CHECK(dest[0] || !field->required, err, "--map: %s needs a key", field->name);
        RS_CHECK(!dest[0] || valid_path(dest), err, "--map: %s: '%s' is not a key or dotted path", field->name, dest);
        item += len + (comma != NULL);
    }
    return 0;
}

void rs_import_jsonl_options_init(rs_import_jsonl_options *opt)
{
    memset(opt, 0, sizeof *opt);
    rs_jsonl_key_map_defaults(&opt->map);
}

/* ---- the log held in memory ------------------------------------------- */

typedef struct log_row {
    int64_t line;
    int64_t first_expert; /* index into the expert (and weight) pool */
    int32_t seq;          /* index into the sequence table, then its rank */
    int32_t position;
    int32_t layer;        /* the logged value, then its rank */
    int32_t num_experts;
    int32_t token_id;     /* -1 when not mapped */
} log_row;

typedef struct seq_entry {
    int64_t number; /* the id when it is an integer */
    int64_t name;   /* offset of a string id in the name pool, -1 for integers */
    int32_t max_position;
} seq_entry;

typedef struct import_state {
    const rs_import_jsonl_options *opt;
    const char *label; /* the input as messages name it */
    log_row *rows;
    int64_t num_rows, rows_cap;
    int32_t *experts;
    float *weights; /* parallel to experts when weights are mapped */
    int64_t pool_len, experts_cap, weights_cap;
    seq_entry *seqs;
    int64_t num_seqs, seqs_cap;
    int32_t *slots; /* open-addressing hash of seqs, -1 = empty */
    int64_t num_slots;
    char *names;
    int64_t names_len, names_cap;
    int all_numeric;
    int32_t *layers; /* distinct logged layer values, ascending */
    int64_t num_layers, layers_cap;
    int k;
    int32_t *seq_by_rank;
} import_state;

/* Records "FILE: line N: KEY: problem". */
static __attribute__((format(printf, 5, 6))) int fail_line(const import_state *st, int64_t line, const char *key,
                                                           rs_error *err, const char *fmt, ...)
{
    char problem[RS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return rs_fail(err, "%s: line %lld: %s: %s", st->label, (long long)line, key, problem);
}

static const char *json_type_name(const cJSON *v)
{
    return cJSON_IsNumber(v)   ? "a number"
           : cJSON_IsString(v) ? "a string"
           : cJSON_IsBool(v)   ? "a boolean"
           : cJSON_IsArray(v)  ? "an array"
           : cJSON_IsObject(v) ? "an object"
                               : "null";
}

/* An integral JSON number within [lo, hi]. Integers beyond 2^53 are not
 * exact in a double and are refused rather than silently rounded. */
static int get_integer(const import_state *st, int64_t line, const char *key, const cJSON *v, int64_t lo,
                       int64_t hi, int64_t *out, rs_error *err)
{
    if (!cJSON_IsNumber(v))
        return fail_line(st, line, key, err, "expected an integer, got %s", json_type_name(v));
    double d = v->valuedouble;
    if (d != floor(d) || fabs(d) > 9007199254740992.0)
        return fail_line(st, line, key, err, "expected an integer, got %.17g", d);
    if (d < (double)lo || d > (double)hi)
        return fail_line(st, line, key, err, "%.0f is outside [%lld, %lld]", d, (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return 0;
}

/* The value at a dotted path, or NULL. */
static const cJSON *lookup(const cJSON *obj, const char *path)
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

static const cJSON *require_key(const import_state *st, const cJSON *obj, int64_t line, const char *field,
                                const char *key, rs_error *err)
{
    const cJSON *v = lookup(obj, key);
    if (!v)
        fail_line(st, line, key, err, "missing key (--map %s=%s)", field, key);
    return v;
}

/* A mapped key holding an integer in [0, max]. */
static int integer_field(const import_state *st, const cJSON *obj, int64_t line, const char *field, const char *key,
                         int64_t max, int64_t *out, rs_error *err)
{
    const cJSON *v = require_key(st, obj, line, field, key, err);
    return v ? get_integer(st, line, key, v, 0, max, out, err) : -1;
}

/* FNV-1a over a string id, or the integer id itself, then a murmur finaliser. */
static uint64_t seq_hash(const char *name, int64_t number)
{
    uint64_t h = name ? 0xcbf29ce484222325ULL : (uint64_t)number;
    for (; name && *name; name++)
        h = (h ^ (unsigned char)*name) * 0x100000001b3ULL;
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
    h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33) ^ (name ? 1 : 0);
}

static int rehash(import_state *st, int64_t num_slots)
{
    int32_t *slots = malloc((size_t)num_slots * sizeof *slots);
    if (!slots)
        return -1;
    memset(slots, 0xff, (size_t)num_slots * sizeof *slots);
    for (int64_t i = 0; i < st->num_seqs; i++) {
        const seq_entry *e = &st->seqs[i];
        uint64_t h = seq_hash(e->name >= 0 ? st->names + e->name : NULL, e->number);
        int64_t at = (int64_t)(h & (uint64_t)(num_slots - 1));
        while (slots[at] >= 0)
            at = (at + 1) & (num_slots - 1);
        slots[at] = (int32_t)i;
    }
    free(st->slots);
    st->slots = slots;
    st->num_slots = num_slots;
    return 0;
}

/* Index of the sequence with this id (name, or number when name is NULL),
 * added on first sight; -1 when out of memory or out of indices. */
static int32_t find_or_add_seq(import_state *st, const char *name, int64_t number)
{
    if ((st->num_seqs + 1) * 2 > st->num_slots && rehash(st, st->num_slots ? st->num_slots * 2 : 1024) != 0)
        return -1;
    int64_t at = (int64_t)(seq_hash(name, number) & (uint64_t)(st->num_slots - 1));
    for (; st->slots[at] >= 0; at = (at + 1) & (st->num_slots - 1)) {
        const seq_entry *e = &st->seqs[st->slots[at]];
        if (name ? e->name >= 0 && strcmp(st->names + e->name, name) == 0 : e->name < 0 && e->number == number)
            return st->slots[at];
    }
    if (st->num_seqs >= INT32_MAX || rs_grow_array(&st->seqs, &st->seqs_cap, st->num_seqs + 1, sizeof *st->seqs, 64) != 0)
        return -1;
    seq_entry *e = &st->seqs[st->num_seqs];
    e->number = number;
    e->name = -1;
    e->max_position = -1;
    if (name) {
        int64_t len = (int64_t)strlen(name) + 1;
        if (rs_grow_array(&st->names, &st->names_cap, st->names_len + len, 1, 64) != 0)
            return -1;
        memcpy(st->names + st->names_len, name, (size_t)len);
        e->name = st->names_len;
        st->names_len += len;
        st->all_numeric = 0;
    }
    st->slots[at] = (int32_t)st->num_seqs;
    return (int32_t)st->num_seqs++;
}

static int32_t layer_rank(const import_state *st, int32_t value)
{
    int64_t lo = 0, hi = st->num_layers;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (st->layers[mid] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int32_t)lo;
}

/* Adds a logged layer value to the ascending list of distinct ones. */
static int note_layer(import_state *st, int32_t value, int64_t line, rs_error *err)
{
    int32_t at = layer_rank(st, value);
    if (at < st->num_layers && st->layers[at] == value)
        return 0;
    if (st->num_layers == RS_IMPORT_MAX_LAYERS)
        return fail_line(st, line, st->opt->map.layer, err, "more than %d distinct layers (is --map layer=%s right?)",
                         RS_IMPORT_MAX_LAYERS, st->opt->map.layer);
    if (rs_grow_array(&st->layers, &st->layers_cap, st->num_layers + 1, sizeof *st->layers, 64) != 0)
        return rs_fail(err, "%s: out of memory at line %lld", st->label, (long long)line);
    memmove(st->layers + at + 1, st->layers + at, (size_t)(st->num_layers - at) * sizeof *st->layers);
    st->layers[at] = value;
    st->num_layers++;
    return 0;
}

/* ---- one JSON object ---------------------------------------------------- */

static int parse_experts(import_state *st, const cJSON *obj, int64_t line, log_row *row, rs_error *err)
{
    const rs_jsonl_key_map *map = &st->opt->map;
    const int E = st->opt->num_experts;
    const cJSON *list = require_key(st, obj, line, "experts", map->experts, err);
    if (!list)
        return -1;
    if (!cJSON_IsArray(list))
        return fail_line(st, line, map->experts, err, "expected an array of expert ids, got %s",
                         json_type_name(list));
    int n = cJSON_GetArraySize(list);
    if (n > E)
        return fail_line(st, line, map->experts, err, "%d experts listed, more than --experts %d", n, E);
    const cJSON *weights = NULL;
    if (map->weights[0]) {
        weights = require_key(st, obj, line, "weights", map->weights, err);
        if (!weights)
            return -1;
        if (!cJSON_IsArray(weights))
            return fail_line(st, line, map->weights, err, "expected an array of numbers, got %s",
                             json_type_name(weights));
        if (cJSON_GetArraySize(weights) != n)
            return fail_line(st, line, map->weights, err, "%d weights for %d experts (%s)",
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
        RS_TRY(get_integer(st, line, key, item, INT64_MIN, INT64_MAX, &id, err));
        if (id < 0 || id >= E)
            return fail_line(st, line, key, err, "expert %lld is outside [0, %d) (--experts %d)", (long long)id, E, E);
        for (int i = 0; i < j; i++)
            if (ids[i] == id)
                return fail_line(st, line, key, err, "expert %lld is listed twice", (long long)id);
        ids[j] = (int32_t)id;
        if (w) {
            snprintf(key, sizeof key, "%s[%d]", map->weights, j);
            if (!cJSON_IsNumber(w))
                return fail_line(st, line, key, err, "expected a number, got %s", json_type_name(w));
            if (!isfinite((float)w->valuedouble))
                return fail_line(st, line, key, err, "%g does not fit in float32", w->valuedouble);
            if (w->valuedouble < 0)
                return fail_line(st, line, key, err, "%g is negative (combine weights are >= 0; is --map weights=%s "
                                 "a logit?)", w->valuedouble, map->weights);
            st->weights[st->pool_len + j] = (float)w->valuedouble;
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

static int parse_row(import_state *st, const cJSON *obj, int64_t line, rs_error *err)
{
    const rs_jsonl_key_map *map = &st->opt->map;
    log_row row = {.line = line, .token_id = -1};
    const cJSON *v = require_key(st, obj, line, "seq", map->seq, err);
    if (!v)
        return -1;
    int32_t seq;
    if (cJSON_IsString(v)) {
        seq = find_or_add_seq(st, v->valuestring, 0);
    } else {
        int64_t number;
        if (!cJSON_IsNumber(v))
            return fail_line(st, line, map->seq, err, "expected an integer or a string, got %s", json_type_name(v));
        RS_TRY(get_integer(st, line, map->seq, v, INT64_MIN, INT64_MAX, &number, err));
        seq = find_or_add_seq(st, NULL, number);
    }
    if (seq < 0)
        return rs_fail(err, "%s: out of memory (or over 2^31 sequences) at line %lld", st->label, (long long)line);
    row.seq = seq;

    int64_t position, layer, token_id = -1;
    RS_TRY(integer_field(st, obj, line, "token", map->token, INT32_MAX - 1, &position, err));
    RS_TRY(integer_field(st, obj, line, "layer", map->layer, INT32_MAX, &layer, err));
    RS_TRY(parse_experts(st, obj, line, &row, err));
    if (map->token_id[0])
        RS_TRY(integer_field(st, obj, line, "token_id", map->token_id, INT32_MAX, &token_id, err));
    row.position = (int32_t)position;
    row.layer = (int32_t)layer;
    row.token_id = (int32_t)token_id;
    RS_TRY(note_layer(st, row.layer, line, err));
    if (rs_grow_array(&st->rows, &st->rows_cap, st->num_rows + 1, sizeof *st->rows, 64) != 0)
        return rs_fail(err, "%s: out of memory at line %lld", st->label, (long long)line);
    st->rows[st->num_rows++] = row;
    if (row.position > st->seqs[seq].max_position)
        st->seqs[seq].max_position = row.position;
    return 0;
}

static int is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

static int read_log(import_state *st, rs_error *err)
{
    rs_line_reader reader = {0};
    int rc = rs_line_reader_open(&reader, st->opt->input, st->label, err);
    size_t len = 0;
    char key[RS_JSONL_KEY_MAX];
    for (int64_t line = 1; rc == 0; line++) {
        int got = rs_line_reader_next(&reader, &len, st->label, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        const char *text = reader.buf;
        if (is_blank(text, len))
            continue;
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        if (!obj) {
            rc = rs_fail(err, "%s: line %lld: malformed JSON at column %lld", st->label, (long long)line,
                         (long long)(end ? end - text + 1 : 1));
            break;
        }
        if (!is_blank(end, len - (size_t)(end - text)))
            rc = rs_fail(err, "%s: line %lld: unexpected text after the JSON value at column %lld", st->label,
                         (long long)line, (long long)(end - text + 1));
        else if (!cJSON_IsObject(obj))
            rc = rs_fail(err, "%s: line %lld: expected a JSON object, got %s", st->label, (long long)line,
                         json_type_name(obj));
        else if (rs_json_duplicate_key(obj, key, sizeof key))
            rc = rs_fail(err, "%s: line %lld: %s: key given twice in one object", st->label, (long long)line, key);
        else
            rc = parse_row(st, obj, line, err);
        cJSON_Delete(obj);
    }
    rs_line_reader_close(&reader);
    return rc;
}

/* ---- ordering ----------------------------------------------------------- */

static int compare_rows(const void *a, const void *b)
{
    const log_row *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (x->position != y->position)
        return x->position < y->position ? -1 : 1;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static int same_pair(const log_row *a, const log_row *b)
{
    return a->seq == b->seq && a->position == b->position && a->layer == b->layer;
}

typedef struct keyed_seq {
    int64_t key;
    int32_t index;
} keyed_seq;

static int compare_keyed(const void *a, const void *b)
{
    int64_t x = ((const keyed_seq *)a)->key, y = ((const keyed_seq *)b)->key;
    return (x > y) - (x < y);
}

static void format_seq(const import_state *st, int32_t index, char *out, size_t size)
{
    const seq_entry *e = &st->seqs[index];
    if (e->name >= 0)
        snprintf(out, size, "\"%s\"", st->names + e->name);
    else
        snprintf(out, size, "%lld", (long long)e->number);
}

/* Sequence ranks and layer ranks replace the logged values in every row, then
 * rows are sorted into trace order and duplicates refused. */
static int order_rows(import_state *st, rs_error *err)
{
    st->seq_by_rank = malloc((size_t)st->num_seqs * sizeof *st->seq_by_rank);
    int32_t *rank = malloc((size_t)st->num_seqs * sizeof *rank);
    keyed_seq *keyed = malloc((size_t)st->num_seqs * sizeof *keyed);
    if (!st->seq_by_rank || !rank || !keyed) {
        free(rank);
        free(keyed);
        return rs_fail(err, "%s: out of memory", st->label);
    }
    /* Sorted by id when all are integers, else by first appearance (the table's order). */
    for (int64_t i = 0; i < st->num_seqs; i++)
        keyed[i] = (keyed_seq){st->all_numeric ? st->seqs[i].number : i, (int32_t)i};
    qsort(keyed, (size_t)st->num_seqs, sizeof *keyed, compare_keyed);
    for (int64_t r = 0; r < st->num_seqs; r++) {
        st->seq_by_rank[r] = keyed[r].index;
        rank[keyed[r].index] = (int32_t)r;
    }
    free(keyed);
    for (int64_t i = 0; i < st->num_rows; i++) {
        st->rows[i].seq = rank[st->rows[i].seq];
        st->rows[i].layer = layer_rank(st, st->rows[i].layer);
    }
    free(rank);
    qsort(st->rows, (size_t)st->num_rows, sizeof *st->rows, compare_rows);

    /* Report the duplicate met first when reading the file. */
    const log_row *dup = NULL;
    for (int64_t i = 1; i < st->num_rows; i++) {
        const log_row *a = &st->rows[i - 1], *b = &st->rows[i];
        if (same_pair(a, b) && (!dup || b->line < dup->line))
            dup = b;
    }
    if (dup) {
        /* Rows with equal keys are sorted by line, so the one before is the first. */
        char seq[96];
        format_seq(st, st->seq_by_rank[dup->seq], seq, sizeof seq);
        return fail_line(st, dup->line, "seq/token/layer", err, "seq %s, token %d, layer %d already given on line %lld",
                         seq, dup->position, st->layers[dup->layer], (long long)dup[-1].line);
    }
    return 0;
}

/* Tokens with no row at all: a sequence whose positions jump (or start
 * above 0). Padding them would write rows nobody logged, possibly billions
 * (a stray "token": 2000000000), so they are refused unless --pad-gaps asks
 * for -1 rows; either way their count is reported. Rows are in trace order. */
static int check_gaps(const import_state *st, rs_import_jsonl_report *report, rs_error *err)
{
    const log_row *first = NULL; /* the first row after the first gap */
    int64_t gaps = 0, first_from = 0;
    for (int64_t i = 0; i < st->num_rows;) {
        const log_row *r = &st->rows[i];
        int64_t expected = i > 0 && st->rows[i - 1].seq == r->seq ? (int64_t)st->rows[i - 1].position + 1 : 0;
        const log_row *earliest = r;
        for (i++; i < st->num_rows && st->rows[i].seq == r->seq && st->rows[i].position == r->position; i++)
            if (st->rows[i].line < earliest->line)
                earliest = &st->rows[i];
        if (r->position == expected)
            continue;
        report->gap_tokens += r->position - expected;
        if (gaps++ == 0) {
            first = earliest;
            first_from = expected;
        }
    }
    if (!first || st->opt->pad_gaps)
        return 0;
    char seq[96], tokens[96], more[160] = "";
    format_seq(st, st->seq_by_rank[first->seq], seq, sizeof seq);
    if (first->position - first_from == 1)
        snprintf(tokens, sizeof tokens, "token %lld has", (long long)first_from);
    else
        snprintf(tokens, sizeof tokens, "tokens %lld-%d have", (long long)first_from, first->position - 1);
    if (gaps > 1)
        snprintf(more, sizeof more, "%lld gaps, %lld tokens in all; ", (long long)gaps, (long long)report->gap_tokens);
    if (first_from == 0)
        return fail_line(st, first->line, st->opt->map.token, err,
                         "seq %s starts at token %d: %s no row (%s--pad-gaps stores them as -1 rows)", seq,
                         first->position, tokens, more);
    return fail_line(st, first->line, st->opt->map.token, err,
                     "seq %s jumps from token %lld to token %d: %s no row (%s--pad-gaps stores them as -1 rows)", seq,
                     (long long)first_from - 1, first->position, tokens, more);
}

/* ---- writing ------------------------------------------------------------ */

static void note_missing(const import_state *st, rs_import_jsonl_report *report, int32_t seq_rank, int32_t position,
                         int layer)
{
    if (report->num_missing_samples < RS_IMPORT_MISSING_SAMPLES) {
        rs_import_missing_pair *m = &report->missing_samples[report->num_missing_samples++];
        format_seq(st, st->seq_by_rank[seq_rank], m->seq, sizeof m->seq);
        m->token = position;
        m->layer = st->layers[layer];
    }
    report->missing_pairs++;
}

/* Tokens gathered for one append: ids and weights [n, L, K], token ids [n]. */
typedef struct token_block {
    int capacity, filled;
    int32_t *ids, *token_ids;
    float *weights;
} token_block;

static int flush_block(token_block *b, rs_trace_writer *w, rs_error *err)
{
    int rc = b->filled ? rs_trace_writer_append(w, b->filled, NULL, b->ids, b->weights, b->token_ids, NULL, err) : 0;
    b->filled = 0;
    return rc;
}

/* Appends every token in trace order, a -1 row for each missing pair. */
static int walk_trace(const import_state *st, rs_trace_writer *writer, token_block *b,
                      rs_import_jsonl_report *report, rs_error *err)
{
    const int L = (int)st->num_layers, K = st->k;
    const log_row *row = st->rows, *end = st->rows + st->num_rows;
    for (int32_t s = 0; s < st->num_seqs; s++) {
        int32_t length = st->seqs[st->seq_by_rank[s]].max_position + 1;
        for (int32_t pos = 0; pos < length; pos++) {
            size_t at = (size_t)b->filled * L * K;
            for (size_t j = 0; j < (size_t)L * K; j++)
                b->ids[at + j] = -1;
            if (b->weights)
                memset(b->weights + at, 0, (size_t)L * K * sizeof *b->weights);
            const log_row *token_id_row = NULL;
            for (int l = 0; l < L; l++, at += (size_t)K) {
                if (row == end || row->seq != s || row->position != pos || row->layer != l) {
                    note_missing(st, report, s, pos, l);
                    continue;
                }
                memcpy(b->ids + at, st->experts + row->first_expert, (size_t)row->num_experts * sizeof *b->ids);
                if (b->weights)
                    memcpy(b->weights + at, st->weights + row->first_expert,
                           (size_t)row->num_experts * sizeof *b->weights);
                if (token_id_row && token_id_row->token_id != row->token_id)
                    return fail_line(st, row->line, st->opt->map.token_id, err,
                                     "%d differs from %d given for the same token on line %lld", row->token_id,
                                     token_id_row->token_id, (long long)token_id_row->line);
                token_id_row = row++;
            }
            if (b->token_ids)
                b->token_ids[b->filled] = token_id_row ? token_id_row->token_id : -1;
            if (++b->filled == b->capacity)
                RS_TRY(flush_block(b, writer, err));
        }
        RS_TRY(flush_block(b, writer, err));
        RS_TRY(rs_trace_writer_end_sequence(writer, 0, err));
    }
    if (st->opt->strict && report->missing_pairs > 0) {
        const rs_import_missing_pair *m = &report->missing_samples[0];
        return rs_fail(err, "%s: %lld (token, layer) pairs have no row, the first: seq %s, token %lld, layer %d "
                            "(--strict)",
                       st->label, (long long)report->missing_pairs, m->seq, (long long)m->token, m->layer);
    }
    return 0;
}

static int write_trace(const import_state *st, rs_import_jsonl_report *report, rs_error *err)
{
    const rs_import_jsonl_options *opt = st->opt;
    const char *slash = strrchr(st->label, '/');
    char source[1200];
    snprintf(source, sizeof source, "routesim import jsonl %s", slash ? slash + 1 : st->label);
    rs_trace_layout layout = {
        .num_layers = (int)st->num_layers,
        .num_experts = opt->num_experts,
        .logits = RS_LOGITS_NONE,
        .topk_k = st->k,
        .topk_weights = report->has_weights,
        .token_ids = report->has_token_ids,
        .unit = "token",
        .model = opt->model,
        .source = source,
        .top_k = opt->top_k,
        .norm_topk = -1,
        .layer_index = st->layers,
        .gzip_level = opt->gzip_level,
    };
    /* About 4 MiB of ids per append. */
    size_t per_token = (size_t)st->num_layers * (size_t)st->k;
    token_block b = {.capacity = (int)(((size_t)1 << 20) / per_token)};
    b.capacity = b.capacity < 1 ? 1 : b.capacity > 4096 ? 4096 : b.capacity;
    b.ids = malloc((size_t)b.capacity * per_token * sizeof *b.ids);
    b.weights = report->has_weights ? malloc((size_t)b.capacity * per_token * sizeof *b.weights) : NULL;
    b.token_ids = report->has_token_ids ? malloc((size_t)b.capacity * sizeof *b.token_ids) : NULL;
    rs_trace_writer *writer = NULL;
    int64_t tokens = 0;
    for (int64_t s = 0; s < st->num_seqs; s++)
        tokens += st->seqs[s].max_position + 1;
    int rc = rs_trace_size_check(opt->output, &layout, tokens, st->num_seqs, &opt->limit, err);
    if (rc == 0 && (!b.ids || (report->has_weights && !b.weights) || (report->has_token_ids && !b.token_ids)))
        rc = rs_fail(err, "%s: out of memory", opt->output);
    if (rc == 0)
        rc = rs_trace_writer_create(&writer, opt->output, &layout, err);
    if (rc == 0)
        rc = walk_trace(st, writer, &b, report, err);
    if (rc == 0)
        rc = rs_trace_writer_finish(writer, err);
    else
        rs_trace_writer_abort(writer);
    free(b.ids);
    free(b.weights);
    free(b.token_ids);
    return rc;
}

/* ---- entry point ---------------------------------------------------------- */

static void free_state(import_state *st)
{
    free(st->rows);
    free(st->experts);
    free(st->weights);
    free(st->seqs);
    free(st->slots);
    free(st->names);
    free(st->layers);
    free(st->seq_by_rank);
}

int rs_import_jsonl(const rs_import_jsonl_options *opt, rs_import_jsonl_report *report, rs_error *err)
{
    memset(report, 0, sizeof *report);
    RS_CHECK(opt->input && opt->output, err, "import jsonl: input and output paths are required");
    RS_CHECK(opt->num_experts >= 1, err, "import jsonl: --experts must be at least 1");
    RS_CHECK(opt->gzip_level >= 0 && opt->gzip_level <= 9, err, "import jsonl: --gzip must be in [0, 9]");
    RS_CHECK(opt->top_k <= opt->num_experts, err, "import jsonl: --top-k %d exceeds --experts %d", opt->top_k,
             opt->num_experts);
    for (size_t i = 0; i < sizeof map_fields / sizeof map_fields[0]; i++) {
        const char *key = (const char *)&opt->map + map_fields[i].offset;
        RS_CHECK(key[0] || !map_fields[i].required, err, "import jsonl: --map: %s needs a key", map_fields[i].name);
        RS_CHECK(!key[0] || valid_path(key), err, "import jsonl: --map: %s: '%s' is not a key or dotted path",
                 map_fields[i].name, key);
    }
    import_state st = {.opt = opt, .all_numeric = 1};
    st.label = strcmp(opt->input, "-") == 0 ? "<stdin>" : opt->input;
    report->has_weights = opt->map.weights[0] != '\0';
    report->has_token_ids = opt->map.token_id[0] != '\0';

    int rc = read_log(&st, err);
    if (rc == 0 && st.num_rows == 0)
        rc = rs_fail(err, "%s: no rows (the input is empty)", st.label);
    if (rc == 0 && st.k == 0)
        rc = rs_fail(err, "%s: %s: every experts list is empty", st.label, opt->map.experts);
    if (rc == 0)
        rc = order_rows(&st, err);
    if (rc == 0)
        rc = check_gaps(&st, report, err);
    if (rc == 0)
        rc = write_trace(&st, report, err);
    if (rc == 0) {
        report->rows = st.num_rows;
        report->sequences = st.num_seqs;
        for (int64_t s = 0; s < st.num_seqs; s++)
            report->tokens += st.seqs[s].max_position + 1;
        report->num_layers = (int)st.num_layers;
        report->layer_index = st.layers;
        report->k = st.k;
        st.layers = NULL;
    } else {
        memset(report, 0, sizeof *report);
    }
    free_state(&st);
    return rc;
}

void rs_import_jsonl_report_free(rs_import_jsonl_report *report)
{
    free(report->layer_index);
    report->layer_index = NULL;
}

/* ---- the importer: options, run, report ------------------------------- */

static const rs_param_def jsonl_options[] = {
    {"experts", RS_PARAM_INT, NULL, 1, 1 << 24, NULL, "routed experts per layer (required)"},
    {"map", RS_PARAM_STRING, NULL, 0, 0, NULL, "FIELD=KEY,... overriding the default keys (may be repeated)"},
    {"strict", RS_PARAM_BOOL, "0", 0, 1, NULL, "fail when any (token, layer) pair has no row"},
    {"pad_gaps", RS_PARAM_BOOL, "0", 0, 1, NULL,
     "store tokens that have no row at all (positions a sequence skips) as -1 rows; default: such a gap is an error"},
    {"model", RS_PARAM_STRING, NULL, 0, 0, NULL, "root attribute model"},
    {"top_k", RS_PARAM_INT, NULL, 1, 1 << 24, NULL, "root attribute top_k (the model's own k)"},
    {"gzip", RS_PARAM_INT, "0", 0, 9, NULL, "compress the datasets with gzip LEVEL 1-9 (default 0: none)"},
};
static const rs_import_option_form jsonl_forms[] = {
    {"E", RS_IMPORT_REQUIRED}, {"SPEC", RS_IMPORT_REPEATABLE}, {NULL, 0}, {NULL, 0}, {"NAME", 0}, {"K", 0},
    {"LEVEL", 0},
};
_Static_assert(sizeof jsonl_forms / sizeof jsonl_forms[0] == sizeof jsonl_options / sizeof jsonl_options[0],
               "one form per option");

static int options_from_params(const rs_params *p, rs_import_jsonl_options *opt, rs_error *err)
{
    rs_import_jsonl_options_init(opt);
    const char *map = rs_param_str(p, "map");
    if (map)
        RS_TRY(rs_jsonl_key_map_parse(&opt->map, map, err));
    opt->num_experts = (int)rs_param_int(p, "experts");
    opt->strict = rs_param_bool(p, "strict");
    opt->pad_gaps = rs_param_bool(p, "pad_gaps");
    opt->model = rs_param_str(p, "model");
    opt->top_k = (int)rs_param_int(p, "top_k");
    opt->gzip_level = (int)rs_param_int(p, "gzip");
    return 0;
}

static int jsonl_check(const rs_params *p, rs_error *err)
{
    rs_import_jsonl_options opt;
    RS_TRY(options_from_params(p, &opt, err));
    RS_CHECK(opt.top_k <= opt.num_experts, err, "--top-k %d exceeds --experts %d (the model's k is at most E)",
             opt.top_k, opt.num_experts);
    return 0;
}

static int run_end(const rs_import_jsonl_report *r, int i)
{
    while (i + 1 < r->num_layers && r->layer_index[i + 1] == r->layer_index[i] + 1)
        i++;
    return i;
}

/* Runs of consecutive values joined ("0-31"); a long list keeps its first
 * ten runs and its last ("1, 3, 5, ..., 61"). */
static void format_layers(const rs_import_jsonl_report *r, char *out, size_t size)
{
    int runs = 0;
    for (int i = 0; i < r->num_layers; i = run_end(r, i) + 1)
        runs++;
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0, j = 0; i < r->num_layers && used < size; i = run_end(r, i) + 1, j++) {
        if (runs > 12 && j >= 10 && j < runs - 1)
            continue;
        const char *sep = j == 0 ? "" : runs > 12 && j == runs - 1 ? ", ..., " : ", ";
        int first = r->layer_index[i], last = r->layer_index[run_end(r, i)];
        used += (size_t)(first == last ? snprintf(out + used, size - used, "%s%d", sep, first)
                                       : snprintf(out + used, size - used, "%s%d-%d", sep, first, last));
    }
}

static void print_report(const rs_import_jsonl_options *opt, const rs_import_jsonl_report *r)
{
    char layers[512];
    format_layers(r, layers, sizeof layers);
    fprintf(stderr,
            "routesim: imported %lld rows from %s into %s: %lld sequence%s, %lld token%s, %d layer%s "
            "(logged as %s), K = %d%s%s; ",
            (long long)r->rows, strcmp(opt->input, "-") == 0 ? "<stdin>" : opt->input, opt->output,
            (long long)r->sequences, r->sequences == 1 ? "" : "s", (long long)r->tokens, r->tokens == 1 ? "" : "s",
            r->num_layers, r->num_layers == 1 ? "" : "s", layers, r->k,
            r->has_weights ? ", with weights" : "", r->has_token_ids ? ", with token ids" : "");
    if (r->gap_tokens)
        fprintf(stderr, "tokens with no row (--pad-gaps): %lld; ", (long long)r->gap_tokens);
    fprintf(stderr, "missing (token, layer) pairs: %lld", (long long)r->missing_pairs);
    if (r->missing_pairs == 0) {
        fprintf(stderr, ".\n");
        return;
    }
    fprintf(stderr, ", stored as -1 rows (");
    for (int i = 0; i < r->num_missing_samples; i++)
        fprintf(stderr, "%sseq %s token %lld layer %d", i ? "; " : "", r->missing_samples[i].seq,
                (long long)r->missing_samples[i].token, r->missing_samples[i].layer);
    fprintf(stderr, "%s).\n", r->missing_pairs > r->num_missing_samples ? "; ..." : "");
}

static int jsonl_run(const rs_import_job *job, rs_error *err)
{
    rs_import_jsonl_options opt;
    RS_TRY(options_from_params(job->options, &opt, err));
    opt.input = job->input;
    opt.output = job->output;
    opt.limit = job->limit;
    rs_import_jsonl_report report;
    RS_TRY(rs_import_jsonl(&opt, &report, err));
    if (!job->quiet)
        print_report(&opt, &report);
    rs_import_jsonl_report_free(&report);
    return 0;
}

static const rs_importer_type jsonl_type = {
    .name = "jsonl",
    .summary = "JSON lines, one object per (token, layer), as vLLM / HF forward hooks log them",
    .input = "the JSON-lines log",
    .help =
        "Converts a JSON-lines routing log into a top-k-only trace (/router/topk_ids). Each\n"
        "line is one JSON object for one (token, layer) pair; rows may come in any order.\n"
        "INPUT may be gzip-compressed; '-' reads standard input.\n\n"
        "fields (FIELD=KEY in --map; KEY may be a dotted path such as meta.layer):\n"
        "  seq       sequence id, an integer or a string (default key: seq)\n"
        "  token     position of the token in its sequence, from 0 (default key: token)\n"
        "  layer     MoE layer, the model's own index; the distinct values, ascending,\n"
        "            become layers 0..L-1 and are kept in attribute layer_index (default key: layer)\n"
        "  experts   array of expert ids in [0, E) (default key: experts)\n"
        "  weights   array of combine weights, one per expert (read only when mapped)\n"
        "  token_id  vocabulary id of the token, stored in /tokens/ids (read only when mapped)\n"
        "A mapped key must be present on every line.\n\n"
        "layout:\n"
        "  Sequences are ordered by id (numerically when every id is an integer, otherwise\n"
        "  by first appearance); a sequence's length is its largest position + 1. K is the\n"
        "  longest experts list; shorter lists are padded with -1 (weight 0). A (token, layer)\n"
        "  pair with no row is stored as a -1 row and reported, or refused with --strict.\n"
        "  A token with no row at all (a sequence's positions jump, or start above 0) is an\n"
        "  error naming the line and the gap, unless --pad-gaps stores such tokens as -1 rows.\n"
        "  The trace's size is checked before writing (--max-output-gb, free disk space).\n"
        "  Two rows for the same (seq, token, layer) are an error.\n",
    .example = "routesim import jsonl hooks.jsonl.gz -o mixtral.h5 --experts 8 --top-k 2 \\\n"
               "    --map seq=request_id,token=pos,layer=meta.layer,experts=topk_ids,weights=topk_weights",
    .options = jsonl_options,
    .forms = jsonl_forms,
    .num_options = sizeof jsonl_options / sizeof jsonl_options[0],
    .check = jsonl_check,
    .run = jsonl_run,
};
const rs_importer_type *const rs_importer_jsonl = &jsonl_type;
