"""Missing data, one convention for every metric (docs/metrics.md,
Conventions): a (token, layer) whose /router/topk_ids row holds -1 only
recorded nothing. `replay` marks it not observed (-3 in the first slot)
and every metric leaves it out; in sequence order the observed tokens
follow each other as if the gap were not there.

- Whole tokens recorded at no layer, inserted anywhere in a trace (runs of
  them, at sequence starts and ends, a sequence of nothing but them): every
  value of every family equals the value on the trace without them, bit
  for bit (batch_tokens covers the trace, so maxvio_batch has one batch in
  both).
- Rows missing at one layer only: each layer's values of the per-layer
  families equal that layer's values on the trace without the tokens
  missing there.
- A log that always lists 2 experts, imported from JSON lines with pairs
  missing: experts_per_token is exactly 2.
- Not observed is not "chose nothing": tokens the capacity stage dropped
  whole, a dynamic-k router's tokens without experts and rows of -1 in a
  decisions file count as tokens with 0 experts; the -3 mark survives the
  round trip through a decisions file, and a malformed mark is refused."""

import csv
import gzip
import json
import os

import h5py
import numpy as np

from interop_util import check, run

L, E, K = 3, 8, 2
LENS = [60, 1, 45, 120, 30, 2]
CACHES = [
    {"policy": "lru", "slots": 3},
    {"policy": "lfu", "slots": 2, "curve": 1},
    {"policy": "fifo", "slots": 4},
    {"policy": "belady", "slots": 3},
    {"policy": "sch", "slots": 3, "m": 4},
    {"policy": "static", "slots": 3},
    {"policy": "lru", "slots": 2, "prefetch": "prev_token"},
    {"policy": "lru", "slots": 2, "prefetch": "affinity"},
    {"policy": "belady", "slots": 2, "prefetch": "oracle_next"},
    {"policy": "lru", "slots": 3, "scope": "global", "curve": 1},
    {"policy": "sch", "slots": 2, "m": 3, "scope": "global"},
    {"policy": "belady", "slots": 2, "scope": "global", "prefetch": "prev_token"},
    {"policy": "lru", "slots": 2, "scope": "global", "prefetch": "affinity"},
    {"policy": "lru", "slots": 2, "reset": "never"},
]
# families whose layer-l values depend on layer l alone (cache: scope=layer
# without the affinity prefetcher, which learns from layer l-1)
PER_LAYER = ("load", "entropy", "activation", "locality", "srp", "sch", "specialization", "cache")


def make_base(rng):
    """Logits with locality; the recorded top-2 is the logits' top-2 except
    for a few tokens (so agreement with topk:k=2 is not trivial)."""
    T = sum(LENS)
    z = rng.normal(size=(T, L, E))
    for t in range(1, T):
        z[t] += 0.7 * z[t - 1]
    z = z.astype(np.float32)
    ids = np.argsort(-z, axis=-1, kind="stable")[:, :, :K].astype(np.int32)
    swap = rng.random((T, L)) < 0.1
    ids[swap, 1] = (ids[swap, 1] + 1 + rng.integers(0, E - 2, size=swap.sum())) % E
    ids[ids[:, :, 1] == ids[:, :, 0], 1] = (ids[ids[:, :, 1] == ids[:, :, 0], 0] + 1) % E
    w = np.sort(rng.random((T, L, K)).astype(np.float32), axis=-1)[:, :, ::-1].copy()
    token_ids = (rng.zipf(1.3, size=T) % 30).astype(np.int32)
    return {"lens": list(LENS), "logits": z, "ids": ids, "weights": w, "token_ids": token_ids,
            "domains": np.array([2, 0, 1, 2, 0, 1], np.int32)}


