"""cache metric family against a plain Python simulation written here from
docs/metrics.md#expert-cache-simulation: one dict per cache, every rule
spelled out, no shared code with routesim. Hit rates are compared exactly
(both sides divide the same two integers)."""

import bisect
import csv
import gzip
import json
import math
import os
import random

import h5py
import numpy as np

from interop_util import check, run

INF = math.inf
MIXTRAL_EXPERT_BYTES = 352321536.0


# ---------------------------------------------------------------- reference

class Future:
    """Next uses and sch windows of one segment's batches."""

    def __init__(self, batches, stride, m):
        self.uses = {}
        for b, objs in enumerate(batches):
            for o in objs:
                self.uses.setdefault(o, []).append(b)
        self.window = (m - 1) * stride

    def next_use(self, o, b):
        """First batch from b on that uses o (inf if none): b itself for the
        batch's own experts, which prefetching before it may meet."""
        u = self.uses.get(o, [])
        i = bisect.bisect_left(u, b)
        return u[i] if i < len(u) else INF

    def window_uses(self, o, b):
        """Batches b+1 .. b+W that use o."""
        u = self.uses.get(o, [])
        return bisect.bisect_right(u, b + self.window) - bisect.bisect_right(u, b)


class Cache:
    def __init__(self, policy, capacity):
        self.policy, self.capacity = policy, capacity
        self.state = {}
        self.clock = 0

    def tick(self):
        self.clock += 1
        return self.clock

    def victim(self, protected, future, b):
        cands = [o for o in self.state if o not in protected]
        if not cands:
            return None
        st = self.state
        if self.policy == "lru":
            return min(cands, key=lambda o: st[o]["touch"])
        if self.policy == "fifo":
            return min(cands, key=lambda o: st[o]["inserted"])
        if self.policy == "lfu":
            return min(cands, key=lambda o: (st[o]["freq"], st[o]["reached"]))
        if self.policy == "belady":
            return min(cands, key=lambda o: (-future.next_use(o, b), o))
        if self.policy == "sch":
            return min(cands, key=lambda o: (future.window_uses(o, b), st[o]["touch"]))
        raise ValueError(self.policy)

    def insert(self, o, protected, future, b):
        if len(self.state) >= self.capacity:
            v = self.victim(protected, future, b)
            if v is None:
                return False  # every slot holds the batch: streamed
            del self.state[v]
        now = self.tick()
        self.state[o] = {"touch": now, "inserted": now, "freq": 1, "reached": now}
        return True

    def batch(self, objs, future, b):
        hits = [o in self.state for o in objs]
        protected = set(objs)
        for o, h in zip(objs, hits):
            if h:
                s = self.state[o]
                s["touch"] = s["reached"] = self.tick()
                s["freq"] += 1
            else:
                self.insert(o, protected, future, b)
        return hits

    def prefetch(self, objs, future, b):
        protected, loaded = set(objs), 0
        for o in objs:
            if o not in self.state and self.insert(o, protected, future, b):
                loaded += 1
        return loaded


def distinct(row):
    out = []
    for e in row:
        if e >= 0 and e not in out:
            out.append(int(e))
    return out


def observed(ids, t, l):
    """Replay passes a recorded row of -1 only on as not observed: absent."""
    return bool((ids[t, l] >= 0).any())


def domains(ids, offsets, scope, reset):
    """[(segments, stride)]: each segment a list of (layer, token, seq_start, experts of the batch).
    A (token, layer) not observed is absent; the pool takes a token observed
    at some layer, with an empty batch for the others."""
    T, L, _ = ids.shape
    starts = set(int(s) for s in offsets[:-1])
    seg_starts = starts if reset == "sequence" else {0}
    layer_lists = range(L) if scope == "layer" else [None]
    out = []
    for only in layer_lists:
        segments = []
        for t in range(T):
            if t in seg_starts:
                segments.append([])
            if only is None and not any(observed(ids, t, l) for l in range(L)):
                continue
            for l in range(L):
                if only is None or (l == only and observed(ids, t, l)):
                    segments[-1].append((l, t, t in starts, distinct(ids[t, l])))
        out.append(segments)
    return out


