/**
 * deploy/sluice.example.yaml is what install.sh installs as the live config: it must pass the
 * compiled `sluice validate`, show every section (the commented fleet block validates too), hold no
 * password anyone knows and open no LAN listener without authentication.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import { verifyPassword } from '../../src/auth/password.js';
import { isLoopback } from '../../src/auth/origin.js';

const FILE = new URL('../../deploy/sluice.example.yaml', import.meta.url).pathname;
const BIN = new URL('../../src/cli/bin.js', import.meta.url).pathname;
const text = readFileSync(FILE, 'utf8');

describe('the example config', () => {
  it('passes sluice validate (the compiled CLI)', () => {
    const r = spawnSync('node', [BIN, 'validate', '-c', FILE], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('shows every section and plugin kind, live or (fleet) as a block that validates once uncommented', () => {
    const c = validateConfig(parseConfigText(text));
    expect(c.drivers.map((d) => d.type).sort()).toEqual(['modbus-rtu', 'modbus-tcp', 'opcua', 'serial', 'simulator']);
    expect(c.uplinks.map((u) => u.type)).toEqual(expect.arrayContaining(['mqtt', 'sparkplug']));
    expect(c.analytics.some((a) => (a.windows ?? []).length > 0)).toBe(true);
    expect(c.analytics.some((a) => (a.actions ?? []).length > 0)).toBe(true);
    expect(c.rules.length).toBeGreaterThan(0);
    expect(c.schedules.length).toBeGreaterThan(0);
    expect(c.http.auth).toBeDefined();
    expect(c.http.consumers.enabled).toBe(true);
    expect(c.broker.users.length).toBeGreaterThan(0);
    // Every field device and extra uplink is off: installed as is, the gateway talks to nothing absent.
    expect(c.drivers.filter((d) => d.enabled !== false).map((d) => d.type)).toEqual(['simulator']);
    const block = text.split('\n');
    const start = block.findIndex((l) => l.startsWith('# fleet:'));
    expect(start).toBeGreaterThan(0);
    const fleet = [];
    for (let i = start; i < block.length && block[i].startsWith('# '); i++) fleet.push(block[i].slice(2));
    const withFleet = validateConfig(parseConfigText(`${text}\n${fleet.join('\n')}\n`));
    expect(withFleet.fleet?.uplink).toBe('cloud');
  });

  it('holds no known password and no LAN listener without authentication', async () => {
    const raw = parse(text) as { broker: { allowAnonymous?: boolean; listeners: { host: string }[] } };
    const c = validateConfig(parseConfigText(text));
    const hashes = [...c.broker.users.map((u) => u.passwordHash), c.http.auth?.passwordHash].filter((h): h is string => !!h);
    expect(hashes.length).toBeGreaterThanOrEqual(2);
    const guesses = ['change-me', 'changeme', 'password', 'secret', 'admin', 'sluice', 'tech', 's1', '1234', ''];
    for (const h of hashes) for (const g of guesses) expect(await verifyPassword(g, h), `"${g}"`).toBe(false);
    expect(text).not.toMatch(/password:\s*\S/i);
    if (raw.broker.listeners.some((l) => !isLoopback(l.host))) {
      expect(raw.broker.allowAnonymous).not.toBe(true);
      expect(c.broker.users.length).toBeGreaterThan(0);
    }
    if (!isLoopback(c.http.host)) expect(c.http.auth).toBeDefined();
  });
});
