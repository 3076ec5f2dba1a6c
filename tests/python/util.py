"""Shared helpers of the Python package tests: the binary, small traces
made by `routesim gen` or by h5py (docs/trace-format.md), and the
command line's results.csv for comparison."""

import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
from interop_util import write_logits_trace  # noqa: E402  (the trace writer users' scripts resemble)
BIN = os.path.abspath(os.environ.get("ROUTESIM_BIN", os.path.join(ROOT, "build", "routesim")))


def run_cli(*args, check=True):
    """Runs the binary; returns the CompletedProcess (failing the test on a
    non-zero exit when check)."""
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True,
                       env=dict(os.environ, ROUTESIM_NO_PROGRESS="1"))
    if check and r.returncode != 0:
        raise AssertionError(f"routesim {' '.join(map(str, args))} failed: {r.stderr.strip()}")
    return r


def gen_trace(path, tokens=600, seed=1, preset="small", **settings):
    args = ["gen", "--preset", preset, "--tokens", tokens, "--seed", seed, "-o", path, "--no-progress"]
    for name, value in settings.items():
        args += [f"--{name}", value]
    run_cli(*args)
    return path


def write_trace(path, logits, offsets=None, token_ids=None, phase=None, **attrs):
    """A float32 trace [T, L, E] written with h5py, as the interop tests write them."""
    write_logits_trace(path, logits, offsets=offsets, token_ids=token_ids, phase=phase, **attrs)
    return path


def tied_logits(rng, shape, quantum=0.25):
    """Normal logits rounded to multiples of quantum: rows hold exact ties."""
    return (np.round(rng.normal(size=shape) / quantum) * quantum).astype(np.float32)


def cli_results(tmp, trace, router, metrics, *extra):
    """The rows `routesim route --csv` writes, as (key tuple -> value text)."""
    csv = os.path.join(tmp, f"cli-{abs(hash((router, metrics, extra)))}.csv")
    run_cli("route", trace, "--router", router, "--metrics", metrics, "--csv", csv, "--no-progress", *extra)
    return csv


class TempDirTest(unittest.TestCase):
    """A test with its own temporary directory, self.tmp."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="routesim-pytest-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)


def csv_rows(path):
    """results.csv as written: a list of dicts of text."""
    import csv
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def same_value(a, b):
    """Bit-for-bit equality of two floats; any two NaNs are equal."""
    a, b = float(a), float(b)
    if np.isnan(a) or np.isnan(b):
        return bool(np.isnan(a) and np.isnan(b))
    return np.float64(a).tobytes() == np.float64(b).tobytes()


def assert_same_results(test, df, csv_path):
    """df holds exactly the rows of csv_path, in order, values bit for bit."""
    rows = csv_rows(csv_path)
    test.assertEqual(list(df.columns), ["run", "trace", "router", "params", "metric", "key", "layer", "value"])
    test.assertEqual(len(df), len(rows), f"row count differs from {csv_path}")
    test.assertGreater(len(rows), 0)
    for i, (got, want) in enumerate(zip(df.itertuples(index=False), rows)):
        for col in ("run", "trace", "router", "params", "metric", "key"):
            test.assertEqual(getattr(got, col), want[col], f"row {i} column {col}")
        test.assertEqual(got.layer, -1 if want["layer"] == "all" else int(want["layer"]), f"row {i} layer")
        test.assertTrue(same_value(got.value, float(want["value"])),
                        f"row {i} ({want['metric']} layer {want['layer']}): {got.value!r} != {want['value']}")
