/* What the metric accumulators of a pass keep, measured before anything
 * is routed. A family's checkpoint hook names every byte of its state
 * (routesim/checkpoint.h), so counting what it names measures an
 * accumulator without a hook of its own. A pass keeps each run's
 * accumulator, its token slices' copies during a chunk, and with
 * bootstrap one compacted accumulator per block. The engine refuses a
 * pass whose accumulators exceed the memory budget before it routes, and
 * the experiment runner sizes its passes by these numbers. */
#include <math.h>
#include <stdio.h>

#include "core/state_io.h"
#include "sim/engine/engine_internal.h"

typedef struct rs_engine engine;

/* Bytes acc's checkpoint names; 0 for a family that cannot save its state. */
static size_t accumulator_bytes(const rs_metric_type *t, void *acc)
{
    if (!t->checkpoint || !acc)
        return 0;
    rs_state_io io;
    rs_state_io_start(&io, NULL, 0);
    t->checkpoint(acc, &io);
    return (size_t)io.bytes;
}

/* A finished bootstrap block: a fresh accumulator compacted, as
 * rs_engine_bootstrap_enter leaves every block it closes. */
static int block_bytes(metric_slot *ms, size_t *bytes, rs_error *err)
{
    const rs_metric_type *t = ms->spec->type;
    void *acc = NULL;
    RS_TRY(t->create(&acc, &ms->spec->params, &ms->setup, err));
    if (t->compact)
        t->compact(acc);
    *bytes = accumulator_bytes(t, acc);
    t->destroy(acc);
    return 0;
}

int rs_engine_measure_metrics(engine *e, rs_error *err)
{
    const double blocks = e->opt->bootstrap > 0 ? (double)e->num_cuts + 1 : 0;
    double total = 0, largest = 0;
    const char *largest_name = "";
    /* slots of one (spec, router) are consecutive: the run's, then each
     * breakdown group's; a family's share counts them together */
    const int per_run = 1 + e->num_by_groups;
    double spec_bytes = 0;
    for (int m = 0; m < e->num_metric_slots; m++) {
        metric_slot *ms = &e->metrics[m];
        size_t live = accumulator_bytes(ms->spec->type, ms->acc), block = 0;
        if (blocks > 0)
            RS_TRY(block_bytes(ms, &block, err));
        double slot = (double)live * e->max_slices + (double)block * blocks;
        total += slot;
        spec_bytes = m % per_run == 0 ? slot : spec_bytes + slot;
        if (spec_bytes > largest) {
            largest = spec_bytes;
            largest_name = ms->spec->type->name;
        }
    }
    e->metric_bytes = total;
    e->largest_metric = largest_name;
    e->largest_metric_bytes = largest;
    return 0;
}

int rs_engine_check_metric_bytes(const engine *e, rs_error *err)
{
    const double total = e->metric_bytes, blocks = e->opt->bootstrap > 0 ? (double)e->num_cuts + 1 : 0;
    if (total <= (double)e->budget)
        return 0;
    char blocks_hint[160] = "";
    if (blocks > 0)
        snprintf(blocks_hint, sizeof blocks_hint, " (with one accumulator per bootstrap block, %.0f blocks)", blocks);
    char groups_hint[160] = "";
    if (e->num_by_groups > 0)
        snprintf(groups_hint, sizeof groups_hint, " (with the breakdown's %d groups: %d accumulators per metric)",
                 e->num_by_groups, e->num_by_groups + 1);
    return rs_fail(err,
                   "%s: the metric accumulators of %d run%s need %.1f MiB%s%s, %s %.1f MiB of it, above the memory "
                   "budget of %.0f MiB; raise --memory-mb (config memory_mb)%s%s",
                   e->info->path, e->num_runs, e->num_runs == 1 ? "" : "s", total / (1 << 20), groups_hint, blocks_hint,
                   e->largest_metric, e->largest_metric_bytes / (1 << 20), floor((double)e->budget / (1 << 20)),
                   blocks > 0 ? " or lower the bootstrap's blocks (config bootstrap.blocks)" : "",
                   e->num_by_groups > 0 ? " or break down by fewer groups" : "");
}

double rs_engine_metric_bytes(const engine *e) { return e->metric_bytes; }
