import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET, tokenFor } from './support/reports-client';
import { PresenceClient } from './support/socket-client';

interface OnlineUser {
  userId: string;
  since: string;
}
interface OnlineEvent {
  userId: string;
  since: string;
}
interface OfflineEvent {
  userId: string;
  lastSeen: string;
}
interface Snapshot {
  users: OnlineUser[];
}

const TTL_SECONDS = 6;
const GRACE_SECONDS = 1;
const GRACE_MS = GRACE_SECONDS * 1000;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let redis: RedisServer;
let env: Record<string, string>;
let a: AppProcess;
let b: AppProcess;
const extraApps: AppProcess[] = [];
const clients: PresenceClient[] = [];

async function connect(app: AppProcess, userId: string, tenantId: string): Promise<PresenceClient> {
  const client = await PresenceClient.connect(app, tokenFor(userId, tenantId));
  clients.push(client);
  return client;
}

async function startApp(): Promise<AppProcess> {
  const app = await AppProcess.start(env);
  await app.waitForLines(/ready in \d+ ms/, 3);
  return app;
}

const about = (userId: string) => (event: { userId: string }) => event.userId === userId;

function presenceOf(app: AppProcess, token: string) {
  return app.request('/presence', { headers: { authorization: `Bearer ${token}` } });
}

beforeAll(async () => {
  // Durable, so the outage test at the end finds the data again after the restart, as on Upstash.
  redis = await RedisServer.start({ durable: true });
  env = {
    REDIS_URL: redis.url(),
    JWT_SECRET,
    APP_ROLE: 'web',
    PRESENCE_TTL_SECONDS: String(TTL_SECONDS),
    PRESENCE_OFFLINE_GRACE_SECONDS: String(GRACE_SECONDS),
  };
  [a, b] = await Promise.all([startApp(), startApp()]);
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), ...extraApps.map((app) => app.stop())]);
  await stopAllRedisServers();
});

describe('handshake', () => {
  it('refuses a socket without a token or with a bad one: connect_error "unauthorized"', async () => {
    await expect(PresenceClient.connect(a, undefined)).rejects.toThrow('unauthorized');
    await expect(PresenceClient.connect(a, 'not-a-jwt')).rejects.toThrow('unauthorized');
    await expect(PresenceClient.connect(b, tokenFor('u1', 'pharmacy-1').slice(0, -2))).rejects.toThrow('unauthorized');
  });
});

describe('presence across two instances', () => {
  it('sends a snapshot on connect, answers presence:list and GET /presence', async () => {
    const alice = await connect(a, 'alice', 'snap-tenant');
    const own = await alice.waitFor<Snapshot>('presence:snapshot');
    expect(own.users).toEqual([{ userId: 'alice', since: expect.stringMatching(ISO) }]);

    const bert = await connect(b, 'bert', 'snap-tenant');
    const snapshot = await bert.waitFor<Snapshot>('presence:snapshot');
    expect(snapshot.users.map((user) => user.userId)).toEqual(['alice', 'bert']);
    expect(snapshot.users[0].since).toBe(own.users[0].since);

    expect(await alice.request<Snapshot>('presence:list')).toEqual(snapshot);
    const response = await presenceOf(b, tokenFor('someone', 'snap-tenant'));
    expect(response.status).toBe(200);
    expect(response.body).toEqual(snapshot);
    expect((await a.request('/presence')).status).toBe(401);
  });

  it('shows a user on instance B going online and offline to a socket on instance A, once each', async () => {
    const observer = await connect(a, 'observer', 'cross-tenant');
    const bob = await connect(b, 'bob', 'cross-tenant');
    const online = await observer.waitFor<OnlineEvent>('presence:online', about('bob'));
    expect(online.since).toMatch(ISO);

    const closedAt = Date.now();
    bob.close();
    const offline = await observer.waitFor<OfflineEvent>('presence:offline', about('bob'));
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(GRACE_MS - 100);
    expect(offline.lastSeen).toMatch(ISO);
    expect(Math.abs(Date.parse(offline.lastSeen) - closedAt)).toBeLessThan(500);
    expect(observer.all('presence:online', about('bob'))).toHaveLength(1);
    expect(observer.all('presence:offline', about('bob'))).toHaveLength(1);
    expect((await observer.request<Snapshot>('presence:list')).users.map((user) => user.userId)).toEqual(['observer']);
  });

  it('counts several tabs of a user as one: one online, offline only after the last tab', async () => {
    const observer = await connect(b, 'observer', 'tabs-tenant');
    const tabs = [await connect(a, 'carol', 'tabs-tenant'), await connect(a, 'carol', 'tabs-tenant'), await connect(b, 'carol', 'tabs-tenant')];
    await observer.waitFor('presence:online', about('carol'));
    await Promise.all(tabs.map((tab) => tab.waitFor('presence:snapshot')));

    tabs[0].close();
    tabs[2].close();
    // Waiting out the grace is the behaviour under test: nothing may be announced while a tab is open.
    await delay(GRACE_MS * 2);
    expect(observer.all('presence:offline', about('carol'))).toHaveLength(0);

    tabs[1].close();
    await observer.waitFor('presence:offline', about('carol'));
    expect(observer.all('presence:online', about('carol'))).toHaveLength(1);
    expect(observer.all('presence:offline', about('carol'))).toHaveLength(1);
  });

  it('does not flap when a user reconnects to the other instance within the grace', async () => {
    const observer = await connect(a, 'observer', 'flap-tenant');
    const first = await connect(a, 'dave', 'flap-tenant');
    await observer.waitFor('presence:online', about('dave'));
    first.close();
    const second = await connect(b, 'dave', 'flap-tenant');
    await second.waitFor('presence:snapshot');
    await delay(GRACE_MS * 2);
    expect(observer.all('presence:offline', about('dave'))).toHaveLength(0);
    expect(observer.all('presence:online', about('dave'))).toHaveLength(1);
    expect((await presenceOf(b, tokenFor('x', 'flap-tenant'))).body).toEqual({
      users: [expect.objectContaining({ userId: 'dave' }), expect.objectContaining({ userId: 'observer' })],
    });
  });

  it('keeps tenants apart: no events from another tenant, GET /presence lists only the own tenant', async () => {
    const outsider = await connect(a, 'outsider', 'tenant-y');
    const insider = await connect(b, 'insider', 'tenant-x');
    const erin = await connect(b, 'erin', 'tenant-x');
    await insider.waitFor('presence:online', about('erin'));
    erin.close();
    await insider.waitFor('presence:offline', about('erin'));

    // Its own arrival is all the outsider hears of.
    expect(outsider.received.map(({ event, payload }) => [event, (payload as { userId?: string }).userId])).toEqual([
      ['presence:online', 'outsider'],
      ['presence:snapshot', undefined],
    ]);
    expect((await outsider.request<Snapshot>('presence:list')).users.map((user) => user.userId)).toEqual(['outsider']);
    expect((await presenceOf(a, tokenFor('outsider', 'tenant-y'))).body).toEqual({ users: [expect.objectContaining({ userId: 'outsider' })] });
    expect((await presenceOf(a, tokenFor('insider', 'tenant-x'))).body).toEqual({ users: [expect.objectContaining({ userId: 'insider' })] });
  });
});

