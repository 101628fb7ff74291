#!/bin/sh
# First boot for SD cards flashed in bulk (run by sluice-firstboot.service before sluice.service):
# a config dropped on the boot partition as sluice.yaml is validated, given a gateway id derived from
# the board serial when it sets none, and moved to /etc/sluice/sluice.yaml (the old one is kept as
# sluice.yaml.previous). The file is removed from the boot partition, which anyone with the card
# can read, because configs hold credentials. A config that does not validate is renamed
# sluice.yaml.invalid next to a sluice-error.txt saying why, and the installed config stays.
set -eu

SLUICE_HOME=${SLUICE_HOME:-/opt/sluice/current}
SLUICE_ETC=${SLUICE_ETC:-/etc/sluice}
BOOT_DIRS=${SLUICE_BOOT_DIRS:-/boot/firmware /boot}

say() { echo "sluice-firstboot: $*"; }

src=
for dir in $BOOT_DIRS; do
  if [ -f "$dir/sluice.yaml" ]; then
    src=$dir/sluice.yaml
    break
  fi
done
if [ -z "$src" ]; then
  say "no sluice.yaml on the boot partition; nothing to do"
  exit 0
fi
bootdir=$(dirname "$src")

mkdir -p "$SLUICE_ETC"
tmp=$(mktemp "$SLUICE_ETC/.sluice.yaml.XXXXXX")
errors=$(mktemp)
trap 'rm -f "$tmp" "$tmp.tmp" "$errors" "$errors.raw"' EXIT
cp "$src" "$tmp"

fail() {
  {
    echo "Sluice did not apply $src ($(date -u +%Y-%m-%dT%H:%M:%SZ)):"
    cat "$errors"
  } >"$bootdir/sluice-error.txt"
  mv -f "$src" "$src.invalid"
  sync
  say "$src is invalid; kept the installed config, wrote the reasons to $bootdir/sluice-error.txt"
  sed 's/^/  /' "$errors"
  exit 1
}

# Errors name the file the operator wrote, not the temporary copy.
validate() {
  if ! node "$SLUICE_HOME/bin/sluice" validate -c "$tmp" >"$errors.raw" 2>&1; then
    sed "s|$tmp|$src|g" "$errors.raw" >"$errors"
    rm -f "$errors.raw"
    fail
  fi
  rm -f "$errors.raw"
}
validate
if ! id=$(node "$SLUICE_HOME/deploy/gateway-id.mjs" "$tmp" 2>"$errors.raw"); then
  sed "s|$tmp|$src|g" "$errors.raw" >"$errors"
  fail
fi
validate

if getent group sluice >/dev/null; then
  chown root:sluice "$tmp"
fi
chmod 0640 "$tmp"
if [ -f "$SLUICE_ETC/sluice.yaml" ]; then
  cp -p "$SLUICE_ETC/sluice.yaml" "$SLUICE_ETC/sluice.yaml.previous"
fi
mv -f "$tmp" "$SLUICE_ETC/sluice.yaml"
rm -f "$src" "$bootdir/sluice-error.txt"
sync
say "applied $src as $SLUICE_ETC/sluice.yaml (gateway id $id)"
