import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { sign } from 'jsonwebtoken';
import { tenantHashTag, tenantKey } from '../src/cache/cache-keys';
import { adapterKey, PRESENCE_NAMESPACE, userRoom } from '../src/presence/presence.constants';
import { JOBS_QUEUE } from '../src/queue/queue.constants';
import { PENDING_ADD_GRACE_MS } from '../src/queue/tenant-work-quota';
import { AppProcess } from '../test/support/app-process';
import { parsePrometheusText } from '../test/support/prometheus-text';
import { RedisCluster } from '../test/support/redis-cluster';
import { RedisServer } from '../test/support/redis-server';
import {
  BenchResult,
  Check,
  commandStats,
  count,
  Counts,
  envInteger,
  formatCounts,
  formatMs,
  formatRatio,
  interleavedLoad,
  LoadResult,
  median,
  NotificationListener,
  pickupThroughHttp,
  type PickupResult,
  processCpuMs,
  progress,
  reportRequest,
  Resources,
  Row,
  startDocsRecipe,
  summarize,
  total,
  UNBILLED,
  UNBOUNDED_TENANT_WORK,
} from './support';

export const name = 'cluster';
export const title =
  'Redis Cluster (3 masters, REDIS_CLUSTER=true) against a standalone redis-server in the same run: jobs/s, POST and cached GET latency, billable commands per report and the masters they land on; the NestJS docs recipe on a cluster';

// ---------------------------------------------------------------- knobs

/** Reports per throughput run, runs per target (alternating), reports of the pickup case, sequential GETs per case and target. */
const JOBS = envInteger('BENCH_CLUSTER_JOBS', 2_000, 100, 100_000);
const REPEATS = envInteger('BENCH_CLUSTER_REPEATS', 5, 1, 10);
const PICKUPS = envInteger('BENCH_CLUSTER_PICKUPS', 100, 4, 2_000);
const GETS = envInteger('BENCH_CLUSTER_GETS', 3_000, 100, 100_000);
/**
 * Tenants the reports are spread over, round-robin: on a cluster each tenant's cache entries sit on its tag's master.
 * The default gives each tenant JOBS / 20 = QUEUE_TENANT_MAX_JOBS's default (20) reports per run: no tenant has more in
 * flight than production allows, which matters because the quota script reads every job a tenant has in flight.
 */
const TENANTS = envInteger('BENCH_CLUSTER_TENANTS', Math.max(1, Math.ceil(JOBS / 20)), 1, 10_000);
/** How long the docs recipe's worker runs against each target (0: not started). */
const RECIPE_WORKER_MS = envInteger('BENCH_CLUSTER_RECIPE_WORKER_MS', 2_000, 0, 60_000);

/** The queue suite's report: 20 sale lines. */
const LINES = 20;
/** The cached report: enough lines (28 days) that its view is over CACHE_MAX_VALUE_KB=1, so the memory-less web reads Redis on every GET. */
const CACHED_LINES = 60;
const MEMORYLESS_MAX_VALUE_KB = '1';
const FILL_CONCURRENCY = 8;
const PICKUP_PAUSE_MS = 50;
/** Pickups and GET loops alternate between the targets in this many slices each, so drift hits both alike. */
const ROUNDS = 4;
const GET_ROUNDS = 10;
/** GETs per target whose x-cache header is checked before the latency loops, and sequential GETs whose commands are counted. */
const HEADER_SAMPLE = 20;
const COUNTED_GETS = 200;
const JOB_TIMEOUT_MS = 15_000;
const RUN_TIMEOUT_MS = 180_000;
const LINE_TIMEOUT_MS = 60_000;
const LOAD_SAMPLE_MS = 5_000;
const COMMANDS_PER_REPORT_LIMIT = 1.1;
/**
 * Report seeds (reportRequest), apart for every case: the same tenant POSTing the same report again gets the report it
 * already has (200, no job, no notification). Run r of the throughput uses r × THROUGHPUT_SEED + 0…JOBS − 1 (at most
 * 10 × 1,000,000 + 99,999); the cases after it start above that.
 */
const THROUGHPUT_SEED = 1_000_000;
const PICKUP_SEED = 20_000_000;
const CACHED_SEED = 30_000_000;
const RECIPE_SEED = 40_000_000;
const READY_LINE = /ready in \d+ ms/;
const USER = 'bench-user';
/** Kinds of keys (keyKinds) that are the queue's (BullMQ's and the tenant quotas'), and the cache's (entries, tag indexes, locks). */
const QUEUE_KINDS = /^(jobs|quota)$/;
const CACHE_KINDS = /^cache/;
/**
 * What the servers run besides the workload: the bench's own INFO and SCAN, ioredis Cluster's topology refresh
 * (CLUSTER SLOTS every 5 s per client), connection setup. Left out of the per-master counts.
 */
const BACKGROUND = /^(INFO|SCAN|DBSIZE|PING|HELLO|SELECT|COMMAND|COMMAND\|.*|CLUSTER\|.*|CONFIG\|.*|CLIENT\|.*)$/;
const BACKGROUND_LABEL = 'INFO, SCAN, DBSIZE, PING, HELLO, SELECT, COMMAND, CLUSTER *, CONFIG *, CLIENT *';

type TargetKey = 'standalone' | 'cluster';
const TARGETS: readonly TargetKey[] = ['standalone', 'cluster'];

const tenants = Array.from({ length: TENANTS }, (_unused, index) => `bench-pharmacy-${index + 1}`);

// ---------------------------------------------------------------- the two deployments

interface Target {
  readonly key: TargetKey;
  readonly nodes: readonly RedisServer[];
  /** A plain client per node (not a Cluster client): INFO, SCAN and ZCARD on that node only. */
  readonly stats: readonly Redis[];
  readonly url: string;
  readonly secret: string;
  readonly headers: readonly Record<string, string>[];
  /** APP_ROLE=web with the default cache settings; the same with CACHE_MAX_VALUE_KB=1 (every hit from Redis); APP_ROLE=worker. */
  readonly web: AppProcess;
  readonly memoryless: AppProcess;
  readonly worker: AppProcess;
  readonly notifications: NotificationListener;
  /** Index in `nodes` of the master holding each slot. */
  readonly nodeOfSlot: (slot: number) => number;
  readonly slotRanges: readonly string[];
  readonly queuePrefix: string;
}

function tokenFor(secret: string, tenant: string): string {
  return sign({ sub: USER, tenant }, secret, { algorithm: 'HS256', expiresIn: '12h' });
}

