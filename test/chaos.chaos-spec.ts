import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { JOBS_QUEUE } from '../src/queue/queue.constants';
import { Cluster } from './support/cluster';
import { JobLedger } from './support/job-ledger';
import { Author, BURST_ROUTE, presenceMismatch, RequestRecord, timedRequest } from './support/load';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET } from './support/reports-client';
import { TcpProxy } from './support/tcp-proxy';
import { Workload } from './support/workload';

/**
 * Three `APP_ROLE=all` processes (each serves HTTP and sockets and runs the worker) on one durable Redis,
 * reached through a TCP proxy, under steady HTTP load, a stream of report jobs and 500 Socket.io clients.
 * One fault at a time; after each: /health back to ok on every instance without a restart, presence exactly
 * the connected users. Throughout: every request answered within 2 s, no 5xx on cached routes. At the end:
 * every accepted job completed, none twice.
 */

// ---------------------------------------------------------------- knobs

const INSTANCES = 3;
/** The queue's keys: the cluster runs with the default REDIS_KEY_PREFIX. */
const QUEUE_KEYS = `pharmacare:${JOBS_QUEUE}`;
const TENANTS = 10;
const USERS_PER_TENANT = 50;
/** Users who post the reports: never churned, so their report:completed notifications can be counted. */
const AUTHORS = 20;
/** Users who leave and others who join during each fault: presence must show the change afterwards. */
const CHURN = 5;
const DEADLINE_MS = 2_000;
const PRESENCE_TTL_SECONDS = 6;
const PRESENCE_OFFLINE_GRACE_SECONDS = 1;
/** Stalled-job recovery within lock (30 s) + this: a job held by a SIGKILLed instance is retried in the drain. */
const QUEUE_STALLED_INTERVAL_SECONDS = 5;
const FREEZE_MS = 10_000;
/** Per direction, so every command's round trip takes 100 ms longer. */
const PROXY_LATENCY_MS = 50;
const LATENCY_HOLD_MS = 10_000;
/** Redis restarts: how long it stays down, so requests meet a refused connection, not just a reset. */
const REDIS_DOWN_MS = 2_000;
/** Bad states: how long Redis stays full (noeviction OOM) or at its connection limit. */
const BAD_STATE_MS = 5_000;
/** At the connection limit: of the 12 app connections cut and reconnecting, this many find no free slot. */
const REFUSED_CONNECTIONS = 4;
const WARM_REPORTS = 10;
const HTTP_LOOPS = 6;
const HTTP_PAUSE_MS = 20;
const JOB_INTERVAL_MS = 100;
/**
 * Posted right before the instance is killed, so its worker dies holding jobs (stalled-job recovery): enough for
 * every worker slot (3 instances × concurrency 2) and as many again queued. Not more: 40 such uploads at once
 * (16 MB of JSON) kept two cores so busy that /health on the survivors took over 2 s.
 */
const BURST_JOBS = 12;
const BURST_LINES = 5_000;
/** The burst arrives at once; taking it in may outlast DEADLINE_MS on 2 cores, so it has a deadline of its own. */
const BURST_DEADLINE_MS = 15_000;

/**
 * Bounds, generous for a loaded 2-core CI machine yet meaningful. Presence: a dead instance's users are reaped
 * within PRESENCE_TTL_SECONDS, a user who left shows offline after the offline grace, plus 2 s for polling and
 * load. /health: the clients reconnect with backoff (250 ms doubling, jittered), a few seconds after a 2 s outage.
 */
const PRESENCE_BOUND_MS = (PRESENCE_TTL_SECONDS + PRESENCE_OFFLINE_GRACE_SECONDS) * 1000 + 2_000;
const HEALTH_BOUND_MS = 10_000;
const DRAIN_BOUND_MS = 90_000;

// ---------------------------------------------------------------- the system under test

let redis: RedisServer;
let proxy: TcpProxy;
let cluster: Cluster;
let ledger: JobLedger;
let workload: Workload;

interface FaultResult {
  fault: string;
  healthOkMs: number;
  presenceMs: number;
}
const faults: FaultResult[] = [];
let drained: { accepted: number; refused: number; ms: number; stalled: number; completed?: number; completedTwice?: number; notified?: number } | undefined;

// ---------------------------------------------------------------- helpers

/** Polls every instance's /health until each answers 200 with status ok; ms from `since`. */
async function healthOkAfter(since: number): Promise<number> {
  const deadline = since + HEALTH_BOUND_MS + 10_000;
  for (;;) {
    const answers = await Promise.all(cluster.instances.map((instance) => timedRequest(instance, '/health', {}, DEADLINE_MS)));
    if (answers.every((answer) => answer.outcome === 200 && (answer.body as { status: string }).status === 'ok')) return Date.now() - since;
    if (Date.now() > deadline) throw new Error(`/health not ok: ${JSON.stringify(answers.map((answer) => [answer.outcome, answer.body]))}`);
    await delay(200);
  }
}

