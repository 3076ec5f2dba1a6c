#!/usr/bin/env bash
# The device check of the offload build, for a machine with an NVIDIA GPU
# and no compiler: copy the repository with build/gpu/ (routesim and lib/,
# made by `make GPU=1`) there and run
#
#   scripts/gpu-check.sh [TRACE.h5]
#
# It prints the device (nvidia-smi, and the binary's own line), generates a
# DeepSeek-V3-shaped trace (58 layers x 256 experts, bf16; GPU_CHECK_TOKENS
# tokens, default 30000: about 10 s of one CPU core) unless TRACE is given,
# routes it with each of GPU_CHECK_ROUTERS (default topk:k=8, the bench's
# core set, everything on the device; and deepseek_v3, whose sigmoid scores
# keep the entropy metric and its softmax on the host) and the load,
# entropy and activation metrics on the CPU (1 thread, then every core) and
# on the GPU, checks that the three results.csv are identical, and prints
# the GPU's rate as a ratio to
# one CPU core and to the host-to-device transfer bound (the time the run
# spent copying the trace's logits to the device, which the binary reports).
# Without a device it says so and runs the device path on the host
# (ROUTESIM_ALLOW_HOST_FALLBACK=1): the run then proves the check works end
# to end, and its figures are not GPU figures.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ROUTESIM_GPU_BIN:-$root/build/gpu/routesim}
lib=$(dirname "$bin")/lib
tokens=${GPU_CHECK_TOKENS:-30000}
routers=${GPU_CHECK_ROUTERS:-topk:k=8 deepseek_v3}
metrics=load,entropy,activation
[ -x "$bin" ] || { echo "gpu-check: $bin not found (build it with make GPU=1 and copy build/gpu/)" >&2; exit 1; }
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== device"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current \
    --format=csv,noheader || true
else
  echo "nvidia-smi: not found"
fi
"$bin" gen --preset small --tokens 64 --no-progress -o "$work/probe.h5" >/dev/null 2>&1
if "$bin" route "$work/probe.h5" --router topk:k=2 --metrics none --device gpu --no-progress 2>"$work/probe.err"; then
  fallback=0
else
  echo "gpu-check: no GPU: $(tail -n 1 "$work/probe.err")"
  echo "gpu-check: running the device path on the host (ROUTESIM_ALLOW_HOST_FALLBACK=1): figures below are NOT GPU figures"
  export ROUTESIM_ALLOW_HOST_FALLBACK=1
  fallback=1
fi
"$bin" route "$work/probe.h5" --router topk:k=2 --metrics none --device gpu --no-progress 2>"$work/probe.err"
head -n 1 "$work/probe.err"

trace=${1:-}
if [ -z "$trace" ]; then
  trace=$work/deepseek-v3.h5
  echo "== generating a DeepSeek-V3-shaped trace: $tokens tokens, bf16"
  "$bin" gen --preset deepseek-v3 --tokens "$tokens" --seed 1 --dtype bfloat16 --no-progress -o "$trace" >/dev/null
fi
"$bin" info "$trace" > "$work/info.txt"
grep -E '^(model|shape|logits) ' "$work/info.txt"

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; } # no bc on a bare machine
route() { # name device threads...
  local name=$1 device=$2
  shift 2
  local start end
  start=$(now)
  "$bin" route "$trace" --router "$router" --metrics "$metrics" --device "$device" --no-progress \
    --csv "$work/$name.csv" "$@" >/dev/null 2>"$work/$name.err" || { cat "$work/$name.err" >&2; exit 1; }
  end=$(now)
  calc "$end - $start" > "$work/$name.seconds"
  printf '%-12s %8.3f s\n' "$name" "$(cat "$work/$name.seconds")"
}

for router in $routers; do
  echo "== routing with $router ($metrics)"
  route cpu-1-core cpu --threads 1
  route cpu-all cpu
  route gpu gpu
  cat "$work/gpu.err"

  cmp "$work/cpu-1-core.csv" "$work/gpu.csv" || { echo "gpu-check: FAILED: $router: results.csv differs (1 core vs GPU)"; exit 1; }
  cmp "$work/cpu-all.csv" "$work/gpu.csv" || { echo "gpu-check: FAILED: $router: results.csv differs (all cores vs GPU)"; exit 1; }
  echo "results.csv: identical on 1 core, all cores and the GPU"

  one=$(cat "$work/cpu-1-core.seconds") all=$(cat "$work/cpu-all.seconds") gpu=$(cat "$work/gpu.seconds")
  upload=$(sed -n 's/.* in \([0-9.]*\) s (.*GB\/s).*/\1/p' "$work/gpu.err" | head -n 1)
  rate=$(sed -n 's/.*s (\([0-9.]*\) GB\/s).*/\1/p' "$work/gpu.err" | head -n 1)
  [ -n "$upload" ] || { echo "gpu-check: FAILED: the GPU run did not report its transfers (no chunk ran on the device)"; exit 1; }
  echo "== ratios ($router)"
  printf 'GPU vs one CPU core:       %8sx  (goal: at least 20x)\n' "$(calc "$one / $gpu")"
  printf 'GPU vs all CPU cores:      %8sx\n' "$(calc "$all / $gpu")"
  printf 'GPU run vs transfer bound: %8sx  (the run over its %s s of copying logits at %s GB/s; goal: within 2x)\n' \
    "$(calc "$gpu / ($upload > 0 ? $upload : 1e-9)")" "$upload" "$rate"
done
if [ "$fallback" -eq 1 ]; then
  echo "gpu-check: no GPU was present: these ratios compare the host with itself"
fi
