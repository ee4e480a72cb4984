import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import type { ReportRequest, SaleLine } from '../src/reports/report-request';
import { computeSalesSummary } from '../src/reports/sales-summary';
import { AppProcess } from '../test/support/app-process';
import type { RedisServer } from '../test/support/redis-server';

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
const CHILD_STOP_TIMEOUT_MS = 15_000;
/** Bounds a monitor's memory: events past this are only counted as overflow. */
export const MONITOR_EVENT_LIMIT = 2_000_000;
/** Upstash bills every command except these. */
export const UNBILLED = new Set(['AUTH', 'HELLO', 'SELECT', 'COMMAND', 'CONFIG', 'INFO', 'PING', 'RESET', 'QUIT']);

// ---------------------------------------------------------------- knobs

/** A whole number from the environment (a suite's BENCH_* knob), `fallback` when unset; throws outside min..max. */
export function envInteger(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  return value;
}

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

function withDeathSignal(command: string, args: string[]): [string, string[]] {
  return existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args]] : [command, args];
}

// ---------------------------------------------------------------- child processes

/** A spawned helper process (redis-cli monitor, bare worker): its lines go to `onLine`; stopped with SIGTERM, then SIGKILL. */
export class Child {
  readonly exited: Promise<void>;
  private readonly tail: string[] = [];
  private readonly waiters = new Set<{ pattern: RegExp; resolve: () => void }>();
  private done = false;

  private constructor(
    readonly label: string,
    private readonly child: ChildProcess,
    private readonly onLine?: (line: string) => void,
  ) {
    let pending = '';
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) this.line(line);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => this.remember(chunk.toString().trimEnd()));
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (pending) this.line(pending);
        this.done = true;
        resolve();
      });
      child.once('error', (error) => {
        this.remember(`[spawn] ${error.message}`);
        if (child.pid === undefined) {
          this.done = true;
          resolve();
        }
      });
    });
  }

  static spawn(label: string, command: string, args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Child {
    const [file, argv] = withDeathSignal(command, args);
    return new Child(label, spawn(file, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] }), onLine);
  }

  /** setpriv execs the command, so this is the command's own pid. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get output(): string {
    return this.tail.join('\n');
  }

  waitForLine(pattern: RegExp, timeoutMs: number): Promise<void> {
    if (this.tail.some((line) => pattern.test(line))) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = { pattern, resolve: () => finish() };
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(() => finish(new Error(`${this.label}: no line matching ${pattern} within ${timeoutMs} ms:\n${this.output}`)), timeoutMs);
      this.waiters.add(waiter);
      void this.exited.then(() => {
        if (this.waiters.has(waiter)) finish(new Error(`${this.label} exited before printing ${pattern}:\n${this.output}`));
      });
    });
  }

  async stop(timeoutMs = CHILD_STOP_TIMEOUT_MS): Promise<void> {
    if (this.done) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  private line(line: string): void {
    if (this.onLine) this.onLine(line);
    else this.remember(line);
    for (const waiter of [...this.waiters]) if (waiter.pattern.test(line)) waiter.resolve();
  }

  private remember(line: string): void {
    if (line === '') return;
    this.tail.push(line);
    if (this.tail.length > 200) this.tail.shift();
  }
}

function withDeadline<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not seen within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- MONITOR

interface MonitorEvent {
  atMs: number;
  label: string;
  billable: boolean;
  /** A redis.call inside a script: not client-issued, not billed separately. */
  lua: boolean;
}

const MONITOR_LINE = /^(\d+\.\d+) \[\d+ ([^\]]+)\] (.*)$/;
const QUOTED = /"((?:[^"\\]|\\.)*)"/g;

/** Last part of a key, e.g. "pharmacare:jobs:stalled-check" -> "stalled-check": tells BullMQ's scripts apart. */
function keySuffix(key: string | undefined): string {
  if (key === undefined) return '?';
  const parts = key.split(':');
  return parts[parts.length - 1] || key;
}

/** The command name; scripts are labelled by their first key (EVALSHA) or function (FCALL). */
function commandLabel(tokens: string[]): string {
  const command = (tokens[0] ?? '?').toUpperCase();
  if ((command === 'EVALSHA' || command === 'EVAL' || command === 'EVALSHA_RO' || command === 'EVAL_RO') && Number(tokens[2]) > 0) {
    return `${command} ${keySuffix(tokens[3])}`;
  }
  if (command === 'FCALL' || command === 'FCALL_RO') return `${command} ${tokens[1] ?? '?'}`;
  return command;
}

