import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import { RedisCluster } from '../../test/support/redis-cluster';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { definePresenceScripts, PresenceKeys, PresenceRedis } from './presence.scripts';

let PREFIX: string;
let redis: PresenceRedis;
let cluster: RedisCluster | undefined;

afterAll(async () => {
  await cluster?.stop();
  await stopAllRedisServers();
});

/**
 * The root as config.redis.presencePrefix makes it. On a Cluster the reaping scripts touch keys they derive (a dead
 * instance's users); the root's hash tag keeps those in the slot of the keys they are given.
 */
const LAYOUTS: Array<[string, () => Promise<{ client: Redis | Cluster; root: string }>]> = [
  ['one Redis', async () => ({ client: new Redis((await RedisServer.start()).url()), root: 'spec' })],
  [
    'a Redis Cluster',
    async () => {
      cluster = await RedisCluster.start();
      return { client: new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0].port }]), root: '{spec:presence}' };
    },
  ],
];

function acquire(keys: PresenceKeys, tenantId: string, userId: string, leaseMs = 60_000): Promise<[number, number, string]> {
  return redis.presenceAcquire(
    keys.instances,
    keys.lease,
    keys.held,
    keys.holders(tenantId),
    keys.online(tenantId),
    keys.instanceId,
    String(leaseMs),
    PresenceKeys.member(tenantId, userId),
    userId,
    String(Date.now()),
  ) as Promise<[number, number, string]>;
}

function release(keys: PresenceKeys, tenantId: string, userId: string): Promise<number> {
  return redis.presenceRelease(keys.held, keys.holders(tenantId), keys.online(tenantId), PresenceKeys.member(tenantId, userId), userId) as Promise<number>;
}

function heartbeat(keys: PresenceKeys, leaseMs = 60_000): Promise<[number, ...string[]]> {
  return redis.presenceHeartbeat(keys.instances, keys.lease, keys.instanceId, String(leaseMs), String(Date.now()), PREFIX) as Promise<[number, ...string[]]>;
}

describe.each(LAYOUTS)('presence scripts on %s', (_layout, connect) => {
  beforeAll(async () => {
    const { client, root } = await connect();
    redis = definePresenceScripts(client);
    PREFIX = root;
  }, 60_000);

  afterAll(() => redis?.disconnect());

  it('announce only the first holder coming and the last one going', async () => {
    const one = new PresenceKeys(PREFIX, 'one');
    const two = new PresenceKeys(PREFIX, 'two');
    const [registered, online, since] = await acquire(one, 't|1', 'u:1');
    expect([registered, online]).toEqual([1, 1]);
    expect(await acquire(one, 't|1', 'u:1')).toEqual([0, 0, since]);
    expect(await acquire(two, 't|1', 'u:1')).toEqual([1, 0, since]);
    expect(await redis.hgetall(one.online('t|1'))).toEqual({ 'u:1': since });
    expect(await release(one, 't|1', 'u:1')).toBe(0);
    expect(await release(one, 't|1', 'u:1')).toBe(0);
    expect(await release(two, 't|1', 'u:1')).toBe(1);
    expect(await redis.hgetall(one.online('t|1'))).toEqual({});
    expect(await redis.hgetall(one.holders('t|1'))).toEqual({});
  });

  it('lets exactly one survivor reap a dead instance, releasing only users nobody else holds', async () => {
    const dead = new PresenceKeys(PREFIX, 'dead');
    const survivorA = new PresenceKeys(PREFIX, 'survivor-a');
    const survivorB = new PresenceKeys(PREFIX, 'survivor-b');
    await Promise.all([heartbeat(survivorA), heartbeat(survivorB)]);
    await acquire(dead, 'pharmacy', 'alone', 100);
    await acquire(dead, 'pharmacy', 'shared', 100);
    await acquire(survivorA, 'pharmacy', 'shared');
    await acquire(dead, 'other', 'x"y', 100);
    await new Promise((resolve) => setTimeout(resolve, 150));

    const [first, second] = await Promise.all([heartbeat(survivorA), heartbeat(survivorB)]);
    const released = [...first.slice(1), ...second.slice(1)];
    expect(first.slice(1).length === 0 || second.slice(1).length === 0).toBe(true);
    expect(released.sort()).toEqual(['alone', 'other', 'pharmacy', 'x"y'].sort());
    expect(await redis.smembers(dead.instances)).toEqual(expect.not.arrayContaining(['dead']));
    expect(await redis.exists(dead.held)).toBe(0);
    expect(Object.keys(await redis.hgetall(dead.online('pharmacy')))).toEqual(['shared']);
    expect(await redis.hget(dead.holders('pharmacy'), 'shared')).toBe('1');
  });

  it('tells an instance that was reaped while alive to acquire its users again', async () => {
    const stalled = new PresenceKeys(PREFIX, 'stalled');
    await acquire(stalled, 'pharmacy', 'kept', 100);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await heartbeat(new PresenceKeys(PREFIX, 'reaper'));
    const [registered] = await heartbeat(stalled);
    expect(registered).toBe(1);
    expect(await acquire(stalled, 'pharmacy', 'kept')).toEqual([0, 1, expect.any(String)]);
  });

  it('renews the lease of an instance that sat idle, so a busy neighbour does not reap its new users', async () => {
    const napper = new PresenceKeys(PREFIX, 'napper');
    const neighbour = new PresenceKeys(PREFIX, 'neighbour');
    await heartbeat(napper, 100);
    await heartbeat(neighbour);
    // Idle instances send no heartbeat: the napper's lease lapses while it stays listed.
    await new Promise((resolve) => setTimeout(resolve, 150));
    await acquire(napper, 'pharmacy', 'back', 60_000);
    const [, ...released] = await heartbeat(neighbour);
    expect(released).toEqual([]);
    expect(Object.keys(await redis.hgetall(napper.online('pharmacy')))).toContain('back');
  });
});
