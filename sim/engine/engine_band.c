/* Layer bands. A chunk must hold whole token groups (a batch of
 * batch_tokens tokens, a sequence), so it can outgrow the memory budget: a
 * DeepSeek-V3 batch of 4096 tokens is 4096 x 58 x 256 float32 logits, 243
 * MiB. Routers decide, and metrics measure, one layer at a time, so such a
 * chunk is read and routed in bands of consecutive layers, as many as the
 * budget holds. A band view is a chunk whose rows hold only the band's
 * layers (c->L = the band's layer count; layer indices stay the model's,
 * see band_storage). Whether a token is valid depends on all its layers,
 * so the bands are read once to check the logits and again to route them
 * (the band checked last is routed first, without a second read). Results
 * do not depend on the bands: routers and metrics work layer by layer, and
 * cross-layer metrics get every layer's decisions after the last band. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/engine/engine_internal.h"
#include "sim/engine/groups.h"
#include "sim/engine/kernels.h"

typedef struct rs_engine engine;

/* Reads of about this many bytes copy out of the page cache fastest (see
 * widen_and_check in engine_chunk.c). */
#define READ_BYTES ((size_t)128 << 10)

static size_t decision_bytes(const router_slot *rs)
{
    return (size_t)rs->shape.kmax * (8 + (rs->capacity.enabled ? 1 : 0));
}

/* Bytes per (token, layer) of a band: its logits as read and widened, its
 * recorded top-k and every router's decisions. */
static size_t band_bytes(const engine *e)
{
    size_t b = 0;
    if (e->needs & RS_NEEDS_LOGITS)
        b += (size_t)e->E * (4 + (rs_trace_logit_size(e->trace) == 2 ? 2 : 0));
    if (e->needs & RS_NEEDS_TOPK)
        b += (size_t)e->info->recorded_k * 8;
    for (int r = 0; r < e->num_routers; r++)
        b += decision_bytes(&e->routers[r]);
    return b;
}

/* Softmax scratch bytes per token of one thread. */
static size_t scratch_bytes(const engine *e)
{
    return (((e->needs & RS_NEEDS_PROBS) ? 1u : 0u) + (e->ref_probs ? 1u : 0u)) * ((size_t)e->E * 4 + 16);
}

/* Bytes per token of a banded chunk besides its bands: the loader's
 * per-token arrays (this chunk's and the next one's), token groups, the
 * softmax scratch of `threads` threads and, when kept, every layer's
 * decisions. */
static size_t token_bytes(const engine *e, int threads)
{
    size_t b = 2 * (1 + 4 + 4 + 1 + 8) + 8 * (size_t)RS_GROUP_COUNT;
    if ((e->needs & (RS_NEEDS_OUTCOME | RS_WANTS_OUTCOME)) && (e->info->has_quality || e->info->has_cost))
        b += 2 * (size_t)e->E * 8;
    b += (size_t)threads * scratch_bytes(e);
    for (int r = 0; e->needs_full && r < e->num_routers; r++)
        b += (size_t)e->L * decision_bytes(&e->routers[r]);
    return b;
}

/* The same for an engine and its paired one, which band in lock step. */
static size_t pair_band_bytes(const engine *e) { return band_bytes(e) + (e->paired ? band_bytes(e->paired) : 0); }

static size_t pair_token_bytes(const engine *e, int threads)
{
    return token_bytes(e, threads) + (e->paired ? token_bytes(e->paired, threads) : 0);
}

static const char *groups_in_use(const engine *e, char *buf, size_t size)
{
    const char *what = (e->group_modes & (1u << RS_GROUP_STEP))    ? "batches of decode steps"
                       : (e->group_modes & (1u << RS_GROUP_BATCH)) ? "batches"
                                                                    : "sequences";
    if (e->group_modes & ((1u << RS_GROUP_STEP) | (1u << RS_GROUP_BATCH)))
        snprintf(buf, size, "whole %s of batch_tokens=%d", what, e->opt->batch_tokens);
    else
        snprintf(buf, size, "whole %s", what);
    return buf;
}

