import type { ReportRequest, ReportType } from './report-request';

/**
 * What a report job carries: the request once, removed with the job when it completes (the result lives in the
 * cache) and dropped when it fails for good (posting the same data again restores it).
 */
export interface ReportJobData {
  tenantId: string;
  userId: string;
  type: ReportType;
  request?: ReportRequest;
}
