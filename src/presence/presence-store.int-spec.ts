import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import { RedisCluster } from '../../test/support/redis-cluster';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { definePresenceScripts, PresenceKeys } from './presence.scripts';
import { PresenceStore, ReleasedUsers } from './presence-store';

const LONG_LEASE_MS = 60_000;
const SHORT_LEASE_MS = 100;

let client: Redis | Cluster;
let clusterLayout: boolean;
let cluster: RedisCluster | undefined;
let stores = 0;
/** Each test has a registry of its own: instances of one test must not claim those another left behind. */
let root = '';
let tests = 0;

afterAll(async () => {
  await cluster?.stop();
  await stopAllRedisServers();
});

const LAYOUTS: Array<[string, () => Promise<void>]> = [
  [
    'one Redis',
    async () => {
      client = new Redis((await RedisServer.start()).url());
      clusterLayout = false;
    },
  ],
  [
    'a Redis Cluster',
    async () => {
      // Here Redis refuses (CROSSSLOT) a script whose KEYS span hash slots: every test below also checks that each script keeps to one.
      cluster = await RedisCluster.start();
      client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0].port }]);
      clusterLayout = true;
    },
  ],
];

function store(leaseMs = LONG_LEASE_MS): PresenceStore {
  stores += 1;
  return new PresenceStore(client, root, clusterLayout, `instance-${stores}`, leaseMs);
}

/** Every offline told, as `tenant/user`, in the order told. */
function recorder(): { told: string[]; released: ReleasedUsers } {
  const told: string[] = [];
  return { told, released: (tenantId, userIds) => told.push(...userIds.map((userId) => `${tenantId}/${userId}`)) };
}

/** Where no instance of the release before this layout ever ran, the heartbeat has nobody of theirs to release. */
const noPreviousRelease: ReleasedUsers = (tenantId) => {
  throw new Error(`released a previous release's users of ${tenantId}`);
};

const leaseRunsOut = () => new Promise((resolve) => setTimeout(resolve, SHORT_LEASE_MS + 50));

/** A heartbeat learns the live instances; the next one may claim those whose lease ran out. */
async function heartbeatTwice(survivor: PresenceStore, holding: string[] = []): Promise<string[]> {
  await survivor.heartbeat(new Set(holding), noPreviousRelease);
  const { claims } = await survivor.heartbeat(new Set(holding), noPreviousRelease);
  return claims;
}

/** `reaper` learns the live instances, their leases run out (short ones), and it reaps them: what it told. */
async function reapOnceLeasesRunOut(reaper: PresenceStore): Promise<string[]> {
  await reaper.heartbeat(new Set(), noPreviousRelease);
  await leaseRunsOut();
  const { told, released } = recorder();
  await reaper.reap(await heartbeatTwice(reaper), released);
  return told;
}

