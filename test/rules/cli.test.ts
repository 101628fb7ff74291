/**
 * `sluice validate` and `sluice rules test` as a user runs them (the compiled CLI: `npm run build`
 * first): the example validates, a broken expression is named by its config path, and a
 * recorded stream replays into the drops, derived events, alarms and routes the rules would make.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/peers.js';

const BIN = new URL('../../src/cli/bin.js', import.meta.url).pathname;
const EXAMPLE = new URL('../../src/rules/examples/issue.yaml', import.meta.url).pathname;
const dir = tempDir('sluice-rules-cli-');
afterAll(() => dir.cleanup());

const sluice = (args: string[]) => spawnSync('node', [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
function write(name: string, text: string): string {
  const file = join(dir.path, name);
  writeFileSync(file, text);
  return file;
}

describe('sluice validate with rules', () => {
  it('accepts the example of the issue', () => {
    const r = sluice(['validate', '-c', EXAMPLE]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/ok .*1 uplink\(s\), 0 analytics rule\(s\), 3 rule\(s\)/);
  });

  it('names a broken expression by its path', () => {
    const text = readFileSync(EXAMPLE, 'utf8').replace('first.payload.open', 'first.payload.open &&');
    const r = sluice(['validate', '-c', write('bad.yaml', text)]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^rules\[2\]\.sequence\.steps\[1\]\.where: is not a CEL expression: at 1:/);
  });
});

describe('sluice rules test', () => {
  const config = write(
    'rules.yaml',
    readFileSync(EXAMPLE, 'utf8').replace(
      'rules:\n',
      'rules:\n  - {name: quiet, match: "plant/+/vib", drop: "payload.rms < 0.5"}\n',
    ),
  );

  it('replays NDJSON: drops, derived power, the sequence alarm, the heartbeat alarm from event time, routes', () => {
    const events = [
      { ts: 0, topic: 'plant/p1/heartbeat', payload: { up: true } },
      { ts: 500, topic: 'plant/m/vib', payload: { rms: 0.1 } },
      { ts: 1000, topic: 'rooms/a/door', payload: { open: true } },
      { ts: 2000, topic: 'rooms/b/temp', payload: { value: 55 } },
      { ts: 5000, topic: 'rooms/a/temp', payload: { value: 30 } },
      { ts: 6000, topic: 'plant/a/meter', payload: { v: 230, i: 2.5 } },
      'not json',
      { ts: 20_000, topic: 'plant/m/vib', payload: { rms: 3 } },
    ];
    const input = write('events.ndjson', events.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('\n'));
    const r = sluice(['rules', 'test', '-c', config, '--input', input]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('line 2: dropped plant/m/vib (rule quiet)');
    expect(lines[1]).toMatch(/^line 5: alarm alarms\/door-then-heat \{"rule":"door-then-heat","key":"a","pattern":"sequence"/);
    expect(lines[2]).toMatch(/^line 6: derived plant\/a\/meter\/power \{"power":575,"rule":"power","sourceSeq":6,/); // the alarm took seq 5
    // The silence is found when event time passes the deadline: before line 8 counts.
    expect(lines[3]).toMatch(/^line 8: alarm alarms\/heartbeat-lost \{"rule":"heartbeat-lost","key":"plant\/p1\/heartbeat","pattern":"absence"/);
    expect(lines[4]).toBe('7 events: 1 dropped, 1 derived, 2 alarms; routed: hot 1; 1 bad line(s)');
    expect(r.stderr).toMatch(/events\.ndjson:7: .*; line skipped/);
  });

  it('replays CSV with payload columns', () => {
    const input = write('events.csv', 'ts,topic,open,value\n0,rooms/a/door,true,\n1000,rooms/a/temp,,31\n2000,rooms/b/temp,,99\n');
    const r = sluice(['rules', 'test', '-c', config, '--input', input, '--quiet']);
    expect(r.stdout.trim()).toBe('3 events: 0 dropped, 0 derived, 1 alarms; routed: hot 1');
  });

  it('exits 1 on an invalid config and 2 without --input', () => {
    expect(sluice(['rules', 'test', '-c', write('x.yaml', 'rules: [{name: a}]\n'), '--input', 'x']).status).toBe(1);
    expect(sluice(['rules', 'test', '-c', config]).status).toBe(2);
  });
});
