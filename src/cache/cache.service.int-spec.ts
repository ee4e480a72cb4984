import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { defaultSerialize } from '@keyv/serialize';
import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { Controller, Get, INestApplication, Module, Query, UseGuards } from '@nestjs/common';
import type { Cache } from 'cache-manager';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { CapturingLogger } from '../../test/support/capturing-logger';
import { initTestApp } from '../../test/support/nest-app';
import { clientAddresses, countsDelta, RedisMonitor } from '../../test/support/redis-monitor';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { until } from '../../test/support/until';
import { AuthModule, CurrentPrincipal, JwtAuthGuard } from '../auth';
import type { Principal } from '../auth';
import { ConfigModule, loadConfig } from '../config';
import { HealthModule } from '../health';
import { RedisConnections, RedisModule } from '../redis';
import { CacheModule } from './cache.module';
import { COMPUTE_WAIT_MS, MAX_RESULT_BYTES } from './cache.constants';
import { CacheService, CacheWriteError } from './cache.service';
import { tenantKey, tenantTag } from './cache-keys';
import { CachedResponse } from './http-cache.interceptor';

let loads = 0;
const JWT_SECRET = 'cache-spec-secret-0123456789-0123456789';

/** A route to cache: counts its calls and echoes the tenant it was asked for. */
@Controller('stock')
class StockController {
  @Get()
  @CachedResponse({ ttlSeconds: 60 })
  list(@Query('tenant') tenant: string, @Query('page') page = '1'): { tenant: string; page: string; load: number } {
    loads += 1;
    return { tenant, page, load: loads };
  }
}

/** The same path for every tenant: only the verified token tells them apart. */
@Controller('shelf')
@UseGuards(JwtAuthGuard)
class ShelfController {
  @Get()
  @CachedResponse({ ttlSeconds: 60 })
  shelf(@CurrentPrincipal() principal: Principal): { tenant: string } {
    return { tenant: principal.tenantId };
  }
}

let redis: RedisServer;
const apps: INestApplication[] = [];
const logger = new CapturingLogger();

async function instance(env: Record<string, string> = {}): Promise<{ app: INestApplication; cache: CacheService; manager: Cache }> {
  const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: redis.url(), JWT_SECRET, ...env });
  @Module({ imports: [ConfigModule.forRoot(config), RedisModule, HealthModule, CacheModule, AuthModule], controllers: [StockController, ShelfController] })
  class CacheTestModule {}
  const app = await initTestApp(CacheTestModule, logger);
  apps.push(app);
  return { app, cache: app.get(CacheService), manager: app.get<Cache>(CACHE_MANAGER) };
}

/** Redis INFO commandstats: calls per command, to count what a cache operation costs. */
async function commandCalls(): Promise<Record<string, number>> {
  const info = await redis.command('INFO', 'commandstats');
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) calls[match[1]] = Number(match[2]);
  return calls;
}

async function commandsDuring(operation: () => Promise<unknown>): Promise<number> {
  const before = await commandCalls();
  await operation();
  const after = await commandCalls();
  // The INFO that reads the counters counts itself once.
  return Object.entries(after).reduce((sum, [name, count]) => sum + count - (before[name] ?? 0), 0) - (after.info ?? 0) + (before.info ?? 0);
}

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
  logger.lines.length = 0;
  if (!redis.pid) await redis.restart();
  await redis.command('CONFIG', 'SET', 'maxmemory', '0');
  await redis.command('ACL', 'SETUSER', 'default', '+@all');
});

const linesWith = (text: string): string[] => logger.lines.filter((line) => line.includes(text));

/** Billable commands (as Upstash counts them: a script is one) that the app's command client sent during `operation`. */
async function billableDuring(operation: () => Promise<unknown>): Promise<Record<string, number>> {
  const monitor = await RedisMonitor.start(redis);
  try {
    const address = (await clientAddresses(redis)).get(`pharmacare:command:${process.pid}`);
    if (!address) throw new Error('no command client in CLIENT LIST');
    const before = monitor.countsFrom(address);
    await operation();
    await monitor.sync();
    return countsDelta(before, monitor.countsFrom(address));
  } finally {
    await monitor.stop();
  }
}

