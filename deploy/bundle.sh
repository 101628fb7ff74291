#!/usr/bin/env bash
# `npm run bundle`: the release bundle dist/sluice-<version>-bundle.tar.gz, one folder sluice/ with
#   bin/sluice        the CLI; runs with `node` alone (no npm step on the device)
#   dist/             the compiled JavaScript (no tests, no source maps)
#   node_modules/     production dependencies (npm ci --omit=dev), with the native prebuilds of
#                     classic-level and @serialport/bindings-cpp for linux-arm (armv6/armv7),
#                     linux-arm64 and linux-x64 only; the bundle fails if one is missing
#   deploy/           the systemd units, install.sh, first boot, journald limits, example config
#   package.json      name, version, type and dependencies
# Fails on a TypeScript error: a release is built from a tree that compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

version=$(node -p 'require("./package.json").version')
stage_root=$root/dist/bundle-stage
stage=$stage_root/sluice
out=$root/dist/sluice-$version-bundle.tar.gz
say() { echo "bundle: $*"; }

rm -rf "$stage_root"
mkdir -p "$stage/bin" "$stage/deploy"

say "compiling TypeScript"
if ! npx tsc -p tsconfig.build.json --outDir "$stage/dist" --sourceMap false --declaration false; then
  # SLUICE_BUNDLE_IGNORE_TS_ERRORS=1 packs what tsc emitted anyway (for trying a work-in-progress tree).
  [ "${SLUICE_BUNDLE_IGNORE_TS_ERRORS:-}" = 1 ] || { echo "bundle: the TypeScript does not compile; no bundle" >&2; exit 1; }
  echo "bundle: warning: TypeScript errors ignored (SLUICE_BUNDLE_IGNORE_TS_ERRORS=1)" >&2
fi
# No test code in a release: test helpers live under test/ (not compiled here); anything that still
# pulls them or vitest in fails the bundle.
if grep -rlE "from ['\"](vitest|[./]*test/)|require\(['\"]vitest" "$stage/dist" >&2; then
  echo "bundle: test code reached the release (files above); keep test-only code under test/" >&2
  exit 1
fi

# package.json without scripts and dev dependencies: nothing runs `npm` on the device.
node -e '
  const p = require("./package.json");
  const keep = { name: p.name, version: p.version, description: p.description, license: p.license, type: p.type,
    engines: p.engines, bin: { sluice: "bin/sluice" }, dependencies: p.dependencies };
  require("fs").writeFileSync(process.argv[1], JSON.stringify(keep, null, 2) + "\n");
' "$stage/package.json"
cp package-lock.json "$stage/"

say "installing production dependencies"
# --ignore-scripts: nothing compiles; the native modules load their prebuilds (checked below).
(cd "$stage" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error)
rm -f "$stage/package-lock.json"

# Native prebuilds: exactly the Linux targets, each present, or no bundle.
missing=()
for mod in classic-level @serialport/bindings-cpp; do
  dir=$stage/node_modules/$mod/prebuilds
  for target in linux-arm linux-arm64 linux-x64; do
    if ! compgen -G "$dir/$target/*.node" >/dev/null; then missing+=("$mod/prebuilds/$target"); fi
  done
  if [ -d "$dir" ]; then
    find "$dir" -mindepth 1 -maxdepth 1 -type d ! -name linux-arm ! -name linux-arm64 ! -name linux-x64 -exec rm -rf {} +
    # musl builds are for Alpine; Debian is glibc.
    find "$dir" -name '*.musl.node' -delete
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bundle: native prebuilds missing: ${missing[*]} (a device of that architecture could not load them)" >&2
  exit 1
fi
# linux-arm covers two CPUs: armv6 (Pi Zero, Pi 1) and armv7 (32-bit OS on Pi 2 and later).
for mod in classic-level @serialport/bindings-cpp; do
  for armv in armv6 armv7; do
    compgen -G "$stage/node_modules/$mod/prebuilds/linux-arm/*$armv*.node" >/dev/null ||
      { echo "bundle: $mod has no $armv prebuild for linux-arm" >&2; exit 1; }
  done
done

say "pruning files a device never needs"
nm=$stage/node_modules
# C/C++ sources of the native modules (their prebuilds are what loads).
rm -rf "$nm/classic-level/deps" "$nm/classic-level/binding.cc" "$nm/@serialport/bindings-cpp/src"
# TypeScript sources and declarations (node never loads them), maps, docs, build files.
find "$nm" -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' \
  -o -name '*.md' ! -iname 'LICENSE*' -o -name '*.markdown' -o -name '*.gyp' -o -name '*.gypi' -o -name '.npmignore' \
  -o -name '.eslintrc*' -o -name '.prettierrc*' -o -name '.editorconfig' -o -name 'tsconfig*.json' -o -name '*.cc' \
  -o -name '*.h' -o -name '*.test.js' -o -name '*.spec.js' \) -delete
find "$nm" -mindepth 2 -maxdepth 3 -type d \( -name test -o -name tests -o -name __tests__ -o -name .github \
  -o -name example -o -name examples -o -name docs -o -name benchmark -o -name benchmarks -o -name dist-types \) \
  -prune -exec rm -rf {} +
find "$stage/dist" -type f \( -name '*.map' -o -name '*.test.js' \) -delete

# bin/sluice: the compiled CLI, found relative to this file (also through a /usr/local/bin symlink).
cat >"$stage/bin/sluice" <<'EOF'
#!/usr/bin/env node
// The sluice command of the release bundle: runs the compiled CLI in ../dist with plain node.
import('../dist/src/cli/main.js')
  .then((cli) => cli.main(process.argv.slice(2)))
  .then((code) => {
    if (typeof code === 'number') process.exitCode = code;
  })
  .catch((err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  });
EOF
chmod 0755 "$stage/bin/sluice"

for f in sluice.service sluice-firstboot.service journald-sluice.conf install.sh firstboot.sh gateway-id.mjs \
  sluice.example.yaml README.md; do
  [ -f "deploy/$f" ] || { echo "bundle: deploy/$f is missing" >&2; exit 1; }
done
# Everything in deploy/ (docs such as SECURITY.md included) but this build script.
find deploy -maxdepth 1 -type f ! -name bundle.sh -exec cp {} "$stage/deploy/" \;
chmod 0755 "$stage/deploy/install.sh" "$stage/deploy/firstboot.sh"
[ -f LICENSE ] && cp LICENSE "$stage/"
[ -f README.md ] && cp README.md "$stage/"

# Smoke test before packing: the CLI starts and knows its version.
got=$(node "$stage/bin/sluice" --version)
[ "$got" = "$version" ] || { echo "bundle: bin/sluice --version printed '$got', expected $version" >&2; exit 1; }

# Stable owner and order, so two builds of one commit differ only in timestamps.
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$stage_root" -czf "$out.tmp" sluice
mv "$out.tmp" "$out"
rm -rf "$stage_root"
say "wrote $out ($(du -h "$out" | cut -f1); $(tar -tzf "$out" | wc -l) files)"
