#!/usr/bin/env bash
# The bundle on arm64 (a Raspberry Pi 3/4/5 with a 64-bit OS), emulated with qemu-user: Debian's
# arm64 node loads the arm64 prebuilds of classic-level and @serialport/bindings-cpp from the
# bundle, and the gateway runs: /healthz answers and a reading lands in the ring log.
# Usage (root): test/ops/arm64-qemu.sh BUNDLE.tar.gz MQTT_PORT HTTP_PORT
#
# No binfmt registration (that would change the host kernel for everyone): qemu-aarch64-static is
# called explicitly with -L pointing at an arm64 Debian tree, cached in
# /var/cache/sluice-deploy-test/rootfs-trixie-arm64 (debootstrap --foreign, packages unpacked).
# Exit 0 = passed; 77 = cannot run here (not root, no debootstrap or qemu-user-static).
set -euo pipefail

SUITE=${SLUICE_CHROOT_SUITE:-trixie}
MIRROR=${SLUICE_CHROOT_MIRROR:-http://deb.debian.org/debian}
CACHE=/var/cache/sluice-deploy-test
BASE=$CACHE/rootfs-$SUITE-arm64
QEMU=qemu-aarch64-static

step() { echo "== $* (${SECONDS}s)"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

bundle=${1:?usage: arm64-qemu.sh BUNDLE.tar.gz MQTT_PORT HTTP_PORT}
mqtt_port=${2:?MQTT port}
http_port=${3:?HTTP port}
[ -f "$bundle" ] || fail "no such bundle: $bundle"
if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null || ! command -v "$QEMU" >/dev/null; then
  echo "SKIP: needs root, debootstrap and $QEMU (apt-get install qemu-user-static)" >&2
  exit 77
fi

if [ ! -f "$BASE/.ready" ]; then
  step "building the cached arm64 tree with Debian's nodejs (first run only)"
  mkdir -p "$CACHE"
  rm -rf "$BASE.tmp"
  debootstrap --arch=arm64 --foreign --variant=minbase --include=nodejs "$SUITE" "$BASE.tmp" "$MIRROR" \
    >"$CACHE/debootstrap-arm64.log" 2>&1 || { tail -20 "$CACHE/debootstrap-arm64.log" >&2; fail "debootstrap failed"; }
  # --foreign only downloads most packages; unpacking them is enough to run node (no scripts needed).
  for deb in "$BASE.tmp"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$BASE.tmp"; done
  touch "$BASE.tmp/.ready"
  rm -rf "$BASE"
  mv "$BASE.tmp" "$BASE"
fi

work=$(mktemp -d /var/tmp/sluice-arm64.XXXXXX)
gw_pid=
cleanup() {
  if [ -n "$gw_pid" ]; then kill -KILL "$gw_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
tar -xzf "$bundle" -C "$work"
node_arm64() { "$QEMU" -L "$BASE" "$BASE/usr/bin/node" "$@"; }

arch=$(node_arm64 -p 'process.arch + " " + process.version')
step "emulated node: $arch"
case "$arch" in "arm64 "*) ;; *) fail "the emulated node is not arm64: $arch" ;; esac

step "the native prebuilds load"
(cd "$work/sluice" && node_arm64 -e '
  const { createRequire } = require("node:module");
  const { dirname } = require("node:path");
  const r = createRequire(process.cwd() + "/node_modules/");
  const load = r("node-gyp-build");
  for (const m of ["classic-level", "@serialport/bindings-cpp"]) {
    const addon = load(dirname(r.resolve(m + "/package.json")));
    if (!addon || Object.keys(addon).length === 0) throw new Error(m + ": empty addon");
    console.log(m + ": arm64 addon loaded");
  }')

step "the gateway runs from the bundle"
cat >"$work/gateway.yaml" <<EOF
gateway: {id: gw-arm64, dataDir: $work/data}
broker: {listeners: [{host: 127.0.0.1, port: $mqtt_port}], allowAnonymous: true}
http: {host: 127.0.0.1, port: $http_port}
EOF
(cd "$work" && exec "$QEMU" -L "$BASE" "$BASE/usr/bin/node" sluice/bin/sluice run -c "$work/gateway.yaml") >"$work/gateway.log" 2>&1 &
gw_pid=$!
ok=
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1; then ok=1; break; fi
  kill -0 "$gw_pid" 2>/dev/null || break
  sleep 0.2
done
[ -n "$ok" ] || { cat "$work/gateway.log" >&2; fail "/healthz never answered"; }
echo "healthz: $(curl -sf "http://127.0.0.1:$http_port/healthz")"
# One reading through the broker into the ring log (LevelDB, the arm64 addon), read back from status.
node -e '
  const net = require("node:net");
  // A minimal MQTT 3.1.1 CONNECT + QoS 1 PUBLISH; the PUBACK means the event is durable.
  const s = net.connect(Number(process.argv[1]), "127.0.0.1");
  const str = (t) => Buffer.concat([Buffer.from([t.length >> 8, t.length & 255]), Buffer.from(t)]);
  const pkt = (h, body) => Buffer.concat([Buffer.from([h, body.length]), body]);
  s.write(pkt(0x10, Buffer.concat([str("MQTT"), Buffer.from([4, 2, 0, 30]), str("arm64-test")])));
  s.write(pkt(0x32, Buffer.concat([str("sensors/arm64/temp"), Buffer.from([0, 1]), Buffer.from("21.5")])));
  s.on("data", (d) => { if (d.includes(0x40)) { s.end(); process.exit(0); } });
  setTimeout(() => { console.error("no PUBACK"); process.exit(1); }, 20000);
' "$mqtt_port" || fail "the QoS 1 publish was not acknowledged"
status=$(curl -sf "http://127.0.0.1:$http_port/api/status")
case "$status" in *'"received":1'*) ;; *) fail "the reading is not in the status: $status" ;; esac
kill -TERM "$gw_pid"
rc=0
wait "$gw_pid" || rc=$?
gw_pid=
[ "$rc" = 0 ] || { cat "$work/gateway.log" >&2; fail "the gateway exited $rc on SIGTERM"; }
step "PASS"
