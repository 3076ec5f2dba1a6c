/* file: a placement read from JSON (policy file:PATH), as a serving system
 * wrote it or `routesim place` did:
 *   physical_to_logical_map  [L][S] (required): what SGLang's
 *       --init-expert-location reads (ExpertLocationMetadata.init_by_mapping);
 *   logical_to_physical_map  [L][E][X] (optional): each expert's slots by
 *       replica rank, -1 padded at the end; without it replicas rank in
 *       slot order, as SGLang derives that map;
 *   logical_count [L][E], devices, nodes (optional): checked when present.
 * The file must fit the layout: L layers, S slots, ids in [0, E), every
 * expert on a slot in every layer. Messages name the file and the field. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/read_file.h"
#include "metrics/placement/placement.h"

/* An array of n entries, or a message naming field. */
static int expect_array(const cJSON *a, int n, const char *path, const char *field, const char *what, rs_error *err)
{
    RS_CHECK(cJSON_IsArray(a), err, "%s: %s must be an array of %s", path, field, what);
    const int got = cJSON_GetArraySize(a);
    RS_CHECK(got == n, err, "%s: %s has %d %s, expected %d", path, field, got, what, n);
    return 0;
}

/* A whole number in [lo, hi)? */
static int whole_in(const cJSON *x, int lo, int hi, int *out)
{
    const double v = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    if (!(v == floor(v) && v >= lo && v < hi))
        return -1;
    *out = (int)v;
    return 0;
}

static int read_phy2log(const cJSON *map, rs_placement *out, const char *path, rs_error *err)
{
    const int L = out->L, S = out->layout.S, E = out->layout.E;
    RS_CHECK(cJSON_IsArray(map), err, "%s: physical_to_logical_map must be an array of layers, each an array of slots",
             path);
    const int rows = cJSON_GetArraySize(map);
    RS_CHECK(rows == L, err, "%s: physical_to_logical_map has %d layers, the layout %d%s", path, rows, L,
             rows > L ? " (SGLang writes a row for every hidden layer, dense ones included: keep the MoE layers' rows)"
                      : "");
    int l = 0;
    for (const cJSON *row = map->child; row; row = row->next, l++) {
        char field[64];
        snprintf(field, sizeof field, "physical_to_logical_map[%d]", l);
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != S)
            return rs_fail(err, "%s: %s has %d slots, the layout %d (%d experts + %d replicas)", path, field,
                           cJSON_IsArray(row) ? cJSON_GetArraySize(row) : 0, S, E, S - E);
        int32_t *slots = out->phy2log + (size_t)l * S;
        int32_t *count = out->logcnt + (size_t)l * E;
        int s = 0;
        for (const cJSON *x = row->child; x; x = x->next, s++) {
            int e;
            RS_CHECK(whole_in(x, 0, E, &e) == 0, err, "%s: %s[%d] is not an expert id in [0, %d)", path, field, s, E);
            slots[s] = e;
            count[e]++;
        }
        for (int e = 0; e < E; e++)
            RS_CHECK(count[e] > 0, err, "%s: %s: expert %d has no slot", path, field, e);
    }
    return 0;
}

static int check_count(const cJSON *given, const rs_placement *p, const char *path, rs_error *err)
{
    const int E = p->layout.E;
    RS_TRY(expect_array(given, p->L, path, "logical_count", "layers", err));
    int l = 0;
    for (const cJSON *row = given->child; row; row = row->next, l++) {
        char field[64];
        snprintf(field, sizeof field, "logical_count[%d]", l);
        RS_TRY(expect_array(row, E, path, field, "experts", err));
        int e = 0;
        for (const cJSON *x = row->child; x; x = x->next, e++) {
            const int want = p->logcnt[(size_t)l * E + e];
            RS_CHECK(cJSON_IsNumber(x) && x->valuedouble == want, err,
                     "%s: logical_count[%d][%d] is not %d, the slots physical_to_logical_map gives expert %d", path,
                     l, e, want, e);
        }
    }
    return 0;
}

