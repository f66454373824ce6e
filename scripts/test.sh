#!/usr/bin/env bash
# The project's one test command (`npm test`). Extra arguments go to tap,
# e.g. `npm test -- test/auth/tokens.test.ts` or `bash scripts/test.sh --grep=foo`.
#
# The suite runs on this machine's Node.js, then, when that is older than 24 (the line the
# Docker image ships), once more on Node.js 24 (scripts/node24.sh fetches it from the npm
# registry), with better-sqlite3's addon built against Node 24's headers for that run and put
# back after it. CAT_TEST_NODE24=0 leaves the second run out.
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

log=$(mktemp)
addon=node_modules/better-sqlite3/build/Release/better_sqlite3.node
kept="$(mktemp)"
cleanup() {
  rm -f "$log"
  # The machine's own build of the addon, back in place whatever happened.
  if [[ -s "$kept" ]]; then cp "$kept" "$addon"; fi
  rm -f "$kept"
}
trap cleanup EXIT

# tap's own summary is "# { total: N, pass: N, fail: N }"; CI reads a plain closing line.
passed=0
failed=0
status=0
run_suite() {
  local label="$1"
  shift
  set +e
  npx --no-install tap "$@" 2>&1 | tee "$log"
  local code=${PIPESTATUS[0]}
  set -e
  local summary pass fail
  summary=$(grep -E '^# \{ total:' "$log" | tail -n 1 || true)
  pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
  fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
  echo
  # The failures again, at the end where a reader of the tail looks: each failing assertion
  # with the lines that explain it, under the file it is in.
  if grep -qE '^\s*not ok ' "$log"; then
    echo "$label: what failed"
    grep -E -A 24 '^\s*not ok ' "$log" | head -n 200 || true
    echo
  fi
  echo "$label: ${pass:-0} passed, ${fail:-0} failed"
  passed=$((passed + ${pass:-0}))
  failed=$((failed + ${fail:-0}))
  # A run that ended without its summary (a crash) is a failure too.
  if [[ $code -ne 0 || -z "$summary" ]]; then status=1; fi
}

run_suite "Node.js $(node --version)" "$@"

major=$(node -p 'process.versions.node.split(".")[0]')
if [[ "${CAT_TEST_NODE24:-1}" != "0" && $major -lt 24 ]]; then
  node24="$(bash scripts/node24.sh)"
  cp "$addon" "$kept"
  echo "better-sqlite3: building its addon against Node.js $("$node24/bin/node" --version)'s headers"
  PATH="$node24/bin:$PATH" npm_config_nodedir="$node24" npm rebuild better-sqlite3 --loglevel=error >/dev/null
  # Coverage is the first run's; this one proves the image's Node.
  PATH="$node24/bin:$PATH" run_suite "Node.js $("$node24/bin/node" --version)" --disable-coverage "$@"
fi

echo
echo "$passed passed, $failed failed"
exit "$status"
