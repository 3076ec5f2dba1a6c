/* One chunk: the view routers and metrics see, and the parallel work. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "sim/engine/engine_device.h"
#include "sim/engine/engine_internal.h"
#include "sim/engine/kernels.h"

typedef struct rs_engine engine;

enum { MIN_SLICE_TOKENS = 64 };

#define READ_BYTES ((size_t)128 << 10)

/* What widen_and_check does with a chunk's rows after reading them. */
typedef enum {
    ROWS_AS_STORED,  /* nothing: the device widens and checks them (engine_device.c) */
    ROWS_CHECKED,    /* checks the 16-bit words; each work item widens its layer (rs_engine_widen_band_layer) */
    ROWS_WIDENED     /* widens them all and checks the floats */
} rows_step;

/* Reads a chunk's logits where the loader only located them (num_extents
 * > 0, read = 1), in parallel over tokens, then takes the step asked for.
 * ROWS_WIDENED reports the first bad value (in token order), or marks its
 * token invalid when skipping was asked for; ROWS_CHECKED sets *stored_bad
 * when any stored word is NaN or infinite, and widens nothing. */
static int widen_and_check(engine *e, rs_loaded_chunk *b, int read, rows_step step, int64_t *skipped,
                           int *any_invalid, int *stored_bad, rs_error *err)
{
    const int widen = step == ROWS_WIDENED, check_stored = step == ROWS_CHECKED;
    const size_t per_token = (size_t)e->L * (size_t)e->E;
    const int n = b->n;
    /* Tokens per read call: reads of 64 KiB and more copy out of the page
     * cache about 40% faster than one token's row (30 KiB for DeepSeek-V3),
     * and 128 KiB still sits in the L2 cache for the widening that follows. */
    const size_t token_bytes = per_token * (b->stored ? sizeof *b->stored : sizeof *b->logits);
    const int per_read = token_bytes >= READ_BYTES ? 1 : (int)(READ_BYTES / token_bytes);
    /* as many reads for each thread, of as many tokens as can be */
    const int threads = e->threads < n ? e->threads : (n > 0 ? n : 1);
    const int rounds = (n + per_read * threads - 1) / (per_read * threads), reads = rounds * threads;
    int64_t first_bad = INT64_MAX, bad_tokens = 0, read_failed_at = INT64_MAX;
    int bad_words = 0;
    rs_error read_err = {{0}};
#pragma omp parallel for schedule(static) num_threads(threads) reduction(min : first_bad, read_failed_at) \
    reduction(+ : bad_tokens) reduction(| : bad_words)
    for (int r = 0; r < reads; r++) {
        const int from = (int)((int64_t)n * r / reads), count = (int)((int64_t)n * (r + 1) / reads) - from;
        if (read && b->num_extents > 0) {
            void *dst = b->stored ? (void *)(b->stored + (size_t)from * per_token)
                                  : (void *)(b->logits + (size_t)from * per_token);
            rs_error my_err = {{0}};
            if (rs_trace_read_logit_rows(e->trace, b->extents, b->num_extents, b->t0 + from, count, dst, &my_err) !=
                0) {
#pragma omp critical(read_error)
                if (b->t0 + from < read_failed_at || !read_err.msg[0])
                    read_err = my_err;
                read_failed_at = b->t0 + from;
                continue;
            }
        }
        if (check_stored) /* while the words just read are in cache */
            bad_words |= rs_trace_stored_any_nonfinite(e->trace, b->stored + (size_t)from * per_token,
                                                       (size_t)count * per_token);
        for (int t = from; t < from + count && widen; t++) {
            float *row = b->logits + (size_t)t * per_token;
            int suspect = b->stored
                              ? rs_trace_widen_logits(e->trace, b->stored + (size_t)t * per_token, row, per_token)
                              : rs_any_nonfinite(row, per_token);
            int64_t bad = suspect ? rs_first_nonfinite(row, per_token) : -1;
            b->valid[t] = bad < 0;
            if (bad >= 0) {
                bad_tokens++;
                int64_t flat = (int64_t)t * (int64_t)per_token + bad;
                first_bad = flat < first_bad ? flat : first_bad;
            }
        }
    }
    if (read_failed_at != INT64_MAX) {
        *err = read_err;
        return -1;
    }
    if (check_stored)
        *stored_bad = bad_words;
    if (!widen)
        return 0;
    *any_invalid = bad_tokens > 0;
    if (bad_tokens == 0)
        return 0;
    if (!e->opt->skip_nonfinite) {
        int64_t t = first_bad / (int64_t)per_token;
        int l = (int)(first_bad % (int64_t)per_token / e->E), x = (int)(first_bad % e->E);
        return rs_engine_nonfinite_error(e, b->t0 + t, l, x, b->logits[first_bad] != b->logits[first_bad], err);
    }
    *skipped += bad_tokens;
    return 0;
}

