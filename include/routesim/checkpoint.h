/* Saving and restoring what a router or a metric accumulator carries from
 * one chunk to the next, so that a pass over a trace can be checkpointed
 * and a rerun after a crash (or kill -9) resumes mid-trace.
 *
 * One function per descriptor (`checkpoint` in rs_router_type and
 * rs_metric_type) does both directions: it names every piece of state, in
 * a fixed order, with rs_state_bytes. While saving the bytes are copied
 * out; while restoring they are copied back into an object that `create`
 * made with the same parameters on the same trace, so fixed-size arrays
 * need no sizes. A buffer whose length varies names its length first and,
 * when restoring, grows to it before naming its contents:
 *
 *     static void my_checkpoint(void *acc, rs_state_io *io)
 *     {
 *         my_acc *a = acc;
 *         RS_STATE_ARRAY(io, a->counts, a->E);   // fixed by create
 *         RS_STATE(io, a->tokens);
 *         RS_STATE(io, a->used);                 // varies
 *         if (rs_state_restoring(io) && grow(a, a->used) != 0) {
 *             rs_state_fail(io);
 *             return;
 *         }
 *         RS_STATE_ARRAY(io, a->items, a->used);
 *     }
 *
 * Scratch that is rewritten before it is read in every chunk needs no
 * saving. The bytes are the in-memory representation: a checkpoint is
 * only read back by the same build of routesim (its key names the
 * version and revision), and the engine checks that each object read
 * exactly what was written for it. */
#ifndef ROUTESIM_CHECKPOINT_H
#define ROUTESIM_CHECKPOINT_H

#include <stddef.h>

#include "routesim/api.h"

typedef struct rs_state_io rs_state_io;

/* 1 while restoring (bytes go into the object), 0 while saving. */
RS_API int rs_state_restoring(const rs_state_io *io);
/* Saves or restores size bytes at data. After a failure it does nothing. */
RS_API void rs_state_bytes(rs_state_io *io, void *data, size_t size);
/* The object cannot be saved or restored (e.g. out of memory growing a
 * buffer): the checkpoint is not written, or not used. */
RS_API void rs_state_fail(rs_state_io *io);

#define RS_STATE(io, x) rs_state_bytes((io), &(x), sizeof(x))
#define RS_STATE_ARRAY(io, p, n) rs_state_bytes((io), (p), (size_t)(n) * sizeof *(p))

#endif
