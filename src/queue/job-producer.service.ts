import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import type { Job, Queue } from 'bullmq';
import { withDeadline } from '../common/with-deadline';
import { AppConfig } from '../config';
import { RedisConnections } from '../redis';
import { JOBS_QUEUE, KEEP_COMPLETED, KEEP_FAILED, PRODUCER_TIMEOUT_MS, RETRY_BACKOFF } from './queue.constants';
import { QueueUnavailableError } from './queue-unavailable.error';
import { TenantWorkQuota } from './tenant-work-quota';

/** Errors that mean Redis could not be reached, as opposed to a bug or a refused request. */
const REDIS_UNAVAILABLE = /Command timed out|Connection is closed|Stream isn't writeable|ECONN|EPIPE|ETIMEDOUT|MaxRetriesPerRequest|LOADING|READONLY/i;

/**
 * Enqueues jobs and reads them back. Fails fast while Redis is down: a job is either accepted
 * (stored in Redis, then never lost) or refused with QueueUnavailableError; it never waits in memory.
 */
@Injectable()
export class JobProducer {
  private readonly logger = new Logger('JobProducer');

  constructor(
    @InjectQueue(JOBS_QUEUE) private readonly queue: Queue,
    private readonly connections: RedisConnections,
    private readonly config: AppConfig,
    private readonly quota: TenantWorkQuota,
  ) {
    // As early as possible: BullMQ prints an 'error' nobody listens to. Connection trouble is already
    // logged once per state change by RedisModule.
    this.queue.on('error', (error) => this.logger.debug(`queue connection: ${error.message}`));
  }

  /** Adds a job; with the same jobId again it returns the existing job instead of adding a second. */
  add<T extends object>(name: string, data: T, jobId: string): Promise<Job<T>> {
    return this.whileRedisIsUp(`enqueue a ${name} job`, async () => {
      // Refused (429) before anything is stored when the job's tenant has as much in flight as it may.
      await this.quota.admit(jobId, data);
      return this.queue.add(name, data, {
        jobId,
        attempts: this.config.queue.jobAttempts,
        backoff: RETRY_BACKOFF,
        removeOnComplete: KEEP_COMPLETED,
        removeOnFail: KEEP_FAILED,
      }) as Promise<Job<T>>;
    });
  }

  getJob(jobId: string): Promise<Job | undefined> {
    return this.whileRedisIsUp('read a job', () => this.queue.getJob(jobId));
  }

  /** The job's state, failing fast like getJob: a timed-out read is "Redis unavailable" (503), not a bug (500). */
  getState(job: Job): ReturnType<Job['getState']> {
    return this.whileRedisIsUp('read a job state', () => job.getState());
  }

  /** Moves a failed job back to waiting, failing fast like add. */
  retry(job: Job): Promise<void> {
    return this.whileRedisIsUp('retry a job', () => job.retry('failed'));
  }

  private async whileRedisIsUp<T>(what: string, operation: () => Promise<T>): Promise<T> {
    if (this.connections.status('command').state !== 'ready') {
      throw new QueueUnavailableError(`Cannot ${what}: Redis is unreachable. Nothing was stored; try again shortly.`);
    }
    try {
      return await withDeadline(operation(), PRODUCER_TIMEOUT_MS, () => {
        // The command may still land: callers use deterministic job ids, so trying again is safe.
        throw new QueueUnavailableError(`Cannot ${what}: Redis did not answer within ${PRODUCER_TIMEOUT_MS} ms. Trying again is safe.`);
      });
    } catch (error) {
      if (error instanceof Error && REDIS_UNAVAILABLE.test(error.message)) {
        throw new QueueUnavailableError(`Cannot ${what}: ${error.message}. Try again shortly.`);
      }
      throw error;
    }
  }
}
