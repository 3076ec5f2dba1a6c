#include "sim/engine/chunk_loader.h"

#include "core/large_alloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct rs_chunk_loader {
    rs_loader_config cfg;
    const rs_trace_info *info;
    rs_sequence_cursor cursor;
    rs_loaded_chunk buf[2];
    int current;      /* buf[current] is what the caller holds */
    int64_t next_t0;  /* first token not yet handed out or being read */
    int started;      /* the first chunk was asked for */

    /* The background reader and its one outstanding request. */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int requested, running, quit;
    rs_loaded_chunk *target;
    int64_t target_t0;
    int result;
    rs_error err;

    /* rs_chunk_loader_read_ahead's chunk, in buf[1 - current]: read (with
     * its outcome) and not yet handed out. */
    int ahead, ahead_result;
    rs_error ahead_err;
};

/* The [n, L, ...] arrays but the stored logits: float32 logits and
 * recorded top-k. */
static void free_widened_rows(rs_loaded_chunk *b)
{
    free(b->logits);
    free(b->recorded_ids);
    free(b->recorded_weights);
    b->logits = NULL;
    b->recorded_ids = NULL;
    b->recorded_weights = NULL;
    b->row_capacity = 0;
}

/* All the [n, L, ...] arrays. */
static void free_rows(rs_loaded_chunk *b)
{
    free_widened_rows(b);
    free(b->stored);
    b->stored = NULL;
    b->stored_capacity = 0;
}

/* Room for n tokens of 16-bit logits as stored (grown only). */
static int ensure_stored(rs_chunk_loader *l, rs_loaded_chunk *b, int64_t n, rs_error *err)
{
    if (n <= b->stored_capacity)
        return 0;
    free(b->stored);
    b->stored_capacity = 0;
    size_t cells = (size_t)n * (size_t)l->info->num_layers * (size_t)l->info->num_experts;
    b->stored = rs_large_alloc(cells * sizeof *b->stored);
    RS_CHECK(b->stored, err, "out of memory for a chunk of %lld tokens (lower the memory budget or chunk_tokens)",
             (long long)n);
    b->stored_capacity = n;
    return 0;
}

static void free_chunk(rs_loaded_chunk *b)
{
    free_rows(b);
    free(b->valid);
    free(b->token_ids);
    free(b->phase);
    free(b->seq_of_token);
    free(b->extents);
    free(b->domain);
    free(b->quality);
    free(b->cost);
    rs_seq_window_free(&b->window);
    memset(b, 0, sizeof *b);
}

/* Outcomes are read for whoever needs or wants them, when the trace has them. */
static int wants_outcome(const rs_chunk_loader *l)
{
    return (l->cfg.needs & (RS_NEEDS_OUTCOME | RS_WANTS_OUTCOME)) && (l->info->has_quality || l->info->has_cost);
}

/* Domain labels of the sequences the chunk overlaps (a chunk may overlap
 * more sequences than it has tokens: empty sequences). */
static int load_domains(rs_chunk_loader *l, rs_loaded_chunk *b, rs_error *err)
{
    const int64_t count = b->window.num_seq;
    if (count > b->domain_capacity) {
        int32_t *grown = realloc(b->domain, (size_t)count * sizeof *grown);
        RS_CHECK(grown, err, "out of memory for the domains of a chunk");
        b->domain = grown;
        b->domain_capacity = count;
    }
    return rs_trace_read_domain(l->cfg.trace, b->window.first_seq, count, b->domain, err);
}

/* Room for the [n, L, ...] arrays of a chunk read whole. */
static int ensure_rows(rs_chunk_loader *l, rs_loaded_chunk *b, int64_t n, rs_error *err)
{
    const int sixteen = (l->cfg.needs & RS_NEEDS_LOGITS) && rs_trace_logit_size(l->cfg.trace) == 2;
    if (sixteen)
        RS_TRY(ensure_stored(l, b, n, err));
    if (n <= b->row_capacity)
        return 0;
    free_widened_rows(b);
    size_t rows = (size_t)n * (size_t)l->info->num_layers;
    size_t cells = rows * (size_t)l->info->num_experts;
    int ok = 1;
    if (l->cfg.needs & RS_NEEDS_LOGITS) {
        if (!sixteen || !l->cfg.stored_only)
            ok &= (b->logits = rs_large_alloc(cells * sizeof *b->logits)) != NULL;
    }
    if (l->cfg.needs & RS_NEEDS_TOPK) {
        size_t k = rows * (size_t)l->info->recorded_k;
        ok &= (b->recorded_ids = malloc(k * sizeof *b->recorded_ids)) != NULL;
        if (l->info->has_topk_weights)
            ok &= (b->recorded_weights = malloc(k * sizeof *b->recorded_weights)) != NULL;
    }
    if (!ok) {
        free_rows(b);
        return rs_fail(err, "out of memory for a chunk of %lld tokens (lower the memory budget or chunk_tokens)",
                       (long long)n);
    }
    b->row_capacity = n;
    return 0;
}

