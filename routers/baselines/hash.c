/* hash: Hash Layers. A token's expert is a fixed function of its token id,
 * with no logits involved (weight 1):
 *   random    a seeded hash of the id per layer (ParlAI's hash_ladder keeps a
 *             random table per vocabulary id; a keyed hash needs no table, so
 *             vocabularies of any size cost nothing);
 *   balanced  frequency-aware buckets built while streaming: a first pass over
 *             the trace is not allowed, so an id is assigned, the first time
 *             it appears, to the bucket that has received the fewest tokens
 *             so far (ties to the lower bucket), and keeps it. Frequent ids
 *             appear early and spread over the buckets first, as the paper's
 *             greedy "most frequent token to the emptiest bucket" does with
 *             known frequencies. Buckets map to experts by a seeded
 *             permutation per layer;
 *   bigram    a seeded hash of the previous id within the sequence, as
 *             routers.md defines it (the paper's Previous Token Hash);
 *   pair      a seeded hash of (previous id, id) within the sequence (what
 *             the Hash Layers paper calls its Bigram Hash).
 * The first token of a sequence has no previous id (a reserved value stands
 * in). State that spans chunks (the last id of a chunk, the balanced table)
 * is updated in prepare_chunk, which the engine calls once per chunk in
 * token order, so decisions do not depend on chunking or threads. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/rng.h"
#include "routesim/router.h"

enum { HASH_RANDOM, HASH_BALANCED, HASH_BIGRAM, HASH_PAIR };

typedef struct id_slot {
    int32_t id;
    int32_t bucket; /* -1: empty slot */
} id_slot;

typedef struct hash_state {
    int mode, E;
    uint64_t seed;
    /* prepare_chunk's key per token of the current chunk */
    uint64_t *keys;
    size_t key_capacity;
    int64_t chunk_t0;
    /* the last token of the previous chunk */
    int32_t carry_id;
    int64_t carry_index;
    /* balanced: id -> bucket (open addressing), tokens per bucket, bucket -> expert per layer */
    id_slot *table;
    size_t table_size, table_used;
    int64_t *load;
    int32_t *perm;
    /* --device gpu: the chunk's keys and the permutations in device memory */
    int device;
    uint64_t *device_keys;
    size_t device_key_capacity;
    int32_t *device_perm;
} hash_state;

static const rs_param_def hash_params[] = {
    {"mode", RS_PARAM_ENUM, "random", 0, 0, "random|balanced|bigram|pair",
     "what is hashed: the id, a streaming balanced table, the previous id, or (previous id, id)"},
    {"seed", RS_PARAM_INT, "0", 0, 9007199254740991.0, NULL, "random seed"},
};

static void hash_destroy(void *state)
{
    hash_state *s = state;
    if (!s)
        return;
    if (s->device_keys)
        omp_target_free(s->device_keys, s->device);
    if (s->device_perm)
        omp_target_free(s->device_perm, s->device);
    free(s->keys);
    free(s->table);
    free(s->load);
    free(s->perm);
    free(s);
}

static int hash_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                       rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    RS_CHECK(tr->has_token_ids, err, "router hash: mode=%s needs token ids (/tokens/ids), which %s lacks",
             rs_param_str(params, "mode"), tr->path);
    hash_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router hash: out of memory");
    s->mode = (int)rs_param_int(params, "mode");
    s->E = tr->num_experts;
    s->seed = (uint64_t)rs_param_int(params, "seed");
    s->carry_index = INT64_MIN;
    if (s->mode == HASH_BALANCED) {
        const int E = s->E, L = tr->num_layers;
        s->table_size = 1024;
        s->table = malloc(s->table_size * sizeof *s->table);
        s->load = calloc((size_t)E, sizeof *s->load);
        s->perm = malloc((size_t)L * (size_t)E * sizeof *s->perm);
        if (!s->table || !s->load || !s->perm) {
            hash_destroy(s);
            return rs_fail(err, "router hash: out of memory");
        }
        for (size_t i = 0; i < s->table_size; i++)
            s->table[i].bucket = -1;
        for (int l = 0; l < L; l++) { /* Fisher-Yates, keyed per layer */
            int32_t *perm = s->perm + (size_t)l * (size_t)E;
            rs_rng rng = rs_rng_keyed(s->seed, (uint64_t)l, UINT64_MAX);
            for (int e = 0; e < E; e++)
                perm[e] = e;
            for (int e = E - 1; e > 0; e--) {
                int j = (int)rs_rng_below(&rng, (uint64_t)e + 1);
                int32_t x = perm[e];
                perm[e] = perm[j];
                perm[j] = x;
            }
        }
    }
    shape->kmax = 1;
    *state = s;
    return 0;
}

