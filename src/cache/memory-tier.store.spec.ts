import { describe, expect, it } from '@jest/globals';
import { MemoryTierStore } from './memory-tier.store';

describe('MemoryTierStore', () => {
  it('keeps at most maxEntries, evicting the least recently used', async () => {
    const removed: string[] = [];
    const store = new MemoryTierStore({ maxEntries: 2, maxBytes: 1_000_000, maxEntryBytes: 1_000, maxTtlMs: 60_000, onRemove: (key) => removed.push(key) });
    await store.set('a', { n: 1 });
    await store.set('b', { n: 2 });
    await store.get('a');
    await store.set('c', { n: 3 });
    expect(await store.has('b')).toBe(false);
    expect(await store.has('a')).toBe(true);
    expect(removed).toEqual(['b']);
  });

  it('keeps its entries within maxBytes, measured as JSON length', async () => {
    const store = new MemoryTierStore({ maxEntries: 100, maxBytes: 100, maxEntryBytes: 100, maxTtlMs: 60_000 });
    // Each value is {"s":"xxxxxxxxxx..."} = 8 + 32 = 40 characters of JSON.
    for (const key of ['a', 'b', 'c']) await store.set(key, { s: 'x'.repeat(32) });
    expect(store.size).toBe(2);
    expect(store.bytes).toBe(80);
  });

  it('caps an entry life at maxTtlMs and hands back the stored object itself (no parsing)', async () => {
    const store = new MemoryTierStore({ maxEntries: 10, maxBytes: 1_000, maxEntryBytes: 1_000, maxTtlMs: 50 });
    const value = { sku: 'AMOX-500' };
    await store.set('k', value, 60_000);
    expect(await store.get('k')).toBe(value);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.get('k')).toBeUndefined();
  });

  it('does not keep an entry over maxEntryBytes, and drops the older value of its key', async () => {
    const removed: string[] = [];
    const store = new MemoryTierStore({ maxEntries: 10, maxBytes: 1_000, maxEntryBytes: 20, maxTtlMs: 60_000, onRemove: (key) => removed.push(key) });
    expect(await store.set('k', 'small')).toBe(true);
    expect(await store.set('k', 'x'.repeat(21))).toBe(false);
    expect(await store.get('k')).toBeUndefined();
    expect(store.bytes).toBe(0);
    expect(removed).toEqual(['k']);
  });
});
