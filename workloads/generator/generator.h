/* Synthetic traces shaped like real MoE models (docs/generator.md).
 *
 * The generator's settings are an rs_param_def table, so `routesim gen
 * --KEY VALUE`, a config's "generate" block and the docs all read the same
 * list. Output is deterministic for a seed. */
#ifndef ROUTESIM_GENERATOR_H
#define ROUTESIM_GENERATOR_H

#include <stddef.h>

#include "core/output_space.h"
#include "routesim/error.h"
#include "routesim/params.h"

/* The settings table (preset, tokens, seed, structure parameters...). */
const rs_param_def *rs_generator_param_defs(int *count);

/* Fills p with the defaults; owner prefixes messages ("gen", "traces[0].generate"). */
int rs_generator_params_init(rs_params *p, const char *owner, rs_error *err);

int rs_generator_preset_count(void);
const char *rs_generator_preset_name(int index);
const char *rs_generator_preset_summary(int index);

/* Resolves the preset-dependent settings and checks those that constrain
 * each other (k <= experts, ...), without generating anything. */
int rs_generator_check(const rs_params *p, rs_error *err);

/* Default of setting `name` as text: the table's, or for a setting whose
 * table default is NULL, the value of preset number `preset`. Returns the
 * length like snprintf, or -1 for an unknown name. */
int rs_generator_default_text(int preset, const char *name, char *buf, size_t size);

/* Writes a trace to path (atomically). Its size is checked first against
 * limit (NULL = the default limit) and the free space of path's file
 * system. progress: -1 automatic, 0 off, 1 on. */
int rs_generate_trace(const char *path, const rs_params *p, const rs_output_limit *limit, int progress,
                      rs_error *err);

#endif
