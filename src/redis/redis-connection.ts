import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { withDeadline } from '../common/with-deadline';
import type { RedisConfig, RedisEndpoint } from '../config';
import { CommandCounter } from './command-counter';
import { diagnoseRedisError, RedisErrorDiagnosis, RedisErrorKind } from './redis-error';
import { buildRedisOptions, reconnectDelay } from './redis-options';
import type { RedisRole } from './redis.tokens';

export type RedisConnectionState = 'connecting' | 'ready' | 'down' | 'closed';

export interface RedisConnectionStatus {
  readonly role: RedisRole;
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
const SLOW_RETRY_KINDS: ReadonlySet<RedisErrorKind> = new Set(['auth', 'tls', 'database']);
const CLOSE_TIMEOUT_MS = 1_000;

/**
 * One ioredis client and what it has been through. It owns the client's error listener (without one,
 * every failed reconnect prints "[ioredis] Unhandled error event") and turns the event stream into
 * one log line per state change, plus at most one summary a minute while Redis stays down.
 */
export class RedisConnection {
  readonly client: Redis;
  /** Commands this client (and the clients duplicated from it) wrote, for metrics. */
  readonly commands = new CommandCounter();
  private readonly logger: Logger;
  private readonly createdAt: number;
  private state: RedisConnectionState = 'connecting';
  private downSince?: number;
  private everReady = false;
  private attempts = 0;
  private lastError?: RedisErrorDiagnosis;
  private lastSummaryAt = 0;
  private totalReconnectAttempts = 0;
  private totalDisconnects = 0;

  constructor(
    readonly role: RedisRole,
    private readonly endpoint: RedisEndpoint,
    config: RedisConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.logger = new Logger(`Redis:${role}`);
    this.createdAt = now();
    this.downSince = this.createdAt;
    const retry = (attempt: number) => reconnectDelay(attempt, this.lastError !== undefined && SLOW_RETRY_KINDS.has(this.lastError.kind));
    this.client = this.commands.createClient(buildRedisOptions(role, endpoint, config, retry));
    this.logger.log(`connecting to ${endpoint.redacted} as ${config.keyPrefix}:${role}:${process.pid}`);
    this.client.on('ready', () => this.onReady());
    this.client.on('error', (error: Error) => this.onError(error));
    this.client.on('close', () => this.onClose());
    this.client.on('reconnecting', () => this.onReconnecting());
  }

  status(): RedisConnectionStatus {
    return {
      role: this.role,
      state: this.state,
      downSince: this.state === 'ready' ? undefined : this.downSince,
      reconnectAttempts: this.attempts,
      lastError: this.lastError,
    };
  }

  history(): RedisConnectionHistory {
    return { reconnectAttempts: this.totalReconnectAttempts, disconnects: this.totalDisconnects };
  }

  /** QUIT when ready so Redis sees a clean goodbye; otherwise just drop the socket. Never waits on a dead server. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.client.status === 'ready') {
      const quit = this.client.quit().then(() => true, () => false);
      if (await withDeadline(quit, CLOSE_TIMEOUT_MS, () => false)) return;
    }
    // ioredis listens for one error per socket; a TLS socket cut mid-handshake can emit a second one
    // (the server's alert), which would crash the process as an uncaught exception.
    this.client.stream?.on('error', () => undefined);
    this.client.disconnect();
  }

  private onReady(): void {
    if (this.state === 'closed') return;
    const now = this.now();
    if (this.attempts === 0) {
      this.logger.log(`ready in ${now - this.createdAt} ms`);
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
    if (this.state === 'closed') return;
    const diagnosis = diagnoseRedisError(error, this.endpoint);
    // Cutting the socket below makes the rest of that handshake fail too: keep the cause, not its echo.
    if (this.lastError?.kind === 'database' && (diagnosis.kind === 'other' || diagnosis.kind === 'closed')) return;
    // ioredis reports a refused SELECT during its handshake and then goes ready on database 0, flushing the
    // commands queued meanwhile there. Cutting the socket now keeps them out of the wrong database; they fail
    // or wait for a reconnect, which is retried like a wrong password.
    if (diagnosis.kind === 'database') this.client.stream?.destroy();
    const changed = diagnosis.kind !== this.lastError?.kind;
    this.lastError = diagnosis;
    if (this.state === 'ready') {
      this.markDown(`connection lost: ${diagnosis.reason}; ${diagnosis.fix}`);
    } else if (changed) {
      const verb = this.everReady ? 'still down' : 'cannot connect';
      this.state = 'down';
      this.logger.error(`${verb}: ${diagnosis.reason}; ${diagnosis.fix}. Retrying with backoff (at most 30 s apart).`);
    }
  }

  private onClose(): void {
    if (this.state === 'ready') this.markDown('connection lost: closed by the server or the network; reconnecting');
  }

  private onReconnecting(): void {
    if (this.state === 'closed') return;
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

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
