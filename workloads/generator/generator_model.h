/* The generative model behind `routesim gen` (docs/generator.md): its
 * resolved settings, the structure drawn once from the seed, and the
 * per-token step. Internal to the generator. */
#ifndef ROUTESIM_GENERATOR_MODEL_H
#define ROUTESIM_GENERATOR_MODEL_H

#include <gsl/gsl_rng.h>
#include <stdint.h>

#include "routesim/error.h"
#include "workloads/generator/generator_presets.h"
#include "workloads/trace/trace.h"

/* Settings with the preset's values filled in. */
typedef struct rs_gen_config {
    const rs_generator_preset *preset;
    int64_t tokens;
    uint64_t seed;
    int L, E, k, vocab, domains, rank, seq_len;
    double seq_len_sigma, zipf;
    double skew, skew_spread, domain_scale, locality, locality_scale;
    double token_dependence, affinity, noise, logit_offset, bias_correction;
    int sigmoid, norm_topk;
    /* Grouped routing of the sigmoid rule (DeepSeek-V3): n_group 0 = none;
     * routed_scaling_factor multiplies the recorded weights (1 = none). */
    int n_group, topk_group;
    double routed_scaling_factor;
    rs_logits_dtype dtype;
    int record_topk, gzip;
    int reshaped; /* L, E or k differ from the preset's model */
} rs_gen_config;

/* Most experts per layer (the `experts` setting's limit). */
#define RS_GEN_MAX_EXPERTS 4096

/* One independent GSL stream per kind of draw. */
enum {
    RS_GEN_STREAM_POPULARITY,
    RS_GEN_STREAM_DOMAIN,
    RS_GEN_STREAM_EMBEDDING,
    RS_GEN_STREAM_PROJECTION,
    RS_GEN_STREAM_AFFINITY,
    RS_GEN_STREAM_SEQUENCES,
    RS_GEN_STREAM_TOKENS,
    RS_GEN_STREAM_LATENT,
    RS_GEN_STREAM_NOISE,
    RS_GEN_NUM_STREAMS
};

typedef struct rs_gen_model {
    gsl_rng *rng[RS_GEN_NUM_STREAMS];
    float *popularity;        /* [L, E] */
    float *domain_bias;       /* [D, L, E], NULL when D == 1 or domain_scale == 0 */
    float *embedding;         /* [V, r], NULL when token_dependence == 0 */
    float *projection;        /* [L, r, E], scaled by token_dependence */
    int32_t *affinity_source; /* [L, E]: the expert of layer l-1 that feeds expert e of layer l */
    double *zipf_cdf;         /* [V] over frequency ranks */
    int32_t *rank_to_id;      /* [V] */
    float *bias;              /* [L, E] or NULL */
} rs_gen_model;

/* Per-sequence state and scratch of the token step (all sized E or L*E). */
typedef struct rs_gen_state {
    float *latent;     /* [L, E] AR(1) state of the current sequence */
    float *prev, *cur; /* [E] varying part of the previous and current layer */
    float *score;      /* [E] selection scores of the native rule */
} rs_gen_state;

/* Draws the structure from the seed (fixed order, one stream per part). */
int rs_gen_model_build(const rs_gen_config *c, rs_gen_model *m, rs_error *err);
void rs_gen_model_free(rs_gen_model *m);

int rs_gen_state_alloc(const rs_gen_config *c, rs_gen_state *s);
void rs_gen_state_free(rs_gen_state *s);

/* A new sequence: its length (before truncation to the trace) and domain. */
int64_t rs_gen_draw_sequence_length(const rs_gen_config *c, const rs_gen_model *m);
int rs_gen_draw_domain(const rs_gen_config *c, const rs_gen_model *m);
int32_t rs_gen_draw_token(const rs_gen_config *c, const rs_gen_model *m);

/* Logits [L, E] of one token; first = the token opens its sequence. */
void rs_gen_token_logits(const rs_gen_config *c, const rs_gen_model *m, rs_gen_state *s, int32_t token, int domain,
                         int first, float *z);

/* The preset's own routing rule on one row of logits: ids best first (ties
 * to the lower index) and combine weights. bias may be NULL. */
void rs_gen_native_topk(const rs_gen_config *c, const float *bias, const float *z, float *score, int32_t *ids,
                        float *weights);

#endif
