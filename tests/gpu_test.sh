#!/usr/bin/env bash
# The offload build (make GPU=1): the binary holds an nvptx image (its
# offload function table is not empty and the image's PTX targets sm_80),
# and with ROUTESIM_ALLOW_HOST_FALLBACK=1 (no GPU here: GCC runs the target
# regions on the host) `route --device gpu` writes the results.csv and the
# decisions file of the plain build's `--device cpu`, byte for byte, for
# every router with a device hook, says which routers ran on the device
# (and, for softmax-scored routers, that entropy ran there, the host ran no
# softmax and the device widened and checked the logits), and `--device
# gpu` without the variable fails with one line.
#
#   tests/gpu_test.sh GPU_ROUTESIM PLAIN_ROUTESIM
set -euo pipefail

gpu_bin=$1
plain_bin=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
  echo "gpu test: FAILED: $*" >&2
  exit 1
}

# An offload function table with entries, and PTX for sm_80 in the image.
table=$(objdump -h "$gpu_bin" | awk '$2 == ".gnu.offload_funcs" {print $3}')
[ -n "$table" ] && [ $((16#$table)) -gt 0 ] || fail "$gpu_bin has no offload function table (.gnu.offload_funcs)"
grep -aq '\.target sm_80' "$gpu_bin" || fail "$gpu_bin holds no nvptx image for sm_80"
echo "gpu test: $gpu_bin holds $((16#$table / 8)) offloaded functions and an sm_80 nvptx image"

"$plain_bin" gen --preset deepseek-v3 --layers 2 --tokens 300 --seed 2 --dtype bfloat16 --no-progress \
  -o "$work/ds.h5" >/dev/null 2>&1
"$plain_bin" gen --preset olmoe --layers 2 --tokens 400 --seed 4 --no-progress -o "$work/olmoe.h5" >/dev/null 2>&1

check() { # trace router
  local trace=$1 router=$2 name=${2%%:*}
  local opts=(--router "$router" --metrics load,entropy,activation --no-progress --chunk-tokens 77 --force)
  "$plain_bin" route "$trace" "${opts[@]}" --device cpu --csv "$work/cpu.csv" --out "$work/cpu_dec.h5" \
    >/dev/null 2>&1 || fail "$router on $trace: --device cpu failed"
  ROUTESIM_ALLOW_HOST_FALLBACK=1 "$gpu_bin" route "$trace" "${opts[@]}" --threads 2 --device gpu \
    --csv "$work/gpu.csv" --out "$work/gpu_dec.h5" >/dev/null 2>"$work/gpu.err" ||
    fail "$router on $trace: --device gpu failed: $(cat "$work/gpu.err")"
  grep -q "on the device: .*routers .*$name.*metrics .*activation; on the CPU" "$work/gpu.err" ||
    fail "$router or the activation metric did not run on the device: $(cat "$work/gpu.err")"
  case $name in
    deepseek_v3 | sqrt_softplus | sigmoid_topk) ;; # entropy of their own scores needs libm: on the CPU
    *)
      grep -q "metrics .*entropy.*; on the CPU.*softmax on the host: no" "$work/gpu.err" ||
        fail "$router: entropy did not run on the device, or the host ran the softmax: $(cat "$work/gpu.err")"
      [ "$name" = null_experts ] || grep -q "logits widened and checked on the device" "$work/gpu.err" ||
        fail "$router: the host widened the logits: $(cat "$work/gpu.err")"
      ;;
  esac
  cmp -s "$work/cpu.csv" "$work/gpu.csv" || fail "$router on $trace: results.csv differs between cpu and gpu"
  cmp -s "$work/cpu_dec.h5" "$work/gpu_dec.h5" || fail "$router on $trace: decisions differ between cpu and gpu"
}

for router in topk:k=8 "topk:k=2,renorm=0" pnorm_topk:k=4 group_limited:n_group=8,topk_group=3,k=6 \
              deepseek_v3 sqrt_softplus:k=6 random:k=4 topp:p=0.8 threshold:t=0.5 dynmole:h_max=1 \
              sigmoid_topk:k=4 null_experts; do
  check "$work/ds.h5" "$router"
done
for router in topk:k=2 pnorm_topk:k=3 group_limited:n_group=4,topk_group=2,k=4 sqrt_softplus:k=4 random:k=2 \
              topp:p=0.6 dynmole:h_max=1,keep_top_k=3 hash hash:mode=balanced hash:mode=bigram; do
  check "$work/olmoe.h5" "$router"
done

set +e
err=$("$gpu_bin" route "$work/olmoe.h5" --router topk:k=2 --device gpu --no-progress 2>&1 >/dev/null)
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
  echo "gpu test: a device is present: the no-device check is skipped"
else
  [ "$rc" -eq 1 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [[ "$err" == *"no GPU found"* ]] ||
    fail "--device gpu without a device: expected one line and exit 1, got $rc: $err"
fi
echo "gpu test: passed (every router and trace byte-identical in host fallback)"
