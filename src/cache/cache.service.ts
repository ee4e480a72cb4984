import { randomBytes } from 'node:crypto';
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { ReplyError } from 'ioredis';
import { AppConfig } from '../config';
import { InjectRedis, RedisConnections, RedisRoleError, type RedisClient } from '../redis';
import { CACHE_TIERS, COMPUTE_LOCK_MS, COMPUTE_POLL_MS, COMPUTE_WAIT_MS, MAX_RESULT_BYTES } from './cache.constants';
import { cacheRedisKey, groupBySlot, tenantHashTag } from './cache-keys';
import type { CacheTiers } from './cache-tiers';
import type { EntryIndexing } from './redis-keyv.store';

export type CacheSource = 'memory' | 'redis' | 'loader';
/** `redis-read-only`: Redis answers reads but refuses writes (OOM under noeviction, a read-only replica). */
export type CacheMode = 'redis+memory' | 'redis-read-only' | 'memory-only';

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

/** setOrThrow's refusal: the value is not in Redis (too large, or Redis unreachable or refusing it); it names the cache's database. */
export class CacheWriteError extends RedisRoleError {
  override readonly name = 'CacheWriteError';

  constructor(message: string, options?: ErrorOptions) {
    super(message, 'cache', options);
  }
}

const MAX_WARNED_KEYS = 1_000;
/** A "memory tier only" episode starting this soon after the last logged one is not logged again (nor its end). */
const FLAP_QUIET_MS = 60_000;

/** What the cache asks of Redis; a refusal of one kind is over once that kind (or a store) succeeds again. */
type RedisOperation = 'read' | 'lock' | 'store' | 'delete';

/** What tryRedis returns for an operation that did not run or failed (undefined is a valid result: a miss). */
const FAILED = Symbol('failed');

interface ComputeLock {
  readonly key: string;
  readonly token: string;
}

function checkTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`cache entries need a positive ttlMs, got ${ttlMs}`);
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);

