/* The JSON-lines log assembled in memory, one row per line: the sequence
 * table (a hash of the logged ids), the domain labels, the distinct layer
 * values, and the packed rows with their pools of expert ids, weights and
 * logits. */
#include <stdlib.h>
#include <string.h>

#include "core/grow_array.h"
#include "core/json_keys.h"
#include "workloads/import/import_jsonl_internal.h"
#include "workloads/import/line_reader.h"

/* ---- sequences ---------------------------------------------------------- */

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
    if (st->num_seqs >= INT32_MAX ||
        rs_grow_array(&st->seqs, &st->seqs_cap, st->num_seqs + 1, sizeof *st->seqs, 64) != 0)
        return -1;
    seq_entry *e = &st->seqs[st->num_seqs];
    *e = (seq_entry){.number = number, .name = -1, .max_position = -1, .domain = -1};
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

/* The sequence a row belongs to: one key (an integer or a string id) or a
 * composite of several. */
static int row_sequence(import_state *st, const cJSON *obj, int64_t line, int32_t *seq, rs_error *err)
{
    const char *key = st->opt->map.seq;
    if (st->composite_seq) {
        char *id = NULL;
        RS_TRY(rs_jsonl_composite_id(st, obj, line, &id, err));
        *seq = find_or_add_seq(st, id, 0);
        free(id);
    } else {
        const cJSON *v = rs_jsonl_require(st, obj, line, "seq", key, key, err);
        if (!v)
            return -1;
        if (cJSON_IsString(v)) {
            *seq = find_or_add_seq(st, v->valuestring, 0);
        } else {
            int64_t number;
            if (!cJSON_IsNumber(v))
                return rs_jsonl_fail_line(st, line, key, err, "expected an integer or a string, got %s",
                                          rs_jsonl_type_name(v));
            RS_TRY(rs_jsonl_integer(st, line, key, v, INT64_MIN, INT64_MAX, &number, err));
            *seq = find_or_add_seq(st, NULL, number);
        }
    }
    RS_CHECK(*seq >= 0, err, "%s: out of memory (or over 2^31 sequences) at line %lld", st->label, (long long)line);
    return 0;
}

/* ---- domains ------------------------------------------------------------ */

/* Index of a domain label, added on first sight; -1 when out of memory.
 * Logs hold few labels and runs of rows share one: the last hit is tried
 * first, then the list. */
static int32_t find_or_add_domain(import_state *st, char *label)
{
    if (st->num_domains > 0 && strcmp(st->domains[st->last_domain], label) == 0) {
        free(label);
        return st->last_domain;
    }
    for (int32_t d = 0; d < st->num_domains; d++)
        if (strcmp(st->domains[d], label) == 0) {
            free(label);
            return st->last_domain = d;
        }
    if (st->num_domains == INT32_MAX ||
        rs_grow_array(&st->domains, &st->domains_cap, st->num_domains + 1, sizeof *st->domains, 16) != 0) {
        free(label);
        return -1;
    }
    st->domains[st->num_domains] = label;
    return st->last_domain = st->num_domains++;
}

/* A sequence has one domain: every row of it must name the same. */
static int row_domain(import_state *st, const cJSON *obj, int64_t line, int32_t seq, rs_error *err)
{
    const char *key = st->opt->map.domain;
    char *label = NULL;
    RS_TRY(rs_jsonl_label(st, obj, line, "domain", key, &label, err));
    int32_t d = find_or_add_domain(st, label);
    RS_CHECK(d >= 0, err, "%s: out of memory at line %lld", st->label, (long long)line);
    seq_entry *e = &st->seqs[seq];
    if (e->domain >= 0 && e->domain != d) {
        char id[96];
        rs_jsonl_format_seq(st, seq, id, sizeof id);
        return rs_jsonl_fail_line(st, line, key, err, "\"%s\" differs from \"%s\" given for seq %s on line %lld (a "
                                  "sequence has one domain)", st->domains[d], st->domains[e->domain], id,
                                  (long long)e->domain_line);
    }
    if (e->domain < 0) {
        e->domain = d;
        e->domain_line = line;
    }
    return 0;
}