/** The masters' slot ranges (CLUSTER SLOTS): a lookup from slot to node, and each node's ranges as text. */
async function slotMap(nodes: readonly RedisServer[], client: Redis): Promise<{ nodeOfSlot: (slot: number) => number; ranges: string[] }> {
  if (nodes.length === 1) return { nodeOfSlot: () => 0, ranges: ['all'] };
  const reply = await client.cluster('SLOTS');
  // Each range: start, end, then its master [host, port, id, …] (no replicas here).
  const owners = reply.map(([from, to, master]) => ({ from, to, node: nodes.findIndex((node) => node.port === Number(master?.[1])) }));
  const ranges = nodes.map((_node, index) =>
    owners
      .filter((owner) => owner.node === index)
      .map((owner) => `${owner.from}–${owner.to}`)
      .join(', '),
  );
  return {
    nodeOfSlot: (slot) => owners.find((owner) => slot >= owner.from && slot <= owner.to)?.node ?? -1,
    ranges,
  };
}

async function startTarget(resources: Resources, key: TargetKey): Promise<Target> {
  let nodes: readonly RedisServer[];
  if (key === 'cluster') {
    const cluster = resources.add(await RedisCluster.start(), 'redis cluster', (c) => c.stop());
    nodes = cluster.nodes;
  } else {
    nodes = [resources.add(await RedisServer.start(), 'redis-server (standalone)', (server) => server.stop())];
  }
  const stats = nodes.map((node, index) => resources.add(new Redis(node.port, '127.0.0.1'), `stats client (${key} ${index + 1})`, (client) => client.quit()));
  // The author's room channel of every tenant, where the sharded adapter sends report:completed on a cluster.
  const notifications = resources.add(
    key === 'cluster'
      ? await NotificationListener.startSharded(
          nodes[0].port,
          tenants.map((tenant) => `${adapterKey('pharmacare')}#${PRESENCE_NAMESPACE}#${userRoom(tenant, USER)}#`),
        )
      : await NotificationListener.start(nodes[0].port),
    `notifications (${key})`,
    (n) => n.stop(),
  );
  const secret = randomBytes(48).toString('base64');
  const url = nodes[0].url();
  const env: Record<string, string> = {
    REDIS_URL: url,
    JWT_SECRET: secret,
    LOG_LEVEL: 'log',
    ...UNBOUNDED_TENANT_WORK,
    ...(key === 'cluster' ? { REDIS_CLUSTER: 'true' } : {}),
  };
  const start = async (label: string, extra: Record<string, string>) => {
    const app = resources.add(await AppProcess.start({ ...env, ...extra }, { listenTimeoutMs: LINE_TIMEOUT_MS }), `${label} (${key})`, (a) => a.stop());
    await app.waitForLines(READY_LINE, 3, LINE_TIMEOUT_MS);
    return app;
  };
  const [web, memoryless, worker] = await Promise.all([
    start('web', { APP_ROLE: 'web' }),
    start('memory-less web', { APP_ROLE: 'web', CACHE_MAX_VALUE_KB: MEMORYLESS_MAX_VALUE_KB }),
    start('worker', { APP_ROLE: 'worker' }),
  ]);
  await worker.waitForLine(/processing "jobs"/, LINE_TIMEOUT_MS);
  const { nodeOfSlot, ranges } = await slotMap(nodes, stats[0]);
  const headers = tenants.map((tenant) => ({ authorization: `Bearer ${tokenFor(secret, tenant)}`, 'content-type': 'application/json' }));
  return {
    key,
    nodes,
    stats,
    url,
    secret,
    headers,
    web,
    memoryless,
    worker,
    notifications,
    nodeOfSlot,
    slotRanges: ranges,
    queuePrefix: key === 'cluster' ? '{pharmacare}' : 'pharmacare',
  };
}

/** The node holding the queue's keys ({pharmacare}:jobs:* on a cluster: one slot). */
function queueNode(target: Target): number {
  return target.nodeOfSlot(calculateSlot(`${target.queuePrefix}:${JOBS_QUEUE}:wait`));
}

/** The node holding a tenant's cache entries, locks and tag indexes (its {t:<tenant>} tag). */
function tenantNode(target: Target, tenant: string): number {
  return target.nodeOfSlot(calculateSlot(tenantHashTag(tenantKey(tenant, 'report')) ?? tenant));
}

function headersOf(target: Target, index: number): Record<string, string> {
  return target.headers[index % target.headers.length];
}

// ---------------------------------------------------------------- counting

function diff(after: ReadonlyMap<string, number>, before: ReadonlyMap<string, number>): Counts {
  const counts: Counts = new Map();
  for (const [key, n] of after) {
    const delta = n - (before.get(key) ?? 0);
    if (delta !== 0) counts.set(key, delta);
  }
  return counts;
}

function add(into: Counts, from: ReadonlyMap<string, number>): void {
  for (const [key, n] of from) count(into, key, n);
}

/** The app's own count of the billable Redis commands it wrote (GET /metrics, pharmacare_redis_commands_total{billable="true"}), by command, all roles. */
async function billableOf(app: AppProcess): Promise<Counts> {
  const response = await app.request('/metrics');
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  const counts: Counts = new Map();
  for (const sample of parsePrometheusText(response.text)) {
    if (sample.name === 'pharmacare_redis_commands_total' && sample.labels.billable === 'true') count(counts, sample.labels.command.toUpperCase(), sample.value);
  }
  return counts;
}

/** Every node's INFO commandstats and redis-server CPU time. */
interface NodeStats {
  commands: Counts[];
  cpuMs: Array<number | undefined>;
}

async function nodeStats(target: Target): Promise<NodeStats> {
  return { commands: await Promise.all(target.stats.map((client) => commandStats(client))), cpuMs: target.nodes.map((node) => processCpuMs(node.pid)) };
}

/** What each node ran between two snapshots, the background (BACKGROUND) left out; its CPU ms. */
function nodeDelta(before: NodeStats, after: NodeStats): { commands: Counts[]; cpuMs: number[] } {
  return {
    commands: after.commands.map((counts, index) => new Map([...diff(counts, before.commands[index])].filter(([command]) => !BACKGROUND.test(command)))),
    cpuMs: after.cpuMs.map((ms, index) => (ms ?? Number.NaN) - (before.cpuMs[index] ?? Number.NaN)),
  };
}

function perReport(counts: ReadonlyMap<string, number>, reports: number, limit = 8): string {
  const sorted = [...counts.entries()].filter(([, n]) => n / reports >= 0.01).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = sorted.slice(0, limit).map(([command, n]) => `${command} ${Number((n / reports).toFixed(2))}`);
  if (sorted.length > limit) shown.push(`+${sorted.length - limit} more`);
  return shown.length > 0 ? shown.join(', ') : 'none';
}

