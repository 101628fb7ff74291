#!/usr/bin/env bash
# deploy/install.sh for real, in a Debian chroot (debootstrap, amd64: the script logic is the same on
# arm64/armhf). Usage (root): test/ops/chroot-install.sh BUNDLE.tar.gz MQTT_PORT HTTP_PORT
#
# The pristine chroot is cached in /var/cache/sluice-deploy-test/rootfs-<suite> (with the nodejs
# packages downloaded but NOT installed, and the package lists fetched, so install.sh installs Node
# itself, offline); each run works on an overlay over it. Mounts live in a private mount namespace
# (unshare), so nothing leaks into the host even if the run is killed. Exit 0 = every step passed; 77 = cannot
# run here (not root, no debootstrap).
set -euo pipefail

SUITE=${SLUICE_CHROOT_SUITE:-trixie}
MIRROR=${SLUICE_CHROOT_MIRROR:-http://deb.debian.org/debian}
CACHE=/var/cache/sluice-deploy-test
BASE=$CACHE/rootfs-$SUITE

step() { echo "== $* (${SECONDS}s)"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

if [ "${1:-}" = --inside ]; then
  shift
  work=$1 bundle=$2 mqtt_port=$3 http_port=$4
  # The cached chroot stays pristine: the run writes to an overlay's upper layer only.
  root=$work/root
  mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$work/upper,workdir=$work/work" "$root"
  gw_pid=
  # shellcheck disable=SC2317 # called by the EXIT trap
  cleanup_inside() {
    if [ -n "$gw_pid" ]; then kill -KILL "$gw_pid" 2>/dev/null || true; fi
    # The namespace's mounts die with it; unmounting explicitly lets the outer rm run at once.
    umount -R "$root/proc" "$root/sys" "$root/dev" 2>/dev/null || true
    umount "$root" 2>/dev/null || true
  }
  trap cleanup_inside EXIT
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

  step "no node before the install"
  if in_root sh -c 'command -v node' >/dev/null; then fail "the pristine chroot already has node"; fi

  step "install.sh (first run: installs Node from Debian packages, the bundle, user, dirs, config, units)"
  cp "$bundle" "$root/tmp/sluice-bundle.tar.gz"
  in_root sh -c 'cd /tmp && tar -xzf sluice-bundle.tar.gz && ./sluice/deploy/install.sh'
  in_root node --version
  in_root getent passwd sluice >/dev/null || fail "no sluice user"
  in_root id -nG sluice | grep -qw dialout || fail "the sluice user is not in dialout"
  [ "$(in_root stat -c '%U:%G %a' /var/lib/sluice)" = "sluice:sluice 750" ] || fail "bad /var/lib/sluice: $(in_root stat -c '%U:%G %a' /var/lib/sluice)"
  [ "$(in_root stat -c '%U:%G %a' /etc/sluice/sluice.yaml)" = "root:sluice 640" ] || fail "bad config mode"
  for f in etc/systemd/system/sluice.service etc/systemd/system/sluice-firstboot.service \
    etc/systemd/journald.conf.d/60-sluice.conf opt/sluice/current/bin/sluice; do
    [ -e "$root/$f" ] || fail "/$f was not installed"
  done
  [ "$(in_root sluice --version)" = "$(in_root node -p 'require("/opt/sluice/current/package.json").version')" ] ||
    fail "/usr/local/bin/sluice does not run the installed release"

  step "install.sh again: idempotent"
  snapshot() {
    (cd "$root" && find etc/sluice etc/systemd opt/sluice usr/local/bin var/lib/sluice -printf '%p %y %m %u %g %s %l\n' | sort)
    in_root getent passwd sluice
    cat "$root/etc/sluice/sluice.yaml"
  }
  before=$(snapshot)
  in_root /tmp/sluice/deploy/install.sh >/dev/null
  after=$(snapshot)
  [ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") >&2 || true; fail "a second install.sh run changed things"; }

  step "an upgrade switches current atomically, keeps the previous release, prunes older ones, keeps the config"
  config_sum=$(md5sum <"$root/etc/sluice/sluice.yaml")
  for v in 9.9.8 9.9.9; do
    # Hard links: a cheap copy; package.json is replaced (not written through) with the new version.
    rm -rf "$root/tmp/up" && mkdir -p "$root/tmp/up" && cp -al "$root/tmp/sluice" "$root/tmp/up/"
    rm "$root/tmp/up/sluice/package.json"
    in_root node -e 'const p=require("/tmp/sluice/package.json");p.version=process.argv[1];require("fs").writeFileSync("/tmp/up/sluice/package.json",JSON.stringify(p))' "$v"
    in_root /tmp/up/sluice/deploy/install.sh >/dev/null
  done
  [ "$(readlink "$root/opt/sluice/current")" = releases/9.9.9 ] || fail "current is $(readlink "$root/opt/sluice/current") after the upgrade"
  [ "$(in_root sluice --version)" = 9.9.9 ] || fail "sluice --version after the upgrade: $(in_root sluice --version)"
  releases=$(cd "$root/opt/sluice/releases" && printf '%s ' *)
  [ "$releases" = "9.9.8 9.9.9 " ] || fail "releases kept after two upgrades: $releases"
  [ "$(md5sum <"$root/etc/sluice/sluice.yaml")" = "$config_sum" ] || fail "an upgrade changed the config"
  in_root /tmp/sluice/deploy/install.sh >/dev/null
  [ "$(readlink "$root/opt/sluice/current")" = "releases/$(in_root node -p 'require("/tmp/sluice/package.json").version')" ] ||
    fail "reinstalling the first release did not switch back"

  step "first boot: an invalid config on the boot partition is refused and explained"
  # An x86 chroot has no board serial: the machine id stands in (the script's fallback).
  echo 0123456789abcdef0123456789abcdef >"$root/etc/machine-id"
  mkdir -p "$root/boot/firmware"
  printf 'gateway: {dataDir: /var/lib/sluice}\nbroker: {listeners: [{host: 127.0.0.1, port: 99999}]}\nbogus: 1\n' >"$root/boot/firmware/sluice.yaml"
  config_before=$(md5sum <"$root/etc/sluice/sluice.yaml")
  if in_root sh /opt/sluice/current/deploy/firstboot.sh; then fail "firstboot accepted an invalid config"; fi
  [ -f "$root/boot/firmware/sluice.yaml.invalid" ] || fail "the invalid config was not renamed"
  grep -q bogus "$root/boot/firmware/sluice-error.txt" || fail "sluice-error.txt does not name the unknown key"
  [ "$(md5sum <"$root/etc/sluice/sluice.yaml")" = "$config_before" ] || fail "an invalid boot config changed the installed one"

  step "first boot: a valid config gets the id from the board serial and moves into place"
  cat >"$root/boot/firmware/sluice.yaml" <<EOF
# flashed onto every card; no gateway.id: each device derives its own
gateway: {dataDir: /var/lib/sluice}
broker:
  listeners: [{host: 127.0.0.1, port: $mqtt_port}]
  allowAnonymous: true
http: {host: 127.0.0.1, port: $http_port}
EOF
  in_root sh /opt/sluice/current/deploy/firstboot.sh
  [ ! -e "$root/boot/firmware/sluice.yaml" ] || fail "the boot config was left on the boot partition"
  [ ! -e "$root/boot/firmware/sluice-error.txt" ] || fail "a stale sluice-error.txt was left"
  grep -q 'id: gw-0123456789abcdef' "$root/etc/sluice/sluice.yaml" || fail "no gateway id derived: $(cat "$root/etc/sluice/sluice.yaml")"
  grep -q 'flashed onto every card' "$root/etc/sluice/sluice.yaml" || fail "the config's comments were lost"
  [ -f "$root/etc/sluice/sluice.yaml.previous" ] || fail "the previous config was not kept"
  [ "$(in_root stat -c '%U:%G %a' /etc/sluice/sluice.yaml)" = "root:sluice 640" ] || fail "bad mode after first boot"

  step "the gateway runs there as the sluice user, as the unit runs it; /healthz answers"
  chroot --userspec=sluice:sluice "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/var/lib/sluice \
    SLUICE_CONFIG=/etc/sluice/sluice.yaml SLUICE_LOG_FORMAT=json NODE_ENV=production \
    NODE_OPTIONS=--max-old-space-size=128 \
    sh -c 'cd /var/lib/sluice && exec node /opt/sluice/current/bin/sluice run -c /etc/sluice/sluice.yaml' \
    >"$root/tmp/gateway.log" 2>&1 &
  gw_pid=$!
  ok=
  for _ in $(seq 1 150); do
    if health=$(curl -sf "http://127.0.0.1:$http_port/healthz" 2>/dev/null); then
      ok=1
      break
    fi
    kill -0 "$gw_pid" 2>/dev/null || break
    sleep 0.2
  done
  [ -n "$ok" ] || { cat "$root/tmp/gateway.log" >&2; fail "/healthz never answered"; }
  echo "healthz: $health"
  [ "$health" = '{"ok":true}' ] || fail "/healthz said $health"
  status=$(curl -sf "http://127.0.0.1:$http_port/api/status")
  echo "$status" | grep -q '"id":"gw-0123456789abcdef"' || fail "status shows another gateway id: $status"
  page=$(curl -sf "http://127.0.0.1:$http_port/")
  case "$page" in *'<title>Sluice</title>'*) ;; *) fail "no dashboard at /" ;; esac
  [ -n "$(in_root find /var/lib/sluice -mindepth 1 -user sluice -print -quit)" ] || fail "nothing written to /var/lib/sluice"
  kill -TERM "$gw_pid"
  rc=0
  wait "$gw_pid" || rc=$?
  gw_pid=
  [ "$rc" = 0 ] || { cat "$root/tmp/gateway.log" >&2; fail "the gateway exited $rc on SIGTERM"; }

  step "install.sh --uninstall keeps config, data and user; --purge removes them"
  in_root /tmp/sluice/deploy/install.sh --uninstall
  for f in opt/sluice etc/systemd/system/sluice.service usr/local/bin/sluice; do
    if [ -e "$root/$f" ] || [ -L "$root/$f" ]; then fail "--uninstall left /$f"; fi
  done
  if [ ! -f "$root/etc/sluice/sluice.yaml" ] || [ ! -d "$root/var/lib/sluice" ]; then fail "--uninstall removed the config or the data"; fi
  in_root /tmp/sluice/deploy/install.sh --uninstall >/dev/null
  in_root /tmp/sluice/deploy/install.sh --uninstall --purge
  if [ -e "$root/etc/sluice" ] || [ -e "$root/var/lib/sluice" ]; then fail "--purge left the config or the data"; fi
  if in_root getent passwd sluice >/dev/null; then fail "--purge left the user"; fi
  step "PASS"
  exit 0
fi

bundle=${1:?usage: chroot-install.sh BUNDLE.tar.gz MQTT_PORT HTTP_PORT}
mqtt_port=${2:?MQTT port}
http_port=${3:?HTTP port}
[ -f "$bundle" ] || fail "no such bundle: $bundle"
bundle=$(cd "$(dirname "$bundle")" && pwd)/$(basename "$bundle")
if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null || ! command -v unshare >/dev/null; then
  echo "SKIP: needs root, debootstrap and unshare" >&2
  exit 77
fi

if [ ! -f "$BASE/.ready" ]; then
  step "building the cached $SUITE chroot (first run only)"
  mkdir -p "$CACHE"
  rm -rf "$BASE.tmp"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$BASE.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap.log" >&2; fail "debootstrap failed (is $MIRROR reachable?)"; }
  cp /etc/resolv.conf "$BASE.tmp/etc/resolv.conf"
  chroot "$BASE.tmp" apt-get update -q >/dev/null
  chroot "$BASE.tmp" apt-get install -y -q --download-only --no-install-recommends nodejs >/dev/null
  touch "$BASE.tmp/.ready"
  rm -rf "$BASE"
  mv "$BASE.tmp" "$BASE"
fi

work=$(mktemp -d /var/tmp/sluice-chroot.XXXXXX)
mkdir -p "$work/upper" "$work/work" "$work/root"
# Runs after the namespace is gone, so no mount is under $work any more.
trap 'rm -rf --one-file-system "$work"' EXIT
unshare --mount --propagation private "$0" --inside "$work" "$bundle" "$mqtt_port" "$http_port"
