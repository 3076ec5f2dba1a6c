/* The generator's presets: the shape and routing rule of a real MoE model,
 * plus the structure defaults that make its synthetic trace resemble the
 * real one (docs/generator.md explains each number). */
#ifndef ROUTESIM_GENERATOR_PRESETS_H
#define ROUTESIM_GENERATOR_PRESETS_H

typedef struct rs_generator_preset {
    const char *name;
    const char *summary;
    const char *model;   /* root attribute `model`; NULL = omitted */
    int layers, experts, k;
    const char *scoring; /* "softmax" or "sigmoid" */
    int norm_topk;
    /* Grouped routing as the model's config has it (n_group, topk_group,
     * routed_scaling_factor); n_group 0 = not grouped. Applied with the
     * sigmoid rule's selection bias only (DeepSeek-V3's noaux_tc). */
    int n_group, topk_group;
    double routed_scaling_factor;
    int first_layer;     /* model index of the first MoE layer (dense layers come before) */
    int vocab;
    int seq_len;
    /* Structure defaults, in the units of the settings of the same name. */
    double skew, skew_spread, domain_scale;
    double locality, locality_scale;
    double token_dependence, layer_affinity, noise;
    double logit_offset, bias_correction;
} rs_generator_preset;

/* Index order matches the `preset` setting's choices. */
const rs_generator_preset *rs_generator_preset_at(int index);
/* Index of a preset by name, or -1. */
int rs_generator_preset_find(const char *name);
/* The preset's default for a preset-dependent setting. Returns 0 and sets
 * *value, or -1 when the setting does not come from the preset. */
int rs_generator_preset_value(const rs_generator_preset *preset, const char *setting, double *value);

#endif
