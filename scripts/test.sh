#!/usr/bin/env bash
# The project's one test command (`npm test`). Extra arguments go to tap,
# e.g. `npm test -- test/auth/tokens.test.ts` or `bash scripts/test.sh --grep=foo`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/test-services.sh

if [[ ! -d node_modules ]]; then
  npm ci
fi

# The served snippet and the dashboard widget are read from their bundles at start; tap does
# not run the build.
node client-snippet/build.mjs
node dashboard/build.mjs
npm run typecheck
npm run lint
# tap's own summary is "# { total: N, pass: N, fail: N }"; CI reads a plain closing line.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
npx --no-install tap "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^# \{ total:' "$log" | tail -n 1 || true)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
echo
echo "${pass:-0} passed, ${fail:-0} failed"
exit "$status"
