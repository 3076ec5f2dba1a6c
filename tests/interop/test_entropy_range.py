"""entropy at any scale of the logits: rows of random, constant, one-peak,
mixed-sign and offset logits from 1e-30 to 3.4e38 (each row its own layer
of a one-token trace), routed top-2. router_entropy, tsallis_entropy
(q = 0.5, 1.1, 3) and selected_mass must lie in [0, 1] and equal a numpy
long-double reference computed from the logits shifted by their maximum,
to 1e-6 (the engine's softmax is float32, about 1e-7 relative); constant
rows give router_entropy exactly 1."""

import csv
import os

import numpy as np

from interop_util import check, run, write_logits_trace

SCALES = [1e-30, 1e-10, 1e-3, 1.0, 10.0, 100.0, 1e3, 1e10, 1e20, 1e30, 1e38, 3.4e38]
KINDS = 7
QS = (0.5, 1.1, 3.0)
FMAX = float(np.finfo(np.float32).max)


def extreme_rows(rng, E):
    rows = []
    for s in SCALES:
        for kind in range(KINDS):
            n = rng.normal(size=E)
            idx = np.arange(E)
            if kind == 0:
                row = n * s
            elif kind == 1:
                row = np.full(E, s)
            elif kind == 2:
                row = np.where(idx == E // 2, s, 0.0)
            elif kind == 3:
                row = np.where(idx == E // 3, -s, 0.0)
            elif kind == 4:
                row = np.where(idx % 2 == 1, -s, s) * (0.5 + 0.5 * np.abs(n)) / 2
            elif kind == 5:
                row = s * (1 + 1e-3 * n)
            else:
                row = np.where(idx % 3 == 0, FMAX, np.where(idx % 3 == 1, -FMAX, n * s))
            rows.append(np.clip(row, -FMAX, FMAX))
    return np.asarray(rows, np.float32)


def reference(rows, ids):
    z = rows.astype(np.longdouble)
    x = z - z.max(-1, keepdims=True)
    log_norm = np.log(np.exp(x).sum(-1))
    logp = x - log_norm[:, None]
    p = np.exp(logp)
    E = rows.shape[1]
    out = {"router_entropy": -(p * logp).sum(-1) / np.log(np.longdouble(E))}
    for q in QS:
        ql = np.longdouble(q)
        out[f"tsallis_entropy q={q:g}"] = (1 - np.exp(ql * logp).sum(-1)) / (1 - np.longdouble(E) ** (1 - ql))
    out["selected_mass"] = np.take_along_axis(p, ids.astype(np.int64), -1).sum(-1)
    return out


def read_layers(path):
    """{(output, q key): {layer: value}} of the entropy rows."""
    got = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if not r["metric"].startswith("entropy.") or r["layer"] == "all":
                continue
            name = r["metric"].split(".")[1]
            label = name + (" " + r["key"] if r["key"] else "")
            got.setdefault(label, {})[int(r["layer"])] = float(r["value"])
    return got


def test_entropy_stays_in_range_at_any_scale(tmp):
    rng = np.random.default_rng(7)
    for E in (8, 64):
        rows = extreme_rows(rng, E)
        L = len(rows)
        trace = os.path.join(tmp, f"extreme{E}.h5")
        write_logits_trace(trace, rows[None, :, :], top_k=2)
        config = os.path.join(tmp, f"extreme{E}.json")
        with open(config, "w") as f:
            f.write('{"name": "x", "traces": ["%s"], "routers": ["topk:k=2"], '
                    '"metrics": [{"name": "entropy", "params": {"q": [0.5, 1.1, 3]}}]}' % trace)
        out = os.path.join(tmp, f"out{E}")
        r = run(["run", config, "--output", out, "-q"])
        if not check(r.returncode == 0, f"E={E}: run failed: {r.stderr.strip()}"):
            continue
        got = read_layers(os.path.join(out, "results.csv"))
        # top-2 by descending logit, ties to the lower index, as routesim selects
        ids = np.argsort(-rows.astype(np.float64), axis=-1, kind="stable")[:, :2]
        want = reference(rows, ids)
        for label, ref in want.items():
            values = got.get(label, {})
            check(len(values) == L, f"E={E}: {label}: {len(values)} layers of {L}")
            for l, v in values.items():
                scale, kind = SCALES[l // KINDS], l % KINDS
                check(0.0 <= v <= 1.0, f"E={E} {label} scale {scale:g} kind {kind}: {v} outside [0, 1]")
                check(abs(v - float(ref[l])) <= 1e-6,
                      f"E={E} {label} scale {scale:g} kind {kind}: {v!r}, numpy {float(ref[l])!r}")
                if label == "router_entropy" and kind == 1:
                    check(v == 1.0, f"E={E}: constant row of {scale:g}: router_entropy {v!r}, not 1")