/* ---- layers ------------------------------------------------------------- */

int32_t rs_jsonl_layer_rank(const import_state *st, int32_t value)
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
    int32_t at = rs_jsonl_layer_rank(st, value);
    if (at < st->num_layers && st->layers[at] == value)
        return 0;
    if (st->num_layers == RS_IMPORT_MAX_LAYERS)
        return rs_jsonl_fail_line(st, line, st->opt->map.layer, err,
                                  "more than %d distinct layers (is --map layer=%s right?)", RS_IMPORT_MAX_LAYERS,
                                  st->opt->map.layer);
    if (rs_grow_array(&st->layers, &st->layers_cap, st->num_layers + 1, sizeof *st->layers, 64) != 0)
        return rs_fail(err, "%s: out of memory at line %lld", st->label, (long long)line);
    memmove(st->layers + at + 1, st->layers + at, (size_t)(st->num_layers - at) * sizeof *st->layers);
    st->layers[at] = value;
    st->num_layers++;
    return 0;
}

/* ---- rows --------------------------------------------------------------- */

static int parse_row(import_state *st, const cJSON *obj, int64_t line, rs_error *err)
{
    const rs_jsonl_key_map *map = &st->opt->map;
    log_row row = {.line = line, .token_id = -1, .logits_at = -1};
    RS_TRY(row_sequence(st, obj, line, &row.seq, err));
    int64_t position, layer, token_id = -1;
    RS_TRY(rs_jsonl_integer_field(st, obj, line, "token", map->token, INT32_MAX - 1, &position, err));
    RS_TRY(rs_jsonl_integer_field(st, obj, line, "layer", map->layer, INT32_MAX, &layer, err));
    if (map->experts[0])
        RS_TRY(rs_jsonl_parse_experts(st, obj, line, &row, err));
    if (map->logits[0])
        RS_TRY(rs_jsonl_parse_logits(st, obj, line, &row, err));
    if (map->token_id[0])
        RS_TRY(rs_jsonl_integer_field(st, obj, line, "token_id", map->token_id, INT32_MAX, &token_id, err));
    if (map->domain[0])
        RS_TRY(row_domain(st, obj, line, row.seq, err));
    row.position = (int32_t)position;
    row.layer = (int32_t)layer;
    row.token_id = (int32_t)token_id;
    RS_TRY(note_layer(st, row.layer, line, err));
    if (rs_grow_array(&st->rows, &st->rows_cap, st->num_rows + 1, sizeof *st->rows, 64) != 0)
        return rs_fail(err, "%s: out of memory at line %lld", st->label, (long long)line);
    st->rows[st->num_rows++] = row;
    if (row.position > st->seqs[row.seq].max_position)
        st->seqs[row.seq].max_position = row.position;
    return 0;
}

static int is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

int rs_jsonl_read_log(import_state *st, rs_error *err)
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
                         rs_jsonl_type_name(obj));
        else if (rs_json_duplicate_key(obj, key, sizeof key))
            rc = rs_fail(err, "%s: line %lld: %s: key given twice in one object", st->label, (long long)line, key);
        else
            rc = parse_row(st, obj, line, err);
        cJSON_Delete(obj);
    }
    rs_line_reader_close(&reader);
    return rc;
}

void rs_jsonl_free_log(import_state *st)
{
    free(st->rows);
    free(st->experts);
    free(st->weights);
    free(st->logits);
    free(st->seqs);
    free(st->slots);
    free(st->names);
    for (int32_t d = 0; d < st->num_domains; d++)
        free(st->domains[d]);
    free(st->domains);
    free(st->layers);
    free(st->seq_by_rank);
}
