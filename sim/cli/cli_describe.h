/* Shared pieces of `routesim routers` and `routesim metrics`: parameter
 * tables and required inputs as text and markdown. */
#ifndef ROUTESIM_CLI_DESCRIBE_H
#define ROUTESIM_CLI_DESCRIBE_H

#include <cJSON.h>

#include "routesim/params.h"
#include "sim/embed/registry_json.h" /* the JSON forms */

/* Text rows "    name=default  type  range  help". */
void rs_describe_print_params(const rs_param_def *defs, int n);
/* A markdown table of the parameters ("- Parameters: none" when n = 0). */
void rs_describe_markdown_params(const rs_param_def *defs, int n);
/* Writes text for a markdown table cell ('|' escaped). */
void rs_describe_md_cell(const char *text);
/* "logits token ids ..." */
const char *rs_describe_needs_text(unsigned needs, char *buf, size_t size);
/* Prints and frees a JSON document; returns the exit status. */
int rs_describe_emit_json(cJSON *root);

#endif
