import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { getReport, JWT_SECRET, postReport, salesFor, settledReport, tokenFor } from './support/reports-client';

let redis: RedisServer;
let web: AppProcess;
let worker: AppProcess;
const token = tokenFor('u1', 'pharmacy-1');

beforeAll(async () => {
  redis = await RedisServer.start();
  const env = { REDIS_URL: redis.url(), JWT_SECRET, HEALTH_REDIS_GRACE_SECONDS: '60' };
  [web, worker] = await Promise.all([AppProcess.start({ ...env, APP_ROLE: 'web' }), AppProcess.start({ ...env, APP_ROLE: 'worker' })]);
  await Promise.all([web.waitForLines(/ready in \d+ ms/, 3), worker.waitForLines(/ready in \d+ ms/, 3)]);
});

afterAll(async () => {
  await Promise.all([web?.stop(), worker?.stop()]);
  await stopAllRedisServers();
});

describe('completed reports from the cache', () => {
  it('answers GET /reports/:id from the cache, and keeps answering 200 from the memory tier when Redis dies under load', async () => {
    const { id } = (await postReport(web, token, salesFor(1))).body as { id: string };
    const done = await settledReport(web, token, id);
    expect(done.body).toMatchObject({ id, status: 'completed' });

    const cached = await getReport(web, token, id);
    expect(cached.status).toBe(200);
    expect(cached.headers.get('x-cache')).toBe('hit');
    expect(cached.body).toEqual(done.body);
    expect((await getReport(web, tokenFor('u2', 'pharmacy-2'), id)).status).toBe(404);

    // Load on the cached route from 10 concurrent clients, with Redis killed part-way through.
    const statuses: number[] = [];
    const hits: string[] = [];
    let killed = false;
    const client = async () => {
      for (let i = 0; i < 60; i++) {
        const response = await getReport(web, token, id);
        statuses.push(response.status);
        hits.push(response.headers.get('x-cache') ?? 'none');
        if (!killed && statuses.length >= 150) {
          killed = true;
          await redis.kill();
        }
      }
    };
    await Promise.all(Array.from({ length: 10 }, client));
    expect(killed).toBe(true);
    expect(statuses).toHaveLength(600);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(hits.filter((hit) => hit !== 'hit')).toEqual([]);

    await web.waitForLine(/running on the memory tier only|connection lost/);
    const health = await web.request('/health');
    expect(health.status).toBe(200);
    expect((health.body as { details: Record<string, { status: string; mode?: string }> }).details.cache).toMatchObject({ status: 'degraded', mode: 'memory-only' });
  }, 60_000);
});
