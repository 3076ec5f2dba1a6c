#include "sim/experiment/experiment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/output_path.h"
#include "sim/experiment/repeats.h"
#include "sim/experiment/ranks.h"
#include "sim/experiment/run_blocks.h"
#include "sim/experiment/run_cache.h"
#include "sim/experiment/run_exchange.h"
#include "sim/experiment/run_meta.h"
#include "workloads/generator/generator.h"
#include "workloads/trace/trace.h"

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Makes an imported trace (routesim import FORMAT) when it is missing. */
static int import_trace(const rs_trace_entry *te, rs_error *err)
{
    const rs_trace_import *x = &te->imp;
    RS_CHECK(file_exists(x->input), err, "%s: cannot import %s: no such file (%s outcomes; see experiments/README.md)",
             te->path, x->input, x->type->name);
    fprintf(stderr, "routesim: importing %s into %s\n", x->input, te->path);
    RS_TRY(rs_make_parent_dirs(te->path, err));
    rs_import_job job = {
        .input = x->input, .output = te->path, .options = &x->options, .quiet = 1, .limit = te->limit};
    return rs_import_run(x->type, &job, err);
}

/* Copies run `run` of src (description and rows, rows given by index) into dst. */
static int copy_run(rs_results *dst, const rs_results *src, int run, const size_t *rows, size_t n, int *out,
                    rs_error *err)
{
    const rs_result_run *x = &src->runs[run];
    int r = rs_results_add_run(dst, x->label, x->trace, x->router, x->params, x->spec);
    RS_CHECK(r >= 0, err, "out of memory");
    dst->runs[r].entry = x->entry;
    for (size_t i = 0; i < n; i++) {
        const rs_result_row *y = &src->rows[rows[i]];
        RS_CHECK(rs_results_add_row(dst, r, y->metric, y->key, y->layer, y->value) == 0, err, "out of memory");
    }
    *out = r;
    return 0;
}

/* Row indices of src grouped by run: rows of run r are order[start[r] .. start[r+1]). */
static int rows_by_run(const rs_results *src, size_t **order, size_t **start, rs_error *err)
{
    *start = calloc((size_t)src->num_runs + 2, sizeof **start);
    *order = malloc((src->num_rows + 1) * sizeof **order);
    if (!*start || !*order) {
        free(*start);
        free(*order);
        return rs_fail(err, "out of memory");
    }
    for (size_t i = 0; i < src->num_rows; i++)
        (*start)[src->rows[i].run + 2]++;
    for (int r = 0; r < src->num_runs; r++)
        (*start)[r + 2] += (*start)[r + 1];
    for (size_t i = 0; i < src->num_rows; i++)
        (*order)[(*start)[src->rows[i].run + 1]++] = i;
    return 0;
}

static void report_stats(const rs_config *cfg, const char *path, const rs_engine_stats *stats)
{
    if (stats->banded_chunks && !(stats->layers > 0 && stats->band_layers >= stats->layers))
        fprintf(stderr,
                "routesim: %s: token groups (batch_tokens=%d or whole sequences) needed chunks of up to %lld "
                "tokens, too many to hold whole in the memory budget; %lld chunks were routed in bands of %d or "
                "more layers\n",
                path, cfg->batch_tokens, (long long)stats->largest_chunk, (long long)stats->banded_chunks,
                stats->band_layers);
    else if (stats->banded_chunks)
        fprintf(stderr,
                "routesim: %s: token groups (batch_tokens=%d or whole sequences) needed chunks of up to %lld "
                "tokens, too many to hold two at a time in the memory budget; %lld chunks were read and routed "
                "one at a time, without reading the next one ahead\n",
                path, cfg->batch_tokens, (long long)stats->largest_chunk, (long long)stats->banded_chunks);
    if (stats->skipped_tokens)
        fprintf(stderr, "routesim: %s: skipped %lld tokens with non-finite logits\n", path,
                (long long)stats->skipped_tokens);
    if (stats->reference_skipped_tokens)
        fprintf(stderr, "routesim: %s: skipped %lld tokens with non-finite logits\n", cfg->reference_trace,
                (long long)stats->reference_skipped_tokens);
}

