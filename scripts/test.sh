#!/usr/bin/env bash
# Palaver's whole test suite: formatting, lints, unit and property tests,
# storage tests on SQLite and a real PostgreSQL, end-to-end tests of the real
# binary with SIPp and baresip, and the browser tests.
#
# On a fresh Debian 12 machine with Rust it installs what the tests need
# (SIPp, baresip, PostgreSQL, sox, aiosmtpd, Chromium, Node) when missing.
# .ci/run calls this script.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

say() { printf '\n== %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "root (or sudo) is needed to install: $*" >&2; return 1
  fi
}

install_missing() {
  local missing=()
  command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
  command -v baresip >/dev/null 2>&1 || missing+=(baresip-core)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  command -v sox >/dev/null 2>&1 || missing+=(sox)
  /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
  { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists opus; } || missing+=(libopus-dev pkg-config)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

install_missing

say "formatting"
cargo fmt --all -- --check

say "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "PostgreSQL for the storage tests"
PGDIR=$(mktemp -d /tmp/palaver-pg.XXXXXX)
cleanup() { scripts/pg-test-server.sh stop "$PGDIR" >/dev/null 2>&1 || true; rm -rf "$PGDIR"; }
trap cleanup EXIT
PALAVER_TEST_POSTGRES_URL=$(scripts/pg-test-server.sh start "$PGDIR")
export PALAVER_TEST_POSTGRES_URL
# Missing peers or databases fail the run instead of skipping tests.
export PALAVER_REQUIRE_POSTGRES=1 PALAVER_REQUIRE_PEERS=1

say "building the tests"
cargo test --workspace --locked --no-run

say "unit, property and storage tests"
cargo test --workspace --locked --exclude palaver

# The end-to-end tests start the real server and several real phones each;
# run them one at a time so that audio checks are not judged on a machine
# starved of CPU by the other tests.
say "end-to-end tests (real server, SIPp, baresip, SMTP)"
cargo test -p palaver --locked -- --test-threads=1

if [ -x tests/web/run.sh ]; then
  say "browser tests"
  tests/web/run.sh
fi

say "all tests passed"
