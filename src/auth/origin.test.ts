import { describe, expect, it } from 'vitest';
import { isForeignWebOrigin, isLoopback } from './origin.js';

describe('isLoopback', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', '::ffff:7f00:1', 'localhost', 'LOCALHOST.', 'app.localhost'])(
    '%s is loopback',
    (a) => expect(isLoopback(a)).toBe(true),
  );
  it.each([
    '127.0.0.1.evil.example',
    '127.evil.example',
    '127.0.0.1:8080',
    '::1.evil',
    '::ffff:10.0.0.1',
    '::ffff:a00:1',
    '10.0.0.1',
    '0.0.0.0',
    'localhost.evil.example',
    'evillocalhost',
    '',
    undefined,
  ])('%s is not loopback', (a) => expect(isLoopback(a)).toBe(false));
});

describe('isForeignWebOrigin', () => {
  const req = (origin?: string) => ({ headers: origin === undefined ? {} : { origin } });
  it('accepts pages served from loopback and requests without an Origin', () => {
    for (const o of ['http://127.0.0.1:8080', 'http://localhost', 'http://[::1]:3000', 'https://127.0.0.5'])
      expect(isForeignWebOrigin(req(o))).toBe(false);
    expect(isForeignWebOrigin(req())).toBe(false);
  });
  it('refuses look-alike hosts, opaque and non-HTTP origins', () => {
    for (const o of ['http://127.0.0.1.evil.example', 'http://127.0.0.1.nip.io:8080', 'null', 'file://', 'chrome-extension://x', 'http://evil.example'])
      expect(isForeignWebOrigin(req(o))).toBe(true);
  });
});
