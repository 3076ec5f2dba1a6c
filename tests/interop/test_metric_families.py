"""Differential tests of the metric families activation, entropy, locality,
affinity and specialization: every value routesim files in results.csv is
recomputed here with plain numpy/Python from the decisions file routesim
wrote (`route --out`) and the trace, following docs/metrics.md.

One token has a NaN logit and is skipped (--skip-nonfinite): it must count
nowhere. Values computed from decisions (counts) must agree to 1e-12 relative.
entropy's router_entropy, tsallis_entropy, z_loss and selected_mass come
from the engine's float32 softmax (about 1e-7 relative), so they are
compared to 1e-5; topk_margin uses the raw float32 logits and must agree to
1e-12."""

import csv
import math
import os

import h5py
import numpy as np

from interop_util import check, run, tied_logits

T, L, E, TOP_K = 1500, 3, 8, 2
OFFSETS = [0, 400, 401, 402, 900, 1337, 1500]  # two sequences of length 1
DOMAINS = [3, 1, 3, 0, 1, 3]
SKIPPED = 777  # its logits hold a NaN
VALID = np.arange(T) != SKIPPED
FAMILIES = ("activation", "entropy", "locality", "affinity", "specialization")
SOFTMAX_OUTPUTS = ("router_entropy", "tsallis_entropy", "z_loss", "selected_mass")


def write_trace(path, logits, token_ids):
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "routesim-trace"
        f.attrs["format_version"] = 1
        f.attrs["num_layers"] = L
        f.attrs["num_experts"] = E
        f.attrs["unit"] = "token"
        f.attrs["top_k"] = TOP_K
        f.create_dataset("router/logits", data=logits.astype(np.float32), chunks=(100, L, E))
        f.create_dataset("sequences/offsets", data=np.asarray(OFFSETS, np.int64))
        f.create_dataset("sequences/domain", data=np.asarray(DOMAINS, np.int32))
        f.create_dataset("tokens/ids", data=np.asarray(token_ids, np.int32))


def make_trace(tmp):
    rng = np.random.default_rng(41)
    z = tied_logits(rng, (T, L, E), quantum=0.5)
    # layer l+1 leans on layer l and tokens on their predecessor, so affinity
    # and locality are far from their independent values
    for l in range(1, L):
        z[:, l] += 1.5 * z[:, l - 1]
    z[1:] += 0.8 * z[:-1]
    z = (np.round(z * 2) / 2).astype(np.float32)
    z[SKIPPED, 1, 3] = np.nan
    token_ids = rng.zipf(1.3, size=T) % 40
    path = os.path.join(tmp, "families.h5")
    write_trace(path, z, token_ids)
    return path, z, token_ids


def read_results(path):
    """{(metric, key, layer): value} with layer -1 for 'all'."""
    rows = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["metric"].split(".")[0] in FAMILIES:
                layer = -1 if r["layer"] == "all" else int(r["layer"])
                rows[(r["metric"], r["key"], layer)] = float(r["value"])
    return rows


def sequences():
    return [(OFFSETS[s], OFFSETS[s + 1]) for s in range(len(OFFSETS) - 1)]


def selection(ids, t, l):
    """The set S_t at layer l (a repeated id counts once)."""
    return {int(e) for e in ids[t, l] if e >= 0}


def per_layer_mean(values):
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def add_layers(expected, metric, key, values, all_value=None):
    for l, v in enumerate(values):
        expected[(metric, key, l)] = v
    expected[(metric, key, -1)] = per_layer_mean(values) if all_value is None else all_value


