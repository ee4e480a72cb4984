import { describe, expect, it } from '@jest/globals';
import { checkClientEvent, TokenBucket } from './event-guard';

describe('TokenBucket', () => {
  it('allows a burst of capacity, then refills at the rate', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 10, () => now);
    for (let i = 0; i < 10; i += 1) expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    now += 100;
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    now += 60_000;
    for (let i = 0; i < 10; i += 1) expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
  });
});

describe('checkClientEvent', () => {
  it('accepts presence:list with no payload or an empty object', () => {
    expect(checkClientEvent('presence:list', [])).toEqual({ ok: true });
    expect(checkClientEvent('presence:list', [{}])).toEqual({ ok: true });
    expect(checkClientEvent('presence:list', [null])).toEqual({ ok: true });
  });

  it('rejects unknown events, bad shapes and oversize payloads', () => {
    expect(checkClientEvent('presence:nope', [])).toEqual({ ok: false, error: 'unknown event' });
    expect(checkClientEvent(42, [])).toEqual({ ok: false, error: 'unknown event' });
    expect(checkClientEvent('presence:list', [{ tenant: 'other' }])).toMatchObject({ ok: false, error: expect.stringContaining('no payload') });
    expect(checkClientEvent('presence:list', ['x'])).toMatchObject({ ok: false });
    expect(checkClientEvent('presence:list', [[]])).toMatchObject({ ok: false });
    expect(checkClientEvent('presence:list', [{}, {}])).toMatchObject({ ok: false });
    expect(checkClientEvent('presence:list', [{ pad: 'x'.repeat(2000) }])).toMatchObject({ ok: false, error: expect.stringContaining('too large') });
  });

  it('rejects payloads that cannot be measured', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(checkClientEvent('presence:list', [circular])).toEqual({ ok: false, error: 'payload is not serializable' });
    expect(checkClientEvent('presence:list', [{ big: 10n }])).toEqual({ ok: false, error: 'payload is not serializable' });
  });
});