describe('client events', () => {
  it('answers malformed, oversize and unknown events with an error ack, and keeps the socket working', async () => {
    const client = await connect(a, 'fiona', 'events-tenant');
    expect(await client.request('presence:list', { tenant: 'other' })).toEqual({ error: 'payload has unknown key "tenant"' });
    expect(await client.request('presence:list', 'x'.repeat(2048))).toEqual({ error: expect.stringContaining('too large') });
    expect(await client.request('presence:list', { pad: 'x'.repeat(5000) })).toEqual({ error: expect.stringContaining('too large') });
    expect(await client.request('presence:kick', { userId: 'someone' })).toEqual({ error: 'unknown event' });
    client.socket.emit('presence:list', [1, 2, 3]); // no ack: dropped, nothing to answer
    expect(client.socket.connected).toBe(true);
    expect(await client.request<Snapshot>('presence:list')).toEqual({ users: [expect.objectContaining({ userId: 'fiona' })] });
  });

  it('rate-limits each socket and recovers', async () => {
    const client = await connect(b, 'gus', 'events-tenant');
    const replies = await Promise.all(Array.from({ length: 30 }, () => client.request<Snapshot | { error: string }>('presence:list')));
    const limited = replies.filter((reply) => 'error' in reply);
    expect(limited.length).toBeGreaterThanOrEqual(15);
    expect(limited[0]).toEqual({ error: 'rate limited' });
    expect(replies.filter((reply) => 'users' in reply).length).toBeGreaterThanOrEqual(10);
    // Refill is the behaviour under test: a tenth of a second buys one event.
    await delay(300);
    expect(await client.request('presence:list')).toHaveProperty('users');
    expect(client.socket.connected).toBe(true);
  });
});

describe('health', () => {
  it("reports the adapter connected and this instance's sockets", async () => {
    await connect(a, 'hank', 'health-tenant');
    const response = await a.request('/health');
    expect(response.status).toBe(200);
    const presence = (response.body as { info: Record<string, { status: string; adapter: string; sockets: number }> }).info.presence;
    expect(presence).toMatchObject({ status: 'up', adapter: 'connected' });
    expect(presence.sockets).toBeGreaterThanOrEqual(1);
  });
});

