import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { KeyvStoreAdapter } from 'keyv';

export interface RedisKeyvStoreOptions {
  /** The app's REDIS_KEY_PREFIX, e.g. `pharmacare`; entries live under `<keyPrefix>:cache:`. */
  keyPrefix: string;
}

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
  readonly opts: { keyPrefix: string };
  /** Set by Keyv (its `namespace` option, 'keyv' by default); keys Keyv passes already start with it. */
  namespace?: string | undefined;
  private readonly client: Redis;
  private readonly root: string;

  constructor(client: Redis, options: RedisKeyvStoreOptions) {
    super();
    this.client = client;
    this.opts = { keyPrefix: options.keyPrefix };
    this.root = `${options.keyPrefix}:cache:`;
  }

  // Generic only because KeyvStoreAdapter declares it so: the value is always the stored string, which Keyv deserializes.
  async get<Value>(key: string): Promise<Value | undefined> {
    const value = await this.client.get(this.redisKey(key));
    return value === null ? undefined : (value as Value);
  }

  /** One MGET; missing keys come back as undefined in their position. */
  async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    if (keys.length === 0) return [];
    const values = await this.client.mget(keys.map((key) => this.redisKey(key)));
    return values.map((value) => (value === null ? undefined : (value as Value)));
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const px = toPx(ttl);
    const redisKey = this.redisKey(key);
    const stored = toRedisValue(value);
    if (px === undefined) await this.client.set(redisKey, stored);
    else await this.client.set(redisKey, stored, 'PX', px);
    return true;
  }

  /** One pipeline, so one round trip however many entries. */
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.client.pipeline();
    for (const { key, value, ttl } of entries) {
      const px = toPx(ttl);
      const redisKey = this.redisKey(key);
      const stored = toRedisValue(value);
      if (px === undefined) pipeline.set(redisKey, stored);
      else pipeline.set(redisKey, stored, 'PX', px);
    }
    await execOrThrow(pipeline.exec());
  }

  async delete(key: string): Promise<boolean> {
    return (await this.client.unlink(this.redisKey(key))) > 0;
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    if (keys.length === 0) return false;
    return (await this.client.unlink(keys.map((key) => this.redisKey(key)))) > 0;
  }

  async has(key: string): Promise<boolean> {
    return (await this.client.exists(this.redisKey(key))) === 1;
  }

  /** EXISTS with several keys only returns a count, so one EXISTS per key, pipelined. */
  async hasMany(keys: string[]): Promise<boolean[]> {
    if (keys.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const key of keys) pipeline.exists(this.redisKey(key));
    const results = await execOrThrow(pipeline.exec());
    return results.map((count) => count === 1);
  }

  /**
   * Removes this app's cache entries (only the current Keyv namespace when one is set), nothing else in
   * the database: other apps and our own queues may share it, so no FLUSHDB, and SCAN instead of KEYS
   * so Redis is never blocked for long.
   */
  async clear(): Promise<void> {
    const scope = this.namespace ? `${this.root}${this.namespace}:` : this.root;
    const pattern = `${escapeGlob(scope)}*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', pattern, 'COUNT', CLEAR_BATCH);
      cursor = next;
      if (keys.length > 0) await this.client.unlink(keys);
    } while (cursor !== '0');
  }

  /** RedisModule owns the client and closes it at shutdown. */
  async disconnect(): Promise<void> {}

  private redisKey(key: string): string {
    return this.root + key;
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
