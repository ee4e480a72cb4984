import { setTimeout as delay } from 'node:timers/promises';
import { io, type Socket } from 'socket.io-client';
import { salesFor } from './reports-client';

/**
 * Load drivers for the chaos suite and the soak: HTTP load with per-request deadline accounting, a stream
 * of report jobs, and many Socket.io clients. They route through a `Routing` (the load balancer in front of
 * the instances), so an instance being stopped or killed is taken out of rotation first, as Render does.
 */

/** One app instance as the load balancer sees it. */
export interface Target {
  readonly baseUrl: string;
  /** False once the harness takes it out of rotation (before stopping or killing it). */
  readonly routable: boolean;
}

export interface Routing {
  /** The next routable instance, round robin; undefined while none is. */
  next(): Target | undefined;
}

/** What became of one request. `cut`: the connection failed because the harness was stopping or killing that instance. */
export type Outcome = number | 'timeout' | 'error' | 'cut' | 'no-target';

export interface RequestRecord {
  readonly route: string;
  readonly cached: boolean;
  readonly phase: string;
  readonly outcome: Outcome;
  readonly ms: number;
  /** The Retry-After header of an answer that had one. */
  readonly retryAfter?: string;
}

/** Every request the drivers made, tagged with the phase (the fault) during which it started. */
export class Recorder {
  phase = 'setup';
  readonly records: RequestRecord[] = [];

  add(record: Omit<RequestRecord, 'phase'>, phase: string): void {
    this.records.push({ ...record, phase });
  }

  inPhase(phase: string): RequestRecord[] {
    return this.records.filter((record) => record.phase === phase);
  }
}

export interface TimedResponse {
  outcome: Outcome;
  ms: number;
  body?: unknown;
  headers?: Headers;
}

/**
 * One request with a hard deadline: no answer (headers and body) within `deadlineMs` is a `timeout`.
 * A connection error to an instance the harness took out of rotation is `cut`, any other is `error`.
 */
export async function timedRequest(target: Target, path: string, init: RequestInit, deadlineMs: number): Promise<TimedResponse> {
  const started = performance.now();
  const signal = AbortSignal.timeout(deadlineMs);
  try {
    const response = await fetch(`${target.baseUrl}${path}`, { ...init, signal });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { outcome: response.status, ms: performance.now() - started, body, headers: response.headers };
  } catch {
    const ms = performance.now() - started;
    if (signal.aborted) return { outcome: 'timeout', ms };
    return { outcome: target.routable ? 'error' : 'cut', ms };
  }
}

/**
 * Sends one request to the next routable instance and records its outcome under the phase current when it
 * started (`no-target` while no instance is routable, then undefined).
 */
async function recordedRequest(
  routing: Routing,
  recorder: Recorder,
  route: { name: string; cached: boolean },
  path: string,
  init: RequestInit,
  deadlineMs: number,
): Promise<TimedResponse | undefined> {
  const phase = recorder.phase;
  const target = routing.next();
  if (!target) {
    recorder.add({ route: route.name, cached: route.cached, outcome: 'no-target', ms: 0 }, phase);
    return undefined;
  }
  const response = await timedRequest(target, path, init, deadlineMs);
  const retryAfter = response.headers?.get('retry-after') ?? undefined;
  recorder.add({ route: route.name, cached: route.cached, outcome: response.outcome, ms: response.ms, ...(retryAfter === undefined ? {} : { retryAfter }) }, phase);
  return response;
}

export interface Route {
  readonly name: string;
  /** Served from the cache: must never answer 5xx. */
  readonly cached: boolean;
  path(): string;
  headers(): Record<string, string>;
}

export interface HttpLoadOptions {
  /** Loops in flight at once. */
  concurrency: number;
  /** Pause of each loop between its requests, to hold a steady rate rather than saturate two cores. */
  pauseMs: number;
  deadlineMs: number;
}