/* Room for the per-token arrays of a chunk of n tokens. */
static int ensure_capacity(rs_chunk_loader *l, rs_loaded_chunk *b, int64_t n, rs_error *err)
{
    if (n <= b->capacity)
        return 0;
    free(b->valid);
    free(b->token_ids);
    free(b->phase);
    free(b->seq_of_token);
    free(b->extents);
    free(b->quality);
    free(b->cost);
    b->valid = b->phase = NULL;
    b->token_ids = b->seq_of_token = NULL;
    b->extents = NULL;
    b->quality = b->cost = NULL;
    b->capacity = 0;
    int ok = 1;
    if (l->cfg.needs & RS_NEEDS_LOGITS) {
        int64_t per_extent = rs_trace_logits_chunk_tokens(l->cfg.trace);
        b->extent_capacity = (int)(n / (per_extent > 0 ? per_extent : n) + 3);
        ok &= (b->extents = malloc((size_t)b->extent_capacity * sizeof *b->extents)) != NULL;
    }
    ok &= (b->valid = malloc((size_t)n)) != NULL;
    ok &= (b->seq_of_token = malloc((size_t)n * sizeof *b->seq_of_token)) != NULL;
    if (l->cfg.needs & RS_NEEDS_TOKEN_IDS)
        ok &= (b->token_ids = malloc((size_t)n * sizeof *b->token_ids)) != NULL;
    if ((l->cfg.needs & RS_WANTS_PHASE) && l->info->has_phase)
        ok &= (b->phase = malloc((size_t)n)) != NULL;
    if (wants_outcome(l)) {
        size_t outcome = (size_t)n * (size_t)l->info->num_experts;
        if (l->info->has_quality)
            ok &= (b->quality = malloc(outcome * sizeof *b->quality)) != NULL;
        if (l->info->has_cost)
            ok &= (b->cost = malloc(outcome * sizeof *b->cost)) != NULL;
    }
    if (!ok)
        return rs_fail(err, "out of memory for a chunk of %lld tokens (lower the memory budget or chunk_tokens)",
                       (long long)n);
    b->capacity = n;
    return 0;
}

/* One past the last token this loader reads. */
static int64_t last_token(const rs_chunk_loader *l)
{
    return l->cfg.end > 0 && l->cfg.end < l->info->num_tokens ? l->cfg.end : l->info->num_tokens;
}

/* Boundaries of one grouping mode, for chunks starting at t0. */
static int64_t mode_floor(rs_chunk_loader *l, rs_group mode, int64_t t0, int64_t x, rs_error *err, int *failed)
{
    const int64_t B = l->cfg.batch_tokens;
    switch (mode) {
    case RS_GROUP_BATCH: return x / B * B > t0 ? x / B * B : -1;
    case RS_GROUP_SEQUENCE: return rs_sequence_floor(&l->cursor, t0, x, err, failed);
    case RS_GROUP_STEP: return rs_step_floor(&l->cursor, t0, x, B, err, failed);
    default: return x;
    }
}

static int64_t mode_ceil(rs_chunk_loader *l, rs_group mode, int64_t t0, int64_t x, rs_error *err, int *failed)
{
    const int64_t B = l->cfg.batch_tokens, T = last_token(l);
    switch (mode) {
    case RS_GROUP_BATCH: {
        int64_t up = (x + B - 1) / B * B;
        up = up > t0 ? up : (t0 / B + 1) * B;
        return up < T ? up : T;
    }
    case RS_GROUP_SEQUENCE: return rs_sequence_ceil(&l->cursor, t0, x, err, failed);
    case RS_GROUP_STEP: return rs_step_ceil(&l->cursor, t0, x, B, err, failed);
    default: return x;
    }
}

/* End of the chunk starting at t0: the budget (or the next cut), moved to a boundary of every
 * grouping mode in use: down to one when the budget allows, then up until
 * all modes agree (at worst the end of the trace). */