/* The key of a pass: its runs' keys, in order (caller frees). */
static char *pass_key_of(char *const *keys, const int *pending, int n)
{
    size_t len = 64;
    for (int i = 0; i < n; i++)
        len += strlen(keys[pending[i]]) + 16;
    char *key = malloc(len);
    if (!key)
        return NULL;
    size_t at = (size_t)snprintf(key, len, "pass of %d runs\n", n);
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(key + at, len - at, "run %d\n%s", i, keys[pending[i]]);
    return key;
}

/* The pass's engine, resumed from its checkpoint when one was saved (and
 * not --force): a damaged checkpoint is reported and the pass starts over. */
static int create_engine(rs_engine **engine, const rs_config *cfg, const rs_engine_options *opt, rs_trace *trace,
                         const rs_router_spec *subset, int n, int resume, rs_results *fresh, rs_error *err)
{
    RS_TRY(rs_engine_create(engine, trace, subset, n, cfg->metrics, cfg->num_metrics, opt, fresh, err));
    if (!resume)
        return 0;
    rs_error note = {{0}};
    int resumed = rs_engine_resume(*engine, &note, err);
    if (resumed < 0) {
        fprintf(stderr, "routesim: %s\n", err->msg);
        rs_engine_destroy(*engine);
        *engine = NULL;
        rs_results_free(fresh);
        rs_results_init(fresh);
        return rs_engine_create(engine, trace, subset, n, cfg->metrics, cfg->num_metrics, opt, fresh, err);
    }
    if (note.msg[0])
        fprintf(stderr, "routesim: %s\n", note.msg);
    const rs_trace_info *info = rs_trace_get_info(trace);
    if (resumed > 0)
        fprintf(stderr, "routesim: %s: resuming the pass at token %lld of %lld from %s\n", info->path,
                (long long)rs_engine_start_token(*engine), (long long)info->num_tokens, opt->checkpoint.path);
    return 0;
}

/* Routes the runs pending[0..n) of cfg on trace in one pass, checkpointed
 * under OUTPUT/runs; each finished run goes to held (*held_run[r] = its
 * index there) and to the run store, then the checkpoint is removed. */
static int route_pass(const rs_config *cfg, const rs_experiment_options *xo, const rs_engine_options *engine_opt,
                      rs_trace *trace, const int *pending, int n, char *const *keys, rs_results *held, int *held_run,
                      rs_engine_stats *stats, rs_error *err)
{
    rs_router_spec *subset = malloc((size_t)n * sizeof *subset);
    char *pass_key = pass_key_of(keys, pending, n);
    if (!subset || !pass_key) {
        free(subset);
        free(pass_key);
        return rs_fail(err, "out of memory");
    }
    for (int i = 0; i < n; i++)
        subset[i] = cfg->routers[pending[i]]; /* shallow: the engine only reads specs */
    char checkpoint[4200];
    rs_run_cache_checkpoint_path(cfg->output, pass_key, checkpoint, sizeof checkpoint);
    rs_engine_options opt = *engine_opt;
    opt.checkpoint.path = checkpoint;
    opt.checkpoint.key = pass_key;
    rs_results fresh;
    rs_results_init(&fresh);
    rs_engine *engine = NULL;
    int rc = create_engine(&engine, cfg, &opt, trace, subset, n, !xo->force, &fresh, err);
    if (rc == 0)
        rc = rs_engine_run(engine, NULL, stats, err);
    size_t *order = NULL, *start = NULL;
    if (rc == 0)
        rc = rows_by_run(&fresh, &order, &start, err);
    for (int i = 0; i < n && rc == 0; i++) {
        int run = rs_engine_router_run(engine, i);
        rc = copy_run(held, &fresh, run, order + start[run], start[run + 1] - start[run], &held_run[pending[i]], err);
        if (rc == 0)
            rc = rs_run_cache_store(cfg->output, keys[pending[i]], &fresh, run, err);
    }
    if (rc == 0) /* every run is stored: the checkpoint is of no more use */
        remove(checkpoint);
    free(order);
    free(start);
    rs_engine_destroy(engine);
    rs_results_free(&fresh);
    free(subset);
    free(pass_key);
    return rc;
}

/* Cuts the pending runs into passes of consecutive runs (sizes[i], *num
 * of them): at most runs_per_pass runs each (0: no limit), and no more
 * metric accumulators than the memory budget holds, measured on an engine
 * of each run alone. A run whose accumulators alone exceed the budget is
 * refused there, before anything is routed. */
