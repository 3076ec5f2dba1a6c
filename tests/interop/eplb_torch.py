"""An independent torch implementation of deepseek-ai/EPLB's
rebalance_experts (eplb.py, commit d52c72d), written from its description
for the interop test (test_eplb.py) and make bench (bench/bench_eplb.py):
float32 weights, group sums, w / count and pack weights (accumulated in
packing order); groups packed onto nodes when the nodes divide the groups,
else one group and one node; replicas to the largest w / count; copies
packed heaviest first into the lightest device with room. Every tie goes to
the lower index (a stable sort, the first maximum, the first lightest pack),
as routesim documents (docs/metrics.md "Placement policies")."""

import importlib.util

import numpy as np
import torch


def pack(weights, packs):
    """Items (a float32 vector) into packs of n / packs; returns pack and
    position of each item, and whether a sort of more than 16 items met
    equal weights."""
    n = weights.numel()
    per_pack = n // packs
    if per_pack == 1:
        return list(range(n)), [0] * n, False
    order = torch.sort(weights, descending=True, stable=True).indices.tolist()
    tied = n > 16 and torch.unique(weights).numel() < n
    totals = torch.zeros(packs, dtype=torch.float32)
    filled = [0] * packs
    where, position = [0] * n, [0] * n
    for item in order:
        candidates = [p for p in range(packs) if filled[p] < per_pack]
        p = min(candidates, key=lambda q: (totals[q].item(), q))
        where[item], position[item] = p, filled[p]
        filled[p] += 1
        totals[p] += weights[item]  # a float32 add, in packing order
    return where, position, tied


def replicate(w, copies):
    """Copies of each expert: the first E are the experts, each further one
    goes to the first expert of largest w / count (float32)."""
    count = torch.ones(w.numel(), dtype=torch.float32)
    experts, ranks = list(range(w.numel())), [0] * w.numel()
    for _ in range(copies - w.numel()):
        ratio = w / count
        e = int(torch.nonzero(ratio == ratio.max())[0, 0])
        experts.append(e)
        ranks.append(int(count[e]))
        count[e] += 1
    return experts, ranks, count


def plan(loads, slots, groups, nodes, devices):
    """phy2log [L][S], rank [L][S] and whether any sort met ties beyond 16 items."""
    if groups % nodes:
        groups = nodes = 1
    w_all = torch.tensor(np.asarray(loads, np.float64)).to(torch.float32)
    L, E = w_all.shape
    group_size = E // groups
    phy2log = [[-1] * slots for _ in range(L)]
    rank = [[-1] * slots for _ in range(L)]
    any_tie = False
    for l in range(L):
        w = w_all[l]
        sums = torch.stack([w[g * group_size:(g + 1) * group_size].sum() for g in range(groups)])
        node_of, place_in_node, tied = pack(sums, nodes)
        any_tie |= tied
        for n in range(nodes):
            mine = sorted((place_in_node[g], g) for g in range(groups) if node_of[g] == n)
            experts = [g * group_size + j for _, g in mine for j in range(group_size)]
            node_w = w[experts]
            copies, ranks, count = replicate(node_w, slots // nodes)
            copy_w = node_w[copies] / count[copies]
            device, position, tied = pack(copy_w, devices // nodes)
            any_tie |= tied
            for c in range(len(copies)):
                slot = n * (slots // nodes) + device[c] * (slots // devices) + position[c]
                phy2log[l][slot] = experts[copies[c]]
                rank[l][slot] = ranks[c]
    return phy2log, rank, any_tie


def derived(phy2log, rank, E):
    """logical_count and logical_to_physical_map (slots by rank, -1 padded to the largest count)."""
    count = [[row.count(e) for e in range(E)] for row in phy2log]
    width = max(max(c) for c in count)
    log2phy = [[[-1] * width for _ in range(E)] for _ in phy2log]
    for l, row in enumerate(phy2log):
        for s, e in enumerate(row):
            log2phy[l][e][rank[l][s]] = s
    return count, log2phy


def device_loads(loads, phy2log, count, devices):
    """Per layer, each device's load, each copy weighing load / count as
    the algorithm sees it (float32), summed in slot order."""
    w = np.asarray(loads, np.float64).astype(np.float32)
    out = []
    for l, row in enumerate(phy2log):
        per = len(row) // devices
        copy = [float(w[l][e] / np.float32(count[l][e])) for e in row]
        out.append([sum(copy[d * per:(d + 1) * per]) for d in range(devices)])
    return out


def load_reference(path):
    """The reference eplb.py (a file of deepseek-ai/EPLB) as a module."""
    spec = importlib.util.spec_from_file_location("eplb_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_outputs(module, loads, R, groups, nodes, G, stable):
    """The reference's (phy2log, log2phy, logcnt) as lists; stable: its sort made stable."""
    original = torch.Tensor.sort

    def stable_sort(self, dim=-1, descending=False):
        return original(self, dim=dim, descending=descending, stable=True)

    if stable:
        torch.Tensor.sort = stable_sort
    try:
        E = len(loads[0])
        p, l, c = module.rebalance_experts(torch.tensor(loads, dtype=torch.int64), E + R, groups, nodes, G)
    finally:
        torch.Tensor.sort = original
    return p.tolist(), l.tolist(), c.tolist()
