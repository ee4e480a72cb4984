import { Injectable } from '@nestjs/common';
import type { HealthIndicatorFunction } from '@nestjs/terminus';

/**
 * Where modules add their checks to GET /health (queue workers, cache, presence), so HealthModule
 * needs to know none of them: each registers its indicators in onModuleInit.
 */
@Injectable()
export class HealthIndicators {
  private readonly indicators: HealthIndicatorFunction[] = [];

  register(...indicators: HealthIndicatorFunction[]): void {
    this.indicators.push(...indicators);
  }

  all(): HealthIndicatorFunction[] {
    return [...this.indicators];
  }
}
