"""Routers written in Python: a numpy top-k equals the built-in topk to
the last bit (ties to the lower index), with and without the capacity
stage, for any thread count and chunk size, in route() and in sweeps of
run(); blocks carry the trace's data as views; stateful routers see each
layer in order."""

import os
import unittest

import h5py
import numpy as np

import routesim
from util import TempDirTest, gen_trace, same_value, tied_logits, write_trace


def numpy_topk(block):
    """docs/routers.md `topk`: S = TopK(z, k), ties to the lower index
    (selecting on z as the built-in does, so rounding of p invents no ties);
    w = p_S, divided by their sum accumulated in double when renorm, times
    scale, rounded once to float32."""
    k, renorm, scale = block.params["k"], block.params["renorm"], block.params["scale"]
    ids = np.argsort(-block.logits, axis=1, kind="stable")[:, :k]
    p = np.take_along_axis(block.probs, ids, axis=1).astype(np.float64)
    norm = np.ones(block.n)
    if renorm:
        total = np.zeros(block.n)
        for j in range(k):  # the built-in's summation order
            total += p[:, j]
        norm = np.divide(1.0, total, out=np.zeros(block.n), where=total > 0)
    return ids, (p * norm[:, None] * scale).astype(np.float32)


# kmax = k, as the built-in's rows are k wide (some metrics report per row
# width); py_topk_wide takes every k up to 4 for sweeps over k.
PY_TOPK = {k: routesim.Router(numpy_topk, f"py_topk{k}", kmax=k, params={"k": k, "renorm": True, "scale": 1.0},
                              summary="numpy top-k of the softmax") for k in (1, 2, 3)}
PY_TOPK_WIDE = routesim.Router(numpy_topk, "py_topk_wide", kmax=4, params={"k": 2, "renorm": True, "scale": 1.0})

METRICS = "load,entropy,activation,locality"


def values(df):
    """The metric rows without the columns that name the router."""
    return list(zip(df.metric, df.key, df.layer)), df.value.to_numpy()


class NumpyTopkEqualsBuiltin(TempDirTest):
    def setUp(self):
        super().setUp()
        self.trace = gen_trace(self.path("gen.h5"), tokens=900, seed=7)
        rng = np.random.default_rng(11)
        T, L, E = 500, 3, 8
        offsets = [0, 120, 121, 300, 500]
        self.tied = write_trace(self.path("tied.h5"), tied_logits(rng, (T, L, E), quantum=0.5), offsets=offsets)

    def assert_same(self, trace, builtin, python, **kwargs):
        a_out, b_out = self.path("builtin.h5"), self.path("python.h5")
        a = routesim.route(trace, builtin, METRICS, out=a_out, **kwargs)
        b = routesim.route(trace, python, METRICS, out=b_out, **kwargs)
        (a_keys, a_vals), (b_keys, b_vals) = values(a), values(b)
        self.assertEqual(a_keys, b_keys)
        for key, x, y in zip(a_keys, a_vals, b_vals):
            self.assertTrue(same_value(x, y), f"{builtin} vs {python} {kwargs}: {key}: {x!r} != {y!r}")
        with h5py.File(a_out, "r") as fa, h5py.File(b_out, "r") as fb:
            k = fa["decisions/ids"].shape[2]
            np.testing.assert_array_equal(fa["decisions/ids"][...], fb["decisions/ids"][..., :k])
            np.testing.assert_array_equal(fa["decisions/weights"][...].view(np.uint32),
                                          fb["decisions/weights"][..., :k].view(np.uint32))
            self.assertTrue((fb["decisions/ids"][..., k:] == -1).all())

    def test_dropless(self):
        for trace in (self.trace, self.tied):
            for k, params in ((2, ""), (1, ""), (3, ",renorm=0"), (2, ",scale=2.5")):
                with self.subTest(trace=os.path.basename(trace), k=k, params=params):
                    self.assert_same(trace, f"topk:k={k}{params}", f"py_topk{k}:k={k}{params}")

    def test_capacity_stage(self):
        for cap in ("capacity_factor=1.0", "capacity_factor=1.0,drop_policy=probs",
                    "capacity_factor=0.5,renorm_after_drop=1,group=sequence"):
            with self.subTest(cap=cap):
                self.assert_same(self.tied, f"topk:k=2,{cap}", f"py_topk2:{cap}", batch_tokens=64)

    def test_threads_and_chunks(self):
        for threads in (1, 2, 3):
            for chunk in (None, 37, 128):
                with self.subTest(threads=threads, chunk_tokens=chunk):
                    self.assert_same(self.trace, "topk:k=2", PY_TOPK[2], threads=threads, chunk_tokens=chunk)
                    self.assert_same(self.tied, "topk:k=2,capacity_factor=1.0", "py_topk2:capacity_factor=1.0",
                                     threads=threads, chunk_tokens=chunk, batch_tokens=100)

    def test_as_reference(self):
        a = routesim.route(self.trace, "topk:k=1", "agreement", reference="topk:k=2")
        b = routesim.route(self.trace, "topk:k=1", "agreement", reference=PY_TOPK[2])
        self.assertGreater(len(a), 0)
        self.assertTrue(all(same_value(x, y) for x, y in zip(a.value, b.value)))

    def assert_same_runs(self, a, b, builtin, python):
        self.assertGreater(len(a), 0)
        self.assertEqual([r.replace(builtin, python, 1) for r in a.run], list(b.run))
        self.assertEqual(values(a)[0], values(b)[0])
        self.assertTrue(all(same_value(x, y) for x, y in zip(a.value, b.value)))

    def test_sweep_in_run(self):
        def config(router, params, metrics, out):
            return {"name": "sweep", "traces": [self.tied, self.trace], "metrics": metrics, "output": self.path(out),
                    "batch_tokens": 128, "routers": [{"name": router, "params": params}]}
        # a grid over renorm, scale and the capacity stage, every metric
        grid = {"renorm": [0, 1], "scale": [1.0, 2.0], "capacity_factor": [0.75, 1.0]}
        a = routesim.run(config("topk", grid, METRICS.split(","), "a"), threads=2)
        b = routesim.run(config("py_topk2", dict(grid, renorm=[False, True]), METRICS.split(","), "b"), threads=3)
        self.assertEqual(len(set(b.run)), 8)
        self.assertIn("py_topk2:capacity_factor=0.75,renorm=0,scale=2", set(b.run))
        self.assert_same_runs(a, b, "topk:", "py_topk2:")
        self.assertTrue(os.path.exists(self.path("b/results.csv")))
        # a sweep over k (rows up to 4 wide: metrics that do not report per width)
        a = routesim.run(config("topk", {"k": [1, 2, 3]}, ["load", "entropy"], "c"))
        b = routesim.run(config("py_topk_wide", {"k": [1, 2, 3]}, ["load", "entropy"], "d"))
        self.assert_same_runs(a, b, "topk", "py_topk_wide")


