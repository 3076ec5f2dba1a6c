/* The device path of the engine (--device gpu, docs/gpu.md): per chunk,
 * the logits go to the OpenMP offload device, the softmax and every router
 * and metric with a device hook run there, and the decisions come back
 * where the CPU reads them (the capacity stage, the other metrics). */
#ifndef ROUTESIM_ENGINE_DEVICE_H
#define ROUTESIM_ENGINE_DEVICE_H

#include "routesim/chunk.h"
#include "routesim/error.h"
#include "sim/engine/chunk_loader.h"

struct rs_engine;

/* Environment variable that lets --device gpu run its target regions on
 * the host when there is no offload device (tests, machines without a GPU). */
#define RS_HOST_FALLBACK_ENV "ROUTESIM_ALLOW_HOST_FALLBACK"

/* Picks the device (failing with one line when there is none and the host
 * fallback is not allowed), marks the routers that route there and says on
 * stderr, in one line, what runs where. */
int rs_engine_device_setup(struct rs_engine *e, rs_error *err);
/* Routes chunk c with every router marked for the device (a no-op without
 * any) and measures it with their metrics marked for the device: the
 * decisions the CPU reads are then in their dec, as if route_layer had run,
 * and those metrics' accumulators hold the chunk. */
int rs_engine_device_route(struct rs_engine *e, const rs_chunk *c, rs_error *err);
void rs_engine_device_free(struct rs_engine *e);

/* Whether the device widens and checks each chunk's logits: nothing on the
 * CPU reads them (every router and every metric that reads logits or
 * probabilities runs on the device, no capacity stage, no reference), so
 * the host only reads them, as stored (16-bit rows stay 16-bit). */
int rs_engine_device_widens(const struct rs_engine *e);
/* The check of a loaded chunk whose logits b holds as stored (16-bit words,
 * or floats): copies them to the device, widens them there and finds each
 * token's first non-finite value; fills b->valid and, as the host's check
 * does, fails naming the first one or counts the skipped tokens. The
 * chunk's logits then stay on the device for rs_engine_device_route. */
int rs_engine_device_check(struct rs_engine *e, rs_loaded_chunk *b, int64_t *skipped, int *any_invalid,
                           rs_error *err);

#endif
