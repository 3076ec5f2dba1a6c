/* Presets: the routing rules of shipped models as named parameter sets of
 * the routers that implement them (facts in docs/routers.md, "Preset
 * facts"). A preset's values are defaults: `mixtral:k=3` overrides k. The
 * base router is found by name when a spec is parsed, and it checks k <= E
 * against the trace, so a preset runs on any trace with enough experts.
 *
 * Identifiers carry a preset_ prefix: preset names such as deepseek-v3 would
 * otherwise map onto the symbols of routers (deepseek_v3). */
#include "routesim/router.h"

#define RS_PRESET(id, preset_name, base, values, what, where)                                                          \
    static const rs_router_type id##_type = {                                                                         \
        .name = preset_name,                                                                                           \
        .summary = what,                                                                                               \
        .source = where,                                                                                               \
        .flags = RS_ROUTER_PRESET,                                                                                     \
        .preset_of = base,                                                                                             \
        .preset_params = values,                                                                                       \
    };                                                                                                                 \
    const rs_router_type *const rs_router_##id = &id##_type;

RS_PRESET(preset_mixtral, "mixtral", "topk", "k=2,renorm=1",
          "Mixtral-8x7B / 8x22B: 8 experts, softmax top-2, renormalised",
          "arXiv:2401.04088 (HF MixtralSparseMoeBlock)")
RS_PRESET(preset_qwen1_5_moe, "qwen1.5-moe", "topk", "k=4,renorm=0",
          "Qwen1.5-MoE-A2.7B: 60 routed experts, softmax top-4, not renormalised (shared expert not routed)",
          "HF Qwen2MoeSparseMoeBlock, norm_topk_prob = false")
RS_PRESET(preset_qwen2_moe, "qwen2-moe", "topk", "k=8,renorm=0",
          "Qwen2-57B-A14B: 64 routed experts, softmax top-8, not renormalised (shared expert not routed)",
          "HF Qwen2MoeSparseMoeBlock, norm_topk_prob = false")
RS_PRESET(preset_qwen3_moe, "qwen3-moe", "topk", "k=8,renorm=1",
          "Qwen3-30B-A3B: 128 experts, softmax top-8, renormalised", "HF Qwen3MoeSparseMoeBlock, norm_topk_prob = true")
RS_PRESET(preset_olmoe, "olmoe", "topk", "k=8,renorm=0", "OLMoE-1B-7B: 64 experts, softmax top-8, not renormalised",
          "arXiv:2409.02060 (HF OlmoeSparseMoeBlock, norm_topk_prob = false)")
RS_PRESET(preset_deepseek_v2_lite, "deepseek-v2-lite", "topk", "k=6,renorm=0",
          "DeepSeek-V2-Lite: 64 routed experts, softmax top-6 without group limiting, not renormalised",
          "arXiv:2405.04434 (HF DeepseekV2 MoEGate, topk_method = greedy, routed_scaling_factor = 1)")
RS_PRESET(preset_deepseek_v2, "deepseek-v2", "group_limited", "n_group=8,topk_group=3,k=6,scale=16",
          "DeepSeek-V2: 160 routed experts in 8 groups, top-3 groups by max p, softmax top-6, scale 16",
          "arXiv:2405.04434 (HF DeepseekV2 MoEGate, topk_method = group_limited_greedy)")
RS_PRESET(preset_deepseek_v3, "deepseek-v3", "deepseek_v3", "n_group=8,topk_group=4,k=8,scale=2.5",
          "DeepSeek-V3: 256 routed experts, sigmoid + bias, 8 groups, top-4 groups by sum of top-2, top-8, "
          "renormalised, scale 2.5",
          "arXiv:2412.19437 (DeepSeek-V3 inference/model.py Gate)")
RS_PRESET(preset_dbrx, "dbrx", "pnorm_topk", "k=4,p=1", "DBRX: 16 experts, softmax top-4, L1-normalised",
          "HF DbrxRouter (moe_normalize_expert_weights = 1)")
RS_PRESET(preset_switch_base_128, "switch-base-128", "switch", "capacity_factor=0,min_capacity=64,group=sequence",
          "Switch-base-128: 128 experts, top-1, capacity 64 tokens per expert per sequence (batch row)",
          "arXiv:2101.03961 (HF SwitchTransformersTop1Router, expert_capacity = 64)")
RS_PRESET(preset_nllb_moe, "nllb-moe", "gshard_top2", "policy=all",
          "NLLB-MoE 54B: 128 experts, GShard top-2, every second choice kept, dropless (eval capacity fraction 1)",
          "arXiv:2207.04672 (HF NllbMoeTop2Router, second_expert_policy = all)")
RS_PRESET(preset_jamba, "jamba", "topk", "k=2,renorm=0", "Jamba: 16 experts, softmax top-2, not renormalised",
          "arXiv:2403.19887 (HF JambaSparseMoeBlock)")
RS_PRESET(preset_grok_1, "grok-1", "topk", "k=2,renorm=0", "Grok-1: 8 experts, softmax top-2, not renormalised",
          "xai-org/grok-1 model.py (Router: softmax, top_k)")
RS_PRESET(preset_phi_3_5_moe, "phi-3.5-moe", "sparsemixer", "eps=0.01",
          "Phi-3.5-MoE: 16 experts, SparseMixer top-2 (eps 0.01)",
          "arXiv:2409.12136 (HF modeling_phimoe sparsemixer, router_jitter_noise = 0.01)")
RS_PRESET(preset_granite_moe, "granite-moe", "topk", "k=8,renorm=1",
          "PowerMoE / Granite-MoE: 40 experts, top-8 of the logits then softmax over them",
          "HF GraniteMoeTopKGating (top-k on logits, softmax of the k)")
RS_PRESET(preset_jetmoe, "jetmoe", "topk", "k=2,renorm=1", "JetMoE-8B: 8 experts, top-2 of the logits then softmax",
          "arXiv:2404.07413 (HF JetMoeTopKGating)")
RS_PRESET(preset_gpt_oss, "gpt-oss", "topk", "k=4,renorm=1",
          "gpt-oss-120b: 128 experts, top-4 of the logits then softmax (router bias already in the logits)",
          "HF GptOssTopKRouter")
RS_PRESET(preset_llama_4, "llama-4", "sigmoid_topk", "k=1,renorm=0",
          "Llama-4 Scout / Maverick: sigmoid top-1 (the shared expert is not routed)", "HF Llama4Router")
