#!/usr/bin/env python3
"""Runs every interop test: each tests/interop/test_*.py module, each of its
functions named test_*(tmp) with a fresh temporary directory. Run by
`make check` with Debian's python3 (numpy, h5py); ROUTESIM_BIN names the
binary under test.

Modules run as separate processes, as many at a time as there are cores
(RS_TEST_JOBS overrides); each module's report is printed whole, in name
order. Arguments keep the tests whose "module.function" contains one of
them."""

import concurrent.futures
import importlib
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)

import interop_util  # noqa: E402


def run_module(name, only):
    """Runs one module's tests in this process; returns the failure count."""
    module = importlib.import_module(name)
    for attr in sorted(dir(module)):
        if not attr.startswith("test_") or (only and not any(o in f"{name}.{attr}" for o in only)):
            continue
        before = len(interop_util.failures)
        with tempfile.TemporaryDirectory() as tmp:
            getattr(module, attr)(tmp)
        ok = len(interop_util.failures) == before
        print(("ok   " if ok else "FAIL ") + f"{name}.{attr}", flush=True)
    return len(interop_util.failures)


def main():
    args = sys.argv[1:]
    if args[:1] == ["--module"]:
        return 1 if run_module(args[1], args[2:]) else 0
    only = args
    modules = sorted(f[:-3] for f in os.listdir(here) if f.startswith("test_") and f.endswith(".py"))
    jobs = int(os.environ.get("RS_TEST_JOBS") or os.cpu_count() or 1)

    # Modules share the cores: OpenMP threads waiting at a barrier sleep
    # instead of spinning on a core another module's routesim needs.
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "passive"))

    def child(name):
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--module", name] + only,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        return r.returncode, r.stdout

    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for name, (rc, out) in zip(modules, pool.map(child, modules)):
            sys.stdout.write(out)
            sys.stdout.flush()
            if rc != 0:
                failed.append(name)
    if failed:
        print(f"interop: failures in {', '.join(failed)}")
        return 1
    print("interop: all tests passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
