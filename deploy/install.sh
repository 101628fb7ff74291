#!/usr/bin/env bash
# Installs (or upgrades, or removes) Sluice on Debian / Raspberry Pi OS, arm64, armhf or amd64.
#
#   sudo ./install.sh [--bundle FILE.tar.gz] [--config FILE] [--no-start] [--volatile-logs]
#   sudo ./install.sh --uninstall [--purge]
#
# Run from an unpacked release bundle (sluice/deploy/install.sh) or give --bundle. Idempotent: a
# second run changes nothing but the release it installs. What it does:
#   - Node.js >= 20.15 from the Debian packages (apt-get install nodejs) when node is missing or older;
#   - the release into /opt/sluice/releases/<version>, /opt/sluice/current pointing at it (switched
#     atomically; the previous release is kept for a rollback), /usr/local/bin/sluice;
#   - the system user `sluice` (in dialout, for serial adapters), /etc/sluice, /var/lib/sluice;
#   - /etc/sluice/sluice.yaml: --config FILE (validated first), else the example on first install;
#     an existing config is never overwritten without --config;
#   - the units sluice.service and sluice-firstboot.service, journald limits for SD cards;
#   - enables and (re)starts the service when systemd runs (not in a chroot or container build).
# --uninstall removes the program, units and settings it installed; the config, the data
# (/var/lib/sluice) and the user stay unless --purge is given.
set -euo pipefail

PREFIX=/opt/sluice
ETC=/etc/sluice
DATA=/var/lib/sluice
UNIT_DIR=/etc/systemd/system
JOURNALD_CONF=/etc/systemd/journald.conf.d/60-sluice.conf
USER_NAME=sluice
# zlib.crc32, which the ring log uses, arrived in Node 20.15.
NODE_MIN=20.15

say() { echo "sluice-install: $*"; }
die() {
  echo "sluice-install: $*" >&2
  exit 1
}
usage() {
  sed -n '3,5p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

args="$*"
bundle='' config='' start=1 volatile=0 uninstall=0 purge=0
while [ $# -gt 0 ]; do
  case "$1" in
  --bundle) bundle=${2:?--bundle needs a file}; shift 2 ;;
  --config) config=${2:?--config needs a file}; shift 2 ;;
  --no-start) start=0; shift ;;
  --volatile-logs) volatile=1; shift ;;
  --uninstall) uninstall=1; shift ;;
  --purge) purge=1; shift ;;
  -h | --help) usage 0 ;;
  *) echo "sluice-install: unknown option $1" >&2; usage ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run me as root (sudo $0 $args)"
[ -f /etc/debian_version ] || die "this installer is for Debian and Raspberry Pi OS; /etc/debian_version is missing"

systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

uninstall() {
  if systemd_running; then
    systemctl disable --now sluice.service sluice-firstboot.service 2>/dev/null || true
  elif command -v systemctl >/dev/null; then
    systemctl disable sluice.service sluice-firstboot.service 2>/dev/null || true
  fi
  rm -f "$UNIT_DIR/sluice.service" "$UNIT_DIR/sluice-firstboot.service" "$JOURNALD_CONF"
  rm -f /usr/local/bin/sluice
  rm -rf "$PREFIX"
  if systemd_running; then
    systemctl daemon-reload
    systemctl try-restart systemd-journald.service || true
  fi
  if [ "$purge" = 1 ]; then
    rm -rf "$ETC" "$DATA"
    if getent passwd "$USER_NAME" >/dev/null; then userdel "$USER_NAME" || true; fi
    if getent group "$USER_NAME" >/dev/null; then groupdel "$USER_NAME" 2>/dev/null || true; fi
    say "removed Sluice, its config, its data and its user"
  else
    say "removed Sluice; kept $ETC, $DATA and the user $USER_NAME (add --purge to remove them)"
  fi
}

node_version() {
  command -v node >/dev/null || { echo none; return; }
  node -p 'process.versions.node' 2>/dev/null || echo none
}

# True when node is there and at least NODE_MIN.
node_ok() {
  command -v node >/dev/null &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number), [x, y] = process.argv[1].split(".").map(Number);
      process.exit(a > x || (a === x && b >= y) ? 0 : 1)' "$NODE_MIN" 2>/dev/null
}

ensure_node() {
  if node_ok; then return; fi
  say "installing Node.js from the Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  # Try the package lists already on the device first (offline installs), then refresh them.
  if ! apt-get install -y -q --no-install-recommends nodejs >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends nodejs >/dev/null
  fi
  if ! node_ok; then
    die "Sluice needs Node.js $NODE_MIN or newer and this Debian release ships Node.js $(node_version); use Debian 13 / Raspberry Pi OS trixie, or install Node.js $NODE_MIN+ (e.g. from NodeSource) and run me again"
  fi
}

# The folder holding bin/sluice, dist/, node_modules/ and deploy/.
find_release() {
  if [ -n "$bundle" ]; then
    [ -f "$bundle" ] || die "no such bundle: $bundle"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    tar -xzf "$bundle" -C "$work" || die "$bundle is not a readable .tar.gz bundle"
    release_src=$work/sluice
  else
    release_src=$(cd "$(dirname "$0")/.." && pwd -P)
  fi
  if [ ! -f "$release_src/bin/sluice" ] || [ ! -d "$release_src/node_modules" ] || [ ! -d "$release_src/dist" ]; then
    die "$release_src is not an unpacked Sluice bundle (run me from sluice/deploy/ of the bundle, or give --bundle FILE)"
  fi
}

