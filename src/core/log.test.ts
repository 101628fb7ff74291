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

  it('SLUICE_LOG_FORMAT=journald starts each line with its syslog priority', () => {
    const lines: string[] = [];
    process.env.SLUICE_LOG_FORMAT = 'journald';
    try {
      const logger = createLogger('debug', false, { write: (s: string) => void lines.push(s) });
      logger.debug('d');
      logger.info('i');
      logger.warn('w');
      logger.error('e');
      logger.fatal('f');
    } finally {
      delete process.env.SLUICE_LOG_FORMAT;
    }
    expect(lines.map((l) => l.slice(0, 3))).toEqual(['<7>', '<6>', '<4>', '<3>', '<2>']);
    expect(JSON.parse(lines[2].slice(3))).toMatchObject({ level: 40, msg: 'w' });
  });
});

