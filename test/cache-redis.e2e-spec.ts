import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { AppProcess, AppResponse } from './support/app-process';
import { parsePrometheusText, total } from './support/prometheus-text';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { getReport, JWT_SECRET, postReport, salesFor, settledReport, tokenFor } from './support/reports-client';
import { until } from './support/until';

/**
 * REDIS_CACHE_URL (issue #17, step 1): the cache and job results on a Redis of their own, the queue and presence on
 * REDIS_URL's, on two real redis-servers. The cache's server killed or full must leave enqueueing untouched and
 * /health honest about which database is in trouble.
 */

const token = tokenFor('u1', 'pharmacy-1');
const CACHE_PASSWORD = 'Cq7CacheOnlyPassword42';
/** Each process's clients on each database: the worker's BullMQ blocking connection is the one more. */
const CACHE_ROLES = ['cache', 'cache-subscriber'];

interface HealthDetail {
  status: string;
  endpoint?: string;
  state?: string;
  refusing?: string[];
  reason?: string;
  downForMs?: number;
  mode?: string;
}
interface HealthBody {
  status: string;
  details: Record<string, HealthDetail>;
}

const apps: AppProcess[] = [];
const admins: Redis[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.stop()));
  admins.splice(0).forEach((client) => client.disconnect());
  await stopAllRedisServers();
});
afterAll(stopAllRedisServers);

/** Starts a process of the app, ready once its five clients are: command, queue, subscriber on REDIS_URL; cache, cache-subscriber on REDIS_CACHE_URL. */
async function startApp(env: Record<string, string>): Promise<AppProcess> {
  const app = await AppProcess.start(env);
  apps.push(app);
  await app.waitForLines(/ready in \d+ ms/, 5);
  return app;
}

/** A queue database and a cache database, and a web and a worker process on them. */
async function twoDatabases(env: Record<string, string> = {}) {
  const [queue, cache] = await Promise.all([RedisServer.start(), RedisServer.start({ password: CACHE_PASSWORD })]);
  const shared = { JWT_SECRET, REDIS_URL: queue.url(), REDIS_CACHE_URL: cache.url(), ...env };
  const [web, worker] = await Promise.all([startApp({ ...shared, APP_ROLE: 'web' }), startApp({ ...shared, APP_ROLE: 'worker' })]);
  return { queue, cache, web, worker, env: shared };
}

/** A connection of the test's own, opened before the server fills up. */
async function admin(server: RedisServer, password?: string): Promise<Redis> {
  const client = new Redis({ host: '127.0.0.1', port: server.port, password, maxRetriesPerRequest: 1, lazyConnect: true });
  client.on('error', () => undefined);
  admins.push(client);
  await client.connect();
  return client;
}

async function keysOf(server: RedisServer): Promise<string[]> {
  const output = await server.command('KEYS', '*');
  return output.split('\n').filter(Boolean);
}

const health = (response: AppResponse) => response.body as HealthBody;

