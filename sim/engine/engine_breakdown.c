/* Breakdowns: each group of tokens (a domain, a phase) gets accumulators of
 * its own, fed the same chunks and decisions with only the group's tokens
 * valid. Metrics leave invalid tokens out (rs_row_observed), so a group's
 * accumulator measures the group's tokens as if they were the trace, in
 * the same pass, and merges like any other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/engine/engine_internal.h"

typedef struct rs_engine engine;

enum {
    SCAN_BLOCK = 1 << 16,
    /* beyond this many domains, one accumulator each stops being a breakdown */
    MAX_DOMAINS = 4096,
};

/* Inserts v into the sorted set values[0..*n) unless present. */
static int insert_sorted(int32_t *values, int *n, int32_t v)
{
    int lo = 0, hi = *n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (values[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < *n && values[lo] == v)
        return 0;
    if (*n >= MAX_DOMAINS)
        return -1;
    memmove(values + lo + 1, values + lo, (size_t)(*n - lo) * sizeof *values);
    values[lo] = v;
    (*n)++;
    return 0;
}

/* A key value without the characters that separate keys (';', '=') or rows. */
static void key_text(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++) {
        char ch = src[i];
        dst[i] = ch == ';' || ch == '=' || ch == ',' || (unsigned char)ch < 0x20 ? '_' : ch;
    }
    dst[i] = '\0';
}

static int add_group(engine *e, rs_breakdown_dim dim, int32_t value, const char *name, rs_error *err)
{
    by_group *grown = realloc(e->by_groups, (size_t)(e->num_by_groups + 1) * sizeof *grown);
    RS_CHECK(grown, err, "out of memory");
    e->by_groups = grown;
    by_group *g = &e->by_groups[e->num_by_groups++];
    g->dim = dim;
    g->value = value;
    char text[96];
    key_text(text, sizeof text, name);
    snprintf(g->key, sizeof g->key, "%s=%s", rs_breakdown_dim_name(dim), text);
    return 0;
}

/* The distinct labels of /sequences/domain, in increasing order, named
 * by the dataset's `names` attribute where it names them. */
static int domain_groups(engine *e, rs_error *err)
{
    const rs_trace_info *info = e->info;
    RS_CHECK(info->has_domain, err,
             "%s: a breakdown by domain needs /sequences/domain (a label per sequence), which the trace lacks",
             info->path);
    int32_t *block = malloc(SCAN_BLOCK * sizeof *block);
    int32_t *values = malloc(MAX_DOMAINS * sizeof *values);
    int n = 0, rc = 0;
    if (!block || !values)
        rc = rs_fail(err, "out of memory");
    for (int64_t s0 = 0; s0 < info->num_sequences && rc == 0; s0 += SCAN_BLOCK) {
        int64_t count = info->num_sequences - s0 < SCAN_BLOCK ? info->num_sequences - s0 : SCAN_BLOCK;
        rc = rs_trace_read_domain(e->trace, s0, count, block, err);
        for (int64_t i = 0; i < count && rc == 0; i++)
            if (insert_sorted(values, &n, block[i]) != 0)
                rc = rs_fail(err,
                             "%s: /sequences/domain holds more than %d distinct labels; a breakdown by domain keeps "
                             "accumulators per label",
                             info->path, MAX_DOMAINS);
    }
    const int named = rs_trace_domain_name_count(e->trace);
    for (int i = 0; i < n && rc == 0; i++) {
        char number[16];
        const char *name = values[i] >= 0 && values[i] < named ? rs_trace_domain_name(e->trace, values[i]) : NULL;
        snprintf(number, sizeof number, "%d", (int)values[i]);
        rc = add_group(e, RS_BY_DOMAIN, values[i], name && name[0] ? name : number, err);
    }
    free(block);
    free(values);
    return rc;
}

/* The phases /tokens/phase holds: prefill (0), decode (1), in that order. */
static int phase_groups(engine *e, rs_error *err)
{
    const rs_trace_info *info = e->info;
    RS_CHECK(info->has_phase, err,
             "%s: a breakdown by phase needs /tokens/phase (0 = prefill, 1 = decode), which the trace lacks",
             info->path);
    uint8_t *block = malloc(SCAN_BLOCK);
    RS_CHECK(block, err, "out of memory");
    int seen[256] = {0}, rc = 0;
    for (int64_t t0 = 0; t0 < info->num_tokens && rc == 0; t0 += SCAN_BLOCK) {
        int count = (int)(info->num_tokens - t0 < SCAN_BLOCK ? info->num_tokens - t0 : SCAN_BLOCK);
        rc = rs_trace_read_phase(e->trace, t0, count, block, err);
        for (int i = 0; i < count && rc == 0; i++)
            seen[block[i]] = 1;
    }
    free(block);
    for (int v = 0; v < 256 && rc == 0; v++) {
        if (!seen[v])
            continue;
        char number[16];
        snprintf(number, sizeof number, "%d", v);
        rc = add_group(e, RS_BY_PHASE, v, v == 0 ? "prefill" : v == 1 ? "decode" : number, err);
    }
    return rc;
}

int rs_engine_breakdown_setup(engine *e, rs_error *err)
{
    unsigned dims = e->opt->breakdown;
    if (dims & (1u << RS_BY_DOMAIN))
        RS_TRY(domain_groups(e, err));
    if (dims & (1u << RS_BY_PHASE)) {
        RS_TRY(phase_groups(e, err));
        e->needs |= RS_WANTS_PHASE;
    }
    return 0;
}

int rs_engine_breakdown_masks(engine *e, const rs_chunk *c, rs_error *err)
{
    const int G = e->num_by_groups, n = c->n;
    if (G == 0)
        return 0;
    if (n > e->by_mask_tokens) {
        uint8_t *grown = realloc(e->by_masks, (size_t)G * (size_t)n);
        RS_CHECK(grown, err, "out of memory for the breakdown's token masks of a chunk of %d tokens", n);
        e->by_masks = grown;
        e->by_mask_tokens = n;
    }
    for (int g = 0; g < G; g++) {
        const by_group *gr = &e->by_groups[g];
        uint8_t *mask = e->by_masks + (size_t)g * (size_t)e->by_mask_tokens;
        for (int t = 0; t < n; t++) {
            int32_t v = gr->dim == RS_BY_DOMAIN ? (c->domain ? c->domain[c->seq_of_token[t]] : -1)
                                                : (c->phase ? c->phase[t] : -1);
            mask[t] = v != gr->value ? RS_TOKEN_OUTSIDE : c->valid ? c->valid[t] : 1;
        }
    }
    return 0;
}

rs_chunk rs_engine_slot_view(const engine *e, const metric_slot *ms, const rs_chunk *c, int offset)
{
    rs_chunk view = *c;
    if (ms->by >= 0)
        view.valid = e->by_masks + (size_t)ms->by * (size_t)e->by_mask_tokens + offset;
    return view;
}
