import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import { JOBS_QUEUE } from '../src/queue/queue.constants';
import { Cluster, type Instance } from './support/cluster';
import { JobLedger } from './support/job-ledger';
import { scrape, total } from './support/prometheus-text';
import { Author, BURST_ROUTE, HttpLoad, JobStream, Recorder, RequestRecord, timedRequest } from './support/load';
import { type Failover, RedisCluster } from './support/redis-cluster';
import { stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET, tokenFor } from './support/reports-client';
import { until } from './support/until';

/**
 * A Redis Cluster of 3 masters, each with a replica, under two `APP_ROLE=all` instances (REDIS_CLUSTER=true) and a
 * steady stream of POST /reports. Mid-load the master that holds the queue's slot ({pharmacare}: every BullMQ key,
 * and the tenant quota) is SIGKILLed; its replica takes over. Throughout: every POST answered in time, 202 or 503
 * with Retry-After. Afterwards: /health back to 200 on both instances (no process restarted), POSTs accepted again,
 * the node's failure logged in a few lines, and once drained every accepted job completed, none twice.
 */

// ---------------------------------------------------------------- knobs

const INSTANCES = 2;
/** What the app's queue keys hash on with REDIS_CLUSTER=true (the default REDIS_KEY_PREFIX, as a hash tag). */
const QUEUE_PREFIX = '{pharmacare}';
const QUEUE_KEYS = `${QUEUE_PREFIX}:${JOBS_QUEUE}`;
/**
 * cluster-node-timeout: a master silent this long is failed over, which then takes about as long again (election). The
 * harness's default, on purpose: about 9 s without a master, long enough for every role's retries to run out once.
 */
const NODE_TIMEOUT_MS = 5_000;
const AUTHORS = 10;
/** POST loops, each one request at a time: a refused POST takes a while (the command role's retries), so one loop would probe the failover only a few times. */
const STREAMS = 3;
const JOB_INTERVAL_MS = 200;
/**
 * An answer later than this is a hang. The producer gives up on Redis after 1.5 s (PRODUCER_TIMEOUT_MS); taking in the
 * burst keeps 2 cores busy enough to add 2 s to a POST with no fault at all.
 */
const DEADLINE_MS = 5_000;
const BASELINE_MS = 5_000;
/**
 * Posted right before the kill, which comes once every worker slot (2 instances × concurrency 2) holds a job (or after
 * ACTIVE_WAIT_MS: not asserted, a fast worker may empty the backlog first; the summary says how many were active), so
 * completions, lock renewals and the handlers' writes meet the failover. Big jobs, with a deadline of their own (how
 * fast 2 cores take them in measures the machine). The kill may land while they are being taken in: 202 or 503 then.
 */
const BURST_JOBS = 12;
const BURST_LINES = 2_500;
const BURST_DEADLINE_MS = 15_000;
const WORKER_SLOTS = INSTANCES * 2;
const ACTIVE_WAIT_MS = 10_000;
/** Load kept on after /health is back, before the stream stops. */
const AFTER_MS = 10_000;
/** A job whose lock the dead master held is found stalled and retried within the stalled interval + the 30 s lock. */
const QUEUE_STALLED_INTERVAL_SECONDS = 5;
const HEALTH_BOUND_MS = 20_000;
const DRAIN_BOUND_MS = 60_000;
/**
 * The node's failure, per instance: a line per Redis role and kind of error (refused, closed, reset) naming the node,
 * not one per failed command or retry (ioredis retries every 100-500 ms: a flood is dozens a second). In all, few
 * warnings: the cache also says each time it falls back to memory (about once a second while the slot has no master).
 */
const NODE_LINES_BOUND = 8;
const FAILURE_LINES_BOUND = 30;
/** /metrics (jobs each worker completed) and /health's details need it. */
const METRICS_TOKEN = 'chaos-failover-metrics-token-8d2e6a';

// ---------------------------------------------------------------- the system under test

let redis: RedisCluster;
let apps: Cluster;
let ledger: JobLedger;
const recorder = new Recorder();
let streams: JobStream[] = [];
let health: HttpLoad;
let failover: Failover | undefined;
let killedAt = 0;
/** Jobs in the active list when the master was killed. */
let activeAtKill = 0;
let healthOkMs: number | undefined;
/** What /health said of each Redis role while the failover was under way, e.g. "redis:command up", "redis:command degraded". */
const healthSeen = new Set<string>();
let completedAtFailover: number[] = [];
let completedAfter: number[] = [];
let drained: { accepted: number; refused: number; completed: number; completedTwice: number; stalled: number; ms: number } | undefined;

