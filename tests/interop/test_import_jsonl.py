"""routesim import jsonl against a log written here with json and numpy: the
logits, domain and composite sequence key fields read back with h5py, and
`native` on the imported trace against a numpy port of HF transformers'
Mixtral / Qwen-MoE gate (softmax, top-k, renormalised)."""

import json
import os

import h5py
import numpy as np

from interop_util import check, route_decisions, run

E, K = 8, 2
LAYERS = (1, 3)  # the model's own MoE layer indices, as logged
# Two evaluation logs that both number their problems from 0.
SEQUENCES = [("gsm8k", 0, 5, "math"), ("gsm8k", 1, 3, "math"), ("mmlu", 0, 4, "law"), ("mmlu", 1, 2, "law")]


def ref_native_softmax(z, k):
    """HF MixtralSparseMoeBlock: softmax over E, top-k, divided by their sum."""
    z = z.astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ids = np.argsort(-p, axis=-1, kind="stable")[..., :k]
    w = np.take_along_axis(p, ids, -1)
    return ids, w / w.sum(-1, keepdims=True)


def test_logits_domains_composite_keys_and_native(tmp):
    rng = np.random.default_rng(15)
    T = sum(n for _, _, n, _ in SEQUENCES)
    z = rng.normal(size=(T, len(LAYERS), E)).astype(np.float32)
    rows, t = [], 0
    for dataset, problem, n, subject in SEQUENCES:
        for pos in range(n):
            for rank, layer in enumerate(LAYERS):
                # float(np.float32) prints the shortest text that reads back as the same float32
                rows.append({"dataset": dataset, "problem_id": problem, "pos": pos, "layer": layer,
                             "router_logits": [float(v) for v in z[t, rank]], "subject": subject})
            t += 1
    order = rng.permutation(len(rows))
    # first appearance decides the order of composite ids: keep each sequence's first row in place
    first = {}
    for i, r in enumerate(rows):
        first.setdefault((r["dataset"], r["problem_id"]), i)
    firsts = sorted(first.values())
    rest = [i for i in order if i not in firsts]
    log = os.path.join(tmp, "evals.jsonl")
    with open(log, "w") as f:
        for i in firsts + rest:
            f.write(json.dumps(rows[i]) + "\n")
    trace = os.path.join(tmp, "evals.h5")
    r = run(["import", "jsonl", log, "-o", trace, "--experts", str(E), "--top-k", str(K), "--scoring", "softmax",
             "--norm-topk", "1", "--map",
             "seq=dataset+problem_id,token=pos,experts=,logits=router_logits,domain=subject"])
    if not check(r.returncode == 0, f"import failed: {r.stderr.strip()}"):
        return
    check("4 sequences, 14 tokens, 2 layers (logged as 1, 3), with logits, 2 domains" in r.stderr,
          f"report: {r.stderr.strip()}")
    with h5py.File(trace, "r") as f:
        check(np.array_equal(f["router/logits"][...], z), "/router/logits differ from the logged values")
        check(f["router/logits"].dtype == np.float32, "logits are not float32")
        check("router/topk_ids" not in f, "a logits-only import wrote /router/topk_ids")
        check(list(f["sequences/offsets"][...]) == [0, 5, 8, 12, 14], f"offsets {f['sequences/offsets'][...]}")
        check(list(f["sequences/domain"][...]) == [0, 0, 1, 1], f"domains {f['sequences/domain'][...]}")
        names = [n.decode() if isinstance(n, bytes) else n for n in f["sequences/domain"].attrs["names"]]
        check(names == ["math", "law"], f"domain names {names}")
        check(list(f.attrs["layer_index"]) == list(LAYERS), f"layer_index {f.attrs['layer_index']}")
        check((f.attrs["top_k"], f.attrs["scoring"], f.attrs["norm_topk"]) == (K, "softmax", 1),
              "top_k, scoring, norm_topk attributes")
    got = route_decisions(trace, "native", tmp, "native")
    if not check(got is not None, "native failed on the imported trace"):
        return
    want_ids, want_w = ref_native_softmax(z, K)
    check(np.array_equal(got[0], want_ids), "native ids differ from the softmax top-2 of the logged logits")
    check(np.allclose(got[1], want_w, rtol=1e-5, atol=1e-6), "native weights differ from the renormalised softmax")


def test_plain_problem_ids_collide(tmp):
    """Without the dataset in the key, both logs' problem 0 is one sequence: its rows collide."""
    log = os.path.join(tmp, "two.jsonl")
    with open(log, "w") as f:
        for dataset in ("gsm8k", "mmlu"):
            f.write(json.dumps({"dataset": dataset, "problem_id": 0, "token": 0, "layer": 0, "experts": [1]}) + "\n")
    r = run(["import", "jsonl", log, "-o", os.path.join(tmp, "two.h5"), "--experts", "4", "--map",
             "seq=problem_id"], expect_failure=True)
    check(r.returncode == 1 and "line 2: seq/token/layer: seq 0, token 0, layer 0 already given on line 1" in r.stderr,
          f"exit {r.returncode}, stderr {r.stderr.strip()}")
    r = run(["import", "jsonl", log, "-o", os.path.join(tmp, "two.h5"), "--experts", "4", "--map",
             "seq=dataset+problem_id"])
    check(r.returncode == 0 and "2 sequences" in r.stderr, f"exit {r.returncode}, stderr {r.stderr.strip()}")
