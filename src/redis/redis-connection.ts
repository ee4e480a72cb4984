import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { formatDuration } from '../common/format-duration';
import { withDeadline } from '../common/with-deadline';
import type { RedisConfig, RedisEndpoint, RedisUrlVariable } from '../config';
import { CommandCounter, isClusterClient, type RedisClient } from './command-counter';
import { diagnoseRedisError, HANDSHAKE_TIMEOUT_CODE, RedisErrorDiagnosis, RedisErrorKind } from './redis-error';
import { buildClusterOptions, buildRedisOptions, reconnectDelay } from './redis-options';
import { closerDiagnosis, mayHideCause } from './redis-probe';
import type { RedisRole } from './redis.tokens';

/** `refused`: RedisModule will not use this server (a Redis Cluster node); nothing reconnects until its URL changes. */
export type RedisConnectionState = 'connecting' | 'ready' | 'down' | 'closed' | 'refused';

/** A role, or `<role>-duplicate` for a client a consumer made from it with duplicate() (BullMQ's blocking connection). */
export type RedisConnectionName = RedisRole | `${RedisRole}-duplicate`;

export interface RedisConnectionStatus {
  readonly role: RedisConnectionName;
  /** Which URL it connects to. */
  readonly endpoint: RedisUrlVariable;
  readonly state: RedisConnectionState;
  /** Since when the connection has been unusable (never ready yet, or lost); undefined while ready. */
  readonly downSince?: number;
  readonly reconnectAttempts: number;
  readonly lastError?: RedisErrorDiagnosis;
}

/** Since start, unlike the status's `reconnectAttempts` (which a recovery resets). */
export interface RedisConnectionHistory {
  readonly reconnectAttempts: number;
  /** Times a ready connection was lost. */
  readonly disconnects: number;
}

const SUMMARY_INTERVAL_MS = 60_000;
/** Errors that retrying faster cannot fix: retried at the slowest pace. */
const SLOW_RETRY_KINDS: ReadonlySet<RedisErrorKind> = new Set(['auth', 'tls', 'plaintext', 'database', 'denied']);
/**
 * Errors that are the consequence of an earlier one in the same handshake or the next (a refused SELECT cut by us,
 * a full server's reset): the earlier diagnosis stands and is not logged again.
 */
const ECHOED_BY: Partial<Record<RedisErrorKind, ReadonlySet<RedisErrorKind>>> = {
  database: new Set(['other', 'closed']),
  maxclients: new Set(['other', 'closed']),
  denied: new Set(['other', 'closed']),
};
const CLOSE_TIMEOUT_MS = 1_000;
/** What a ready Cluster's own errors are logged under: they come from its sharded subscriber connections. */
const SHARDED_SUBSCRIBERS = 'cluster sharded subscribers';
/**
 * From TCP (and TLS) connected to ready: HELLO, AUTH, SELECT, CLIENT SETNAME and the INFO ready check. connectTimeout
 * stops at the TCP connect and only the command role has a command timeout, so without this a server that accepts
 * connections and never answers (a black hole, a wrong port behind a proxy) keeps the other roles connecting forever.
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * One ioredis client and what it has been through. It owns the client's error listener (without one,
 * every failed reconnect prints "[ioredis] Unhandled error event") and turns the event stream into
 * one log line per state change, plus at most one summary a minute while Redis stays down.
 */
export class RedisConnection {
  readonly client: RedisClient;
  /** Commands this client (and the clients duplicated from it) wrote, for metrics. */
  readonly commands: CommandCounter;
  private readonly logger: Logger;
  private readonly createdAt: number;
  private readonly duplicates = new Set<RedisConnection>();
  private state: RedisConnectionState = 'connecting';
  private downSince?: number;
  private everReady = false;
  private attempts = 0;
  private lastError?: RedisErrorDiagnosis;
  private lastSummaryAt = 0;
  private totalReconnectAttempts = 0;
  private totalDisconnects = 0;
  private handshakeTimer?: NodeJS.Timeout;
  private probing = false;
  /** This attempt reached a connected socket and has raised no error since: a close before ready is then the server hanging up mid-handshake. */
  private handshakeQuiet = false;
  /** On a Cluster: the kinds of error each failing node has been logged with, so a node failing on and on is logged once per kind. */
  private readonly nodeErrors = new Map<string, Set<RedisErrorKind>>();
  /** On a Cluster: the nodes being probed for why their connection closed. */
  private readonly probingNodes = new Set<string>();
  /** On a Cluster: what the last failing node said, which its "every node failed" error hides behind a closed connection. */
  private lastNodeDiagnosis?: RedisErrorDiagnosis;
  /**
   * Called instead of logging when the server cannot be used at all (REDIS_CLUSTER=true on a single Redis): no retry
   * fixes that, so RedisConnections refuses the endpoint for every role, with one line.
   */
  onServerUnusable?: (diagnosis: RedisErrorDiagnosis) => void;

