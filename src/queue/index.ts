export { QueueModule } from './queue.module';
export { QueueDashboardModule } from './queue-dashboard.module';
export { JobHandler, OnJobCompleted, OnJobFailed } from './job-handler.decorator';
export type { JobPolicy } from './job-handler.decorator';
export { JobHandlerDeclarationError } from './job-handler.registry';
export { JobProducer, UnknownJobError } from './job-producer.service';
export type { JobAddOptions } from './job-producer.service';
export { QueueUnavailableError } from './queue-unavailable.error';
