import { DynamicModule, Module } from '@nestjs/common';
import { AuthModule } from './auth';
import { CacheModule } from './cache';
import { AppConfig, ConfigModule } from './config';
import { HealthModule } from './health';
import { MetricsModule } from './metrics';
import { PresenceModule, RealtimeModule } from './presence';
import { RedisModule } from './redis';
import { ReportsModule } from './reports';

@Module({})
export class AppModule {
  /**
   * APP_ROLE=worker serves only /health, /health/live and /metrics; web and all serve the API too.
   * requestLogging (from createLogging) logs each HTTP request and gives app logs inside it the request id.
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
        MetricsModule,
        CacheModule,
        RealtimeModule,
        ...(servesApi ? [AuthModule, PresenceModule] : []),
        ReportsModule.forConfig(config),
      ],
    };
  }
}
