import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Job } from 'bullmq';
import { ReportJobData, runReportJob } from '../../src/reports/report-job';
import { EventsGateway } from './events.gateway';

/**
 * A consumer as the NestJS docs show (techniques/queues): @Processor with default options, extending WorkerHost.
 * It does the report job's work with the app's own function, and tells the author on completion through the
 * gateway (one PUBLISH through the Redis adapter), so it does per job what our worker does.
 */
@Processor('jobs')
export class ReportProcessor extends WorkerHost {
  constructor(private readonly events: EventsGateway) {
    super();
  }

  async process(job: Job<ReportJobData>): Promise<unknown> {
    return runReportJob(job);
  }

  @OnWorkerEvent('completed')
  onCompleted(job: Job<ReportJobData>) {
    this.events.server.to(`user:${job.data.tenantId}:${job.data.userId}`).emit('report:completed', { id: job.id });
  }
}
