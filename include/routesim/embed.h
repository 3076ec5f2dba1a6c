/* Embedding routesim in another program: what python/routesim (ctypes) and
 * other hosts call. Everything here works on files and plain C types, so a
 * binding needs no structure of the engine: results arrive as a results.csv
 * file, descriptions as JSON text, and a router written in the host language
 * is one C callback that sees one layer of consecutive tokens at a time.
 *
 * Every function that can fail returns 0 or -1 and fills err with one line
 * naming the file and the field at fault (error.h); on failure no output
 * file of that call is left behind. Strings returned as char * are the
 * caller's, freed with rs_free. */
#ifndef ROUTESIM_EMBED_H
#define ROUTESIM_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "routesim/api.h"
#include "routesim/error.h"

/* The library's version ("0.1.0"), as `routesim --version` prints it.
 * Bindings refuse a library of another version. */
RS_API const char *rs_version(void);

/* sizeof of the structures shared with plugins and hosts, in the order of
 * RS_PLUGIN_STRUCTS (plugin.h) followed by rs_route_options, rs_block and
 * rs_callback_router;
 * *count gets how many. A binding compares its own layouts with these. */
RS_API const size_t *rs_struct_sizes(int *count);

RS_API void rs_free(void *p);

/* ---- routing one trace: `routesim route` ------------------------------ */

typedef struct rs_route_options {
    size_t struct_size;          /* sizeof(rs_route_options): checked */
    const char *trace;           /* the trace file (required) */
    const char *router;          /* a spec, "topk:k=2" (required) */
    const char *metrics;         /* "load,entropy"; NULL: route's default; "none" */
    const char *reference;       /* a spec for agreement metrics, or NULL */
    const char *reference_trace; /* a paired trace the reference runs on, or NULL */
    const char *decisions;       /* write /decisions/ids, weights here, or NULL */
    const char *results_csv;     /* write the metric rows here (results.csv columns), or NULL */
    long long batch_tokens;      /* 0: 4096 */
    long long threads;           /* 0: all cores */
    long long chunk_tokens;      /* 0: from the memory budget */
    double memory_mb;            /* 0: 64 */
    int skip_nonfinite;
    int progress;                /* 1: a progress bar on stderr */
    int force;                   /* decisions and results_csv may replace a file of another kind */
    const char *by;              /* breakdowns, "domain", "phase" or "domain,phase" (--by), or NULL */
    const char *device;          /* "cpu" (or NULL) or "gpu": an OpenMP offload device (--device, docs/gpu.md) */
} rs_route_options;

/* All fields zero but struct_size. */
RS_API void rs_route_options_init(rs_route_options *opt);

/* One router over one trace, as `routesim route TRACE --router SPEC --csv
 * results_csv --out decisions` does it. */
RS_API int rs_route(const rs_route_options *opt, rs_error *err);

/* ---- a config: `routesim run` ----------------------------------------- */

/* Runs config_path (a JSON config file) as `routesim run CONFIG --output
 * output --tokens tokens --threads threads --no-progress -q` (NULL / 0
 * take the config's); plots: 0 skips the config's figures; force: 1
 * recomputes runs stored in OUTPUT/runs and lets results files replace
 * files of another kind (`--force`). *results_csv gets the path of the
 * results.csv written (rs_free it), when not NULL. */
RS_API int rs_run_config(const char *config_path, const char *output, long long tokens, int threads, int plots,
                         int force, char **results_csv, rs_error *err);

/* Figures from a results directory, as `routesim plot DIR --format formats
 * --kind kinds --metric metrics` (comma lists; NULL = every one). */
RS_API int rs_plot(const char *results_dir, const char *formats, const char *kinds, const char *metrics,
                   const char *output_dir, int quiet, rs_error *err);

/* ---- descriptions as JSON text ----------------------------------------- */

/* `routesim info TRACE` after full validation, as a JSON object: path, unit,
 * model, source, import_notes (a list of lines), num_tokens, num_layers, num_experts, num_sequences, top_k,
 * scoring, norm_topk, n_group, topk_group, routed_scaling_factor (null where absent), logits_dtype,
 * recorded_k and the has_* flags. */
RS_API char *rs_trace_info_json(const char *trace, rs_error *err);

/* The registries as `routesim routers --json` and `routesim metrics --json`
 * print them. */
RS_API char *rs_routers_json(rs_error *err);
RS_API char *rs_metrics_json(rs_error *err);

/* Loads a plugin (shared object), as --plugin does. */
RS_API int rs_load_plugin(const char *path, rs_error *err);

/* ---- routers written in the host language ------------------------------- */

/* One layer of n consecutive tokens (global indices t0 .. t0+n-1), as a
 * callback router sees them. Arrays are rows with a stride in elements:
 * logits of token i are logits[i * logits_stride .. + E). */
typedef struct rs_block {
    int layer, num_layers, num_experts, kmax;
    int64_t t0;
    int n;
    const float *logits;       /* [n, E] float32 (stride logits_stride) */
    size_t logits_stride;
    const float *probs;        /* [n, E] softmax of logits (stride probs_stride) */
    size_t probs_stride;
    const int32_t *token_ids;  /* [n], or NULL when the trace has none */
    const int64_t *sequence;   /* [n] global sequence index of each token */
    const int64_t *position;   /* [n] position of each token in its sequence */
    const uint8_t *phase;      /* [n] 0 = prefill, 1 = decode, or NULL */
    int32_t *ids;              /* [n, kmax] output (stride out_stride), -1 pads; prefilled with -1 */
    float *weights;            /* [n, kmax] output (stride out_stride), 0 at pads; prefilled with 0 */
    size_t out_stride;
    const char *params;        /* the router's parameters, "k=2,mode=x" (every one, sorted by name;
                                  booleans as 1 / 0) */
    void *user;                /* the user pointer given at registration */
} rs_block;

/* Routes one block; returns 0, or non-zero after writing a one-line reason
 * into msg (msg_size bytes). Called from the engine's threads, several at
 * once unless the host serialises them (Python does: the GIL). */
typedef int (*rs_block_fn)(rs_block *block, char *msg, size_t msg_size);

typedef struct rs_callback_router {
    size_t struct_size;    /* sizeof(rs_callback_router): checked */
    const char *name;      /* registry name; re-registering a callback router of this name replaces it */
    const char *summary;   /* one line, or NULL */
    int kmax;              /* experts per token at most (the width of ids) */
    int stateful;          /* 1: each layer's tokens in order, one chunk at a time (no parallel slices) */
    /* Parameters the router takes, "name=default" comma-separated: integers,
     * floats, booleans (true/false) or text, typed from the default:
     * "k=2,temperature=1.0,greedy=true,mode=fast". NULL: none. Specs and
     * sweeps set them (`name:k=3`). */
    const char *params;
    rs_block_fn fn;
    void *user;
} rs_callback_router;

/* Registers (or replaces) a router whose decisions come from fn. It is a
 * token-choice router: the capacity stage, metrics, references and sweeps
 * apply as to a built-in one. The capacity stage's k is the integer
 * parameter named k when the router has one (1 <= k <= kmax), else kmax. After fn, the engine checks each row: ids in
 * [-1, E), no expert twice, finite weights; a violation or a failing fn
 * stops the run with "router NAME: layer L, tokens A..B: REASON". */
RS_API int rs_callback_router_register(const rs_callback_router *desc, rs_error *err);

#endif