const POST = 'POST /reports';
const posts = (phase: string): RequestRecord[] => recorder.inPhase(phase).filter((record) => record.route === POST);
const accepted = (record: RequestRecord): boolean => typeof record.outcome === 'number' && record.outcome >= 200 && record.outcome < 300;

interface HealthAnswer {
  outcome: RequestRecord['outcome'];
  status?: string;
  /** Status of each indicator, e.g. { 'redis:command': 'up' }. */
  indicators: Record<string, string>;
}

async function healthOf(target: Instance): Promise<HealthAnswer> {
  const answer = await timedRequest(target, '/health', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }, DEADLINE_MS);
  const body = answer.body as { status?: string; details?: Record<string, { status: string }> } | undefined;
  const indicators = Object.fromEntries(Object.entries(body?.details ?? {}).map(([key, value]) => [key, value.status]));
  return { outcome: answer.outcome, status: body?.status, indicators };
}

const healthy = (answer: HealthAnswer): boolean => answer.outcome === 200 && answer.status === 'ok' && Object.values(answer.indicators).every((status) => status === 'up');

/** Jobs the instance's worker completed so far (its own metric). */
async function completedBy(instance: Instance): Promise<number> {
  return total(await scrape(instance.app, METRICS_TOKEN), 'pharmacare_queue_job_duration_seconds_count', { outcome: 'completed' });
}

/** Warnings and errors an instance logged since the kill, but for the access log's line per refused request ([HTTP] POST /reports 503). */
function failureLines(index: number): string[] {
  return apps.everyApp[index].lines.slice(linesAtKill[index] ?? 0).filter((line) => /\b(WARN|ERROR)\b/.test(line) && !/\[HTTP\]/.test(line));
}
const linesAtKill: number[] = [];

beforeAll(async () => {
  redis = await RedisCluster.start({ replicas: 1, nodeTimeoutMs: NODE_TIMEOUT_MS });
  ledger = new JobLedger(redis.url(), `${QUEUE_KEYS}:events`, { cluster: true });
  apps = await Cluster.start(INSTANCES, {
    REDIS_URL: redis.url(),
    REDIS_CLUSTER: 'true',
    JWT_SECRET,
    APP_ROLE: 'all',
    METRICS_TOKEN,
    QUEUE_STALLED_INTERVAL_SECONDS: String(QUEUE_STALLED_INTERVAL_SECONDS),
    // Jobs pile up per tenant while the queue's master is away: not what this test is about.
    QUEUE_TENANT_MAX_JOBS: '1000',
  });
  const authors: Author[] = Array.from({ length: AUTHORS }, (_unused, n) => ({ userId: `u${n}`, token: tokenFor(`u${n}`, `pharmacy-${n}`, '30m') }));
  // Distinct seeds per stream: every POST is a new job.
  streams = Array.from(
    { length: STREAMS },
    (_unused, n) => new JobStream(apps, authors, recorder, { intervalMs: JOB_INTERVAL_MS, deadlineMs: DEADLINE_MS, lines: 20, firstSeed: 300_000 + n * 100_000 }),
  );
  health = new HttpLoad(apps, [{ name: 'GET /health', cached: false, path: () => '/health', headers: () => ({}) }], recorder, {
    concurrency: 1,
    pauseMs: 200,
    deadlineMs: DEADLINE_MS,
  });
  recorder.phase = 'baseline';
  for (const stream of streams) stream.start();
  health.start();
}, 120_000);

afterAll(async () => {
  await Promise.all(streams.map((stream) => stream.stop()));
  await health?.stop();
  await ledger?.stop();
  await apps?.stop();
  await redis?.stop();
  await stopAllRedisServers();
  printSummary();
}, 60_000);

