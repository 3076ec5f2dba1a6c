/* The generative model of docs/generator.md: structure drawn once from the
 * seed, then one token at a time.
 *
 * Every random quantity comes from its own GSL mt19937 stream seeded from
 * (seed, stream) and drawn in a fixed order, so a trace depends on its
 * settings alone, and a setting that does not touch a stream leaves its draws
 * unchanged (two traces that differ only in `locality` share token ids,
 * sequences and noise). */
#include "workloads/generator/generator_model.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/rng.h"

void rs_gen_model_free(rs_gen_model *m)
{
    for (int i = 0; i < RS_GEN_NUM_STREAMS; i++)
        if (m->rng[i])
            gsl_rng_free(m->rng[i]);
    free(m->popularity);
    free(m->domain_bias);
    free(m->embedding);
    free(m->projection);
    free(m->affinity_source);
    free(m->zipf_cdf);
    free(m->rank_to_id);
    free(m->bias);
    memset(m, 0, sizeof *m);
}

static inline double gauss(gsl_rng *r) { return gsl_ran_gaussian_ziggurat(r, 1.0); }

static void draw_popularity(const rs_gen_config *c, rs_gen_model *m)
{
    gsl_rng *r = m->rng[RS_GEN_STREAM_POPULARITY];
    const int E = c->E;
    for (int l = 0; l < c->L; l++) {
        double layer_skew = c->skew * exp(c->skew_spread * gauss(r));
        float *row = m->popularity + (size_t)l * E;
        double sum = 0, sq = 0;
        for (int e = 0; e < E; e++) {
            row[e] = (float)gauss(r);
            sum += row[e];
        }
        double mean = sum / E;
        for (int e = 0; e < E; e++)
            sq += (row[e] - mean) * (row[e] - mean);
        /* Standardised so `skew` is exactly the std across a layer's experts. */
        double scale = sq > 0 ? layer_skew / sqrt(sq / E) : 0;
        for (int e = 0; e < E; e++)
            row[e] = (float)((row[e] - mean) * scale);
    }
}

static void draw_domain_bias(const rs_gen_config *c, rs_gen_model *m)
{
    gsl_rng *r = m->rng[RS_GEN_STREAM_DOMAIN];
    size_t cells = (size_t)c->L * c->E, D = (size_t)c->domains;
    for (size_t i = 0; i < D * cells; i++)
        m->domain_bias[i] = (float)(c->domain_scale * gauss(r));
    /* Centred across domains: domains move experts around, not the average popularity. */
    for (size_t j = 0; j < cells; j++) {
        double mean = 0;
        for (size_t d = 0; d < D; d++)
            mean += m->domain_bias[d * cells + j];
        mean /= (double)D;
        for (size_t d = 0; d < D; d++)
            m->domain_bias[d * cells + j] -= (float)mean;
    }
}

static void draw_token_model(const rs_gen_config *c, rs_gen_model *m)
{
    const double inv_sqrt_rank = 1.0 / sqrt(c->rank);
    for (size_t i = 0; i < (size_t)c->vocab * c->rank; i++)
        m->embedding[i] = (float)(gauss(m->rng[RS_GEN_STREAM_EMBEDDING]) * inv_sqrt_rank);
    for (size_t i = 0; i < (size_t)c->L * c->rank * c->E; i++)
        m->projection[i] = (float)(c->token_dependence * gauss(m->rng[RS_GEN_STREAM_PROJECTION]));
}

static void draw_affinity(const rs_gen_config *c, rs_gen_model *m)
{
    for (int l = 0; l < c->L; l++) {
        int32_t *src = m->affinity_source + (size_t)l * c->E;
        for (int e = 0; e < c->E; e++)
            src[e] = e;
        if (l > 0)
            gsl_ran_shuffle(m->rng[RS_GEN_STREAM_AFFINITY], src, (size_t)c->E, sizeof *src);
    }
}

static void build_vocabulary(const rs_gen_config *c, rs_gen_model *m)
{
    double total = 0;
    for (int j = 0; j < c->vocab; j++) {
        total += pow(j + 1.0, -c->zipf);
        m->zipf_cdf[j] = total;
    }
    for (int j = 0; j < c->vocab; j++)
        m->zipf_cdf[j] /= total;
    m->zipf_cdf[c->vocab - 1] = 1.0;
    /* Frequent tokens get scattered ids, as in a real tokenizer. */
    for (int j = 0; j < c->vocab; j++)
        m->rank_to_id[j] = j;
    gsl_ran_shuffle(m->rng[RS_GEN_STREAM_TOKENS], m->rank_to_id, (size_t)c->vocab, sizeof *m->rank_to_id);
}

/* The average logit shift of each expert that a trained selection bias sees:
 * popularity plus the token component averaged over the Zipf token
 * frequencies, carried through the layer affinity like the logits are. */
