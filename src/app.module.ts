import { DynamicModule, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { AuthModule } from './auth';
import { CacheModule } from './cache';
import { AppConfig, ConfigModule } from './config';
import { HealthModule } from './health';
import { HttpApiModule } from './http';
import { MetricsModule } from './metrics';
import { PresenceModule, RealtimeModule } from './presence';
import { QueueDashboardModule, QueueModule } from './queue';
import { RedisModule } from './redis';
import { ReordersModule } from './reorders';
import { ReportsModule } from './reports';
import { WorkerRoleRoutes } from './worker-role-routes.middleware';

/**
 * The features, one module each, listed in the decorator (where `nest generate module` adds a new one);
 * forRoot adds the infrastructure they consume, chosen by APP_ROLE.
 */
@Module({
  imports: [ReportsModule, ReordersModule],
})
export class AppModule implements NestModule {
  constructor(private readonly config: AppConfig) {}

  /**
   * APP_ROLE=worker serves only /health, /health/live and /metrics (features' routes answer 404 there);
   * web and all serve the API too. requestLogging (from createLogging) logs each HTTP request and gives app
   * logs inside it the request id.
   */
  static forRoot(config: AppConfig, requestLogging?: DynamicModule): DynamicModule {
    const servesApi = config.appRole !== 'worker';
    return {
      module: AppModule,
      imports: [
        ...(requestLogging ? [requestLogging] : []),
        ConfigModule.forRoot(config),
        RedisModule,
        HealthModule,
        HttpApiModule,
        MetricsModule,
        CacheModule,
        RealtimeModule,
        QueueModule.forRoot(),
        ...(servesApi ? [AuthModule, PresenceModule, QueueDashboardModule.register(config)] : []),
      ],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    if (this.config.appRole === 'worker') consumer.apply(WorkerRoleRoutes).exclude(...WorkerRoleRoutes.served).forRoutes('*path');
  }
}