/** Polls until every wanted socket is connected and GET /presence lists exactly those users; ms from `since`. */
async function presenceRightAfter(since: number): Promise<number> {
  const deadline = since + PRESENCE_BOUND_MS + 15_000;
  for (;;) {
    const { swarm } = workload;
    const mismatch = swarm.connected < swarm.size ? `${swarm.size - swarm.connected} sockets not connected` : await presenceMismatch(cluster, swarm, workload.tokenOfTenant, DEADLINE_MS);
    if (mismatch === undefined) return Date.now() - since;
    if (Date.now() > deadline) throw new Error(`presence still wrong: ${mismatch}`);
    await delay(200);
  }
}

/** A connection of the harness's own, straight to Redis (not through the proxy), for CONFIG SET while it is full. */
async function withAdmin<T>(work: (admin: Redis) => Promise<T>): Promise<T> {
  const admin = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    admin.disconnect();
  }
}

/** Some users leave and others join while the fault is on: presence must reflect both once it is over. */
const churn = () => workload.churn(CHURN);

/** Runs one fault under load; `inject` resolves when the fault is over (the clock for recovery starts then). */
async function underFault(fault: string, inject: () => Promise<void>): Promise<FaultResult> {
  workload.recorder.phase = fault;
  await inject();
  const over = Date.now();
  const [healthOkMs, presenceMs] = await Promise.all([healthOkAfter(over), presenceRightAfter(over)]);
  const result = { fault, healthOkMs, presenceMs };
  faults.push(result);
  return result;
}

function isServerError(record: RequestRecord): boolean {
  return typeof record.outcome === 'number' && record.outcome >= 500;
}

/** Requests of a phase that got no answer in time (timeout, connection error, nowhere to go): each is a failure. */
function unanswered(records: readonly RequestRecord[]): RequestRecord[] {
  return records.filter((record) => record.outcome === 'timeout' || record.outcome === 'error' || record.outcome === 'no-target');
}

/** Everything answered in time during the fault, then /health and presence back within their bounds. */
function expectWithstood(result: FaultResult): void {
  expectAnsweredInTime(result.fault);
  expect(result.healthOkMs).toBeLessThan(HEALTH_BOUND_MS);
  expect(result.presenceMs).toBeLessThan(PRESENCE_BOUND_MS);
}

function expectAnsweredInTime(fault: string): void {
  const inPhase = workload.recorder.inPhase(fault);
  const records = inPhase.filter((record) => record.route !== BURST_ROUTE);
  // The burst is set-up for the fault, with its own deadline: answered, but not held to DEADLINE_MS.
  expect(unanswered(inPhase.filter((record) => record.route === BURST_ROUTE))).toEqual([]);
  expect(records.length).toBeGreaterThan(50);
  expect(unanswered(records)).toEqual([]);
  expect(records.filter((record) => record.cached && isServerError(record))).toEqual([]);
  expect(Math.max(...records.map((record) => record.ms))).toBeLessThan(DEADLINE_MS);
}

// ---------------------------------------------------------------- setup

beforeAll(async () => {
  // Durable (AOF, fsync always) for the whole run: the restart faults need it ("nothing lost" cannot hold
  // across SIGKILL of an in-memory Redis), and the other faults keep the same server so their state carries on.
  redis = await RedisServer.start({ durable: true });
  proxy = await TcpProxy.start(redis.port);
  ledger = new JobLedger(redis.url(), `${QUEUE_KEYS}:events`);
  cluster = await Cluster.start(INSTANCES, {
    REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    JWT_SECRET,
    APP_ROLE: 'all',
    PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS),
    PRESENCE_OFFLINE_GRACE_SECONDS: String(PRESENCE_OFFLINE_GRACE_SECONDS),
    QUEUE_STALLED_INTERVAL_SECONDS: String(QUEUE_STALLED_INTERVAL_SECONDS),
  });
  workload = await Workload.start(cluster, {
    tenants: TENANTS,
    usersPerTenant: USERS_PER_TENANT,
    authors: AUTHORS,
    warmReports: WARM_REPORTS,
    httpLoops: HTTP_LOOPS,
    httpPauseMs: HTTP_PAUSE_MS,
    jobIntervalMs: JOB_INTERVAL_MS,
    jobLines: 20,
    deadlineMs: DEADLINE_MS,
    tokenLifetime: '30m',
  });
  workload.recorder.phase = 'baseline';
  await delay(5_000);
  await presenceRightAfter(Date.now());
}, 120_000);

afterAll(async () => {
  await workload?.stop();
  await ledger?.stop();
  await cluster?.stop();
  await proxy?.close();
  await stopAllRedisServers();
  printSummary();
}, 60_000);

