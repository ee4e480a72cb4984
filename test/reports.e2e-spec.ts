import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { getReport, JWT_SECRET, postReport, settledReport, tokenFor } from './support/reports-client';

const ADMIN = { ADMIN_USER: 'ops', ADMIN_PASSWORD: 'dashboard-pass-123' };
let redis: RedisServer;
let web: AppProcess;
let worker: AppProcess;
const pharmacy1 = tokenFor('u1', 'pharmacy-1');
const pharmacy2 = tokenFor('u9', 'pharmacy-2');

beforeAll(async () => {
  redis = await RedisServer.start();
  const env = { REDIS_URL: redis.url(), JWT_SECRET, LOG_LEVEL: 'debug' };
  [web, worker] = await Promise.all([AppProcess.start({ ...env, APP_ROLE: 'web', ...ADMIN }), AppProcess.start({ ...env, APP_ROLE: 'worker', ...ADMIN })]);
  await Promise.all([web.waitForLines(/ready in \d+ ms/, 3), worker.waitForLines(/ready in \d+ ms/, 3)]);
});

afterAll(async () => {
  await Promise.all([web?.stop(), worker?.stop()]);
  await stopAllRedisServers();
});

describe('POST /reports and GET /reports/:id', () => {
  const sales = [
    { sku: 'AMOX-500', quantity: 2, unitPrice: 3.5, soldAt: '2026-11-01T10:00:00Z' },
    { sku: 'IBU-200', quantity: 3, unitPrice: 1.1, soldAt: '2026-11-01T23:30:00Z' },
    { sku: 'AMOX-500', quantity: 1, unitPrice: 3.5, soldAt: '2026-11-02T08:15:00+01:00' },
    { sku: 'PARA-1G', quantity: 5, unitPrice: 0.7, soldAt: '2026-11-02T09:00:00Z' },
  ];

  it('requires a valid JWT', async () => {
    expect((await web.request('/reports', { method: 'POST' })).status).toBe(401);
    expect((await web.request('/reports/rpt_00000000000000000000000000000000')).status).toBe(401);
  });

  it('answers 400 listing every problem of a bad body', async () => {
    const response = await web.request('/reports', {
      method: 'POST',
      headers: { authorization: `Bearer ${pharmacy1}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'stock-count', sales: [{ sku: '', quantity: 1.5, unitPrice: -1, soldAt: 'yesterday' }] }),
    });
    expect(response.status).toBe(400);
    const problems = (response.body as { message: string[] }).message;
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(/^type /m);
    for (const field of ['sku', 'quantity', 'unitPrice', 'soldAt']) expect(problems.join('\n')).toContain(`sales[0].${field}`);
  });

  it('accepts with 202 and a Location, computes the summary, and finds the same report for the same data', async () => {
    // An idle worker can finish a 4-line report before web reads its state back (then POST answers 200 with the
    // result, as for a report already done). Paused, it cannot take the job: the answer is the new-report one.
    const accepted = await worker.whilePaused(() => postReport(web, pharmacy1, sales));
    expect(accepted.status).toBe(202);
    const { id, status } = accepted.body as { id: string; status: string };
    expect(id).toMatch(/^rpt_[0-9a-f]{32}$/);
    expect(status).toBe('queued');
    expect(accepted.headers.get('location')).toBe(`/reports/${id}`);

    const done = await settledReport(web, pharmacy1, id);
    // By hand: AMOX 3 x 3.50 = 10.50; IBU 3 x 1.10 = 3.30; PARA 5 x 0.70 = 3.50.
    // Days (UTC): 11-01: AMOX 2 (7.00) + IBU 3 (3.30); 11-02: AMOX 1 at 07:15Z (3.50) + PARA 5 (3.50).
    expect(done.body).toEqual({
      id,
      status: 'completed',
      result: {
        totalRevenue: 17.3,
        totalUnits: 11,
        bySku: [
          { sku: 'AMOX-500', units: 3, revenue: 10.5 },
          { sku: 'PARA-1G', units: 5, revenue: 3.5 },
          { sku: 'IBU-200', units: 3, revenue: 3.3 },
        ],
        byDay: [
          { day: '2026-11-01', units: 5, revenue: 10.3 },
          { day: '2026-11-02', units: 6, revenue: 7 },
        ],
      },
    });

    const again = await postReport(web, pharmacy1, sales);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(done.body);
    expect(worker.matching(new RegExp(`report ${id} computed`))).toHaveLength(1);
  });

  it('never shows one tenant the report of another (404), and gives the other tenant its own id', async () => {
    const mine = await postReport(web, pharmacy1, sales);
    const { id } = mine.body as { id: string };
    expect((await getReport(web, pharmacy2, id)).status).toBe(404);
    // Completed and read by its tenant, it is in this instance's memory tier: still 404 for the other one.
    expect((await settledReport(web, pharmacy1, id)).status).toBe(200);
    expect((await getReport(web, pharmacy1, id)).headers.get('x-cache')).toBe('hit');
    expect((await getReport(web, pharmacy2, id)).status).toBe(404);
    const theirs = await postReport(web, pharmacy2, sales);
    expect((theirs.body as { id: string }).id).not.toBe(id);
    expect((await getReport(web, pharmacy1, 'rpt_ffffffffffffffffffffffffffffffff')).status).toBe(404);
    // Not an id at all: 400 from the parameter's schema, which discloses nothing about any report.
    expect((await getReport(web, pharmacy1, 'not-an-id')).status).toBe(400);
  });
});

describe('APP_ROLE', () => {
  it('worker serves only /health and /health/live; its /health reports the worker, the web one does not', async () => {
    expect((await worker.request('/reports/rpt_00000000000000000000000000000000', { headers: { authorization: `Bearer ${pharmacy1}` } })).status).toBe(404);
    expect((await worker.request('/auth/me', { headers: { authorization: `Bearer ${pharmacy1}` } })).status).toBe(404);
    expect((await worker.request('/health/live')).status).toBe(200);
    const workerHealth = await worker.request('/health');
    expect(workerHealth.status).toBe(200);
    expect((workerHealth.body as { details: Record<string, { status: string }> }).details['queue:worker']).toMatchObject({ status: 'up', running: true, wedged: false });
    const webHealth = await web.request('/health');
    expect(Object.keys((webHealth.body as { details: object }).details)).not.toContain('queue:worker');
  });
});

describe('queue dashboard', () => {
  it('is behind basic auth on the web role and absent elsewhere', async () => {
    expect((await web.request('/admin/queues')).status).toBe(401);
    const basic = `Basic ${Buffer.from(`${ADMIN.ADMIN_USER}:${ADMIN.ADMIN_PASSWORD}`).toString('base64')}`;
    expect((await web.request('/admin/queues', { headers: { authorization: basic } })).status).toBe(200);
    const wrong = `Basic ${Buffer.from(`${ADMIN.ADMIN_USER}:nope`).toString('base64')}`;
    expect((await web.request('/admin/queues', { headers: { authorization: wrong } })).status).toBe(401);
    expect((await worker.request('/admin/queues', { headers: { authorization: basic } })).status).toBe(404);
  });

  it('answers 404 when ADMIN_USER and ADMIN_PASSWORD are unset', async () => {
    const plain = await AppProcess.start({ REDIS_URL: redis.url(), JWT_SECRET, APP_ROLE: 'web' });
    try {
      expect((await plain.request('/admin/queues')).status).toBe(404);
    } finally {
      await plain.stop();
    }
  });
});
