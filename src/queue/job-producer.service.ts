import { InjectQueue } from '@nestjs/bullmq';
import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import type { Job, Queue } from 'bullmq';
import { withDeadline } from '../common/with-deadline';
import { RedisConnections } from '../redis';
import type { JobPolicy } from './job-handler.decorator';
import { JobHandlerRegistry } from './job-handler.registry';
import { JOBS_QUEUE, PRODUCER_TIMEOUT_MS } from './queue.constants';
import { QueueUnavailableError } from './queue-unavailable.error';
import { TenantWorkQuota } from './tenant-work-quota';

export interface JobAddOptions extends JobPolicy {
  /** With the id of a job that exists, add() returns that job instead of adding a second (idempotent submits). */
  readonly jobId?: string;
  /** Milliseconds before the job may run. */
  readonly delay?: number;
}

/** add() for a job name no @JobHandler declares: a programming error, refused before anything is stored. */
export class UnknownJobError extends Error {}

/** `{ attempts: undefined }` leaves the policy's attempts in place instead of erasing them. */
function definedFields<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

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
    private readonly handlers: JobHandlerRegistry,
    private readonly quota: TenantWorkQuota,
  ) {
    // As early as possible: BullMQ prints an 'error' nobody listens to. Connection trouble is already
    // logged once per state change by RedisModule.
    this.queue.on('error', (error) => this.logger.debug(`queue connection: ${error.message}`));
  }

  /**
   * Adds a job under its kind's @JobHandler policy, overridden field by field by `options`. Refused at once
   * (UnknownJobError) when no handler declares `name`, whichever process would run it.
   */
  async add<T extends object>(name: string, data: T, options: JobAddOptions = {}): Promise<Job<T>> {
    const handler = this.handlers.get(name);
    if (!handler) {
      const known = this.handlers.names();
      throw new UnknownJobError(`No @JobHandler('${name}') is declared in this application (known: ${known.length > 0 ? known.join(', ') : 'none'}); nothing was enqueued.`);
    }
    // The tenant bound needs the id before the add; callers give deterministic ids, others get a random one.
    const jobId = options.jobId ?? randomUUID();
    return this.whileRedisIsUp(`enqueue a ${name} job`, async () => {
      // Refused (429) before anything is stored when the job's tenant has as much in flight as it may.
      await this.quota.admit(jobId, data);
      return this.queue.add(name, data, { ...handler.policy, ...definedFields(options), jobId }) as Promise<Job<T>>;
    });
  }

  getJob(jobId: string): Promise<Job | undefined> {
    return this.whileRedisIsUp('read a job', () => this.queue.getJob(jobId));
  }

  /**
   * The job's state ('unknown' for no such job), without reading the job itself; failing fast like getJob: a
   * timed-out read is "Redis unavailable" (503), not a bug (500).
   */
  getState(jobId: string): ReturnType<Queue['getJobState']> {
    return this.whileRedisIsUp('read a job state', () => this.queue.getJobState(jobId));
  }

  /** Moves a failed job back to waiting, failing fast like add; with `data`, the job runs on that (an input dropped at its failure, given again). */
  retry(job: Job, data?: object): Promise<void> {
    return this.whileRedisIsUp('retry a job', async () => {
      if (data) await job.updateData(data);
      await job.retry('failed');
    });
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
      const unavailable = this.connections.unavailability(error);
      throw unavailable ? new QueueUnavailableError(`Cannot ${what}: ${unavailable.userMessage}`, unavailable.retryAfterSeconds) : error;
    }
  }
}
