/* Synthetic trace generator: its settings table, their resolution against
 * the presets, and the streaming writer. The model itself is in
 * generator_model.c. Tokens are produced one at a time and written a block
 * at a time, so memory is bounded by the block, never by the trace. */
#include "workloads/generator/generator.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "workloads/generator/generator_model.h"
#include "workloads/generator/generator_presets.h"
#include "workloads/trace/half.h"
#include "workloads/trace/trace_size.h"
#include "workloads/trace/trace_writer.h"

#define PRESET_CHOICES "mixtral|olmoe|qwen3-moe|deepseek-v3|qwen1.5-moe|deepseek-v2-lite|small"
#define DTYPE_CHOICES "float32|float16|bfloat16"

/* A NULL default means "from the preset" (rs_generator_preset_value). */
static const rs_param_def generator_defs[] = {
    {"preset", RS_PARAM_ENUM, "mixtral", 0, 0, PRESET_CHOICES, "model shape, routing rule and structure defaults"},
    {"tokens", RS_PARAM_INT, "10000", 1, 1e12, NULL, "tokens to generate (T)"},
    {"seed", RS_PARAM_INT, "0", 0, 9e15, NULL, "random seed; equal settings and seed give an identical trace"},
    {"layers", RS_PARAM_INT, NULL, 1, 1024, NULL, "MoE layers L (overrides the preset)"},
    {"experts", RS_PARAM_INT, NULL, 1, 4096, NULL, "routed experts per layer E (overrides the preset)"},
    {"k", RS_PARAM_INT, NULL, 1, 4096, NULL, "experts per token of the native rule (top_k attribute)"},
    {"seq_len", RS_PARAM_INT, NULL, 1, 1e9, NULL, "mean sequence length in tokens"},
    {"seq_len_sigma", RS_PARAM_FLOAT, "0.5", 0, 4, NULL, "log-normal spread of sequence lengths (0 = all equal)"},
    {"vocab", RS_PARAM_INT, NULL, 1, 4e6, NULL, "vocabulary size of /tokens/ids"},
    {"zipf", RS_PARAM_FLOAT, "1.05", 0, 4, NULL, "Zipf exponent of token-id frequencies (0 = uniform)"},
    {"domains", RS_PARAM_INT, "6", 1, 1024, NULL, "number of sequence domains"},
    {"skew", RS_PARAM_FLOAT, NULL, 0, 20, NULL, "expert popularity: std of the per-layer popularity logit"},
    {"skew_spread", RS_PARAM_FLOAT, NULL, 0, 3, NULL, "log-normal spread of the popularity std across layers"},
    {"domain_scale", RS_PARAM_FLOAT, NULL, 0, 20, NULL, "std of the per-(domain, layer, expert) bias"},
    {"locality", RS_PARAM_FLOAT, NULL, 0, 1, NULL, "AR(1) coefficient of the within-sequence latent (rho)"},
    {"locality_scale", RS_PARAM_FLOAT, NULL, 0, 20, NULL, "std of the within-sequence latent"},
    {"token_dependence", RS_PARAM_FLOAT, NULL, 0, 20, NULL, "std of the token-id component"},
    {"token_rank", RS_PARAM_INT, "16", 1, 64, NULL, "rank of the token embedding"},
    {"layer_affinity", RS_PARAM_FLOAT, NULL, 0, 1, NULL, "share of layer l's varying logits carried to layer l+1"},
    {"noise", RS_PARAM_FLOAT, NULL, 0, 20, NULL, "std of independent per-(token, layer, expert) noise"},
    {"logit_offset", RS_PARAM_FLOAT, NULL, -50, 50, NULL, "constant added to every logit (matters for sigmoid)"},
    {"bias_correction", RS_PARAM_FLOAT, NULL, 0, 4, NULL,
     "strength of /router/bias against popularity (sigmoid scoring; 0 = no bias)"},
    {"dtype", RS_PARAM_ENUM, "float32", 0, 0, DTYPE_CHOICES,
     "storage type of /router/logits: float32, float16 or bfloat16"},
    {"record_topk", RS_PARAM_BOOL, "0", 0, 1, NULL, "also write the native rule's /router/topk_ids and _weights"},
    {"gzip", RS_PARAM_INT, "0", 0, 9, NULL, "gzip level of the datasets (0 = none)"},
};

enum { NUM_DEFS = (int)(sizeof generator_defs / sizeof generator_defs[0]) };

