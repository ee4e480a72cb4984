import { EventEmitter } from 'node:events';
import type { Cluster } from 'ioredis';
import type { KeyvStoreAdapter } from 'keyv';
import type { RedisClient } from '../redis';
import { cacheRedisKey, groupBySlot } from './cache-keys';

export interface RedisKeyvStoreOptions {
  /** The app's REDIS_KEY_PREFIX, e.g. `pharmacare`; entries live under `<keyPrefix>:cache:`. */
  keyPrefix: string;
  /** REDIS_CLUSTER: keys carry their tenant's hash tag, and multi-key commands go out one per hash slot. */
  cluster?: boolean;
}

/** What else one write does besides storing the entry, in the same round trip. */
export interface EntryIndexing {
  /** Redis keys of the tag indexes to list the entry in: sorted sets of member -> expiry (epoch ms). */
  readonly indexKeys: readonly string[];
  /** What the indexes list: the caller's key, without store prefix or namespace. */
  readonly member: string;
  /** A compute lock to release, if it still holds this token (it may have expired and been taken by another). */
  readonly lock?: { readonly key: string; readonly token: string };
}

/**
 * KEYS: entry, [lock,] index... ARGV: value, ttlMs, nowMs, member, lock token ('' for none).
 * Each index drops the members whose entries have expired, and lives as long as its longest entry, so neither
 * a busy tag nor an idle one keeps keys of entries that are gone.
 */
const SET_INDEXED = `
local ttl = tonumber(ARGV[2])
local expires = tonumber(ARGV[3]) + ttl
local locked = ARGV[5] ~= ''
local first = 2
if locked then first = 3 end
for i = first, #KEYS do
  redis.call('ZADD', KEYS[i], expires, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[3])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
-- Last, so that an index that fails (a key of another type) leaves no entry invalidateTags cannot find.
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
if locked and redis.call('GET', KEYS[2]) == ARGV[5] then redis.call('DEL', KEYS[2]) end
return 1
`;

type ScriptedRedis = RedisClient & { cacheSetIndexed(numberOfKeys: number, ...args: string[]): Promise<number> };

/** SCAN COUNT hint for clear(); each page of matches goes out as one UNLINK. */
const CLEAR_BATCH = 500;

/** MATCH treats these as glob syntax; a prefix or namespace containing them must match literally. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function toRedisValue(value: unknown): string {
  if (typeof value === 'string') return value;
  const json: unknown = JSON.stringify(value);
  if (typeof json !== 'string') throw new TypeError(`RedisKeyvStore: cannot store a value of type ${typeof value}`);
  return json;
}

/** PX only takes a positive integer; anything else (undefined, 0, negative, Infinity) means no expiry, as in Keyv. */
function toPx(ttl: number | undefined): number | undefined {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) return undefined;
  return Math.ceil(ttl);
}

/**
 * Keyv store over an ioredis client owned by RedisModule, so the cache opens no connection of its own.
 * Every command goes straight to the client: errors reject the returned promise and are never
 * emitted, leaving fail-open to the caching layer above.
 */
export class RedisKeyvStore extends EventEmitter implements KeyvStoreAdapter {
  readonly opts: { keyPrefix: string; cluster: boolean };
  /** Set by Keyv (its `namespace` option, 'keyv' by default); keys Keyv passes already start with it. */
  namespace?: string | undefined;
  private readonly client: ScriptedRedis;
  private readonly root: string;

  constructor(client: RedisClient, options: RedisKeyvStoreOptions) {
    super();
    this.client = client as ScriptedRedis;
    // Defined once on the shared client (ioredis sends EVALSHA, and EVAL once after a NOSCRIPT).
    if (typeof this.client.cacheSetIndexed !== 'function') client.defineCommand('cacheSetIndexed', { lua: SET_INDEXED });
    this.opts = { keyPrefix: options.keyPrefix, cluster: options.cluster ?? false };
    this.root = `${options.keyPrefix}:cache:`;
  }

  // Generic only because KeyvStoreAdapter declares it so: the value is always the stored string, which Keyv deserializes.
  async get<Value>(key: string): Promise<Value | undefined> {
    const value = await this.client.get(this.redisKey(key));
    return value === null ? undefined : (value as Value);
  }

  /** The stored value, and whether `lockKey` still exists: one MGET, for who waits on another's computation. */
  async getWhileLocked(key: string, lockKey: string): Promise<{ value?: string; locked: boolean }> {
    const [value, lock] = await this.client.mget(this.redisKey(key), lockKey);
    return { value: value ?? undefined, locked: lock !== null };
  }