static int64_t chunk_end(rs_chunk_loader *l, int64_t t0, rs_error *err, int *failed)
{
    const int64_t T = last_token(l);
    int64_t end = t0 + l->cfg.chunk_tokens;
    for (int i = 0; i < l->cfg.num_cuts; i++)
        if (l->cfg.cuts[i] > t0) {
            end = l->cfg.cuts[i] < end ? l->cfg.cuts[i] : end;
            break;
        }
    if (end >= T)
        return T;
    for (int m = RS_GROUP_SEQUENCE; m < RS_GROUP_COUNT; m++) {
        if (!(l->cfg.group_modes & (1u << m)))
            continue;
        int64_t down = mode_floor(l, (rs_group)m, t0, end, err, failed);
        end = down > t0 ? down : mode_ceil(l, (rs_group)m, t0, end, err, failed);
        if (*failed)
            return 0;
    }
    for (int changed = 1; changed && end < T;) {
        changed = 0;
        for (int m = RS_GROUP_SEQUENCE; m < RS_GROUP_COUNT && end < T; m++) {
            if (!(l->cfg.group_modes & (1u << m)))
                continue;
            int64_t up = mode_ceil(l, (rs_group)m, t0, end, err, failed);
            if (*failed)
                return 0;
            if (up != end) {
                end = up;
                changed = 1;
            }
        }
    }
    return end < T ? end : T;
}

int rs_chunk_loader_largest(const rs_loader_config *cfg, int64_t *largest, rs_error *err)
{
    *largest = 0;
    rs_chunk_loader l = {.cfg = *cfg, .info = rs_trace_get_info(cfg->trace)};
    l.cfg.end = 0; /* the whole trace's chunks, as the loop below walks them */
    RS_TRY(rs_sequence_cursor_init(&l.cursor, cfg->trace, err));
    int failed = 0;
    for (int64_t t0 = 0; t0 < l.info->num_tokens && !failed;) {
        /* move the cursor to t0's sequence, as reading the chunk's window would */
        rs_sequence_cursor *c = &l.cursor;
        while (c->current < c->num_sequences && rs_sequence_offset(c, c->current + 1, err, &failed) <= t0 && !failed)
            c->current++;
        int64_t end = failed ? t0 : chunk_end(&l, t0, err, &failed);
        if (!failed && end - t0 > *largest)
            *largest = end - t0;
        t0 = end;
    }
    rs_sequence_cursor_free(&l.cursor);
    return failed ? -1 : 0;
}

/* Reads tokens [t0, end) into b: HDF5 only, so it can run on the reader thread. */
static int load(rs_chunk_loader *l, rs_loaded_chunk *b, int64_t t0, rs_error *err)
{
    int failed = 0;
    int64_t end = chunk_end(l, t0, err, &failed);
    RS_TRY(failed ? -1 : 0);
    int n = (int)(end - t0);
    /* a chunk that grew past the budget for whole groups is read in layer bands by the caller */
    b->banded = l->cfg.whole_tokens > 0 && n > l->cfg.whole_tokens;
    b->stored_whole = b->banded && n <= l->cfg.stored_whole_tokens;
    RS_TRY(ensure_capacity(l, b, n, err));
    if (b->stored_whole) /* widened band by band from memory; room for the largest at once: */
        RS_TRY(ensure_stored(l, b, l->cfg.stored_whole_tokens, err)); /* its pages are touched only as used */
    else if (b->banded)
        free_rows(b); /* a whole chunk's rows: not needed while bands are read and routed */
    else
        RS_TRY(ensure_rows(l, b, n, err));
    b->t0 = t0;
    b->n = n;
    RS_TRY(rs_sequence_cursor_window(&l->cursor, t0, n, &b->window, b->seq_of_token, err));
    rs_trace *tr = l->cfg.trace;
    b->num_extents = 0;
    if (l->cfg.needs & RS_NEEDS_LOGITS) {
        /* Uncompressed logits are only located here, and read in parallel by the caller. */
        b->num_extents = rs_trace_logit_extents(tr, t0, n, b->extents, b->extent_capacity, err);
        RS_TRY(b->num_extents < 0 ? -1 : 0);
        if (b->num_extents == 0 && (!b->banded || b->stored_whole))
            RS_TRY(rs_trace_read_logits_stored(tr, t0, n, b->stored ? (void *)b->stored : (void *)b->logits, err));
    }
    if (l->cfg.needs & RS_NEEDS_TOKEN_IDS)
        RS_TRY(rs_trace_read_token_ids(tr, t0, n, b->token_ids, err));
    if (b->phase)
        RS_TRY(rs_trace_read_phase(tr, t0, n, b->phase, err));
    if ((l->cfg.needs & RS_NEEDS_TOPK) && !b->banded)
        RS_TRY(rs_trace_read_topk(tr, t0, n, b->recorded_ids, b->recorded_weights, err));
    if (l->info->has_domain && b->window.num_seq > 0)
        RS_TRY(load_domains(l, b, err));
    if (wants_outcome(l))
        RS_TRY(rs_trace_read_outcome(tr, t0, n, b->quality, b->cost, err));
    return 0;
}

