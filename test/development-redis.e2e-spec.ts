import { afterAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET, postReport, salesFor, settledReport, tokenFor } from './support/reports-client';

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

afterAll(stopAllRedisServers);

describe('npm run start:dev without REDIS_URL', () => {
  it('starts a private Redis (never 6379), says so in one line, serves a healthy /health and stops that Redis on shutdown', async () => {
    const app = await AppProcess.start({ NODE_ENV: 'development' });
    try {
      const announced = app.matching(/started a private development Redis/);
      expect(announced).toHaveLength(1);
      const port = Number(/redis:\/\/127\.0\.0\.1:(\d+)/.exec(announced[0])?.[1]);
      expect(port).toBeGreaterThan(0);
      expect(port).not.toBe(6379);

      await app.waitForLines(/ready in \d+ ms/, 3);
      const health = await app.request('/health');
      expect(health.status).toBe(200);
      expect((health.body as { status: string }).status).toBe('ok');

      const pid = Number(/pid (\d+)/.exec(announced[0])?.[1]);
      expect(isRunning(pid)).toBe(true);
      expect(await app.stop()).toEqual({ code: 0, signal: null });
      expect(isRunning(pid)).toBe(false);
      // Stopped after the app's connections closed: none of them saw its server go away.
      expect(app.matching(/\bERROR\b/)).toEqual([]);
    } finally {
      await app.stop();
    }
  });

  it('with REDIS_CLUSTER=true, starts a private Redis Cluster of three masters, serves reports on it and stops every node on shutdown', async () => {
    const app = await AppProcess.start({ NODE_ENV: 'development', JWT_SECRET, REDIS_CLUSTER: 'true' });
    try {
      const announced = app.matching(/started a private development Redis Cluster of 3 masters at redis:\/\/127\.0\.0\.1:\d+/);
      expect(announced).toHaveLength(1);
      const pids = (/\(pid ([\d, ]+);/.exec(announced[0])?.[1] ?? '').split(', ').map(Number);
      expect(pids).toHaveLength(3);
      await app.waitForLines(/ready in \d+ ms/, 3);
      const health = await app.request('/health');
      expect(health.status).toBe(200);
      expect((health.body as { details: Record<string, unknown> }).details['redis:command']).toMatchObject({ status: 'up', clusterState: 'ok', mastersUp: 3 });
      const token = tokenFor('u1', 'pharmacy-1');
      const { id } = (await postReport(app, token, salesFor(1))).body as { id: string };
      expect((await settledReport(app, token, id)).body).toMatchObject({ id, status: 'completed' });

      // The nodes' cluster state files, in a directory of the app's own: stop() removes it once every node has exited.
      const clusterDir = join(process.cwd(), '.dev', 'redis-cluster', String(app.pid));
      expect(existsSync(clusterDir)).toBe(true);
      expect(await app.stop()).toEqual({ code: 0, signal: null });
      expect(pids.filter(isRunning)).toEqual([]);
      expect(existsSync(clusterDir)).toBe(false);
    } finally {
      await app.stop();
    }
  }, 60_000);

  it('without redis-server on PATH, exits 1 with one line saying what to install or set, and no stack trace', async () => {
    const app = await AppProcess.start({ NODE_ENV: 'development', PATH: '/nonexistent' }, { waitForListening: false });
    const exit = await app.exited;
    expect(exit).toEqual({ code: 1, signal: null });
    expect(app.matching(/redis-server is not on PATH\. Install Redis .* or set REDIS_URL/)).toHaveLength(1);
    expect(app.matching(/^\s+at /)).toEqual([]);
  });

  it('with REDIS_CACHE_URL set, keeps the cache there and everything else on the private Redis', async () => {
    const cache = await RedisServer.start();
    const app = await AppProcess.start({ NODE_ENV: 'development', JWT_SECRET, REDIS_CACHE_URL: cache.url() });
    try {
      expect(app.matching(/started a private development Redis at redis:\/\/127\.0\.0\.1:\d+, for everything but the cache \(on REDIS_CACHE_URL\)/)).toHaveLength(1);
      await app.waitForLines(/ready in \d+ ms/, 5);
      const token = tokenFor('u1', 'pharmacy-1');
      const { id } = (await postReport(app, token, salesFor(1))).body as { id: string };
      expect((await settledReport(app, token, id)).body).toMatchObject({ id, status: 'completed' });
      const keys = (await cache.command('KEYS', '*')).split('\n').filter(Boolean);
      expect(keys.some((key) => key.startsWith('pharmacare:cache:'))).toBe(true);
      expect(keys.filter((key) => !key.startsWith('pharmacare:cache'))).toEqual([]);
    } finally {
      await app.stop();
    }
  });
});