// ---------------------------------------------------------------- the faults, one at a time

describe('under load: 3 instances, HTTP, a job stream, 500 sockets', () => {
  it('baseline: every request answered within 2 s', () => {
    expectAnsweredInTime('baseline');
  });

  it('Redis restarted with SIGTERM (down 2 s)', async () => {
    const result = await underFault('redis SIGTERM restart', async () => {
      await Promise.all([redis.restart('SIGTERM', REDIS_DOWN_MS), churn()]);
    });
    expectWithstood(result);
  }, 90_000);

  it('Redis SIGKILLed (down 2 s)', async () => {
    const result = await underFault('redis SIGKILL restart', async () => {
      await Promise.all([redis.restart('SIGKILL', REDIS_DOWN_MS), churn()]);
    });
    expectWithstood(result);
  }, 90_000);

  it('Redis frozen with SIGSTOP for 10 s: nothing hangs', async () => {
    const result = await underFault('redis SIGSTOP 10 s', async () => {
      redis.pause();
      await Promise.all([delay(FREEZE_MS), churn()]);
      redis.resume();
    });
    expectWithstood(result);
  }, 90_000);

  it('100 ms added to every Redis round trip for 10 s', async () => {
    const result = await underFault('latency +100 ms RTT', async () => {
      proxy.latencyMs = PROXY_LATENCY_MS;
      await Promise.all([delay(LATENCY_HOLD_MS), churn()]);
      proxy.latencyMs = 0;
    });
    expectWithstood(result);
  }, 90_000);

  it('every Redis connection dropped at once', async () => {
    let cut = 0;
    const result = await underFault('connections dropped', async () => {
      cut = proxy.cutAll();
      await churn();
    });
    // 3 roles per instance, plus the worker's blocking connection.
    expect(cut).toBeGreaterThanOrEqual(INSTANCES * 4);
    expectWithstood(result);
  }, 90_000);

  it('Redis out of memory (maxmemory reached, noeviction) for 5 s', async () => {
    const result = await withAdmin((admin) =>
      underFault('redis OOM 5 s', async () => {
        await admin.config('SET', 'maxmemory', '1');
        await Promise.all([delay(BAD_STATE_MS), churn()]);
        await admin.config('SET', 'maxmemory', '0');
      }),
    );
    expectWithstood(result);
    // POST /reports meets the full Redis: answered 503 (with Retry-After), not 500.
    const posts = workload.recorder.inPhase('redis OOM 5 s').filter((record) => record.route === 'POST /reports');
    expect(posts.filter((record) => record.outcome === 503).length).toBeGreaterThan(0);
    expect(posts.filter((record) => isServerError(record) && record.outcome !== 503)).toEqual([]);
  }, 90_000);

  it('Redis at its connection limit for 5 s (every connection cut, 4 of 12 find no slot)', async () => {
    const result = await withAdmin((admin) =>
      underFault('redis maxclients 5 s', async () => {
        const connected = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))?.[1]);
        await admin.config('SET', 'maxclients', String(connected - REFUSED_CONNECTIONS));
        proxy.cutAll();
        await Promise.all([delay(BAD_STATE_MS), churn()]);
        await admin.config('SET', 'maxclients', '10000');
      }),
    );
    expectWithstood(result);
    const refusals = cluster.everyApp.flatMap((app) => app.matching(/max number of clients reached/));
    expect(refusals.length).toBeGreaterThan(0);
  }, 90_000);

  it('an app instance SIGKILLed (and replaced)', async () => {
    const result = await underFault('app SIGKILL', async () => {
      // A backlog, and the kill once every worker slot is busy (3 workers × concurrency 2), so the victim most
      // likely dies holding jobs, to be recovered as stalled. Not asserted: a job can finish in the few ms before
      // the signal lands; the summary reports how many stalled.
      const burst = workload.jobs.burst(BURST_JOBS, BURST_LINES, BURST_DEADLINE_MS);
      const busyBy = Date.now() + 10_000;
      while (Number(await redis.command('LLEN', `${QUEUE_KEYS}:active`)) < INSTANCES * 2 && Date.now() < busyBy) await delay(5);
      await Promise.all([cluster.killAndReplace(0), churn(), burst]);
    });
    expectWithstood(result);
  }, 90_000);

  it('a rolling restart of every instance (SIGTERM, one at a time)', async () => {
    const result = await underFault('rolling restart', async () => {
      await Promise.all([cluster.rollingRestart(), churn()]);
    });
    expectWithstood(result);
  }, 120_000);

  it('every accepted job completed, none twice', async () => {
    const { jobs, swarm } = workload;
    workload.recorder.phase = 'drain';
    await jobs.stop();
    const accepted = [...jobs.accepted.keys()];
    expect(accepted.length).toBeGreaterThan(100);
    // A job held by the SIGKILLed instance is retried once its lock runs out (stalled-job recovery).
    const started = Date.now();
    while (accepted.some((id) => !ledger.completed.has(id)) && Date.now() - started < DRAIN_BOUND_MS) await delay(500);
    await ledger.catchUp();
    drained = { accepted: accepted.length, refused: jobs.refused, ms: Date.now() - started, stalled: ledger.stalled.size };

    const lost = accepted.filter((id) => !ledger.completed.has(id));
    const completedTwice = [...ledger.completed].filter(([, n]) => n > 1).map(([id]) => id);
    const notifiedTwice = [...swarm.completions].filter(([, n]) => n > 1).map(([id]) => id);
    drained.completed = accepted.length - lost.length;
    drained.completedTwice = completedTwice.length;
    drained.notified = accepted.filter((id) => swarm.completions.has(id)).length;
    expect(lost).toEqual([]);
    expect(completedTwice).toEqual([]);
    expect(notifiedTwice).toEqual([]);
    expect([...ledger.failed.keys()]).toEqual([]);

    // And the API agrees: each one reads back as completed.
    const notCompleted: string[] = [];
    for (const id of accepted) {
      const author = jobs.accepted.get(id) as Author;
      const target = cluster.next();
      const response = target ? await timedRequest(target, `/reports/${id}`, { headers: { authorization: `Bearer ${author.token}` } }, 5_000) : undefined;
      if (response?.outcome !== 200 || (response.body as { status: string }).status !== 'completed') notCompleted.push(`${id}: ${response?.outcome}`);
    }
    expect(notCompleted).toEqual([]);
  }, 180_000);
});

