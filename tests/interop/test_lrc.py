"""Local routing consistency (srp, sch) end to end: a trace written with
h5py (sequences shorter and longer than the windows, NaN tokens skipped,
recorded top-k with -1 padding and rows of -1 only), measured by the binary
in chunks of 13 tokens on two threads, against straightforward numpy/Python
versions of the definitions in docs/metrics.md (section "Local routing
consistency"). Skipped tokens and recorded rows of -1 only (replayed as -3,
not observed) are absent: windows and look-aheads run over the observed
tokens of each layer. The Python code follows the definitions one window /
one token at a time and shares nothing with the C code (which counts
windows incrementally and keeps the cache in a heap)."""

import csv
import math
import os

import h5py
import numpy as np

from interop_util import check, route_decisions, run, write_logits_trace

OFFSETS = [0, 3, 40, 41, 130, 160, 300]
T, L, E, K = OFFSETS[-1], 3, 16, 4
NAN_TOKENS = [5, 6, 77, 299]
SRP_M = [1, 3, 8, 32]
SCH_M = [1, 5]
SCH_RHO = [1, 2]


def sequences():
    return [(OFFSETS[s], OFFSETS[s + 1]) for s in range(len(OFFSETS) - 1)]


def selections(ids, t, l):
    """The experts token t selects at layer l: -1 padding dropped, repeats once."""
    out = []
    for e in ids[t, l]:
        if 0 <= e < E and e not in out:
            out.append(int(e))
    return out


def observed(ids, valid):
    """[T, L]: the token was valid and its row is not marked -3 (not observed;
    the engine marks skipped tokens' rows too)."""
    return valid[:, None] & (ids[:, :, 0] != -3)


def srp_reference(ids, seen, m):
    """H[l][f] = (window, expert) pairs with count f over windows of m
    observed tokens of one sequence; SRP = max_alpha 2 M / (P + A) (first
    alpha on ties), rho_hat = P(alpha*) / A; the model level sums H over
    layers."""
    H = np.zeros((L, m + 1), np.int64)
    for a, b in sequences():
        for l in range(L):
            toks = [t for t in range(a, b) if seen[t, l]]
            for w in range(len(toks) - m + 1):
                f = np.zeros(E, np.int64)
                for t in toks[w:w + m]:
                    for e in selections(ids, t, l):
                        f[e] += 1
                H[l] += np.bincount(f, minlength=m + 1)

    def best(h):
        acts = int(sum(f * int(h[f]) for f in range(m + 1)))
        if h.sum() == 0 or acts == 0:
            return math.nan, math.nan
        top = None
        for alpha in range(m + 1):
            matches = sum(f * int(h[f]) for f in range(alpha, m + 1))
            preds = m * int(h[alpha:].sum())
            f1 = 2 * matches / (preds + acts)
            if top is None or f1 > top[0]:
                top = (f1, preds / acts)
        return top

    return {l: best(H[l]) for l in range(L)} | {"all": best(H.sum(0))}


def sch_sequence(batches, slots, m):
    """calc_fsf's rule for one sequence: hits decided at the start of a token
    (warm start: a first use while fewer than C distinct experts were used
    is a hit), then each id enters in order, evicting the cached expert with
    the lowest (uses in tokens t..t+m-1 not yet made, last access)."""
    uses, last = {}, {}
    for batch in batches[:m]:
        for x in batch:
            uses[x] = uses.get(x, 0) + 1
    cache, seen, hits, accesses, clock = set(), set(), 0, 0, 0
    for i, batch in enumerate(batches):
        for x in batch:
            accesses += 1
            if x in cache:
                hits += 1
            elif x not in seen:
                hits += len(seen) < slots
            seen.add(x)
        for x in batch:
            if x not in cache:
                if len(cache) >= slots:
                    cache.remove(min(cache, key=lambda y: (uses[y], last[y])))
                cache.add(x)
            uses[x] -= 1
            clock += 1
            last[x] = clock
        if i + m < len(batches):
            for x in batches[i + m]:
                uses[x] = uses.get(x, 0) + 1
    return hits, accesses


