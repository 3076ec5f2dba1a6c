/* Bootstrap over sequences. The trace is cut into blocks of whole
 * sequences (every sequence its own block when there are at most
 * bootstrap_blocks of them); chunks never cross a cut, so each metric keeps
 * one accumulator per block. Accumulators merge (that is their contract),
 * so the point estimate is all blocks merged in order, exactly the run
 * without bootstrap, and a resample is the merge of blocks drawn with
 * replacement. Each result row gets the basic interval of moe-lrc's
 * reports (scipy.stats.bootstrap, method "basic"): 2 theta - q(1 - a/2),
 * 2 theta - q(a/2), with q the linear-interpolated percentiles of the
 * resampled values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/rng.h"
#include "sim/engine/engine_internal.h"
#include "sim/engine/engine_results.h"

typedef struct rs_engine engine;

enum { DEFAULT_BLOCKS = 200 };

int rs_engine_bootstrap_setup(engine *e, rs_error *err)
{
    const rs_trace_info *info = e->info;
    const int64_t S = info->num_sequences;
    RS_CHECK(S >= 2, err, "bootstrap over sequences needs at least 2 sequences; %s has %lld", info->path,
             (long long)S);
    int64_t B = e->opt->bootstrap_blocks > 0 ? e->opt->bootstrap_blocks : DEFAULT_BLOCKS;
    B = B < S ? B : S;
    e->cuts_owned = malloc((size_t)B * sizeof *e->cuts_owned);
    RS_CHECK(e->cuts_owned, err, "out of memory");
    e->cuts = e->cuts_owned;
    e->num_cuts = 0;
    for (int64_t b = 1; b < B; b++) { /* block b starts at sequence b S / B */
        int64_t at = 0;
        RS_TRY(rs_trace_read_offsets(e->trace, b * S / B, 1, &at, err));
        if (at > 0 && at < info->num_tokens && (e->num_cuts == 0 || at > e->cuts_owned[e->num_cuts - 1]))
            e->cuts_owned[e->num_cuts++] = at;
    }
    e->sliceable = 0; /* one accumulator per block and metric, no token slices */
    e->block = 0;
    return 0;
}

/* What would only fail when the intervals are computed, after the whole
 * trace was routed, is refused before routing: a metric that follows
 * sequences with batches that cross them (a block would start inside a
 * sequence, where such a metric cannot be merged), and a metric whose
 * accumulators cannot merge at all (the cache with reset=never, whose
 * caches carry over the whole trace), found by merging two fresh ones. */
int rs_engine_bootstrap_check(engine *e, rs_error *err)
{
    const router_slot *batched = NULL;
    for (int r = 0; r < e->num_routers && !batched; r++) {
        const router_slot *rs = &e->routers[r];
        if (rs->shape.group == RS_GROUP_BATCH || (rs->capacity.enabled && rs->capacity.group == RS_GROUP_BATCH))
            batched = rs;
    }
    for (int m = 0; m < e->num_metric_slots; m++) {
        metric_slot *ms = &e->metrics[m];
        const rs_metric_type *t = ms->spec->type;
        RS_CHECK(!batched || !(t->flags & RS_METRIC_SEQUENTIAL), err,
                 "bootstrap over sequences: metric %s follows sequences, so its blocks must start where a sequence "
                 "starts, but router %s routes batches of batch_tokens=%d consecutive tokens across sequences; "
                 "bootstrap it with group=sequence or group=step, or without %s",
                 t->name, batched->spec->label, e->opt->batch_tokens, t->name);
        void *a = NULL, *b = NULL;
        RS_TRY(t->create(&a, &ms->spec->params, &ms->setup, err));
        int rc = t->create(&b, &ms->spec->params, &ms->setup, err);
        if (rc == 0) {
            if (t->compact)
                t->compact(b);
            rc = t->merge(a, b, err);
            if (rc != 0)
                rs_fail_context(err, "bootstrap over sequences merges one accumulator per block of sequences");
            t->destroy(b);
        }
        t->destroy(a);
        RS_TRY(rc);
    }
    return 0;
}

static int block_of(const engine *e, int64_t t0)
{
    int b = 0;
    while (b < e->num_cuts && e->cuts[b] <= t0)
        b++;
    return b;
}

int rs_engine_bootstrap_enter(engine *e, int64_t t0, rs_error *err)
{
    int b = block_of(e, t0);
    if (b == e->block)
        return 0;
    for (int m = 0; m < e->num_metric_slots; m++) {
        metric_slot *ms = &e->metrics[m];
        ms->blocks[e->block] = ms->acc;
        if (ms->spec->type->compact) /* a finished block is only merged from now on */
            ms->spec->type->compact(ms->acc);
        ms->acc = NULL;
        RS_TRY(ms->spec->type->create(&ms->acc, &ms->spec->params, &ms->setup, err));
    }
    e->block = b;
    return 0;
}

/* The block accumulators picked[0..n) merged in that order into a fresh one. */
static void *merged(metric_slot *ms, void *const *picked, int n, rs_error *err)
{
    const rs_metric_type *t = ms->spec->type;
    void *acc = NULL;
    if (t->create(&acc, &ms->spec->params, &ms->setup, err) != 0)
        return NULL;
    for (int i = 0; i < n; i++)
        if (t->merge(acc, picked[i], err) != 0) {
            t->destroy(acc);
            return NULL;
        }
    return acc;
}

