#!/usr/bin/env bash
# The main job on a fresh machine: services up (started or installed when
# missing), a database of its own seeded with 5,000 rules and 180,000
# properties, a burst of 20,000 results published before the service's rule
# cache is ready, the live service draining it, a summary; then it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-services.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build   # run the compiled service (no tsx loader thread)
export DATABASE_URL="${DEMO_DATABASE_URL:-mysql://root@127.0.0.1:3306/tortmatch_demo}"
exec node bin/tortmatch.js demo "$@"
