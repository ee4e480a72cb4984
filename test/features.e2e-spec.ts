import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Queue } from 'bullmq';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { getReorder, postReorder, settledReorder } from './support/reorders-client';
import { getReport, JWT_SECRET, postReport, salesFor, settledReport, tokenFor } from './support/reports-client';
import { reportId } from '../src/reports/report-id';
import { PresenceClient } from './support/socket-client';
import { until } from './support/until';

// Two features, each declaring its own job kind, cache entries and socket event through the infrastructure's
// public exports: reports (3 attempts, the default) and reorder suggestions (5 attempts, kept 7 days).
const apps: AppProcess[] = [];
const clients: PresenceClient[] = [];
const author = tokenFor('u1', 'pharmacy-1');
const stock = {
  salesWindowDays: 28,
  items: [
    // 56 sold in 28 days: 2 a day. Lead 7 + cover 14 days: target 42; 10 on hand + 5 on order: order 27.
    // Reorder point 14 >= 15 available? No: not urgent.
    { sku: 'AMOX-500', onHand: 10, onOrder: 5, leadTimeDays: 7, unitsSold: 56 },
    // 7 sold in 28 days: 0.25 a day. Target ceil(0.25 x 17) = 5; 0 on hand: order 5; point ceil(0.75) = 1 >= 0: urgent.
    { sku: 'PARA-1G', onHand: 0, leadTimeDays: 3, unitsSold: 7 },
    // Nothing sold: nothing to order, never urgent, no days-of-stock figure.
    { sku: 'IBU-200', onHand: 4, leadTimeDays: 5, unitsSold: 0 },
  ],
};
const expectedSuggestions = {
  salesWindowDays: 28,
  coverDays: 14,
  suggestions: [
    { sku: 'PARA-1G', dailySales: 0.25, daysOfStock: 0, reorderPoint: 1, suggestedQuantity: 5, urgent: true },
    { sku: 'AMOX-500', dailySales: 2, daysOfStock: 5, reorderPoint: 14, suggestedQuantity: 27, urgent: false },
    { sku: 'IBU-200', dailySales: 0, daysOfStock: null, reorderPoint: 0, suggestedQuantity: 0, urgent: false },
  ],
  totalSuggestedUnits: 32,
};

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all(apps.map((app) => app.stop()));
  await stopAllRedisServers();
});

async function start(env: Record<string, string>): Promise<AppProcess> {
  const app = await AppProcess.start({ JWT_SECRET, ...env });
  apps.push(app);
  await app.waitForLines(/ready in \d+ ms/, 3);
  return app;
}

/** The job hash's `opts` as BullMQ stored them, read straight from Redis. */
async function storedAttempts(redis: RedisServer, id: string): Promise<number> {
  return (JSON.parse(await redis.command('HGET', `pharmacare:jobs:${id}`, 'opts')) as { attempts: number }).attempts;
}

