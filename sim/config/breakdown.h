/* Breakdowns: every metric measured again on a partition of the tokens
 * (docs/metrics.md, "Breakdowns"). A dimension names what a token is
 * grouped by; each group's rows carry `DIM=VALUE` in their key. */
#ifndef ROUTESIM_BREAKDOWN_H
#define ROUTESIM_BREAKDOWN_H

#include "routesim/error.h"

typedef enum rs_breakdown_dim {
    RS_BY_DOMAIN, /* the label of the token's sequence (/sequences/domain) */
    RS_BY_PHASE,  /* prefill or decode (/tokens/phase) */
    RS_BY_COUNT
} rs_breakdown_dim;

/* "domain", "phase" */
const char *rs_breakdown_dim_name(rs_breakdown_dim dim);
/* The bit set (1 << rs_breakdown_dim) of a comma-separated list such as
 * "domain,phase". `where` prefixes the message of an unknown name. */
int rs_breakdown_parse(const char *list, unsigned *dims, const char *where, rs_error *err);
/* Appends the names of dims to buf, comma-separated ("" for none). */
void rs_breakdown_format(unsigned dims, char *buf, size_t size);

#endif
