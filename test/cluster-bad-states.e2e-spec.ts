import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { setTimeout as delay } from 'node:timers/promises';
import { AppProcess, type AppResponse } from './support/app-process';
import { RedisCluster } from './support/redis-cluster';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET, getReport, postReport, salesFor, settledReport, tokenFor } from './support/reports-client';
import { until } from './support/until';

/**
 * The bad states of test/bad-states.e2e-spec.ts, on one master of a 3-master Redis Cluster (REDIS_CLUSTER=true): a
 * shard out of memory (the queue's, then one tenant's cache shard), a master at its connection limit, a master that
 * accepts TCP and never answers (SIGSTOP). Made and undone in turn on one cluster, with one web and one worker
 * process that are never restarted. Each: a fast 503 with Retry-After for the requests that need that master, few
 * log lines naming it, an honest /health, and recovery once the master is well again.
 */

/** Other suites share this 2-core machine: a boot can take several times its usual 2 s. */
const BOOT_TIMEOUT_MS = 40_000;
/**
 * Longer than the silent master stays silent: past it the other masters would mark it failed, and with no replica
 * the whole cluster would answer CLUSTERDOWN (another state than one silent master).
 */
const NODE_TIMEOUT_MS = 30_000;
const ROLES = ['command', 'queue', 'subscriber'];
/** The app's lines about Redis (not the per-request HTTP lines). */
const REDIS_LINES = /\[(Redis(:[\w-]+)?|Cache|QueueWorker|JobProducer)\]/;

interface HealthBody {
  status: string;
  details: Record<string, Record<string, unknown> & { status: string }>;
}

const health = (response: AppResponse) => response.body as HealthBody;

let cluster: RedisCluster;
let web: AppProcess;
let worker: AppProcess;
/** Which master serves a slot: the slot map does not change in this file (no replicas, no failover). */
let owner: (slot: number) => RedisServer;
let queueMaster: RedisServer;
/** One connection per master, opened before any state is made: the test still reaches a master at its maxclients. */
const admins = new Map<RedisServer, Redis>();
/** A master SIGSTOPped and not yet continued, so that afterAll continues it whatever happened. */
let stopped: RedisServer | undefined;

