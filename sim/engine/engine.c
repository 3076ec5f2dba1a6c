#include "sim/engine/engine.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "sim/engine/engine_device.h"
#include "sim/engine/engine_internal.h"
#include "sim/engine/engine_results.h"
#include "core/large_alloc.h"
#include "core/progress.h"
#include "routers/common/router_params.h"

typedef struct rs_engine engine;

/* Chunks whose float32 logits fit in about a core's L2 cache (1 MiB) stay
 * cached between reading them and routing them, with the loader's two
 * chunks in the last-level cache: bigger chunks only add DRAM traffic,
 * which threads share (a 2-core AMD EPYC VM routes DeepSeek-V3 chunks of 17
 * tokens about 15% faster than chunks of 70, and results do not depend on
 * the chunk size). */
#define CACHE_CHUNK_BYTES ((size_t)1 << 20)

/* ---- setup ---- */

static const char *need_name(unsigned need)
{
    switch (need) {
    case RS_NEEDS_LOGITS: return "/router/logits";
    case RS_NEEDS_TOKEN_IDS: return "/tokens/ids";
    case RS_NEEDS_BIAS: return "/router/bias";
    case RS_NEEDS_TOPK: return "/router/topk_ids";
    case RS_NEEDS_OUTCOME: return "/outcome/quality";
    }
    return "?";
}

static int check_needs(const rs_trace_info *info, unsigned needs, const char *who, rs_error *err)
{
    unsigned missing = 0;
    if ((needs & (RS_NEEDS_LOGITS | RS_NEEDS_PROBS)) && !info->has_logits)
        missing = RS_NEEDS_LOGITS;
    else if ((needs & RS_NEEDS_TOKEN_IDS) && !info->has_token_ids)
        missing = RS_NEEDS_TOKEN_IDS;
    else if ((needs & RS_NEEDS_BIAS) && !info->has_bias)
        missing = RS_NEEDS_BIAS;
    else if ((needs & RS_NEEDS_TOPK) && !info->recorded_k)
        missing = RS_NEEDS_TOPK;
    else if ((needs & RS_NEEDS_OUTCOME) && !info->has_quality)
        missing = RS_NEEDS_OUTCOME;
    if (!missing)
        return 0;
    if (missing == RS_NEEDS_LOGITS && info->recorded_k)
        return rs_fail(err, "%s needs %s, which %s lacks (it has only recorded top-k: use router replay)", who,
                       need_name(missing), info->path);
    return rs_fail(err, "%s needs %s, which %s lacks", who, need_name(missing), info->path);
}

static void softmax_free(softmax_scratch *s)
{
    free(s->probs);
    free(s->lse);
    free(s->mean_logit);
    free(s->log_norm);
    free(s->entropy);
    *s = (softmax_scratch){0};
}

/* 1 when every array of n rows is there */
static int softmax_alloc(softmax_scratch *s, int64_t n, int E)
{
    s->probs = malloc((size_t)n * (size_t)E * sizeof *s->probs);
    s->lse = malloc((size_t)n * sizeof *s->lse);
    s->mean_logit = malloc((size_t)n * sizeof *s->mean_logit);
    s->log_norm = malloc((size_t)n * sizeof *s->log_norm);
    s->entropy = malloc((size_t)n * sizeof *s->entropy);
    return s->probs && s->lse && s->mean_logit && s->log_norm && s->entropy;
}

void rs_band_storage_free(band_storage *s)
{
    free(s->data);
    s->data = NULL;
    s->rows = 0;
}

int rs_band_storage_reserve(band_storage *s, int64_t n, int band, int L, size_t width, size_t size)
{
    size_t rows = (size_t)n * (size_t)band + (size_t)(L - band);
    if (rows <= s->rows)
        return 0;
    rs_band_storage_free(s);
    if (width == 0)
        return 0;
    s->data = rs_large_alloc(rows * width * size);
    if (!s->data)
        return -1;
    s->rows = rows;
    return 0;
}

void *rs_band_base(const band_storage *s, int first, int band, int L, size_t width, size_t size)
{
    if (!s->data)
        return NULL;
    return (char *)s->data + (size_t)(L - band - first) * width * size;
}

