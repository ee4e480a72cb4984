import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { AppProcess } from '../test/support/app-process';
import { RedisServer } from '../test/support/redis-server';
import { JWT_SECRET, tokenFor } from '../test/support/reports-client';
import { PresenceClient } from '../test/support/socket-client';
import { BenchResult, Check, count, Counts, formatCounts, total, formatMs, formatRatio, median, progress, Resources, Row, summarize } from './support';

export const name = 'presence';
export const title = 'Presence over Socket.io: connect and disconnect storms of 2,000 sockets on 2 instances, Redis commands per connect and idle per minute';

// ---------------------------------------------------------------- knobs

/** Connect storm 1: TENANTS × USERS_PER_TENANT distinct users, one socket each; user u of every tenant on instance u % 2. */
const TENANTS = 200;
const USERS_PER_TENANT = 10;
/** Connect storm 2 (the tabs baseline): TAB_TENANTS × USERS_PER_TENANT users with TABS sockets each, all on the user's instance. */
const TAB_TENANTS = 100;
const TABS = 2;
/** The storm after an idle spell: AFTER_IDLE_TENANTS × USERS_PER_TENANT users, one socket each, as in storm 1. */
const AFTER_IDLE_TENANTS = 20;
/** Sockets whose connection is in flight at once during a storm. */
const CONNECT_IN_FLIGHT = 200;
/** Both app instances: heartbeat every PRESENCE_TTL_SECONDS / 3 = 4 s (default 45 s → 15 s), lease 8 s. */
const PRESENCE_TTL_SECONDS = 12;
/** Default 5 s; shortened so a disconnect storm settles in about a second. */
const PRESENCE_OFFLINE_GRACE_SECONDS = 1;
const HEARTBEAT_MS = Math.floor((PRESENCE_TTL_SECONDS * 1000) / 3);
/** Idle windows: a whole number of heartbeat intervals. */
const IDLE_WINDOW_MS = 5 * HEARTBEAT_MS;
/** Before an idle window: past the first heartbeat after the change (it may reap a lapsed instance). */
const IDLE_SETTLE_MS = HEARTBEAT_MS + 1_000;
/** After a connect storm's view is right: long enough for every instance to heartbeat at least once. */
const WATCH_MS = 2 * HEARTBEAT_MS;
/** Calibration: GET /presence requests, each expected to cost one HGETALL and nothing else. */
const CALIBRATION_REQUESTS = 50;
const CONNECT_TIMEOUT_MS = 60_000;
const VIEW_TIMEOUT_MS = 30_000;
const SNAPSHOT_TIMEOUT_MS = 15_000;
const POLL_CONCURRENCY = 16;
const POLL_INTERVAL_MS = 100;
const REQUEST_TIMEOUT_MS = 5_000;
/** After the last expected command (the view is right), for replies still on their way (PUBLISH after a script reply). */
const SETTLE_MS = 500;
const LINE_TIMEOUT_MS = 30_000;
const READY_LINE = /ready in \d+ ms/;
/** REDIS_KEY_PREFIX default: the presence keys are `<prefix>:presence:…` (src/presence/presence.scripts.ts). */
const PRESENCE_ROOT = 'pharmacare:presence:';
/** Idle check: 2,000 sockets against 1 socket per instance within ±10% or one heartbeat per busy instance. */
const IDLE_TOLERANCE = 0.1;

// ---------------------------------------------------------------- small helpers

function countsOrNone(counts: ReadonlyMap<string, number>): string {
  return [...counts.values()].some((n) => n !== 0) ? formatCounts(new Map([...counts].filter(([, n]) => n !== 0))) : 'none';
}

