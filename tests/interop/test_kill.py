"""kill -9 at random moments of `gen`, `import`, `route --out` and `run` (a
default sweep: every router in one pass): no file under a final name is
ever partial (each one there is the uninterrupted run's, byte for byte, or
parses), and running the same command again ends with outputs byte-identical
to an uninterrupted run's. `run` saves a checkpoint every other chunk, so a
kill mid-pass resumes from the last one (at least one rerun must).

ROUTESIM_KILL_MOMENTS sets the moments per command (default 8; the issue's
full test is 50), ROUTESIM_KILL_SEED the random draw (default 12)."""

import json
import os
import random
import shutil
import signal
import subprocess
import time

from interop_util import BIN, check, run

MOMENTS = int(os.environ.get("ROUTESIM_KILL_MOMENTS", "8"))
SEED = int(os.environ.get("ROUTESIM_KILL_SEED", "12"))
ENV = dict(os.environ, ROUTESIM_NO_PROGRESS="1")
CHECKPOINT_MAGIC = b"routesim checkpoint 1\n"


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _timed(argv, cwd):
    start = time.monotonic()
    r = subprocess.run([BIN] + argv, cwd=cwd, env=ENV, capture_output=True, text=True)
    return r, time.monotonic() - start


def _kill_at(argv, cwd, delay):
    """Starts the command and kills it (SIGKILL) after delay seconds; True if it was still running."""
    proc = subprocess.Popen([BIN] + argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def _final_files(work, finals):
    """The final names present in work (temporary names are FILE.tmp.PID)."""
    return [f for f in finals if os.path.exists(os.path.join(work, f))]


def _check_run_dir(work, label):
    """After a kill: every stored run parses, every checkpoint is whole."""
    runs = os.path.join(work, "out", "runs")
    if not os.path.isdir(runs):
        return True
    ok = True
    for name in os.listdir(runs):
        path = os.path.join(runs, name)
        if ".tmp." in name:
            continue
        if name.endswith(".json"):
            try:
                with open(path) as f:
                    json.load(f)
            except ValueError:
                ok = check(False, f"{label}: {name} is not whole JSON after the kill")
        elif name.endswith(".ckpt"):
            ok = check(_read(path).startswith(CHECKPOINT_MAGIC), f"{label}: {name} is not a whole checkpoint") and ok
    json_path = os.path.join(work, "out", "results.json")
    if os.path.exists(json_path):
        try:
            with open(json_path) as f:
                json.load(f)
        except ValueError:
            ok = check(False, f"{label}: results.json is partial after the kill")
    return ok


def _kill_cycles(tmp, label, argv, prepare, finals, rng, run_dir=False):
    """Runs argv uninterrupted (the reference), then MOMENTS times: a fresh
    copy of the inputs, a kill at a random moment, the checks, a rerun.
    Returns (kills that hit a running process, reruns that resumed)."""
    ref_dir = os.path.join(tmp, f"{label}-ref")
    os.makedirs(ref_dir)
    prepare(ref_dir)
    r, seconds = _timed(argv, ref_dir)
    if not check(r.returncode == 0, f"{label}: uninterrupted run failed: {r.stderr}"):
        return 0, 0
    want = {f: _read(os.path.join(ref_dir, f)) for f in finals}
    killed = resumed = 0
    for i in range(MOMENTS):
        work = os.path.join(tmp, f"{label}-{i}")
        os.makedirs(work)
        prepare(work)
        delay = rng.uniform(0.0, seconds)
        hit = _kill_at(argv, work, delay)
        killed += hit
        what = f"{label} killed after {delay:.3f} s (seed {SEED}, moment {i})"
        for f in _final_files(work, finals):
            if f.endswith("results.json"):
                continue  # timings differ: checked for wholeness below
            check(_read(os.path.join(work, f)) == want[f], f"{what}: {f} is there but not whole")
        if run_dir:
            _check_run_dir(work, what)
        r, _ = _timed(argv, work)
        if not check(r.returncode == 0, f"{what}: the rerun failed: {r.stderr}"):
            continue
        resumed += "resuming the pass at token" in r.stderr
        for f in finals:
            if f.endswith("results.json"):
                continue
            check(os.path.exists(os.path.join(work, f)) and _read(os.path.join(work, f)) == want[f],
                  f"{what}: the rerun's {f} differs from an uninterrupted run's")
        shutil.rmtree(work)
    print(f"     {label}: {MOMENTS} moments over {seconds:.2f} s, {killed} killed mid-run, {resumed} resumed")
    return killed, resumed


def test_kill_anywhere_then_rerun(tmp):
    rng = random.Random(SEED)
    shared = os.path.join(tmp, "shared")
    os.makedirs(shared)
    trace = os.path.join(shared, "trace.h5")
    small = os.path.join(shared, "small.h5")
    r = run(["gen", "--preset", "mixtral", "--tokens", "12000", "--seed", "4", "-o", trace])
    r2 = run(["gen", "--preset", "mixtral", "--tokens", "8000", "--seed", "6", "-o", small])
    if not check(r.returncode == 0 and r2.returncode == 0, f"gen failed: {r.stderr} {r2.stderr}"):
        return

    def nothing(work):
        pass

    _kill_cycles(tmp, "gen", ["gen", "--preset", "mixtral", "--tokens", "20000", "--seed", "5", "-o", "g.h5"],
                 nothing, ["g.h5"], rng)

    log = os.path.join(shared, "log.jsonl")
    lines_rng = random.Random(1)
    with open(log, "w") as f:
        for s in range(30):
            for t in range(400):
                for layer in range(8):
                    f.write(json.dumps({"seq": s, "token": t, "layer": layer,
                                        "experts": lines_rng.sample(range(16), 2)}) + "\n")
    _kill_cycles(tmp, "import", ["import", "jsonl", log, "-o", "imp.h5", "--experts", "16"], nothing,
                 ["imp.h5"], rng)

    _kill_cycles(tmp, "route", ["route", trace, "--router", "sinkhorn:k=2", "--out", "dec.h5", "--metrics",
                                "load,entropy,locality"], nothing, ["dec.h5"], rng)

    # a default sweep: every run in one pass, checkpointed every other chunk
    config = {"name": "kill", "traces": [small],
              "routers": [{"name": "topk", "params": {"k": [1, 2, 3]}}, "aux_free_bias:k=2", "sticky:k=2",
                          "cache_prior:k=2", "hash:mode=balanced", "expert_choice", "sinkhorn:k=2",
                          "graph_smooth:k=2"],
              "metrics": ["load", "entropy", "locality", {"name": "cache", "params": {"policy": "belady"}}, "srp"],
              "chunk_tokens": 1024, "batch_tokens": 512, "threads": 2, "checkpoint_chunks": 2, "output": "out"}

    def write_config(work):
        with open(os.path.join(work, "c.json"), "w") as f:
            json.dump(config, f)

    killed, resumed = _kill_cycles(tmp, "run", ["run", "c.json", "-q", "--no-plots"], write_config,
                                   ["out/results.csv", "out/results.json"], rng, run_dir=True)
    if MOMENTS >= 4 and killed >= 4:
        check(resumed >= 1, f"run: none of {killed} killed sweeps resumed from a checkpoint")