int rs_engine_plan_bands(engine *e, int decisions_out, rs_error *err)
{
    int cross_layer = 0;
    for (int m = 0; m < e->num_metric_slots; m++)
        cross_layer |= e->metrics[m].spec->type->update_chunk != NULL;
    e->needs_full = decisions_out || cross_layer;
    e->band_threads = e->threads;
    if (e->paired) {
        e->paired->needs_full = cross_layer; /* the reference's decisions, for cross-layer reference metrics */
        e->paired->band_threads = e->threads;
    }
    const int64_t whole = e->stored_whole_tokens > 0 ? e->chunk_tokens : e->whole_tokens;
    if (!e->group_modes || whole >= e->info->num_tokens)
        return 0; /* no chunk grows past whole */
    int64_t largest = 0;
    rs_loader_config lc = rs_engine_loader_config(e);
    RS_TRY(rs_chunk_loader_largest(&lc, &largest, err));
    if (largest <= whole)
        return 0;
    /* at most half the budget for the threads' softmax scratch; results do not depend on threads */
    size_t scratch = (size_t)largest * (scratch_bytes(e) + (e->paired ? scratch_bytes(e->paired) : 0));
    int threads = e->threads;
    if (scratch > 0 && (size_t)threads * scratch > e->budget / 2) {
        size_t fit = e->budget / 2 / scratch;
        threads = fit < 1 ? 1 : (int)fit;
    }
    e->band_threads = threads;
    if (e->paired)
        e->paired->band_threads = threads;
    if (e->opt->band_layers > 0 || largest <= e->stored_whole_tokens)
        return 0; /* bands of a given size (the caller's choice), or every grown chunk widened from memory */
    double need = (double)largest * (double)(pair_token_bytes(e, 1) + pair_band_bytes(e));
    if (need <= (double)e->budget)
        return 0;
    char groups[128];
    const int batched = (e->group_modes & ((1u << RS_GROUP_STEP) | (1u << RS_GROUP_BATCH))) != 0;
    return rs_fail(err,
                   "%s: routing needs at least %.0f MiB for a chunk of %lld tokens (%s) at %d layers%s, above the "
                   "memory budget of %.0f MiB; raise --memory-mb (config memory_mb)%s",
                   e->info->path, ceil(need / (1 << 20)), (long long)largest, groups_in_use(e, groups, sizeof groups),
                   e->L,
                   e->needs_full ? ", keeping every layer's decisions for cross-layer metrics or the decisions file"
                                 : "",
                   floor((double)e->budget / (1 << 20)), batched ? " or lower batch_tokens" : "");
}

int rs_engine_band_layers(const engine *e, int64_t n, int in_memory)
{
    int band = 1;
    if (e->opt->band_layers > 0) {
        band = e->opt->band_layers;
    } else if (in_memory) { /* RS_MEMORY_BAND_BYTES of layers per thread, or one layer */
        size_t layer = (size_t)n * (size_t)e->E * sizeof(float), per_thread = RS_MEMORY_BAND_BYTES / layer;
        band = e->band_threads * (per_thread < 1 ? 1 : (int)(per_thread < (size_t)e->L ? per_thread : (size_t)e->L));
    } else {
        size_t fixed = (size_t)n * pair_token_bytes(e, e->band_threads), per = (size_t)n * pair_band_bytes(e);
        if (per == 0)
            band = e->L;
        else if (e->budget > fixed + per)
            band = (int)((e->budget - fixed) / per < (size_t)e->L ? (e->budget - fixed) / per : (size_t)e->L);
    }
    band = band < 1 ? 1 : (band > e->L ? e->L : band);
    int bands = (e->L + band - 1) / band; /* as even as the count allows */
    return (e->L + bands - 1) / bands;
}

/* Reads layers [first, first + band) of chunk b into the band buffers
 * (widening 16-bit logits), in parallel over tokens. With valid != NULL,
 * also clears valid[t] for a token with a non-finite value there and
 * lowers *first_bad to the lowest index of one in the chunk's [n, L, E]
 * logits (*first_nan: that one is a NaN). */
