#!/usr/bin/env python3
"""make bench: the search placement policy on DeepSeek-V3's shape (58 layers
x 256 experts, 32 replicas = 288 slots, 8 expert groups, 4 nodes, 32
devices), the loads of bench_eplb.py (log-normal popularity, 4096 x 8
assignments per layer).

For a few move budgets (--iterations, per layer) it runs `routesim place
--policy search` and reports the plan time it prints (the policy alone, in
process, all cores) and its modelled all-to-all time against eplb's, and
checks both times with a numpy computation of the model from the written
plans (docs/metrics.md, `search`): tokens spread evenly over the devices,
dispatch local, the default model (7168 x 2 bytes, NVLink 160 GB/s,
network 50 GB/s)."""

import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_eplb import DEVICES, E, GROUPS, L, NODES, R, make_loads  # noqa: E402

HIDDEN, BYTES, NVLINK, NET = 7168, 2, 160e9, 50e9


def log(*args):
    print(*args, flush=True)


def modelled_seconds(loads, plan):
    """Sum over layers of the slowest device's 2 x bytes x (max(sent, received)
    in the node / NVLink + across nodes / network), the rule local."""
    log2phy = plan["logical_to_physical_map"]
    per_device, per_node = (E + R) // DEVICES, DEVICES // NODES
    total = 0.0
    for layer in range(L):
        sent, received = np.zeros((DEVICES, 2)), np.zeros((DEVICES, 2))
        for e in range(E):
            devices = [slot // per_device for slot in log2phy[layer][e] if slot >= 0]
            share = loads[layer][e] / DEVICES
            for s in range(DEVICES):
                if s in devices:
                    continue
                near = [d for d in devices if d // per_node == s // per_node]
                target = near[s % len(near)] if near else devices[s % len(devices)]
                far = int(target // per_node != s // per_node)
                sent[s, far] += share
                received[target, far] += share
        link = np.maximum(sent, received)
        total += float(np.max(2 * HIDDEN * BYTES * (link[:, 0] / NVLINK + link[:, 1] / NET)))
    return total


def place(routesim, loads_path, out_path, iterations):
    r = subprocess.run([routesim, "place", "--loads", loads_path, "--replicas", str(R), "--groups", str(GROUPS),
                        "--nodes", str(NODES), "--devices", str(DEVICES), "--policy", "search", "--iterations",
                        str(iterations), "-o", out_path], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"routesim place failed: {r.stderr}")
    m = re.search(r"modelled all-to-all ([0-9.e+-]+) s \(eplb's ([0-9.e+-]+) s, ([0-9.+-]+)%\), planned in "
                  r"([0-9.]+) ms", r.stdout)
    if not m:
        sys.exit(f"routesim place printed no modelled times: {r.stdout}")
    return float(m.group(1)), float(m.group(2)), float(m.group(4)) / 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--routesim", default="build/routesim")
    ap.add_argument("--iterations", default="2000,20000,100000", help="move budgets per layer, comma-separated")
    ap.add_argument("--workdir", default=None, help="default: bench/ next to the binary")
    args = ap.parse_args()
    workdir = args.workdir or os.path.join(os.path.dirname(os.path.abspath(args.routesim)), "bench")
    os.makedirs(workdir, exist_ok=True)
    loads = make_loads(1)
    loads_path = os.path.join(workdir, "search-loads.json")
    with open(loads_path, "w") as f:
        json.dump({"logical_count": loads}, f)
    eplb_path = os.path.join(workdir, "search-eplb.json")
    r = subprocess.run([args.routesim, "place", "--loads", loads_path, "--replicas", str(R), "--groups", str(GROUPS),
                        "--nodes", str(NODES), "--devices", str(DEVICES), "-o", eplb_path], capture_output=True,
                       text=True)
    if r.returncode != 0:
        sys.exit(f"routesim place failed: {r.stderr}")
    with open(eplb_path) as f:
        eplb_numpy = modelled_seconds(loads, json.load(f))

    log(f"\nsearch bench: {L} layers x {E} experts, {E + R} slots, {GROUPS} groups, {NODES} nodes, {DEVICES} devices")
    log(f"{'iterations/layer':>16} {'plan s':>8} {'search s':>11} {'eplb s':>11} {'vs eplb':>8}")
    for iterations in [int(x) for x in args.iterations.split(",")]:
        out_path = os.path.join(workdir, f"search-{iterations}.json")
        mine, eplb, seconds = place(args.routesim, loads_path, out_path, iterations)
        with open(out_path) as f:
            mine_numpy = modelled_seconds(loads, json.load(f))
        for got, want, what in ((mine, mine_numpy, "search"), (eplb, eplb_numpy, "eplb")):
            if abs(got - want) > 1e-5 * want:
                sys.exit(f"bench: routesim's modelled time of {what} {got} differs from numpy's {want}")
        if mine > eplb:
            sys.exit(f"bench: search's plan ({mine} s) is slower than eplb's ({eplb} s)")
        log(f"{iterations:>16} {seconds:>8.3f} {mine:>11.6f} {eplb:>11.6f} {100 * (mine / eplb - 1):>+7.2f}%")
    log("modelled times agree with numpy's computation from the written plans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
