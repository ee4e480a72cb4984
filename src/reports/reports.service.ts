import { Injectable, Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { Principal } from '../auth';
import { tenantKey, tenantTag } from '../cache';
import { AppConfig } from '../config';
import { JobAnswer, JobResults, JobView, ResultSlot } from '../job-results';
import { RealtimeService } from '../presence';
import { JobHandler, OnJobCompleted, OnJobFailed } from '../queue';
import { reportId } from './report-id';
import type { ReportJobData } from './report-job';
import type { ReportRequest } from './report-request';
import { computeSalesSummary, SalesSummary } from './sales-summary';

export const REPORT_JOB = 'report';
/** Sent to the author's sockets (their user room within their tenant, any instance) once their report is completed. */
export const REPORT_COMPLETED = 'report:completed';

export type ReportView = JobView<SalesSummary>;
export type ReportAnswer = JobAnswer<SalesSummary>;

/** Reports: a job computes the sales summary; JobResults keeps it in the cache for REPORT_TTL_SECONDS. */
@Injectable()
export class ReportsService {
  private readonly logger = new Logger('Reports');

  constructor(
    private readonly results: JobResults,
    private readonly config: AppConfig,
    private readonly realtime: RealtimeService,
  ) {}

  /** Enqueues the report, or returns the one already computed for the same tenant and data. */
  submit(principal: Principal, request: ReportRequest): Promise<ReportAnswer> {
    const id = reportId(principal.tenantId, request);
    const data: ReportJobData = { tenantId: principal.tenantId, userId: principal.userId, type: request.type, request };
    return this.results.submit(this.slot(principal.tenantId, id), data);
  }

  /** `id` as GET /reports/:id validated it (reportIdSchema). */
  get(principal: Principal, id: string): Promise<ReportAnswer> {
    return this.results.read(this.slot(principal.tenantId, id));
  }

  /** Runs in the worker. The result is stored before the job completes (and is removed). */
  @JobHandler(REPORT_JOB, { removeOnComplete: true })
  async compute(job: Job<ReportJobData>): Promise<void> {
    const { tenantId } = job.data;
    const request = this.results.inputOf(job, 'request');
    await this.results.store(this.slot(tenantId, String(job.id)), computeSalesSummary(request.sales));
    // Debug: one line per job would be thousands of lines an hour in production; failures are logged at error.
    this.logger.debug(`report ${job.id} computed (${request.sales.length} lines, tenant ${tenantId})`);
  }

  @OnJobCompleted(REPORT_JOB)
  tellAuthor(job: Job<ReportJobData>): void {
    this.realtime.emitToUser(job.data.tenantId, job.data.userId, REPORT_COMPLETED, { id: String(job.id) });
  }

  @OnJobFailed(REPORT_JOB)
  dropInput(job: Job<ReportJobData>): Promise<void> {
    return this.results.dropInput(job);
  }

  private slot(tenantId: string, id: string): ResultSlot {
    return {
      jobName: REPORT_JOB,
      jobId: id,
      tenantId,
      cacheKey: tenantKey(tenantId, 'report', id),
      ttlMs: this.config.cache.reportTtlMs,
      tags: [tenantTag(tenantId, 'reports')],
    };
  }
}
