/* Selection on scores that routers compute per expert in double precision
 * (sigmoid, softplus, scores plus a selection bias), and the group step of
 * group-limited routing (core/group_select.h, shared with the generator).
 * Same tie rule as routers/select.h: the lower index wins. Everything works
 * on the stack, without a row-sized buffer. */
#ifndef ROUTESIM_SCORE_SELECT_H
#define ROUTESIM_SCORE_SELECT_H

#include <math.h>
#include <stdint.h>

#include "core/group_select.h"

/* Most experts the routers that score every expert of a row on the stack
 * accept (checked in their create). */
#define RS_ROW_MAX_E 4096

static inline double rs_sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

#endif
