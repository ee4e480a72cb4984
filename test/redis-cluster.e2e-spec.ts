import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import calculateSlot from 'cluster-key-slot';
import { setTimeout as delay } from 'node:timers/promises';
import { AppProcess, type AppResponse } from './support/app-process';
import { parsePrometheusText, total } from './support/prometheus-text';
import { RedisCluster } from './support/redis-cluster';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { getReorder, postReorder, settledReorder } from './support/reorders-client';
import { getReport, JWT_SECRET, postReport, settledReport, tokenFor, type Sale } from './support/reports-client';
import { PresenceClient } from './support/socket-client';
import { until } from './support/until';

/**
 * The app on a Redis Cluster of three masters (no replicas), REDIS_CLUSTER=true: the report flow, the cache's tags,
 * presence and /health across instances, with keys checked on the nodes themselves; then a master killed, and a
 * single Redis mistaken for a cluster.
 */

const TTL_SECONDS = 3;
const GRACE_SECONDS = 1;
/** Other suites share this 2-core machine: a boot can take several times its usual 2 s. */
const BOOT_TIMEOUT_MS = 40_000;

interface HealthBody {
  status: string;
  details: Record<string, Record<string, unknown> & { status: string }>;
}

const health = (response: AppResponse) => response.body as HealthBody;

// By hand: AMOX 2 x 3.50 = 7.00 on 11-01; PARA 5 x 0.70 = 3.50 on 11-02.
const sales: Sale[] = [
  { sku: 'AMOX-500', quantity: 2, unitPrice: 3.5, soldAt: '2026-11-01T09:00:00Z' },
  { sku: 'PARA-1G', quantity: 5, unitPrice: 0.7, soldAt: '2026-11-02T10:00:00Z' },
];
const expectedSummary = {
  totalRevenue: 10.5,
  totalUnits: 7,
  bySku: [
    { sku: 'AMOX-500', units: 2, revenue: 7 },
    { sku: 'PARA-1G', units: 5, revenue: 3.5 },
  ],
  byDay: [
    { day: '2026-11-01', units: 2, revenue: 7 },
    { day: '2026-11-02', units: 5, revenue: 3.5 },
  ],
};
const stock = { salesWindowDays: 28, items: [{ sku: 'AMOX-500', onHand: 10, onOrder: 5, leadTimeDays: 7, unitsSold: 56 }] };

let cluster: RedisCluster;
let env: Record<string, string>;
let web: AppProcess;
let webB: AppProcess;
let worker: AppProcess;
const apps: AppProcess[] = [];
const clients: PresenceClient[] = [];

async function startApp(extra: Record<string, string>): Promise<AppProcess> {
  const app = await AppProcess.start({ ...env, ...extra }, { listenTimeoutMs: BOOT_TIMEOUT_MS });
  apps.push(app);
  // On a loaded machine a role's first slot refresh can time out: it then comes up as "recovered after".
  await Promise.all(['command', 'queue', 'subscriber'].map((role) => app.waitForLine(new RegExp(`\\[Redis:${role}\\] (ready in|recovered after)`), BOOT_TIMEOUT_MS)));
  return app;
}

async function connect(app: AppProcess, userId: string, tenantId: string): Promise<PresenceClient> {
  const client = await PresenceClient.connect(app, tokenFor(userId, tenantId));
  clients.push(client);
  return client;
}

/** Every key on one node, by SCAN (redis-cli --scan). */
async function keysOn(node: RedisServer): Promise<string[]> {
  return (await node.command('--scan')).split('\n').filter((key) => key !== '');
}

