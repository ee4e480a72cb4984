import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, DiscoveryModule } from '@nestjs/core';
import { AppConfig } from '../config';
import { MetricsModule } from '../metrics';
import { RedisConnections, RedisModule } from '../redis';
import { JobHandlerRegistry } from './job-handler.registry';
import { JobProducer } from './job-producer.service';
import { JOBS_QUEUE } from './queue.constants';
import { QueueHealthIndicator } from './queue.health';
import { QueueMetrics } from './queue.metrics';
import { QueueUnavailableFilter } from './queue-unavailable.error';
import { QueueWorker } from './queue-worker.service';
import { TenantQuotaExceededFilter, TenantWorkQuota } from './tenant-work-quota';

/**
 * BullMQ on RedisModule's clients: no Redis connection is made here. Imported once, by AppModule, and global:
 * features inject JobProducer and declare @JobHandler methods without importing anything of this module.
 * Producers use the fail-fast `command` client; the one worker of the process (APP_ROLE worker or all) runs
 * every job kind on the `queue` client, which waits out outages.
 */
@Module({})
export class QueueModule {
  static forRoot(): DynamicModule {
    return {
      module: QueueModule,
      global: true,
      imports: [
        DiscoveryModule,
        RedisModule,
        MetricsModule,
        BullModule.forRootAsync({
          imports: [RedisModule],
          inject: [RedisConnections, AppConfig],
          useFactory: (connections: RedisConnections, appConfig: AppConfig) => ({
            connection: connections.client('command'),
            prefix: appConfig.redis.queuePrefix,
          }),
        }),
        BullModule.registerQueue({ name: JOBS_QUEUE }),
      ],
      providers: [
        JobHandlerRegistry,
        JobProducer,
        QueueWorker,
        QueueHealthIndicator,
        QueueMetrics,
        { provide: APP_FILTER, useClass: QueueUnavailableFilter },
        TenantWorkQuota,
        { provide: APP_FILTER, useClass: TenantQuotaExceededFilter },
      ],
      exports: [JobProducer],
    };
  }
}
