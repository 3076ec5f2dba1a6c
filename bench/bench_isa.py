#!/usr/bin/env python3
"""make bench: the core set (top-8 routing + load + entropy's router_entropy
and selected_mass, bfloat16 DeepSeek-V3-shaped trace) once per x86-64 level
this CPU runs, side by side.

Each level is its own build, `make ROUTESIM_ISA=v4|v3|baseline`, whose
cloned kernels are that level's clone only (include/routesim/vector.h), so
one machine times every clone. Each row gives the best of --repeats runs
(levels interleaved), end to end (`routesim run`, reading the trace), and
its ratio to the naive scalar C loop and to numpy on the same trace, both
timed once in the same run. The levels must write byte-identical results.csv: the bench fails
otherwise."""

import argparse
import filecmp
import os
import platform
import subprocess
import sys

from run_bench import CORE_ENTROPY, ensure_trace, log, naive_run, numpy_run, routesim_run

def cpu_model():
    """The CPU's model name, from /proc/cpuinfo (Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def build_level(make, level):
    binary = os.path.join("build", f"isa-{level}", "routesim")
    log(f"building {binary} (make ROUTESIM_ISA={level})...")
    subprocess.run([make, "--no-print-directory", f"ROUTESIM_ISA={level}", binary], check=True,
                   stdout=subprocess.DEVNULL)
    return binary


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--routesim", default="build/routesim", help="the native build (generates the trace)")
    ap.add_argument("--naive", default="build/bench/naive_scalar", help="the naive scalar C loop")
    ap.add_argument("--make", default=os.environ.get("MAKE", "make"))
    ap.add_argument("--levels", default="v4,v3,baseline", help="levels to time, where the CPU runs them")
    ap.add_argument("--tokens", type=int, default=8000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", default="build/bench")
    args = ap.parse_args()
    if platform.machine() not in ("x86_64", "AMD64"):
        log("bench_isa: not an x86-64 machine; one build, no levels to compare")
        return
    model = cpu_model()
    runs = subprocess.run(["scripts/isa-levels.sh"], capture_output=True, text=True, check=True).stdout.split()
    levels = [lv for lv in args.levels.split(",") if lv in runs]
    os.makedirs(args.workdir, exist_ok=True)
    path = os.path.join(args.workdir, f"deepseek-v3-{args.tokens}.h5")
    ensure_trace(args.routesim, path, "deepseek-v3", args.tokens)
    binaries = {lv: build_level(args.make, lv) for lv in levels}
    k, batch, cores = 8, 4096, os.cpu_count() or 1
    numpy_seconds, units, _ = numpy_run(path, k, batch, False)
    naive_rate = None
    if os.path.exists(args.naive):
        naive_seconds, naive_units, _ = naive_run(args.naive, path, k, batch)
        naive_rate = naive_units / naive_seconds
    numpy_rate = units / numpy_seconds

    log(f"\ncore set per x86-64 level: top-{k} + load + entropy ({', '.join(CORE_ENTROPY)}), {units / 1e6:.2f} M "
        f"token-layers, bfloat16")
    log(f"  machine: {model}, {cores} cores; levels it runs: {', '.join(levels)}")
    log(f"  numpy {numpy_rate / 1e6:.3f} M/s" +
        (f", naive scalar C loop {naive_rate / 1e6:.3f} M/s" if naive_rate else "") + " (1 thread)")
    log(f"{'level':<9} {'threads':>7} {'M tok-layers/s':>15} {'vs naive':>9} {'vs numpy':>9} {'vs 1 thread':>12}")
    # Levels and thread counts interleaved, repeat by repeat: a busy spell of
    # a shared machine then slows every row, not one level's.
    thread_counts = sorted({1, cores})
    best = {}
    for _ in range(args.repeats):
        for level in levels:
            for threads in thread_counts:
                tr, _, _ = routesim_run(binaries[level], path, k, threads, batch,
                                        os.path.join(args.workdir, f"isa-{level}"), full=False)
                key = (level, threads)
                best[key] = min(best.get(key, tr["seconds"]), tr["seconds"])
    for level in levels:
        one_thread = units / best[(level, 1)]
        for threads in thread_counts:
            rate = units / best[(level, threads)]
            vs_naive = f"{rate / naive_rate:8.1f}x" if naive_rate else f"{'-':>9}"
            log(f"{level:<9} {threads:>7} {rate / 1e6:>15.2f} {vs_naive} {rate / numpy_rate:>8.1f}x "
                f"{rate / one_thread:>11.2f}x")
    first_csv = os.path.join(args.workdir, f"isa-{levels[0]}", "results.csv")
    for level in levels[1:]:
        csv = os.path.join(args.workdir, f"isa-{level}", "results.csv")
        if not filecmp.cmp(first_csv, csv, shallow=False):
            sys.exit(f"bench_isa: {csv} differs from {first_csv}: the clones disagree")
    log("  every level wrote the same results.csv")


if __name__ == "__main__":
    main()