def prefetch_sets(ids, offsets, kind):
    """pf[(t, l)] = experts to prefetch before token t's batch at layer l."""
    T, L, _ = ids.shape
    E = int(ids.max()) + 1
    starts = set(int(s) for s in offsets[:-1])
    pf = {}
    table = {}
    prev = {}  # layer -> the previous observed token's experts in the sequence
    for t in range(T):
        if t in starts:
            table = {}  # learned within the sequence (reset=sequence)
            prev = {}
        for l in range(L):
            if not observed(ids, t, l):
                pf[t, l] = []  # absent: nothing is fetched for it
            elif kind == "oracle_next":
                pf[t, l] = distinct(ids[t, l]) if l > 0 else []
            elif kind == "prev_token":
                pf[t, l] = prev.get(l, [])
                prev[l] = distinct(ids[t, l])
            elif kind == "affinity":
                if l == 0:
                    pf[t, l] = []
                    continue
                src = distinct(ids[t, l - 1])
                score = [sum(table.get((l - 1, i, j), 0) for i in src) for j in range(E)]
                order = sorted((j for j in range(E) if score[j] > 0), key=lambda j: (-score[j], j))
                pf[t, l] = order[:len(src)]
            else:
                pf[t, l] = []
        for l in range(1, L):
            for i in distinct(ids[t, l - 1]):
                for j in distinct(ids[t, l]):
                    table[l - 1, i, j] = table.get((l - 1, i, j), 0) + 1
    return pf


def simulate(ids, offsets, policy, slots, scope="layer", reset="sequence", m=16, prefetch="none"):
    """Per-layer accesses, hits, warm hits, prefetched loads of one configuration."""
    T, L, _ = ids.shape
    E = int(ids.max()) + 1 if ids.max() >= 0 else 1
    E = max(E, 1)
    stride = L if scope == "global" else 1
    capacity = slots * L if scope == "global" else slots
    pf_sets = prefetch_sets(ids, offsets, prefetch) if prefetch != "none" else {}
    acc, hits, warm, loaded = [0] * L, [0] * L, [0] * L, [0] * L
    for segments in domains(ids, offsets, scope, reset):
        for seg in segments:
            objs_of = [[l * E + e if scope == "global" else e for e in ex] for (l, _, _, ex) in seg]
            future = Future(objs_of, stride, m)
            cache = Cache(policy, capacity)
            seen, n_seen = set(), 0
            for b, ((l, t, _, _), objs) in enumerate(zip(seg, objs_of)):
                pf = [l * E + e if scope == "global" else e for e in pf_sets.get((t, l), [])]
                loaded[l] += cache.prefetch(pf, future, b) if pf else 0
                got = cache.batch(objs, future, b)
                for o, h in zip(objs, got):
                    first = o not in seen
                    w = first and n_seen < capacity
                    if first:
                        seen.add(o)
                        n_seen += 1
                    acc[l] += 1
                    hits[l] += h
                    warm[l] += h or w
    return acc, hits, warm, loaded


def simulate_static(ids, offsets, slots, scope="layer", reset="sequence"):
    T, L, _ = ids.shape
    E = int(ids.max()) + 1
    capacity = slots * L if scope == "global" else slots
    acc, hits, warm = [0] * L, [0] * L, [0] * L
    for segments in domains(ids, offsets, scope, reset):
        count, warm_first, layer_of = {}, {}, {}
        for seg in segments:
            seen = set()
            for (l, _, _, ex) in seg:
                for e in ex:
                    o = l * E + e if scope == "global" else e
                    layer_of[o] = l
                    count[o] = count.get(o, 0) + 1
                    if o not in seen:
                        if len(seen) < capacity:
                            warm_first[o] = warm_first.get(o, 0) + 1
                        seen.add(o)
                    acc[l] += 1
        pinned = set(sorted(count, key=lambda o: (-count[o], o))[:capacity])
        for o, c in count.items():
            hits[layer_of[o]] += c if o in pinned else 0
            warm[layer_of[o]] += c if o in pinned else warm_first.get(o, 0)
    return acc, hits, warm


