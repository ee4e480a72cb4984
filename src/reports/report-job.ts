import type { Job } from 'bullmq';
import type { ReportRequest, ReportType } from './report-request';
import { computeSalesSummary, SalesSummary } from './sales-summary';

/** What the job carries. `result` is written before completion so a retry after a crash does not recompute. */
export interface ReportJobData {
  tenantId: string;
  userId: string;
  type: ReportType;
  request?: ReportRequest;
  result?: SalesSummary;
}

/**
 * The report job's work: the summary, stored in place of the sales (up to megabytes) so retained jobs stay
 * small. Shared with the queue benchmark's bare BullMQ worker, so both sides do exactly the same work per job.
 */
export async function runReportJob(job: Job<ReportJobData>): Promise<SalesSummary> {
  const { request, result: earlier, ...meta } = job.data;
  if (earlier) return earlier;
  if (!request) throw new Error('report job has neither its sales nor a result');
  const result = computeSalesSummary(request.sales);
  await job.updateData({ ...meta, result });
  return result;
}
