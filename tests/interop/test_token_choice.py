"""Token-choice routers (docs/routers.md section A) and the capacity stage
against independent numpy implementations of the reference code's
conventions. Each reference function names the file and function it follows;
scores are float64 there, ties go to the lower expert index (a stable argsort
of -score), and a dropped assignment is expert -1 with weight 0."""

import math
import os

import numpy as np

from interop_util import check, route_decisions, run, tied_logits, write_logits_trace

OFFSETS = [0, 90, 91, 300, 455, 600]  # five sequences, one of a single token
T, L = 600, 2


def softmax(z):
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))


def top_indices(score, k):
    """TopK(score, k) ordered by (-score, index), as routers.md requires."""
    return np.argsort(-score, axis=-1, kind="stable")[..., :k]


def compare(tag, got, want_ids, want_w, tol=1e-5):
    if not check(got is not None, f"{tag}: routing failed"):
        return
    ids, w = got
    check(ids.shape == want_ids.shape, f"{tag}: shape {ids.shape}, want {want_ids.shape}")
    if ids.shape != want_ids.shape:
        return
    bad = int((ids != want_ids).sum())
    check(bad == 0, f"{tag}: {bad} ids differ from the reference")
    err = float(np.abs(w.astype(np.float64) - want_w).max())
    check(err <= tol, f"{tag}: weights differ by {err:.3g} > {tol}")


def make_trace(tmp, name, E, seed, bias=None):
    rng = np.random.default_rng(seed)
    z = tied_logits(rng, (T, L, E))
    path = os.path.join(tmp, name + ".h5")
    write_logits_trace(path, z, OFFSETS, bias=bias)
    ties = sum(len(np.unique(row)) < E for row in z.reshape(-1, E))
    check(ties > 0, f"{name}: test logits should contain ties")
    return path, z


# ---- routers without capacity ----

def ref_softmax_topk(z, k, renorm):
    """HF MixtralSparseMoeBlock.forward (renorm: routing_weights /= sum);
    OlmoeSparseMoeBlock / Qwen2MoeSparseMoeBlock with norm_topk_prob = False."""
    p = softmax(z)
    ids = top_indices(p, k)
    w = np.take_along_axis(p, ids, -1)
    if renorm:
        w = w / w.sum(-1, keepdims=True)
    return ids, w


def test_topk_matches_hf_mixtral_olmoe_qwen(tmp):
    for E in (16, 64):
        path, z = make_trace(tmp, f"topk{E}", E, 1)
        for k, renorm in ((1, 1), (2, 1), (2, 0), (8, 0), (8, 1)):
            spec = f"topk:k={k},renorm={renorm}"
            got = route_decisions(path, spec, tmp, f"topk{E}-{k}-{renorm}", ("--chunk-tokens", "37"))
            compare(f"E={E} {spec}", got, *ref_softmax_topk(z, k, renorm))


def ref_dbrx(z, k, p_norm):
    """HF modeling_dbrx DbrxRouter.forward: top_weights / torch.norm(top_weights, p=moe_normalize_expert_weights)."""
    p = softmax(z)
    ids = top_indices(p, k)
    w = np.take_along_axis(p, ids, -1)
    return ids, w / np.linalg.norm(w, ord=p_norm, axis=-1, keepdims=True)


def test_pnorm_topk_matches_dbrx(tmp):
    path, z = make_trace(tmp, "dbrx", 16, 2)
    for p_norm in (1, 2):
        spec = f"pnorm_topk:k=4,p={p_norm}"
        compare(spec, route_decisions(path, spec, tmp, f"dbrx{p_norm}"), *ref_dbrx(z, 4, p_norm))


def ref_llama4(z, k, renorm):
    """HF modeling_llama4 Llama4Router.forward: torch.topk of the logits, sigmoid of the kept ones
    (renorm = 1 divides by their sum, an option Llama 4 itself does not use)."""
    ids = top_indices(z.astype(np.float64), k)
    w = sigmoid(np.take_along_axis(z, ids, -1))
    if renorm:
        w = w / w.sum(-1, keepdims=True)
    return ids, w


def test_sigmoid_topk_matches_llama4(tmp):
    path, z = make_trace(tmp, "llama4", 16, 3)
    for k, renorm in ((1, 0), (2, 0), (3, 1)):
        spec = f"sigmoid_topk:k={k},renorm={renorm}"
        compare(spec, route_decisions(path, spec, tmp, f"llama4-{k}"), *ref_llama4(z, k, renorm))