static int plan_passes(const rs_config *cfg, const rs_experiment_options *xo, const rs_engine_options *opt,
                       rs_trace *trace, const int *pending, int num_pending, int *sizes, int *num, rs_error *err)
{
    const int most = xo->runs_per_pass > 0 ? xo->runs_per_pass : num_pending;
    const double budget = (double)(opt->memory_budget ? opt->memory_budget : RS_DEFAULT_MEMORY_BUDGET);
    double held = 0, total = 0;
    *num = 0;
    if (num_pending == 0)
        return 0;
    for (int i = 0; i < num_pending; i++) {
        double bytes = 0;
        if (cfg->num_metrics > 0 && num_pending > 1) {
            rs_engine *probe = NULL;
            rs_engine_options sizes_only = *opt;
            sizes_only.measure_only = 1;
            RS_TRY(rs_engine_create(&probe, trace, &cfg->routers[pending[i]], 1, cfg->metrics, cfg->num_metrics,
                                    &sizes_only, NULL, err));
            bytes = rs_engine_metric_bytes(probe);
            rs_engine_destroy(probe);
        }
        total += bytes;
        if (*num > 0 && sizes[*num - 1] < most && held + bytes <= budget) {
            sizes[*num - 1]++;
            held += bytes;
        } else {
            sizes[(*num)++] = 1;
            held = bytes;
        }
    }
    const int by_count = (num_pending + most - 1) / most;
    if (*num > by_count)
        fprintf(stderr,
                "routesim: %s: %d runs in %d passes over the trace, so that each pass's metric accumulators fit "
                "the memory budget of %.0f MiB (%.0f MiB for all runs)\n",
                rs_trace_get_info(trace)->path, num_pending, *num, budget / (1 << 20), total / (1 << 20));
    return 0;
}

/* Generates or imports the traces that are missing: on rank 0 only, the
 * others waiting, so that no two processes write the same file. */
static int prepare_traces(const rs_config *cfg, const rs_experiment_options *xo, rs_error *err)
{
    int rc = 0;
    for (int t = 0; t < cfg->num_traces && rc == 0 && rs_ranks_rank() == 0; t++) {
        const rs_trace_entry *te = &cfg->traces[t];
        if (te->generate && !file_exists(te->path)) {
            fprintf(stderr, "routesim: generating %s\n", te->path);
            rc = rs_generate_trace(te->path, &te->gen, &te->limit, xo->progress, err);
        }
        if (rc == 0 && te->import && !file_exists(te->path))
            rc = import_trace(te, err);
    }
    return rs_ranks_agree(rc, err);
}

/* Sums the statistics of one pass into the trace's. */
static void add_stats(rs_engine_stats *total, const rs_engine_stats *stats)
{
    total->tokens = stats->tokens;
    total->skipped_tokens = stats->skipped_tokens;
    total->reference_skipped_tokens = stats->reference_skipped_tokens;
    total->chunk_tokens = stats->chunk_tokens;
    total->largest_chunk = stats->largest_chunk > total->largest_chunk ? stats->largest_chunk : total->largest_chunk;
    total->banded_chunks += stats->banded_chunks;
    total->memory_banded_chunks += stats->memory_banded_chunks;
    if (stats->band_layers > 0 && (total->band_layers == 0 || stats->band_layers < total->band_layers))
        total->band_layers = stats->band_layers;
    total->layers = stats->layers;
    total->chunks += stats->chunks;
    total->threads = stats->threads;
    total->seconds += stats->seconds;
    total->read_seconds += stats->read_seconds;
    total->compute_seconds += stats->compute_seconds;
    total->checkpoints += stats->checkpoints;
    total->checkpoint_seconds += stats->checkpoint_seconds;
    total->resumed_at = stats->resumed_at > total->resumed_at ? stats->resumed_at : total->resumed_at;
}

/* This rank's share [first, last) of the trace's runs into held: stored
 * runs loaded, the others routed in passes and stored. */
