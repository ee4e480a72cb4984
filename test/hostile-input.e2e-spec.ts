import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import jwt from 'jsonwebtoken';
import { io, type Socket } from 'socket.io-client';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET, postReport, salesFor, tokenFor } from './support/reports-client';

/**
 * Hostile input against the built app as a process: what a validly signed but malformed token, an
 * unauthenticated socket, a foreign origin or an oversized body does to it. The process must stay up.
 */
const ALLOWED_ORIGIN = 'https://app.pharmacare.example';
const HEALTH_TOKEN = 'health-token-for-e2e-0123456789';

let redis: RedisServer;
let app: AppProcess;
const sockets: Socket[] = [];

const signed = (claims: object, options: jwt.SignOptions = { expiresIn: '5m' }) => jwt.sign(claims, JWT_SECRET, { algorithm: 'HS256', ...options });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Connects a socket.io client and resolves with how it ended: connected, or the server's connect_error message. */
function trySocket(path: string, options: Parameters<typeof io>[1] = {}): Promise<{ connected: boolean; error?: string; socket: Socket }> {
  const socket = io(`${app.baseUrl}${path}`, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5_000, ...options });
  sockets.push(socket);
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ connected: true, socket }));
    socket.once('connect_error', (error) => resolve({ connected: false, error: error.message, socket }));
  });
}

async function expectAlive(): Promise<void> {
  expect((await app.request('/health/live')).status).toBe(200);
}

beforeAll(async () => {
  redis = await RedisServer.start();
  app = await AppProcess.start({
    REDIS_URL: redis.url(),
    JWT_SECRET,
    APP_ROLE: 'web',
    CORS_ORIGINS: ALLOWED_ORIGIN,
    HEALTH_TOKEN,
    QUEUE_TENANT_MAX_JOBS: '3',
  });
  await app.waitForLines(/ready in \d+ ms/, 3);
});

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await app?.stop();
  await stopAllRedisServers();
});

describe('a validly signed token with a lone surrogate ("t\\ud800")', () => {
  const token = signed({ sub: 'u1', tenant: 't\ud800' });

  it('is refused on Socket.io /presence, and the process stays up', async () => {
    const attempt = await trySocket('/presence', { auth: { token } });
    expect(attempt).toMatchObject({ connected: false, error: 'unauthorized' });
    await expectAlive();
    expect(app.output).not.toMatch(/URIError|URI malformed/);
  });

  it('gets a 401 JSON error on HTTP, not a 500', async () => {
    const response = await app.request('/auth/me', { headers: bearer(token) });
    expect(response.status).toBe(401);
    expect(response.body).toMatchObject({ statusCode: 401, message: expect.stringMatching(/well-formed/) });
  });
});

describe('tokens that never expire', () => {
  it.each([
    ['without exp', signed({ sub: 'u1', tenant: 't1' }, {})],
    ['with exp 1e308', signed({ sub: 'u1', tenant: 't1', exp: 1e308 }, { noTimestamp: true })],
    ['with an iat an hour ahead', signed({ sub: 'u1', tenant: 't1', iat: Math.floor(Date.now() / 1000) + 3600 }, { expiresIn: '5m' })],
  ])('are refused %s, on HTTP and on sockets', async (_case, token) => {
    const response = await app.request('/auth/me', { headers: bearer(token) });
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    expect(await trySocket('/presence', { auth: { token } })).toMatchObject({ connected: false, error: 'unauthorized' });
  });
});

describe('the Socket.io root namespace', () => {
  it('refuses a connection without a token and closes it at once', async () => {
    const attempt = await trySocket('/');
    expect(attempt.connected).toBe(false);
    expect(attempt.error).toMatch(/connect to \/presence/);
    const engine = attempt.socket.io.engine;
    if (engine.readyState !== 'closed') await new Promise((resolve) => engine.once('close', resolve));
    expect(engine.readyState).toBe('closed');
  });

  it('refuses a token-bearing connection too: only /presence is served', async () => {
    expect(await trySocket('/', { auth: { token: tokenFor('u1', 't1') } })).toMatchObject({ connected: false });
  });
});

