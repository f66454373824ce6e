#!/usr/bin/env bash
# The benchmarks (`npm run bench`, `npm run bench -- --quick`): starts Redis and MariaDB when
# they are missing (installing them on Debian/Ubuntu, as the test command does), installs wrk
# (the heartbeat scenarios' load generator) from Debian's packages when it is missing, builds
# the browser bundles the server serves, then runs bench/run.ts. Arguments go to bench/run.ts.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/test-services.sh redis mariadb

if ! command -v wrk >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || { echo "bench: wrk not found and no apt-get; install wrk by hand" >&2; exit 1; }
  apt-get update -qq </dev/null >/dev/null || { echo "bench: apt-get update failed" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk </dev/null >/dev/null \
    || { echo "bench: apt-get install wrk failed" >&2; exit 1; }
  echo "wrk: installed"
fi

if [[ ! -d node_modules ]]; then
  npm ci
fi

node client-snippet/build.mjs
node dashboard/build.mjs
exec node --import tsx bench/run.ts "$@"
