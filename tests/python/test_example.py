"""examples/python/record_route_compare.py end to end: it records a toy
model, routes the trace with its Python router (a sweep) and built-ins, and
writes the figures; the numbers it prints follow from the rule."""

import os
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

import routesim

from util import ROOT

SCRIPT = os.path.join(ROOT, "examples", "python", "record_route_compare.py")


class RecordRouteCompare(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="routesim-example-")
        cls.out = os.path.join(cls.tmp.name, "out")
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
        cls.proc = subprocess.run([sys.executable, SCRIPT, cls.out], capture_output=True, text=True, env=env)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_runs_and_writes_results_and_figures(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        self.assertIn("confident_top1:threshold=0.3", self.proc.stdout)
        plots = os.listdir(os.path.join(self.out, "plots"))
        self.assertIn("sweep-activation-experts_per_token-vs-threshold.gp", plots)
        self.assertIn("bars-load-maxvio.dat", plots)

    def test_recorded_trace(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        with h5py.File(os.path.join(self.out, "toy-mixtral.h5"), "r") as f:
            offsets = f["/sequences/offsets"][:]
            phase = f["/tokens/phase"][:]
            self.assertEqual(f["/router/logits"].shape[1:], (4, 8))
        self.assertEqual(len(offsets) - 1, 6 * 4)  # six batches of four prompts
        for s in range(len(offsets) - 1):  # each prompt, then its 16 decode tokens
            seq = phase[offsets[s]:offsets[s + 1]]
            self.assertEqual(int(seq.sum()), 16)
            self.assertTrue(np.all(seq[-16:] == 1))

    def test_experts_per_token_follow_the_threshold(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        df = routesim.read_results(self.out)
        k = df[(df.metric == "activation.experts_per_token") & (df.layer == routesim.ALL_LAYERS)]
        per_run = dict(zip(k.run, k.value))
        lows = [per_run[f"confident_top1:threshold={t}"] for t in ("0.2", "0.3", "0.4")]
        self.assertTrue(1.0 <= lows[0] < lows[1] < lows[2] <= 2.0, lows)
        self.assertEqual(per_run["topk:k=2"], 2.0)


if __name__ == "__main__":
    unittest.main()
