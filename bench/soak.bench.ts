import { setTimeout as delay } from 'node:timers/promises';
import { JOBS_QUEUE, KEEP_COMPLETED, KEEP_FAILED } from '../src/queue/queue.constants';
import { Cluster } from '../test/support/cluster';
import { JobLedger } from '../test/support/job-ledger';
import type { RequestRecord } from '../test/support/load';
import { RedisServer } from '../test/support/redis-server';
import { JWT_SECRET } from '../test/support/reports-client';
import { Workload } from '../test/support/workload';
import { BenchResult, Check, formatMs, progress, Resources, Row, summarize } from './support';

export const name = 'soak';
export const title = 'Soak: 3 instances under steady HTTP load, a job stream and 500 sockets; memory, Redis keys and connections over time';

// ---------------------------------------------------------------- knobs

/** SOAK_SECONDS (default 600): the whole run, warm-up included. */
const DURATION_MS = Number(process.env.SOAK_SECONDS ?? 600) * 1000;
/** Growth is measured after this: past the retention windows below, so caches and retained jobs are at their steady size. */
const WARMUP_MS = Math.min(120_000, DURATION_MS / 4);
const SAMPLE_EVERY_MS = 10_000;
/** Rows in the table: about this many, evenly spread. */
const TABLE_ROWS = 12;
const INSTANCES = 3;
const TENANTS = 10;
const USERS_PER_TENANT = 50;
/** Per-socket churn every sample: users leaving for good and new ones joining, as in real life. */
const CHURN_PER_SAMPLE = 5;
const DEADLINE_MS = 2_000;
/**
 * Retention windows shortened from their defaults (24 h report TTL, 300 s memory tier) so the run reaches its
 * steady state within the warm-up; the key bound below is computed from them.
 */
const REPORT_TTL_SECONDS = 60;
const CACHE_MEMORY_TTL_SECONDS = 60;
const PRESENCE_TTL_SECONDS = 15;
const JOB_INTERVAL_MS = 150;
const WARM_REPORTS = 10;
/** BullMQ's own keys of one queue (id, meta, events, wait, active, completed, failed, stalled-check, marker, ...), rounded up. */
const BULLMQ_FIXED_KEYS = 20;
/** Jobs between accepted and completed at any moment, at most (the stream posts one at a time; workers keep up). */
const IN_FLIGHT_JOBS = 100;
const MEMORY_GROWTH_LIMIT = 0.1;
const PREFIX = 'pharmacare';

interface Sample {
  atMs: number;
  rssMiB: number[];
  dbsize: number;
  keys: Map<string, number>;
  clients: number;
  /** Connection names (CLIENT LIST), so a new connection can be told apart. */
  clientNames: string[];
  tagMembers: number;
}

/** Key families by pattern: what the retention bounds are about. */
const FAMILIES: Array<[string, RegExp]> = [
  ['job hashes', new RegExp(`^${PREFIX}:${JOBS_QUEUE}:[^:]+$`)],
  ['job locks', new RegExp(`^${PREFIX}:${JOBS_QUEUE}:[^:]+:lock$`)],
  ['report cache', new RegExp(`^${PREFIX}:cache:v1:t:[^:]+:report:`)],
  ['cache tags', new RegExp(`^${PREFIX}:cache-tags:`)],
  ['cache locks', new RegExp(`^${PREFIX}:cache-lock:`)],
  ['presence', new RegExp(`^${PREFIX}:presence:`)],
  ['tenant quotas', new RegExp(`^${PREFIX}:quota:`)],
];