def softmax(z):
    z = z.astype(np.float64)
    m = z.max(-1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(-1, keepdims=True)
    return e / s, (m + np.log(s))[..., 0]


def expect_activation(exp, ids):
    kmax = ids.shape[2]
    k = (ids >= 0).sum(-1)[VALID]  # [valid T, L]
    n = len(k)
    add_layers(exp, "activation.experts_per_token", "", [k[:, l].sum() / n for l in range(L)])
    add_layers(exp, "activation.compute_ratio", "", [k[:, l].sum() / (n * TOP_K) for l in range(L)])
    for b in range(kmax + 1):
        add_layers(exp, "activation.experts_per_token_hist", f"k={b}", [(k[:, l] == b).sum() / n for l in range(L)])


def expect_entropy(exp, ids, z, requested):
    p, lse = softmax(z[VALID])
    ids, z, requested = ids[VALID], z[VALID], requested[VALID]
    n = len(ids)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0).sum(-1) / math.log(E)
    q = 1.1
    tsallis = (1 - (p ** q).sum(-1)) / (1 - E ** (1 - q))
    mass = np.zeros((n, L))
    margins = [[] for _ in range(L)]
    for t in range(n):
        for l in range(L):
            mass[t, l] = sum(p[t, l, e] for e in ids[t, l] if e >= 0)
            k = requested[t, l]
            if 1 <= k < E:
                row = np.sort(z[t, l].astype(np.float64))[::-1]
                margins[l].append(row[k - 1] - row[k])
    add_layers(exp, "entropy.router_entropy", "", list(h.mean(0)))
    add_layers(exp, "entropy.tsallis_entropy", "q=1.1", list(tsallis.mean(0)))
    add_layers(exp, "entropy.z_loss", "", list((lse ** 2).mean(0)))
    add_layers(exp, "entropy.selected_mass", "", list(mass.mean(0)))
    add_layers(exp, "entropy.topk_margin", "", [float(np.mean(m)) if m else math.nan for m in margins])


def bin_key(d):
    b = d.bit_length() - 1
    return "d=1" if b == 0 else f"d={1 << b}-{(1 << (b + 1)) - 1}"


def expect_locality(exp, ids):
    """The skipped token is absent: its neighbours are consecutive, and
    distances count the sequence's other tokens."""
    overlap, jaccard, reuse = [], [], []
    for l in range(L):
        ov, jc, counts = [], [], {}
        for a, b in sequences():
            last = {}
            toks = [t for t in range(a, b) if VALID[t]]
            for i, t in enumerate(toks):
                cur = selection(ids, t, l)
                for e in cur:
                    key = bin_key(i - last[e]) if e in last else "d=first"
                    counts[key] = counts.get(key, 0) + 1
                    last[e] = i
                if i > 0:
                    prev = selection(ids, toks[i - 1], l)
                    if prev or cur:
                        inter = len(prev & cur)
                        ov.append(inter / max(len(prev), len(cur)))
                        jc.append(inter / len(prev | cur))
        overlap.append(sum(ov) / len(ov) if ov else math.nan)
        jaccard.append(sum(jc) / len(jc) if jc else math.nan)
        reuse.append(counts)
    add_layers(exp, "locality.adjacent_overlap", "", overlap)
    add_layers(exp, "locality.adjacent_jaccard", "", jaccard)
    top = max((int(k.split("=")[1].split("-")[0]).bit_length() - 1 for c in reuse for k in c if k != "d=first"),
              default=-1)
    keys = [bin_key(1 << b) for b in range(top + 1)] + ["d=first"]
    pooled = {k: sum(c.get(k, 0) for c in reuse) for k in keys}
    for key in keys:
        values = [c.get(key, 0) / sum(c.values()) for c in reuse]
        add_layers(exp, "locality.reuse_distance", key, values, pooled[key] / sum(pooled.values()))


