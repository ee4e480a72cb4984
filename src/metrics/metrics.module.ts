import { Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller';
import { MetricsRegistry } from './metrics.registry';

/**
 * One registry and GET /metrics, in every role (the worker's job durations live in the worker). Modules that
 * define metrics import it, like they import RedisModule; Nest makes one instance of it however often imported.
 */
@Module({
  controllers: [MetricsController],
  providers: [MetricsRegistry],
  exports: [MetricsRegistry],
})
export class MetricsModule {}
