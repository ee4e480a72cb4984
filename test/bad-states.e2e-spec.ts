import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { AppProcess, AppResponse } from './support/app-process';
import { RedisCluster } from './support/redis-cluster';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { PresenceClient } from './support/socket-client';
import { JWT_SECRET, postReport, salesFor, settledReport, tokenFor } from './support/reports-client';
import { TcpProxy } from './support/tcp-proxy';
import { until } from './support/until';

/**
 * Redis in the states of issue #15, each on real redis-server processes: full (noeviction OOM), at its connection
 * limit, accepting TCP but silent, a cluster node, a read-only replica refusing every script, and coming back after
 * an outage. Each must give one named log line, an honest /health, a fast 503 with Retry-After, and recovery
 * without a restart.
 */

const token = tokenFor('u1', 'pharmacy-1');
const ROLES = ['command', 'queue', 'subscriber'];

interface HealthBody {
  status: string;
  details: Record<string, Record<string, unknown> & { status: string }>;
}

const apps: AppProcess[] = [];
const admins: Redis[] = [];
const proxies: TcpProxy[] = [];

async function startApp(env: Record<string, string>): Promise<AppProcess> {
  const app = await AppProcess.start({ JWT_SECRET, ...env });
  apps.push(app);
  return app;
}

/** A connection of the test's own, opened before the app's, so the test can still reach a full server. */
/** GET /health once it answers `status`; until's deadline otherwise. */
function healthAnswering(app: AppProcess, status: number, timeoutMs?: number): Promise<AppResponse> {
  return until(
    () => app.request('/health'),
    (response) => response.status === status,
    timeoutMs,
  );
}

async function admin(redis: RedisServer): Promise<Redis> {
  const client = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1, lazyConnect: true });
  client.on('error', () => undefined);
  admins.push(client);
  await client.connect();
  return client;
}

const body = (response: AppResponse) => response.body as HealthBody;

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.stop()));
  admins.splice(0).forEach((client) => client.disconnect());
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  await stopAllRedisServers();
});
afterAll(stopAllRedisServers);

describe('Redis at its connection limit (--maxclients)', () => {
  it('names the limit in one line, shows queue:worker down past the grace, and recovers once a connection is free', async () => {
    // The test holds one connection; the app's three roles take the rest: the worker's blocking connection is refused.
    const redis = await RedisServer.start({ maxclients: 4 });
    const harness = await admin(redis);
    const app = await startApp({ REDIS_URL: redis.url(), APP_ROLE: 'all', HEALTH_REDIS_GRACE_SECONDS: '2' });

    const line = await app.waitForLine(/max number of clients reached/);
    expect(line).toMatch(
      /\[Redis:queue-duplicate\] cannot connect: Redis refused a connection: max number of clients reached \(maxclients\); .*connection limit, run fewer instances/,
    );
    const down = await healthAnswering(app, 503);
    expect(body(down).details['queue:worker']).toMatchObject({ status: 'down', connected: false, connectionError: expect.stringMatching(/max number of clients/) });

    const posted = await postReport(app, token, salesFor(1));
    expect(posted.status).toBe(202);
    const { id } = posted.body as { id: string };

    await harness.config('SET', 'maxclients', '20');
    await app.waitForLine(/\[Redis:queue-duplicate\] recovered after/);
    expect((await settledReport(app, token, id)).body).toMatchObject({ id, status: 'completed' });
    expect((await healthAnswering(app, 200)).status).toBe(200);
    expect(app.matching(/max number of clients reached/)).toHaveLength(1);
    expect(app.output).not.toMatch(/Redis may be restarting/);
  }, 60_000);
});

describe('a server that accepts TCP and never answers (a black hole)', () => {
  it('every role gives up on its handshake within 10 s, logs once, retries, and recovers when Redis answers', async () => {
    const redis = await RedisServer.start();
    const proxy = await TcpProxy.start(redis.port);
    proxies.push(proxy);
    proxy.blackHole = true;
    const app = await startApp({ REDIS_URL: `redis://127.0.0.1:${proxy.port}`, APP_ROLE: 'all', HEALTH_REDIS_GRACE_SECONDS: '2' });

    const started = Date.now();
    // The three roles and the worker's blocking connection.
    const lines = await app.waitForLines(/cannot connect: 127\.0\.0\.1:\d+ accepted the connection but sent no Redis reply/, 4, 20_000);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(lines.map((text) => /\[Redis:([\w-]+)\]/.exec(text)?.[1]).sort()).toEqual([...ROLES, 'queue-duplicate'].sort());
    // Each connection tried again: at least 8 connections accepted.
    await until(
      async () => proxy.accepted,
      (accepted) => accepted >= 8,
      20_000,
    );
    expect(app.matching(/accepted the connection but sent no Redis reply/)).toHaveLength(4);

    proxy.blackHole = false;
    await app.waitForLines(/recovered after/, 4, 20_000);
    expect((await healthAnswering(app, 200)).status).toBe(200);
  }, 60_000);
});