void rs_engine_set_band(engine *e, int first, int band)
{
    for (int r = 0; r < e->num_routers; r++) {
        router_slot *rs = &e->routers[r];
        const size_t k = (size_t)rs->shape.kmax;
        rs->dec.ids = rs_band_base(&rs->ids, first, band, e->L, k, sizeof(int32_t));
        rs->dec.weights = rs_band_base(&rs->weights, first, band, e->L, k, sizeof(float));
        rs->dec.dropped = rs->capacity.enabled ? rs_band_base(&rs->dropped, first, band, e->L, k, 1) : NULL;
    }
}

static void free_chunk_buffers(engine *e)
{
    for (int r = 0; r < e->num_routers; r++) {
        router_slot *rs = &e->routers[r];
        rs_band_storage_free(&rs->ids);
        rs_band_storage_free(&rs->weights);
        rs_band_storage_free(&rs->dropped);
        free(rs->full.ids);
        free(rs->full.weights);
        free(rs->full.dropped);
        rs->full.ids = NULL;
        rs->full.weights = NULL;
        rs->full.dropped = NULL;
        rs->full_rows = 0;
        rs->dec.ids = NULL;
        rs->dec.weights = NULL;
        rs->dec.dropped = NULL;
    }
    for (int t = 0; e->scratch && t < e->threads; t++) {
        softmax_free(&e->scratch[t].softmax);
        softmax_free(&e->scratch[t].ref_softmax);
        e->scratch[t].tokens = 0;
    }
    rs_band_storage_free(&e->band_logits);
    rs_band_storage_free(&e->band_ids);
    rs_band_storage_free(&e->band_weights);
    free(e->band_stored);
    e->band_stored = NULL;
    e->band_stored_cells = 0;
    e->loaded_band = -1;
}

/* Softmax scratch of one thread for work items of n tokens. */
static int ensure_scratch(engine *e, thread_scratch *s, int64_t n)
{
    if (n <= s->tokens)
        return 0;
    softmax_free(&s->softmax);
    softmax_free(&s->ref_softmax);
    s->tokens = 0;
    int ok = 1;
    if (e->needs & RS_NEEDS_PROBS)
        ok &= softmax_alloc(&s->softmax, n, e->E);
    if (e->ref_probs && ok)
        ok &= softmax_alloc(&s->ref_softmax, n, e->E);
    if (ok)
        s->tokens = n;
    return ok ? 0 : -1;
}

int rs_engine_ensure_capacity(engine *e, int64_t n, int band, rs_error *err)
{
    const int L = e->L, banded = e->banded;
    int ok = 1;
    for (int r = 0; r < e->num_routers && ok; r++) {
        router_slot *rs = &e->routers[r];
        size_t k = (size_t)rs->shape.kmax;
        ok &= rs_band_storage_reserve(&rs->ids, n, band, L, k, sizeof(int32_t)) == 0;
        ok &= rs_band_storage_reserve(&rs->weights, n, band, L, k, sizeof(float)) == 0;
        if (rs->capacity.enabled)
            ok &= rs_band_storage_reserve(&rs->dropped, n, band, L, k, 1) == 0;
        size_t full = (size_t)n * (size_t)L;
        if (ok && banded && e->needs_full && full > rs->full_rows) {
            free(rs->full.ids);
            free(rs->full.weights);
            free(rs->full.dropped);
            rs->full = (rs_decisions){.kmax = rs->shape.kmax};
            rs->full_rows = 0;
            ok &= (rs->full.ids = rs_large_alloc(full * k * sizeof(int32_t))) != NULL;
            ok &= (rs->full.weights = rs_large_alloc(full * k * sizeof(float))) != NULL;
            if (rs->capacity.enabled)
                ok &= (rs->full.dropped = malloc(full * k)) != NULL;
            if (ok)
                rs->full_rows = full;
        }
    }
    if (ok && banded) {
        const size_t E = (e->needs & RS_NEEDS_LOGITS) ? (size_t)e->E : 0;
        const size_t K = (e->needs & RS_NEEDS_TOPK) ? (size_t)e->info->recorded_k : 0;
        ok &= rs_band_storage_reserve(&e->band_logits, n, band, L, E, sizeof(float)) == 0;
        ok &= rs_band_storage_reserve(&e->band_ids, n, band, L, K, sizeof(int32_t)) == 0;
        if (e->info->has_topk_weights)
            ok &= rs_band_storage_reserve(&e->band_weights, n, band, L, K, sizeof(float)) == 0;
        /* bands widened from the chunk's stored rows need no buffer to read them into */
        size_t stored = rs_trace_logit_size(e->trace) == 2 && !e->band_in_memory ? (size_t)n * (size_t)band * E : 0;
        if (ok && stored > e->band_stored_cells) {
            free(e->band_stored);
            e->band_stored_cells = 0;
            ok &= (e->band_stored = malloc(stored * sizeof *e->band_stored)) != NULL;
            if (ok)
                e->band_stored_cells = stored;
        }
        e->loaded_band = -1;
    }
    /* each thread's softmax statistics cover the tokens of one work item */
    const int threads = banded ? e->band_threads : e->threads;
    for (int t = 0; t < threads && ok; t++)
        ok &= ensure_scratch(e, &e->scratch[t], n) == 0;
    if (!ok) {
        free_chunk_buffers(e);
        return rs_fail(err, "out of memory for a chunk of %lld tokens (lower the memory budget or chunk_tokens)",
                       (long long)n);
    }
    rs_engine_set_band(e, 0, band);
    return 0;
}

