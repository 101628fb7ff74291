#!/usr/bin/env node
// Usage: node gateway-id.mjs FILE
// Sets gateway.id in a Sluice config (YAML or JSON, rewritten as YAML with its comments kept) to
// `gw-<board serial>` when the file sets none, so one config can be flashed onto many SD cards.
// The serial comes from the device tree (Raspberry Pi and most arm boards), else /proc/cpuinfo,
// else /etc/machine-id ($SLUICE_BOARD_SERIAL overrides them all). Prints the id in effect. Exit 1 with one sentence when the file is unusable.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseDocument } from 'yaml';

function boardSerial() {
  const sources = [
    () => process.env.SLUICE_BOARD_SERIAL,
    () => readFileSync('/sys/firmware/devicetree/base/serial-number', 'utf8'),
    () => /^Serial\s*:\s*(\S+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1],
    () => readFileSync('/etc/machine-id', 'utf8').slice(0, 16),
  ];
  for (const source of sources) {
    try {
      // The device-tree value ends in a NUL; keep only what is safe in an id.
      const serial = (source() ?? '').replace(/[^0-9A-Za-z]/g, '').toLowerCase();
      if (serial && !/^0+$/.test(serial)) return serial.slice(-32);
    } catch {
      // try the next source
    }
  }
  return undefined;
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: gateway-id.mjs FILE\n');
  process.exit(2);
}
let doc;
try {
  doc = parseDocument(readFileSync(file, 'utf8'));
} catch (err) {
  process.stderr.write(`${file}: cannot read (${err.code ?? err.message})\n`);
  process.exit(1);
}
if (doc.errors.length) {
  process.stderr.write(`${file}: not valid YAML: ${doc.errors[0].message.split('\n')[0]}\n`);
  process.exit(1);
}
const current = doc.getIn(['gateway', 'id']);
if (current !== undefined && current !== null && current !== '') {
  process.stdout.write(`${current}\n`);
  process.exit(0);
}
const serial = boardSerial();
if (!serial) {
  process.stderr.write(`${file}: sets no gateway.id and this board has no serial number to derive one from\n`);
  process.exit(1);
}
const id = `gw-${serial}`;
if (doc.contents === null) doc.contents = doc.createNode({});
doc.setIn(['gateway', 'id'], id);
writeFileSync(`${file}.tmp`, doc.toString(), { mode: 0o600 });
renameSync(`${file}.tmp`, file);
process.stdout.write(`${id}\n`);
