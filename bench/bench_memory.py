#!/usr/bin/env python3
"""make bench: peak resident memory under the memory budget.

Routers that decide over token groups need whole groups in a chunk: on a
DeepSeek-V3-shaped trace (58 layers x 256 experts) one batch of 4096 tokens
is 243 MiB of float32 logits, which the engine then routes in bands of
layers. Each case below runs with --memory-mb 64 (the default budget) and
reports its peak resident set size, as /usr/bin/time -v reports it (the
kernel's ru_maxrss of the process, read with wait4): the six balancing and
capacity routers one at a time with batch_tokens 4096, six grouped routers
in one pass, six routers with the affinity metric (whose accumulators, 45
MiB a run, cut the sweep into passes), and a bootstrap over sequences with the local-routing-
consistency metrics (srp, sch, cache) on a Qwen3-shaped trace, the shipped
experiment's settings. The bench fails when a peak exceeds --limit-mb."""

import argparse
import json
import os
import subprocess
import sys
import time


def log(*args):
    print(*args, flush=True)


def ensure_trace(routesim, path, preset, tokens):
    if os.path.exists(path):
        return
    log(f"generating {path} ({preset}, {tokens} tokens)...")
    subprocess.run([routesim, "gen", "--preset", preset, "--tokens", str(tokens), "--seed", "1", "-o", path,
                    "--no-progress"], check=True)


def peak_run(argv):
    """Runs argv; returns (exit status, peak RSS in MiB, wall seconds, stderr)."""
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        p = subprocess.Popen(argv, stdout=devnull, stderr=subprocess.PIPE, text=True)
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, usage.ru_maxrss / 1024.0, time.perf_counter() - start, err


def write_config(path, body):
    with open(path, "w") as f:
        json.dump(body, f)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--routesim", default="build/routesim")
    ap.add_argument("--tokens", type=int, default=8192, help="tokens of the DeepSeek-V3-shaped trace")
    ap.add_argument("--bootstrap-tokens", type=int, default=20000, help="tokens of the Qwen3-shaped trace")
    ap.add_argument("--memory-mb", type=int, default=64, help="the budget every case runs with")
    ap.add_argument("--limit-mb", type=float, default=256, help="fail when a peak exceeds this")
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    ap.add_argument("--workdir", default=None, help="default: bench/ next to the routesim binary")
    args = ap.parse_args()
    workdir = args.workdir or os.path.join(os.path.dirname(os.path.abspath(args.routesim)), "bench")
    os.makedirs(workdir, exist_ok=True)
    dsv3 = os.path.join(workdir, f"deepseek-v3-{args.tokens}.h5")
    qwen3 = os.path.join(workdir, f"qwen3-moe-{args.bootstrap_tokens}.h5")
    ensure_trace(args.routesim, dsv3, "deepseek-v3", args.tokens)
    ensure_trace(args.routesim, qwen3, "qwen3-moe", args.bootstrap_tokens)
    common = ["--memory-mb", str(args.memory_mb), "--no-progress"]
    if args.threads:
        common += ["--threads", str(args.threads)]

    grouped = ["expert_choice", "sinkhorn", "base", "switch", "topk:k=8,capacity_factor=1", "aux_free_bias:k=8"]
    cases = [(f"route {spec}", [args.routesim, "route", dsv3, "--router", spec, "--batch-tokens", "4096"] + common)
             for spec in grouped]
    six = write_config(os.path.join(workdir, "memory-six.json"), {
        "name": "memory-six", "traces": [dsv3],
        "routers": ["expert_choice", "sinkhorn", "switch", "topk:k=8,capacity_factor=1", "aux_free_bias:k=8",
                    "quantile_balance:k=8"],
        "batch_tokens": 4096, "output": os.path.join(workdir, "memory-six")})
    cases.append(("run: 6 grouped routers, one pass", [args.routesim, "run", six, "--force", "-q"] + common))
    affinity = write_config(os.path.join(workdir, "memory-affinity.json"), {
        "name": "memory-affinity", "traces": [dsv3],
        "routers": ["topk:k=8", "topk:k=6", "topk:k=4", "topk:k=2", "native", "random:k=8"],
        "metrics": ["affinity", "load"], "output": os.path.join(workdir, "memory-affinity")})
    cases.append(("run: 6 routers x affinity (45 MiB each)", [args.routesim, "run", affinity, "--force", "-q",
                                                               "--no-plots"] + common))
    boot = write_config(os.path.join(workdir, "memory-bootstrap.json"), {
        "name": "memory-bootstrap", "traces": [qwen3], "routers": ["native"],
        "metrics": [{"name": "srp", "params": {"m": [4, 16, 64, 256]}},
                    {"name": "sch", "params": {"m": [4, 16, 64, 256], "rho": [1, 2, 4]}},
                    {"name": "cache", "params": {"policy": ["lru", "lfu", "sch", "belady"], "slots": [4, 8, 16],
                                                 "gap": True}}],
        "bootstrap": {"resamples": 200}, "output": os.path.join(workdir, "memory-bootstrap")})
    cases.append(("run: bootstrap, srp/sch/cache (Qwen3)", [args.routesim, "run", boot, "--force", "-q",
                                                             "--no-plots"] + common))

    log(f"\npeak resident memory with --memory-mb {args.memory_mb} (limit {args.limit_mb:g} MiB): "
        f"{os.path.basename(dsv3)} with batch_tokens 4096, {os.path.basename(qwen3)} for the bootstrap")
    log(f"{'case':<42} {'peak MiB':>9} {'budget MiB':>11} {'seconds':>8}")
    over = []
    for name, argv in cases:
        rc, peak, seconds, err = peak_run(argv)
        if rc != 0:
            sys.exit(f"bench: {name} failed: {err.strip()}")
        log(f"{name:<42} {peak:>9.0f} {args.memory_mb:>11} {seconds:>8.1f}")
        if peak > args.limit_mb:
            over.append(f"{name}: {peak:.0f} MiB")
    if over:
        sys.exit("bench: peak resident memory above the limit: " + "; ".join(over))


if __name__ == "__main__":
    main()
