#!/usr/bin/env bash
# The status-page test drives Debian's Chromium (never a downloaded browser build).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then echo "ensure-chromium: /usr/bin/chromium present"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "ensure-chromium: /usr/bin/chromium missing and not root: apt-get install chromium" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq chromium >/dev/null
echo "ensure-chromium: installed Debian's chromium"