describe.each(LAYOUTS)('PresenceStore on %s', (layout, connect) => {
  let keys: PresenceKeys;

  beforeAll(async () => {
    await connect();
  }, 60_000);

  beforeEach(() => {
    tests += 1;
    root = `spec:${tests}:presence`;
    keys = new PresenceKeys(root, clusterLayout);
  });

  afterAll(() => client?.disconnect());

  it('announces only the first holder coming and the last one going', async () => {
    const one = store();
    const two = store();
    const first = await one.acquire('t|1', 'u:1');
    expect(first).toMatchObject({ wentOnline: true, reincarnated: false });
    expect(await one.acquire('t|1', 'u:1')).toEqual({ wentOnline: false, sinceMs: first.sinceMs, reincarnated: false });
    expect(await two.acquire('t|1', 'u:1')).toEqual({ wentOnline: false, sinceMs: first.sinceMs, reincarnated: false });
    expect(await one.online('t|1')).toEqual({ 'u:1': String(first.sinceMs) });
    expect(await one.release('t|1', 'u:1')).toBe(false);
    expect(await one.release('t|1', 'u:1')).toBe(false);
    expect(await two.release('t|1', 'u:1')).toBe(true);
    expect(await one.online('t|1')).toEqual({});
    expect(await client.hgetall(keys.holders('t|1'))).toEqual({});
  });

  it('lets exactly one survivor reap a dead instance, releasing only users nobody else holds', async () => {
    const dead = store(SHORT_LEASE_MS);
    const survivorA = store();
    const survivorB = store();
    await dead.acquire('pharmacy', 'alone');
    await dead.acquire('pharmacy', 'shared');
    await survivorA.acquire('pharmacy', 'shared');
    await dead.acquire('other', 'x"y');
    await Promise.all([survivorA.heartbeat(new Set(['pharmacy']), noPreviousRelease), survivorB.heartbeat(new Set(), noPreviousRelease)]);
    await leaseRunsOut();

    const [a, b] = await Promise.all([survivorA.heartbeat(new Set(['pharmacy']), noPreviousRelease), survivorB.heartbeat(new Set(), noPreviousRelease)]);
    expect([...a.claims, ...b.claims]).toEqual([dead.instanceId]);
    const { told, released } = recorder();
    await Promise.all([survivorA.reap(a.claims, released), survivorB.reap(b.claims, released)]);

    expect(told.sort()).toEqual(['other/x"y', 'pharmacy/alone']);
    expect(await client.smembers(keys.live)).not.toContain(dead.instanceId);
    expect(await client.exists(keys.tenants(dead.instanceId))).toBe(0);
    expect(await client.exists(keys.orphans(dead.instanceId))).toBe(0);
    expect(await client.hget(keys.reapers, dead.instanceId)).toBeNull();
    expect(await client.exists(keys.held(dead.instanceId, 'pharmacy'))).toBe(0);
    expect(Object.keys(await survivorA.online('pharmacy'))).toEqual(['shared']);
    expect(await client.hget(keys.holders('pharmacy'), 'shared')).toBe('1');
  });

  it('tells every offline exactly once when the reaper dies half-way through a reap', async () => {
    const dead = store(SHORT_LEASE_MS);
    const reaper = store(SHORT_LEASE_MS);
    const heir = store();
    for (const tenantId of ['t1', 't2', 't3']) await dead.acquire(tenantId, `user-of-${tenantId}`);
    await reaper.acquire('t1', 'reaper-user');
    await heir.heartbeat(new Set(), noPreviousRelease);
    await reaper.heartbeat(new Set(['t1']), noPreviousRelease);
    await leaseRunsOut();
    // The reaper renews its own lease and claims the dead instance, then reaps one tenant of three and dies.
    expect(await reaper.heartbeat(new Set(['t1']), noPreviousRelease)).toEqual({ reincarnated: false, claims: [dead.instanceId] });
    const scripts = definePresenceScripts(client);
    const byReaper = (await scripts.presenceReap(...keys.ofInstanceInTenant(dead.instanceId, 't1'), dead.instanceId, String(LONG_LEASE_MS))) as string[];
    expect(byReaper).toEqual(['user-of-t1']);
    await leaseRunsOut();

    const claims = await heartbeatTwice(heir);
    expect(claims.sort()).toEqual([dead.instanceId, reaper.instanceId].sort());
    const { told, released } = recorder();
    await heir.reap(claims, released);
    expect(told.sort()).toEqual(['t1/reaper-user', 't2/user-of-t2', 't3/user-of-t3']);
    for (const tenantId of ['t1', 't2', 't3']) expect(await heir.online(tenantId)).toEqual({});
    expect(await client.hgetall(keys.reapers)).toEqual({});
    // Nothing is left to claim: a reap that already ran is not told twice.
    expect((await heir.heartbeat(new Set(), noPreviousRelease)).claims).toEqual([]);
  });

  it('fences out an instance reaped while alive: its late write is refused and it comes back as a new incarnation', async () => {
    const stalled = store(SHORT_LEASE_MS);
    const reaper = store();
    await stalled.acquire('pharmacy', 'kept');
    const oldId = stalled.instanceId;
    expect(await reapOnceLeasesRunOut(reaper)).toEqual(['pharmacy/kept']);

    // A write it sent before it learnt, arriving late, must not make the user online under an instance nobody will reap.
    const scripts = definePresenceScripts(client);
    expect(await scripts.presenceAcquire(...keys.ofInstanceInTenant(oldId, 'pharmacy'), oldId, 'kept', String(Date.now()))).toEqual([0]);
    expect(await client.hgetall(keys.holders('pharmacy'))).toEqual({});

    const back = await stalled.acquire('pharmacy', 'kept');
    expect(back).toMatchObject({ wentOnline: true, reincarnated: true });
    expect(stalled.instanceId).not.toBe(oldId);
    expect(await client.smembers(keys.live)).toContain(stalled.instanceId);
    expect(Object.keys(await stalled.online('pharmacy'))).toEqual(['kept']);
  });

  it('tells an instance whose heartbeat finds it reaped to acquire its users again', async () => {
    const stalled = store(SHORT_LEASE_MS);
    const reaper = store();
    await stalled.acquire('pharmacy', 'napping');
    expect(await reapOnceLeasesRunOut(reaper)).toEqual(['pharmacy/napping']);
    expect(await stalled.heartbeat(new Set(['pharmacy']), noPreviousRelease)).toEqual({ reincarnated: true, claims: [] });
    expect(await stalled.acquire('pharmacy', 'napping')).toMatchObject({ wentOnline: true, reincarnated: false });
  });

  it('renews the lease of an instance that sat idle, so a busy neighbour does not reap its new users', async () => {
    const napper = store(SHORT_LEASE_MS);
    const neighbour = store();
    await napper.acquire('pharmacy', 'earlier');
    await neighbour.heartbeat(new Set(), noPreviousRelease);
    // Idle instances send no heartbeat: the napper's lease lapses while it stays listed.
    await leaseRunsOut();
    await napper.acquire('pharmacy', 'back');
    expect((await neighbour.heartbeat(new Set(), noPreviousRelease)).claims).toEqual([]);
    expect(Object.keys(await napper.online('pharmacy')).sort()).toEqual(['back', 'earlier']);
  });

  it('registers a tenant once however many of its users connect at once, and rejoins once however many find it reaped', async () => {
    const registrations = jest.spyOn(definePresenceScripts(client), 'presenceRegister');
    const busy = store(SHORT_LEASE_MS);
    const storm = await Promise.all(Array.from({ length: 20 }, (_, i) => busy.acquire('storm', `user-${i}`)));
    expect(storm.filter((acquired) => acquired.wentOnline)).toHaveLength(20);
    expect(registrations).toHaveBeenCalledTimes(1);

    expect(await reapOnceLeasesRunOut(store())).toHaveLength(20);
    registrations.mockClear();
    const back = await Promise.all(Array.from({ length: 20 }, (_, i) => busy.acquire('storm', `user-${i}`)));
    expect(back.filter((acquired) => acquired.reincarnated)).toHaveLength(1);
    expect(busy.instanceId).toMatch(/\.1$/);
    // One refused (the old incarnation), one fresh.
    expect(registrations).toHaveBeenCalledTimes(2);
    expect(Object.keys(await busy.online('storm'))).toHaveLength(20);
    registrations.mockRestore();
  });

  it('forgets a tenant it no longer holds anyone in, so its reap visits only the tenants it holds users in', async () => {
    const instance = store();
    await instance.acquire('kept', 'a');
    await instance.acquire('left', 'b');
    await instance.release('left', 'b');
    await instance.heartbeat(new Set(['kept']), noPreviousRelease);
    expect(await client.smembers(keys.tenants(instance.instanceId))).toEqual(['kept']);
    // A user of the forgotten tenant coming back registers it again.
    await instance.acquire('left', 'b');
    expect((await client.smembers(keys.tenants(instance.instanceId))).sort()).toEqual(['kept', 'left']);
  });

  // No release before this layout ran on a Cluster.
  (layout === 'one Redis' ? it : it.skip)('on one Redis, reaps dead instances of the release before this layout, which kept one held set per instance', async () => {
    // What an instance of that release, SIGKILLed during the rolling deploy, leaves: listed, no lease, holding two users.
    const old = `${root}:instances`;
    await client.sadd(old, 'old-dead');
    await client.sadd(`${root}:held:old-dead`, JSON.stringify(['pharmacy', 'gone']), JSON.stringify(['pharmacy', 'shared']));
    await client.hset(keys.holders('pharmacy'), 'gone', 1, 'shared', 2);
    await client.hset(keys.online('pharmacy'), 'gone', 1, 'shared', 1);
    const { told, released } = recorder();
    await store().heartbeat(new Set(), released);
    expect(told).toEqual(['pharmacy/gone']);
    expect(await client.hgetall(keys.holders('pharmacy'))).toEqual({ shared: '1' });
    expect(Object.keys(await client.hgetall(keys.online('pharmacy')))).toEqual(['shared']);
    expect(await client.exists(old, `${root}:held:old-dead`)).toBe(0);
  });

  it('once idle, leaves the registry: nobody has a dead instance to reap when its lease runs out, and it comes back fresh', async () => {
    const quiet = store(SHORT_LEASE_MS);
    const busy = store();
    await quiet.acquire('a', 'came');
    await busy.heartbeat(new Set(), noPreviousRelease);
    expect(await quiet.release('a', 'came')).toBe(true);
    await quiet.idle();
    await leaseRunsOut();
    expect(await heartbeatTwice(busy)).toEqual([]);
    expect(await client.exists(keys.lease(quiet.instanceId), keys.tenants(quiet.instanceId))).toBe(0);
    expect(await quiet.acquire('a', 'came')).toEqual({ wentOnline: true, sinceMs: expect.any(Number), reincarnated: false });
    expect(await client.smembers(keys.live)).toContain(quiet.instanceId);
  });

  it('ignores the reply of a heartbeat still in flight when it went idle: the next user registers it, no rejoin', async () => {
    const quiet = store();
    await quiet.acquire('a', 'last');
    await quiet.release('a', 'last');
    const beat = quiet.heartbeat(new Set(), noPreviousRelease);
    await quiet.idle();
    await beat;
    expect(await quiet.acquire('a', 'next')).toMatchObject({ wentOnline: true, reincarnated: false });
    expect(await client.smembers(keys.live)).toContain(quiet.instanceId);
  });

  it('on a graceful leave, releases every tenant and leaves the registry', async () => {
    const leaving = store();
    const staying = store();
    await leaving.acquire('a', 'only-here');
    await leaving.acquire('b', 'both');
    await staying.acquire('b', 'both');
    const { told, released } = recorder();
    expect(await leaving.leave(released)).toBe(1);
    expect(told).toEqual(['a/only-here']);
    expect(await client.smembers(keys.live)).not.toContain(leaving.instanceId);
    expect(await client.exists(keys.lease(leaving.instanceId), keys.tenants(leaving.instanceId))).toBe(0);
    expect(Object.keys(await staying.online('b'))).toEqual(['both']);
  });
});
