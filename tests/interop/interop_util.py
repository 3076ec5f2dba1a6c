"""Shared helpers of the interop tests: running the binary, recording failures,
writing traces the way users do."""

import os
import subprocess

import h5py
import numpy as np

BIN = os.environ.get("ROUTESIM_BIN", "build/routesim")
failures = []


def check(cond, what):
    """Records a failure (and keeps going, so one run reports all of them)."""
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def run(args, env=None, expect_failure=False):
    """Runs routesim with args; prints stderr when it fails unexpectedly
    (a test of an error message passes expect_failure=True and checks it)."""
    full_env = dict(os.environ, ROUTESIM_NO_PROGRESS="1")
    if env:
        full_env.update(env)
    r = subprocess.run([BIN] + args, capture_output=True, text=True, env=full_env)
    if r.returncode != 0 and not expect_failure:
        print("command failed:", " ".join([BIN] + args), "\n", r.stderr)
    return r


def write_logits_trace(path, logits, offsets=None, bias=None, token_ids=None, phase=None, **attrs):
    """A float32 trace [T, L, E] with optional bias [L, E], token ids and phase."""
    T, L, E = logits.shape
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "routesim-trace"
        f.attrs["format_version"] = 1
        f.attrs["num_layers"] = L
        f.attrs["num_experts"] = E
        f.attrs["unit"] = "token"
        for k, v in attrs.items():
            f.attrs[k] = v
        f.create_dataset("router/logits", data=np.asarray(logits, np.float32))
        f.create_dataset("sequences/offsets",
                         data=np.asarray(offsets if offsets is not None else [0, T], np.int64))
        if bias is not None:
            f.create_dataset("router/bias", data=np.asarray(bias, np.float32))
        if token_ids is not None:
            f.create_dataset("tokens/ids", data=np.asarray(token_ids, np.int32))
        if phase is not None:
            f.create_dataset("tokens/phase", data=np.asarray(phase, np.uint8))


def route_decisions(trace, spec, tmp, name, extra=()):
    """Routes trace with spec; returns (ids, weights) of the decisions file, or None."""
    out = os.path.join(tmp, name + "-decisions.h5")  # never the trace: routesim refuses that
    r = run(["route", trace, "--router", spec, "--out", out, "--metrics", "none", *extra])
    if not check(r.returncode == 0, f"route {spec} failed: {r.stderr.strip()}"):
        return None
    with h5py.File(out, "r") as f:
        return f["decisions/ids"][...], f["decisions/weights"][...]


def tied_logits(rng, shape, quantum=0.25):
    """Normal logits rounded to multiples of quantum: rows contain exact ties."""
    return (np.round(rng.normal(size=shape) / quantum) * quantum).astype(np.float32)
