#!/usr/bin/env python3
"""make bench: what routesim.Recorder adds to a model's forward time, on CPU.

Toy decoders shaped like Mixtral (E=8, top-2) and OLMoE (E=64, top-8)
(tests/python/toy_moe.py: embedding, MoE layers, lm head) run a prefill of
a batch of sequences and then decode steps of one token per sequence, first
without hooks, then inside a Recorder (one batch per repeat, so each begin()
also appends the previous batch to the file), then without hooks again.
Times are the best of the repeats. The recorder's own time (its hooks,
begin() and extend()) is also timed directly, since it is small next to the
forward and the wall-time ratio is within noise. Peak memory is the process's maximum
resident set (resource.getrusage) after the plain and the recorded runs."""

import argparse
import os
import platform
import resource
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))  # the toy models the tests use
import routesim  # noqa: E402
import toy_moe  # noqa: E402

SHAPES = {  # kind, experts, top-k, expert intermediate size (x hidden)
    "mixtral": ("mixtral", 8, 2, 1.0),
    "olmoe": ("olmoe", 64, 8, 0.25),
}
VOCAB = 1000  # a small lm head: it is not what is measured
GATES = {"mixtral": r"layers\.\d+\.block_sparse_moe\.gate$", "olmoe": r"layers\.\d+\.mlp\.gate$"}


def log(*args):
    print(*args, flush=True)


def max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plain_runs(model, ids, next_ids, steps, repeats):
    prefill, decode = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        model(ids)
        prefill.append(time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(steps):
            model(next_ids[:, None])
        decode.append((time.perf_counter() - t) / steps)
    return min(prefill), min(decode)


def recorded_runs(model, ids, next_ids, steps, repeats, path, gates, experts):
    """Best prefill and decode-step times inside a Recorder, the recorder's
    own time per prefill (hooks + begin) and per decode step (hooks +
    extend), and the exit."""
    prefill, decode, own_prefill, own_decode = [], [], [], []
    with routesim.Recorder(path, model, gates, experts) as rec:
        inside = [0.0]
        capture = rec._capture

        def timed_capture(*args):
            t = time.perf_counter()
            capture(*args)
            inside[0] += time.perf_counter() - t
        rec._capture = timed_capture  # the hooks look it up on every call
        for _ in range(repeats):
            inside[0] = 0.0
            t = time.perf_counter()
            rec.begin(ids)
            t_begin = time.perf_counter() - t
            model(ids)
            prefill.append(time.perf_counter() - t)
            own_prefill.append(inside[0] + t_begin)
            inside[0] = 0.0
            t = time.perf_counter()
            for _ in range(steps):
                t_extend = time.perf_counter()
                rec.extend(next_ids)
                inside[0] += time.perf_counter() - t_extend
                model(next_ids[:, None])
            decode.append((time.perf_counter() - t) / steps)
            own_decode.append(inside[0] / steps)
        pending = rec.pending_bytes
        t = time.perf_counter()
    exit_time = time.perf_counter() - t
    return min(prefill), min(decode), min(own_prefill), min(own_decode), exit_time, pending


def bench(shape, args, workdir):
    kind, experts, k, inner = SHAPES[shape]
    torch.manual_seed(0)
    model = toy_moe.ToyMoeForCausalLM(kind, vocab=VOCAB, hidden=args.hidden, inner=int(inner * args.hidden),
                                      experts=experts, k=k, layers=args.layers)
    ids = torch.randint(0, VOCAB, (args.batch, args.seq))
    next_ids = torch.randint(0, VOCAB, (args.batch,))
    path = os.path.join(workdir, f"{shape}.h5")
    log(f"\n{shape}-shaped: H={args.hidden}, E={experts}, top-{k}, expert size {int(inner * args.hidden)}, "
        f"{args.layers} layers, prefill {args.batch} x {args.seq} tokens, {args.steps} decode steps, "
        f"best of {args.repeats}")
    with torch.no_grad():
        model(ids)  # warm up
        rss0 = max_rss_mib()
        p1, d1 = plain_runs(model, ids, next_ids, args.steps, args.repeats)
        rss_plain = max_rss_mib()
        p_rec, d_rec, own_p, own_d, exit_time, pending = recorded_runs(
            model, ids, next_ids, args.steps, args.repeats, path, GATES[shape], experts)
        rss_rec = max_rss_mib()
        p2, d2 = plain_runs(model, ids, next_ids, args.steps, args.repeats)
    plain_p, plain_d = min(p1, p2), min(d1, d2)
    tokens = args.batch * args.seq
    log(f"  prefill: plain {plain_p:.3f} s, recorded {p_rec:.3f} s (x{p_rec / plain_p:.3f}); recorder's own time "
        f"{own_p * 1e3:.2f} ms ({own_p / plain_p * 100:.2f}% of the forward, "
        f"{own_p / (tokens * args.layers) * 1e9:.0f} ns per token and layer)")
    log(f"  decode:  plain {plain_d * 1e3:.2f} ms/step, recorded {d_rec * 1e3:.2f} ms/step (x{d_rec / plain_d:.3f}); "
        f"recorder's own time {own_d * 1e3:.3f} ms/step ({own_d / plain_d * 100:.2f}%)")
    log(f"  exit (last batch written, file renamed): {exit_time * 1e3:.1f} ms; trace "
        f"{os.path.getsize(path) / 2**20:.1f} MiB for {args.repeats} batches")
    log(f"  peak RSS: {rss0:.0f} MiB after warm-up, {rss_plain:.0f} MiB after the plain runs, {rss_rec:.0f} MiB "
        f"after recording (batch in flight: {pending / 2**20:.2f} MiB of logits)")
    os.remove(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routesim", help="ignored (make bench passes it to every benchmark)")
    ap.add_argument("--shapes", default="mixtral,olmoe", help="comma-separated: " + ", ".join(SHAPES))
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=16, help="decode steps per batch")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    shapes = args.shapes.split(",")
    for s in shapes:
        if s not in SHAPES:
            ap.error(f"--shapes: unknown shape {s!r} (known: {', '.join(SHAPES)})")
    log(f"routesim.Recorder overhead: torch {torch.__version__} on CPU ({torch.get_num_threads()} threads), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as workdir:
        for s in shapes:
            bench(s, args, workdir)


if __name__ == "__main__":
    main()
