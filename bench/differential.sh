#!/usr/bin/env bash
# A long differential search of runql's pushdown, outside CI: the seeded generator of
# tests/runql/differential.rs with more queries and another seed.
#
#   bench/differential.sh [QUERIES_PER_STORE] [SEED]     (default 100000, 1)
#
# Each query runs with pushdown and without it on the 0.60, 0.85 and 0.98 fixture stores
# (3 x QUERIES_PER_STORE queries), plus ternary logic partitioning of its predicate; then
# the same on the three MariaDB stores (and each against its export, a third as many), each
# SQLite store against its export, and each server release's mirror against the store file
# it serves (test-started MariaDB and ZenML servers).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/runql-target}"
queries="${1:-100000}"
seed="${2:-1}"
start=$(date +%s)
RUNQL_DIFF_QUERIES="$queries" RUNQL_DIFF_SEED="$seed" \
  cargo test --release --locked --test runql -- differential server::a_mirror_answers --nocapture
echo "differential: $((3 * queries)) queries per oracle, seed $seed, $(( $(date +%s) - start )) s"
