#!/usr/bin/env python3
"""make bench: the cost of a router written in Python (python/routesim
Router) against the same rule built in: a numpy top-k against `topk:k=2`,
on the same generated Mixtral-shaped trace, in the same process.

Both run through routesim.route with the load metric, best of --repeats
wall-clock runs each. The Python router's calls are serialised by the GIL
while the engine's other work runs on all threads; the time inside the
Python callback (building the block's views, the numpy rule, storing the
result) is measured per call and reported as a share of the run. Both must
give the same metrics, bit for bit."""

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*args):
    print(*args, flush=True)


def import_routesim(routesim_bin):
    """The package from this checkout, on the library built beside the binary."""
    lib = os.path.join(os.path.dirname(os.path.abspath(routesim_bin)), "libroutesim.so")
    if os.path.isfile(lib) and "ROUTESIM_LIB" not in os.environ:
        os.environ["ROUTESIM_LIB"] = lib
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import routesim
    return routesim


def make_trace(routesim_bin, workdir, tokens):
    path = os.path.join(workdir, f"mixtral-{tokens}.h5")
    if not os.path.exists(path):
        log(f"generating {path} (mixtral, {tokens} tokens)...")
        subprocess.run([routesim_bin, "gen", "--preset", "mixtral", "--tokens", str(tokens), "--seed", "1", "-o", path,
                        "--no-progress"], check=True, stderr=subprocess.DEVNULL)
    return path


def numpy_topk(block):
    """topk:k=2 as docs/routers.md states it: top-2 of the logits (ties to
    the lower index), weights p_S renormalised in double."""
    ids = np.argsort(-block.logits, axis=1, kind="stable")[:, :2]
    p = np.take_along_axis(block.probs, ids, axis=1).astype(np.float64)
    total = p[:, 0] + p[:, 1]
    return ids, (p / total[:, None]).astype(np.float32)


def timed_router(routesim):
    """A Router that measures the wall-clock time during which at least one
    of its callbacks runs (numpy releases the GIL inside some calls, so
    two callbacks can overlap: their durations would add up to more)."""

    class TimedRouter(routesim.Router):
        seconds = 0.0   # wall time with a callback running
        binding = 0.0   # summed over calls: callback time minus the rule's own
        calls = 0
        active = 0
        since = 0.0

        def _callback(self, block_ptr, msg, msg_size):
            cls = TimedRouter
            start = time.perf_counter()
            if cls.active == 0:
                cls.since = start
            cls.active += 1
            try:
                return super()._callback(block_ptr, msg, msg_size)
            finally:
                end = time.perf_counter()
                cls.active -= 1
                cls.calls += 1
                cls.binding += end - start - rule_seconds.pop()
                if cls.active == 0:
                    cls.seconds += end - cls.since

    rule_seconds = []

    def timed_rule(block):
        start = time.perf_counter()
        try:
            return numpy_topk(block)
        finally:
            rule_seconds.append(time.perf_counter() - start)

    return TimedRouter(timed_rule, "bench_numpy_topk", kmax=2, summary="numpy top-2, renormalised")


def best_of(repeats, fn):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--routesim", default="build/routesim")
    ap.add_argument("--tokens", type=int, default=100000)
    ap.add_argument("--threads", type=int, default=0, help="engine threads (default: all cores)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", default=None, help="default: bench/ next to the routesim binary")
    args = ap.parse_args()
    routesim = import_routesim(args.routesim)
    workdir = args.workdir or os.path.join(os.path.dirname(os.path.abspath(args.routesim)), "bench")
    os.makedirs(workdir, exist_ok=True)
    trace = make_trace(args.routesim, workdir, args.tokens)
    info = routesim.info(trace)
    T, L, E = info["num_tokens"], info["num_layers"], info["num_experts"]
    threads = args.threads or os.cpu_count()
    log(f"\npython router bench: numpy top-2 (routesim.Router) against the built-in topk:k=2, "
        f"{T} tokens x {L} layers x {E} experts, {threads} threads, metrics load, best of {args.repeats}")

    router = timed_router(routesim)
    builtin_s, builtin = best_of(args.repeats, lambda: routesim.route(trace, "topk:k=2", "load", threads=threads))
    single_s, _ = best_of(args.repeats, lambda: routesim.route(trace, "topk:k=2", "load", threads=1))
    python_s, in_python = float("inf"), 0.0
    timer = type(router)
    for _ in range(args.repeats):
        timer.seconds, timer.binding, timer.calls = 0.0, 0.0, 0
        start = time.perf_counter()
        python = routesim.route(trace, router, "load", threads=threads)
        elapsed = time.perf_counter() - start
        if elapsed < python_s:
            python_s, in_python, binding, calls = elapsed, timer.seconds, timer.binding, timer.calls

    same = builtin.value.to_numpy().tobytes() == python.value.to_numpy().tobytes()
    on = f"{threads} thread{'s' if threads > 1 else ''}"
    log(f"{'router':<36} {'seconds':>8} {'M tokens/s':>11} {'M token-layers/s':>17}")
    rows = [(f"topk:k=2 (built in, {on})", builtin_s), ("topk:k=2 (built in, 1 thread)", single_s),
            (f"numpy top-2 (Python, {on})", python_s)]
    for name, s in rows[:1] + rows[1 if threads > 1 else 2:]:
        log(f"{name:<36} {s:8.3f} {T / s / 1e6:11.3f} {T * L / s / 1e6:17.2f}")
    log(f"Python router / built-in: {python_s / builtin_s:.2f}x the time ({on})"
        + (f", {python_s / single_s:.2f}x the built-in on 1 thread" if threads > 1 else ""))
    calls = max(calls, 1)
    log(f"time in Python: {in_python:.3f} s of {python_s:.3f} s ({100 * in_python / python_s:.0f}%), "
        f"{calls} calls of {T * L / calls:.0f} token-layers, {1e6 * in_python / calls:.0f} us each, "
        f"of which {1e6 * binding / calls:.0f} us in the binding (views, checks, storing the result)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"peak memory (this process, library included): {peak:.0f} MiB")
    if not same:
        sys.exit("bench: the Python top-2 and the built-in topk:k=2 give different metrics")
    log("the Python top-2 and the built-in topk:k=2 give the same metrics, bit for bit")


if __name__ == "__main__":
    main()
