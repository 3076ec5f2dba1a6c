#include "routers/common/capacity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routers/common/balance_util.h"
#include "routesim/rng.h"

const rs_param_def rs_capacity_param_defs[] = {
    {"capacity_factor", RS_PARAM_FLOAT, NULL, 0, 1e6, NULL,
     "capacity stage: C = rounding(factor * group_tokens * k / E); unset = dropless"},
    {"capacity_rounding", RS_PARAM_ENUM, "ceil", 0, 0, "ceil|floor|round", "capacity stage: rounding of C"},
    {"min_capacity", RS_PARAM_INT, "0", 0, 1e12, NULL, "capacity stage: C is at least this"},
    {"drop_policy", RS_PARAM_ENUM, "position", 0, 0, "position|probs|priority|random",
     "capacity stage: which assignments an expert over capacity keeps"},
    {"drop_seed", RS_PARAM_INT, "0", 0, 9007199254740991.0, NULL, "capacity stage: seed of drop_policy=random"},
    {"group", RS_PARAM_ENUM, "batch", 0, 0, "sequence|batch|step",
     "token group of batch-level rules (capacity: per group)"},
    {"renorm_after_drop", RS_PARAM_BOOL, "0", 0, 1, NULL,
     "capacity stage: renormalise a token's surviving weights to sum to 1 (GShard)"},
};
const int rs_capacity_num_params = sizeof rs_capacity_param_defs / sizeof rs_capacity_param_defs[0];

void rs_capacity_from_params(rs_capacity *cap, const rs_params *p)
{
    memset(cap, 0, sizeof *cap);
    cap->group = RS_GROUP_BATCH;
    for (int i = 0; i < p->n; i++) {
        const char *name = p->defs[i].name;
        const rs_param_value *v = &p->v[i];
        if (!v->set)
            continue;
        if (strcmp(name, "capacity_factor") == 0) {
            cap->enabled = 1;
            cap->factor = v->f;
        } else if (strcmp(name, "capacity_rounding") == 0) {
            cap->rounding = (int)v->i;
        } else if (strcmp(name, "min_capacity") == 0) {
            cap->min_capacity = v->i;
        } else if (strcmp(name, "drop_policy") == 0) {
            cap->policy = (rs_drop_policy)v->i;
        } else if (strcmp(name, "drop_seed") == 0) {
            cap->seed = (uint64_t)v->i;
        } else if (strcmp(name, "group") == 0) {
            cap->group = (rs_group)(v->i + 1); /* choices start at sequence */
        } else if (strcmp(name, "renorm_after_drop") == 0) {
            cap->renorm = (int)v->i;
        }
    }
}

int64_t rs_capacity_of(const rs_capacity *cap, int64_t n, int k, int E)
{
    /* Megatron's get_capacity order, (tokens * k / E) * factor: an integral
     * tokens * k / E then rounds once (1.1 * 10 = 11, not 11.000000000000002). */
    double x = ((double)n * (double)k / (double)E) * cap->factor;
    double c = cap->rounding == 0 ? ceil(x) : cap->rounding == 1 ? floor(x) : floor(x + 0.5);
    int64_t C = (int64_t)c;
    return C > cap->min_capacity ? C : cap->min_capacity;
}

/* One requested assignment, in the order its policy ranks it. */
typedef struct rs_capacity_entry {
    int32_t expert;
    int32_t rank;     /* order inside the group (policy key) */
    double key;       /* probs / random: larger is kept first */
    int64_t slot;     /* index into the decision arrays */
} rs_capacity_entry;

void rs_capacity_scratch_free(rs_capacity_scratch *s)
{
    free(s->count);
    free(s->entries);
    free(s->order);
    memset(s, 0, sizeof *s);
}

static int reserve(rs_capacity_scratch *s, int E, int64_t entries, int64_t tokens)
{
    return rs_balance_reserve(&s->count, &s->capacity[0], (size_t)E, sizeof *s->count) ||
                   rs_balance_reserve(&s->entries, &s->capacity[1], (size_t)entries, sizeof *s->entries) ||
                   rs_balance_reserve(&s->order, &s->capacity[2], (size_t)tokens, sizeof *s->order)
               ? -1
               : 0;
}

/* Per expert, larger key first; ties by rank (token order, then slot). */
static int by_expert_then_key(const void *a, const void *b)
{
    const rs_capacity_entry *x = a, *y = b;
    if (x->expert != y->expert)
        return x->expert < y->expert ? -1 : 1;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return x->rank < y->rank ? -1 : (x->rank > y->rank);
}

/* Larger key first, then rank: the token order of batch prioritized routing. */
static int by_key_then_rank(const void *a, const void *b)
{
    const rs_capacity_entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return x->rank < y->rank ? -1 : (x->rank > y->rank);
}

static void drop(rs_decisions *dec, int64_t slot)
{
    dec->ids[slot] = -1;
    dec->weights[slot] = 0.0f;
    dec->dropped[slot] = 1;
}

