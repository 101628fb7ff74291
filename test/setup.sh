#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh Debian machine (run as root): Debian
# packages for the real peers (Mosquitto, socat, pymodbus, Chromium), npm dependencies, and the
# compiled CLI. Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mosquitto >/dev/null || need+=(mosquitto)
command -v mosquitto_pub >/dev/null || need+=(mosquitto-clients)
command -v socat >/dev/null || need+=(socat)
/usr/bin/python3 -c 'import pymodbus' 2>/dev/null || need+=(python3-pymodbus)
# Sparkplug B interop: an independent encoder/decoder (protoc's Python output for the Tahu schema).
/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || need+=(python3-protobuf)
command -v protoc >/dev/null || need+=(protobuf-compiler)
# pymodbus's servers import pyserial and serial_asyncio, which Debian does not pull in with it.
/usr/bin/python3 -c 'import serial_asyncio' 2>/dev/null || need+=(python3-serial python3-serial-asyncio)
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v rabbitmq-server >/dev/null || need+=(rabbitmq-server)
# Ops tests (test/ops): the dashboard in Chromium, the units (systemd-analyze), the scripts
# (shellcheck), and `npm run test:deploy`'s Debian chroot install and boot (debootstrap, curl,
# nspawn) and the arm64 run of the bundle (qemu-user, called directly: no binfmt registration).
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test/setup.sh: missing Debian packages (${need[*]}) and not root to install them" >&2
    exit 1
  fi
  echo "test/setup.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