/** Steady GET load over `routes` in turn, each request recorded with its outcome and latency. */
export class HttpLoad {
  private running = false;
  private loops: Promise<void>[] = [];
  private turn = 0;

  constructor(
    private readonly routing: Routing,
    private readonly routes: readonly Route[],
    private readonly recorder: Recorder,
    private readonly options: HttpLoadOptions,
  ) {}

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.options.concurrency }, () => this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const route = this.routes[this.turn++ % this.routes.length];
      await recordedRequest(this.routing, this.recorder, route, route.path(), { headers: route.headers() }, this.options.deadlineMs);
      await delay(this.options.pauseMs);
    }
  }
}

/** The route name JobStream.burst records its POSTs under. */
export const BURST_ROUTE = 'POST /reports (burst)';

export interface Author {
  readonly userId: string;
  readonly token: string;
}

export interface JobStreamOptions {
  intervalMs: number;
  deadlineMs: number;
  /** Sales lines per report. */
  lines: number;
  /** First seed: every POST carries distinct data, so every accepted POST is a new job. */
  firstSeed: number;
}

/**
 * POST /reports at a steady pace. A 2xx means accepted (stored in Redis): it must complete. A 503 means refused
 * (nothing stored, or a retry of the same data is safe): it is counted, not retried.
 */
export class JobStream {
  /** Accepted report ids, with their author. */
  readonly accepted = new Map<string, Author>();
  /** The last accepted id: a report likely still queued or active, for load on the uncached read. */
  latest?: { id: string; author: Author };
  refused = 0;
  private running = false;
  private loop?: Promise<void>;
  private seed: number;
  private turn = 0;

  constructor(
    private readonly routing: Routing,
    private readonly authors: readonly Author[],
    private readonly recorder: Recorder,
    private readonly options: JobStreamOptions,
  ) {
    this.seed = options.firstSeed;
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const next = delay(this.options.intervalMs);
      await this.postOne();
      await next;
    }
  }

  /**
   * Posts `count` reports of `lines` lines at once: a backlog, so the workers are busy at a chosen moment.
   * Recorded as route BURST_ROUTE with a deadline of their own: how fast a 2-core machine takes in
   * count × lines sale lines at once measures the machine, not how the service withstands a fault.
   */
  async burst(count: number, lines: number, deadlineMs: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.postOne(lines, deadlineMs, BURST_ROUTE)));
  }

  private async postOne(lines = this.options.lines, deadlineMs = this.options.deadlineMs, route = 'POST /reports'): Promise<void> {
    const author = this.authors[this.turn++ % this.authors.length];
    const body = JSON.stringify({ type: 'sales-summary', sales: salesFor(this.seed++, lines) });
    const init = { method: 'POST', body, headers: { authorization: `Bearer ${author.token}`, 'content-type': 'application/json' } };
    const response = await recordedRequest(this.routing, this.recorder, { name: route, cached: false }, '/reports', init, deadlineMs);
    if (!response) return;
    if (typeof response.outcome === 'number' && response.outcome >= 200 && response.outcome < 300) {
      const { id } = response.body as { id: string };
      this.accepted.set(id, author);
      this.latest = { id, author };
    } else if (response.outcome === 503) {
      this.refused += 1;
    }
  }
}

export interface SwarmUser {
  readonly userId: string;
  readonly tenantId: string;
  readonly token: string;
}

interface Member {
  readonly user: SwarmUser;
  socket?: Socket;
  /** False once the user left for good (churn): the swarm no longer reconnects them. */
  wanted: boolean;
  reconnects: number;
}

/**
 * N Socket.io clients of /presence, one per user, websocket transport. A client whose connection drops
 * (its instance stopped or died) reconnects to the next routable instance, as a browser behind a load
 * balancer would. Records every report:completed received, per report id.
 */
export class SocketSwarm {
  /** report:completed notifications received, per report id. */
  readonly completions = new Map<string, number>();
  private readonly members = new Map<string, Member>();
  private closed = false;

  constructor(private readonly routing: Routing) {}