static size_t slot_of(int32_t id, size_t mask) { return (size_t)rs_mix64((uint64_t)(uint32_t)id) & mask; }

static int grow_table(hash_state *s)
{
    size_t size = s->table_size * 2;
    id_slot *table = malloc(size * sizeof *table);
    if (!table)
        return -1;
    for (size_t i = 0; i < size; i++)
        table[i].bucket = -1;
    for (size_t i = 0; i < s->table_size; i++) {
        if (s->table[i].bucket < 0)
            continue;
        size_t j = slot_of(s->table[i].id, size - 1);
        while (table[j].bucket >= 0)
            j = (j + 1) & (size - 1);
        table[j] = s->table[i];
    }
    free(s->table);
    s->table = table;
    s->table_size = size;
    return 0;
}

/* The bucket of id, assigning the least loaded one at its first appearance. */
static int bucket_of(hash_state *s, int32_t id, int32_t *bucket)
{
    if (2 * (s->table_used + 1) > s->table_size && grow_table(s) != 0)
        return -1;
    size_t mask = s->table_size - 1, i = slot_of(id, mask);
    for (; s->table[i].bucket >= 0; i = (i + 1) & mask) {
        if (s->table[i].id == id) {
            *bucket = s->table[i].bucket;
            return 0;
        }
    }
    int32_t least = 0;
    for (int b = 1; b < s->E; b++)
        least = s->load[b] < s->load[least] ? b : least;
    s->table[i] = (id_slot){id, least};
    s->table_used++;
    *bucket = least;
    return 0;
}

static int hash_prepare_chunk(void *state, const rs_chunk *c, rs_error *err)
{
    hash_state *s = state;
    if (s->mode == HASH_RANDOM || c->n == 0)
        return 0;
    if ((size_t)c->n > s->key_capacity) {
        uint64_t *keys = realloc(s->keys, (size_t)c->n * sizeof *keys);
        RS_CHECK(keys, err, "router hash: out of memory");
        s->keys = keys;
        s->key_capacity = (size_t)c->n;
    }
    s->chunk_t0 = c->t0;
    const int32_t *tok = c->token_ids;
    if (s->mode == HASH_BALANCED) {
        for (int t = 0; t < c->n; t++) {
            int32_t b;
            RS_CHECK(bucket_of(s, tok[t], &b) == 0, err, "router hash: out of memory (balanced table of %zu ids)",
                     s->table_used);
            s->load[b]++;
            s->keys[t] = (uint64_t)b;
        }
        return 0;
    }
    for (int t = 0; t < c->n; t++) {
        /* previous id + 1 when the token has one in its sequence, else 0 */
        uint64_t prev = 0;
        if (t > 0 && c->seq_of_token[t] == c->seq_of_token[t - 1])
            prev = (uint64_t)(uint32_t)tok[t - 1] + 1;
        else if (t == 0 && c->seq_offsets[c->seq_of_token[0]] < c->t0 && s->carry_index == c->t0 - 1)
            prev = (uint64_t)(uint32_t)s->carry_id + 1;
        s->keys[t] = s->mode == HASH_PAIR ? prev << 32 | (uint32_t)tok[t] : prev;
    }
    s->carry_id = tok[c->n - 1];
    s->carry_index = c->t0 + c->n - 1;
    return 0;
}

/* The expert of token t at layer: the same function on the CPU and the
 * device. keys: prepare_chunk's (NULL in random mode); perm: the layer's
 * permutation (balanced mode), else NULL. */
static int32_t hash_expert(uint64_t seed, int E, int layer, const uint64_t *keys, const int32_t *perm,
                           const int32_t *token_ids, int64_t t)
{
    if (perm)
        return perm[keys[t]];
    uint64_t key = keys ? keys[t] : (uint64_t)(uint32_t)token_ids[t];
    rs_rng rng = rs_rng_keyed(seed, (uint64_t)layer, key);
    return (int32_t)rs_rng_below(&rng, (uint64_t)E);
}

static void hash_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const hash_state *s = state;
    const int E = c->E;
    /* route_layer may see a part of the chunk prepare_chunk saw */
    const uint64_t *keys = s->mode == HASH_RANDOM ? NULL : s->keys + (c->t0 - s->chunk_t0);
    const int32_t *perm = s->mode == HASH_BALANCED ? s->perm + (size_t)layer * (size_t)E : NULL;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer);
        out->ids[row] = hash_expert(s->seed, E, layer, keys, perm, c->token_ids, t);
        out->weights[row] = 1.0f;
    }
}

