/* Checks a router's create makes against the trace, with the one-line
 * messages every router gives for them. */
#ifndef ROUTESIM_TRACE_CHECKS_H
#define ROUTESIM_TRACE_CHECKS_H

#include "routesim/router.h"

/* The trace's num_experts is at most `most` (a router's stack scratch):
 * "router NAME: num_experts=E of PATH exceeds the MOST it supports". */
int rs_check_experts_at_most(const char *router, int most, const rs_trace_info *tr, rs_error *err);

/* Parameter `param` = value picks at most num_experts experts:
 * "router NAME: parameter PARAM=VALUE exceeds num_experts=E of PATH". */
int rs_check_param_experts(const char *router, const char *param, int value, const rs_trace_info *tr, rs_error *err);

#endif
