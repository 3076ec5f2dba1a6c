#include "routers/common/balance_util.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "routers/common/score_select.h"
#include "routers/common/token_row.h"

rs_group rs_balance_group_param(const rs_params *p)
{
    const char *name = rs_param_str(p, "group");
    if (name && strcmp(name, "sequence") == 0)
        return RS_GROUP_SEQUENCE;
    if (name && strcmp(name, "step") == 0)
        return RS_GROUP_STEP;
    return RS_GROUP_BATCH;
}

const rs_groups *rs_balance_groups(const rs_chunk *c, rs_group mode, int layer, rs_decisions *out)
{
    const rs_groups *groups = c->groups[mode];
    if (groups)
        return groups;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer);
        rs_pad_row(out->ids + row, out->weights + row, 0, out->kmax);
    }
    return NULL;
}

int rs_balance_valid_tokens(const rs_chunk *c, int layer, rs_decisions *out, const int32_t *tokens, int n,
                            int32_t *valid)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        int t = tokens[i];
        if (!rs_token_skipped(c, t)) {
            valid[m++] = t;
            continue;
        }
        size_t row = rs_decision_row(c, out, t, layer);
        rs_pad_row(out->ids + row, out->weights + row, 0, out->kmax);
    }
    return m;
}

int rs_groups_largest(const rs_groups *groups)
{
    int largest = 0;
    for (int g = 0; g < groups->count; g++) {
        int n = groups->start[g + 1] - groups->start[g];
        largest = n > largest ? n : largest;
    }
    return largest;
}

int rs_balance_largest_group(const rs_chunk *c, rs_group mode)
{
    const rs_groups *groups = c->groups[mode];
    return groups ? rs_groups_largest(groups) : c->n;
}

int rs_balance_slots_init(rs_balance_slots *s, int layers)
{
    int threads = omp_get_max_threads();
    s->count = threads < layers ? threads : layers;
    if (s->count < 1)
        s->count = 1;
    s->taken = malloc((size_t)s->count * sizeof *s->taken);
    if (!s->taken)
        return -1;
    for (int i = 0; i < s->count; i++)
        atomic_init(&s->taken[i], 0);
    return 0;
}

void rs_balance_slots_free(rs_balance_slots *s)
{
    free(s->taken);
    s->taken = NULL;
    s->count = 0;
}

int rs_balance_slot_take(rs_balance_slots *s)
{
    for (;;) {
        for (int i = 0; i < s->count; i++) {
            int expected = 0;
            if (atomic_compare_exchange_strong(&s->taken[i], &expected, 1))
                return i;
        }
        sched_yield(); /* every slot is in use by a layer that will finish */
    }
}

void rs_balance_slot_give(rs_balance_slots *s, int slot) { atomic_store(&s->taken[slot], 0); }

int rs_balance_reserve(void *buf_ptr, size_t *capacity, size_t count, size_t elem_size)
{
    void **buf = buf_ptr;
    if (count <= *capacity && *buf)
        return 0;
    size_t grown = *capacity * 2 > count ? *capacity * 2 : count;
    if (grown == 0)
        grown = 1;
    void *p = realloc(*buf, grown * elem_size);
    if (!p)
        return -1;
    *buf = p;
    *capacity = grown;
    return 0;
}

/* A key whose ascending order is descending v; -0 is folded into +0 so
 * that equal values tie. */
static inline uint64_t descending_key(double v)
{
    double x = v + 0.0;
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return (u >> 63) ? u : ~(u | (UINT64_C(1) << 63));
}

/* Candidates left when the narrowing below switches to pairwise counting. */
#define SELECT_SMALL 16

/* The key of the c-th best of v[0..n) (1 <= c <= n, larger first); *ahead
 * gets how many are strictly better. A most-significant-digit radix
 * selection: each pass takes the 8 bits below the highest bit on which the
 * remaining candidates differ, counts them per digit and keeps the digit
 * holding the c-th. Linear in n, with none of the data-dependent branches
 * of a partition. cand is scratch for n indices. */