/**
 * Two tiers, memory then Redis, over RedisModule's cache client (REDIS_CACHE_URL, else REDIS_URL). Redis failures never fail a read:
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
  /** Why Redis is unusable (down, timing out), until any operation succeeds. */
  private unusable?: string;
  /** Whether that episode was logged: one that starts within FLAP_QUIET_MS of the last logged one is not, nor its end. */
  private unusableLogged = false;
  private lastUnusableWarnAt = -Infinity;
  /** Operations Redis answers with an error (OOM under noeviction, READONLY, scripts refused), by kind. */
  private readonly refused = new Map<RedisOperation, string>();
  private readonly lookups: CacheLookupCounts = { memory: { hit: 0, miss: 0 }, redis: { hit: 0, miss: 0, error: 0 } };
  private readonly prefix: string;
  private readonly channel: string;
  private readonly onMessage = (channel: string, message: string) => this.onInvalidation(channel, message);

  constructor(
    @Inject(CACHE_TIERS) private readonly tiers: CacheTiers,
    @InjectRedis('cache') private readonly redis: RedisClient,
    @InjectRedis('cache-subscriber') private readonly subscriber: RedisClient,
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
    if (!this.redisUsable() || this.unusable !== undefined) return 'memory-only';
    return this.refused.size > 0 ? 'redis-read-only' : 'redis+memory';
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
    const fromMemory = await this.getFromMemory<T>(key);
    if (fromMemory !== undefined) return { value: fromMemory, source: 'memory' };
    this.lookups.memory.miss += 1;
    // Wrapped, so that a failed read (undefined) differs from a miss.
    const read = await this.tryRedis('read', async () => ({ raw: await this.tiers.redis.get<T>(key, { raw: true }) }));
    const raw = read === FAILED ? undefined : read.raw;
    if (read === FAILED) this.lookups.redis.error += 1;
    else this.lookups.redis[raw?.value === undefined ? 'miss' : 'hit'] += 1;
    if (raw?.value === undefined) return undefined;
    const remaining = typeof raw.expires === 'number' ? raw.expires - Date.now() : undefined;
    if ((remaining === undefined || remaining > 0) && !(await this.tiers.memory.set(key, raw.value, remaining))) this.warnNotKeptInMemory(key);
    return { value: raw.value, source: 'redis' };
  }

  /**
   * The memory tier alone, for a caller that answers a hit at once and otherwise goes on to get or getOrSet
   * (which count the miss): a memory hit cannot wait on Redis, so it needs no deadline and no shared lookup.
   */
  async getFromMemory<T>(key: string): Promise<T | undefined> {
    const value = await this.tiers.memory.get<T>(key);
    if (value !== undefined) this.lookups.memory.hit += 1;
    return value;
  }

  /** Stores in both tiers; a value over CACHE_MAX_VALUE_KB is not cached (warned about once per key). */
  async set<T>(key: string, value: T, options: CacheSetOptions): Promise<boolean> {
    return this.store(key, value, options);
  }

  /**
   * Stores in Redis (with the tag indexes) and rejects with CacheWriteError unless Redis took it: for a value that
   * exists nowhere else, like a job's result, whose producer must fail (and be retried) rather than lose it.
   * Bounded by MAX_RESULT_BYTES (Upstash refuses requests over 10 MB), not CACHE_MAX_VALUE_KB. Not kept in this
   * process's memory tier: such values are read elsewhere (a worker stores, web instances read), and the first
   * read anywhere copies it into that reader's memory, within CACHE_MAX_VALUE_KB.
   */
  async setOrThrow<T>(key: string, value: T, options: CacheSetOptions): Promise<void> {
    checkTtl(options.ttlMs);
    const indexing = this.indexing(key, options.tags);
    const stored = await this.tiers.serializeForRedis(value, options.ttlMs);
    const size = Buffer.byteLength(stored);
    if (size > MAX_RESULT_BYTES)
      throw new CacheWriteError(`not storing ${key}: ${Math.round(size / 1024)} KiB is over the ${MAX_RESULT_BYTES / 1024 / 1024} MiB cache result limit`);
    if (!this.redisUsable()) {
      this.markUnusable('Redis is unreachable');
      throw new CacheWriteError(`not storing ${key}: Redis is unreachable`);
    }
    try {
      await this.tiers.setInRedis(key, stored, options.ttlMs, indexing);
    } catch (error) {
      const reason = this.failed('store', error);
      throw new CacheWriteError(`not storing ${key}: Redis refused it (${reason})`, { cause: error });
    }
    this.succeeded('store');
  }

  private async store<T>(key: string, value: T, options: CacheSetOptions, lock?: ComputeLock): Promise<boolean> {
    checkTtl(options.ttlMs);
    const indexing = this.indexing(key, options.tags, lock);
    const size = Buffer.byteLength(JSON.stringify(value) ?? '');
    if (size > this.config.cache.maxValueBytes) {
      this.warnOversize(key, size);
      return false;
    }
    await this.keepInMemory(key, value, options);
    const stored = await this.tiers.serializeForRedis(value, options.ttlMs);
    const written = await this.tryRedis('store', () => this.tiers.setInRedis(key, stored, options.ttlMs, indexing));
    return written !== FAILED;
  }

  private async keepInMemory<T>(key: string, value: T, options: CacheSetOptions): Promise<void> {
    // A value the memory tier refuses (over CACHE_MAX_VALUE_KB) never leaves it, so its tags must not be kept.
    if (!(await this.tiers.memory.set(key, value, options.ttlMs))) return;
    for (const tag of options.tags ?? []) this.rememberLocally(tag, key);
  }

  /** On a Cluster the write script touches the entry and its tag indexes together: they must share the tenant's hash slot. */
  private indexing(key: string, tags: readonly string[] = [], lock?: ComputeLock): EntryIndexing {
    const foreign = this.config.redis.cluster ? tags.find((tag) => tenantHashTag(tag) === undefined || tenantHashTag(tag) !== tenantHashTag(key)) : undefined;
    if (foreign !== undefined) {
      throw new RangeError(`cannot tag ${key} with ${foreign} on a Redis Cluster: an entry's tags must be its own tenant's (tenantTag of the tenant in tenantKey)`);
    }
    return { indexKeys: tags.map((tag) => this.tagKey(tag)), member: key, lock };
  }

  async delete(key: string): Promise<void> {
    await this.tiers.memory.delete(key);
    await this.tryRedis('delete', () => this.tiers.redis.delete(key));
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
    await this.tryRedis('delete', async () => {
      const keys = [...new Set((await Promise.all(tags.map((tag) => this.redis.zrange(this.tagKey(tag), '0', '-1')))).flat())];
      if (keys.length > 0) await this.tiers.redis.deleteMany(keys);
      await Promise.all(
        groupBySlot(
          tags.map((tag) => this.tagKey(tag)),
          this.config.redis.cluster,
        ).map((group) => this.redis.unlink(group.map(({ redisKey }) => redisKey))),
      );
      await this.redis.publish(this.channel, JSON.stringify({ tags, keys }));
    });
  }

  private async lookUpOrLoad<T>(key: string, loader: () => Promise<T>, options: CacheGetOrSetOptions<T>): Promise<{ value: T; source: CacheSource }> {
    const cached = await this.get<T>(key);
    if (cached) return cached;

    const lock: ComputeLock = { key: cacheRedisKey(`${this.prefix}:cache-lock:`, key, this.config.redis.cluster), token: randomBytes(8).toString('hex') };
    const locked = await this.tryRedis('lock', () => this.redis.set(lock.key, lock.token, 'PX', COMPUTE_LOCK_MS, 'NX'));
    if (locked === null) {
      const computedElsewhere = await this.waitForValue<T>(key, lock.key);
      if (computedElsewhere) return computedElsewhere;
    }
    const held = locked === 'OK' ? lock : undefined;
    let released = false;
    try {
      const value = await loader();
      // The write releases the lock in the same round trip.
      if (options.shouldCache?.(value) !== false) released = (await this.store(key, value, options, held)) && held !== undefined;
      return { value, source: 'loader' };
    } finally {
      if (held && !released) await this.tryRedis('delete', () => this.redis.del(held.key));
    }
  }

  /**
   * Polls for the value the lock holder computes. Stops as soon as the lock is gone without a value (the holder's
   * loader failed, its value was not to be cached, Redis refused the write): waiting out COMPUTE_WAIT_MS then
   * made every concurrent request on another instance 3 s late, for 60 reads.
   */
  private async waitForValue<T>(key: string, lockKey: string): Promise<{ value: T; source: 'redis' } | undefined> {
    const deadline = Date.now() + COMPUTE_WAIT_MS;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, COMPUTE_POLL_MS));
      const polled = await this.tryRedis('read', () => this.tiers.pollRedis<T>(key, lockKey));
      if (polled === FAILED) return undefined;
      if (polled.value !== undefined) {
        // For what is left of its life in Redis, not the memory tier's longest: it may be short-lived.
        await this.tiers.memory.set(key, polled.value, polled.expires === undefined ? undefined : polled.expires - Date.now());
        return { value: polled.value, source: 'redis' };
      }
      if (!polled.locked) return undefined;
    }
    return undefined;
  }

  /** Runs a Redis-tier operation, or skips it while Redis is unusable: the cache fails open. */
  private async tryRedis<T>(operation: RedisOperation, run: () => Promise<T>): Promise<T | typeof FAILED> {
    if (!this.redisUsable()) {
      this.markUnusable('Redis is unreachable');
      return FAILED;
    }
    try {
      const result = await run();
      this.succeeded(operation);
      return result;
    } catch (error) {
      this.failed(operation, error);
      return FAILED;
    }
  }

  private redisUsable(): boolean {
    return this.connections.status('cache').state === 'ready';
  }

  /**
   * A write Redis answered with an error is a refusal: reads may still work (OOM under noeviction refuses writes
   * only). Anything else (timeout, connection lost, a read refused) makes the tier unusable. One line each, for
   * as long as it lasts, however many operations fail meanwhile.
   */
  private failed(operation: RedisOperation, error: unknown): string {
    const reason = error instanceof Error ? error.message : String(error);
    if (operation === 'read' || !(error instanceof ReplyError)) {
      this.markUnusable(reason);
    } else {
      if (this.refused.size === 0) this.logger.warn(`Redis refuses cache writes (${reason}); reads still use Redis, new values stay in this instance's memory tier only`);
      this.refused.set(operation, reason);
    }
    return reason;
  }

  /**
   * On a Cluster with one shard down, operations on the other shards keep succeeding in between: without the quiet
   * period the "memory tier only" and "back" lines alternated every second for the whole failover.
   */
  private markUnusable(reason: string): void {
    if (this.unusable !== undefined) return;
    this.unusable = reason;
    const now = Date.now();
    this.unusableLogged = now - this.lastUnusableWarnAt >= FLAP_QUIET_MS;
    if (!this.unusableLogged) return;
    this.lastUnusableWarnAt = now;
    this.logger.warn(`running on the memory tier only (${reason}); reads fall back to memory or the loader, writes to Redis are skipped`);
  }

  private succeeded(operation: RedisOperation): void {
    if (this.unusable === undefined && this.refused.size === 0) return;
    const quietly = this.unusable !== undefined && !this.unusableLogged && this.refused.size === 0;
    this.unusable = undefined;
    // A stored entry (a script writing several keys) proves every kind of write works again.
    if (operation === 'store') this.refused.clear();
    else this.refused.delete(operation);
    if (this.refused.size === 0 && !quietly) this.logger.log('Redis tier back: running on redis+memory');
  }

  private warnOversize(key: string, size: number): void {
    this.warnOnce(key, `not caching ${key}: ${Math.round(size / 1024)} KiB is over CACHE_MAX_VALUE_KB (${this.config.cache.maxValueBytes / 1024})`);
  }

  /** A Redis hit too large for the memory tier (a job result stored with setOrThrow): each read of it costs a GET. */
  private warnNotKeptInMemory(key: string): void {
    this.warnOnce(
      key,
      `not keeping ${key} in this instance's memory tier: it is over CACHE_MAX_VALUE_KB (${this.config.cache.maxValueBytes / 1024}); every read of it goes to Redis`,
    );
  }

  private warnOnce(key: string, message: string): void {
    if (this.warnedOversize.has(key) || this.warnedOversize.size >= MAX_WARNED_KEYS) return;
    this.warnedOversize.add(key);
    this.logger.warn(message);
  }

  /**
   * A sorted set (key -> expiry). Named apart from the earlier plain sets (`cache-tag:`), which expire on their own.
   * On a Cluster it carries its tenant's hash tag, like the entries it lists.
   */
  private tagKey(tag: string): string {
    return cacheRedisKey(`${this.prefix}:cache-tags:`, tag, this.config.redis.cluster);
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
