import Keyv from 'keyv';
import { CACHE_NAMESPACE } from './cache.constants';
import { MemoryTierOptions, MemoryTierStore } from './memory-tier.store';
import { deserializeRedisEntry, serializeRedisEntry } from './redis-entry-format';
import { EntryIndexing, RedisKeyvStore } from './redis-keyv.store';

/** The two Keyv tiers: cache-manager reads and writes them in order, CacheService also one by one. */
export class CacheTiers {
  readonly memory: Keyv;
  readonly redis: Keyv;
  private readonly memoryStore: MemoryTierStore;
  private removeListener?: (key: string) => void;

  constructor(
    memoryOptions: Omit<MemoryTierOptions, 'onRemove'>,
    private readonly redisStore: RedisKeyvStore,
  ) {
    this.memoryStore = new MemoryTierStore({ ...memoryOptions, onRemove: (key) => this.notifyRemoved(key) });
    // No serializer in memory: entries stay objects, so a memory hit parses nothing.
    this.memory = new Keyv({ store: this.memoryStore, namespace: CACHE_NAMESPACE, serialize: undefined, deserialize: undefined });
    // Store errors must reach CacheService, which decides to fail open (and says so once).
    this.redis = new Keyv({
      store: redisStore,
      namespace: CACHE_NAMESPACE,
      serialize: serializeRedisEntry,
      deserialize: deserializeRedisEntry,
      throwOnErrors: true,
      emitErrors: false,
    });
  }

  /** Tells listener which logical key left the memory tier (Keyv stores it as `<namespace>:<key>`). */
  onMemoryRemove(listener: (key: string) => void): void {
    this.removeListener = listener;
  }

  /** The value as the Redis tier stores it: Keyv's envelope, whose expiry Keyv checks on every read. */
  async serializeForRedis(value: unknown, ttlMs: number): Promise<string> {
    return String(await this.redis.serializeData({ value, expires: Date.now() + ttlMs }));
  }

  /** Writes a serialized entry around Keyv, under the key Keyv reads it from, with its indexes and lock release. */
  setInRedis(key: string, stored: string, ttlMs: number, indexing: EntryIndexing): Promise<void> {
    return this.redisStore.setIndexed(this.redis._getKeyPrefix(key), stored, ttlMs, indexing);
  }

  /** The live value in Redis (Keyv's expiry checked, as Keyv.get does), and whether the compute lock is still held. */
  async pollRedis<T>(key: string, lockKey: string): Promise<{ value?: T; expires?: number; locked: boolean }> {
    const { value, locked } = await this.redisStore.getWhileLocked(this.redis._getKeyPrefix(key), lockKey);
    const entry = value === undefined ? undefined : await this.redis.deserializeData<T>(value);
    const expires = typeof entry?.expires === 'number' ? entry.expires : undefined;
    if (!entry || (expires !== undefined && expires <= Date.now())) return { locked };
    return { value: entry.value, expires, locked };
  }

  memoryStats(): { entries: number; bytes: number } {
    return { entries: this.memoryStore.size, bytes: this.memoryStore.bytes };
  }

  private notifyRemoved(storedKey: string): void {
    const prefix = `${CACHE_NAMESPACE}:`;
    this.removeListener?.(storedKey.startsWith(prefix) ? storedKey.slice(prefix.length) : storedKey);
  }
}
