"""Small MoE decoders whose module names and gate shapes follow the Hugging
Face layouts the recorder documents, so that the gate patterns of
docs/python.md find the same modules here:

  mixtral    model.layers.N.block_sparse_moe.gate  Linear(H, E), input flattened to [B*S, H] -> [B*S, E]
  qwen2_moe  model.layers.N.mlp.gate               same, plus mlp.shared_expert and mlp.shared_expert_gate
                                                   (Linear(H, 1)); layers in `dense_layers` are a plain MLP
                                                   (mlp.gate_proj / up_proj / down_proj)
  olmoe      model.layers.N.mlp.gate               as mixtral, no renormalisation
  unflat     model.layers.N.mlp.gate               Linear applied to [B, S, H] -> [B, S, E]
  deepseek   model.layers.N.mlp.gate               a gate module with a weight [E, H] and an
                                                   e_score_correction_bias [E] that returns
                                                   (topk_idx, topk_weight, aux_loss), never the logits;
                                                   layer 0 is dense (mlp.gate_proj ...)

No attention: the gates only see hidden states, so a decode step runs just
the new tokens."""

import torch
from torch import nn
from torch.nn import functional as F

KINDS = ("mixtral", "qwen2_moe", "olmoe", "unflat", "deepseek")


class DenseMLP(nn.Module):
    def __init__(self, hidden, inner):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inner, bias=False)
        self.up_proj = nn.Linear(hidden, inner, bias=False)
        self.down_proj = nn.Linear(inner, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def mix_experts(experts, x, ids, weights):
    """sum_j weights[:, j] * experts[ids[:, j]](x) for x [n, H]."""
    out = torch.zeros_like(x)
    for e, expert in enumerate(experts):
        rows, slot = torch.nonzero(ids == e, as_tuple=True)
        if rows.numel():
            out.index_add_(0, rows, expert(x[rows]) * weights[rows, slot, None].to(x.dtype))
    return out


class SoftmaxMoeBlock(nn.Module):
    """Mixtral / Qwen2-MoE / OLMoE style: softmax over a Linear gate, top-k,
    optionally renormalised; `flatten` says whether the gate sees [B*S, H]
    (as Hugging Face does) or [B, S, H]."""

    def __init__(self, hidden, inner, experts, k, renorm, flatten=True, shared=False):
        super().__init__()
        self.k, self.renorm, self.flatten = k, renorm, flatten
        self.gate = nn.Linear(hidden, experts, bias=False)
        self.experts = nn.ModuleList(DenseMLP(hidden, inner) for _ in range(experts))
        if shared:
            self.shared_expert = DenseMLP(hidden, inner)
            self.shared_expert_gate = nn.Linear(hidden, 1, bias=False)

    def forward(self, hidden):
        B, S, H = hidden.shape
        x = hidden.reshape(-1, H)
        logits = self.gate(x) if self.flatten else self.gate(hidden).reshape(-1, self.gate.out_features)
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
        weights, ids = torch.topk(probs, self.k, dim=-1)
        if self.renorm:
            weights = weights / weights.sum(-1, keepdim=True)
        out = mix_experts(self.experts, x, ids, weights)
        if hasattr(self, "shared_expert"):
            out = out + torch.sigmoid(self.shared_expert_gate(x)) * self.shared_expert(x)
        return out.reshape(B, S, H)


class DeepSeekGate(nn.Module):
    """Sigmoid scores, top-k chosen on scores + a selection bias, weights
    renormalised; returns what DeepSeek's gate returns, not the logits."""

    def __init__(self, hidden, experts, k):
        super().__init__()
        self.k = k
        self.weight = nn.Parameter(torch.randn(experts, hidden) / hidden ** 0.5)
        self.register_buffer("e_score_correction_bias", 0.3 * torch.randn(experts))

    def forward(self, hidden):
        x = hidden.reshape(-1, hidden.shape[-1])
        scores = torch.sigmoid(F.linear(x.float(), self.weight.float()))
        _, ids = torch.topk(scores + self.e_score_correction_bias, self.k, dim=-1)
        weights = scores.gather(1, ids)
        return ids, weights / weights.sum(-1, keepdim=True), None


class DeepSeekMoeBlock(nn.Module):
    def __init__(self, hidden, inner, experts, k):
        super().__init__()
        self.gate = DeepSeekGate(hidden, experts, k)
        self.experts = nn.ModuleList(DenseMLP(hidden, inner) for _ in range(experts))
        self.shared_experts = DenseMLP(hidden, inner)

    def forward(self, hidden):
        B, S, H = hidden.shape
        ids, weights, _ = self.gate(hidden)
        x = hidden.reshape(-1, H)
        return (mix_experts(self.experts, x, ids, weights) + self.shared_experts(x)).reshape(B, S, H)


class DecoderLayer(nn.Module):
    def __init__(self, kind, hidden, inner, experts, k, dense):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(hidden)
        if dense:
            block = DenseMLP(hidden, inner)
        elif kind == "mixtral":
            block = SoftmaxMoeBlock(hidden, inner, experts, k, renorm=True)
        elif kind == "qwen2_moe":
            block = SoftmaxMoeBlock(hidden, inner, experts, k, renorm=False, shared=True)
        elif kind == "olmoe":
            block = SoftmaxMoeBlock(hidden, inner, experts, k, renorm=False)
        elif kind == "unflat":
            block = SoftmaxMoeBlock(hidden, inner, experts, k, renorm=True, flatten=False)
        elif kind == "deepseek":
            block = DeepSeekMoeBlock(hidden, inner, experts, k)
        else:
            raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
        # Mixtral names its MoE block block_sparse_moe; the others (and dense layers) call it mlp
        self.block_name = "block_sparse_moe" if kind == "mixtral" and not dense else "mlp"
        setattr(self, self.block_name, block)

    def forward(self, hidden):
        return hidden + getattr(self, self.block_name)(self.input_layernorm(hidden))


class ToyMoeModel(nn.Module):
    def __init__(self, kind, vocab, hidden, inner, experts, k, layers, dense_layers):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, hidden)
        self.layers = nn.ModuleList(DecoderLayer(kind, hidden, inner, experts, k, i in dense_layers)
                                    for i in range(layers))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, input_ids):
        hidden = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden = layer(hidden)
        return self.norm(hidden)


class ToyMoeForCausalLM(nn.Module):
    """embedding -> layers (MoE or dense MLP, residual) -> lm head."""

    def __init__(self, kind, vocab=97, hidden=16, experts=8, k=2, layers=3, dense_layers=(), seed=0, inner=None):
        super().__init__()
        inner = inner or 2 * hidden  # each expert's intermediate size
        if kind == "deepseek" and not dense_layers:
            dense_layers = (0,)  # DeepSeek's first layers are dense (first_k_dense_replace)
        torch.manual_seed(seed)
        self.kind = kind
        self.model = ToyMoeModel(kind, vocab, hidden, inner, experts, k, layers, set(dense_layers))
        self.lm_head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, input_ids, attention_mask=None):
        # attention_mask is accepted for the call shape only: with no
        # attention, padding changes nothing the gates see
        return self.lm_head(self.model(input_ids))