/* Rows of one accumulator, filed into results (run = the metric's run). */
static int file_acc(const engine *e, metric_slot *ms, const void *acc, int run, rs_results *results, rs_error *err)
{
    rs_metric_sink sink = {0};
    ms->spec->type->finalize(acc, &sink);
    const char *by = ms->by >= 0 ? e->by_groups[ms->by].key : NULL;
    int rc = sink.failed ? rs_fail(err, "out of memory")
                         : rs_file_metric_rows(ms->spec, ms->keep, &sink, by, run, results, err);
    rs_metric_sink_free(&sink);
    return rc;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* numpy.percentile's default (linear) on sorted v[0..n). */
static double percentile(const double *v, int n, double q)
{
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

int rs_engine_bootstrap_file(engine *e, metric_slot *ms, rs_error *err)
{
    const rs_metric_type *t = ms->spec->type;
    const int run = e->routers[ms->router].run;
    const int R = e->opt->bootstrap;
    const double level = e->opt->bootstrap_level > 0 ? e->opt->bootstrap_level : 0.95;
    int nb = 0;
    void **present = malloc((size_t)(e->num_cuts + 1) * 2 * sizeof *present);
    RS_CHECK(present, err, "out of memory");
    void **picked = present + e->num_cuts + 1;
    for (int b = 0; b <= e->num_cuts; b++)
        if (ms->blocks[b])
            present[nb++] = ms->blocks[b];
    /* resamples merge sealed copies: blocks that stand alone */
    void **sealed = calloc((size_t)nb + 1, sizeof *sealed);
    if (!sealed) {
        free(present);
        return rs_fail(err, "out of memory");
    }

    /* the point estimate: every block in order, as if never cut */
    size_t first = e->results->num_rows;
    void *acc = merged(ms, present, nb, err);
    int rc = acc ? file_acc(e, ms, acc, run, e->results, err) : -1;
    if (acc)
        t->destroy(acc);
    size_t rows = e->results->num_rows - first;
    double *values = rc == 0 && rows ? malloc(rows * (size_t)R * sizeof *values) : NULL;
    if (rc == 0 && rows && !values)
        rc = rs_fail(err, "out of memory");
    for (int i = 0; i < nb && rc == 0 && rows; i++) {
        if (!(sealed[i] = merged(ms, &present[i], 1, err))) {
            rc = -1;
        } else {
            if (t->seal)
                t->seal(sealed[i]);
            if (t->compact)
                t->compact(sealed[i]);
        }
    }

    for (int r = 0; r < R && rc == 0 && rows; r++) {
        rs_rng rng = rs_rng_keyed(e->opt->bootstrap_seed, 0, (uint64_t)r); /* the same draws for every metric */
        for (int i = 0; i < nb; i++)
            picked[i] = sealed[rs_rng_below(&rng, (uint64_t)nb)];
        if (!(acc = merged(ms, picked, nb, err))) {
            rc = -1;
            break;
        }
        rs_results tmp;
        rs_results_init(&tmp);
        rc = rs_results_add_run(&tmp, "", "", "", "", "") < 0 ? rs_fail(err, "out of memory")
                                                              : file_acc(e, ms, acc, 0, &tmp, err);
        t->destroy(acc);
        /* match rows by (metric, key, layer): a resample may lack a row (e.g. an empty layer) */
        for (size_t i = 0, j = 0; i < rows && rc == 0; i++) {
            const rs_result_row *want = &e->results->rows[first + i];
            if (j >= tmp.num_rows || !rs_result_row_same(want, &tmp.rows[j]))
                for (j = 0; j < tmp.num_rows && !rs_result_row_same(want, &tmp.rows[j]); j++)
                    ;
            values[i * (size_t)R + (size_t)r] = j < tmp.num_rows ? tmp.rows[j++].value : NAN;
        }
        rs_results_free(&tmp);
    }

    for (size_t i = 0; i < rows && rc == 0; i++) {
        double *v = values + i * (size_t)R;
        int n = 0;
        for (int r = 0; r < R; r++)
            if (isfinite(v[r]))
                v[n++] = v[r];
        qsort(v, (size_t)n, sizeof *v, by_value);
        const rs_result_row *point = &e->results->rows[first + i];
        double theta = point->value, lo = NAN, hi = NAN;
        if (n > 0 && isfinite(theta)) {
            lo = 2 * theta - percentile(v, n, (1 + level) / 2);
            hi = 2 * theta - percentile(v, n, (1 - level) / 2);
        }
        char metric[256], key[1300], low_key[1400], high_key[1400];
        snprintf(metric, sizeof metric, "%s", point->metric);
        snprintf(key, sizeof key, "%s", point->key);
        int layer = point->layer;
        rs_key_with_stat(key, "ci_low", low_key, sizeof low_key);
        rs_key_with_stat(key, "ci_high", high_key, sizeof high_key);
        /* adding rows may move e->results->rows: nothing above points into it now */
        if (rs_results_add_row(e->results, run, metric, low_key, layer, lo) != 0 ||
            rs_results_add_row(e->results, run, metric, high_key, layer, hi) != 0)
            rc = rs_fail(err, "out of memory");
    }
    for (int i = 0; i < nb; i++)
        if (sealed[i])
            t->destroy(sealed[i]);
    free(sealed);
    free(values);
    free(present);
    return rc;
}