  /** A role's client, or (with `duplicateOf`) a client a consumer made from that role's client, adopted as it is. */
  constructor(
    readonly role: RedisConnectionName,
    private readonly endpoint: RedisEndpoint,
    private readonly config: RedisConfig,
    private readonly now: () => number = Date.now,
    duplicateOf?: { client: RedisClient; commands: CommandCounter },
  ) {
    this.logger = new Logger(`Redis:${role}`);
    this.createdAt = now();
    this.downSince = this.createdAt;
    const retry = (attempt: number) => reconnectDelay(attempt, this.lastError !== undefined && SLOW_RETRY_KINDS.has(this.lastError.kind));
    if (duplicateOf) {
      this.commands = duplicateOf.commands;
      this.client = duplicateOf.client;
      // ioredis copied the role's retryStrategy, which reads the role's last error: this client paces by its own.
      if (isClusterClient(this.client)) this.client.options.clusterRetryStrategy = retry;
      else this.client.options.retryStrategy = retry;
    } else if (config.cluster) {
      this.commands = new CommandCounter();
      const { seed, options } = buildClusterOptions(role as RedisRole, endpoint, config, retry);
      this.client = this.commands.createCluster(seed, options, (copy) => this.adoptDuplicate(copy));
      this.client.on('node error', (error: Error, node: string) => this.onNodeError(error, node));
      // The sharded subscribers' connections report theirs apart, under their node's address.
      this.client.on('nodeError', (error: Error, node: string) => this.onNodeError(error, node));
      // ioredis drops a node whose connection failed and creates it again at the next slot refresh ('+node'), every few
      // hundred ms while a dead master is still in the slot map: only a node that answers again ends its episode.
      this.client.on('+node', (node: Redis) => node.once('ready', () => this.nodeErrors.delete(`${node.options.host}:${node.options.port}`)));
      this.logger.log(`connecting to the Redis Cluster of ${endpoint.redacted} as ${config.keyPrefix}:${role}:${process.pid}`);
    } else {
      this.commands = new CommandCounter();
      this.client = this.commands.createClient(buildRedisOptions(role as RedisRole, endpoint, config, retry), (copy) => this.adoptDuplicate(copy));
      this.logger.log(`connecting to ${endpoint.redacted} as ${config.keyPrefix}:${role}:${process.pid}`);
    }
    this.client.on('connect', () => this.onConnect());
    this.client.on('ready', () => this.onReady());
    this.client.on('error', (error: Error) => this.onError(error));
    this.client.on('close', () => this.onClose());
    this.client.on('reconnecting', () => this.onReconnecting());
    this.client.on('end', () => this.onEnd());
  }

  status(): RedisConnectionStatus {
    return {
      role: this.role,
      endpoint: this.endpoint.variable,
      state: this.state,
      downSince: this.state === 'ready' ? undefined : this.downSince,
      reconnectAttempts: this.attempts,
      lastError: this.lastError,
    };
  }

  history(): RedisConnectionHistory {
    return { reconnectAttempts: this.totalReconnectAttempts, disconnects: this.totalDisconnects };
  }

  /** Clients made from this one with duplicate() that are still open, oldest first. */
  openDuplicates(): RedisConnection[] {
    return [...this.duplicates];
  }