class BlockContents(TempDirTest):
    def test_views_of_the_trace(self):
        rng = np.random.default_rng(5)
        T, L, E = 230, 2, 6
        logits = rng.normal(size=(T, L, E)).astype(np.float32)
        offsets = np.array([0, 50, 51, 180, 230])
        token_ids = rng.integers(0, 1000, T)
        phase = (np.arange(T) % 3 == 0).astype(np.uint8)
        trace = write_trace(self.path("t.h5"), logits, offsets=offsets, token_ids=token_ids, phase=phase)
        seen = {}

        def record(block):
            for name in ("logits", "probs", "token_ids", "positions", "sequence", "ids", "weights"):
                arr = getattr(block, name)
                self.assertFalse(arr.flags.owndata, f"{name} is a copy")
                self.assertEqual(arr.flags.writeable, name in ("ids", "weights"), name)
            self.assertEqual(block.logits.dtype, np.float32)
            self.assertEqual(block.ids.shape, (block.n, 2))
            self.assertTrue((block.ids == -1).all() and (block.weights == 0).all())
            self.assertEqual((block.num_layers, block.num_experts, block.kmax), (L, E, 2))
            self.assertEqual(block.params, {"k": 1, "t": 0.5, "greedy": False, "mode": "slow"})
            seen[block.layer, block.t0] = {name: np.array(getattr(block, name))
                                           for name in ("logits", "probs", "token_ids", "positions", "sequence")}
            block.ids[:, 0] = 0
            block.weights[:, 0] = 1.0

        r = routesim.Router(record, "py_record", kmax=2, params={"k": 2, "t": 1.0, "greedy": True, "mode": "fast"})
        spec = r.spec(k=1, t=0.5, greedy=False, mode="slow")
        self.assertEqual(spec, "py_record:k=1,t=0.5,greedy=false,mode=slow")
        routesim.route(trace, spec, "load", threads=2, chunk_tokens=40)
        seq_of = np.searchsorted(offsets, np.arange(T), side="right") - 1
        covered = np.zeros((L, T), int)
        for (layer, t0), got in seen.items():
            n = len(got["logits"])
            rows = slice(t0, t0 + n)
            covered[layer, rows] += 1
            np.testing.assert_array_equal(got["logits"], logits[rows, layer])
            z = logits[rows, layer].astype(np.float64)
            p = np.exp(z - z.max(axis=1, keepdims=True))
            np.testing.assert_allclose(got["probs"], p / p.sum(axis=1, keepdims=True), rtol=1e-5)
            np.testing.assert_array_equal(got["token_ids"], token_ids[rows])
            np.testing.assert_array_equal(got["sequence"], seq_of[rows])
            np.testing.assert_array_equal(got["positions"], np.arange(t0, t0 + n) - offsets[seq_of[rows]])
        self.assertTrue((covered == 1).all(), "every token of every layer exactly once")

    def test_phase(self):
        T = 40
        phase = (np.arange(T) >= 30).astype(np.uint8)
        trace = write_trace(self.path("p.h5"), np.zeros((T, 1, 4), np.float32), phase=phase)
        seen = np.full(T, 255, np.uint8)

        def record(block):
            self.assertIsNotNone(block.phase)
            self.assertFalse(block.phase.flags.writeable)
            seen[block.t0:block.t0 + block.n] = block.phase
            block.ids[:, 0] = 0
            block.weights[:, 0] = 1

        routesim.route(trace, routesim.Router(record, "py_phase", kmax=1), "load")
        np.testing.assert_array_equal(seen, phase)

    def test_optional_fields_absent(self):
        trace = write_trace(self.path("bare.h5"), np.zeros((20, 1, 4), np.float32))
        absent = []

        def check(block):
            absent.append((block.token_ids is None, block.phase is None))
            block.ids[:, 0] = 1
            block.weights[:, 0] = 1

        routesim.route(trace, routesim.Router(check, "py_bare", kmax=1), "load")
        self.assertTrue(absent and all(a == (True, True) for a in absent))

    def test_narrow_and_typed_results(self):
        """k < kmax is padded; int64 ids, float64 weights and in-place
        filling give the same decisions as topk."""
        trace = gen_trace(self.path("g.h5"), tokens=300, seed=2)

        def narrow(block):
            ids, w = numpy_topk_default(block)
            return ids.astype(np.int64), w.astype(np.float64)

        def in_place(block):
            ids, w = numpy_topk_default(block)
            block.ids[:, :2] = ids
            block.weights[:, :2] = w

        want = routesim.route(trace, "topk:k=2", "load,entropy")
        for fn, kmax in ((narrow, 4), (in_place, 2)):
            with self.subTest(fn=fn.__name__):
                got = routesim.route(trace, routesim.Router(fn, f"py_{fn.__name__}", kmax), "load,entropy")
                self.assertEqual(len(want), len(got))
                self.assertTrue(all(same_value(x, y) for x, y in zip(want.value, got.value)))

    @unittest.skipUnless(__import__("importlib").util.find_spec("torch"), "torch is not installed")
    def test_torch_tensors(self):
        import torch
        trace = gen_trace(self.path("g.h5"), tokens=300, seed=2)

        def torch_topk(block):
            z = torch.from_numpy(np.array(block.logits))
            vals, ids = torch.topk(z, 2, dim=1)
            p = torch.from_numpy(np.array(block.probs))
            return ids, torch.gather(p, 1, ids)

        want = routesim.route(trace, "topk:k=2,renorm=0", "load,entropy")
        got = routesim.route(trace, routesim.Router(torch_topk, "py_torch", 2), "load,entropy")
        self.assertTrue(all(same_value(x, y) for x, y in zip(want.value, got.value)))


