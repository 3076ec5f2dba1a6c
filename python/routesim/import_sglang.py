"""`python3 -m routesim import sglang`: SGLang's expert distribution recorder
dumps (sgl-project/sglang, python/sglang/srt/eplb/expert_distribution.py)
into a routesim trace or a loads file (docs/import.md).

The recorder saves its dumps with torch.save, so they are torch pickles
that only torch's unpickler reads: this importer lives in the Python
package, not in the C command line. A dump is one of

- `per_token` mode (`_DetailAccumulator.dump`):
  `{"records": [...], "last_physical_to_logical_map": Tensor[L, P]}`, one
  record per forward pass (`_DetailSinglePassGatherer.collect`) with
  `input_ids`, `positions`, `extend_seq_lens`, `forward_mode`, `rank` and
  `topk_ids_of_layer` [L, n, 8] of physical expert ids, -1 padded
  -> a top-k trace;
- `stat` mode (`_StatAccumulator.dump`): `{"rank", "logical_count":
  Tensor[steps, L, E], ...}` -> a loads file, JSON `{"logical_count": [L][E]}`.
"""

import argparse
import json
import os
import re
import sys

import h5py
import numpy as np

from .atomic import replaced_on_success
from .topk_trace import TopkTraceWriter

__all__ = ["main", "DumpError"]

PROG = "python3 -m routesim import sglang"
DUMP_PATTERN = re.compile(r"^expert_distribution_recorder_(\d+(?:\.\d*)?(?:e[+-]?\d+)?)(?:_(\d+))?\.pt$")

# sglang.srt.model_executor.forward_batch_info.ForwardMode values (IntEnum, auto()): the records store
# forward_batch.forward_mode.value. The first four have kept their values in every version.
EXTEND, DECODE, MIXED, IDLE = 1, 2, 3, 4
_MODE_NAMES = {EXTEND: "EXTEND", DECODE: "DECODE", MIXED: "MIXED", IDLE: "IDLE"}
_RECORD_KEYS = ("input_ids", "positions", "extend_seq_lens", "forward_mode", "topk_ids_of_layer")

HELP = f"""usage: {PROG} DIR|FILE.pt... -o OUT [--rank R] [--experts E] [--model NAME]
        [--gzip LEVEL] [--force] [--quiet]

Reads the .pt files SGLang's expert distribution recorder dumps
(python/sglang/srt/eplb/expert_distribution.py). DIR: every
expert_distribution_recorder_*.pt in it, in time and rank order.

  per_token mode -> OUT is a top-k trace (/router/topk_ids of logical experts,
                    /tokens/ids, /tokens/phase, one sequence per request and
                    forward pass)
  stat mode      -> OUT is a loads file: JSON {{"logical_count": [[...], ...]}},
                    layers x logical experts, summed over the dump's steps
                    (what SGLang's --init-expert-location and routesim place read)

options:
  -o, --out FILE   the trace or loads file (required), written under a temporary
                   name and renamed: a failed import leaves no file
  --rank R         only the per_token files of rank R (without DP attention every
                   tensor-parallel rank records the same tokens: --rank 0)
  --experts E      logical experts per layer (default: the largest logical id in
                   last_physical_to_logical_map + 1)
  --model NAME     root attribute model of the trace
  --gzip LEVEL     compress the trace's datasets (1-9)
  --force          let OUT replace an existing file that is not a trace (or loads file)
  --quiet          do not print the report and the notes

The server records with (per_token or stat):
  python3 -m sglang.launch_server --model-path MODEL \\
      --expert-distribution-recorder-mode per_token ...
  SGLANG_EXPERT_DISTRIBUTION_RECORDER_DIR=dumps (the dump directory, default /tmp)
  curl -X POST http://HOST:PORT/start_expert_distribution_record
  ... requests ...
  curl -X POST http://HOST:PORT/stop_expert_distribution_record
  curl -X POST http://HOST:PORT/dump_expert_distribution_record
then:
  PYTHONPATH=python {PROG} dumps -o sglang.h5
"""


