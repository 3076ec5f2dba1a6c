/* Router descriptors: the public interface a routing strategy implements.
 *
 * A router is one file under routers/ holding one `static const
 * rs_router_type` and one line in routers/registry.def. Plugins (shared
 * objects) describe theirs the same way and register them at load time.
 *
 * The engine calls route_layer once per (chunk, layer), in parallel across
 * layers, so a router's per-layer state must be disjoint between layers.
 * route_layer is the hot kernel: a plain loop over the chunk's arrays. */
#ifndef ROUTESIM_ROUTER_H
#define ROUTESIM_ROUTER_H

#include "routesim/checkpoint.h"
#include "routesim/chunk.h"
#include "routesim/device.h"
#include "routesim/error.h"
#include "routesim/params.h"

enum rs_router_flags {
    RS_ROUTER_CAUSAL = 1u << 0,       /* decisions use only this and earlier tokens */
    RS_ROUTER_STATEFUL = 1u << 1,     /* keeps state across tokens (per layer, token order) */
    RS_ROUTER_STOCHASTIC = 1u << 2,   /* takes a seed */
    RS_ROUTER_GROUPED = 1u << 3,      /* decides per token group (shape.group): chunks end on group boundaries */
    RS_ROUTER_PRESET = 1u << 4,       /* a named parameter set of another router */
    RS_ROUTER_TOKEN_CHOICE = 1u << 5, /* each token picks experts: the capacity stage can follow */
    RS_ROUTER_QUERY = 1u << 6,        /* routes whole queries among models: needs unit = query */
};

typedef struct rs_router_setup {
    const rs_trace_info *trace;
    int batch_tokens; /* the run's group size for group = batch */
} rs_router_setup;

/* What create reports back about one configured router. */
typedef struct rs_router_shape {
    int kmax;       /* most experts one token can get */
    unsigned needs; /* starts as the descriptor's needs; create may add some */
    rs_group group; /* the token groups route_layer decides over (chunk.h) */
    /* k in the capacity stage's C = factor * group_tokens * k / E; 0 means
     * kmax. Dynamic-k routers set their nominal k (XMoE counts tokens: 1). */
    int capacity_k;
    /* The router's scoring function, for the metrics that read probabilities
     * (chunk.h rs_scoring); left 0, softmax. */
    rs_scoring scoring;
} rs_router_shape;

typedef struct rs_router_type {
    const char *name;
    const char *summary; /* one line */
    const char *formula; /* the rule in notation of docs/routers.md */
    const char *source;  /* paper (arXiv id) and reference implementation */
    const rs_param_def *params;
    int num_params;
    unsigned flags; /* rs_router_flags */
    unsigned needs; /* rs_needs */
    /* Token-choice routers: capacity-stage settings that differ from the
     * stage's own defaults, e.g. "capacity_factor=1" for Switch. May be NULL. */
    const char *capacity_defaults;
    /* Presets: the router this one names a parameter set of, and the set
     * ("k=8,renorm=1"); such a descriptor has no functions of its own. */
    const char *preset_of;
    const char *preset_params;

    /* Validates the parameters against the trace, allocates the router's
     * state and fills the shape (kmax at least). */
    int (*create)(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                  rs_error *err);
    /* Optional, called serially before a chunk is routed: read inputs the
     * router owns (e.g. a decisions file), size per-group scratch. route_layer
     * then sees views of parts of this chunk (tiles, c->t0 tells where they
     * start; or layer bands, c->L tells how many layers their rows hold).
     * chunk->logits is NULL here for 16-bit traces (their rows are widened
     * layer by layer as they are routed) and the recorded top-k for a chunk
     * routed in layer bands: read them in route_layer. */
    int (*prepare_chunk)(void *state, const rs_chunk *chunk, rs_error *err);
    /* Routes every token of the view at one layer into out (rows at
     * out->ids + rs_decision_row(c, out, t, layer)). A grouped or stateful
     * router sees each chunk whole, in token order per layer; a per-token
     * router may see consecutive parts of a chunk. Must not fail: validate
     * in create (or record the failure for check_chunk). */
    void (*route_layer)(void *state, const rs_chunk *chunk, int layer, rs_decisions *out);
    void (*destroy)(void *state);
    /* Optional, called serially after every router has routed a chunk: a
     * router whose decisions come from code that can fail (a callback into
     * a host language) reports here what route_layer recorded, and the run
     * stops with err. Built-in routers leave it NULL. */
    int (*check_chunk)(void *state, rs_error *err);
    /* Saves or restores everything the router carries from one chunk to
     * the next (routesim/checkpoint.h), so a pass can resume from a
     * checkpoint; a router that carries nothing across chunks but is
     * stateful, grouped or has prepare_chunk says so with
     * rs_router_no_state. Per-token routers without prepare_chunk keep no
     * state and may leave it NULL; any other router without it makes its
     * pass run without checkpoints. */
    void (*checkpoint)(void *state, rs_state_io *io);
    /* Optional, for routers that are neither stateful nor grouped: routes
     * every (token, layer) of a whole chunk held in device memory
     * (routesim/device.h; prepare_chunk saw the chunk on the host first)
     * into out, whose ids and weights [n, L, kmax] are device memory too,
     * with the same bits route_layer gives (docs/gpu.md). Returns 0,
     * or nonzero without launching anything when this configuration cannot
     * run there (a k beyond the device's row scratch): the engine asks once
     * with an empty chunk (n = 0) before routing, and a router that
     * declines then routes on the CPU. Rows of invalid tokens are
     * overwritten afterwards, as on the CPU. */
    int (*route_device)(void *state, const rs_device_chunk *chunk, rs_decisions *out);
} rs_router_type;

/* The checkpoint function of a router whose state lasts one chunk at most
 * (per-group scratch, a chunk's inputs). */
static inline void rs_router_no_state(void *state, rs_state_io *io)
{
    (void)state;
    (void)io;
}

/* Registry: built-ins, then plugins in load order. */
RS_API int rs_router_count(void);
RS_API const rs_router_type *rs_router_at(int index);
RS_API const rs_router_type *rs_router_find(const char *name);
RS_API int rs_router_register(const rs_router_type *type, rs_error *err);

#endif