describe('instances leaving', () => {
  it('SIGTERM: clients reconnecting elsewhere within the grace stay online; the others go offline', async () => {
    const c = await startApp();
    extraApps.push(c);
    const observer = await connect(a, 'observer', 'deploy-tenant');
    const staying = await connect(c, 'ivan', 'deploy-tenant');
    const leaving = await connect(c, 'judy', 'deploy-tenant');
    await observer.waitFor('presence:online', about('ivan'));
    await observer.waitFor('presence:online', about('judy'));

    // What a load balancer does after the old instance closes the connection: ivan lands on another instance.
    const reconnected = staying.disconnected().then(() => connect(b, 'ivan', 'deploy-tenant'));
    c.signal('SIGTERM');
    expect(await staying.disconnected()).toBe('transport close');
    expect(await leaving.disconnected()).toBe('transport close');
    await (await reconnected).waitFor('presence:snapshot');

    await observer.waitFor('presence:offline', about('judy'));
    expect(await c.exited).toEqual({ code: 0, signal: null });
    expect(observer.all('presence:offline', about('ivan'))).toHaveLength(0);
    expect(observer.all('presence:online', about('ivan'))).toHaveLength(1);
    expect((await observer.request<Snapshot>('presence:list')).users.map((user) => user.userId)).toEqual(['ivan', 'observer']);
  });

  it('a stall past the lease: its user goes offline once, and online again when it resumes, as a new incarnation', async () => {
    const c = await startApp();
    extraApps.push(c);
    const observer = await connect(a, 'observer', 'stall-tenant');
    const olga = await connect(c, 'olga', 'stall-tenant');
    await olga.waitFor('presence:snapshot');
    const first = await observer.waitFor<OnlineEvent>('presence:online', about('olga'));
    const reapsBefore = a.matching(/\[Presence\] reaped /).length;

    // Frozen past its lease (two thirds of the TTL), with olga's socket still open: A reaps it.
    await c.whilePaused(() => observer.waitFor('presence:offline', about('olga'), (TTL_SECONDS + 2) * 1000));
    const rejoined = await c.waitForLine(/another instance reaped this one/, TTL_SECONDS * 1000);
    expect(rejoined).toMatch(/rejoined as \S+\.1; acquiring its users again \(1\)/);
    const again = await observer.waitFor<OnlineEvent>('presence:online', (event) => event.userId === 'olga' && event.since !== first.since, TTL_SECONDS * 1000);
    expect(Date.parse(again.since)).toBeGreaterThan(Date.parse(first.since));

    expect(observer.all('presence:offline', about('olga'))).toHaveLength(1);
    expect(a.matching(/\[Presence\] reaped /).length - reapsBefore).toBe(1);
    expect(a.matching(/\[Presence\] reaped /).at(-1)).toMatch(/: 1 went offline/);
    expect((await presenceOf(a, tokenFor('x', 'stall-tenant'))).body).toEqual({
      users: [expect.objectContaining({ userId: 'observer' }), expect.objectContaining({ userId: 'olga' })],
    });
  }, 30_000);

  it("SIGKILL: a survivor announces the dead instance's users offline within PRESENCE_TTL_SECONDS", async () => {
    const observer = await connect(a, 'observer', 'crash-tenant');
    const kate = await connect(b, 'kate', 'crash-tenant');
    const lars = await connect(b, 'lars', 'crash-tenant');
    const laraOnA = await connect(a, 'lars', 'crash-tenant');
    await Promise.all([kate, lars, laraOnA].map((client) => client.waitFor('presence:snapshot')));
    await observer.waitFor('presence:online', about('kate'));

    const killedAt = Date.now();
    b.signal('SIGKILL');
    await b.exited;
    await observer.waitFor('presence:offline', about('kate'), (TTL_SECONDS + 2) * 1000);
    const elapsed = Date.now() - killedAt;
    expect(elapsed).toBeLessThanOrEqual(TTL_SECONDS * 1000 + 500);
    // lars still has a socket on A: a crash of B must not take him offline.
    expect(observer.all('presence:offline', about('lars'))).toHaveLength(0);
    expect((await presenceOf(a, tokenFor('x', 'crash-tenant'))).body).toEqual({
      users: [expect.objectContaining({ userId: 'lars' }), expect.objectContaining({ userId: 'observer' })],
    });
    expect(a.output).toMatch(/ready in/);
  }, 30_000);
});

describe('Redis outage', () => {
  it('keeps serving sockets, reports degraded, and catches up on what happened once Redis is back', async () => {
    const observer = await connect(a, 'observer', 'outage-tenant');
    const mia = await connect(a, 'mia', 'outage-tenant');
    await observer.waitFor('presence:online', about('mia'));

    await redis.stop();
    mia.close();
    const ned = await connect(a, 'ned', 'outage-tenant');
    expect(await ned.request('presence:list')).toEqual({ error: 'presence is unavailable' });
    expect((await presenceOf(a, tokenFor('x', 'outage-tenant'))).status).toBe(503);
    const health = await a.request('/health');
    expect(health.status).toBe(200);
    expect((health.body as { details: Record<string, unknown> }).details.presence).toMatchObject({ status: 'degraded', adapter: 'disconnected' });

    await redis.restart();
    const online = await observer.waitFor<OnlineEvent>('presence:online', about('ned'));
    const offline = await observer.waitFor<OfflineEvent>('presence:offline', about('mia'));
    expect(Date.parse(offline.lastSeen)).toBeLessThan(Date.parse(online.since));
    expect((await presenceOf(a, tokenFor('x', 'outage-tenant'))).body).toEqual({
      users: [expect.objectContaining({ userId: 'ned' }), expect.objectContaining({ userId: 'observer' })],
    });
  }, 30_000);
});
