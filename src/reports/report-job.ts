import type { Job } from 'bullmq';
import type { ReportRequest, ReportType } from './report-request';
import { computeSalesSummary, SalesSummary } from './sales-summary';

/** What the job carries: the request once, removed with the job when it completes (the result lives in the cache). */
export interface ReportJobData {
  tenantId: string;
  userId: string;
  type: ReportType;
  request: ReportRequest;
}

/** The report job's work. Shared with the queue benchmark's bare BullMQ worker, so both sides compute the same. */
export function runReportJob(job: Job<ReportJobData>): SalesSummary {
  return computeSalesSummary(job.data.request.sales);
}
