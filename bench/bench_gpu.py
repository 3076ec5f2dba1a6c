#!/usr/bin/env python3
"""make bench: the GPU rate of the offload build (make GPU=1, docs/gpu.md).

Routes a DeepSeek-V3-shaped trace (58 layers x 256 experts, bf16) with
deepseek_v3 and the load, entropy and activation metrics on one CPU core
and with --device gpu (build/gpu/routesim, its libraries in build/gpu/lib),
checks that both results.csv are identical and prints the rates in
token-layers per second, the ratio, and the transfer rate the GPU run
reports. Without build/gpu/routesim, or without a GPU, it says so and
measures nothing: host-fallback figures would not be GPU figures."""

import argparse
import filecmp
import os
import re
import subprocess
import sys
import tempfile
import time


def log(*args):
    print(*args, flush=True)


def timed(cmd, env=None):
    start = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"bench_gpu: {' '.join(cmd)} failed: {r.stderr.strip()}")
    return seconds, r.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routesim", required=True, help="the plain build's routesim (its BUILD/gpu/routesim is used)")
    ap.add_argument("--gpu-routesim", help="the offload build's routesim (default: next to --routesim, in gpu/)")
    ap.add_argument("--tokens", type=int, default=20000, help="tokens of the trace")
    args = ap.parse_args()
    gpu_bin = args.gpu_routesim or os.path.join(os.path.dirname(os.path.abspath(args.routesim)), "gpu", "routesim")
    log("== GPU offload (bench/bench_gpu.py)")
    if not os.path.exists(gpu_bin):
        log(f"no GPU build: {gpu_bin} not found (make GPU=1): no GPU rate measured")
        return
    env = dict(os.environ)
    lib = os.path.join(os.path.dirname(gpu_bin), "lib")
    env["LD_LIBRARY_PATH"] = lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env.pop("ROUTESIM_ALLOW_HOST_FALLBACK", None)
    with tempfile.TemporaryDirectory() as work:
        probe = os.path.join(work, "probe.h5")
        subprocess.run([args.routesim, "gen", "--preset", "small", "--tokens", "64", "--no-progress", "-o", probe],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = subprocess.run([gpu_bin, "route", probe, "--router", "topk:k=2", "--metrics", "none", "--device", "gpu",
                            "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        if r.returncode != 0:
            log(f"no GPU: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'the device probe failed'}")
            return
        log(r.stderr.strip().splitlines()[0])
        trace = os.path.join(work, "deepseek-v3.h5")
        subprocess.run([args.routesim, "gen", "--preset", "deepseek-v3", "--tokens", str(args.tokens), "--seed", "1",
                        "--dtype", "bfloat16", "--no-progress", "-o", trace], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        common = ["route", trace, "--router", "deepseek_v3", "--metrics", "load,entropy,activation", "--no-progress"]
        cpu_csv, gpu_csv = os.path.join(work, "cpu.csv"), os.path.join(work, "gpu.csv")
        cpu_s, _ = timed([args.routesim] + common + ["--threads", "1", "--csv", cpu_csv])
        gpu_s, gpu_err = timed([gpu_bin] + common + ["--device", "gpu", "--csv", gpu_csv], env=env)
        if not filecmp.cmp(cpu_csv, gpu_csv, shallow=False):
            sys.exit("bench_gpu: results.csv differs between one CPU core and the GPU")
        token_layers = args.tokens * 58
        log(f"one CPU core: {token_layers / cpu_s:12.0f} token-layers/s ({cpu_s:.2f} s)")
        log(f"GPU:          {token_layers / gpu_s:12.0f} token-layers/s ({gpu_s:.2f} s): "
            f"{cpu_s / gpu_s:.2f}x one core (goal 20x); results.csv identical")
        m = re.search(r"in ([0-9.]+) s \(([0-9.]+) GB/s\)", gpu_err)
        if m:
            log(f"transfers:    {m.group(1)} s at {m.group(2)} GB/s: the run is {gpu_s / float(m.group(1)):.2f}x "
                "the transfer bound (goal: within 2x)")


if __name__ == "__main__":
    main()
