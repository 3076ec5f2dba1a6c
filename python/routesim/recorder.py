"""Recording a PyTorch MoE model's router logits as a routesim trace.

`Recorder` hooks the gate modules of a model and writes what they computed,
token by token, into a version 1 trace (docs/trace-format.md). The caller
says which tokens each forward pass sees: `begin()` before the prefill of a
batch of new sequences, `extend()` before each decode step. Padding is
dropped with the attention mask, decode tokens are appended to their
sequences, and each finished batch is appended to the file, so memory holds
only the batch in flight."""

import math
import os
import re
import tempfile

import h5py
import numpy as np
import torch

__all__ = ["Recorder"]

_SCORINGS = ("softmax", "sigmoid", "sqrt_softplus")
_DTYPES = ("float32", "bfloat16")
_CHUNK_BYTES = 1 << 20
_TOKEN_CHUNK = 1 << 16  # elements per chunk of the per-token datasets


class _Step:
    """The gate outputs of one forward pass (the prefill, or one decode step)
    of the current batch: rows [n, L, E] in storage dtype, and which layers
    have run."""

    def __init__(self, rows, num_layers, num_experts, storage):
        self.logits = np.empty((rows, num_layers, num_experts), storage)
        self.seen = np.zeros(num_layers, bool)


class Recorder:
    """Context manager that records the router logits of `model`'s gates.

    path: the trace to write (written to a temporary name in the same
        directory and renamed when the with-block ends without an exception).
    model: a torch.nn.Module.
    gates: regular expression searched (re.search) in every name of
        model.named_modules(); the matching modules are the MoE layers, in
        named_modules() order.
    num_experts: E, the routed experts per layer (the gate output's last
        dimension).
    top_k, scoring, norm_topk: the model's own rule, stored as root attributes
        (the `native` router reads them).
    n_group, topk_group, routed_scaling_factor: grouped routing (DeepSeek-V2/V3
        configs' fields of the same names), stored as root attributes; n_group
        and topk_group go together.
    dtype: "float32" or "bfloat16" (stored as uint16 bit patterns).
    model_name, source: the `model` and `source` root attributes.
    bias: selection bias per layer: a [L, E] tensor or array, a list of L
        [E] tensors, or the name of an attribute of each gate module (e.g.
        "e_score_correction_bias"); stored as /router/bias.
    output: how to get the logits from a gate's forward output: None (the
        output is the logits), an int (index into a tuple output), or a
        callable (module, inputs, output) -> logits tensor.
    """

    def __init__(self, path, model, gates, num_experts, *, top_k=None, scoring=None, norm_topk=None,
                 dtype="float32", model_name=None, bias=None, output=None, source=None, n_group=None,
                 topk_group=None, routed_scaling_factor=None):
        self.path = os.fspath(path)
        self._who = f"routesim.Recorder({self.path})"
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{self._who}: model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(num_experts, bool) or not isinstance(num_experts, int) or num_experts < 1:
            raise ValueError(f"{self._who}: num_experts must be a positive int, got {num_experts!r}")
        if dtype not in _DTYPES:
            raise ValueError(f"{self._who}: dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        if scoring is not None and scoring not in _SCORINGS:
            raise ValueError(f"{self._who}: scoring must be one of {', '.join(_SCORINGS)}, got {scoring!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                                  or not 1 <= top_k <= num_experts):
            raise ValueError(f"{self._who}: top_k must be an int in [1, {num_experts}], got {top_k!r}")
        if norm_topk is not None and norm_topk not in (0, 1):
            raise ValueError(f"{self._who}: norm_topk must be 0/1 or a bool, got {norm_topk!r}")
        self._check_grouping(n_group, topk_group, routed_scaling_factor, num_experts)
        if not (output is None or callable(output) or (isinstance(output, int) and not isinstance(output, bool))):
            raise TypeError(f"{self._who}: output must be None, an int index or a callable "
                            f"(module, inputs, output) -> logits, got {output!r}")
        try:
            pattern = re.compile(gates)
        except re.error as e:
            raise ValueError(f"{self._who}: gates pattern {gates!r} is not a regular expression: {e}") from None

        self._names = []
        self._modules = []
        for name, module in model.named_modules():
            if pattern.search(name):
                self._names.append(name)
                self._modules.append(module)
        if not self._modules:
            raise ValueError(f"{self._who}: no module of {type(model).__name__} matches gates pattern "
                             f"{pattern.pattern!r} (re.search against model.named_modules() names)")
        for name, module in zip(self._names, self._modules):
            if isinstance(module, torch.nn.Linear) and module.out_features != num_experts and output is None:
                raise ValueError(f"{self._who}: gate {name!r} is a Linear with {module.out_features} outputs but "
                                 f"num_experts={num_experts} (does the gates pattern match another module?)")

        self.num_layers = len(self._modules)
        self.num_experts = num_experts
        self._dtype = dtype
        self._storage = np.float32 if dtype == "float32" else np.uint16
        self._output = output
        self._bias = self._bias_array(bias)
        self._attrs = {"format": "routesim-trace", "format_version": 1, "unit": "token",
                       "num_layers": self.num_layers, "num_experts": num_experts}
        name = model_name if model_name is not None else getattr(model, "name_or_path", None)
        self._attrs["model"] = name if isinstance(name, str) and name else type(model).__name__
        if top_k is not None:
            self._attrs["top_k"] = top_k
        if scoring is not None:
            self._attrs["scoring"] = scoring
        if norm_topk is not None:
            self._attrs["norm_topk"] = int(norm_topk)
        if n_group is not None:
            self._attrs["n_group"] = n_group
            self._attrs["topk_group"] = topk_group
        if routed_scaling_factor is not None:
            self._attrs["routed_scaling_factor"] = float(routed_scaling_factor)
        self._attrs["source"] = source if source is not None else f"routesim.Recorder (torch {torch.__version__})"
        layer_index = self._layer_index()
        if layer_index is not None:
            self._attrs["layer_index"] = layer_index

        self._hooks = []
        self._file = None
        self._tmp = None
        self._written = 0      # tokens already in the file
        self._sequences = 0    # sequences already in the file
        self._batches = 0
        self._clear_batch()

    # -- public API ---------------------------------------------------------

    @property
    def gate_names(self):
        """The hooked modules' names, one per recorded layer."""
        return list(self._names)

    @property
    def tokens_written(self):
        """Tokens appended to the file so far (finished batches)."""
        return self._written

    @property
    def pending_bytes(self):
        """Bytes of logits held in memory: those of the batch in flight."""
        return sum(step.logits.nbytes for step in self._steps)

    def begin(self, input_ids, attention_mask=None):
        """Starts a batch of new sequences: the next forward pass is their
        prefill. input_ids [B, S] (or [S]); attention_mask [B, S], 0 marks
        padding (left or right), which is not recorded. Writes the previous
        batch to the file."""
        self._require_open("begin")
        ids = self._as_numpy(input_ids, "input_ids")
        if ids.ndim == 1:
            ids = ids[None, :]
        if ids.ndim != 2 or ids.shape[0] < 1 or ids.shape[1] < 1:
            raise ValueError(f"{self._who}: begin(): input_ids must be [batch, seq] with batch, seq >= 1, "
                             f"got shape {list(ids.shape)}")
        if attention_mask is None:
            mask = np.ones(ids.shape, bool)
        else:
            mask = self._as_numpy(attention_mask, "attention_mask", integers=False)
            if mask.ndim == 1:
                mask = mask[None, :]
            if mask.shape != ids.shape:
                raise ValueError(f"{self._who}: begin(): attention_mask shape {list(mask.shape)} differs from "
                                 f"input_ids shape {list(ids.shape)}")
            mask = mask != 0
        self._check_token_ids(ids[mask], "begin(): input_ids")
        self._finish_batch()
        batch, seq = ids.shape
        self._batch = batch
        self._prompt_len = seq
        self._mask = mask
        self._prefill_ids = ids[mask].astype(np.int32)  # b-major: each sequence's tokens in order
        self._prefill_lens = mask.sum(1)
        flat = np.flatnonzero(mask.reshape(-1))
        # rows of the flattened [B*S, E] gate output to keep; None keeps all
        self._prefill_rows = None if flat.size == mask.size else torch.from_numpy(flat)
        self._steps = [_Step(flat.size, self.num_layers, self.num_experts, self._storage)]

    def extend(self, next_ids, attention_mask=None, active=None):
        """Starts a decode step of the current batch: the next forward pass
        runs one new token per sequence, next_ids [B] or [B, 1]. Sequences
        that no longer generate are left out with active [B] (bool) or an
        attention mask whose last column is 0 ([B] or [B, n])."""
        self._require_open("extend")
        if self._batch == 0:
            raise RuntimeError(f"{self._who}: extend() before begin(); call rec.begin(input_ids, attention_mask) "
                               f"for each batch's prefill first")
        ids = self._as_numpy(next_ids, "next_ids").reshape(-1)
        if ids.size != self._batch:
            raise ValueError(f"{self._who}: extend(): next_ids must hold one token per sequence of the batch "
                             f"({self._batch}), got {ids.size} ids")
        if attention_mask is not None and active is not None:
            raise ValueError(f"{self._who}: extend(): give attention_mask or active, not both")
        if active is not None:
            live = self._as_numpy(active, "active", integers=False).reshape(-1)
            if live.size != self._batch:
                raise ValueError(f"{self._who}: extend(): active must hold {self._batch} flags, got {live.size}")
            live = live != 0
        elif attention_mask is not None:
            m = self._as_numpy(attention_mask, "attention_mask", integers=False)
            m = m.reshape(-1, 1) if m.ndim == 1 else m
            if m.ndim != 2 or m.shape[0] != self._batch:
                raise ValueError(f"{self._who}: extend(): attention_mask must be [{self._batch}] or "
                                 f"[{self._batch}, n], got shape {list(m.shape)}")
            live = m[:, -1] != 0
        else:
            live = np.ones(self._batch, bool)
        self._check_token_ids(ids[live], "extend(): next_ids")
        self._check_step_complete()
        self._decode_ids.append(ids.astype(np.int32))
        self._decode_live.append(live)
        self._steps.append(_Step(self._batch, self.num_layers, self.num_experts, self._storage))

    def __enter__(self):
        if self._file is not None:
            raise RuntimeError(f"{self._who}: already recording (a Recorder is entered once)")
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"{self._who}: directory {directory} does not exist")
        fd, self._tmp = tempfile.mkstemp(prefix=os.path.basename(self.path) + ".", suffix=".tmp", dir=directory)
        os.close(fd)
        try:
            self._file = h5py.File(self._tmp, "w")
            self._create_datasets()
            for index, module in enumerate(self._modules):
                self._hooks.append(module.register_forward_hook(self._make_hook(index)))
        except BaseException:
            self._abandon()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._abandon()
            return False
        try:
            self._finish_batch()
            if self._written == 0:
                raise RuntimeError(f"{self._who}: nothing was recorded (call rec.begin() and run the model inside "
                                   f"the with-block); no trace written")
            self._file.close()
            self._file = None
            os.replace(self._tmp, self.path)
            self._tmp = None
        except BaseException:
            self._abandon()
            raise
        finally:
            self._remove_hooks()
        return False

    # -- capture ------------------------------------------------------------

    def _make_hook(self, layer):
        def hook(module, inputs, output):
            self._capture(layer, module, inputs, output)
        return hook

    def _capture(self, layer, module, inputs, output):
        name = self._names[layer]
        if not self._steps:
            raise RuntimeError(f"{self._who}: gate {name!r} ran before rec.begin(); call "
                               f"rec.begin(input_ids, attention_mask) before each batch's prefill forward")
        step = self._steps[-1]
        index = len(self._steps) - 1
        if step.seen[layer]:
            what = "the prefill" if index == 0 else f"decode step {index}"
            raise RuntimeError(f"{self._who}: gate {name!r} ran twice for {what} of batch {self._batches + 1}; "
                               f"one forward pass per rec.begin()/rec.extend() (call rec.extend(next_ids) before "
                               f"each decode forward)")
        logits = self._select_output(name, module, inputs, output)
        rows = self._rows(name, logits, index)
        step.logits[:, layer, :] = self._to_storage(rows)
        step.seen[layer] = True

    def _select_output(self, name, module, inputs, output):
        if self._output is None:
            logits = output
        elif callable(self._output):
            with torch.no_grad():
                logits = self._output(module, inputs, output)
        else:
            try:
                logits = output[self._output]
            except (IndexError, TypeError, KeyError):
                raise ValueError(f"{self._who}: gate {name!r}: output={self._output} does not index its output "
                                 f"({type(output).__name__})") from None
        if not isinstance(logits, torch.Tensor):
            hint = (" (the gate returns a tuple: pass output=<index> or output=callable(module, inputs, output))"
                    if isinstance(output, (tuple, list)) else "")
            raise TypeError(f"{self._who}: gate {name!r}: logits must be a tensor, got "
                            f"{type(logits).__name__}{hint}")
        if not logits.is_floating_point():
            raise TypeError(f"{self._who}: gate {name!r}: logits dtype is {logits.dtype}, expected a floating "
                            f"point tensor (are these expert indices? see output=)")
        if logits.dim() == 0 or logits.shape[-1] != self.num_experts:
            raise ValueError(f"{self._who}: gate {name!r}: output shape {list(logits.shape)} does not end in "
                             f"num_experts={self.num_experts}")
        return logits.detach()

    def _rows(self, name, logits, index):
        """The rows of one forward's gate output to keep, [n, E], in the
        order of the step's buffer."""
        E = self.num_experts
        B = self._batch
        shape = list(logits.shape)
        if index == 0:
            S = self._prompt_len
            if shape not in ([B * S, E], [B, S, E]):
                raise ValueError(f"{self._who}: gate {name!r}: prefill output shape {shape}, expected "
                                 f"[{B * S}, {E}] or [{B}, {S}, {E}] for the batch given to begin() "
                                 f"({B} x {S} tokens)")
            flat = logits.reshape(B * S, E)
            if self._prefill_rows is not None:
                flat = flat.index_select(0, self._prefill_rows.to(flat.device))
            return flat
        # A decode step runs the new token alone (KV cache: [B, E] or
        # [B, 1, E]) or re-runs the whole sequence (take its last position).
        total = self._prompt_len + index
        if shape in ([B, E], [B, 1, E]):
            return logits.reshape(B, E)
        if shape in ([B * total, E], [B, total, E]):
            return logits.reshape(B, total, E)[:, -1, :]
        raise ValueError(f"{self._who}: gate {name!r}: decode step {index} output shape {shape}, expected "
                         f"[{B}, {E}] or [{B}, 1, {E}] (one new token per sequence) or "
                         f"[{B * total}, {E}] / [{B}, {total}, {E}] (the whole sequences re-run)")

    def _to_storage(self, rows):
        if self._dtype == "float32":
            return rows.to(torch.float32).cpu().numpy()
        # round to nearest even, as torch does; keep the bit patterns
        return rows.to(torch.bfloat16).view(torch.int16).cpu().numpy().view(np.uint16)

    # -- batches and the file -------------------------------------------------

    def _clear_batch(self):
        self._batch = 0
        self._prompt_len = 0
        self._mask = None
        self._prefill_ids = None
        self._prefill_lens = None
        self._prefill_rows = None
        self._steps = []
        self._decode_ids = []
        self._decode_live = []

    def _check_step_complete(self):
        step = self._steps[-1]
        if step.seen.all():
            return
        index = len(self._steps) - 1
        what = "prefill" if index == 0 else f"decode step {index}"
        missing = self._names[int(np.flatnonzero(~step.seen)[0])]
        raise RuntimeError(f"{self._who}: gate {missing!r} did not run for the {what} of batch "
                           f"{self._batches + 1} (run the model once after each rec.begin() and rec.extend())")

    def _finish_batch(self):
        """Appends the batch in flight to the file: each sequence's prefill
        tokens, then its decode tokens."""
        if self._batch == 0:
            return
        self._check_step_complete()
        prefill = self._steps[0].logits
        plen = self._prefill_lens
        if len(self._steps) == 1:  # prefill only: the buffer is already in trace order
            self._append(prefill, self._prefill_ids, np.zeros(len(prefill), np.uint8), plen)
        else:
            self._append(*self._interleave(prefill, plen))
        self._batches += 1
        self._clear_batch()

    def _interleave(self, prefill, plen):
        """The batch in trace order (each sequence's prompt, then its decode
        tokens), copied once into new arrays."""
        live = np.stack(self._decode_live, axis=1)  # [B, steps]
        lens = plen + live.sum(1)
        starts = np.cumsum(lens) - lens             # each sequence's first token
        # prefill rows move right by the decode tokens of the sequences before
        shift = starts - (np.cumsum(plen) - plen)
        prefill_dest = np.arange(len(prefill)) + np.repeat(shift, plen)
        decode_start = starts + plen
        rank = np.cumsum(live, axis=1) - 1          # a decode token's place among its sequence's
        total = int(lens.sum())
        logits = np.empty((total,) + prefill.shape[1:], prefill.dtype)
        ids = np.empty(total, np.int32)
        phase = np.ones(total, np.uint8)
        logits[prefill_dest] = prefill
        ids[prefill_dest] = self._prefill_ids
        phase[prefill_dest] = 0
        for j, step in enumerate(self._steps[1:]):
            rows = live[:, j]
            dest = decode_start[rows] + rank[rows, j]
            logits[dest] = step.logits[rows]
            ids[dest] = self._decode_ids[j][rows]
        return logits, ids, phase, lens

    def _append(self, logits, ids, phase, lens):
        n = len(ids)
        t0 = self._written
        for name, data in (("router/logits", logits), ("tokens/ids", ids), ("tokens/phase", phase)):
            d = self._file[name]
            d.resize(t0 + n, axis=0)
            if n:
                d[t0:t0 + n] = data
        offsets = self._file["sequences/offsets"]
        s0 = self._sequences
        offsets.resize(s0 + 1 + len(lens), axis=0)
        offsets[s0 + 1:] = t0 + np.cumsum(lens, dtype=np.int64)
        self._written += n
        self._sequences += len(lens)

    def _create_datasets(self):
        f = self._file
        f.attrs.update(self._attrs)
        L, E = self.num_layers, self.num_experts
        row_bytes = L * E * np.dtype(self._storage).itemsize
        rows = max(1, _CHUNK_BYTES // row_bytes)
        d = f.create_dataset("router/logits", shape=(0, L, E), maxshape=(None, L, E), dtype=self._storage,
                             chunks=(rows, L, E))
        if self._dtype == "bfloat16":
            d.attrs["encoding"] = "bfloat16"
        if self._bias is not None:
            f.create_dataset("router/bias", data=self._bias)
        f.create_dataset("tokens/ids", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(_TOKEN_CHUNK,))
        f.create_dataset("tokens/phase", shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(_TOKEN_CHUNK,))
        f.create_dataset("sequences/offsets", data=np.zeros(1, np.int64), maxshape=(None,),
                         chunks=(_TOKEN_CHUNK // 8,))

    def _abandon(self):
        """Leaves no file behind: closes and removes the temporary trace."""
        self._remove_hooks()
        if self._file is not None:
            try:
                self._file.close()
            except Exception:
                pass
            self._file = None
        if self._tmp is not None:
            try:
                os.remove(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None
        self._clear_batch()

    def _remove_hooks(self):
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    # -- validation -----------------------------------------------------------

    def _require_open(self, what):
        if self._file is None:
            raise RuntimeError(f"{self._who}: {what}() outside the with-block (use `with Recorder(...) as rec:`)")

    def _as_numpy(self, value, what, integers=True):
        """value as a numpy array; token ids must be integers, masks and
        flags may be any number or bool (nonzero = kept)."""
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        value = np.asarray(value)
        if value.dtype == bool or (not integers and np.issubdtype(value.dtype, np.number)):
            return value
        if not np.issubdtype(value.dtype, np.integer):
            raise TypeError(f"{self._who}: {what} must hold integers, got dtype {value.dtype}")
        return value

    def _check_token_ids(self, ids, what):
        if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(np.int32).max):
            bad = ids[(ids < 0) | (ids > np.iinfo(np.int32).max)][0]
            raise ValueError(f"{self._who}: {what}: token id {bad} outside [0, 2^31) (/tokens/ids is int32)")

    def _check_grouping(self, n_group, topk_group, routed_scaling_factor, num_experts):
        """The rules routesim's trace reader applies to these attributes, checked before recording."""
        def is_int(v):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
        if (n_group is None) != (topk_group is None):
            raise ValueError(f"{self._who}: n_group and topk_group go together, got n_group={n_group!r}, "
                             f"topk_group={topk_group!r}")
        if n_group is not None:
            if not is_int(n_group) or not 1 <= n_group <= num_experts or num_experts % n_group:
                raise ValueError(f"{self._who}: n_group must be an int that divides num_experts={num_experts}, "
                                 f"got {n_group!r}")
            if not is_int(topk_group) or not 1 <= topk_group <= n_group:
                raise ValueError(f"{self._who}: topk_group must be an int in [1, n_group={n_group}], "
                                 f"got {topk_group!r}")
        if routed_scaling_factor is not None:
            ok = isinstance(routed_scaling_factor, (int, float, np.integer, np.floating)) and \
                not isinstance(routed_scaling_factor, bool)
            if not ok or not math.isfinite(routed_scaling_factor) or routed_scaling_factor <= 0:
                raise ValueError(f"{self._who}: routed_scaling_factor must be a finite number > 0, "
                                 f"got {routed_scaling_factor!r}")

    def _bias_array(self, bias):
        if bias is None:
            return None
        L, E = len(self._modules), self.num_experts
        if isinstance(bias, str):
            rows = []
            for name, module in zip(self._names, self._modules):
                value = getattr(module, bias, None)
                if value is None:
                    raise ValueError(f"{self._who}: bias={bias!r}: gate {name!r} has no attribute {bias!r}")
                rows.append(value)
            bias = rows
        if isinstance(bias, (list, tuple)):
            if len(bias) != L:
                raise ValueError(f"{self._who}: bias: {len(bias)} per-layer tensors for {L} gates")
            bias = [b.detach().float().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b, np.float32)
                    for b in bias]
            if any(b.shape != (E,) for b in bias):
                shapes = [list(b.shape) for b in bias]
                raise ValueError(f"{self._who}: bias: each layer's bias must be [{E}], got {shapes}")
            bias = np.stack(bias)
        elif isinstance(bias, torch.Tensor):
            bias = bias.detach().float().cpu().numpy()
        bias = np.asarray(bias, np.float32)
        if bias.shape != (L, E):
            raise ValueError(f"{self._who}: bias shape {list(bias.shape)}, expected [{L}, {E}] (layers, experts)")
        if not np.isfinite(bias).all():
            raise ValueError(f"{self._who}: bias holds NaN or infinite values")
        return bias

    def _layer_index(self):
        """Each gate's layer number in the model: the first integer in its
        module name (model.layers.3.mlp.gate -> 3), when every name has one
        and they are distinct."""
        found = [re.search(r"(?:^|\.)(\d+)(?:\.|$)", name) for name in self._names]
        if not all(found):
            return None
        index = [int(m.group(1)) for m in found]
        if len(set(index)) != len(index):
            return None
        return np.array(index, np.int32)
