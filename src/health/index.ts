export { HealthModule } from './health.module';
export { HealthIndicators } from './health-indicators.registry';