int rs_engine_nonfinite_error(const engine *e, int64_t token, int layer, int expert, int nan, rs_error *err)
{
    return rs_fail(err,
                   "%s: /router/logits: %s value at token %lld, layer %d, expert %d (pass --skip-nonfinite "
                   "to skip such tokens)",
                   e->info->path, nan ? "NaN" : "infinite", (long long)token, layer, expert);
}

/* The rs_chunk routers and metrics see for a loaded chunk. */
int rs_engine_chunk_view(engine *e, rs_loaded_chunk *b, rs_chunk *c, int64_t *skipped, rs_error *err)
{
    memset(c, 0, sizeof *c);
    e->chunk_stored = NULL;
    e->band_source = NULL;
    c->t0 = b->t0;
    c->n = b->n;
    c->L = e->L;
    c->E = e->E;
    c->bias = e->bias;
    c->recorded_k = e->info->recorded_k;
    c->first_seq = b->window.first_seq;
    c->num_seq = b->window.num_seq;
    c->seq_offsets = b->window.offsets;
    c->seq_of_token = b->seq_of_token;
    c->token_ids = b->token_ids;
    c->phase = b->phase;
    c->recorded_ids = b->recorded_ids;
    c->recorded_weights = b->recorded_weights;
    c->batch_tokens = e->opt->batch_tokens;
    c->domain = b->domain;
    c->quality = b->quality;
    c->cost = b->cost;
    if (b->banded) { /* logits and recorded top-k come band by band */
        c->recorded_ids = NULL;
        c->recorded_weights = NULL;
        if (e->needs & RS_NEEDS_LOGITS) {
            int any_invalid = 0, stored_bad = 1;
            /* its stored rows: read whole where only located, and checked in
             * one pass in file order (bands would jump from token to token) */
            if (b->stored_whole)
                RS_TRY(widen_and_check(e, b, 1, ROWS_CHECKED, skipped, &any_invalid, &stored_bad, err));
            RS_TRY(rs_engine_check_bands(e, b, e->band, !stored_bad, skipped, &any_invalid, err));
            c->valid = any_invalid ? b->valid : NULL;
        }
    } else if (e->needs & RS_NEEDS_LOGITS) {
        int any_invalid = 0, stored_bad = 0;
        const int on_device = rs_engine_device_widens(e);
        if (b->stored && !e->device) {
            /* Each work item widens its own layer's rows just before routing
             * them, so the float32 rows are written and read by one thread,
             * in its cache. A chunk with a bad word is widened whole first,
             * to report or skip its tokens. */
            RS_TRY(widen_and_check(e, b, 1, ROWS_CHECKED, skipped, &any_invalid, &stored_bad, err));
            if (stored_bad)
                RS_TRY(widen_and_check(e, b, 0, ROWS_WIDENED, skipped, &any_invalid, NULL, err));
            else
                e->band_source = b->stored;
        } else {
            RS_TRY(widen_and_check(e, b, 1, on_device ? ROWS_AS_STORED : ROWS_WIDENED, skipped, &any_invalid, NULL,
                                   err));
        }
        if (on_device)
            RS_TRY(rs_engine_device_check(e, b, skipped, &any_invalid, err));
        c->logits = b->logits; /* NULL when 16-bit rows stay as stored for the device */
        e->chunk_stored = b->stored; /* half the bytes for the device path */
        c->valid = any_invalid ? b->valid : NULL;
    }
    for (int m = RS_GROUP_SEQUENCE; m < RS_GROUP_COUNT; m++) {
        if (!(e->group_modes & (1u << m)))
            continue;
        RS_TRY(rs_groups_build(&e->groups[m], c, (rs_group)m, e->opt->batch_tokens, err));
        c->groups[m] = &e->groups[m].groups;
    }
    return rs_engine_breakdown_masks(e, c, err);
}

