/**
 * Rules hot-reload with the rest of the config (what fleet `config.set` calls): a rule whose config
 * is unchanged keeps its state (a door opened before the reload still completes the sequence after
 * it), a changed rule starts fresh, and a new uplink `where:` applies.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';

const sequence = {
  name: 'door-then-heat',
  sequence: {
    key: "topic.split('/')[1]",
    within: '60s',
    steps: [
      { match: 'rooms/+/door', where: 'payload.open == true' },
      { match: 'rooms/+/temp', where: 'payload.value >= 30.0 && first.payload.open' },
    ],
  },
};
const count = (atLeast: number) => ({ name: 'busy', count: { match: 'rooms/+/door', within: '60s', atLeast } });

describe('rules hot reload', () => {
  let gw: TestGateway;
  let sensor: mqtt.MqttClient;

  beforeAll(async () => {
    gw = await startTestGateway({ rules: [sequence, count(3)] as never });
    sensor = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`);
  });
  afterAll(async () => {
    await sensor?.endAsync();
    await gw?.stop();
    gw?.cleanup();
  });

  it('keeps the state of unchanged rules and resets changed ones', async () => {
    const pub = (topic: string, payload: unknown) => sensor.publishAsync(topic, JSON.stringify(payload), { qos: 1 });
    await pub('rooms/z/door', { open: true });
    await pub('rooms/z/door', { open: true });
    const status = (name: string) => gw.gateway.rules!.status().find((r) => r.name === name)!;
    await waitFor(() => status('busy').pending === 2, 5000, 'two doors counted');
    expect(status('door-then-heat').pending).toBe(2);

    const { gateway } = gw;
    await gateway.reconfigure(validateConfig({ ...gateway.config, rules: [sequence, count(2)] }));
    expect(status('door-then-heat').pending).toBe(2); // unchanged: kept
    expect(status('busy').pending).toBe(0); // changed: fresh

    await pub('rooms/z/temp', { value: 30 });
    await waitFor(() => status('door-then-heat').matches === 1, 5000, 'the sequence completed across the reload');
    expect(status('busy').matches).toBe(0);

    // Removing every rule removes the engine: intake pays nothing for rules.
    await gateway.reconfigure(validateConfig({ ...gateway.config, rules: [] }));
    expect(gateway.rules).toBeUndefined();
  });
});
