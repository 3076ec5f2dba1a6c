"""Failures arrive as one RoutesimError carrying the library's message
(naming the router, the file or the field), with no output left behind;
bad arguments raise TypeError / ValueError before the library is called;
a library of another version or layout is refused."""

import os
import shutil
import subprocess
import sys
import textwrap
import unittest

import numpy as np

import routesim
from util import ROOT, TempDirTest, gen_trace, run_cli, write_trace

PYTHON_DIR = os.path.join(ROOT, "python")


def good_ids(block):
    return np.tile(np.arange(2, dtype=np.int32), (block.n, 1)), np.full((block.n, 2), 0.5, np.float32)


class FailingRouters(TempDirTest):
    def setUp(self):
        super().setUp()
        self.trace = gen_trace(self.path("t.h5"), tokens=300, seed=1)

    def assert_fails(self, fn, pattern, cause=None, kmax=2):
        name = f"py_fail_{fn.__name__}"
        router = routesim.Router(fn, name, kmax)
        out = self.path("decisions.h5")
        with self.assertRaises(routesim.RoutesimError) as ctx:
            routesim.route(self.trace, router, "load", out=out, threads=2)
        message = str(ctx.exception)
        self.assertIn(f"router {name}: layer ", message)
        self.assertRegex(message, pattern)
        self.assertNotIn("\n", message)
        if cause is None:
            self.assertIsNone(ctx.exception.__cause__)
        else:
            self.assertIsInstance(ctx.exception.__cause__, cause)
        self.assertFalse(os.path.exists(out), "no decisions file after a failure")
        self.assertEqual([f for f in os.listdir(self.tmp) if f != "t.h5"], [], "no temporary files left")

        # the same router in a config: no results.csv in the output directory
        output = self.path("run")
        with self.assertRaises(routesim.RoutesimError) as ctx:
            routesim.run({"traces": [self.trace], "routers": ["topk:k=2", name], "metrics": ["load"],
                          "output": output})
        self.assertIn(f"router {name}: layer ", str(ctx.exception))
        self.assertFalse(os.path.exists(os.path.join(output, "results.csv")))
        self.assertFalse(os.path.exists(os.path.join(output, "results.json")))
        shutil.rmtree(output)
        return ctx.exception

    def test_raises(self):
        def raises(block):
            raise KeyError("no such column")
        e = self.assert_fails(raises, r"tokens \d+\.\.\d+: KeyError: 'no such column'$", KeyError)
        self.assertEqual(str(e.__cause__), "'no such column'")

    def test_wrong_shape(self):
        def short(block):
            ids, w = good_ids(block)
            return ids[1:], w[1:]
        self.assert_fails(short, r"returned ids of shape \(\d+, 2\), expected \(\d+, 2\)$", ValueError)

        def wide(block):
            return np.zeros((block.n, 3), np.int32), np.zeros((block.n, 3), np.float32)
        self.assert_fails(wide, r"returned ids of shape \(\d+, 3\), expected \(\d+, 2\)$", ValueError)

    def test_wrong_types(self):
        def float_ids(block):
            ids, w = good_ids(block)
            return ids.astype(np.float32), w
        self.assert_fails(float_ids, r"returned ids of dtype float32, expected an integer dtype$", ValueError)

        def one_array(block):
            return good_ids(block)[0]
        self.assert_fails(one_array, r"returned ndarray, expected \(ids, weights\) or None$", ValueError)

    def test_out_of_range_ids(self):
        def too_big(block):
            ids, w = good_ids(block)
            ids[3, 1] = block.num_experts
            return ids, w
        self.assert_fails(too_big, r"token \d+: expert id 8 out of range \[0, 8\)")

        def wraps(block):  # 2**32 + 1 would be expert 1 as int32
            ids, w = good_ids(block)
            ids = ids.astype(np.int64)
            ids[0, 1] = 2**32 + 1
            return ids, w
        self.assert_fails(wraps, r"returned expert id 4294967297 out of range \[-1, 8\)$", ValueError)

    def test_duplicate_ids_and_bad_weights(self):
        def twice(block):
            ids, w = good_ids(block)
            ids[:, 1] = ids[:, 0]
            return ids, w
        self.assert_fails(twice, r"token \d+: expert 0 chosen twice$")

        def nan_weight(block):
            ids, w = good_ids(block)
            w[5, 0] = np.nan
            return ids, w
        self.assert_fails(nan_weight, r"token \d+: weight nan is not finite$")