static void average_shift(const rs_gen_config *c, const rs_gen_model *m, float *shift)
{
    const int L = c->L, E = c->E, r = c->rank;
    double *mean_embedding = calloc((size_t)r, sizeof *mean_embedding);
    float *carried = calloc((size_t)E, sizeof *carried), *next = calloc((size_t)E, sizeof *next);
    if (m->embedding && mean_embedding)
        for (int j = 0; j < c->vocab; j++) {
            double p = m->zipf_cdf[j] - (j > 0 ? m->zipf_cdf[j - 1] : 0.0);
            const float *u = m->embedding + (size_t)m->rank_to_id[j] * r;
            for (int i = 0; i < r; i++)
                mean_embedding[i] += p * u[i];
        }
    const float follow = (float)c->affinity, keep = (float)sqrt(1.0 - c->affinity * c->affinity);
    for (int l = 0; l < L; l++) {
        for (int e = 0; e < E; e++) {
            double token = 0;
            for (int i = 0; m->embedding && mean_embedding && i < r; i++)
                token += mean_embedding[i] * m->projection[((size_t)l * r + i) * E + e];
            next[e] = (float)token;
            if (l > 0 && m->affinity_source && carried)
                next[e] = keep * next[e] + follow * carried[m->affinity_source[(size_t)l * E + e]];
        }
        for (int e = 0; e < E; e++) {
            if (carried)
                carried[e] = next ? next[e] : 0;
            shift[(size_t)l * E + e] = m->popularity[(size_t)l * E + e] + (carried ? carried[e] : 0);
        }
    }
    free(mean_embedding);
    free(carried);
    free(next);
}

/* The bias that puts every expert's selection threshold back where an
 * unshifted expert's is, as a trained e_score_correction_bias roughly does:
 * an expert whose logits are shifted by p reaches score sigmoid(theta + p)
 * at the typical top-k threshold theta, so bias = sigmoid(theta) -
 * sigmoid(theta + p), scaled by the strength. */
static void derive_bias(const rs_gen_config *c, rs_gen_model *m)
{
    double residual = c->token_dependence * c->token_dependence + c->locality_scale * c->locality_scale +
                      c->noise * c->noise + (c->domains > 1 ? c->domain_scale * c->domain_scale : 0);
    double quantile = c->k < c->E ? gsl_cdf_ugaussian_Pinv(1.0 - (double)c->k / c->E) : 0;
    double theta = c->logit_offset + quantile * sqrt(residual);
    double at_theta = 1.0 / (1.0 + exp(-theta));
    average_shift(c, m, m->bias);
    for (size_t i = 0; i < (size_t)c->L * c->E; i++)
        m->bias[i] = (float)(c->bias_correction * (at_theta - 1.0 / (1.0 + exp(-(theta + m->bias[i])))));
}

static unsigned long stream_seed(uint64_t seed, int stream)
{
    return (unsigned long)(rs_mix64(rs_mix64(seed) + 0x9e3779b97f4a7c15ULL * (uint64_t)(stream + 1)) >> 32);
}

int rs_gen_model_build(const rs_gen_config *c, rs_gen_model *m, rs_error *err)
{
    memset(m, 0, sizeof *m);
    const size_t cells = (size_t)c->L * c->E;
    int ok = 1;
    for (int i = 0; i < RS_GEN_NUM_STREAMS && ok; i++) {
        m->rng[i] = gsl_rng_alloc(gsl_rng_mt19937);
        if ((ok = m->rng[i] != NULL))
            gsl_rng_set(m->rng[i], stream_seed(c->seed, i));
    }
    ok = ok && (m->popularity = malloc(cells * sizeof(float)));
    if (ok && c->domains > 1 && c->domain_scale > 0)
        ok = (m->domain_bias = malloc((size_t)c->domains * cells * sizeof(float))) != NULL;
    if (ok && c->token_dependence > 0)
        ok = (m->embedding = malloc((size_t)c->vocab * c->rank * sizeof(float))) &&
             (m->projection = malloc(cells * c->rank * sizeof(float)));
    if (ok && c->affinity > 0)
        ok = (m->affinity_source = malloc(cells * sizeof(int32_t))) != NULL;
    ok = ok && (m->zipf_cdf = malloc((size_t)c->vocab * sizeof(double))) &&
         (m->rank_to_id = malloc((size_t)c->vocab * sizeof(int32_t)));
    if (ok && c->bias_correction > 0)
        ok = (m->bias = malloc(cells * sizeof(float))) != NULL;
    if (!ok) {
        rs_gen_model_free(m);
        return rs_fail(err, "generator: out of memory for a %d x %d model with vocabulary %d", c->L, c->E, c->vocab);
    }
    draw_popularity(c, m);
    if (m->domain_bias)
        draw_domain_bias(c, m);
    if (m->embedding)
        draw_token_model(c, m);
    if (m->affinity_source)
        draw_affinity(c, m);
    build_vocabulary(c, m);
    if (m->bias)
        derive_bias(c, m);
    return 0;
}