// ---------------------------------------------------------------- the summary (for RELIABILITY.md)

function printSummary(): void {
  if (!workload) return;
  const { recorder, swarm } = workload;
  const phases = [...new Set(recorder.records.map((record) => record.phase))];
  const lines = ['', '## chaos summary', '', '| phase | requests | 2xx | 503 | other 5xx (cached) | unanswered | cut by kill | max ms | health ok after ms | presence right after ms |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const phase of phases) {
    const records = recorder.inPhase(phase);
    const ok = records.filter((record) => typeof record.outcome === 'number' && record.outcome < 300).length;
    const refused = records.filter((record) => record.outcome === 503).length;
    const otherServerErrors = records.filter((record) => isServerError(record) && record.outcome !== 503);
    const cachedServerErrors = otherServerErrors.filter((record) => record.cached).length;
    const fault = faults.find((result) => result.fault === phase);
    const maxMs = Math.max(0, ...records.map((record) => record.ms));
    lines.push(
      `| ${phase} | ${records.length} | ${ok} | ${refused} | ${otherServerErrors.length} (${cachedServerErrors}) | ${unanswered(records).length} | ${records.filter((record) => record.outcome === 'cut').length} | ${maxMs.toFixed(0)} | ${fault?.healthOkMs ?? ''} | ${fault?.presenceMs ?? ''} |`,
    );
  }
  for (const record of unanswered(recorder.records)) lines.push(`unanswered: ${record.phase}, ${record.route}, ${record.outcome} after ${record.ms.toFixed(0)} ms`);
  const serverErrors = new Map<string, number>();
  for (const record of recorder.records.filter(isServerError)) {
    const key = `${record.phase}, ${record.route}: ${String(record.outcome)}`;
    serverErrors.set(key, (serverErrors.get(key) ?? 0) + 1);
  }
  for (const [key, n] of serverErrors) lines.push(`5xx: ${key} ×${n}`);
  // Connection trouble is expected (one line per state change); anything else logged at ERROR is worth reading.
  const errors = cluster.everyApp.flatMap((app) => app.matching(/\bERROR\b/));
  const unexpected = errors.filter((line) => !/\[Redis(:[\w-]+)?\]/.test(line));
  lines.push(`app ERROR lines: ${errors.length}, of which not about Redis connections: ${unexpected.length}`, ...unexpected.slice(0, 10).map((line) => `  ${line.slice(0, 300)}`));
  if (drained) {
    lines.push(
      '',
      `jobs: accepted ${drained.accepted}, refused (503) ${drained.refused}, completed ${drained.completed ?? '?'}, lost ${drained.accepted - (drained.completed ?? 0)}, completed twice ${drained.completedTwice ?? '?'}, ` +
        `report:completed notifications received for ${drained.notified ?? '?'}, stalled and retried ${drained.stalled}; all completed ${drained.ms} ms after the stream stopped`,
    );
  }
  lines.push(`Redis: one durable redis-server (AOF, fsync always) for every fault; apps reach it through the TCP proxy`);
  lines.push(`sockets: ${swarm.size} users connected at the end, ${swarm.reconnects} reconnects over the run`, '');
  console.log(lines.join('\n'));
}
