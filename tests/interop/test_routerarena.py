"""routesim import routerarena on a RouterArena-sized prediction file (809
records, the sub_10 split) written by Python's json.dump as RouterArena
writes it, checked query by query with h5py, and the replayed router's
outcome.arena_score against RouterArena's aggregation (llm_evaluation/run.py
compute_router_metrics and compute_arena_score, restated here from their
definition)."""

import csv
import json
import math
import os

import h5py
import numpy as np

from interop_util import check, run

PRICES = {"gpt-4o-mini": (0.15, 0.6), "claude-3-haiku-20240307": (0.25, 1.25),
          "gemini-2.0-flash-001": (0.1, 0.4), "mistral-medium": (0.4, 2.0), "gpt-4.1": (2.0, 8.0)}
DATASETS = ["AIME", "MMLU", "GSM8K", "WMT19", "LiveCodeBench", "SuperGLUE"]


def arena_score(cost, accuracy, beta=0.1, c_max=200.0, c_min=0.0044):
    cost = max(c_min, min(cost, c_max))
    c = (math.log2(c_max) - math.log2(cost)) / (math.log2(c_max) - math.log2(c_min))
    return (1 + beta) * accuracy * c / (beta * accuracy + c)


def write_files(tmp, rng):
    costs = {m: {"input_token_price_per_million": p[0], "output_token_price_per_million": p[1]}
             for m, p in PRICES.items()}
    costs_path = os.path.join(tmp, "cost.json")
    with open(costs_path, "w") as f:
        json.dump(costs, f, indent=2)
    chosen = ["gpt-4o-mini", "gemini-2.0-flash-001", "gpt-4.1", "claude-3-haiku-20240307"]
    predictions = []
    for i in range(809):
        model = chosen[rng.integers(len(chosen))]
        dataset = DATASETS[rng.integers(len(DATASETS))]
        record = {"global index": f"{dataset}_{i}", "prompt": f"Question {i}: [a, b] {{c}} \"d\" é",
                  "prediction": model, "generated_result": None, "cost": None, "accuracy": None}
        if rng.random() < 0.95:  # inference ran
            tokens_in, tokens_out = int(rng.integers(10, 3000)), int(rng.integers(1, 4000))
            ok = rng.random() < 0.97
            record["generated_result"] = {"generated_answer": "x" if ok else "", "success": ok,
                                          "token_usage": {"input_tokens": tokens_in, "output_tokens": tokens_out,
                                                          "total_tokens": tokens_in + tokens_out},
                                          "provider": "p", "error": None if ok else "failed"}
            if ok:  # llm_evaluation/run.py: the scorer's accuracy and calculate_inference_cost
                p = costs[model]
                record["cost"] = (tokens_in / 1_000_000) * p["input_token_price_per_million"] + \
                    (tokens_out / 1_000_000) * p["output_token_price_per_million"]
                kind = rng.integers(3)
                record["accuracy"] = int(rng.integers(2)) if kind == 0 else \
                    float(rng.integers(2)) if kind == 1 else float(rng.random())
        predictions.append(record)
    path = os.path.join(tmp, "my-router.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(predictions, f, ensure_ascii=False, indent=2)
    return path, costs_path, predictions


def test_sub10_sized_file_scores_as_routerarena(tmp):
    rng = np.random.default_rng(2510)
    path, costs_path, predictions = write_files(tmp, rng)
    out = os.path.join(tmp, "arena.h5")
    r = run(["import", "routerarena", path, "--costs", costs_path, "-o", out])
    if not check(r.returncode == 0, f"import: {r.stderr.strip()}"):
        return
    models = [m for m in PRICES if any(p["prediction"] == m for p in predictions)]  # cost file order
    with h5py.File(out, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["expert_names"]]
        check(names == models, f"models {names}, wanted {models}")
        ids = f["router/topk_ids"][...]
        quality = f["outcome/quality"][...]
        cost = f["outcome/cost"][...]
        domain = f["sequences/domain"][...]
        domain_names = [n.decode() if isinstance(n, bytes) else n for n in f["sequences/domain"].attrs["names"]]
        offsets = f["sequences/offsets"][...]
    check(ids.shape == (809, 1, 1) and quality.shape == (809, len(models)), f"shapes {ids.shape} {quality.shape}")
    check(np.array_equal(offsets, np.arange(810)), "every query its own sequence")
    bad = 0
    for t, p in enumerate(predictions):
        e = models.index(p["prediction"])
        want_q = np.full(len(models), np.nan, np.float32)
        want_c = np.zeros(len(models), np.float32)
        if p["accuracy"] is not None:
            want_q[e] = np.float32(p["accuracy"])
            want_c[e] = np.float32(p["cost"])
        ok = ids[t, 0, 0] == e and np.array_equal(quality[t], want_q, equal_nan=True) and \
            np.array_equal(cost[t], want_c) and domain_names[domain[t]] == p["global index"].split("_")[0]
        bad += not ok
    check(bad == 0, f"{bad} of 809 queries differ from their records")

    # RouterArena: accuracy over the records that have one, cost over all records, per 1,000
    accuracies = [p["accuracy"] for p in predictions if p["accuracy"] is not None]
    costs = [p["cost"] for p in predictions if p["cost"] is not None and p["cost"] > 0]
    accuracy = sum(accuracies) / len(accuracies)
    cost_per_1k = sum(costs) / len(predictions) * 1000
    want = arena_score(cost_per_1k, accuracy)
    r = run(["route", out, "--router", "replay", "--metrics", "outcome", "--csv", os.path.join(tmp, "r.csv")])
    if not check(r.returncode == 0, f"route: {r.stderr.strip()}"):
        return
    values = {}
    with open(os.path.join(tmp, "r.csv"), newline="") as f:
        for row in csv.DictReader(f):
            if row["layer"] == "all":
                values[(row["metric"], row["key"])] = float(row["value"])
    got = values[("outcome.arena_score", "arena_beta=0.1")]
    print(f"  A = {accuracy:.6f}, c = {cost_per_1k:.6f} USD / 1k queries: arena score {want:.10f}, routesim {got:.10f}")
    check(abs(values[("outcome.quality", "")] - accuracy) < 1e-6, "quality is RouterArena's mean accuracy")
    check(values[("outcome.queries", "")] == len(accuracies), "queries = records with an accuracy")
    check(abs(got - want) < 1e-6, f"arena_score {got}, RouterArena {want}")