describe('CORS_ORIGINS', () => {
  it('allows the listed origin on HTTP and names no other', async () => {
    const allowed = await app.request('/auth/me', { headers: { origin: ALLOWED_ORIGIN, ...bearer(tokenFor('u1', 't1')) } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    const foreign = await app.request('/auth/me', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses a Socket.io handshake from another origin, and accepts the listed one', async () => {
    const token = tokenFor('u-origin', 't1');
    expect(await trySocket('/presence', { auth: { token }, extraHeaders: { origin: 'https://evil.example' } })).toMatchObject({ connected: false });
    expect(await trySocket('/presence', { auth: { token }, extraHeaders: { origin: ALLOWED_ORIGIN } })).toMatchObject({ connected: true });
  });
});

describe('HTTP hygiene headers', () => {
  it('sends the security headers and no X-Powered-By', async () => {
    const response = await app.request('/health/live');
    expect(response.headers.get('x-powered-by')).toBeNull();
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    // NODE_ENV=test: no HSTS outside production.
    expect(response.headers.get('strict-transport-security')).toBeNull();
  });
});

describe('request bodies', () => {
  it('parses nothing before authentication: malformed JSON without a token is a 401, not a 400', async () => {
    const response = await app.request('/reports', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type": "sales-summary", "sales": [' });
    expect(response.status).toBe(401);
  });

  it('answers an unknown route with 404 without reading its 8 MB body', async () => {
    const response = await app.request('/nowhere', { method: 'POST', headers: { 'content-type': 'application/json' }, body: `"${'x'.repeat(8 * 1024 * 1024)}"` });
    expect(response.status).toBe(404);
  });

  it('answers an authenticated report body over 8 MB with a 413 JSON error', async () => {
    const response = await app.request('/reports', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(tokenFor('u1', 'tenant-big')) },
      body: JSON.stringify({ type: 'sales-summary', sales: [], padding: 'x'.repeat(9 * 1024 * 1024) }),
    });
    expect(response.status).toBe(413);
    expect(response.body).toMatchObject({ statusCode: 413, message: expect.stringMatching(/larger than this route accepts \(8192 KB/) });
  });

  it('answers malformed JSON from an authenticated caller with a 400 JSON error', async () => {
    const response = await app.request('/reports', { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(tokenFor('u1', 't1')) }, body: '{"sales": [' });
    expect(response.status).toBe(400);
    // In the shape of every other bad body: a list of problems.
    expect(response.body).toMatchObject({ statusCode: 400, message: [expect.stringMatching(/^body is not valid JSON/)] });
  });

  it('still accepts a large report (2 MB) on POST /reports', async () => {
    const response = await postReport(app, tokenFor('u1', 'tenant-large'), salesFor(1, 25_000));
    expect(response.status).toBe(202);
  });
});

describe('work in flight per tenant (QUEUE_TENANT_MAX_JOBS=3, no worker: jobs stay queued)', () => {
  it('answers the fourth report of a tenant with 429, Retry-After and a message, and keeps serving other tenants', async () => {
    const token = tokenFor('u1', 'tenant-busy');
    for (let seed = 0; seed < 3; seed += 1) expect((await postReport(app, token, salesFor(100 + seed))).status).toBe(202);
    const refused = await postReport(app, token, salesFor(103));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(refused.body).toMatchObject({ statusCode: 429, message: expect.stringMatching(/3 jobs queued or running/) });
    // The same report again is not new work: still 202.
    expect((await postReport(app, token, salesFor(100))).status).toBe(202);
    expect((await postReport(app, tokenFor('u2', 'tenant-quiet'), salesFor(100))).status).toBe(202);
  });
});

describe('GET /health', () => {
  it("shows each indicator's status to anyone, and no hosts, counts, latencies or instance names", async () => {
    const response = await app.request('/health');
    expect(response.status).toBe(200);
    const body = response.body as { status: string; details: Record<string, Record<string, unknown>> };
    expect(body.status).toBe('ok');
    expect(Object.keys(body.details)).toEqual(expect.arrayContaining(['redis:command', 'presence']));
    for (const indicator of Object.values(body.details)) expect(Object.keys(indicator)).toEqual(['status']);
  });

  it('shows the details with HEALTH_TOKEN', async () => {
    const response = await app.request('/health', { headers: bearer(HEALTH_TOKEN) });
    const body = response.body as { details: Record<string, Record<string, unknown>> };
    expect(body.details['redis:command']).toMatchObject({ status: 'up', state: 'ready', latencyMs: expect.any(Number) });
  });
});
