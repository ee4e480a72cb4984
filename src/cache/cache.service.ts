import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config';
import { InjectRedis, RedisConnections } from '../redis';
import { CACHE_TIERS, COMPUTE_LOCK_MS, COMPUTE_POLL_MS, COMPUTE_WAIT_MS } from './cache.constants';
import type { CacheTiers } from './cache-tiers';

export type CacheSource = 'memory' | 'redis' | 'loader';
export type CacheMode = 'redis+memory' | 'memory-only';

/** Lookups by tier and outcome; `error`: the Redis tier was unusable or failed, so the read failed open. */
export interface CacheLookupCounts {
  readonly memory: { hit: number; miss: number };
  readonly redis: { hit: number; miss: number; error: number };
}

export interface CacheSetOptions {
  /** Time to live in Redis; the memory tier keeps it at most CACHE_MEMORY_TTL_SECONDS. */
  readonly ttlMs: number;
  /** Invalidation handles: invalidateTags(['tenant:t1:inventory']) drops every entry carrying one. */
  readonly tags?: readonly string[];
}

export interface CacheGetOrSetOptions<T> extends CacheSetOptions {
  /** Whether a freshly loaded value may be cached (for example: only 200 responses). */
  readonly shouldCache?: (value: T) => boolean;
}

const MAX_WARNED_KEYS = 1_000;

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);

/**
 * Two tiers, memory then Redis, over RedisModule's command client. Redis failures never fail a read:
 * while Redis is down or slow the cache runs on memory alone (logged once, shown in /health).
 */