/** Redis keys by family (SCAN; the queue's fixed keys land in "job hashes" and are counted there). */
async function keyFamilies(redis: RedisServer): Promise<{ keys: Map<string, number>; tagMembers: number }> {
  const all = (await redis.command('--scan')).split('\n').filter((key) => key !== '');
  const keys = new Map<string, number>(FAMILIES.map(([family]) => [family, 0]));
  keys.set('other', 0);
  let tagMembers = 0;
  for (const key of all) {
    const family = FAMILIES.find(([, pattern]) => pattern.test(key))?.[0] ?? 'other';
    keys.set(family, (keys.get(family) ?? 0) + 1);
    if (family === 'cache tags') tagMembers += Number(await redis.command('ZCARD', key));
  }
  return { keys, tagMembers };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Names in `later` beyond those in `earlier` (a multiset difference), the pid stripped. */
function newNames(earlier: readonly string[], later: readonly string[]): string[] {
  const left = [...earlier];
  const added: string[] = [];
  for (const name of later) {
    const index = left.indexOf(name);
    if (index >= 0) left.splice(index, 1);
    else added.push(name.replace(/:\d+$/, '') || '(unnamed)');
  }
  return added;
}

function mib(kib: number): number {
  return Math.round((kib / 1024) * 10) / 10;
}

export async function run(): Promise<BenchResult> {
  const resources = new Resources();
  try {
    const redis = resources.add(await RedisServer.start(), 'redis-server', (server) => server.stop());
    const cluster = resources.add(
      await Cluster.start(INSTANCES, {
        REDIS_URL: redis.url(),
        JWT_SECRET,
        APP_ROLE: 'all',
        REPORT_TTL_SECONDS: String(REPORT_TTL_SECONDS),
        CACHE_MEMORY_TTL_SECONDS: String(CACHE_MEMORY_TTL_SECONDS),
        PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS),
      }),
      'app processes',
      (started) => started.stop(),
    );
    const ledger = resources.add(new JobLedger(redis.url(), `${PREFIX}:${JOBS_QUEUE}:events`), 'job ledger', (started) => started.stop());
    progress(`3 instances up; connecting ${TENANTS * USERS_PER_TENANT} sockets`);
    const workload = resources.add(
      await Workload.start(cluster, {
        tenants: TENANTS,
        usersPerTenant: USERS_PER_TENANT,
        authors: 20,
        warmReports: WARM_REPORTS,
        httpLoops: 4,
        httpPauseMs: 20,
        jobIntervalMs: JOB_INTERVAL_MS,
        jobLines: 20,
        deadlineMs: DEADLINE_MS,
        tokenLifetime: `${Math.ceil(DURATION_MS / 60_000) + 30}m`,
      }),
      'workload',
      (started) => started.stop(),
    );
    progress(`load running for ${DURATION_MS / 1000} s (warm-up ${WARMUP_MS / 1000} s), a sample every ${SAMPLE_EVERY_MS / 1000} s`);

    const started = Date.now();
    const samples: Sample[] = [];
    while (Date.now() - started < DURATION_MS) {
      await delay(SAMPLE_EVERY_MS - ((Date.now() - started) % SAMPLE_EVERY_MS));
      await workload.churn(CHURN_PER_SAMPLE);
      // Connections first and alone: the redis-cli calls of the other probes are connections too.
      const clients = await redis.clientList();
      const [memory, dbsize, families] = await Promise.all([cluster.memory(), redis.command('DBSIZE'), keyFamilies(redis)]);
      const sample: Sample = {
        atMs: Date.now() - started,
        rssMiB: memory.map((m) => mib(m.rssKiB)),
        dbsize: Number(dbsize),
        keys: families.keys,
        clients: clients.length,
        clientNames: clients,
        tagMembers: families.tagMembers,
      };
      samples.push(sample);
      progress(
        `${Math.round(sample.atMs / 1000)} s: RSS ${sample.rssMiB.join(' / ')} MiB, ${sample.dbsize} keys, ${sample.clients} clients, ${workload.jobs.accepted.size} jobs accepted`,
      );
    }

    await workload.stopTraffic();
    const accepted = [...workload.jobs.accepted.keys()];
    const drainStarted = Date.now();
    while (accepted.some((id) => !ledger.completed.has(id)) && Date.now() - drainStarted < 60_000) await delay(500);
    await ledger.catchUp();
    const lost = accepted.filter((id) => !ledger.completed.has(id)).length;
    const twice = [...ledger.completed.values()].filter((n) => n > 1).length;

    return report(samples, workload.recorder.records, { accepted: accepted.length, lost, twice, refused: workload.jobs.refused });
  } finally {
    await resources.close();
  }
}

