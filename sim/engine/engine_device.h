/* The device path of the engine (--device gpu, docs/gpu.md): per chunk,
 * the logits go to the OpenMP offload device, the softmax and every router
 * and metric with a device hook run there, and the decisions come back
 * where the CPU reads them (the capacity stage, the other metrics). */
#ifndef ROUTESIM_ENGINE_DEVICE_H
#define ROUTESIM_ENGINE_DEVICE_H

#include "routesim/chunk.h"
#include "routesim/error.h"

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

#endif