/* Bytes one token occupies across the chunk buffers: two sets of read
 * buffers (one being routed, one being read ahead), the decisions, token
 * groups and each thread's softmax scratch. */
static size_t bytes_per_token(const engine *e)
{
    size_t L = (size_t)e->L, E = (size_t)e->E;
    size_t read = 1 + 4 + 4 + 8; /* valid, seq_of_token, token id, sequence window */
    if (e->needs & RS_NEEDS_LOGITS)
        read += L * E * (rs_engine_device_widens(e) ? rs_trace_logit_size(e->trace) /* as stored: the device widens */
                                                    : 4 + (rs_trace_logit_size(e->trace) == 2 ? 2 : 0)); /* float32 + the 16-bit words read */
    if (e->needs & RS_NEEDS_TOPK)
        read += L * (size_t)e->info->recorded_k * 8;
    if ((e->needs & (RS_NEEDS_OUTCOME | RS_WANTS_OUTCOME)) && (e->info->has_quality || e->info->has_cost))
        read += E * 8 + 4; /* quality and cost, a domain label per one-query sequence */
    size_t b = 2 * read + 8 * (size_t)RS_GROUP_COUNT + (size_t)e->num_by_groups; /* + breakdown masks */
    for (int r = 0; r < e->num_routers; r++)
        b += L * (size_t)e->routers[r].shape.kmax * (8 + (e->routers[r].capacity.enabled ? 1 : 0));
    if (e->needs & RS_NEEDS_PROBS)
        b += (size_t)e->threads * (E * 4 + 32);
    if (e->ref_probs)
        b += (size_t)e->threads * (E * 4 + 32);
    return b;
}

/* Tokens of a grown chunk (token groups) that fit the budget kept as
 * stored 16-bit logits, two chunks at a time, besides each thread's band
 * of about RS_MEMORY_BAND_BYTES of float32 logits (rs_engine_band_layers);
 * 0 where bands come from the file: float32 or device-widened logits, or
 * bands of a size the caller chose. */
static int64_t stored_whole_tokens(const engine *e)
{
    if (!(e->needs & RS_NEEDS_LOGITS) || rs_trace_logit_size(e->trace) != 2 || e->device ||
        e->opt->band_layers > 0 || !e->group_modes)
        return 0;
    size_t L = (size_t)e->L, E = (size_t)e->E, threads = (size_t)e->threads;
    size_t fixed = threads * RS_MEMORY_BAND_BYTES;
    if (e->budget <= fixed)
        return 0;
    /* bytes_per_token counts two chunks of float32 and 16-bit logits;
     * here only the 16-bit ones, and a band of a layer per thread */
    size_t per_token = bytes_per_token(e) - 2 * L * E * 4 + threads * E * 4;
    int64_t tokens = (int64_t)((e->budget - fixed) / per_token);
    return tokens > e->chunk_tokens ? tokens : 0;
}

