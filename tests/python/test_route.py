"""routesim.route and routesim.run give the command line's results.csv,
value for value; read_results parses results.csv exactly."""

import os
import time
import unittest

import h5py
import numpy as np

import routesim
from util import TempDirTest, assert_same_results, cli_results, gen_trace, run_cli, same_value


class RouteMatchesCommandLine(TempDirTest):
    def setUp(self):
        super().setUp()
        self.trace = gen_trace(self.path("small.h5"), tokens=700, seed=3)

    def check_router(self, router, metrics, *extra, **kwargs):
        csv = cli_results(self.tmp, self.trace, router, metrics, *extra)
        df = routesim.route(self.trace, router, metrics, **kwargs)
        assert_same_results(self, df, csv)
        return df

    def test_builtin_routers(self):
        for router in ("topk:k=2", "topk:k=3,renorm=0", "switch", "expert_choice",
                       "topk:k=2,capacity_factor=1.0,drop_policy=probs", "random:k=2,seed=5"):
            with self.subTest(router=router):
                self.check_router(router, "load,entropy,activation")

    def test_reference_metric(self):
        df = self.check_router("topk:k=1", "agreement,load", "--reference", "topk:k=2", reference="topk:k=2")
        self.assertIn("agreement.jaccard", set(df.metric))

    def test_options_pass_through(self):
        self.check_router("aux_free_bias:k=2", "load", "--batch-tokens", "64", "--threads", "2",
                          "--chunk-tokens", "128", batch_tokens=64, threads=2, chunk_tokens=128)

    def test_breakdown(self):
        df = self.check_router("topk:k=2", "load,srp", "--by", "domain", by="domain")
        domains = {k.rsplit("domain=", 1)[1] for k in df.key if "domain=" in k}
        self.assertGreater(len(domains), 1)
        self.assertEqual(len(df[df.key.str.contains("domain=")]), len(domains) * len(df[~df.key.str.contains("domain=")]))
        with self.assertRaisesRegex(routesim.RoutesimError, "unknown breakdown 'task'"):
            routesim.route(self.trace, "topk:k=2", "load", by=["domain", "task"])

    def test_device(self):
        # no GPU here: the device path runs on the host only when allowed, and then gives the CPU's rows
        os.environ["ROUTESIM_ALLOW_HOST_FALLBACK"] = "1"
        try:
            df = self.check_router("topk:k=2", "load,entropy,activation", "--device", "gpu", device="gpu")
            assert_same_results(self, df, cli_results(self.tmp, self.trace, "topk:k=2", "load,entropy,activation"))
        finally:
            del os.environ["ROUTESIM_ALLOW_HOST_FALLBACK"]
        with self.assertRaisesRegex(ValueError, "device: expected 'cpu' or 'gpu'"):
            routesim.route(self.trace, "topk:k=2", "load", device="tpu")

    def test_metrics_as_list_and_none(self):
        csv = cli_results(self.tmp, self.trace, "topk:k=2", "load,entropy.router_entropy")
        assert_same_results(self, routesim.route(self.trace, "topk:k=2", ["load", "entropy.router_entropy"]), csv)
        empty = routesim.route(self.trace, "topk:k=2", "none")
        self.assertEqual(len(empty), 0)
        self.assertEqual(list(empty.columns), routesim.COLUMNS)

    def test_decisions_file(self):
        out = self.path("decisions.h5")
        cli_out = self.path("cli-decisions.h5")
        run_cli("route", self.trace, "--router", "topk:k=2", "--out", cli_out, "--metrics", "none", "--no-progress")
        routesim.route(self.trace, "topk:k=2", "none", out=out)
        with h5py.File(out, "r") as a, h5py.File(cli_out, "r") as b:
            np.testing.assert_array_equal(a["decisions/ids"][...], b["decisions/ids"][...])
            np.testing.assert_array_equal(a["decisions/weights"][...], b["decisions/weights"][...])

    def test_decisions_file_never_replaces_the_trace(self):
        before = open(self.trace, "rb").read()
        link = self.path("link.h5")
        os.symlink(self.trace, link)
        for out in (self.trace, link, os.path.join(self.tmp, ".", "small.h5")):
            with self.subTest(out=out):
                with self.assertRaisesRegex(routesim.RoutesimError, "would overwrite the input .*small.h5"):
                    routesim.route(self.trace, "topk:k=2", "none", out=out, force=True)
        self.assertEqual(open(self.trace, "rb").read(), before)
        other = gen_trace(self.path("other.h5"), tokens=50, seed=1)
        with self.assertRaisesRegex(routesim.RoutesimError, "other.h5: exists and is not a decisions file "
                                    r"\(it is a routesim trace\); force=True overwrites it"):
            routesim.route(self.trace, "topk:k=2", "none", out=other)
        routesim.route(self.trace, "topk:k=2", "none", out=other, force=True)
        with h5py.File(other, "r") as f:
            self.assertEqual(f.attrs["format"], "routesim-decisions")

    def test_dtypes(self):
        df = routesim.route(self.trace, "topk:k=2", "load")
        self.assertEqual(df["layer"].dtype, np.int64)
        self.assertEqual(df["value"].dtype, np.float64)
        self.assertIn(routesim.ALL_LAYERS, set(df.layer))
        self.assertEqual(set(df.layer) - {routesim.ALL_LAYERS}, set(range(4)))
        self.assertTrue((df.key == "").any(), "empty keys stay empty strings")