function per(n: number, of: number): string {
  return of > 0 ? (n / of).toFixed(2) : '–';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const pad = (n: number, width = 3) => String(n).padStart(width, '0');

// ---------------------------------------------------------------- Redis: commandstats and MONITOR

/** Calls per command from INFO commandstats (subcommands as e.g. CLIENT|SETNAME); counts commands run inside scripts too. */
function parseCommandStats(text: string): Counts {
  const stats: Counts = new Map();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats.set(match[1].toUpperCase(), Number(match[2]));
  return stats;
}

/** Which presence script an EVALSHA/EVAL is, from its keys (the layout in src/presence/presence.scripts.ts). */
function scriptKind(args: readonly string[]): string {
  const numberOfKeys = Number(args[2]);
  const firstKey = args[3] ?? '';
  const argv = args.length - 3 - numberOfKeys;
  if (firstKey === `${PRESENCE_ROOT}live`) {
    if (numberOfKeys === 3) return argv === 5 ? 'register' : 'deregister';
    return 'heartbeat';
  }
  if (firstKey.startsWith(`${PRESENCE_ROOT}held:`)) {
    if (numberOfKeys === 3) return 'release';
    if (numberOfKeys === 4) return argv === 3 ? 'acquire' : 'reap';
  }
  if (firstKey.startsWith(`${PRESENCE_ROOT}orphans:`)) return 'finish reap';
  if (firstKey === `${PRESENCE_ROOT}instances`) return 'reap previous release';
  return 'other script';
}

interface Window {
  elapsedMs: number;
  /** Commands sent by clients (the apps), by name, from MONITOR. */
  client: Counts;
  /** Commands run inside scripts, by name, from MONITOR (source "lua"). */
  lua: Counts;
  /** The client-issued EVALSHA/EVAL calls by presence script. */
  scripts: Counts;
  /** INFO commandstats delta, the bench's own INFO and ECHO markers taken out: client-issued and in-script alike. */
  stats: Counts;
}

/**
 * Counts the commands redis-server runs during an action, two ways: INFO commandstats (which also counts every
 * command run inside a script) and a MONITOR connection (which tells who sent each one: an app or a script).
 * The window is delimited by ECHO markers sent in the same pipeline as the INFO calls, so both views cover the
 * same commands; the bench's own connection is left out of the MONITOR counts.
 */
class CommandWatch {
  private current?: Window;
  private readonly markers = new Map<string, () => void>();
  private sequence = 0;

  private constructor(
    private readonly stats: Redis,
    private readonly ownAddress: string,
  ) {}

  static async start(resources: Resources, redis: RedisServer): Promise<CommandWatch> {
    const stats = resources.add(new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 1 }), 'stats client', (client) => client.quit());
    const info = await stats.client('INFO');
    const ownAddress = /(?:^| )addr=(\S+)/.exec(info)?.[1];
    if (ownAddress === undefined) throw new Error(`CLIENT INFO without addr=: ${info}`);
    const monitor = resources.add(await stats.monitor(), 'monitor client', async (client) => client.disconnect());
    const watch = new CommandWatch(stats, ownAddress);
    monitor.on('monitor', (_time: string, args: string[], source: string) => watch.onCommand(args, source));
    return watch;
  }

  /** Runs action; the window opens before it and closes after it, in Redis's own order of execution. */
  async during<T>(action: () => Promise<T>): Promise<{ window: Window; result: T }> {
    const opened = this.marker('open');
    const [before] = await this.pipelineInfo(opened.tag, 'before');
    await opened.seen;
    const started = performance.now();
    const result = await action();
    const elapsedMs = performance.now() - started;
    const closed = this.marker('close');
    const [, after] = await this.pipelineInfo(closed.tag, 'after');
    await closed.seen;
    const window = this.current;
    this.current = undefined;
    if (!window) throw new Error('MONITOR lost the window');
    window.elapsedMs = elapsedMs;
    for (const [command, calls] of after) {
      // The first INFO is in the second snapshot; both ECHO markers are too.
      const own = command === 'INFO' ? 1 : command === 'ECHO' ? 2 : 0;
      const delta = calls - (before.get(command) ?? 0) - own;
      if (delta !== 0) window.stats.set(command, delta);
    }
    return { window, result };
  }

  private async pipelineInfo(tag: string, at: 'before' | 'after'): Promise<[Counts, Counts]> {
    const pipeline = this.stats.pipeline();
    if (at === 'before') pipeline.info('commandstats').echo(tag);
    else pipeline.echo(tag).info('commandstats');
    const replies = (await pipeline.exec()) ?? [];
    for (const [error] of replies) if (error) throw error;
    const text = String(replies[at === 'before' ? 0 : 1][1]);
    return at === 'before' ? [parseCommandStats(text), new Map()] : [new Map(), parseCommandStats(text)];
  }

  private marker(kind: 'open' | 'close'): { tag: string; seen: Promise<void> } {
    const tag = `bench-presence-${kind}-${++this.sequence}`;
    let resolve!: () => void;
    const seen = new Promise<void>((done) => (resolve = done));
    const timer = setTimeout(() => this.markers.get(tag)?.(), 10_000);
    this.markers.set(tag, () => {
      clearTimeout(timer);
      this.markers.delete(tag);
      resolve();
    });
    return { tag, seen };
  }

  private onCommand(args: string[], source: string): void {
    const command = (args[0] ?? '').toUpperCase();
    if (source === this.ownAddress) {
      if (command !== 'ECHO') return;
      const tag = args[1] ?? '';
      if (tag.includes('-open-')) this.current = { elapsedMs: 0, client: new Map(), lua: new Map(), scripts: new Map(), stats: new Map() };
      this.markers.get(tag)?.();
      return;
    }
    const window = this.current;
    if (!window) return;
    if (source === 'lua') {
      count(window.lua, command);
      return;
    }
    count(window.client, command);
    if (command === 'EVALSHA' || command === 'EVAL') count(window.scripts, scriptKind(args));
  }
}

/** A window's commands with `polls` HGETALLs (the bench's own GET /presence requests) taken out. */
interface Tally {
  scriptCalls: number;
  clientTotal: number;
  luaTotal: number;
  statsTotal: number;
  breakdown: string;
  heartbeats: number;
  /** Registry calls: heartbeats, an instance's first acquire in a tenant registering it there, and each process's one look for instances of the previous release. */
  registry: number;
}

function tally(window: Window, polls: number): Tally {
  const client = new Map(window.client);
  const stats = new Map(window.stats);
  count(client, 'HGETALL', -polls);
  count(stats, 'HGETALL', -polls);
  const scriptCalls = (client.get('EVALSHA') ?? 0) + (client.get('EVAL') ?? 0);
  const others = new Map([...client].filter(([command]) => command !== 'EVALSHA' && command !== 'EVAL'));
  return {
    scriptCalls,
    clientTotal: total(client),
    luaTotal: total(window.lua),
    statsTotal: total(stats),
    heartbeats: window.scripts.get('heartbeat') ?? 0,
    registry: ['heartbeat', 'register', 'reap previous release'].reduce((sum, kind) => sum + (window.scripts.get(kind) ?? 0), 0),
    breakdown: `scripts: ${countsOrNone(window.scripts)}; other commands: ${countsOrNone(others)}; inside scripts: ${countsOrNone(window.lua)}`,
  };
}

// ---------------------------------------------------------------- sockets

interface Plan {
  tenant: string;
  userId: string;
  /** Index into the two app instances. */
  app: number;
}

/** Every socket the suite opened and has not closed, for the finally. */
const openClients = new Set<PresenceClient>();

function closeClients(clients: Iterable<PresenceClient>): number {
  let closed = 0;
  for (const client of clients) {
    client.close();
    openClients.delete(client);
    closed += 1;
  }
  return closed;
}

interface Opened {
  clients: PresenceClient[];
  failures: Counts;
  /** ms from the first socket created until the last one connected (or failed). */
  connectedMs: number;
}

/** Opens a socket per plan, at most `inFlight` connecting at once, within `timeoutMs` overall. */
async function openSockets(plans: readonly Plan[], apps: readonly AppProcess[], inFlight: number, timeoutMs: number): Promise<Opened> {
  const clients: PresenceClient[] = [];
  const failures: Counts = new Map();
  const started = performance.now();
  const deadline = started + timeoutMs;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < plans.length) {
      if (performance.now() >= deadline) {
        count(failures, 'not started before the time limit', plans.length - next);
        next = plans.length;
        return;
      }
      const plan = plans[next++];
      const client = new PresenceClient(apps[plan.app].baseUrl, tokenFor(plan.userId, plan.tenant));
      openClients.add(client);
      clients.push(client);
      try {
        await client.connected(Math.max(1, deadline - performance.now()));
      } catch (error) {
        count(failures, describe(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, plans.length) }, () => worker()));
  return { clients, failures, connectedMs: performance.now() - started };
}

