#!/usr/bin/env bash
# Runs Buf (lint, format, breaking) from the npm package @bufbuild/buf, which ships the binary.
# Installed once into .tools/buf (npm registry); nothing is downloaded at run time after that.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tools="$here/.tools/buf"
if [ ! -x "$tools/node_modules/.bin/buf" ]; then
  mkdir -p "$tools"
  (cd "$tools" && "$here/scripts/npm.sh" install --silent --no-audit --no-fund @bufbuild/buf@1 >/dev/null)
fi
cd "$here"
# The platform package holds buf's native binary: run it directly, so no Node.js is needed to run it.
for native in "$tools"/node_modules/@bufbuild/buf-*/bin/buf; do
  [ -x "$native" ] && exec "$native" "$@"
done
exec "$tools/node_modules/.bin/buf" "$@"
