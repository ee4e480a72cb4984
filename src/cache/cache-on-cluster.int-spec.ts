import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { INestApplication, Module } from '@nestjs/common';
import type { Cache } from 'cache-manager';
import calculateSlot from 'cluster-key-slot';
import { CapturingLogger } from '../../test/support/capturing-logger';
import { initTestApp } from '../../test/support/nest-app';
import { RedisCluster } from '../../test/support/redis-cluster';
import { stopAllRedisServers } from '../../test/support/redis-server';
import { until } from '../../test/support/until';
import { ConfigModule, loadConfig } from '../config';
import { HealthModule } from '../health';
import { RedisModule } from '../redis';
import { tenantKey, tenantTag } from './cache-keys';
import { CacheModule } from './cache.module';
import { CacheService } from './cache.service';

let cluster: RedisCluster;
const apps: INestApplication[] = [];
const logger = new CapturingLogger();

/** Two tenants whose hash tags fall on different masters, so any command mixing their keys would be CROSSSLOT. */
let tenants: [string, string];

async function instance(): Promise<{ cache: CacheService; manager: Cache }> {
  const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true' });
  @Module({ imports: [ConfigModule.forRoot(config), RedisModule, HealthModule, CacheModule] })
  class ClusterCacheModule {}
  const app = await initTestApp(ClusterCacheModule, logger);
  apps.push(app);
  return { cache: app.get(CacheService), manager: app.get<Cache>(CACHE_MANAGER) };
}

/** Every key of every master, by master port. */
async function keysByNode(): Promise<Map<number, string[]>> {
  const found = new Map<number, string[]>();
  for (const node of cluster.nodes) found.set(node.port, (await node.command('KEYS', '*')).split('\n').filter(Boolean));
  return found;
}

async function masterOfSlot(slot: number): Promise<number> {
  const slots = JSON.parse(await cluster.nodes[0].command('--json', 'CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
  const range = slots.find(([from, to]) => slot >= from && slot <= to);
  if (!range) throw new Error(`no master serves slot ${slot}`);
  return range[2][1];
}

beforeAll(async () => {
  cluster = await RedisCluster.start();
  // Pick the second tenant on another master than the first: the point of per-tenant hash tags.
  const first = 'pharmacy-1';
  const firstMaster = await masterOfSlot(calculateSlot(`{t:${first}}`));
  for (let index = 2; ; index++) {
    const candidate = `pharmacy-${index}`;
    if ((await masterOfSlot(calculateSlot(`{t:${candidate}}`))) !== firstMaster) {
      tenants = [first, candidate];
      break;
    }
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await cluster?.stop();
  await stopAllRedisServers();
});

describe('the cache on a Redis Cluster (REDIS_CLUSTER=true)', () => {
  it("stores each tenant's entry, compute lock and tag index under its hash tag, on that tenant's master", async () => {
    const { cache } = await instance();
    for (const tenant of tenants) {
      const loaded = await cache.getOrSet(tenantKey(tenant, 'stock'), async () => ({ tenant }), { ttlMs: 60_000, tags: [tenantTag(tenant, 'stock')] });
      expect(loaded).toEqual({ value: { tenant }, source: 'loader' });
    }
    const byNode = await keysByNode();
    for (const tenant of tenants) {
      const master = await masterOfSlot(calculateSlot(`{t:${tenant}}`));
      const own = byNode.get(master) ?? [];
      expect(own).toContain(`pharmacare:cache:{t:${tenant}}:v1:t:${tenant}:stock`);
      expect(own).toContain(`pharmacare:cache-tags:{t:${tenant}}:tenant:${tenant}:stock`);
      // The lock was released by the same script that stored the entry: it was in the entry's slot.
      expect(own.filter((key) => key.includes('cache-lock'))).toEqual([]);
    }
  });

  it("invalidates two tenants' tags at once, on every instance's memory tier, though their keys live on different masters", async () => {
    const [writer, reader] = await Promise.all([instance(), instance()]);
    const keys = tenants.map((tenant) => tenantKey(tenant, 'reorders'));
    for (const [index, tenant] of tenants.entries()) await writer.cache.set(keys[index], { tenant }, { ttlMs: 60_000, tags: [tenantTag(tenant, 'reorders')] });
    // The reader copies both into its memory tier.
    for (const key of keys) expect((await reader.cache.get(key))?.source).toBe('redis');
    for (const key of keys) expect((await reader.cache.get(key))?.source).toBe('memory');

    await writer.cache.invalidateTags(tenants.map((tenant) => tenantTag(tenant, 'reorders')));

    for (const key of keys)
      await until(
        async () => reader.cache.get(key),
        (found) => found === undefined,
        5_000,
      );
    const left = [...(await keysByNode()).values()].flat().filter((key) => key.includes('reorders'));
    expect(left).toEqual([]);
    expect(writer.cache.mode()).toBe('redis+memory');
  });

  it("answers cache-manager's multi-key calls over tenants of different masters, one command per hash slot", async () => {
    const { manager } = await instance();
    const entries = tenants.map((tenant) => ({ key: tenantKey(tenant, 'multi'), value: { tenant }, ttl: 60_000 }));
    await manager.mset(entries);
    expect(await manager.mget(entries.map(({ key }) => key))).toEqual(tenants.map((tenant) => ({ tenant })));
    await manager.mdel(entries.map(({ key }) => key));
    const left = [...(await keysByNode()).values()].flat().filter((key) => key.includes(':multi'));
    expect(left).toEqual([]);
  });

  it("clears the cache on every master, and nothing but the cache's keys", async () => {
    const { cache, manager } = await instance();
    for (const tenant of tenants) await cache.set(tenantKey(tenant, 'doomed'), { tenant }, { ttlMs: 60_000 });
    const queueMaster = await masterOfSlot(calculateSlot('{pharmacare}'));
    await cluster.nodes.find((node) => node.port === queueMaster)?.command('SET', '{pharmacare}:jobs:id', '41');
    await manager.clear();
    const all = [...(await keysByNode()).values()].flat();
    expect(all.filter((key) => key.startsWith('pharmacare:cache:'))).toEqual([]);
    expect(all).toContain('{pharmacare}:jobs:id');
  });

  it("refuses to tag an entry with another tenant's tag, which the cluster could not write in one script, and stays usable", async () => {
    const { cache } = await instance();
    const [own, other] = tenants;
    await expect(cache.set(tenantKey(own, 'mixed'), { own }, { ttlMs: 60_000, tags: [tenantTag(other, 'stock')] })).rejects.toThrow(
      /cannot tag .* on a Redis Cluster: an entry's tags must be its own tenant's/,
    );
    expect(cache.mode()).toBe('redis+memory');
    expect(await cache.set(tenantKey(own, 'mixed'), { own }, { ttlMs: 60_000, tags: [tenantTag(own, 'stock')] })).toBe(true);
  });
});
