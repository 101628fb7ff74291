import { describe, expect, it } from 'vitest';
import { scrubCredentials } from './scrub.js';

describe('scrubCredentials', () => {
  it('replaces the password of URL user-info, keeping the user and the host', () => {
    expect(scrubCredentials('mqtts://gw:hunter2@cloud.example:8883: ECONNREFUSED')).toBe(
      'mqtts://gw:(redacted)@cloud.example:8883: ECONNREFUSED',
    );
    expect(scrubCredentials('amqp://a:b%40c@h/v and https://u:p@x.example/path')).toBe(
      'amqp://a:(redacted)@h/v and https://u:(redacted)@x.example/path',
    );
  });
  it('replaces keys of connection strings and SAS tokens', () => {
    expect(
      scrubCredentials('Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc+/=;EntityPath=h'),
    ).toBe('Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=(redacted);EntityPath=h');
    expect(scrubCredentials('https://x.blob.core.windows.net/c?sv=1&sig=SECRET&se=2')).toBe(
      'https://x.blob.core.windows.net/c?sv=1&sig=(redacted)&se=2',
    );
  });
  it('leaves text without credentials alone', () => {
    for (const t of ['mqtt://cloud.example:1883: timeout', 'user@example.com wrote', 'a = b'])
      expect(scrubCredentials(t)).toBe(t);
  });
});
