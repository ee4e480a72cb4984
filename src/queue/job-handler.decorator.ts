import { DiscoveryService } from '@nestjs/core';
import type { JobsOptions } from 'bullmq';

/**
 * How BullMQ treats one job kind: retries, their backoff, how long finished jobs are kept, priority.
 * Unset fields take the deployment's defaults (QUEUE_JOB_ATTEMPTS, exponential backoff from 1 s,
 * 1,000 completed jobs for 24 h, 1,000 failed jobs for 7 days).
 */
export type JobPolicy = Readonly<Pick<JobsOptions, 'attempts' | 'backoff' | 'removeOnComplete' | 'removeOnFail' | 'priority'>>;

export interface JobHandlerMetadata {
  readonly name: string;
  readonly policy: JobPolicy;
}

/** Discovered by JobHandlerRegistry through Nest's DiscoveryService. */
export const JOB_HANDLER = DiscoveryService.createDecorator<JobHandlerMetadata>();

/**
 * Declares the method that runs jobs named `name`, on any provider of any module:
 *
 *   @JobHandler('reorder', { attempts: 5 })
 *   async suggest(job: Job<ReorderJobData>): Promise<void> { ... }
 *
 * One handler per name in the whole process (two fail the boot); JobProducer.add refuses names without one.
 */
export const JobHandler = (name: string, policy: JobPolicy = {}): MethodDecorator => JOB_HANDLER({ name, policy });

export type JobEvent = 'completed' | 'failed';

/** Discovered with JOB_HANDLER's: which event of which job kind the method hears. */
export const JOB_LISTENER = DiscoveryService.createDecorator<{ readonly name: string; readonly event: JobEvent }>();

/**
 * Runs `method(job, result)` in the worker after a job of this kind is stored as completed, so whoever it tells
 * finds it completed. At most once per job: a worker that dies between completing and telling tells no one,
 * while a job that runs twice (retried after a stall) is told once.
 */
export const OnJobCompleted = (name: string): MethodDecorator => JOB_LISTENER({ name, event: 'completed' });

/** Runs `method(job, error)` in the worker once a job of this kind has failed for good (no attempt left, or unrecoverable). */
export const OnJobFailed = (name: string): MethodDecorator => JOB_LISTENER({ name, event: 'failed' });