install_release() {
  local version target previous
  previous=$(readlink "$PREFIX/current" 2>/dev/null || true)
  version=$(node -p 'require(process.argv[1]).version' "$release_src/package.json")
  [ -n "$version" ] || die "cannot read the version from $release_src/package.json"
  target=$PREFIX/releases/$version
  mkdir -p "$PREFIX/releases"
  if [ "$release_src" != "$target" ]; then
    rm -rf "$target.new"
    cp -a "$release_src" "$target.new"
    chown -R root:root "$target.new"
    chmod -R go-w "$target.new"
    rm -rf "$target"
    mv "$target.new" "$target"
  fi
  # Switch atomically: a rename over the old symlink.
  ln -sfn "releases/$version" "$PREFIX/current.new"
  mv -T "$PREFIX/current.new" "$PREFIX/current"
  ln -sfn "$PREFIX/current/bin/sluice" /usr/local/bin/sluice
  # Keep the current release and the one before it (for a rollback: ln -sfn releases/<old> current).
  local r
  for r in "$PREFIX"/releases/*; do
    case "releases/$(basename "$r")" in
    "releases/$version" | "$previous") ;;
    *) rm -rf "$r" ;;
    esac
  done
  say "installed release $version in $target"
}

ensure_user() {
  if ! getent group "$USER_NAME" >/dev/null; then groupadd --system "$USER_NAME"; fi
  if ! getent passwd "$USER_NAME" >/dev/null; then
    useradd --system --gid "$USER_NAME" --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin \
      --comment "Sluice gateway" "$USER_NAME"
    say "created the system user $USER_NAME"
  fi
  if getent group dialout >/dev/null && ! id -nG "$USER_NAME" | grep -qw dialout; then
    usermod -a -G dialout "$USER_NAME"
  fi
}

ensure_dirs() {
  install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
  install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$DATA"
  if command -v mountpoint >/dev/null && mountpoint -q "$DATA"; then
    say "$DATA is a separate mount: the ring log stays off the system partition"
  fi
}

install_config() {
  local sluice="node $PREFIX/current/bin/sluice"
  if [ -n "$config" ]; then
    [ -f "$config" ] || die "no such config: $config"
    $sluice validate -c "$config" || die "$config is invalid (see above); nothing was changed"
    if [ -f "$ETC/sluice.yaml" ] && ! cmp -s "$config" "$ETC/sluice.yaml"; then
      cp -p "$ETC/sluice.yaml" "$ETC/sluice.yaml.previous"
    fi
    install -m 0640 -o root -g "$USER_NAME" "$config" "$ETC/sluice.yaml"
    say "installed $config as $ETC/sluice.yaml"
  elif [ ! -f "$ETC/sluice.yaml" ]; then
    install -m 0640 -o root -g "$USER_NAME" "$PREFIX/current/deploy/sluice.example.yaml" "$ETC/sluice.yaml"
    say "installed the example config as $ETC/sluice.yaml: edit it, then systemctl restart sluice"
  fi
  $sluice validate -c "$ETC/sluice.yaml" >/dev/null ||
    die "$ETC/sluice.yaml is invalid (run: sluice validate -c $ETC/sluice.yaml); fix it, then run me again"
}

install_units() {
  local changed=0 f
  for f in sluice.service sluice-firstboot.service; do
    if ! cmp -s "$PREFIX/current/deploy/$f" "$UNIT_DIR/$f"; then
      install -m 0644 "$PREFIX/current/deploy/$f" "$UNIT_DIR/$f"
      changed=1
    fi
  done
  mkdir -p "$(dirname "$JOURNALD_CONF")"
  local jconf
  jconf=$(mktemp)
  cp "$PREFIX/current/deploy/journald-sluice.conf" "$jconf"
  if [ "$volatile" = 1 ]; then printf 'Storage=volatile\n' >>"$jconf"; fi
  local journald_changed=0
  if ! cmp -s "$jconf" "$JOURNALD_CONF"; then
    install -m 0644 "$jconf" "$JOURNALD_CONF"
    journald_changed=1
  fi
  rm -f "$jconf"

  if systemd_running; then
    [ "$changed" = 0 ] || systemctl daemon-reload
    [ "$journald_changed" = 0 ] || systemctl restart systemd-journald.service
    systemctl enable sluice.service sluice-firstboot.service >/dev/null 2>&1
    if [ "$start" = 1 ]; then
      systemctl restart sluice.service ||
        die "sluice.service did not start; see why with: journalctl -u sluice -n 50"
      say "sluice.service (re)started; follow it with: journalctl -u sluice -f"
    fi
  elif command -v systemctl >/dev/null; then
    # A chroot or an image being built: enabling only makes the symlinks; it starts on boot.
    systemctl enable sluice.service sluice-firstboot.service >/dev/null 2>&1 || true
    say "systemd is not running here: sluice.service is enabled and starts at the next boot"
  else
    say "systemd is not installed: start the gateway yourself with: sluice run -c $ETC/sluice.yaml"
  fi
}

if [ "$uninstall" = 1 ]; then
  uninstall
  exit 0
fi

arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
case "$arch" in
arm64 | armhf | amd64) ;;
*) say "warning: $arch is not a tested architecture (arm64, armhf, amd64); native modules may lack a prebuild" ;;
esac

find_release
ensure_node
ensure_user
ensure_dirs
install_release
install_config
install_units
say "done: $(node "$PREFIX/current/bin/sluice" --version) on $arch, config $ETC/sluice.yaml, data $DATA"