  /** QUIT when ready so Redis sees a clean goodbye; otherwise just drop the socket. Never waits on a dead server. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    if (this.client.status === 'ready') {
      const quit = this.client.quit().then(
        () => true,
        () => false,
      );
      if (await withDeadline(quit, CLOSE_TIMEOUT_MS, () => false)) return;
    }
    this.drop();
  }

  /** Stops using this server for good (RedisConnections logs why, once): no reconnect until the process restarts with another REDIS_URL. */
  refuse(diagnosis: RedisErrorDiagnosis): void {
    if (this.state === 'closed' || this.state === 'refused') return;
    this.state = 'refused';
    this.lastError = diagnosis;
    this.downSince ??= this.now();
    clearTimeout(this.handshakeTimer);
    for (const duplicate of this.duplicates) duplicate.refuse(diagnosis);
    this.drop();
  }

  /** Which URL it connects to. */
  get endpointName(): RedisUrlVariable {
    return this.endpoint.variable;
  }

  private get isDuplicate(): boolean {
    return this.role.endsWith('-duplicate');
  }

  private get usable(): boolean {
    return this.state !== 'closed' && this.state !== 'refused';
  }

  private drop(): void {
    // ioredis listens for one error per socket; a TLS socket cut mid-handshake can emit a second one
    // (the server's alert), which would crash the process as an uncaught exception.
    this.stream?.on('error', () => undefined);
    this.client.disconnect();
  }

  /** The socket of a single-Redis client; a Cluster's sockets are its nodes', which it supervises itself. */
  private get stream(): Redis['stream'] | undefined {
    return isClusterClient(this.client) ? undefined : this.client.stream;
  }

  private adoptDuplicate(client: RedisClient): void {
    const duplicate = new RedisConnection(`${this.role as RedisRole}-duplicate`, this.endpoint, this.config, this.now, { client, commands: this.commands });
    duplicate.onServerUnusable = (diagnosis) => this.onServerUnusable?.(diagnosis);
    this.duplicates.add(duplicate);
    // Ended is not always for good: BullMQ interrupts its blocking wait by ending that connection, then connects it again.
    client.on('end', () => this.duplicates.delete(duplicate));
    client.on('connect', () => this.duplicates.add(duplicate));
    if (this.state === 'refused' && this.lastError) duplicate.refuse(this.lastError);
  }

  private onConnect(): void {
    clearTimeout(this.handshakeTimer);
    this.handshakeQuiet = true;
    // A duplicate connected again after its 'end' (BullMQ resetting its blocking connection) is supervised again;
    // left 'closed', it would read as disconnected for good while it serves.
    if (this.state === 'closed' && this.isDuplicate) this.state = 'down';
    // A Cluster's handshake is its slot refresh, bounded by slotsRefreshTimeout.
    const stream = this.stream;
    if (!stream) return;
    this.handshakeTimer = setTimeout(() => {
      if (!this.usable || this.client.status !== 'connect' || this.stream !== stream) return;
      const error = Object.assign(new Error(`no handshake reply within ${HANDSHAKE_TIMEOUT_MS / 1000} s`), { code: HANDSHAKE_TIMEOUT_CODE });
      this.onError(error);
      // ioredis sees the socket close and reconnects with the retry strategy.
      stream.destroy();
    }, HANDSHAKE_TIMEOUT_MS);
    this.handshakeTimer.unref();
  }

  private onReady(): void {
    clearTimeout(this.handshakeTimer);
    if (!this.usable) return;
    this.lastNodeDiagnosis = undefined;
    const now = this.now();
    if (this.attempts === 0) {
      // A duplicate's first connect is part of its consumer's start (the roles' lines already say Redis is there).
      if (!this.isDuplicate) this.logger.log(`ready in ${now - this.createdAt} ms`);
    } else {
      this.logger.log(`recovered after ${formatDuration(now - (this.downSince ?? now))} (${this.attempts} reconnect attempts)`);
    }
    this.everReady = true;
    this.state = 'ready';
    this.downSince = undefined;
    this.attempts = 0;
    this.lastError = undefined;
  }

