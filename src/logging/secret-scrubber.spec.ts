import { describe, expect, it } from '@jest/globals';
import { REDACTED, secretScrubber } from './secret-scrubber';

describe('secretScrubber', () => {
  const password = 'p@ss"word/with\\odd+chars';
  const scrub = secretScrubber([password, undefined, 'jwt-secret-0123456789-abcdefghij'])!;

  it('replaces a secret as written, URL-encoded (as in REDIS_URL) and JSON-escaped (as in a JSON line)', () => {
    const line = JSON.stringify({ msg: `connect redis://default:${encodeURIComponent(password)}@host failed: ${password}`, token: 'jwt-secret-0123456789-abcdefghij' });
    const scrubbed = scrub(line);
    expect(JSON.parse(scrubbed)).toEqual({ msg: `connect redis://default:${REDACTED}@host failed: ${REDACTED}`, token: REDACTED });
    expect(scrub(`plain ${password} text`)).toBe(`plain ${REDACTED} text`);
  });

  it('leaves lines without secrets unchanged', () => {
    const line = '{"level":"info","msg":"ready in 5 ms"}\n';
    expect(scrub(line)).toBe(line);
  });

  it('refuses a secret too short to scrub rather than leaving it in the logs, and is undefined when nothing is set', () => {
    expect(() => secretScrubber(['jwt-secret-0123456789-abcdefghij', 'pw'])).toThrow(/2 characters cannot be scrubbed/);
    expect(secretScrubber([undefined, ''])).toBeUndefined();
    expect(secretScrubber(['eight-ch'])!('password eight-ch')).toBe(`password ${REDACTED}`);
  });
});