/** `redis-cli monitor` on one server: every client-issued command with its server timestamp (Lua-internal calls skipped). */
export class Monitor {
  readonly events: MonitorEvent[] = [];
  overflow = 0;
  private readonly child: Child;
  private readonly markers = new Map<string, (atMs: number) => void>();

  constructor(
    readonly label: string,
    redis: RedisServer,
  ) {
    this.child = Child.spawn(`redis-cli monitor (${label})`, 'redis-cli', [...redis.cliArgs(), 'monitor'], { PATH: process.env.PATH ?? '' }, (line) => this.onLine(line));
  }

  /** Resolves once MONITOR answered OK, so nothing after this is missed. */
  ready(): Promise<void> {
    return this.child.waitForLine(/^OK$/, 5_000);
  }

  stop(): Promise<void> {
    return this.child.stop();
  }

  /**
   * The server time at which Redis ran an ECHO sent now through `client`, once MONITOR has shown it: everything
   * Redis ran before it has been seen by then. Two of these bound a measurement exactly (the markers themselves
   * are not recorded as events).
   */
  async mark(client: Redis): Promise<number> {
    const marker = `bench-monitor-mark-${randomBytes(6).toString('hex')}`;
    const seen = new Promise<number>((resolve) => this.markers.set(marker, resolve));
    await client.echo(marker);
    return withDeadline(seen, 5_000, marker);
  }

  /** Commands by label in [fromMs, toMs). */
  counts(fromMs: number, toMs: number): { billable: Map<string, number>; unbilled: Map<string, number>; lua: number } {
    const billable = new Map<string, number>();
    const unbilled = new Map<string, number>();
    let lua = 0;
    for (const event of this.events) {
      if (event.atMs < fromMs || event.atMs >= toMs) continue;
      if (event.lua) {
        lua += 1;
        continue;
      }
      const target = event.billable ? billable : unbilled;
      target.set(event.label, (target.get(event.label) ?? 0) + 1);
    }
    return { billable, unbilled, lua };
  }

