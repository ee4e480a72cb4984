import { Controller, Get, Headers, Logger, OnApplicationBootstrap, Res, UnauthorizedException } from '@nestjs/common';
import type { Response } from 'express';
import { bearerTokenMatcher } from '../common/bearer-token';
import { AppConfig } from '../config';
import { MetricsRegistry } from './metrics.registry';

/** GET /metrics in the Prometheus text format; with METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`. */
@Controller('metrics')
export class MetricsController implements OnApplicationBootstrap {
  private readonly logger = new Logger('Metrics');
  private readonly authorized: (authorization: string | undefined) => boolean;

  constructor(
    private readonly registry: MetricsRegistry,
    private readonly config: AppConfig,
  ) {
    this.authorized = bearerTokenMatcher([config.metrics.token]);
  }

  onApplicationBootstrap(): void {
    if (this.config.metrics.token === undefined && this.config.nodeEnv === 'production') {
      this.logger.warn(
        'METRICS_TOKEN is unset: GET /metrics is open to anyone who can reach this service. Set METRICS_TOKEN (openssl rand -hex 32) and give it to your Prometheus as a bearer token.',
      );
    }
  }

  @Get()
  async scrape(@Headers('authorization') authorization: string | undefined, @Res({ passthrough: true }) response: Response): Promise<string> {
    if (this.config.metrics.token !== undefined && !this.authorized(authorization)) {
      response.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
      throw new UnauthorizedException();
    }
    response.setHeader('Content-Type', this.registry.contentType);
    response.setHeader('Cache-Control', 'no-store');
    return this.registry.metrics();
  }
}
