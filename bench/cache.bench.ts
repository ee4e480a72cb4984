import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { AppProcess } from '../test/support/app-process';
import { RedisServer } from '../test/support/redis-server';
import { JWT_SECRET, postReport, settledReport, tokenFor, type Sale } from '../test/support/reports-client';
import {
  BenchResult,
  Check,
  commandStats,
  count,
  Counts,
  formatCounts,
  total,
  formatMs,
  formatRatio,
  httpLoad,
  LoadOptions,
  LoadResult,
  progress,
  Resources,
  Row,
  summarize,
} from './support';

export const name = 'cache';
export const title = 'Cached GET /reports/:id: throughput against a constant route with the same guard and body, Redis commands per memory hit, Redis hit and miss, stampede';

// ---------------------------------------------------------------- knobs

/** Requests in flight at once in the throughput loops, each on its own keep-alive connection. */
const CONCURRENCY = 16;
/** Throughput rounds (a multiple of the 5 routes); each runs every route once, the order rotated, so each route runs in each position equally often. */
const ROUNDS = 10;
/** Wall time of one route's slice in one round (and its request cap, whichever comes first). */
const SLICE_MS = 1_500;
const SLICE_MAX_REQUESTS = 50_000;
const WARMUP_MS = 1_000;
/** Requests whose x-cache header is checked before and after the throughput loops. */
const HEADER_SAMPLE = 20;
/** Sequential GETs per commandstats measurement (and distinct reports for the Redis-hit case). */
const SEQUENTIAL = 200;
const STAMPEDE = 1_000;
/** Sale lines per report, every one its own SKU: the completed view is then well over 1 KB. */
const SALES_LINES = 50;
/** CACHE_MAX_VALUE_KB of the uncached app: the view above never fits, so it is never cached. */
const UNCACHED_MAX_VALUE_KB = '1';
/** Target from the issue: a memory hit within 10% of the constant route. */
const RPS_TARGET = 0.9;
const REQUEST_TIMEOUT_MS = 5_000;
const STAMPEDE_TIMEOUT_MS = 20_000;
const LINE_TIMEOUT_MS = 30_000;
const READY_LINE = /ready in \d+ ms/;
/** The cached app runs with GET /bench/constant added (bench/constant-route-app.ts): the baseline route, in the same process. */
const CONSTANT_APP = ['--import', 'tsx', join(process.cwd(), 'bench', 'constant-route-app.ts')];
const CONSTANT_ROUTE = '/bench/constant';
/** REDIS_KEY_PREFIX default (src/config/app-config.ts): cache entries live under `<prefix>:cache:`. */
const CACHE_ROOT = 'pharmacare:cache:';
/** The job lookup: BullMQ Job.fromId reads the job hash with one HGETALL (src/queue/job-producer.service.ts getJob). */
const JOB_LOOKUP = 'HGETALL';

const TENANT = 'bench-pharmacy';
const TOKEN_USER = 'bench-user';

// ---------------------------------------------------------------- small helpers

function only(counts: ReadonlyMap<string, number>, key: string): boolean {
  return counts.size === 1 && counts.has(key);
}

function countsOrNone(counts: ReadonlyMap<string, number>): string {
  return counts.size === 0 ? 'none' : formatCounts(counts);
}

/** "GET 1, EVALSHA 1, ZSCORE 2.5": each command's calls divided by the requests. */
function perRequest(counts: ReadonlyMap<string, number>, requests: number): string {
  if (counts.size === 0) return 'none';
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([command, n]) => `${command} ${Number((n / requests).toFixed(2))}`)
    .join(', ');
}

function assertLoopback(url: string): void {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' || parsed.hostname !== '127.0.0.1') throw new Error(`bench requests only target http://127.0.0.1, not ${parsed.origin}`);
}

/** A report with SALES_LINES lines, every one a distinct SKU, different for every seed (so its own report id). */
function distinctSkuSales(seed: number): Sale[] {
  return Array.from({ length: SALES_LINES }, (_unused, index) => ({
    sku: `BENCH-${seed}-SKU-${String(index).padStart(3, '0')}`,
    quantity: 1 + (index % 4),
    unitPrice: 1 + ((seed + index) % 40) / 4,
    soldAt: `2026-11-${String(1 + (index % 28)).padStart(2, '0')}T10:00:00Z`,
  }));
}

// ---------------------------------------------------------------- processes and reports

