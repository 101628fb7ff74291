#!/usr/bin/env bash
# deploy/install.sh on Debian 12 (bookworm), whose nodejs is 18: it must stop with one sentence
# saying what to do, and change nothing (no release, no user, no unit).
# Usage (root): test/ops/bookworm-refusal.sh BUNDLE.tar.gz
# The chroot (minbase + the Debian nodejs) is cached in /var/cache/sluice-deploy-test.
# Exit 0 = passed; 77 = cannot run here.
set -euo pipefail

CACHE=/var/cache/sluice-deploy-test
BASE=$CACHE/rootfs-bookworm-node18
MIRROR=${SLUICE_CHROOT_MIRROR:-http://deb.debian.org/debian}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

bundle=${1:?usage: bookworm-refusal.sh BUNDLE.tar.gz}
[ -f "$bundle" ] || fail "no such bundle: $bundle"
if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null; then
  echo "SKIP: needs root and debootstrap" >&2
  exit 77
fi
if [ ! -f "$BASE/.ready" ]; then
  echo "== building the cached bookworm chroot with its nodejs (first run only)"
  rm -rf "$BASE.tmp"
  debootstrap --variant=minbase --include=ca-certificates,nodejs bookworm "$BASE.tmp" "$MIRROR" \
    >"$CACHE/debootstrap-bookworm.log" 2>&1 || { tail -20 "$CACHE/debootstrap-bookworm.log" >&2; fail "debootstrap failed"; }
  touch "$BASE.tmp/.ready"
  rm -rf "$BASE"
  mv "$BASE.tmp" "$BASE"
fi

root=$(mktemp -d /var/tmp/sluice-bookworm.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
cp -a "$BASE/." "$root/"
cp "$bundle" "$root/tmp/sluice-bundle.tar.gz"
echo "== install.sh on bookworm, node $(chroot "$root" node --version)"
rc=0
chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  sh -c 'cd /tmp && tar -xzf sluice-bundle.tar.gz && ./sluice/deploy/install.sh' >"$root.out" 2>"$root.err" || rc=$?
cat "$root.out" "$root.err"
err=$(cat "$root.err")
rm -f "$root.out" "$root.err"
[ "$rc" = 1 ] || fail "install.sh exited $rc on bookworm, expected 1"
[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "expected one sentence on stderr, got: $err"
case "$err" in *"needs Node.js 20.15 or newer"*"ships Node.js 18."*) ;; *) fail "unclear refusal: $err" ;; esac
for f in opt/sluice etc/systemd/system/sluice.service usr/local/bin/sluice etc/sluice; do
  if [ -e "$root/$f" ] || [ -L "$root/$f" ]; then fail "the refused install left /$f"; fi
done
if chroot "$root" getent passwd sluice >/dev/null; then fail "the refused install created the user"; fi
echo "== PASS"
