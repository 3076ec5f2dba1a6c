/* The run loop: read chunks (and the paired reference trace's same chunks),
 * route and measure them, then file every metric's rows. */
#include <stdlib.h>

#include "sim/engine/engine_internal.h"
#include "sim/engine/engine_results.h"
#include "core/progress.h"

typedef struct rs_engine engine;

static int open_loader(const engine *e, rs_chunk_loader **loader, rs_error *err)
{
    rs_loader_config lc = {.trace = e->trace,
                           .needs = e->needs,
                           .chunk_tokens = e->chunk_tokens,
                           .group_modes = e->group_modes,
                           .batch_tokens = e->opt->batch_tokens,
                           .background = e->threads > 1,
                           .cuts = e->cuts,
                           .num_cuts = e->num_cuts};
    return rs_chunk_loader_create(loader, &lc, err);
}

/* The next chunk of e, widened, checked and prepared for its routers;
 * *got = 0 after the last one. */
static int next_chunk(engine *e, rs_chunk_loader *loader, rs_chunk *c, int *got, int64_t *skipped, rs_error *err)
{
    rs_loaded_chunk *b = NULL;
    *got = 0;
    RS_TRY(rs_chunk_loader_next(loader, &b, err));
    if (!b)
        return 0;
    RS_TRY(rs_engine_ensure_capacity(e, b->n, err));
    RS_TRY(rs_engine_chunk_view(e, b, c, skipped, err));
    for (int r = 0; r < e->num_routers; r++)
        if (e->routers[r].spec->type->prepare_chunk)
            RS_TRY(e->routers[r].spec->type->prepare_chunk(e->routers[r].state, c, err));
    *got = 1;
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

static int file_results(engine *e, rs_error *err)
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
                             : rs_file_metric_rows(ms->spec, ms->keep, &sink, e->routers[ms->router].run, e->results,
                                                   err);
        rs_metric_sink_free(&sink);
        RS_TRY(rc);
    }
    return 0;
}

int rs_engine_run(engine *e, rs_decisions_writer *decisions_out, rs_engine_stats *stats, rs_error *err)
{
    const rs_engine_options *options = e->opt;
    double start = rs_now();
    int64_t skipped = 0, paired_skipped = 0, chunks = 0, largest = 0;
    double read_seconds = 0, compute_seconds = 0;
    const int64_t T = e->info->num_tokens;
    rs_chunk_loader *loader = NULL, *paired_loader = NULL;
    int rc = open_loader(e, &loader, err);
    if (rc == 0 && e->paired)
        rc = open_loader(e->paired, &paired_loader, err);
    rs_progress progress;
    rs_progress_start(&progress, options->progress, T, options->progress_label ? options->progress_label : "routing",
                      "tok");
    while (rc == 0) {
        double t_read = rs_now();
        rs_chunk c, pc;
        int got = 0, paired_got = 0;
        if ((rc = next_chunk(e, loader, &c, &got, &skipped, err)) != 0 || !got)
            break;
        if (e->paired) {
            if ((rc = next_chunk(e->paired, paired_loader, &pc, &paired_got, &paired_skipped, err)) != 0)
                break;
            if (!paired_got || pc.t0 != c.t0 || pc.n != c.n) {
                rc = rs_fail(err, "internal error: reference trace %s read out of step with %s", e->paired->info->path,
                             e->info->path);
                break;
            }
        }
        if (e->opt->bootstrap > 0 && (rc = rs_engine_bootstrap_enter(e, c.t0, err)) != 0)
            break;
        double t_compute = rs_now();
        read_seconds += t_compute - t_read;
        if (e->paired && (rc = rs_engine_process_chunk(e->paired, &pc, NULL, err)) != 0)
            break;
        if ((rc = rs_engine_process_chunk(e, &c, e->paired ? &pc : NULL, err)) != 0)
            break;
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
    }
    rs_chunk_loader_destroy(loader);
    rs_chunk_loader_destroy(paired_loader);
    if (rc == 0) {
        rs_progress_finish(&progress);
        rc = file_results(e, err);
    }
    if (stats) {
        stats->tokens = T;
        stats->skipped_tokens = skipped;
        stats->reference_skipped_tokens = paired_skipped;
        stats->chunk_tokens = e->chunk_tokens;
        stats->chunks = chunks;
        stats->largest_chunk = largest;
        stats->threads = e->threads;
        stats->seconds = rs_now() - start;
        stats->read_seconds = read_seconds;
        stats->compute_seconds = compute_seconds;
    }
    return rc;
}
