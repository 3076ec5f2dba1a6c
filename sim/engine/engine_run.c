/* The run loop: read chunks (and the paired reference trace's same chunks),
 * route and measure them, then file every metric's rows. */
#include <stdio.h>
#include <stdlib.h>

#include "sim/engine/engine_device.h"
#include "sim/engine/engine_internal.h"
#include "sim/engine/engine_results.h"
#include "core/progress.h"

typedef struct rs_engine engine;

rs_loader_config rs_engine_loader_config(const engine *e)
{
    return (rs_loader_config){.trace = e->trace,
                              .needs = e->needs,
                              .chunk_tokens = e->chunk_tokens,
                              /* with stored_whole_tokens, every grown chunk goes in bands: from
                                 memory up to that size, from the file past it */
                              .whole_tokens = e->stored_whole_tokens > 0 ? e->chunk_tokens : e->whole_tokens,
                              .stored_whole_tokens = e->stored_whole_tokens,
                              .group_modes = e->group_modes,
                              .batch_tokens = e->opt->batch_tokens,
                              .background = e->threads > 1,
                              .stored_only = rs_engine_device_widens(e),
                              .cuts = e->cuts,
                              .num_cuts = e->num_cuts,
                              .start = e->start,
                              .end = e->end};
}

/* A loaded chunk of e, widened, checked and prepared for its routers (in
 * bands of e->band layers when b->banded). */
static int ready_chunk(engine *e, rs_loaded_chunk *b, rs_chunk *c, int64_t *skipped, rs_error *err)
{
    e->banded = b->banded;
    e->band_in_memory = b->stored_whole;
    RS_TRY(rs_engine_ensure_capacity(e, b->n, b->banded ? e->band : e->L, err));
    RS_TRY(rs_engine_chunk_view(e, b, c, skipped, err));
    rs_chunk before = *c;
    if (e->band_source) /* its rows are widened layer by layer as they are routed */
        before.logits = NULL;
    for (int r = 0; r < e->num_routers; r++)
        if (e->routers[r].spec->type->prepare_chunk)
            RS_TRY(e->routers[r].spec->type->prepare_chunk(e->routers[r].state, &before, err));
    return 0;
}

/* Failures that routers recorded while routing the chunk (check_chunk). */
static int check_routers(engine *e, rs_error *err)
{
    for (int r = 0; r < e->num_routers; r++)
        if (e->routers[r].spec->type->check_chunk)
            RS_TRY(e->routers[r].spec->type->check_chunk(e->routers[r].state, err));
    return 0;
}

int rs_engine_file_results(engine *e, rs_error *err)
{
    for (int m = 0; m < e->num_metric_slots; m++) {
        metric_slot *ms = &e->metrics[m];
        if (e->opt->bootstrap > 0) {
            ms->blocks[e->block] = ms->acc; /* the last block */
            ms->acc = NULL;
            RS_TRY(rs_engine_bootstrap_file(e, ms, err));
            continue;
        }
        rs_metric_sink sink = {0};
        ms->spec->type->finalize(ms->acc, &sink);
        int rc = sink.failed ? rs_fail(err, "out of memory")
                             : rs_file_metric_rows(ms->spec, ms->keep, &sink,
                                                   ms->by >= 0 ? e->by_groups[ms->by].key : NULL,
                                                   e->routers[ms->router].run, e->results,
                                                   err);
        rs_metric_sink_free(&sink);
        RS_TRY(rc);
    }
    return 0;
}

/* Whether a checkpoint is due after `since` chunks and the last save at
 * `last` (rs_now). */
static int checkpoint_due(const rs_engine_checkpoint *cp, int64_t since, double last)
{
    return (cp->chunks > 0 && since >= cp->chunks) || (cp->seconds > 0 && rs_now() - last >= cp->seconds);
}

