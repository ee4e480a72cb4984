import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { AppProcess } from './support/app-process';
import { commandsOf, parsePrometheusText, scrape, total, type Sample } from './support/prometheus-text';
import { clientAddresses, countsDelta, RedisMonitor } from './support/redis-monitor';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { getReport, JWT_SECRET, postReport, salesFor, settledReport, tokenFor } from './support/reports-client';
import { PresenceClient } from './support/socket-client';
import { until } from './support/until';

const METRICS_TOKEN = 'e2e-metrics-token-5b8e1f0c3a97';
const USER_TOKEN = tokenFor('u1', 'pharmacy-1');

const apps: AppProcess[] = [];
const monitors: RedisMonitor[] = [];
let socket: PresenceClient | undefined;

afterEach(async () => {
  socket?.close();
  socket = undefined;
  await Promise.all(monitors.splice(0).map((monitor) => monitor.stop()));
  await Promise.all(apps.splice(0).map((app) => app.stop()));
});
afterAll(() => stopAllRedisServers());

async function startApp(redis: RedisServer, env: Record<string, string>): Promise<AppProcess> {
  const app = await AppProcess.start({ REDIS_URL: redis.url(), JWT_SECRET, ...env });
  apps.push(app);
  await app.waitForLines(/ready in \d+ ms/, 3);
  return app;
}

/** Each client of the app by the role label its commands carry, to the address MONITOR shows for it. */
async function addressesOf(redis: RedisServer, app: AppProcess): Promise<Record<string, string>> {
  const byName = await clientAddresses(redis);
  const addresses: Record<string, string> = {};
  for (const role of ['command', 'queue', 'subscriber']) {
    const address = byName.get(`pharmacare:${role}:${app.pid}`);
    if (address) addresses[role] = address;
  }
  // The worker's blocking connection carries the name BullMQ gives it (Queue.getWorkers() finds workers by it).
  const blocking = [...byName.entries()].find(([name]) => blockingName(app).test(name));
  if (blocking) addresses['queue-duplicate'] = blocking[1];
  return addresses;
}

function seenBy(monitor: RedisMonitor, addresses: Record<string, string>): Record<string, Record<string, number>> {
  return Object.fromEntries(Object.entries(addresses).map(([role, address]) => [role, monitor.countsFrom(address)]));
}

/** What the app counted between two scrapes, per role, next to what Redis saw from each client meanwhile. */
function countedAndSeen(before: Sample[], after: Sample[], seenBefore: Record<string, Record<string, number>>, seenAfter: Record<string, Record<string, number>>) {
  const roles = Object.keys(seenAfter);
  return {
    counted: Object.fromEntries(roles.map((role) => [role, countsDelta(commandsOf(before, role), commandsOf(after, role))])),
    seen: Object.fromEntries(roles.map((role) => [role, countsDelta(seenBefore[role] ?? {}, seenAfter[role])])),
  };
}

function lookups(samples: Sample[]): Record<string, number> {
  const tiers = { 'memory hit': ['memory', 'hit'], 'memory miss': ['memory', 'miss'], 'redis hit': ['redis', 'hit'], 'redis miss': ['redis', 'miss'], 'redis error': ['redis', 'error'] };
  return Object.fromEntries(Object.entries(tiers).map(([key, [tier, outcome]]) => [key, total(samples, 'pharmacare_cache_lookups_total', { tier, outcome })]));
}

function lookupsDelta(before: Sample[], after: Sample[]): Record<string, number> {
  const [a, b] = [lookups(before), lookups(after)];
  return Object.fromEntries(Object.entries(b).map(([key, value]) => [key, value - a[key]]));
}

/** BullMQ's name for a worker's blocking connection, "<prefix>:<base64(queue)>:w:<worker name>", ours ending in the pid. */
function blockingName(app: AppProcess): RegExp {
  return new RegExp(`^pharmacare:am9icw==:w:\\S+:${app.pid}$`);
}

