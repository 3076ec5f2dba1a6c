#!/usr/bin/env python3
"""Runs the Python package's tests: each tests/python/test_*.py module in its
own `python -m unittest` process, as many at a time as there are cores
(RS_TEST_JOBS overrides), each module's report printed whole, in name order,
with the seconds it took. Fails when any module failed. Arguments keep the
modules whose name contains one of them. The environment passes through
(PYTHONPATH, ROUTESIM_BIN, ROUTESIM_LIB...)."""

import concurrent.futures
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# Modules share the cores: OpenMP threads waiting at a barrier sleep instead
# of spinning on a core another module needs.
ENV = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "passive"))


def run_module(name):
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "unittest", "-v", name], cwd=HERE, env=ENV,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode, r.stdout, time.monotonic() - start


def main():
    only = sys.argv[1:]
    modules = sorted(f[:-3] for f in os.listdir(HERE)
                     if f.startswith("test_") and f.endswith(".py") and (not only or any(o in f for o in only)))
    if not modules:
        print("python tests: no module matches", " ".join(only))
        return 1
    jobs = int(os.environ.get("RS_TEST_JOBS") or os.cpu_count() or 1)
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for name, (rc, out, seconds) in zip(modules, pool.map(run_module, modules)):
            sys.stdout.write(out)
            print(f"{name}: {'ok' if rc == 0 else 'FAILED'} ({seconds:.1f} s)", flush=True)
            if rc != 0:
                failed.append(name)
    if failed:
        print(f"python tests: failures in {', '.join(failed)}")
        return 1
    print(f"python tests: all {len(modules)} modules passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