describe('the cache on REDIS_CACHE_URL, the queue on REDIS_URL', () => {
  it('puts cache keys only on the cache database and queue keys only on the queue one, with 5 + 6 connections, reported per endpoint, password never shown', async () => {
    const { queue, cache, web, worker } = await twoDatabases();
    const posted = await postReport(web, token, salesFor(1));
    expect(posted.status).toBe(202);
    const { id } = posted.body as { id: string };
    expect((await settledReport(web, token, id)).body).toMatchObject({ id, status: 'completed' });
    // Read by the web process from the cache's Redis: its memory tier never saw the worker's write.
    const cached = await getReport(web, token, id);
    expect(cached.status).toBe(200);
    expect(cached.headers.get('x-cache')).toBe('hit');

    const cacheKeys = await keysOf(cache);
    const queueKeys = await keysOf(queue);
    expect(cacheKeys.some((key) => key.includes('report'))).toBe(true);
    expect(cacheKeys.filter((key) => !key.startsWith('pharmacare:cache'))).toEqual([]);
    expect(queueKeys.some((key) => key.startsWith('pharmacare:jobs:'))).toBe(true);
    expect(queueKeys.filter((key) => key.startsWith('pharmacare:cache'))).toEqual([]);

    // Web: 3 on REDIS_URL + 2 on REDIS_CACHE_URL; worker: 4 (BullMQ's blocking connection too) + 2.
    const pids = [web.pid, worker.pid];
    expect((await cache.clientList()).sort()).toEqual(pids.flatMap((pid) => CACHE_ROLES.map((role) => `pharmacare:${role}:${pid}`)).sort());
    const onQueue = await queue.clientList();
    expect(onQueue).toHaveLength(7);
    expect(onQueue.filter((name) => /:cache/.test(name))).toEqual([]);

    const body = health(await web.request('/health'));
    expect(body.details['redis:command']).toMatchObject({ status: 'up', endpoint: 'REDIS_URL' });
    expect(body.details['redis:cache']).toMatchObject({ status: 'up', endpoint: 'REDIS_CACHE_URL' });
    expect(body.details['redis:cache-subscriber']).toMatchObject({ status: 'up', endpoint: 'REDIS_CACHE_URL' });
    const metrics = await web.request('/metrics');
    const samples = parsePrometheusText(metrics.text);
    const ready = samples.filter((sample) => sample.name === 'pharmacare_redis_connection_ready');
    expect(ready.map((sample) => `${sample.labels.role}@${sample.labels.endpoint}=${sample.value}`).sort()).toEqual(
      ['cache-subscriber@REDIS_CACHE_URL=1', 'cache@REDIS_CACHE_URL=1', 'command@REDIS_URL=1', 'queue@REDIS_URL=1', 'subscriber@REDIS_URL=1'].sort(),
    );
    expect(total(samples, 'pharmacare_redis_commands_total', { role: 'cache', endpoint: 'REDIS_CACHE_URL', command: 'get' })).toBeGreaterThan(0);
    // The cache's reads went to its own database, not through REDIS_URL's command client.
    expect(total(samples, 'pharmacare_redis_commands_total', { role: 'command', command: 'get' })).toBe(0);

    for (const text of [web.output, worker.output, JSON.stringify(body), metrics.text]) expect(text).not.toContain(CACHE_PASSWORD);
    expect(web.output).toMatch(/\[Redis:cache\] connecting to redis:\/\/default:\*\*\*@127\.0\.0\.1:\d+ as pharmacare:cache:/);
  }, 60_000);

  it('answers 404 for a result the cache evicted, and computes it again when the same report is posted again', async () => {
    const { cache, env } = await twoDatabases();
    // Two web instances: the one that reads never held the result in its memory tier.
    const [poster, reader] = await Promise.all([startApp({ ...env, APP_ROLE: 'web' }), startApp({ ...env, APP_ROLE: 'web' })]);
    const { id } = (await postReport(poster, token, salesFor(2))).body as { id: string };
    expect((await settledReport(poster, token, id)).body).toMatchObject({ id, status: 'completed' });
    // What allkeys-lru does to a result under memory pressure: gone from the cache's Redis.
    const resultKeys = (await keysOf(cache)).filter((key) => key.startsWith('pharmacare:cache:') && key.includes('report'));
    expect(resultKeys).toHaveLength(1);
    await (await admin(cache, CACHE_PASSWORD)).del(...resultKeys);
    expect((await getReport(reader, token, id)).status).toBe(404);
    // 202, or already 200 when the idle worker computed it before the POST read the job back.
    expect([200, 202]).toContain((await postReport(reader, token, salesFor(2))).status);
    expect((await settledReport(reader, token, id)).body).toMatchObject({ id, status: 'completed' });
    // Computed anew: the result is back in the cache's Redis.
    expect((await keysOf(cache)).filter((key) => key.startsWith('pharmacare:cache:') && key.includes('report'))).toEqual(resultKeys);
  }, 60_000);
});

