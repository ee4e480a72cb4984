import { Controller, Get, Headers, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckResult, HealthCheckService, HealthIndicatorResult } from '@nestjs/terminus';
import { bearerTokenMatcher } from '../common/bearer-token';
import { AppConfig } from '../config';
import { HealthIndicators } from './health-indicators.registry';

@Controller('health')
export class HealthController {
  private readonly mayReadDetails: (authorization: string | undefined) => boolean;

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicators,
    config: AppConfig,
  ) {
    const tokens = [config.health.token, config.metrics.token];
    // Open outside production while no token is set, like /metrics: the developer's own machine.
    const open = config.nodeEnv !== 'production' && tokens.every((token) => token === undefined);
    this.mayReadDetails = open ? () => true : bearerTokenMatcher(tokens);
  }

  /**
   * Readiness: every registered indicator. 503 only when something is down past its grace period. Anyone
   * (Render's probe) sees the status of each indicator; its details (hosts, counts, instance names, errors)
   * only a caller with HEALTH_TOKEN or METRICS_TOKEN (or anyone outside production while neither is set).
   */
  @Get()
  @HealthCheck()
  async check(@Headers('authorization') authorization: string | undefined): Promise<HealthCheckResult> {
    const detailed = this.mayReadDetails(authorization);
    try {
      const result = await this.health.check(this.indicators.all());
      return detailed ? result : statusOnly(result);
    } catch (error) {
      if (detailed || !(error instanceof ServiceUnavailableException)) throw error;
      throw new ServiceUnavailableException(statusOnly(error.getResponse() as HealthCheckResult));
    }
  }

  /** Liveness: the process serves HTTP. Touches no Redis, so a Redis outage never restarts the instance. */
  @Get('live')
  live(): { status: 'ok'; uptimeSeconds: number } {
    return { status: 'ok', uptimeSeconds: Math.round(process.uptime()) };
  }
}

function statusOnly(result: HealthCheckResult): HealthCheckResult {
  return { status: result.status, info: statuses(result.info), error: statuses(result.error), details: statuses(result.details) };
}

function statuses(results: Partial<HealthIndicatorResult> | undefined): HealthIndicatorResult {
  const entries = Object.entries(results ?? {}).flatMap(([key, result]) => (result ? [[key, { status: result.status }]] : []));
  return Object.fromEntries(entries) as HealthIndicatorResult;
}
