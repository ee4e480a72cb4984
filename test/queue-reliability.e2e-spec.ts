import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET, postReport, salesFor, settledReport, tokenFor } from './support/reports-client';
import { until } from './support/until';

const token = tokenFor('u1', 'pharmacy-1');
const apps: AppProcess[] = [];

async function start(env: Record<string, string>): Promise<AppProcess> {
  // Debug: the specs count the worker's per-job "report ... computed" lines. One tenant builds backlogs of
  // hundreds of jobs here, past the default bound on a tenant's work in flight (20).
  const app = await AppProcess.start({ JWT_SECRET, LOG_LEVEL: 'debug', QUEUE_TENANT_MAX_JOBS: '1000', ...env });
  apps.push(app);
  await app.waitForLines(/ready in \d+ ms/, 3);
  return app;
}

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.stop()));
  await stopAllRedisServers();
});

/** Posts `count` distinct reports; each must be accepted (202, or 200 when a fast worker already finished it). */
async function postMany(web: AppProcess, count: number, seedOffset: number, lines?: number): Promise<string[]> {
  const ids: string[] = [];
  for (let seed = seedOffset; seed < seedOffset + count; seed++) {
    const response = await postReport(web, token, salesFor(seed, lines));
    expect([200, 202]).toContain(response.status);
    ids.push((response.body as { id: string }).id);
  }
  return ids;
}

/** Posts until accepted: 503 (refused, nothing stored) is retried, as a client honouring Retry-After would. */
async function postUntilAccepted(web: AppProcess, seed: number): Promise<string> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const response = await postReport(web, token, salesFor(seed));
    if (response.status === 200 || response.status === 202) return (response.body as { id: string }).id;
    expect(response.status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`report ${seed} was never accepted`);
}

const computedIds = (...workers: AppProcess[]) =>
  workers.flatMap((worker) => worker.matching(/report rpt_\w+ computed/)).map((line) => /report (rpt_\w+) computed/.exec(line)?.[1]);

/**
 * The reports computed once every one of `ids` has its line: a result is readable as soon as it is stored, a moment
 * before the worker's line about it reaches the test through its stdout.
 */
const computedOnceLogged = (ids: readonly string[], ...workers: AppProcess[]) =>
  until(
    async () => computedIds(...workers),
    (computed) => ids.every((id) => computed.includes(id)),
    10_000,
  );

describe('two worker processes', () => {
  it('complete each of 200 jobs exactly once', async () => {
    const redis = await RedisServer.start();
    const env = { REDIS_URL: redis.url() };
    const [web, workerA, workerB] = await Promise.all([start({ ...env, APP_ROLE: 'web' }), start({ ...env, APP_ROLE: 'worker' }), start({ ...env, APP_ROLE: 'worker' })]);

    const ids = await postMany(web, 200, 0);
    expect(new Set(ids).size).toBe(200);
    for (const id of ids) expect((await settledReport(web, token, id)).body).toMatchObject({ id, status: 'completed' });

    const computed = await computedOnceLogged(ids, workerA, workerB);
    expect(computed).toHaveLength(200);
    expect(new Set(computed)).toEqual(new Set(ids));
    expect(workerA.matching(/computed/).length).toBeGreaterThan(0);
    expect(workerB.matching(/computed/).length).toBeGreaterThan(0);
  }, 120_000);
});

describe('Redis restart during processing', () => {
  it('loses no accepted job', async () => {
    const redis = await RedisServer.start({ durable: true });
    const env = { REDIS_URL: redis.url() };
    const web = await start({ ...env, APP_ROLE: 'web' });
    // A backlog first, so the restart lands while the worker is busy with it.
    const ids = await postMany(web, 150, 1000, 500);
    // The job in flight when Redis went away stays active until its lock expires (30 s) and the stalled
    // check finds it; a short interval keeps that inside the test (the default is 240 s).
    const worker = await start({ ...env, APP_ROLE: 'worker', QUEUE_CONCURRENCY: '1', QUEUE_STALLED_INTERVAL_SECONDS: '5' });
    await worker.waitForLine(/report rpt_\w+ computed/);
    const restarting = redis.restart();
    expect(computedIds(worker).length).toBeLessThan(150);
    for (let seed = 2000; seed < 2030; seed++) ids.push(await postUntilAccepted(web, seed));
    await restarting;
    // The three roles of each (the worker's blocking connection logs its own recovery too).
    const roleRecovered = /\[Redis:(command|queue|subscriber)\] recovered after/;
    await Promise.all([web.waitForLines(roleRecovered, 3, 30_000), worker.waitForLines(roleRecovered, 3, 30_000)]);

    for (const id of ids) expect((await settledReport(web, token, id, 60_000)).body).toMatchObject({ id, status: 'completed' });
    expect(new Set(await computedOnceLogged(ids, worker))).toEqual(new Set(ids));
  }, 180_000);
});

describe('producers while Redis is down', () => {
  it('refuse within about a second with 503 and Retry-After, and accept again once Redis is back', async () => {
    const redis = await RedisServer.start();
    const web = await start({ REDIS_URL: redis.url(), APP_ROLE: 'web' });
    await redis.kill();
    await web.waitForLines(/connection lost/, 3);

    const started = Date.now();
    const refused = await postReport(web, token, salesFor(5000));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect((refused.body as { message: string }).message).toMatch(/Redis is unreachable/);

    await redis.restart();
    await web.waitForLines(/recovered after/, 3, 30_000);
    expect((await postReport(web, token, salesFor(5000))).status).toBe(202);
  }, 60_000);
});

describe('a worker SIGKILLed mid-job', () => {
  it('leaves the job to another worker, which retries it within the documented bound and says so in one line', async () => {
    const redis = await RedisServer.start();
    const env = { REDIS_URL: redis.url() };
    const web = await start({ ...env, APP_ROLE: 'web' });
    const intervalSeconds = 5;

    const doomed = spawn(process.execPath, ['--import', 'tsx', 'test/support/hanging-worker.ts', String(redis.port), 'pharmacare', String(intervalSeconds * 1000)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const ready = new Promise<void>((resolve) => doomed.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('took') && resolve()));
    const exited = new Promise<void>((resolve) => doomed.once('exit', () => resolve()));
    const { id } = (await postReport(web, token, salesFor(7000))).body as { id: string };
    await ready;
    doomed.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();

    const survivor = await start({ ...env, APP_ROLE: 'worker', QUEUE_STALLED_INTERVAL_SECONDS: String(intervalSeconds) });
    expect((await settledReport(web, token, id, 60_000)).body).toMatchObject({ id, status: 'completed' });
    // BullMQ marks a job at one stalled check and moves it at the first later one once its 30 s lock has expired:
    // QUEUE_STALLED_INTERVAL_SECONDS + max(QUEUE_STALLED_INTERVAL_SECONDS, 30) (README), plus a few seconds to run it.
    expect(Date.now() - killedAt).toBeLessThan((intervalSeconds + Math.max(intervalSeconds, 30) + 5) * 1000);
    expect(survivor.matching(new RegExp(`job ${id} recovered: its worker stopped renewing the lock`))).toHaveLength(1);
    expect(await computedOnceLogged([id], survivor)).toEqual([id]);
  }, 90_000);
});