/* A view of tokens [off, off+count) of chunk c. */
static rs_chunk sub_chunk(const rs_chunk *c, int off, int count)
{
    rs_chunk s = *c;
    size_t rows = (size_t)off * (size_t)c->L;
    s.t0 = c->t0 + off;
    s.n = count;
    if (c->logits)
        s.logits = c->logits + rows * (size_t)c->E;
    if (c->valid)
        s.valid = c->valid + off;
    if (c->token_ids)
        s.token_ids = c->token_ids + off;
    if (c->phase)
        s.phase = c->phase + off;
    s.seq_of_token = c->seq_of_token + off;
    if (c->recorded_ids)
        s.recorded_ids = c->recorded_ids + rows * (size_t)c->recorded_k;
    if (c->recorded_weights)
        s.recorded_weights = c->recorded_weights + rows * (size_t)c->recorded_k;
    if (c->quality)
        s.quality = c->quality + (size_t)off * (size_t)c->E;
    if (c->cost)
        s.cost = c->cost + (size_t)off * (size_t)c->E;
    if (off != 0 || count != c->n) /* groups describe whole chunks */
        for (int m = 0; m < RS_GROUP_COUNT; m++)
            s.groups[m] = NULL;
    return s;
}

static rs_decisions sub_decisions(const rs_decisions *d, int off, int L)
{
    rs_decisions s = *d;
    size_t cells = (size_t)off * (size_t)L * (size_t)d->kmax;
    s.ids = d->ids + cells;
    s.weights = d->weights + cells;
    if (d->dropped)
        s.dropped = d->dropped + cells;
    return s;
}

/* One layer of a token range: softmax of its rows into the thread's
 * scratch, every router (then its capacity stage), then every metric, while
 * the rows are in cache. */
/* Softmax rows of layer l of the view's tokens into s, and the view's
 * statistics pointing there (rows of this layer only: hence the strides). */
static void softmax_layer(rs_chunk *view, int l, softmax_scratch *s)
{
    for (int t = 0; t < view->n; t++) {
        rs_softmax_stat stat;
        rs_softmax_row(rs_chunk_logits(view, t, l), s->probs + (size_t)t * (size_t)view->E, view->E, &stat);
        s->lse[t] = stat.lse;
        s->mean_logit[t] = stat.mean_logit;
        s->log_norm[t] = stat.log_norm;
        s->entropy[t] = stat.entropy;
    }
    view->probs = s->probs;
    view->lse = s->lse;
    view->mean_logit = s->mean_logit;
    view->log_norm = s->log_norm;
    view->entropy = s->entropy;
    view->stat_token_stride = 1;
    view->stat_layer_stride = 0;
}

/* The reference of agreement metrics for one work item: a router slot of
 * this engine on the same view, or the paired engine's router on the
 * paired trace's view (with its softmax when wanted). */
static void reference_view(engine *e, const rs_chunk *view, const rs_chunk *paired, const work_item *it,
                           thread_scratch *scratch, rs_chunk *paired_view, rs_decisions *dec, rs_metric_ref *ref)
{
    const int l = it->layer, n = it->count;
    if (e->ref_router >= 0) {
        *dec = sub_decisions(&e->routers[e->ref_router].dec, it->offset, view->L);
        *ref = (rs_metric_ref){view, dec};
        return;
    }
    *paired_view = sub_chunk(paired, it->offset, n);
    if (e->ref_probs)
        softmax_layer(paired_view, l, &scratch->ref_softmax);
    *dec = sub_decisions(&e->paired->routers[0].dec, it->offset, view->L);
    *ref = (rs_metric_ref){paired_view, dec};
}