void rs_engine_destroy(engine *e)
{
    if (!e)
        return;
    for (int m = 0; m < e->num_metric_slots; m++) {
        metric_slot *ms = &e->metrics[m];
        if (ms->acc)
            ms->spec->type->destroy(ms->acc);
        for (int b = 0; ms->blocks && b <= e->num_cuts; b++)
            if (ms->blocks[b])
                ms->spec->type->destroy(ms->blocks[b]);
        free(ms->blocks);
        free(ms->slice_acc);
    }
    for (int r = 0; r < e->num_routers; r++)
        if (e->routers[r].state)
            e->routers[r].spec->type->destroy(e->routers[r].state);
    free_chunk_buffers(e);
    rs_engine_device_free(e);
    for (int t = 0; e->scratch && t < e->threads; t++)
        rs_capacity_scratch_free(&e->scratch[t].capacity);
    for (int m = 0; m < RS_GROUP_COUNT; m++)
        rs_group_buffer_free(&e->groups[m]);
    free(e->scratch);
    free(e->metrics);
    free(e->by_groups);
    free(e->by_masks);
    for (int r = 0; e->counted && r < e->num_runs; r++)
        rs_counted_run_free(&e->counted[r]);
    free(e->counted);
    free(e->routers);
    rs_engine_destroy(e->paired);
    free(e->cuts_owned);
    free(e->items);
    free(e->runs);
    free(e->bias);
    free(e);
}

/* The runs, then (hidden != NULL) a router routed only as the reference,
 * with no results of its own. */
static int create_routers(engine *e, const rs_router_spec *runs, int nr, const rs_router_spec *hidden, rs_error *err)
{
    const rs_trace_info *info = e->info;
    const int total = nr + (hidden != NULL);
    e->routers = calloc((size_t)(total ? total : 1), sizeof *e->routers);
    RS_CHECK(e->routers, err, "out of memory");
    e->num_routers = total;
    e->num_runs = nr;
    e->sliceable = 1;
    rs_router_setup setup = {.trace = info, .batch_tokens = e->opt->batch_tokens};
    for (int r = 0; r < total; r++) {
        router_slot *rs = &e->routers[r];
        const rs_router_spec *spec = r < nr ? &runs[r] : hidden;
        rs->spec = spec;
        rs->shape.needs = spec->type->needs;
        rs->run = -1;
        if (spec->type->create(&rs->state, &rs->shape, &spec->params, &setup, err) != 0) {
            rs->state = NULL;
            /* a preset's parameters were not typed by the user: say which preset */
            RS_TRY(spec->preset ? rs_fail_context(err, "preset %s", spec->preset->name) : -1);
        }
        char who[300];
        snprintf(who, sizeof who, "%srouter %s", r < nr ? "" : "reference ", spec->label);
        RS_CHECK(rs->shape.kmax >= 1, err, "%s: reported kmax %d < 1", who, rs->shape.kmax);
        RS_TRY(check_needs(info, rs->shape.needs, who, err));
        rs->dec.kmax = rs->shape.kmax;
        e->needs |= rs->shape.needs;
        if (spec->type->flags & RS_ROUTER_TOKEN_CHOICE) {
            rs_capacity_from_params(&rs->capacity, &spec->params);
            rs->capacity.k = rs->shape.capacity_k;
        }
        if (rs->shape.group != RS_GROUP_NONE)
            e->group_modes |= 1u << rs->shape.group;
        if (rs->capacity.enabled)
            e->group_modes |= 1u << rs->capacity.group;
        if ((spec->type->flags & (RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED)) || rs->shape.group != RS_GROUP_NONE ||
            rs->capacity.enabled)
            e->sliceable = 0;

        if (r >= nr || !e->results)
            continue;
        char params[2048], full[2400];
        rs_params_format(&spec->params, rs_router_param_mask(spec->type, &spec->params), 0, ";", params,
                         sizeof params);
        rs_router_spec_string(spec, full, sizeof full);
        rs->run = rs_results_add_run(e->results, spec->label, info->path, spec->type->name, params, full);
        RS_CHECK(rs->run >= 0, err, "out of memory");
        e->results->runs[rs->run].entry = spec->entry;
    }
    return 0;
}