async function startApp(resources: Resources, label: string, redis: RedisServer, env: Record<string, string>, nodeArgs?: string[]): Promise<AppProcess> {
  const app = resources.add(
    await AppProcess.start({ REDIS_URL: redis.url(), JWT_SECRET, HEALTH_REDIS_GRACE_SECONDS: '60', LOG_LEVEL: 'log', ...env }, { nodeArgs }),
    label,
    (a) => a.stop(),
  );
  await app.waitForLines(READY_LINE, 3, LINE_TIMEOUT_MS);
  return app;
}

async function postOnly(app: AppProcess, token: string, sales: Sale[]): Promise<string> {
  const posted = await postReport(app, token, sales);
  const id = (posted.body as { id?: unknown }).id;
  if ((posted.status !== 202 && posted.status !== 200) || typeof id !== 'string') {
    throw new Error(`POST /reports answered ${posted.status}: ${posted.text.slice(0, 300)}`);
  }
  return id;
}

/** Waits until the report is completed; returns its JSON view. */
async function settled(app: AppProcess, token: string, id: string): Promise<string> {
  const done = await settledReport(app, token, id);
  const status = (done.body as { status?: unknown }).status;
  if (status !== 'completed') throw new Error(`report ${id} ended ${String(status)}: ${done.text.slice(0, 300)}`);
  return done.text;
}

async function completedReport(app: AppProcess, token: string, sales: Sale[]): Promise<{ id: string; text: string; bytes: number }> {
  const id = await postOnly(app, token, sales);
  const text = await settled(app, token, id);
  return { id, text, bytes: Buffer.byteLength(text) };
}

// ---------------------------------------------------------------- HTTP

interface Answers {
  statuses: Counts;
  /** x-cache header values, 'none' when absent. */
  xCache: Counts;
  elapsedMs: number;
}

function emptyAnswers(): Answers {
  return { statuses: new Map(), xCache: new Map(), elapsedMs: 0 };
}

async function getOnce(url: string, headers: Record<string, string>, timeoutMs: number, answers: Answers): Promise<void> {
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    count(answers.statuses, String(response.status));
    count(answers.xCache, response.headers.get('x-cache') ?? 'none');
  } catch {
    count(answers.statuses, 'error');
  }
}

/** The urls one after another (one keep-alive connection), recording statuses and x-cache. */
async function sequential(urls: readonly string[], headers: Record<string, string>): Promise<Answers> {
  urls.forEach(assertLoopback);
  const answers = emptyAnswers();
  const started = performance.now();
  for (const url of urls) await getOnce(url, headers, REQUEST_TIMEOUT_MS, answers);
  answers.elapsedMs = performance.now() - started;
  return answers;
}

/** `n` GETs of url all sent at once (bounded: n requests, each with its own deadline). */
async function burst(url: string, n: number, headers: Record<string, string>): Promise<Answers> {
  assertLoopback(url);
  const answers = emptyAnswers();
  const started = performance.now();
  await Promise.all(Array.from({ length: n }, () => getOnce(url, headers, STAMPEDE_TIMEOUT_MS, answers)));
  answers.elapsedMs = performance.now() - started;
  return answers;
}

// ---------------------------------------------------------------- Redis commandstats

/**
 * Commands the server ran while `action` ran. The first INFO is counted in the second snapshot (Redis counts a
 * command after it ran, so the second INFO is not in its own output): one INFO is subtracted.
 */
async function commandsDuring<T>(client: Redis, action: () => Promise<T>): Promise<{ commands: Counts; result: T }> {
  const before = await commandStats(client);
  const result = await action();
  const after = await commandStats(client);
  const commands: Counts = new Map();
  for (const [command, calls] of after) {
    const delta = calls - (before.get(command) ?? 0) - (command === 'INFO' ? 1 : 0);
    if (delta !== 0) commands.set(command, delta);
  }
  return { commands, result };
}

/** Deletes the Redis-tier entry of a report (the cached view only: not the job, not the tag set). */
async function dropCachedView(client: Redis, id: string): Promise<number> {
  const keys: string[] = [];
  let cursor = '0';
  let pages = 0;
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', `${CACHE_ROOT}*${id}`, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
    pages += 1;
  } while (cursor !== '0' && pages < 10_000);
  return keys.length > 0 ? client.unlink(...keys) : 0;
}

