/* Decisions files (`routesim route --out`): /decisions/ids and
 * /decisions/weights [T, L, Kmax]. Written under a temporary name and
 * renamed when complete; readable back by the replay router. */
#ifndef ROUTESIM_DECISIONS_FILE_H
#define ROUTESIM_DECISIONS_FILE_H

#include <stdint.h>

#include "routesim/error.h"

typedef struct rs_decisions_writer rs_decisions_writer;

int rs_decisions_writer_create(rs_decisions_writer **out, const char *path, int num_layers, int kmax,
                               const char *router_spec, const char *trace_path, rs_error *err);
/* Appends n tokens of [n, L, kmax] rows. */
int rs_decisions_writer_append(rs_decisions_writer *w, int n, const int32_t *ids, const float *weights,
                               rs_error *err);
int rs_decisions_writer_finish(rs_decisions_writer *w, rs_error *err);
void rs_decisions_writer_abort(rs_decisions_writer *w);

typedef struct rs_decisions_reader rs_decisions_reader;

/* Opens and validates a decisions file; T, L and Kmax are reported. */
int rs_decisions_reader_open(rs_decisions_reader **out, const char *path, int64_t *num_tokens, int *num_layers,
                             int *kmax, rs_error *err);
int rs_decisions_reader_read(rs_decisions_reader *r, int64_t t0, int n, int32_t *ids, float *weights,
                             rs_error *err);
void rs_decisions_reader_close(rs_decisions_reader *r);

#endif