/* The counts families ask of each run (needs_counts), from a first pass
 * of the run's router alone; runs nobody asks about are not counted. */
static int count_runs(engine *e, const rs_metric_spec *metrics, int nm, rs_error *err)
{
    e->counted = calloc((size_t)e->num_runs + 1, sizeof *e->counted);
    RS_CHECK(e->counted, err, "out of memory");
    unsigned what = 0;
    for (int m = 0; m < nm; m++)
        if (metrics[m].type->needs_counts)
            what |= metrics[m].type->needs_counts(&metrics[m].params);
    if (!what)
        return 0;
    for (int r = 0; r < e->num_runs; r++)
        RS_TRY(rs_engine_count_run(e->trace, e->routers[r].spec, e->opt, what, &e->counted[r], err));
    return 0;
}

static int create_metrics(engine *e, const rs_metric_spec *metrics, int nm, rs_error *err)
{
    int nr = e->num_runs;
    const int per_run = 1 + e->num_by_groups; /* the whole run, then each group of a breakdown */
    e->metrics = calloc((size_t)nm * (size_t)nr * (size_t)per_run + 1, sizeof *e->metrics);
    RS_CHECK(e->metrics, err, "out of memory");
    for (int m = 0; m < nm; m++) {
        char who[160];
        snprintf(who, sizeof who, "metric %s", metrics[m].type->name);
        RS_TRY(check_needs(e->info, metrics[m].type->needs, who, err));
        e->needs |= metrics[m].type->needs;
        RS_CHECK(!(metrics[m].type->flags & RS_METRIC_REFERENCE) || e->ref_router >= 0 || e->paired, err,
                 "metric %s compares each run with a reference: name one (config key \"reference\", e.g. "
                 "\"reference\": \"topk:k=2\", or --reference SPEC)",
                 metrics[m].type->name);
    }
    const router_slot *ref = e->paired ? &e->paired->routers[0] : e->ref_router >= 0 ? &e->routers[e->ref_router] : NULL;
    RS_TRY(count_runs(e, metrics, nm, err));
    for (int m = 0; m < nm; m++) {
        unsigned long long keep = rs_metric_outputs_to_keep(metrics, m);
        for (int slot = 0; slot < nr * per_run; slot++) {
            const int r = slot / per_run;
            metric_slot *ms = &e->metrics[e->num_metric_slots];
            ms->spec = &metrics[m];
            ms->router = r;
            ms->by = slot % per_run - 1;
            ms->keep = keep;
            ms->setup = (rs_metric_setup){.trace = e->info,
                                          .batch_tokens = e->opt->batch_tokens,
                                          .kmax = e->routers[r].shape.kmax,
                                          .reference_trace = ref ? (e->paired ? e->paired->info : e->info) : NULL,
                                          .reference_kmax = ref ? ref->shape.kmax : 0,
                                          .scoring = e->routers[r].shape.scoring,
                                          .reference_scoring = ref ? ref->shape.scoring : RS_SCORING_SOFTMAX,
                                          .outputs = metrics[m].outputs,
                                          .counts = e->counted[r].loads ? &e->counted[r].counts : NULL};
            ms->slice_acc = calloc((size_t)e->max_slices, sizeof *ms->slice_acc);
            RS_CHECK(ms->slice_acc, err, "out of memory");
            if (e->opt->bootstrap > 0) {
                ms->blocks = calloc((size_t)e->num_cuts + 1, sizeof *ms->blocks);
                RS_CHECK(ms->blocks, err, "out of memory");
            }
            if (metrics[m].type->create(&ms->acc, &metrics[m].params, &ms->setup, err) != 0) {
                ms->acc = NULL;
                free(ms->slice_acc);
                return -1;
            }
            e->num_metric_slots++;
        }
    }
    return 0;
}

