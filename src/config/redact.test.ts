import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { redactConfig } from './redact.js';
import { configSchema } from './schema.js';
import { secretSchemas } from '../core/config-types.js';

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
      { name: 's', type: 'sparkplug', url: 'mqtt://127.0.0.1:1883', groupId: 'g', password: 'sppass' },
      { name: 'e', type: 'eventhubs', connectionString: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=s;SharedAccessKey=ehkey;EntityPath=h' },
    ],
  });

  it('shows no secret value anywhere, and keeps what is not secret', () => {
    const text = JSON.stringify(redactConfig(config));
    for (const s of ['urlpass', 'mqttpass', '"pp"', '"bt"', '"hk"', 'awssecret', '"st"', 'natstoken', 'sppass', 'ehkey', HASH, 'u:p@', 'a:b@'])
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

describe('secret fields', () => {
  it('every field named like a credential is marked secret() in the schema', () => {
    const unmarked: string[] = [];
    const seen = new Set<unknown>();
    const isSecret = (s: z.ZodType): boolean => {
      for (let cur: z.ZodType | undefined = s; cur; ) {
        if (secretSchemas.has(cur)) return true;
        cur = (cur as unknown as { _zod: { def: { innerType?: z.ZodType } } })._zod.def.innerType;
      }
      return false;
    };
    const visit = (s: z.ZodType | undefined, path: string) => {
      if (!s || seen.has(s)) return;
      seen.add(s);
      const def = (s as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
      if (def.type === 'object') {
        for (const [k, v] of Object.entries(def.shape as Record<string, z.ZodType>)) {
          if (/pass(word|phrase)|token$|secret|hash$|connectionstring|sastoken/i.test(k) && !/ttl/i.test(k) && !/File$/.test(k) && !isSecret(v))
            unmarked.push(`${path}.${k}`);
          visit(v, `${path}.${k}`);
        }
      }
      for (const key of ['element', 'valueType', 'innerType', 'in', 'out', 'left', 'right'])
        visit(def[key] as z.ZodType | undefined, path);
      for (const o of (def.options as z.ZodType[] | undefined) ?? []) visit(o, path);
    };
    visit(configSchema, 'config');
    // (`...File` fields are paths to a secret, not one. `key` is not matched: TLS keys are PEM file paths, Kafka's is a record key; Event Hubs' is marked.)
    expect(unmarked).toEqual([]);
  });
});
