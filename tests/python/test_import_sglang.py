"""python3 -m routesim import sglang: dumps written with torch.save in the
structure of SGLang's expert distribution recorder
(python/sglang/srt/eplb/expert_distribution.py: _DetailSinglePassGatherer.collect,
_DetailAccumulator.dump, _StatAccumulator.dump) import into a trace that
holds, token by token, the logical experts of every request of every forward
pass; stat dumps into a loads file; malformed dumps fail with one line and
no output.

Run: PYTHONPATH=python ROUTESIM_BIN=build/routesim /usr/bin/python3 -m unittest tests/python/test_import_sglang.py"""

import contextlib
import glob
import io
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from util import ROOT, TempDirTest, run_cli  # noqa: E402

NUM_LAYERS = 4        # layer 0 is dense: the recorder never writes its rows
LOGICAL = 6           # logical experts per layer
PHYSICAL = 8          # physical slots: two logical experts have a second replica
TOP_K = 2
SLOTS = 8             # _DetailSinglePassGatherer._TOP_K_NUM
EXTEND, DECODE, IDLE = 1, 2, 4


def physical_to_logical_map():
    """[L, P]: not the identity; layer l's slots are a rotation of the
    logical experts plus two replicas."""
    rows = []
    for layer in range(NUM_LAYERS):
        base = [(p + 2 * layer + 1) % LOGICAL for p in range(LOGICAL)]
        rows.append(base + [base[3], base[0]])
    return torch.tensor(rows, dtype=torch.int64)


class Dumps:
    """Forward passes as SGLang runs them, and what the trace must hold."""

    def __init__(self, seed=5):
        self.rng = np.random.default_rng(seed)
        self.table = physical_to_logical_map().numpy()
        self.records = []
        self.expected = []  # per sequence: (token ids, phase, [n, L-1, K] logical ids, SGLang positions)

    def _physical(self, layer, logical):
        slots = np.flatnonzero(self.table[layer] == logical)
        return int(self.rng.choice(slots))  # any replica of the logical expert

    def forward(self, mode, requests, unrouted=()):
        """requests: list of (first position, length); unrouted: (token, layer)
        rows left at -1 (a masked padded region)."""
        n = sum(length for _, length in requests)
        ids = torch.full((NUM_LAYERS, n, SLOTS), -1, dtype=torch.int32)
        logical = np.full((n, NUM_LAYERS - 1, TOP_K), -1, np.int32)
        for layer in range(1, NUM_LAYERS):  # on_select_experts writes [:n, :k] of the MoE layers
            for t in range(n):
                if (t, layer) in unrouted:
                    continue
                chosen = self.rng.choice(LOGICAL, TOP_K, replace=False)
                logical[t, layer - 1] = chosen
                ids[layer, t, :TOP_K] = torch.tensor([self._physical(layer, e) for e in chosen])
        input_ids = [int(v) for v in self.rng.integers(0, 32000, n)]
        positions = [p0 + i for p0, length in requests for i in range(length)]
        count = torch.zeros((NUM_LAYERS, PHYSICAL), dtype=torch.int32)  # _convert_per_token_to_global_physical_count
        for layer in range(NUM_LAYERS):
            row = ids[layer][ids[layer] >= 0].long()
            count[layer] += torch.bincount(row, minlength=PHYSICAL).int()
        self.records.append(dict(
            forward_pass_id=len(self.records), rank=0, gatherer_key="primary",
            input_ids=input_ids, positions=positions,
            extend_seq_lens=[length for _, length in requests] if mode == EXTEND else None,
            forward_mode=mode, topk_ids_of_layer=ids, misc_objects=[], global_physical_count=count))
        t = 0
        for p0, length in requests:
            self.expected.append((input_ids[t:t + length], 1 if mode == DECODE else 0, logical[t:t + length],
                                  positions[t:t + length]))
            t += length

    def save(self, path, rank=0):
        for r in self.records:
            r["rank"] = rank
        torch.save(dict(records=self.records, last_physical_to_logical_map=physical_to_logical_map()), path)
        return path


def standard_dumps():
    d = Dumps()
    d.forward(EXTEND, [(0, 3), (0, 5)])                        # prefill of two requests
    d.forward(DECODE, [(3, 1), (5, 1)])                        # their first decode step
    d.forward(IDLE, [])                                        # DP attention: nothing to run
    d.forward(EXTEND, [(7, 4), (0, 2)])                        # a cached prefix of 7, and a new request
    d.forward(DECODE, [(4, 1), (6, 1), (11, 1)], unrouted={(1, 2)})
    return d