/* A configured run that is the reference: same label, or the same router
 * with the same parameters. -1 if none. */
static int matching_run(const rs_router_spec *runs, int nr, const rs_router_spec *ref)
{
    char want[2400], have[2400];
    rs_router_spec_string(ref, want, sizeof want);
    for (int r = 0; r < nr; r++) {
        rs_router_spec_string(&runs[r], have, sizeof have);
        if (strcmp(runs[r].label, ref->label) == 0 || strcmp(have, want) == 0)
            return r;
    }
    return -1;
}

/* The paired trace must hold the same tokens: same shape, same sequences,
 * the same token ids where both record them (trace-format.md, paired traces). */
static int check_paired_trace(rs_trace *a, rs_trace *b, rs_error *err)
{
    const rs_trace_info *x = rs_trace_get_info(a), *y = rs_trace_get_info(b);
    RS_CHECK(x->num_tokens == y->num_tokens && x->num_layers == y->num_layers && x->num_experts == y->num_experts &&
                 x->num_sequences == y->num_sequences,
             err,
             "reference trace %s: T = %lld, L = %d, E = %d, S = %lld differ from %s (T = %lld, L = %d, E = %d, S = "
             "%lld); a paired trace holds the same tokens",
             y->path, (long long)y->num_tokens, y->num_layers, y->num_experts, (long long)y->num_sequences, x->path,
             (long long)x->num_tokens, x->num_layers, x->num_experts, (long long)x->num_sequences);
    enum { BLOCK = 4096 };
    int64_t *ox = malloc(2 * BLOCK * sizeof *ox);
    RS_CHECK(ox, err, "out of memory");
    int64_t *oy = ox + BLOCK;
    int rc = 0;
    for (int64_t s0 = 0; s0 <= x->num_sequences && rc == 0; s0 += BLOCK) {
        int64_t n = x->num_sequences + 1 - s0 < BLOCK ? x->num_sequences + 1 - s0 : BLOCK;
        if ((rc = rs_trace_read_offsets(a, s0, n, ox, err)) != 0 || (rc = rs_trace_read_offsets(b, s0, n, oy, err)) != 0)
            break;
        for (int64_t i = 0; i < n && rc == 0; i++)
            if (ox[i] != oy[i])
                rc = rs_fail(err, "reference trace %s: /sequences/offsets[%lld] = %lld, but %lld in %s; a paired trace "
                             "holds the same sequences",
                             y->path, (long long)(s0 + i), (long long)oy[i], (long long)ox[i], x->path);
    }
    free(ox);
    if (rc != 0 || !x->has_token_ids || !y->has_token_ids)
        return rc;
    int32_t *ix = malloc(2 * BLOCK * sizeof *ix);
    RS_CHECK(ix, err, "out of memory");
    int32_t *iy = ix + BLOCK;
    for (int64_t t0 = 0; t0 < x->num_tokens && rc == 0; t0 += BLOCK) {
        int n = (int)(x->num_tokens - t0 < BLOCK ? x->num_tokens - t0 : BLOCK);
        if ((rc = rs_trace_read_token_ids(a, t0, n, ix, err)) != 0 || (rc = rs_trace_read_token_ids(b, t0, n, iy, err)) != 0)
            break;
        for (int i = 0; i < n && rc == 0; i++)
            if (ix[i] != iy[i])
                rc = rs_fail(err, "reference trace %s: /tokens/ids[%lld] = %d, but %d in %s; a paired trace holds the "
                             "same tokens",
                             y->path, (long long)(t0 + i), iy[i], ix[i], x->path);
    }
    free(ix);
    return rc;
}

static int setup(engine *e, const rs_router_spec *routers, int nr, const rs_metric_spec *metrics, int nm,
                 rs_error *err);

/* The engine that routes the paired reference trace in lock step: one
 * hidden router, no metrics; it also reads the logits when reference
 * metrics want the reference's softmax. */
