"""info, routers, metrics, load_plugin and plot describe what the library
knows, as `routesim info / routers / metrics / plot` do."""

import json
import os
import shutil
import unittest

import numpy as np

import routesim
from util import TempDirTest, gen_trace, run_cli, write_trace


class TraceInfo(TempDirTest):
    def test_generated_trace(self):
        trace = gen_trace(self.path("t.h5"), tokens=321, seed=2)
        info = routesim.info(trace)
        self.assertEqual(info["path"], trace)
        self.assertEqual((info["num_tokens"], info["num_layers"], info["num_experts"]), (321, 4, 8))
        self.assertEqual((info["top_k"], info["scoring"], info["unit"]), (2, "softmax", "token"))
        self.assertTrue(info["has_logits"] and info["has_token_ids"])
        self.assertFalse(info["has_phase"])
        self.assertEqual((info["n_group"], info["topk_group"], info["routed_scaling_factor"]), (None, None, None))

    def test_grouped_routing_attributes(self):
        trace = write_trace(self.path("g.h5"), np.zeros((4, 1, 8), np.float32), offsets=[0, 4], top_k=2,
                            scoring="softmax", norm_topk=0, n_group=4, topk_group=2, routed_scaling_factor=16.0)
        info = routesim.info(trace)
        self.assertEqual((info["n_group"], info["topk_group"], info["routed_scaling_factor"]), (4, 2, 16.0))

    def test_h5py_trace(self):
        trace = write_trace(self.path("w.h5"), np.zeros((12, 3, 5), np.float32), offsets=[0, 4, 12],
                            phase=np.zeros(12), model="tiny")
        info = routesim.info(trace)
        self.assertEqual((info["num_tokens"], info["num_layers"], info["num_experts"]), (12, 3, 5))
        self.assertEqual((info["num_sequences"], info["model"]), (2, "tiny"))
        self.assertTrue(info["has_phase"])
        self.assertFalse(info["has_token_ids"])
        self.assertEqual(info["import_notes"], [])

    def test_import_notes(self):
        notes = "no sequence ids: sequences of 4 tokens assumed (--micro-batch 4)\nlayer 0 is dense: written as unobserved"
        trace = write_trace(self.path("n.h5"), np.zeros((8, 2, 4), np.float32), offsets=[0, 4, 8],
                            source="an importer", import_notes=notes)
        self.assertEqual(routesim.info(trace)["import_notes"], notes.split("\n"))
        lines = run_cli("info", trace).stdout.splitlines()
        self.assertEqual([x for x in lines if x.startswith("imported ")],
                         ["imported   " + x for x in notes.split("\n")])


class Registries(unittest.TestCase):
    def test_routers(self):
        df = routesim.routers()
        cli = json.loads(run_cli("routers", "--json").stdout)
        names = list(df.name)
        self.assertEqual(names[:len(cli["routers"])], [r["name"] for r in cli["routers"]])
        for name in ("topk", "switch", "expert_choice", "mixtral", "deepseek-v3"):
            self.assertIn(name, names)
        rows = df.set_index("name")
        self.assertEqual(rows.loc["topk", "params"], "k=2,renorm=1,scale=1")
        self.assertEqual(rows.loc["topk", "preset_of"], "")
        self.assertTrue(rows.loc["topk", "causal"] and rows.loc["topk", "token_choice"])
        self.assertFalse(rows.loc["expert_choice", "causal"])
        self.assertEqual((rows.loc["mixtral", "preset_of"], rows.loc["mixtral", "params"]), ("topk", "k=2,renorm=1"))
        self.assertEqual([p["name"] for p in rows.loc["topk", "param_defs"]], ["k", "renorm", "scale"])
        self.assertEqual(df["causal"].dtype, bool)

    def test_python_router_listed(self):
        routesim.Router(lambda b: None, "py_listed", 3, params={"k": 3, "mode": "fast"}, summary="listed here")
        row = routesim.routers().set_index("name").loc["py_listed"]
        self.assertEqual((row.summary, row.params), ("listed here", "k=3,mode=fast"))
        self.assertTrue(row.token_choice)

    def test_metrics(self):
        df = routesim.metrics()
        cli = json.loads(run_cli("metrics", "--json").stdout)
        self.assertEqual(list(df.name), [o["name"] for fam in cli for o in fam["outputs"]])
        rows = df.set_index("name")
        self.assertEqual(rows.loc["load.maxvio", "family"], "load")
        self.assertIn("max_e load_e", rows.loc["load.maxvio", "definition"])
        self.assertTrue(rows.loc["agreement.jaccard", "needs_reference"])
        self.assertFalse(rows.loc["load.maxvio", "needs_reference"])

    @unittest.skipUnless(os.environ.get("ROUTESIM_PLUGIN"), "ROUTESIM_PLUGIN names no plugin (make python-tests does)")
    def test_load_plugin(self):
        routesim.load_plugin(os.environ["ROUTESIM_PLUGIN"])
        self.assertIn("temperature_topk", set(routesim.routers().name))


class Plot(TempDirTest):
    def test_figures_from_a_run(self):
        trace = gen_trace(self.path("t.h5"), tokens=300, seed=1)
        out = self.path("res")
        routesim.run({"traces": [trace], "routers": ["topk:k=1", "topk:k=2"], "metrics": ["load"], "output": out})
        formats = ["png"] if shutil.which("gnuplot") else []
        files = routesim.plot(out, kinds="bars", metrics=["load.maxvio", "load.gini"])
        names = sorted(os.path.relpath(f, os.path.join(out, "plots")) for f in files)
        self.assertTrue(names, "some files written")
        self.assertTrue(all(os.path.exists(f) for f in files))
        for ext in ["dat", "gp", "txt"] + formats:
            self.assertTrue(any(n.endswith("." + ext) for n in names), f"no .{ext} among {names}")
        self.assertTrue(all("bars" in n for n in names), names)
        other = routesim.plot(out, formats="svg", kinds=["bars"], metrics="load.maxvio", output=self.path("figs"))
        self.assertTrue(other and all(f.startswith(self.path("figs")) for f in other))
        with self.assertRaisesRegex(routesim.RoutesimError, "no_such_kind"):
            routesim.plot(out, kinds="no_such_kind")


if __name__ == "__main__":
    unittest.main()
