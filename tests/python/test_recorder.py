"""routesim.Recorder: the trace of a small model equals the gate outputs that
the test captures with its own hooks (bit-exact for float32, bfloat16 by
torch's rounding), padding is dropped, decode tokens land in their
sequences, `routesim route --router native` reproduces torch.topk of those
outputs, and every misuse fails with one clear error and no file.

Run: PYTHONPATH=python ROUTESIM_BIN=build/routesim /usr/bin/python3 -m unittest discover -s tests/python"""

import glob
import os
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toy_moe  # noqa: E402
import routesim  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = 97
E = 8

MIXTRAL_GATES = r"layers\.\d+\.block_sparse_moe\.gate$"
MLP_GATES = r"layers\.\d+\.mlp\.gate$"


def routesim_bin():
    path = os.environ.get("ROUTESIM_BIN", os.path.join(ROOT, "build", "routesim"))
    if not os.access(path, os.X_OK):
        raise AssertionError(f"routesim binary {path} not found (run make, or set ROUTESIM_BIN)")
    return path


def deepseek_logits(gate, inputs, output):
    """What DeepSeek's gate computes before scoring (it returns only ids and weights)."""
    h = inputs[0]
    return F.linear(h.reshape(-1, h.shape[-1]).float(), gate.weight.float())


class GateCapture:
    """The test's own record of every gate output, one dict per forward
    pass: layer position -> logits tensor as the gate (or `logits_of`)
    produced it."""

    def __init__(self, model, names, logits_of=None):
        self.forwards = []
        self.handles = []
        modules = dict(model.named_modules())
        for layer, name in enumerate(names):
            self.handles.append(modules[name].register_forward_hook(self._hook(layer, logits_of)))

    def _hook(self, layer, logits_of):
        def hook(module, inputs, output):
            logits = logits_of(module, inputs, output) if logits_of else output
            if layer == 0:
                self.forwards.append({})
            self.forwards[-1][layer] = logits.detach().clone()
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def batch(rng, B, S, pad=None, steps=0, inactive=()):
    """input ids [B, S], an attention mask (pad='left'/'right': sequence b
    has S - b tokens, at least 1) and `steps` decode steps of next ids [B]
    with an active flag per sequence (sequences in `inactive` stop after
    the first step)."""
    ids = torch.from_numpy(rng.integers(0, VOCAB, (B, S)))
    mask = None
    if pad:
        mask = torch.zeros(B, S, dtype=torch.long)
        for b in range(B):
            n = max(1, S - b)
            if pad == "right":
                mask[b, :n] = 1
            else:
                mask[b, S - n:] = 1
    decode = []
    for j in range(steps):
        active = np.array([j == 0 or b not in inactive for b in range(B)])
        decode.append((torch.from_numpy(rng.integers(0, VOCAB, B)), active))
    return {"ids": ids, "mask": mask, "decode": decode}


def run_batches(rec, model, batches, rerun=False):
    """Prefill then decode each batch, as a generate loop would; `rerun`
    runs the whole sequence again at each decode step (no KV cache)."""
    for bt in batches:
        rec.begin(bt["ids"], bt["mask"])
        model(bt["ids"], attention_mask=bt["mask"])
        seq = bt["ids"]
        for next_ids, active in bt["decode"]:
            rec.extend(next_ids, active=torch.from_numpy(active))
            seq = torch.cat([seq, next_ids[:, None]], 1)
            model(seq if rerun else next_ids[:, None])


