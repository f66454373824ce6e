#!/usr/bin/env bash
# The benchmarks (`npm run bench`, `npm run bench -- --quick`): starts Redis and MariaDB when
# they are missing and installs wrk (the heartbeat scenarios' load generator) and Chromium (the
# dashboard scenario's browser) when they are
# missing, from Debian's packages, as the test command does; builds the browser bundles the
# server serves, then runs bench/run.ts. Arguments go to bench/run.ts.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/test-services.sh redis mariadb wrk chromium

if [[ ! -d node_modules ]]; then
  npm ci
fi

node client-snippet/build.mjs
node dashboard/build.mjs
exec node --import tsx bench/run.ts "$@"