const rs_param_def *rs_generator_param_defs(int *count)
{
    *count = NUM_DEFS;
    return generator_defs;
}

int rs_generator_params_init(rs_params *p, const char *owner, rs_error *err)
{
    return rs_params_init(p, generator_defs, NUM_DEFS, owner, err);
}

/* Shortest decimal text that reads back as v. */
static int format_shortest(double v, char *buf, size_t size)
{
    if (v == floor(v) && fabs(v) < 1e15)
        return snprintf(buf, size, "%.0f", v);
    for (int prec = 1; prec < 17; prec++) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            return snprintf(buf, size, "%s", tmp);
    }
    return snprintf(buf, size, "%.17g", v);
}

int rs_generator_default_text(int preset, const char *name, char *buf, size_t size)
{
    for (int i = 0; i < NUM_DEFS; i++) {
        if (strcmp(generator_defs[i].name, name) != 0)
            continue;
        if (generator_defs[i].default_value)
            return snprintf(buf, size, "%s", generator_defs[i].default_value);
        const rs_generator_preset *p = rs_generator_preset_at(preset);
        double v = 0;
        if (!p || rs_generator_preset_value(p, name, &v) != 0)
            return -1;
        return format_shortest(v, buf, size);
    }
    return -1;
}

/* ---- resolved settings ---------------------------------------------- */

static double setting(const rs_params *p, const rs_generator_preset *preset, const char *name)
{
    double v = 0;
    if (rs_param_is_set(p, name))
        return rs_param_float(p, name);
    rs_generator_preset_value(preset, name, &v);
    return v;
}

/* The preset's grouped rule, where the trace can carry it: with a selection
 * bias (DeepSeek-V3's rule needs one) and, for a reshaped model, when the
 * groups still divide the experts, hold two each and leave k experts. */
static void resolve_grouping(const rs_generator_preset *pr, rs_gen_config *c)
{
    c->n_group = c->topk_group = 0;
    c->routed_scaling_factor = 1.0;
    if (!c->sigmoid || c->bias_correction <= 0)
        return;
    if (pr->routed_scaling_factor > 0)
        c->routed_scaling_factor = pr->routed_scaling_factor;
    if (pr->n_group > 1 && c->E % pr->n_group == 0 && c->E / pr->n_group >= 2 &&
        c->k <= pr->topk_group * (c->E / pr->n_group)) {
        c->n_group = pr->n_group;
        c->topk_group = pr->topk_group;
    }
}

static int resolve(const rs_params *p, rs_gen_config *c, rs_error *err)
{
    memset(c, 0, sizeof *c);
    const rs_generator_preset *pr = rs_generator_preset_at((int)rs_param_int(p, "preset"));
    RS_CHECK(pr, err, "%s: parameter preset: unknown preset", p->owner);
    c->preset = pr;
    c->tokens = rs_param_int(p, "tokens");
    c->seed = (uint64_t)rs_param_int(p, "seed");
    c->L = (int)setting(p, pr, "layers");
    c->E = (int)setting(p, pr, "experts");
    c->k = (int)setting(p, pr, "k");
    c->vocab = (int)setting(p, pr, "vocab");
    c->seq_len = (int)setting(p, pr, "seq_len");
    c->seq_len_sigma = rs_param_float(p, "seq_len_sigma");
    c->zipf = rs_param_float(p, "zipf");
    c->domains = (int)rs_param_int(p, "domains");
    c->rank = (int)rs_param_int(p, "token_rank");
    c->skew = setting(p, pr, "skew");
    c->skew_spread = setting(p, pr, "skew_spread");
    c->domain_scale = setting(p, pr, "domain_scale");
    c->locality = setting(p, pr, "locality");
    c->locality_scale = setting(p, pr, "locality_scale");
    c->token_dependence = setting(p, pr, "token_dependence");
    c->affinity = setting(p, pr, "layer_affinity");
    c->noise = setting(p, pr, "noise");
    c->logit_offset = setting(p, pr, "logit_offset");
    c->bias_correction = setting(p, pr, "bias_correction");
    c->sigmoid = strcmp(pr->scoring, "sigmoid") == 0;
    c->norm_topk = pr->norm_topk;
    resolve_grouping(pr, c);
    static const rs_logits_dtype dtypes[] = {RS_LOGITS_F32, RS_LOGITS_F16, RS_LOGITS_BF16};
    c->dtype = dtypes[rs_param_int(p, "dtype")];
    c->record_topk = rs_param_bool(p, "record_topk");
    c->gzip = (int)rs_param_int(p, "gzip");
    c->reshaped = c->L != pr->layers || c->E != pr->experts || c->k != pr->k;
    RS_CHECK(c->k <= c->E, err, "%s: parameter k=%d exceeds experts=%d", p->owner, c->k, c->E);
    RS_CHECK(c->bias_correction == 0 || c->sigmoid, err,
             "%s: parameter bias_correction needs sigmoid scoring (preset deepseek-v3); preset %s scores with %s",
             p->owner, pr->name, pr->scoring);
    RS_CHECK((double)c->L * c->E <= (double)(1 << 24), err, "%s: layers x experts = %lld is too large (max 2^24)",
             p->owner, (long long)c->L * c->E);
    return 0;
}

