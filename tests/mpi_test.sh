#!/usr/bin/env bash
# The MPI build (make MPI=1): results.csv of `routesim run` is byte for
# byte the same with 1, 2 and 3 ranks as in one plain process, for a sweep
# of several routers over two traces and for a config of a single run; a
# rerun with another number of ranks takes every run from the run store;
# a run that fails on one rank stops the job with one error line and
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
cat > "$work/single.json" <<JSON
{
  "name": "mpi-single",
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

for config in sweep single; do
  "$plain_bin" run "$work/$config.json" "${run_opts[@]}" --output "$work/$config-plain" 2>"$work/log" ||
    { cat "$work/log"; fail "$config: the plain build failed"; }
  for np in 1 2 3; do
    out="$work/$config-np$np"
    mpirun "${mpirun_args[@]}" -np $np "$mpi_bin" run "$work/$config.json" "${run_opts[@]}" --output "$out" \
      2>"$work/log" || { cat "$work/log"; fail "$config: mpirun -np $np failed"; }
    cmp "$work/$config-plain/results.csv" "$out/results.csv" ||
      fail "$config: results.csv of $np ranks differs from one process"
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