const sum = (counts: Record<string, number>): number => Object.values(counts).reduce((total, count) => total + count, 0);

/** Calls and refusals of one command in INFO commandstats (a refused call never shows in MONITOR). */
async function attempts(command: string): Promise<number> {
  const info = await redis.command('INFO', 'commandstats');
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+).*?rejected_calls=(\\d+),failed_calls=(\\d+)`).exec(info);
  return match ? Number(match[1]) + Number(match[2]) : 0;
}
afterAll(stopAllRedisServers);

describe('CacheService tiers', () => {
  it('a memory hit costs 0 Redis commands and a Redis hit 1', async () => {
    const a = await instance();
    const b = await instance();
    const key = tenantKey('t1', 'tiers');
    await a.cache.set(key, { sku: 'AMOX-500', units: 3 }, { ttlMs: 60_000 });

    expect(await commandsDuring(async () => expect(await a.cache.get(key)).toEqual({ value: { sku: 'AMOX-500', units: 3 }, source: 'memory' }))).toBe(0);
    expect(await commandsDuring(async () => expect((await b.cache.get(key))?.source).toBe('redis'))).toBe(1);
    // The Redis hit was copied into b's memory tier.
    expect(await commandsDuring(async () => expect((await b.cache.get(key))?.source).toBe('memory'))).toBe(0);
    // What /metrics shows as pharmacare_cache_lookups_total.
    expect(a.cache.lookupCounts()).toEqual({ memory: { hit: 1, miss: 0 }, redis: { hit: 0, miss: 0, error: 0 } });
    expect(b.cache.lookupCounts()).toEqual({ memory: { hit: 1, miss: 1 }, redis: { hit: 1, miss: 0, error: 0 } });
  });

  it('expires entries in both tiers', async () => {
    const { cache } = await instance();
    const key = tenantKey('t1', 'short-lived');
    await cache.set(key, 'soon gone', { ttlMs: 300 });
    expect((await cache.get(key))?.source).toBe('memory');
    await until(
      () => cache.get(key),
      (hit) => hit === undefined,
      5_000,
      50,
    );
    expect(await redis.command('EXISTS', `pharmacare:cache:v1:${key}`)).toBe('0');
  });

  it('does not cache a value over CACHE_MAX_VALUE_KB and warns once', async () => {
    const { cache } = await instance({ CACHE_MAX_VALUE_KB: '1' });
    const key = tenantKey('t1', 'big');
    const big = 'x'.repeat(2_000);
    expect(await cache.set(key, big, { ttlMs: 60_000 })).toBe(false);
    expect(await cache.set(key, big, { ttlMs: 60_000 })).toBe(false);
    expect(await cache.get(key)).toBeUndefined();
    expect(logger.lines.filter((line) => line.includes(`not caching ${key}`))).toHaveLength(1);
  });
});

describe('CacheService.getOrSet', () => {
  it('calls the loader once for 1,000 concurrent misses on one key', async () => {
    const { cache } = await instance();
    let calls = 0;
    const loader = async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { total: 42 };
    };
    const key = tenantKey('t1', 'stampede');
    const results = await Promise.all(Array.from({ length: 1_000 }, () => cache.getOrSet(key, loader, { ttlMs: 60_000 })));
    expect(calls).toBe(1);
    expect(results.every((result) => result.value.total === 42)).toBe(true);
  });

  it('lets one instance compute while another waits for its result', async () => {
    const [a, b] = await Promise.all([instance(), instance()]);
    let calls = 0;
    const loader = async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 300));
      return 'computed once';
    };
    const key = tenantKey('t1', 'across-instances');
    const [fromA, fromB] = await Promise.all([a.cache.getOrSet(key, loader, { ttlMs: 60_000 }), b.cache.getOrSet(key, loader, { ttlMs: 60_000 })]);
    expect(calls).toBe(1);
    expect([fromA.value, fromB.value]).toEqual(['computed once', 'computed once']);
    expect([fromA.source, fromB.source].sort()).toEqual(['loader', 'redis']);
  });

  it("keeps what it waited for in memory no longer than the entry's life in Redis", async () => {
    const [a, b] = await Promise.all([instance(), instance()]);
    const key = tenantKey('t1', 'short-lived-across');
    const loader = async () => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      return 'brief';
    };
    const fromA = a.cache.getOrSet(key, loader, { ttlMs: 500 });
    await until(
      () => redis.command('EXISTS', `pharmacare:cache-lock:${key}`),
      (exists) => exists === '1',
      5_000,
      5,
    );
    expect(await b.cache.getOrSet(key, loader, { ttlMs: 500 })).toEqual({ value: 'brief', source: 'redis' });
    await fromA;
    // The memory tier's own limit (CACHE_MEMORY_TTL_SECONDS, 300 s) would keep it for minutes.
    await until(
      () => b.cache.get(key),
      (hit) => hit === undefined,
      5_000,
      50,
    );
  });
});

describe('CacheService.getOrSet across instances, when the computing one stores nothing', () => {
  it('the waiting instance computes as soon as the lock is released, instead of polling out COMPUTE_WAIT_MS', async () => {
    const [a, b] = await Promise.all([instance(), instance()]);
    const key = tenantKey('t1', 'report', 'still-queued');
    let calls = 0;
    // Like a report that is still queued: its view is not to be cached.
    const loader = async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 200));
      return { status: 'queued' };
    };
    const options = { ttlMs: 60_000, shouldCache: (view: { status: string }) => view.status === 'completed' };
    const fromA = a.cache.getOrSet(key, loader, options);
    // b starts once a holds the lock.
    await until(
      () => redis.command('EXISTS', `pharmacare:cache-lock:${key}`),
      (exists) => exists === '1',
      5_000,
      5,
    );
    const started = Date.now();
    const polls = await commandsDuring(async () => expect(await b.cache.getOrSet(key, loader, options)).toEqual({ value: { status: 'queued' }, source: 'loader' }));
    await fromA;
    expect(calls).toBe(2);
    // Waiting it out would take COMPUTE_WAIT_MS (3 s) and 60 reads.
    expect(Date.now() - started).toBeLessThan(COMPUTE_WAIT_MS);
    expect(polls).toBeLessThan(30);
  });
});

describe('tag invalidation', () => {
  it('removes tagged entries in Redis and in the memory tier of every instance', async () => {
    const [a, b] = await Promise.all([instance(), instance()]);
    const inventory = tenantKey('t1', 'inventory', 'AMOX-500');
    const other = tenantKey('t1', 'prices');
    await a.cache.set(inventory, 12, { ttlMs: 60_000, tags: ['tenant:t1:inventory'] });
    await a.cache.set(other, 3.5, { ttlMs: 60_000, tags: ['tenant:t1:prices'] });
    expect((await b.cache.get(inventory))?.source).toBe('redis');
    expect((await b.cache.get(inventory))?.source).toBe('memory');

    await a.cache.invalidateTags(['tenant:t1:inventory']);
    expect(await a.cache.get(inventory)).toBeUndefined();
    await until(
      () => b.cache.get(inventory),
      (hit) => hit === undefined,
      5_000,
      20,
    );
    expect((await b.cache.get(other))?.value).toBe(3.5);
  });

  // Found by the soak: a tenant posting reports faster than they expire kept every report key it ever had in
  // its tag set (4,002 members for 399 live entries after 10 minutes), since each write extended the set's TTL.
  it('keeps in a tag index only the keys whose entries have not expired', async () => {
    const { cache } = await instance();
    for (let i = 0; i < 3; i++) await cache.set(tenantKey('t1', 'short', String(i)), i, { ttlMs: 50, tags: ['tenant:t1:busy'] });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await cache.set(tenantKey('t1', 'long'), 'kept', { ttlMs: 60_000, tags: ['tenant:t1:busy'] });
    expect(await redis.command('ZRANGE', 'pharmacare:cache-tags:tenant:t1:busy', '0', '-1')).toBe(tenantKey('t1', 'long'));
  });
});

describe('fail-open', () => {
  it('keeps answering from memory and the loader while Redis is down, says so once, and shows it in /health', async () => {
    const { app, cache } = await instance({ HEALTH_REDIS_GRACE_SECONDS: '60' });
    const warm = tenantKey('t1', 'warm');
    await cache.set(warm, 'still here', { ttlMs: 60_000 });
    await redis.kill();
    const connections = app.get(RedisConnections);
    await until(
      async () => connections.status('command').state,
      (state) => state !== 'ready',
      5_000,
      20,
    );

    expect(await cache.get(warm)).toEqual({ value: 'still here', source: 'memory' });
    expect(await cache.getOrSet(tenantKey('t1', 'cold'), async () => 'from loader', { ttlMs: 60_000 })).toEqual({ value: 'from loader', source: 'loader' });
    expect(await cache.getOrSet(tenantKey('t1', 'cold'), async () => 'loader again', { ttlMs: 60_000 })).toEqual({ value: 'from loader', source: 'memory' });
    for (let i = 0; i < 20; i++) await cache.get(tenantKey('t1', `miss-${i}`));
    expect(cache.mode()).toBe('memory-only');
    // Reads that found Redis unusable count as its errors, not as misses.
    expect(cache.lookupCounts()).toEqual({ memory: { hit: 2, miss: 21 }, redis: { hit: 0, miss: 0, error: 21 } });
    expect(logger.lines.filter((line) => line.includes('running on the memory tier only'))).toHaveLength(1);

    const health = await request(app.getHttpServer()).get('/health');
    expect(health.status).toBe(200);
    expect(health.body.details.cache).toMatchObject({ status: 'degraded', mode: 'memory-only' });
  });
});

describe('@CachedResponse', () => {
  it('caches GET responses per tenant, path and query, with x-cache hit or miss', async () => {
    const { app } = await instance();
    const server = app.getHttpServer();
    const first = await request(server).get('/stock?tenant=t1&page=2');
    expect(first.headers['x-cache']).toBe('miss');
    const second = await request(server).get('/stock?page=2&tenant=t1');
    expect(second.headers['x-cache']).toBe('hit');
    expect(second.body).toEqual(first.body);
    const otherPage = await request(server).get('/stock?tenant=t1&page=3');
    expect(otherPage.headers['x-cache']).toBe('miss');
  });
});

describe('@CachedResponse tenant isolation', () => {
  it("never serves one tenant's cached response to another", async () => {
    const { app } = await instance();
    const server = app.getHttpServer();
    const bearer = (tenant: string) => `Bearer ${jwt.sign({ sub: 'u1', tenant }, JWT_SECRET, { algorithm: 'HS256', expiresIn: '5m' })}`;
    const first = await request(server).get('/shelf').set('Authorization', bearer('pharmacy-1'));
    const again = await request(server).get('/shelf').set('Authorization', bearer('pharmacy-1'));
    const other = await request(server).get('/shelf').set('Authorization', bearer('pharmacy-2'));
    expect([first.headers['x-cache'], again.headers['x-cache'], other.headers['x-cache']]).toEqual(['miss', 'hit', 'miss']);
    expect(again.body).toEqual({ tenant: 'pharmacy-1' });
    expect(other.body).toEqual({ tenant: 'pharmacy-2' });
  });
});

describe('CACHE_MANAGER and CacheService share one pair of tiers', () => {
  it('a value set through either is a memory hit through the other (0 Redis commands)', async () => {
    const { cache, manager } = await instance();
    const viaManager = tenantKey('t1', 'via-manager');
    const viaService = tenantKey('t1', 'via-service');
    await manager.set(viaManager, { units: 1 }, 60_000);
    await cache.set(viaService, { units: 2 }, { ttlMs: 60_000, tags: [tenantTag('t1', 'stock')] });

    expect(await commandsDuring(async () => expect(await cache.get(viaManager)).toEqual({ value: { units: 1 }, source: 'memory' }))).toBe(0);
    const reads: Array<{ key: string; store?: string }> = [];
    manager.on('get', (event: { key: string; store?: string }) => void reads.push(event));
    expect(await commandsDuring(async () => expect(await manager.get(viaService)).toEqual({ units: 2 }))).toBe(0);
    expect(reads).toEqual([expect.objectContaining({ key: viaService, store: 'primary' })]);
    // The metrics and the memory bounds see what CACHE_MANAGER stored.
    expect(cache.memoryStats().entries).toBe(2);
  });

  it('invalidateTags removes from both tiers what CACHE_MANAGER reads: no stale value left in a memory tier of its own', async () => {
    const { cache, manager } = await instance();
    const key = tenantKey('t1', 'inventory', 'AMOX-500');
    const tag = tenantTag('t1', 'inventory');
    await manager.set(key, 'old', 60_000);
    await cache.set(key, 'new', { ttlMs: 60_000, tags: [tag] });
    expect(await manager.get(key)).toBe('new');

    await cache.invalidateTags([tag]);
    expect(await manager.get(key)).toBeUndefined();
    expect(await cache.get(key)).toBeUndefined();
    expect(await redis.command('EXISTS', `pharmacare:cache:v1:${key}`)).toBe('0');
  });

  it('keeps a value over CACHE_MAX_VALUE_KB set through CACHE_MANAGER out of the memory tier', async () => {
    const { cache, manager } = await instance({ CACHE_MAX_VALUE_KB: '1' });
    const key = tenantKey('t1', 'big-via-manager');
    await manager.set(key, 'x'.repeat(2_000), 60_000);
    expect(cache.memoryStats()).toEqual({ entries: 0, bytes: 0 });
    expect((await cache.get(key))?.source).toBe('redis');
    // Nor is the Redis hit copied into memory.
    expect(cache.memoryStats().entries).toBe(0);
  });
});

describe('what a cache miss costs', () => {
  it('at most 5 billable commands with a loader that reads a job (2 commands), however many tags; the lock is released', async () => {
    const { app, cache } = await instance();
    const client = app.get(RedisConnections).client('command');
    // What ReportsService's loader does: HGETALL the job, then a script for its state.
    const jobLookup = async () => {
      await client.hgetall('pharmacare:jobs:jobs:rpt_1');
      await client.eval("return redis.call('EXISTS', KEYS[1])", 1, 'pharmacare:jobs:jobs:rpt_1');
      return { status: 'completed' };
    };
    const oneTag = await billableDuring(() => cache.getOrSet(tenantKey('t1', 'miss', '1'), jobLookup, { ttlMs: 60_000, tags: [tenantTag('t1', 'reports')] }));
    const threeTags = await billableDuring(() =>
      cache.getOrSet(tenantKey('t1', 'miss', '3'), jobLookup, { ttlMs: 60_000, tags: ['tenant:t1:a', 'tenant:t1:b', 'tenant:t1:c'] }),
    );
    const notCached = await billableDuring(() => cache.getOrSet(tenantKey('t1', 'miss', 'none'), jobLookup, { ttlMs: 60_000, shouldCache: () => false }));

    for (const counts of [oneTag, threeTags, notCached]) expect(sum(counts)).toBeLessThanOrEqual(5);
    expect(sum(threeTags)).toBe(sum(oneTag));
    expect(await redis.command('KEYS', 'pharmacare:cache-lock:*')).toBe('');
    // The write kept its index semantics: members scored by expiry, the index living as long as its entries.
    expect(Number(await redis.command('PTTL', 'pharmacare:cache-tags:tenant:t1:b'))).toBeGreaterThan(50_000);
    expect(await redis.command('ZRANGE', 'pharmacare:cache-tags:tenant:t1:b', '0', '-1')).toBe(tenantKey('t1', 'miss', '3'));
    expect((await cache.get(tenantKey('t1', 'miss', '3')))?.source).toBe('memory');
  });

  it('an index never expires before its longest-lived entry', async () => {
    const { cache } = await instance();
    await cache.set(tenantKey('t1', 'long'), 1, { ttlMs: 60_000, tags: ['tenant:t1:mixed'] });
    await cache.set(tenantKey('t1', 'short'), 2, { ttlMs: 1_000, tags: ['tenant:t1:mixed'] });
    expect(Number(await redis.command('PTTL', 'pharmacare:cache-tags:tenant:t1:mixed'))).toBeGreaterThan(50_000);
  });
});

describe('Redis bad states', () => {
  it('OOM under noeviction: reads keep working (memory, Redis, loader), writes are refused, logged once; recovers by itself', async () => {
    const a = await instance();
    const b = await instance();
    const warm = tenantKey('t1', 'warm');
    await a.cache.set(warm, 'stored before', { ttlMs: 60_000 });
    await redis.command('CONFIG', 'SET', 'maxmemory', '1');

    for (let i = 0; i < 20; i++) {
      expect(await a.cache.getOrSet(tenantKey('t1', 'oom', String(i)), async () => i, { ttlMs: 60_000, tags: ['tenant:t1:oom'] })).toEqual({ value: i, source: 'loader' });
    }
    expect(await a.cache.get(warm)).toEqual({ value: 'stored before', source: 'memory' });
    expect(await b.cache.get(warm)).toEqual({ value: 'stored before', source: 'redis' });
    expect(a.cache.mode()).toBe('redis-read-only');
    expect(linesWith('Redis refuses cache writes')).toHaveLength(1);
    expect(linesWith('OOM command not allowed')).toHaveLength(1);
    expect(linesWith('running on the memory tier only')).toHaveLength(0);
    const health = await request(a.app.getHttpServer()).get('/health');
    expect(health.status).toBe(200);
    expect(health.body.details.cache).toMatchObject({ status: 'degraded', mode: 'redis-read-only' });

    await redis.command('CONFIG', 'SET', 'maxmemory', '0');
    expect(await a.cache.set(tenantKey('t1', 'after'), 'stored', { ttlMs: 60_000 })).toBe(true);
    expect(a.cache.mode()).toBe('redis+memory');
    expect(linesWith('Redis tier back')).toHaveLength(1);
    expect((await b.cache.get(tenantKey('t1', 'after')))?.source).toBe('redis');
  });

  it('a Redis that fails some reads and answers others (a Cluster with one shard down): one warning and one recovery line, not one pair per flap', async () => {
    const { cache } = await instance();
    // A read of this entry fails (WRONGTYPE) while reads of others succeed, as on the shards still up.
    await redis.command('HSET', 'pharmacare:cache:v1:t:t1:on-the-dead-shard', 'field', 'value');
    for (let flap = 0; flap < 5; flap++) {
      expect(await cache.get(tenantKey('t1', 'on-the-dead-shard'))).toBeUndefined();
      expect(cache.mode()).toBe('memory-only');
      expect(await cache.get(tenantKey('t1', 'on-a-live-shard'))).toBeUndefined();
      expect(cache.mode()).toBe('redis+memory');
    }
    expect(linesWith('running on the memory tier only')).toHaveLength(1);
    expect(linesWith('Redis tier back')).toHaveLength(1);
  });

  it('a Redis that answers every script with an error: misses still answer, one warning, one script call per miss, no lock left behind', async () => {
    const { cache } = await instance();
    await redis.command('ACL', 'SETUSER', 'default', '-eval', '-evalsha');
    const before = { evalsha: await attempts('evalsha'), eval: await attempts('eval') };
    for (let i = 0; i < 10; i++) {
      expect(await cache.getOrSet(tenantKey('t1', 'noscript', String(i)), async () => i, { ttlMs: 60_000, tags: ['tenant:t1:x'] })).toEqual({ value: i, source: 'loader' });
    }
    const scriptCalls = (await attempts('evalsha')) - before.evalsha + (await attempts('eval')) - before.eval;
    expect(scriptCalls).toBe(10);
    expect(await redis.command('KEYS', 'pharmacare:cache-lock:*')).toBe('');
    expect(linesWith('Redis refuses cache writes')).toHaveLength(1);
    expect(linesWith('NOPERM')).toHaveLength(1);
    expect(linesWith('Redis tier back')).toHaveLength(0);
  });
});

describe('CacheService.setOrThrow', () => {
  it('stores in Redis with its tags for every instance, beyond CACHE_MAX_VALUE_KB, and invalidateTags removes it', async () => {
    const [a, b] = await Promise.all([instance({ CACHE_MAX_VALUE_KB: '1' }), instance({ CACHE_MAX_VALUE_KB: '1' })]);
    const key = tenantKey('t1', 'report', 'rpt_big');
    const result = { rows: 'x'.repeat(200_000) };
    await expect(a.cache.setOrThrow(key, result, { ttlMs: 60_000, tags: [tenantTag('t1', 'reports')] })).resolves.toBeUndefined();
    expect(Number(await redis.command('PTTL', `pharmacare:cache:v1:${key}`))).toBeGreaterThan(50_000);
    expect(await b.cache.get(key)).toEqual({ value: result, source: 'redis' });
    // Too large for the memory tiers: every read is a Redis hit.
    expect((await b.cache.get(key))?.source).toBe('redis');
    expect(a.cache.memoryStats().entries).toBe(0);
    // Nor does the local tag index keep it: a worker storing big results would grow it without end.
    expect((a.cache as unknown as { localKeyTags: Map<string, unknown> }).localKeyTags.size).toBe(0);

    await a.cache.invalidateTags([tenantTag('t1', 'reports')]);
    expect(await b.cache.get(key)).toBeUndefined();
  });

  it('leaves the memory tier to readers: the first read is a Redis hit copied into memory, the next a memory hit', async () => {
    const { cache } = await instance();
    await cache.setOrThrow(tenantKey('t1', 'small'), { total: 1 }, { ttlMs: 60_000 });
    expect(cache.memoryStats().entries).toBe(0);
    expect(await cache.get(tenantKey('t1', 'small'))).toEqual({ value: { total: 1 }, source: 'redis' });
    expect(await cache.get(tenantKey('t1', 'small'))).toEqual({ value: { total: 1 }, source: 'memory' });
  });

  it('writes plain JSON, keeps strings that start with ":" intact, and still reads entries in Keyv\'s default format', async () => {
    const { cache } = await instance();
    const value = { sku: ':colon-first', note: '::two' };
    await cache.setOrThrow(tenantKey('t1', 'colons'), value, { ttlMs: 60_000 });
    const stored = JSON.parse(await redis.command('GET', `pharmacare:cache:v1:${tenantKey('t1', 'colons')}`)) as { value: unknown };
    expect(stored.value).toEqual(value);
    expect((await cache.get(tenantKey('t1', 'colons')))?.value).toEqual(value);

    // As a release before this format wrote it (Keyv's default serializer escapes a leading ':').
    const legacy = defaultSerialize({ value, expires: Date.now() + 60_000 });
    expect(legacy).toContain('"::colon-first"');
    await redis.command('SET', `pharmacare:cache:v1:${tenantKey('t1', 'legacy')}`, legacy, 'PX', '60000');
    expect(await cache.get(tenantKey('t1', 'legacy'))).toEqual({ value, source: 'redis' });
  });

  it(`rejects a value over the result limit (${MAX_RESULT_BYTES / 1024 / 1024} MiB) and stores nothing`, async () => {
    const { cache } = await instance();
    const key = tenantKey('t1', 'huge');
    await expect(cache.setOrThrow(key, 'x'.repeat(MAX_RESULT_BYTES), { ttlMs: 60_000 })).rejects.toThrow(CacheWriteError);
    await expect(cache.setOrThrow(key, 'x'.repeat(MAX_RESULT_BYTES), { ttlMs: 60_000 })).rejects.toThrow(/over the 8 MiB cache result limit/);
    expect(await redis.command('EXISTS', `pharmacare:cache:v1:${key}`)).toBe('0');
    expect(await cache.get(key)).toBeUndefined();
  });

  it('rejects when Redis refuses the write (OOM) and when Redis is down, leaving nothing behind', async () => {
    const { app, cache } = await instance({ HEALTH_REDIS_GRACE_SECONDS: '60' });
    const key = tenantKey('t1', 'result');
    await redis.command('CONFIG', 'SET', 'maxmemory', '1');
    await expect(cache.setOrThrow(key, { total: 1 }, { ttlMs: 60_000, tags: ['tenant:t1:reports'] })).rejects.toThrow(/Redis refused it \(.*OOM/);
    await redis.command('CONFIG', 'SET', 'maxmemory', '0');
    expect(await redis.command('EXISTS', `pharmacare:cache:v1:${key}`)).toBe('0');
    expect(await cache.get(key)).toBeUndefined();

    await redis.kill();
    const connections = app.get(RedisConnections);
    await until(
      async () => connections.status('command').state,
      (state) => state !== 'ready',
      5_000,
      20,
    );
    await expect(cache.setOrThrow(key, { total: 1 }, { ttlMs: 60_000 })).rejects.toThrow('Redis is unreachable');
    expect(await cache.get(key)).toBeUndefined();
  });
});