int rs_generator_check(const rs_params *p, rs_error *err)
{
    rs_gen_config c;
    return resolve(p, &c, err);
}

/* ---- writing -------------------------------------------------------- */

/* "routesim gen preset=... seed=...": every setting, preset values resolved. */
static int source_text(const rs_params *p, char *buf, size_t size, rs_error *err)
{
    rs_params full;
    RS_TRY(rs_params_copy(&full, p, err));
    int preset = (int)rs_param_int(p, "preset"), rc = 0;
    for (int i = 0; i < NUM_DEFS && rc == 0; i++) {
        char text[64];
        if (!full.v[i].set && rs_generator_default_text(preset, generator_defs[i].name, text, sizeof text) > 0)
            rc = rs_params_set(&full, generator_defs[i].name, text, err);
    }
    int n = snprintf(buf, size, "routesim gen ");
    if (rc == 0 && n > 0 && (size_t)n < size)
        rs_params_format(&full, ~0ULL, 0, " ", buf + n, size - (size_t)n);
    rs_params_free(&full);
    return rc;
}

typedef struct gen_output {
    float *logits;      /* [B, L, E] */
    int32_t *token_ids; /* [B] */
    int32_t *topk_ids;  /* [B, L, k] or NULL */
    float *topk_weights;
    int capacity, filled;
} gen_output;

static int flush_block(rs_trace_writer *w, const rs_gen_config *c, const rs_gen_model *m, rs_gen_state *s,
                       gen_output *o, rs_error *err)
{
    if (o->filled == 0)
        return 0;
    if (o->topk_ids) {
        size_t rows = (size_t)o->filled * c->L;
        float *z = o->logits;
        /* Select on the values as stored, so the recorded ids are the top-k of the file's logits. */
        if (c->dtype == RS_LOGITS_F16)
            for (size_t i = 0; i < rows * c->E; i++)
                z[i] = rs_half_to_float(rs_float_to_half(z[i]));
        else if (c->dtype == RS_LOGITS_BF16)
            for (size_t i = 0; i < rows * c->E; i++)
                z[i] = rs_bf16_to_float(rs_float_to_bf16(z[i]));
        for (size_t row = 0; row < rows; row++) {
            const float *bias = m->bias ? m->bias + (row % (size_t)c->L) * c->E : NULL;
            rs_gen_native_topk(c, bias, z + row * c->E, s->score, o->topk_ids + row * c->k,
                               o->topk_weights + row * c->k);
        }
    }
    RS_TRY(rs_trace_writer_append(w, o->filled, o->logits, o->topk_ids, o->topk_weights, o->token_ids, NULL, err));
    o->filled = 0;
    return 0;
}

static int generate(rs_trace_writer *w, const rs_gen_config *c, const rs_gen_model *m, rs_gen_state *s, gen_output *o,
                    rs_progress *progress, rs_error *err)
{
    const size_t row = (size_t)c->L * c->E;
    int64_t done = 0, remaining = 0;
    int domain = 0, first = 0;
    while (done < c->tokens) {
        if (remaining == 0) {
            remaining = rs_gen_draw_sequence_length(c, m);
            if (remaining > c->tokens - done)
                remaining = c->tokens - done;
            domain = rs_gen_draw_domain(c, m);
            first = 1;
        }
        int slot = o->filled++;
        o->token_ids[slot] = rs_gen_draw_token(c, m);
        rs_gen_token_logits(c, m, s, o->token_ids[slot], domain, first, o->logits + (size_t)slot * row);
        first = 0;
        done++;
        remaining--;
        /* A sequence's tokens must be appended before its end is recorded. */
        if (remaining == 0 || o->filled == o->capacity) {
            RS_TRY(flush_block(w, c, m, s, o, err));
            rs_progress_update(progress, done);
        }
        if (remaining == 0)
            RS_TRY(rs_trace_writer_end_sequence(w, domain, err));
    }
    return 0;
}

