#!/usr/bin/env bash
# Seed the benchmark database (its own, never the default one) and results file, once.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${BENCH_DATABASE_URL:-mysql://root@127.0.0.1:3306/tortmatch_bench}"
mkdir -p artifacts
node bin/tortmatch.js db migrate --create-database
if [ ! -s artifacts/bench-results.ndjson ] || [ "${BENCH_RESEED:-0}" = 1 ]; then
  node bin/tortmatch.js seed --replace --results 50000 --results-out artifacts/bench-results.ndjson
fi