function eventsSince(clients: readonly PresenceClient[], event: string, since: number): number {
  let n = 0;
  for (const client of clients) for (const received of client.received) if (received.event === event && received.at >= since) n += 1;
  return n;
}

/**
 * For every presence:offline a socket received since `since`: ms until the same socket heard the same user come
 * back online (how long the user looked offline); `open` counts those that never came back.
 */
function offlineSpans(clients: readonly PresenceClient[], since: number): { spans: number[]; open: number } {
  const spans: number[] = [];
  let open = 0;
  for (const client of clients) {
    const pending = new Map<string, number>();
    for (const received of client.received) {
      if (received.at < since) continue;
      const userId = String((received.payload as { userId?: unknown } | undefined)?.userId);
      if (received.event === 'presence:offline') pending.set(userId, received.at);
      else if (received.event === 'presence:online' && pending.has(userId)) {
        spans.push(received.at - (pending.get(userId) ?? received.at));
        pending.delete(userId);
      }
    }
    open += pending.size;
  }
  return { spans, open };
}

/** Waits (bounded) until every socket has its presence:snapshot, i.e. its connect's HGETALL has run. */
async function snapshotsIn(clients: readonly PresenceClient[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const missing = () => clients.filter((client) => client.socket.connected && !client.received.some((received) => received.event === 'presence:snapshot')).length;
  while (missing() > 0 && Date.now() < deadline) await delay(50);
  return missing();
}

// ---------------------------------------------------------------- GET /presence views

interface Probe {
  app: AppProcess;
  appLabel: string;
  tenant: string;
  token: string;
  /** Sorted user ids the tenant's GET /presence must list. */
  expected: string[];
}

interface Polled {
  ok: boolean;
  elapsedMs: number;
  /** GET /presence requests sent (each one HGETALL when answered 200). */
  requests: number;
  statuses: Counts;
  rounds: number;
  firstWrong?: string;
}

function probesFor(apps: readonly AppProcess[], expected: ReadonlyMap<string, string[]>): Probe[] {
  const probes: Probe[] = [];
  for (const [tenant, users] of expected) {
    const token = tokenFor(`viewer-${tenant}`, tenant);
    apps.forEach((app, index) => probes.push({ app, appLabel: `instance ${index + 1}`, tenant, token, expected: [...users].sort() }));
  }
  return probes;
}

async function probeOnce(probe: Probe, statuses: Counts): Promise<string | undefined> {
  try {
    const response = await fetch(`${probe.app.baseUrl}/presence`, {
      headers: { authorization: `Bearer ${probe.token}` },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    count(statuses, String(response.status));
    if (response.status !== 200) return `${probe.appLabel} ${probe.tenant}: HTTP ${response.status}`;
    const users = (JSON.parse(text) as { users?: Array<{ userId?: unknown }> }).users ?? [];
    const ids = users.map((user) => String(user.userId)).sort();
    const same = ids.length === probe.expected.length && ids.every((id, index) => id === probe.expected[index]);
    return same ? undefined : `${probe.appLabel} ${probe.tenant}: ${ids.length} users listed, ${probe.expected.length} expected`;
  } catch (error) {
    count(statuses, 'error');
    return `${probe.appLabel} ${probe.tenant}: ${describe(error)}`;
  }
}

/** One pass over the probes, POLL_CONCURRENCY at a time; the probes that are not right yet. */
async function probeRound(probes: readonly Probe[], statuses: Counts): Promise<Array<{ probe: Probe; wrong: string }>> {
  const wrong: Array<{ probe: Probe; wrong: string }> = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < probes.length) {
      const probe = probes[next++];
      const problem = await probeOnce(probe, statuses);
      if (problem !== undefined) wrong.push({ probe, wrong: problem });
    }
  };
  await Promise.all(Array.from({ length: Math.min(POLL_CONCURRENCY, probes.length) }, () => worker()));
  return wrong;
}

/** Polls the probes not yet right until all are (each is right once seen right), within timeoutMs. */
async function pollUntilRight(probes: readonly Probe[], timeoutMs: number, since = performance.now()): Promise<Polled> {
  const statuses: Counts = new Map();
  const deadline = performance.now() + timeoutMs;
  let pending = [...probes];
  let rounds = 0;
  let firstWrong: string | undefined;
  for (;;) {
    rounds += 1;
    const wrong = await probeRound(pending, statuses);
    pending = wrong.map((entry) => entry.probe);
    firstWrong = wrong[0]?.wrong;
    if (pending.length === 0 || performance.now() >= deadline) break;
    await delay(POLL_INTERVAL_MS);
  }
  return { ok: pending.length === 0, elapsedMs: performance.now() - since, requests: total(statuses), statuses, rounds, firstWrong };
}

// ---------------------------------------------------------------- storms

interface Storm {
  label: string;
  sockets: number;
  users: number;
  window: Window;
  polls: number;
  /** Connect storms: distinct (tenant, instance) pairs, the most register calls the storm may make. */
  tenantInstances?: number;
  connectedMs?: number;
  viewMs: number;
  view: Polled;
  /** Connect storms: the view checked again at the end of the watch. */
  recheck?: Polled;
  /** Connect storms polled throughout the watch: full rounds, and those in which some view was wrong. */
  watchRounds?: number;
  wrongRounds?: number;
  /** From the start of the first wrong round to the end of the last one. */
  wrongSpanMs?: number;
  firstWrongDuringWatch?: string;
  /** presence:offline / presence:online events the storm's sockets received from its start to the end of the watch. */
  offlineEvents?: number;
  onlineEvents?: number;
  /** Per offline event: ms until the same socket heard the user online again; and how many never did. */
  offlineSpans?: number[];
  offlineOpen?: number;
  failures?: Counts;
  snapshotsMissing?: number;
}

interface Watched {
  rounds: number;
  wrongRounds: number;
  wrongSpanMs: number;
  requests: number;
  statuses: Counts;
  firstWrong?: string;
}

/** Full rounds over the probes for `durationMs`, recording the rounds in which some view was wrong. */
async function pollThroughout(probes: readonly Probe[], durationMs: number): Promise<Watched> {
  const statuses: Counts = new Map();
  const end = performance.now() + durationMs;
  let rounds = 0;
  let wrongRounds = 0;
  let firstWrongAt: number | undefined;
  let lastWrongAt = 0;
  let firstWrong: string | undefined;
  while (performance.now() < end) {
    const roundStart = performance.now();
    const wrong = await probeRound(probes, statuses);
    rounds += 1;
    if (wrong.length > 0) {
      wrongRounds += 1;
      firstWrongAt ??= roundStart;
      lastWrongAt = performance.now();
      firstWrong ??= `${wrong[0].wrong} (${wrong.length} of ${probes.length} views wrong)`;
    }
    await delay(POLL_INTERVAL_MS);
  }
  return { rounds, wrongRounds, wrongSpanMs: firstWrongAt === undefined ? 0 : lastWrongAt - firstWrongAt, requests: total(statuses), statuses, firstWrong };
}

async function connectStorm(
  label: string,
  plans: readonly Plan[],
  apps: readonly AppProcess[],
  watch: CommandWatch,
  pollDuringWatch = false,
): Promise<{ storm: Storm; clients: PresenceClient[] }> {
  const expected = new Map<string, string[]>();
  for (const plan of plans) {
    const users = expected.get(plan.tenant) ?? [];
    if (!users.includes(plan.userId)) users.push(plan.userId);
    expected.set(plan.tenant, users);
  }
  const users = [...expected.values()].reduce((sum, list) => sum + list.length, 0);
  const probes = probesFor(apps, expected);
  progress(`${label}: opening ${plans.length} sockets (${users} users, ${expected.size} tenants), ${CONNECT_IN_FLIGHT} in flight`);
  const stormStart = Date.now();
  const { window, result } = await watch.during(async () => {
    const started = performance.now();
    const opened = await openSockets(plans, apps, CONNECT_IN_FLIGHT, CONNECT_TIMEOUT_MS);
    progress(
      `${label}: ${opened.clients.length - total(opened.failures)} connected in ${formatMs(opened.connectedMs)} ms${opened.failures.size ? `; failed: ${formatCounts(opened.failures)}` : ''}`,
    );
    const view = await pollUntilRight(probes, VIEW_TIMEOUT_MS, started);
    progress(
      `${label}: both instances list the expected users for all ${expected.size} tenants ${view.ok ? `after ${formatMs(view.elapsedMs)} ms` : `NOT within ${VIEW_TIMEOUT_MS} ms (${view.firstWrong})`}`,
    );
    const snapshotsMissing = await snapshotsIn(opened.clients, SNAPSHOT_TIMEOUT_MS);
    progress(`${label}: watching for ${WATCH_MS / 1000} s (every instance heartbeats at least once)${pollDuringWatch ? ', polling every view throughout' : ''}`);
    let watched: Watched | undefined;
    if (pollDuringWatch) watched = await pollThroughout(probes, WATCH_MS);
    else await delay(WATCH_MS);
    const recheck = await pollUntilRight(probes, 0);
    await delay(SETTLE_MS);
    return { opened, view, recheck, snapshotsMissing, watched };
  });
  const offline = eventsSince(result.opened.clients, 'presence:offline', stormStart);
  const online = eventsSince(result.opened.clients, 'presence:online', stormStart);
  const flicker = offlineSpans(result.opened.clients, stormStart);
  const { watched } = result;
  progress(
    `${label}: view right at the end of the watch: ${result.recheck.ok ? 'yes' : `NO (${result.recheck.firstWrong})`}` +
      (watched ? `; wrong in ${watched.wrongRounds} of ${watched.rounds} rounds during the watch${watched.firstWrong ? ` (${watched.firstWrong})` : ''}` : '') +
      `; the sockets received presence:offline ×${offline}, presence:online ×${online}` +
      (offline > 0 ? `; users looked offline for ${describeSpans(flicker.spans, flicker.open)}` : ''),
  );
  return {
    clients: result.opened.clients,
    storm: {
      label,
      sockets: plans.length,
      users,
      window,
      polls: result.view.requests + result.recheck.requests + (watched?.requests ?? 0),
      tenantInstances: new Set(plans.map((plan) => `${plan.app}/${plan.tenant}`)).size,
      connectedMs: result.opened.connectedMs,
      viewMs: result.view.elapsedMs,
      view: result.view,
      recheck: result.recheck,
      watchRounds: watched?.rounds,
      wrongRounds: watched?.wrongRounds,
      wrongSpanMs: watched?.wrongSpanMs,
      firstWrongDuringWatch: watched?.firstWrong,
      offlineEvents: offline,
      onlineEvents: online,
      offlineSpans: flicker.spans,
      offlineOpen: flicker.open,
      failures: result.opened.failures,
      snapshotsMissing: result.snapshotsMissing,
    },
  };
}

async function disconnectStorm(
  label: string,
  clients: PresenceClient[],
  tenants: readonly string[],
  users: number,
  apps: readonly AppProcess[],
  watch: CommandWatch,
): Promise<Storm> {
  const probes = probesFor(apps, new Map(tenants.map((tenant) => [tenant, []])));
  progress(`${label}: closing ${clients.length} sockets at once`);
  const { window, result } = await watch.during(async () => {
    const started = performance.now();
    closeClients(clients);
    const view = await pollUntilRight(probes, VIEW_TIMEOUT_MS, started);
    await delay(SETTLE_MS);
    return view;
  });
  progress(
    `${label}: no users listed for any of the ${tenants.length} tenants on either instance ${result.ok ? `after ${formatMs(result.elapsedMs)} ms` : `NOT within ${VIEW_TIMEOUT_MS} ms (${result.firstWrong})`}`,
  );
  return { label, sockets: clients.length, users, window, polls: result.requests, viewMs: result.elapsedMs, view: result };
}

/** Client-issued script calls and commands of a storm window without the registry calls (exact: one EVALSHA each). */
function perUser(storm: Storm): { scripts: number; client: number } {
  const t = tally(storm.window, storm.polls);
  return { scripts: (t.scriptCalls - t.registry) / storm.users, client: (t.clientTotal - t.registry) / storm.users };
}

function stormRow(storm: Storm, baseline?: Storm): Row {
  const t = tally(storm.window, storm.polls);
  const mine = perUser(storm);
  const base = baseline ? perUser(baseline) : mine;
  const connect = storm.connectedMs !== undefined;
  return {
    case: storm.label,
    sockets: storm.sockets,
    users: storm.users,
    ...(connect ? { 'connected ms': formatMs(storm.connectedMs ?? Number.NaN) } : {}),
    'view right ms': formatMs(storm.viewMs),
    ...(connect
      ? {
          'presence:offline received': storm.offlineEvents ?? 0,
          'looked offline ms (p50/max)': storm.offlineSpans?.length ? `${formatMs(median(storm.offlineSpans))} / ${formatMs(Math.max(...storm.offlineSpans))}` : '–',
        }
      : {}),
    heartbeats: t.heartbeats,
    'script calls': t.scriptCalls,
    'client cmds': t.clientTotal,
    'all cmds (commandstats)': t.statsTotal,
    'script calls/user': mine.scripts.toFixed(2),
    'client cmds/socket': per(t.clientTotal - t.heartbeats, storm.sockets),
    'client cmds/user': mine.client.toFixed(2),
    'all cmds/user': per(t.statsTotal, storm.users),
    commands: t.breakdown,
    baseline: baseline ? baseline.label : '(baseline)',
    '× script calls/user': formatRatio(mine.scripts, base.scripts),
    '× client cmds/user': formatRatio(mine.client, base.client),
  };
}

// ---------------------------------------------------------------- idle

interface Idle {
  label: string;
  sockets: number;
  busyInstances: number;
  window: Window;
}

async function idleWindow(label: string, sockets: number, busyInstances: number, watch: CommandWatch): Promise<Idle> {
  progress(`idle, ${label}: settling ${IDLE_SETTLE_MS / 1000} s, then counting commands for ${IDLE_WINDOW_MS / 1000} s`);
  await delay(IDLE_SETTLE_MS);
  const { window } = await watch.during(() => delay(IDLE_WINDOW_MS));
  const t = tally(window, 0);
  progress(`idle, ${label}: ${t.clientTotal} client commands (${t.heartbeats} heartbeats), ${t.statsTotal} counting those inside scripts`);
  return { label, sockets, busyInstances, window };
}

function perMinute(n: number, window: Window): number {
  return window.elapsedMs > 0 ? (n / window.elapsedMs) * 60_000 : Number.NaN;
}

function idleRow(idle: Idle, oneSocket: Idle, onePerInstance: Idle): Row {
  const t = tally(idle.window, 0);
  const mine = perMinute(t.clientTotal, idle.window);
  const vsOne = perMinute(tally(oneSocket.window, 0).clientTotal, oneSocket.window);
  const vsTwo = perMinute(tally(onePerInstance.window, 0).clientTotal, onePerInstance.window);
  return {
    case: `idle, ${idle.label}`,
    sockets: idle.sockets,
    users: idle.sockets,
    'instances with users': idle.busyInstances,
    'window ms': formatMs(idle.window.elapsedMs),
    'script calls': t.scriptCalls,
    'client cmds': t.clientTotal,
    'all cmds (commandstats)': t.statsTotal,
    'client cmds/min': mine.toFixed(1),
    'all cmds/min': perMinute(t.statsTotal, idle.window).toFixed(1),
    commands: t.breakdown,
    baseline: '1 socket; 1 socket per instance',
    '× 1 socket': formatRatio(mine, vsOne),
    '× 1 socket per instance': formatRatio(mine, vsTwo),
  };
}

// ---------------------------------------------------------------- the suite

function plansOneTab(): Plan[] {
  const plans: Plan[] = [];
  for (let t = 0; t < TENANTS; t++) {
    for (let u = 0; u < USERS_PER_TENANT; u++) plans.push({ tenant: `storm-${pad(t)}`, userId: `storm-${pad(t)}-u${pad(u, 2)}`, app: u % 2 });
  }
  return plans;
}

function plansTabs(): Plan[] {
  const plans: Plan[] = [];
  for (let t = 0; t < TAB_TENANTS; t++) {
    for (let u = 0; u < USERS_PER_TENANT; u++) {
      for (let tab = 0; tab < TABS; tab++) plans.push({ tenant: `tabs-${pad(t)}`, userId: `tabs-${pad(t)}-u${pad(u, 2)}`, app: u % 2 });
    }
  }
  return plans;
}

function plansAfterIdle(): Plan[] {
  const plans: Plan[] = [];
  for (let t = 0; t < AFTER_IDLE_TENANTS; t++) {
    for (let u = 0; u < USERS_PER_TENANT; u++) plans.push({ tenant: `again-${pad(t)}`, userId: `again-${pad(t)}-u${pad(u, 2)}`, app: u % 2 });
  }
  return plans;
}

function tenantsOf(plans: readonly Plan[]): string[] {
  return [...new Set(plans.map((plan) => plan.tenant))];
}

async function startApp(resources: Resources, label: string, redis: RedisServer): Promise<AppProcess> {
  const app = resources.add(
    await AppProcess.start({
      APP_ROLE: 'web',
      JWT_SECRET,
      REDIS_URL: redis.url(),
      LOG_LEVEL: 'log',
      PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS),
      PRESENCE_OFFLINE_GRACE_SECONDS: String(PRESENCE_OFFLINE_GRACE_SECONDS),
    }),
    label,
    (a) => a.stop(),
  );
  await app.waitForLines(READY_LINE, 3, LINE_TIMEOUT_MS);
  return app;
}

