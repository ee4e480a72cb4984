import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { AppProcess } from '../test/support/app-process';

export type Cell = string | number;
export type Row = Record<string, Cell>;

export interface Check {
  label: string;
  ok: boolean;
}

export interface BenchResult {
  /** One table per suite: the columns are the union of the rows' keys, in order of first appearance. */
  rows: Row[];
  notes?: string[];
  /** Pass/fail assertions about the run; any failure makes `npm run bench` exit 1. */
  checks?: Check[];
}

/** What a `*.bench.ts` module exports (the module namespace itself is the suite). */
export interface Suite {
  /** Short id: the CLI filter and the BENCHMARKS.md section marker. */
  readonly name: string;
  readonly title: string;
  run(): Promise<BenchResult>;
}

const SETPRIV = '/usr/bin/setpriv';

// ---------------------------------------------------------------- statistics

/** Nearest-rank percentile (p in 0..100) of samples; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function summarize(samples: readonly number[]): LatencySummary {
  return { n: samples.length, p50: percentile(samples, 50), p99: percentile(samples, 99), max: percentile(samples, 100) };
}

// ---------------------------------------------------------------- formatting

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 10) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return ms.toFixed(0);
}

export function formatRatio(value: number, baseline: number): string {
  if (!Number.isFinite(value) || !Number.isFinite(baseline) || baseline <= 0) return '–';
  const ratio = value / baseline;
  return `${ratio < 10 ? ratio.toFixed(2) : ratio.toFixed(1)}×`;
}

/** "200 ×1999, error ×1", most frequent first. */
export function formatCounts(counts: ReadonlyMap<string, number>): string {
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([key, count]) => `${key} ×${count}`)
    .join(', ');
}

function escapeCell(cell: Cell): string {
  return String(cell).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function markdownTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '_no results_';
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  const numeric = columns.map((column) => rows.every((row) => row[column] === undefined || /^[\d.,–-]+×?$/.test(String(row[column]))));
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    line(columns.map(escapeCell)),
    line(numeric.map((right) => (right ? '---:' : '---'))),
    ...rows.map((row) => line(columns.map((column) => escapeCell(row[column] ?? '')))),
  ].join('\n');
}

export function progress(message: string): void {
  process.stderr.write(`  · ${message}\n`);
}

// ---------------------------------------------------------------- HTTP load

export interface LoadOptions {
  /** Absolute URL; only http://127.0.0.1 is accepted. */
  url: string;
  /** Upper bound on requests sent. */
  requests: number;
  /** Upper bound on the whole loop's wall time: no new request starts after it. */
  timeLimitMs: number;
  /** Requests in flight at once; 1 = sequential. */
  concurrency?: number;
  /** Per-request deadline (aborts the request; counted as "error"). */
  requestTimeoutMs?: number;
  init?: RequestInit;
}

export interface LoadResult {
  /** Wall time of every request (response fully read, or failed), in ms. */
  samples: number[];
  /** HTTP status (as a string) or "error", with how many times it occurred. */
  statuses: Map<string, number>;
  elapsedMs: number;
  /** Whether the time limit, not the request count, ended the loop. */
  timedOut: boolean;
}

function assertLoopback(url: string): void {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' || parsed.hostname !== '127.0.0.1') {
    throw new Error(`bench load loops only target http://127.0.0.1, not ${parsed.origin}`);
  }
}