/** Which node serves each slot, from CLUSTER NODES as the first live node sees it. */
async function slotOwners(): Promise<(slot: number) => RedisServer> {
  const live = cluster.nodes.find((node) => node.pid !== undefined);
  if (!live) throw new Error('no live cluster node');
  const ranges: Array<{ from: number; to: number; node: RedisServer }> = [];
  for (const line of (await live.command('CLUSTER', 'NODES')).split('\n')) {
    const fields = line.trim().split(' ');
    if (fields.length < 9) continue;
    const port = Number(/:(\d+)@/.exec(fields[1])?.[1]);
    const node = cluster.nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`CLUSTER NODES names a node the harness did not start: ${line}`);
    for (const range of fields.slice(8)) {
      if (range.startsWith('[')) continue; // a slot being migrated
      const [from, to = from] = range.split('-').map(Number);
      ranges.push({ from, to, node });
    }
  }
  return (slot) => {
    const owner = ranges.find((range) => slot >= range.from && slot <= range.to)?.node;
    if (!owner) throw new Error(`slot ${slot} has no master`);
    return owner;
  };
}

/** The slot of a tenant's cache keys: their hash tag is {t:<tenant>}. */
const tenantSlot = (tenantId: string) => calculateSlot(`{t:${tenantId}}`);

/** `count` tenants (prefix-1, prefix-2, ...) whose cache keys live on `count` different masters. */
async function tenantsOnDistinctMasters(prefix: string, count: number): Promise<string[]> {
  const owner = await slotOwners();
  const picked = new Map<RedisServer, string>();
  for (let index = 1; picked.size < count && index < 1000; index++) {
    const tenant = `${prefix}-${index}`;
    const node = owner(tenantSlot(tenant));
    if (!picked.has(node)) picked.set(node, tenant);
  }
  if (picked.size < count) throw new Error(`no ${count} tenants on distinct masters`);
  return [...picked.values()];
}

async function metric(app: AppProcess, name: string, labels: Record<string, string>): Promise<number> {
  return total(parsePrometheusText((await app.request('/metrics')).text), name, labels);
}

const about = (userId: string) => (event: { userId: string }) => event.userId === userId;

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all(apps.map((app) => app.stop()));
  await cluster?.stop();
  await stopAllRedisServers();
});

