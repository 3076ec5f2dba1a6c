"""Record a small Mixtral-shaped PyTorch model, route the trace with a router
written in numpy (a parameter sweep) and three built-in ones, compare them
and make the figures.

    make && PYTHONPATH=python /usr/bin/python3 examples/python/record_route_compare.py [OUTPUT_DIR]

The model is random (no weights to download); its gate modules carry the
names Hugging Face's Mixtral uses (model.layers.N.block_sparse_moe.gate), so
the same Recorder line records a real Mixtral."""

import os
import sys

import numpy as np
import torch

import routesim

HIDDEN, EXPERTS, LAYERS, VOCAB = 64, 8, 4, 1000


class SparseMoeBlock(torch.nn.Module):
    """Top-2 of 8 experts, weights renormalised (Mixtral's rule)."""

    def __init__(self):
        super().__init__()
        self.gate = torch.nn.Linear(HIDDEN, EXPERTS, bias=False)
        self.experts = torch.nn.ModuleList(torch.nn.Linear(HIDDEN, HIDDEN) for _ in range(EXPERTS))

    def forward(self, hidden):
        batch, seq, _ = hidden.shape
        flat = hidden.reshape(-1, HIDDEN)
        logits = self.gate(flat)  # [batch * seq, E], as Hugging Face computes it
        weights, chosen = torch.topk(torch.softmax(logits, dim=-1), 2, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        out = torch.zeros_like(flat)
        for slot in range(2):
            for e in range(EXPERTS):
                rows = chosen[:, slot] == e
                if rows.any():
                    out[rows] += weights[rows, slot, None] * self.experts[e](flat[rows])
        return out.reshape(batch, seq, HIDDEN)


class DecoderLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block_sparse_moe = SparseMoeBlock()

    def forward(self, hidden):
        return hidden + self.block_sparse_moe(hidden)


class ToyMixtral(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(VOCAB, HIDDEN)
        self.layers = torch.nn.ModuleList(DecoderLayer() for _ in range(LAYERS))
        self.lm_head = torch.nn.Linear(HIDDEN, VOCAB, bias=False)

    def forward(self, input_ids):
        hidden = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden = layer(hidden)
        return self.lm_head(hidden)


def record(path, model, batches=6, batch=4, prompt=48, new_tokens=16):
    """Prefill a batch of left-padded prompts, then greedy decode steps (the
    toy model has no KV cache: each step runs the new tokens alone)."""
    gen = torch.Generator().manual_seed(0)
    with routesim.Recorder(path, model, r"layers\.\d+\.block_sparse_moe\.gate$", num_experts=EXPERTS,
                           top_k=2, scoring="softmax", norm_topk=True, model_name="toy-mixtral") as rec:
        for _ in range(batches):
            ids = torch.randint(0, VOCAB, (batch, prompt), generator=gen)
            lengths = torch.randint(prompt // 2, prompt + 1, (batch,), generator=gen)
            mask = (torch.arange(prompt)[None, :] >= prompt - lengths[:, None]).long()  # left padding
            rec.begin(ids, mask)
            with torch.no_grad():
                logits = model(ids)
            for _ in range(new_tokens):
                next_ids = logits[:, -1].argmax(-1)
                rec.extend(next_ids)
                with torch.no_grad():
                    logits = model(next_ids[:, None])


def confident_top1(block):
    """One expert when the router is confident (top probability at least
    `threshold`), two otherwise: a per-token rule in numpy, so its results
    do not depend on how the engine splits the tokens into blocks."""
    order = np.argsort(-block.logits, axis=1, kind="stable")[:, :2]  # ties to the lower index
    weights = np.take_along_axis(block.probs, order, axis=1)
    ids = order.astype(np.int32)
    confident = weights[:, 0] >= block.params["threshold"]
    ids[confident, 1] = -1
    weights[confident, 1] = 0.0
    return ids, weights / weights.sum(1, keepdims=True)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "results/python-example"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    trace = os.path.join(out, "toy-mixtral.h5")
    record(trace, ToyMixtral().eval())
    meta = routesim.info(trace)
    print(f"recorded {meta['num_tokens']} tokens in {meta['num_sequences']} sequences, "
          f"{meta['num_layers']} layers x {meta['num_experts']} experts")

    routesim.Router(confident_top1, "confident_top1", kmax=2, params={"threshold": 0.3})
    results = routesim.run({
        "name": "python-example",
        "traces": [trace],
        "routers": ["native", "topk:k=2", "expert_choice", {"name": "confident_top1", "params": {"threshold": [0.2, 0.3, 0.4]}}],
        "metrics": ["load", "entropy", "activation", "locality"],
        "output": out,
    })
    table = results[results.layer == routesim.ALL_LAYERS].pivot_table(
        index="run", columns="metric", values="value", aggfunc="first")
    print(table[["activation.experts_per_token", "load.maxvio", "entropy.selected_mass",
                 "locality.adjacent_overlap"]].round(4).to_string())
    written = routesim.plot(out, kinds=["bars", "sweep"], metrics=["activation.experts_per_token", "load.maxvio"])
    print(f"figures and their data: {len(written)} files under {os.path.join(out, 'plots')}")


if __name__ == "__main__":
    main()
