import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AppConfig } from '../config';
import { MetricsModule } from '../metrics';
import { RedisConnections, RedisModule } from '../redis';
import { JobHandlers } from './job-handlers';
import { JobProducer } from './job-producer.service';
import { JOBS_QUEUE } from './queue.constants';
import { QueueDashboardModule } from './queue-dashboard.module';
import { QueueHealthIndicator } from './queue.health';
import { QueueMetrics } from './queue.metrics';
import { QueueUnavailableFilter } from './queue-unavailable.error';
import { QueueWorker } from './queue-worker.service';
import { TenantQuotaExceededFilter, TenantWorkQuota } from './tenant-work-quota';

/**
 * BullMQ on RedisModule's clients: no Redis connection is made here. Producers use the fail-fast
 * `command` client; the worker (APP_ROLE worker or all) uses the `queue` client, which waits out outages.
 */
@Module({})
export class QueueModule {
  static forConfig(config: AppConfig): DynamicModule {
    return {
      module: QueueModule,
      imports: [
        RedisModule,
        MetricsModule,
        BullModule.forRootAsync({
          imports: [RedisModule],
          inject: [RedisConnections, AppConfig],
          useFactory: (connections: RedisConnections, appConfig: AppConfig) => ({
            connection: connections.client('command'),
            prefix: appConfig.redis.keyPrefix,
          }),
        }),
        BullModule.registerQueue({ name: JOBS_QUEUE }),
        QueueDashboardModule.forConfig(config),
      ],
      providers: [JobHandlers, JobProducer, QueueWorker, QueueHealthIndicator, QueueMetrics, { provide: APP_FILTER, useClass: QueueUnavailableFilter }, TenantWorkQuota, { provide: APP_FILTER, useClass: TenantQuotaExceededFilter }],
      exports: [JobHandlers, JobProducer],
    };
  }
}
