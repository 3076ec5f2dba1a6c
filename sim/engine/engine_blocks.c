/* Blocks of whole sequences: one pass cut into the token ranges of
 * consecutive blocks of sequences, each block routed by an engine of its
 * own (an MPI rank), whose metric accumulators then merge in block order
 * into the accumulators of the whole pass. Merging is each metric
 * family's contract (an accumulator of [a, b) merged with one of [b, c)
 * is the accumulator of [a, c)), the same merge that joins token slices
 * and bootstrap blocks, so the merged results are the whole pass's, bit
 * for bit, as long as each block's routers decide as they would have in
 * one pass: what rs_engine_blocks_check makes sure of before routing.
 *
 * A block's accumulators travel as the bytes their checkpoint hooks name
 * (routesim/checkpoint.h), each followed by the byte count so far, and
 * are read back into fresh accumulators of an engine created alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/state_io.h"
#include "sim/engine/engine_internal.h"

typedef struct rs_engine engine;

int64_t rs_block_first_sequence(int64_t num_sequences, int num_blocks, int block)
{
    return num_sequences * block / num_blocks;
}

int rs_block_tokens(rs_trace *trace, int num_blocks, int block, int64_t *t_begin, int64_t *t_end, rs_error *err)
{
    const int64_t S = rs_trace_get_info(trace)->num_sequences;
    RS_TRY(rs_trace_read_offsets(trace, rs_block_first_sequence(S, num_blocks, block), 1, t_begin, err));
    return rs_trace_read_offsets(trace, rs_block_first_sequence(S, num_blocks, block + 1), 1, t_end, err);
}

/* Bytes a router's checkpoint names: what it carries from one chunk to
 * the next; -1 when it cannot say (no hook, yet stateful or grouped). */
static long long router_state_bytes(const router_slot *rs)
{
    const rs_router_type *t = rs->spec->type;
    if (!t->checkpoint)
        return (t->flags & (RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED)) || t->prepare_chunk ||
                       rs->shape.group != RS_GROUP_NONE
                   ? -1
                   : 0;
    rs_state_io io;
    rs_state_io_start(&io, NULL, 0);
    t->checkpoint(rs->state, &io);
    return (long long)io.bytes;
}

/* Whether a block may start at each of starts[0..n) for token groups of
 * `mode`: a block starts a chunk, and chunks start on group boundaries. */
static int groups_allow(const engine *e, rs_group mode, const int64_t *starts, int n, const char *label, char *why,
                        size_t size)
{
    if (mode == RS_GROUP_STEP) {
        snprintf(why, size, "router %s batches decode steps, formed from the start of the trace", label);
        return 0;
    }
    for (int i = 0; mode == RS_GROUP_BATCH && i < n; i++)
        if (starts[i] % e->opt->batch_tokens != 0) {
            snprintf(why, size, "router %s routes batches of batch_tokens=%d tokens, and one would cross token %lld",
                     label, e->opt->batch_tokens, (long long)starts[i]);
            return 0;
        }
    return 1;
}

static int router_allows(const engine *e, const router_slot *rs, const int64_t *starts, int n, char *why,
                         size_t size)
{
    const char *label = rs->spec->label;
    long long carried = router_state_bytes(rs);
    if (carried < 0) {
        snprintf(why, size, "router %s cannot save its state", label);
        return 0;
    }
    if (carried > 0) {
        snprintf(why, size, "router %s carries state from one chunk to the next", label);
        return 0;
    }
    if (!groups_allow(e, rs->shape.group, starts, n, label, why, size))
        return 0;
    return !rs->capacity.enabled || groups_allow(e, rs->capacity.group, starts, n, label, why, size);
}