/* The device sees the whole chunk prepare_chunk saw: its keys (and the
 * permutations, which balanced mode never changes) are copied to device
 * buffers the router owns. */
static int hash_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    hash_state *s = state;
    const int E = c->E, L = c->L, kmax = out->kmax;
    const int host = omp_get_initial_device();
    if (c->n == 0)
        return 0;
    if (s->mode != HASH_RANDOM && (size_t)c->n > s->device_key_capacity) {
        if (s->device_keys)
            omp_target_free(s->device_keys, s->device);
        s->device_keys = omp_target_alloc((size_t)c->n * sizeof *s->device_keys, c->device);
        s->device_key_capacity = s->device_keys ? (size_t)c->n : 0;
        s->device = c->device;
    }
    if (s->mode == HASH_BALANCED && !s->device_perm) {
        const size_t bytes = (size_t)L * (size_t)E * sizeof *s->perm;
        s->device_perm = omp_target_alloc(bytes, c->device);
        s->device = c->device;
        if (s->device_perm && omp_target_memcpy(s->device_perm, s->perm, bytes, 0, 0, c->device, host) != 0)
            return -1;
    }
    if ((s->mode != HASH_RANDOM && !s->device_keys) || (s->mode == HASH_BALANCED && !s->device_perm))
        return -1;
    if (s->mode != HASH_RANDOM &&
        omp_target_memcpy(s->device_keys, s->keys, (size_t)c->n * sizeof *s->keys, 0, 0, c->device, host) != 0)
        return -1;
    const uint64_t seed = s->seed;
    const uint64_t *keys = s->mode == HASH_RANDOM ? NULL : s->device_keys;
    const int32_t *perm = s->mode == HASH_BALANCED ? s->device_perm : NULL, *token_ids = c->token_ids;
    int32_t *ids = out->ids;
    float *weights = out->weights;
    const int64_t rows = (int64_t)c->n * L;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(keys, perm, token_ids, ids, weights)
    for (int64_t r = 0; r < rows; r++) {
        const int layer = (int)(r % L);
        ids[r * kmax] = hash_expert(seed, E, layer, keys, perm ? perm + (int64_t)layer * E : NULL, token_ids, r / L);
        weights[r * kmax] = 1.0f;
    }
    return 0;
}

/* The last token of the previous chunk, and the balanced table (its slots
 * as they are: the probe order depends on them). */
static void hash_checkpoint(void *state, rs_state_io *io)
{
    hash_state *s = state;
    RS_STATE(io, s->carry_id);
    RS_STATE(io, s->carry_index);
    if (s->mode != HASH_BALANCED)
        return;
    size_t size = s->table_size;
    RS_STATE(io, size);
    if (rs_state_restoring(io) && size != s->table_size) {
        id_slot *table = size && !(size & (size - 1)) ? malloc(size * sizeof *table) : NULL;
        if (!table) {
            rs_state_fail(io);
            return;
        }
        free(s->table);
        s->table = table;
        s->table_size = size;
    }
    RS_STATE(io, s->table_used);
    RS_STATE_ARRAY(io, s->table, s->table_size);
    RS_STATE_ARRAY(io, s->load, s->E);
}

static const rs_router_type hash_type = {
    .name = "hash",
    .summary = "Hash Layers: the expert is a fixed hash of the token id (random, balanced, bigram, pair)",
    .formula = "k = 1, w = 1. random: e = h(seed, layer, id) mod E (keyed hash, no table); balanced: at an id's first "
               "appearance in the trace it gets the bucket with the fewest tokens so far (ties to the lower bucket), "
               "e = perm_layer(bucket) with a seeded permutation per layer; bigram: e = h(seed, layer, prev id); "
               "pair: e = h(seed, layer, (prev id, id)); prev id = the previous token of the same sequence, a reserved "
               "value for a sequence's first token",
    .source = "Hash Layers arXiv:2106.04426 (facebookresearch/ParlAI projects/params_vs_compute/hash_ladder/"
              "hash_ladder.py HashLayerFFN.hash)",
    .params = hash_params,
    .num_params = sizeof hash_params / sizeof hash_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STOCHASTIC | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_TOKEN_IDS,
    .create = hash_create,
    .prepare_chunk = hash_prepare_chunk,
    .route_layer = hash_route_layer,
    .destroy = hash_destroy,
    .checkpoint = hash_checkpoint,
    .route_device = hash_route_device,
};

const rs_router_type *const rs_router_hash = &hash_type;
