import { describe, expect, it } from 'vitest';
import { substituteReferences } from './substitute.js';

const files: Record<string, string> = { '/run/secrets/mqtt': 's3cret\n' };
const read = (p: string) => {
  if (p in files) return files[p];
  throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
};

describe('config references', () => {
  it('replaces variables, defaults and secret files; $${ stays literal; comments are left alone', () => {
    const text = [
      'url: mqtt://${HOST}:${PORT:-1883}',
      'password: ${file:/run/secrets/mqtt}',
      'level: ${LEVEL:-info}',
      'literal: $${NOT_A_VAR}',
      '# password: ${UNSET_IN_A_COMMENT}',
    ].join('\n');
    const r = substituteReferences(text, { HOST: 'broker.local', LEVEL: '' }, read);
    expect(r.problems).toEqual([]);
    expect(r.text.split('\n')).toEqual([
      'url: mqtt://broker.local:1883',
      'password: s3cret',
      'level: info',
      'literal: ${NOT_A_VAR}',
      '# password: ${UNSET_IN_A_COMMENT}',
    ]);
  });

  it('names every unset variable, unreadable file and bad reference with its line, in one pass', () => {
    const r = substituteReferences('a: ${MISSING}\nb: ok\nc: ${file:/nope}\nd: ${1BAD}', {}, read);
    expect(r.problems).toEqual([
      'line 1: ${MISSING} is not set (set it, or give a default: ${MISSING:-value})',
      'line 3: ${file:/nope} cannot be read (ENOENT)',
      expect.stringMatching(/^line 4: \$\{1BAD\} is not a variable reference/),
    ]);
  });
});
