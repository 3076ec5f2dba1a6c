#!/usr/bin/env bash
# Runs a Check test binary (tests/test_main.c) as several processes at once,
# each a shard of its suites, as many at a time as there are cores
# (RS_TEST_JOBS overrides), prints each shard's report in order and a total,
# and fails when any shard failed. The environment passes through.
#
#   tests/run_shards.sh BINARY
set -uo pipefail
bin=${1:?usage: run_shards.sh BINARY}
jobs=${RS_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
if [ "$jobs" -eq 1 ] || [ -n "${CK_RUN_SUITE:-}" ]; then
    exec "$bin"
fi
# More shards than jobs, so that one slow suite does not leave a core idle.
shards=$((jobs * 4))
# Tests share the cores with the other shards: their time limits stretch,
# and OpenMP threads waiting at a barrier sleep instead of spinning on a core
# another shard needs (spinning took half the CPU time of some suites).
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-3}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
logs=$(mktemp -d "${TMPDIR:-/tmp}/routesim-shards.XXXXXX")
trap 'rm -rf "$logs"' EXIT
seq 0 $((shards - 1)) | xargs -P "$jobs" -I{} sh -c '"$1" --shard "$2/$3" > "$4/$2.log" 2>&1; echo $? > "$4/$2.rc"' \
    sh "$bin" {} "$shards" "$logs"
status=0 checks=0 failures=0 errors=0
for i in $(seq 0 $((shards - 1))); do
    cat "$logs/$i.log"
    rc=$(cat "$logs/$i.rc" 2>/dev/null || echo 1)
    [ "$rc" = 0 ] || { status=1; echo "shard $i/$shards of $bin exited with $rc"; }
    line=$(grep -E '^[0-9]+%: Checks: ' "$logs/$i.log" | tail -1)
    if [ -n "$line" ]; then
        set -- $(printf '%s\n' "$line" | sed -E 's/.*Checks: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2 \3/')
        checks=$((checks + $1)) failures=$((failures + $2)) errors=$((errors + $3))
    fi
done
echo "all shards: Checks: $checks, Failures: $failures, Errors: $errors"
exit $status
