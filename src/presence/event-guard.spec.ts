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
  const known = new Set(['presence:list', 'reorder:watch']);

  it('lets the events some gateway handles through, whatever their payload (their schema checks it)', () => {
    expect(checkClientEvent('presence:list', [], known)).toEqual({ ok: true });
    expect(checkClientEvent('reorder:watch', [{ id: 'r1' }], known)).toEqual({ ok: true });
    expect(checkClientEvent('presence:list', [{ tenant: 'other' }], known)).toEqual({ ok: true });
  });

  it('rejects unknown events and oversize payloads', () => {
    expect(checkClientEvent('presence:nope', [], known)).toEqual({ ok: false, error: 'unknown event' });
    expect(checkClientEvent(42, [], known)).toEqual({ ok: false, error: 'unknown event' });
    expect(checkClientEvent('presence:list', [{ pad: 'x'.repeat(2000) }], known)).toMatchObject({ ok: false, error: expect.stringContaining('too large') });
  });

  it('rejects payloads that cannot be measured', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(checkClientEvent('presence:list', [circular], known)).toEqual({ ok: false, error: 'payload is not serializable' });
    expect(checkClientEvent('presence:list', [{ big: 10n }], known)).toEqual({ ok: false, error: 'payload is not serializable' });
  });
});
