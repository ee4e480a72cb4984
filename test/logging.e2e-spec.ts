import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET, postReport, Sale, settledReport, tokenFor } from './support/reports-client';

const REDIS_PASSWORD = 'Logs-Redis-Pa55word-for-tests';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface JsonLine {
  level: string;
  time: string;
  msg: string;
  context?: string;
  reqId?: string;
  req?: { id: string; method: string; url: string; headers: Record<string, string> };
  res?: { statusCode: number };
}

/** Every line the process printed, parsed: throws (failing the test) on the first line that is not one JSON object. */
function jsonLines(app: AppProcess): JsonLine[] {
  return app.lines.map((line) => {
    try {
      return JSON.parse(line) as JsonLine;
    } catch {
      throw new Error(`not a JSON line: ${line}`);
    }
  });
}

/** Resolves with the parsed line of the given request id and context (pino writes reqId before context) once it is printed. */
async function lineFor(app: AppProcess, requestId: string, context = 'HTTP'): Promise<JsonLine> {
  const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return JSON.parse(await app.waitForLine(new RegExp(`"reqId":"${escaped(requestId)}".*"context":"${escaped(context)}"`))) as JsonLine;
}

let redis: RedisServer;
afterAll(stopAllRedisServers);

describe('NODE_ENV=production', () => {
  let app: AppProcess;
  const token = tokenFor('u1', 'pharmacy-logs');

  beforeAll(async () => {
    redis = await RedisServer.start({ password: REDIS_PASSWORD });
    // A 1 KiB cache limit makes GET /reports/:id warn "not caching" from app code inside the request.
    app = await AppProcess.start({ NODE_ENV: 'production', REDIS_URL: redis.url(), JWT_SECRET, CACHE_MAX_VALUE_KB: '1' });
    await app.waitForLines(/ready in \d+ ms/, 3);
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('prints one JSON object per line with level, time, context and msg', () => {
    const lines = jsonLines(app);
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) {
      expect(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).toContain(line.level);
      expect(new Date(line.time).toISOString()).toBe(line.time);
      expect(typeof line.msg).toBe('string');
    }
    expect(lines).toContainEqual(expect.objectContaining({ level: 'info', context: 'Redis:command', msg: expect.stringMatching(/^ready in \d+ ms$/) }));
    expect(lines).toContainEqual(expect.objectContaining({ level: 'info', context: 'Bootstrap', msg: expect.stringMatching(/^listening on http/) }));
  });

  it('gives every request an id, echoes it in x-request-id, and puts it on the request line and on app lines logged inside the request', async () => {
    const sales: Sale[] = Array.from({ length: 60 }, (_unused, index) => ({ sku: `LOG-SKU-${index}`, quantity: 1, unitPrice: 1.25, soldAt: '2026-11-02T10:00:00Z' }));
    const posted = await postReport(app, token, sales);
    const postId = posted.headers.get('x-request-id')!;
    expect(postId).toMatch(UUID);
    const postLine = await lineFor(app, postId);
    expect(postLine).toMatchObject({ level: 'info', req: { id: postId, method: 'POST', url: '/reports' }, res: { statusCode: posted.status } });

    // The first request that reads the completed report from Redis (the POST itself when the worker was quicker)
    // finds it over the 1 KiB memory limit, and the cache warns from inside that request.
    const settled = await settledReport(app, token, (posted.body as { id: string }).id);
    const getId = settled.headers.get('x-request-id')!;
    expect(getId).toMatch(UUID);
    expect(getId).not.toBe(postId);
    const readingRequestId = posted.status === 200 ? postId : getId;
    const appLine = await lineFor(app, readingRequestId, 'Cache');
    expect(appLine).toMatchObject({ level: 'warn', msg: expect.stringMatching(/^not keeping .* in this instance's memory tier: it is over CACHE_MAX_VALUE_KB/) });
    expect(await lineFor(app, getId)).toMatchObject({ req: { id: getId, method: 'GET' }, res: { statusCode: 200 } });
  });

  it('keeps a safe incoming x-request-id and replaces an unsafe one', async () => {
    const kept = await app.request('/reports/rpt_unknown', { headers: { 'x-request-id': 'edge-proxy.trace:42_a-b' } });
    expect(kept.headers.get('x-request-id')).toBe('edge-proxy.trace:42_a-b');
    expect(await lineFor(app, 'edge-proxy.trace:42_a-b')).toMatchObject({ level: 'warn', context: 'HTTP', res: { statusCode: 401 } });

    for (const unsafe of ['two words', 'x'.repeat(129), '"},{"injected":true']) {
      const replaced = await app.request('/auth/me', { headers: { 'x-request-id': unsafe } });
      const id = replaced.headers.get('x-request-id')!;
      expect(id).toMatch(UUID);
      expect((await lineFor(app, id)).req?.headers['x-request-id']).toBe(unsafe);
    }
  });

  it('logs /health at debug only, so probes do not flood the info log', async () => {
    expect((await app.request('/health', { headers: { 'x-request-id': 'render-probe-1' } })).status).toBe(200);
    await app.request('/health/live', { headers: { 'x-request-id': 'render-probe-2' } });
    await app.request('/nothing-here', { headers: { 'x-request-id': 'after-the-probes' } });
    await lineFor(app, 'after-the-probes');
    expect(app.output).not.toMatch(/render-probe-/);
  });

  it('never prints the bearer token, the cookie or the Redis password, anywhere in the process output', async () => {
    const cookie = 'session=cookie-value-that-must-not-leak-7f3a';
    const valid = await app.request('/reports/rpt_0123456789abcdef0123456789abcdef', {
      headers: { authorization: `Bearer ${token}`, cookie, 'x-request-id': 'with-credentials-1' },
    });
    expect(valid.status).toBe(404);
    const forged = 'forged.token-that-must-not-leak.9c1d';
    const invalid = await app.request('/auth/me', { headers: { authorization: `Bearer ${forged}`, cookie, 'x-request-id': 'with-credentials-2' } });
    expect(invalid.status).toBe(401);

    for (const id of ['with-credentials-1', 'with-credentials-2']) {
      const line = await lineFor(app, id);
      expect(line.req?.headers).toMatchObject({ authorization: '[Redacted]', cookie: '[Redacted]' });
    }
    for (const secret of [token, forged, 'cookie-value-that-must-not-leak', REDIS_PASSWORD, JWT_SECRET]) expect(app.output).not.toContain(secret);
  });
});

describe('NODE_ENV=development', () => {
  it('prints readable lines, not JSON: time, level, [context] message and the request id', async () => {
    redis ??= await RedisServer.start({ password: REDIS_PASSWORD });
    const app = await AppProcess.start({ NODE_ENV: 'development', REDIS_URL: redis.url(), JWT_SECRET, LOG_LEVEL: 'debug' });
    try {
      await app.waitForLines(/ready in \d+ ms/, 3);
      await app.request('/health', { headers: { 'x-request-id': 'dev-probe-1' } });
      const requestLine = await app.waitForLine(/dev-probe-1/);
      expect(requestLine).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] DEBUG \(\d+\): \[HTTP\] GET \/health 200 in \d+ ms \(request dev-probe-1\)$/);
      expect(app.matching(/listening on http/)[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(\d+\): \[Bootstrap\] listening on http:\/\/127\.0\.0\.1:\d+ \(NODE_ENV=development\)$/);
      for (const line of app.lines) expect(line).not.toMatch(/^\s*\{/);
    } finally {
      await app.stop();
    }
  });
});
