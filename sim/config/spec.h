/* Configured routers and metrics: a descriptor plus validated parameters.
 *
 * A router spec string is `name` or `name:key=value,key=value`
 * (e.g. `topk:k=2,renorm=0`). */
#ifndef ROUTESIM_SPEC_H
#define ROUTESIM_SPEC_H

#include <stddef.h>

#include "routesim/metric.h"
#include "routesim/router.h"

typedef struct rs_router_spec {
    const rs_router_type *type;   /* the router that runs */
    const rs_router_type *preset; /* the preset named, or NULL */
    rs_params params;             /* its parameters, capacity stage included */
    char label[256];              /* the `run` name in results */
    int entry;                    /* index of the config's routers[] entry it came from (a sweep
                                     expands one entry into several specs); 0 elsewhere */
    int repeat;                   /* config seeds: index of the first spec of the runs repeating
                                     this router with other seeds; -1 = not repeated */
    char repeat_label[256];       /* the label of the repeated router (without @seed=) */
} rs_router_spec;

typedef struct rs_metric_spec {
    const rs_metric_type *type;
    rs_params params;
    unsigned long long outputs; /* bit i = type->outputs[i] is wanted; 0 = every output */
} rs_metric_spec;

/* Parses a router spec string; the label defaults to the string itself. */
int rs_router_spec_parse(rs_router_spec *spec, const char *text, rs_error *err);
/* Starts a spec from a router name with default parameters. owner names it in messages. */
int rs_router_spec_init(rs_router_spec *spec, const char *name, const char *owner, rs_error *err);
void rs_router_spec_free(rs_router_spec *spec);
/* "name:k=v,k=v" with every resolved parameter, which recreates the router. */
int rs_router_spec_string(const rs_router_spec *spec, char *buf, size_t size);
/* The label for results: name plus the parameters the user set. */
void rs_router_spec_default_label(rs_router_spec *spec);

int rs_metric_spec_init(rs_metric_spec *spec, const char *name, const char *owner, rs_error *err);
void rs_metric_spec_free(rs_metric_spec *spec);
/* The outputs a spec wants as a mask (every output when none was named). */
unsigned long long rs_metric_spec_outputs(const rs_metric_spec *spec);
/* Index of the family's output `name`, or -1. */
int rs_metric_output_index(const rs_metric_type *type, const char *name);
/* "a, b, c": every output of the family, for messages. */
void rs_metric_output_names(const rs_metric_type *type, char *buf, size_t size);
/* "a,b" (the wanted outputs in family order), or "" when every output is wanted. */
void rs_metric_outputs_format(const rs_metric_spec *spec, char *buf, size_t size);

/* "Did you mean" help: the comma-separated list of known names. */
void rs_router_names(char *buf, size_t size);
void rs_metric_names(char *buf, size_t size);

#endif
