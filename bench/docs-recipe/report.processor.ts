import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Job } from 'bullmq';
import type { ReportJobData } from '../../src/reports/report-job';
import { computeSalesSummary } from '../../src/reports/sales-summary';
import { EventsGateway } from './events.gateway';

/**
 * A consumer as the NestJS docs show (techniques/queues): @Processor with default options, extending WorkerHost;
 * RECIPE_CONCURRENCY sets the one worker option the queue suite varies (default 1, a WorkerHost's default).
 * It computes the report with the app's own function (its result kept as the job's return value, BullMQ's
 * default) and tells the author on completion through the gateway (one PUBLISH through the Redis adapter), as
 * bench/bare-worker.ts does.
 */
@Processor('jobs', { concurrency: Number(process.env.RECIPE_CONCURRENCY ?? 1) })
export class ReportProcessor extends WorkerHost {
  constructor(private readonly events: EventsGateway) {
    super();
  }

  async process(job: Job<ReportJobData>): Promise<unknown> {
    return computeSalesSummary(job.data.request?.sales ?? []);
  }

  @OnWorkerEvent('completed')
  onCompleted(job: Job<ReportJobData>) {
    this.events.server.to(`user:${job.data.tenantId}:${job.data.userId}`).emit('report:completed', { id: job.id });
  }
}