/** Whether the worker's blocking connection is blocked in BZPOPMIN, per CLIENT LIST. */
async function workerIsBlocked(redis: RedisServer, worker: AppProcess): Promise<boolean> {
  const list = await redis.command('CLIENT', 'LIST');
  const line = list.split('\n').find((entry) => blockingName(worker).test(/ name=(\S*) /.exec(entry)?.[1] ?? ''));
  return line !== undefined && / flags=\S*b/.test(line) && / cmd=bzpopmin /.test(line);
}

describe('GET /metrics', () => {
  it('answers 401 without the bearer of METRICS_TOKEN, echoing nothing, and the Prometheus text with it', async () => {
    const redis = await RedisServer.start();
    const web = await startApp(redis, { APP_ROLE: 'web', METRICS_TOKEN });
    for (const authorization of [undefined, 'Bearer e2e-metrics-token-5b8e1f0c3a98', `Bearer ${METRICS_TOKEN}x`, METRICS_TOKEN]) {
      const response = await web.request('/metrics', authorization ? { headers: { authorization } } : {});
      expect(response.status).toBe(401);
      expect(response.text).not.toContain('e2e-metrics-token');
    }
    const response = await web.request('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const samples = parsePrometheusText(response.text);
    expect(total(samples, 'pharmacare_redis_connection_ready')).toBe(3);
    expect(total(samples, 'pharmacare_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(web.output).not.toContain(METRICS_TOKEN);
  });

  it('web: counts the commands of each client as Redis saw them; presence and cache series follow known actions', async () => {
    const redis = await RedisServer.start();
    // A long presence TTL and depth interval: no heartbeat and no depth read inside the compared window.
    const web = await startApp(redis, { APP_ROLE: 'web', METRICS_TOKEN, PRESENCE_TTL_SECONDS: '3600', METRICS_QUEUE_DEPTH_INTERVAL_SECONDS: '3600' });
    const monitor = await RedisMonitor.start(redis);
    monitors.push(monitor);
    const addresses = await addressesOf(redis, web);
    expect(Object.keys(addresses).sort()).toEqual(['command', 'queue', 'subscriber']);

    // Queue depths: two scrapes within the interval cost one command (the first reads, the second reuses it).
    const beforeDepths = monitor.countsFrom(addresses.command);
    await scrape(web, METRICS_TOKEN);
    const first = await scrape(web, METRICS_TOKEN);
    await monitor.sync();
    const depthRead = countsDelta(beforeDepths, monitor.countsFrom(addresses.command));
    expect(Object.values(depthRead).reduce((sum, count) => sum + count, 0)).toBe(1);
    expect(['eval', 'evalsha']).toContain(Object.keys(depthRead)[0]);
    expect(total(first, 'pharmacare_queue_jobs', { queue: 'jobs', state: 'waiting' })).toBe(0);

    const before = await scrape(web, METRICS_TOKEN);
    await monitor.sync();
    const seenBefore = seenBy(monitor, addresses);

    socket = await PresenceClient.connect(web, USER_TOKEN);
    await socket.waitFor('presence:snapshot');
    await socket.waitFor('presence:online');
    const posted = await postReport(web, USER_TOKEN, salesFor(1));
    expect(posted.status).toBe(202);
    // No worker in this deployment: the report stays queued, a cache miss in both tiers.
    expect((await getReport(web, USER_TOKEN, (posted.body as { id: string }).id)).status).toBe(202);

    const after = await scrape(web, METRICS_TOKEN);
    await monitor.sync();
    const { counted, seen } = countedAndSeen(before, after, seenBefore, seenBy(monitor, addresses));
    expect(counted).toEqual(seen);
    expect(Object.keys(counted.command).length).toBeGreaterThan(0);

    expect(total(after, 'pharmacare_presence_sockets')).toBe(1);
    expect(total(after, 'pharmacare_presence_users')).toBe(1);
    // POST looks for a finished report first, GET then misses too: two lookups, each missing both tiers.
    expect(lookupsDelta(before, after)).toEqual({ 'memory hit': 0, 'memory miss': 2, 'redis hit': 0, 'redis miss': 2, 'redis error': 0 });

    socket.close();
    const gone = await until(() => scrape(web, METRICS_TOKEN), (samples) => total(samples, 'pharmacare_presence_sockets') === 0);
    expect(total(gone, 'pharmacare_presence_users')).toBe(0);
  }, 60_000);

  it("worker: serves /metrics, times jobs, counts its blocking connection's commands as Redis saw them; tiers and depths from web", async () => {
    const redis = await RedisServer.start();
    const worker = await startApp(redis, { APP_ROLE: 'worker', METRICS_TOKEN, METRICS_QUEUE_DEPTH_INTERVAL_SECONDS: '3600' });
    // Without METRICS_TOKEN /metrics is open.
    const web = await startApp(redis, { APP_ROLE: 'web', METRICS_QUEUE_DEPTH_INTERVAL_SECONDS: '1' });
    await worker.waitForLine(/processing "jobs"/);
    const monitor = await RedisMonitor.start(redis);
    monitors.push(monitor);
    await until(() => workerIsBlocked(redis, worker), Boolean);
    const addresses = await addressesOf(redis, worker);
    expect(Object.keys(addresses).sort()).toEqual(['command', 'queue', 'queue-duplicate', 'subscriber']);

    expect((await worker.request('/metrics')).status).toBe(401);
    // The first scrape reads the queue depths, which only the next scrape counts: keep it out of the window.
    await scrape(worker, METRICS_TOKEN);
    const before = await scrape(worker, METRICS_TOKEN);
    await monitor.sync();
    const seenBefore = seenBy(monitor, addresses);

    // Paused while web answers, the idle worker cannot finish this 2-line report before web reads its state back.
    const posted = await worker.whilePaused(() => postReport(web, USER_TOKEN, salesFor(2)));
    expect(posted.status).toBe(202);
    const id = (posted.body as { id: string }).id;
    expect((await settledReport(web, USER_TOKEN, id)).status).toBe(200);
    // Idle again: the blocking connection waits for the next job, so nothing is in flight.
    await until(() => workerIsBlocked(redis, worker), Boolean);

    const after = await scrape(worker, METRICS_TOKEN);
    await monitor.sync();
    const { counted, seen } = countedAndSeen(before, after, seenBefore, seenBy(monitor, addresses));
    expect(counted).toEqual(seen);
    // The job woke the blocking wait, which then blocked again.
    expect(counted['queue-duplicate'].bzpopmin).toBeGreaterThanOrEqual(1);

    const jobs = (samples: Sample[]) => total(samples, 'pharmacare_queue_job_duration_seconds_count', { queue: 'jobs', name: 'report', outcome: 'completed' });
    expect(jobs(after) - jobs(before)).toBe(1);
    expect(total(after, 'pharmacare_queue_job_duration_seconds_sum', { name: 'report' })).toBeGreaterThan(0);

    // The completed report job is gone (its result lives in the cache), and the depths web reads (interval 1 s)
    // show every state.
    expect(await redis.command('EXISTS', `pharmacare:jobs:${id}`)).toBe('0');
    const depths = await until(() => scrape(web), (samples) => samples.some((sample) => sample.name === 'pharmacare_queue_jobs'), 10_000, 250);
    expect(depths.filter((sample) => sample.name === 'pharmacare_queue_jobs').map((sample) => sample.labels.state).sort()).toEqual(['active', 'completed', 'delayed', 'failed', 'prioritized', 'waiting']);

    // The completed report is in web's memory tier (the poll that found it completed put it there) and in Redis.
    const cacheBefore = await scrape(web);
    expect((await getReport(web, USER_TOKEN, id)).headers.get('x-cache')).toBe('hit');
    expect(lookupsDelta(cacheBefore, await scrape(web))).toEqual({ 'memory hit': 1, 'memory miss': 0, 'redis hit': 0, 'redis miss': 0, 'redis error': 0 });
    // A second web instance has it in Redis only.
    const web2 = await startApp(redis, { APP_ROLE: 'web' });
    const fresh = await scrape(web2);
    expect((await getReport(web2, USER_TOKEN, id)).headers.get('x-cache')).toBe('hit');
    expect(lookupsDelta(fresh, await scrape(web2))).toEqual({ 'memory hit': 0, 'memory miss': 1, 'redis hit': 1, 'redis miss': 0, 'redis error': 0 });
  }, 90_000);
});
