#!/usr/bin/env bash
# The alert-rule tests run Debian's promtool, and the end-to-end test Debian's Prometheus
# (never a downloaded build). Installed when missing (as root); a daemon the package may
# start is stopped: the tests start their own on a free loopback port.
set -euo pipefail
if command -v promtool >/dev/null 2>&1 && [ -x /usr/bin/prometheus ]; then echo "ensure-prometheus: promtool and prometheus present"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "ensure-prometheus: promtool missing and not root: apt-get install prometheus" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package's own service (if the init system started one) is not ours.
(service prometheus stop || pkill -x prometheus || true) >/dev/null 2>&1
echo "ensure-prometheus: installed Debian's prometheus (promtool included)"