int rs_engine_blocks_check(engine *e, const int64_t *starts, int n, char *why, size_t size, rs_error *err)
{
    if (e->opt->bootstrap > 0) {
        snprintf(why, size, "bootstrap intervals resample the blocks of one pass");
        return 0;
    }
    for (const engine *x = e; x; x = x->paired)
        for (int r = 0; r < x->num_routers; r++)
            if (!router_allows(x, &x->routers[r], starts, n, why, size))
                return 0;
    for (int m = 0; m < e->num_metric_slots; m++) {
        metric_slot *ms = &e->metrics[m];
        const rs_metric_type *t = ms->spec->type;
        if (!t->checkpoint) {
            snprintf(why, size, "metric %s cannot save its accumulators", t->name);
            return 0;
        }
        /* a family whose accumulators cannot merge says so merging two fresh ones */
        void *a = NULL, *b = NULL;
        RS_TRY(t->create(&a, &ms->spec->params, &ms->setup, err));
        rs_error refused = {{0}};
        int rc = t->create(&b, &ms->spec->params, &ms->setup, err);
        int merges = rc == 0 && t->merge(a, b, &refused) == 0;
        if (rc == 0)
            t->destroy(b);
        t->destroy(a);
        RS_TRY(rc);
        if (!merges) {
            snprintf(why, size, "%s", refused.msg);
            return 0;
        }
    }
    return 1;
}

int rs_engine_run_block(engine *e, int64_t t_begin, int64_t t_end, rs_engine_stats *stats, rs_error *err)
{
    RS_CHECK(e->opt->bootstrap == 0 && e->start == 0 && t_begin >= 0 && t_begin <= t_end, err,
             "internal error: a block of tokens [%lld, %lld) of a pass that cannot be cut", (long long)t_begin,
             (long long)t_end);
    for (engine *x = e; x; x = x->paired) {
        x->block_pass = 1;
        x->start = t_begin;
        x->end = t_end;
    }
    if (t_begin == t_end) { /* empty sequences only: nothing to route, the accumulators stay fresh */
        if (stats)
            *stats = (rs_engine_stats){.tokens = e->info->num_tokens, .threads = e->threads};
        return 0;
    }
    return rs_engine_run(e, NULL, stats, err);
}

/* The byte count so far: restoring, it must equal what was saved. */
static void boundary(rs_state_io *io)
{
    uint64_t count = io->bytes;
    RS_STATE(io, count);
    if (io->restoring && count != io->bytes - sizeof count)
        rs_state_fail(io);
}

int rs_engine_blocks_save(engine *e, char **bytes, size_t *len, rs_error *err)
{
    *bytes = NULL;
    *len = 0;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    RS_CHECK(f, err, "out of memory saving a block's accumulators");
    rs_state_io io;
    rs_state_io_start(&io, f, 0);
    for (int m = 0; m < e->num_metric_slots && !io.failed; m++) {
        e->metrics[m].spec->type->checkpoint(e->metrics[m].acc, &io);
        boundary(&io);
    }
    int bad = io.failed;
    bad |= fclose(f) != 0;
    if (bad) {
        free(buf);
        return rs_fail(err, "out of memory saving a block's accumulators");
    }
    *bytes = buf;
    *len = size;
    return 0;
}

int rs_engine_blocks_merge(engine *e, const char *bytes, size_t len, rs_error *err)
{
    if (e->num_metric_slots == 0)
        return 0;
    FILE *f = len > 0 ? fmemopen((void *)bytes, len, "rb") : NULL;
    RS_CHECK(f, err, "a block's accumulators: %s", len > 0 ? "out of memory" : "none were received");
    rs_state_io io;
    rs_state_io_start(&io, f, 1);
    int rc = 0;
    for (int m = 0; m < e->num_metric_slots && rc == 0; m++) {
        metric_slot *ms = &e->metrics[m];
        const rs_metric_type *t = ms->spec->type;
        void *acc = NULL;
        if ((rc = t->create(&acc, &ms->spec->params, &ms->setup, err)) != 0)
            break;
        t->checkpoint(acc, &io);
        boundary(&io);
        if (io.failed)
            rc = rs_fail(err, "a block's accumulator of metric %s does not read back as it was saved", t->name);
        else
            rc = t->merge(ms->acc, acc, err);
        t->destroy(acc);
    }
    fclose(f);
    if (rc == 0 && io.bytes != len)
        rc = rs_fail(err, "a block's accumulators hold %zu bytes, %llu of which were read", len,
                     (unsigned long long)io.bytes);
    return rc;
}

int rs_engine_blocks_file(engine *e, rs_error *err)
{
    return rs_engine_file_results(e, err);
}