@Injectable()
export class CacheService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Cache');
  private readonly inFlight = new Map<string, Promise<{ value: unknown; source: CacheSource }>>();
  /** Tag -> keys held in this instance's memory tier, so an invalidation message can drop them. */
  private readonly localTags = new Map<string, Set<string>>();
  /** Key -> its tags, so an entry leaving the memory tier leaves the index too. */
  private readonly localKeyTags = new Map<string, Set<string>>();
  private readonly warnedOversize = new Set<string>();
  private degradedReason?: string;
  private readonly lookups: CacheLookupCounts = { memory: { hit: 0, miss: 0 }, redis: { hit: 0, miss: 0, error: 0 } };
  private readonly prefix: string;
  private readonly channel: string;
  private readonly onMessage = (channel: string, message: string) => this.onInvalidation(channel, message);

  constructor(
    @Inject(CACHE_TIERS) private readonly tiers: CacheTiers,
    @InjectRedis('command') private readonly redis: Redis,
    @InjectRedis('subscriber') private readonly subscriber: Redis,
    private readonly connections: RedisConnections,
    private readonly config: AppConfig,
  ) {
    this.prefix = config.redis.keyPrefix;
    this.channel = `${this.prefix}:cache:invalidate`;
    tiers.onMemoryRemove((key) => this.forgetLocally(key));
  }

  onModuleInit(): void {
    this.subscriber.on('message', this.onMessage);
    // Not awaited: the subscriber client queues it until Redis is reachable (boot must not wait for Redis)
    // and renews it after every reconnect.
    this.subscriber.subscribe(this.channel).catch((error: Error) => this.logger.warn(`cannot subscribe to cache invalidations: ${error.message}`));
  }

  async onModuleDestroy(): Promise<void> {
    this.subscriber.off('message', this.onMessage);
    // The subscriber client queues commands while Redis is down: only say goodbye to a live server.
    if (this.subscriber.status === 'ready') await this.subscriber.unsubscribe(this.channel).catch(() => undefined);
  }

  mode(): CacheMode {
    return this.degradedReason === undefined && this.redisUsable() ? 'redis+memory' : 'memory-only';
  }

  memoryStats(): { entries: number; bytes: number } {
    return this.tiers.memoryStats();
  }

  /** Counted in get() (so in getOrSet too); not the polls of an instance waiting for another's result. */
  lookupCounts(): CacheLookupCounts {
    return this.lookups;
  }

  /** Memory, then Redis (copying a Redis hit into memory for its remaining life). */
  async get<T>(key: string): Promise<{ value: T; source: Exclude<CacheSource, 'loader'> } | undefined> {
    const fromMemory = await this.tiers.memory.get<T>(key);
    if (fromMemory !== undefined) {
      this.lookups.memory.hit += 1;
      return { value: fromMemory, source: 'memory' };
    }
    this.lookups.memory.miss += 1;
    // Wrapped, so that a failed read (undefined) differs from a miss.
    const read = await this.tryRedis(async () => ({ raw: await this.tiers.redis.get<T>(key, { raw: true }) }));
    const raw = read?.raw;
    if (!read) this.lookups.redis.error += 1;
    else this.lookups.redis[raw?.value === undefined ? 'miss' : 'hit'] += 1;
    if (raw?.value === undefined) return undefined;
    const remaining = typeof raw.expires === 'number' ? raw.expires - Date.now() : undefined;
    if (remaining === undefined || remaining > 0) await this.tiers.memory.set(key, raw.value, remaining);
    return { value: raw.value, source: 'redis' };
  }

  /** Stores in both tiers; a value over CACHE_MAX_VALUE_KB is not cached (warned about once per key). */
  async set<T>(key: string, value: T, options: CacheSetOptions): Promise<boolean> {
    const size = Buffer.byteLength(JSON.stringify(value) ?? '');
    if (size > this.config.cache.maxValueBytes) {
      this.warnOversize(key, size);
      return false;
    }
    await this.tiers.memory.set(key, value, options.ttlMs);
    for (const tag of options.tags ?? []) this.rememberLocally(tag, key);
    await this.tryRedis(async () => {
      await this.tiers.redis.set(key, value, options.ttlMs);
      if (options.tags?.length) {
        const pipeline = this.redis.pipeline();
        const now = Date.now();
        for (const tag of options.tags) {
          // Scored by when the entry expires, so each write drops the keys whose entries are gone: a tag that
          // keeps getting entries (a busy tenant's reports) would otherwise keep every key it ever had.
          pipeline.zadd(this.tagKey(tag), now + options.ttlMs, key);
          pipeline.zremrangebyscore(this.tagKey(tag), '-inf', now);
          // The index lives as long as its longest entry, so an idle tag's index goes too.
          pipeline.pexpire(this.tagKey(tag), options.ttlMs, 'GT');
          pipeline.pexpire(this.tagKey(tag), options.ttlMs, 'NX');
        }
        await pipeline.exec();
      }
    });
    return true;
  }

  /** Interim (the cache-realtime branch replaces it): set(), but rejects when the Redis tier did not take the value. */
  async setOrThrow<T>(key: string, value: T, options: CacheSetOptions): Promise<void> {
    if (!this.redisUsable()) throw new Error(`cannot store ${key}: Redis is unreachable`);
    await this.tiers.redis.set(key, value, options.ttlMs);
    await this.set(key, value, options);
  }

  async delete(key: string): Promise<void> {
    await this.tiers.memory.delete(key);
    await this.tryRedis(() => this.tiers.redis.delete(key));
  }

  /**
   * The value for key from the nearest tier, else from loader. Concurrent misses on this instance share one
   * loader call; across instances a short Redis lock lets one compute while the others wait for its result
   * (at most COMPUTE_WAIT_MS, then they compute themselves).
   */
  async getOrSet<T>(key: string, loader: () => Promise<T>, options: CacheGetOrSetOptions<T>): Promise<{ value: T; source: CacheSource }> {
    const running = this.inFlight.get(key);
    if (running) return running as Promise<{ value: T; source: CacheSource }>;
    const attempt = this.lookUpOrLoad(key, loader, options).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, attempt);
    return attempt;
  }

  /**
   * Drops every entry carrying one of the tags, in Redis and in the memory tier of every instance. The message
   * names the keys too: an instance that copied an entry from Redis into memory never saw its tags.
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    this.dropLocally(tags, []);
    await this.tryRedis(async () => {
      const keys = [...new Set((await Promise.all(tags.map((tag) => this.redis.zrange(this.tagKey(tag), '0', '-1')))).flat())];
      if (keys.length > 0) await this.tiers.redis.deleteMany(keys);
      await this.redis.unlink(...tags.map((tag) => this.tagKey(tag)));
      await this.redis.publish(this.channel, JSON.stringify({ tags, keys }));
    });
  }

  private async lookUpOrLoad<T>(key: string, loader: () => Promise<T>, options: CacheGetOrSetOptions<T>): Promise<{ value: T; source: CacheSource }> {
    const cached = await this.get<T>(key);
    if (cached) return cached;

    const lockKey = `${this.prefix}:cache-lock:${key}`;
    const locked = await this.tryRedis(() => this.redis.set(lockKey, String(process.pid), 'PX', COMPUTE_LOCK_MS, 'NX'));
    if (locked === null) {
      const computedElsewhere = await this.waitForValue<T>(key);
      if (computedElsewhere) return computedElsewhere;
    }
    try {
      const value = await loader();
      if (options.shouldCache?.(value) !== false) await this.set(key, value, options);
      return { value, source: 'loader' };
    } finally {
      if (locked === 'OK') await this.tryRedis(() => this.redis.del(lockKey));
    }
  }

  private async waitForValue<T>(key: string): Promise<{ value: T; source: 'redis' } | undefined> {
    const deadline = Date.now() + COMPUTE_WAIT_MS;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, COMPUTE_POLL_MS));
      const raw = await this.tryRedis(() => this.tiers.redis.get<T>(key));
      if (raw !== undefined) {
        await this.tiers.memory.set(key, raw);
        return { value: raw, source: 'redis' };
      }
    }
    return undefined;
  }

  /** Runs a Redis-tier operation, or skips it while Redis is unusable: the cache fails open. */
  private async tryRedis<T>(operation: () => Promise<T>): Promise<T | undefined> {
    if (!this.redisUsable()) {
      this.markDegraded('Redis is unreachable');
      return undefined;
    }
    try {
      const result = await operation();
      this.markHealthy();
      return result;
    } catch (error) {
      this.markDegraded(error instanceof Error ? error.message : String(error));
      return undefined;
    }
  }

  private redisUsable(): boolean {
    return this.connections.status('command').state === 'ready';
  }

  private markDegraded(reason: string): void {
    if (this.degradedReason !== undefined) return;
    this.degradedReason = reason;
    this.logger.warn(`running on the memory tier only (${reason}); reads fall back to memory or the loader, writes to Redis are skipped`);
  }

  private markHealthy(): void {
    if (this.degradedReason === undefined) return;
    this.degradedReason = undefined;
    this.logger.log('Redis tier back: running on redis+memory');
  }

  private warnOversize(key: string, size: number): void {
    if (this.warnedOversize.has(key) || this.warnedOversize.size >= MAX_WARNED_KEYS) return;
    this.warnedOversize.add(key);
    this.logger.warn(`not caching ${key}: ${Math.round(size / 1024)} KiB is over CACHE_MAX_VALUE_KB (${this.config.cache.maxValueBytes / 1024})`);
  }

  /** A sorted set (key -> expiry). Named apart from the earlier plain sets (`cache-tag:`), which expire on their own. */
  private tagKey(tag: string): string {
    return `${this.prefix}:cache-tags:${tag}`;
  }

  private rememberLocally(tag: string, key: string): void {
    const keys = this.localTags.get(tag) ?? new Set<string>();
    keys.add(key);
    this.localTags.set(tag, keys);
    const tags = this.localKeyTags.get(key) ?? new Set<string>();
    tags.add(tag);
    this.localKeyTags.set(key, tags);
  }

  private forgetLocally(key: string): void {
    for (const tag of this.localKeyTags.get(key) ?? []) {
      const keys = this.localTags.get(tag);
      if (keys?.delete(key) && keys.size === 0) this.localTags.delete(tag);
    }
    this.localKeyTags.delete(key);
  }

  private dropLocally(tags: readonly string[], keys: readonly string[]): void {
    const doomed = new Set(keys);
    for (const tag of tags) {
      for (const key of this.localTags.get(tag) ?? []) doomed.add(key);
      this.localTags.delete(tag);
    }
    for (const key of doomed) void this.tiers.memory.delete(key);
  }

  private onInvalidation(channel: string, message: string): void {
    if (channel !== this.channel) return;
    try {
      const { tags, keys } = JSON.parse(message) as { tags?: unknown; keys?: unknown };
      this.dropLocally(strings(tags), strings(keys));
    } catch {
      this.logger.warn('ignored a malformed cache invalidation message');
    }
  }
}