async function startApp(role: 'web' | 'worker'): Promise<AppProcess> {
  const app = await AppProcess.start(
    { REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true', JWT_SECRET, APP_ROLE: role, HEALTH_REDIS_GRACE_SECONDS: '2' },
    { listenTimeoutMs: BOOT_TIMEOUT_MS },
  );
  // On a loaded machine a role's first slot refresh can time out: it then comes up as "recovered after".
  await Promise.all(ROLES.map((name) => app.waitForLine(new RegExp(`\\[Redis:${name}\\] (ready in|recovered after)`), BOOT_TIMEOUT_MS)));
  return app;
}

const address = (node: RedisServer) => `127.0.0.1:${node.port}`;
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A tenant (`<prefix>-<n>`) whose cache keys ({t:<tenant>}) live on `node`. */
function tenantOn(node: RedisServer, prefix: string): string {
  for (let index = 1; index < 10_000; index++) {
    const tenant = `${prefix}-${index}`;
    if (owner(calculateSlot(`{t:${tenant}}`)) === node) return tenant;
  }
  throw new Error(`no tenant ${prefix}-* on ${address(node)}`);
}

/** A master other than the queue's (and than `besides`). */
function anotherMaster(besides?: RedisServer): RedisServer {
  const node = cluster.nodes.find((candidate) => candidate !== queueMaster && candidate !== besides);
  if (!node) throw new Error('no such master');
  return node;
}

function admin(node: RedisServer): Redis {
  const client = admins.get(node);
  if (!client) throw new Error(`no admin connection to ${address(node)}`);
  return client;
}

async function memory(node: RedisServer): Promise<{ used: number; max: number }> {
  const info = await admin(node).info('memory');
  return { used: Number(/^used_memory:(\d+)/m.exec(info)?.[1]), max: Number(/^maxmemory:(\d+)/m.exec(info)?.[1]) };
}

/**
 * maxmemory just above what the node uses, then keys in one of its slots until it refuses even the smallest write
 * (noeviction, the harness's policy): what a shard that filled up looks like. Then maxmemory a little under what it
 * uses: left at the limit, the app's own buffers coming and going made room for a write now and then (a POST accepted
 * after 2.5 s in 2 of 3 runs), and INFO read used_memory under maxmemory. Returns the keys, to free it again.
 */
async function fillUp(node: RedisServer): Promise<string[]> {
  let tag = 0;
  while (owner(calculateSlot(`filler-${tag}`)) !== node) tag++;
  const redis = admin(node);
  await redis.config('SET', 'maxmemory', String((await memory(node)).used + 512 * 1024));
  const keys: string[] = [];
  for (const size of [64 * 1024, 4 * 1024, 256, 16]) {
    for (let refused = false; !refused && keys.length < 2_000;) {
      const key = `{filler-${tag}}:${keys.length}`;
      refused = await redis.set(key, 'x'.repeat(size)).then(
        () => (keys.push(key), false),
        (error: Error) => {
          if (!/^OOM/.test(error.message)) throw error;
          return true;
        },
      );
    }
  }
  await redis.config('SET', 'maxmemory', String((await memory(node)).used - 256 * 1024));
  return keys;
}

async function freeUp(node: RedisServer, keys: string[]): Promise<void> {
  const redis = admin(node);
  await redis.config('SET', 'maxmemory', '0');
  if (keys.length > 0) await redis.del(...keys);
}

/** POST /reports and how long the answer took. */
async function timedPost(app: AppProcess, token: string, seed: number): Promise<AppResponse & { ms: number }> {
  const started = Date.now();
  const response = await postReport(app, token, salesFor(seed));
  return { ...response, ms: Date.now() - started };
}

/** Posts until the answer is not 503 (the master is back), then expects the report accepted and completed. */
async function expectAcceptedAndCompleted(app: AppProcess, token: string, seed: number, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  const accepted = await until(
    () => postReport(app, token, salesFor(seed)),
    (response) => response.status !== 503,
    timeoutMs,
    250,
  );
  const acceptedMs = Date.now() - started;
  // 200 when the worker finished it before the web instance read its state back.
  expect([200, 202]).toContain(accepted.status);
  const { id } = accepted.body as { id: string };
  expect((await settledReport(app, token, id)).body).toMatchObject({ id, status: 'completed' });
  return acceptedMs;
}

async function healthOk(app: AppProcess): Promise<AppResponse> {
  return until(
    () => app.request('/health'),
    (response) => response.status === 200 && health(response).status === 'ok',
    15_000,
  );
}

/** Every role's client degraded, naming `node` as the shard it cannot reach. */
function expectShardDown(response: AppResponse, node: RedisServer): void {
  expect(response.status).toBe(200);
  expect(health(response).status).toBe('degraded');
  for (const role of ROLES) {
    expect(health(response).details[`redis:${role}`]).toMatchObject({ status: 'degraded', state: 'cluster-degraded', shardsDown: [address(node)], mastersUp: 2 });
  }
}

/** Connections a master refused for being at its maxclients, since it started. */
async function rejectedConnections(node: RedisServer): Promise<number> {
  return Number(/^rejected_connections:(\d+)/m.exec(await admin(node).info('stats'))?.[1]);
}

beforeAll(async () => {
  cluster = await RedisCluster.start({ nodeTimeoutMs: NODE_TIMEOUT_MS });
  const views = await cluster.topology();
  const ranges = views.flatMap((view) => view.slots.map(([from, to]) => ({ from, to, node: cluster.nodes.find((candidate) => candidate.port === view.port) })));
  owner = (slot) => {
    const node = ranges.find((range) => slot >= range.from && slot <= range.to)?.node;
    if (!node) throw new Error(`slot ${slot} has no master`);
    return node;
  };
  queueMaster = owner(calculateSlot('{pharmacare}'));
  for (const node of cluster.nodes) {
    const client = new Redis({ host: '127.0.0.1', port: node.port, maxRetriesPerRequest: 1, connectionName: 'test-admin' });
    client.on('error', () => undefined);
    admins.set(node, client);
  }
  [web, worker] = await Promise.all([startApp('web'), startApp('worker')]);
}, 120_000);

afterAll(async () => {
  stopped?.resume();
  for (const client of admins.values()) client.disconnect();
  await Promise.all([web, worker].filter((app) => app !== undefined).map((app) => app.stop()));
  await cluster?.stop();
  await stopAllRedisServers();
});

describe('one master of a Redis Cluster in a bad state (REDIS_CLUSTER=true)', () => {
  it('the queue shard out of memory: POST /reports 503 with Retry-After at once, one line, /health degraded, and accepted again once memory is freed', async () => {
    const token = tokenFor('u1', tenantOn(anotherMaster(), 'oom'));
    const keys = await fillUp(queueMaster);
    try {
      const refused: Array<AppResponse & { ms: number }> = [];
      for (let seed = 0; seed < 10; seed++) refused.push(await timedPost(web, token, 100 + seed));
      for (const response of refused) {
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toBe('30');
        expect((response.body as { message: string }).message).toMatch(/Redis is full/);
        expect(response.text).not.toMatch(/OOM|maxmemory|script/);
        // Refused by Redis, not timed out: well under the 1.5 s answer deadline.
        expect(response.ms).toBeLessThan(1_000);
      }
      expect(web.matching(/\bERROR\b.*\[(HTTP|ExceptionsHandler)\]/)).toEqual([]);

      const degraded = await web.request('/health');
      expect(degraded.status).toBe(200);
      expect(health(degraded).status).toBe('degraded');
      expect(health(degraded).details['redis:command']).toMatchObject({
        status: 'degraded',
        state: 'refusing',
        refusing: ['oom'],
        reason: expect.stringMatching(/out of memory/),
      });

      // The episode is checked by asking every master (INFO memory) every 2 s: it stays open while this one is full,
      // and says so once however many requests it refused.
      await delay(2_500);
      expect((await timedPost(web, token, 200)).status).toBe(503);
      expect(health(await web.request('/health')).details['redis:command']).toMatchObject({ state: 'refusing', refusing: ['oom'] });
      expect(web.matching(/Redis accepts commands again/)).toEqual([]);
      expect(web.matching(/Redis refuses commands: Redis is out of memory/)).toHaveLength(1);
    } finally {
      await freeUp(queueMaster, keys);
    }

    await web.waitForLine(/Redis accepts commands again: oom over after/, 10_000);
    await expectAcceptedAndCompleted(web, token, 300);
    expect((await healthOk(web)).status).toBe(200);
    expect(web.matching(/Redis refuses commands/)).toHaveLength(1);
  }, 60_000);

  it("a tenant's cache shard out of memory leaves the others alone: POST 202, that tenant's job put back while other tenants' complete, and it too once memory is freed", async () => {
    const cacheMaster = anotherMaster();
    const fullTenant = tokenFor('u2', tenantOn(cacheMaster, 'full-cache'));
    const otherTenant = tokenFor('u2', tenantOn(anotherMaster(cacheMaster), 'other-cache'));
    const keys = await fillUp(cacheMaster);
    const workerLinesBefore = worker.lines.length;
    let pendingId: string;
    try {
      // Enqueueing touches the queue's shard only (the cache lookup is a read).
      const posted = await timedPost(web, fullTenant, 400);
      expect(posted.status).toBe(202);
      expect(posted.ms).toBeLessThan(1_000);
      pendingId = (posted.body as { id: string }).id;
      // Its result cannot be stored: the job goes back to the queue without using an attempt.
      await worker.waitForLine(new RegExp(`job ${pendingId} \\(report\\) put back for 5 s without using an attempt: Redis is out of memory`));
      // The worker does not pause for one tenant's shard: another tenant's report runs at once (it waited 3 to 28 s).
      const started = Date.now();
      const other = await timedPost(web, otherTenant, 401);
      expect([200, 202]).toContain(other.status);
      const otherId = (other.body as { id: string }).id;
      expect((await settledReport(web, otherTenant, otherId)).body).toMatchObject({ id: otherId, status: 'completed' });
      const otherMs = Date.now() - started;
      expect(otherMs).toBeLessThan(3_000);
      expect(worker.lines.slice(workerLinesBefore).filter((line) => /worker paused/.test(line))).toEqual([]);
      expect((await getReport(web, fullTenant, pendingId)).body).toMatchObject({ id: pendingId, status: expect.stringMatching(/^(queued|active)$/) });
      expect((await web.request('/health')).status).toBe(200);
    } finally {
      await freeUp(cacheMaster, keys);
    }
    expect((await settledReport(web, fullTenant, pendingId, 40_000)).body).toMatchObject({ id: pendingId, status: 'completed' });
    expect(worker.matching(/failed for good/)).toEqual([]);
  }, 90_000);

  it('the queue master at its connection limit: one line per role naming maxclients, /health degraded naming it, 503 with Retry-After, no reconnect storm, and recovery once a connection is free', async () => {
    const token = tokenFor('u3', tenantOn(anotherMaster(), 'maxclients'));
    const node = address(queueMaster);
    const redis = admin(queueMaster);
    const aboutNode = new RegExp(`cluster node ${escaped(node)}: `);
    const linesBefore = { web: web.lines.length, worker: worker.lines.length };
    const episodeLines = (app: AppProcess, from: number) => app.lines.slice(from).filter((line) => REDIS_LINES.test(line));
    // Every connection it takes is the test's own (its admin connection): every reconnect of the app's is refused.
    await redis.config('SET', 'maxclients', '1');
    try {
      await redis.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub');

      for (let seed = 0; seed < 3; seed++) {
        const refused = await timedPost(web, token, 500 + seed);
        expect(refused.status).toBe(503);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(refused.ms).toBeLessThan(1_500);
      }
      await web.waitForLine(
        new RegExp(`\\[Redis:command\\] cluster node ${escaped(node)}: Redis refused a connection: max number of clients reached \\(maxclients\\); .*run fewer instances`),
      );
      expectShardDown(
        await until(
          () => web.request('/health'),
          (response) => ROLES.every((role) => health(response).details?.[`redis:${role}`]?.state === 'cluster-degraded'),
          10_000,
        ),
        queueMaster,
      );

      // ioredis's sharded subscribers, left alone, restarted at once on every failure: ~110 refused connections a
      // second from the web instance alone.
      const rejectedBefore = await rejectedConnections(queueMaster);
      await delay(3_000);
      const rejectedPerSecond = ((await rejectedConnections(queueMaster)) - rejectedBefore) / 3;
      expect(rejectedPerSecond).toBeGreaterThan(0);
      expect(rejectedPerSecond).toBeLessThan(10);

      for (const [app, from] of [
        [web, linesBefore.web],
        [worker, linesBefore.worker],
      ] as const) {
        const lines = episodeLines(app, from);
        // Named as what it is wherever the node is named, and once per role.
        for (const line of lines.filter((text) => aboutNode.test(text))) expect(line).toMatch(/max number of clients reached/);
        const roles = lines.filter((line) => /max number of clients reached/.test(line)).map((line) => /\[Redis:([\w-]+)\]/.exec(line)?.[1]);
        expect(new Set(roles).size).toBe(roles.length);
        expect(lines.length).toBeLessThanOrEqual(ROLES.length + 1);
      }
    } finally {
      await redis.config('SET', 'maxclients', '10000');
    }

    const recoveredMs = await expectAcceptedAndCompleted(web, token, 600);
    expect(recoveredMs).toBeLessThan(5_000);
    await healthOk(web);
    await healthOk(worker);
  }, 60_000);

  it('the queue master silent (SIGSTOP): POST 503 with Retry-After within the command timeout, /health in time naming it, few lines, and recovery on SIGCONT', async () => {
    const token = tokenFor('u4', tenantOn(anotherMaster(), 'silent'));
    const linesBefore = web.lines.length;
    queueMaster.pause();
    stopped = queueMaster;
    try {
      for (let seed = 0; seed < 3; seed++) {
        const refused = await timedPost(web, token, 700 + seed);
        expect(refused.status).toBe(503);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
        // REDIS_COMMAND_TIMEOUT_MS (1 s) on the enqueue, within the 1.5 s answer deadline: never the client's 5 s.
        expect(refused.ms).toBeLessThan(3_000);
      }
      for (const app of [web, worker]) {
        const started = Date.now();
        const answer = await app.request('/health');
        // Each master's PING has a 1 s deadline, CLUSTER INFO (from a master that answered) another.
        expect(Date.now() - started).toBeLessThan(3_000);
        expectShardDown(answer, queueMaster);
      }
      const lines = web.lines.slice(linesBefore).filter((line) => REDIS_LINES.test(line));
      expect(lines.length).toBeLessThanOrEqual(3);
      // Only /health notices a silent master (no connection drops): one line naming it, whichever role saw it first.
      const silent = new RegExp(`\\[Redis\\] Redis master ${escaped(address(queueMaster))} \\(REDIS_URL\\) is connected but silent`);
      await web.waitForLine(silent);
      expect(web.lines.slice(linesBefore).filter((line) => silent.test(line))).toHaveLength(1);
    } finally {
      queueMaster.resume();
      stopped = undefined;
    }

    const recoveredMs = await expectAcceptedAndCompleted(web, token, 800);
    expect(recoveredMs).toBeLessThan(5_000);
    await healthOk(web);
    await healthOk(worker);
    await web.waitForLine(new RegExp(`Redis master ${escaped(address(queueMaster))} \\(REDIS_URL\\) answers again`));
    expect(web.lines.slice(linesBefore).filter((line) => /answers again/.test(line))).toHaveLength(1);
  }, 60_000);
});