/* position and priority: walk rank-1 choices of every token in token
 * order (priority: by top-1 weight, descending), then rank-2 choices...
 * This is GShard / fairseq top2gating (second locations start after all
 * first choices) and flaxformer's k-major token priority. Megatron's
 * "position" takes per expert the earliest tokens whatever their rank;
 * routers.md asks for rank-1 before rank-2, and so does this. */
static void keep_in_order(const rs_capacity *cap, const rs_chunk *c, int layer, const int32_t *tokens, int n,
                          int64_t C, rs_decisions *dec, rs_capacity_scratch *s)
{
    const int K = dec->kmax;
    int32_t *order = s->order;
    if (cap->policy == RS_DROP_PRIORITY) {
        for (int i = 0; i < n; i++) {
            int64_t row = (int64_t)rs_decision_row(c, dec, tokens[i], layer);
            double w = dec->ids[row] >= 0 ? dec->weights[row] : -INFINITY;
            s->entries[i] = (rs_capacity_entry){tokens[i], i, w, row};
        }
        qsort(s->entries, (size_t)n, sizeof *s->entries, by_key_then_rank);
        for (int i = 0; i < n; i++)
            order[i] = s->entries[i].expert; /* here: the token */
    } else {
        memcpy(order, tokens, (size_t)n * sizeof *order);
    }
    for (int j = 0; j < K; j++) {
        for (int i = 0; i < n; i++) {
            int64_t slot = (int64_t)rs_decision_row(c, dec, order[i], layer) + j;
            int32_t e = dec->ids[slot];
            if (e < 0)
                continue;
            if (s->count[e] < C)
                s->count[e]++;
            else
                drop(dec, slot);
        }
    }
}

/* probs and random: per expert, the C assignments with the largest key
 * (the combine weight, or a keyed random number). */
static void keep_by_key(const rs_capacity *cap, const rs_chunk *c, int layer, const int32_t *tokens, int n,
                        int64_t C, rs_decisions *dec, rs_capacity_scratch *s)
{
    const int K = dec->kmax;
    int64_t m = 0;
    for (int i = 0; i < n; i++) {
        int t = tokens[i];
        int64_t row = (int64_t)rs_decision_row(c, dec, t, layer);
        for (int j = 0; j < K; j++) {
            int32_t e = dec->ids[row + j];
            if (e < 0)
                continue;
            double key = dec->weights[row + j];
            if (cap->policy == RS_DROP_RANDOM) {
                rs_rng rng = rs_rng_keyed(cap->seed, (uint64_t)layer, (uint64_t)(c->t0 + t) * (uint64_t)K + (uint64_t)j);
                key = rs_rng_uniform(&rng);
            }
            s->entries[m++] = (rs_capacity_entry){e, i * K + j, key, row + j};
        }
    }
    qsort(s->entries, (size_t)m, sizeof *s->entries, by_expert_then_key);
    for (int64_t i = 0; i < m; i++) {
        rs_capacity_entry *x = &s->entries[i];
        if (s->count[x->expert] < C)
            s->count[x->expert]++;
        else
            drop(dec, x->slot);
    }
}

int rs_capacity_apply(const rs_capacity *cap, const rs_chunk *c, int layer, const rs_groups *groups,
                      rs_decisions *dec, rs_capacity_scratch *s)
{
    const int K = dec->kmax;
    for (int t = 0; t < c->n; t++)
        memset(dec->dropped + rs_decision_row(c, dec, t, layer), 0, (size_t)K);
    int largest = rs_groups_largest(groups);
    if (reserve(s, c->E, (int64_t)largest * K + 1, largest + 1) != 0)
        return -1;
    for (int g = 0; g < groups->count; g++) {
        int n = 0;
        const int32_t *tokens = rs_balance_group_tokens(groups, g, &n);
        int64_t C = rs_capacity_of(cap, n, cap->k > 0 ? cap->k : K, c->E);
        memset(s->count, 0, (size_t)c->E * sizeof *s->count);
        if (cap->policy == RS_DROP_POSITION || cap->policy == RS_DROP_PRIORITY)
            keep_in_order(cap, c, layer, tokens, n, C, dec, s);
        else
            keep_by_key(cap, c, layer, tokens, n, C, dec, s);
    }
    if (cap->renorm) {
        for (int t = 0; t < c->n; t++) {
            int64_t row = (int64_t)rs_decision_row(c, dec, t, layer);
            int any = 0;
            double sum = 0.0;
            for (int j = 0; j < K; j++) {
                any |= dec->dropped[row + j];
                if (dec->ids[row + j] >= 0)
                    sum += dec->weights[row + j];
            }
            if (!any || sum <= 0.0)
                continue;
            for (int j = 0; j < K; j++)
                if (dec->ids[row + j] >= 0)
                    dec->weights[row + j] = (float)(dec->weights[row + j] / sum);
        }
    }
    return 0;
}
