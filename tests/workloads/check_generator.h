/* Helpers shared by the generator's Check files: generate a trace from
 * settings text and read everything back as plain arrays. */
#ifndef ROUTESIM_CHECK_GENERATOR_H
#define ROUTESIM_CHECK_GENERATOR_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "workloads/trace/trace.h"

/* Generates `settings` ("key=value,...") into the scratch file `name`;
 * path receives its full path. Fails the test on error. */
void gen_test_generate(char *path, size_t size, const char *name, const char *settings);

typedef struct gen_loaded {
    int T, L, E, S, K;
    float *z;         /* [T, L, E] */
    int32_t *ids;     /* [T] */
    int64_t *offsets; /* [S + 1] */
    int32_t *domain;  /* [S] */
    int32_t *seq;     /* [T] */
    float *bias;      /* [L, E] or NULL */
    int32_t *topk_ids;
    float *topk_weights;
    rs_logits_dtype dtype;
    int domain_names;
} gen_loaded;

void gen_test_load(gen_loaded *t, const char *path);
void gen_test_unload(gen_loaded *t);
const float *gen_test_row(const gen_loaded *t, int token, int layer);
/* Highest logit, ties to the lower index. */
int gen_test_top1(const gen_loaded *t, int token, int layer);
/* Population coefficient of variation. */
double gen_test_cv(const double *x, int n);

/* The structure tests (tests/check_generator_structure.c). */
TCase *generator_structure_tcase(void);

#endif
