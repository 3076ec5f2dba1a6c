/* Reads a trace chunk by chunk, one chunk ahead, on a background thread or
 * on one of the caller's (rs_chunk_loader_read_ahead), so the HDF5 read of
 * chunk i+1 overlaps the routing of chunk i. Only the
 * loader touches the trace's token data and the sequence cursor. */
#ifndef ROUTESIM_CHUNK_LOADER_H
#define ROUTESIM_CHUNK_LOADER_H

#include <stdint.h>

#include "routesim/router.h"
#include "workloads/trace/sequence_cursor.h"
#include "workloads/trace/trace.h"

/* What one chunk's read produced. Valid until the next call to
 * rs_chunk_loader_next. */
typedef struct rs_loaded_chunk {
    int64_t t0;
    int n;
    int64_t capacity;       /* tokens the per-token buffers hold */
    int64_t row_capacity;   /* tokens the [n, L, ...] buffers hold */
    /* 1: the chunk holds more than whole_tokens tokens; its logits and
     * recorded top-k were not read (NULL or stale): the caller reads them
     * in layer bands. */
    int banded;
    /* 1 (banded chunks only): its 16-bit logits were read whole into
     * stored (or, when num_extents > 0, are for the caller to pread there);
     * the caller widens them band by band. */
    int stored_whole;
    int64_t stored_capacity; /* tokens stored holds */
    uint16_t *stored;       /* 16-bit logits as stored, or NULL (float32 is read into logits) */
    float *logits;          /* [n, L, E], widened by the caller when stored != NULL */
    /* When num_extents > 0 the logits were not read: the caller preads
     * them (rs_trace_read_logit_rows) in parallel, into stored or logits. */
    rs_extent *extents;
    int num_extents, extent_capacity;
    uint8_t *valid;         /* [n] for the caller to fill */
    int32_t *token_ids;     /* [n] or NULL */
    uint8_t *phase;         /* [n] when asked for (RS_WANTS_PHASE) and present, else NULL */
    int32_t *recorded_ids;  /* [n, L, K] or NULL */
    float *recorded_weights;
    int32_t *seq_of_token;  /* [n] */
    rs_seq_window window;
    int32_t *domain;        /* [window.num_seq] labels when the trace has /sequences/domain, else NULL */
    int64_t domain_capacity;
    float *quality;         /* [n, E] outcomes (unit = query) when asked for and present, else NULL */
    float *cost;            /* [n, E], a per-model cost repeated per query; NULL without /outcome/cost */
} rs_loaded_chunk;

typedef struct rs_loader_config {
    rs_trace *trace;
    unsigned needs;        /* rs_needs: which datasets to read */
    int64_t chunk_tokens;  /* tokens per chunk before group alignment */
    int64_t whole_tokens;  /* larger chunks are left to be read in layer bands (0 = never) */
    int64_t stored_whole_tokens; /* but 16-bit logits of a banded chunk of at most this many are read whole */
    unsigned group_modes;  /* bit rs_group: chunks end on boundaries of each mode */
    int batch_tokens;
    int background;        /* read ahead on a thread */
    int stored_only;       /* 16-bit logits are kept as stored only (the device widens them) */
    /* Token offsets (increasing, > 0) no chunk may cross, moved up to the
     * next boundary of every grouping mode: bootstrap blocks. */
    const int64_t *cuts;
    int num_cuts;
    /* The first chunk's first token (a pass resumed from a checkpoint):
     * a boundary of every grouping mode and cut, as chunk ends are. */
    int64_t start;
    /* One past the last token read (0: the trace's end): the end of a
     * block of whole sequences, a boundary as start is. */
    int64_t end;
} rs_loader_config;

typedef struct rs_chunk_loader rs_chunk_loader;

int rs_chunk_loader_create(rs_chunk_loader **out, const rs_loader_config *cfg, rs_error *err);
/* The next chunk (waiting for its read if needed), or *chunk = NULL after
 * the last one. Starts reading the chunk after it. */
int rs_chunk_loader_next(rs_chunk_loader *l, rs_loaded_chunk **chunk, rs_error *err);
/* Without a reader thread (background = 0): reads the chunk after the one
 * the caller holds now, on the calling thread, for the next call to
 * rs_chunk_loader_next to hand out (with the read's error, if any). Lets a
 * caller read ahead on one of its own threads, beside other work. */
void rs_chunk_loader_read_ahead(rs_chunk_loader *l);
void rs_chunk_loader_destroy(rs_chunk_loader *l);
/* Tokens of the largest chunk cfg would give, from the chunk boundaries
 * alone (sequence offsets; no token data is read). */
int rs_chunk_loader_largest(const rs_loader_config *cfg, int64_t *largest, rs_error *err);

#endif