static int create_paired(engine *e, const rs_metric_spec *metrics, int nm, rs_error *err)
{
    rs_trace *trace = e->opt->reference_trace;
    const rs_trace_info *info = rs_trace_get_info(trace);
    RS_TRY(check_paired_trace(e->trace, trace, err));
    for (int m = 0; m < nm; m++) {
        const rs_metric_type *t = metrics[m].type;
        if (!(t->flags & RS_METRIC_REFERENCE))
            continue;
        if (t->needs & RS_NEEDS_PROBS) {
            char who[160];
            snprintf(who, sizeof who, "metric %s (on the reference trace)", t->name);
            RS_TRY(check_needs(info, RS_NEEDS_LOGITS, who, err));
        }
        if ((t->needs & (RS_NEEDS_PROBS | RS_WANTS_PROBS)) && info->has_logits)
            e->ref_probs = 1;
    }
    e->paired_options = *e->opt;
    e->paired_options.reference = NULL;
    e->paired_options.reference_trace = NULL;
    e->paired_options.progress = 0;
    e->paired_options.breakdown = 0;
    e->paired_options.device = RS_DEVICE_CPU; /* the reference of a paired trace routes on the CPU */
    engine *p = calloc(1, sizeof *p);
    RS_CHECK(p, err, "out of memory");
    e->paired = p;
    p->trace = trace;
    p->info = info;
    p->opt = &e->paired_options;
    p->extra_needs = e->ref_probs ? RS_NEEDS_LOGITS : 0;
    /* no results: its router is routed, never reported */
    return setup(p, e->opt->reference, 1, NULL, 0, err);
}

