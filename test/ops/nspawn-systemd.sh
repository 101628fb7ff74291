#!/usr/bin/env bash
# The unit under a real systemd: a Debian chroot with systemd, Sluice installed by deploy/install.sh,
# booted with systemd-nspawn. Checks Type=notify readiness, the watchdog heartbeats and status line,
# the hardened service running as `sluice`, a restart by the watchdog when the event loop is frozen
# (SIGSTOP), and a clean stop. Usage (root): test/ops/nspawn-systemd.sh BUNDLE.tar.gz MQTT_PORT HTTP_PORT
#
# The chroot with systemd is cached in /var/cache/sluice-deploy-test/rootfs-<suite>-systemd; each
# run works on an overlay over it, in a private mount namespace.
# Exit 0 = passed; 77 = cannot run here (not root, no debootstrap or systemd-nspawn).
set -euo pipefail

SUITE=${SLUICE_CHROOT_SUITE:-trixie}
MIRROR=${SLUICE_CHROOT_MIRROR:-http://deb.debian.org/debian}
CACHE=/var/cache/sluice-deploy-test
BASE=$CACHE/rootfs-$SUITE-systemd
# Short, so the frozen-loop check takes seconds; the shipped unit says 30s.
WATCHDOG_SEC=4

step() { echo "== $* (${SECONDS}s)"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

bundle=${1:?usage: nspawn-systemd.sh BUNDLE.tar.gz MQTT_PORT HTTP_PORT}
bundle=$(cd "$(dirname "$bundle")" && pwd)/$(basename "$bundle")
mqtt_port=${2:?MQTT port}
http_port=${3:?HTTP port}
[ -f "$bundle" ] || fail "no such bundle: $bundle"
if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null; then
  echo "SKIP: needs root, debootstrap and systemd-nspawn (apt-get install systemd-container)" >&2
  exit 77
fi

if [ ! -f "$BASE/.ready" ]; then
  step "building the cached $SUITE chroot with systemd (first run only)"
  mkdir -p "$CACHE"
  rm -rf "$BASE.tmp"
  debootstrap --variant=minbase --include=ca-certificates,systemd,systemd-sysv,dbus "$SUITE" "$BASE.tmp" "$MIRROR" \
    >"$CACHE/debootstrap-systemd.log" 2>&1 || { tail -20 "$CACHE/debootstrap-systemd.log" >&2; fail "debootstrap failed"; }
  cp /etc/resolv.conf "$BASE.tmp/etc/resolv.conf"
  chroot "$BASE.tmp" apt-get update -q >/dev/null
  chroot "$BASE.tmp" apt-get install -y -q --download-only --no-install-recommends nodejs >/dev/null
  touch "$BASE.tmp/.ready"
  rm -rf "$BASE"
  mv "$BASE.tmp" "$BASE"
fi

if [ "${INSIDE_NS:-}" != 1 ]; then
  # Re-run in a private mount namespace: the overlay below vanishes with it, whatever happens.
  work=$(mktemp -d /var/tmp/sluice-nspawn.XXXXXX)
  mkdir -p "$work/upper" "$work/work" "$work/root"
  trap 'rm -rf --one-file-system "$work"' EXIT
  rc=0
  INSIDE_NS=1 SLUICE_NSPAWN_WORK=$work unshare --mount --propagation private "$0" "$@" || rc=$?
  exit "$rc"
fi

work=$SLUICE_NSPAWN_WORK
root=$work/root
# The cached chroot stays pristine: the run writes to an overlay's upper layer only.
mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$work/upper,workdir=$work/work" "$root"
nspawn_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  umount "$root" 2>/dev/null || true
}
trap cleanup EXIT

step "installing into an overlay on the cached chroot"
cp "$bundle" "$root/tmp/sluice-bundle.tar.gz"
chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  sh -c 'cd /tmp && tar -xzf sluice-bundle.tar.gz && ./sluice/deploy/install.sh' >/dev/null
# The config arrives the way a flashed fleet gets it: on the boot partition, without a gateway id.
mkdir -p "$root/boot/firmware"
cat >"$root/boot/firmware/sluice.yaml" <<EOF
gateway: {dataDir: /var/lib/sluice}
broker: {listeners: [{host: 127.0.0.1, port: $mqtt_port}], allowAnonymous: true}
http: {host: 127.0.0.1, port: $http_port}
EOF
mkdir -p "$root/etc/systemd/system/sluice.service.d"
printf '[Service]\nWatchdogSec=%s\n' "$WATCHDOG_SEC" >"$root/etc/systemd/system/sluice.service.d/test.conf"
machine_id=$(tr -d '-' </proc/sys/kernel/random/uuid)
echo "$machine_id" >"$root/etc/machine-id"

step "booting it with systemd-nspawn"
# The host may use the hybrid cgroup layout; systemd >= 256 in the guest needs the unified one.
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -q -D "$root" -b --register=no --keep-unit \
  >"$work/boot.log" 2>&1 &
nspawn_pid=$!
# The container's PID 1: a process named systemd descending from our systemd-nspawn.
descends_from_nspawn() {
  local pid=$1 _
  for _ in 1 2 3 4; do
    pid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
    [ -n "$pid" ] || return 1
    [ "$pid" = "$nspawn_pid" ] && return 0
  done
  return 1
}
leader=
for _ in $(seq 1 150); do
  for p in /proc/[0-9]*; do
    if [ "$(cat "$p/comm" 2>/dev/null)" = systemd ] && descends_from_nspawn "${p#/proc/}"; then
      leader=${p#/proc/}
      break 2
    fi
  done
  sleep 0.1
done
[ -n "$leader" ] || { cat "$work/boot.log" >&2; fail "the container's systemd did not start"; }
in_ct() { nsenter -t "$leader" -a "$@"; }
prop() { in_ct systemctl show sluice.service -p "$1" --value; }

step "sluice.service becomes active (READY=1) and answers /healthz"
ok=
for _ in $(seq 1 300); do
  if [ "$(prop ActiveState 2>/dev/null)" = active ] && curl -sf "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1; then
    ok=1
    break
  fi
  sleep 0.2
done
[ -n "$ok" ] || { in_ct journalctl -u sluice --no-pager -n 40 >&2 || true; fail "sluice.service did not become active"; }
[ "$(prop Type)" = notify ] || fail "the unit is not Type=notify"
[ "$(in_ct systemctl show sluice-firstboot.service -p Result --value)" = success ] || fail "sluice-firstboot.service failed"
[ ! -e "$root/boot/firmware/sluice.yaml" ] || fail "first boot left the config on the boot partition"
# No board serial in a container: the machine id stands in (gateway-id.mjs's last fallback).
expected_id=gw-${machine_id:0:16}
curl -sf "http://127.0.0.1:$http_port/api/status" | grep -q "\"id\":\"$expected_id\"" ||
  fail "the gateway does not run with the first-boot id $expected_id"
echo "first boot: applied the boot-partition config as $expected_id before the gateway started"
pid=$(prop MainPID)
[ "$(in_ct stat -c %U "/proc/$pid")" = sluice ] || fail "the gateway does not run as the sluice user"
in_ct grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" || fail "NoNewPrivileges is not in effect"
[ -n "$(in_ct find /var/lib/sluice -mindepth 1 -user sluice -print -quit)" ] || fail "nothing written to /var/lib/sluice"

step "watchdog heartbeats and the status line arrive"
first=$(prop WatchdogTimestampMonotonic)
sleep "$WATCHDOG_SEC"
second=$(prop WatchdogTimestampMonotonic)
[ "$second" -gt "$first" ] || fail "no WATCHDOG=1 within ${WATCHDOG_SEC}s"
case "$(prop StatusText)" in *"events received"*) ;; *) fail "no status text: $(prop StatusText)" ;; esac
echo "watchdog: heartbeats ok, status \"$(prop StatusText)\""

step "a frozen event loop (SIGSTOP) is killed by the watchdog and restarted"
in_ct sh -c "kill -STOP $pid"
ok=
for _ in $(seq 1 $((WATCHDOG_SEC * 5 + 50))); do
  new=$(prop MainPID)
  if [ "$(prop NRestarts)" -ge 1 ] && [ "$new" != "$pid" ] && [ "$new" != 0 ] && [ "$(prop ActiveState)" = active ]; then
    ok=1
    break
  fi
  sleep 0.2
done
[ -n "$ok" ] || { in_ct journalctl -u sluice --no-pager -n 20 >&2 || true; fail "the watchdog did not restart the frozen gateway"; }
in_ct journalctl -u sluice --no-pager | grep -q 'Watchdog timeout' || fail "the journal does not show the watchdog timeout"
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$http_port/healthz" >/dev/null || fail "/healthz does not answer after the restart"
echo "watchdog: restarted after a frozen loop"

step "systemctl stop is clean"
in_ct systemctl stop sluice.service
[ "$(prop Result)" = success ] || fail "stopping ended with $(prop Result)"
in_ct systemctl poweroff >/dev/null 2>&1 || true
for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
step "PASS"