describe('on a 3-master Redis Cluster (REDIS_CLUSTER=true)', () => {
  beforeAll(async () => {
    cluster = await RedisCluster.start();
    env = {
      REDIS_URL: cluster.url(),
      REDIS_CLUSTER: 'true',
      JWT_SECRET,
      PRESENCE_TTL_SECONDS: String(TTL_SECONDS),
      PRESENCE_OFFLINE_GRACE_SECONDS: String(GRACE_SECONDS),
    };
    [web, webB, worker] = await Promise.all([startApp({ APP_ROLE: 'web' }), startApp({ APP_ROLE: 'web' }), startApp({ APP_ROLE: 'worker' })]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(apps.splice(0).map((app) => app.stop()));
    await cluster?.stop();
  });

  it('runs the report flow from a web instance to a worker, tells the author, and spreads keys as designed', async () => {
    const tenants = await tenantsOnDistinctMasters('pharmacy', 3);
    const author = await connect(web, 'u1', tenants[0]);
    const tokens = tenants.map((tenant) => tokenFor('u1', tenant));

    // Paused, the worker cannot finish a report before web reads its state back: the answer is the new-report one.
    const posted = await worker.whilePaused(() => Promise.all(tokens.map((token) => postReport(web, token, sales))));
    for (const response of posted) expect(response).toMatchObject({ status: 202, body: { status: 'queued' } });
    const ids = posted.map((response) => (response.body as { id: string }).id);

    expect(await author.waitFor<{ id: string }>('report:completed', (payload) => payload.id === ids[0], 20_000)).toEqual({ id: ids[0] });
    for (const [index, token] of tokens.entries()) {
      expect((await settledReport(web, token, ids[index])).body).toEqual({ id: ids[index], status: 'completed', result: expectedSummary });
    }
    // Another pharmacy cannot read it, whichever shard its keys are on.
    expect((await getReport(web, tokens[1], ids[0])).status).toBe(404);

    const owner = await slotOwners();
    const keysByNode = new Map(await Promise.all(cluster.nodes.map(async (node) => [node, await keysOn(node)] as const)));
    const everyKey = [...keysByNode.values()].flat();

    // BullMQ's keys share the {pharmacare} slot, so its scripts never cross slots; none keep the single-Redis layout.
    const queueKeys = everyKey.filter((key) => /^(\{pharmacare\}|pharmacare):jobs:/.test(key));
    expect(queueKeys.length).toBeGreaterThan(0);
    for (const key of queueKeys) expect(key.startsWith('{pharmacare}:jobs:')).toBe(true);
    const queueNode = owner(calculateSlot('{pharmacare}'));
    expect(keysByNode.get(queueNode)).toEqual(expect.arrayContaining(queueKeys));

    // Each result is on the master of its tenant's slot, carrying {t:<tenant>}: three tenants, three masters.
    const holders = new Set<RedisServer>();
    for (const [index, tenant] of tenants.entries()) {
      const entry = everyKey.filter((key) => key.startsWith('pharmacare:cache:') && key.endsWith(`:report:${ids[index]}`));
      expect(entry).toEqual([`pharmacare:cache:{t:${tenant}}:v1:t:${tenant}:report:${ids[index]}`]);
      const node = owner(tenantSlot(tenant));
      expect(keysByNode.get(node)).toContain(entry[0]);
      expect(keysByNode.get(node)).toContain(`pharmacare:cache-tags:{t:${tenant}}:tenant:${tenant}:reports`);
      holders.add(node);
    }
    expect(holders.size).toBe(3);
    for (const key of everyKey.filter((candidate) => /^pharmacare:cache(-tags|-lock)?:/.test(candidate))) expect(key).toMatch(/^pharmacare:cache(-tags|-lock)?:\{t:[^}]+\}:/);

    // Presence: the registry in its own slot; the author's tenant's online users in that tenant's slot, beside its cache.
    const presenceKeys = everyKey.filter((key) => key.includes('presence'));
    const registryKeys = presenceKeys.filter((key) => key.startsWith('{pharmacare:presence}:'));
    const tenantKeys = presenceKeys.filter((key) => key.startsWith(`pharmacare:presence:{t:${tenants[0]}}:`));
    expect(registryKeys).toEqual(expect.arrayContaining(['{pharmacare:presence}:live']));
    expect(tenantKeys).toEqual(expect.arrayContaining([`pharmacare:presence:{t:${tenants[0]}}:online`, `pharmacare:presence:{t:${tenants[0]}}:holders`]));
    expect(presenceKeys.sort()).toEqual([...registryKeys, ...tenantKeys].sort());
    expect(keysByNode.get(owner(calculateSlot('{pharmacare:presence}')))).toEqual(expect.arrayContaining(registryKeys));
    expect(keysByNode.get(owner(tenantSlot(tenants[0])))).toEqual(expect.arrayContaining(tenantKeys));
  }, 60_000);

  it("invalidates a tenant's tagged entries in the other instance's memory tier too, for tenants on different slots", async () => {
    const tenants = await tenantsOnDistinctMasters('chain', 2);
    const tokens = tenants.map((tenant) => tokenFor('u2', tenant));
    const ids = await Promise.all(tokens.map(async (token) => ((await postReorder(web, token, stock)).body as { id: string }).id));
    for (const app of [web, webB]) {
      for (const [index, token] of tokens.entries()) expect((await settledReorder(app, token, ids[index])).body).toMatchObject({ id: ids[index], status: 'completed' });
    }
    // Read again on web: answered from its memory tier, which is what the invalidation must reach.
    const memoryHits = () => metric(web, 'pharmacare_cache_lookups_total', { tier: 'memory', outcome: 'hit' });
    const hitsBefore = await memoryHits();
    for (const [index, token] of tokens.entries()) expect((await getReorder(web, token, ids[index])).status).toBe(200);
    expect(await memoryHits()).toBe(hitsBefore + tokens.length);

    const owner = await slotOwners();
    const entryKey = (index: number) => `pharmacare:cache:{t:${tenants[index]}}:v1:t:${tenants[index]}:reorder:${ids[index]}`;
    const tagKey = (index: number) => `pharmacare:cache-tags:{t:${tenants[index]}}:tenant:${tenants[index]}:reorders`;
    const exists = async (index: number, key: string) => (await owner(tenantSlot(tenants[index])).command('EXISTS', key)) === '1';
    for (const index of [0, 1]) {
      expect(await exists(index, entryKey(index))).toBe(true);
      expect(await exists(index, tagKey(index))).toBe(true);
    }

    for (const index of [0, 1]) {
      const deleted = await webB.request('/reorders', { method: 'DELETE', headers: { authorization: `Bearer ${tokens[index]}` } });
      expect(deleted.status).toBe(204);
      // Through pub/sub on the cluster: wait for web's memory tier to drop it rather than for a fixed time.
      await until(
        () => getReorder(web, tokens[index], ids[index]),
        (response) => response.status === 404,
        5_000,
        50,
      );
      expect((await getReorder(webB, tokens[index], ids[index])).status).toBe(404);
      expect(await exists(index, entryKey(index))).toBe(false);
      expect(await exists(index, tagKey(index))).toBe(false);
      // The other tenant's entry is untouched until its own DELETE.
      if (index === 0) expect((await getReorder(web, tokens[1], ids[1])).status).toBe(200);
    }
  }, 60_000);

  it('shows a user online on one instance to an observer on another, and offline once, after a SIGKILL and the lease', async () => {
    const victim = await startApp({ APP_ROLE: 'web' });
    const observer = await connect(webB, 'observer', 'presence-tenant');
    const kate = await connect(victim, 'kate', 'presence-tenant');
    await kate.waitFor('presence:snapshot');
    await observer.waitFor('presence:online', about('kate'));
    expect((await observer.request<{ users: Array<{ userId: string }> }>('presence:list')).users.map((user) => user.userId)).toEqual(['kate', 'observer']);

    const killedAt = Date.now();
    victim.signal('SIGKILL');
    await victim.exited;
    await observer.waitFor('presence:offline', about('kate'), (TTL_SECONDS + 3) * 1000);
    const elapsed = Date.now() - killedAt;
    expect(elapsed).toBeLessThanOrEqual(TTL_SECONDS * 1000 + 1_500);
    // Two survivors reap; the script lets only one of them announce it. A second announcement would come at a
    // later heartbeat (every third of the TTL): waiting out two of them is the behaviour under test.
    await delay(((2 * TTL_SECONDS) / 3) * 1000 + 200);
    expect(observer.all('presence:offline', about('kate'))).toHaveLength(1);
    expect(observer.all('presence:online', about('kate'))).toHaveLength(1);
    expect((await observer.request<{ users: Array<{ userId: string }> }>('presence:list')).users.map((user) => user.userId)).toEqual(['observer']);
  }, 60_000);

  it('with the master of the queue slot SIGKILLed: /health degraded naming it, POST /reports 503 with Retry-After at once, and recovery once it is back', async () => {
    const owner = await slotOwners();
    const queueMaster = owner(calculateSlot('{pharmacare}'));
    const deadNode = `127.0.0.1:${queueMaster.port}`;
    const token = tokenFor('u3', 'outage-tenant');
    const roles = ['command', 'queue', 'subscriber'];
    expect((await web.request('/health')).status).toBe(200);

    // No replica: its slots, {pharmacare}'s among them, are lost until it is back.
    await queueMaster.crash();
    const expectDegraded = (response: AppResponse) => {
      expect(response.status).toBe(200);
      for (const role of roles) {
        expect(health(response).details[`redis:${role}`]).toMatchObject({
          status: 'degraded',
          state: 'cluster-degraded',
          shardsDown: [deadNode],
          mastersUp: 2,
          clusterState: expect.any(String),
        });
      }
    };
    expectDegraded(
      await until(
        () => web.request('/health'),
        (response) => roles.every((role) => health(response).details?.[`redis:${role}`]?.state === 'cluster-degraded'),
        10_000,
      ),
    );

    for (let attempt = 0; attempt < 3; attempt++) {
      const started = Date.now();
      const refused = await postReport(web, token, sales);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(5);
    }
    // Still named once the clients have given up on their connections to it (ioredis drops a node whose connection
    // ended from its pool), and before the cluster itself calls the node failed (cluster-node-timeout, 5 s).
    expectDegraded(await web.request('/health'));
    // Once per role and kind of error, however many requests the client redirected to the dead node, and under
    // the node's address, not the seed's.
    const aboutDeadNode = web.matching(new RegExp(`cluster node ${deadNode.replaceAll('.', '\\.')}:`));
    expect(aboutDeadNode.length).toBeGreaterThan(0);
    const kinds = aboutDeadNode.map((line) => `${/\[Redis:([\w-]+)\]/.exec(line)?.[1]} ${/: (connection refused|connection to|no answer)/.exec(line)?.[1]}`);
    expect(new Set(kinds).size).toBe(aboutDeadNode.length);
    expect(aboutDeadNode.some((line) => line.includes(`connection refused by ${deadNode}`))).toBe(true);
    for (const line of aboutDeadNode) expect(line).not.toContain(cluster.url().replace('redis://', ''));

    // Same port, same nodes.conf: it rejoins as the master of its slots (empty: it kept no data), and the app,
    // not restarted, finds it again.
    await queueMaster.relaunch();
    const accepted = await until(
      () => postReport(web, token, sales),
      (response) => response.status !== 503,
      20_000,
      250,
    );
    expect(accepted.status).toBe(202);
    const { id } = accepted.body as { id: string };
    expect((await settledReport(web, token, id)).body).toEqual({ id, status: 'completed', result: expectedSummary });
    const up = await until(
      () => web.request('/health'),
      (response) => response.status === 200 && health(response).status === 'ok',
      15_000,
    );
    for (const role of roles) expect(health(up).details[`redis:${role}`]).toMatchObject({ status: 'up', state: 'ready', mastersUp: 3, clusterState: 'ok' });
  }, 90_000);
});