describe('Redis out of memory (noeviction, maxmemory reached)', () => {
  it('answers POST /reports 503 with Retry-After and a message users understand, logged once; /health degraded; jobs put back, not failed', async () => {
    const redis = await RedisServer.start();
    // The worker reaches Redis through a proxy, so its traffic can be slowed while it takes the job.
    const proxy = await TcpProxy.start(redis.port);
    proxies.push(proxy);
    const web = await startApp({ REDIS_URL: redis.url(), APP_ROLE: 'web' });
    const worker = await startApp({ REDIS_URL: `redis://127.0.0.1:${proxy.port}`, APP_ROLE: 'worker', HEALTH_REDIS_GRACE_SECONDS: '2' });
    await Promise.all([web.waitForLines(/ready in \d+ ms/, 3), worker.waitForLines(/ready in \d+ ms/, 3)]);
    const harness = await admin(redis);

    // A job in flight when Redis fills up. Redis hands the job over (the 'active' event, read straight from Redis)
    // while the reply to the worker takes 300 ms through the proxy: Redis is full before the worker even has the
    // job, whatever the load on the machine, so the job's own write meets the full Redis.
    const events = harness.duplicate();
    admins.push(events);
    const active = nextEvent(events, 'active');
    proxy.latencyMs = 300;
    const inFlight = await postReport(web, token, salesFor(100, 2_000));
    expect(inFlight.status).toBe(202);
    await active;
    await harness.config('SET', 'maxmemory', '1');
    proxy.latencyMs = 0;

    const refused: AppResponse[] = [];
    for (let seed = 0; seed < 20; seed++) refused.push(await postReport(web, token, salesFor(200 + seed)));
    // Each is refused; on a loaded machine one may meet the 1.5 s answer deadline first (503, Retry-After 5) instead.
    for (const response of refused) {
      expect(response.status).toBe(503);
      expect(response.text).not.toMatch(/OOM|maxmemory|script/);
    }
    const full = refused.filter((response) => /Redis is full/.test((response.body as { message: string }).message));
    expect(full.length).toBeGreaterThanOrEqual(15);
    for (const response of full) expect(response.headers.get('retry-after')).toBe('30');
    expect(web.matching(/Redis refuses commands: Redis is out of memory/)).toHaveLength(1);
    expect(web.matching(/\bERROR\b.*\[(HTTP|ExceptionsHandler)\]/)).toEqual([]);
    const health = await web.request('/health');
    expect(health.status).toBe(200);
    expect(body(health).status).toBe('degraded');
    expect(body(health).details['redis:command']).toMatchObject({ status: 'degraded', state: 'refusing', refusing: ['oom'], reason: expect.stringMatching(/out of memory/) });

    // The job Redis refused to store went back to the queue without using an attempt: nothing failed.
    const { id } = inFlight.body as { id: string };
    await worker.waitForLine(new RegExp(`job ${id} \\(report\\) put back for 5 s without using an attempt`));
    await worker.waitForLine(/worker paused: Redis refuses its commands: Redis is out of memory/);
    expect(Number(await harness.zcard('pharmacare:jobs:failed'))).toBe(0);

    // BullMQ alone retries a refused script at once, thousands of times a second.
    const before = await rejectedCalls(harness);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(((await rejectedCalls(harness)) - before) / 3).toBeLessThan(20);
    const workerDown = await until(
      () => worker.request('/health'),
      (response) => response.status === 503,
    );
    expect(body(workerDown).details['queue:worker']).toMatchObject({ status: 'down', paused: true, reason: expect.stringMatching(/out of memory/) });
    expect(worker.matching(/worker paused/)).toHaveLength(1);
    expect(worker.matching(/worker resumed/)).toEqual([]);

    await harness.config('SET', 'maxmemory', '0');
    await web.waitForLine(/Redis accepts commands again: oom over after/, 10_000);
    expect((await settledReport(web, token, id, 60_000)).body).toMatchObject({ id, status: 'completed' });
    expect((await postReport(web, token, salesFor(300))).status).toBe(202);
    expect(worker.matching(/failed for good/)).toEqual([]);
    await worker.waitForLine(/worker resumed: Redis accepts its commands again/, 40_000);
    expect(
      (
        await until(
          () => web.request('/health'),
          (response) => response.status === 200 && body(response).status === 'ok',
          15_000,
        )
      ).status,
    ).toBe(200);
  }, 120_000);
});

