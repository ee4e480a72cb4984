import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { withDeadline } from '../common/with-deadline';
import { AppConfig } from '../config';
import { RedisConnections } from '../redis';
import type { JobEvent } from './job-handler.decorator';
import { JobHandlerRegistry } from './job-handler.registry';
import { JOBS_QUEUE } from './queue.constants';
import { JobOutcome, QueueMetrics } from './queue.metrics';

export interface WorkerHealth {
  readonly running: boolean;
  readonly connected: boolean;
  readonly wedged: boolean;
  readonly recreated: number;
  readonly active: number;
}

/** How often the watchdog looks; it reads connection state only and sends no Redis command. */
const WATCHDOG_INTERVAL_MS = 2_000;
const FORCE_CLOSE_TIMEOUT_MS = 2_000;

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
  private blockingClient?: Redis;
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
    return {
      running: this.worker?.isRunning() ?? false,
      connected: this.blockingClient?.status === 'ready',
      wedged: this.stuckSince !== undefined && Date.now() - this.stuckSince >= this.wedgeTimeoutMs,
      recreated: this.recreated,
      active: this.active,
    };
  }

  private get wedgeTimeoutMs(): number {
    return this.config.queue.wedgeTimeoutMs;
  }

  private createWorker(): Worker {
    const { drainDelaySeconds, stalledIntervalMs, concurrency } = this.config.queue;
    const worker = new Worker(JOBS_QUEUE, (job) => this.process(job), {
      connection: this.connections.client('queue'),
      prefix: this.config.redis.keyPrefix,
      concurrency,
      drainDelay: drainDelaySeconds,
      stalledInterval: stalledIntervalMs,
      maxStalledCount: 1,
    });
    worker.on('failed', (job, error) => this.onFailed(job, error));
    worker.on('completed', (job, result) => this.onCompleted(job, result));
    worker.on('error', (error) => this.onError(error));
    this.blockingClient = undefined;
    void this.adoptBlockingClient(worker);
    return worker;
  }

  /** Names the worker's own blocking connection so CLIENT LIST tells it apart from the shared queue client. */
  private async adoptBlockingClient(worker: Worker): Promise<void> {
    // Given an ioredis client, BullMQ duplicates it: the blocking client is ioredis too.
    const client = (await worker.getBackend().blockingClient) as Redis | undefined;
    if (!client || worker !== this.worker) return;
    this.blockingClient = client;
    client.options.connectionName = `${this.config.redis.keyPrefix}:queue-blocking:${process.pid}`;
    if (client.status === 'ready') await client.client('SETNAME', client.options.connectionName).catch(() => undefined);
  }

  private async process(job: Job): Promise<unknown> {
    const handler = this.handlers.get(job.name);
    // A job left by an older release whose kind is gone: retrying cannot help.
    if (!handler) throw new UnrecoverableError(`no @JobHandler for job name "${job.name}" in this release`);
    this.active += 1;
    const started = performance.now();
    let outcome: JobOutcome = 'failed';
    try {
      const result = await handler.run(job);
      outcome = 'completed';
      return result;
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

  /** Connection errors are logged by RedisModule; log others once per distinct message. */
  private onError(error: Error): void {
    if (error.message === this.lastErrorMessage) return;
    this.lastErrorMessage = error.message;
    this.logger.debug(`worker error: ${error.message}`);
  }

  private async checkWedged(): Promise<void> {
    if (this.stopping || !this.worker) return;
    const redisUp = this.connections.status('queue').state === 'ready';
    const stuck = redisUp && (!this.worker.isRunning() || (this.blockingClient !== undefined && this.blockingClient.status !== 'ready'));
    if (!stuck) {
      this.stuckSince = undefined;
      return;
    }
    this.stuckSince ??= Date.now();
    if (Date.now() - this.stuckSince < this.wedgeTimeoutMs) return;

    this.logger.warn(
      `worker wedged: Redis has been reachable for ${this.wedgeTimeoutMs / 1000} s but the worker is ${this.worker.isRunning() ? `not consuming (blocking connection ${this.blockingClient?.status})` : 'not running'}: recreating it`,
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
      return await withDeadline(worker.close(force).then(() => true), timeoutMs, () => false);
    } catch (error) {
      this.logger.warn(`closing the worker failed: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
  }
}
