import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { AppProcess, AppResponse } from './support/app-process';
import { freePort } from './support/free-port';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET } from './support/reports-client';
import { until } from './support/until';

const PASSWORD = 'S3cret-Pa55-for-tests';
const REDIS_LINE = /\[Redis/;
const ROLES = ['command', 'queue', 'subscriber'];

interface HealthBody {
  status: string;
  details: Record<string, { status: string; state: string; downForMs?: number; latencyMs?: number }>;
}

const apps: AppProcess[] = [];
async function startApp(env: Record<string, string>, options?: { waitForListening?: boolean }): Promise<AppProcess> {
  const app = await AppProcess.start(env, options);
  apps.push(app);
  return app;
}

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.stop()));
});
afterAll(stopAllRedisServers);

describe('Redis restart while the app runs', () => {
  it('every client reconnects by itself, /health returns to 200 and the app is never restarted', async () => {
    const redis = await RedisServer.start({ password: PASSWORD });
    const app = await startApp({ REDIS_URL: redis.url(), HEALTH_REDIS_GRACE_SECONDS: '30' });
    await app.waitForLines(/ready in \d+ ms/, 3);
    expect((await app.request('/health')).status).toBe(200);

    // APP_ROLE all runs the worker, whose blocking connection is the fourth, named as BullMQ names it (getWorkers() finds it).
    const names = await until(
      () => redis.clientList(),
      (list) => list.length === 4,
    );
    expect(names.filter((name) => !name.includes(':w:')).sort()).toEqual(ROLES.map((role) => `pharmacare:${role}:${app.pid}`).sort());
    expect(names.filter((name) => name.includes(':w:'))).toEqual([expect.stringMatching(new RegExp(`^pharmacare:am9icw==:w:\\S+:${app.pid}$`))]);

    await redis.restart();
    // The three roles; the worker's blocking connection (queue-duplicate) logs its own recovery too.
    const recovered = await app.waitForLines(/\[Redis:(command|queue|subscriber)\] recovered after/, 3, 20_000);
    expect(recovered).toHaveLength(3);

    const health = await app.request('/health');
    expect(health.status).toBe(200);
    for (const role of ROLES) expect((health.body as HealthBody).details[`redis:${role}`].status).toBe('up');
    expect(app.lines.some((line) => /listening on http/.test(line))).toBe(true);
    expect(app.matching(/listening on http/)).toHaveLength(1);
    expect(app.output).not.toContain(PASSWORD);
    expect(health.text).not.toContain(PASSWORD);
  });

  it('/health answers within 2 s while Redis is frozen (SIGSTOP), degraded inside the grace period; one line names it, one says it answers again', async () => {
    const redis = await RedisServer.start();
    const app = await startApp({ REDIS_URL: redis.url(), HEALTH_REDIS_GRACE_SECONDS: '30' });
    await app.waitForLines(/ready in \d+ ms/, 3);
    redis.pause();
    try {
      for (let probe = 0; probe < 3; probe++) {
        const health = await app.request('/health', { signal: AbortSignal.timeout(2_000) });
        expect(health.status).toBe(200);
        const body = health.body as HealthBody;
        expect(body.status).toBe('degraded');
        for (const role of ROLES) expect(body.details[`redis:${role}`]).toMatchObject({ status: 'degraded', state: 'unresponsive' });
      }
      // Only /health notices (no connection drops, commands only time out): once, whichever role saw it first.
      await app.waitForLine(/\[Redis\] Redis of REDIS_URL is connected but silent: no PING reply within 1000 ms/);
      expect(app.matching(/connected but silent/)).toHaveLength(1);
    } finally {
      redis.resume();
    }
    await until(
      () => app.request('/health'),
      (response) => (response.body as HealthBody).status === 'ok',
    );
    await app.waitForLine(/\[Redis\] Redis of REDIS_URL answers again, after \d+ ms without a reply/);
    expect(app.matching(/answers again/)).toHaveLength(1);
    expect(app.matching(/connected but silent/)).toHaveLength(1);
  });
});

describe('Redis unreachable at boot', () => {
  it('serves HTTP, turns /health 503 after the grace period, logs about ten lines in 60 s, and recovers when Redis appears', async () => {
    const port = await freePort();
    const app = await startApp({ REDIS_URL: `redis://default:${PASSWORD}@127.0.0.1:${port}`, HEALTH_REDIS_GRACE_SECONDS: '2' });

    expect((await app.request('/health/live')).status).toBe(200);
    const early = await app.request('/health');
    expect(early.status).toBe(200);
    expect((early.body as HealthBody).status).toBe('degraded');

    // Past the 2 s grace every client must be reported down.
    await app.waitForLines(/cannot connect: connection refused/, 3);
    const allDown = (response: AppResponse) => ROLES.every((role) => (response.body as HealthBody).details[`redis:${role}`].status === 'down');
    const late = await until(() => app.request('/health'), allDown);
    expect(late.status).toBe(503);
    for (const role of ROLES) {
      const detail = (late.body as HealthBody).details[`redis:${role}`];
      expect(detail.status).toBe('down');
      expect(detail.downForMs).toBeGreaterThanOrEqual(2_000);
    }

    // A minute of outage: one summary per client, not a flood.
    await app.waitForLines(/still down after/, 3, 100_000);
    const redisLines = app.matching(REDIS_LINE);
    expect(redisLines.length).toBeGreaterThanOrEqual(9);
    expect(redisLines.length).toBeLessThanOrEqual(12);
    expect(app.output).not.toMatch(/Unhandled error event/);

    const redis = await RedisServer.start({ port, password: PASSWORD });
    // The three roles and the worker's blocking connection (queue-duplicate), which /health's queue:worker reports.
    await app.waitForLines(/recovered after/, 4, 40_000);
    expect((await app.request('/health')).status).toBe(200);
    expect(app.output).not.toContain(PASSWORD);
    expect(late.text).not.toContain(PASSWORD);
    await redis.stop();
  }, 180_000);
});

describe('SIGTERM', () => {
  it('with Redis up: closes every connection (QUIT) and exits 0, with nothing logged as an error', async () => {
    const redis = await RedisServer.start();
    const app = await startApp({ REDIS_URL: redis.url(), JWT_SECRET });
    await app.waitForLines(/ready in \d+ ms/, 3);
    // The worker's blocking connection too, which it closes first.
    await until(
      () => app.request('/health'),
      (health) => (health.body as HealthBody).details['queue:worker']?.status === 'up',
    );
    const exit = await app.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(app.output).toMatch(/closed 3 connections/);
    expect(await redis.clientList()).toEqual([]);
    // The worker closing its blocking connection is a deploy, not an outage: an ERROR line there pages someone.
    expect(app.matching(/\bERROR\b|\bWARN\b/)).toEqual([]);
  });

  it('with Redis frozen: still exits well within the shutdown deadline', async () => {
    const redis = await RedisServer.start();
    const app = await startApp({ REDIS_URL: redis.url(), SHUTDOWN_TIMEOUT_SECONDS: '3' });
    await app.waitForLines(/ready in \d+ ms/, 3);
    redis.pause();
    try {
      const started = Date.now();
      const exit = await app.stop(10_000);
      expect(exit.signal).toBeNull();
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      redis.resume();
    }
  });

  it('with Redis unreachable: exits 0 without waiting on it', async () => {
    const app = await startApp({ REDIS_URL: `redis://127.0.0.1:${await freePort()}`, SHUTDOWN_TIMEOUT_SECONDS: '5' });
    await app.waitForLines(/cannot connect/, 3);
    expect(await app.stop(10_000)).toEqual({ code: 0, signal: null });
  });
});