def numpy_topk_default(block):
    ids = np.argsort(-block.logits, axis=1, kind="stable")[:, :2]
    p = np.take_along_axis(block.probs, ids, axis=1).astype(np.float64)
    total = p[:, 0] + p[:, 1]
    return ids, (p / total[:, None]).astype(np.float32)


class StatefulRouter(TempDirTest):
    def test_each_layer_in_order_once(self):
        trace = gen_trace(self.path("s.h5"), tokens=1000, seed=9)
        calls = []

        def stateful(block):
            calls.append((block.layer, block.t0, block.n))
            block.ids[:, 0] = 0
            block.weights[:, 0] = 1

        r = routesim.Router(stateful, "py_stateful", kmax=1, stateful=True)
        for threads, chunk in ((3, 64), (2, 250), (1, None)):
            calls.clear()
            routesim.route(trace, r, "load", threads=threads, chunk_tokens=chunk)
            for layer in range(4):
                mine = [(t0, n) for l, t0, n in calls if l == layer]
                self.assertGreater(len(mine), 0)
                expect = 0
                for t0, n in mine:
                    self.assertEqual(t0, expect, f"layer {layer}: block at {t0} after tokens up to {expect}")
                    expect += n
                self.assertEqual(expect, 1000)
        self.assertIn("py_stateful", set(routesim.routers().query("stateful").name))


class Registration(TempDirTest):
    def test_replace_and_spec(self):
        trace = write_trace(self.path("r.h5"), np.zeros((10, 1, 4), np.float32))

        def first(block):
            block.ids[:, 0] = 1
            block.weights[:, 0] = 1

        def second(block):
            block.ids[:, 0] = 2
            block.weights[:, 0] = 1

        routesim.Router(first, "py_replaced", 1)
        r = routesim.Router(second, "py_replaced", 1, params={"x": 1})
        out = self.path("d.h5")
        routesim.route(trace, "py_replaced", "none", out=out)
        with h5py.File(out, "r") as f:
            self.assertTrue((f["decisions/ids"][..., 0] == 2).all())
        self.assertEqual(r.spec(), "py_replaced")
        self.assertEqual(r.spec(x=4), "py_replaced:x=4")
        row = routesim.routers().set_index("name").loc["py_replaced"]
        self.assertEqual(row.params, "x=1")


if __name__ == "__main__":
    unittest.main()
