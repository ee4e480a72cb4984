export { MetricsModule } from './metrics.module';
export { METRIC_PREFIX, MetricsRegistry } from './metrics.registry';