export async function run(): Promise<BenchResult> {
  const resources = new Resources();
  const rows: Row[] = [];
  const checks: Check[] = [];
  const notes: string[] = [];
  try {
    progress('starting a redis-server and two APP_ROLE=web instances on it');
    const redis = resources.add(await RedisServer.start(), 'redis-server', (server) => server.stop());
    // Staggered, as real instances are: started together, their heartbeat timers would tick in step.
    const firstApp = await startApp(resources, 'instance 1', redis);
    await delay(HEARTBEAT_MS / 2);
    const apps = [firstApp, await startApp(resources, 'instance 2', redis)];
    // Registered after the apps, so closed before them: the apps then drain no sockets.
    resources.add(openClients, 'sockets', async (clients) => closeClients([...clients]));
    const watch = await CommandWatch.start(resources, redis);

    // ------------------------------------------------ calibration: what one GET /presence costs
    const calibrationProbes = probesFor([apps[0]], new Map([['calibration', []]]));
    const calibration = await watch.during(async () => {
      const statuses: Counts = new Map();
      for (let i = 0; i < CALIBRATION_REQUESTS; i++) await probeOnce(calibrationProbes[0], statuses);
      return statuses;
    });
    const calibrationClient = countsOrNone(calibration.window.client);
    checks.push({
      label: `calibration: ${CALIBRATION_REQUESTS} GET /presence answered 200 and cost exactly ${CALIBRATION_REQUESTS} HGETALL and nothing else (${calibrationClient}), so the storms' own polls are taken out as one HGETALL each`,
      ok:
        calibration.result.get('200') === CALIBRATION_REQUESTS &&
        calibration.window.client.size === 1 &&
        calibration.window.client.get('HGETALL') === CALIBRATION_REQUESTS &&
        total(calibration.window.lua) === 0,
    });

    // ------------------------------------------------ 1. connect storm, one socket per user (fresh instances)
    const oneTab = plansOneTab();
    const first = await connectStorm(`connect storm, ${TENANTS} tenants × ${USERS_PER_TENANT} users × 1 socket`, oneTab, apps, watch);

    // ------------------------------------------------ 3a. idle with 2,000 sockets
    const idleMany = await idleWindow(`${oneTab.length} sockets (${oneTab.length / 2} per instance)`, oneTab.length, 2, watch);

    // ------------------------------------------------ 2. disconnect storm
    const firstOff = await disconnectStorm(
      `disconnect storm, ${oneTab.length} sockets of ${oneTab.length} users`,
      first.clients,
      tenantsOf(oneTab),
      first.storm.users,
      apps,
      watch,
    );

    // ------------------------------------------------ 3b. idle with 1 socket, then 1 per instance
    const lone = [await openSockets([{ tenant: 'idle', userId: 'idle-1', app: 0 }], apps, 1, CONNECT_TIMEOUT_MS)];
    const idleOne = await idleWindow('1 socket (instance 1)', 1, 1, watch);
    lone.push(await openSockets([{ tenant: 'idle', userId: 'idle-2', app: 1 }], apps, 1, CONNECT_TIMEOUT_MS));
    const idleTwo = await idleWindow('2 sockets (1 per instance)', 2, 2, watch);
    const loneFailures = lone.reduce((sum, opened) => sum + total(opened.failures), 0);

    // ------------------------------------------------ 4. two tabs per user, while both instances hold a user (live leases)
    const tabs = plansTabs();
    const second = await connectStorm(`connect storm, ${TAB_TENANTS} tenants × ${USERS_PER_TENANT} users × ${TABS} sockets (tabs on the user's instance)`, tabs, apps, watch);
    closeClients(lone.flatMap((opened) => opened.clients));
    // The idle users' releases (after the offline grace) stay out of the disconnect window.
    await delay(PRESENCE_OFFLINE_GRACE_SECONDS * 1000 + 1_000);
    const secondOff = await disconnectStorm(
      `disconnect storm, ${tabs.length} sockets of ${second.storm.users} users`,
      second.clients,
      tenantsOf(tabs),
      second.storm.users,
      apps,
      watch,
    );

    // ------------------------------------------------ 3c. idle with no socket at all
    await delay(PRESENCE_OFFLINE_GRACE_SECONDS * 1000 + 1_000);
    const idleNone = await idleWindow('0 sockets', 0, 0, watch);

    // ------------------------------------------------ 5. connect again after both instances idled past their lease
    const again = plansAfterIdle();
    const third = await connectStorm(
      `connect storm after ${((IDLE_SETTLE_MS + IDLE_WINDOW_MS) / 1000).toFixed(0)} s with no socket (leases of ${(2 * HEARTBEAT_MS) / 1000} s lapsed), ${AFTER_IDLE_TENANTS} tenants × ${USERS_PER_TENANT} users × 1 socket`,
      again,
      apps,
      watch,
      true,
    );
    closeClients(third.clients);

    const windows: Window[] = [
      calibration.window,
      first.storm.window,
      idleMany.window,
      firstOff.window,
      idleOne.window,
      idleTwo.window,
      second.storm.window,
      secondOff.window,
      idleNone.window,
      third.storm.window,
    ];

    // ------------------------------------------------ rows
    rows.push(stormRow(first.storm), stormRow(firstOff), stormRow(second.storm, first.storm), stormRow(secondOff, firstOff), stormRow(third.storm, first.storm));
    rows.push(idleRow(idleNone, idleOne, idleTwo), idleRow(idleOne, idleOne, idleTwo), idleRow(idleTwo, idleOne, idleTwo), idleRow(idleMany, idleOne, idleTwo));

    // ------------------------------------------------ checks
    for (const storm of [first.storm, second.storm, third.storm]) {
      const t = tally(storm.window, storm.polls);
      const acquires = storm.window.scripts.get('acquire') ?? 0;
      const registers = storm.window.scripts.get('register') ?? 0;
      const polled =
        storm.watchRounds !== undefined
          ? `, wrong in ${storm.wrongRounds} of ${storm.watchRounds} polling rounds during it${storm.wrongRounds ? ` for ${formatMs(storm.wrongSpanMs ?? 0)} ms (${storm.firstWrongDuringWatch})` : ''}`
          : '';
      checks.push(
        {
          label: `${storm.label}: every socket connected (${storm.sockets - total(storm.failures ?? new Map())}/${storm.sockets}${storm.failures?.size ? `; ${formatCounts(storm.failures)}` : ''}) and got its snapshot (${storm.snapshotsMissing ?? 0} missing)`,
          ok: (storm.failures?.size ?? 0) === 0 && storm.snapshotsMissing === 0,
        },
        {
          label: `${storm.label}: GET /presence on both instances listed exactly the expected users of every tenant (${storm.view.ok ? `after ${formatMs(storm.viewMs)} ms, ${storm.view.rounds} polling round(s)` : `not within ${VIEW_TIMEOUT_MS / 1000} s: ${storm.view.firstWrong}`})`,
          ok: storm.view.ok && only200(storm.view.statuses),
        },
        {
          label:
            `${storm.label}: nobody went offline: no socket got presence:offline from the first connect to the end of a ${WATCH_MS / 1000} s watch (${storm.offlineEvents} offline, ${storm.onlineEvents} online events${storm.offlineEvents ? `; looked offline for ${describeSpans(storm.offlineSpans ?? [], storm.offlineOpen ?? 0)}` : ''}), ` +
            `and both views were right at its end (${storm.recheck?.ok ? 'yes' : storm.recheck?.firstWrong})${polled}`,
          ok: storm.offlineEvents === 0 && storm.recheck?.ok === true && only200(storm.recheck.statuses) && (storm.wrongRounds ?? 0) === 0,
        },
        {
          label: `${storm.label}: one acquire script call per user (${acquires} for ${storm.users} users; all script calls ${t.scriptCalls}, of which heartbeats ${t.heartbeats})`,
          ok: acquires === storm.users,
        },
        {
          label: `${storm.label}: at most one register script call per tenant and instance (${registers} for ${storm.tenantInstances} pairs)`,
          ok: registers <= (storm.tenantInstances ?? 0),
        },
      );
    }
    const oneSocketPerUser = perUser(first.storm);
    const twoTabsPerUser = perUser(second.storm);
    checks.push({
      label:
        `extra tabs cost no script calls: ${oneSocketPerUser.scripts.toFixed(2)} script calls per user with 1 socket, ${twoTabsPerUser.scripts.toFixed(2)} with ${TABS} (heartbeats and registrations left out); ` +
        `client commands per user ${oneSocketPerUser.client.toFixed(2)} → ${twoTabsPerUser.client.toFixed(2)}: each tab still costs its snapshot HGETALL`,
      ok: oneSocketPerUser.scripts === 1 && twoTabsPerUser.scripts === 1,
    });
    for (const storm of [firstOff, secondOff]) {
      const releases = storm.window.scripts.get('release') ?? 0;
      checks.push(
        {
          label: `${storm.label}: both instances listed no users for every tenant (${storm.view.ok ? `after ${formatMs(storm.viewMs)} ms, offline grace ${PRESENCE_OFFLINE_GRACE_SECONDS} s included` : `not within ${VIEW_TIMEOUT_MS / 1000} s: ${storm.view.firstWrong}`})`,
          ok: storm.view.ok && only200(storm.view.statuses),
        },
        { label: `${storm.label}: one release script call per user (${releases} for ${storm.users} users)`, ok: releases === storm.users },
      );
    }
    const noneTally = tally(idleNone.window, 0);
    checks.push(
      { label: `idle sockets opened (${loneFailures} failed)`, ok: loneFailures === 0 },
      { label: `idle, 0 sockets: no commands at all (${noneTally.statsTotal}: ${countsOrNone(idleNone.window.stats)})`, ok: noneTally.statsTotal === 0 },
    );
    const many = tally(idleMany.window, 0);
    const two = tally(idleTwo.window, 0);
    const one = tally(idleOne.window, 0);
    const manyPerMinute = perMinute(many.clientTotal, idleMany.window);
    const twoPerMinute = perMinute(two.clientTotal, idleTwo.window);
    const onePerMinute = perMinute(one.clientTotal, idleOne.window);
    // One heartbeat per busy instance, as commands per minute of the window.
    const slack = Math.max(IDLE_TOLERANCE * twoPerMinute, perMinute(2, idleTwo.window));
    checks.push(
      {
        label: `idle: ${idleMany.sockets} sockets cost what 1 socket per instance costs: ${manyPerMinute.toFixed(1)} against ${twoPerMinute.toFixed(1)} client commands/min (${formatRatio(manyPerMinute, twoPerMinute)}; within ±${IDLE_TOLERANCE * 100}% or one heartbeat per instance)`,
        ok: Math.abs(manyPerMinute - twoPerMinute) <= slack,
      },
      {
        label: `idle: ${idleMany.sockets} sockets on 2 instances cost twice 1 socket on one instance: ${manyPerMinute.toFixed(1)} against ${onePerMinute.toFixed(1)} client commands/min (${formatRatio(manyPerMinute, onePerMinute)}, expected 2.00× ± one heartbeat per instance)`,
        ok: Math.abs(manyPerMinute - 2 * onePerMinute) <= Math.max(2 * IDLE_TOLERANCE * onePerMinute, perMinute(2, idleOne.window)),
      },
      {
        label: `idle: only heartbeats, one script call each (${idleMany.sockets} sockets: ${many.heartbeats} heartbeats of ${many.clientTotal} client commands; 1 socket: ${one.heartbeats} of ${one.clientTotal})`,
        ok: many.heartbeats === many.clientTotal && one.heartbeats === one.clientTotal && two.heartbeats === two.clientTotal,
      },
    );
    const mismatched = windows.filter((window) => total(window.stats) !== total(window.client) + total(window.lua));
    checks.push({
      label: `MONITOR (client-issued + inside scripts) and INFO commandstats agree on every window (${windows.length - mismatched.length}/${windows.length})`,
      ok: mismatched.length === 0,
    });

    // ------------------------------------------------ notes
    notes.push(
      `Setup: one redis-server; two APP_ROLE=web instances of dist/main.js on it, the second started ${HEARTBEAT_MS / 2000} s after the first was listening so their heartbeats do not tick in step (JWT_SECRET, REDIS_URL, LOG_LEVEL=log), both with PRESENCE_TTL_SECONDS=${PRESENCE_TTL_SECONDS} (default 45: a heartbeat every ${HEARTBEAT_MS / 1000} s instead of 15 s and a lease of ${(2 * HEARTBEAT_MS) / 1000} s instead of 30 s, so a ${IDLE_WINDOW_MS / 1000} s idle window holds ${IDLE_WINDOW_MS / HEARTBEAT_MS} heartbeats per instance with users) and PRESENCE_OFFLINE_GRACE_SECONDS=${PRESENCE_OFFLINE_GRACE_SECONDS} (default 5: a disconnect storm then settles in about a second; the grace is inside its "view right ms"). Every other PRESENCE_* setting is the default. ` +
        "The TTL applies to every row: in the storms it changes how many heartbeats fall in the window (counted apart: the heartbeats column, left out of the per-user figures) and how soon an idle instance's lease lapses.",
      `Sockets: socket.io-client from the bench process (test/support/socket-client.ts PresenceClient: namespace /presence, transports ['websocket'], auth token, no reconnection, one connection per socket), at most ${CONNECT_IN_FLIGHT} connecting at once. ` +
        `Storm 1 (fresh instances) has ${TENANTS} tenants × ${USERS_PER_TENANT} distinct users, one socket each; user u of every tenant connects to instance (u mod 2) + 1, so each instance holds ${oneTab.length / 2} sockets and every tenant spans both instances (each GET /presence must list users held by the other instance). ` +
        `Storm 2 (the tabs baseline) has ${TAB_TENANTS} tenants × ${USERS_PER_TENANT} users × ${TABS} sockets, both tabs of a user on the user's instance and opened back to back (the second usually while the first's acquire is in flight): ${tabs.length} sockets, ${tabs.length / 2} per instance, for half the users; it runs while each instance still holds one idle user, so both leases are live, as they were (freshly registered) in storm 1. Tabs of one user on different instances would cost one acquire per instance (by design). ` +
        `Storm 3 has ${AFTER_IDLE_TENANTS} tenants × ${USERS_PER_TENANT} users × 1 socket (shaped like storm 1) and starts after the 0-socket window, i.e. after both instances had no user for over ${((IDLE_SETTLE_MS + IDLE_WINDOW_MS) / 1000).toFixed(0)} s: longer than their ${(2 * HEARTBEAT_MS) / 1000} s lease, with nobody heartbeating to reap them, so both are still in the instances set with no lease — the morning after a quiet night. Its views are polled throughout its watch.`,
      `Times: "connected ms" from the first socket created to the last one connected; "view right ms" from the same start (connect) or from closing every socket (disconnect) until GET /presence on both instances lists exactly the expected users for every tenant (polled from the moment all sockets are connected, ${POLL_CONCURRENCY} requests in flight, ${POLL_INTERVAL_MS} ms between rounds, each tenant×instance dropped from the poll once right). After a connect storm the bench waits ${WATCH_MS / 1000} s (two heartbeat intervals: every instance heartbeats at least once), then checks every view again; "presence:offline received" counts the offline events the storm's sockets got from the first connect to the end of the watch (a connect storm should cause none); "looked offline ms" is, per such event, the time until the same socket heard that user online again.`,
      `Commands: every window is measured twice. INFO commandstats (before/after, the bench's INFO and ECHO markers taken out) counts every command redis-server ran, including those run inside a script ("all cmds"). A MONITOR connection splits them into client-issued commands (EVALSHA/EVAL and anything else the apps sent, "client cmds"; each EVALSHA classified by its keys as register, acquire, release, heartbeat, reap or deregister) and commands run inside scripts. ` +
        `Each GET /presence costs one HGETALL (calibration check), so the bench's own polls are subtracted as one HGETALL each (storms 1–3: ${first.storm.polls}, ${second.storm.polls}, ${third.storm.polls}; disconnects: ${firstOff.polls}, ${secondOff.polls}). The connect windows run from the first socket to the end of the watch.`,
      `Idle: each window starts ${IDLE_SETTLE_MS / 1000} s after the last change (past the next heartbeat) and lasts ${IDLE_WINDOW_MS / 1000} s; per minute = count ÷ window × 60 s. Order: 2,000 sockets (right after storm 1), 1 socket on instance 1, 1 socket on each instance, (storm 2 and its disconnect), 0 sockets (both instances idle after having held users). ` +
        "In the 1-socket window, instance 1's heartbeat reaps instance 2 (no users, lease lapsed): a few more commands inside that script, no extra call. " +
        'Heartbeats scale with the instances that hold users, not with sockets: 1 socket keeps one instance heartbeating, 2,000 sockets on two instances keep both, so the fair baseline for 2,000 sockets is 1 socket per instance (× 1 socket per instance); against a single socket the ratio is the number of busy instances.',
      `Per connect: a socket costs one HGETALL (its presence:snapshot) whether or not it is the user's first; the user's first socket on an instance also costs the acquire script call and one PUBLISH (presence:online to the tenant room through the Redis adapter), and the first user of a tenant on an instance one register call (the tenant listed under the instance, for a reaper to find). Per disconnect: the user's last socket costs the release script call and one PUBLISH (presence:offline); other sockets cost nothing.`,
      'MONITOR adds a little work to redis-server for every command; the commandstats counts do not depend on it.',
    );
    return { rows, notes, checks };
  } finally {
    await resources.close();
  }
}

function describeSpans(spans: readonly number[], open: number): string {
  const summary = summarize(spans);
  const closed = spans.length > 0 ? `p50 ${formatMs(summary.p50)} ms, max ${formatMs(summary.max)} ms (${spans.length} socket×user pairs)` : 'no span';
  return open > 0 ? `${closed}; ${open} never came back online` : closed;
}

function only200(statuses: ReadonlyMap<string, number>): boolean {
  return statuses.size === 1 && statuses.has('200');
}