/** Reads of a report from Redis: its cache entry (GET) or its job (HGETALL). */
function reportReads(commands: ReadonlyMap<string, number>): number {
  return (commands.get('GET') ?? 0) + (commands.get('HGETALL') ?? 0);
}

function errorStats(text: string): Counts {
  const counts: Counts = new Map();
  for (const match of text.matchAll(/^errorstat_([^:]+):count=(\d+)/gm)) counts.set(match[1], Number(match[2]));
  return counts;
}

// ---------------------------------------------------------------- 1. throughput

interface ThroughputRun {
  accepted: number;
  completed: number;
  failed: number;
  jobsPerSecond: number;
  /** POST /reports while filling, FILL_CONCURRENCY in flight, no worker taking jobs. */
  postLatencies: number[];
  postStatuses: Counts;
  /** Billable commands the web (filling) and the worker (processing) counted themselves. */
  webBillable: Counts;
  workerBillable: Counts;
  /** Per node: commands executed (INFO commandstats, calls inside scripts included), redis-server CPU ms. */
  nodeCommands: Counts[];
  nodeCpuMs: number[];
  webCpuMs: number;
  workerCpuMs: number;
}

/** JOBS reports through POST /reports, FILL_CONCURRENCY at a time, spread over the tenants; the answers' times and statuses. */
async function fill(target: Target, firstSeed: number): Promise<{ latencies: number[]; statuses: Counts }> {
  const latencies: number[] = [];
  const statuses: Counts = new Map();
  let next = 0;
  await Promise.all(
    Array.from({ length: FILL_CONCURRENCY }, async () => {
      for (;;) {
        const index = next++;
        if (index >= JOBS) return;
        const started = performance.now();
        try {
          const answer = await target.web.request('/reports', {
            method: 'POST',
            headers: headersOf(target, index),
            body: JSON.stringify(reportRequest(firstSeed + index, LINES)),
          });
          count(statuses, String(answer.status));
        } catch {
          count(statuses, 'error');
        }
        latencies.push(performance.now() - started);
      }
    }),
  );
  return { latencies, statuses };
}

/**
 * One run: the worker is stopped (SIGSTOP) while JOBS reports are POSTed, then continued; jobs/s is (completed − 1)
 * over the time from the first report:completed to the last. The web's and the worker's own command counts
 * (/metrics) and every node's commandstats and CPU are read before and after.
 */
async function throughputRun(target: Target, round: number): Promise<ThroughputRun> {
  const failedKey = `${target.queuePrefix}:${JOBS_QUEUE}:failed`;
  const failedReader = target.stats[queueNode(target)];
  const failed0 = await failedReader.zcard(failedKey);
  const [web0, worker0] = await Promise.all([billableOf(target.web), billableOf(target.worker)]);
  const nodes0 = await nodeStats(target);
  const cpu0 = [processCpuMs(target.web.pid), processCpuMs(target.worker.pid)];
  const before = target.notifications.count;
  const filled = await target.worker.whilePaused(() => fill(target, THROUGHPUT_SEED * round));
  const web1 = await billableOf(target.web);
  const accepted = (filled.statuses.get('202') ?? 0) + (filled.statuses.get('200') ?? 0);
  const deadline = performance.now() + RUN_TIMEOUT_MS;
  let failed: number;
  for (;;) {
    failed = (await failedReader.zcard(failedKey)) - failed0;
    if (target.notifications.count - before + failed >= accepted || performance.now() > deadline) break;
    await sleep(200);
  }
  const worker1 = await billableOf(target.worker);
  const nodes1 = await nodeStats(target);
  const cpu1 = [processCpuMs(target.web.pid), processCpuMs(target.worker.pid)];
  const completed = target.notifications.count - before;
  const times = target.notifications.times.slice(before);
  const elapsedMs = completed > 1 ? times[times.length - 1] - times[0] : Number.NaN;
  const nodes = nodeDelta(nodes0, nodes1);
  const run: ThroughputRun = {
    accepted,
    completed,
    failed,
    jobsPerSecond: ((completed - 1) / elapsedMs) * 1000,
    postLatencies: filled.latencies,
    postStatuses: filled.statuses,
    webBillable: diff(web1, web0),
    workerBillable: diff(worker1, worker0),
    nodeCommands: nodes.commands,
    nodeCpuMs: nodes.cpuMs,
    webCpuMs: (cpu1[0] ?? Number.NaN) - (cpu0[0] ?? Number.NaN),
    workerCpuMs: (cpu1[1] ?? Number.NaN) - (cpu0[1] ?? Number.NaN),
  };
  progress(
    `throughput ${round}/${REPEATS}, ${target.key}: ${completed}/${JOBS} completed, ${failed} failed, ${run.jobsPerSecond.toFixed(0)} jobs/s; ${((total(run.webBillable) + total(run.workerBillable)) / JOBS).toFixed(2)} billable/report`,
  );
  return run;
}

// ---------------------------------------------------------------- 3. cached GETs

interface CachedCase {
  url: string;
  /** x-cache of HEADER_SAMPLE sequential GETs before the latency loops. */
  xCache: Counts;
  statuses: Counts;
  /** Per node, what COUNTED_GETS sequential GETs ran (INFO commandstats). */
  commands: Counts[];
}

async function sequentialGets(url: string, headers: Record<string, string>, n: number): Promise<{ statuses: Counts; xCache: Counts }> {
  const statuses: Counts = new Map();
  const xCache: Counts = new Map();
  for (let i = 0; i < n; i++) {
    try {
      const response = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
      await response.arrayBuffer();
      count(statuses, String(response.status));
      count(xCache, response.headers.get('x-cache') ?? 'none');
    } catch {
      count(statuses, 'error');
    }
  }
  return { statuses, xCache };
}

/** POSTs the cached report as the first tenant and waits for it; its id and the view's size. */
async function cachedReport(target: Target): Promise<{ id: string; bytes: number }> {
  const before = target.notifications.count;
  const posted = await target.web.request('/reports', { method: 'POST', headers: headersOf(target, 0), body: JSON.stringify(reportRequest(CACHED_SEED, CACHED_LINES)) });
  const id = (posted.body as { id?: unknown }).id;
  if ((posted.status !== 202 && posted.status !== 200) || typeof id !== 'string')
    throw new Error(`${target.key}: POST /reports answered ${posted.status}: ${posted.text.slice(0, 300)}`);
  if ((await target.notifications.waitFor(before + 1, JOB_TIMEOUT_MS)) === undefined && posted.status === 202) throw new Error(`${target.key}: report ${id} not completed`);
  const view = await target.memoryless.request(`/reports/${id}`, { headers: headersOf(target, 0) });
  if (view.status !== 200) throw new Error(`${target.key}: GET /reports/${id} answered ${view.status}: ${view.text.slice(0, 300)}`);
  return { id, bytes: Buffer.byteLength(view.text) };
}

