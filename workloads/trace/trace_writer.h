/* Writing routesim v1 traces, streamed token block by token block.
 *
 * The file is built under a temporary name and renamed into place by
 * rs_trace_writer_finish, so a failed or interrupted writer never leaves a
 * half-written trace behind. */
#ifndef ROUTESIM_TRACE_WRITER_H
#define ROUTESIM_TRACE_WRITER_H

#include <stdint.h>

#include "routesim/error.h"
#include "workloads/trace/trace.h"

/* Where /outcome/cost comes from (unit = query traces). */
typedef enum rs_cost_layout {
    RS_COST_NONE,
    RS_COST_PER_QUERY, /* [T, E], appended with rs_trace_writer_append_outcome */
    RS_COST_PER_MODEL, /* [E], given once with rs_trace_writer_set_model_cost */
} rs_cost_layout;

typedef struct rs_trace_layout {
    int num_layers, num_experts;
    rs_logits_dtype logits; /* RS_LOGITS_NONE for a top-k-only trace */
    int topk_k;             /* > 0 writes /router/topk_ids [T, L, K] */
    int topk_weights;       /* also /router/topk_weights */
    int token_ids;          /* /tokens/ids */
    int phase;              /* /tokens/phase */
    const char *unit;       /* NULL = "token" */
    const char *model, *scoring, *source; /* NULL = omitted */
    /* An importer's notes: what it assumed and what the format could not
     * tell, one note per line (root attribute import_notes); NULL = none. */
    const char *import_notes;
    int top_k;              /* 0 = omitted */
    int norm_topk;          /* -1 = omitted */
    int n_group, topk_group;       /* grouped routing; 0 = omitted */
    double routed_scaling_factor;  /* 0 = omitted */
    int num_domains;        /* > 0 writes /sequences/domain and its names */
    const char *const *domain_names;
    const char *const *expert_names; /* [E] or NULL */
    const int32_t *layer_index;      /* [L] or NULL */
    int gzip_level;                  /* 0 = no compression */
    /* unit = query: /outcome/quality [T, E] (then logits and top-k may both
     * be absent) and /outcome/cost */
    int outcome_quality;
    rs_cost_layout outcome_cost;
} rs_trace_layout;

typedef struct rs_trace_writer rs_trace_writer;

/* The layout is copied, not the strings and arrays it points to: the root
 * attributes (source, import_notes, expert_names, ...) are written by
 * rs_trace_writer_finish, so keep them until it returns. */
int rs_trace_writer_create(rs_trace_writer **out, const char *path, const rs_trace_layout *layout, rs_error *err);
/* Appends n tokens. Arrays the layout does not declare must be NULL; declared
 * ones must be given. logits is float32 [n, L, E], converted to the layout's
 * dtype. */
int rs_trace_writer_append(rs_trace_writer *w, int n, const float *logits, const int32_t *topk_ids,
                           const float *topk_weights, const int32_t *token_ids, const uint8_t *phase,
                           rs_error *err);
/* Appends the outcomes of the next n queries: quality [n, E] (NaN = not
 * evaluated) when the layout has it, cost [n, E] when it is per query; the
 * other must be NULL. Costs must be finite and >= 0, quality finite or NaN.
 * Queries themselves are counted by rs_trace_writer_append (with no arrays
 * for an outcome-only trace). */
int rs_trace_writer_append_outcome(rs_trace_writer *w, int n, const float *quality, const float *cost,
                                   rs_error *err);
/* Writes /outcome/cost [E] (layout RS_COST_PER_MODEL). */
int rs_trace_writer_set_model_cost(rs_trace_writer *w, const float *cost, rs_error *err);
/* Closes the current sequence at the tokens written so far. domain is
 * ignored unless the layout has domains. */
int rs_trace_writer_end_sequence(rs_trace_writer *w, int32_t domain, rs_error *err);
/* Closes n sequences at once: sequence i ends at token ends[i] (ends do not
 * decrease and do not pass the tokens appended so far), with label
 * domains[i] (ignored unless the layout has domains). */
int rs_trace_writer_end_sequences(rs_trace_writer *w, int n, const int64_t *ends, const int32_t *domains,
                                  rs_error *err);
/* Writes /router/bias [L, E]. */
int rs_trace_writer_set_bias(rs_trace_writer *w, const float *bias, rs_error *err);
/* Replaces the layout's import_notes (written when the trace is finished):
 * for an importer whose notes count what the conversion found. notes must
 * stay valid until rs_trace_writer_finish. */
void rs_trace_writer_set_import_notes(rs_trace_writer *w, const char *notes);
/* Tokens appended so far. */
int64_t rs_trace_writer_tokens(const rs_trace_writer *w);
/* Checks every token belongs to a sequence, closes and renames into place. */
int rs_trace_writer_finish(rs_trace_writer *w, rs_error *err);
/* Discards the temporary file. */
void rs_trace_writer_abort(rs_trace_writer *w);

#endif