static int process_item(engine *e, const rs_chunk *c, const rs_chunk *paired, const work_item *it,
                        thread_scratch *scratch)
{
    const int l = it->layer, n = it->count;
    if (e->band_source) /* a band widened from memory: this layer's rows, now, while the cache holds them */
        rs_engine_widen_band_layer(e, c, l, it->offset, n);
    rs_chunk view = sub_chunk(c, it->offset, n);
    if ((e->needs & RS_NEEDS_PROBS) && (!e->device_routed || e->device_host_probs))
        softmax_layer(&view, l, &scratch->softmax);
    for (int r = 0; r < e->num_routers; r++) {
        router_slot *rs = &e->routers[r];
        rs_decisions dec = sub_decisions(&rs->dec, it->offset, view.L);
        if (!(rs->on_device && e->device_routed)) /* else routed on the device (engine_device.c) */
            rs->spec->type->route_layer(rs->state, &view, l, &dec);
        if (view.valid) {
            for (int t = 0; t < n; t++) {
                if (view.valid[t])
                    continue;
                size_t row = rs_decision_row(&view, &dec, t, l);
                for (int j = 0; j < dec.kmax; j++) {
                    dec.ids[row + j] = j == 0 ? RS_ID_UNOBSERVED : -1; /* skipped: not observed */
                    dec.weights[row + j] = 0.0f;
                }
            }
        }
        /* capacity runs on whole chunks (no slicing then) */
        if (rs->capacity.enabled &&
            rs_capacity_apply(&rs->capacity, &view, l, view.groups[rs->capacity.group], &dec, &scratch->capacity) != 0)
            return -1;
    }
    rs_chunk paired_view;
    rs_decisions ref_dec;
    rs_metric_ref ref = {0};
    if (e->ref_router >= 0 || paired)
        reference_view(e, &view, paired, it, scratch, &paired_view, &ref_dec, &ref);
    for (int s = 0; s < e->num_metric_slots; s++) {
        metric_slot *ms = &e->metrics[s];
        if (ms->device_done) /* measured on the device (engine_device.c) */
            continue;
        rs_decisions dec = sub_decisions(&e->routers[ms->router].dec, it->offset, view.L);
        void *acc = it->slice == 0 ? ms->acc : ms->slice_acc[it->slice];
        rs_chunk seen = rs_engine_slot_view(e, ms, &view, it->offset);
        ms->spec->type->update_layer(acc, &seen, l, &dec, (ms->spec->type->flags & RS_METRIC_REFERENCE) ? &ref : NULL);
    }
    return 0;
}

int rs_engine_chunk_begin(engine *e, const rs_chunk *c, int *slices, rs_error *err)
{
    int n = e->max_slices;
    if (n > c->n / MIN_SLICE_TOKENS)
        n = c->n / MIN_SLICE_TOKENS > 0 ? c->n / MIN_SLICE_TOKENS : 1;
    *slices = 1;
    for (int m = 0; m < e->num_metric_slots; m++) {
        metric_slot *ms = &e->metrics[m];
        for (int s = 1; s < n; s++)
            if (ms->spec->type->create(&ms->slice_acc[s], &ms->spec->params, &ms->setup, err) != 0) {
                ms->slice_acc[s] = NULL;
                *slices = n; /* what end() cleans up */
                return -1;
            }
    }
    *slices = n;
    return 0;
}

/* Item i of the chunk's work: with read_ahead, item 0 reads the next chunk
 * (rs_chunk_loader_read_ahead) and the rest are e->items shifted by one. */
static int run_item(engine *e, const rs_chunk *view, const rs_chunk *paired, int read_ahead, int i)
{
    if (i < read_ahead) {
        rs_chunk_loader_read_ahead(e->read_ahead);
        return 0;
    }
    return process_item(e, view, paired, &e->items[i - read_ahead], &e->scratch[omp_get_thread_num()]);
}