function report(samples: readonly Sample[], records: readonly RequestRecord[], jobs: { accepted: number; lost: number; twice: number; refused: number }): BenchResult {
  const steady = samples.filter((sample) => sample.atMs >= WARMUP_MS);
  const window = Math.max(1, Math.floor(steady.length / 4));
  const early = steady.slice(0, window);
  const late = steady.slice(-window);
  const growth = Array.from({ length: INSTANCES }, (_unused, i) => median(late.map((s) => s.rssMiB[i])) / median(early.map((s) => s.rssMiB[i])) - 1);

  const reportCacheBound = Math.ceil((REPORT_TTL_SECONDS * 1000) / JOB_INTERVAL_MS) + WARM_REPORTS;
  const presenceBound = 1 + 2 * INSTANCES + (2 + INSTANCES) * TENANTS;
  // A job count and a payload total per tenant with work in flight.
  const quotaBound = 2 * TENANTS;
  const keyBound = BULLMQ_FIXED_KEYS + KEEP_COMPLETED.count + KEEP_FAILED.count + IN_FLIGHT_JOBS * 2 + reportCacheBound + TENANTS + presenceBound + quotaBound;
  const maxKeys = Math.max(...samples.map((s) => s.dbsize));
  // A key of no known family is one no bound accounts for.
  const maxOther = Math.max(...samples.map((s) => s.keys.get('other') ?? 0));
  const maxTagMembers = Math.max(...samples.map((s) => s.tagMembers));
  const clientsAtWarmup = steady[0]?.clients ?? Number.NaN;
  const maxClients = Math.max(...steady.map((s) => s.clients));
  const grownBy = newNames(steady[0]?.clientNames ?? [], steady.find((s) => s.clients === maxClients)?.clientNames ?? []);

  const every = Math.max(1, Math.round(samples.length / TABLE_ROWS));
  const rows: Row[] = samples
    .filter((_sample, i) => i % every === 0 || i === samples.length - 1)
    .map((sample) => {
      const row: Row = { 't (s)': Math.round(sample.atMs / 1000) };
      sample.rssMiB.forEach((rss, i) => (row[`app${i + 1} RSS MiB`] = rss));
      row['DBSIZE'] = sample.dbsize;
      for (const [family, n] of sample.keys) row[family] = n;
      row['tag set members'] = sample.tagMembers;
      row['Redis clients'] = sample.clients;
      return row;
    });

  const latencies = records.map((record) => record.ms);
  const latency = summarize(latencies);
  const unanswered = records.filter((record) => typeof record.outcome !== 'number').length;
  const serverErrors = records.filter((record) => typeof record.outcome === 'number' && record.outcome >= 500).length;

  const checks: Check[] = [
    ...growth.map((g, i) => ({
      label: `app${i + 1} RSS after warm-up: median of the last quarter ${(g * 100).toFixed(1)}% over the first quarter (limit ${MEMORY_GROWTH_LIMIT * 100}%)`,
      ok: g < MEMORY_GROWTH_LIMIT,
    })),
    { label: `Redis keys at most ${maxKeys}, within the retention bound ${keyBound} (see notes)`, ok: maxKeys <= keyBound },
    { label: `keys of no known family: at most ${maxOther}`, ok: maxOther === 0 },
    { label: `cache tag indexes: at most ${maxTagMembers} keys, within the ${reportCacheBound} cached reports the retention allows`, ok: maxTagMembers <= reportCacheBound },
    {
      label: `Redis connections after warm-up: ${clientsAtWarmup} at first, at most ${maxClients} (no growth)${grownBy.length > 0 ? `; new: ${grownBy.join(', ')}` : ''}`,
      ok: maxClients <= clientsAtWarmup,
    },
    { label: `${records.length} requests: ${unanswered} unanswered within ${DEADLINE_MS} ms, ${serverErrors} 5xx`, ok: unanswered === 0 && serverErrors === 0 },
    {
      label: `jobs: ${jobs.accepted} accepted, ${jobs.lost} lost, ${jobs.twice} completed twice (${jobs.refused} refused with 503)`,
      ok: jobs.lost === 0 && jobs.twice === 0 && jobs.refused === 0,
    },
  ];
  const notes = [
    `Process layout: ${INSTANCES} × APP_ROLE=all on one redis-server (in memory), ${TENANTS * USERS_PER_TENANT} Socket.io clients (${CHURN_PER_SAMPLE} leave and ${CHURN_PER_SAMPLE} new ones join every ${SAMPLE_EVERY_MS / 1000} s), 4 HTTP loops (20 ms pause) over cached and uncached routes, one report posted every ${JOB_INTERVAL_MS} ms.`,
    `Settings: REPORT_TTL_SECONDS=${REPORT_TTL_SECONDS}, CACHE_MEMORY_TTL_SECONDS=${CACHE_MEMORY_TTL_SECONDS}, PRESENCE_TTL_SECONDS=${PRESENCE_TTL_SECONDS} (retention reached within the ${WARMUP_MS / 1000} s warm-up); duration ${DURATION_MS / 1000} s (SOAK_SECONDS).`,
    `HTTP latency: p50 ${formatMs(latency.p50)} ms, p99 ${formatMs(latency.p99)} ms, max ${formatMs(latency.max)} ms over ${latency.n} requests.`,
    `Key bound = ${BULLMQ_FIXED_KEYS} (queue's own keys) + ${KEEP_COMPLETED.count} completed + ${KEEP_FAILED.count} failed jobs kept + ${IN_FLIGHT_JOBS * 2} for jobs in flight and their locks + ${reportCacheBound} cached reports (one report per ${JOB_INTERVAL_MS} ms × REPORT_TTL ${REPORT_TTL_SECONDS} s + ${WARM_REPORTS} warm) + ${TENANTS} tag sets + ${presenceBound} presence keys (the live set, a lease and a tenants set per instance, holders, online and a held set per instance per tenant) + ${quotaBound} tenant quota keys (jobs and payload bytes per tenant). Reports are removed at completion (their results live in the report cache), so the completed-jobs term bounds other handlers' policies.`,
    'Memory is VmRSS from /proc/<pid>/status: what the operating system holds for the process, heap and buffers together.',
  ];
  return { rows, checks, notes };
}
