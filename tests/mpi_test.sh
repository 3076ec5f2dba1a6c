#!/usr/bin/env bash
# The MPI build (make MPI=1): results.csv of `routesim run` is byte for
# byte the same with 1, 2 and 3 ranks as in one plain process, for a sweep
# of several routers over two traces (whole runs split across ranks), for
# a config of a single run (routed in blocks of whole sequences, one per
# rank), for a single run of a stateful router (routed whole, saying so)
# and for a trace of fewer sequences than ranks; a rerun with another
# number of ranks takes every run from the run store; a run that fails on
# one rank, or in one rank's block, stops the job with one error line and
# leaves no results files.
#
#   tests/mpi_test.sh MPI_ROUTESIM PLAIN_ROUTESIM
set -euo pipefail

mpi_bin=$1
plain_bin=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mpirun_args=(--oversubscribe)
if [ "$(id -u)" -eq 0 ]; then
  mpirun_args+=(--allow-run-as-root)
fi
run_opts=(--no-progress -q --no-plots --threads 1)

fail() {
  echo "mpi test: FAILED: $*" >&2
  exit 1
}

cat > "$work/sweep.json" <<JSON
{
  "name": "mpi-sweep",
  "traces": [
    {"path": "$work/a.h5", "generate": {"preset": "mixtral", "tokens": 400, "seed": 1}},
    {"path": "$work/b.h5", "generate": {"preset": "mixtral", "tokens": 300, "seed": 2}}
  ],
  "routers": [
    {"name": "topk", "params": {"k": [1, 2, 3]}},
    {"name": "random", "params": {"k": 2, "seed": 1}},
    {"name": "sigmoid_topk", "params": {"k": 2}}
  ],
  "metrics": [{"name": "load"}, {"name": "entropy"}],
  "output": "$work/unused"
}
JSON
# one run on a trace of 20-odd sequences: every rank routes a block of them
cat > "$work/single.json" <<JSON
{
  "name": "mpi-single",
  "traces": [{"path": "$work/c.h5", "generate": {"preset": "mixtral", "tokens": 1500, "seq_len": 64, "seed": 3}}],
  "routers": [{"name": "topk", "params": {"k": 2}}],
  "metrics": [{"name": "load"}, {"name": "entropy"}, {"name": "cache"}, {"name": "srp"}],
  "output": "$work/unused"
}
JSON
# a router whose state carries from one sequence to the next: routed whole
cat > "$work/stateful.json" <<JSON
{
  "name": "mpi-stateful",
  "traces": [{"path": "$work/c.h5"}],
  "routers": [{"name": "aux_free_bias", "params": {"k": 2}}],
  "metrics": [{"name": "load"}, {"name": "cache"}],
  "output": "$work/unused"
}
JSON
# one run on a.h5, of 2 sequences: with 3 ranks, too few for a block each
cat > "$work/few.json" <<JSON
{
  "name": "mpi-few",
  "traces": [{"path": "$work/a.h5"}],
  "routers": [{"name": "topk", "params": {"k": 2}}],
  "metrics": [{"name": "load"}, {"name": "entropy"}],
  "output": "$work/unused"
}
JSON
# a replay router needs recorded decisions, which the synthetic trace lacks:
# with 3 ranks it is the last rank's only run
cat > "$work/bad.json" <<JSON
{
  "name": "mpi-bad",
  "traces": [{"path": "$work/a.h5"}],
  "routers": [{"name": "topk", "params": {"k": 2}}, {"name": "topk", "params": {"k": 1}}, {"name": "replay"}],
  "metrics": [{"name": "load"}],
  "output": "$work/unused"
}
JSON
# a trace that is not HDF5: with 2 ranks only rank 1 opens it
printf 'not an HDF5 file\n' > "$work/bad.h5"
cat > "$work/badtrace.json" <<JSON
{
  "name": "mpi-bad-trace",
  "traces": [{"path": "$work/a.h5"}, {"path": "$work/bad.h5"}],
  "routers": [{"name": "topk", "params": {"k": 2}}],
  "metrics": [{"name": "load"}],
  "output": "$work/unused"
}
JSON

# what rank 0 says of how it split a config's runs, by config and ranks
expect_note() { # CONFIG NP
  case "$1:$2" in
    single:[23]) echo "1 run in $2 blocks of whole sequences" ;;
    stateful:[23]) echo "aux_free_bias:k=2 is routed whole by one rank, not in blocks of sequences across ranks: router aux_free_bias:k=2 carries state" ;;
    few:3) echo "2 sequences, fewer than the 3 ranks" ;;
  esac
}