describe('two web instances and one worker', () => {
  let redis: RedisServer;
  let webA: AppProcess;
  let webB: AppProcess;
  let worker: AppProcess;

  beforeAll(async () => {
    redis = await RedisServer.start();
    [webA, webB, worker] = await Promise.all([
      start({ REDIS_URL: redis.url(), APP_ROLE: 'web' }),
      start({ REDIS_URL: redis.url(), APP_ROLE: 'web' }),
      start({ REDIS_URL: redis.url(), APP_ROLE: 'worker' }),
    ]);
  });

  it('computes reorder suggestions posted on one instance, tells the author on another, and serves them there', async () => {
    const socket = await PresenceClient.connect(webA, author);
    clients.push(socket);
    const posted = await worker.whilePaused(() => postReorder(webB, author, stock));
    expect(posted.status).toBe(202);
    const { id, status } = posted.body as { id: string; status: string };
    expect(id).toMatch(/^ro_[0-9a-f]{32}$/);
    expect(status).toBe('queued');
    expect(posted.headers.get('location')).toBe(`/reorders/${id}`);

    expect(await socket.waitFor<{ id: string }>('reorder:completed', (payload) => payload.id === id, 20_000)).toEqual({ id });
    const served = await getReorder(webA, author, id);
    expect(served.status).toBe(200);
    expect(served.body).toEqual({ id, status: 'completed', result: expectedSuggestions });
    // Another pharmacy cannot read it, nor learn that it exists.
    expect((await getReorder(webA, tokenFor('u1', 'pharmacy-2'), id)).status).toBe(404);
    // The same data again is the same reorder, answered from the cache.
    const again = await postReorder(webA, author, stock);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ id, status: 'completed', result: expectedSuggestions });
  }, 60_000);

  it("discards a tenant's suggestions on every instance with one DELETE, and leaves other tenants' alone", async () => {
    const other = tokenFor('u5', 'pharmacy-5');
    const mine = (await postReorder(webA, author, { ...stock, coverDays: 21 })).body as { id: string };
    const theirs = (await postReorder(webA, other, { ...stock, coverDays: 21 })).body as { id: string };
    // Read on both instances, so each holds them in its memory tier.
    for (const web of [webA, webB]) {
      expect((await settledReorder(web, author, mine.id)).status).toBe(200);
      expect((await settledReorder(web, other, theirs.id)).status).toBe(200);
    }
    expect((await webB.request('/reorders', { method: 'DELETE', headers: { authorization: `Bearer ${author}` } })).status).toBe(204);
    // The invalidation reaches webA's memory tier through Redis pub/sub: wait for it rather than for a fixed time.
    await until(() => getReorder(webA, author, mine.id), (response) => response.status === 404, 5_000, 50);
    expect((await getReorder(webB, author, mine.id)).status).toBe(404);
    expect((await getReorder(webA, other, theirs.id)).status).toBe(200);
  }, 60_000);

  it('enqueues each kind under its own policy: 5 attempts for reorders, the default 3 for reports', async () => {
    const [reorder, report] = await worker.whilePaused(async () => {
      const reorderPosted = await postReorder(webA, author, { ...stock, salesWindowDays: 30 });
      const reportPosted = await postReport(webA, author, salesFor(7_001));
      const ids = [(reorderPosted.body as { id: string }).id, (reportPosted.body as { id: string }).id];
      return [{ id: ids[0], attempts: await storedAttempts(redis, ids[0]) }, { id: ids[1], attempts: await storedAttempts(redis, ids[1]) }];
    });
    expect(reorder.attempts).toBe(5);
    expect(report.attempts).toBe(3);
    expect((await settledReorder(webB, author, reorder.id)).body).toMatchObject({ status: 'completed' });
    expect((await settledReport(webB, author, report.id)).body).toMatchObject({ status: 'completed' });
  }, 60_000);

  it('answers 400 with every problem of a bad reorder body, in the API-wide format', async () => {
    const response = await postReorder(webA, author, {
      salesWindowDays: 0,
      items: [
        { sku: '', onHand: -1, leadTimeDays: 1.5, unitsSold: 3 },
        { sku: 'A', onHand: 1, leadTimeDays: 400, unitsSold: 1 },
      ],
    });
    expect(response.status).toBe(400);
    expect((response.body as { message: string[] }).message).toEqual([
      'salesWindowDays must be at least 1',
      'items[0].sku must not be empty',
      'items[0].onHand must not be negative',
      'items[0].leadTimeDays must be a whole number of days',
      'items[1].leadTimeDays must be at most 365',
    ]);
    const badId = await getReorder(webA, author, 'rpt_0123456789abcdef0123456789abcdef');
    expect(badId.status).toBe(400);
    expect((badId.body as { message: string[] }).message).toEqual(['id must be a reorder id: ro_ followed by 32 lowercase hex digits']);
  });
});