describe('REDIS_CLUSTER=true on a single Redis', () => {
  it('is refused with one line naming REDIS_CLUSTER, /health 503 at once, POST 503, and no retries or log flood', async () => {
    const single = await RedisServer.start();
    try {
      const app = await AppProcess.start({ REDIS_URL: single.url(), REDIS_CLUSTER: 'true', JWT_SECRET, APP_ROLE: 'all' }, { listenTimeoutMs: BOOT_TIMEOUT_MS });
      apps.push(app);
      const line = await app.waitForLine(/refusing REDIS_URL/);
      expect(line).toMatch(new RegExp(`REDIS_CLUSTER=true but 127\\.0\\.0\\.1:${single.port} is not a Redis Cluster node.*Fix: unset REDIS_CLUSTER`));
      const down = await until(
        () => app.request('/health'),
        (response) => response.status === 503,
        5_000,
      );
      for (const role of ['command', 'queue', 'subscriber']) {
        expect(health(down).details[`redis:${role}`]).toMatchObject({ status: 'down', state: 'refused', reason: expect.stringContaining('REDIS_CLUSTER=true') });
      }
      const posted = await postReport(app, tokenFor('u1', 'pharmacy-1'), sales);
      expect(posted.status).toBe(503);
      expect(Number(posted.headers.get('retry-after'))).toBeGreaterThan(0);

      // Nothing may happen from now on, which only a window of time can show: no reconnect reaches the server,
      // and the log says it once.
      const connections = async () => Number(/total_connections_received:(\d+)/.exec(await single.command('INFO', 'stats'))?.[1]);
      await app.waitForLine(/POST \/reports 503/);
      const entries = () => app.matching(/^\[\d\d:\d\d:\d\d\.\d+\]/).length;
      const entriesBefore = entries();
      const connectionsBefore = await connections();
      await delay(3_000);
      // One more for the INFO of connections() itself.
      expect(await connections()).toBe(connectionsBefore + 1);
      expect(app.matching(/REDIS_CLUSTER/)).toEqual([line]);
      expect(entries()).toBe(entriesBefore);
    } finally {
      await single.kill();
    }
  }, 60_000);
});
