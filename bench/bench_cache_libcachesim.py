#!/usr/bin/env python3
"""make bench: routesim's expert-cache simulator against libCacheSim's
request loop on the same stream (docs/metrics.md#expert-cache-simulation).

libCacheSim is not packaged for this system, so the yardstick is
build/bench/cache_compare's port of it (bench/libcachesim_port.h): a hash
table and a doubly linked list per access (LRU, FIFO), a heap of next
accesses (Belady), objects allocated on insertion and freed on eviction,
calls through function pointers, as libCacheSim does them. The stream is
the bench's OLMoE-shaped top-8 trace (bench_cache.py), its layers one after
another through one cache of 16 slots: at k=1 each token's first expert is
one request; at k=8 each token's 8 experts are one batch under the batch
rule (hits decided before the batch; a batch member is never evicted),
which the port lays over libCacheSim's calls. Both sides run on one
thread (thread CPU time, so a busy machine's waits count for neither),
alternated, best of the repeats; their miss counts must be equal."""

import argparse
import json
import os
import platform
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cache import make_trace  # noqa: E402

TARGET = {1: 2.0, 8: 3.0}  # routesim / libCacheSim, lru, fifo and belady


def log(*args):
    print(*args, flush=True)


def machine():
    """The CPU's model name and the vector ISA it offers."""
    model, flags = platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == platform.machine():
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "neon" if "asimd" in flags else "scalar"
    return f"{model}, {os.cpu_count()} cpus, {isa}"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--routesim", default="build/routesim")
    ap.add_argument("--compare", default=None, help="default: bench/cache_compare next to the routesim binary")
    ap.add_argument("--tokens", type=int, default=40000)
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--workdir", default=None, help="default: bench/ next to the routesim binary")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(args.routesim))
    compare = args.compare or os.path.join(here, "bench", "cache_compare")
    workdir = args.workdir or os.path.join(here, "bench")
    os.makedirs(workdir, exist_ok=True)
    trace = make_trace(args.routesim, workdir, args.tokens)
    with h5py.File(trace, "r") as f:
        ids = f["router/topk_ids"][...]
        E = int(f.attrs.get("num_experts", int(ids.max()) + 1))
    T, L, K = ids.shape
    stream = np.ascontiguousarray(ids.transpose(1, 0, 2).reshape(L * T, K).astype(np.int32))
    if (stream < 0).any():
        sys.exit("bench: the trace has padded decisions; the comparison needs K experts per token")
    path = os.path.join(workdir, f"cache-stream-{args.tokens}.i32")
    stream.tofile(path)

    r = subprocess.run([compare, path, str(K), str(E), str(args.slots), str(args.repeats)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        sys.exit(f"cache_compare failed: {r.stderr}")
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    log(f"\ncache simulator against libCacheSim's request loop (a port: libCacheSim is not installed), "
        f"one thread, thread CPU time\n  machine: {machine()}\n  stream: OLMoE-shaped top-{K}, {L} layers x {T} tokens one "
        f"after another, {E} experts, {args.slots} slots, best of {args.repeats}")
    log(f"{'policy':<8} {'k':>2} {'M accesses':>10} {'routesim M acc/s':>17} {'libCacheSim port M acc/s':>25} "
        f"{'ratio':>6} {'target':>6} {'misses':>10}")
    disagree = 0
    for row in rows:
        acc = row["accesses"]
        rs, port = acc / row["routesim_seconds"], acc / row["port_seconds"]
        same = row["routesim_misses"] == row["port_misses"]
        disagree += not same
        misses = f"{row['routesim_misses']}" if same else f"{row['routesim_misses']}!={row['port_misses']}"
        log(f"{row['policy']:<8} {row['k']:>2} {acc / 1e6:10.2f} {rs / 1e6:17.1f} {port / 1e6:25.1f} "
            f"{rs / port:5.1f}x {TARGET.get(row['k'], 3.0):5.1f}x {misses:>10}")
    if disagree:
        sys.exit(f"bench: routesim and the libCacheSim port disagree on {disagree} miss counts")
    log("routesim and the libCacheSim port agree on every miss count")


if __name__ == "__main__":
    main()
