/* Preset table of the synthetic trace generator. Shapes and routing rules
 * are the models' published configurations; the structure values are
 * calibrated in docs/generator.md ("Calibration"). */
#include "workloads/generator/generator_presets.h"

#include <stddef.h>
#include <string.h>

#include "workloads/generator/generator.h"

static const rs_generator_preset presets[] = {
    {
        .name = "mixtral",
        .summary = "Mixtral-8x7B: 32 layers x 8 experts, top-2 softmax, renormalised",
        .model = "mistralai/Mixtral-8x7B-v0.1",
        .layers = 32, .experts = 8, .k = 2, .scoring = "softmax", .norm_topk = 1, .first_layer = 0,
        .vocab = 32000, .seq_len = 512,
        .skew = 0.06, .skew_spread = 0.6, .domain_scale = 0.22,
        .locality = 0.9, .locality_scale = 0.6,
        .token_dependence = 0.6, .layer_affinity = 0.3, .noise = 1.0,
        .logit_offset = 0.0, .bias_correction = 0.0,
    },
    {
        .name = "olmoe",
        .summary = "OLMoE-1B-7B: 16 layers x 64 experts, top-8 softmax, not renormalised",
        .model = "allenai/OLMoE-1B-7B-0924",
        .layers = 16, .experts = 64, .k = 8, .scoring = "softmax", .norm_topk = 0, .first_layer = 0,
        .vocab = 50304, .seq_len = 512,
        .skew = 0.5, .skew_spread = 0.3, .domain_scale = 0.6,
        .locality = 0.97, .locality_scale = 1.1,
        .token_dependence = 1.0, .layer_affinity = 0.3, .noise = 0.8,
        .logit_offset = 0.0, .bias_correction = 0.0,
    },
    {
        .name = "qwen3-moe",
        .summary = "Qwen3-30B-A3B: 48 layers x 128 experts, top-8 softmax, renormalised",
        .model = "Qwen/Qwen3-30B-A3B",
        .layers = 48, .experts = 128, .k = 8, .scoring = "softmax", .norm_topk = 1, .first_layer = 0,
        .vocab = 151936, .seq_len = 512,
        .skew = 0.4, .skew_spread = 0.3, .domain_scale = 0.6,
        .locality = 0.98, .locality_scale = 1.8,
        .token_dependence = 1.0, .layer_affinity = 0.3, .noise = 0.8,
        .logit_offset = 0.0, .bias_correction = 0.0,
    },
    {
        .name = "deepseek-v3",
        .summary = "DeepSeek-V3: 58 MoE layers x 256 experts, top-8 sigmoid + bias in 4 of 8 groups, renormalised, x2.5",
        .model = "deepseek-ai/DeepSeek-V3",
        .layers = 58, .experts = 256, .k = 8, .scoring = "sigmoid", .norm_topk = 1, .first_layer = 3,
        .n_group = 8, .topk_group = 4, .routed_scaling_factor = 2.5,
        .vocab = 129280, .seq_len = 512,
        .skew = 1.3, .skew_spread = 0.3, .domain_scale = 0.4,
        .locality = 0.95, .locality_scale = 1.3,
        .token_dependence = 1.0, .layer_affinity = 0.3, .noise = 1.0,
        .logit_offset = -2.0, .bias_correction = 0.3,
    },
    {
        .name = "qwen1.5-moe",
        .summary = "Qwen1.5-MoE-A2.7B: 24 layers x 60 experts, top-4 softmax, not renormalised",
        .model = "Qwen/Qwen1.5-MoE-A2.7B",
        .layers = 24, .experts = 60, .k = 4, .scoring = "softmax", .norm_topk = 0, .first_layer = 0,
        .vocab = 151936, .seq_len = 512,
        .skew = 0.03, .skew_spread = 0.3, .domain_scale = 0.15,
        .locality = 0.9, .locality_scale = 0.65,
        .token_dependence = 0.35, .layer_affinity = 0.3, .noise = 1.0,
        .logit_offset = 0.0, .bias_correction = 0.0,
    },
    {
        .name = "deepseek-v2-lite",
        .summary = "DeepSeek-V2-Lite: 26 MoE layers x 64 experts, top-6 softmax, not renormalised",
        .model = "deepseek-ai/DeepSeek-V2-Lite",
        .layers = 26, .experts = 64, .k = 6, .scoring = "softmax", .norm_topk = 0, .first_layer = 1,
        .vocab = 102400, .seq_len = 512,
        .skew = 0.2, .skew_spread = 0.3, .domain_scale = 0.4,
        .locality = 0.93, .locality_scale = 0.85,
        .token_dependence = 1.0, .layer_affinity = 0.3, .noise = 1.0,
        .logit_offset = 0.0, .bias_correction = 0.0,
    },
    {
        .name = "small",
        .summary = "tiny test model: 4 layers x 8 experts, top-2 softmax, renormalised",
        .model = NULL,
        .layers = 4, .experts = 8, .k = 2, .scoring = "softmax", .norm_topk = 1, .first_layer = 0,
        .vocab = 1000, .seq_len = 64,
        .skew = 0.06, .skew_spread = 0.6, .domain_scale = 0.22,
        .locality = 0.9, .locality_scale = 0.6,
        .token_dependence = 0.6, .layer_affinity = 0.3, .noise = 1.0,
        .logit_offset = 0.0, .bias_correction = 0.0,
    },
};

int rs_generator_preset_count(void) { return (int)(sizeof presets / sizeof presets[0]); }

const rs_generator_preset *rs_generator_preset_at(int index)
{
    return index >= 0 && index < rs_generator_preset_count() ? &presets[index] : NULL;
}

const char *rs_generator_preset_name(int index)
{
    const rs_generator_preset *p = rs_generator_preset_at(index);
    return p ? p->name : NULL;
}

const char *rs_generator_preset_summary(int index)
{
    const rs_generator_preset *p = rs_generator_preset_at(index);
    return p ? p->summary : NULL;
}

int rs_generator_preset_find(const char *name)
{
    for (int i = 0; i < rs_generator_preset_count(); i++)
        if (strcmp(presets[i].name, name) == 0)
            return i;
    return -1;
}

int rs_generator_preset_value(const rs_generator_preset *p, const char *setting, double *value)
{
    const struct {
        const char *name;
        double v;
    } values[] = {
        {"layers", p->layers},
        {"experts", p->experts},
        {"k", p->k},
        {"vocab", p->vocab},
        {"seq_len", p->seq_len},
        {"skew", p->skew},
        {"skew_spread", p->skew_spread},
        {"domain_scale", p->domain_scale},
        {"locality", p->locality},
        {"locality_scale", p->locality_scale},
        {"token_dependence", p->token_dependence},
        {"layer_affinity", p->layer_affinity},
        {"noise", p->noise},
        {"logit_offset", p->logit_offset},
        {"bias_correction", p->bias_correction},
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        if (strcmp(values[i].name, setting) == 0) {
            *value = values[i].v;
            return 0;
        }
    }
    return -1;
}
