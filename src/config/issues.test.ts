import { describe, expect, it } from 'vitest';
import { configProblems } from '../../test/helpers/config.js';
import { parseConfigDocument } from './load.js';
import { nearestKey } from './issues.js';

function problems(yaml: string): string[] {
  const { value, lineOf } = parseConfigDocument(yaml);
  return configProblems(value, lineOf);
}

describe('config problems', () => {
  it('says missing, lists enum values, suggests the nearest key and gives each line, all in one pass', () => {
    const out = problems(
      ['gateway: {id: gw-01, logLevl: debug}', 'buffer:', '  onFull: drop-newest', 'uplinks:', '  - name: c', '    type: mqtt', '    url: "mqtt://x"', '    topicPrefx: a', '  - type: http'].join('\n'),
    );
    expect(out).toEqual(
      expect.arrayContaining([
        'gateway: unknown key "logLevl" (did you mean "logLevel"?) (line 1)',
        'buffer.onFull: must be one of "drop-oldest", "reject" (line 3)',
        'uplinks[0]: unknown key "topicPrefx" (did you mean "topicPrefix"?) (line 8)',
        'uplinks[1].url: missing (string expected) (line 9)',
      ]),
    );
  });

  it('suggests only keys close enough to be a typo', () => {
    expect(nearestKey('colour', ['id', 'dataDir', 'logLevel'])).toBeUndefined();
    expect(nearestKey('maxbytes', ['maxBytes', 'onFull'])).toBe('maxBytes');
  });
});
