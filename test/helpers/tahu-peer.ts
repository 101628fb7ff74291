/**
 * The independent Sparkplug B peer of the tests: src/sparkplug/tahu_peer.py, Google's protobuf
 * runtime on protoc's Python output for the Tahu schema (TAHU_PROTO), generated in a temp directory.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TAHU_PROTO } from '../../src/core/sparkplug/tahu-proto.js';
import { tempDir } from './peers.js';

const SCRIPT = new URL('../../src/sparkplug/tahu_peer.py', import.meta.url).pathname;

export interface TahuPeer {
  /** The script's edge-node session (NBIRTH, DBIRTH, DDATA by alias, a DDATA with a seq gap), in order. */
  scenario(): { topic: string; body: Buffer }[];
  /** Each payload decoded to protobuf's JSON mapping (the schema's field names). */
  decode<T = Record<string, unknown>>(payloads: Buffer[]): T[];
  /** An NCMD payload asking for a rebirth. */
  rebirth(): Buffer;
  cleanup(): void;
}

export function tahuPeer(): TahuPeer {
  const pb2 = tempDir('sluice-tahu-');
  writeFileSync(join(pb2.path, 'sparkplug_b.proto'), TAHU_PROTO);
  execFileSync('protoc', [`--proto_path=${pb2.path}`, `--python_out=${pb2.path}`, 'sparkplug_b.proto']);
  const run = (command: string, input?: string) => execFileSync('/usr/bin/python3', [SCRIPT, pb2.path, command], { input }).toString().trim();
  const lines = (text: string) => text.split('\n').filter(Boolean);
  return {
    scenario: () =>
      lines(run('scenario')).map((l) => {
        const [topic, hex] = l.split(' ');
        return { topic, body: Buffer.from(hex, 'hex') };
      }),
    decode: <T>(payloads: Buffer[]) => lines(run('decode', payloads.map((p) => `${p.toString('hex')}\n`).join(''))).map((l) => JSON.parse(l) as T),
    rebirth: () => Buffer.from(run('rebirth'), 'hex'),
    cleanup: pb2.cleanup,
  };
}