def write(path, tr):
    T = sum(tr["lens"])
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "routesim-trace", "format_version": 1, "num_layers": L, "num_experts": E,
                        "unit": "token", "top_k": K, "scoring": "softmax", "norm_topk": 1})
        f.create_dataset("router/logits", data=tr["logits"])
        f.create_dataset("router/topk_ids", data=tr["ids"])
        f.create_dataset("router/topk_weights", data=tr["weights"])
        f.create_dataset("tokens/ids", data=tr["token_ids"])
        f.create_dataset("sequences/offsets", data=np.concatenate([[0], np.cumsum(tr["lens"])]).astype(np.int64))
        f.create_dataset("sequences/domain", data=tr["domains"])
    assert T == len(tr["ids"])


def with_gaps(rng, tr, where):
    """tr with a token recorded at no layer inserted before each global
    index in `where` (several at one index make a run); each inserted token
    joins the sequence of the token it precedes (the last sequence at the
    end), and (-1, index) appends a sequence holding one such token."""
    T = sum(tr["lens"])
    seq_of = np.repeat(np.arange(len(tr["lens"])), tr["lens"])
    rows = {"logits": [], "ids": [], "weights": [], "token_ids": []}
    lens = list(tr["lens"])
    extra_seq = [i for s, i in where if s == -1]
    inserts = sorted(i for s, i in where if s != -1)
    j = 0
    for t in range(T + 1):
        while j < len(inserts) and inserts[j] == t:
            s = seq_of[t] if t < T else len(lens) - 1
            lens[s] += 1
            rows["logits"].append(rng.normal(size=(L, E)).astype(np.float32) * 3)
            rows["ids"].append(np.full((L, K), -1, np.int32))
            rows["weights"].append(np.zeros((L, K), np.float32))
            rows["token_ids"].append(int(rng.integers(0, 30)))
            j += 1
        if t < T:
            for k in rows:
                rows[k].append(tr[k][t])
    out = {k: np.asarray(v) for k, v in rows.items()}
    out["lens"] = lens
    out["domains"] = tr["domains"]
    for _ in extra_seq:  # a sequence of nothing but a token recorded at no layer
        out["lens"].append(1)
        out["logits"] = np.concatenate([out["logits"], rng.normal(size=(1, L, E)).astype(np.float32)])
        out["ids"] = np.concatenate([out["ids"], np.full((1, L, K), -1, np.int32)])
        out["weights"] = np.concatenate([out["weights"], np.zeros((1, L, K), np.float32)])
        out["token_ids"] = np.concatenate([out["token_ids"], [3]]).astype(np.int32)
        out["domains"] = np.concatenate([out["domains"], [1]]).astype(np.int32)
    return out


def drop_tokens(tr, keep):
    """tr restricted to the tokens where keep is true (sequences shrink; an
    emptied sequence stays, with length 0)."""
    seq_of = np.repeat(np.arange(len(tr["lens"])), tr["lens"])
    out = {k: tr[k][keep] for k in ("logits", "ids", "weights", "token_ids")}
    out["lens"] = [int((keep & (seq_of == s)).sum()) for s in range(len(tr["lens"]))]
    out["domains"] = tr["domains"]
    return out


def results(tmp, name, trace, routers=("replay",), reference="topk:k=2", extra_metrics=()):
    """{(run, metric, key, layer): value string} of every family on trace."""
    metrics = [
        "load", {"name": "entropy", "params": {"q": [0.5, 1.1]}}, "activation", "locality", "affinity",
        {"name": "specialization", "params": {"min_count": 3}},
        {"name": "srp", "params": {"m": [1, 4, 16]}},
        {"name": "sch", "params": {"m": [1, 4], "rho": [1, 2]}},
        "agreement",
    ] + [{"name": "cache", "params": p} for p in CACHES] + list(extra_metrics)
    config = os.path.join(tmp, name + ".json")
    out = os.path.join(tmp, name)
    with open(config, "w") as f:
        json.dump({"name": name, "traces": [trace], "routers": list(routers), "metrics": metrics,
                   "reference": reference, "batch_tokens": 100000}, f)
    r = run(["run", config, "--output", out, "--threads", "2", "--chunk-tokens", "37", "-q"])
    if not check(r.returncode == 0, f"{name}: run failed: {r.stderr.strip()}"):
        return None
    rows = {}
    with open(os.path.join(out, "results.csv"), newline="") as f:
        for row in csv.DictReader(f):
            rows[(row["run"], row["metric"], row["key"], row["layer"])] = row["value"]
    return rows


