export { QueueModule } from './queue.module';
export { JobHandlers } from './job-handlers';
export type { JobHandler, JobHooks } from './job-handlers';
export { JobProducer } from './job-producer.service';
export { QueueUnavailableError } from './queue-unavailable.error';
export { TenantQuotaExceededError, TenantWorkQuota } from './tenant-work-quota';