def run_import(*args, process=False):
    """`python3 -m routesim import sglang ARGS`: in a new interpreter when
    process is set, else the same entry point called in this one (a new
    interpreter spends seconds importing torch)."""
    argv = ["import", "sglang", *map(str, args)]
    if process:
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
        return subprocess.run([sys.executable, "-m", "routesim", *argv], capture_output=True, text=True, env=env)
    from routesim.__main__ import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's usage errors
            code = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


class ImportSglangTest(TempDirTest):

    def import_ok(self, *args, process=False):
        r = run_import(*args, process=process)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_per_token_trace_token_by_token(self):
        os.mkdir(self.path("dumps"))
        d = standard_dumps()
        d.save(self.path("dumps/expert_distribution_recorder_1718000000.25_0.pt"))
        out = self.path("sglang.h5")
        r = self.import_ok(self.path("dumps"), "-o", out, process=True)  # the command itself, once
        self.assertIn("routesim: note: 1 (token, layer) rows of the kept layers hold no expert", r.stderr)

        with h5py.File(out, "r") as f:
            self.assertEqual(f.attrs["format"], "routesim-trace")
            self.assertEqual(f.attrs["unit"], "token")
            self.assertEqual(int(f.attrs["num_layers"]), NUM_LAYERS - 1)
            self.assertEqual(int(f.attrs["num_experts"]), LOGICAL)
            self.assertEqual(int(f.attrs["top_k"]), TOP_K)
            self.assertEqual(f.attrs["layer_index"].tolist(), [1, 2, 3])
            ids = f["router/topk_ids"][...]
            tokens = f["tokens/ids"][...]
            phase = f["tokens/phase"][...]
            offsets = f["sequences/offsets"][...]
            notes = f.attrs["import_notes"]
        self.assertEqual(ids.dtype, np.int32)
        self.assertEqual(ids.shape[1:], (NUM_LAYERS - 1, TOP_K))
        self.assertEqual(len(offsets) - 1, len(d.expected))
        self.assertEqual(offsets[-1], len(tokens))
        for s, (want_tokens, want_phase, want_ids, want_positions) in enumerate(d.expected):
            a, b = offsets[s], offsets[s + 1]
            self.assertEqual(b - a, len(want_tokens), f"sequence {s}")
            np.testing.assert_array_equal(tokens[a:b], want_tokens, f"sequence {s} token ids")
            np.testing.assert_array_equal(phase[a:b], want_phase, f"sequence {s} phase")
            np.testing.assert_array_equal(ids[a:b], want_ids, f"sequence {s} logical experts")
            # a token's position in the trace is its place in its sequence: SGLang's position less the first
            np.testing.assert_array_equal(np.arange(b - a), np.asarray(want_positions) - want_positions[0])
        # decode token 1 of the last pass was not routed in layer 2: a row of -1, not observed
        self.assertEqual(ids[offsets[len(d.expected) - 2], 1].tolist(), [-1, -1])
        self.assertEqual(int((ids == -1).all(axis=2).sum()), 1)
        self.assertIn("last_physical_to_logical_map", notes)
        self.assertIn("1 of the 4 layers in the map (0) recorded no expert", notes)

        info = run_cli("info", out).stdout
        imported = [line for line in info.splitlines() if line.startswith("imported")]
        self.assertEqual(len(imported), len(notes.split("\n")), info)
        self.assertTrue(any("physical ids, mapped to logical experts" in line for line in imported), info)
        self.assertTrue(any("padding" in line and "-1 slots dropped" in line for line in imported), info)
        self.assertTrue(any("no request ids" in line for line in imported), info)
        # the trace replays: every router of the C engine reads it
        run_cli("route", out, "--router", "replay", "--metrics", "load", "--no-progress")

    def test_ranks_in_order_and_rank_option(self):
        os.mkdir(self.path("dumps"))
        zero, one = standard_dumps(), Dumps(seed=9)
        one.forward(EXTEND, [(0, 2)])
        one.save(self.path("dumps/expert_distribution_recorder_1718000000.5_1.pt"), rank=1)
        zero.save(self.path("dumps/expert_distribution_recorder_1718000000.5_0.pt"), rank=0)
        both = self.path("both.h5")
        self.import_ok(self.path("dumps"), "-o", both, "--quiet")
        with h5py.File(both, "r") as f:
            offsets = f["sequences/offsets"][...]
            tokens = f["tokens/ids"][...]
        self.assertEqual(len(offsets) - 1, len(zero.expected) + 1)  # rank 0's sequences, then rank 1's
        np.testing.assert_array_equal(tokens[offsets[-2]:], one.expected[0][0])
        only = self.path("one.h5")
        self.import_ok(self.path("dumps"), "-o", only, "--rank", "1", "--quiet")
        with h5py.File(only, "r") as f:
            np.testing.assert_array_equal(f["tokens/ids"][...], one.expected[0][0])
            np.testing.assert_array_equal(f["router/topk_ids"][...], one.expected[0][2])

    def test_stat_logical_count_loads_file(self):
        rng = np.random.default_rng(3)
        count = torch.tensor(rng.integers(0, 50, (3, NUM_LAYERS, LOGICAL)), dtype=torch.int32)
        dump = self.path("expert_distribution_recorder_1718000001.0.pt")
        torch.save(dict(rank=0, logical_count=count, average_utilization_rate_over_window=None), dump)
        out = self.path("loads.json")
        self.import_ok(dump, "-o", out)
        with open(out) as f:
            loads = json.load(f)
        self.assertEqual(loads["logical_count"], count.sum(0).tolist())
        self.assertEqual((loads["num_layers"], loads["num_experts"]), (NUM_LAYERS, LOGICAL))
        self.assertTrue(loads["import_notes"])

    def expect_error(self, inputs, message):
        out = self.path("out.h5")
        r = run_import(*inputs, "-o", out)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("routesim: error: "), lines[0])
        self.assertIn(message, lines[0])
        self.assertFalse(os.path.exists(out))
        self.assertEqual(glob.glob(self.path("out.h5.*")), [])
        return lines[0]

    def malformed(self, change, name="expert_distribution_recorder_1718000000.25_0.pt"):
        d = standard_dumps()
        data = dict(records=d.records, last_physical_to_logical_map=physical_to_logical_map())
        change(data)
        path = self.path(name)
        torch.save(data, path)
        return path

    def test_missing_key(self):
        path = self.malformed(lambda data: data["records"][1].pop("extend_seq_lens"))
        line = self.expect_error([path], "records[1]: extend_seq_lens: missing key")
        self.assertIn(path, line)
        path = self.malformed(lambda data: data.pop("last_physical_to_logical_map"))
        self.expect_error([path], "last_physical_to_logical_map: missing key")

    def test_wrong_shape(self):
        def widen(data):
            data["records"][3]["topk_ids_of_layer"] = torch.full((NUM_LAYERS, 7, SLOTS), -1, dtype=torch.int32)
        self.expect_error([self.malformed(widen)],
                          "records[3]: topk_ids_of_layer: shape [4, 7, 8], expected [4, 6, 8]")

        def lengths(data):
            data["records"][0]["extend_seq_lens"] = [3, 4]
        self.expect_error([self.malformed(lengths)],
                          "records[0]: extend_seq_lens: [3, 4] sums to 7, but input_ids has 8")

    def test_ids_out_of_range(self):
        def bad(data):
            data["records"][1]["topk_ids_of_layer"][2, 1, 0] = PHYSICAL
        self.expect_error([self.malformed(bad)],
                          "records[1]: topk_ids_of_layer[2][1][0]: physical expert 8 is outside [0, 8)")

        def replicas(data):  # two replicas of one logical expert in one row: the map is not the one used
            row = data["records"][0]["topk_ids_of_layer"][1, 0]
            row[0], row[1] = 0, 7  # layer 1: slot 7 replicates slot 0's logical expert
        self.expect_error([self.malformed(replicas)], "records[0]: topk_ids_of_layer[1][0]: two physical experts")

    def test_not_a_torch_file(self):
        path = self.path("expert_distribution_recorder_1718000000.25_0.pt")
        with open(path, "w") as f:
            f.write("layer,expert\n0,1\n")
        self.expect_error([path], f"{path}: not a file torch.save wrote")
        self.expect_error([self.path("absent")], "absent: no such file or directory")
        count = torch.tensor([[[1, -2]]], dtype=torch.int32)
        stat = self.path("expert_distribution_recorder_1718000002.0.pt")
        torch.save(dict(rank=0, logical_count=count), stat)
        self.expect_error([stat], "logical_count[0][0][1]: -2 is negative")

    def test_failed_import_keeps_existing_output(self):
        good = self.path("good.h5")
        os.mkdir(self.path("dumps"))
        standard_dumps().save(self.path("dumps/expert_distribution_recorder_1.0_0.pt"))
        self.import_ok(self.path("dumps"), "-o", good, "--quiet")
        with open(good, "rb") as f:
            before = f.read()

        def bad(data):
            data["records"][3]["positions"][1] = 3
        path = self.malformed(bad)
        r = run_import(path, "-o", good)
        self.assertEqual(r.returncode, 1)
        self.assertIn("records[3]: positions[1]: 3, expected 8", r.stderr)
        with open(good, "rb") as f:
            self.assertEqual(f.read(), before)
        r = run_import(path, "-o", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("-o is the input", r.stderr)
