#!/usr/bin/env bash
# Builds the one native addon Driftwood needs, better-sqlite3 (the embedded warehouse), after
# `npm ci --ignore-scripts`. Its install script would try to download a prebuilt binary from GitHub,
# which closed networks refuse, and the other install scripts (tfjs-node's libtensorflow download)
# must not run at all: without them, tfjs-node fails to load and TF.js falls back to the WASM backend.
# A compiled addon is cached per version and Node ABI so that a fresh clone does not compile again.
source "$(dirname "$0")/lib.sh"

pkg="$ROOT/node_modules/better-sqlite3"
[ -d "$pkg" ] || { echo "better-sqlite3 is not installed: run npm ci first" >&2; exit 1; }
version=$(node -p "require('$pkg/package.json').version")
abi=$(node -p 'process.versions.modules')
cache="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/native/better-sqlite3-$version-node$abi-$(uname -m).node"
target="$pkg/build/Release/better_sqlite3.node"

if [ -f "$target" ] && node -e "require('$pkg')(':memory:').close()" 2>/dev/null; then exit 0; fi
if [ -f "$cache" ]; then
  mkdir -p "$(dirname "$target")" && cp "$cache" "$target"
  if node -e "require('$pkg')(':memory:').close()" 2>/dev/null; then echo "better-sqlite3 $version: cached build"; exit 0; fi
fi
stage "compiling better-sqlite3 $version for Node ABI $abi (once per machine, a few minutes)"
# node-gyp needs Node's headers; the ones shipped with Node itself avoid a download.
nodedir=$(dirname "$(dirname "$(command -v node)")")
headers=()
if [ -f "$nodedir/include/node/node.h" ]; then headers=(--nodedir="$nodedir"); fi
(cd "$pkg" && npx --yes node-gyp rebuild --release -j 2 "${headers[@]}" > /tmp/driftwood-node-gyp.log 2>&1) \
  || { tail -30 /tmp/driftwood-node-gyp.log >&2; exit 1; }
node -e "require('$pkg')(':memory:').close()"
mkdir -p "$(dirname "$cache")" && cp "$target" "$cache"
done_stage