def sch_reference(ids, seen, k, rho, m):
    """Per layer: mean over sequences of hits / accesses with C = rho k over
    the tokens observed at the layer; "all": one cache of rho k L slots over
    ids l * E + e, a token's ids at every layer in one batch, over the tokens
    observed at some layer."""
    C = round(rho * k)
    out = {}
    for layer in list(range(L)) + ["all"]:
        rates = []
        for a, b in sequences():
            if layer == "all":
                toks = [t for t in range(a, b) if seen[t].any()]
                batches = [[l * E + e for l in range(L) for e in selections(ids, t, l)] for t in toks]
                hits, n = sch_sequence(batches, min(C * L, E * L), m)
            else:
                toks = [t for t in range(a, b) if seen[t, layer]]
                hits, n = sch_sequence([selections(ids, t, layer) for t in toks], min(C, E), m)
            if n:
                rates.append(hits / n)
        out[layer] = math.fsum(rates) / len(rates) if rates else math.nan
    return out


def read_results(path):
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            layer = r["layer"] if r["layer"] == "all" else int(r["layer"])
            rows[(r["run"], r["metric"], r["key"], layer)] = float(r["value"])
    return rows


def same(got, want, tol):
    if math.isnan(want):
        return got is not None and math.isnan(got)
    return got is not None and abs(got - want) <= tol


def test_srp_and_sch_match_python(tmp):
    rng = np.random.default_rng(11)
    # a slowly drifting latent per sequence gives local consistency worth measuring
    z = rng.normal(size=(T, L, E)).astype(np.float32)
    for a, b in sequences():
        drift = rng.normal(size=(L, E))
        for t in range(a, b):
            drift = 0.9 * drift + 0.45 * rng.normal(size=(L, E))
            z[t] += (1.5 * drift).astype(np.float32)
    for t in NAN_TOKENS:
        z[t, 1, 3] = np.nan
    recorded = np.full((T, L, K), -1, np.int32)
    for t in range(T):
        for l in range(L):
            n = int(rng.integers(0, K + 1))
            recorded[t, l, :n] = rng.choice(E, size=n, replace=False)
    path = os.path.join(tmp, "lrc.h5")
    write_logits_trace(path, z, OFFSETS, top_k=2, scoring="softmax", norm_topk=1)
    with h5py.File(path, "a") as f:
        f.create_dataset("router/topk_ids", data=recorded)
    valid = np.isfinite(z).all(axis=(1, 2))

    routers = {"topk:k=2": 2, "replay": K, "topp:p=0.6": 2}  # topp's rows hold every expert: the trace's top_k
    config = os.path.join(tmp, "lrc.json")
    out = os.path.join(tmp, "out")
    with open(config, "w") as f:
        f.write('{"name": "lrc", "traces": ["%s"], "routers": ["topk:k=2", "replay", "topp:p=0.6"], '
                '"metrics": [{"name": "srp", "params": {"m": %s}}, {"name": "sch", "params": {"m": %s, "rho": %s}}], '
                '"output": "%s"}' % (path, SRP_M, SCH_M, SCH_RHO, out))
    r = run(["run", config, "--chunk-tokens", "13", "--threads", "2", "--skip-nonfinite", "-q"])
    if not check(r.returncode == 0, f"routesim run failed: {r.stderr.strip()}"):
        return
    rows = read_results(os.path.join(out, "results.csv"))
    for spec, k in routers.items():
        got = route_decisions(path, spec, tmp, spec.replace(":", "_").replace("=", "_"), ["--skip-nonfinite"])
        if got is None:
            continue
        ids = got[0]
        seen = observed(ids, valid)
        # replay alone reads no logits, so its own route skips nothing
        want = (recorded < 0).all(-1) if spec == "replay" else np.repeat(~valid[:, None], L, axis=1)
        check(np.array_equal(ids[:, :, 0] == -3, want),
              f"{spec}: rows marked not observed: " + ("rows of -1" if spec == "replay" else "skipped tokens"))
        for m in SRP_M:
            want = srp_reference(ids, seen, m)
            for layer, (srp, rho_hat) in want.items():
                g = rows.get((spec, "srp.srp", f"m={m}", layer))
                check(same(g, srp, 0.0), f"{spec} srp m={m} layer {layer}: routesim {g}, python {srp}")
                g = rows.get((spec, "srp.rho_hat", f"m={m}", layer))
                check(same(g, rho_hat, 0.0), f"{spec} rho_hat m={m} layer {layer}: routesim {g}, python {rho_hat}")
            if m == 1:
                check(want["all"][0] == 1.0, f"{spec}: SRP at m=1 should be 1, python says {want['all'][0]}")
        for m in SCH_M:
            for rho in SCH_RHO:
                want = sch_reference(ids, seen, k, rho, m)
                for layer, v in want.items():
                    g = rows.get((spec, "sch.sch", f"m={m};rho={rho}", layer))
                    check(same(g, v, 1e-15), f"{spec} sch m={m} rho={rho} layer {layer}: routesim {g}, python {v}")