class DumpError(Exception):
    """Malformed input: the message is one line naming the file, the record
    and the field."""


# -- finding and loading the dumps ----------------------------------------------------------------------------


def _dump_files(inputs):
    """The .pt files to read, in time then rank order (the recorder names
    them expert_distribution_recorder_{time.time()}[_{rank}].pt), with each
    one's rank from its name (None when the name has none)."""
    found = []
    for path in inputs:
        if os.path.isdir(path):
            names = [n for n in os.listdir(path) if DUMP_PATTERN.match(n)]
            if not names:
                raise DumpError(f"{path}: no expert_distribution_recorder_*.pt files (the names SGLang's expert "
                                f"distribution recorder dumps under SGLANG_EXPERT_DISTRIBUTION_RECORDER_DIR)")
            found += [os.path.join(path, n) for n in names]
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise DumpError(f"{path}: no such file or directory")

    def key(path):
        m = DUMP_PATTERN.match(os.path.basename(path))
        if not m:
            return (1, 0.0, -1, path)
        return (0, float(m.group(1)), int(m.group(2)) if m.group(2) else -1, path)

    ordered = sorted(dict.fromkeys(os.path.abspath(p) for p in found), key=key)
    return [(p, (int(m.group(2)) if (m := DUMP_PATTERN.match(os.path.basename(p))) and m.group(2) else None))
            for p in ordered]


def _load(path):
    import torch  # a second or two to import: only when importing

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises anything from KeyError to RuntimeError on a foreign file
        detail = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        raise DumpError(f"{path}: not a file torch.save wrote, or not one of plain tensors and lists "
                        f"(torch.load(weights_only=True) failed: {detail})") from None
    if not isinstance(data, dict):
        raise DumpError(f"{path}: expected the dict that ExpertDistributionRecorder.dump_record saves, "
                        f"got a {type(data).__name__}")
    return data


def _mode(path, data):
    if "records" in data:
        return "per_token"
    if "logical_count" in data:
        return "stat"
    keys = ", ".join(map(str, list(data)[:8]))
    raise DumpError(f"{path}: neither 'records' (per_token mode) nor 'logical_count' (stat mode): "
                    f"not an expert distribution recorder dump (keys: {keys})")