int rs_engine_process_layers(engine *e, const rs_chunk *view, const rs_chunk *paired, int first, int slices,
                             int threads, rs_error *err)
{
    int count = 0;
    for (int l = first; l < first + view->L; l++) {
        for (int s = 0; s < slices; s++) {
            int start = (int)((int64_t)view->n * s / slices), stop = (int)((int64_t)view->n * (s + 1) / slices);
            e->items[count++] = (work_item){l, s, start, stop - start};
        }
    }
    const int read_ahead = e->read_ahead != NULL, total = count + read_ahead;
    /* Thread j owns the j-th run of consecutive items, the same layers
     * every chunk, so their accumulators stay in its cache, and threads
     * route layers far apart (decision rows of adjacent layers share cache
     * lines). A thread done with its run takes the items left in the
     * others: a thread slowed down (a busy machine) holds up only the item
     * it is on, as with a shared queue of items. Items
     * of different layers touch different accumulators, and a layer's
     * slices merge in token order, so who takes what never changes results. */
    for (int j = 0; j < threads; j++)
        e->runs[j] = (item_run){.next = (int)((int64_t)total * j / threads),
                                .end = (int)((int64_t)total * (j + 1) / threads)};
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        const int me = omp_get_thread_num();
        for (int v = 0; v < threads; v++) {
            item_run *run = &e->runs[(me + v) % threads];
            for (;;) {
                int i;
#pragma omp atomic capture
                i = run->next++;
                if (i >= run->end)
                    break;
                failed |= run_item(e, view, paired, read_ahead, i) != 0;
            }
        }
    }
    return failed ? rs_fail(err, "out of memory in the capacity stage") : 0;
}

int rs_engine_chunk_end(engine *e, const rs_chunk *c, const rs_chunk *paired, int slices, int rc, rs_error *err)
{
    for (int m = 0; m < e->num_metric_slots; m++) {
        metric_slot *ms = &e->metrics[m];
        for (int s = 1; s < slices; s++) { /* in token order: merged halves equal the whole */
            if (rc == 0)
                rc = ms->spec->type->merge(ms->acc, ms->slice_acc[s], err);
            if (ms->slice_acc[s])
                ms->spec->type->destroy(ms->slice_acc[s]);
            ms->slice_acc[s] = NULL;
        }
    }
    if (rc != 0)
        return rc;
    /* cross-layer statistics: each accumulator in order, accumulators in parallel */
    int cross_layer = 0;
    for (int m = 0; m < e->num_metric_slots; m++)
        cross_layer |= e->metrics[m].spec->type->update_chunk != NULL;
    if (!cross_layer)
        return 0;
    rs_metric_ref ref = {0};
    if (e->ref_router >= 0)
        ref = (rs_metric_ref){c, &e->routers[e->ref_router].dec};
    else if (paired)
        ref = (rs_metric_ref){paired, &e->paired->routers[0].dec};
#pragma omp parallel for schedule(dynamic, 1) num_threads(e->threads)
    for (int m = 0; m < e->num_metric_slots; m++) {
        metric_slot *ms = &e->metrics[m];
        if (ms->spec->type->update_chunk) {
            rs_chunk seen = rs_engine_slot_view(e, ms, c, 0);
            ms->spec->type->update_chunk(ms->acc, &seen, &e->routers[ms->router].dec,
                                         (ms->spec->type->flags & RS_METRIC_REFERENCE) ? &ref : NULL);
        }
    }
    return 0;
}

int rs_engine_process_chunk(engine *e, const rs_chunk *c, const rs_chunk *paired, rs_error *err)
{
    int slices = 1;
    int rc = rs_engine_chunk_begin(e, c, &slices, err);
    if (rc == 0 && e->device)
        rc = rs_engine_device_route(e, c, err);
    if (rc == 0)
        rc = rs_engine_process_layers(e, c, paired, 0, slices, e->threads, err);
    e->band_source = NULL; /* every layer is widened now (cross-layer metrics below read them) */
    e->device_routed = 0;
    for (int m = 0; m < e->num_metric_slots; m++)
        e->metrics[m].device_done = 0;
    return rs_engine_chunk_end(e, c, paired, slices, rc, err);
}