def expected_trace(forwards, batches, L, rerun=False):
    """The trace the recorder must write, built token by token from the
    captured gate outputs: per sequence its unpadded prompt, then its decode
    tokens. Returns logits [T, L, E] in the gate's dtype, ids, phase, offsets."""
    rows, ids, phase, offsets = [], [], [], [0]
    f = 0
    for bt in batches:
        B, S = bt["ids"].shape
        mask = bt["mask"] if bt["mask"] is not None else torch.ones(B, S)
        prefill = [forwards[f][l].reshape(B, S, E) for l in range(L)]
        steps = []
        for j in range(len(bt["decode"])):
            out = [forwards[f + 1 + j][l] for l in range(L)]
            total = S + j + 1
            steps.append([o.reshape(B, total, E)[:, -1] if rerun else o.reshape(B, E) for o in out])
        f += 1 + len(bt["decode"])
        for b in range(B):
            for s in range(S):
                if mask[b, s]:
                    rows.append(torch.stack([prefill[l][b, s] for l in range(L)]))
                    ids.append(int(bt["ids"][b, s]))
                    phase.append(0)
            for j, (next_ids, active) in enumerate(bt["decode"]):
                if active[b]:
                    rows.append(torch.stack([steps[j][l][b] for l in range(L)]))
                    ids.append(int(next_ids[b]))
                    phase.append(1)
            offsets.append(len(ids))
    return torch.stack(rows), np.array(ids), np.array(phase), np.array(offsets)


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view({4: np.uint32, 2: np.uint16}[a.dtype.itemsize])


def bf16_bits(t):
    return t.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def no_grad(test):
    def wrapped(self, *args):
        with torch.no_grad():
            return test(self, *args)
    wrapped.__name__ = test.__name__
    return wrapped


class RecorderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.path = os.path.join(self.dir.name, "trace.h5")
        self.rng = np.random.default_rng(7)

    def record(self, model, gates, batches, rerun=False, logits_of=None, **kw):
        """Records `batches` with the recorder and with the test's own hooks."""
        with routesim.Recorder(self.path, model, gates, E, **kw) as rec:
            capture = GateCapture(model, rec.gate_names, logits_of)
            try:
                run_batches(rec, model, batches, rerun)
            finally:
                capture.remove()
        return rec, capture.forwards

    def check_trace(self, forwards, batches, L, rerun=False, dtype="float32"):
        logits, ids, phase, offsets = expected_trace(forwards, batches, L, rerun)
        with h5py.File(self.path, "r") as f:
            d = f["router/logits"]
            self.assertEqual(d.shape, (len(ids), L, E))
            self.assertEqual(d.chunks[1:], (L, E))
            self.assertEqual(d.maxshape[0], None)
            if dtype == "float32":
                self.assertEqual(d.dtype, np.float32)
                self.assertNotIn("encoding", d.attrs)
                # the gate's own values, widened exactly if it ran in a lower precision
                self.assertTrue(np.array_equal(bits(d[...]), bits(logits.float().numpy())))
            else:
                self.assertEqual(d.dtype, np.uint16)
                self.assertEqual(d.attrs["encoding"], "bfloat16")
                self.assertTrue(np.array_equal(d[...], bf16_bits(logits)))
            self.assertEqual(f["tokens/ids"].dtype, np.int32)
            self.assertEqual(f["tokens/phase"].dtype, np.uint8)
            self.assertEqual(f["sequences/offsets"].dtype, np.int64)
            np.testing.assert_array_equal(f["tokens/ids"][...], ids)
            np.testing.assert_array_equal(f["tokens/phase"][...], phase)
            np.testing.assert_array_equal(f["sequences/offsets"][...], offsets)
            self.assertEqual(f.attrs["format"], "routesim-trace")
            self.assertEqual(f.attrs["format_version"], 1)
            self.assertEqual(f.attrs["unit"], "token")
            self.assertEqual(f.attrs["num_layers"], L)
            self.assertEqual(f.attrs["num_experts"], E)
        return logits

    def route_native(self):
        out = os.path.join(self.dir.name, "decisions.h5")
        subprocess.run([routesim_bin(), "route", self.path, "--router", "native", "--out", out, "--metrics", "none",
                        "--no-progress"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with h5py.File(out, "r") as f:
            return f["decisions/ids"][...], f["decisions/weights"][...]

    # -- what is recorded ---------------------------------------------------

    @no_grad
    def test_mixtral_right_padding_decode_several_batches(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        batches = [batch(self.rng, 3, 7, "right", steps=4, inactive={1}),
                   batch(self.rng, 2, 5, None, steps=0),
                   batch(self.rng, 4, 6, "right", steps=2)]
        rec, forwards = self.record(model, MIXTRAL_GATES, batches, top_k=2, scoring="softmax", norm_topk=True,
                                    model_name="toy/mixtral")
        self.assertEqual(rec.gate_names, [f"model.layers.{i}.block_sparse_moe.gate" for i in range(3)])
        logits = self.check_trace(forwards, batches, 3)
        with h5py.File(self.path, "r") as f:
            self.assertEqual(f.attrs["model"], "toy/mixtral")
            self.assertEqual(f.attrs["top_k"], 2)
            self.assertEqual(f.attrs["scoring"], "softmax")
            self.assertEqual(f.attrs["norm_topk"], 1)
            np.testing.assert_array_equal(f.attrs["layer_index"], [0, 1, 2])
            self.assertIn("source", f.attrs)
            self.assertNotIn("router/bias", f)
            # by hand: batch 1 keeps 7, 6, 5 prompt tokens; sequence 1 decodes once, the others 4 times
            np.testing.assert_array_equal(f["sequences/offsets"][:4], [0, 11, 18, 27])
            np.testing.assert_array_equal(f["tokens/phase"][:11], [0] * 7 + [1] * 4)
            np.testing.assert_array_equal(f["tokens/ids"][7:11], [int(s[0][0]) for s in batches[0]["decode"]])

        # the model's own rule, as routesim runs it, is torch's top-k of the same logits
        ids, weights = self.route_native()
        probs = torch.softmax(logits, dim=-1)
        top_w, top_ids = torch.topk(probs, 2, dim=-1)
        np.testing.assert_array_equal(ids, top_ids.numpy())
        np.testing.assert_allclose(weights, (top_w / top_w.sum(-1, keepdim=True)).numpy(), rtol=2e-6, atol=0)

    @no_grad
    def test_qwen2_moe_left_padding_skips_shared_expert_gate_and_dense_layer(self):
        model = toy_moe.ToyMoeForCausalLM("qwen2_moe", layers=4, dense_layers=(1,), k=4)
        batches = [batch(self.rng, 4, 6, "left", steps=3, inactive={0, 2}),
                   batch(self.rng, 3, 4, "left", steps=1)]
        rec, forwards = self.record(model, MLP_GATES, batches, top_k=4, scoring="softmax", norm_topk=False)
        # mlp.shared_expert_gate and the dense layer's mlp.gate_proj are not gates
        self.assertEqual(rec.gate_names, ["model.layers.0.mlp.gate", "model.layers.2.mlp.gate",
                                          "model.layers.3.mlp.gate"])
        logits = self.check_trace(forwards, batches, 3)
        with h5py.File(self.path, "r") as f:
            np.testing.assert_array_equal(f.attrs["layer_index"], [0, 2, 3])
            self.assertEqual(f.attrs["norm_topk"], 0)
            # left padding: sequence b of the first batch keeps its last 6 - b prompt tokens
            first = batches[0]["ids"]
            np.testing.assert_array_equal(f["tokens/ids"][:6], first[0].numpy())
            np.testing.assert_array_equal(f["tokens/ids"][7:12], first[1, 1:].numpy())

        ids, weights = self.route_native()
        top_w, top_ids = torch.topk(torch.softmax(logits, dim=-1), 4, dim=-1)
        np.testing.assert_array_equal(ids, top_ids.numpy())
        np.testing.assert_allclose(weights, top_w.numpy(), rtol=2e-6, atol=0)

    @no_grad
    def test_olmoe_without_attention_mask(self):
        model = toy_moe.ToyMoeForCausalLM("olmoe", k=4)
        batches = [batch(self.rng, 2, 5, None, steps=2), batch(self.rng, 5, 3, None, steps=1)]
        _, forwards = self.record(model, MLP_GATES, batches)
        self.check_trace(forwards, batches, 3)
        with h5py.File(self.path, "r") as f:
            for name in ("top_k", "scoring", "norm_topk"):
                self.assertNotIn(name, f.attrs)

    @no_grad
    def test_gate_output_batch_seq_experts(self):
        model = toy_moe.ToyMoeForCausalLM("unflat")
        batches = [batch(self.rng, 3, 5, "right", steps=2, inactive={2}), batch(self.rng, 2, 4, "left", steps=1)]
        _, forwards = self.record(model, MLP_GATES, batches)
        self.assertEqual(forwards[0][0].dim(), 3)  # the gate really returns [B, S, E]
        self.check_trace(forwards, batches, 3)

    @no_grad
    def test_decode_rerunning_whole_sequences(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        batches = [batch(self.rng, 3, 4, "left", steps=3, inactive={0})]
        _, forwards = self.record(model, MIXTRAL_GATES, batches, rerun=True)
        self.assertEqual(forwards[1][0].shape, (3 * 5, E))
        self.check_trace(forwards, batches, 3, rerun=True)

    @no_grad
    def test_sequences_skipping_some_decode_steps(self):
        model = toy_moe.ToyMoeForCausalLM("olmoe")
        bt = batch(self.rng, 3, 4, "right")
        pattern = [[1, 0, 1], [0, 1, 1], [1, 0, 0], [1, 1, 0]]  # per step, per sequence
        bt["decode"] = [(torch.from_numpy(self.rng.integers(0, VOCAB, 3)), np.array(a, bool)) for a in pattern]
        _, forwards = self.record(model, MLP_GATES, [bt])
        self.check_trace(forwards, [bt], 3)
        with h5py.File(self.path, "r") as f:
            # by hand: prompts of 4, 3, 2 tokens, then 3, 2, 2 decode tokens
            np.testing.assert_array_equal(f["sequences/offsets"][...], [0, 7, 12, 16])
            np.testing.assert_array_equal(f["tokens/ids"][12:16], [int(bt["ids"][2, 0]), int(bt["ids"][2, 1]),
                                                                   int(bt["decode"][0][0][2]),
                                                                   int(bt["decode"][1][0][2])])

    @no_grad
    def test_extend_with_attention_mask(self):
        model = toy_moe.ToyMoeForCausalLM("olmoe")
        ids = torch.from_numpy(self.rng.integers(0, VOCAB, (2, 3)))
        with routesim.Recorder(self.path, model, MLP_GATES, E) as rec:
            rec.begin(ids)
            model(ids)
            rec.extend(torch.tensor([[5], [6]]), attention_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]))
            model(torch.tensor([[5], [6]]))
        with h5py.File(self.path, "r") as f:
            np.testing.assert_array_equal(f["sequences/offsets"][...], [0, 4, 7])
            np.testing.assert_array_equal(f["tokens/ids"][...], list(ids[0].numpy()) + [5] + list(ids[1].numpy()))

    @no_grad
    def test_bfloat16_storage_of_a_float32_model(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        batches = [batch(self.rng, 3, 6, "right", steps=2)]
        _, forwards = self.record(model, MIXTRAL_GATES, batches, dtype="bfloat16")
        logits = self.check_trace(forwards, batches, 3, dtype="bfloat16")
        # rounding really happened (the float32 values are not all bfloat16 already)
        self.assertFalse(torch.equal(logits.to(torch.bfloat16).float(), logits))

    @no_grad
    def test_bfloat16_model(self):
        model = toy_moe.ToyMoeForCausalLM("olmoe").to(torch.bfloat16)
        batches = [batch(self.rng, 2, 5, "left", steps=2)]
        for dtype in ("float32", "bfloat16"):
            with self.subTest(dtype=dtype):
                _, forwards = self.record(model, MLP_GATES, batches, dtype=dtype)
                self.assertEqual(forwards[0][0].dtype, torch.bfloat16)
                self.check_trace(forwards, batches, 3, dtype=dtype)

    @no_grad
    def test_deepseek_gate_tuple_output_and_bias(self):
        model = toy_moe.ToyMoeForCausalLM("deepseek", layers=3, k=3)
        gates = [m for n, m in model.named_modules() if n.endswith("mlp.gate")]
        batches = [batch(self.rng, 3, 5, "right", steps=2, inactive={1}), batch(self.rng, 2, 3, None, steps=1)]
        rec, forwards = self.record(model, MLP_GATES, batches, logits_of=deepseek_logits, output=deepseek_logits,
                                    bias="e_score_correction_bias", top_k=3, scoring="sigmoid", norm_topk=1)
        self.assertEqual(rec.gate_names, ["model.layers.1.mlp.gate", "model.layers.2.mlp.gate"])
        logits = self.check_trace(forwards, batches, 2)
        with h5py.File(self.path, "r") as f:
            bias = f["router/bias"][...]
        self.assertEqual(bias.dtype, np.float32)
        np.testing.assert_array_equal(bias, np.stack([g.e_score_correction_bias.numpy() for g in gates]))

        # routesim's native rule (sigmoid + bias, one group) picks what the gate itself picked
        ids, weights = self.route_native()
        for layer, gate in enumerate(gates):
            scores = torch.sigmoid(logits[:, layer])
            _, own_ids = torch.topk(scores + gate.e_score_correction_bias, 3, dim=-1)
            own_w = scores.gather(1, own_ids)
            own_w = own_w / own_w.sum(-1, keepdim=True)
            np.testing.assert_array_equal(ids[:, layer], own_ids.numpy())
            np.testing.assert_allclose(weights[:, layer], own_w.numpy(), rtol=2e-6, atol=0)

    @no_grad
    def test_deepseek_grouped_rule_attributes(self):
        """n_group, topk_group and routed_scaling_factor land as root attributes, and routesim's
        native rule then picks what DeepSeek-V3's grouped gate (HF DeepseekV3TopkRouter, dropped
        groups at -inf as the official Gate does) picks from the recorded logits."""
        model = toy_moe.ToyMoeForCausalLM("deepseek", layers=3, k=3)
        gates = [m for n, m in model.named_modules() if n.endswith("mlp.gate")]
        batches = [batch(self.rng, 3, 5, "right", steps=2, inactive={1})]
        rec, forwards = self.record(model, MLP_GATES, batches, logits_of=deepseek_logits, output=deepseek_logits,
                                    bias="e_score_correction_bias", top_k=3, scoring="sigmoid", norm_topk=1,
                                    n_group=4, topk_group=2, routed_scaling_factor=2.5)
        logits = self.check_trace(forwards, batches, 2)
        with h5py.File(self.path, "r") as f:
            self.assertEqual((f.attrs["n_group"], f.attrs["topk_group"]), (4, 2))
            self.assertEqual(f.attrs["routed_scaling_factor"], 2.5)
        ids, weights = self.route_native()
        for layer, gate in enumerate(gates):
            scores = torch.sigmoid(logits[:, layer])
            choice = scores + gate.e_score_correction_bias
            group_scores = choice.view(-1, 4, E // 4).topk(2, dim=-1)[0].sum(-1)
            kept = torch.zeros_like(group_scores, dtype=torch.bool)
            kept.scatter_(1, group_scores.topk(2, dim=-1)[1], True)
            masked = choice.masked_fill(~kept.repeat_interleave(E // 4, dim=-1), float("-inf"))
            own_ids = masked.topk(3, dim=-1)[1]
            own_w = scores.gather(1, own_ids)
            own_w = own_w / own_w.sum(-1, keepdim=True) * 2.5
            np.testing.assert_array_equal(np.sort(ids[:, layer], -1), np.sort(own_ids.numpy(), -1))
            np.testing.assert_allclose(np.sort(weights[:, layer], -1), np.sort(own_w.numpy(), -1), rtol=2e-6,
                                       atol=0)

    @no_grad
    def test_bias_as_tensor_or_list(self):
        model = toy_moe.ToyMoeForCausalLM("olmoe")
        table = torch.arange(3 * E, dtype=torch.float32).reshape(3, E) / 10
        ids = torch.from_numpy(self.rng.integers(0, VOCAB, (1, 4)))
        for bias in (table, list(table), table.numpy()):
            with routesim.Recorder(self.path, model, MLP_GATES, E, bias=bias) as rec:
                rec.begin(ids)
                model(ids)
            with h5py.File(self.path, "r") as f:
                np.testing.assert_array_equal(f["router/bias"][...], table.numpy())

    # -- memory -------------------------------------------------------------

    @no_grad
    def test_memory_holds_only_the_batch_in_flight(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral", layers=2)
        B, S, steps = 4, 8, 3
        one_batch = (B * S + steps * B) * 2 * E * 4  # tokens x L x E float32
        held = []
        ids = torch.from_numpy(self.rng.integers(0, VOCAB, (B, S)))
        with routesim.Recorder(self.path, model, MIXTRAL_GATES, E) as rec:
            for n in range(40):
                rec.begin(ids)
                self.assertEqual(rec.tokens_written, n * (B * S + steps * B))
                model(ids)
                for _ in range(steps):
                    rec.extend(ids[:, 0])
                    model(ids[:, :1])
                held.append(rec.pending_bytes)
        self.assertEqual(held, [one_batch] * 40)
        self.assertEqual(rec.pending_bytes, 0)
        with h5py.File(self.path, "r") as f:
            self.assertEqual(f["router/logits"].shape[0], 40 * (B * S + steps * B))
            self.assertEqual(len(f["sequences/offsets"]), 40 * B + 1)

    # -- errors ---------------------------------------------------------------

    def assert_no_output(self, model):
        self.assertEqual(os.listdir(self.dir.name), [])
        for name, module in model.named_modules():
            self.assertEqual(len(module._forward_hooks), 0, name)

    def test_no_matching_module(self):
        model = toy_moe.ToyMoeForCausalLM("olmoe")
        with self.assertRaisesRegex(ValueError, r"no module .*block_sparse_moe"):
            routesim.Recorder(self.path, model, MIXTRAL_GATES, E)

    def test_wrong_num_experts(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        with self.assertRaisesRegex(ValueError, r"model\.layers\.0\.block_sparse_moe\.gate.*8 outputs.*num_experts=16"):
            routesim.Recorder(self.path, model, MIXTRAL_GATES, 16)
        # a pattern that also catches Qwen's shared_expert_gate (1 output)
        qwen = toy_moe.ToyMoeForCausalLM("qwen2_moe")
        with self.assertRaisesRegex(ValueError, r"shared_expert_gate.*1 outputs"):
            routesim.Recorder(self.path, qwen, r"gate$", E)

    @no_grad
    def test_wrong_num_experts_seen_at_forward(self):
        model = toy_moe.ToyMoeForCausalLM("deepseek")
        ids = torch.zeros(1, 3, dtype=torch.long)
        with self.assertRaisesRegex(ValueError, r"model\.layers\.1\.mlp\.gate.*\[3, 8\].*num_experts=4"):
            with routesim.Recorder(self.path, model, MLP_GATES, 4, output=deepseek_logits) as rec:
                rec.begin(ids)
                model(ids)
        self.assert_no_output(model)

    @no_grad
    def test_tuple_output_without_selector(self):
        model = toy_moe.ToyMoeForCausalLM("deepseek")
        ids = torch.zeros(1, 3, dtype=torch.long)
        with self.assertRaisesRegex(TypeError, r"returns a tuple: pass output="):
            with routesim.Recorder(self.path, model, MLP_GATES, E) as rec:
                rec.begin(ids)
                model(ids)
        self.assert_no_output(model)
        with self.assertRaisesRegex(TypeError, r"dtype is torch.int64.*expert indices"):
            with routesim.Recorder(self.path, model, MLP_GATES, E, output=0) as rec:
                rec.begin(ids)
                model(ids)
        self.assert_no_output(model)

    @no_grad
    def test_forward_without_begin(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        with self.assertRaisesRegex(RuntimeError, r"gate 'model\.layers\.0\.block_sparse_moe\.gate' ran before "
                                                  r"rec\.begin\(\)"):
            with routesim.Recorder(self.path, model, MIXTRAL_GATES, E):
                model(torch.zeros(1, 3, dtype=torch.long))
        self.assert_no_output(model)

    @no_grad
    def test_two_forwards_in_one_step(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        ids = torch.zeros(2, 3, dtype=torch.long)
        with self.assertRaisesRegex(RuntimeError, r"ran twice for decode step 1 of batch 1"):
            with routesim.Recorder(self.path, model, MIXTRAL_GATES, E) as rec:
                rec.begin(ids)
                model(ids)
                rec.extend(ids[:, 0])
                model(ids[:, :1])
                model(ids[:, :1])
        self.assert_no_output(model)

    @no_grad
    def test_step_without_forward(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        ids = torch.zeros(2, 3, dtype=torch.long)
        with self.assertRaisesRegex(RuntimeError, r"did not run for the prefill of batch 1"):
            with routesim.Recorder(self.path, model, MIXTRAL_GATES, E) as rec:
                rec.begin(ids)
                rec.extend(ids[:, 0])
        self.assert_no_output(model)
        with self.assertRaisesRegex(RuntimeError, r"did not run for the decode step 1 of batch 2"):
            with routesim.Recorder(self.path, model, MIXTRAL_GATES, E) as rec:
                rec.begin(ids)
                model(ids)
                rec.begin(ids)
                model(ids)
                rec.extend(ids[:, 0])
        self.assert_no_output(model)

    @no_grad
    def test_forward_shape_differs_from_begin(self):
        model = toy_moe.ToyMoeForCausalLM("unflat")
        ids = torch.zeros(2, 3, dtype=torch.long)
        with self.assertRaisesRegex(ValueError, r"prefill output shape \[2, 4, 8\], expected \[6, 8\] or "
                                                r"\[2, 3, 8\]"):
            with routesim.Recorder(self.path, model, MLP_GATES, E) as rec:
                rec.begin(ids)
                model(torch.zeros(2, 4, dtype=torch.long))
        self.assert_no_output(model)
        with self.assertRaisesRegex(ValueError, r"decode step 1 output shape \[2, 2, 8\]"):
            with routesim.Recorder(self.path, model, MLP_GATES, E) as rec:
                rec.begin(ids)
                model(ids)
                rec.extend(ids[:, 0])
                model(ids[:, :2])
        self.assert_no_output(model)

    @no_grad
    def test_exception_in_block_leaves_no_file_and_keeps_an_old_one(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        ids = torch.zeros(2, 3, dtype=torch.long)
        with self.assertRaisesRegex(KeyError, "stop"):
            with routesim.Recorder(self.path, model, MIXTRAL_GATES, E) as rec:
                for _ in range(3):
                    rec.begin(ids)  # the first batches are already in the temporary file
                    model(ids)
                raise KeyError("stop")
        self.assert_no_output(model)

        with open(self.path, "w") as old:
            old.write("previous trace")
        with self.assertRaises(KeyError):
            with routesim.Recorder(self.path, model, MIXTRAL_GATES, E) as rec:
                rec.begin(ids)
                model(ids)
                raise KeyError("stop")
        self.assertEqual(glob.glob(os.path.join(self.dir.name, "*")), [self.path])
        with open(self.path) as old:
            self.assertEqual(old.read(), "previous trace")

    @no_grad
    def test_hooks_removed_after_success(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        ids = torch.zeros(1, 2, dtype=torch.long)
        with routesim.Recorder(self.path, model, MIXTRAL_GATES, E) as rec:
            rec.begin(ids)
            model(ids)
        for name, module in model.named_modules():
            self.assertEqual(len(module._forward_hooks), 0, name)
        model(ids)  # no recorder left in the way
        self.assertEqual(os.listdir(self.dir.name), ["trace.h5"])

    def test_nothing_recorded(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        with self.assertRaisesRegex(RuntimeError, "nothing was recorded"):
            with routesim.Recorder(self.path, model, MIXTRAL_GATES, E):
                pass
        self.assert_no_output(model)

    def test_bad_arguments(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        cases = [({"dtype": "float16"}, ValueError, "dtype must be one of float32, bfloat16"),
                 ({"scoring": "softplus"}, ValueError, "scoring must be one of"),
                 ({"top_k": 9}, ValueError, r"top_k must be an int in \[1, 8\]"),
                 ({"norm_topk": 2}, ValueError, "norm_topk"),
                 ({"n_group": 4}, ValueError, "n_group and topk_group go together"),
                 ({"n_group": 3, "topk_group": 1}, ValueError, "n_group must be an int that divides num_experts=8"),
                 ({"n_group": 4, "topk_group": 5}, ValueError, r"topk_group must be an int in \[1, n_group=4\]"),
                 ({"routed_scaling_factor": 0}, ValueError, "routed_scaling_factor must be a finite number > 0"),
                 ({"bias": torch.zeros(2, E)}, ValueError, r"bias shape \[2, 8\], expected \[3, 8\]"),
                 ({"bias": "e_score_correction_bias"}, ValueError, "has no attribute 'e_score_correction_bias'"),
                 ({"output": "logits"}, TypeError, "output must be None, an int index or a callable")]
        for kw, error, message in cases:
            with self.subTest(kw=kw), self.assertRaisesRegex(error, message):
                routesim.Recorder(self.path, model, MIXTRAL_GATES, E, **kw)
        with self.assertRaisesRegex(ValueError, "not a regular expression"):
            routesim.Recorder(self.path, model, "gate(", E)

    @no_grad
    def test_bad_begin_and_extend(self):
        model = toy_moe.ToyMoeForCausalLM("mixtral")
        ids = torch.zeros(2, 3, dtype=torch.long)
        rec = routesim.Recorder(self.path, model, MIXTRAL_GATES, E)
        with self.assertRaisesRegex(RuntimeError, r"begin\(\) outside the with-block"):
            rec.begin(ids)
        cases = [(lambda r: r.begin(ids, torch.ones(2, 4)), ValueError, r"attention_mask shape \[2, 4\] differs"),
                 (lambda r: r.begin(ids.float()), TypeError, "input_ids must hold integers"),
                 (lambda r: r.begin(ids - 1), ValueError, "token id -1"),
                 (lambda r: r.extend(ids[:, 0]), RuntimeError, r"extend\(\) before begin\(\)")]
        for call, error, message in cases:
            with self.subTest(message=message), self.assertRaisesRegex(error, message):
                with routesim.Recorder(self.path, model, MIXTRAL_GATES, E) as rec:
                    call(rec)
            self.assert_no_output(model)
        with self.assertRaisesRegex(ValueError, r"one token per sequence of the batch \(2\), got 3 ids"):
            with routesim.Recorder(self.path, model, MIXTRAL_GATES, E) as rec:
                rec.begin(ids)
                model(ids)
                rec.extend(torch.zeros(3, dtype=torch.long))
        self.assert_no_output(model)


if __name__ == "__main__":
    unittest.main()
