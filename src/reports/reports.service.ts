import { Injectable, Logger, NotFoundException, OnModuleInit } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { Principal } from '../auth';
import { CacheService, tenantKey, tenantTag } from '../cache';
import { withDeadline } from '../common/with-deadline';
import { AppConfig } from '../config';
import { RealtimeService } from '../presence';
import { JobHandlers, JobProducer, QueueUnavailableError } from '../queue';
import { reportId } from './report-id';
import { ReportJobData, runReportJob } from './report-job';
import type { ReportRequest } from './report-request';
import type { SalesSummary } from './sales-summary';

export const REPORT_JOB = 'report';
/** Sent to the author's sockets (their user room within their tenant, any instance) once their report is completed. */
export const REPORT_COMPLETED = 'report:completed';

export type ReportView =
  | { id: string; status: 'queued' | 'active' }
  | { id: string; status: 'completed'; result: SalesSummary }
  | { id: string; status: 'failed'; error: string };

/** A view and whether it came from the cache (the controller turns that into `x-cache`). */
export interface ReportAnswer {
  readonly view: ReportView;
  readonly cache?: 'hit' | 'miss';
}

const REPORT_ID = /^rpt_[0-9a-f]{32}$/;

/**
 * The longest a request may spend on Redis in all. Each call has its own limit (REDIS_COMMAND_TIMEOUT_MS, the
 * producer's 1.5 s), but they add up: with Redis frozen, a POST spent 1 s on the cache lookup and 1.5 s more on
 * the enqueue. Past this the answer is 503 with Retry-After; report ids are deterministic, so trying again is
 * safe even if the job was stored after all.
 */
export const ANSWER_WITHIN_MS = 1_500;

function answerInTime<T>(work: Promise<T>, what: string): Promise<T> {
  return withDeadline(work, ANSWER_WITHIN_MS, () => {
    throw new QueueUnavailableError(`Cannot ${what}: Redis did not answer within ${ANSWER_WITHIN_MS} ms. Trying again is safe.`);
  });
}

@Injectable()
export class ReportsService implements OnModuleInit {
  private readonly logger = new Logger('Reports');

  constructor(
    private readonly producer: JobProducer,
    private readonly handlers: JobHandlers,
    private readonly cache: CacheService,
    private readonly config: AppConfig,
    private readonly realtime: RealtimeService,
  ) {}

  onModuleInit(): void {
    this.handlers.register(REPORT_JOB, (job) => this.compute(job as Job<ReportJobData>), {
      onCompleted: ({ id, data }) => this.realtime.emitToUser((data as ReportJobData).tenantId, (data as ReportJobData).userId, REPORT_COMPLETED, { id: String(id) }),
    });
  }

  /** Enqueues the report, or returns the one already computed for the same tenant and data. */
  submit(principal: Principal, request: ReportRequest): Promise<ReportAnswer> {
    return answerInTime(this.submitNow(principal, request), 'enqueue the report');
  }

  private async submitNow(principal: Principal, request: ReportRequest): Promise<ReportAnswer> {
    const id = reportId(principal.tenantId, request);
    const cached = await this.cachedResult(principal.tenantId, id);
    if (cached) return cached;
    const data: ReportJobData = { tenantId: principal.tenantId, userId: principal.userId, type: request.type, request };
    const added = await this.producer.add(REPORT_JOB, data, id);
    // For an id that already exists BullMQ returns a local copy without the stored state and result.
    const job = ((await this.producer.getJob(id)) ?? added) as Job<ReportJobData>;
    const view = await this.view(job);
    if (view.status === 'completed') return this.remember(principal.tenantId, view);
    if (view.status !== 'failed') return { view };
    // The same data failed before: posting it again is the way to ask for another try.
    await this.producer.retry(job);
    return { view: { id, status: 'queued' } };
  }

  /** 404 for an unknown id and for another tenant's report alike: existence is not disclosed. */
  /**
   * A completed report is answered from the cache, so it keeps answering (memory tier) while Redis is down;
   * concurrent requests for one that is not cached yet share a single job lookup.
   */
  get(principal: Principal, id: string): Promise<ReportAnswer> {
    if (!REPORT_ID.test(id)) return Promise.reject(new NotFoundException(`No report ${id}`));
    return answerInTime(this.getNow(principal, id), 'read the report');
  }

  private async getNow(principal: Principal, id: string): Promise<ReportAnswer> {
    const { value: view, source } = await this.cache.getOrSet<ReportView>(this.cacheKey(principal.tenantId, id), () => this.lookUp(principal, id), {
      ...this.cacheOptions(principal.tenantId),
      shouldCache: (candidate) => candidate.status === 'completed',
    });
    return view.status === 'completed' ? { view, cache: source === 'loader' ? 'miss' : 'hit' } : { view };
  }

  private async lookUp(principal: Principal, id: string): Promise<ReportView> {
    const job = await this.producer.getJob(id);
    if (!job || job.name !== REPORT_JOB || (job.data as ReportJobData).tenantId !== principal.tenantId) {
      throw new NotFoundException(`No report ${id}`);
    }
    return this.view(job as Job<ReportJobData>);
  }

  private async cachedResult(tenantId: string, id: string): Promise<ReportAnswer | undefined> {
    const hit = await this.cache.get<ReportView>(this.cacheKey(tenantId, id));
    return hit ? { view: hit.value, cache: 'hit' } : undefined;
  }

  private async remember(tenantId: string, view: Extract<ReportView, { status: 'completed' }>): Promise<ReportAnswer> {
    await this.cache.set(this.cacheKey(tenantId, view.id), view, this.cacheOptions(tenantId));
    return { view, cache: 'miss' };
  }

  /**
   * The completed view is what is cached, one entry per report, put there by the first request that finds it
   * completed (the worker does not write it: that would cost every job two more round trips).
   */
  private cacheOptions(tenantId: string) {
    return { ttlMs: this.config.cache.reportTtlMs, tags: [tenantTag(tenantId, 'reports')] };
  }

  private cacheKey(tenantId: string, id: string): string {
    return tenantKey(tenantId, 'report', id);
  }

  private async view(job: Job<ReportJobData>): Promise<ReportView> {
    const id = String(job.id);
    const state = await this.producer.getState(job);
    if (state === 'completed') {
      // The job may have completed after it was read: then only a fresh read has its result.
      const result = (job.returnvalue ?? (await this.producer.getJob(id))?.returnvalue) as SalesSummary | undefined;
      if (!result) throw new Error(`report ${id} is completed but has no result`);
      return { id, status: 'completed', result };
    }
    if (state === 'failed') return { id, status: 'failed', error: job.failedReason };
    return { id, status: state === 'active' ? 'active' : 'queued' };
  }

  private async compute(job: Job<ReportJobData>): Promise<SalesSummary> {
    const { request, tenantId } = job.data;
    const result = await runReportJob(job);
    // Debug: one line per job would be thousands of lines an hour in production; failures are logged at error.
    if (request) this.logger.debug(`report ${job.id} computed (${request.sales.length} lines, tenant ${tenantId})`);
    return result;
  }
}
