"""Running the simulator: route (one router over one trace, as `routesim
route`), run (a config, as `routesim run`) and plot (figures from a results
directory, as `routesim plot`). Results come back as DataFrames
(results.py); failures as RoutesimError with the library's message."""

import ctypes
import json
import numbers
import os
import tempfile

from . import _lib
from .errors import RoutesimError
from .results import read_csv
from .router import Router, clear_errors, raise_failure, registered_routers


def _spec(router, what):
    if isinstance(router, Router):
        return router.name
    if isinstance(router, str):
        if not router:
            raise ValueError(f"{what}: empty router spec")
        return router
    raise TypeError(f"{what}: expected a spec string or a routesim.Router, got {type(router).__name__}")


def _metrics_text(metrics):
    if metrics is None:
        return None
    if isinstance(metrics, str):
        return metrics
    if isinstance(metrics, (list, tuple)) and all(isinstance(m, str) for m in metrics):
        if not metrics:
            return "none"
        return ",".join(metrics)
    raise TypeError("metrics: expected a str or a list of str")


def _count(value, what, minimum=1):
    """An optional integer argument (None: the library's default)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what}: must be at least {minimum}, got {value}")
    return int(value)


def _call(fn, *args, rename=None):
    """Calls the library; on failure raises RoutesimError with its message,
    from the exception of a Python router when one failed. rename: (path,
    name) replaces a temporary file's path in the message."""
    routers = registered_routers()
    clear_errors(routers)
    err = _lib.RsError()
    if fn(*args, ctypes.byref(err)) != 0:
        message = _lib.error_message(err)
        if rename:
            message = message.replace(*rename)
        raise_failure(message, routers)
    clear_errors(routers)


def route(trace, router, metrics=None, *, reference=None, batch_tokens=None, threads=None, out=None,
          chunk_tokens=None, memory_mb=None, reference_trace=None, skip_nonfinite=False, force=False, by=None,
          device=None):
    """Routes every token of trace with one router and returns the metric
    rows (the columns of results.csv) as a DataFrame.

    router: a spec ("topk:k=2,capacity_factor=1.25") or a routesim.Router.
    metrics: a family list ("load,entropy" or ["load", "entropy.router_entropy"]);
    None: route's default; "none" or []: no metrics. reference: the router
    agreement metrics compare with (spec or Router), on reference_trace when
    given. out: also write the decisions file (/decisions/ids, weights); it
    is never the trace, and replaces an existing file that is not a decisions
    file only with force=True.
    threads None: all cores. batch_tokens, chunk_tokens, memory_mb: as the
    command's options. by: "domain", "phase" or a list of them: every metric
    also per group, rows with "domain=NAME" / "phase=prefill|decode" last in
    their key (docs/metrics.md, Breakdowns). device: "cpu" (None) or "gpu", the
    per-token work on an OpenMP offload device (docs/gpu.md)."""
    lib = _lib.lib()
    opt = _lib.RsRouteOptions()
    lib.rs_route_options_init(ctypes.byref(opt))
    opt.trace = _lib.encode_path(trace, "trace")
    if opt.trace is None:
        raise TypeError("trace: expected a path, got None")
    opt.router = _spec(router, "router").encode("utf-8")
    opt.metrics = _lib.encode_text(_metrics_text(metrics), "metrics")
    opt.reference = _spec(reference, "reference").encode("utf-8") if reference is not None else None
    opt.reference_trace = _lib.encode_path(reference_trace, "reference_trace")
    opt.decisions = _lib.encode_path(out, "out")
    opt.batch_tokens = _count(batch_tokens, "batch_tokens")
    opt.threads = _count(threads, "threads")
    opt.chunk_tokens = _count(chunk_tokens, "chunk_tokens")
    if memory_mb is not None:
        if isinstance(memory_mb, bool) or not isinstance(memory_mb, numbers.Real):
            raise TypeError(f"memory_mb: expected a number, got {type(memory_mb).__name__}")
        if not memory_mb > 0:
            raise ValueError(f"memory_mb: must be positive, got {memory_mb}")
        opt.memory_mb = float(memory_mb)
    if not isinstance(skip_nonfinite, bool):
        raise TypeError(f"skip_nonfinite: expected a bool, got {type(skip_nonfinite).__name__}")
    opt.skip_nonfinite = int(skip_nonfinite)
    if not isinstance(force, bool):
        raise TypeError(f"force: expected a bool, got {type(force).__name__}")
    opt.force = int(force)
    if by is not None:
        if isinstance(by, str):
            by = [by]
        if not isinstance(by, (list, tuple)) or not by or not all(isinstance(d, str) for d in by):
            raise TypeError("by: expected a str or a non-empty list of str")
        opt.by = ",".join(by).encode("utf-8")
    if device is not None:
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device: expected 'cpu' or 'gpu', got {device!r}")
        opt.device = device.encode("utf-8")
    opt.progress = 0
    with tempfile.TemporaryDirectory(prefix="routesim-") as tmp:
        csv = os.path.join(tmp, "results.csv")
        opt.results_csv = os.fsencode(csv)
        _call(lib.rs_route, ctypes.byref(opt), rename=("--force", "force=True"))
        return read_csv(csv)