static int read_band(engine *e, rs_loaded_chunk *b, int first, int band, uint8_t *valid, int64_t *first_bad,
                     int *first_nan, rs_error *err)
{
    const size_t L = (size_t)e->L, E = (size_t)e->E, per_token = (size_t)band * E;
    const int n = b->n;
    e->loaded_band = -1;
    if (e->needs & RS_NEEDS_LOGITS) {
        float *logits = (float *)e->band_logits.data + (L - (size_t)band) * E; /* the band's rows (band_storage) */
        uint16_t *stored = rs_trace_logit_size(e->trace) == 2 ? e->band_stored : NULL;
        const size_t elem = stored ? sizeof *stored : sizeof *logits;
        char *dst = stored ? (char *)stored : (char *)logits;
        if (b->stored_whole) { /* the chunk's 16-bit rows are in memory: widen the band's part of each */
            stored = b->stored + (size_t)first * E;
            dst = NULL;
        } else if (b->num_extents == 0)
            RS_TRY(rs_trace_read_logits_band_stored(e->trace, b->t0, n, first, band, dst, err));
        const size_t token_bytes = per_token * elem;
        const int per_read = token_bytes >= READ_BYTES ? 1 : (int)(READ_BYTES / token_bytes);
        const int reads = (n + per_read - 1) / per_read;
        int64_t bad_at = INT64_MAX, read_failed_at = INT64_MAX;
        rs_error read_err = {{0}};
#pragma omp parallel for schedule(static) num_threads(e->threads) reduction(min : bad_at, read_failed_at)
        for (int r = 0; r < reads; r++) {
            const int from = r * per_read, count = n - from < per_read ? n - from : per_read;
            if (b->num_extents > 0 && !b->stored_whole) {
                rs_error my_err = {{0}};
                if (rs_trace_read_logit_band_rows(e->trace, b->extents, b->num_extents, b->t0 + from, count, first,
                                                  band, dst + (size_t)from * token_bytes, &my_err) != 0) {
#pragma omp critical(band_read_error)
                    if (b->t0 + from < read_failed_at || !read_err.msg[0])
                        read_err = my_err;
                    read_failed_at = b->t0 + from;
                    continue;
                }
            }
            const size_t stored_stride = b->stored_whole ? L * E : per_token;
            for (int t = from; t < from + count; t++) {
                float *row = logits + (size_t)t * per_token;
                if (b->stored_whole && t + 1 < from + count) /* the next token's part lies a whole row on */
                    for (size_t at = 0; at < per_token; at += 32)
                        __builtin_prefetch(stored + (size_t)(t + 1) * stored_stride + at);
                int suspect = stored
                                  ? rs_trace_widen_logits(e->trace, stored + (size_t)t * stored_stride, row, per_token)
                                  : valid && rs_any_nonfinite(row, per_token);
                int64_t bad = suspect && valid ? rs_first_nonfinite(row, per_token) : -1;
                if (bad >= 0) {
                    valid[t] = 0;
                    int64_t flat = (int64_t)t * (int64_t)(L * E) + (int64_t)first * (int64_t)E + bad;
                    bad_at = flat < bad_at ? flat : bad_at;
                }
            }
        }
        if (read_failed_at != INT64_MAX) {
            *err = read_err;
            return -1;
        }
        if (valid && bad_at < *first_bad) {
            int64_t t = bad_at / (int64_t)(L * E), in_band = bad_at % (int64_t)(L * E) - (int64_t)first * (int64_t)E;
            float x = logits[(size_t)t * per_token + (size_t)in_band];
            *first_bad = bad_at;
            *first_nan = x != x;
        }
    }
    if (e->needs & RS_NEEDS_TOPK) {
        const size_t K = (size_t)e->info->recorded_k;
        int32_t *ids = (int32_t *)e->band_ids.data + (L - (size_t)band) * K;
        float *weights = e->band_weights.data ? (float *)e->band_weights.data + (L - (size_t)band) * K : NULL;
        RS_TRY(rs_trace_read_topk_band(e->trace, b->t0, n, first, band, ids, weights, err));
    }
    e->loaded_band = first;
    return 0;
}

void rs_engine_widen_band_layer(const engine *e, const rs_chunk *c, int l, int offset, int n)
{
    const size_t E = (size_t)e->E;
    const uint16_t *src = e->band_source + ((size_t)offset * (size_t)e->L + (size_t)l) * E;
    /* validity was checked on the stored words for the whole chunk */
    if (n > 0)
        rs_trace_widen_logit_rows(e->trace, src, (size_t)e->L * E, (float *)rs_chunk_logits(c, offset, l),
                                  (size_t)c->L * E, n, E);
}

int rs_engine_check_bands(engine *e, rs_loaded_chunk *b, int band, int stored_finite, int64_t *skipped,
                          int *any_invalid, rs_error *err)
{
    const int L = e->L;
    int64_t first_bad = INT64_MAX;
    int first_nan = 0;
    memset(b->valid, 1, (size_t)b->n);
    if (stored_finite) {
        e->loaded_band = -1;
        *any_invalid = 0;
        return 0; /* otherwise the bands find the first bad value, as from the file */
    }
    for (int first = 0; first < L; first += band)
        RS_TRY(read_band(e, b, first, L - first < band ? L - first : band, b->valid, &first_bad, &first_nan, err));
    int64_t bad_tokens = 0;
    for (int t = 0; t < b->n; t++)
        bad_tokens += !b->valid[t];
    *any_invalid = bad_tokens > 0;
    if (bad_tokens == 0)
        return 0;
    if (!e->opt->skip_nonfinite) {
        const int64_t per_token = (int64_t)L * e->E;
        int64_t t = first_bad / per_token;
        int l = (int)(first_bad % per_token / e->E), x = (int)(first_bad % e->E);
        return rs_engine_nonfinite_error(e, b->t0 + t, l, x, first_nan, err);
    }
    *skipped += bad_tokens;
    return 0;
}

