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
  Monitor,
  NotificationListener,
  progress,
  Resources,
  Row,
  startDocsRecipe,
  summarize,
  UNBOUNDED_TENANT_WORK,
} from './support';

export const name = 'cache';
export const title =
  'Cached GET /reports/:id: throughput against a constant route with the same guard and body, Redis commands per memory hit, Redis hit and miss (ours and the NestJS docs recipe), stampede';

// ---------------------------------------------------------------- knobs

/** Requests in flight at once in the throughput loops, each on its own keep-alive connection. */
const CONCURRENCY = 16;
/** Throughput rounds (a multiple of the 6 routes); each runs every route once, the order rotated, so each route runs in each position equally often. */
const ROUNDS = 12;
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
/** CACHE_MAX_VALUE_KB of the memory-less app: the view above never fits its memory tier, so every GET reads the Redis tier. */
const MEMORYLESS_MAX_VALUE_KB = '1';
/** Targets from issue #14: a memory hit within 10% of the constant route; a miss at most 5 billable commands. */
const RPS_TARGET = 0.9;
const MISS_BILLABLE_LIMIT = 5;
/** Reports of a case, POSTed one after another, all completed within this. */
const SETTLE_TIMEOUT_MS = 60_000;
/** The docs recipe's memory store keeps an entry this long (KeyvCacheableMemory ttl 60000); cache-manager does not refill it from Redis. */
const RECIPE_MEMORY_TTL_S = 60;
const REQUEST_TIMEOUT_MS = 5_000;
const STAMPEDE_TIMEOUT_MS = 20_000;
/** Nine apps boot at once on two cores: each may take a while to listen and connect. */
const LINE_TIMEOUT_MS = 60_000;
const READY_LINE = /ready in \d+ ms/;
/** The cached app runs with GET /bench/constant added (bench/constant-route-app.ts): the baseline route, in the same process. */
const CONSTANT_APP = ['--import', 'tsx', join(process.cwd(), 'bench', 'constant-route-app.ts')];
const CONSTANT_ROUTE = '/bench/constant';
/** The job lookup: BullMQ Job.fromId reads the job hash with one HGETALL (src/queue/job-producer.service.ts getJob). */
const JOB_LOOKUP = 'HGETALL';
/** A read of a report from Redis: its cache entry (GET) or its job (HGETALL). */
const REPORT_READS = ['GET', JOB_LOOKUP] as const;
const READS_LABEL = 'Redis reads (GET + HGETALL)';

function reportReads(commands: Counts): number {
  return REPORT_READS.reduce((sum, command) => sum + (commands.get(command) ?? 0), 0);
}

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
    await AppProcess.start(
      { REDIS_URL: redis.url(), JWT_SECRET, HEALTH_REDIS_GRACE_SECONDS: '60', LOG_LEVEL: 'log', ...UNBOUNDED_TENANT_WORK, ...env },
      { nodeArgs, listenTimeoutMs: LINE_TIMEOUT_MS },
    ),
    label,
    (a) => a.stop(),
  );
  await app.waitForLines(READY_LINE, 3, LINE_TIMEOUT_MS);
  return app;
}

