#include "sim/experiment/run_blocks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/experiment/ranks.h"
#include "sim/experiment/run_cache.h"
#include "workloads/trace/trace.h"

/* What a rank says of its block besides the accumulators, ahead of them. */
typedef struct block_counts {
    int64_t skipped, paired_skipped, chunks, largest, banded, memory_banded;
} block_counts;

/* On rank 0: which runs of trace t go in blocks of `size` (mask[r]). */
static int plan_trace(const rs_config *cfg, const rs_engine_options *opt, int t, int size, unsigned char *mask,
                      rs_error *err)
{
    const char *path = cfg->traces[t].path;
    rs_trace *trace = NULL;
    RS_TRY(rs_trace_open(&trace, path, err));
    const int64_t S = rs_trace_get_info(trace)->num_sequences;
    if (S < size) {
        fprintf(stderr, "routesim: %s: %lld sequences, fewer than the %d ranks: its runs are routed whole, each by "
                        "one rank\n", path, (long long)S, size);
        rs_trace_close(trace);
        return 0;
    }
    int64_t *starts = malloc((size_t)size * sizeof *starts);
    int rc = starts ? 0 : rs_fail(err, "out of memory");
    for (int k = 1; k < size && rc == 0; k++) {
        int64_t end = 0;
        rc = rs_block_tokens(trace, size, k, &starts[k - 1], &end, err);
    }
    rs_engine_options probe_opt = *opt;
    probe_opt.measure_only = 1; /* created to be checked, never run */
    probe_opt.progress = 0;
    for (int r = 0; r < cfg->num_routers && rc == 0; r++) {
        rs_engine *probe = NULL;
        char why[400] = "";
        rc = rs_engine_create(&probe, trace, &cfg->routers[r], 1, cfg->metrics, cfg->num_metrics, &probe_opt, NULL,
                              err);
        int ok = rc == 0 ? rs_engine_blocks_check(probe, starts, size - 1, why, sizeof why, err) : -1;
        rs_engine_destroy(probe);
        if (ok < 0)
            rc = -1;
        else if (ok)
            mask[r] = 1;
        else
            fprintf(stderr, "routesim: %s: %s is routed whole by one rank, not in blocks of sequences across "
                            "ranks: %s\n", path, cfg->routers[r].label, why);
    }
    free(starts);
    rs_trace_close(trace);
    return rc;
}

int rs_blocks_plan(const rs_config *cfg, const rs_engine_options *opt, unsigned char *by_blocks, rs_error *err)
{
    const int size = rs_ranks_size(), T = cfg->num_traces, n = cfg->num_routers;
    memset(by_blocks, 0, (size_t)T * (size_t)n);
    /* enough runs to keep every rank busy whole: the same on every rank, no messages */
    if (size < 2 || (long long)T * n >= size)
        return 0;
    int rc = 0;
    for (int t = 0; t < T && rc == 0 && rs_ranks_rank() == 0; t++)
        rc = plan_trace(cfg, opt, t, size, by_blocks + (size_t)t * (size_t)n, err);
    if (rs_ranks_agree(rc, err) != 0)
        return -1;
    rs_ranks_broadcast(by_blocks, (size_t)T * (size_t)n);
    return 0;
}

/* This rank's block of run r: an engine routed over [t_begin, t_end),
 * and (ranks other than 0) its counts and accumulators as bytes. */
static int route_block(const rs_config *cfg, const rs_engine_options *opt, rs_trace *trace, int r, int64_t t_begin,
                       int64_t t_end, rs_engine **engine, rs_results *fresh, rs_engine_stats *stats, char **bytes,
                       size_t *len, rs_error *err)
{
    RS_TRY(rs_engine_create(engine, trace, &cfg->routers[r], 1, cfg->metrics, cfg->num_metrics, opt, fresh, err));
    RS_TRY(rs_engine_run_block(*engine, t_begin, t_end, stats, err));
    if (rs_ranks_rank() == 0)
        return 0;
    char *acc = NULL;
    size_t acc_len = 0;
    RS_TRY(rs_engine_blocks_save(*engine, &acc, &acc_len, err));
    block_counts counts = {stats->skipped_tokens, stats->reference_skipped_tokens, stats->chunks,
                           stats->largest_chunk, stats->banded_chunks, stats->memory_banded_chunks};
    *bytes = malloc(sizeof counts + acc_len);
    if (!*bytes) {
        free(acc);
        return rs_fail(err, "out of memory");
    }
    memcpy(*bytes, &counts, sizeof counts);
    memcpy(*bytes + sizeof counts, acc, acc_len);
    *len = sizeof counts + acc_len;
    free(acc);
    return 0;
}