// ---------------------------------------------------------------- 1. throughput

interface Route {
  label: string;
  options: LoadOptions;
  /** The app's redis-server: its job lookups (HGETALL) during this route's slices are counted. */
  stats?: Redis;
}

interface Measured {
  result: LoadResult;
  roundRps: number[];
  /** Slices that the request cap, not the time limit, ended. */
  capped: number;
  /** Job lookups (HGETALL) on the route's Redis during its slices; undefined without `stats`. */
  lookups?: number;
}

function rps(result: LoadResult): number {
  return result.elapsedMs > 0 ? (result.samples.length / result.elapsedMs) * 1000 : Number.NaN;
}

/** Every route once per round, the order rotated each round, so drift hits all alike. */
async function interleavedRounds(routes: readonly Route[], rounds: number): Promise<Measured[]> {
  const measured: Measured[] = routes.map(() => ({ result: { samples: [], statuses: new Map(), elapsedMs: 0, timedOut: false }, roundRps: [], capped: 0 }));
  for (let round = 0; round < rounds; round++) {
    const order = routes.map((_route, index) => (index + round) % routes.length);
    const parts: string[] = [];
    for (const index of order) {
      const { options, stats } = routes[index];
      const target = measured[index];
      let slice: LoadResult;
      if (stats) {
        const found = await commandsDuring(stats, () => httpLoad(options));
        slice = found.result;
        target.lookups = (target.lookups ?? 0) + (found.commands.get(JOB_LOOKUP) ?? 0);
      } else {
        slice = await httpLoad(options);
      }
      target.result.samples.push(...slice.samples);
      for (const [key, n] of slice.statuses) count(target.result.statuses, key, n);
      target.result.elapsedMs += slice.elapsedMs;
      target.result.timedOut ||= slice.timedOut;
      target.roundRps.push(rps(slice));
      if (!slice.timedOut) target.capped += 1;
      parts.push(`${routes[index].label} ${rps(slice).toFixed(0)} rps`);
    }
    progress(`round ${round + 1}/${rounds}: ${parts.join(', ')}`);
  }
  return measured;
}

/** The baseline of every × column: the constant route with the cached route's guard and body. */
const BASELINE_LABEL = `GET ${CONSTANT_ROUTE}, same app`;

function throughputRow(label: string, own: Measured, sample: string, baseline?: Measured): Row {
  const mine = summarize(own.result.samples);
  const base = baseline ?? own;
  const theirs = summarize(base.result.samples);
  return {
    case: `throughput, ${CONCURRENCY} concurrent`,
    measure: label,
    n: mine.n,
    responses: formatCounts(own.result.statuses),
    'x-cache': sample,
    rps: rps(own.result).toFixed(0),
    'rps per round': `${Math.min(...own.roundRps).toFixed(0)}–${Math.max(...own.roundRps).toFixed(0)}`,
    'p50 ms': formatMs(mine.p50),
    'p99 ms': formatMs(mine.p99),
    baseline: baseline ? BASELINE_LABEL : '(baseline)',
    '× rps': formatRatio(rps(own.result), rps(base.result)),
    '× p50': formatRatio(mine.p50, theirs.p50),
    '× p99': formatRatio(mine.p99, theirs.p99),
    [`job lookups (${JOB_LOOKUP})`]: own.lookups === undefined ? '' : `${own.lookups} (${(own.lookups / mine.n).toFixed(2)}/request)`,
  };
}

// ---------------------------------------------------------------- the suite