async function cachedCase(target: Target, app: AppProcess, id: string): Promise<CachedCase> {
  const url = `${app.baseUrl}/reports/${id}`;
  const headers = headersOf(target, 0);
  // The first GET of the default web reads Redis and keeps the view in memory; the memory-less web never does.
  await sequentialGets(url, headers, 1);
  const sample = await sequentialGets(url, headers, HEADER_SAMPLE);
  const before = await nodeStats(target);
  const counted = await sequentialGets(url, headers, COUNTED_GETS);
  const after = await nodeStats(target);
  const statuses = new Map(sample.statuses);
  add(statuses, counted.statuses);
  return { url, xCache: sample.xCache, statuses, commands: nodeDelta(before, after).commands };
}

// ---------------------------------------------------------------- 5. the docs recipe

interface RecipeProbe {
  booted: string;
  post: string;
  get: string;
  /** The first error the recipe's web logged, if any, and the Redis errors it logged by kind. */
  firstError?: string;
  webErrors?: Counts;
  worker: string;
  /** Errors the servers answered while the recipe's worker ran, from its start (INFO errorstats, all nodes). */
  errors: Counts;
  elapsedMs: number;
  completed: number;
  workerCpuShare?: number;
}

/** The Redis errors an app logged, by kind (CROSSSLOT, MOVED, …). */
function replyErrors(app: AppProcess): Counts {
  const kinds: Counts = new Map();
  for (const line of app.lines) {
    const match = /ReplyError\]?: ([A-Z]+)/.exec(line);
    if (match) count(kinds, match[1]);
  }
  return kinds;
}