static int route_share(const rs_config *cfg, const rs_experiment_options *xo, rs_engine_options *opt,
                       const rs_trace_entry *te, rs_trace *trace, int first, int last, const unsigned char *by_blocks,
                       rs_results *held, int *held_run, char **keys, int *pending, rs_engine_stats *total,
                       int *threads_used, rs_error *err)
{
    int num_pending = 0, stored = 0, rc = 0;
    for (int r = first; r < last && rc == 0; r++) {
        if (by_blocks[r]) /* every rank routes a block of it later (run_blocks.h) */
            continue;
        if (!(keys[r] = rs_run_cache_key(cfg, opt, te->path, r, err))) {
            rc = -1;
            break;
        }
        int hit = xo->force ? 0 : rs_run_cache_load(cfg->output, keys[r], held, &held_run[r], err);
        if (hit < 0)
            rc = -1;
        else if (hit)
            stored++;
        else
            pending[num_pending++] = r;
    }
    if (rc == 0 && stored > 0)
        fprintf(stderr, "routesim: %s: %d of %d runs already in %s/runs (--force recomputes them)\n", te->path, stored,
                last - first, cfg->output);

    int *pass_sizes = malloc(((size_t)num_pending + 1) * sizeof *pass_sizes), num_passes = 0;
    if (rc == 0 && !pass_sizes)
        rc = rs_fail(err, "out of memory");
    if (rc == 0)
        rc = plan_passes(cfg, xo, opt, trace, pending, num_pending, pass_sizes, &num_passes, err);
    char label[1200];
    for (int pass = 0, p = 0; pass < num_passes && rc == 0; p += pass_sizes[pass++]) {
        int count = pass_sizes[pass];
        if (num_passes > 1)
            snprintf(label, sizeof label, "%s (pass %d/%d)", te->path, pass + 1, num_passes);
        else
            snprintf(label, sizeof label, "%s", te->path);
        opt->progress_label = label;
        rs_engine_stats stats = {0};
        rc = route_pass(cfg, xo, opt, trace, pending + p, count, keys, held, held_run, &stats, err);
        if (rc == 0) {
            report_stats(cfg, te->path, &stats);
            *threads_used = stats.threads;
            add_stats(total, &stats);
        }
    }
    free(pass_sizes);
    return rc;
}

/* What this rank holds of one trace: its runs (held_run[r] = run r's
 * index in held, -1 when another rank routed it) and its passes' stats. */
typedef struct trace_share {
    const unsigned char *by_blocks; /* [n]: runs routed in blocks of sequences by every rank */
    rs_results held;
    int *held_run; /* n + 1, then n + 1 for pending, then n + 1 for the final index */
    rs_engine_stats total;
} trace_share;

/* This rank's share of the runs of trace number t. */
static int route_trace(const rs_config *cfg, const rs_experiment_options *xo, rs_engine_options *opt, int t,
                       trace_share *sh, int *threads_used, rs_error *err)
{
    const rs_trace_entry *te = &cfg->traces[t];
    const int n = cfg->num_routers;
    int first = 0, last = 0;
    rs_run_share(t, cfg->num_traces, n, rs_ranks_rank(), rs_ranks_size(), &first, &last);
    sh->held_run = malloc(((size_t)n + 1) * 3 * sizeof *sh->held_run);
    char **keys = calloc((size_t)n + 1, sizeof *keys);
    int rc = sh->held_run && keys ? 0 : rs_fail(err, "out of memory");
    for (int r = 0; r < n && sh->held_run; r++)
        sh->held_run[r] = -1;
    rs_trace *trace = NULL;
    if (rc == 0 && first < last)
        rc = rs_trace_open(&trace, te->path, err);
    if (rc == 0 && first < last)
        rc = route_share(cfg, xo, opt, te, trace, first, last, sh->by_blocks, &sh->held, sh->held_run, keys,
                         sh->held_run + n + 1, &sh->total, threads_used, err);
    for (int r = 0; keys && r < n; r++)
        free(keys[r]);
    free(keys);
    rs_trace_close(trace);
    return rc;
}

/* On rank 0, once every run of trace number t is in sh: the runs in config
 * order (each run's rows together), their repeat summaries and the trace's
 * entry in meta. */