/* The trace's size is known from the settings: refused before anything is
 * built when it is over the limit or the free space (sequence lengths are
 * drawn, so their count is estimated from the mean length). */
static int check_size(const char *path, const rs_gen_config *c, const rs_output_limit *limit, rs_error *err)
{
    rs_trace_layout layout = {
        .num_layers = c->L,
        .num_experts = c->E,
        .logits = c->dtype,
        .topk_k = c->record_topk ? c->k : 0,
        .topk_weights = c->record_topk,
        .token_ids = 1,
        .num_domains = c->domains,
        .gzip_level = c->gzip,
    };
    return rs_trace_size_check(path, &layout, c->tokens, c->tokens / c->seq_len + 1, limit, err);
}

int rs_generate_trace(const char *path, const rs_params *p, const rs_output_limit *limit, int progress, rs_error *err)
{
    rs_gen_config c;
    RS_TRY(resolve(p, &c, err));
    RS_TRY(check_size(path, &c, limit, err));
    char source[2048];
    RS_TRY(source_text(p, source, sizeof source, err));
    rs_gen_model m;
    RS_TRY(rs_gen_model_build(&c, &m, err));

    const size_t row = (size_t)c.L * c.E;
    /* About 4M logits (16 MiB) per block, never more tokens than the trace has. */
    int64_t capacity = (int64_t)((4u << 20) / row);
    capacity = capacity < 1 ? 1 : capacity > c.tokens ? c.tokens : capacity;
    gen_output o = {.capacity = (int)capacity};
    rs_gen_state s = {0};
    char **names = calloc((size_t)c.domains, sizeof *names);
    int32_t *layer_index = malloc((size_t)c.L * sizeof *layer_index);
    int ok = names && layer_index && (o.logits = malloc((size_t)capacity * row * sizeof(float))) &&
             (o.token_ids = malloc((size_t)capacity * sizeof(int32_t))) && rs_gen_state_alloc(&c, &s) == 0;
    if (ok && c.record_topk)
        ok = (o.topk_ids = malloc((size_t)capacity * c.L * c.k * sizeof(int32_t))) &&
             (o.topk_weights = malloc((size_t)capacity * c.L * c.k * sizeof(float)));
    for (int d = 0; ok && d < c.domains; d++) {
        char name[32];
        snprintf(name, sizeof name, "domain%d", d);
        ok = (names[d] = strdup(name)) != NULL;
    }
    int rc = ok ? 0 : rs_fail(err, "%s: out of memory", path);
    for (int l = 0; ok && l < c.L; l++)
        layer_index[l] = c.preset->first_layer + l;

    rs_trace_writer *w = NULL;
    if (rc == 0) {
        rs_trace_layout layout = {
            .num_layers = c.L,
            .num_experts = c.E,
            .logits = c.dtype,
            .topk_k = c.record_topk ? c.k : 0,
            .topk_weights = c.record_topk,
            .token_ids = 1,
            .model = c.reshaped ? NULL : c.preset->model,
            .scoring = c.preset->scoring,
            .source = source,
            .top_k = c.k,
            .norm_topk = c.norm_topk,
            .n_group = c.n_group,
            .topk_group = c.topk_group,
            .routed_scaling_factor = c.routed_scaling_factor != 1.0 ? c.routed_scaling_factor : 0,
            .num_domains = c.domains,
            .domain_names = (const char *const *)names,
            .layer_index = layer_index,
            .gzip_level = c.gzip,
        };
        rc = rs_trace_writer_create(&w, path, &layout, err);
    }
    if (rc == 0 && m.bias)
        rc = rs_trace_writer_set_bias(w, m.bias, err);
    if (rc == 0) {
        rs_progress bar;
        rs_progress_start(&bar, progress, c.tokens, path, "tokens");
        rc = generate(w, &c, &m, &s, &o, &bar, err);
        rs_progress_finish(&bar);
    }
    if (w) {
        if (rc == 0)
            rc = rs_trace_writer_finish(w, err);
        else
            rs_trace_writer_abort(w);
    }
    for (int d = 0; names && d < c.domains; d++)
        free(names[d]);
    free(names);
    free(layer_index);
    free(o.logits);
    free(o.token_ids);
    free(o.topk_ids);
    free(o.topk_weights);
    rs_gen_state_free(&s);
    rs_gen_model_free(&m);
    return rc;
}
