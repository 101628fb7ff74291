/**
 * The fleet end to end, commands: each bad command is refused with its reason and changes nothing;
 * the other command types run; the last will marks the gateway offline when its connection dies.
 * Against a real Mosquitto standing in for the cloud broker and a real Gateway (harness.ts).
 */
import { readFileSync } from 'node:fs';
import type mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { signCommand } from '../../src/fleet/command.js';
import { parsePrivateKey } from '../../src/fleet/keys.js';
import { configHash } from '../../src/fleet/lkg.js';
import { waitFor } from '../helpers/gateway.js';
import { ID, useFleetHarness } from './harness.js';

describe('fleet management over MQTT: commands', () => {
  // Version 1 runs, as after a first config.set (fleet-configs.test.ts applies one for real).
  const h = useFleetHarness({ configVersion: 1 });

  it('refuses each bad command with its reason and changes nothing', async () => {
    const hashBefore = configHash(h.gw.gateway.config);
    const priv = parsePrivateKey(readFileSync(h.keyFile, 'utf8'));
    const ping = signCommand(priv, { type: 'ping', device: ID, keyId: 'ops-1' });
    // Signed directly: `sluice fleet sign` would already refuse to sign an invalid config.
    const configSet = (version: number, config: unknown) =>
      JSON.stringify(signCommand(priv, { type: 'config.set', device: ID, keyId: 'ops-1', body: { version, config } }));
    const { sig: _sig, ...unsigned } = ping;
    const cases: [string, string, RegExp][] = [
      ['unsigned', JSON.stringify(unsigned), /unsigned/],
      [
        'tampered',
        JSON.stringify({
          ...signCommand(priv, { type: 'log.level', device: ID, keyId: 'ops-1', body: { level: 'info' } }),
          body: { level: 'trace' },
        }),
        /signature does not verify/,
      ],
      [
        'unknown key',
        JSON.stringify(signCommand(priv, { type: 'ping', device: ID, keyId: 'ops-9' })),
        /keyId "ops-9" is not in fleet.trustedKeys/,
      ],
      [
        'expired',
        JSON.stringify(
          signCommand(priv, {
            type: 'ping',
            device: ID,
            keyId: 'ops-1',
            issuedAt: Date.now() - 120_000,
            lifetimeMs: 60_000,
          }),
        ),
        /expired at/,
      ],
      [
        'wrong device',
        JSON.stringify(signCommand(priv, { type: 'ping', device: 'gw-other', keyId: 'ops-1' })),
        /for device "gw-other"/,
      ],
      ['malformed', '{"id": "m-1", "type": "ping", "sig": "x"', /not JSON/],
      ['malformed shape', JSON.stringify({ ...ping, issuedAt: 'now' }), /malformed: issuedAt/],
      [
        'unknown type',
        JSON.stringify(signCommand(priv, { type: 'reboot', device: ID, keyId: 'ops-1' })),
        /unknown command type "reboot"/,
      ],
      ['old version', configSet(1, h.operatorConfig({ drivers: [] })), /version 1 is not above the running version 1/],
      [
        'invalid config',
        configSet(5, h.operatorConfig({ buffer: { onFull: 'explode' } })),
        /invalid: buffer.onFull: must be one of/,
      ],
      ['no fleet section', configSet(5, { ...h.operatorConfig(), fleet: undefined }), /must keep a fleet section/],
      [
        'port taken',
        configSet(5, h.operatorConfig({ http: { host: '127.0.0.1', port: h.cloud.port } })),
        /failed its dry run: http: cannot listen on 127.0.0.1:\d+ \(EADDRINUSE\)/,
      ],
      [
        'serial path missing',
        configSet(
          5,
          h.operatorConfig({ drivers: [{ name: 'gps', type: 'serial', path: '/dev/ttyNOPE', topic: 'site/gps' }] }),
        ),
        /serial device "\/dev\/ttyNOPE" does not exist/,
      ],
    ];
    for (const [what, line, reason] of cases) {
      const res = await h.publishCommand(line);
      expect(res.ok, what).toBe(false);
      expect(res.error, what).toMatch(reason);
    }
    // The good ping goes through once; sent again it is a replay.
    expect(await h.publishCommand(JSON.stringify(ping))).toMatchObject({
      ok: true,
      result: { pong: true, configVersion: 1 },
    });
    expect(await h.publishCommand(JSON.stringify(ping))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/already received \(replay\)/),
    });
    expect(configHash(h.gw.gateway.config)).toBe(hashBefore);
    expect(h.gw.gateway.logger.level).not.toBe('trace');
    const metrics = await h.gw.gateway.registry.getSingleMetricAsString('sluice_fleet_refused_total');
    expect(metrics).toMatch(/reason="bad-signature"} 1/);
  }, 60_000);


  it('runs the other command types', async () => {
    expect(await h.publishCommand(await h.signed('status'))).toMatchObject({ ok: true, result: { gateway: { id: ID } } });
    const get = await h.publishCommand(await h.signed('config.get'));
    expect(get).toMatchObject({ ok: true, result: { version: 1, hash: configHash(h.gw.gateway.config) } });
    expect(get.result?.config).toMatchObject({ uplinks: [{ name: 'cloud', username: 'gw', password: '(redacted)' }] });
    expect(JSON.stringify(get)).not.toContain('s3cret-pw');
    expect(await h.publishCommand(await h.signed('driver.restart', { name: 'sim1' }))).toMatchObject({
      ok: true,
      result: { restarted: 'sim1' },
    });
    expect(await h.publishCommand(await h.signed('driver.restart', { name: 'nope' }))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/no running driver named "nope"/),
    });
    expect(await h.publishCommand(await h.signed('uplink.flush', {}))).toMatchObject({
      ok: true,
      result: { flushed: ['cloud'] },
    });
    expect(await h.publishCommand(await h.signed('log.level', { level: 'debug', for: '1s' }))).toMatchObject({
      ok: true,
      result: { level: 'debug' },
    });
    expect(h.gw.gateway.logger.level).toBe('debug');
    await waitFor(
      () => h.gw.gateway.logger.level === h.gw.gateway.config.gateway.logLevel,
      5_000,
      'the log level to revert',
    );
  }, 30_000);


  it('is marked offline by its last will when the connection dies, and online again when it is back', async () => {
    const n = h.states.length;
    // Cut the TCP connection under the client, as a power cut or a dead link would.
    (h.agent() as unknown as { client: mqtt.MqttClient }).client.stream.destroy();
    await waitFor(() => h.states.slice(n).some((s) => s.status === 'offline'), 10_000, 'the last will');
    expect(h.states.slice(n).find((s) => s.status === 'offline')).toMatchObject({ gateway: ID, configVersion: 1 });
    await waitFor(() => h.states.at(-1)?.status === 'online', 10_000, 'online after reconnecting');
  }, 25_000);

});