/* On rank 0, holding block 0 of run r in engine: merges blocks 1.. from
 * all (lens[k] bytes from rank k) in rank order, files the run, stores it
 * under key and adds it to held; stats gets the blocks' counts. */
static int merge_blocks(const rs_config *cfg, rs_engine *engine, rs_results *fresh, const char *all,
                        const size_t *lens, int size, const char *key, rs_results *held, int *held_run,
                        rs_engine_stats *stats, rs_error *err)
{
    const char *at = all + lens[0];
    for (int k = 1; k < size; at += lens[k++]) {
        block_counts counts;
        RS_CHECK(lens[k] >= sizeof counts, err, "rank %d of %d sent a damaged block", k, size);
        memcpy(&counts, at, sizeof counts);
        stats->skipped_tokens += counts.skipped;
        stats->reference_skipped_tokens += counts.paired_skipped;
        stats->chunks += counts.chunks;
        stats->largest_chunk = counts.largest > stats->largest_chunk ? counts.largest : stats->largest_chunk;
        stats->banded_chunks += counts.banded;
        stats->memory_banded_chunks += counts.memory_banded;
        if (rs_engine_blocks_merge(engine, at + sizeof counts, lens[k] - sizeof counts, err) != 0)
            return rs_fail_context(err, "merging the block of rank %d of %d", k, size);
    }
    RS_TRY(rs_engine_blocks_file(engine, err));
    const int run = rs_engine_router_run(engine, 0);
    RS_TRY(rs_run_cache_store(cfg->output, key, fresh, run, err));
    /* into held through the run store's text, exact as runs from other ranks are */
    char *text = rs_run_cache_encode("", fresh, run);
    RS_CHECK(text, err, "out of memory");
    int ok = rs_run_cache_decode(text, NULL, held, held_run, err);
    free(text);
    RS_CHECK(ok != 0, err, "internal error: a merged run does not read back");
    return ok < 0 ? -1 : 0;
}

/* Adds one block pass's statistics to the trace's (as experiment.c does
 * for its passes). */
static void add_stats(rs_engine_stats *total, const rs_engine_stats *s)
{
    total->tokens = s->tokens;
    total->skipped_tokens = s->skipped_tokens;
    total->reference_skipped_tokens = s->reference_skipped_tokens;
    total->chunk_tokens = s->chunk_tokens;
    total->largest_chunk = s->largest_chunk > total->largest_chunk ? s->largest_chunk : total->largest_chunk;
    total->banded_chunks += s->banded_chunks;
    total->memory_banded_chunks += s->memory_banded_chunks;
    if (s->band_layers > 0 && (total->band_layers == 0 || s->band_layers < total->band_layers))
        total->band_layers = s->band_layers;
    total->layers = s->layers;
    total->chunks += s->chunks;
    total->threads = s->threads;
    total->seconds += s->seconds;
    total->read_seconds += s->read_seconds;
    total->compute_seconds += s->compute_seconds;
}

/* Routes run r in blocks: every rank its own, rank 0 merges. Collective;
 * returns the same on every rank. */