def expect_affinity(exp, ids, successors):
    h_values, pred_values = [], []
    for l in range(L - 1):
        A = np.zeros((E, E), np.int64)
        for t in range(T):
            for i in ids[t, l]:
                if i >= 0:
                    for j in ids[t, l + 1]:
                        if j >= 0:
                            A[i, j] += 1
        total = A.sum()
        h = 0.0
        covered = 0
        for i in range(E):
            row = A[i]
            if row.sum() == 0:
                continue
            h += sum(c * math.log(row.sum() / c) for c in row if c > 0)
            covered += np.sort(row)[::-1][:successors].sum()
        h_values.append(h / total / math.log(E))
        pred_values.append(covered / total)
    for l, (h, c) in enumerate(zip(h_values, pred_values)):
        exp[("affinity.layer_affinity", "", l)] = h
        exp[("affinity.affinity_predictability", "", l)] = c
    exp[("affinity.layer_affinity", "", -1)] = per_layer_mean(h_values)
    exp[("affinity.affinity_predictability", "", -1)] = per_layer_mean(pred_values)
    pairs_total = E * (E - 1) // 2
    entropies = []
    for l in range(L):
        pairs = {}
        for t in range(T):
            s = sorted(selection(ids, t, l))
            for x in range(len(s)):
                for y in range(x + 1, len(s)):
                    pairs[(s[x], s[y])] = pairs.get((s[x], s[y]), 0) + 1
        n = sum(pairs.values())
        entropies.append(sum(c * math.log(n / c) for c in pairs.values()) / n / math.log(pairs_total)
                         if n else math.nan)
    add_layers(exp, "affinity.coactivation_entropy", "", entropies)


def top1(ids, w, t, l):
    """The kept expert with the largest weight, ties to the earlier slot; None when nothing is kept."""
    best = None
    for j in range(ids.shape[2]):
        if ids[t, l, j] >= 0 and (best is None or w[t, l, j] > w[t, l, best]):
            best = j
    return None if best is None else int(ids[t, l, best])


def expect_specialization(exp, ids, w, token_ids, min_count=20, average="token"):
    key = f"average={average};min_count={min_count}"
    values = []
    for l in range(L):
        counts = {}
        for t in np.nonzero(VALID)[0]:
            e = top1(ids, w, t, l)
            c = counts.setdefault(int(token_ids[t]), {})
            c[e] = c.get(e, 0) + 1
        shares, by_expert = [], {}
        for v in sorted(counts):
            n = sum(counts[v].values())
            if n < min_count:
                continue
            experts = {e: c for e, c in counts[v].items() if e is not None}
            best = max(experts.values(), default=0)
            shares.append(best / n)
            if best > 0:
                fav = min(e for e, c in experts.items() if c == best)
                by_expert.setdefault(fav, []).append(best / n)
        if average == "token":
            values.append(sum(shares) / len(shares) if shares else math.nan)
        else:
            means = [sum(s) / len(s) for s in by_expert.values()]
            values.append(sum(means) / len(means) if means else math.nan)
    add_layers(exp, "specialization.vocab_specialization", key, values)
    # domain_specialization: frequency of each expert per domain label
    dom_values = []
    labels = sorted(set(d for d in DOMAINS if d >= 0))
    for l in range(L):
        tokens = {d: 0 for d in labels}
        active = {d: np.zeros(E) for d in labels}
        for s, (a, b) in enumerate(sequences()):
            for t in range(a, b):
                if not VALID[t]:
                    continue
                tokens[DOMAINS[s]] += 1
                for e in ids[t, l]:
                    if e >= 0:
                        active[DOMAINS[s]][e] += 1
        cvs = []
        for e in range(E):
            f = np.array([active[d][e] / tokens[d] for d in labels if tokens[d] > 0])
            if f.mean() > 0:
                cvs.append(f.std() / f.mean())
        dom_values.append(sum(cvs) / len(cvs) if cvs else math.nan)
    add_layers(exp, "specialization.domain_specialization", "", dom_values)


def close(got, want, metric):
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    rel = 1e-5 if metric.split(".")[1] in SOFTMAX_OUTPUTS else 1e-12
    return abs(got - want) <= rel * max(abs(want), 1e-300) + (1e-6 if rel > 1e-12 else 0)


def compare(got, exp, what):
    for k, want in exp.items():
        if not check(k in got, f"{what}: results.csv lacks {k}"):
            continue
        check(close(got[k], want, k[0]), f"{what}: {k} = {got[k]!r}, numpy {want!r}")
    for k in got:
        check(k in exp, f"{what}: unexpected row {k}")


