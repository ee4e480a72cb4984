import { EventEmitter } from 'node:events';
import type { KeyvStoreAdapter } from 'keyv';
import { LRUCache } from 'lru-cache';

export interface MemoryTierOptions {
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** Upper bound of an entry's life here, whatever TTL it was set with. */
  readonly maxTtlMs: number;
  /** Called when an entry leaves (evicted, expired, deleted), with the key Keyv gave it. */
  readonly onRemove?: (key: string) => void;
}

/**
 * The in-process tier: a bounded LRU (entries, bytes and TTL) speaking Keyv's store contract.
 * Values arrive serialized by Keyv, so their length is a fair measure of their size.
 */
export class MemoryTierStore extends EventEmitter implements KeyvStoreAdapter {
  readonly opts: MemoryTierOptions;
  namespace?: string;
  private readonly lru: LRUCache<string, string>;

  constructor(options: MemoryTierOptions) {
    super();
    this.opts = options;
    this.lru = new LRUCache<string, string>({
      max: Math.max(1, options.maxEntries),
      maxSize: options.maxBytes,
      sizeCalculation: (value) => Math.max(1, value.length),
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
    const serialized = typeof value === 'string' ? value : JSON.stringify(value);
    const entryTtl = ttl && ttl > 0 ? Math.min(ttl, this.opts.maxTtlMs) : this.opts.maxTtlMs;
    this.lru.set(key, serialized, { ttl: entryTtl });
    return true;
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
