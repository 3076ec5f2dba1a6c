#!/usr/bin/env python3
"""make bench: MPI speed-up of sweeps of 8 runs and of one run (make MPI=1, docs/cluster.md).

Two sweeps of 8 runs and a single run, with the load and entropy metrics,
run by build/mpi/routesim under mpirun with 1 and 2 ranks of one thread
each:

- traces: topk:k=2 over 8 Mixtral-shaped synthetic traces (different seeds);
  the ranks share nothing, so this is the speed-up of whole runs;
- routers: 8 routers (topk k=1..4, sigmoid_topk k=1,2, random k=1,2) over one
  trace of 8 times the tokens. One process routes them in one pass, reading
  and normalising each token once for all 8; split across ranks, each rank
  makes its own pass, so that shared work is done once per rank and the
  speed-up is lower;
- single: topk:k=2 alone over that trace; with 2 ranks each routes a block
  of half its sequences and rank 0 merges the two blocks' accumulators.

The time is the wall time of the whole mpirun (starting the ranks, routing,
gathering, writing results), best of a few repeats, with --force so that
nothing comes from the run store. results.csv must be identical between 1
and 2 ranks. The goal (at least 1.7x on 2 ranks) is reported, not asserted:
it needs two free cores."""

import argparse
import filecmp
import json
import math
import os
import shutil
import subprocess
import sys
import time


def log(*args):
    print(*args, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routesim", required=True, help="the plain build's routesim (its BUILD/mpi/routesim is used)")
    ap.add_argument("--mpi-routesim", help="the MPI build's routesim (default: next to --routesim, in mpi/)")
    ap.add_argument("--tokens", type=int, default=25000, help="tokens of each of the 8 traces")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--work", default=None, help="scratch directory (default: BUILD/bench/mpi)")
    args = ap.parse_args()

    build = os.path.dirname(os.path.abspath(args.routesim))
    mpi_bin = args.mpi_routesim or os.path.join(build, "mpi", "routesim")
    log("== MPI sweep speed-up (bench/bench_mpi.py)")
    if not shutil.which("mpirun") or not os.path.exists(mpi_bin):
        log(f"skipped: needs mpirun and {mpi_bin} (make MPI=1; scripts/install-deps.sh installs OpenMPI)")
        return
    work = args.work or os.path.join(build, "bench", "mpi")
    os.makedirs(work, exist_ok=True)

    def trace(tokens, seed):
        path = os.path.join(work, f"mixtral-{tokens}-s{seed}.h5")
        if not os.path.exists(path):
            log(f"generating {path} (mixtral, {tokens} tokens)...")
            subprocess.run([args.routesim, "gen", "--preset", "mixtral", "--tokens", str(tokens), "--seed",
                            str(seed), "-o", path, "--no-progress"], check=True, stderr=subprocess.DEVNULL)
        return path

    metrics = [{"name": "load"}, {"name": "entropy"}]
    sweeps = {
        "traces": {"traces": [trace(args.tokens, seed) for seed in range(1, 9)],
                   "routers": [{"name": "topk", "params": {"k": 2}}]},
        "routers": {"traces": [trace(8 * args.tokens, 1)],
                    "routers": [{"name": "topk", "params": {"k": [1, 2, 3, 4]}},
                                {"name": "sigmoid_topk", "params": {"k": [1, 2]}},
                                {"name": "random", "params": {"k": [1, 2], "seed": 1}}]},
        "single": {"traces": [trace(8 * args.tokens, 1)], "routers": [{"name": "topk", "params": {"k": 2}}]},
    }
    what = {"traces": "8 runs split by traces", "routers": "8 runs split by routers",
            "single": "1 run in blocks of sequences"}
    mpirun = ["mpirun", "--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name, sweep in sweeps.items():
        config = os.path.join(work, f"{name}.json")
        with open(config, "w") as f:
            json.dump(dict(sweep, name=f"mpi-bench-{name}", metrics=metrics, output=work), f)
        seconds = {}
        for np_ in (1, 2):
            out = os.path.join(work, f"{name}-np{np_}")
            best = math.inf
            for _ in range(args.repeats):
                start = time.perf_counter()
                r = subprocess.run(mpirun + ["-np", str(np_), mpi_bin, "run", config, "--output", out, "--threads",
                                             "1", "--force", "--no-progress", "--no-plots", "-q"],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                elapsed = time.perf_counter() - start
                if r.returncode != 0:
                    sys.exit(f"mpirun -np {np_} failed: {r.stderr}")
                best = min(best, elapsed)
            seconds[np_] = best
        if not filecmp.cmp(os.path.join(work, f"{name}-np1", "results.csv"),
                           os.path.join(work, f"{name}-np2", "results.csv"), shallow=False):
            sys.exit(f"{name}: results.csv differs between 1 and 2 ranks")
        log(f"  {what[name]:29s}: 1 rank {seconds[1]:7.2f} s, 2 ranks {seconds[2]:7.2f} s: "
            f"speed-up {seconds[1] / seconds[2]:.2f}x (goal: at least 1.7x; results.csv identical)")


if __name__ == "__main__":
    main()