describe('Redis Cluster 3+3: the master of the queue slot SIGKILLed under POST load', () => {
  it('baseline: every POST accepted', async () => {
    await delay(BASELINE_MS);
    const baseline = posts('baseline');
    expect(baseline.length).toBeGreaterThan(20);
    expect(baseline.filter((record) => !accepted(record))).toEqual([]);
  }, 30_000);

  it('failover: every POST answered in time, 202 or 503 with Retry-After; /health back to 200 without a restart', async () => {
    const master = await redis.masterFor(QUEUE_PREFIX);
    const pids = apps.instances.map((instance) => instance.app.pid);
    recorder.phase = 'burst';
    const burst = streams[0].burst(BURST_JOBS, BURST_LINES, BURST_DEADLINE_MS);
    for (const by = Date.now() + ACTIVE_WAIT_MS; activeAtKill < WORKER_SLOTS && Date.now() < by;) activeAtKill = Number(await master.command('LLEN', `${QUEUE_KEYS}:active`));
    linesAtKill.push(...apps.everyApp.map((app) => app.lines.length));
    recorder.phase = 'failover';
    killedAt = Date.now();
    let failingOver = true;
    // /health as the instances report it while the failover is under way (a probe every 250 ms, until it is over).
    const watching = (async () => {
      while (failingOver) {
        for (const answer of await Promise.all(apps.instances.map(healthOf))) {
          for (const [indicator, status] of Object.entries(answer.indicators)) if (indicator.startsWith('redis:')) healthSeen.add(`${indicator} ${status}`);
        }
        await delay(250);
      }
    })();
    try {
      failover = await redis.failover(master);
    } finally {
      failingOver = false;
      await Promise.all([watching, burst]);
    }
    expect((await redis.masterFor(QUEUE_PREFIX)).port).toBe(failover.promoted.port);

    recorder.phase = 'recovery';
    const answers = await until(
      () => Promise.all(apps.instances.map(healthOf)),
      (all) => all.every(healthy),
      HEALTH_BOUND_MS,
      200,
    );
    healthOkMs = Date.now() - killedAt;
    completedAtFailover = await Promise.all(apps.instances.map(completedBy));
    expect(answers).toHaveLength(INSTANCES);
    // /health saw the master go: the command role's indicator was not up at some point.
    expect([...healthSeen].filter((seen) => seen.startsWith('redis:command ') && seen !== 'redis:command up')).not.toEqual([]);
    // The same processes, still running: nothing was restarted to get there.
    expect(apps.everyApp).toHaveLength(INSTANCES);
    expect(apps.instances.map((instance) => instance.app.pid)).toEqual(pids);
    for (const pid of pids) expect(() => process.kill(pid as number, 0)).not.toThrow();

    // The burst was taken in (or refused once the master was gone) within its own deadline.
    const burstPosts = recorder.records.filter((record) => record.route === BURST_ROUTE);
    expect(burstPosts).toHaveLength(BURST_JOBS);
    expect(burstPosts.filter((record) => !accepted(record) && record.outcome !== 503)).toEqual([]);

    // Stream POSTs from the burst on: the kill may have landed while the burst was being taken in.
    const during = [...posts('burst'), ...posts('failover'), ...posts('recovery')];
    expect(during.length).toBeGreaterThan(10);
    // The failover was felt (the queue's slot had no master for a while), and each refusal said when to come back.
    expect(during.filter((record) => record.outcome === 503).length).toBeGreaterThan(0);
    expect(during.filter((record) => !accepted(record) && record.outcome !== 503)).toEqual([]);
    expect(during.filter((record) => record.outcome === 503 && !/^[1-9]\d*$/.test(record.retryAfter ?? ''))).toEqual([]);
    // Never a hang: every POST answered well within the deadline (a timeout would be an outcome other than 202/503).
    expect(Math.max(...during.map((record) => record.ms))).toBeLessThan(DEADLINE_MS);
  }, 90_000);

  it('after the failover: POSTs accepted again', async () => {
    recorder.phase = 'after';
    await delay(AFTER_MS);
    const after = posts('after');
    expect(after.length).toBeGreaterThan(20);
    expect(after.filter((record) => !accepted(record))).toEqual([]);
    // Both workers consume again (a worker whose blocking connection stayed on the dead master would not).
    completedAfter = await Promise.all(apps.instances.map(completedBy));
    completedAfter.forEach((count, index) => expect(count).toBeGreaterThan(completedAtFailover[index]));
  }, 30_000);

  it("the node's failure logged in a few lines per instance, naming it", () => {
    const node = `127.0.0.1:${String(failover?.killed.port)}`;
    for (let index = 0; index < INSTANCES; index++) {
      const lines = failureLines(index);
      const naming = lines.filter((line) => line.includes(node));
      expect(naming.length).toBeGreaterThan(0);
      expect(naming.length).toBeLessThanOrEqual(NODE_LINES_BOUND);
      expect(lines.length).toBeLessThanOrEqual(FAILURE_LINES_BOUND);
    }
  });

  it('every accepted job completed, none twice', async () => {
    recorder.phase = 'drain';
    await Promise.all([...streams.map((stream) => stream.stop()), health.stop()]);
    const authorOf = new Map(streams.flatMap((stream) => [...stream.accepted]));
    const ids = [...authorOf.keys()];
    expect(ids.length).toBeGreaterThan(100);
    const started = Date.now();
    await until(
      async () => ids.filter((id) => !ledger.completed.has(id)).length,
      (missing) => missing === 0 || Date.now() - started > DRAIN_BOUND_MS,
      DRAIN_BOUND_MS + 5_000,
      500,
    );
    await ledger.catchUp();
    const lost = ids.filter((id) => !ledger.completed.has(id));
    const completedTwice = [...ledger.completed].filter(([, n]) => n > 1).map(([id]) => id);
    drained = {
      accepted: ids.length,
      refused: streams.reduce((sum, stream) => sum + stream.refused, 0),
      completed: ids.length - lost.length,
      completedTwice: completedTwice.length,
      stalled: ledger.stalled.size,
      ms: Date.now() - started,
    };
    expect(lost).toEqual([]);
    expect(completedTwice).toEqual([]);
    expect([...ledger.failed.keys()]).toEqual([]);

    // And the API agrees: each reads back as completed.
    const notCompleted: string[] = [];
    for (const id of ids) {
      const author = authorOf.get(id) as Author;
      const target = apps.next();
      const response = target ? await timedRequest(target, `/reports/${id}`, { headers: { authorization: `Bearer ${author.token}` } }, 5_000) : undefined;
      if (response?.outcome !== 200 || (response.body as { status: string }).status !== 'completed') notCompleted.push(`${id}: ${response?.outcome}`);
    }
    expect(notCompleted).toEqual([]);
  }, 120_000);
});

