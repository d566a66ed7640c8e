#!/usr/bin/env bash
# Regenerates the Python code for protos/familycontext/v1 into protos/gen/python.
# Usage: scripts/gen_protos.sh [python]   (default: .venv/bin/python)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-"$here/.venv/bin/python"}
out="$here/protos/gen/python"
rm -rf "$out/familycontext"
mkdir -p "$out"
"$py" -m grpc_tools.protoc -I"$here/protos" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  "$here"/protos/familycontext/v1/*.proto
for d in "$out/familycontext" "$out/familycontext/v1"; do
  printf '"""Generated from protos/familycontext (do not edit; run make protos)."""\n' > "$d/__init__.py"
done
