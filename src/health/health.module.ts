import { Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { RedisModule } from '../redis';
import { HealthController } from './health.controller';
import { HealthIndicators } from './health-indicators.registry';
import { RedisHealthIndicator } from './redis.health';

/** GET /health and /health/live. Global so any module can register indicators through HealthIndicators. */
@Global()
@Module({
  imports: [TerminusModule.forRoot({ logger: false }), RedisModule],
  controllers: [HealthController],
  providers: [HealthIndicators, RedisHealthIndicator],
  exports: [HealthIndicators, TerminusModule],
})
export class HealthModule {}