RS_VECTOR_CLONES
static uint64_t kth_best_key(const double *v, int32_t *cand, int n, int c, int *ahead)
{
    int left = n, before = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < n; i++) { /* the first pass reads v directly */
        uint64_t k = descending_key(v[i]);
        lo = k < lo ? k : lo;
        hi = k > hi ? k : hi;
    }
    int first = 1;
    while (left > SELECT_SMALL) {
        if (!first) {
            lo = UINT64_MAX;
            hi = 0;
            for (int i = 0; i < left; i++) {
                uint64_t k = descending_key(v[cand[i]]);
                lo = k < lo ? k : lo;
                hi = k > hi ? k : hi;
            }
        }
        if (lo == hi) { /* all tie: the c-th is any of them */
            *ahead = before;
            return lo;
        }
        int shift = 63 - __builtin_clzll(lo ^ hi) - 7; /* higher bits are shared */
        shift = shift > 0 ? shift : 0;
        int count[256] = {0};
        if (first)
            for (int i = 0; i < n; i++)
                count[(descending_key(v[i]) >> shift) & 255u]++;
        else
            for (int i = 0; i < left; i++)
                count[(descending_key(v[cand[i]]) >> shift) & 255u]++;
        int want = c - before, digit = 0;
        while (count[digit] < want) {
            want -= count[digit];
            before += count[digit++];
        }
        int kept = 0;
        for (int i = 0; i < left; i++) {
            int32_t at = first ? i : cand[i];
            cand[kept] = at;
            kept += (int)((descending_key(v[at]) >> shift) & 255u) == digit;
        }
        left = kept;
        first = 0;
    }
    if (first) /* a short column: the candidates are all of it */
        for (int i = 0; i < n; i++)
            cand[i] = i;
    int want = c - before; /* 1 <= want <= left */
    for (int i = 0; i < left; i++) {
        uint64_t k = descending_key(v[cand[i]]);
        int less = 0, equal = 0;
        for (int j = 0; j < left; j++) {
            uint64_t o = descending_key(v[cand[j]]);
            less += o < k;
            equal += o == k;
        }
        if (less < want && want <= less + equal) {
            *ahead = before + less;
            return k;
        }
    }
    *ahead = before; /* not reached: some candidate holds the want-th rank */
    return descending_key(v[cand[0]]);
}

/* Picks up to this many are taken by insertion (rs_balance_topk), which
 * skips the blocks of a column that hold nothing better than its current
 * picks; more go to the radix selection. */
#define SELECT_INSERT_MAX 16

/* The first zero of v[0..n) in index order (-0 or +0), or 0.0. */
static double first_zero(const double *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i] == 0.0)
            return v[i];
    return 0.0;
}

void rs_balance_select_best(double *key, int32_t *pos, int n, int c)
{
    c = c < n ? c : n;
    if (c <= 0)
        return;
    int32_t ids[SELECT_INSERT_MAX];
    double vals[SELECT_INSERT_MAX];
    if (c <= SELECT_INSERT_MAX && !rs_balance_topk(key, n, c, ids, vals)) {
        for (int i = 1; i < c; i++) { /* index order */
            int32_t at = ids[i];
            int j = i;
            for (; j > 0 && ids[j - 1] > at; j--)
                ids[j] = ids[j - 1];
            ids[j] = at;
        }
        for (int i = 0; i < c; i++) { /* ids[i] >= i: key[ids[i]] is not yet overwritten */
            key[i] = key[ids[i]];
            pos[i] = ids[i];
        }
        return;
    }
    int ahead = 0;
    uint64_t kth = kth_best_key(key, pos, n, c, &ahead);
    int ties = c - ahead, kept = 0; /* of the keys equal to the c-th, the earliest */
    for (int i = 0; i < n; i++) {
        uint64_t k = descending_key(key[i]);
        int take = k < kth || (k == kth && ties > 0);
        ties -= take & (k == kth);
        key[kept] = key[i];
        pos[kept] = i;
        kept += take;
    }
}

double rs_balance_kth_largest(double *v, int32_t *pos, int n, int kth)
{
    int32_t ids[SELECT_INSERT_MAX];
    double vals[SELECT_INSERT_MAX];
    if (kth <= SELECT_INSERT_MAX && !rs_balance_topk(v, n, kth, ids, vals)) /* a zero: the first one, as below */
        return vals[kth - 1] == 0.0 ? first_zero(v, n) : vals[kth - 1];
    int ahead = 0;
    uint64_t key = kth_best_key(v, pos, n, kth, &ahead);
    for (int i = 0; i < n; i++)
        if (descending_key(v[i]) == key)
            return v[i];
    return v[0]; /* not reached */
}