static int route_run(const rs_config *cfg, const rs_engine_options *opt, rs_trace *trace, int r, int64_t t_begin,
                     int64_t t_end, const char *key, rs_results *held, int *held_run, rs_engine_stats *total,
                     int *threads_used, rs_error *err)
{
    const int rank = rs_ranks_rank(), size = rs_ranks_size();
    rs_results fresh;
    rs_results_init(&fresh);
    rs_engine *engine = NULL;
    rs_engine_stats stats = {0};
    char *mine = NULL, *all = NULL;
    size_t len = 0;
    size_t *lens = calloc((size_t)size, sizeof *lens);
    int rc = lens ? route_block(cfg, opt, trace, r, t_begin, t_end, &engine, &fresh, &stats, &mine, &len, err)
                  : rs_fail(err, "out of memory");
    const int routed = rs_ranks_agree(rc, err); /* every rank routed its block, or all stop */
    if (routed == 0)
        rc = rs_ranks_gather(mine ? mine : "", len, &all, lens, err);
    if (routed == 0 && rc == 0 && rank == 0)
        rc = merge_blocks(cfg, engine, &fresh, all, lens, size, key, held, &held_run[r], &stats, err);
    if (routed == 0 && rc == 0 && rank == 0) {
        add_stats(total, &stats);
        *threads_used = stats.threads;
    }
    free(all);
    free(mine);
    free(lens);
    rs_engine_destroy(engine);
    rs_results_free(&fresh);
    if (routed != 0) /* agreed: the message is every rank's already */
        return -1;
    return rs_ranks_agree(rc, err); /* a failure on rank 0 alone stops the others too */
}

int rs_blocks_route(const rs_config *cfg, const rs_experiment_options *xo, const rs_engine_options *opt, int t,
                    const unsigned char *by_blocks, rs_results *held, int *held_run, rs_engine_stats *total,
                    int *threads_used, rs_error *err)
{
    const int n = cfg->num_routers, rank = rs_ranks_rank(), size = rs_ranks_size();
    int any = 0;
    for (int r = 0; r < n; r++)
        any |= by_blocks[r];
    if (!any) /* by_blocks is the same on every rank: so is this */
        return 0;
    const char *path = cfg->traces[t].path;
    char **keys = calloc((size_t)n + 1, sizeof *keys);
    unsigned char *stored = calloc((size_t)n + 1, 1);
    int rc = keys && stored ? 0 : rs_fail(err, "out of memory");
    /* rank 0 alone keeps the run store of these runs */
    int num_stored = 0, num_blocked = 0;
    for (int r = 0; r < n && rc == 0 && rank == 0; r++) {
        if (!by_blocks[r])
            continue;
        num_blocked++;
        if (!(keys[r] = rs_run_cache_key(cfg, opt, path, r, err))) {
            rc = -1;
            break;
        }
        int hit = xo->force ? 0 : rs_run_cache_load(cfg->output, keys[r], held, &held_run[r], err);
        if (hit < 0)
            rc = -1;
        stored[r] = hit > 0;
        num_stored += hit > 0;
    }
    if (rc == 0 && num_stored > 0)
        fprintf(stderr, "routesim: %s: %d of %d runs already in %s/runs (--force recomputes them)\n", path,
                num_stored, num_blocked, cfg->output);
    if (rc == 0 && num_blocked > num_stored)
        fprintf(stderr, "routesim: %s: %d run%s in %d blocks of whole sequences, one per rank\n", path,
                num_blocked - num_stored, num_blocked - num_stored == 1 ? "" : "s", size);
    rs_trace *trace = NULL;
    int64_t t_begin = 0, t_end = 0;
    if (rc == 0)
        rc = rs_trace_open(&trace, path, err);
    if (rc == 0)
        rc = rs_block_tokens(trace, size, rank, &t_begin, &t_end, err);
    rs_engine_options block_opt = *opt;
    char label[1200];
    snprintf(label, sizeof label, "%s (block %d/%d)", path, rank + 1, size);
    block_opt.progress_label = label;
    if (rank != 0) /* one progress line: rank 0's */
        block_opt.progress = 0;
    /* from here on every return value is agreed by all ranks */
    rc = rs_ranks_agree(rc, err);
    if (rc == 0)
        rs_ranks_broadcast(stored, (size_t)n);
    for (int r = 0; r < n && rc == 0; r++)
        if (by_blocks[r] && !stored[r])
            rc = route_run(cfg, &block_opt, trace, r, t_begin, t_end, keys[r], held, held_run, total, threads_used,
                           err);
    rs_trace_close(trace);
    for (int r = 0; keys && r < n; r++)
        free(keys[r]);
    free(keys);
    free(stored);
    return rc;
}
