/* Typed parameters of routers and metrics.
 *
 * A descriptor lists its parameters as rs_param_def rows (name, kind,
 * default, range). Values arrive as text ("k=2" in a router spec) or as JSON
 * numbers from a config; rs_params validates them against the rows and
 * keeps them typed. Lookup is by name and happens once, when a router or
 * metric is created, never in a hot loop. */
#ifndef ROUTESIM_PARAMS_H
#define ROUTESIM_PARAMS_H

#include <stddef.h>
#include "routesim/error.h"

typedef enum rs_param_kind {
    RS_PARAM_INT,    /* 64-bit integer within [min, max] */
    RS_PARAM_FLOAT,  /* double within [min, max] */
    RS_PARAM_BOOL,   /* 0/1, true/false */
    RS_PARAM_ENUM,   /* one of the '|'-separated choices */
    RS_PARAM_STRING  /* free text, e.g. a path */
} rs_param_kind;

typedef struct rs_param_def {
    const char *name;
    rs_param_kind kind;
    const char *default_value; /* text form; NULL = unset unless given */
    double min, max;           /* inclusive range for INT and FLOAT */
    const char *choices;       /* ENUM: "lru|lfu|fifo" */
    const char *help;          /* one line for `routesim routers` */
} rs_param_def;

#define RS_PARAMS_MAX 32

typedef struct rs_param_value {
    int set;        /* 0 when the parameter has no default and was not given */
    int explicit_;  /* 1 when given by the user (not the default) */
    long long i;    /* INT, BOOL, ENUM (choice index) */
    double f;       /* FLOAT (INT values are mirrored here too) */
    char *s;        /* ENUM choice or STRING, owned */
} rs_param_value;

typedef struct rs_params {
    const rs_param_def *defs;
    int n;
    char owner[128]; /* "router topk", names the parameters in messages */
    rs_param_value v[RS_PARAMS_MAX];
} rs_params;

/* Fills every parameter with its default. owner prefixes messages. */
RS_API int rs_params_init(rs_params *p, const rs_param_def *defs, int n, const char *owner, rs_error *err);
RS_API void rs_params_free(rs_params *p);
RS_API int rs_params_copy(rs_params *dst, const rs_params *src, rs_error *err);

/* Sets one parameter from its text form, validating kind and range. */
RS_API int rs_params_set(rs_params *p, const char *name, const char *text, rs_error *err);

/* Parses "k=2,renorm=0" (the part of a router spec after ':'); a key given
 * twice in one list is an error. */
RS_API int rs_params_parse_list(rs_params *p, const char *list, rs_error *err);

/* Lookup by name; an unknown name is a programming error and aborts. */
RS_API long long rs_param_int(const rs_params *p, const char *name);
RS_API double rs_param_float(const rs_params *p, const char *name);
RS_API int rs_param_bool(const rs_params *p, const char *name);
RS_API const char *rs_param_str(const rs_params *p, const char *name); /* ENUM or STRING; NULL if unset */
RS_API int rs_param_is_set(const rs_params *p, const char *name);

/* Writes "a=1;b=x" over the parameters whose bit is set in mask (bit i =
 * defs[i]), in name order, unset ones omitted. explicit_only limits it to
 * values the user gave. sep joins pairs (";" for results, "," for specs).
 * Returns the length, like snprintf. */
RS_API int rs_params_format(const rs_params *p, unsigned long long mask, int explicit_only, const char *sep,
                     char *buf, size_t size);

/* Text form of one value, as rs_params_format writes it. */
RS_API int rs_param_value_text(const rs_params *p, int index, char *buf, size_t size);

RS_API const char *rs_param_kind_name(rs_param_kind kind);

#endif
