#!/bin/sh
# One-shot "synth" job of docker-compose.yml: generates the synthetic demo data and hands each council
# its own warehouse file, search indexes included. Runs in the adapter image as the non-root user,
# without a network. Each council's volume is mounted at /var/lib/familyctx/councils/<slug> and its
# adapter config at /etc/familyctx/adapters/<slug>.yaml.
#
# Idempotent: when every warehouse is already there it does nothing, so `docker-compose up` again
# keeps the data; `docker-compose down -v` removes the volumes and the next `up` regenerates them.
# Knobs: FAMILYCTX_SYNTH_SEED (default 42), FAMILYCTX_SYNTH_PEOPLE (default 3000); the folders can be
# moved with FAMILYCTX_COUNCILS_DIR and FAMILYCTX_ADAPTER_CONFIG_DIR (tests run it that way).
set -eu

councils="stockport leeds manchester"
seed="${FAMILYCTX_SYNTH_SEED:-42}"
people="${FAMILYCTX_SYNTH_PEOPLE:-3000}"
councils_dir="${FAMILYCTX_COUNCILS_DIR:-/var/lib/familyctx/councils}"
config_dir="${FAMILYCTX_ADAPTER_CONFIG_DIR:-/etc/familyctx/adapters}"
out="$(mktemp -d "${TMPDIR:-/tmp}/synth.XXXXXX")"
trap 'rm -rf "$out"' EXIT

missing=""
for slug in $councils; do
  [ -f "$councils_dir/$slug/$slug.sqlite" ] || missing="$missing $slug"
done
if [ -z "$missing" ]; then
  echo "synth: every council warehouse is present; nothing to do (docker-compose down -v regenerates)"
  exit 0
fi

echo "synth: generating seed=$seed people=$people"
familyctx synth --out "$out" --seed "$seed" --people "$people"

for slug in $councils; do
  dest="$councils_dir/$slug"
  # Copy under a temporary name, index it, then rename: an adapter never sees a half-made file.
  cp "$out/$slug.sqlite" "$dest/$slug.sqlite.partial"
  familyctx adapter prepare --config "$config_dir/$slug.yaml" \
    --database-url "sqlite:///$dest/$slug.sqlite.partial"
  mv -f "$dest/$slug.sqlite.partial" "$dest/$slug.sqlite"
  echo "synth: $slug warehouse ready"
done
