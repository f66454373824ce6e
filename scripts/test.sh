#!/usr/bin/env bash
# The project's one test command (`npm test`). Extra arguments go to tap,
# e.g. `npm test -- test/auth.test.ts` or `bash scripts/test.sh --grep=foo`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/test-services.sh

if [[ ! -d node_modules ]]; then
  npm ci
fi

npm run typecheck
npm run lint
npx --no-install tap "$@"