def ref_sparsemixer(z, eps):
    """HF modeling_phimoe sparsemixer, training = False: per round the max of the remaining scores,
    mask (top - z) / clamp(|z|, min=top) > 2 eps (computed over all experts, the first winner already
    at -inf in round 2), softmax of the masked scores at the winner."""
    z = z.astype(np.float64)
    rows = z.reshape(-1, z.shape[-1])
    ids = np.zeros((rows.shape[0], 2), np.int64)
    w = np.zeros((rows.shape[0], 2))
    for r, scores in enumerate(rows):
        remaining = scores.copy()
        for slot in range(2):
            winner = int(np.argmax(remaining))  # first maximum: the lower index
            top = remaining[winner]
            with np.errstate(invalid="ignore", divide="ignore"):
                masked = (top - scores) / np.maximum(np.abs(scores), top) > 2 * eps  # 0/0 -> NaN -> kept
            gates = np.where(masked, -np.inf, remaining)
            gates = np.exp(gates - top)
            ids[r, slot] = winner
            w[r, slot] = gates[winner] / gates.sum()
            remaining[winner] = -np.inf
    return ids.reshape(z.shape[:-1] + (2,)), w.reshape(z.shape[:-1] + (2,))


def test_sparsemixer_matches_phimoe_inference(tmp):
    E = 16
    for eps in (0.01, 0.1):
        path, z = make_trace(tmp, f"phimoe{eps}", E, 4)
        # Layer 0 of the first 400 tokens: half the experts sit near the mask threshold of the
        # winner, (top - z) / max(|z|, top) = 2 eps * f with f around 1, on both signs of top.
        rng = np.random.default_rng(41)
        for t in range(400):
            top = rng.uniform(-4, 4)
            row = rng.normal(size=E) + top - 2
            near = rng.permutation(E)[: E // 2]
            f = rng.uniform(0.9, 1.1, size=near.size)
            row[near] = top - 2 * eps * f * np.maximum(np.abs(top), top)
            row[rng.integers(E)] = top
            z[t, 0] = row.astype(np.float32)
        z[5, 1, :] = 0  # all-zero row: every ratio is 0/0 and nothing is masked
        z[6, 1, :] = -1.5  # all-equal negative row
        write_logits_trace(path, z, OFFSETS)
        spec = f"sparsemixer:eps={eps}"
        want = ref_sparsemixer(z, eps)
        partial = int((want[1][:400, 0] < 1).sum())
        check(partial > 100, f"{spec}: the near-threshold rows should keep some experts ({partial})")
        compare(spec, route_decisions(path, spec, tmp, f"phimoe{eps}"), *want)


def ref_grouped_topk(z, n_group, topk_group, k, scale, bias=None):
    """DeepSeek-V3 inference/model.py Gate.forward (= vLLM fused_moe grouped_topk): without bias,
    softmax scores, group score = amax, weights = scores (no renormalisation) * route_scale; with bias,
    sigmoid scores, s + bias selects, group score = sum of the top-2, weights = unbiased scores
    renormalised * route_scale. Dropped groups are filled with -inf before the final topk."""
    E = z.shape[-1]
    if bias is None:
        scores = softmax(z)
        choice = scores
        group_score = choice.reshape(z.shape[:-1] + (n_group, E // n_group)).max(-1)
    else:
        scores = sigmoid(z)
        choice = scores + bias.astype(np.float64)[None, :, :]
        grouped = np.sort(choice.reshape(z.shape[:-1] + (n_group, E // n_group)), axis=-1)
        group_score = grouped[..., -1] + grouped[..., -2]
    kept = top_indices(group_score, topk_group)
    keep = np.zeros(group_score.shape, bool)
    np.put_along_axis(keep, kept, True, -1)
    masked = np.where(np.repeat(keep, E // n_group, axis=-1), choice, -np.inf)
    ids = top_indices(masked, k)
    w = np.take_along_axis(scores, ids, -1)
    if bias is not None:
        w = w / w.sum(-1, keepdims=True)
    return ids, w * scale


def test_group_limited_matches_deepseek_v2(tmp):
    path, z = make_trace(tmp, "dsv2", 64, 5)
    for n_group, topk_group, k, scale in ((8, 3, 6, 16.0), (4, 2, 5, 1.0), (8, 8, 6, 16.0)):
        spec = f"group_limited:n_group={n_group},topk_group={topk_group},k={k},scale={scale:g}"
        compare(spec, route_decisions(path, spec, tmp, f"dsv2-{n_group}-{topk_group}"),
                *ref_grouped_topk(z, n_group, topk_group, k, scale))


def test_deepseek_v3_matches_noaux_tc_gate(tmp):
    rng = np.random.default_rng(6)
    E = 64
    # few distinct bias values: equal logits plus equal bias give exact ties of s + b
    bias = rng.choice(np.array([-0.125, 0.0, 0.125, 0.25], np.float32), size=(L, E))
    path, z = make_trace(tmp, "dsv3", E, 6, bias=bias)
    for n_group, topk_group, k, scale in ((8, 4, 8, 2.5), (4, 1, 3, 1.0), (1, 1, 8, 2.5)):
        spec = f"deepseek_v3:n_group={n_group},topk_group={topk_group},k={k},scale={scale:g}"
        compare(spec, route_decisions(path, spec, tmp, f"dsv3-{n_group}-{topk_group}"),
                *ref_grouped_topk(z, n_group, topk_group, k, scale, bias))


def test_native_applies_grouped_attributes_as_the_gate(tmp):
    """native on traces whose root attributes copy a DeepSeek config (n_group, topk_group,
    routed_scaling_factor as h5py writes Python ints and floats) equals the reference gate."""
    rng = np.random.default_rng(8)
    E = 64
    bias = rng.choice(np.array([-0.125, 0.0, 0.125, 0.25], np.float32), size=(L, E))
    z = tied_logits(rng, (T, L, E))
    v3 = os.path.join(tmp, "native-dsv3.h5")
    write_logits_trace(v3, z, OFFSETS, bias=bias, top_k=8, scoring="sigmoid", norm_topk=1, n_group=8,
                       topk_group=4, routed_scaling_factor=2.5)
    compare("native on a DeepSeek-V3 trace", route_decisions(v3, "native", tmp, "native-dsv3"),
            *ref_grouped_topk(z, 8, 4, 8, 2.5, bias))
    v2 = os.path.join(tmp, "native-dsv2.h5")
    write_logits_trace(v2, z, OFFSETS, top_k=6, scoring="softmax", norm_topk=0, n_group=8, topk_group=3,
                       routed_scaling_factor=16.0)
    compare("native on a DeepSeek-V2 trace", route_decisions(v2, "native", tmp, "native-dsv2"),
            *ref_grouped_topk(z, 8, 3, 6, 16.0))
    # the same logits without the grouping attributes route as one group, scale 1
    plain = os.path.join(tmp, "native-plain.h5")
    write_logits_trace(plain, z, OFFSETS, bias=bias, top_k=8, scoring="sigmoid", norm_topk=1)
    got = route_decisions(plain, "native", tmp, "native-plain")
    compare("native without grouping attributes", got, *ref_grouped_topk(z, 1, 1, 8, 1.0, bias))
    grouped_ids = ref_grouped_topk(z, 8, 4, 8, 2.5, bias)[0]
    check(got is not None and not np.array_equal(np.sort(got[0], -1), np.sort(grouped_ids, -1)),
          "the test logits should make the group rule matter")


def test_grouping_attributes_are_checked(tmp):
    z = np.zeros((T, L, 8), np.float32)
    for attrs, message in (({"n_group": 4}, "root attribute 'topk_group' missing (n_group and topk_group go together)"),
                           ({"n_group": 3, "topk_group": 1}, "root attribute 'n_group' = 3 must divide num_experts = 8"),
                           ({"routed_scaling_factor": -1.0}, "root attribute 'routed_scaling_factor' = -1 must be finite"),
                           ({"routed_scaling_factor": "2.5"}, "root attribute 'routed_scaling_factor': expected a number")):
        path = os.path.join(tmp, "bad-grouping.h5")
        write_logits_trace(path, z, OFFSETS, top_k=2, scoring="softmax", norm_topk=1, **attrs)
        r = run(["route", path, "--router", "native", "--metrics", "none"], expect_failure=True)
        check(r.returncode == 1 and message in r.stderr and r.stderr.count("\n") == 1 and "bad-grouping.h5" in r.stderr,
              f"{attrs}: exit {r.returncode}, stderr {r.stderr.strip()}")


def ref_dsv4(z, k, scale, bias):
    """vLLM fused_moe/router/dsv4_topk.py _dsv4_topk_kernel: sqrt(z if z > 20 else log(1 + exp(z))),
    selection on weights + bias (smallest index among equal maxima), weights renormalised * scale."""
    z = z.astype(np.float64)
    s = np.sqrt(np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20)))))
    ids = top_indices(s + (0 if bias is None else bias.astype(np.float64)[None]), k)
    w = np.take_along_axis(s, ids, -1)
    return ids, w / w.sum(-1, keepdims=True) * scale


def test_sqrt_softplus_matches_vllm_dsv4_kernel(tmp):
    rng = np.random.default_rng(7)
    E = 32
    bias = rng.choice(np.array([0.0, 0.25, -0.25], np.float32), size=(L, E))
    path, z = make_trace(tmp, "dsv4", E, 7, bias=bias)
    z[3, 0, :4] = [21, 25, 19.5, 30]  # both sides of the z > 20 switch
    write_logits_trace(path, z, OFFSETS, bias=bias)
    spec = "sqrt_softplus:k=6"
    compare(spec, route_decisions(path, spec, tmp, "dsv4"), *ref_dsv4(z, 6, 1.5, bias))
    plain, z_plain = make_trace(tmp, "dsv4-nobias", E, 7)
    compare(spec + ",scale=1 without bias", route_decisions(plain, spec + ",scale=1", tmp, "dsv4-nobias"),
            *ref_dsv4(z_plain, 6, 1.0, None))


# ---- the capacity stage ----

def groups_of(mode, batch):
    """Token groups as routers.md defines them: whole sequences, or batch_tokens consecutive tokens."""
    if mode == "sequence":
        return [np.arange(a, b) for a, b in zip(OFFSETS[:-1], OFFSETS[1:])]
    return [np.arange(a, min(a + batch, T)) for a in range(0, T, batch)]


def megatron_capacity(n, k, E, cf):
    """Megatron moe_utils.py get_capacity(num_tokens * topk, num_experts, capacity_factor)."""
    return math.ceil((n * k / E) * cf)


def ref_gshard_all(z, groups, cf):
    """fairseq moe/top2gate.py top2gating, second_expert_policy = "all",
    normalize_gate_prob_before_dropping = False: locations1 = cumsum(mask1) - 1,
    locations2 = cumsum(mask2) - 1 + sum(mask1); keep locations < capacity; gates renormalised
    over the kept. Capacity as DeepSpeed sharded_moe.py _capacity(gates, 2 * capacity_factor)."""
    E = z.shape[-1]
    gates = softmax(z)
    ids = np.zeros(z.shape[:-1] + (2,), np.int64)
    w = np.zeros(z.shape[:-1] + (2,))
    for layer in range(z.shape[1]):
        for tokens in groups:
            g = gates[tokens, layer]
            capacity = math.ceil((len(tokens) / E) * (2 * cf))
            assert capacity == megatron_capacity(len(tokens), 2, E, cf)
            i1 = np.argmax(g, axis=1)
            i2 = np.argmax(np.where(np.arange(E)[None] == i1[:, None], -np.inf, g), axis=1)
            mask1, mask2 = np.eye(E, dtype=int)[i1], np.eye(E, dtype=int)[i2]
            loc1 = np.cumsum(mask1, 0) - 1
            loc2 = np.cumsum(mask2, 0) - 1 + mask1.sum(0, keepdims=True)
            keep1 = (loc1 * mask1).sum(1) < capacity
            keep2 = (loc2 * mask2).sum(1) < capacity
            g1 = np.where(keep1, g[np.arange(len(tokens)), i1], 0.0)
            g2 = np.where(keep2, g[np.arange(len(tokens)), i2], 0.0)
            denom = np.maximum(g1 + g2, np.finfo(np.float64).eps)
            ids[tokens, layer] = np.stack([np.where(keep1, i1, -1), np.where(keep2, i2, -1)], 1)
            w[tokens, layer] = np.stack([g1 / denom, g2 / denom], 1)
    return ids, w


def test_gshard_all_matches_fairseq_top2gating(tmp):
    path, z = make_trace(tmp, "gshard", 16, 8)
    for mode, cf in (("batch", 0.75), ("sequence", 1.25)):
        spec = f"gshard_top2:policy=all,capacity_factor={cf},group={mode}"
        got = route_decisions(path, spec, tmp, f"gshard-{mode}", ("--batch-tokens", "64", "--chunk-tokens", "50"))
        want = ref_gshard_all(z, groups_of(mode, 64), cf)
        check(int((want[0] < 0).sum()) > 0, f"{spec}: the test should drop something")
        compare(spec, got, *want)


def ref_switch(z, groups, cf):
    """HF modeling_switch_transformers SwitchTransformersTop1Router.forward: argmax, token_priority =
    cumsum of the one-hot choices over the group, kept while <= expert_capacity; router_probs = max p.
    HF passes a dropped token through unchanged; routers.md gives it no expert and weight 0."""
    E = z.shape[-1]
    p = softmax(z)
    ids = np.argmax(p, -1)[..., None]
    w = p.max(-1)[..., None]
    for layer in range(z.shape[1]):
        for tokens in groups:
            onehot = np.eye(E, dtype=int)[ids[tokens, layer, 0]]
            priority = (np.cumsum(onehot, 0) * onehot).sum(1)
            drop = priority > megatron_capacity(len(tokens), 1, E, cf)
            ids[tokens[drop], layer] = -1
            w[tokens[drop], layer] = 0.0
    return ids, w


def test_switch_matches_hf_switch_transformers(tmp):
    path, z = make_trace(tmp, "switch", 8, 9)
    for mode, extra in (("sequence", ""), ("batch", ",capacity_factor=1.5")):
        spec = f"switch:group={mode}{extra}"
        cf = 1.5 if extra else 1.0
        compare(spec, route_decisions(path, spec, tmp, f"switch-{mode}", ("--batch-tokens", "100")),
                *ref_switch(z, groups_of(mode, 100), cf))


def ref_megatron_probs(ids, gates, groups, E, cf):
    """Megatron moe_utils.py topk_softmax_with_capacity, drop_policy = "probs": per expert the
    expert_capacity largest entries of topk_masked_gates over the tokens (ties: the earlier token);
    final_probs = topk_masked_gates * final_map, not renormalised."""
    ids, gates = ids.copy(), gates.astype(np.float64).copy()
    k = ids.shape[-1]
    for layer in range(ids.shape[1]):
        for tokens in groups:
            capacity = megatron_capacity(len(tokens), k, E, cf)
            for e in range(E):
                t_idx, slot = np.nonzero(ids[tokens, layer] == e)
                order = np.lexsort((t_idx, -gates[tokens[t_idx], layer, slot]))
                for i in order[capacity:]:
                    ids[tokens[t_idx[i]], layer, slot[i]] = -1
                    gates[tokens[t_idx[i]], layer, slot[i]] = 0.0
    return ids, gates


def ref_batch_prioritized(ids, gates, groups, E, cf):
    """flaxformer moe/routing.py TokensChooseMaskedRouter with batch_prioritized_routing (V-MoE):
    tokens sorted by -top-1 gate (stable argsort), choices k-major (all top-1 before top-2),
    token_priority = cumsum of the expert mask, kept while < expert_capacity."""
    ids, gates = ids.copy(), gates.astype(np.float64).copy()
    k = ids.shape[-1]
    for layer in range(ids.shape[1]):
        for tokens in groups:
            capacity = megatron_capacity(len(tokens), k, E, cf)
            order = tokens[np.argsort(-gates[tokens, layer, 0], kind="stable")]
            count = np.zeros(E, int)
            for slot in range(k):
                for t in order:
                    e = ids[t, layer, slot]
                    if count[e] < capacity:
                        count[e] += 1
                    else:
                        ids[t, layer, slot] = -1
                        gates[t, layer, slot] = 0.0
    return ids, gates


def test_capacity_policies_match_megatron_and_vmoe(tmp):
    """The gates the references drop by are routesim's own dropless weights (checked against numpy
    in test_topk_matches_hf_mixtral_olmoe_qwen): float32 near-ties of numpy's float64 softmax must
    not decide the comparison, the dropping rule must."""
    E = 16
    path, z = make_trace(tmp, "capacity", E, 10)
    cases = (("probs", 1, ref_megatron_probs), ("priority", 0, ref_batch_prioritized))
    for policy, renorm, reference in cases:
        for mode, cf in (("batch", 0.5), ("sequence", 1.0)):
            base = f"topk:k=2,renorm={renorm}"
            dropless = route_decisions(path, base, tmp, f"cap-{policy}-{mode}-free")
            spec = f"{base},capacity_factor={cf},drop_policy={policy},group={mode}"
            got = route_decisions(path, spec, tmp, f"cap-{policy}-{mode}", ("--batch-tokens", "128"))
            if not check(dropless is not None, f"{base}: routing failed"):
                continue
            compare(base, dropless, *ref_softmax_topk(z, 2, renorm))
            want = reference(dropless[0], dropless[1], groups_of(mode, 128), E, cf)
            check(int((want[0] < 0).sum()) > 0, f"{spec}: the test should drop something")
            compare(spec, got, *want)