def test_families_match_numpy(tmp):
    path, z, token_ids = make_trace(tmp)
    # switch's capacity stage drops tokens: requested k stays 1 (topk_margin)
    for spec, fixed_request in (("topk:k=2", None), ("topp:p=0.5", None), ("switch:capacity_factor=0.7", 1),
                                ("relu", None)):
        name = spec.split(":")[0]
        dec = os.path.join(tmp, name + "_dec.h5")
        out = os.path.join(tmp, name + "_results.csv")
        r = run(["route", path, "--router", spec, "--out", dec, "--csv", out, "--chunk-tokens", "97",
                 "--metrics", ",".join(FAMILIES), "--skip-nonfinite", "--no-progress"])
        if not check(r.returncode == 0, f"route {spec}: {r.stderr.strip()}"):
            continue
        with h5py.File(dec, "r") as f:
            ids = f["decisions/ids"][...]
            w = f["decisions/weights"][...]
        kept = (ids >= 0).sum(-1)
        requested = np.full((T, L), fixed_request) if fixed_request else kept
        exp = {}
        expect_activation(exp, ids)
        expect_entropy(exp, ids, z, requested)
        expect_locality(exp, ids)
        expect_affinity(exp, ids, successors=ids.shape[2])
        expect_specialization(exp, ids, w, token_ids)
        got = read_results(out)
        check(("specialization.vocab_specialization", "average=token;min_count=20", -1) in got,
              f"{spec}: vocab_specialization missing")
        compare(got, exp, spec)


def test_parameters_match_numpy(tmp):
    """Non-default parameters through a config: q, k, successors, min_count, average."""
    path, z, token_ids = make_trace(tmp)
    config = os.path.join(tmp, "params.json")
    with open(config, "w") as f:
        f.write('{"name": "p", "traces": ["%s"], "routers": ["topk:k=3"], "metrics": ['
                '{"name": "entropy", "params": {"q": 2.5, "k": 1}}, '
                '{"name": "affinity", "params": {"successors": 1}}, '
                '{"name": "specialization", "params": {"min_count": 5, "average": "expert"}}]}' % path)
    out = os.path.join(tmp, "params_out")
    r = run(["run", config, "--output", out, "--chunk-tokens", "131", "--skip-nonfinite", "-q", "--no-progress"])
    if not check(r.returncode == 0, f"run params: {r.stderr.strip()}"):
        return
    dec = os.path.join(tmp, "params_dec.h5")
    r = run(["route", path, "--router", "topk:k=3", "--out", dec, "--metrics", "none", "--skip-nonfinite",
             "--no-progress"])
    if not check(r.returncode == 0, f"route topk:k=3: {r.stderr.strip()}"):
        return
    with h5py.File(dec, "r") as f:
        ids = f["decisions/ids"][...]
        w = f["decisions/weights"][...]
    got = read_results(os.path.join(out, "results.csv"))
    p, _ = softmax(z[VALID])
    q = 2.5
    tsallis = ((1 - (p ** q).sum(-1)) / (1 - E ** (1 - q))).mean(0)
    srt = -np.sort(-z[VALID].astype(np.float64), axis=-1)
    margin = (srt[..., 0] - srt[..., 1]).mean(0)
    exp = {}
    add_layers(exp, "entropy.tsallis_entropy", "q=2.5", list(tsallis))
    add_layers(exp, "entropy.topk_margin", "k=1", list(margin))
    aff = {}
    expect_affinity(aff, ids, successors=1)
    for k, v in aff.items():
        if k[0] == "affinity.affinity_predictability":
            exp[(k[0], "successors=1", k[2])] = v
    spec = {}
    expect_specialization(spec, ids, w, token_ids, min_count=5, average="expert")
    exp.update({k: v for k, v in spec.items() if k[0] == "specialization.vocab_specialization"})
    for k, want in exp.items():
        check(k in got and close(got[k], want, k[0]), f"params: {k} = {got.get(k)!r}, numpy {want!r}")