export async function run(): Promise<BenchResult> {
  const resources = new Resources();
  const bodyDir = await mkdtemp(join(tmpdir(), 'bench-constant-'));
  const constantBodyFile = join(bodyDir, 'report-view.json');
  const rows: Row[] = [];
  const checks: Check[] = [];
  const notes: string[] = [];
  try {
    const token = tokenFor(TOKEN_USER, TENANT);
    const auth = { authorization: `Bearer ${token}` };

    progress('starting 2 redis-servers, the cached and the uncached app (APP_ROLE=all), and 2 fresh APP_ROLE=web instances of the cached app');
    const [cachedRedis, uncachedRedis] = await Promise.all([RedisServer.start(), RedisServer.start()]);
    resources.add(cachedRedis, 'redis-server (cached app)', (server) => server.stop());
    resources.add(uncachedRedis, 'redis-server (uncached app)', (server) => server.stop());
    const cachedStats = resources.add(new Redis(cachedRedis.port, '127.0.0.1'), 'stats client (cached)', (client) => client.quit());
    const uncachedStats = resources.add(new Redis(uncachedRedis.port, '127.0.0.1'), 'stats client (uncached)', (client) => client.quit());
    // The two fresh instances (cases 2 and 3) start now too, so every process runs the same dist/ build; they serve
    // no request until their case, so their memory tier is still empty then.
    const [cachedApp, uncachedApp, freshForRedisHits, freshForStampede] = await Promise.all([
      startApp(resources, 'cached app', cachedRedis, { APP_ROLE: 'all', BENCH_CONSTANT_BODY_FILE: constantBodyFile }, CONSTANT_APP),
      startApp(resources, 'uncached app', uncachedRedis, { APP_ROLE: 'all', CACHE_MAX_VALUE_KB: UNCACHED_MAX_VALUE_KB }),
      startApp(resources, 'fresh web instance (Redis hits)', cachedRedis, { APP_ROLE: 'web' }),
      startApp(resources, 'fresh web instance (stampede)', cachedRedis, { APP_ROLE: 'web' }),
    ]);

    progress(`one ${SALES_LINES}-line report on each app`);
    const [cachedReport, uncachedReport] = await Promise.all([
      completedReport(cachedApp, token, distinctSkuSales(0)),
      completedReport(uncachedApp, token, distinctSkuSales(0)),
    ]);
    const oversizeWarned = uncachedApp.matching(/not caching .* over CACHE_MAX_VALUE_KB/).length > 0;
    checks.push({
      label: `the report view (${cachedReport.bytes} B) is over the uncached app's CACHE_MAX_VALUE_KB=${UNCACHED_MAX_VALUE_KB}, and that app said it does not cache it`,
      ok: uncachedReport.bytes > Number(UNCACHED_MAX_VALUE_KB) * 1024 && oversizeWarned,
    });
    const cachedUrl = `${cachedApp.baseUrl}/reports/${cachedReport.id}`;
    await writeFile(constantBodyFile, cachedReport.text);
    const constantAnswer = await cachedApp.request(CONSTANT_ROUTE, { headers: auth });
    checks.push({
      label: `the constant route answers 200 with exactly the cached report's ${cachedReport.bytes} B (same guard, same body)`,
      ok: constantAnswer.status === 200 && constantAnswer.text === cachedReport.text,
    });
    const uncachedUrl = `${uncachedApp.baseUrl}/reports/${uncachedReport.id}`;

    // ------------------------------------------------ 1. throughput
    const routes: Route[] = [
      {
        label: `GET ${CONSTANT_ROUTE}`,
        options: { url: `${cachedApp.baseUrl}${CONSTANT_ROUTE}`, requests: SLICE_MAX_REQUESTS, timeLimitMs: SLICE_MS, concurrency: CONCURRENCY, init: { headers: auth } },
      },
      { label: 'GET /health/live', options: { url: `${cachedApp.baseUrl}/health/live`, requests: SLICE_MAX_REQUESTS, timeLimitMs: SLICE_MS, concurrency: CONCURRENCY } },
      {
        label: 'GET /auth/me',
        options: { url: `${cachedApp.baseUrl}/auth/me`, requests: SLICE_MAX_REQUESTS, timeLimitMs: SLICE_MS, concurrency: CONCURRENCY, init: { headers: auth } },
      },
      {
        label: 'cached GET',
        options: { url: cachedUrl, requests: SLICE_MAX_REQUESTS, timeLimitMs: SLICE_MS, concurrency: CONCURRENCY, init: { headers: auth } },
        stats: cachedStats,
      },
      {
        label: 'uncached GET',
        options: { url: uncachedUrl, requests: SLICE_MAX_REQUESTS, timeLimitMs: SLICE_MS, concurrency: CONCURRENCY, init: { headers: auth } },
        stats: uncachedStats,
      },
    ];
    progress(`throughput: warm-up ${WARMUP_MS} ms per route, then ${ROUNDS} rounds × ${routes.length} routes × ${SLICE_MS} ms at concurrency ${CONCURRENCY}`);
    for (const route of routes) await httpLoad({ ...route.options, timeLimitMs: WARMUP_MS });
    const cachedBefore = await sequential(Array(HEADER_SAMPLE).fill(cachedUrl), auth);
    const uncachedBefore = await sequential(Array(HEADER_SAMPLE).fill(uncachedUrl), auth);
    const [constant, live, authOnly, cached, uncached] = await interleavedRounds(routes, ROUNDS);
    const cachedAfter = await sequential(Array(HEADER_SAMPLE).fill(cachedUrl), auth);
    const uncachedAfter = await sequential(Array(HEADER_SAMPLE).fill(uncachedUrl), auth);
    const cachedSample = new Map(cachedBefore.xCache);
    for (const [key, n] of cachedAfter.xCache) count(cachedSample, key, n);
    const uncachedSample = new Map(uncachedBefore.xCache);
    for (const [key, n] of uncachedAfter.xCache) count(uncachedSample, key, n);

    rows.push(
      throughputRow(`GET ${CONSTANT_ROUTE} (JWT guard, the report's ${cachedReport.bytes} B as a constant)`, constant, ''),
      throughputRow('GET /health/live (no guard, ~40 B)', live, '', constant),
      throughputRow('GET /auth/me (JWT guard, ~40 B)', authOnly, '', constant),
      throughputRow('GET /reports/:id, memory hit', cached, countsOrNone(cachedSample), constant),
      throughputRow(`GET /reports/:id, uncached (CACHE_MAX_VALUE_KB=${UNCACHED_MAX_VALUE_KB})`, uncached, countsOrNone(uncachedSample), constant),
    );
    const ratio = rps(cached.result) / rps(constant.result);
    const splitNote =
      `Throughput split: against GET /health/live (no guard, tiny body), GET /auth/me ran at ${formatRatio(rps(authOnly.result), rps(live.result))} (the JWT guard), GET ${CONSTANT_ROUTE} at ${formatRatio(rps(constant.result), rps(live.result))} (the guard and the ${cachedReport.bytes} B body), the memory hit at ${formatRatio(rps(cached.result), rps(live.result))}; ` +
      `the memory hit ran at ${formatRatio(rps(cached.result), rps(constant.result))} of ${CONSTANT_ROUTE}, so the cache lookup itself costs the difference between those two; the uncached GET ran at ${formatRatio(rps(uncached.result), rps(cached.result))} of the memory hit's. ` +
      'Under load the uncached app does not read the job once per GET: ' +
      `concurrent GETs of the same report share one in-flight lookup (CacheService.getOrSet), ${uncached.lookups ?? 0} ${JOB_LOOKUP} for ${uncached.result.samples.length} GETs here.`;
    checks.push(
      { label: 'throughput: every response 200', ok: [constant, live, authOnly, cached, uncached].every((m) => only(m.result.statuses, '200')) },
      { label: `throughput: the sampled cached GETs (${2 * HEADER_SAMPLE}, before and after) all answered x-cache: hit`, ok: only(cachedSample, 'hit') },
      { label: `throughput: no sampled uncached GET answered x-cache: hit (${countsOrNone(uncachedSample)})`, ok: !uncachedSample.has('hit') },
      {
        label: `throughput: memory-hit rps ≥ ${RPS_TARGET} × constant-route rps (${ratio.toFixed(2)} × : ${rps(cached.result).toFixed(0)} vs ${rps(constant.result).toFixed(0)} rps)`,
        ok: ratio >= RPS_TARGET,
      },
    );

    // ------------------------------------------------ 2. Redis commands per request
    progress(`posting ${SEQUENTIAL} more distinct ${SALES_LINES}-line reports to the cached app`);
    const distinctIds: string[] = [];
    for (let seed = 1; seed <= SEQUENTIAL; seed++) distinctIds.push(await postOnly(cachedApp, token, distinctSkuSales(seed)));
    for (const id of distinctIds) await settled(cachedApp, token, id);
    progress('one more report for the stampede; its Redis-tier entry is deleted so only the job remains');
    const stampedeReport = await completedReport(cachedApp, token, distinctSkuSales(SEQUENTIAL + 1));
    const dropped = await dropCachedView(cachedStats, stampedeReport.id);

    const idleMs = 1_000;
    progress(`commandstats: idle windows (${idleMs} ms), then ${SEQUENTIAL} sequential GETs per case`);
    const idleCached = await commandsDuring(cachedStats, () => new Promise((resolve) => setTimeout(resolve, idleMs)));
    const idleUncached = await commandsDuring(uncachedStats, () => new Promise((resolve) => setTimeout(resolve, idleMs)));
    const memoryHits = await commandsDuring(cachedStats, () => sequential(Array(SEQUENTIAL).fill(cachedUrl), auth));
    const redisHits = await commandsDuring(cachedStats, () =>
      sequential(
        distinctIds.map((id) => `${freshForRedisHits.baseUrl}/reports/${id}`),
        auth,
      ),
    );
    const misses = await commandsDuring(uncachedStats, () => sequential(Array(SEQUENTIAL).fill(uncachedUrl), auth));

    const commandRow = (measure: string, found: { commands: Counts; result: Answers }, idle: Counts): Row => {
      const n = total(found.result.statuses);
      return {
        case: `Redis commands, ${SEQUENTIAL} sequential GETs`,
        measure,
        n,
        responses: formatCounts(found.result.statuses),
        'x-cache': countsOrNone(found.result.xCache),
        'commands/request': (total(found.commands) / n).toFixed(2),
        commands: `per request: ${perRequest(found.commands, n)}`,
        [`job lookups (${JOB_LOOKUP})`]: found.commands.get(JOB_LOOKUP) ?? 0,
        baseline: `same Redis idle ${idleMs / 1000} s: ${countsOrNone(idle)}`,
      };
    };
    rows.push(
      commandRow('memory hit (warm app)', memoryHits, idleCached.commands),
      commandRow('Redis hit (fresh instance, each of 200 reports once)', redisHits, idleCached.commands),
      commandRow(`miss (uncached app, CACHE_MAX_VALUE_KB=${UNCACHED_MAX_VALUE_KB})`, misses, idleUncached.commands),
    );
    progress(`memory hit: ${countsOrNone(memoryHits.commands)}; Redis hit: ${countsOrNone(redisHits.commands)}; miss: ${countsOrNone(misses.commands)}`);
    checks.push(
      { label: 'commands: every sequential GET answered 200', ok: [memoryHits, redisHits, misses].every((m) => only(m.result.statuses, '200')) },
      {
        label: `commands: memory hits ran no Redis command (${countsOrNone(memoryHits.commands)})`,
        ok: memoryHits.commands.size === 0 && only(memoryHits.result.xCache, 'hit'),
      },
      {
        label: `commands: the fresh instance answered all ${SEQUENTIAL} from Redis (x-cache: hit), with one GET each`,
        ok: only(redisHits.result.xCache, 'hit') && redisHits.commands.get('GET') === SEQUENTIAL,
      },
      {
        label: `commands: every uncached GET read the job (${misses.commands.get(JOB_LOOKUP) ?? 0} ${JOB_LOOKUP} for ${SEQUENTIAL})`,
        ok: misses.commands.get(JOB_LOOKUP) === SEQUENTIAL,
      },
    );

    // ------------------------------------------------ 3. stampede
    progress(`stampede: ${STAMPEDE} concurrent GETs of one report, fresh cached instance, then the uncached app`);
    const stampedeCached = await commandsDuring(cachedStats, () => burst(`${freshForStampede.baseUrl}/reports/${stampedeReport.id}`, STAMPEDE, auth));
    const stampedeUncached = await commandsDuring(uncachedStats, () => burst(uncachedUrl, STAMPEDE, auth));
    const cachedLookups = stampedeCached.commands.get(JOB_LOOKUP) ?? 0;
    const uncachedLookups = stampedeUncached.commands.get(JOB_LOOKUP) ?? 0;
    const stampedeRow = (measure: string, found: { commands: Counts; result: Answers }, baseline: string, lookupsBaseline?: number): Row => {
      const lookups = found.commands.get(JOB_LOOKUP) ?? 0;
      return {
        case: `stampede, ${STAMPEDE} concurrent GETs of one report`,
        measure,
        n: total(found.result.statuses),
        responses: formatCounts(found.result.statuses),
        'x-cache': countsOrNone(found.result.xCache),
        'commands/request': (total(found.commands) / STAMPEDE).toFixed(2),
        commands: `total: ${countsOrNone(found.commands)} (burst took ${(found.result.elapsedMs / 1000).toFixed(2)} s)`,
        [`job lookups (${JOB_LOOKUP})`]: lookups,
        baseline,
        '× lookups': lookupsBaseline === undefined ? '' : formatRatio(lookups, lookupsBaseline),
      };
    };
    rows.push(
      stampedeRow(`uncached app (CACHE_MAX_VALUE_KB=${UNCACHED_MAX_VALUE_KB})`, stampedeUncached, '(baseline)', uncachedLookups),
      stampedeRow('fresh cached instance: empty memory tier, no Redis-tier entry', stampedeCached, 'uncached app', uncachedLookups),
    );
    progress(`stampede: cached ${cachedLookups} ${JOB_LOOKUP}, uncached ${uncachedLookups} ${JOB_LOOKUP}`);
    checks.push(
      { label: `stampede: the report's Redis-tier entry was deleted before (${dropped} key)`, ok: dropped === 1 },
      { label: 'stampede: every GET answered 200', ok: only(stampedeCached.result.statuses, '200') && only(stampedeUncached.result.statuses, '200') },
      { label: `stampede: the fresh cached instance looked the job up once (${cachedLookups} ${JOB_LOOKUP})`, ok: cachedLookups === 1 },
    );

    notes.push(
      `Setup: two redis-servers; the cached app (APP_ROLE=all, default CACHE_* settings) and the uncached app (APP_ROLE=all, CACHE_MAX_VALUE_KB=${UNCACHED_MAX_VALUE_KB}) each on its own, so neither sees the other's cache entries or commands. ` +
        `Every report has ${SALES_LINES} sale lines with distinct SKUs; its completed view is ${cachedReport.bytes} B of JSON, over 1 KB, so the uncached app never caches it and reads the job (HGETALL + the getStateV2 script) for every GET that does not join a lookup already in flight.`,
      `Throughput: global fetch (undici) with ${CONCURRENCY} requests in flight over ${CONCURRENCY} keep-alive connections, from the bench process on the same machine. ` +
        `${ROUNDS} rounds × ${SLICE_MS / 1000} s per route, the order rotated each round, after ${WARMUP_MS / 1000} s of warm-up per route; rps = responses ÷ the routes' summed loop time; × columns divide by GET ${CONSTANT_ROUTE} of the same app process in the same rounds. ` +
        `The baseline GET ${CONSTANT_ROUTE} is added to the cached app's process by bench/constant-route-app.ts (the app as dist/main.js builds it, plus that one controller): it runs the same JWT guard and answers the same ${cachedReport.bytes} B report view, held as a constant object, so both serialise the same JSON. ` +
        'GET /health/live (no guard, ~40 B) and GET /auth/me (the guard, ~40 B) show what the guard and the body size cost on their own.',
      `x-cache was checked on ${HEADER_SAMPLE} sequential GETs per route before and after the throughput rounds (the load loops themselves do not read headers).`,
      `Commands: INFO commandstats of the app's own redis-server before and after, minus the first INFO; the idle window shows what the server runs with no requests (background noise). ` +
        `Commands run inside Lua scripts count too: the miss's EVALSHA is BullMQ's getStateV2 script, and its ZSCORE/LPOS calls are inside it (one round trip). The Redis-hit case uses an APP_ROLE=web instance on the cached app's Redis that had served no request before, fetching each of ${SEQUENTIAL} distinct completed reports once.`,
      `Stampede: ${STAMPEDE} fetches started at once (up to ${STAMPEDE} connections). The cached side is an APP_ROLE=web instance that had served no request before (started with the others) and the report's Redis-tier entry was deleted first, so the first request must read the job; the others share that in-flight lookup (CacheService.getOrSet) or hit memory. ` +
        `The uncached app also shares in-flight lookups per key (getOrSet coalesces whether or not the value is then cached), so its job lookups count the waves of concurrent requests, not the requests. ` +
        'A request that joined the in-flight lookup answers x-cache: miss (its source is the loader), so the x-cache counts of the stampede overstate the job lookups.',
    );
    notes.push(splitNote);
    for (const [label, measuredRoute] of [
      [`GET ${CONSTANT_ROUTE}`, constant],
      ['GET /health/live', live],
      ['GET /auth/me', authOnly],
      ['cached GET', cached],
      ['uncached GET', uncached],
    ] as const) {
      if (measuredRoute.capped > 0) notes.push(`${label}: ${measuredRoute.capped} slice(s) hit the ${SLICE_MAX_REQUESTS}-request cap before the time limit.`);
    }
    return { rows, notes, checks };
  } finally {
    await resources.close();
    await rm(bodyDir, { recursive: true, force: true });
  }
}
