"""Agreement metrics against a reference, end to end: a trace and a paired
trace (its logits perturbed, as another checkpoint would be) written with
h5py, routed by the binary in chunks that cut through sequences, and every
agreement output recomputed in numpy from the decisions files, following
docs/metrics.md."""

import csv
import os

import h5py
import numpy as np

from interop_util import check, route_decisions, run, write_logits_trace

OFFSETS = [0, 50, 51, 160, 300]
T, L, E = 300, 3, 12


def softmax(z):
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def top1(ids, w):
    best, best_w = -1, 0.0
    for e, x in zip(ids, w):
        if e >= 0 and (best < 0 or x > best_w):
            best, best_w = e, x
    return best


def expected(run_dec, ref_dec, p_ref):
    """Per layer: fluctuation, topk_change, jaccard, mass_retained."""
    (ids, w), (rids, rw) = run_dec, ref_dec
    out = []
    for l in range(L):
        changed = tokens = 0
        change, jac, mass = [], [], []
        for t in range(T):
            s = {int(e) for e in ids[t, l] if e >= 0}
            r = {int(e) for e in rids[t, l] if e >= 0}
            if not s and not r:
                continue
            tokens += 1
            changed += top1(ids[t, l], w[t, l]) != top1(rids[t, l], rw[t, l])
            if r:
                change.append(1 - len(s & r) / len(r))
            jac.append(len(s & r) / len(s | r))
            whole = sum(p_ref[t, l, e] for e in r)
            if whole > 0:
                mass.append(sum(p_ref[t, l, e] for e in s) / whole)
        out.append((changed / tokens, np.mean(change), np.mean(jac), np.mean(mass)))
    return out


def read_results(path):
    rows = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            rows[(row["metric"], row["layer"])] = float(row["value"])
    return rows


def test_agreement_matches_numpy(tmp):
    rng = np.random.default_rng(11)
    z = rng.normal(size=(T, L, E)).astype(np.float32)
    z_paired = (z + 0.6 * rng.normal(size=z.shape)).astype(np.float32)
    a, b = os.path.join(tmp, "agree-a.h5"), os.path.join(tmp, "agree-b.h5")
    write_logits_trace(a, z, OFFSETS)
    write_logits_trace(b, z_paired, OFFSETS)
    names = ["fluctuation", "topk_change", "jaccard", "mass_retained"]
    cases = [
        # (router, reference, reference trace, p_ref)
        ("topk:k=2", "topk:k=3", None, softmax(z)),
        ("random:k=2,seed=5", "topk:k=2", None, softmax(z)),
        ("topk:k=2,capacity_factor=0.8,group=sequence", "topk:k=2", b, softmax(z_paired)),
        ("topp:p=0.6", "topk:k=2", b, softmax(z_paired)),
    ]
    for router, reference, paired, p_ref in cases:
        run_dec = route_decisions(a, router, tmp, "agree-run")
        ref_dec = route_decisions(paired or a, reference, tmp, "agree-ref")
        if run_dec is None or ref_dec is None:
            return
        want = expected(run_dec, ref_dec, p_ref)
        for extra in (["--chunk-tokens", "7", "--threads", "3"], ["--threads", "1"]):
            out = os.path.join(tmp, "agree.csv")
            args = ["route", a, "--router", router, "--reference", reference, "--metrics", "agreement",
                    "--csv", out, *extra]
            if paired:
                args += ["--reference-trace", paired]
            r = run(args)
            if not check(r.returncode == 0, f"agreement {router} vs {reference}: {r.stderr.strip()}"):
                continue
            got = read_results(out)
            for l in range(L):
                for name, value in zip(names, want[l]):
                    have = got.get((f"agreement.{name}", str(l)))
                    # probabilities are float32 in routesim, float64 here
                    tol = 1e-6 if name == "mass_retained" else 1e-12
                    check(have is not None and abs(have - value) <= tol * max(1.0, abs(value)),
                          f"agreement.{name} layer {l} of {router} vs {reference}"
                          f"{' on the paired trace' if paired else ''}: routesim {have}, numpy {value}")


def normalised_sigmoid(z):
    s = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    return s / s.sum(axis=-1, keepdims=True)


def test_sigmoid_scoring_on_deepseek_v3_preset(tmp):
    """A DeepSeek-V3-shaped trace (sigmoid scoring, selection bias): p_ref is
    the reference router's normalised sigmoid, so the balanced model rule
    keeps at most all of the unconstrained top-8's mass, and top-8 against
    the model rule is what numpy gives with sigmoid (softmax gave 2.3 here)."""
    trace = os.path.join(tmp, "dsv3.h5")
    r = run(["gen", "--preset", "deepseek-v3", "--tokens", "400", "--layers", "2", "--bias_correction", "1",
             "-o", trace])
    if not check(r.returncode == 0, f"gen deepseek-v3: {r.stderr.strip()}"):
        return
    with h5py.File(trace, "r") as f:
        z = f["router/logits"][...]
    p_ref = normalised_sigmoid(z)
    n_tokens, n_layers = z.shape[0], z.shape[1]
    for router, reference, at_most_one in (("native", "sigmoid_topk:k=8", True),
                                           ("topk:k=8", "native", False),
                                           ("sigmoid_topk:k=8", "sigmoid_topk:k=8", True)):
        run_dec = route_decisions(trace, router, tmp, "dsv3-run")
        ref_dec = route_decisions(trace, reference, tmp, "dsv3-ref")
        if run_dec is None or ref_dec is None:
            return
        out = os.path.join(tmp, "dsv3.csv")
        r = run(["route", trace, "--router", router, "--reference", reference, "--metrics",
                 "agreement.mass_retained,entropy.selected_mass", "--csv", out, "--chunk-tokens", "64"])
        if not check(r.returncode == 0, f"{router} vs {reference}: {r.stderr.strip()}"):
            continue
        got = read_results(out)
        ids, rids = run_dec[0], ref_dec[0]
        # the run's own p: normalised sigmoid for native and sigmoid_topk, softmax for topk
        p_run = softmax(z) if router.startswith("topk") else p_ref
        for l in range(n_layers):
            mass = [sum(p_ref[t, l, e] for e in ids[t, l] if e >= 0)
                    / sum(p_ref[t, l, e] for e in rids[t, l] if e >= 0) for t in range(n_tokens)]
            selected = [min(1.0, sum(p_run[t, l, e] for e in ids[t, l] if e >= 0)) for t in range(n_tokens)]
            for name, want in (("agreement.mass_retained", np.mean(mass)),
                               ("entropy.selected_mass", np.mean(selected))):
                have = got.get((name, str(l)))
                check(have is not None and abs(have - want) <= 1e-6 * max(1.0, abs(want)),
                      f"{name} layer {l} of {router} vs {reference}: routesim {have}, numpy {want}")
            have = got.get(("agreement.mass_retained", str(l)))
            if at_most_one:
                check(have is not None and have <= 1.0 + 1e-12,
                      f"mass_retained layer {l} of {router} vs {reference} is {have}, above 1")