def _tensor(path, where, value, ndim):
    """value as an integer numpy array of ndim dimensions."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise DumpError(f"{path}: {where}: expected a tensor, got {type(value).__name__}")
    if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
        raise DumpError(f"{path}: {where}: expected integers, got {value.dtype}")
    if value.dim() != ndim:
        raise DumpError(f"{path}: {where}: expected {ndim} dimensions, got shape {list(value.shape)}")
    return value.numpy().astype(np.int64, copy=False)


def _int_list(path, where, value):
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                       for v in value):
        raise DumpError(f"{path}: {where}: expected a list of integers, got {type(value).__name__}")
    return np.asarray(value, np.int64)


# -- per_token mode --------------------------------------------------------------------------------------------


class _Pass:
    """One forward pass of one record, checked: its tokens' logical experts
    [L, n, W] (the row's ids first, -1 after), the ids fed to the model, the
    phase and the requests' lengths."""

    def __init__(self, logical, counts, token_ids, phase, lengths, cached_prefix, mixed):
        self.logical, self.counts = logical, counts
        self.token_ids, self.phase, self.lengths = token_ids, phase, lengths
        self.cached_prefix = cached_prefix  # extend requests whose positions do not start at 0
        self.mixed = mixed                  # 1 for a MIXED pass (prefill chunks with decode requests)


def _physical_map(path, data):
    if "last_physical_to_logical_map" not in data:
        raise DumpError(f"{path}: last_physical_to_logical_map: missing key (per_token dumps hold it beside "
                        f"'records')")
    table = _tensor(path, "last_physical_to_logical_map", data["last_physical_to_logical_map"], 2)
    if table.shape[0] < 1 or table.shape[1] < 1:
        raise DumpError(f"{path}: last_physical_to_logical_map: empty, shape {list(table.shape)}")
    if table.min() < 0:
        layer, slot = np.argwhere(table < 0)[0]
        raise DumpError(f"{path}: last_physical_to_logical_map[{layer}][{slot}]: logical expert "
                        f"{table[layer, slot]} is negative")
    return table


def _records(path, data):
    records = data["records"]
    if not isinstance(records, (list, tuple)):
        raise DumpError(f"{path}: records: expected a list, got {type(records).__name__}")
    return records


def _read_pass(path, index, record, table, file_rank):
    """Checks record `index` against the recorder's structure and maps its
    physical ids to logical ones; None for a pass without tokens (IDLE)."""
    where = f"records[{index}]"
    if not isinstance(record, dict):
        raise DumpError(f"{path}: {where}: expected a dict, got {type(record).__name__}")
    for key in _RECORD_KEYS:
        if key not in record:
            hint = (" (a per_pass dump? only per_token mode records each token's experts)"
                    if key == "topk_ids_of_layer" else "")
            raise DumpError(f"{path}: {where}: {key}: missing key{hint}")
    rank = record.get("rank")
    if file_rank is not None and isinstance(rank, int) and rank != file_rank:
        raise DumpError(f"{path}: {where}: rank: {rank}, but the file name is rank {file_rank}'s")
    mode = record["forward_mode"]
    if not isinstance(mode, int) or isinstance(mode, bool):
        raise DumpError(f"{path}: {where}: forward_mode: expected an integer (ForwardMode.value), "
                        f"got {type(mode).__name__}")
    token_ids = _int_list(path, f"{where}: input_ids", record["input_ids"])
    positions = _int_list(path, f"{where}: positions", record["positions"])
    n = len(token_ids)
    if len(positions) != n:
        raise DumpError(f"{path}: {where}: positions: {len(positions)} entries, but input_ids has {n}")
    ids = _tensor(path, f"{where}: topk_ids_of_layer", record["topk_ids_of_layer"], 3)
    L, P = table.shape
    if ids.shape[0] != L or ids.shape[1] != n or ids.shape[2] < 1:
        raise DumpError(f"{path}: {where}: topk_ids_of_layer: shape {list(ids.shape)}, expected [{L}, {n}, 8] "
                        f"(layers of last_physical_to_logical_map, tokens of input_ids, top-k slots)")
    if mode == IDLE or n == 0:
        if n:
            raise DumpError(f"{path}: {where}: input_ids: {n} tokens in an IDLE forward pass")
        return None
    if token_ids.min() < 0 or token_ids.max() > np.iinfo(np.int32).max:
        t = int(np.flatnonzero((token_ids < 0) | (token_ids > np.iinfo(np.int32).max))[0])
        raise DumpError(f"{path}: {where}: input_ids[{t}]: token id {token_ids[t]} outside [0, 2^31)")
    bad = (ids < -1) | (ids >= P)
    if bad.any():
        layer, t, slot = np.argwhere(bad)[0]
        raise DumpError(f"{path}: {where}: topk_ids_of_layer[{layer}][{t}][{slot}]: physical expert "
                        f"{ids[layer, t, slot]} is outside [0, {P}) (the physical experts of "
                        f"last_physical_to_logical_map; -1 pads) (fused shared experts?)")

    lengths, phase = _requests(path, where, mode, record["extend_seq_lens"], n)
    cached_prefix = _check_positions(path, where, positions, lengths, mode)

    # physical -> logical through the map of the layer; padding stays -1, moved after the row's ids
    used = ids >= 0
    logical = np.where(used, table[np.arange(L)[:, None, None], np.where(used, ids, 0)], -1)
    order = np.argsort(~used, axis=2, kind="stable")
    logical = np.take_along_axis(logical, order, axis=2)
    ranked = np.sort(np.where(logical >= 0, logical, -1 - np.arange(logical.shape[2])), axis=2)
    twice = ranked[:, :, 1:] == ranked[:, :, :-1]
    if twice.any():
        layer, t, _ = np.argwhere(twice)[0]
        raise DumpError(f"{path}: {where}: topk_ids_of_layer[{layer}][{t}]: two physical experts of the row map "
                        f"to logical expert {ranked[layer, t][1:][twice[layer, t]][0]} through "
                        f"last_physical_to_logical_map (the placement changed during recording?)")
    return _Pass(logical, used.sum(axis=2), token_ids.astype(np.int32), phase, lengths, cached_prefix,
                 int(mode == MIXED))


def _requests(path, where, mode, extend_seq_lens, n):
    """The lengths of the pass's requests, in order, and each token's phase."""
    if mode == DECODE:  # one new token per request; the recorder stores extend_seq_lens_cpu = None
        if extend_seq_lens is not None and any(v != 1 for v in _int_list(path, f"{where}: extend_seq_lens",
                                                                         extend_seq_lens)):
            raise DumpError(f"{path}: {where}: extend_seq_lens: a DECODE pass runs one token per request")
        return np.ones(n, np.int64), np.ones(n, np.uint8)
    if extend_seq_lens is None:
        name = _MODE_NAMES.get(mode, f"{mode} (speculative decoding or a newer mode)")
        raise DumpError(f"{path}: {where}: extend_seq_lens: None in a forward_mode {name} pass: its tokens cannot "
                        f"be split into requests")
    lengths = _int_list(path, f"{where}: extend_seq_lens", extend_seq_lens)
    if (lengths < 0).any() or lengths.sum() != n:
        raise DumpError(f"{path}: {where}: extend_seq_lens: {lengths.tolist()[:16]} sums to {int(lengths.sum())}, "
                        f"but input_ids has {n} tokens")
    return lengths[lengths > 0], np.zeros(n, np.uint8)


def _check_positions(path, where, positions, lengths, mode):
    """A request's tokens have consecutive positions; returns how many
    requests do not start at position 0 (a cached prefix, an earlier
    prefill chunk, or a decode step)."""
    starts = np.cumsum(lengths) - lengths
    first = np.repeat(positions[starts], lengths)
    expected = first + (np.arange(len(positions)) - np.repeat(starts, lengths))
    wrong = np.flatnonzero(positions != expected)
    if wrong.size:
        t = int(wrong[0])
        raise DumpError(f"{path}: {where}: positions[{t}]: {positions[t]}, expected {expected[t]}: a request's "
                        f"tokens (split by extend_seq_lens) have consecutive positions")
    if (positions < 0).any():
        t = int(np.flatnonzero(positions < 0)[0])
        raise DumpError(f"{path}: {where}: positions[{t}]: {positions[t]} is negative")
    return int((positions[starts] > 0).sum()) if mode != DECODE else 0


def _per_token_files(files, loaded_first, rank):
    """Yields (path, file_rank, data) of the per_token files to import."""
    for i, (path, file_rank) in enumerate(files):
        data = loaded_first if i == 0 and loaded_first is not None else _load(path)
        if _mode(path, data) != "per_token":
            raise DumpError(f"{path}: a stat mode dump, but {files[0][0]} is per_token: import one mode at a time")
        if rank is not None and file_rank != rank:
            continue
        yield path, file_rank, data


def _per_token_passes(path, data, file_rank):
    table = _physical_map(path, data)
    for index, record in enumerate(_records(path, data)):
        yield table, _read_pass(path, index, record, table, file_rank)


class _Survey:
    """What the first reading finds: sizes, observed layers, notes."""

    def __init__(self):
        self.num_layers = None
        self.max_logical = -1
        self.k = 0
        self.observed = None
        self.tokens = self.sequences = self.records = self.idle = self.mixed = 0
        self.decode_tokens = self.cached_prefix = 0
        self.files = []
        self.ranks = set()
        self.maps_differ = False
        self.first_map = None


def _survey(files, first, rank):
    s = _Survey()
    for path, file_rank, data in _per_token_files(files, first, rank):
        table = None
        for table, p in _per_token_passes(path, data, file_rank):
            s.records += 1
            if p is None:
                s.idle += 1
                continue
            s.tokens += len(p.token_ids)
            s.sequences += len(p.lengths)
            s.decode_tokens += int(p.phase.sum())
            s.cached_prefix += p.cached_prefix
            s.k = max(s.k, int(p.counts.max()))
            seen = (p.counts > 0).any(axis=1)
            s.observed = seen if s.observed is None else s.observed | seen
            s.mixed += p.mixed
        table = _physical_map(path, data) if table is None else table
        if s.num_layers is None:
            s.num_layers, s.first_map = table.shape[0], table
        elif table.shape[0] != s.num_layers:
            raise DumpError(f"{path}: last_physical_to_logical_map: {table.shape[0]} layers, but {s.files[0]} "
                            f"has {s.num_layers}")
        elif not np.array_equal(table, s.first_map):
            s.maps_differ = True
        s.max_logical = max(s.max_logical, int(table.max()))
        s.files.append(path)
        s.ranks.add(file_rank)
    if not s.files:
        raise DumpError(f"{files[0][0]}: no per_token file of rank {rank} (--rank)")
    if s.tokens == 0:
        raise DumpError(f"{s.files[0]}: records: no tokens in {s.records} records of {len(s.files)} files")
    if s.k == 0:
        raise DumpError(f"{s.files[0]}: topk_ids_of_layer: every row is -1 in every layer: no expert recorded")
    return s


def _second_reading(files, rank, survey, kept, writer):
    """Reads the files again, appending each pass to the trace; returns the
    count of kept rows that hold no expert, and whether every other row holds
    exactly K."""
    unobserved, exact = 0, True
    for path, file_rank, data in _per_token_files(files, None, rank):
        for _, p in _per_token_passes(path, data, file_rank):
            if p is None:
                continue
            counts = p.counts[kept]
            unobserved += int((counts == 0).sum())
            exact = exact and bool(((counts == 0) | (counts == survey.k)).all())
            rows = p.logical[kept][:, :, :survey.k]
            if rows.shape[2] < survey.k:
                rows = np.concatenate([rows, np.full(rows.shape[:2] + (survey.k - rows.shape[2],), -1)], axis=2)
            writer.append(rows.transpose(1, 0, 2).astype(np.int32), p.token_ids, p.phase, p.lengths)
    return unobserved, exact


def _import_per_token(files, first, args, out):
    s = _survey(files, first, args.rank)
    experts = s.max_logical + 1
    if args.experts is not None:
        if args.experts < experts:
            raise DumpError(f"{s.files[0]}: last_physical_to_logical_map: logical expert {s.max_logical} is outside "
                            f"[0, {args.experts}) (--experts {args.experts})")
        experts = args.experts
    kept = np.flatnonzero(s.observed)
    dropped = np.flatnonzero(~s.observed)
    notes = _per_token_notes(s, experts, kept, dropped, args)
    attrs = {"source": f"routesim import sglang {' '.join(args.inputs)} ({PROG}, torch {_torch_version()})",
             "model": args.model, "layer_index": kept.astype(np.int32)}
    with replaced_on_success(out) as tmp:
        writer = TopkTraceWriter(tmp, len(kept), experts, s.k, attrs, args.gzip)
        try:
            unobserved, exact = _second_reading(files, args.rank, s, kept, writer)
            if unobserved:
                notes.append(f"{unobserved} (token, layer) rows of the kept layers hold no expert (all -1 in the "
                             f"dump: tokens the layer did not route, e.g. a padded region): stored as -1 rows, "
                             f"not observed")
            if exact:
                writer.set_attr("top_k", s.k)
            writer.set_attr("import_notes", "\n".join(notes))
            tokens, sequences = writer.tokens, writer.sequences
        finally:
            writer.close()
    if not args.quiet:
        print(f"routesim: imported {s.records} records from {len(s.files)} files into {out}: {sequences} sequences, "
              f"{tokens} tokens, {len(kept)} layers, E = {experts}, K = {s.k}.", file=sys.stderr)
        for note in notes:
            print(f"routesim: note: {note}", file=sys.stderr)


def _per_token_notes(s, experts, kept, dropped, args):
    notes = []
    ranks = sorted(r for r in s.ranks if r is not None)
    notes.append(f"read {len(s.files)} per_token dump files ({', '.join(os.path.basename(f) for f in s.files[:4])}"
                 f"{', ...' if len(s.files) > 4 else ''}) in time and rank order, records in file order"
                 + (f", ranks {', '.join(map(str, ranks))} each their own sequences: without DP attention every "
                    f"tensor-parallel rank records the same tokens (--rank R keeps one)" if len(ranks) > 1 else "")
                 + (f" (--rank {args.rank})" if args.rank is not None else ""))
    notes.append("no request ids in the records: each request of a forward pass is one sequence (extend passes "
                 "split by extend_seq_lens, a decode pass one token per request); decode tokens are not joined to "
                 "their prompts")
    if s.cached_prefix or s.decode_tokens:
        notes.append(f"positions: a sequence's tokens count from 0 in the trace; SGLang's positions start later in "
                     f"{s.cached_prefix} extend requests (cached prefix or an earlier prefill chunk) and in every "
                     f"decode token ({s.decode_tokens}): their absolute positions are not stored")
    notes.append("expert ids: topk_ids_of_layer holds physical ids, mapped to logical experts through "
                 "last_physical_to_logical_map (the placement at dump time)"
                 + ("; the files' maps differ, each file's own was used" if s.maps_differ else "")
                 + f"; E = {experts}" + (" (--experts)" if args.experts is not None else
                                          " (largest logical id in the map + 1)"))
    notes.append(f"padding: the recorder's 8 slots per row are cut to K = {s.k}, the most experts any row holds; "
                 f"-1 slots dropped, each row's ids kept in the recorded order")
    if len(dropped):
        notes.append(f"{len(dropped)} of the {s.num_layers} layers in the map ({_ranges(dropped)}) recorded no expert "
                     f"in any record (dense layers): left out; layer_index gives each kept layer's place in the model")
    if s.idle:
        notes.append(f"{s.idle} IDLE forward passes (no tokens) skipped")
    if s.mixed:
        notes.append(f"{s.mixed} MIXED forward passes (prefill chunks run with decode requests): all their tokens "
                     f"have phase 0 (prefill), each request of extend_seq_lens one sequence")
    notes.append("combine weights are not recorded (no /router/topk_weights): replay gives each expert 1/k; "
                 "scoring and top_k rule are not in the dump")
    return notes


def _ranges(indices):
    out, start = [], None
    for i, v in enumerate(indices):
        if start is None:
            start = v
        if i + 1 == len(indices) or indices[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(out)


def _torch_version():
    import torch

    return torch.__version__


# -- stat mode ------------------------------------------------------------------------------------------------


def _import_stat(files, first, args, out):
    total, steps, used = None, 0, []
    for i, (path, _) in enumerate(files):
        data = first if i == 0 else _load(path)
        if _mode(path, data) != "stat":
            raise DumpError(f"{path}: a per_token dump, but {files[0][0]} is a stat dump: import one mode at a time")
        value = data["logical_count"]
        ndim = getattr(value, "dim", lambda: 0)()
        count = _tensor(path, "logical_count", value, 3 if ndim == 3 else 2)
        if count.ndim == 2:
            count = count[None]
        if count.shape[1] < 1 or count.shape[2] < 1:
            raise DumpError(f"{path}: logical_count: empty, shape {list(count.shape)}")
        if (count < 0).any():
            step, layer, e = np.argwhere(count < 0)[0]
            raise DumpError(f"{path}: logical_count[{step}][{layer}][{e}]: {count[step, layer, e]} is negative")
        summed = count.sum(axis=0)
        if total is not None and summed.shape != total.shape:
            raise DumpError(f"{path}: logical_count: [layers, experts] = {list(summed.shape)}, but {used[0]} has "
                            f"{list(total.shape)}")
        total = summed if total is None else total + summed
        steps += count.shape[0]
        used.append(path)
    L, E = total.shape
    if args.experts is not None and args.experts != E:
        raise DumpError(f"{used[0]}: logical_count: {E} logical experts, but --experts is {args.experts}")
    notes = [f"read {len(used)} stat dump files ({', '.join(os.path.basename(p) for p in used[:4])}"
             f"{', ...' if len(used) > 4 else ''}): logical_count summed over their {steps} buffered steps "
             f"(a finite --expert-distribution-recorder-buffer-size keeps only the last steps of a run)",
             "counts are per logical expert (the recorder maps physical slots to logical experts with the "
             "placement at dump time) and all-reduced over the ranks"]
    doc = {"logical_count": total.tolist(), "num_layers": L, "num_experts": E,
           "source": f"routesim import sglang {' '.join(args.inputs)} ({PROG}, torch {_torch_version()})",
           "import_notes": notes}
    with replaced_on_success(out) as tmp:
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.write("\n")
    if not args.quiet:
        print(f"routesim: imported {len(used)} stat dumps into {out}: logical_count of {L} layers x {E} experts, "
              f"{int(total.sum())} token-expert assignments.", file=sys.stderr)
        for note in notes:
            print(f"routesim: note: {note}", file=sys.stderr)


# -- command line ---------------------------------------------------------------------------------------------


def _check_output(out, files, inputs, force):
    """OUT is never an input, and replaces only a trace or a loads file
    unless --force."""
    for path in list(inputs) + [p for p, _ in files]:
        if os.path.exists(out) and os.path.exists(path) and os.path.samefile(out, path):
            raise DumpError(f"{out}: -o is the input {path}")
    if not os.path.exists(out) or force:
        return
    if os.path.isdir(out):
        raise DumpError(f"{out}: -o is a directory")
    if h5py.is_hdf5(out):
        with h5py.File(out, "r") as f:
            if f.attrs.get("format") in ("routesim-trace", b"routesim-trace"):
                return
    else:
        try:
            with open(out) as f:
                if "logical_count" in json.load(f):
                    return
        except (ValueError, OSError, TypeError, UnicodeDecodeError):
            pass
    raise DumpError(f"{out}: exists and is neither a routesim trace nor a loads file (--force replaces it)")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"routesim: error: {PROG}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)

    def print_help(self, file=None):
        (file or sys.stdout).write(HELP)


def _gzip_level(text):
    level = int(text)
    if not 1 <= level <= 9:
        raise argparse.ArgumentTypeError(f"--gzip: {text} is not a level 1-9")
    return level


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _non_negative(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a rank (>= 0)")
    return value


def main(argv):
    """Runs `python3 -m routesim import sglang ARGS`; returns the exit status."""
    parser = _Parser(prog=PROG, add_help=True)
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--rank", type=_non_negative)
    parser.add_argument("--experts", type=_positive)
    parser.add_argument("--model")
    parser.add_argument("--gzip", type=_gzip_level)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        files = _dump_files(args.inputs)
        _check_output(args.out, files, args.inputs, args.force)
        first = _load(files[0][0])
        if _mode(files[0][0], first) == "per_token":
            _import_per_token(files, first, args, args.out)
        else:
            if args.rank is not None:
                raise DumpError(f"{files[0][0]}: --rank: stat dumps are all-reduced over the ranks (rank 0 writes "
                                f"them): no rank to choose")
            _import_stat(files, first, args, args.out)
    except DumpError as e:
        print(f"routesim: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"routesim: error: {e.filename or args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0
