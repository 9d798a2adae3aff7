#!/usr/bin/env bash
# Fuzzes runql's decoders of untrusted bytes, its pushdown translator and its reading of ZenML's
# config files (fuzz/): each target (or those named after SECONDS) for SECONDS (default 120),
# two at a time, seeded with the real artifacts of tests/fixtures and the scripts of
# queries/ and tests/repl (push_down needs no seed; zenml_config's are committed: ZenML-written
# config.yaml/credentials.yaml with planted secrets), then keeps a minimized corpus in
# fuzz/corpus/<target>.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Not in .ci/run:
# coverage instrumentation rebuilds Arrow, Parquet and DataFusion's expression crates with other flags.
#
# Prints one line per target: seconds, executions, corpus size, and crashes found (each
# crash's input is kept in fuzz/artifacts/<target>/ by libFuzzer; it becomes a unit test).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-120}"
targets=(npy pandas_csv builtin_json parquet_artifact statement_splitter push_down zenml_config)
[ $# -gt 1 ] && targets=("${@:2}")

seed() {
  local target=$1 dir=corpus/$1
  mkdir -p "$dir"
  local pattern
  case $target in
    npy) pattern=data.npy ;;
    pandas_csv) pattern=df.csv ;;
    builtin_json) pattern=data.json ;;
    parquet_artifact) pattern='*parquet*' ;; # ZenML's df.parquet.gzip, tests/fixtures/parquet's
    statement_splitter) pattern='*.sql' ;;
    *) return ;;
  esac
  # Content-named copies, so seeding twice adds nothing.
  find ../tests/fixtures ../queries ../tests/serve -type f -name "$pattern" -size -256k 2>/dev/null |
    while read -r f; do cp "$f" "$dir/seed-$(sha1sum "$f" | cut -c1-16)"; done
}

cargo +nightly fuzz build -s none >/dev/null 2>&1
run() {
  local target=$1 log=/tmp/runql-fuzz-$1.log
  seed "$target"
  local status=0
  cargo +nightly fuzz run -s none "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=262144 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
  # A finding stops the run early: the time is what it ran, from libFuzzer's own rate.
  local rate ran
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | awk '{print $2}')
  ran=$(( ${rate:-0} > 0 ? ${execs:-0} / rate : 0 ))
  local crashes
  crashes=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
  echo "$target: ${ran}s of ${seconds}s, ${execs:-?} executions, exit $status, $crashes crash inputs (log $log)"
}
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[i]}" &
  [ $((i + 1)) -lt ${#targets[@]} ] && run "${targets[i + 1]}" &
  wait
done
# Keep the corpus small enough to commit: only inputs that add coverage.
for target in "${targets[@]}"; do
  cargo +nightly fuzz cmin -s none "$target" "corpus/$target" >/dev/null 2>&1 || true
  echo "$target: corpus $(find "corpus/$target" -type f | wc -l) files, $(du -sh "corpus/$target" | cut -f1)"
done
