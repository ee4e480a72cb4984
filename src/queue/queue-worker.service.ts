import { hostname } from 'node:os';
import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import { withDeadline } from '../common/with-deadline';
import { AppConfig } from '../config';
import { INFO_TRACKED_REFUSALS, RedisConnections, RedisDuplicate, redisRoleOf } from '../redis';
import type { JobEvent } from './job-handler.decorator';
import { JobHandlerRegistry } from './job-handler.registry';
import { JOBS_QUEUE } from './queue.constants';
import { JobOutcome, QueueMetrics } from './queue.metrics';
import { WorkerGuard, WorkerGuardHealth } from './worker-guard';

export interface WorkerHealth extends WorkerGuardHealth {
  readonly running: boolean;
  readonly connected: boolean;
  /** Since when the blocking connection has not been ready, and why, while it is not. */
  readonly disconnectedForMs?: number;
  readonly connectionError?: string;
  /** Redis is a server this process refuses to use (a cluster node): the worker is stopped. */
  readonly refused: boolean;
  readonly wedged: boolean;
  readonly recreated: number;
  readonly active: number;
}

/** How often the watchdog looks; it reads connection state only and sends no Redis command. */
const WATCHDOG_INTERVAL_MS = 2_000;
const FORCE_CLOSE_TIMEOUT_MS = 2_000;
/** A job whose handler Redis refused (out of memory...) goes back to the queue for this long, without using an attempt. */
const REFUSED_JOB_DELAY_MS = 5_000;

/**
 * Runs the BullMQ worker of this process (APP_ROLE worker or all) and keeps it honest:
 * - tuned for a small idle bill (long drainDelay: a new job still wakes it at once; long stalledInterval);
 * - a watchdog recreates it when it is wedged: BullMQ has had workers whose blocking connection never
 *   came back after a connection reset, so they stopped consuming while everything looked fine;
 * - on shutdown it stops taking jobs and lets those in flight finish within the grace period.
 */
