/* Placements: creation, the checks every policy's output and every file
 * passes, and the derived maps (logical_count, logical_to_physical_map). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/placement.h"

int rs_placement_layout_check(const rs_placement_layout *lay, rs_error *err)
{
    RS_CHECK(lay->E >= 1, err, "placement: experts must be at least 1 (got %d)", lay->E);
    RS_CHECK(lay->G >= 1, err, "placement: devices must be at least 1 (got %d)", lay->G);
    RS_CHECK(lay->N >= 1, err, "placement: nodes must be at least 1 (got %d)", lay->N);
    RS_CHECK(lay->S >= lay->E, err, "placement: %d slots cannot hold %d experts (replicas must be >= 0)", lay->S,
             lay->E);
    RS_CHECK(lay->S % lay->G == 0, err,
             "placement: devices (%d) must divide the slots (%d experts + %d replicas = %d)", lay->G, lay->E,
             lay->S - lay->E, lay->S);
    RS_CHECK(lay->G % lay->N == 0, err, "placement: nodes (%d) must divide devices (%d)", lay->N, lay->G);
    RS_CHECK(lay->groups >= 1 && lay->E % lay->groups == 0, err,
             "placement: groups (%d) must be at least 1 and divide the experts (%d)", lay->groups, lay->E);
    return 0;
}

rs_placement *rs_placement_new(int L, const rs_placement_layout *lay, rs_error *err)
{
    if (L < 1) {
        rs_fail(err, "placement: layers must be at least 1 (got %d)", L);
        return NULL;
    }
    if (rs_placement_layout_check(lay, err) != 0)
        return NULL;
    rs_placement *p = calloc(1, sizeof *p);
    if (!p) {
        rs_fail(err, "placement: out of memory");
        return NULL;
    }
    p->L = L;
    p->layout = *lay;
    const size_t cells = (size_t)L * (size_t)lay->S;
    p->phy2log = malloc(cells * sizeof *p->phy2log);
    p->rank = malloc(cells * sizeof *p->rank);
    p->logcnt = calloc((size_t)L * (size_t)lay->E, sizeof *p->logcnt);
    if (!p->phy2log || !p->rank || !p->logcnt) {
        rs_placement_free(p);
        rs_fail(err, "placement: out of memory for %d layers x %d slots", L, lay->S);
        return NULL;
    }
    for (size_t i = 0; i < cells; i++)
        p->phy2log[i] = p->rank[i] = -1;
    return p;
}

void rs_placement_free(rs_placement *p)
{
    if (!p)
        return;
    free(p->phy2log);
    free(p->rank);
    free(p->logcnt);
    free(p->log2phy);
    free(p);
}

rs_placement *rs_placement_copy(const rs_placement *p, rs_error *err)
{
    rs_placement *c = rs_placement_new(p->L, &p->layout, err);
    if (!c)
        return NULL;
    const size_t cells = (size_t)p->L * (size_t)p->layout.S;
    memcpy(c->phy2log, p->phy2log, cells * sizeof *c->phy2log);
    memcpy(c->rank, p->rank, cells * sizeof *c->rank);
    if (rs_placement_finish(c, err) != 0) {
        rs_placement_free(c);
        return NULL;
    }
    return c;
}

int rs_placement_finish(rs_placement *p, rs_error *err)
{
    const int S = p->layout.S, E = p->layout.E;
    int ranks_given = p->rank[0] >= 0;
    int maxcnt = 0;
    memset(p->logcnt, 0, (size_t)p->L * (size_t)E * sizeof *p->logcnt);
    for (int l = 0; l < p->L; l++) {
        const int32_t *row = p->phy2log + (size_t)l * S;
        int32_t *rank = p->rank + (size_t)l * S;
        int32_t *cnt = p->logcnt + (size_t)l * E;
        for (int s = 0; s < S; s++) {
            RS_CHECK(row[s] >= 0 && row[s] < E, err, "placement: layer %d slot %d holds expert %d, not in [0, %d)", l,
                     s, row[s], E);
            RS_CHECK((rank[s] >= 0) == ranks_given, err,
                     "placement: layer %d slot %d: replica ranks are given for some slots only", l, s);
            if (!ranks_given)
                rank[s] = cnt[row[s]];
            cnt[row[s]]++;
        }
        for (int e = 0; e < E; e++) {
            RS_CHECK(cnt[e] >= 1, err, "placement: layer %d: expert %d has no slot", l, e);
            if (cnt[e] > maxcnt)
                maxcnt = cnt[e];
        }
    }
    free(p->log2phy);
    p->maxcnt = maxcnt;
    const size_t cells = (size_t)p->L * (size_t)E * (size_t)maxcnt;
    p->log2phy = malloc(cells * sizeof *p->log2phy);
    RS_CHECK(p->log2phy, err, "placement: out of memory");
    for (size_t i = 0; i < cells; i++)
        p->log2phy[i] = -1;
    for (int l = 0; l < p->L; l++)
        for (int s = 0; s < S; s++) {
            const int e = p->phy2log[(size_t)l * S + s], r = p->rank[(size_t)l * S + s];
            const int cnt = p->logcnt[(size_t)l * E + e];
            RS_CHECK(r < cnt, err, "placement: layer %d slot %d: replica rank %d of expert %d, which has %d replicas",
                     l, s, r, e, cnt);
            int32_t *at = &p->log2phy[((size_t)l * E + e) * maxcnt + r];
            RS_CHECK(*at < 0, err, "placement: layer %d: expert %d has replica rank %d twice (slots %d and %d)", l, e,
                     r, *at, s);
            *at = s;
        }
    return 0;
}

rs_placement *rs_placement_plan(const rs_placement_policy *policy, const rs_placement_stats *stats,
                                const rs_placement_options *options, rs_error *err)
{
    const rs_placement_layout *lay = &options->layout;
    if (rs_placement_layout_check(lay, err) != 0)
        return NULL;
    if (stats->E != lay->E) {
        rs_fail(err, "placement %s: the statistics have %d experts, the layout %d", policy->name, stats->E, lay->E);
        return NULL;
    }
    if ((policy->needs & RS_PLACEMENT_NEEDS_LOADS) && !stats->loads) {
        rs_fail(err, "placement %s: needs expert loads, and none were given", policy->name);
        return NULL;
    }
    if ((policy->needs & RS_PLACEMENT_NEEDS_TRANSITIONS) && !stats->transitions && stats->L > 1) {
        rs_fail(err, "placement %s: needs layer-to-layer transitions, and none were collected", policy->name);
        return NULL;
    }
    if ((policy->needs & RS_PLACEMENT_NEEDS_PATH) && !(options->path && options->path[0])) {
        rs_fail(err, "placement %s: needs a file (policy file:PATH)", policy->name);
        return NULL;
    }
    if (stats->loads)
        for (int l = 0; l < stats->L; l++)
            for (int e = 0; e < stats->E; e++) {
                const double w = stats->loads[(size_t)l * stats->E + e];
                if (!(isfinite(w) && w >= 0)) {
                    rs_fail(err, "placement %s: load of layer %d expert %d is %g; loads must be finite and >= 0",
                            policy->name, l, e, w);
                    return NULL;
                }
            }
    rs_placement *p = rs_placement_new(stats->L, lay, err);
    if (!p)
        return NULL;
    if (policy->plan(p, stats, options, err) != 0) {
        rs_placement_free(p);
        return NULL;
    }
    return p;
}