/** A bounded load loop with global fetch (keep-alive): stops at `requests` or `timeLimitMs`, whichever comes first. */
export async function httpLoad(options: LoadOptions): Promise<LoadResult> {
  assertLoopback(options.url);
  if (!(options.requests > 0) || !(options.timeLimitMs > 0)) throw new Error('httpLoad needs a positive request count and time limit');
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 1, options.requests));
  const requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
  const samples: number[] = [];
  const statuses = new Map<string, number>();
  const count = (key: string) => statuses.set(key, (statuses.get(key) ?? 0) + 1);
  const started = performance.now();
  const deadline = started + options.timeLimitMs;
  let issued = 0;
  let timedOut = false;

  const worker = async (): Promise<void> => {
    for (;;) {
      if (issued >= options.requests) return;
      if (performance.now() >= deadline) {
        timedOut = true;
        return;
      }
      issued += 1;
      const t0 = performance.now();
      try {
        const response = await fetch(options.url, { ...options.init, signal: AbortSignal.timeout(requestTimeoutMs) });
        await response.arrayBuffer();
        count(String(response.status));
      } catch {
        count('error');
      }
      samples.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  return { samples, statuses, elapsedMs: performance.now() - started, timedOut };
}

/** Runs the loops in `rounds` alternating slices (a, b, a, b…) so drift (CPU boost, GC, other load) hits both alike. */
export async function interleavedLoad(a: LoadOptions, b: LoadOptions, rounds: number): Promise<[LoadResult, LoadResult]> {
  const merged: [LoadResult, LoadResult] = [emptyResult(), emptyResult()];
  const slices = [a, b].map((options) => ({
    ...options,
    requests: Math.max(1, Math.ceil(options.requests / rounds)),
    timeLimitMs: Math.max(1, options.timeLimitMs / rounds),
  }));
  for (let round = 0; round < rounds; round++) {
    for (const index of [0, 1] as const) {
      const result = await httpLoad(slices[index]);
      const target = merged[index];
      target.samples.push(...result.samples);
      for (const [key, n] of result.statuses) target.statuses.set(key, (target.statuses.get(key) ?? 0) + n);
      target.elapsedMs += result.elapsedMs;
      target.timedOut ||= result.timedOut;
    }
  }
  return merged;
}

function emptyResult(): LoadResult {
  return { samples: [], statuses: new Map(), elapsedMs: 0, timedOut: false };
}

// ---------------------------------------------------------------- processes

/**
 * ms from spawning `node -e` (through setpriv when present, as AppProcess does) to its first output line:
 * the cost of starting any Node process, the baseline for boot times.
 */
export function nodeStartupMs(timeoutMs = 10_000): Promise<number> {
  const node = [process.execPath, '-e', 'console.log("ready")'];
  const args = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...node] : node;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node -e printed nothing within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.once('data', () => {
      const elapsed = performance.now() - started;
      clearTimeout(timer);
      child.once('exit', () => resolve(elapsed));
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** /proc/PID/stat counts CPU time in USER_HZ ticks, 100 a second on Linux. */
const USER_HZ = 100;

/**
 * CPU time (user + system, all threads) a process has used so far, in ms, from /proc/PID/stat (10 ms
 * resolution); undefined where there is no /proc or the process is gone.
 */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the parenthesised command name: state is [0], utime [11], stime [12].
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

/**
 * Things to stop when a suite ends, also on error: closed in reverse order of registration,
 * every one attempted even if an earlier one fails.
 */
export class Resources {
  private readonly closers: Array<{ label: string; close: () => Promise<unknown> }> = [];

  add<T>(resource: T, label: string, close: (resource: T) => Promise<unknown>): T {
    this.closers.push({ label, close: () => close(resource) });
    return resource;
  }

  async close(): Promise<void> {
    for (const { label, close } of this.closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        process.stderr.write(`  ! stopping ${label} failed: ${error instanceof Error ? error.message : String(error)}\n`);
      }
    }
  }
}

/** Calls per name (Redis command, status code, ...). */
export type Counts = Map<string, number>;

export function count(counts: Counts, key: string, n = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + n);
}

export function total(counts: ReadonlyMap<string, number>): number {
  let sum = 0;
  for (const n of counts.values()) sum += n;
  return sum;
}

/** Calls per command from INFO commandstats (subcommands as e.g. CLIENT|SETNAME). */
export async function commandStats(client: Redis): Promise<Counts> {
  const text = await client.info('commandstats');
  const stats: Counts = new Map();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats.set(match[1].toUpperCase(), Number(match[2]));
  return stats;
}

// ---------------------------------------------------------------- the docs-recipe app

const DOCS_RECIPE_TSCONFIG = join(process.cwd(), 'bench', 'docs-recipe', 'tsconfig.json');
/** Where tsc writes it (dist/ is git-ignored; `nest build` empties it first, so the recipe is built after). */
const DOCS_RECIPE_MAIN = join(process.cwd(), 'dist', 'docs-recipe', 'bench', 'docs-recipe', 'main.js');
const DOCS_RECIPE_BUILD_TIMEOUT_MS = 300_000;
let docsRecipeBuild: Promise<void> | undefined;

/** Compiles bench/docs-recipe with tsc, once per bench process (Nest's injection needs tsc's decorator metadata). */
export function buildDocsRecipe(): Promise<void> {
  docsRecipeBuild ??= new Promise((resolve, reject) => {
    const tsc = join(process.cwd(), 'node_modules', 'typescript', 'bin', 'tsc');
    execFile(process.execPath, [tsc, '-p', DOCS_RECIPE_TSCONFIG], { timeout: DOCS_RECIPE_BUILD_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) reject(new Error(`building the docs-recipe app failed: ${error.message}\n${stdout}${stderr}`));
      else resolve();
    });
  });
  return docsRecipeBuild;
}

