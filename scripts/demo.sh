#!/usr/bin/env bash
# The main job on a fresh machine: services up, a database of its own seeded
# with 5,000 rules and 180,000 properties, 50,000 results replayed, summary printed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-services.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
export DATABASE_URL="${DEMO_DATABASE_URL:-mysql://root@127.0.0.1:3306/tortmatch_demo}"
mkdir -p artifacts
node bin/tortmatch.js db migrate --create-database
node bin/tortmatch.js seed --results 50000 --results-out artifacts/demo-results.ndjson
node bin/tortmatch.js replay --in artifacts/demo-results.ndjson --out artifacts/demo-verdicts.ndjson 2>artifacts/demo-replay.log || { cat artifacts/demo-replay.log >&2; exit 1; }
grep -c ': invalid: ' artifacts/demo-replay.log | sed 's/^/invalid lines reported on stderr (artifacts\/demo-replay.log): /'
tail -n 3 artifacts/demo-replay.log
echo "verdicts: artifacts/demo-verdicts.ndjson"
