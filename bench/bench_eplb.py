#!/usr/bin/env python3
"""make bench: the eplb placement policy against Python implementations of
deepseek-ai/EPLB's rebalance_experts on DeepSeek-V3's shape: 58 layers x 256
experts, 32 replicas (288 slots), 8 expert groups, 4 nodes, 32 devices.

Loads are integer counts, skewed per layer (log-normal expert popularity).
routesim's time is `routesim place --loads`: the plan time it prints (the
policy alone, in process) and the wall time of the whole command (start,
reading the loads, writing the JSON). The Python side is our torch
re-implementation of the reference (tests/interop/eplb_torch.py) and, with
ROUTESIM_EPLB_REFERENCE=path/to/eplb.py, the reference module itself, on one
thread. Outputs must agree: the re-implementation and the reference with its
sort made stable exactly (physical_to_logical_map, logical_to_physical_map,
logical_count); the reference as it is in logical_count and device loads
(torch's unstable sort may swap copies of equal weight)."""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))

L, E, R, GROUPS, NODES, DEVICES = 58, 256, 32, 8, 4, 32


def log(*args):
    print(*args, flush=True)


def make_loads(seed):
    """Per layer, expert popularity log-normal (sigma 1), 4096 x 8 assignments."""
    rng = np.random.default_rng(seed)
    popularity = np.exp(rng.normal(0.0, 1.0, size=(L, E)))
    return [rng.multinomial(4096 * 8, row / row.sum()).tolist() for row in popularity]


def routesim_place(routesim, loads_path, out_path, repeats):
    """Best plan seconds (as printed) and best wall seconds of `repeats` runs."""
    best_plan = best_wall = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        r = subprocess.run([routesim, "place", "--loads", loads_path, "--replicas", str(R), "--groups", str(GROUPS),
                            "--nodes", str(NODES), "--devices", str(DEVICES), "-o", out_path],
                           capture_output=True, text=True)
        wall = time.perf_counter() - start
        if r.returncode != 0:
            sys.exit(f"routesim place failed: {r.stderr}")
        m = re.search(r"planned in ([0-9.]+) ms", r.stdout)
        if not m:
            sys.exit(f"routesim place printed no plan time: {r.stdout}")
        best_plan = min(best_plan, float(m.group(1)) / 1e3)
        best_wall = min(best_wall, wall)
    with open(out_path) as f:
        got = json.load(f)
    return best_plan, best_wall, (got["physical_to_logical_map"], got["logical_to_physical_map"], got["logical_count"])


def best_time(fn, repeats):
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--routesim", default="build/routesim")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workdir", default=None, help="default: bench/ next to the binary")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        log("\neplb bench: skipped (torch is not installed)")
        return 0
    from eplb_torch import derived, device_loads, load_reference, plan, reference_outputs

    torch.set_num_threads(1)
    workdir = args.workdir or os.path.join(os.path.dirname(os.path.abspath(args.routesim)), "bench")
    os.makedirs(workdir, exist_ok=True)
    loads = make_loads(1)
    loads_path = os.path.join(workdir, "eplb-loads.json")
    with open(loads_path, "w") as f:
        json.dump({"logical_count": loads}, f)

    log(f"\neplb bench: {L} layers x {E} experts, {E + R} slots, {GROUPS} groups, {NODES} nodes, {DEVICES} devices")
    plan_s, wall_s, mine = routesim_place(args.routesim, loads_path, os.path.join(workdir, "eplb-plan.json"),
                                          args.repeats)
    ours_s, (phy2log, rank, _) = best_time(lambda: plan(loads, E + R, GROUPS, NODES, DEVICES), 1)
    count, log2phy = derived(phy2log, rank, E)
    if (phy2log, log2phy, count) != mine:
        sys.exit("bench: routesim and the torch re-implementation disagree")
    rows = [("routesim place: plan (in process)", plan_s), ("routesim place: whole command", wall_s),
            ("torch re-implementation (tests/interop/eplb_torch.py)", ours_s)]
    path = os.environ.get("ROUTESIM_EPLB_REFERENCE")
    if path:
        module = load_reference(path)
        ref_s, as_is = best_time(lambda: reference_outputs(module, loads, R, GROUPS, NODES, DEVICES, False), 3)
        stable = reference_outputs(module, loads, R, GROUPS, NODES, DEVICES, True)
        if stable != mine:
            sys.exit("bench: routesim and the reference (stable sort) disagree")
        if as_is[2] != mine[2] or device_loads(loads, as_is[0], as_is[2], DEVICES) != device_loads(
                loads, mine[0], mine[2], DEVICES):
            sys.exit("bench: routesim and the reference disagree in counts or device loads")
        log(f"outputs agree: the re-implementation and the reference (stable sort) exactly; the reference as it is "
            f"{'exactly' if as_is == mine else 'in logical_count and device loads'}")
        rows.append((f"reference {os.path.basename(path)} (torch, 1 thread)", ref_s))
    else:
        log("outputs agree with the torch re-implementation exactly (set ROUTESIM_EPLB_REFERENCE=path/to/eplb.py "
            "to time deepseek-ai/EPLB's own module too)")
    python_s = rows[-1][1]
    log(f"{'implementation':<56} {'seconds':>10} {'vs routesim plan':>17}")
    for name, s in rows:
        log(f"{name:<56} {s:>10.5f} {s / plan_s:>16.1f}x")
    log(f"routesim is {python_s / plan_s:.0f}x faster than {rows[-1][0].split(' (')[0]} in plan time, "
        f"{python_s / wall_s:.1f}x as a whole command (goal: 100x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