// ---------------------------------------------------------------- the summary

function printSummary(): void {
  const lines = [
    '',
    '## cluster failover summary',
    '',
    '| phase | POSTs | 2xx | 503 | other | max ms | GET /health 200 / other |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const phase of [...new Set(recorder.records.map((record) => record.phase))]) {
    const phasePosts = posts(phase);
    const healthChecks = recorder.inPhase(phase).filter((record) => record.route === 'GET /health');
    const ok = phasePosts.filter(accepted).length;
    const refused = phasePosts.filter((record) => record.outcome === 503).length;
    const maxMs = Math.max(0, ...phasePosts.map((record) => record.ms));
    const healthOk = healthChecks.filter((record) => record.outcome === 200).length;
    lines.push(
      `| ${phase} | ${phasePosts.length} | ${ok} | ${refused} | ${phasePosts.length - ok - refused} | ${maxMs.toFixed(0)} | ${healthOk} / ${healthChecks.length - healthOk} |`,
    );
  }
  const burstPosts = recorder.records.filter((record) => record.route === BURST_ROUTE);
  lines.push(
    `burst before the kill: ${burstPosts.length} POSTs of ${BURST_LINES} lines, ${burstPosts.filter(accepted).length} accepted, ${burstPosts.filter((record) => record.outcome === 503).length} refused; ${activeAtKill} jobs active at the kill`,
  );
  const others = recorder.records.filter((record) => !accepted(record) && record.outcome !== 503 && (record.route === POST || record.route === BURST_ROUTE));
  for (const record of others.slice(0, 10)) lines.push(`other: ${record.phase}, ${String(record.outcome)} after ${record.ms.toFixed(0)} ms`);
  if (failover) lines.push(`failover: master :${failover.killed.port} SIGKILLed, replica :${failover.promoted.port} serving with cluster_state:ok after ${failover.ms} ms`);
  if (healthOkMs !== undefined) lines.push(`/health 200 and every indicator up on every instance ${healthOkMs} ms after the kill`);
  lines.push(`/health during the failover: ${[...healthSeen].sort().join(', ')}`);
  lines.push(`jobs completed per worker: ${completedAtFailover.join(' / ')} when /health was back, ${completedAfter.join(' / ')} ${AFTER_MS / 1000} s later`);
  if (drained) {
    lines.push(
      `jobs: accepted ${drained.accepted}, refused (503) ${drained.refused}, completed ${drained.completed}, completed twice ${drained.completedTwice}, stalled and retried ${drained.stalled}; drained in ${drained.ms} ms`,
    );
  }
  if (apps && linesAtKill.length > 0) {
    for (let index = 0; index < apps.everyApp.length; index++) {
      const failure = failureLines(index);
      lines.push(`app${index + 1}: ${failure.length} WARN/ERROR lines since the kill`, ...failure.slice(0, 25).map((line) => `  ${line.slice(0, 300)}`));
    }
  }
  console.log(lines.join('\n'));
}
