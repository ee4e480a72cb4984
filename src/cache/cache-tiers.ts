import Keyv from 'keyv';
import { CACHE_NAMESPACE } from './cache.constants';
import { MemoryTierOptions, MemoryTierStore } from './memory-tier.store';
import { RedisKeyvStore } from './redis-keyv.store';

/** The two Keyv tiers: cache-manager reads and writes them in order, CacheService also one by one. */
export class CacheTiers {
  readonly memory: Keyv;
  readonly redis: Keyv;
  private readonly memoryStore: MemoryTierStore;
  private removeListener?: (key: string) => void;

  constructor(memoryOptions: Omit<MemoryTierOptions, 'onRemove'>, redisStore: RedisKeyvStore) {
    this.memoryStore = new MemoryTierStore({ ...memoryOptions, onRemove: (key) => this.notifyRemoved(key) });
    // No serializer in memory: entries stay objects, so a memory hit parses nothing.
    this.memory = new Keyv({ store: this.memoryStore, namespace: CACHE_NAMESPACE, serialize: undefined, deserialize: undefined });
    // Store errors must reach CacheService, which decides to fail open (and says so once).
    this.redis = new Keyv({ store: redisStore, namespace: CACHE_NAMESPACE, throwOnErrors: true, emitErrors: false });
  }

  /** Tells listener which logical key left the memory tier (Keyv stores it as `<namespace>:<key>`). */
  onMemoryRemove(listener: (key: string) => void): void {
    this.removeListener = listener;
  }

  memoryStats(): { entries: number; bytes: number } {
    return { entries: this.memoryStore.size, bytes: this.memoryStore.bytes };
  }

  private notifyRemoved(storedKey: string): void {
    const prefix = `${CACHE_NAMESPACE}:`;
    this.removeListener?.(storedKey.startsWith(prefix) ? storedKey.slice(prefix.length) : storedKey);
  }
}