function firstErrorLine(app: AppProcess): string | undefined {
  // eslint-disable-next-line no-control-regex
  const plain = app.lines.map((line) => line.replace(/\u001b\[[0-9;]*m/g, ''));
  const index = plain.findIndex((line) => /Error|ERR|CROSSSLOT|MOVED/.test(line));
  return index < 0 ? undefined : plain[index].replace(/^.*\[ExceptionsHandler\]\s*/, '').slice(0, 200);
}

/** The docs recipe pointed at the target as a user would (REDIS_URL only: it has no cluster setting): does it boot, take a report, process it? */
async function probeRecipe(resources: Resources, target: Target): Promise<RecipeProbe> {
  const env = { REDIS_URL: target.url, JWT_SECRET: target.secret, ...UNBOUNDED_TENANT_WORK };
  let web: AppProcess;
  try {
    web = resources.add(await startDocsRecipe(env, 'web', { listenTimeoutMs: LINE_TIMEOUT_MS }), `docs recipe web (${target.key})`, (a) => a.stop());
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    return { booted: `no: ${reason}`, post: '–', get: '–', worker: 'not started', errors: new Map(), elapsedMs: 0, completed: 0 };
  }
  const headers = headersOf(target, 0);
  const posted = await web.request('/reports', { method: 'POST', headers, body: JSON.stringify(reportRequest(RECIPE_SEED, LINES)) });
  const id = (posted.body as { id?: unknown }).id;
  const got = await web.request(`/reports/${typeof id === 'string' || typeof id === 'number' ? id : 1}`, { headers });
  await sleep(300);
  const probe: RecipeProbe = {
    booted: 'yes',
    post: `${posted.status} ${posted.text.slice(0, 80)}`,
    get: `${got.status} ${got.text.slice(0, 80)}`,
    firstError: firstErrorLine(web),
    webErrors: replyErrors(web),
    worker: 'not started (BENCH_CLUSTER_RECIPE_WORKER_MS=0)',
    errors: new Map(),
    elapsedMs: 0,
    completed: 0,
  };
  if (RECIPE_WORKER_MS === 0) return probe;
  const errors0 = await Promise.all(target.stats.map(async (client) => errorStats(await client.info('errorstats'))));
  const before = target.notifications.count;
  const worker = await startDocsRecipe(env, 'worker', { listenTimeoutMs: LINE_TIMEOUT_MS });
  try {
    const cpu0 = processCpuMs(worker.pid);
    const started = performance.now();
    await sleep(RECIPE_WORKER_MS);
    const cpu1 = processCpuMs(worker.pid);
    const elapsed = performance.now() - started;
    const errors1 = await Promise.all(target.stats.map(async (client) => errorStats(await client.info('errorstats'))));
    errors1.forEach((counts, index) => add(probe.errors, diff(counts, errors0[index])));
    probe.elapsedMs = elapsed;
    probe.completed = target.notifications.count - before;
    probe.workerCpuShare = cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / elapsed;
    probe.worker = `${worker.lines.length} log lines in ${(elapsed / 1000).toFixed(1)} s; first error: ${firstErrorLine(worker) ?? 'none'}`;
  } finally {
    await worker.stop();
  }
  return probe;
}

// ---------------------------------------------------------------- rows

function ratioRow(caseName: string, measure: string, values: Record<TargetKey, number>, format: (value: number) => string, detail: string): Row {
  return {
    case: caseName,
    measure,
    standalone: format(values.standalone),
    cluster: format(values.cluster),
    baseline: 'standalone, same run',
    '× cluster': formatRatio(values.cluster, values.standalone),
    detail,
  };
}

function latencyRows(caseName: string, what: string, samples: Record<TargetKey, number[]>, detail: string): Row[] {
  const stats = { standalone: summarize(samples.standalone), cluster: summarize(samples.cluster) };
  return [
    ratioRow(
      caseName,
      `${what}, p50 ms`,
      { standalone: stats.standalone.p50, cluster: stats.cluster.p50 },
      formatMs,
      `n = ${stats.standalone.n} / ${stats.cluster.n}; ${detail}`,
    ),
    ratioRow(
      caseName,
      `${what}, p99 ms`,
      { standalone: stats.standalone.p99, cluster: stats.cluster.p99 },
      formatMs,
      `max ${formatMs(stats.standalone.max)} / ${formatMs(stats.cluster.max)} ms`,
    ),
  ];
}

function fixed(digits: number): (value: number) => string {
  return (value) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
}

function best(runs: readonly ThroughputRun[]): ThroughputRun {
  return runs.reduce((a, b) => (b.completed > a.completed || (b.completed === a.completed && b.jobsPerSecond > a.jobsPerSecond) ? b : a));
}

function sumCounts(list: readonly ReadonlyMap<string, number>[]): Counts {
  const sum: Counts = new Map();
  for (const counts of list) add(sum, counts);
  return sum;
}

// ---------------------------------------------------------------- the suite

export async function run(): Promise<BenchResult> {
  const loads: number[] = [loadavg()[0]];
  const loadTimer = setInterval(() => loads.push(loadavg()[0]), LOAD_SAMPLE_MS);
  const resources = new Resources();
  const rows: Row[] = [];
  const checks: Check[] = [];
  const notes: string[] = [];
  try {
    progress(
      `starting a standalone redis-server and a 3-master cluster, each with ours: a web, a memory-less web (CACHE_MAX_VALUE_KB=${MEMORYLESS_MAX_VALUE_KB}) and a worker`,
    );
    const [standalone, cluster] = await Promise.all([startTarget(resources, 'standalone'), startTarget(resources, 'cluster')]);
    const targets: Record<TargetKey, Target> = { standalone, cluster };
    const both = <T>(fn: (target: Target) => T): Record<TargetKey, T> => ({ standalone: fn(standalone), cluster: fn(cluster) });

    // ------------------------------------------------ 1. throughput
    progress(`throughput: ${REPEATS} runs of ${JOBS} reports per target, alternating; the worker is stopped while the web takes them`);
    const runs: Record<TargetKey, ThroughputRun[]> = { standalone: [], cluster: [] };
    const lastRunEnded: Record<TargetKey, number> = { standalone: 0, cluster: 0 };
    for (let round = 1; round <= REPEATS; round++) {
      const order = round % 2 === 1 ? TARGETS : [...TARGETS].reverse();
      for (const key of order) {
        // The quota script counts a job it no longer finds for PENDING_ADD_GRACE_MS after admitting it (it may be
        // about to be added): every run starts once the previous run's jobs of that target are past it.
        const wait = lastRunEnded[key] + PENDING_ADD_GRACE_MS + 500 - performance.now();
        if (wait > 0) await sleep(wait);
        runs[key].push(await throughputRun(targets[key], round));
        lastRunEnded[key] = performance.now();
      }
    }
    const bestRun = both((target) => best(runs[target.key]));
    const billable = both((target) => sumCounts(runs[target.key].flatMap((r) => [r.webBillable, r.workerBillable])));
    const webBillable = both((target) => sumCounts(runs[target.key].map((r) => r.webBillable)));
    const workerBillable = both((target) => sumCounts(runs[target.key].map((r) => r.workerBillable)));
    const reportsRun = REPEATS * JOBS;
    const perReportOf = (counts: Record<TargetKey, Counts>) => both((target) => total(counts[target.key]) / reportsRun);
    const executed = both((target) => target.nodes.map((_node, index) => sumCounts(runs[target.key].map((r) => r.nodeCommands[index]))));
    const nodeCpu = both((target) => target.nodes.map((_node, index) => runs[target.key].reduce((sum, r) => sum + r.nodeCpuMs[index], 0)));
    const cpuPerReport = both((target) => (runs[target.key].reduce((sum, r) => sum + r.webCpuMs + r.workerCpuMs, 0) * 1000) / reportsRun);
    const redisCpuPerReport = both((target) => (nodeCpu[target.key].reduce((a, b) => a + b, 0) * 1000) / reportsRun);
    const medianRate = both((target) => median(runs[target.key].map((r) => r.jobsPerSecond)));
    const jobsCase = `throughput: ${JOBS} reports × ${LINES} lines over ${TENANTS} tenants, ${REPEATS} runs per target`;
    rows.push(
      ratioRow(
        jobsCase,
        `jobs/s through the worker (better of ${REPEATS})`,
        both((target) => bestRun[target.key].jobsPerSecond),
        fixed(0),
        `runs: standalone ${runs.standalone.map((r) => r.jobsPerSecond.toFixed(0)).join(', ')}; cluster ${runs.cluster.map((r) => r.jobsPerSecond.toFixed(0)).join(', ')}`,
      ),
      ratioRow(jobsCase, `jobs/s through the worker (median of ${REPEATS})`, medianRate, fixed(0), 'the same runs'),
      ...latencyRows(
        jobsCase,
        `POST /reports, ${FILL_CONCURRENCY} in flight (worker stopped)`,
        both((target) => runs[target.key].flatMap((r) => r.postLatencies)),
        `answers: standalone ${formatCounts(sumCounts(runs.standalone.map((r) => r.postStatuses)))}; cluster ${formatCounts(sumCounts(runs.cluster.map((r) => r.postStatuses)))}`,
      ),
      ratioRow(
        jobsCase,
        "billable Redis commands/report (the apps' /metrics: web POST + worker job)",
        perReportOf(billable),
        fixed(2),
        `standalone: ${perReport(billable.standalone, reportsRun)}; cluster: ${perReport(billable.cluster, reportsRun)}`,
      ),
      ratioRow(jobsCase, 'billable commands/report of the web (POST)', perReportOf(webBillable), fixed(2), `cluster: ${perReport(webBillable.cluster, reportsRun)}`),
      ratioRow(jobsCase, 'billable commands/report of the worker (job)', perReportOf(workerBillable), fixed(2), `cluster: ${perReport(workerBillable.cluster, reportsRun)}`),
      ratioRow(
        jobsCase,
        'commands executed/report, all masters (INFO commandstats, calls inside scripts included)',
        both((target) => total(sumCounts(executed[target.key])) / reportsRun),
        fixed(1),
        `standalone: ${perReport(sumCounts(executed.standalone), reportsRun)}; cluster: ${perReport(sumCounts(executed.cluster), reportsRun)}`,
      ),
      ratioRow(
        jobsCase,
        'CPU µs/report: web + worker',
        cpuPerReport,
        fixed(0),
        `web ${((runs.standalone.reduce((s, r) => s + r.webCpuMs, 0) * 1000) / reportsRun).toFixed(0)} / ${((runs.cluster.reduce((s, r) => s + r.webCpuMs, 0) * 1000) / reportsRun).toFixed(0)} µs, worker ${((runs.standalone.reduce((s, r) => s + r.workerCpuMs, 0) * 1000) / reportsRun).toFixed(0)} / ${((runs.cluster.reduce((s, r) => s + r.workerCpuMs, 0) * 1000) / reportsRun).toFixed(0)} µs (standalone / cluster)`,
      ),
      ratioRow(
        jobsCase,
        'CPU µs/report: redis-server, all masters',
        redisCpuPerReport,
        fixed(0),
        `cluster per master: ${nodeCpu.cluster.map((ms) => ((ms * 1000) / reportsRun).toFixed(0)).join(' + ')} µs`,
      ),
    );
    const allRuns = [...runs.standalone, ...runs.cluster];
    const commandRatio = perReportOf(billable).cluster / perReportOf(billable).standalone;
    checks.push(
      {
        label: `throughput: every run on both targets took all ${JOBS} reports (202) and completed them, none failed (completed: standalone ${runs.standalone.map((r) => r.completed).join(', ')}; cluster ${runs.cluster.map((r) => r.completed).join(', ')})`,
        ok: allRuns.every((r) => r.accepted === JOBS && r.completed === JOBS && r.failed === 0),
      },
      {
        label: `commands: billable commands per report on the cluster ≤ ${COMMANDS_PER_REPORT_LIMIT} × standalone, the same work (${Number.isFinite(commandRatio) ? commandRatio.toFixed(2) : '–'}×: ${perReportOf(billable).cluster.toFixed(2)} vs ${perReportOf(billable).standalone.toFixed(2)})`,
        ok: commandRatio <= COMMANDS_PER_REPORT_LIMIT,
      },
    );

    // ------------------------------------------------ 2. pickup
    progress(`pickup: ${PICKUPS} reports one at a time per target (${PICKUP_PAUSE_MS} ms apart), in ${ROUNDS} alternating slices`);
    const pickups: Record<TargetKey, PickupResult[]> = { standalone: [], cluster: [] };
    const slice = Math.ceil(PICKUPS / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (const key of round % 2 === 0 ? TARGETS : [...TARGETS].reverse()) {
        const target = targets[key];
        pickups[key].push(
          await pickupThroughHttp(target, {
            reports: slice,
            lines: LINES,
            firstSeed: PICKUP_SEED + round * slice,
            pauseMs: PICKUP_PAUSE_MS,
            timeoutMs: JOB_TIMEOUT_MS,
            headers: (index) => headersOf(target, round * slice + index),
          }),
        );
      }
    }
    const pickup = both((target) => ({
      latencies: pickups[target.key].flatMap((p) => p.latencies),
      posts: pickups[target.key].flatMap((p) => p.postLatencies),
      correct: pickups[target.key].reduce((sum, p) => sum + p.correct, 0),
      problems: pickups[target.key].flatMap((p) => p.problems),
    }));
    const pickupCase = `pickup: ${slice * ROUNDS} reports one at a time, worker waiting`;
    rows.push(
      ...latencyRows(
        pickupCase,
        'POST /reports, sequential',
        both((target) => pickup[target.key].posts),
        'validation, the cache lookup, the enqueue, reading the job back',
      ),
      ...latencyRows(
        pickupCase,
        'sent → report:completed',
        both((target) => pickup[target.key].latencies),
        'the POST, the pickup, the job and the notification',
      ),
    );
    checks.push({
      label: `pickup: every report completed and GET /reports/:id answered its right result (standalone ${pickup.standalone.correct}/${slice * ROUNDS}, cluster ${pickup.cluster.correct}/${slice * ROUNDS})`,
      ok: pickup.standalone.correct === slice * ROUNDS && pickup.cluster.correct === slice * ROUNDS,
    });
    for (const key of TARGETS) notes.push(...pickup[key].problems.slice(0, 5).map((problem) => `pickup, ${key}: ${problem}`));

    // ------------------------------------------------ 3. cached GETs
    progress(
      `cached GET: one report of ${CACHED_LINES} lines per target; a memory hit (web) and a Redis-tier hit (memory-less web), ${GETS} sequential GETs each, alternating`,
    );
    const reports = { standalone: await cachedReport(standalone), cluster: await cachedReport(cluster) };
    const memory = { standalone: await cachedCase(standalone, standalone.web, reports.standalone.id), cluster: await cachedCase(cluster, cluster.web, reports.cluster.id) };
    const redisTier = {
      standalone: await cachedCase(standalone, standalone.memoryless, reports.standalone.id),
      cluster: await cachedCase(cluster, cluster.memoryless, reports.cluster.id),
    };
    const load = (url: string, headers: Record<string, string>) => ({ url, requests: GETS, timeLimitMs: 120_000, concurrency: 1, init: { headers } });
    const loops: Array<[string, Record<TargetKey, CachedCase>, [LoadResult, LoadResult]]> = [];
    for (const [label, cases] of [
      ['memory hit (web)', memory],
      [`Redis-tier hit (memory-less web, CACHE_MAX_VALUE_KB=${MEMORYLESS_MAX_VALUE_KB})`, redisTier],
    ] as const) {
      loops.push([label, cases, await interleavedLoad(load(cases.standalone.url, headersOf(standalone, 0)), load(cases.cluster.url, headersOf(cluster, 0)), GET_ROUNDS)]);
    }
    const getCase = `cached GET /reports/:id, ${GETS} sequential per target`;
    const firstTenantNode = tenantNode(cluster, tenants[0]);
    for (const [label, cases, [a, b]] of loops) {
      const where = cases.cluster.commands.map((counts, index) => `master ${index + 1} ${total(counts)}`).join(', ');
      rows.push(
        ...latencyRows(getCase, `${label}`, { standalone: a.samples, cluster: b.samples }, `answers: ${formatCounts(a.statuses)} / ${formatCounts(b.statuses)}`),
        ratioRow(
          getCase,
          `${label}: Redis commands/GET (commandstats, ${COUNTED_GETS} sequential)`,
          both((target) => total(sumCounts(cases[target.key].commands)) / COUNTED_GETS),
          fixed(2),
          `cluster by master: ${where} (the tenant's is master ${firstTenantNode + 1}); x-cache: ${formatCounts(cases.standalone.xCache)} / ${formatCounts(cases.cluster.xCache)}`,
        ),
      );
    }
    const only = (counts: ReadonlyMap<string, number>, key: string) => counts.size === 1 && counts.has(key);
    const allHits = TARGETS.every((key) => only(memory[key].xCache, 'hit') && only(redisTier[key].xCache, 'hit'));
    const all200 =
      TARGETS.every((key) => only(memory[key].statuses, '200') && only(redisTier[key].statuses, '200')) &&
      loops.every(([, , pair]) => pair.every((r) => only(r.statuses, '200')));
    const redisGets = both((target) => sumCounts(redisTier[target.key].commands).get('GET') ?? 0);
    checks.push(
      {
        label: `cached GET: the report view (${reports.standalone.bytes} B) is over the memory-less web's CACHE_MAX_VALUE_KB=${MEMORYLESS_MAX_VALUE_KB}`,
        ok: reports.standalone.bytes > 1024 && reports.cluster.bytes > 1024,
      },
      { label: 'cached GET: every GET answered 200, the sampled ones x-cache: hit, on both targets', ok: all200 && allHits },
      {
        label: `cached GET: memory hits read nothing from Redis on any node (GET + HGETALL: standalone ${reportReads(sumCounts(memory.standalone.commands))}, cluster ${reportReads(sumCounts(memory.cluster.commands))}); Redis-tier hits one GET each (standalone ${redisGets.standalone}, cluster ${redisGets.cluster} for ${COUNTED_GETS}), on the cluster all on the tenant's master`,
        ok:
          TARGETS.every((key) => reportReads(sumCounts(memory[key].commands)) === 0) &&
          redisGets.standalone === COUNTED_GETS &&
          redisGets.cluster === COUNTED_GETS &&
          (redisTier.cluster.commands[firstTenantNode].get('GET') ?? 0) === COUNTED_GETS,
      },
    );

    // ------------------------------------------------ 4. where it lands
    progress('layout: commands, CPU and keys per master');
    const keysByKind = await Promise.all(cluster.stats.map((client) => keyKinds(client)));
    const standaloneKeys = await keyKinds(standalone.stats[0]);
    const queueAt = queueNode(cluster);
    const tenantsAt = cluster.nodes.map((_node, index) => tenants.filter((tenant) => tenantNode(cluster, tenant) === index).length);
    const standaloneExecuted = total(executed.standalone[0]);
    for (const [index] of cluster.nodes.entries()) {
      const here = total(executed.cluster[index]);
      const keys = keysByKind[index];
      const role = [index === queueAt ? "the queue's slot ({pharmacare})" : '', `${tenantsAt[index]} of ${TENANTS} tenants' cache`].filter(Boolean).join(', ');
      rows.push({
        case: "where the throughput runs' commands land",
        measure: `master ${index + 1} (slots ${cluster.slotRanges[index]}): ${role}`,
        standalone: (standaloneExecuted / reportsRun).toFixed(1),
        cluster: (here / reportsRun).toFixed(1),
        baseline: 'standalone server, all of it',
        '× cluster': formatRatio(here, standaloneExecuted),
        detail: `commands executed/report: ${perReport(executed.cluster[index], reportsRun, 6)}; redis CPU ${((nodeCpu.cluster[index] * 1000) / reportsRun).toFixed(0)} µs/report; keys now: ${formatCounts(keys)}`,
      });
    }
    const queueKeyNodes = keysByKind.flatMap((kinds, index) => (kindsMatching(kinds, QUEUE_KINDS) > 0 ? [index] : []));
    const cacheKeyNodes = keysByKind.flatMap((kinds, index) => (kindsMatching(kinds, CACHE_KINDS) > 0 ? [index] : []));
    const expectedCacheNodes = [...new Set(tenants.map((tenant) => tenantNode(cluster, tenant)))].sort();
    checks.push({
      label: `layout: every queue key (jobs, quotas) is on master ${queueAt + 1}, the {pharmacare} slot's (queue keys on master(s) ${queueKeyNodes.map((i) => i + 1).join(', ')}); cache entries and tag indexes are on the masters their tenants' tags name (on ${cacheKeyNodes.map((i) => i + 1).join(', ')}, expected ${expectedCacheNodes.map((i) => i + 1).join(', ')})`,
      ok: queueKeyNodes.length === 1 && queueKeyNodes[0] === queueAt && JSON.stringify(cacheKeyNodes) === JSON.stringify(expectedCacheNodes),
    });
    notes.push(
      `Keys at the end, standalone: ${formatCounts(standaloneKeys)}; cluster masters: ${keysByKind.map((kinds, index) => `${index + 1}: ${formatCounts(kinds)}`).join('; ')}.`,
    );

    // ------------------------------------------------ 5. the docs recipe
    progress(`docs recipe: pointed at each target with REDIS_URL (its web, then its worker for ${RECIPE_WORKER_MS} ms)`);
    const recipe = { standalone: await probeRecipe(resources, standalone), cluster: await probeRecipe(resources, cluster) };
    for (const key of TARGETS) {
      const probe = recipe[key];
      rows.push({
        case: 'the NestJS docs recipe (bench/docs-recipe), REDIS_URL only',
        measure: `${key}: boots, POST /reports, GET /reports/:id`,
        standalone: key === 'standalone' ? probe.post.split(' ')[0] : '',
        cluster: key === 'cluster' ? probe.post.split(' ')[0] : '',
        baseline: '',
        '× cluster': '',
        detail: `boots: ${probe.booted}; POST ${probe.post}; GET ${probe.get}; first error logged: ${probe.firstError ?? 'none'}; Redis errors logged: ${probe.webErrors && probe.webErrors.size > 0 ? formatCounts(probe.webErrors) : 'none'}`,
      });
      rows.push({
        case: 'the NestJS docs recipe (bench/docs-recipe), REDIS_URL only',
        measure: `${key}: its worker for ${(RECIPE_WORKER_MS / 1000).toFixed(1)} s, reports completed`,
        standalone: key === 'standalone' ? probe.completed : '',
        cluster: key === 'cluster' ? probe.completed : '',
        baseline: '',
        '× cluster': '',
        detail: `errors Redis answered from its start: ${probe.errors.size > 0 ? formatCounts(probe.errors) : 'none'}${probe.errors.has('CROSSSLOT') ? ` (CROSSSLOT ${Math.round(((probe.errors.get('CROSSSLOT') ?? 0) / probe.elapsedMs) * 1000)}/s)` : ''}; worker CPU ${probe.workerCpuShare === undefined ? '–' : `${(probe.workerCpuShare * 100).toFixed(0)}% of a core`}; ${probe.worker}`,
      });
    }

    // ------------------------------------------------ notes
    const endLoad = loadavg()[0];
    const spread = (key: TargetKey) => `${Math.min(...runs[key].map((r) => r.jobsPerSecond)).toFixed(0)}–${Math.max(...runs[key].map((r) => r.jobsPerSecond)).toFixed(0)}`;
    loads.push(endLoad);
    notes.unshift(
      `Load: 1-minute load average ${loads[0].toFixed(2)} at the start, ${(loads.reduce((a, b) => a + b, 0) / loads.length).toFixed(2)} on average (every ${LOAD_SAMPLE_MS / 1000} s), ${Math.max(...loads).toFixed(2)} at most, ${endLoad.toFixed(2)} at the end, on 2 cores (the suite's own three servers and six app processes make about 2 of it; more means something else ran): absolute numbers are noisy, only the × column (cluster against standalone in the same run, alternating) is meant to be read.`,
      `Why the cluster is not expected to be faster here: its three masters, the six app processes and the bench share the same 2 cores over loopback, so a cluster only adds work (here per report: web + worker CPU ${formatRatio(cpuPerReport.cluster, cpuPerReport.standalone)}, redis-server CPU ${formatRatio(redisCpuPerReport.cluster, redisCpuPerReport.standalone)}: slot routing in the ioredis Cluster client, three servers, CLUSTER SLOTS refreshes) and spreads no load over more machines. jobs/s and latency are reported, not targets: the runs of one target spread over ${spread('standalone')} (standalone) and ${spread('cluster')} (cluster) jobs/s, medians ${medianRate.standalone.toFixed(0)} and ${medianRate.cluster.toFixed(0)} (${formatRatio(medianRate.cluster, medianRate.standalone)}); with runs this far apart under the load above, one run's jobs/s × is no figure to plan a cluster with. What must hold is the same work (commands per report) and the layout (the queue on one master, cache entries spread by tenant).`,
      `Setup: one standalone redis-server and one Redis Cluster of 3 masters without replicas (test/support/redis-cluster.ts: redis-cli --cluster create), each with our built app as three processes: APP_ROLE=web, a second APP_ROLE=web with CACHE_MAX_VALUE_KB=${MEMORYLESS_MAX_VALUE_KB} (its memory tier never keeps the report view, so every hit reads Redis) and APP_ROLE=worker (default QUEUE_CONCURRENCY); on the cluster REDIS_CLUSTER=true and REDIS_URL names the first node. Both started at once and left running for the whole suite; nothing else uses their servers.`,
      `Throughput: per run the worker is stopped (SIGSTOP) while the web takes ${JOBS} reports of ${LINES} lines (${FILL_CONCURRENCY} POSTs in flight, spread round-robin over ${TENANTS} tenants, ${Math.ceil(JOBS / TENANTS)} each per run, each report new), then continued (SIGCONT); completions are seen as report:completed passing through Redis (a pattern subscription on the standalone; on the cluster, subscriptions to the authors' room channels of the sharded adapter). jobs/s = (completed − 1) / (last notification − first). The worker process stays up between runs (its JIT is warm after the first), unlike the queue suite's fresh worker per run. Runs alternate standalone and cluster (order reversed every round); the better of ${REPEATS} is shown.`,
      `Commands: billable commands per report are the apps' own counts (GET /metrics, pharmacare_redis_commands_total{billable="true"}, every role; on the cluster counted once per command however many redirections it took, src/redis/command-counter.ts): the web's over the fill plus the worker's over the processing, divided by the reports; unbilled: ${[...UNBILLED].join(', ')}. Commands executed per master are INFO commandstats deltas on each node (calls inside Lua scripts included, so more than billed), without ${BACKGROUND_LABEL} (the bench's own reads, ioredis Cluster's topology refresh, connection setup). CPU is user + system time from /proc/PID/stat.`,
      `The tenant quota's script (ADMIT in src/queue/tenant-work-quota.ts, one EVALSHA per POST) reads every job the tenant has admitted (EXISTS, HEXISTS, HGET each): most of the commands executed inside scripts, growing with the tenant's jobs in flight (here up to ${Math.ceil(JOBS / TENANTS)}, as the worker is stopped while they arrive; the default QUEUE_TENANT_MAX_JOBS is 20). Jobs it no longer finds still count for PENDING_ADD_GRACE_MS (${PENDING_ADD_GRACE_MS / 1000} s) after their admission, so each run of a target starts at least that long after its previous run ended; otherwise the target run twice in a row reads the previous run's jobs too.`,
      "The worker's one notification per report (report:completed): on the standalone a PUBLISH (@socket.io/redis-emitter); on the cluster an SPUBLISH of the sharded Socket.io adapter to the author's room channel, which lives on one shard (a classic PUBLISH would be copied by the cluster bus to every node). The bench listens on those room channels (NotificationListener.startSharded).",
      `Pickup: ${slice * ROUNDS} reports one at a time through POST /reports (${PICKUP_PAUSE_MS} ms apart, so the worker is back in its blocking wait), alternating between the targets in ${ROUNDS} slices; latency from sending to the report:completed notification, then GET /reports/:id must answer the right result. Cached GET: a report of ${CACHED_LINES} lines (its view ${reports.standalone.bytes} B) of the first tenant, GET by that tenant over one keep-alive connection, ${GETS} per case and target in ${GET_ROUNDS} alternating slices (support.ts interleavedLoad); the memory hit is the web that already served it, the Redis-tier hit the memory-less web.`,
      `The docs recipe (bench/docs-recipe, wired as the NestJS docs show) has no cluster setting: BullModule.forRoot({ connection: { url } }) and @keyv/redis and node-redis each open one plain connection to the node REDIS_URL names, and BullMQ's prefix "bull" has no hash tag. It was pointed at each target after the measurements above (its web, one POST and one GET, then its worker alone for ${(RECIPE_WORKER_MS / 1000).toFixed(1)} s). What Redis answered is in its rows: on the cluster the POST's addJob script spans keys of several slots, which Redis refuses with CROSSSLOT before anything else, and the worker's main loop retries its refused scripts without delay (FIELD-NOTES). The ERR answers are as many on the standalone, where it works.`,
    );
    return { rows, checks, notes };
  } finally {
    clearInterval(loadTimer);
    await resources.close();
  }
}

/**
 * A node's keys by kind: the part after the prefix (pharmacare:cache:…, pharmacare:cache-tags:…, {pharmacare}:jobs:…,
 * {pharmacare}:quota:…, {pharmacare:presence}…), "other" for anything else.
 */
async function keyKinds(client: Redis): Promise<Counts> {
  const kinds: Counts = new Map();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const match = /^(?:\{pharmacare\}|pharmacare):([^:{}]+)/.exec(key);
      count(kinds, key.includes('presence') ? 'presence' : (match?.[1] ?? 'other'));
    }
  } while (cursor !== '0');
  return kinds;
}

function kindsMatching(kinds: ReadonlyMap<string, number>, pattern: RegExp): number {
  let n = 0;
  for (const [kind, keys] of kinds) if (pattern.test(kind)) n += keys;
  return n;
}
