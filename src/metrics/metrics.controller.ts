import { createHash, timingSafeEqual } from 'node:crypto';
import { Controller, Get, Headers, Logger, OnApplicationBootstrap, Res, UnauthorizedException } from '@nestjs/common';
import type { Response } from 'express';
import { AppConfig } from '../config';
import { MetricsRegistry } from './metrics.registry';

/** GET /metrics in the Prometheus text format; with METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`. */
@Controller('metrics')
export class MetricsController implements OnApplicationBootstrap {
  private readonly logger = new Logger('Metrics');
  /** A digest, so the comparison takes the same time whatever the length of what was sent. */
  private readonly expected?: Buffer;

  constructor(
    private readonly registry: MetricsRegistry,
    private readonly config: AppConfig,
  ) {
    const token = config.metrics.token;
    this.expected = token === undefined ? undefined : digest(`Bearer ${token}`);
  }

  onApplicationBootstrap(): void {
    if (this.expected === undefined && this.config.nodeEnv === 'production') {
      this.logger.warn('METRICS_TOKEN is unset: GET /metrics is open to anyone who can reach this service. Set METRICS_TOKEN (openssl rand -hex 32) and give it to your Prometheus as a bearer token.');
    }
  }

  @Get()
  async scrape(@Headers('authorization') authorization: string | undefined, @Res({ passthrough: true }) response: Response): Promise<string> {
    if (this.expected !== undefined && !timingSafeEqual(digest(authorization ?? ''), this.expected)) {
      response.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
      throw new UnauthorizedException();
    }
    response.setHeader('Content-Type', this.registry.contentType);
    response.setHeader('Cache-Control', 'no-store');
    return this.registry.metrics();
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