class RunMatchesCommandLine(TempDirTest):
    def test_config_dict_and_file(self):
        trace = gen_trace(self.path("t.h5"), tokens=500, seed=4)
        config = {"name": "cmp", "traces": [trace], "routers": ["topk:k=2", {"name": "topk", "params": {"k": [1, 3]}}],
                  "metrics": ["load", {"name": "entropy"}], "output": self.path("cli")}
        path = self.path("cmp.json")
        import json
        with open(path, "w") as f:
            json.dump(config, f)
        run_cli("run", path, "--no-progress", "-q", "--no-plots")
        df = routesim.run(config, output=self.path("api"))
        assert_same_results(self, df, self.path("cli/results.csv"))
        self.assertTrue(os.path.exists(self.path("api/results.csv")))
        df_file = routesim.run(path, output=self.path("api2"), threads=2)
        assert_same_results(self, df_file, self.path("cli/results.csv"))
        assert_same_results(self, routesim.read_results(self.path("api2")), self.path("cli/results.csv"))

    def test_stored_runs_are_reused_unless_forced(self):
        trace = gen_trace(self.path("f.h5"), tokens=300, seed=6)
        config = {"traces": [trace], "routers": ["topk:k=2", "topk:k=1"], "metrics": ["load"],
                  "output": self.path("forced")}
        first = routesim.run(config)
        runs = os.path.join(self.path("forced"), "runs")

        def stored():
            return {name: os.stat(os.path.join(runs, name)).st_mtime_ns for name in os.listdir(runs)}
        before = stored()
        self.assertEqual(len(before), 2)
        time.sleep(0.02)
        assert_same_results(self, routesim.run(config), os.path.join(self.path("forced"), "results.csv"))
        self.assertEqual(stored(), before)  # reused
        forced = routesim.run(config, force=True)
        after = stored()
        self.assertEqual(set(after), set(before))
        self.assertTrue(all(after[name] > before[name] for name in before))  # recomputed
        self.assertTrue(first.equals(forced))
        with self.assertRaises(TypeError):
            routesim.run(config, force=1)

    def test_relative_paths_are_from_the_current_directory(self):
        old = os.getcwd()
        os.chdir(self.tmp)
        try:
            gen_trace("rel.h5", tokens=200, seed=2)
            df = routesim.run({"traces": ["rel.h5"], "routers": ["topk:k=2"], "metrics": ["load"], "output": "out"})
            self.assertTrue(os.path.exists(os.path.join(self.tmp, "out", "results.csv")))
            self.assertEqual(set(df.trace), {"rel.h5"})
        finally:
            os.chdir(old)


class ReadResults(TempDirTest):
    def test_exact_values_and_special_text(self):
        path = self.path("results.csv")
        with open(path, "w") as f:
            f.write("run,trace,router,params,metric,key,layer,value\n"
                    'a,"x,y.h5",topk,k=2;renorm=1,load.maxvio,,all,0.23999999999999999\n'
                    "a,x.h5,topk,,load.maxvio,m=4,0,nan\n"
                    "a,x.h5,topk,,load.maxvio,,1,-inf\n"
                    "a,x.h5,topk,,load.maxvio,,2,inf\n"
                    "a,x.h5,topk,,load.maxvio,,3,4.9406564584124654e-324\n"
                    "a,x.h5,topk,,load.maxvio,,4,-0\n")
        df = routesim.read_results(path)
        self.assertEqual(list(df.trace[:2]), ["x,y.h5", "x.h5"])
        self.assertEqual(list(df.params[:2]), ["k=2;renorm=1", ""])
        self.assertEqual(list(df.key[:2]), ["", "m=4"])
        self.assertEqual(list(df.layer), [-1, 0, 1, 2, 3, 4])
        want = [0.23999999999999999, float("nan"), -np.inf, np.inf, 5e-324, -0.0]
        for got, w in zip(df.value, want):
            self.assertTrue(same_value(got, w), f"{got!r} != {w!r}")
        self.assertTrue(same_value(routesim.read_results(self.tmp).value[0], 0.23999999999999999))

    def test_bad_files(self):
        with self.assertRaisesRegex(routesim.RoutesimError, "no such file"):
            routesim.read_results(self.path("missing.csv"))
        bad = self.path("bad.csv")
        with open(bad, "w") as f:
            f.write("run,value\nx,1\n")
        with self.assertRaisesRegex(routesim.RoutesimError, "bad.csv: columns"):
            routesim.read_results(bad)
        with self.assertRaises(TypeError):
            routesim.read_results(3)


if __name__ == "__main__":
    unittest.main()