describe('presence while Redis is out of memory', () => {
  it('says "out of sync" once and never a false "back in sync" while users still cannot be stored; in sync once memory is freed', async () => {
    const redis = await RedisServer.start();
    // Heartbeats every second: several of them pass during the OOM.
    const app = await startApp({ REDIS_URL: redis.url(), APP_ROLE: 'web', PRESENCE_TTL_SECONDS: '3', PRESENCE_OFFLINE_GRACE_SECONDS: '0' });
    await app.waitForLines(/ready in \d+ ms/, 3);
    const harness = await admin(redis);
    const first = await PresenceClient.connect(app, tokenFor('u1', 'pharmacy-1'));
    await until(
      () => app.request('/presence', { headers: { authorization: `Bearer ${token}` } }),
      (response) => JSON.stringify(response.body).includes('u1'),
    );

    await harness.config('SET', 'maxmemory', '1');
    const second = await PresenceClient.connect(app, tokenFor('u2', 'pharmacy-1'));
    await app.waitForLine(/presence is out of sync with Redis/);
    // u1 leaving is a release, which a full Redis still takes (it frees memory); u2 is still not stored.
    first.socket.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    expect(app.matching(/presence back in sync/)).toEqual([]);
    expect(app.matching(/presence is out of sync/)).toHaveLength(1);

    await harness.config('SET', 'maxmemory', '0');
    await app.waitForLine(/presence back in sync with Redis/, 10_000);
    const listed = await app.request('/presence', { headers: { authorization: `Bearer ${token}` } });
    expect((listed.body as { users: Array<{ userId: string }> }).users.map((user) => user.userId)).toEqual(['u2']);
    second.socket.disconnect();
  }, 60_000);
});

/** Resolves on the next entry of BullMQ's event stream with the given event (read straight from Redis). */
async function nextEvent(redis: Redis, event: string): Promise<void> {
  const stream = 'pharmacare:jobs:events';
  let last = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0';
  for (;;) {
    const reply = (await redis.xread('BLOCK', 10_000, 'STREAMS', stream, last)) as Array<[string, Array<[string, string[]]>]> | null;
    if (!reply) throw new Error(`no ${event} event within 10 s`);
    for (const [id, fields] of reply[0][1]) {
      last = id;
      if (fields[1] === event) return;
    }
  }
}

