#!/usr/bin/env bash
# Offline validation of the deployment configuration (no Docker engine, no cluster needed).
#
#   scripts/check_deploy.sh
#
# Checks, each printed as PASS / FAIL / SKIPPED with the reason:
#   1. docker-compose.yml (alone, with the dev override, with the dev-oidc profile): `docker-compose
#      config -q` (Debian package docker-compose) or `docker compose config -q` (Compose v2 plugin).
#   2. Kubernetes: `kubectl kustomize` renders deploy/k8s/base and every overlay, and each rendering
#      is validated by kubernetes-validate --strict against Kubernetes 1.30 and its newest schemas.
#      Without kubectl, every resource file listed by a kustomization is validated on its own instead.
#   3. The Keycloak realm file is JSON; deploy/compose/synth.sh parses as sh.
# Exit status: 1 when a check FAILED; 0 otherwise, SKIPPED checks included (a missing optional tool is
# not a failure). Install the tools: apt-get install -y docker-compose; pip install -e ".[dev]"
# (kubernetes-validate). kubectl is not in the package registries: it is used when present.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
K8S_VERSIONS="${FAMILYCTX_K8S_VERSIONS:-1.30.0 1.37.0}"
failed=0
skipped=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS    $*"; }
fail() { echo "FAIL    $*"; failed=$((failed + 1)); }
skip() { echo "SKIPPED $*"; skipped=$((skipped + 1)); }
run_quiet() {  # run_quiet LABEL CMD...: PASS, or FAIL with the command's output indented
  local label="$1"; shift
  if "$@" >"$tmp/out" 2>&1; then pass "$label"; else fail "$label"; sed 's/^/        /' "$tmp/out"; fi
}

echo "== docker-compose"
compose=()
if command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
fi
if [ ${#compose[@]} -eq 0 ]; then
  skip "compose config: neither docker-compose nor the docker compose plugin is installed" \
       "(apt-get install -y docker-compose)"
else
  run_quiet "compose config: docker-compose.yml (${compose[*]})" \
    "${compose[@]}" -f docker-compose.yml config -q
  run_quiet "compose config: docker-compose.yml + deploy/compose/docker-compose.dev.yml" \
    "${compose[@]}" -f docker-compose.yml -f deploy/compose/docker-compose.dev.yml config -q
  run_quiet "compose config: docker-compose.yml --profile dev-oidc" \
    "${compose[@]}" -f docker-compose.yml --profile dev-oidc config -q
fi

echo "== Kubernetes"
have_validate=0
if "$PYTHON" -c "import kubernetes_validate" >/dev/null 2>&1; then
  have_validate=1
else
  skip "kubernetes-validate: not installed in $PYTHON (pip install -e '.[dev]')"
fi
validate() {  # validate LABEL FILE...: kubernetes-validate --strict for every version in K8S_VERSIONS
  local label="$1"; shift
  local version
  for version in $K8S_VERSIONS; do
    run_quiet "kubernetes-validate --strict -k $version: $label" \
      "$PYTHON" -m kubernetes_validate --strict --quiet -k "$version" "$@"
  done
}
kustomizations=(deploy/k8s/base deploy/k8s/overlays/*)
if command -v kubectl >/dev/null 2>&1; then
  for dir in "${kustomizations[@]}"; do
    out="$tmp/$(echo "$dir" | tr / _).yaml"
    if kubectl kustomize "$dir" >"$out" 2>"$tmp/err"; then
      pass "kubectl kustomize $dir ($(grep -c '^kind:' "$out") resources)"
      [ $have_validate -eq 1 ] && validate "$dir (rendered)" "$out"
    else
      fail "kubectl kustomize $dir"; sed 's/^/        /' "$tmp/err"
    fi
  done
else
  skip "kustomize render: kubectl is not installed (not in the package registries); overlays" \
       "(namespace, replaced ConfigMaps, image tags) are checked only by tests/unit/test_deploy_k8s.py"
  if [ $have_validate -eq 1 ]; then
    # Without a renderer, validate every plain resource file a kustomization lists.
    mapfile -t files < <("$PYTHON" - <<'PY'
import pathlib
import yaml
for kfile in sorted(pathlib.Path("deploy/k8s").rglob("kustomization.yaml")):
    for entry in yaml.safe_load(kfile.read_text()).get("resources", []):
        path = kfile.parent / entry
        if path.is_file():
            print(path)
PY
)
    validate "${#files[@]} resource files, unrendered" "${files[@]}"
  fi
fi

echo "== other files"
run_quiet "deploy/keycloak/realm-familyctx.json is JSON" \
  "$PYTHON" -c "import json, sys; json.load(open(sys.argv[1], encoding='utf-8'))" deploy/keycloak/realm-familyctx.json
run_quiet "deploy/compose/synth.sh parses (sh -n)" sh -n deploy/compose/synth.sh
skip "docker build: no Docker engine here; the Dockerfiles are checked by tests/unit/test_deploy_docker.py"
skip "Keycloak realm import: needs a running Keycloak; the realm's shape is checked by tests/unit/test_deploy_compose.py"

echo "== summary: $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