async function postOnly(app: AppProcess, token: string, sales: Sale[]): Promise<string> {
  const posted = await postReport(app, token, sales);
  const id = (posted.body as { id?: unknown }).id;
  // Ours answers rpt_… ids, the docs recipe BullMQ's numbers.
  if ((posted.status !== 202 && posted.status !== 200) || (typeof id !== 'string' && typeof id !== 'number')) {
    throw new Error(`POST /reports answered ${posted.status}: ${posted.text.slice(0, 300)}`);
  }
  return String(id);
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

interface CommandsDuring<T> {
  /** INFO commandstats: every command the server ran, calls inside scripts too. */
  commands: Counts;
  /** MONITOR, when given: client-issued commands Upstash bills (scripts count once). */
  billable?: Counts;
  result: T;
}

/**
 * Commands the server ran while `action` ran. The first INFO is counted in the second snapshot (Redis counts a
 * command after it ran, so the second INFO is not in its own output): one INFO is subtracted. With a monitor,
 * also what clients sent between two markers around the action (the markers and INFOs are not billed).
 */
async function commandsDuring<T>(client: Redis, action: () => Promise<T>, monitor?: Monitor): Promise<CommandsDuring<T>> {
  const from = monitor ? await monitor.mark(client) : undefined;
  const before = await commandStats(client);
  const result = await action();
  const after = await commandStats(client);
  const to = monitor ? await monitor.mark(client) : undefined;
  const commands: Counts = new Map();
  for (const [command, calls] of after) {
    const delta = calls - (before.get(command) ?? 0) - (command === 'INFO' ? 1 : 0);
    if (delta !== 0) commands.set(command, delta);
  }
  const billable = monitor && from !== undefined && to !== undefined ? monitor.counts(from, to).billable : undefined;
  return { commands, billable, result };
}

/** A redis-server with what measures it: a stats client, a MONITOR (started after the throughput rounds) and the report:completed notifications. */
interface MeasuredRedis {
  readonly server: RedisServer;
  readonly stats: Redis;
  readonly notifications: NotificationListener;
  monitor?: Monitor;
}

async function measuredRedis(resources: Resources, label: string): Promise<MeasuredRedis> {
  const server = resources.add(await RedisServer.start(), `redis-server (${label})`, (s) => s.stop());
  const stats = resources.add(new Redis(server.port, '127.0.0.1'), `stats client (${label})`, (client) => client.quit());
  const notifications = resources.add(await NotificationListener.start(server.port), `notifications (${label})`, (n) => n.stop());
  return { server, stats, notifications };
}

async function startMonitor(resources: Resources, redis: MeasuredRedis, label: string): Promise<Monitor> {
  const monitor = resources.add(new Monitor(label, redis.server), `monitor (${label})`, (m) => m.stop());
  await monitor.ready();
  redis.monitor = monitor;
  return monitor;
}

/** POSTs one report per seed, one after another; their ids. */
async function postAll(app: AppProcess, token: string, seeds: readonly number[]): Promise<string[]> {
  const ids: string[] = [];
  for (const seed of seeds) ids.push(await postOnly(app, token, distinctSkuSales(seed)));
  return ids;
}

/** POSTs one report per seed, then waits until all are completed (their notifications passed): none has been read. */
async function completedUnread(app: AppProcess, redis: MeasuredRedis, token: string, seeds: readonly number[]): Promise<string[]> {
  const before = redis.notifications.count;
  const ids = await postAll(app, token, seeds);
  await waitForCompletions(redis, seeds.length, before);
  return ids;
}

/** Waits until `reports` more notifications passed than the `before` counted. */
async function waitForCompletions(redis: MeasuredRedis, reports: number, before: number): Promise<void> {
  if ((await redis.notifications.waitFor(before + reports, SETTLE_TIMEOUT_MS)) === undefined) {
    throw new Error(`${redis.notifications.count - before} of ${reports} reports completed within ${SETTLE_TIMEOUT_MS / 1000} s`);
  }
}

// ---------------------------------------------------------------- 1. throughput

interface Route {
  label: string;
  options: LoadOptions;
  /** The app's redis-server: its reads of the report (GET, HGETALL) during this route's slices are counted. */
  stats?: Redis;
}

interface Measured {
  result: LoadResult;
  roundRps: number[];
  /** Slices that the request cap, not the time limit, ended. */
  capped: number;
  /** Reads of the report (GET, HGETALL) on the route's Redis during its slices; undefined without `stats`. */
  reads?: number;
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
        target.reads = (target.reads ?? 0) + reportReads(found.commands);
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
    [READS_LABEL]: own.reads === undefined ? '' : `${own.reads} (${(own.reads / mine.n).toFixed(2)}/request)`,
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
    const recipeEnv = (redis: MeasuredRedis) => ({ REDIS_URL: redis.server.url(), JWT_SECRET });
    const startRecipe = (redis: MeasuredRedis, role: 'all' | 'web', label: string) =>
      startDocsRecipe(recipeEnv(redis), role, { listenTimeoutMs: LINE_TIMEOUT_MS }).then((app) => resources.add(app, label, (a) => a.stop()));

    progress('starting 5 redis-servers: ours cached, memory-less and web-only; the docs recipe and its web-only; 6 of our apps and 3 of the recipe');
    const [cachedRedis, memorylessRedis, queuedRedis, recipeRedis, recipeQueuedRedis] = await Promise.all(
      ['cached app', 'memory-less app', 'ours, web only', 'docs recipe', 'docs recipe, web only'].map((label) => measuredRedis(resources, label)),
    );
    // The fresh instances start now too, so every process runs the same build; they serve no request until their
    // case, so their memory tier is still empty then.
    const [cachedApp, memorylessApp, freshFirstRead, freshRedisHits, freshStampede, oursWebOnly, recipeApp, recipeFresh, recipeWebOnly] = await Promise.all([
      startApp(resources, 'cached app', cachedRedis.server, { APP_ROLE: 'all', BENCH_CONSTANT_BODY_FILE: constantBodyFile }, CONSTANT_APP),
      startApp(resources, 'memory-less app', memorylessRedis.server, { APP_ROLE: 'all', CACHE_MAX_VALUE_KB: MEMORYLESS_MAX_VALUE_KB }),
      startApp(resources, 'fresh web instance (first reads)', cachedRedis.server, { APP_ROLE: 'web' }),
      startApp(resources, 'fresh web instance (Redis hits)', cachedRedis.server, { APP_ROLE: 'web' }),
      startApp(resources, 'fresh web instance (stampede)', cachedRedis.server, { APP_ROLE: 'web' }),
      startApp(resources, 'web only (reports stay queued)', queuedRedis.server, { APP_ROLE: 'web' }),
      startRecipe(recipeRedis, 'all', 'docs recipe'),
      startRecipe(recipeRedis, 'web', 'docs recipe, fresh web instance'),
      startRecipe(recipeQueuedRedis, 'web', 'docs recipe, web only'),
    ]);

    progress(`one ${SALES_LINES}-line report on each app`);
    const [cachedReport, memorylessReport] = await Promise.all([
      completedReport(cachedApp, token, distinctSkuSales(0)),
      completedReport(memorylessApp, token, distinctSkuSales(0)),
    ]);
    // The recipe caches whatever GET answers first, "queued" too, with no expiry: read it only once completed.
    const [recipeReportId] = await completedUnread(recipeApp, recipeRedis, token, [0]);
    const recipeUrl = `${recipeApp.baseUrl}/reports/${recipeReportId}`;
    const recipeFirst = await recipeApp.request(`/reports/${recipeReportId}`, { headers: auth });
    checks.push({
      label: `the docs recipe's report answers 200 completed (${Buffer.byteLength(recipeFirst.text)} B)`,
      ok: recipeFirst.status === 200 && (recipeFirst.body as { status?: unknown }).status === 'completed',
    });
    // Its memory tier refuses the view silently (the worker's store succeeded); the commands case checks every GET reads Redis.
    checks.push({
      label: `the report view (${memorylessReport.bytes} B) is over the memory-less app's CACHE_MAX_VALUE_KB=${MEMORYLESS_MAX_VALUE_KB}`,
      ok: memorylessReport.bytes > Number(MEMORYLESS_MAX_VALUE_KB) * 1024,
    });
    const cachedUrl = `${cachedApp.baseUrl}/reports/${cachedReport.id}`;
    await writeFile(constantBodyFile, cachedReport.text);
    const constantAnswer = await cachedApp.request(CONSTANT_ROUTE, { headers: auth });
    checks.push({
      label: `the constant route answers 200 with exactly the cached report's ${cachedReport.bytes} B (same guard, same body)`,
      ok: constantAnswer.status === 200 && constantAnswer.text === cachedReport.text,
    });
    const memorylessUrl = `${memorylessApp.baseUrl}/reports/${memorylessReport.id}`;

    // ------------------------------------------------ 1. throughput
    const load = (url: string, headers?: Record<string, string>): LoadOptions => ({
      url,
      requests: SLICE_MAX_REQUESTS,
      timeLimitMs: SLICE_MS,
      concurrency: CONCURRENCY,
      init: headers ? { headers } : undefined,
    });
    const routes: Route[] = [
      { label: `GET ${CONSTANT_ROUTE}`, options: load(`${cachedApp.baseUrl}${CONSTANT_ROUTE}`, auth) },
      { label: 'GET /health/live', options: load(`${cachedApp.baseUrl}/health/live`) },
      { label: 'GET /auth/me', options: load(`${cachedApp.baseUrl}/auth/me`, auth) },
      { label: 'cached GET', options: load(cachedUrl, auth), stats: cachedRedis.stats },
      { label: 'Redis-hit GET', options: load(memorylessUrl, auth), stats: memorylessRedis.stats },
      { label: 'docs recipe GET', options: load(recipeUrl, auth), stats: recipeRedis.stats },
    ];
    progress(`throughput: warm-up ${WARMUP_MS} ms per route, then ${ROUNDS} rounds × ${routes.length} routes × ${SLICE_MS} ms at concurrency ${CONCURRENCY}`);
    for (const route of routes) await httpLoad({ ...route.options, timeLimitMs: WARMUP_MS });
    const cachedBefore = await sequential(Array(HEADER_SAMPLE).fill(cachedUrl), auth);
    const memorylessBefore = await sequential(Array(HEADER_SAMPLE).fill(memorylessUrl), auth);
    const [constant, live, authOnly, cached, redisOnly, recipeHits] = await interleavedRounds(routes, ROUNDS);
    const cachedAfter = await sequential(Array(HEADER_SAMPLE).fill(cachedUrl), auth);
    const memorylessAfter = await sequential(Array(HEADER_SAMPLE).fill(memorylessUrl), auth);
    const cachedSample = new Map(cachedBefore.xCache);
    for (const [key, n] of cachedAfter.xCache) count(cachedSample, key, n);
    const memorylessSample = new Map(memorylessBefore.xCache);
    for (const [key, n] of memorylessAfter.xCache) count(memorylessSample, key, n);

    rows.push(
      throughputRow(`GET ${CONSTANT_ROUTE} (JWT guard, the report's ${cachedReport.bytes} B as a constant)`, constant, ''),
      throughputRow('GET /health/live (no guard, ~40 B)', live, '', constant),
      throughputRow('GET /auth/me (JWT guard, ~40 B)', authOnly, '', constant),
      throughputRow('GET /reports/:id, memory hit', cached, countsOrNone(cachedSample), constant),
      throughputRow(`GET /reports/:id, Redis hit (memory-less app: CACHE_MAX_VALUE_KB=${MEMORYLESS_MAX_VALUE_KB})`, redisOnly, countsOrNone(memorylessSample), constant),
      throughputRow(
        `docs recipe: GET /reports/:id, cached (docs AuthGuard + CacheInterceptor, ${Buffer.byteLength(recipeFirst.text)} B; its own process; from memory for its first ${RECIPE_MEMORY_TTL_S} s, then from Redis)`,
        recipeHits,
        '',
        constant,
      ),
    );
    const ratio = rps(cached.result) / rps(constant.result);
    const splitNote =
      `Throughput split: against GET /health/live (no guard, tiny body), GET /auth/me ran at ${formatRatio(rps(authOnly.result), rps(live.result))} (the JWT guard), GET ${CONSTANT_ROUTE} at ${formatRatio(rps(constant.result), rps(live.result))} (the guard and the ${cachedReport.bytes} B body), the memory hit at ${formatRatio(rps(cached.result), rps(live.result))}; ` +
      `the memory hit ran at ${formatRatio(rps(cached.result), rps(constant.result))} of ${CONSTANT_ROUTE}, so the cache lookup itself costs the difference between those two; the Redis hit (memory-less app) ran at ${formatRatio(rps(redisOnly.result), rps(cached.result))} of the memory hit's; the docs recipe's cached GET at ${formatRatio(rps(recipeHits.result), rps(cached.result))} of ours. ` +
      'Under load the memory-less app does not read Redis once per GET: ' +
      `concurrent GETs of the same report share one in-flight read (CacheService.getOrSet), ${redisOnly.reads ?? 0} reads for ${redisOnly.result.samples.length} GETs here.`;
    checks.push(
      { label: 'throughput: every response 200', ok: [constant, live, authOnly, cached, redisOnly, recipeHits].every((m) => only(m.result.statuses, '200')) },
      { label: `throughput: the sampled cached GETs (${2 * HEADER_SAMPLE}, before and after) all answered x-cache: hit`, ok: only(cachedSample, 'hit') },
      { label: `throughput: the sampled GETs of the memory-less app (${2 * HEADER_SAMPLE}) all answered x-cache: hit (from Redis)`, ok: only(memorylessSample, 'hit') },
      {
        label: `throughput: memory-hit rps ≥ ${RPS_TARGET} × constant-route rps (${ratio.toFixed(2)} × : ${rps(cached.result).toFixed(0)} vs ${rps(constant.result).toFixed(0)} rps)`,
        ok: ratio >= RPS_TARGET,
      },
    );

    // ------------------------------------------------ 2. Redis commands per request
    progress(
      `${SEQUENTIAL} more distinct ${SALES_LINES}-line reports on ours and on the docs recipe, each completed and not read; ${SEQUENTIAL} more on each web-only instance (they stay queued)`,
    );
    const seeds = Array.from({ length: SEQUENTIAL }, (_unused, index) => index + 1);
    // Posted through a web instance while the cached app (the worker) is stopped, so no POST finds its report
    // completed already (a POST that does caches the view): every first read below is a real first read.
    const completedBefore = cachedRedis.notifications.count;
    const distinctIds = await cachedApp.whilePaused(() => postAll(freshRedisHits, token, seeds));
    const [recipeIds, queuedIds, recipeQueuedIds] = await Promise.all([
      completedUnread(recipeApp, recipeRedis, token, seeds),
      postAll(oursWebOnly, token, seeds),
      postAll(recipeWebOnly, token, seeds),
      waitForCompletions(cachedRedis, SEQUENTIAL, completedBefore),
    ]);
    progress('one more report for the stampede, completed and not read');
    const [stampedeId] = await cachedApp.whilePaused(() => postAll(freshRedisHits, token, [SEQUENTIAL + 1]));
    await waitForCompletions(cachedRedis, SEQUENTIAL + 1, completedBefore);

    await Promise.all(
      [
        [cachedRedis, 'cached app'],
        [memorylessRedis, 'memory-less app'],
        [queuedRedis, 'ours, web only'],
        [recipeRedis, 'docs recipe'],
        [recipeQueuedRedis, 'docs recipe, web only'],
      ].map(([redis, label]) => startMonitor(resources, redis as MeasuredRedis, label as string)),
    );
    const measure = <T>(redis: MeasuredRedis, action: () => Promise<T>) => commandsDuring(redis.stats, action, redis.monitor);
    const idleMs = 1_000;
    progress(`commandstats and MONITOR: idle windows (${idleMs} ms), then ${SEQUENTIAL} sequential GETs per case`);
    const idle = (redis: MeasuredRedis) => measure(redis, () => new Promise((resolve) => setTimeout(resolve, idleMs)));
    const [idleCached, idleMemoryless, idleQueued, idleRecipe, idleRecipeQueued] = [
      await idle(cachedRedis),
      await idle(memorylessRedis),
      await idle(queuedRedis),
      await idle(recipeRedis),
      await idle(recipeQueuedRedis),
    ];
    const urls = (app: AppProcess, ids: readonly string[]) => ids.map((id) => `${app.baseUrl}/reports/${id}`);
    const memoryHits = await measure(cachedRedis, () => sequential(Array(SEQUENTIAL).fill(cachedUrl), auth));
    const firstReads = await measure(cachedRedis, () => sequential(urls(freshFirstRead, distinctIds), auth));
    const redisHits = await measure(cachedRedis, () => sequential(urls(freshRedisHits, distinctIds), auth));
    const queuedReads = await measure(queuedRedis, () => sequential(urls(oursWebOnly, queuedIds), auth));
    const memorylessHits = await measure(memorylessRedis, () => sequential(Array(SEQUENTIAL).fill(memorylessUrl), auth));
    const recipeStaleHits = await measure(recipeRedis, () => sequential(Array(SEQUENTIAL).fill(recipeUrl), auth));
    const recipeFirstReads = await measure(recipeRedis, () => sequential(urls(recipeApp, recipeIds), auth));
    // Within the memory store's 60 s of the first read just above.
    const recipeMemoryHits = await measure(recipeRedis, () => sequential(Array(SEQUENTIAL).fill(urls(recipeApp, recipeIds)[0]), auth));
    const recipeRedisHits = await measure(recipeRedis, () => sequential(urls(recipeFresh, recipeIds), auth));
    const recipeQueuedReads = await measure(recipeQueuedRedis, () => sequential(urls(recipeWebOnly, recipeQueuedIds), auth));

    const commandRow = (label: string, found: CommandsDuring<Answers>, idle: CommandsDuring<unknown>): Row => {
      const n = total(found.result.statuses);
      const billable = found.billable ?? new Map<string, number>();
      return {
        case: `Redis commands, ${SEQUENTIAL} sequential GETs`,
        measure: label,
        n,
        responses: formatCounts(found.result.statuses),
        'x-cache': countsOrNone(found.result.xCache),
        'billable/request': (total(billable) / n).toFixed(2),
        'commands/request': (total(found.commands) / n).toFixed(2),
        commands: `billable (MONITOR) per request: ${perRequest(billable, n)}; all (commandstats) per request: ${perRequest(found.commands, n)}`,
        [`job lookups (${JOB_LOOKUP})`]: found.commands.get(JOB_LOOKUP) ?? 0,
        baseline: `same Redis idle ${idleMs / 1000} s: ${countsOrNone(idle.commands)}`,
      };
    };
    rows.push(
      commandRow('memory hit (warm app)', memoryHits, idleCached),
      commandRow(`first read of a completed report (each of ${SEQUENTIAL} once, on an instance that never served it)`, firstReads, idleCached),
      commandRow(`Redis hit (a second fresh instance, each of the ${SEQUENTIAL} once)`, redisHits, idleCached),
      commandRow(`queued report (web only, no worker: each of ${SEQUENTIAL} once)`, queuedReads, idleQueued),
      commandRow(`Redis hit every time (memory-less app, CACHE_MAX_VALUE_KB=${MEMORYLESS_MAX_VALUE_KB}: 200 GETs of one report)`, memorylessHits, idleMemoryless),
      commandRow('docs recipe: memory hit (warm app, a report cached a second before)', recipeMemoryHits, idleRecipe),
      commandRow(`docs recipe: hit on the report cached before the throughput rounds (over its memory store's ${RECIPE_MEMORY_TTL_S} s)`, recipeStaleHits, idleRecipe),
      commandRow(`docs recipe: first read of a completed report (each of ${SEQUENTIAL} once)`, recipeFirstReads, idleRecipe),
      commandRow(`docs recipe: Redis hit (a fresh web instance, each of the ${SEQUENTIAL} once)`, recipeRedisHits, idleRecipe),
      commandRow(`docs recipe: queued report (web only: each of ${SEQUENTIAL} once; the recipe caches it)`, recipeQueuedReads, idleRecipeQueued),
    );
    progress(
      `billable/request: ours memory hit ${billablePerRequest(memoryHits)}, first read ${billablePerRequest(firstReads)}, Redis hit ${billablePerRequest(redisHits)}, queued ${billablePerRequest(queuedReads)}; docs recipe memory hit ${billablePerRequest(recipeMemoryHits)}, past 60 s ${billablePerRequest(recipeStaleHits)}, first read ${billablePerRequest(recipeFirstReads)}, Redis hit ${billablePerRequest(recipeRedisHits)}, queued ${billablePerRequest(recipeQueuedReads)}`,
    );
    // A miss: a GET the cache did not answer (x-cache miss, or none for an answer that is not cacheable yet).
    const missCases = [
      ['first read of a completed report', firstReads],
      ['queued report', queuedReads],
    ].filter(([, found]) => !(found as CommandsDuring<Answers>).result.xCache.has('hit')) as Array<[string, CommandsDuring<Answers>]>;
    const missCosts = missCases.map(([label, found]) => `${label} ${billablePerRequest(found)}`).join(', ');
    checks.push(
      {
        label: "commands: every sequential GET answered 200 (ours and the docs recipe), 202 for ours' queued reports",
        ok:
          [memoryHits, firstReads, redisHits, memorylessHits, recipeMemoryHits, recipeStaleHits, recipeFirstReads, recipeRedisHits, recipeQueuedReads].every((m) =>
            only(m.result.statuses, '200'),
          ) && only(queuedReads.result.statuses, '202'),
      },
      {
        label: `commands: memory hits ran no Redis command (${countsOrNone(memoryHits.commands)})`,
        ok: memoryHits.commands.size === 0 && only(memoryHits.result.xCache, 'hit'),
      },
      {
        label: `commands: a cache miss costs ≤ ${MISS_BILLABLE_LIMIT} billable Redis commands (billable/request: ${missCosts || 'no case missed'})`,
        ok: missCases.length > 0 && missCases.every(([, found]) => total(found.billable ?? new Map()) / SEQUENTIAL <= MISS_BILLABLE_LIMIT),
      },
      {
        label: `commands: the second fresh instance answered all ${SEQUENTIAL} from Redis (x-cache: hit), with one GET each`,
        ok: only(redisHits.result.xCache, 'hit') && redisHits.commands.get('GET') === SEQUENTIAL,
      },
      {
        label: `commands: every GET of the memory-less app read the Redis tier once (${reportReads(memorylessHits.commands)} reads for ${SEQUENTIAL})`,
        ok: memorylessHits.commands.get('GET') === SEQUENTIAL && reportReads(memorylessHits.commands) === SEQUENTIAL,
      },
    );

    // ------------------------------------------------ 3. stampede
    progress(`stampede: ${STAMPEDE} concurrent GETs of one report, fresh cached instance, then the memory-less app`);
    const stampedeCached = await commandsDuring(cachedRedis.stats, () => burst(`${freshStampede.baseUrl}/reports/${stampedeId}`, STAMPEDE, auth));
    const stampedeMemoryless = await commandsDuring(memorylessRedis.stats, () => burst(memorylessUrl, STAMPEDE, auth));
    const cachedLookups = stampedeCached.commands.get(JOB_LOOKUP) ?? 0;
    const cachedTierReads = stampedeCached.commands.get('GET') ?? 0;
    const memorylessReads = reportReads(stampedeMemoryless.commands);
    const stampedeRow = (label: string, found: CommandsDuring<Answers>, baseline: string, readsBaseline: number): Row => {
      const reads = reportReads(found.commands);
      return {
        case: `stampede, ${STAMPEDE} concurrent GETs of one report`,
        measure: label,
        n: total(found.result.statuses),
        responses: formatCounts(found.result.statuses),
        'x-cache': countsOrNone(found.result.xCache),
        'commands/request': (total(found.commands) / STAMPEDE).toFixed(2),
        commands: `total: ${countsOrNone(found.commands)} (burst took ${(found.result.elapsedMs / 1000).toFixed(2)} s)`,
        [READS_LABEL]: reads,
        baseline,
        '× reads': formatRatio(reads, readsBaseline),
      };
    };
    rows.push(
      stampedeRow(`memory-less app (CACHE_MAX_VALUE_KB=${MEMORYLESS_MAX_VALUE_KB})`, stampedeMemoryless, '(baseline)', memorylessReads),
      stampedeRow('fresh cached instance: empty memory tier, a completed report nobody read', stampedeCached, 'memory-less app', memorylessReads),
    );
    progress(`stampede: cached ${cachedTierReads} GET + ${cachedLookups} ${JOB_LOOKUP}, memory-less ${memorylessReads} reads`);
    checks.push(
      { label: 'stampede: every GET answered 200', ok: only(stampedeCached.result.statuses, '200') && only(stampedeMemoryless.result.statuses, '200') },
      {
        label: `stampede: the fresh cached instance looked the report up once (${cachedTierReads} GET, ${cachedLookups} ${JOB_LOOKUP})`,
        ok: cachedTierReads <= 1 && cachedLookups <= 1,
      },
    );

    notes.push(
      `Setup: five redis-servers; the cached app (APP_ROLE=all, default CACHE_* settings) with three fresh APP_ROLE=web instances on its Redis; the memory-less app (APP_ROLE=all, CACHE_MAX_VALUE_KB=${MEMORYLESS_MAX_VALUE_KB}); an APP_ROLE=web instance alone on its Redis, with no worker, so its reports stay queued; the docs recipe (bench/docs-recipe: RECIPE_ROLE=all, with a fresh RECIPE_ROLE=web instance on its Redis) and a recipe web instance alone on its Redis. None sees another's cache entries or commands. ` +
        `Every report has ${SALES_LINES} sale lines with distinct SKUs; its completed view is ${cachedReport.bytes} B of JSON, over 1 KB, so the memory-less app never keeps it in memory: the worker stores it in the Redis tier (CacheService.setOrThrow, bounded by the result limit, not CACHE_MAX_VALUE_KB) and removes the job, so every GET there is a Redis-tier hit. (Before results moved to the cache, this app read the job on every GET and served as the uncached baseline; a report is no longer anywhere but in the cache once completed, so the miss path is measured on queued reports instead.)`,
      `The docs recipe wires CacheModule.registerAsync with stores [Keyv(KeyvCacheableMemory { ttl 60 s, lruSize 5000 }), KeyvRedis(REDIS_URL)] as the docs show, CacheInterceptor on GET /reports/:id after the docs' AuthGuard, and GET reads the job (queue.getJob + job.getState). CacheInterceptor keys by URL only and caches whatever the route answered first with no expiry in Redis, "queued" too: so its reports are read only once completed (its notification passed), except in the queued case, which shows what that costs. Its memory store keeps an entry ${RECIPE_MEMORY_TTL_S} s and cache-manager's get does not put a Redis hit back into memory, so after that minute every hit of the recipe is a Redis GET (the "over its memory store's ${RECIPE_MEMORY_TTL_S} s" row, and most of its throughput rounds). Its requests are slower than ours mostly for another reason: the docs' AuthGuard passes the secret to verifyAsync as a string, so jsonwebtoken first tries crypto.createPublicKey on it and throws on every request (about a third of the recipe web's main-thread samples in a CPU profile); ours hands @nestjs/jwt a KeyObject (src/auth/auth.module.ts).`,
      `Throughput: global fetch (undici) with ${CONCURRENCY} requests in flight over ${CONCURRENCY} keep-alive connections, from the bench process on the same machine. ` +
        `${ROUNDS} rounds × ${SLICE_MS / 1000} s per route, the order rotated each round, after ${WARMUP_MS / 1000} s of warm-up per route; rps = responses ÷ the routes' summed loop time; × columns divide by GET ${CONSTANT_ROUTE} of the same app process in the same rounds (the docs recipe's runs in its own process, so its × compares two processes). ` +
        `The baseline GET ${CONSTANT_ROUTE} is added to the cached app's process by bench/constant-route-app.ts (the app as dist/main.js builds it, plus that one controller): it runs the same JWT guard and answers the same ${cachedReport.bytes} B report view, held as a constant object, so both serialise the same JSON. ` +
        'GET /health/live (no guard, ~40 B) and GET /auth/me (the guard, ~40 B) show what the guard and the body size cost on their own.',
      `x-cache was checked on ${HEADER_SAMPLE} sequential GETs per route before and after the throughput rounds (the load loops themselves do not read headers). The docs recipe's CacheInterceptor sends an X-Cache header of its own (HIT/MISS), shown as it comes.`,
      `Commands: every case is counted twice on the app's own redis-server. INFO commandstats before and after, minus the first INFO, counts every command the server ran, calls inside Lua scripts too ("commands/request"); a MONITOR started after the throughput rounds counts what the clients sent between two ECHO markers, without AUTH, HELLO, SELECT, COMMAND, CONFIG, INFO, PING, RESET, QUIT ("billable/request": what Upstash bills, a script being one command). The idle window shows what the server runs with no requests (background noise). ` +
        `The reports of ours' first-read, Redis-hit and stampede cases were POSTed through a web instance while the cached app (their worker) was stopped (SIGSTOP), so that no POST found its report completed and cached the view, then waited for through their report:completed notification (a pattern subscription on the Redis): none was read before its case. The recipe's were POSTed to it and waited for the same way. A miss is a GET the cache did not answer: x-cache miss, or no x-cache (an answer not cacheable yet, e.g. queued).`,
      `Stampede: ${STAMPEDE} fetches started at once (up to ${STAMPEDE} connections). The cached side is an APP_ROLE=web instance that had served no request before, and the report was never read, so nothing but its Redis-tier entry, if the worker wrote one, holds it; concurrent requests share one in-flight lookup (CacheService.getOrSet) or hit memory. ` +
        `The memory-less app also shares in-flight reads per key (getOrSet coalesces whether or not the value is then kept in memory), so its reads count the waves of concurrent requests, not the requests. ` +
        'A request that joined the in-flight lookup answers x-cache: miss (its source is the loader), so the x-cache counts of the stampede overstate the lookups.',
    );
    notes.push(splitNote);
    for (const [label, measuredRoute] of [
      [`GET ${CONSTANT_ROUTE}`, constant],
      ['GET /health/live', live],
      ['GET /auth/me', authOnly],
      ['cached GET', cached],
      ['Redis-hit GET', redisOnly],
      ['docs recipe GET', recipeHits],
    ] as const) {
      if (measuredRoute.capped > 0) notes.push(`${label}: ${measuredRoute.capped} slice(s) hit the ${SLICE_MAX_REQUESTS}-request cap before the time limit.`);
    }
    return { rows, notes, checks };
  } finally {
    await resources.close();
    await rm(bodyDir, { recursive: true, force: true });
  }
}

function billablePerRequest(found: CommandsDuring<Answers>): string {
  return (total(found.billable ?? new Map()) / Math.max(1, total(found.result.statuses))).toFixed(2);
}