static void *reader_main(void *arg)
{
    rs_chunk_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->requested && !l->quit)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit)
            break;
        l->requested = 0;
        l->running = 1;
        pthread_mutex_unlock(&l->mu);
        rs_error err = {{0}};
        int rc = load(l, l->target, l->target_t0, &err);
        pthread_mutex_lock(&l->mu);
        l->result = rc;
        l->err = err;
        l->running = 0;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void request(rs_chunk_loader *l, rs_loaded_chunk *target, int64_t t0)
{
    pthread_mutex_lock(&l->mu);
    l->target = target;
    l->target_t0 = t0;
    l->requested = 1;
    l->result = 0;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static int wait_for_read(rs_chunk_loader *l, rs_error *err)
{
    pthread_mutex_lock(&l->mu);
    while (l->requested || l->running)
        pthread_cond_wait(&l->cv, &l->mu);
    int rc = l->result;
    if (rc != 0 && err)
        *err = l->err;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int rs_chunk_loader_create(rs_chunk_loader **out, const rs_loader_config *cfg, rs_error *err)
{
    *out = NULL;
    rs_chunk_loader *l = calloc(1, sizeof *l);
    RS_CHECK(l, err, "out of memory");
    l->cfg = *cfg;
    l->info = rs_trace_get_info(cfg->trace);
    l->current = 1; /* the first next() reads into buf[0] */
    l->next_t0 = cfg->start;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (rs_sequence_cursor_init(&l->cursor, cfg->trace, err) != 0) {
        rs_chunk_loader_destroy(l);
        return -1;
    }
    if (cfg->background && l->info->num_tokens > cfg->chunk_tokens) {
        if (pthread_create(&l->thread, NULL, reader_main, l) != 0) {
            rs_chunk_loader_destroy(l);
            return rs_fail(err, "cannot start the reader thread");
        }
        l->thread_started = 1;
    }
    *out = l;
    return 0;
}

int rs_chunk_loader_next(rs_chunk_loader *l, rs_loaded_chunk **chunk, rs_error *err)
{
    *chunk = NULL;
    const int64_t T = last_token(l);
    int next = 1 - l->current;
    if (l->thread_started) {
        /* The read of buf[next] started with the previous call (or starts now). */
        if (!l->started && l->next_t0 < T)
            request(l, &l->buf[next], l->next_t0);
        RS_TRY(wait_for_read(l, err));
    } else if (l->ahead) {
        l->ahead = 0;
        if (l->ahead_result != 0) {
            *err = l->ahead_err;
            return -1;
        }
    } else if (l->next_t0 < T) {
        RS_TRY(load(l, &l->buf[next], l->next_t0, err));
    }
    l->started = 1;
    if (l->next_t0 >= T)
        return 0;
    l->current = next;
    rs_loaded_chunk *b = &l->buf[next];
    l->next_t0 = b->t0 + b->n;
    if (l->thread_started && l->next_t0 < T)
        request(l, &l->buf[1 - next], l->next_t0);
    *chunk = b;
    return 0;
}

void rs_chunk_loader_read_ahead(rs_chunk_loader *l)
{
    if (l->thread_started || !l->started || l->ahead || l->next_t0 >= l->info->num_tokens)
        return;
    rs_error err = {{0}};
    l->ahead_result = load(l, &l->buf[1 - l->current], l->next_t0, &err);
    l->ahead_err = err;
    l->ahead = 1;
}

void rs_chunk_loader_destroy(rs_chunk_loader *l)
{
    if (!l)
        return;
    if (l->thread_started) {
        wait_for_read(l, NULL);
        pthread_mutex_lock(&l->mu);
        l->quit = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    rs_sequence_cursor_free(&l->cursor);
    free_chunk(&l->buf[0]);
    free_chunk(&l->buf[0 + 1]);
    free(l);
}