class LibraryMessages(TempDirTest):
    def cli_error(self, *args):
        r = run_cli(*args, check=False)
        self.assertNotEqual(r.returncode, 0)
        return r.stderr.strip().splitlines()[-1].removeprefix("routesim: error: ")

    def test_bad_trace_and_unknown_router(self):
        missing = self.path("missing.h5")
        with self.assertRaises(routesim.RoutesimError) as ctx:
            routesim.route(missing, "topk:k=2")
        self.assertEqual(str(ctx.exception), self.cli_error("route", missing, "--router", "topk:k=2"))
        self.assertIn(missing, str(ctx.exception))

        trace = gen_trace(self.path("t.h5"), tokens=100)
        with self.assertRaises(routesim.RoutesimError) as ctx:
            routesim.route(trace, "no_such_router:k=2")
        # the same message, but for the routers registered here, which the list of known ones adds
        message = str(ctx.exception)
        cli = self.cli_error("route", trace, "--router", "no_such_router:k=2")
        self.assertTrue(message.startswith(cli[:-1]), f"{message!r} does not extend {cli!r}")
        self.assertTrue(message.startswith("unknown router 'no_such_router' (known: topk, "), message)

        with self.assertRaisesRegex(routesim.RoutesimError, "parameter k"):
            routesim.route(trace, "topk:k=two")
        with self.assertRaisesRegex(routesim.RoutesimError, missing):
            routesim.info(missing)

    def test_bad_trace_content(self):
        bad = write_trace(self.path("bad.h5"), np.zeros((10, 1, 4), np.float32), offsets=[0, 9])
        with self.assertRaisesRegex(routesim.RoutesimError, r"bad\.h5: /sequences/offsets"):
            routesim.route(bad, "topk:k=1")

    def test_bad_config(self):
        with self.assertRaisesRegex(routesim.RoutesimError, r"^config \(dict\): unknown key 'bogus'"):
            routesim.run({"traces": [], "routers": ["topk"], "bogus": 1})
        with self.assertRaisesRegex(routesim.RoutesimError, "missing.json"):
            routesim.run(self.path("missing.json"))

    def test_bad_plugin(self):
        with self.assertRaisesRegex(routesim.RoutesimError, "nothing.so"):
            routesim.load_plugin(self.path("nothing.so"))


class BadArguments(TempDirTest):
    def test_type_and_value_errors(self):
        trace = gen_trace(self.path("t.h5"), tokens=50)
        for kwargs, error in (({"threads": "2"}, TypeError), ({"threads": 0}, ValueError),
                              ({"batch_tokens": 1.5}, TypeError), ({"chunk_tokens": -1}, ValueError),
                              ({"memory_mb": "big"}, TypeError), ({"memory_mb": 0}, ValueError),
                              ({"skip_nonfinite": 1}, TypeError), ({"reference": 3}, TypeError),
                              ({"out": 3}, TypeError), ({"metrics": 5}, TypeError),
                              ({"metrics": ["load", 2]}, TypeError)):
            with self.subTest(**{k: repr(v) for k, v in kwargs.items()}):
                with self.assertRaises(error):
                    routesim.route(trace, "topk", **kwargs)
        with self.assertRaises(TypeError):
            routesim.route(42, "topk")
        with self.assertRaises(TypeError):
            routesim.route(trace, 42)
        with self.assertRaises(ValueError):
            routesim.route(trace, "")
        with self.assertRaises(TypeError):
            routesim.run(["not", "a", "config"])
        with self.assertRaises(TypeError):
            routesim.run({"traces": [trace]}, tokens="10")
        with self.assertRaises(TypeError):
            routesim.plot(self.tmp, formats=3)

    def test_router_definitions(self):
        fn = good_ids
        for args, kwargs, error in (((3, "x", 2), {}, TypeError),
                                    ((fn, 3, 2), {}, TypeError),
                                    ((fn, "has space", 2), {}, ValueError),
                                    ((fn, "x:y", 2), {}, ValueError),
                                    ((fn, "x", 0), {}, ValueError),
                                    ((fn, "x", 2.0), {}, TypeError),
                                    ((fn, "x", 2), {"params": {"k": [1, 2]}}, TypeError),
                                    ((fn, "x", 2), {"params": {"k": float("nan")}}, ValueError),
                                    ((fn, "x", 2), {"params": {"mode": "a,b"}}, ValueError),
                                    ((fn, "x", 2), {"params": {"mode": "3"}}, ValueError),
                                    ((fn, "x", 2), {"params": {"bad name": 1}}, ValueError),
                                    ((fn, "x", 2), {"summary": 5}, TypeError)):
            with self.subTest(args=args, kwargs=kwargs):
                with self.assertRaises(error):
                    routesim.Router(*args, **kwargs)
        r = routesim.Router(fn, "py_args", 2, params={"k": 2})
        with self.assertRaisesRegex(ValueError, "unknown parameter j"):
            r.spec(j=1)

    def test_library_refuses_names(self):
        with self.assertRaisesRegex(routesim.RoutesimError, "router topk: a built-in or plugin router has this name"):
            routesim.Router(good_ids, "topk", 2)
        with self.assertRaisesRegex(routesim.RoutesimError, "kmax 2000 out of range"):
            routesim.Router(good_ids, "py_wide", 2000)