  private onError(error: Error): void {
    this.handshakeQuiet = false;
    if (!this.usable) return;
    // A Cluster that is ready emits 'error' for one part of it (a sharded subscriber that failed to connect during a
    // failover, which it retries): the client stays usable, and no 'ready' would ever follow a 'down' set here.
    // That error carries no node: when a node's own error was logged, it is that node's (named there, not as the seed).
    if (isClusterClient(this.client) && this.client.status === 'ready' && this.state === 'ready') {
      const namedNode = this.probingNodes.size > 0 || [...this.nodeErrors.keys()].some((node) => node !== SHARDED_SUBSCRIBERS);
      if (!namedNode) this.onNodeError(error, SHARDED_SUBSCRIBERS);
      return;
    }
    let diagnosis = diagnoseRedisError(error, this.endpoint);
    if (this.serverUnusable(diagnosis)) return;
    if (this.lastNodeDiagnosis && (diagnosis.kind === 'closed' || diagnosis.kind === 'other')) diagnosis = this.lastNodeDiagnosis;
    // The command role's HELLO timing out (its command timeout) while handshaking is the same silent server.
    if (diagnosis.kind === 'timeout' && this.client.status === 'connect') {
      diagnosis = diagnoseRedisError(Object.assign(new Error(`no handshake reply within the command timeout`), { code: HANDSHAKE_TIMEOUT_CODE }), this.endpoint);
    }
    // Cutting the socket below makes the rest of that handshake fail too: keep the cause, not its echo.
    if (this.lastError && ECHOED_BY[this.lastError.kind]?.has(diagnosis.kind)) return;
    // ioredis reports a refused SELECT during its handshake and then goes ready on database 0, flushing the
    // commands queued meanwhile there. Cutting the socket now keeps them out of the wrong database; they fail
    // or wait for a reconnect, which is retried like a wrong password.
    if (diagnosis.kind === 'database') this.stream?.destroy();
    // A reset before ready, or a TLS handshake that timed out, may hide a full server or a plain-text one.
    if (this.state !== 'ready' && mayHideCause(diagnosis, this.endpoint)) {
      void this.probeThenReport(diagnosis);
      return;
    }
    this.report(diagnosis);
  }

