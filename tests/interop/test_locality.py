"""Locality routers end to end: traces written with h5py, routed by the
binary in small chunks that cut through sequences and on several threads,
checked against straightforward numpy versions of the rules in
docs/routers.md (section E). The numpy code follows the rules' text, one
token at a time, and shares nothing with the C code."""

import os

import numpy as np

from interop_util import check, route_decisions, run, write_logits_trace

OFFSETS = [0, 37, 38, 120, 200]
SPLITS = (["--chunk-tokens", "11", "--threads", "3"], ["--chunk-tokens", "1000", "--threads", "1"])


def softmax(z):
    z = z.astype(np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def ranked(v):
    """Expert ids by (-v, id)."""
    return list(np.lexsort((np.arange(len(v)), -v.astype(np.float64))))


def weights(p, ids, renorm):
    w = np.array([p[e] for e in ids], np.float64)
    return w / w.sum() if renorm else w


def sequences():
    return [(OFFSETS[s], OFFSETS[s + 1]) for s in range(len(OFFSETS) - 1)]


def lru_access(cache, clock, batch, slots):
    """The batch rule of docs/metrics.md; cache maps expert -> last touch."""
    for e in batch:
        clock += 1
        if e in cache:
            cache[e] = clock
        elif len(cache) < slots:
            cache[e] = clock
        else:
            others = [x for x in cache if x not in batch]
            if others:
                del cache[min(others, key=lambda x: cache[x])]
                cache[e] = clock
    return clock


def ref_sticky(z, k, M):
    T, L, E = z.shape
    ids, w = np.full((T, L, k), -1, np.int32), np.zeros((T, L, k))
    for l in range(L):
        for a, b in sequences():
            prev = set()
            for t in range(a, b):
                top = ranked(z[t, l])[:min(M, E)]
                chosen = [e for e in top if e in prev]
                chosen += [e for e in top if e not in chosen][:k - len(chosen)]
                sel = [e for e in top if e in chosen]
                ids[t, l], w[t, l] = sel, weights(softmax(z[t, l]), sel, True)
                prev = set(sel)
    return ids, w


def ref_cache_maxrank(z, k, J, M, slots):
    T, L, E = z.shape
    ids, w = np.full((T, L, k), -1, np.int32), np.zeros((T, L, k))
    for l in range(L):
        for a, b in sequences():
            cache, clock = {}, 0
            for t in range(a, b):
                top = ranked(z[t, l])[:min(M, E)]
                chosen = top[:J] + [e for e in top[J:] if e in cache][:k - J]
                chosen += [e for e in top if e not in chosen][:k - len(chosen)]
                sel = [e for e in top if e in chosen]
                ids[t, l], w[t, l] = sel, weights(softmax(z[t, l]), sel, True)
                clock = lru_access(cache, clock, sel, min(slots, E))
    return ids, w


def ref_cache_prior(z, k, slots, lam):
    T, L, E = z.shape
    ids, w = np.full((T, L, k), -1, np.int32), np.zeros((T, L, k))
    for l in range(L):
        for a, b in sequences():
            cache, clock, ranges = {}, 0, []
            for t in range(a, b):
                row = z[t, l]
                ranges.append(float(row.max()) - float(row.min()))
                prior = np.float32(lam * sum(ranges) / len(ranges))
                biased = np.array([row[e] + prior if e in cache else row[e] for e in range(E)], np.float32)
                sel = ranked(biased)[:k]
                ids[t, l], w[t, l] = sel, weights(softmax(biased), sel, True)
                clock = lru_access(cache, clock, sel, min(slots, E))
    return ids, w


def ref_segment(z, m, k):
    T, L, E = z.shape
    kmax = min(E, m * k)
    ids, w = np.full((T, L, kmax), -1, np.int32), np.zeros((T, L, kmax))
    for l in range(L):
        for a, b in sequences():
            for s in range(a, b, m):
                seg = range(s, min(s + m, b))
                f = np.zeros(E, np.int64)
                for t in seg:
                    f[ranked(z[t, l])[:k]] += 1
                n = len(seg)
                scores = []
                for alpha in range(1, n + 1):
                    kept = f >= alpha
                    scores.append((2 * f[kept].sum() / (n * kept.sum() + n * k), alpha))
                best = max(scores)[1]  # ties: the larger alpha
                chosen = set(np.nonzero(f >= best)[0])
                for t in seg:
                    sel = [e for e in ranked(z[t, l]) if e in chosen]
                    ids[t, l, :len(sel)] = sel
                    w[t, l, :len(sel)] = weights(softmax(z[t, l]), sel, True)
    return ids, w


def ref_graph_smooth(z, k, window, temp):
    T, L, E = z.shape
    ids, w = np.full((T, L, k), -1, np.int32), np.zeros((T, L, k))

    def cos(x, y):
        nx, ny = np.linalg.norm(x.astype(np.float64)), np.linalg.norm(y.astype(np.float64))
        return 0.0 if nx == 0 or ny == 0 else float(x.astype(np.float64) @ y.astype(np.float64)) / (nx * ny)

    for l in range(L):
        for a, b in sequences():
            for t in range(a, b):
                past = list(range(max(a, t - window), t))
                if not past:
                    sel = ranked(z[t, l])[:k]
                    ids[t, l], w[t, l] = sel, weights(softmax(z[t, l]), sel, True)
                    continue
                s = np.array([cos(z[t, l], z[t, l])] + [cos(z[t, l], z[j, l]) for j in past]) / temp
                att = np.exp(s - s.max())
                att /= att.sum()
                mix = att[0] * softmax(z[t, l]) + sum(att[i + 1] * softmax(z[j, l]) for i, j in enumerate(past))
                mix = mix.astype(np.float32)
                sel = ranked(mix)[:k]
                ids[t, l], w[t, l] = sel, weights(mix, sel, True)
    return ids, w


def compare(tmp, trace, spec, want, tol=2e-6):
    for n, extra in enumerate(SPLITS):
        got = route_decisions(trace, spec, tmp, f"{spec.replace(':', '_').replace(',', '_')}-{n}", extra)
        if got is None:
            continue
        ids, w = got
        check(ids.shape == want[0].shape, f"{spec}: shape {ids.shape}, want {want[0].shape}")
        if ids.shape != want[0].shape:
            continue
        bad = int((ids != want[0]).sum())
        check(bad == 0, f"{spec} {' '.join(extra)}: {bad} ids differ from numpy")
        err = float(np.abs(w.astype(np.float64) - want[1]).max())
        check(err <= tol, f"{spec} {' '.join(extra)}: weights differ by {err:.3g}")


def test_locality_routers_match_numpy(tmp):
    rng = np.random.default_rng(5)
    T, L, E = OFFSETS[-1], 2, 16
    tied = (np.round(rng.normal(size=(T, L, E)) * 4) / 4).astype(np.float32)  # exact ties in many rows
    smooth = rng.normal(size=(T, L, E)).astype(np.float32)
    tied_path, smooth_path = os.path.join(tmp, "tied.h5"), os.path.join(tmp, "smooth.h5")
    write_logits_trace(tied_path, tied, OFFSETS)
    write_logits_trace(smooth_path, smooth, OFFSETS)
    compare(tmp, tied_path, "sticky:k=3,M=6", ref_sticky(tied, 3, 6))
    compare(tmp, tied_path, "cache_maxrank:k=3,J=1,M=6,slots=5", ref_cache_maxrank(tied, 3, 1, 6, 5))
    compare(tmp, tied_path, "cache_maxrank:k=2,J=0,M=4,slots=1", ref_cache_maxrank(tied, 2, 0, 4, 1))
    compare(tmp, tied_path, "segment:m=8,k=2", ref_segment(tied, 8, 2))
    compare(tmp, tied_path, "segment:m=5,k=3", ref_segment(tied, 5, 3))
    compare(tmp, smooth_path, "cache_prior:k=2,slots=4,lambda=0.3", ref_cache_prior(smooth, 2, 4, 0.3))
    compare(tmp, smooth_path, "graph_smooth:k=2,window=5,temp=0.3", ref_graph_smooth(smooth, 2, 5, 0.3))


def test_native_reads_root_attributes(tmp):
    rng = np.random.default_rng(9)
    z = rng.normal(size=(60, 2, 8)).astype(np.float32)
    path = os.path.join(tmp, "native-trace.h5")
    write_logits_trace(path, z, [0, 60], top_k=3, scoring="softmax", norm_topk=0)
    native = route_decisions(path, "native", tmp, "native")
    topk = route_decisions(path, "topk:k=3,renorm=0", tmp, "topk")
    if native is not None and topk is not None:
        check(np.array_equal(native[0], topk[0]) and np.array_equal(native[1], topk[1]),
              "native on a softmax trace (top_k=3, norm_topk=0) differs from topk:k=3,renorm=0")
    bare = os.path.join(tmp, "bare.h5")
    write_logits_trace(bare, z, [0, 60])
    r = run(["route", bare, "--router", "native", "--metrics", "none"], expect_failure=True)
    check(r.returncode == 1 and "root attributes 'top_k', 'scoring', 'norm_topk' missing" in r.stderr,
          f"native without attributes: exit {r.returncode}, stderr {r.stderr.strip()}")