/* Replica ranks from each expert's list of slots. */
static int read_log2phy(const cJSON *map, rs_placement *out, const char *path, rs_error *err)
{
    const int L = out->L, S = out->layout.S, E = out->layout.E;
    RS_TRY(expect_array(map, L, path, "logical_to_physical_map", "layers", err));
    int l = 0;
    for (const cJSON *layer = map->child; layer; layer = layer->next, l++) {
        char field[80];
        snprintf(field, sizeof field, "logical_to_physical_map[%d]", l);
        RS_TRY(expect_array(layer, E, path, field, "experts", err));
        const int32_t *slots = out->phy2log + (size_t)l * S;
        int32_t *rank = out->rank + (size_t)l * S;
        int e = 0;
        for (const cJSON *list = layer->child; list; list = list->next, e++) {
            snprintf(field, sizeof field, "logical_to_physical_map[%d][%d]", l, e);
            RS_CHECK(cJSON_IsArray(list), err, "%s: %s must be an array of slots", path, field);
            int r = 0, padded = 0;
            for (const cJSON *x = list->child; x; x = x->next) {
                int s;
                RS_CHECK(whole_in(x, -1, S, &s) == 0, err, "%s: %s[%d] is not a slot in [0, %d) or -1", path, field,
                         r + padded, S);
                if (s < 0) {
                    padded++;
                    continue;
                }
                RS_CHECK(!padded, err, "%s: %s: slot %d follows a -1 (padding comes last)", path, field, s);
                RS_CHECK(slots[s] == e, err, "%s: %s lists slot %d, which holds expert %d", path, field, s, slots[s]);
                RS_CHECK(rank[s] < 0, err, "%s: %s lists slot %d twice", path, field, s);
                rank[s] = r++;
            }
            const int want = out->logcnt[(size_t)l * E + e];
            RS_CHECK(r == want, err, "%s: %s lists %d slots, physical_to_logical_map gives expert %d %d", path, field,
                     r, e, want);
        }
    }
    return 0;
}

/* devices and nodes, when the file names them, are the layout's. */
static int check_layout(const cJSON *doc, const rs_placement_layout *lay, const char *path, rs_error *err)
{
    const struct {
        const char *key;
        int want;
    } fields[] = {{"devices", lay->G}, {"nodes", lay->N}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, fields[i].key);
        RS_CHECK(!x || (cJSON_IsNumber(x) && x->valuedouble == fields[i].want), err,
                 "%s: %s is not %d: the placement was planned for another layout", path, fields[i].key,
                 fields[i].want);
    }
    return 0;
}

static int read_doc(const cJSON *doc, rs_placement *out, const char *path, rs_error *err)
{
    RS_CHECK(cJSON_IsObject(doc), err, "%s: expected a JSON object with physical_to_logical_map", path);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(doc, "physical_to_logical_map");
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(doc, "logical_count");
    RS_CHECK(map || !count, err,
             "%s: no field physical_to_logical_map; a file with logical_count alone holds expert loads (plan from "
             "it with routesim place --loads)",
             path);
    RS_CHECK(map, err, "%s: no field physical_to_logical_map", path);
    RS_TRY(check_layout(doc, &out->layout, path, err));
    memset(out->logcnt, 0, (size_t)out->L * (size_t)out->layout.E * sizeof *out->logcnt);
    RS_TRY(read_phy2log(map, out, path, err));
    if (count)
        RS_TRY(check_count(count, out, path, err));
    const cJSON *log2phy = cJSON_GetObjectItemCaseSensitive(doc, "logical_to_physical_map");
    if (log2phy)
        RS_TRY(read_log2phy(log2phy, out, path, err));
    if (rs_placement_finish(out, err) != 0)
        return rs_fail_context(err, "%s", path);
    return 0;
}

static int file_plan(rs_placement *out, const rs_placement_stats *stats, const rs_placement_options *options,
                     rs_error *err)
{
    (void)stats;
    const char *path = options->path;
    RS_CHECK(!rs_is_directory(path), err, "%s: is a directory, expected a placement JSON file", path);
    char *text = rs_read_file(path);
    RS_CHECK(text, err, "%s: cannot read: %s", path, strerror(errno));
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(text, &end, 1);
    int rc = doc ? read_doc(doc, out, path, err)
                 : rs_fail(err, "%s: not valid JSON near byte %ld", path, (long)(end ? end - text : 0));
    cJSON_Delete(doc);
    free(text);
    return rc;
}

static const rs_placement_policy file = {
    .name = "file",
    .summary = "a placement from a JSON file (file:PATH): SGLang's physical_to_logical_map, or routesim place's output",
    .definition = "phy2log from physical_to_logical_map [L][S]; replica ranks from logical_to_physical_map when "
                  "given, else in slot order",
    .source = "SGLang --init-expert-location (ExpertLocationMetadata.init_by_mapping)",
    .needs = RS_PLACEMENT_NEEDS_PATH,
    .plan = file_plan,
};

const rs_placement_policy *const rs_placement_policy_file = &file;
