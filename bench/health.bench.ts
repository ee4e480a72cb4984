import { AppProcess } from '../test/support/app-process';
import { freePort } from '../test/support/free-port';
import { RedisServer } from '../test/support/redis-server';
import {
  BenchResult,
  Check,
  formatCounts,
  formatMs,
  formatRatio,
  httpLoad,
  interleavedLoad,
  LoadOptions,
  LoadResult,
  nodeStartupMs,
  progress,
  Resources,
  Row,
  summarize,
} from './support';

export const name = 'health';
export const title = 'GET /health latency (Redis up, down, frozen) and boot-to-ready time';

const SEQUENTIAL_REQUESTS = 2_000;
const WARMUP_REQUESTS = 200;
const ROUNDS = 4;
const FROZEN_REQUESTS = 20;
const FROZEN_LIVE_REQUESTS = 200;
const BOOTS = 5;
/** Frozen Redis: each probe may wait for its 1 s PING timeout, and must answer within this. */
const FROZEN_DEADLINE_MS = 2_000;
/** Redis down past the grace period: /health must not wait on Redis at all. */
const DOWN_P99_LIMIT_MS = 100;
const LINE_TIMEOUT_MS = 30_000;
/** PING_TIMEOUT_MS of src/health/redis.health.ts (not imported: benches never load Nest modules). */
const PING_TIMEOUT_MS = 1_000;
const SAME_APP_LIVE = 'GET /health/live, same app';

const READY_LINE = /ready in \d+ ms/;
const LISTENING_LINE = /listening on http/;

interface Section {
  rows: Row[];
  checks: Check[];
  notes: string[];
}

interface Baseline {
  label: string;
  p50: number;
  p99: number;
}

function baselineOf(label: string, result: LoadResult): Baseline {
  const { p50, p99 } = summarize(result.samples);
  return { label, p50, p99 };
}

/** Without a baseline the row is one: its ratios are 1.00×. */
function latencyRow(scenario: string, request: string, result: LoadResult, baseline?: Baseline): Row {
  const own = summarize(result.samples);
  const base = baseline ?? { label: '(baseline)', p50: own.p50, p99: own.p99 };
  return {
    case: scenario,
    measure: request,
    n: own.n,
    responses: formatCounts(result.statuses),
    'p50 ms': formatMs(own.p50),
    'p99 ms': formatMs(own.p99),
    'max ms': formatMs(own.max),
    baseline: base.label,
    '× p50': formatRatio(own.p50, base.p50),
    '× p99': formatRatio(own.p99, base.p99),
  };
}

function only(result: LoadResult, status: string): boolean {
  return result.statuses.size === 1 && result.statuses.has(status);
}

function cutShort(label: string, result: LoadResult): string[] {
  return result.timedOut ? [`${label}: the time limit ended the loop after ${result.samples.length} requests`] : [];
}

function load(app: AppProcess, path: string, requests: number, timeLimitMs: number, requestTimeoutMs = 5_000): LoadOptions {
  return { url: `${app.baseUrl}${path}`, requests, timeLimitMs, requestTimeoutMs };
}

/** /health against /health/live, sequential, interleaved in rounds, after a warm-up of both. */
async function compareSequential(app: AppProcess, scenario: string): Promise<{ live: LoadResult; health: LoadResult; rows: Row[] }> {
  await httpLoad(load(app, '/health/live', WARMUP_REQUESTS, 10_000));
  await httpLoad(load(app, '/health', WARMUP_REQUESTS, 10_000));
  const [live, health] = await interleavedLoad(load(app, '/health/live', SEQUENTIAL_REQUESTS, 30_000), load(app, '/health', SEQUENTIAL_REQUESTS, 60_000), ROUNDS);
  const rows = [latencyRow(scenario, 'GET /health/live', live), latencyRow(scenario, 'GET /health', health, baselineOf(SAME_APP_LIVE, live))];
  return { live, health, rows };
}

async function redisUpAndFrozen(redis: RedisServer, resources: Resources): Promise<{ up: Section; frozen: Section }> {
  const app = resources.add(await AppProcess.start({ REDIS_URL: redis.url(), LOG_LEVEL: 'log' }), 'app (Redis up)', (a) => a.stop());
  await app.waitForLines(READY_LINE, 3, LINE_TIMEOUT_MS);

  progress(`Redis up: ${SEQUENTIAL_REQUESTS} sequential GET /health and /health/live`);
  const up = await compareSequential(app, 'Redis up');

  progress(`Redis frozen (SIGSTOP): ${FROZEN_LIVE_REQUESTS} GET /health/live, ${FROZEN_REQUESTS} GET /health`);
  redis.pause();
  let live: LoadResult;
  let health: LoadResult;
  try {
    live = await httpLoad(load(app, '/health/live', FROZEN_LIVE_REQUESTS, 10_000));
    health = await httpLoad(load(app, '/health', FROZEN_REQUESTS, 60_000, 5_000));
  } finally {
    redis.resume();
  }
  // Let the clients settle before the app is stopped, so shutdown QUITs cleanly.
  await app.request('/health');

  const slowest = summarize(health.samples).max;
  return {
    up: {
      rows: up.rows,
      checks: [
        { label: 'Redis up: every GET /health answered 200', ok: only(up.health, '200') },
        { label: 'Redis up: every GET /health/live answered 200', ok: only(up.live, '200') },
      ],
      notes: [...cutShort('Redis up, /health/live', up.live), ...cutShort('Redis up, /health', up.health)],
    },
    frozen: {
      rows: [
        latencyRow('Redis frozen', 'GET /health/live', live, baselineOf('GET /health/live, Redis up', up.live)),
        latencyRow('Redis frozen', 'GET /health', health, { label: `PING timeout (${PING_TIMEOUT_MS} ms)`, p50: PING_TIMEOUT_MS, p99: PING_TIMEOUT_MS }),
      ],
      checks: [
        {
          label: `Redis frozen: every GET /health answered (no timeout) in < ${FROZEN_DEADLINE_MS / 1000} s (slowest ${formatMs(slowest)} ms)`,
          ok: !health.statuses.has('error') && slowest < FROZEN_DEADLINE_MS,
        },
      ],
      notes: cutShort('Redis frozen, /health', health),
    },
  };
}

