#!/usr/bin/env python3
"""make bench: the placement metric family's throughput beside `load`
(docs/metrics.md "Expert placement and communication").

The trace is DeepSeek-V3-shaped (58 layers x 256 experts, the preset's own
top-8 with its group limit), stored as a top-k-only trace that the `replay`
router reads back. routesim runs on one thread; a metric's time is the
run's compute time minus that of the same run without metrics (best of 5
each), and throughput counts token-layers."""

import argparse
import json
import math
import os
import subprocess
import sys

import h5py


def log(*args):
    print(*args, flush=True)


def make_trace(routesim, workdir, tokens):
    """A DeepSeek-V3-shaped top-k-only trace of `tokens` tokens, generated once."""
    topk = os.path.join(workdir, f"deepseek-v3-top8-{tokens}.h5")
    if os.path.exists(topk):
        return topk
    logits = os.path.join(workdir, f"deepseek-v3-{tokens}.h5")
    log(f"generating {topk} (deepseek-v3, {tokens} tokens, its own top-8)...")
    subprocess.run([routesim, "gen", "--preset", "deepseek-v3", "--tokens", str(tokens), "--seed", "1",
                    "--record_topk", "1", "-o", logits, "--no-progress"], check=True, stderr=subprocess.DEVNULL)
    with h5py.File(logits, "r") as src, h5py.File(topk, "w") as f:
        for k, v in src.attrs.items():
            f.attrs[k] = v
        f.create_dataset("router/topk_ids", data=src["router/topk_ids"][...])
        f.create_dataset("sequences/offsets", data=src["sequences/offsets"][...])
    os.remove(logits)
    return topk


def seconds(routesim, trace, metrics, out_dir, repeats=5):
    """Best compute seconds of `repeats` single-thread runs."""
    os.makedirs(out_dir, exist_ok=True)
    config = os.path.join(out_dir, "bench.json")
    with open(config, "w") as f:
        json.dump({"name": "placement", "traces": [trace], "routers": ["replay"], "metrics": metrics,
                   "output": out_dir}, f)
    best = math.inf
    for _ in range(repeats):
        r = subprocess.run([routesim, "run", config, "--threads", "1", "--force", "--no-progress", "-q"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"routesim failed: {r.stderr}")
        with open(os.path.join(out_dir, "results.json")) as f:
            best = min(best, json.load(f)["traces"][0]["compute_seconds"])
    return best


def policies(routesim):
    r = subprocess.run([routesim, "place", "--help"], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--routesim", default="build/routesim")
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--workdir", default=None, help="default: bench/ next to the routesim binary")
    args = ap.parse_args()
    workdir = args.workdir or os.path.join(os.path.dirname(os.path.abspath(args.routesim)), "bench")
    os.makedirs(workdir, exist_ok=True)
    trace = make_trace(args.routesim, workdir, args.tokens)
    with h5py.File(trace, "r") as f:
        T, L, K = f["router/topk_ids"].shape
    log(f"\nplacement bench: DeepSeek-V3-shaped top-{K} decisions, {T} tokens x {L} layers, batch_tokens 4096, "
        f"one thread")
    ep32 = {"devices": 32, "nodes": 4}
    runs = [
        ("load", {"name": "load"}),
        ("placement EP32 contiguous", {"name": "placement", "params": ep32}),
        ("placement EP32, 32 replicas, local", {"name": "placement", "params": dict(ep32, replicas=32)}),
        ("placement EP32, 32 replicas, balanced",
         {"name": "placement", "params": dict(ep32, replicas=32, dispatch="balanced")}),
        ("placement EP8 contiguous", {"name": "placement", "params": {"devices": 8}}),
    ]
    if "eplb" in policies(args.routesim):
        runs.append(("placement EP32 eplb history (32 replicas, every 8 batches)",
                     {"name": "placement", "params": dict(ep32, replicas=32, groups=8, policy="eplb",
                                                          stats="history", rebalance_every=8 * 4096)}))
    out = os.path.join(workdir, "placement")
    base = seconds(args.routesim, trace, [], out)
    log(f"{'metric':<62} {'M token-layers/s':>17}")
    for name, metric in runs:
        s = seconds(args.routesim, trace, [metric], out)
        log(f"{name:<62} {T * L / max(s - base, 1e-9) / 1e6:17.1f}")
    log(f"(routing by replay alone: {T * L / base / 1e6:.0f} M token-layers/s, subtracted)")


if __name__ == "__main__":
    main()