for config in sweep single stateful few; do
  "$plain_bin" run "$work/$config.json" "${run_opts[@]}" --output "$work/$config-plain" 2>"$work/log" ||
    { cat "$work/log"; fail "$config: the plain build failed"; }
  for np in 1 2 3; do
    out="$work/$config-np$np"
    mpirun "${mpirun_args[@]}" -np $np "$mpi_bin" run "$work/$config.json" "${run_opts[@]}" --output "$out" \
      2>"$work/log" || { cat "$work/log"; fail "$config: mpirun -np $np failed"; }
    cmp "$work/$config-plain/results.csv" "$out/results.csv" ||
      fail "$config: results.csv of $np ranks differs from one process"
    note=$(expect_note $config $np)
    if [ -n "$note" ]; then
      grep -qF "$note" "$work/log" || { cat "$work/log"; fail "$config: $np ranks did not say '$note'"; }
    fi
    echo "mpi test: $config: results.csv of $np rank(s) is the same as one process's"
  done
done

# resume: the runs stored by 2 ranks serve 3 ranks, which route nothing
mpirun "${mpirun_args[@]}" -np 3 "$mpi_bin" run "$work/sweep.json" "${run_opts[@]}" --output "$work/sweep-np2" \
  2>"$work/log" || { cat "$work/log"; fail "resume with 3 ranks failed"; }
# each rank reports "X of Y runs already in ..." for its share of a trace
stored=$(awk '/runs already in/ { for (i = 1; i < NF; i++) if ($(i + 1) == "of") { n += $i; break } } END { print n + 0 }' \
  "$work/log")
[ "$stored" -eq 10 ] || { cat "$work/log"; fail "resume: expected all 10 runs from the run store, got $stored"; }
cmp "$work/sweep-plain/results.csv" "$work/sweep-np2/results.csv" || fail "resume: results.csv changed"
echo "mpi test: a rerun with 3 ranks takes the runs 2 ranks stored"
# the same for a run that 2 ranks routed in blocks
mpirun "${mpirun_args[@]}" -np 3 "$mpi_bin" run "$work/single.json" "${run_opts[@]}" --output "$work/single-np2" \
  2>"$work/log" || { cat "$work/log"; fail "resume of a run in blocks with 3 ranks failed"; }
grep -q "1 of 1 runs already in" "$work/log" && ! grep -q "blocks of whole sequences" "$work/log" ||
  { cat "$work/log"; fail "resume: the run routed in blocks was not taken from the run store"; }
cmp "$work/single-plain/results.csv" "$work/single-np2/results.csv" || fail "resume of a run in blocks: results.csv changed"
echo "mpi test: a rerun with 3 ranks takes the run 2 ranks stored in blocks"

# a failing rank stops every rank: one error line, no results files
expect_failure() { # CONFIG NP WHAT PATTERN
  local out="$work/$1-out"
  set +e
  mpirun "${mpirun_args[@]}" -np "$2" "$mpi_bin" run "$work/$1.json" "${run_opts[@]}" --output "$out" \
    >"$work/out" 2>"$work/log"
  local rc=$?
  set -e
  [ $rc -ne 0 ] || fail "$3: mpirun exited 0"
  local errors
  errors=$(grep -c "^routesim: error" "$work/log" || true)
  [ "$errors" -eq 1 ] || { cat "$work/log"; fail "$3: expected one error line, got $errors"; }
  grep -q "^routesim: error: $4" "$work/log" || { cat "$work/log"; fail "$3: the error is not '$4'"; }
  [ ! -e "$out/results.csv" ] && [ ! -e "$out/results.json" ] || fail "$3: results files were written"
  echo "mpi test: $3 stops all ranks with one error line and no results"
}
expect_failure bad 3 "a router failing on rank 2" "rank 2 of 3: router replay: .*/router/topk_ids"
expect_failure badtrace 2 "a bad trace opened by rank 1" "rank 1 of 2: .*bad.h5"
# a NaN logit in the last sequence: only rank 1's block of the single run holds it
if /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
  cp "$work/c.h5" "$work/nan.h5"
  /usr/bin/python3 - "$work/nan.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    logits = f["/router/logits"]
    logits[logits.shape[0] - 1, 0, 0] = np.nan
PY
  cat > "$work/nanblock.json" <<JSON
{
  "name": "mpi-nan-block",
  "traces": [{"path": "$work/nan.h5"}],
  "routers": [{"name": "topk", "params": {"k": 2}}],
  "metrics": [{"name": "load"}],
  "output": "$work/unused"
}
JSON
  expect_failure nanblock 2 "a NaN logit in rank 1's block" "rank 1 of 2: .*nan.h5: /router/logits: NaN value at token 1499"
else
  echo "mpi test: SKIPPED the NaN block case: /usr/bin/python3 lacks h5py or numpy"
fi