def run_python(code, env):
    """Runs code in a fresh interpreter that imports routesim from this
    checkout; returns (exit code, stderr)."""
    full = dict(os.environ, PYTHONPATH=PYTHON_DIR, **env)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full)
    return r.returncode, r.stdout + r.stderr


PROBE = """
    import routesim
    try:
        routesim.routers()
    except routesim.RoutesimError as e:
        print("ERROR:", e)
"""


class LibraryVersion(TempDirTest):
    def compile(self, name, source):
        c = self.path(name + ".c")
        so = self.path(name + ".so")
        with open(c, "w") as f:
            f.write(textwrap.dedent(source))
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", so, c], check=True)
        return so

    def test_other_version_refused(self):
        so = self.compile("old", 'const char *rs_version(void) { return "9.9.9"; }\n')
        rc, out = run_python(PROBE, {"ROUTESIM_LIB": so})
        self.assertEqual(rc, 0, out)
        line = [l for l in out.splitlines() if l.startswith("ERROR:")]
        self.assertEqual(len(line), 1, out)
        self.assertIn(so, line[0])
        self.assertIn("libroutesim 9.9.9", line[0])
        self.assertIn(f"the routesim Python package is {routesim.__version__}", line[0])

    def test_other_layout_refused(self):
        names = ["rs_free", "rs_route_options_init", "rs_route", "rs_run_config", "rs_plot", "rs_trace_info_json",
                 "rs_routers_json", "rs_metrics_json", "rs_load_plugin", "rs_callback_router_register"]
        stubs = "".join(f"int {n}(void) {{ return -1; }}\n" for n in names)
        # 15 plugin structures (rs_error first), then rs_route_options, rs_block, rs_callback_router
        so = self.compile("layout", f"""
            #include <stddef.h>
            const char *rs_version(void) {{ return "{routesim.__version__}"; }}
            static const size_t sizes[18] = {{1024, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 8, 8, 8}};
            const size_t *rs_struct_sizes(int *count) {{ *count = 18; return sizes; }}
            """ + stubs)
        rc, out = run_python(PROBE, {"ROUTESIM_LIB": so})
        self.assertIn("sizeof(rs_route_options) is 8 in the library", out)
        # a library listing another number of structures (one more plugin structure, say)
        so = self.compile("count", f"""
            #include <stddef.h>
            const char *rs_version(void) {{ return "{routesim.__version__}"; }}
            static const size_t sizes[19] = {{1024}};
            const size_t *rs_struct_sizes(int *count) {{ *count = 19; return sizes; }}
            """ + stubs)
        rc, out = run_python(PROBE, {"ROUTESIM_LIB": so})
        self.assertIn("the library lists 19 shared structures, the routesim Python package 18", out)

    def test_missing_library_named(self):
        rc, out = run_python(PROBE, {"ROUTESIM_LIB": self.path("absent.so")})
        self.assertIn(f"ROUTESIM_LIB={self.path('absent.so')}: no such file", out)
        rc, out = run_python("import routesim; print('version', routesim.__version__)",
                             {"ROUTESIM_LIB": self.path("absent.so")})
        self.assertEqual(rc, 0, out)
        self.assertIn("version", out, "importing needs no library")


if __name__ == "__main__":
    unittest.main()
