/* What the query-level routers (unit = query, docs/routers.md "Query
 * routing") share: naming models, the seeded training split, the scores a
 * router ranks models by (the trace's logits or a domain prior fitted on the
 * training split) and one streaming pass over a trace's queries.
 *
 * A query's domain is the label of the sequence holding it
 * (/sequences/domain; -1 without domains). Everything fitted at create time
 * reads the trace once, in blocks, holding per-domain tables only. */
#ifndef ROUTESIM_QUERY_UTIL_H
#define ROUTESIM_QUERY_UTIL_H

#include <stdint.h>

#include "routesim/rng.h"
#include "routesim/router.h"
#include "workloads/trace/query_models.h"

/* Parameters every query router takes: which queries are the training split. */
#define RS_QUERY_SPLIT_PARAMS                                                                                        \
    {"train_share", RS_PARAM_FLOAT, "0", 0, 1, NULL,                                                                 \
     "share of queries in the training split (fits domain_prior; left out of outcome metrics); give every "       \
     "compared router the same value"},                                                                            \
    {"split_seed", RS_PARAM_INT, "0", 0, 9007199254740991.0, NULL, "seed of the training split"}

/* The score a ranking router reads. */
#define RS_QUERY_SCORE_PARAM                                                                                         \
    {"score", RS_PARAM_ENUM, "auto", 0, 0, "auto|logits|domain_prior",                                              \
     "model scores: /router/logits[t, 0, e], or the model's mean quality on training queries of the query's "      \
     "domain; auto = logits when the trace has them"}

/* Names the router in messages ("router fixed") and checks unit = query. */
int rs_query_check_trace(const rs_router_setup *setup, const char *router, rs_error *err);


/* '|'-separated numbers, at most max. */
int rs_query_number_list(const char *router, const char *param, const char *text, double *out, int max, int *count,
                         rs_error *err);

/* The training split: query t is a training query with probability share,
 * from a keyed draw of (seed, t), so membership never depends on chunks. */
typedef struct rs_query_split {
    double share;
    uint64_t seed;
} rs_query_split;

int rs_query_split_init(rs_query_split *split, const rs_params *params, const char *router, rs_error *err);

static inline int rs_query_is_training(const rs_query_split *s, int64_t t)
{
    if (s->share <= 0)
        return 0;
    rs_rng rng = rs_rng_keyed(s->seed, 0x73706c6974ULL /* "split" */, (uint64_t)t);
    return rs_rng_uniform(&rng) < s->share;
}

/* The domain label of chunk query t, -1 without domains. */
static inline int32_t rs_query_domain(const rs_chunk *c, int t)
{
    return c->domain ? c->domain[c->seq_of_token[t]] : -1;
}

/* Marks row t as a training query: no model, RS_ID_TRAINING first. */
static inline void rs_query_mark_training(int32_t *ids, float *w, int kmax)
{
    for (int j = 0; j < kmax; j++) {
        ids[j] = -1;
        w[j] = 0.0f;
    }
    ids[0] = RS_ID_TRAINING;
}

/* Per-domain tables: labels min_label .. min_label + num_labels - 1 map to
 * rows 0.., every other label (and -1, no domain) to row num_labels. */
typedef struct rs_query_domains {
    int32_t min_label;
    int num_labels;
} rs_query_domains;

static inline int rs_query_domain_row(const rs_query_domains *d, int32_t label)
{
    int64_t r = (int64_t)label - d->min_label;
    return label >= 0 && r >= 0 && r < d->num_labels ? (int)r : d->num_labels;
}

/* The label range of the trace's /sequences/domain (num_labels = 0 without). */
int rs_query_domains_scan(rs_query_domains *d, const rs_trace_info *info, const char *router, rs_error *err);

typedef enum rs_query_score_source { RS_SCORE_LOGITS, RS_SCORE_DOMAIN_PRIOR } rs_query_score_source;

typedef struct rs_query_scores {
    rs_query_score_source source;
    int E;
    rs_query_domains domains;
    float *prior; /* [(num_labels + 1) * E] domain_prior: mean training quality per domain row and model */
} rs_query_scores;

/* Resolves parameter `score` and fits the domain prior when it is used
 * (adds RS_NEEDS_LOGITS to *needs for logits). */
int rs_query_scores_init(rs_query_scores *s, const rs_params *params, const rs_router_setup *setup,
                         const rs_query_split *split, const char *router, unsigned *needs, rs_error *err);
void rs_query_scores_free(rs_query_scores *s);

/* Scores of the E models for chunk query t. */
static inline const float *rs_query_score_row(const rs_query_scores *s, const rs_chunk *c, int t)
{
    if (s->source == RS_SCORE_LOGITS)
        return rs_chunk_logits(c, t, 0);
    return s->prior + (size_t)rs_query_domain_row(&s->domains, rs_query_domain(c, t)) * (size_t)s->E;
}

/* The cost of model e for chunk query t (0 without /outcome/cost). */
static inline float rs_query_cost(const rs_chunk *c, int t, int e)
{
    return c->cost ? c->cost[(size_t)t * (size_t)c->E + (size_t)e] : 0.0f;
}

/* Mean cost of each model over the trace's queries; *has_cost = 0 (and
 * zeros) without /outcome/cost. */
int rs_query_mean_costs(const rs_trace_info *info, const char *router, double *out, int *has_cost, rs_error *err);

/* One streaming pass over a trace's queries, in blocks, for what routers
 * fit at create time. Opens its own handle on the trace file. */
typedef struct rs_query_scan rs_query_scan;

typedef struct rs_query_block {
    int64_t t0;
    int n;
    const int32_t *label;   /* [n] domain labels (-1 without domains) */
    const float *quality;   /* [n, E] or NULL without /outcome/quality */
    const float *cost;      /* [n, E] or NULL without /outcome/cost */
    const float *logits;    /* [n, E] float32 when asked for, else NULL */
} rs_query_block;

int rs_query_scan_open(rs_query_scan **out, const rs_trace_info *info, int with_logits, const char *router,
                       rs_error *err);
/* The next block; returns 1, or 0 after the last one, -1 on error. */
int rs_query_scan_next(rs_query_scan *s, rs_query_block *block, rs_error *err);
void rs_query_scan_close(rs_query_scan *s);



#endif