  private onLine(line: string): void {
    const match = MONITOR_LINE.exec(line);
    if (!match) return; // "OK" and anything unexpected
    if (this.events.length >= MONITOR_EVENT_LIMIT) {
      this.overflow += 1;
      return;
    }
    const tokens = [...match[3].matchAll(QUOTED)].slice(0, 4).map((m) => m[1]);
    const marked = tokens[0]?.toUpperCase() === 'ECHO' ? this.markers.get(tokens[1] ?? '') : undefined;
    if (marked) {
      this.markers.delete(tokens[1]);
      marked(Number(match[1]) * 1000);
      return;
    }
    const label = commandLabel(tokens);
    const command = label.split(' ')[0];
    this.events.push({ atMs: Number(match[1]) * 1000, label, billable: !UNBILLED.has(command), lua: match[2] === 'lua' });
  }
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
export async function startDocsRecipe(
  env: { REDIS_URL: string; JWT_SECRET: string },
  role: DocsRecipeRole,
  options: { wrapper?: string[]; listenTimeoutMs?: number } = {},
): Promise<AppProcess> {
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

  private constructor(private readonly subscriber: Redis | Cluster) {
    const onMessage = (message: Buffer) => {
      if (!message.includes(EVENT_BYTES)) return;
      this.times.push(performance.now());
      for (const waiter of [...this.waiters]) if (this.times.length >= waiter.count) waiter.resolve();
    };
    subscriber.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, message: Buffer) => onMessage(message));
    subscriber.on('smessageBuffer', (_channel: Buffer, message: Buffer) => onMessage(message));
  }

  /** Every classic PUBLISH of one Redis (the Socket.io adapter and emitter on a single Redis). */
  static async start(port: number): Promise<NotificationListener> {
    const subscriber = new Redis(port, '127.0.0.1', { connectionName: 'bench-notification-listener' });
    await subscriber.psubscribe('*');
    return new NotificationListener(subscriber);
  }

  /**
   * On a Cluster the app uses the sharded Socket.io adapter, which SPUBLISHes each room's events to a channel of its
   * own: no pattern reaches them, so the listener subscribes to the rooms' channels, each on its shard.
   */
  static async startSharded(port: number, channels: readonly string[]): Promise<NotificationListener> {
    const subscriber = new Cluster([{ host: '127.0.0.1', port }], { shardedSubscribers: true, redisOptions: { connectionName: 'bench-notification-listener' } });
    await Promise.all(channels.map((channel) => subscriber.ssubscribe(channel)));
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

/**
 * The per-tenant bounds on work in flight (QUEUE_TENANT_MAX_*), lifted: the suites queue thousands of jobs for one
 * tenant on purpose, which the defaults (20 jobs, 16 MB) refuse with 429.
 */
export const UNBOUNDED_TENANT_WORK = { QUEUE_TENANT_MAX_JOBS: '1000000', QUEUE_TENANT_MAX_PAYLOAD_MB: '1024' } as const;

// ---------------------------------------------------------------- reports

/** `lines` sale lines, different for every seed (so every seed has its own report id). */
export function reportRequest(seed: number, lines: number): ReportRequest {
  const sales: SaleLine[] = [];
  for (let i = 0; i < lines; i++) {
    sales.push({
      sku: `SKU-${seed}-${i % 7}`,
      quantity: 1 + ((seed + i) % 5),
      unitPrice: ((seed * 31 + i * 17) % 10_000) / 100,
      soldAt: new Date(Date.UTC(2026, 10, 1 + ((seed + i) % 28), i % 24, seed % 60)).toISOString(),
    });
  }
  return { type: 'sales-summary', sales };
}

/** Whether a report's result is what the app's own function computes for its request. */
export function sameResult(result: unknown, request: ReportRequest): boolean {
  return JSON.stringify(result) === JSON.stringify(computeSalesSummary(request.sales));
}

export interface PickupResult {
  /** ms from sending the report (POST /reports or Queue.add) to its report:completed passing through Redis. */
  latencies: number[];
  /** ms each POST /reports took to answer (HTTP pickups only). */
  postLatencies: number[];
  completed: number;
  correct: number;
  problems: string[];
}

export function emptyPickup(): PickupResult {
  return { latencies: [], postLatencies: [], completed: 0, correct: 0, problems: [] };
}

export interface PickupOptions {
  reports: number;
  /** Sale lines per report (reportRequest). */
  lines: number;
  /** The first report's seed; report i has seed firstSeed + i. */
  firstSeed: number;
  /** Between reports, so each one finds the worker back in its blocking wait. */
  pauseMs: number;
  /** How long a report may take from sending to its notification. */
  timeoutMs: number;
  /** The request headers of report i (its tenant's token). */
  headers: (index: number) => Record<string, string>;
}

/**
 * One report at a time through POST /reports of `web`; done when its report:completed passes through Redis
 * (`notifications`); then GET /reports/:id must answer its right result.
 */
export async function pickupThroughHttp(target: { web: AppProcess; notifications: NotificationListener }, options: PickupOptions): Promise<PickupResult> {
  const result = emptyPickup();
  for (let i = 0; i < options.reports; i++) {
    const request = reportRequest(options.firstSeed + i, options.lines);
    const headers = options.headers(i);
    const before = target.notifications.count;
    const sent = performance.now();
    const posted = await target.web.request('/reports', { method: 'POST', headers, body: JSON.stringify(request) });
    const answeredAt = performance.now();
    const id = (posted.body as { id?: unknown }).id;
    // 202 queued, or 200 when the worker was faster than the answer.
    if ((posted.status !== 202 && posted.status !== 200) || (typeof id !== 'string' && typeof id !== 'number')) {
      result.problems.push(`POST /reports #${i + 1}: ${posted.status} ${posted.text.slice(0, 200)}`);
      continue;
    }
    result.postLatencies.push(answeredAt - sent);
    const notifiedAt = await target.notifications.waitFor(before + 1, options.timeoutMs);
    if (notifiedAt === undefined) {
      result.problems.push(`report #${i + 1} ${id}: no ${REPORT_COMPLETED_EVENT} within ${options.timeoutMs} ms`);
      continue;
    }
    result.completed += 1;
    result.latencies.push(notifiedAt - sent);
    const view = await target.web.request(`/reports/${id}`, { headers });
    const body = view.body as { status?: unknown; result?: unknown };
    if (view.status === 200 && body.status === 'completed' && sameResult(body.result, request)) result.correct += 1;
    else result.problems.push(`report #${i + 1} ${id}: notified, then GET answered ${view.status} ${view.text.slice(0, 200)}`);
    await sleep(options.pauseMs);
  }
  return result;
}
