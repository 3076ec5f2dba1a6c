"""The eplb placement policy (docs/metrics.md "Placement policies") against
eplb_torch.py, our independent torch implementation of deepseek-ai/EPLB's
rebalance_experts (eplb.py, commit d52c72d), with every tie to the lower
index as routesim documents.

Randomised cases of both branches (several shapes, integer loads, some
skewed, some with many ties, some past 2^24 where float32 rounds them) go
through `routesim place --loads`, whose physical_to_logical_map,
logical_to_physical_map and logical_count must equal ours exactly.

With ROUTESIM_EPLB_REFERENCE=path/to/eplb.py the reference module itself
runs on the same cases: with its sort made stable (torch's sort(stable=True),
the tie rule above) its three outputs must equal routesim's on every case;
as it is, on every case where no sort of more than 16 items meets equal
weights (torch 1.13 orders ties of longer rows its own way), and on the
others with the same logical_count and device loads (equal-weight copies
trade places). The README's example must match as it is."""

import json
import os

import numpy as np

from interop_util import check, run

try:
    import torch

    from eplb_torch import derived, device_loads, load_reference, plan, reference_outputs
except ImportError:  # the interop tests need numpy and h5py only; this one torch too
    torch = None

README_LOADS = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
                [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]
README_PHY2LOG = [[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
                  [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]]


def cases():
    """(name, loads, replicas, groups, nodes, devices)."""
    rng = np.random.default_rng(14)
    out = [("readme", README_LOADS, 4, 4, 2, 8)]
    shapes = [  # L, E, R, groups, nodes, G
        (3, 16, 8, 4, 2, 4),     # hierarchical: 12 copies per node on 2 devices
        (2, 16, 8, 4, 4, 8),     # one group per node
        (3, 12, 4, 3, 2, 4),     # global: 2 nodes do not divide 3 groups
        (2, 32, 0, 8, 2, 8),     # no replicas
        (2, 24, 8, 1, 1, 32),    # one slot per device (no sort in the packing)
        (2, 64, 16, 8, 2, 8),    # 40 copies per node: sorts of more than 16 items
        (2, 60, 12, 5, 2, 8),    # global: 72 copies on 8 devices
        (2, 256, 32, 8, 4, 32),  # DeepSeek-V3-shaped, hierarchical
        (1, 256, 32, 8, 3, 36),  # global: 3 nodes do not divide 8 groups (EP36)
        (1, 256, 32, 8, 16, 32), # global: more nodes than groups
    ]
    for i, (L, E, R, groups, nodes, G) in enumerate(shapes):
        # loads past 2^24 round when converted to float32; only where the
        # group sums go unused (one group per node, or global), since
        # torch's float32 sum of a group that large adds in its own order
        sums_unused = groups % nodes != 0 or groups == nodes
        for kind in ("uniform", "skewed", "tied") + (("large",) if sums_unused else ()):
            if kind == "large":
                loads = rng.integers(2**24 - 64, 2**24 + 64, size=(L, E)) * rng.integers(1, 4, size=(L, E))
            elif kind == "uniform":
                loads = rng.integers(0, 1000, size=(L, E))
            elif kind == "skewed":
                loads = np.floor(rng.pareto(1.2, size=(L, E)) * 200).astype(np.int64)
            else:
                loads = rng.integers(0, 4, size=(L, E)) * 50
            out.append((f"shape{i}-{kind}", loads.tolist(), R, groups, nodes, G))
    return out


def routesim_place(tmp, name, loads, R, groups, nodes, G):
    src = os.path.join(tmp, name + "-loads.json")
    dst = os.path.join(tmp, name + "-placement.json")
    with open(src, "w") as f:
        json.dump({"logical_count": loads}, f)
    r = run(["place", "--loads", src, "--replicas", str(R), "--groups", str(groups), "--nodes", str(nodes),
             "--devices", str(G), "-o", dst])
    if not check(r.returncode == 0, f"eplb {name}: routesim place failed: {r.stderr.strip()}"):
        return None
    with open(dst) as f:
        return json.load(f)


def test_eplb_against_torch(tmp):
    if torch is None:
        print("skip test_eplb: torch is not installed")
        return
    path = os.environ.get("ROUTESIM_EPLB_REFERENCE")
    reference = load_reference(path) if path else None
    cases_run = exact_stable = exact_as_is = tie_cases = tie_differences = 0
    for name, loads, R, groups, nodes, G in cases():
        E = len(loads[0])
        got = routesim_place(tmp, name, loads, R, groups, nodes, G)
        if got is None:
            continue
        phy2log, rank, tied = plan(loads, E + R, groups, nodes, G)
        count, log2phy = derived(phy2log, rank, E)
        check(got["physical_to_logical_map"] == phy2log, f"eplb {name}: physical_to_logical_map differs")
        check(got["logical_to_physical_map"] == log2phy, f"eplb {name}: logical_to_physical_map differs")
        check(got["logical_count"] == count, f"eplb {name}: logical_count differs")
        if name == "readme":
            check(phy2log == README_PHY2LOG, "eplb readme: our re-implementation misses the README's phy2log")
            check(got["physical_to_logical_map"] == README_PHY2LOG, "eplb readme: phy2log is not the README's")
        if reference is None:
            continue
        mine = (got["physical_to_logical_map"], got["logical_to_physical_map"], got["logical_count"])
        cases_run += 1
        exact_stable += check(reference_outputs(reference, loads, R, groups, nodes, G, stable=True) == mine,
                              f"eplb {name}: differs from the reference with a stable sort")
        as_is = reference_outputs(reference, loads, R, groups, nodes, G, stable=False)
        if tied:
            # equal-weight copies may trade places; counts and device loads stay
            tie_cases += 1
            tie_differences += as_is != mine
            check(as_is[2] == mine[2], f"eplb {name}: logical_count differs from the reference")
            check(device_loads(loads, as_is[0], as_is[2], G) == device_loads(loads, mine[0], mine[2], G),
                  f"eplb {name}: device loads differ from the reference's")
        else:
            exact_as_is += check(as_is == mine, f"eplb {name}: differs from the reference (no ties in long sorts)")
    if reference is not None:
        print(f"eplb reference {path}: equal with a stable sort on {exact_stable} of {cases_run} cases; "
              f"as it is on {exact_as_is} cases without ties in long sorts; {tie_differences} of {tie_cases} "
              f"cases with such ties differ (torch's unstable sort), with the same counts and device loads")