  /** One MGET; missing keys come back as undefined in their position. */
  async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    if (keys.length === 0) return [];
    const values = new Array<Value | undefined>(keys.length);
    await Promise.all(
      this.bySlot(keys.map((key) => this.redisKey(key))).map(async (group) => {
        const found = await this.client.mget(group.map(({ redisKey }) => redisKey));
        group.forEach(({ index }, position) => (values[index] = found[position] === null ? undefined : (found[position] as Value)));
      }),
    );
    return values;
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const px = toPx(ttl);
    const redisKey = this.redisKey(key);
    const stored = toRedisValue(value);
    if (px === undefined) await this.client.set(redisKey, stored);
    else await this.client.set(redisKey, stored, 'PX', px);
    return true;
  }

  /**
   * Stores an entry (key as Keyv passes it, value already serialized) with a TTL, lists it in its tag indexes and
   * releases the compute lock: one billable command (a script) however many tags, where separate commands cost
   * 4 per tag plus 2. Rejects if Redis did not take it, e.g. OOM under noeviction (then nothing was written).
   */
  async setIndexed(key: string, value: string, ttlMs: number, indexing: EntryIndexing): Promise<void> {
    const px = toPx(ttlMs);
    if (px === undefined) throw new RangeError(`RedisKeyvStore: an indexed entry needs a positive ttl, got ${ttlMs}`);
    const keys = [this.redisKey(key), ...(indexing.lock ? [indexing.lock.key] : []), ...indexing.indexKeys];
    await this.client.cacheSetIndexed(keys.length, ...keys, value, String(px), String(Date.now()), indexing.member, indexing.lock?.token ?? '');
  }

  /** One pipeline, so one round trip however many entries. */
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    if (entries.length === 0) return;
    await Promise.all(
      this.bySlot(entries.map(({ key }) => this.redisKey(key))).map((group) => {
        const pipeline = this.client.pipeline();
        for (const { redisKey, index } of group) {
          const { value, ttl } = entries[index];
          const px = toPx(ttl);
          const stored = toRedisValue(value);
          if (px === undefined) pipeline.set(redisKey, stored);
          else pipeline.set(redisKey, stored, 'PX', px);
        }
        return execOrThrow(pipeline.exec());
      }),
    );
  }

  async delete(key: string): Promise<boolean> {
    return (await this.client.unlink(this.redisKey(key))) > 0;
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    if (keys.length === 0) return false;
    const counts = await Promise.all(this.bySlot(keys.map((key) => this.redisKey(key))).map((group) => this.client.unlink(group.map(({ redisKey }) => redisKey))));
    return counts.some((count) => count > 0);
  }

  async has(key: string): Promise<boolean> {
    return (await this.client.exists(this.redisKey(key))) === 1;
  }

  /** EXISTS with several keys only returns a count, so one EXISTS per key, pipelined. */
  async hasMany(keys: string[]): Promise<boolean[]> {
    if (keys.length === 0) return [];
    const found = new Array<boolean>(keys.length);
    await Promise.all(
      this.bySlot(keys.map((key) => this.redisKey(key))).map(async (group) => {
        const pipeline = this.client.pipeline();
        for (const { redisKey } of group) pipeline.exists(redisKey);
        const results = await execOrThrow(pipeline.exec());
        group.forEach(({ index }, position) => (found[index] = results[position] === 1));
      }),
    );
    return found;
  }

  /**
   * Removes this app's cache entries (only the current Keyv namespace when one is set), nothing else in
   * the database: other apps and our own queues may share it, so no FLUSHDB, and SCAN instead of KEYS
   * so Redis is never blocked for long. On a Cluster every master is scanned (SCAN sees one node's keys), and
   * a page's keys go out one UNLINK per hash slot.
   */
  async clear(): Promise<void> {
    const namespace = this.namespace ? escapeGlob(`${this.namespace}:`) : '';
    // On a Cluster the tenant's hash tag, if any, comes between the root and the namespace.
    const pattern = this.opts.cluster && namespace ? `${escapeGlob(this.root)}*${namespace}*` : `${escapeGlob(this.root)}${namespace}*`;
    const nodes = this.opts.cluster ? (this.client as Cluster).nodes('master') : [this.client];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', CLEAR_BATCH);
        cursor = next;
        await Promise.all(this.bySlot(keys).map((group) => node.unlink(group.map(({ redisKey }) => redisKey))));
      } while (cursor !== '0');
    }
  }

  /** RedisModule owns the client and closes it at shutdown. */
  async disconnect(): Promise<void> {}

  /** Keys as Keyv passes them (`<namespace>:<key>`): the tenant, for the hash tag, comes after the namespace. */
  private redisKey(key: string): string {
    const namespace = this.namespace ? `${this.namespace}:` : '';
    return cacheRedisKey(this.root, key, this.opts.cluster, key.startsWith(namespace) ? key.slice(namespace.length) : key);
  }

  private bySlot(redisKeys: readonly string[]): Array<Array<{ redisKey: string; index: number }>> {
    return groupBySlot(redisKeys, this.opts.cluster);
  }
}

/** A pipeline resolves even when single commands fail; surface the first failure like a plain command would. */
async function execOrThrow(pending: Promise<Array<[error: Error | null, result: unknown]> | null>): Promise<unknown[]> {
  const results = await pending;
  if (results === null) throw new Error('RedisKeyvStore: pipeline was discarded');
  return results.map(([error, result]) => {
    if (error) throw error;
    return result;
  });
}