  /** Connects users, `inFlight` handshakes at a time; resolves once all are connected. */
  async join(users: readonly SwarmUser[], inFlight = 100): Promise<void> {
    const queue = [...users];
    const connectOne = async (): Promise<void> => {
      for (let user = queue.shift(); user; user = queue.shift()) {
        const member: Member = { user, wanted: true, reconnects: 0 };
        this.members.set(user.userId, member);
        await this.connect(member);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, () => connectOne()));
  }

  /** Disconnects these users for good (they go offline). */
  leave(userIds: readonly string[]): void {
    for (const userId of userIds) {
      const member = this.members.get(userId);
      if (!member) continue;
      member.wanted = false;
      member.socket?.disconnect();
      this.members.delete(userId);
    }
  }

  /** Users who want to be online, by tenant: what presence must show once things settle. */
  wantedByTenant(): Map<string, Set<string>> {
    const byTenant = new Map<string, Set<string>>();
    for (const { user } of this.members.values()) {
      const set = byTenant.get(user.tenantId) ?? new Set<string>();
      set.add(user.userId);
      byTenant.set(user.tenantId, set);
    }
    return byTenant;
  }

  get size(): number {
    return this.members.size;
  }

  /** How many wanted users are connected right now. */
  get connected(): number {
    let n = 0;
    for (const member of this.members.values()) if (member.socket?.connected) n += 1;
    return n;
  }

  get reconnects(): number {
    let n = 0;
    for (const member of this.members.values()) n += member.reconnects;
    return n;
  }

  close(): void {
    this.closed = true;
    for (const member of this.members.values()) member.socket?.disconnect();
  }

  /** Connects the member to the next routable instance, retrying until it is connected or no longer wanted. */
  private async connect(member: Member): Promise<void> {
    while (member.wanted && !this.closed) {
      const target = this.routing.next();
      if (target && (await this.tryConnect(member, target))) return;
      await delay(200 + Math.random() * 300);
    }
  }

  private tryConnect(member: Member, target: Target): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = io(`${target.baseUrl}/presence`, {
        auth: { token: member.user.token },
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
        timeout: 5_000,
      });
      socket.on('report:completed', (payload: { id: string }) => {
        this.completions.set(payload.id, (this.completions.get(payload.id) ?? 0) + 1);
      });
      socket.once('connect', () => {
        member.socket = socket;
        socket.once('disconnect', () => {
          if (!member.wanted || this.closed) return;
          member.reconnects += 1;
          // Jittered like a real client, so a dead instance's sockets do not all land in the same millisecond.
          void delay(50 + Math.random() * 200).then(() => this.connect(member));
        });
        resolve(true);
      });
      socket.once('connect_error', () => {
        socket.disconnect();
        resolve(false);
      });
    });
  }
}

/** Whether GET /presence of every tenant lists exactly the users the swarm wants online; a description of the first difference otherwise. */
export async function presenceMismatch(routing: Routing, swarm: SocketSwarm, tokenOfTenant: (tenantId: string) => string, deadlineMs: number): Promise<string | undefined> {
  for (const [tenantId, wanted] of swarm.wantedByTenant()) {
    const target = routing.next();
    if (!target) return 'no routable instance';
    const response = await timedRequest(target, '/presence', { headers: { authorization: `Bearer ${tokenOfTenant(tenantId)}` } }, deadlineMs);
    if (response.outcome !== 200) return `GET /presence for ${tenantId}: ${response.outcome}`;
    const online = new Set((response.body as { users: Array<{ userId: string }> }).users.map((user) => user.userId));
    const missing = [...wanted].filter((userId) => !online.has(userId));
    const extra = [...online].filter((userId) => !wanted.has(userId));
    if (missing.length > 0 || extra.length > 0)
      return `${tenantId}: ${missing.length} missing (${missing.slice(0, 3).join(', ')}), ${extra.length} extra (${extra.slice(0, 3).join(', ')})`;
  }
  return undefined;
}