static int setup(engine *e, const rs_router_spec *routers, int nr, const rs_metric_spec *metrics, int nm,
                 rs_error *err)
{
    const rs_trace_info *info = e->info;
    e->L = info->num_layers;
    e->E = info->num_experts;
    e->threads = e->opt->threads > 0 ? e->opt->threads : omp_get_max_threads();
    RS_CHECK(e->opt->batch_tokens >= 1, err, "batch_tokens must be >= 1");
    /* the reference on this trace: a run that matches it, else a hidden router */
    const rs_router_spec *hidden = NULL;
    e->ref_router = -1;
    if (e->opt->reference && !e->opt->reference_trace) {
        e->ref_router = matching_run(routers, nr, e->opt->reference);
        if (e->ref_router < 0) {
            hidden = e->opt->reference;
            e->ref_router = nr;
        }
    }
    RS_TRY(create_routers(e, routers, nr, hidden, err));
    if (e->opt->bootstrap > 0)
        RS_TRY(rs_engine_bootstrap_setup(e, err));
    if (e->opt->reference && e->opt->reference_trace) {
        RS_TRY(create_paired(e, metrics, nm, err));
        e->paired->cuts = e->cuts; /* the same chunk boundaries */
        e->paired->num_cuts = e->num_cuts;
    }
    for (int m = 0; m < nm; m++)
        if (metrics[m].type->flags & RS_METRIC_SEQUENTIAL)
            e->sliceable = 0;
    /* Few layers and stateless routers: cut tokens into slices too, so every
     * thread has work; slice accumulators merge back exactly. */
    e->max_slices = 1;
    if (e->sliceable && e->L < 2 * e->threads)
        e->max_slices = (2 * e->threads + e->L - 1) / e->L;
    if (nm > 0)
        RS_TRY(rs_engine_breakdown_setup(e, err));
    RS_TRY(create_metrics(e, metrics, nm, err));
    if (e->opt->bootstrap > 0)
        RS_TRY(rs_engine_bootstrap_check(e, err));
    if ((e->needs & RS_WANTS_TOKEN_IDS) && info->has_token_ids)
        e->needs |= RS_NEEDS_TOKEN_IDS;
    if ((e->needs & RS_WANTS_PROBS) && info->has_logits)
        e->needs |= RS_NEEDS_PROBS;
    e->needs |= e->extra_needs;
    if (e->needs & RS_NEEDS_PROBS)
        e->needs |= RS_NEEDS_LOGITS;
    if (e->needs & RS_NEEDS_BIAS) {
        e->bias = malloc((size_t)e->L * (size_t)e->E * sizeof *e->bias);
        RS_CHECK(e->bias, err, "out of memory");
        RS_TRY(rs_trace_read_bias(e->trace, e->bias, err));
    }

    e->scratch = calloc((size_t)e->threads, sizeof *e->scratch);
    RS_CHECK(e->scratch, err, "out of memory");
    e->items = malloc((size_t)e->L * (size_t)e->max_slices * sizeof *e->items);
    RS_CHECK(e->items, err, "out of memory");
    e->runs = calloc((size_t)e->threads, sizeof *e->runs);
    RS_CHECK(e->runs, err, "out of memory");

    /* the device path (before sizing chunks: it decides whether the host widens) */
    if (e->opt->device == RS_DEVICE_GPU && !e->opt->measure_only)
        RS_TRY(rs_engine_device_setup(e, err));
    /* Chunk size: what the memory budget allows, in whole HDF5 chunks when possible. */
    int64_t chunk = e->opt->chunk_tokens;
    if (chunk <= 0) {
        size_t budget = e->opt->memory_budget ? e->opt->memory_budget : RS_DEFAULT_MEMORY_BUDGET;
        chunk = (int64_t)(budget / bytes_per_token(e));
        int64_t cache_tokens = (int64_t)(CACHE_CHUNK_BYTES / ((size_t)e->L * (size_t)e->E * sizeof(float)));
        /* a device wants large chunks (each one a kernel launch per router and
         * metric, and a transfer); the host's cache does not limit it */
        if (chunk > cache_tokens && !e->device)
            chunk = cache_tokens > 0 ? cache_tokens : 1;
        int64_t file_chunk = rs_trace_logits_chunk_tokens(e->trace);
        if (file_chunk > 0 && chunk > file_chunk)
            chunk -= chunk % file_chunk;
    }
    e->chunk_tokens = chunk < 1 ? 1 : (chunk > RS_MAX_CHUNK_TOKENS ? RS_MAX_CHUNK_TOKENS : chunk);
    /* Chunks that grow past what the budget holds whole (token groups) go in layer bands. */
    e->budget = e->opt->memory_budget ? e->opt->memory_budget : RS_DEFAULT_MEMORY_BUDGET;
    e->loaded_band = -1;
    int64_t whole = (int64_t)(e->budget / bytes_per_token(e));
    e->whole_tokens = e->opt->band_layers > 0 || whole < e->chunk_tokens ? e->chunk_tokens : whole;
    e->stored_whole_tokens = stored_whole_tokens(e);
    if (e->paired) { /* the same chunk boundaries on both traces, and the same bands, read from the files */
        engine *p = e->paired;
        e->group_modes = p->group_modes = e->group_modes | p->group_modes;
        e->chunk_tokens = p->chunk_tokens = e->chunk_tokens < p->chunk_tokens ? e->chunk_tokens : p->chunk_tokens;
        e->whole_tokens = p->whole_tokens = e->whole_tokens < p->whole_tokens ? e->whole_tokens : p->whole_tokens;
        e->stored_whole_tokens = p->stored_whole_tokens = 0;
    }
    return rs_engine_measure_metrics(e, err);
}

int rs_engine_create(rs_engine **out, rs_trace *trace, const rs_router_spec *routers, int num_routers,
                     const rs_metric_spec *metrics, int num_metrics, const rs_engine_options *options,
                     rs_results *results, rs_error *err)
{
    *out = NULL;
    engine *e = calloc(1, sizeof *e);
    RS_CHECK(e, err, "out of memory");
    e->trace = trace;
    e->info = rs_trace_get_info(trace);
    e->opt = options;
    e->results = results;
    if (setup(e, routers, num_routers, metrics, num_metrics, err) != 0) {
        rs_engine_destroy(e);
        return -1;
    }
    *out = e;
    return 0;
}

int rs_engine_router_kmax(const rs_engine *e, int router) { return e->routers[router].shape.kmax; }

int rs_engine_router_run(const rs_engine *e, int router) { return e->routers[router].run; }

int64_t rs_engine_start_token(const rs_engine *e) { return e->start; }