def same_rows(got, want, what, only=None):
    """Every row of want (filtered by only) is in got with the same value."""
    n = 0
    for key, v in want.items():
        if only and not only(key):
            continue
        n += 1
        check(got.get(key) == v, f"{what}: {key}: {got.get(key)} with the gaps, {v} without")
    return n


def test_unobserved_tokens_change_no_metric(tmp):
    rng = np.random.default_rng(5)
    base = make_base(rng)
    seq_starts = np.concatenate([[0], np.cumsum(LENS)])[:-1]
    where = [(0, 0), (0, 0), (0, 7), (0, 7), (0, 7), (0, int(seq_starts[2])), (0, int(seq_starts[3]) + 50),
             (0, int(seq_starts[4])), (0, int(seq_starts[4]) - 1), (0, sum(LENS)), (0, 150), (0, 151),
             (-1, 0)]
    gappy = with_gaps(rng, base, where)
    a, b = os.path.join(tmp, "whole.h5"), os.path.join(tmp, "gappy.h5")
    write(a, base)
    write(b, gappy)
    want, got = results(tmp, "whole", a), results(tmp, "gappy", b)
    if want is None or got is None:
        return
    check(set(got) == set(want), f"rows differ: only with gaps {sorted(set(got) - set(want))[:5]}, "
                                 f"only without {sorted(set(want) - set(got))[:5]}")
    n = same_rows(got, want, "whole tokens not observed")
    families = {k[1].split(".")[0] for k in want}
    check(families >= {"load", "entropy", "activation", "locality", "affinity", "specialization", "srp", "sch",
                       "agreement", "cache"}, f"families compared: {sorted(families)}")
    check(n > 500, f"only {n} values compared")
    for layer in ("0", "1", "2", "all"):
        check(want.get(("replay", "activation.experts_per_token", "", layer)) == "2",
              f"experts_per_token layer {layer}: {want.get(('replay', 'activation.experts_per_token', '', layer))}")


def test_rows_missing_at_one_layer(tmp):
    rng = np.random.default_rng(9)
    base = make_base(rng)
    T = sum(LENS)
    gappy = {k: (v.copy() if isinstance(v, np.ndarray) else list(v)) for k, v in base.items()}
    missing = rng.random((T, L)) < 0.15
    missing[0, 1] = missing[59, 2] = missing[60, 0] = True  # a sequence's ends, a sequence of one token
    missing[100:104, 0] = True  # a run
    gappy["ids"][missing] = -1
    gappy["weights"][missing] = 0
    path = os.path.join(tmp, "gappy.h5")
    write(path, gappy)
    got = results(tmp, "gappy", path)
    if got is None:
        return
    for l in range(L):
        part = os.path.join(tmp, f"without{l}.h5")
        write(part, drop_tokens(base, ~missing[:, l]))
        want = results(tmp, f"without{l}", part)
        if want is None:
            continue

        def layer_l(key, l=l):
            family = key[1].split(".")[0]
            if key[3] != str(l) or family not in PER_LAYER:
                return False
            return family != "cache" or ("scope=global" not in key[2] and "prefetch=affinity" not in key[2])

        n = same_rows(got, want, f"layer {l} missing", only=layer_l)
        caches = sum(1 for k in want if layer_l(k) and k[1].startswith("cache."))
        check(n > 80 and caches > 40, f"layer {l}: only {n} values compared ({caches} of caches)")