async function redisDown(resources: Resources): Promise<Section> {
  const port = await freePort();
  const env = { REDIS_URL: `redis://127.0.0.1:${port}`, LOG_LEVEL: 'log', HEALTH_REDIS_GRACE_SECONDS: '0' };
  const app = resources.add(await AppProcess.start(env), 'app (Redis down)', (a) => a.stop());
  await app.waitForLines(/cannot connect/, 3, LINE_TIMEOUT_MS);

  progress(`Redis down (nothing on port ${port}, grace 0): ${SEQUENTIAL_REQUESTS} sequential GET /health and /health/live`);
  const { live, health, rows } = await compareSequential(app, 'Redis down, past grace');
  const p99 = summarize(health.samples).p99;
  return {
    rows,
    checks: [
      { label: 'Redis down: every GET /health answered 503', ok: only(health, '503') },
      { label: `Redis down: GET /health p99 < ${DOWN_P99_LIMIT_MS} ms (${formatMs(p99)} ms)`, ok: p99 < DOWN_P99_LIMIT_MS },
    ],
    notes: [...cutShort('Redis down, /health/live', live), ...cutShort('Redis down, /health', health)],
  };
}

async function boots(redis: RedisServer, resources: Resources): Promise<Section> {
  progress(`boot: ${BOOTS} × (node -e, app with Redis up)`);
  const baseline: number[] = [];
  const listening: number[] = [];
  const ready: number[] = [];
  // Alternated, so both see the same machine state.
  for (let i = 0; i < BOOTS; i++) {
    baseline.push(await nodeStartupMs());
    // From just before the spawn (AppProcess.start picks a free port first: well under a millisecond).
    const started = performance.now();
    const app = resources.add(await AppProcess.start({ REDIS_URL: redis.url(), LOG_LEVEL: 'log' }, { waitForListening: false }), `app (boot ${i + 1})`, (a) => a.stop());
    // Both waits run at once so each records when its own line arrived, whichever comes first.
    const [listenedAt, readyAt] = await Promise.all([
      app.waitForLine(LISTENING_LINE, LINE_TIMEOUT_MS).then(() => performance.now()),
      app.waitForLines(READY_LINE, 3, LINE_TIMEOUT_MS).then(() => performance.now()),
    ]);
    listening.push(listenedAt - started);
    ready.push(readyAt - started);
    await app.stop();
  }

  const base = summarize(baseline);
  const row = (measure: string, samples: number[]): Row => {
    const own = summarize(samples);
    return {
      case: `boot (${BOOTS}×)`,
      measure,
      n: own.n,
      responses: '',
      'p50 ms': formatMs(own.p50),
      'p99 ms': formatMs(own.p99),
      'max ms': formatMs(own.max),
      baseline: measure.startsWith('node -e') ? '(baseline)' : 'node -e start',
      '× p50': formatRatio(own.p50, base.p50),
      '× p99': formatRatio(own.p99, base.p99),
    };
  };
  return {
    rows: [row('node -e: spawn → first line', baseline), row('app: spawn → "listening on http"', listening), row('app: spawn → 3 × Redis "ready in"', ready)],
    checks: [],
    notes: [],
  };
}

export async function run(): Promise<BenchResult> {
  const resources = new Resources();
  try {
    const redis = resources.add(await RedisServer.start(), 'redis-server', (server) => server.stop());
    const { up, frozen } = await redisUpAndFrozen(redis, resources);
    const down = await redisDown(resources);
    const boot = await boots(redis, resources);
    const sections = [up, down, frozen, boot];
    return {
      rows: sections.flatMap((section) => section.rows),
      checks: sections.flatMap((section) => section.checks),
      notes: [
        `Latency: wall time of one request including reading the body, over one keep-alive connection (global fetch), requests sent one at a time. ` +
          `/health and /health/live alternate in ${ROUNDS} rounds after ${WARMUP_REQUESTS} warm-up requests each; × columns divide by /health/live of the same app.`,
        'Redis up: /health PINGs all three Redis clients (command, queue, subscriber), so its cost over /health/live is three local round trips plus Terminus.',
        `Redis down: REDIS_URL points at a port where nothing listens and HEALTH_REDIS_GRACE_SECONDS=0, so every client is reported down without a PING.`,
        `Redis frozen: redis-server SIGSTOPped with the connections open; each /health waits for its ${PING_TIMEOUT_MS} ms PING timeout (its baseline), /health/live is compared with Redis up. ${FROZEN_REQUESTS} requests; the default 20 s grace period applies (200 = degraded, 503 = down).`,
        `Boot: ${BOOTS} boots, alternating with the node -e baseline; p50 is the median, p99 of ${BOOTS} samples is the slowest. "ready in" lines are printed once per Redis client.`,
        ...sections.flatMap((section) => section.notes),
      ],
    };
  } finally {
    await resources.close();
  }
}