describe('both features in one APP_ROLE=all process', () => {
  it('serves a completed report after 1,005 later jobs, from its one stored copy, and a reorder beside it', async () => {
    const redis = await RedisServer.start();
    const app = await start({ REDIS_URL: redis.url(), APP_ROLE: 'all', QUEUE_CONCURRENCY: '8' });
    const first = await postReport(app, author, salesFor(1));
    const { id } = first.body as { id: string };
    const done = await settledReport(app, author, id);
    expect(done.body).toMatchObject({ id, status: 'completed' });

    // A volume of other jobs, added straight to the queue so the test does not wait on 1,005 HTTP round trips.
    const queue = new Queue('jobs', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'pharmacare' });
    try {
      await queue.addBulk(
        Array.from({ length: 1_005 }, (_unused, n) => ({
          name: 'report',
          data: { tenantId: 'pharmacy-3', userId: 'bulk', type: 'sales-summary', request: { type: 'sales-summary', sales: salesFor(10_000 + n, 1) } },
          opts: { jobId: `rpt_bulk${String(n).padStart(28, '0')}`, removeOnComplete: true, attempts: 1 },
        })),
      );
      await until(() => queue.getJobCounts('waiting', 'active', 'failed'), (counts) => counts.waiting + counts.active === 0, 60_000, 250);
      expect((await queue.getJobCounts('failed')).failed).toBe(0);
    } finally {
      await queue.close();
    }

    // A fresh instance (empty memory tier) still finds it: in Redis, for REPORT_TTL_SECONDS, not behind 1,000 jobs.
    const fresh = await start({ REDIS_URL: redis.url(), APP_ROLE: 'web' });
    const later = await getReport(fresh, author, id);
    expect(later.status).toBe(200);
    expect(later.body).toEqual(done.body);
    // Stored once: no job hash holds it any more (neither data.result nor returnvalue), only its cache entry.
    expect(await redis.command('EXISTS', `pharmacare:jobs:${id}`)).toBe('0');
    const keysNamingIt = (await redis.command('KEYS', `*${id}*`)).split('\n').filter(Boolean);
    expect(keysNamingIt).toEqual([`pharmacare:cache:v1:t:pharmacy-1:report:${id}`]);

    const reorder = await postReorder(app, author, stock);
    const reorderId = (reorder.body as { id: string }).id;
    expect((await settledReorder(app, author, reorderId)).body).toEqual({ id: reorderId, status: 'completed', result: expectedSuggestions });
  }, 120_000);

  it('drops the input of a job that failed for good, and a new POST of the same data restores it and retries', async () => {
    const redis = await RedisServer.start();
    const app = await start({ REDIS_URL: redis.url(), APP_ROLE: 'all' });
    const sales = salesFor(77);
    const id = reportId('pharmacy-1', { type: 'sales-summary', sales });
    // A job under that id whose input cannot be computed (a date no parser accepts), as a bug would leave one.
    const queue = new Queue('jobs', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'pharmacare' });
    try {
      const broken = { type: 'sales-summary', sales: [{ ...sales[0], soldAt: 'not a date' }] };
      await queue.add('report', { tenantId: 'pharmacy-1', userId: 'u1', type: 'sales-summary', request: broken }, { jobId: id, attempts: 1, removeOnComplete: true });
      const failed = await until(() => getReport(app, author, id), (response) => (response.body as { status?: string }).status === 'failed');
      expect(failed.status).toBe(200);
      expect(failed.body).toMatchObject({ id, status: 'failed', error: 'Invalid time value' });
      // Only who it belongs to is left of it; its failure stays readable.
      await until(async () => JSON.parse(await redis.command('HGET', `pharmacare:jobs:${id}`, 'data')) as object, (data) => !('request' in data));
      expect(JSON.parse(await redis.command('HGET', `pharmacare:jobs:${id}`, 'data'))).toEqual({ tenantId: 'pharmacy-1', userId: 'u1' });
    } finally {
      await queue.close();
    }
    const retried = await postReport(app, author, sales);
    expect(retried.body).toMatchObject({ id });
    const done = await settledReport(app, author, id);
    expect(done.body).toMatchObject({ id, status: 'completed', result: { totalUnits: sales.reduce((sum, line) => sum + line.quantity, 0) } });
  }, 60_000);
});