def test_imported_log_keeps_its_k(tmp):
    """A Mixtral-like log: 2 experts in every line, 8% of the (token,
    layer) pairs have no line. Imported, replayed: experts_per_token is 2
    at every layer, the k=2 share 1."""
    rng = np.random.default_rng(13)
    lines, missing = [], 0
    for seq, n in enumerate([40, 7, 90]):
        for pos in range(n):
            for layer in range(4):
                if rng.random() < 0.08 and not (pos == 0 and layer == 0):
                    missing += 1
                    continue
                ex = [int(e) for e in rng.choice(8, size=2, replace=False)]
                lines.append(json.dumps({"seq": f"req-{seq}", "token": pos, "layer": layer, "experts": ex,
                                         "weights": [0.6, 0.4]}))
    log = os.path.join(tmp, "mixtral.jsonl.gz")
    with gzip.open(log, "wt") as f:
        f.write("\n".join(lines) + "\n")
    trace = os.path.join(tmp, "mixtral.h5")
    r = run(["import", "jsonl", log, "-o", trace, "--experts", "8", "--top-k", "2"])
    if not check(r.returncode == 0, f"import failed: {r.stderr.strip()}"):
        return
    check(missing > 0 and "missing (token, layer) pairs" in r.stderr, f"import report: {r.stderr.strip()}")
    csv_path = os.path.join(tmp, "mixtral.csv")
    r = run(["route", trace, "--router", "replay", "--metrics", "activation,srp,locality", "--csv", csv_path])
    if not check(r.returncode == 0, f"route failed: {r.stderr.strip()}"):
        return
    with open(csv_path, newline="") as f:
        rows = {(row["metric"], row["key"], row["layer"]): float(row["value"]) for row in csv.DictReader(f)}
    for layer in ("0", "1", "2", "3", "all"):
        check(rows.get(("activation.experts_per_token", "", layer)) == 2.0,
              f"experts_per_token layer {layer}: {rows.get(('activation.experts_per_token', '', layer))}")
        check(rows.get(("activation.experts_per_token_hist", "k=2", layer)) == 1.0,
              f"k=2 share layer {layer}: {rows.get(('activation.experts_per_token_hist', 'k=2', layer))}")
        check(rows.get(("activation.compute_ratio", "", layer)) == 1.0, f"compute_ratio layer {layer}")


def activation_of(tmp, name, trace, router):
    """experts_per_token and the k=0 share of layer 0, and the decisions."""
    csv_path, dec = os.path.join(tmp, name + ".csv"), os.path.join(tmp, name + "-dec.h5")
    r = run(["route", trace, "--router", router, "--metrics", "activation", "--csv", csv_path, "--out", dec])
    if not check(r.returncode == 0, f"{name}: route {router} failed: {r.stderr.strip()}"):
        return None
    with open(csv_path, newline="") as f:
        rows = {(row["metric"], row["key"], row["layer"]): float(row["value"]) for row in csv.DictReader(f)}
    with h5py.File(dec, "r") as f:
        ids = f["decisions/ids"][...]
    return rows, ids, dec


def expected_activation(ids, layer):
    """Mean k and share of k = 0 over the rows of the layer not marked -3."""
    rows = ids[:, layer]
    rows = rows[rows[:, 0] != -3]
    k = (rows >= 0).sum(-1)
    return k.mean(), (k == 0).mean()


