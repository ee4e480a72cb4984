import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { Principal } from '../auth';
import { CacheService, tenantKey, tenantTag } from '../cache';
import { JobAnswer, JobResults, ResultSlot } from '../job-results';
import { RealtimeService } from '../presence';
import { JobHandler, OnJobCompleted, OnJobFailed } from '../queue';
import type { ReorderRequest } from './reorder-request';
import { computeReorderSuggestions, ReorderSuggestions } from './reorder-suggestions';

export const REORDER_JOB = 'reorder';
/** Sent to the author's sockets once their suggestions are ready. */
export const REORDER_COMPLETED = 'reorder:completed';
/** Suggestions answer GET /reorders/:id for a week; so do failures (the job is kept that long). */
export const REORDER_KEEP_SECONDS = 7 * 24 * 3600;

export type ReorderAnswer = JobAnswer<ReorderSuggestions>;

/** The request is removed with the job when it completes and dropped when it fails for good (JobResults). */
export interface ReorderJobData {
  tenantId: string;
  userId: string;
  request?: ReorderRequest;
}

/**
 * The same tenant posting the same stock and sales gets the same id, so a retried POST finds the job instead of
 * queueing a second. The request is the schema's output, so its keys come in the schema's order.
 */
export function reorderId(tenantId: string, request: ReorderRequest): string {
  return 'ro_' + createHash('sha256').update(JSON.stringify([tenantId, request])).digest('hex').slice(0, 32);
}

/** Reorder suggestions: a job (5 attempts, kept 7 days) turns stock and sales velocity into order quantities. */
@Injectable()
export class ReordersService {
  constructor(
    private readonly results: JobResults,
    private readonly cache: CacheService,
    private readonly realtime: RealtimeService,
  ) {}

  submit(principal: Principal, request: ReorderRequest): Promise<ReorderAnswer> {
    const data: ReorderJobData = { tenantId: principal.tenantId, userId: principal.userId, request };
    return this.results.submit(this.slot(principal.tenantId, reorderId(principal.tenantId, request)), data);
  }

  /** `id` as GET /reorders/:id validated it (reorderIdSchema). */
  get(principal: Principal, id: string): Promise<ReorderAnswer> {
    return this.results.read(this.slot(principal.tenantId, id));
  }

  /**
   * Stock was recounted: every suggestion computed so far for the tenant is stale. One tag drops them from Redis
   * and from every instance's memory tier; their ids answer 404 from now on.
   */
  discardAll(principal: Principal): Promise<void> {
    return this.cache.invalidateTags([this.tag(principal.tenantId)]);
  }

  @JobHandler(REORDER_JOB, { attempts: 5, backoff: { type: 'exponential', delay: 2_000 }, removeOnComplete: true, removeOnFail: { age: REORDER_KEEP_SECONDS } })
  async suggest(job: Job<ReorderJobData>): Promise<void> {
    await this.results.store(this.slot(job.data.tenantId, String(job.id)), computeReorderSuggestions(this.results.inputOf(job, 'request')));
  }

  @OnJobCompleted(REORDER_JOB)
  tellAuthor(job: Job<ReorderJobData>): void {
    this.realtime.emitToUser(job.data.tenantId, job.data.userId, REORDER_COMPLETED, { id: String(job.id) });
  }

  @OnJobFailed(REORDER_JOB)
  dropInput(job: Job<ReorderJobData>): Promise<void> {
    return this.results.dropInput(job);
  }

  private slot(tenantId: string, id: string): ResultSlot {
    return {
      jobName: REORDER_JOB,
      jobId: id,
      tenantId,
      cacheKey: tenantKey(tenantId, 'reorder', id),
      ttlMs: REORDER_KEEP_SECONDS * 1000,
      tags: [this.tag(tenantId)],
    };
  }

  private tag(tenantId: string): string {
    return tenantTag(tenantId, 'reorders');
  }
}
