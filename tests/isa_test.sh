#!/bin/bash
# Every x86-64 level's build (make ROUTESIM_ISA=v4|v3|baseline: each cloned
# kernel built for that level only) writes the same results.csv as the
# native build, on bfloat16, float16 and float32 traces, with the routers
# and metrics that have cloned kernels (softmax, widening, top-k, gather,
# load, entropy, cache, BASE's assignment) and a sigmoid router's
# probability metrics.
# Usage: isa_test.sh NATIVE_BIN LEVEL_BIN...
set -eu
native=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$native" gen --preset deepseek-v3 --tokens 120 --seed 3 --dtype bfloat16 -o "$tmp/bf16.h5" --no-progress 2>/dev/null
"$native" gen --preset olmoe --tokens 300 --seed 4 --dtype float16 -o "$tmp/f16.h5" --no-progress 2>/dev/null
"$native" gen --preset qwen3-moe --tokens 200 --seed 5 --dtype float32 -o "$tmp/f32.h5" --no-progress 2>/dev/null

# every router with cloned kernels; deepseek_v3 and group_limited need the
# DeepSeek-V3 trace's bias and groups
common='"topk:k=8", "topk:k=2", "sqrt_softplus", "sparsemixer", "topp", "threshold", "dynmole", "zero_experts",
        "null_experts", "dynamic_skip", "layer_schedule", "noisy_topk", "gumbel_topk", "top_any", "relu", "switch",
        "graph_smooth", "sinkhorn", "expert_choice", "quantile_balance", "base", "aux_free_bias",
        "aux_free_bias:score=sigmoid", "ema_penalty", "selective_sinkhorn:fraction=0.5", "quantile_balance:score=sigmoid"'
run() { # BIN NAME TRACE
    routers=$common
    case $2 in *bf16) routers="$common, \"deepseek_v3\", \"group_limited\"" ;; esac
    cat > "$tmp/$2.json" <<JSON
{"name": "isa", "traces": ["$3"], "routers": [$routers], "metrics": ["load", "entropy", "cache"],
 "batch_tokens": 64, "memory_mb": 256, "output": "$tmp/$2"}
JSON
    "$1" run "$tmp/$2.json" --threads 2 --force --no-progress -q 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
}

status=0
for trace in bf16 f16 f32; do
    run "$native" "native-$trace" "$tmp/$trace.h5"
    for bin in "$@"; do
        level=$(basename "$(dirname "$bin")")
        run "$bin" "$level-$trace" "$tmp/$trace.h5"
        if ! cmp -s "$tmp/native-$trace/results.csv" "$tmp/$level-$trace/results.csv"; then
            echo "isa_test: $level differs from the native build on the $trace trace:"
            diff "$tmp/native-$trace/results.csv" "$tmp/$level-$trace/results.csv" | head -5
            status=1
        fi
    done
done
[ $status = 0 ] && echo "isa_test: $# level builds match the native build on 3 traces"
exit $status
