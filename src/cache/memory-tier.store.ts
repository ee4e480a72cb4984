import { EventEmitter } from 'node:events';
import type { KeyvStoreAdapter } from 'keyv';
import { LRUCache } from 'lru-cache';

export interface MemoryTierOptions {
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** A larger entry is not kept (whoever sets it: CacheService, CACHE_MANAGER, a Redis hit copied here). */
  readonly maxEntryBytes: number;
  /** Upper bound of an entry's life here, whatever TTL it was set with. */
  readonly maxTtlMs: number;
  /** Called when an entry leaves (evicted, expired, deleted), with the key Keyv gave it. */
  readonly onRemove?: (key: string) => void;
}

/**
 * The in-process tier: a bounded LRU (entries, bytes and TTL) speaking Keyv's store contract.
 * Entries are kept as objects, not JSON: a hit then costs no parsing (CacheTiers turns Keyv's serializer off
 * for this tier). Their JSON length, measured once on set, stands for their size. Cached objects are shared
 * by every reader, so callers must not mutate what the cache returns.
 */
export class MemoryTierStore extends EventEmitter implements KeyvStoreAdapter {
  readonly opts: MemoryTierOptions;
  namespace?: string;
  private readonly lru: LRUCache<string, NonNullable<unknown>>;

  constructor(options: MemoryTierOptions) {
    super();
    this.opts = options;
    this.lru = new LRUCache<string, NonNullable<unknown>>({
      max: Math.max(1, options.maxEntries),
      maxSize: options.maxBytes,
      maxEntrySize: Math.min(options.maxEntryBytes, options.maxBytes),
      ttl: options.maxTtlMs,
      ttlAutopurge: false,
      dispose: (_value, key) => options.onRemove?.(key),
    });
  }

  async get<Value>(key: string): Promise<Value | undefined> {
    return this.lru.get(key) as Value | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    return keys.map((key) => this.lru.get(key) as Value | undefined);
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    if (value === undefined || value === null) return false;
    const entryTtl = ttl && ttl > 0 ? Math.min(ttl, this.opts.maxTtlMs) : this.opts.maxTtlMs;
    const size = Math.max(1, (typeof value === 'string' ? value : JSON.stringify(value)).length);
    // Over maxEntryBytes lru-cache drops the key (and any older value of it) instead of storing.
    this.lru.set(key, value, { ttl: entryTtl, size });
    return size <= this.lru.maxEntrySize;
  }

  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    for (const entry of entries) await this.set(entry.key, entry.value, entry.ttl);
  }

  async delete(key: string): Promise<boolean> {
    return this.lru.delete(key);
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    return keys.map((key) => this.lru.delete(key)).some(Boolean);
  }

  async has(key: string): Promise<boolean> {
    return this.lru.has(key);
  }

  async clear(): Promise<void> {
    this.lru.clear();
  }

  get size(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }
}