@Injectable()
export class QueueWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('QueueWorker');
  private worker?: Worker;
  private watchdog?: NodeJS.Timeout;
  private blocking?: RedisDuplicate;
  /** Redis is known to refuse still while INFO shows the state (full, a replica, loading): a quiet worker has not recovered. */
  private readonly guard = new WorkerGuard(this.logger, Date.now, () => this.connections.refusals().some((refusal) => INFO_TRACKED_REFUSALS.has(refusal.kind)));
  private stuckSince?: number;
  private recreated = 0;
  private lastErrorMessage?: string;
  private stopping = false;
  /** Jobs in flight in this process (BullMQ keeps no public count). */
  private active = 0;

  constructor(
    private readonly config: AppConfig,
    private readonly connections: RedisConnections,
    private readonly handlers: JobHandlerRegistry,
    private readonly metrics: QueueMetrics,
  ) {}

  get enabled(): boolean {
    return this.config.appRole !== 'web';
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    this.worker = this.createWorker();
    const { drainDelaySeconds, stalledIntervalMs, concurrency } = this.config.queue;
    this.logger.log(`processing "${JOBS_QUEUE}" (concurrency ${concurrency}, drainDelay ${drainDelaySeconds} s, stalledInterval ${stalledIntervalMs / 1000} s)`);
    this.watchdog = setInterval(() => void this.checkWedged(), WATCHDOG_INTERVAL_MS);
    this.watchdog.unref();
  }

  /** Before RedisModule closes the connections (onApplicationShutdown). */
  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    clearInterval(this.watchdog);
    this.guard.stop();
    if (!this.worker) return;
    const active = this.active;
    // Nothing to wait for: close at once (worker.close() would wait on an unreachable Redis until the grace ran out).
    const grace = active > 0 ? this.config.queue.shutdownGraceMs : 0;
    this.logger.log(active > 0 ? `stopping: no new jobs; waiting up to ${grace / 1000} s for ${active} in flight` : 'stopping: no jobs in flight');
    const finished = grace > 0 && (await this.closeWithin(this.worker, false, grace));
    if (!finished) {
      if (active > 0) this.logger.warn('grace period over: leaving the jobs still running to stalled-job recovery (another worker retries them)');
      await this.closeWithin(this.worker, true, FORCE_CLOSE_TIMEOUT_MS);
    }
    this.logger.log('stopped');
  }

  health(): WorkerHealth {
    const blocking = this.blocking?.status();
    const connected = blocking?.state === 'ready';
    return {
      running: this.worker?.isRunning() ?? false,
      connected,
      ...(blocking && !connected ? { disconnectedForMs: Date.now() - (blocking.downSince ?? Date.now()), connectionError: blocking.lastError?.reason } : {}),
      refused: this.connections.serverRefusal('queue') !== undefined,
      wedged: this.stuckSince !== undefined && Date.now() - this.stuckSince >= this.wedgeTimeoutMs,
      recreated: this.recreated,
      active: this.active,
      ...this.guard.health(),
    };
  }

  private get wedgeTimeoutMs(): number {
    return this.config.queue.wedgeTimeoutMs;
  }

  private createWorker(): Worker {
    const { drainDelaySeconds, stalledIntervalMs, concurrency } = this.config.queue;
    const worker = new Worker(JOBS_QUEUE, (job, token) => this.process(job, token), {
      connection: this.connections.client('queue'),
      prefix: this.config.redis.queuePrefix,
      // BullMQ names the blocking connection "<prefix>:<base64(queue)>:w:<name>": Queue.getWorkers() and bull-board
      // find workers by that name, and CLIENT LIST tells this instance's worker from the others by the name's end.
      name: `${hostname()}:${process.pid}`,
      concurrency,
      drainDelay: drainDelaySeconds,
      stalledInterval: stalledIntervalMs,
      maxStalledCount: 1,
    });
    // BullMQ duplicated the queue client for its blocking connection in the constructor; RedisModule supervises it.
    this.blocking = this.connections.latestDuplicate('queue');
    worker.on('failed', (job, error) => this.onFailed(job, error));
    worker.on('completed', (job, result) => this.onCompleted(job, result));
    worker.on('stalled', (jobId) => this.onStalled(jobId));
    worker.on('error', (error) => this.onError(worker, error));
    return worker;
  }

  private async process(job: Job, token: string | undefined): Promise<unknown> {
    const handler = this.handlers.get(job.name);
    // A job left by an older release whose kind is gone: retrying cannot help.
    if (!handler) throw new UnrecoverableError(`no @JobHandler for job name "${job.name}" in this release`);
    this.active += 1;
    const started = performance.now();
    const disconnectsBefore = this.disconnects();
    let outcome: JobOutcome = 'failed';
    try {
      const result = await handler.run(job);
      outcome = 'completed';
      return result;
    } catch (error) {
      throw await this.failureOf(job, token, error, this.disconnects() > disconnectsBefore);
    } finally {
      this.active -= 1;
      this.metrics.observeJob(job.name, outcome, (performance.now() - started) / 1000);
    }
  }

  private onCompleted(job: Job, result: unknown): void {
    this.tell('completed', job, result);
  }

  private onFailed(job: Job | undefined, error: Error): void {
    if (!job) return;
    const attempts = job.opts.attempts ?? 1;
    if (job.attemptsMade >= attempts || error instanceof UnrecoverableError) {
      this.logger.error(`job ${job.id} (${job.name}) failed for good after ${job.attemptsMade} attempt(s): ${error.message}`);
      this.tell('failed', job, error);
    } else {
      this.logger.warn(`job ${job.id} (${job.name}) attempt ${job.attemptsMade}/${attempts} failed, will retry: ${error.message}`);
    }
  }

  private tell(event: JobEvent, job: Job, outcome: unknown): void {
    for (const listener of this.handlers.get(job.name)?.listeners[event] ?? []) {
      // A listener's failure must not reach BullMQ's event emitter (an unhandled rejection ends the process).
      Promise.resolve()
        .then(() => listener.notify(job, outcome))
        .catch((error: unknown) => this.logger.warn(`${listener.owner} failed for job ${job.id}: ${error instanceof Error ? error.message : String(error)}`));
    }
  }

  /** Connections this process lost so far, all clients: a failed attempt during which one was lost is put back. */
  private disconnects(): number {
    return this.connections.clientRoles().reduce((sum, role) => sum + this.connections.history(role).disconnects, 0);
  }

  /**
   * A job Redis refused to store (out of memory, a read-only replica) is not the job's fault: it goes back to the
   * queue without using an attempt (so it is not failed for good within seconds), and the guard pauses the worker.
   * On a Cluster a refused cache write is one tenant's shard (its {t:<tenant>} slot), not the queue's: only that job
   * goes back. Paused for it, the worker held up every tenant's jobs while the shard was full (other tenants' reports
   * took 3, 7, 14, then 28 s); BullMQ's own refused commands still pause it.
   */
  private async failureOf(job: Job, token: string | undefined, error: unknown, lostConnection: boolean): Promise<unknown> {
    if (!token || !this.worker) return error;
    const unavailable = this.connections.unavailability(error);
    let reason: string;
    if (unavailable && unavailable.kind !== 'unreachable') {
      if (!(this.config.redis.cluster && redisRoleOf(error) === 'cache')) this.guard.onError(this.worker, unavailable.kind, unavailable.reason);
      reason = unavailable.reason;
    } else {
      // An attempt during which one of this process's connections was lost (the handler's writes go through the
      // command client, which fails fast while BullMQ's own waits) says nothing about the job. Reconnecting is
      // RedisModule's business; a timeout on a live connection still counts.
      const down = this.connections.statuses().find((status) => status.state !== 'ready');
      if (!down && !lostConnection) return error;
      const cause = error instanceof Error ? error.message : String(error);
      reason = down ? `Redis connection ${down.role} is ${down.state} (${cause})` : `a Redis connection was lost during it (${cause})`;
    }
    try {
      await job.moveToDelayed(Date.now() + REFUSED_JOB_DELAY_MS, token);
    } catch {
      return error;
    }
    this.logger.warn(`job ${job.id} (${job.name}) put back for ${REFUSED_JOB_DELAY_MS / 1000} s without using an attempt: ${reason}`);
    return new DelayedError();
  }

  private onStalled(jobId: string): void {
    this.logger.warn(`job ${jobId} recovered: its worker stopped renewing the lock (it died or hung), so it is back in the queue to be retried`);
  }

  /**
   * Connection errors are logged by RedisModule; others are logged once per distinct message, and those that
   * repeat (Redis refusing every command) pause the worker through the guard rather than spin it.
   */
  private onError(worker: Worker, error: Error): void {
    const unavailable = this.connections.unavailability(error);
    if (unavailable?.kind !== 'unreachable' && worker === this.worker) this.guard.onError(worker, error.message, unavailable?.reason);
    if (error.message === this.lastErrorMessage) return;
    this.lastErrorMessage = error.message;
    this.logger.debug(`worker error: ${error.message}`);
  }

  private async checkWedged(): Promise<void> {
    if (this.stopping || !this.worker) return;
    if (this.connections.serverRefusal('queue')) {
      // RedisModule refused the server and logged why: a worker has nothing to do there.
      const refused = this.worker;
      this.worker = undefined;
      await this.closeWithin(refused, true, FORCE_CLOSE_TIMEOUT_MS);
      return;
    }
    const redisUp = this.connections.status('queue').state === 'ready';
    const blocking = this.blocking?.status();
    // Paused by the guard, or a blocking connection that says why it is down (a full server), is not wedged.
    const stopped = !this.worker.isRunning() && !this.guard.health().paused;
    const silentlyDisconnected = blocking !== undefined && blocking.state !== 'ready' && blocking.lastError === undefined;
    const stuck = redisUp && (stopped || silentlyDisconnected);
    if (!stuck) {
      this.stuckSince = undefined;
      return;
    }
    this.stuckSince ??= Date.now();
    if (Date.now() - this.stuckSince < this.wedgeTimeoutMs) return;

    this.logger.warn(
      `worker wedged: Redis has been reachable for ${this.wedgeTimeoutMs / 1000} s but the worker is ${this.worker.isRunning() ? `not consuming (blocking connection ${blocking?.state})` : 'not running'}: recreating it`,
    );
    const wedged = this.worker;
    this.worker = this.createWorker();
    this.recreated += 1;
    this.stuckSince = undefined;
    await this.closeWithin(wedged, true, FORCE_CLOSE_TIMEOUT_MS);
  }

  /** worker.close() never returns while Redis is unreachable, so every close has its own deadline. */
  private async closeWithin(worker: Worker, force: boolean, timeoutMs: number): Promise<boolean> {
    try {
      return await withDeadline(
        worker.close(force).then(() => true),
        timeoutMs,
        () => false,
      );
    } catch (error) {
      this.logger.warn(`closing the worker failed: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
  }
}
