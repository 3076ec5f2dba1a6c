"""placement metric family against a plain Python computation written here
from docs/metrics.md "Expert placement and communication": every output of
every layer (and layer=all) recomputed from the decisions file, with the
placement built from the policy's rule (contiguous, round_robin) or read
from the JSON `routesim place` writes (eplb, when registered). Shares,
balancedness and device shares divide the same integers on both sides and
must be equal; means of ratios, bytes and times to 1e-12 relative."""

import csv
import json
import os

import h5py
import numpy as np

from interop_util import check, run

L, E, K, BATCH = 4, 16, 4, 64
DEFAULTS = {"hidden_size": 7168, "bytes_per_element": 2.0, "nvlink_gbps": 160.0, "net_gbps": 50.0,
            "latency_us": 0.0, "expert_bytes": 44040192.0}


# ---------------------------------------------------------------- reference

def contiguous(S):
    return [s % E for s in range(S)]


def round_robin(S, G):
    per = S // G
    phy2log = [None] * S
    for i in range(S):
        phy2log[(i % G) * per + i // G] = i % E
    return phy2log


def replicas_by_rank(phy2log):
    """Slots of each expert in replica order (slot order)."""
    slots = {e: [] for e in range(E)}
    for s, e in enumerate(phy2log):
        slots[e].append(s)
    return slots


def serve(p, slots_by_rank, src, position, load):
    """The device serving one assignment: the dispatch rule, spelled out."""
    per, per_node = p["S"] // p["G"], p["G"] // p["N"]
    devices = [s // per for s in slots_by_rank]
    if len(devices) == 1:
        return devices[0]
    rule = p["dispatch"]
    if rule in ("local", "nearest"):
        if src in devices:
            return src
        in_node = [d for d in devices if d // per_node == src // per_node]
        if in_node:
            return in_node[src % len(in_node)]
        if rule == "local":
            return devices[src % len(devices)]
    if rule == "round_robin":
        return devices[position % len(devices)]
    best = devices[0]  # balanced: least loaded so far in the batch, ties to the lower rank
    for d in devices[1:]:
        if load[d] < load[best]:
            best = d
    return best


def reference(ids, offsets, p, maps):
    """Every output as {(output, layer): value}, layer 'all' included."""
    T = ids.shape[0]
    G, N = p["G"], p["N"]
    per_node = G // N
    seq = np.searchsorted(offsets, np.arange(T), side="right") - 1
    home = (np.arange(T) if p["source"] == "token" else seq) % G
    act = p["hidden_size"] * p["bytes_per_element"]
    out = {}
    devs = np.full(ids.shape, -1, np.int64)
    totals = {k: [0] * L for k in ("assign", "cross", "far", "load_total", "load_max", "hops", "base")}
    imbalance = [[] for _ in range(L)]
    seconds = [0.0] * L
    device_load = np.zeros((L, G), np.int64)
    for l in range(L):
        for b0 in range(0, T, BATCH):
            load = [0] * G
            sent = np.zeros((G, 2), np.int64)  # [intra, inter]
            recv = np.zeros((G, 2), np.int64)
            for t in range(b0, min(b0 + BATCH, T)):
                src = int(home[t])
                for j in range(K):
                    e = int(ids[t, l, j])
                    if e < 0:
                        continue
                    d = serve(p, maps[l][e], src, (t - b0) * K + j, load)
                    devs[t, l, j] = d
                    load[d] += 1
                    if d != src:
                        far = int(d // per_node != src // per_node)
                        sent[src, far] += 1
                        recv[d, far] += 1
            total, top = sum(load), max(load)
            device_load[l] += load
            if total == 0:
                continue
            totals["assign"][l] += total
            totals["cross"][l] += int(sent.sum())
            totals["far"][l] += int(sent[:, 1].sum())
            totals["load_total"][l] += total
            totals["load_max"][l] += top
            imbalance[l].append(top * G / total - 1)
            worst = max(2 * act * max(sent[d, 0], recv[d, 0]) / (p["nvlink_gbps"] * 1e9) +
                        2 * act * max(sent[d, 1], recv[d, 1]) / (p["net_gbps"] * 1e9) for d in range(G))
            seconds[l] += worst + p["latency_us"] * 1e-6
    for t in range(T):
        for l in range(1, L):
            before = {int(d) for d in devs[t, l - 1] if d >= 0}
            if not before:
                continue
            for d in devs[t, l]:
                if d >= 0:
                    totals["base"][l] += 1
                    totals["hops"][l] += int(d) not in before
    for l in range(L):
        out["imbalance_ratio", l] = float(np.mean(imbalance[l]))
        out["balancedness", l] = totals["load_total"][l] / (G * totals["load_max"][l])
        out["a2a_share", l] = totals["cross"][l] / totals["assign"][l]
        out["inter_node_share", l] = totals["far"][l] / totals["assign"][l]
        out["a2a_bytes", l] = totals["cross"][l] * 2 * act
        out["a2a_time_s", l] = seconds[l]
        if l > 0:
            out["cross_device_transitions", l] = totals["hops"][l] / totals["base"][l]
        out["expert_moves", l] = 0.0
        out["migration_bytes", l] = 0.0
        for d in range(G if p["per_device"] else 0):
            out[f"device_share;device={d}", l] = int(device_load[l, d]) / int(device_load[l].sum())
    out["imbalance_ratio", "all"] = float(np.mean([out["imbalance_ratio", l] for l in range(L)]))
    out["balancedness", "all"] = sum(totals["load_total"]) / (G * sum(totals["load_max"]))
    out["a2a_share", "all"] = sum(totals["cross"]) / sum(totals["assign"])
    out["inter_node_share", "all"] = sum(totals["far"]) / sum(totals["assign"])
    out["a2a_bytes", "all"] = sum(out["a2a_bytes", l] for l in range(L))
    out["a2a_time_s", "all"] = sum(seconds)
    out["cross_device_transitions", "all"] = sum(totals["hops"]) / sum(totals["base"])
    out["expert_moves", "all"] = out["migration_bytes", "all"] = 0.0
    for d in range(G if p["per_device"] else 0):
        out[f"device_share;device={d}", "all"] = float(np.mean([out[f"device_share;device={d}", l]
                                                                for l in range(L)]))
    return out


# ---------------------------------------------------------------- routesim

EXACT = ("balancedness", "a2a_share", "inter_node_share", "cross_device_transitions", "expert_moves",
         "device_share")


def measured(tmp, name, trace, router, params):
    """results.csv rows {(output[;device=d], layer): value} of placement with params."""
    config = os.path.join(tmp, name + ".json")
    out = os.path.join(tmp, name)
    with open(config, "w") as f:
        json.dump({"name": name, "traces": [trace], "routers": [router],
                   "metrics": [{"name": "placement", "params": params}], "batch_tokens": BATCH}, f)
    r = run(["run", config, "--output", out, "--threads", "2", "--chunk-tokens", "37", "-q"])
    if not check(r.returncode == 0, f"{name}: run failed: {r.stderr.strip()}"):
        return None
    rows = {}
    with open(os.path.join(out, "results.csv"), newline="") as f:
        for row in csv.DictReader(f):
            device = [kv for kv in row["key"].split(";") if kv.startswith("device=")]
            output = row["metric"][len("placement."):] + "".join(";" + d for d in device)
            layer = row["layer"] if row["layer"] == "all" else int(row["layer"])
            rows[output, layer] = float(row["value"])
    return rows


def compare(rows, want, what):
    """Every value of want (and no other) is in rows, equal or within 1e-12."""
    check(set(rows) == set(want), f"{what}: rows differ: routesim only {sorted(set(rows) - set(want))[:4]}, "
                                  f"python only {sorted(set(want) - set(rows))[:4]}")
    n = 0
    for key, value in want.items():
        if key not in rows:
            continue
        got = rows[key]
        exact = key[0].split(";")[0] in EXACT
        ok = got == value if exact else abs(got - value) <= 1e-12 * max(abs(value), 1e-300)
        check(ok, f"{what}: {key[0]} layer {key[1]}: routesim {got!r}, python {value!r}")
        n += 1
    return n


def key_of(params):
    return ";".join(f"{k}={v}" for k, v in sorted(params.items()))


def settings(params, S):
    p = dict(DEFAULTS)
    p.update({k: v for k, v in params.items() if k in DEFAULTS})
    p.update({"G": params["devices"], "N": params.get("nodes", 1), "S": S,
              "source": params.get("source", "sequence"), "dispatch": params.get("dispatch", "local"),
              "per_device": params.get("per_device", 0)})
    return p


def make_trace(tmp):
    trace = os.path.join(tmp, "t.h5")
    r = run(["gen", "--preset", "olmoe", "--tokens", "600", "--layers", str(L), "--experts", str(E), "--k", str(K),
             "--seq_len", "40", "--seed", "3", "-o", trace, "--no-progress"])
    check(r.returncode == 0, f"gen failed: {r.stderr}")
    return trace


def decisions(tmp, trace, router):
    """The decisions file of router on trace, its ids and the trace's sequence offsets."""
    dec = os.path.join(tmp, "dec.h5")
    r = run(["route", trace, "--router", router, "--out", dec, "--metrics", "none", "--batch-tokens", str(BATCH),
             "--no-progress"])
    if not check(r.returncode == 0, f"route failed: {r.stderr}"):
        return None, None, None
    with h5py.File(dec, "r") as f:
        ids = f["decisions/ids"][...]
    with h5py.File(trace, "r") as f:
        offsets = f["sequences/offsets"][...]
    return dec, ids, offsets


VARIANTS = [
    {"devices": 4, "nodes": 2},
    {"devices": 8, "nodes": 2, "source": "token", "latency_us": 7.5, "per_device": 1},
    {"devices": 4, "nodes": 2, "replicas": 4, "policy": "round_robin"},
    {"devices": 4, "nodes": 2, "replicas": 4, "policy": "round_robin", "dispatch": "balanced", "source": "token"},
    {"devices": 4, "nodes": 2, "replicas": 4, "policy": "round_robin", "dispatch": "round_robin"},
    {"devices": 8, "nodes": 2, "replicas": 48, "dispatch": "local", "per_device": 1},
    {"devices": 8, "nodes": 4, "replicas": 16, "dispatch": "local", "source": "token", "hidden_size": 1000,
     "bytes_per_element": 1, "nvlink_gbps": 0.5, "net_gbps": 0.1, "latency_us": 2},
    {"devices": 8, "nodes": 4, "replicas": 16, "dispatch": "balanced"},
    {"devices": 8, "nodes": 4, "replicas": 16, "dispatch": "nearest", "source": "token"},
]


def test_every_output_equals_python(tmp):
    trace = make_trace(tmp)
    # a capacity stage drops some assignments: -1 in the rows, left out on both sides
    router = "topk:k=4,capacity_factor=1.2,group=batch"
    dec, ids, offsets = decisions(tmp, trace, router)
    if ids is None:
        return
    replay = f"replay:decisions={dec}"
    check(bool((ids < 0).any()), "the capacity stage dropped nothing; the case tests less than it says")
    n = 0
    for i, v in enumerate(VARIANTS):
        rows = measured(tmp, f"placement{i}", trace, replay, v)
        if rows is None:
            continue
        S = E + v.get("replicas", 0)
        phy2log = round_robin(S, v["devices"]) if v.get("policy") == "round_robin" else contiguous(S)
        maps = [replicas_by_rank(phy2log)] * L
        n += compare(rows, reference(ids, offsets, settings(v, S), maps), key_of(v))
    check(n > 400, f"only {n} values compared")


def test_eplb_placement_equals_python(tmp):
    r = run(["place", "--help"])
    if r.returncode != 0 or "eplb" not in r.stdout:
        print("skip: routesim place or the eplb policy is not built in")
        return
    trace = make_trace(tmp)
    dec, ids, offsets = decisions(tmp, trace, "topk:k=4")
    if ids is None:
        return
    replay = f"replay:decisions={dec}"
    loads = np.zeros((L, E), np.int64)
    for l in range(L):
        row = ids[:, l, :]
        np.add.at(loads[l], row[row >= 0], 1)
    loads_csv = os.path.join(tmp, "loads.csv")
    np.savetxt(loads_csv, loads, fmt="%d", delimiter=",")
    variants = [{"devices": 4, "nodes": 2, "groups": 4, "replicas": 8, "dispatch": d, "source": s}
                for d, s in (("local", "sequence"), ("balanced", "token"), ("round_robin", "sequence"))]
    placement_json = os.path.join(tmp, "eplb.json")
    v0 = variants[0]
    r = run(["place", "--loads", loads_csv, "--policy", "eplb", "--devices", str(v0["devices"]), "--nodes",
             str(v0["nodes"]), "--groups", str(v0["groups"]), "--replicas", str(v0["replicas"]), "-o",
             placement_json])
    if not check(r.returncode == 0, f"place failed: {r.stderr}"):
        return
    with open(placement_json) as f:
        placed = json.load(f)
    maps = [{e: [s for s in placed["logical_to_physical_map"][l][e] if s >= 0] for e in range(E)}
            for l in range(L)]
    check(any(len(maps[l][e]) > 1 for l in range(L) for e in range(E)), "eplb replicated nothing")
    for v in variants:
        v.update(policy="eplb", loads=loads_csv)
    # stats=oracle without a loads file: the engine counts the run first, the same loads
    variants.append(dict(variants[0], dispatch="round_robin", source="token"))
    del variants[-1]["loads"]
    n = 0
    by_policy = []
    for i, v in enumerate(variants):
        rows = measured(tmp, f"eplb{i}", trace, replay, v)
        if rows is not None:
            n += compare(rows, reference(ids, offsets, settings(v, E + v["replicas"]), maps), key_of(v))
        by_policy.append(rows)
    check(n > 100, f"only {n} values compared")
    # what `routesim place` wrote, read back as policy file:, measures the same bits as the policy itself
    for i, v in enumerate(variants):
        as_file = {k: x for k, x in v.items() if k not in ("policy", "loads")}
        as_file["policy"] = "file:" + placement_json
        rows = measured(tmp, f"eplb-file{i}", trace, replay, as_file)
        if rows is not None and by_policy[i] is not None:
            check(rows == by_policy[i], f"{key_of(v)}: policy file:{placement_json} measures "
                  f"{sorted((k, rows[k], by_policy[i].get(k)) for k in rows if rows[k] != by_policy[i].get(k))[:3]}"
                  " unlike the eplb policy")