# ---------------------------------------------------------------- traces and runs

def structured_ids(rng, T, L, E, kmax, k_min=1, pad=0.0):
    """Expert ids with locality (a slowly drifting favourite set per
    sequence) and layer-to-layer affinity, variable k, -1 padding."""
    ids = -np.ones((T, L, kmax), np.int32)
    fav = rng.choice(E, size=(L, max(2, E // 3)))
    for t in range(T):
        if rng.random() < 0.05:
            fav = rng.choice(E, size=(L, max(2, E // 3)))
        prev = None
        for l in range(L):
            k = int(rng.integers(k_min, kmax + 1))
            row = []
            while len(row) < k:
                u = rng.random()
                if prev is not None and u < 0.25:
                    e = int((prev[0] * 3 + l) % E)
                elif u < 0.7:
                    e = int(rng.choice(fav[l]))
                else:
                    e = int(rng.integers(E))
                if e not in row:
                    row.append(e)
            ids[t, l, :k] = row
            if pad and rng.random() < pad:
                ids[t, l, int(rng.integers(k))] = -1  # a dropped or unrecorded expert
            prev = row
    return ids


def write_topk_trace(path, ids, offsets, E):
    T, L, K = ids.shape
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "routesim-trace"
        f.attrs["format_version"] = 1
        f.attrs["num_layers"] = L
        f.attrs["num_experts"] = E
        f.attrs["unit"] = "token"
        f.create_dataset("router/topk_ids", data=ids)
        f.create_dataset("sequences/offsets", data=np.asarray(offsets, np.int64))


def run_cache(tmp, trace, metric_params, extra=()):
    """Runs the replay router with the given cache metric entries; returns
    {(metric, key, layer): value} or None."""
    out = os.path.join(tmp, "out")
    config = os.path.join(tmp, "cache.json")
    with open(config, "w") as f:
        json.dump({"name": "cache", "traces": [trace], "routers": ["replay"],
                   "metrics": [{"name": "cache", "params": p} for p in metric_params], "output": out}, f)
    r = run(["run", config, "--no-progress", "-q", *extra])
    if not check(r.returncode == 0, f"routesim run failed: {r.stderr.strip()}"):
        return None
    rows = {}
    with open(os.path.join(out, "results.csv")) as f:
        for row in csv.DictReader(f):
            if row["metric"].startswith("cache."):
                rows[row["metric"], row["key"], row["layer"]] = float(row["value"])
    return rows


DEFAULTS = {"policy": "lru", "slots": 4, "scope": "layer"}


def key_of(params, names):
    """The result key: the parameters among names that have a default or
    were given, sorted by name."""
    full = dict(DEFAULTS, **params)
    return ";".join(f"{n}={full[n]}" for n in sorted(names) if n in full)


POLICY_KEY = ("policy", "slots", "scope", "reset", "seed", "m", "prefetch")


def ratio(a, b):
    return a / b if b else math.nan


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def compare_rates(rows, params, acc, hits, warm, what, loaded=None):
    key = key_of(params, POLICY_KEY)
    L = len(acc)
    ok = True
    for l in range(L):
        for metric, want in (("cache.hit_rate", ratio(hits[l], acc[l])),
                             ("cache.hit_rate_warm", ratio(warm[l], acc[l]))):
            got = rows.get((metric, key, str(l)))
            ok &= check(got is not None and same(got, want), f"{what}: {metric} {key} layer {l}: {got} != {want}")
    for metric, want in (("cache.hit_rate", ratio(sum(hits), sum(acc))),
                         ("cache.hit_rate_warm", ratio(sum(warm), sum(acc)))):
        got = rows.get((metric, key, "all"))
        ok &= check(got is not None and same(got, want), f"{what}: {metric} {key} layer all: {got} != {want}")
    if loaded is not None:
        moved = sum(a - h for a, h in zip(acc, hits)) + sum(loaded)
        got = rows.get(("cache.bytes_moved", key, "all"))
        ok &= check(got == moved * MIXTRAL_EXPERT_BYTES, f"{what}: bytes_moved {key}: {got} != {moved} experts")
    return ok


# ---------------------------------------------------------------- tests

def test_jsonl_import_replay(tmp):
    """A recorded routing log (JSON lines, shuffled, k = 2..8 per token,
    several sequences) imported with `routesim import jsonl`, replayed
    with lru, lfu, belady and sch caches: every per-layer hit rate equals
    the Python simulation's."""
    rng = np.random.default_rng(7)
    L, E, kmax = 3, 16, 8
    lens = [57, 140, 3, 96, 1, 75]
    T = sum(lens)
    ids = structured_ids(rng, T, L, E, kmax, k_min=2)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    lines = []
    for s, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
        for t in range(a, b):
            for l in range(L):
                ex = [int(e) for e in ids[t, l] if e >= 0]
                lines.append(json.dumps({"request_id": 1000 + 7 * s, "pos": int(t - a),
                                         "meta": {"layer": 2 * l + 1}, "topk_ids": ex}))
    random.Random(3).shuffle(lines)
    log = os.path.join(tmp, "hooks.jsonl.gz")
    with gzip.open(log, "wt") as f:
        f.write("\n".join(lines) + "\n")
    trace = os.path.join(tmp, "imported.h5")
    r = run(["import", "jsonl", log, "-o", trace, "--experts", str(E), "--strict",
             "--map", "seq=request_id,token=pos,layer=meta.layer,experts=topk_ids"])
    if not check(r.returncode == 0, f"import failed: {r.stderr.strip()}"):
        return
    with h5py.File(trace, "r") as f:
        stored = f["router/topk_ids"][...]
        check(np.array_equal(f["sequences/offsets"][...], offsets), "import: sequence offsets differ")
    check(stored.shape[2] == kmax and np.array_equal(stored, ids), "import: stored top-k ids differ")
    configs = [{"policy": p, "slots": c} for p in ("lru", "lfu", "belady", "sch") for c in (1, 3, 8, 12)]
    configs += [{"policy": "sch", "slots": 6, "m": m} for m in (1, 4, 64)]
    rows = run_cache(tmp, trace, configs)
    if rows is None:
        return
    for p in configs:
        acc, hits, warm, _ = simulate(ids, offsets, p["policy"], p["slots"], m=p.get("m", 16))
        compare_rates(rows, p, acc, hits, warm, "jsonl")


def test_policies_scopes_resets(tmp):
    """Every deterministic policy, both scopes and resets, variable k with
    -1 padding: hit rates, warm hit rates, bytes moved and belady_gap."""
    rng = np.random.default_rng(11)
    L, E, kmax = 3, 10, 4
    lens = [40, 90, 2, 60]
    T = sum(lens)
    ids = structured_ids(rng, T, L, E, kmax, pad=0.1)
    ids[5] = -1  # a token recorded at no layer: not observed, absent
    ids[70, 1] = -1  # one layer of a token not recorded
    offsets = np.concatenate([[0], np.cumsum(lens)])
    trace = os.path.join(tmp, "t.h5")
    write_topk_trace(trace, ids, offsets, E)
    configs = []
    for scope in ("layer", "global"):
        for reset in ("sequence", "never"):
            for p in ("lru", "lfu", "fifo", "belady", "sch", "static"):
                for c in (1, 2, 5):
                    q = {"policy": p, "slots": c, "scope": scope}
                    if reset == "never":
                        q["reset"] = reset
                    if p == "sch":
                        q["m"] = 3
                    configs.append(q)
    rows = run_cache(tmp, trace, configs)
    if rows is None:
        return
    for q in configs:
        scope, reset = q["scope"], q.get("reset", "sequence")
        if q["policy"] == "static":
            acc, hits, warm = simulate_static(ids, offsets, q["slots"], scope, reset)
            loaded = [0] * L
        else:
            acc, hits, warm, loaded = simulate(ids, offsets, q["policy"], q["slots"], scope, reset, q.get("m", 16))
        compare_rates(rows, q, acc, hits, warm, "policies", loaded)
        b_acc, b_hits, _, _ = simulate(ids, offsets, "belady", q["slots"], scope, reset)
        for l in list(range(L)) + ["all"]:
            want = (ratio(sum(b_hits), sum(b_acc)) - ratio(sum(hits), sum(acc)) if l == "all"
                    else ratio(b_hits[l], b_acc[l]) - ratio(hits[l], acc[l]))
            got = rows.get(("cache.belady_gap", key_of(q, POLICY_KEY), str(l)))
            check(got is not None and same(got, want), f"belady_gap {q} layer {l}: {got} != {want}")
            # static is preloaded with the whole trace's favourites; the global
            # pool's Belady minimises all layers' misses together, not each layer's
            if q["policy"] != "static" and (l == "all" or scope == "layer"):
                check(got is None or got >= 0, f"belady_gap {q} layer {l} is negative: {got}")


def test_curves(tmp):
    """hit_rate_curve (one pass for lru and belady, counts for static, one
    simulation per size for fifo) equals a simulation at every C."""
    rng = np.random.default_rng(5)
    L, E, kmax = 2, 9, 3
    lens = [70, 35, 50]
    ids = structured_ids(rng, sum(lens), L, E, kmax, pad=0.15)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    trace = os.path.join(tmp, "t.h5")
    write_topk_trace(trace, ids, offsets, E)
    configs = [{"policy": p, "scope": s, "curve": 1} for p in ("lru", "belady", "static", "fifo")
               for s in ("layer", "global")]
    rows = run_cache(tmp, trace, configs)
    if rows is None:
        return
    for q in configs:
        base = key_of(q, POLICY_KEY + ("curve",)).replace("slots=4;", "")
        base = ";".join(x for x in base.split(";") if not x.startswith("slots="))
        for C in range(1, E + 1):
            if q["policy"] == "static":
                acc, hits, _ = simulate_static(ids, offsets, C, q["scope"])
            else:
                acc, hits, _, _ = simulate(ids, offsets, q["policy"], C, q["scope"])
            for l in list(range(L)) + ["all"]:
                want = ratio(sum(hits), sum(acc)) if l == "all" else ratio(hits[l], acc[l])
                got = rows.get(("cache.hit_rate_curve", f"{base};slots={C}", str(l)))
                check(got is not None and same(got, want), f"curve {q} C={C} layer {l}: {got} != {want}")


def test_prefetchers(tmp):
    """prev_token, affinity and oracle_next prefetching: hit rates and
    bytes moved (prefetched experts included); a few (token, layer)s not
    recorded (prev_token then comes from the previous observed token)."""
    rng = np.random.default_rng(19)
    L, E, kmax = 3, 8, 2
    lens = [50, 80]
    ids = structured_ids(rng, sum(lens), L, E, kmax)
    ids[[7, 8, 51]] = -1
    ids[[20, 90], 1] = -1
    offsets = np.concatenate([[0], np.cumsum(lens)])
    trace = os.path.join(tmp, "t.h5")
    write_topk_trace(trace, ids, offsets, E)
    configs = [{"policy": p, "slots": c, "scope": s, "prefetch": f}
               for p in ("lru", "lfu", "belady") for c in (2, 3) for s in ("layer", "global")
               for f in ("prev_token", "affinity", "oracle_next")]
    rows = run_cache(tmp, trace, configs)
    if rows is None:
        return
    for q in configs:
        acc, hits, warm, loaded = simulate(ids, offsets, q["policy"], q["slots"], q["scope"], prefetch=q["prefetch"])
        compare_rates(rows, q, acc, hits, warm, "prefetch", loaded)