describe("the cache's Redis in trouble, the queue's fine", () => {
  it('killed (SIGKILL): enqueueing still answers 202, /health stays 200 naming REDIS_CACHE_URL as down, and the job completes once it is back', async () => {
    const { cache, web, worker } = await twoDatabases({ HEALTH_REDIS_GRACE_SECONDS: '1' });
    await cache.kill();
    await web.waitForLine(/\[Redis:cache\] connection lost/);
    const posted = await postReport(web, token, salesFor(3));
    expect(posted.status).toBe(202);
    const { id } = posted.body as { id: string };

    // Past the grace period a REDIS_URL client would be down (503); the cache's stays degraded.
    const past = await until(
      () => web.request('/health'),
      (response) => (health(response).details['redis:cache']?.downForMs ?? 0) > 1_500,
    );
    expect(past.status).toBe(200);
    expect(health(past).details['redis:cache']).toMatchObject({ status: 'degraded', endpoint: 'REDIS_CACHE_URL' });
    expect(health(past).details['redis:cache-subscriber']).toMatchObject({ status: 'degraded', endpoint: 'REDIS_CACHE_URL' });
    expect(health(past).details['redis:command']).toMatchObject({ status: 'up', endpoint: 'REDIS_URL' });
    expect(health(past).details['redis:queue']).toMatchObject({ status: 'up', endpoint: 'REDIS_URL' });
    expect(health(past).details.cache).toMatchObject({ status: 'degraded', mode: 'memory-only' });

    // The result cannot be stored: the attempt is put back (not failed), and completes once the cache is back.
    await worker.waitForLine(new RegExp(`job ${id} \\(report\\) put back for 5 s without using an attempt: Redis connection cache is (down|connecting)`));
    await cache.restart();
    expect((await settledReport(web, token, id, 40_000)).body).toMatchObject({ id, status: 'completed' });
    expect(worker.matching(/failed for good/)).toEqual([]);
  }, 90_000);

  it('full (noeviction, maxmemory reached): enqueueing still answers 202, /health names REDIS_CACHE_URL as refusing, the job is put back and completes once there is room', async () => {
    const { queue, cache, web, worker } = await twoDatabases();
    const cacheClient = await admin(cache, CACHE_PASSWORD);
    await cacheClient.config('SET', 'maxmemory', '1');

    const posted = await postReport(web, token, salesFor(4));
    expect(posted.status).toBe(202);
    const { id } = posted.body as { id: string };
    await worker.waitForLine(new RegExp(`job ${id} \\(report\\) put back for 5 s without using an attempt: Redis is out of memory.*\\(REDIS_CACHE_URL\\)`));
    const refusing = await worker.waitForLine(/Redis refuses commands: Redis is out of memory/);
    expect(refusing).toMatch(/\(REDIS_CACHE_URL\)\. Nothing needs it to answer/);
    await worker.waitForLine(/worker paused: Redis refuses its commands: Redis is out of memory.*\(REDIS_CACHE_URL\)/);
    expect((await postReport(web, token, salesFor(5))).status).toBe(202);

    const workerHealth = health(await worker.request('/health'));
    expect(workerHealth.details['redis:cache']).toMatchObject({ status: 'degraded', state: 'refusing', refusing: ['oom'], endpoint: 'REDIS_CACHE_URL' });
    expect(workerHealth.details['redis:command']).toMatchObject({ status: 'up', endpoint: 'REDIS_URL' });
    const webHealth = await web.request('/health');
    expect(webHealth.status).toBe(200);
    expect(health(webHealth).details['redis:command']).toMatchObject({ status: 'up', endpoint: 'REDIS_URL' });
    expect(Number(await queue.command('ZCARD', 'pharmacare:jobs:failed'))).toBe(0);

    await cacheClient.config('SET', 'maxmemory', '0');
    expect((await settledReport(web, token, id, 60_000)).body).toMatchObject({ id, status: 'completed' });
    expect(worker.matching(/failed for good/)).toEqual([]);
  }, 90_000);
});