def run(config, output=None, tokens=None, threads=None, plots=False, force=False):
    """Runs an experiment config (a path or a dict, docs/config.md) as
    `routesim run` does and returns its results.csv as a DataFrame.

    A dict is written to a temporary JSON file; relative paths in it (and in
    a config file) are relative to the current directory. output overrides
    the config's output directory, tokens its generated traces' length,
    threads its thread count; plots=True makes the config's figures;
    force=True recomputes runs stored by an earlier call and lets the
    results replace files of another kind (`routesim run --force`)."""
    lib = _lib.lib()
    out = _lib.encode_path(output, "output")
    n_tokens = _count(tokens, "tokens")
    n_threads = _count(threads, "threads")
    for name, value in (("plots", plots), ("force", force)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    results = ctypes.c_void_p()
    if isinstance(config, dict):
        text = json.dumps(config)  # TypeError for values JSON cannot hold
        with tempfile.TemporaryDirectory(prefix="routesim-") as tmp:
            path = os.path.join(tmp, "config.json")
            with open(path, "w") as f:
                f.write(text)
            _call(lib.rs_run_config, os.fsencode(path), out, n_tokens, n_threads, int(plots), int(force),
                  ctypes.byref(results), rename=(path, "config (dict)"))
    else:
        path = _lib.encode_path(config, "config")
        _call(lib.rs_run_config, path, out, n_tokens, n_threads, int(plots), int(force), ctypes.byref(results))
    if not results.value:
        raise RoutesimError("rs_run_config succeeded without naming its results.csv")
    return read_csv(_lib.take_string(results.value, _lib.RsError()))


def _list_text(value, what):
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return ",".join(value).encode("utf-8")
    raise TypeError(f"{what}: expected a str or a non-empty list of str")


def _snapshot(directory):
    """{path: mtime_ns} of the files under directory."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            p = os.path.join(root, name)
            try:
                found[p] = os.stat(p).st_mtime_ns
            except FileNotFoundError:
                pass
    return found


def plot(results_dir, formats="png", kinds=None, metrics=None, output=None):
    """Figures from a results directory, as `routesim plot` makes them
    (docs/plots.md): formats, kinds and metrics are comma lists or lists
    (None: every kind / metric). Returns the sorted paths of the files
    written (data, scripts, captions and figures) under output (default
    RESULTS_DIR/plots)."""
    lib = _lib.lib()
    directory = _lib.encode_path(results_dir, "results_dir")
    if directory is None:
        raise TypeError("results_dir: expected a path, got None")
    fmt = _list_text(formats, "formats")
    kind = _list_text(kinds, "kinds")
    metric = _list_text(metrics, "metrics")
    out = _lib.encode_path(output, "output")
    target = os.fsdecode(out) if out is not None else os.path.join(os.fsdecode(directory), "plots")
    before = _snapshot(target)
    _call(lib.rs_plot, directory, fmt, kind, metric, out, 1)
    after = _snapshot(target)
    return sorted(p for p, t in after.items() if before.get(p) != t)