/** Commands Redis refused so far (INFO errorstats' total), the measure of a spinning worker. */
async function rejectedCalls(redis: Redis): Promise<number> {
  const info = await redis.info('stats');
  return Number(/total_error_replies:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}

describe('Redis refusing every script (a read-only replica)', () => {
  it('the worker backs off instead of spinning, is down in /health past the grace, and resumes once Redis accepts writes', async () => {
    const redis = await RedisServer.start();
    const app = await startApp({ REDIS_URL: redis.url(), APP_ROLE: 'all', HEALTH_REDIS_GRACE_SECONDS: '2' });
    await app.waitForLines(/ready in \d+ ms/, 3);
    const harness = await admin(redis);
    const posted = await postReport(app, token, salesFor(1));
    expect(posted.status).toBe(202);
    const { id } = posted.body as { id: string };
    await settledReport(app, token, id);

    // A replica of a primary that is not there: reads work, every write and write script is refused (READONLY).
    const unreachable = await RedisServer.start();
    const deadPort = unreachable.port;
    await unreachable.kill();
    await harness.replicaof('127.0.0.1', String(deadPort));
    await app.waitForLine(/worker paused: Redis refuses its commands: Redis refused a write: the server is a read-only replica/, 15_000);
    const before = await rejectedCalls(harness);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(((await rejectedCalls(harness)) - before) / 3).toBeLessThan(20);
    const down = await healthAnswering(app, 503);
    expect(body(down).details['queue:worker']).toMatchObject({ status: 'down', paused: true });
    const refused = await postReport(app, token, salesFor(2));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');

    await harness.replicaof('NO', 'ONE');
    await app.waitForLine(/worker resumed: Redis accepts its commands again after/, 40_000);
    const accepted = await postReport(app, token, salesFor(2));
    expect(accepted.status).toBe(202);
    expect((await settledReport(app, token, (accepted.body as { id: string }).id)).body).toMatchObject({ status: 'completed' });
    expect(app.matching(/worker paused/)).toHaveLength(1);
  }, 90_000);
});

describe('a Redis whose provider disabled the script commands BullMQ needs (EVAL, EVALSHA)', () => {
  it('pauses the worker with one line naming it instead of spinning, and answers producers 503', async () => {
    const redis = await RedisServer.start({ disabledCommands: ['EVAL', 'EVALSHA'] });
    const app = await startApp({ REDIS_URL: redis.url(), APP_ROLE: 'all', HEALTH_REDIS_GRACE_SECONDS: '2' });
    await app.waitForLines(/ready in \d+ ms/, 3);
    const harness = await admin(redis);
    const refused = await postReport(app, token, salesFor(1));
    expect(refused.status).toBe(503);
    await app.waitForLine(/worker paused: Redis refuses its commands: Redis does not know a command it was sent \(renamed or disabled by the provider\)/, 15_000);
    const before = await rejectedCalls(harness);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(((await rejectedCalls(harness)) - before) / 3).toBeLessThan(20);
    expect(app.matching(/Redis refuses commands: Redis does not know a command/)).toHaveLength(1);
    expect(app.matching(/worker paused/)).toHaveLength(1);
  }, 60_000);
});

describe('REDIS_URL naming a Redis Cluster node', () => {
  it('is refused at connect with one clear message, /health 503 at once, and no worker spin', async () => {
    const cluster = await RedisCluster.start();
    try {
      const app = await startApp({ REDIS_URL: cluster.url(), APP_ROLE: 'all' });
      const line = await app.waitForLine(/refusing REDIS_URL/);
      expect(line).toMatch(
        /is a Redis Cluster node \(INFO cluster says cluster_enabled:1\), but REDIS_CLUSTER is not set.*Fix: set REDIS_CLUSTER=true to use it as a cluster.*or point REDIS_URL at a single Redis/,
      );
      const health = await healthAnswering(app, 503, 5_000);
      for (const role of ROLES) expect(body(health).details[`redis:${role}`]).toMatchObject({ status: 'down', state: 'refused' });
      const posted = await postReport(app, token, salesFor(1));
      expect(posted.status).toBe(503);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(app.matching(/refusing REDIS_URL/)).toHaveLength(1);
      expect(app.lines.filter((text) => !/refusing REDIS_URL/.test(text)).join('\n')).not.toMatch(/CROSSSLOT|MOVED|reconnect/);
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});

describe('recovery after an outage', () => {
  it('every role is ready within 3 s of Redis accepting connections again, after 20 s down', async () => {
    const redis = await RedisServer.start();
    const app = await startApp({ REDIS_URL: redis.url(), APP_ROLE: 'all' });
    await app.waitForLines(/ready in \d+ ms/, 3);
    const port = redis.port;
    await redis.kill();
    await app.waitForLines(/connection lost/, 3);
    await new Promise((resolve) => setTimeout(resolve, 20_000));

    const back = await RedisServer.start({ port });
    const accepting = Date.now();
    await app.waitForLines(/\[Redis:(command|queue|subscriber)\] recovered after/, 3, 30_000);
    const recoveredMs = Date.now() - accepting;
    expect(recoveredMs).toBeLessThan(3_000);
    await back.stop();
  }, 60_000);
});

describe('rediss:// to a plain-text Redis', () => {
  it('says the server does not speak TLS and to use redis://, instead of blaming the firewall', async () => {
    const redis = await RedisServer.start();
    const app = await startApp({ REDIS_URL: `rediss://127.0.0.1:${redis.port}`, APP_ROLE: 'web' });
    const line = await app.waitForLine(/\[Redis:command\] cannot connect/);
    expect(line).toMatch(/speaks plain-text Redis, not TLS.*use redis:\/\/ instead of rediss:\/\//);
    expect(line).not.toMatch(/firewall/);
  }, 30_000);
});

describe('bull-board and Queue.getWorkers()', () => {
  it('lists the running worker, while CLIENT LIST still tells every connection apart', async () => {
    const redis = await RedisServer.start();
    const app = await startApp({ REDIS_URL: redis.url(), APP_ROLE: 'all' });
    await app.waitForLines(/ready in \d+ ms/, 3);
    const connection = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null });
    const queue = new Queue('jobs', { connection, prefix: 'pharmacare' });
    try {
      const workers = await until(
        () => queue.getWorkers(),
        (list) => list.length === 1,
      );
      expect(workers[0]).toMatchObject({ name: 'jobs', rawname: expect.stringMatching(new RegExp(`^pharmacare:am9icw==:w:.+:${app.pid}$`)) });
      const names = (await redis.clientList()).filter((name) => name.endsWith(`:${app.pid}`));
      expect(new Set(names).size).toBe(4);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });
});