export type DocsRecipeRole = 'web' | 'worker' | 'all';

/**
 * The docs-recipe app (bench/docs-recipe) as a process, like AppProcess starts ours: resolves once it listens.
 * `wrapper` runs it under e.g. valgrind.
 */
export async function startDocsRecipe(env: { REDIS_URL: string; JWT_SECRET: string }, role: DocsRecipeRole, options: { wrapper?: string[]; listenTimeoutMs?: number } = {}): Promise<AppProcess> {
  await buildDocsRecipe();
  return AppProcess.start({ ...env, RECIPE_ROLE: role }, { nodeArgs: [DOCS_RECIPE_MAIN], ...options });
}

// ---------------------------------------------------------------- notifications

/** The event every setup sends the author once a report is completed (ours: REPORT_COMPLETED of src/reports). */
export const REPORT_COMPLETED_EVENT = 'report:completed';
const EVENT_BYTES = Buffer.from(REPORT_COMPLETED_EVENT);

/**
 * Counts report:completed notifications as they pass through Redis: every setup (ours, the docs recipe, the bare
 * worker) sends one PUBLISH per completed report through the Socket.io Redis adapter's channels, so this sees
 * completions without reading BullMQ's job hashes (which ours removes on completion). A pattern subscription on
 * the setup's own redis-server; `times` holds each arrival (performance.now(), ms).
 */
export class NotificationListener {
  readonly times: number[] = [];
  private readonly waiters = new Set<{ count: number; resolve: () => void }>();

  private constructor(private readonly subscriber: Redis) {
    subscriber.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, message: Buffer) => {
      if (!message.includes(EVENT_BYTES)) return;
      this.times.push(performance.now());
      for (const waiter of [...this.waiters]) if (this.times.length >= waiter.count) waiter.resolve();
    });
  }

  static async start(port: number): Promise<NotificationListener> {
    const subscriber = new Redis(port, '127.0.0.1', { connectionName: 'bench-notification-listener' });
    await subscriber.psubscribe('*');
    return new NotificationListener(subscriber);
  }

  get count(): number {
    return this.times.length;
  }

  /** Resolves once `count` notifications have arrived in all; undefined if that took longer than timeoutMs. */
  async waitFor(count: number, timeoutMs: number): Promise<number | undefined> {
    if (this.times.length >= count) return this.times[count - 1];
    let timer: NodeJS.Timeout | undefined;
    let waiter: { count: number; resolve: () => void } | undefined;
    const arrived = await new Promise<boolean>((resolve) => {
      waiter = { count, resolve: () => resolve(true) };
      this.waiters.add(waiter);
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    clearTimeout(timer);
    if (waiter) this.waiters.delete(waiter);
    return arrived ? this.times[count - 1] : undefined;
  }

  async stop(): Promise<void> {
    this.subscriber.disconnect();
  }
}
