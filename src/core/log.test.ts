import { describe, expect, it } from 'vitest';
import { createLogger } from './log.js';

describe('createLogger', () => {
  it('scrubs URL passwords from messages, fields and errors before they are written', () => {
    const lines: string[] = [];
    const logger = createLogger('info', false, { write: (s: string) => void lines.push(s) });
    logger.warn('connect to mqtts://gw:p4ss@cloud.example failed');
    logger.warn({ url: 'https://u:t0ken@x.example/in', err: new Error('amqp://a:s3cret@h: ECONNREFUSED') }, 'uplink error');
    logger.child({ uplink: 'u' }).warn({ error: 'nats://n:k3y@h:4222: closed' }, 'x');
    const text = lines.join('');
    for (const s of ['p4ss', 't0ken', 's3cret', 'k3y']) expect(text).not.toContain(s);
    expect(text).toContain('mqtts://gw:(redacted)@cloud.example');
    expect(text).toContain('ECONNREFUSED');
  });
});
