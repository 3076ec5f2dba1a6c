/* The --metrics list of the command line: "load,entropy.router_entropy,
 * cache:slots=[4,8],policy=belady" -- FAMILY keeps every output,
 * FAMILY.OUTPUT keeps that output (those named are all a family reports),
 * FAMILY:K=V or FAMILY.OUTPUT:K=V sets a parameter of the family, K=V items
 * after it set more of the same family's (the grammar of router specs),
 * and K=[A,B,...] sweeps a parameter as a list does in a config (every
 * combination of a family's lists). */
#ifndef ROUTESIM_METRIC_LIST_H
#define ROUTESIM_METRIC_LIST_H

#include "sim/config/spec.h"

/* *specs (free with rs_metric_list_free) receives *count specs. */
int rs_metric_list_parse(const char *list, rs_metric_spec **specs, int *count, rs_error *err);
void rs_metric_list_free(rs_metric_spec *specs, int count);

#endif