static int assemble_trace(const rs_config *cfg, int t, trace_share *sh, rs_results *results, cJSON *meta,
                          rs_error *err)
{
    const int n = cfg->num_routers;
    int *final_run = sh->held_run + 2 * (n + 1);
    size_t *order = NULL, *start = NULL;
    int rc = rows_by_run(&sh->held, &order, &start, err);
    for (int r = 0; r < n && rc == 0; r++) {
        int h = sh->held_run[r];
        rc = copy_run(results, &sh->held, h, order + start[h], start[h + 1] - start[h], &final_run[r], err);
    }
    if (rc == 0)
        rc = rs_summarize_repeats(results, cfg->routers, final_run, n, 0.95, err);
    rs_trace *trace = NULL;
    if (rc == 0 && meta)
        rc = rs_trace_open(&trace, cfg->traces[t].path, err);
    if (rc == 0 && meta) {
        sh->total.tokens = rs_trace_get_info(trace)->num_tokens;
        rs_run_meta_add_trace(meta, rs_trace_get_info(trace), rs_logits_dtype_name(rs_trace_logits_dtype(trace)),
                              &sh->total);
    }
    rs_trace_close(trace);
    free(order);
    free(start);
    return rc;
}

int rs_experiment_run(const rs_config *cfg, const rs_experiment_options *xo, rs_results *results, cJSON *meta,
                      int *threads_used, rs_error *err)
{
    rs_engine_options opt = xo->engine;
    opt.reference = cfg->reference;
    rs_trace *reference_trace = NULL;
    int rc = cfg->reference_trace ? rs_trace_open(&reference_trace, cfg->reference_trace, err) : 0;
    rc = rs_ranks_agree(rc, err); /* every rank goes on, or none */
    opt.reference_trace = reference_trace;
    if (rc == 0)
        rc = prepare_traces(cfg, xo, err);
    if (rc != 0) { /* agreed: every rank stops here */
        rs_trace_close(reference_trace);
        return rc;
    }
    const int T = cfg->num_traces, n = cfg->num_routers;
    trace_share *shares = calloc((size_t)T + 1, sizeof *shares);
    unsigned char *by_blocks = calloc((size_t)T * (size_t)n + 1, 1);
    if (!shares || !by_blocks)
        rc = rs_fail(err, "out of memory");
    for (int t = 0; t < T && shares && by_blocks; t++) {
        rs_results_init(&shares[t].held);
        shares[t].by_blocks = by_blocks + (size_t)t * (size_t)n;
    }
    if (rs_ranks_agree(rc, err) == 0) /* fewer runs than ranks: runs in blocks of sequences */
        rc = rs_blocks_plan(cfg, &opt, by_blocks, err);
    else
        rc = -1;
    if (rc != 0) { /* agreed: every rank stops here */
        for (int t = 0; t < T && shares; t++)
            rs_results_free(&shares[t].held);
        free(shares);
        free(by_blocks);
        rs_trace_close(reference_trace);
        return rc;
    }
    /* every rank routes its shares of all traces, then rank 0 gathers them:
     * no rank waits for another between traces */
    for (int t = 0; t < T && rc == 0; t++)
        rc = route_trace(cfg, xo, &opt, t, &shares[t], threads_used, err);
    if (rs_ranks_agree(rc, err) != 0)
        rc = -1;
    for (int t = 0; t < T && rc == 0; t++) /* returns what every rank agreed */
        rc = rs_blocks_route(cfg, xo, &opt, t, shares[t].by_blocks, &shares[t].held, shares[t].held_run,
                             &shares[t].total, threads_used, err);
    const int agreed = rc;
    for (int t = 0; t < T && rc == 0; t++) {
        rc = rs_run_exchange(t, T, n, shares[t].by_blocks, &shares[t].held, shares[t].held_run, err);
        /* rank 0 alone can fail to read what it received: every rank stops
         * here, before the next trace's exchange (a failure the ranks
         * already agreed on is shared as it is) */
        if (!rs_ranks_failure_shared())
            rc = rs_ranks_agree(rc, err);
    }
    for (int t = 0; t < T && rc == 0 && rs_ranks_rank() == 0; t++)
        rc = assemble_trace(cfg, t, &shares[t], results, meta, err);
    if (agreed == 0 && !rs_ranks_failure_shared()) /* a failure on rank 0 alone stops the others too */
        rc = rs_ranks_agree(rc, err);
    for (int t = 0; t < T && shares; t++) {
        rs_results_free(&shares[t].held);
        free(shares[t].held_run);
    }
    free(shares);
    free(by_blocks);
    rs_trace_close(reference_trace);
    return rc;
}
