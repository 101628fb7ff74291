import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configProblems } from '../../test/helpers/config.js';
import { parseConfigText, validateConfig } from './load.js';


describe('config', () => {
  it('fills in the contract defaults when nothing is given', () => {
    const c = validateConfig({});
    expect(c.gateway).toMatchObject({ id: 'gw-01', dataDir: './data' });
    expect(c.broker.listeners).toEqual([{ host: '127.0.0.1', port: 1883, ws: false }]);
    expect(c.broker.ingest).toEqual(['#']);
    expect(c.http).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(c.buffer.onFull).toBe('drop-oldest');
    expect(c.uplinks).toEqual([]);
  });

  it('requires http.auth off loopback (or an explicit allowAnonymous), as the broker does', () => {
    expect(configProblems({ http: { host: '0.0.0.0' } })).toEqual([expect.stringMatching(/^http\.auth: is required: http\.host "0\.0\.0\.0"/)]);
    expect(configProblems({ http: { host: '127.0.0.1', trustLoopback: false } })).toEqual([expect.stringMatching(/^http\.auth: /)]);
    expect(configProblems({ http: { host: '0.0.0.0', allowAnonymous: true } })).toEqual([]);
    expect(configProblems({ http: { host: '0.0.0.0', auth: { username: 'u', passwordHash: 'scrypt$x' } } })).toEqual([]);
    expect(configProblems({ http: { host: '127.0.0.1.evil.example' } })).toHaveLength(1);
    expect(configProblems({ http: { host: '0.0.0.0', enabled: false } })).toEqual([]);
  });

  it('parses sizes and durations', () => {
    const c = validateConfig({ buffer: { maxBytes: '256MiB', retention: '7d' }, broker: { maxPayloadBytes: '64KiB' } });
    expect(c.buffer.maxBytes).toBe(256 * 1024 * 1024);
    expect(c.buffer.retention).toBe(7 * 86_400_000);
    expect(c.broker.maxPayloadBytes).toBe(65536);
  });

  it('lists every problem with its path, unknown keys included', () => {
    const p = configProblems({
      gateway: { id: 'bad id!', colour: 'red' },
      buffer: { maxBytes: 'lots', onFull: 'explode' },
      broker: { ingest: ['a/#/b'] },
      uplinks: [{ name: 'x', type: 'carrier-pigeon' }],
      extra: 1,
    });
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^gateway\.id: /),
        'gateway: unknown key "colour"',
        expect.stringMatching(/^buffer\.maxBytes: "lots" is not a size/),
        expect.stringMatching(/^buffer\.onFull: must be one of "drop-oldest", "reject"/),
        'broker.ingest[0]: is not a valid MQTT topic filter',
        expect.stringMatching(/^uplinks\[0\]\.type: /),
        '(root): unknown key "extra"',
      ]),
    );
  });

  it('refuses a plaintext password', () => {
    expect(configProblems({ broker: { users: [{ username: 'a', passwordHash: 'hunter2' }] } })).toEqual([
      expect.stringMatching(/^broker\.users\[0\]\.passwordHash: must be a scrypt hash/),
    ]);
  });

  it('refuses duplicate names', () => {
    const u = { type: 'mqtt', url: 'mqtt://localhost' };
    expect(
      configProblems({
        uplinks: [
          { ...u, name: 'a' },
          { ...u, name: 'a' },
        ],
      }),
    ).toEqual(['uplinks[1].name: duplicate name "a"']);
  });

  it('reports YAML syntax errors with a line number', () => {
    expect(() => parseConfigText('gateway:\n  id: [unclosed\n')).toThrow(/line \d+/);
  });

  it('accepts the shipped example', () => {
    const text = readFileSync(new URL('../../deploy/sluice.example.yaml', import.meta.url), 'utf8');
    expect(() => validateConfig(parseConfigText(text))).not.toThrow();
  });
});