def test_chose_nothing_is_not_missing(tmp):
    rng = np.random.default_rng(17)
    base = make_base(rng)
    T = sum(LENS)
    base["ids"][rng.random((T, L)) < 0.1] = -1  # recorded nothing
    trace = os.path.join(tmp, "t.h5")
    write(trace, base)
    cases = [
        ("replay", "replay", False),
        # the capacity stage drops whole tokens: real tokens with 0 experts
        ("capacity", "replay:capacity_factor=0.3", True),
        # a dynamic-k router giving some tokens no expert
        ("null", "null_experts:c=0.8,n_null=8", True),
    ]
    for name, router, zero_expected in cases:
        got = activation_of(tmp, name, trace, router)
        if got is None:
            continue
        rows, ids, dec = got
        marked = (ids[:, :, 0] == -3)
        if router.startswith("replay"):
            check(np.array_equal(marked, (base["ids"] < 0).all(-1)), f"{name}: -3 marks the recorded rows of -1")
        else:
            check(not marked.any(), f"{name}: a router on logits marks nothing")
        for l in range(L):
            mean_k, zero = expected_activation(ids, l)
            check(abs(rows[("activation.experts_per_token", "", str(l))] - mean_k) < 1e-12,
                  f"{name} layer {l}: experts_per_token {rows[('activation.experts_per_token', '', str(l))]} "
                  f"!= {mean_k}")
            check(abs(rows[("activation.experts_per_token_hist", "k=0", str(l))] - zero) < 1e-12,
                  f"{name} layer {l}: k=0 share")
            check((zero > 0) == zero_expected, f"{name} layer {l}: k=0 share {zero}")
        # the decisions file replays to the same numbers: -3 stays not observed, -1 rows stay 0-expert tokens
        again = activation_of(tmp, name + "-again", trace, f"replay:decisions={dec}")
        if again is not None:
            for key, v in rows.items():
                check(again[0].get(key) == v, f"{name} replayed from its decisions file: {key}")
    # a mark followed by an expert is refused, naming the file and the field
    with h5py.File(dec, "a") as f:
        bad = f["decisions/ids"][...]
        bad[4, 1, :2] = [-3, 5]
        f["decisions/ids"][...] = bad
    r = run(["route", trace, "--router", f"replay:decisions={dec}", "--metrics", "activation"], expect_failure=True)
    check(r.returncode != 0 and "/decisions/ids" in r.stderr and "token 4, layer 1" in r.stderr
          and "not observed" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
          f"a malformed mark: exit {r.returncode}, {r.stderr.strip()}")


def test_skipped_tokens_marked_in_decisions(tmp):
    """A token skipped for a NaN logit gets rows marked -3 in the decisions
    file; replaying the file (no logits read, so nothing is skipped) gives
    the same activation and locality values: the mark keeps it missing."""
    rng = np.random.default_rng(23)
    base = make_base(rng)
    base["logits"][[3, 64, 65], 1, 2] = np.nan
    trace = os.path.join(tmp, "nan.h5")
    write(trace, base)
    first = os.path.join(tmp, "first.csv")
    dec = os.path.join(tmp, "first-dec.h5")
    r = run(["route", trace, "--router", "topk:k=2", "--skip-nonfinite", "--metrics", "activation,locality,srp",
             "--csv", first, "--out", dec])
    if not check(r.returncode == 0, f"route failed: {r.stderr.strip()}"):
        return
    with h5py.File(dec, "r") as f:
        ids = f["decisions/ids"][...]
    marked = ids[:, :, 0] == -3
    check(sorted(set(np.nonzero(marked)[0].tolist())) == [3, 64, 65] and marked[[3, 64, 65]].all()
          and (ids[marked][:, 1:] == -1).all(), "skipped tokens: rows -3, -1 at every layer")
    again = os.path.join(tmp, "again.csv")
    r = run(["route", trace, "--router", f"replay:decisions={dec}", "--metrics", "activation,locality,srp",
             "--csv", again])
    if not check(r.returncode == 0, f"replay failed: {r.stderr.strip()}"):
        return

    def values(path):
        with open(path, newline="") as f:
            return {(row["metric"], row["key"], row["layer"]): row["value"] for row in csv.DictReader(f)}

    a, b = values(first), values(again)
    check(len(a) > 20 and a == b, f"replayed decisions differ: {[k for k in a if a[k] != b.get(k)][:5]}")
    check(a[("activation.experts_per_token", "", "all")] == "2", "skipped tokens are not 0-expert tokens")