/* The view of layers [first, first + band) of chunk c. */
static rs_chunk band_view(const engine *e, const rs_chunk *c, int first, int band)
{
    rs_chunk v = *c;
    v.L = band;
    if (e->needs & RS_NEEDS_LOGITS)
        v.logits = rs_band_base(&e->band_logits, first, band, e->L, (size_t)e->E, sizeof(float));
    if (e->needs & RS_NEEDS_TOPK) {
        const size_t K = (size_t)e->info->recorded_k;
        v.recorded_ids = rs_band_base(&e->band_ids, first, band, e->L, K, sizeof(int32_t));
        v.recorded_weights = rs_band_base(&e->band_weights, first, band, e->L, K, sizeof(float));
    }
    return v;
}

/* Copies the band's decisions into every router's full [n, L, kmax] rows. */
static void keep_band(engine *e, int n, int first, int band)
{
    for (int r = 0; r < e->num_routers; r++) {
        router_slot *rs = &e->routers[r];
        if (!rs->full.ids)
            continue;
        const size_t k = (size_t)rs->shape.kmax, L = (size_t)e->L, cells = (size_t)band * k;
#pragma omp parallel for schedule(static) num_threads(e->threads)
        for (int t = 0; t < n; t++) {
            size_t to = ((size_t)t * L + (size_t)first) * k, from = ((size_t)t * (size_t)band + (size_t)first) * k;
            memcpy(rs->full.ids + to, rs->dec.ids + from, cells * sizeof *rs->full.ids);
            memcpy(rs->full.weights + to, rs->dec.weights + from, cells * sizeof *rs->full.weights);
            if (rs->full.dropped && rs->dec.dropped)
                memcpy(rs->full.dropped + to, rs->dec.dropped + from, cells);
        }
    }
}

/* After the last band: the chunk's decisions are the full rows. */
static void use_full(engine *e)
{
    for (int r = 0; e->needs_full && r < e->num_routers; r++)
        if (e->routers[r].full.ids)
            e->routers[r].dec = e->routers[r].full;
}

int rs_engine_route_bands(engine *e, rs_loaded_chunk *b, const rs_chunk *c, rs_loaded_chunk *pb, const rs_chunk *pc,
                          int band, rs_error *err)
{
    engine *p = e->paired;
    const int L = e->L, count = (L + band - 1) / band;
    /* the band checked last is still loaded: route it first */
    const int last = e->loaded_band >= 0 ? e->loaded_band / band : -1;
    int slices = 1, paired_slices = 1;
    int rc = rs_engine_chunk_begin(e, c, &slices, err);
    if (rc == 0 && p)
        rc = rs_engine_chunk_begin(p, pc, &paired_slices, err);
    /* a clean chunk kept as stored: each work item widens its own layer (no
     * recorded top-k to read band by band, no band left loaded by the check) */
    e->band_source = b->stored_whole && last < 0 && !(e->needs & RS_NEEDS_TOPK) ? b->stored : NULL;
    /* the next chunk is read beside the first band's layers only when no
     * band reads the file (the trace is read by one thread at a time) */
    rs_chunk_loader *ahead = e->band_source ? e->read_ahead : NULL;
    for (int i = 0; i < count && rc == 0; i++) {
        int index = last < 0 ? i : (i == 0 ? last : (i - 1 < last ? i - 1 : i));
        int first = index * band, size = L - first < band ? L - first : band;
        if (first != e->loaded_band && !e->band_source)
            rc = read_band(e, b, first, size, NULL, NULL, NULL, err);
        if (rc == 0 && p && first != p->loaded_band)
            rc = read_band(p, pb, first, size, NULL, NULL, NULL, err);
        if (rc != 0)
            break;
        rs_engine_set_band(e, first, size);
        rs_chunk view = band_view(e, c, first, size), paired_view;
        if (p) {
            rs_engine_set_band(p, first, size);
            paired_view = band_view(p, pc, first, size);
            rc = rs_engine_process_layers(p, &paired_view, NULL, first, paired_slices, p->band_threads, err);
        }
        e->read_ahead = i == 0 ? ahead : NULL;
        if (rc == 0)
            rc = rs_engine_process_layers(e, &view, p ? &paired_view : NULL, first, slices, e->band_threads, err);
        e->read_ahead = NULL;
        if (rc == 0) {
            keep_band(e, c->n, first, size);
            if (p)
                keep_band(p, c->n, first, size);
        }
    }
    e->band_source = NULL;
    if (rc == 0) {
        use_full(e);
        if (p)
            use_full(p);
    }
    if (p)
        rc = rs_engine_chunk_end(p, pc, NULL, paired_slices, rc, err);
    return rs_engine_chunk_end(e, c, pc, slices, rc, err);
}