int rs_engine_run(engine *e, rs_decisions_writer *decisions_out, rs_engine_stats *stats, rs_error *err)
{
    const rs_engine_options *options = e->opt;
    const rs_engine_checkpoint *cp = &options->checkpoint;
    double start = rs_now();
    int64_t skipped = e->resumed_skipped, paired_skipped = e->resumed_paired_skipped, chunks = e->resumed_chunks,
            largest = 0, banded = 0, memory_banded = 0;
    int smallest_band = 0;
    double read_seconds = 0, compute_seconds = 0, checkpoint_seconds = 0, last_save = start;
    int64_t checkpoints = 0, since_save = 0;
    const int64_t T = e->info->num_tokens;
    const int wanted = cp->path && cp->key && (cp->seconds > 0 || cp->chunks > 0) && !e->block_pass;
    char why[300] = "";
    int saving = wanted && rs_engine_checkpointable(e, why, sizeof why);
    rs_chunk_loader *loader = NULL, *paired_loader = NULL;
    int rc = rs_engine_plan_bands(e, decisions_out != NULL, err);
    if (rc == 0)
        rc = rs_engine_check_metric_bytes(e, err);
    rs_loader_config lc = rs_engine_loader_config(e);
    /* Without a paired trace, the threads routing a chunk read the next one
     * themselves, as one of its work items: a reader thread beside them
     * would take its core from one of them, and with every core busy
     * routing, the next chunk was often not read when it was wanted. */
    const int read_in_items = e->threads > 1 && !e->paired;
    if (read_in_items)
        lc.background = 0;
    if (rc == 0)
        rc = rs_chunk_loader_create(&loader, &lc, err);
    if (rc == 0 && e->paired) {
        rs_loader_config plc = rs_engine_loader_config(e->paired);
        rc = rs_chunk_loader_create(&paired_loader, &plc, err);
    }
    rs_progress progress;
    rs_progress_start(&progress, options->progress, T, options->progress_label ? options->progress_label : "routing",
                      "tok");
    while (rc == 0) {
        double t_read = rs_now();
        rs_chunk c, pc;
        rs_loaded_chunk *b = NULL, *pb = NULL;
        if ((rc = rs_chunk_loader_next(loader, &b, err)) != 0 || !b)
            break;
        if (e->paired) {
            if ((rc = rs_chunk_loader_next(paired_loader, &pb, err)) != 0)
                break;
            if (!pb || pb->t0 != b->t0 || pb->n != b->n || pb->banded != b->banded) {
                rc = rs_fail(err, "internal error: reference trace %s read out of step with %s", e->paired->info->path,
                             e->info->path);
                break;
            }
        }
        if (b->banded) {
            e->band = rs_engine_band_layers(e, b->n, b->stored_whole);
            if (e->paired)
                e->paired->band = e->band;
            if (!b->stored_whole) { /* what the budget forced: reported */
                banded++;
                smallest_band = smallest_band == 0 || e->band < smallest_band ? e->band : smallest_band;
            } else {
                memory_banded++;
            }
        }
        if ((rc = ready_chunk(e, b, &c, &skipped, err)) != 0 ||
            (e->paired && (rc = ready_chunk(e->paired, pb, &pc, &paired_skipped, err)) != 0))
            break;
        if (e->opt->bootstrap > 0 && (rc = rs_engine_bootstrap_enter(e, c.t0, err)) != 0)
            break;
        double t_compute = rs_now();
        read_seconds += t_compute - t_read;
        if (b->banded) {
            e->read_ahead = read_in_items ? loader : NULL; /* taken by bands that read nothing from the file */
            rc = rs_engine_route_bands(e, b, &c, pb, e->paired ? &pc : NULL, e->band, err);
            e->read_ahead = NULL;
            if (rc != 0)
                break;
        } else {
            if (e->paired && (rc = rs_engine_process_chunk(e->paired, &pc, NULL, err)) != 0)
                break;
            e->read_ahead = read_in_items ? loader : NULL;
            rc = rs_engine_process_chunk(e, &c, e->paired ? &pc : NULL, err);
            e->read_ahead = NULL;
            if (rc != 0)
                break;
        }
        if ((e->paired && (rc = check_routers(e->paired, err)) != 0) || (rc = check_routers(e, err)) != 0)
            break;
        compute_seconds += rs_now() - t_compute;
        if (decisions_out && e->num_runs > 0 &&
            (rc = rs_decisions_writer_append(decisions_out, c.n, e->routers[0].dec.ids, e->routers[0].dec.weights,
                                             err)) != 0)
            break;
        chunks++;
        largest = c.n > largest ? c.n : largest;
        rs_progress_update(&progress, c.t0 + c.n);
        if (wanted && c.t0 + c.n < T && checkpoint_due(cp, ++since_save, last_save)) {
            double t_save = rs_now();
            rs_error save_err = {{0}};
            if (!saving) {
                if (why[0]) /* said once, when a checkpoint would have been saved */
                    fprintf(stderr, "routesim: note: no checkpoints of this pass (%s): a rerun after an interruption "
                                    "starts it over\n", why);
                why[0] = '\0';
            } else if (rs_engine_checkpoint_save(e, c.t0 + c.n, skipped, paired_skipped, chunks, &save_err) != 0) {
                /* the pass goes on without: a checkpoint only saves time */
                fprintf(stderr, "routesim: warning: %s; continuing without checkpoints\n", save_err.msg);
                saving = 0;
            }
            last_save = rs_now();
            checkpoint_seconds += last_save - t_save;
            since_save = 0;
            checkpoints += saving;
            if (saving && cp->saved && cp->saved(cp->saved_ctx, c.t0 + c.n) != 0) {
                rc = rs_fail(err, "stopped after the checkpoint at token %lld", (long long)(c.t0 + c.n));
                break;
            }
        }
    }
    rs_chunk_loader_destroy(loader);
    rs_chunk_loader_destroy(paired_loader);
    if (rc == 0) {
        rs_progress_finish(&progress);
        if (!e->block_pass) /* a block's accumulators are merged first (engine_blocks.c) */
            rc = rs_engine_file_results(e, err);
    }
    if (stats) {
        stats->tokens = T;
        stats->skipped_tokens = skipped;
        stats->reference_skipped_tokens = paired_skipped;
        stats->chunk_tokens = e->chunk_tokens;
        stats->chunks = chunks;
        stats->largest_chunk = largest;
        stats->banded_chunks = banded;
        stats->memory_banded_chunks = memory_banded;
        stats->band_layers = smallest_band;
        stats->layers = e->L;
        stats->threads = e->threads;
        stats->seconds = rs_now() - start;
        stats->read_seconds = read_seconds;
        stats->compute_seconds = compute_seconds;
        stats->resumed_at = e->start;
        stats->checkpoints = checkpoints;
        stats->checkpoint_seconds = checkpoint_seconds;
    }
    return rc;
}
