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
