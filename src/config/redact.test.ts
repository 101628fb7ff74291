import { describe, expect, it } from 'vitest';
import { redactConfig } from './redact.js';
import { configSchema } from './schema.js';

const HASH = 'scrypt$16384$8$1$c2FsdA==$aGFzaA==';

describe('redactConfig', () => {
  const config = configSchema.parse({
    broker: { users: [{ username: 'dev', passwordHash: HASH, tokenHash: HASH, publish: ['a/#'] }] },
    http: { auth: { username: 'admin', passwordHash: HASH } },
    uplinks: [
      { name: 'm', type: 'mqtt', url: 'mqtts://gw:urlpass@cloud.example:8883', password: 'mqttpass', tls: { passphrase: 'pp' } },
      { name: 'h', type: 'http', url: 'https://u:p@ingest.example/x', bearerToken: 'bt', headers: { 'x-api-key': 'hk' } },
      { name: 'k', type: 'kinesis', streamName: 's', region: 'eu-west-1', accessKeyId: 'AKIA1', secretAccessKey: 'awssecret', sessionToken: 'st' },
      { name: 'n', type: 'nats', servers: ['nats://a:b@127.0.0.1:4222'], subject: 'x', token: 'natstoken' },
      { name: 'e', type: 'eventhubs', connectionString: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=s;SharedAccessKey=ehkey;EntityPath=h' },
    ],
  });

  it('shows no secret value anywhere, and keeps what is not secret', () => {
    const text = JSON.stringify(redactConfig(config));
    for (const s of ['urlpass', 'mqttpass', '"pp"', '"bt"', '"hk"', 'awssecret', '"st"', 'natstoken', 'ehkey', HASH, 'u:p@', 'a:b@'])
      expect(text, s).not.toContain(s);
    expect(text).toContain('"x-api-key":"(redacted)"');
    expect(text).toContain('mqtts://gw:(redacted)@cloud.example:8883');
    expect(text).toContain('"accessKeyId":"AKIA1"');
    expect(text).toContain('"username":"admin"');
    expect(text).toContain('"publish":["a/#"]');
  });

  it('does not change the config it is given', () => {
    const before = JSON.stringify(config);
    redactConfig(config);
    expect(JSON.stringify(config)).toBe(before);
  });
});
