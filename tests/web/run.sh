#!/usr/bin/env bash
# Browser tests of the panel and the live pages. Builds the binaries, installs
# node modules if missing, runs headless Chromium; exits non-zero on failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
cd "$root"
cargo build -q -p palaver
cargo build -q -p palaver-web --example live_demo
cd "$here"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
mkdir -p "$root/docs/screenshots"
node --test --test-concurrency=1 panel.test.mjs live.test.mjs live_sip.test.mjs
