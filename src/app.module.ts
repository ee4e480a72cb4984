import { DynamicModule, Module } from '@nestjs/common';
import { AuthModule } from './auth';
import { AppConfig, ConfigModule } from './config';
import { HealthModule } from './health';
import { RedisModule } from './redis';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), RedisModule, AuthModule, HealthModule],
    };
  }
}
