import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, INestApplication, Module, Query, UseGuards } from '@nestjs/common';
import jwt from 'jsonwebtoken';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { CapturingLogger } from '../../test/support/capturing-logger';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { until } from '../../test/support/until';
import { AuthModule, CurrentPrincipal, JwtAuthGuard } from '../auth';
import type { Principal } from '../auth';
import { ConfigModule, loadConfig } from '../config';
import { HealthModule } from '../health';
import { RedisConnections, RedisModule } from '../redis';
import { CacheModule } from './cache.module';
import { CacheService } from './cache.service';
import { tenantKey } from './cache-keys';
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

async function instance(env: Record<string, string> = {}): Promise<{ app: INestApplication; cache: CacheService }> {
  const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: redis.url(), JWT_SECRET, ...env });
  @Module({ imports: [ConfigModule.forRoot(config), RedisModule, HealthModule, CacheModule, AuthModule], controllers: [StockController, ShelfController] })
  class CacheTestModule {}
  const moduleRef = await Test.createTestingModule({ imports: [CacheTestModule] }).setLogger(logger).compile();
  const app = moduleRef.createNestApplication({ logger });
  await app.init();
  apps.push(app);
  const connections = app.get(RedisConnections);
  await until(async () => connections.statuses().every((status) => status.state === 'ready'), Boolean);
  return { app, cache: app.get(CacheService) };
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
});
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
    await until(() => cache.get(key), (hit) => hit === undefined, 5_000, 50);
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
    await until(() => b.cache.get(inventory), (hit) => hit === undefined, 5_000, 20);
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
    await until(async () => connections.status('command').state, (state) => state !== 'ready', 5_000, 20);

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