/* ---- per-token generation ------------------------------------------- */

int32_t rs_gen_draw_token(const rs_gen_config *c, const rs_gen_model *m)
{
    double u = gsl_rng_uniform(m->rng[RS_GEN_STREAM_TOKENS]);
    int lo = 0, hi = c->vocab - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (m->zipf_cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return m->rank_to_id[lo];
}

/* Logits [L, E] of one token. first = the token opens its sequence. */
void rs_gen_token_logits(const rs_gen_config *c, const rs_gen_model *m, rs_gen_state *s, int32_t token, int domain,
                         int first, float *z)
{
    const int L = c->L, E = c->E, r = c->rank;
    const float rho = (float)c->locality, innovation = (float)sqrt(1.0 - c->locality * c->locality);
    const float latent_scale = (float)c->locality_scale, noise = (float)c->noise, offset = (float)c->logit_offset;
    const float follow = (float)c->affinity, keep = (float)sqrt(1.0 - c->affinity * c->affinity);
    gsl_rng *latent_rng = m->rng[RS_GEN_STREAM_LATENT], *noise_rng = m->rng[RS_GEN_STREAM_NOISE];
    const float *u = m->embedding ? m->embedding + (size_t)token * r : NULL;
    float *prev = s->prev, *cur = s->cur;
    for (int l = 0; l < L; l++) {
        memset(cur, 0, (size_t)E * sizeof *cur);
        if (u) {
            const float *w = m->projection + (size_t)l * r * E;
            for (int j = 0; j < r; j++) {
                const float uj = u[j], *wj = w + (size_t)j * E;
                for (int e = 0; e < E; e++)
                    cur[e] += uj * wj[e];
            }
        }
        if (latent_scale > 0) {
            float *a = s->latent + (size_t)l * E;
            if (first)
                for (int e = 0; e < E; e++)
                    a[e] = (float)gauss(latent_rng);
            else if (innovation > 0)
                for (int e = 0; e < E; e++)
                    a[e] = rho * a[e] + innovation * (float)gauss(latent_rng);
            for (int e = 0; e < E; e++)
                cur[e] += latent_scale * a[e];
        }
        if (noise > 0)
            for (int e = 0; e < E; e++)
                cur[e] += noise * (float)gauss(noise_rng);
        if (l > 0 && m->affinity_source) {
            const int32_t *src = m->affinity_source + (size_t)l * E;
            for (int e = 0; e < E; e++)
                cur[e] = keep * cur[e] + follow * prev[src[e]];
        }
        const float *pop = m->popularity + (size_t)l * E;
        const float *dom = m->domain_bias ? m->domain_bias + ((size_t)domain * L + l) * E : NULL;
        float *row = z + (size_t)l * E;
        for (int e = 0; e < E; e++)
            row[e] = offset + pop[e] + cur[e];
        if (dom)
            for (int e = 0; e < E; e++)
                row[e] += dom[e];
        float *t = prev;
        prev = cur;
        cur = t;
    }
}

int64_t rs_gen_draw_sequence_length(const rs_gen_config *c, const rs_gen_model *m)
{
    if (c->seq_len_sigma == 0)
        return c->seq_len;
    double sigma = c->seq_len_sigma, mu = log((double)c->seq_len) - 0.5 * sigma * sigma;
    double len = floor(exp(mu + sigma * gauss(m->rng[RS_GEN_STREAM_SEQUENCES])) + 0.5);
    return len < 1 ? 1 : len > 1e9 ? (int64_t)1000000000 : (int64_t)len;
}

int rs_gen_draw_domain(const rs_gen_config *c, const rs_gen_model *m)
{
    return (int)gsl_rng_uniform_int(m->rng[RS_GEN_STREAM_SEQUENCES], (unsigned long)c->domains);
}

int rs_gen_state_alloc(const rs_gen_config *c, rs_gen_state *s)
{
    const size_t E = (size_t)c->E;
    s->latent = malloc((size_t)c->L * E * sizeof *s->latent);
    s->prev = malloc(E * sizeof *s->prev);
    s->cur = malloc(E * sizeof *s->cur);
    s->score = malloc(E * sizeof *s->score);
    return s->latent && s->prev && s->cur && s->score ? 0 : -1;
}

void rs_gen_state_free(rs_gen_state *s)
{
    free(s->latent);
    free(s->prev);
    free(s->cur);
    free(s->score);
    memset(s, 0, sizeof *s);
}