  private async probeThenReport(diagnosis: RedisErrorDiagnosis): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const closer = await closerDiagnosis(diagnosis, this.endpoint, this.config);
      if (this.usable && this.state !== 'ready') this.report(closer);
    } finally {
      this.probing = false;
    }
  }

  private report(diagnosis: RedisErrorDiagnosis): void {
    if (this.lastError && ECHOED_BY[this.lastError.kind]?.has(diagnosis.kind)) return;
    const changed = diagnosis.kind !== this.lastError?.kind;
    this.lastError = diagnosis;
    if (this.state === 'ready') {
      this.markDown(`connection lost: ${diagnosis.reason}; ${diagnosis.fix}`);
    } else if (changed) {
      const verb = this.everReady ? 'still down' : 'cannot connect';
      this.state = 'down';
      const pace = SLOW_RETRY_KINDS.has(diagnosis.kind) ? 'every 30 s (retrying faster cannot fix this)' : 'every 1-2 s';
      this.logger.error(`${verb}: ${diagnosis.reason}; ${diagnosis.fix}. Retrying ${pace}.`);
    }
  }

  /**
   * A Cluster's node failing while the Cluster stays ready (a master killed before its replica takes over): one line
   * per node and kind of error. The Cluster's own 'error' (every node failed) goes through onError.
   */
  private onNodeError(error: Error, node: string): void {
    if (!this.usable) return;
    // The node's address, not the seed's: "connection refused by <seed>" named a node that was fine.
    const separator = node.lastIndexOf(':');
    const address = separator > 0 ? { host: node.slice(0, separator), port: Number(node.slice(separator + 1)) } : undefined;
    const endpoint = { ...this.endpoint, ...address };
    let diagnosis = diagnoseRedisError(error, endpoint);
    // The sharded subscribers' errors carry no node: the seed's address in their reason named a node that was fine.
    if (!address) diagnosis = { ...diagnosis, reason: diagnosis.reason.replace(`${endpoint.host}:${endpoint.port}`, 'a node') };
    if (this.serverUnusable(diagnosis)) return;
    this.lastNodeDiagnosis = diagnosis;
    // Before the Cluster is ready its own error says it, with this cause (onError): one line, not one per node.
    if (this.state !== 'ready' || this.nodeErrorLogged(node, diagnosis.kind)) return;
    // A master at its maxclients writes its error and closes: ioredis, whose handshake is under way, mostly sees EPIPE
    // or a reset. A raw look at the node says which, as for a single Redis (probeThenReport).
    if (diagnosis.kind === 'closed' && address) {
      if (this.probingNodes.has(node)) return;
      this.probingNodes.add(node);
      void closerDiagnosis(diagnosis, endpoint, this.config).then((closer) => {
        this.probingNodes.delete(node);
        this.logNodeError(node, closer);
      });
      return;
    }
    this.logNodeError(node, diagnosis);
  }

  /** Whether the node was logged with this kind of error, or with one this kind is the echo of (a full server's reset). */
  private nodeErrorLogged(node: string, kind: RedisErrorKind): boolean {
    const kinds = this.nodeErrors.get(node);
    return kinds !== undefined && (kinds.has(kind) || [...kinds].some((logged) => ECHOED_BY[logged]?.has(kind)));
  }

  /** One line per node and kind of error. A dead node alternates "refused" (connecting) and "closed" (the command on that connection): both once. */
  private logNodeError(node: string, diagnosis: RedisErrorDiagnosis): void {
    if (!this.usable || this.state !== 'ready' || this.nodeErrorLogged(node, diagnosis.kind)) return;
    this.nodeErrors.set(node, (this.nodeErrors.get(node) ?? new Set<RedisErrorKind>()).add(diagnosis.kind));
    const what = node === SHARDED_SUBSCRIBERS ? node : `cluster node ${node}`;
    // A full node is not a failover: what to do about it is the operator's.
    const then = diagnosis.kind === 'maxclients' ? `${diagnosis.fix}. The cluster client retries it` : 'the cluster client retries it and follows a failover';
    this.logger.warn(`${what}: ${diagnosis.reason}; ${then}`);
  }

  private serverUnusable(diagnosis: RedisErrorDiagnosis): boolean {
    if (diagnosis.kind !== 'cluster' || !this.onServerUnusable) return false;
    this.onServerUnusable(diagnosis);
    return true;
  }

  private onClose(): void {
    clearTimeout(this.handshakeTimer);
    const quiet = this.handshakeQuiet;
    this.handshakeQuiet = false;
    // A client its consumer closes on purpose (BullMQ's blocking connection, as the worker stops) ends instead of
    // reconnecting, which ioredis settles in this same event: only a close it reconnects from is a lost connection.
    if (this.state === 'ready')
      queueMicrotask(() => {
        if (this.usable && this.state === 'ready' && this.client.status !== 'end') this.markDown('connection lost: closed by the server or the network; reconnecting');
      });
    // A Redis at its maxclients writes its error and hangs up. Reached through a proxy, the error arrives whole, as the
    // reply to CLIENT SETNAME, whose errors ioredis ignores: the connection just closes, and only a raw look says why.
    else if (quiet && this.usable && this.stream) void this.probeThenReport(diagnoseRedisError(new Error('Connection is closed.'), this.endpoint));
  }

  private onEnd(): void {
    clearTimeout(this.handshakeTimer);
    if (this.usable) this.state = 'closed';
  }

  private onReconnecting(): void {
    if (!this.usable) return;
    this.attempts += 1;
    this.totalReconnectAttempts += 1;
    const now = this.now();
    const downFor = now - (this.downSince ?? now);
    if (downFor >= SUMMARY_INTERVAL_MS && now - this.lastSummaryAt >= SUMMARY_INTERVAL_MS) {
      this.lastSummaryAt = now;
      const reason = this.lastError ? `; last error: ${this.lastError.reason}` : '';
      this.logger.warn(`still down after ${formatDuration(downFor)}, ${this.attempts} reconnect attempts${reason}`);
    }
  }

  private markDown(message: string): void {
    this.state = 'down';
    this.totalDisconnects += 1;
    this.downSince = this.now();
    this.lastSummaryAt = this.downSince;
    this.logger.error(message);
  }
}
