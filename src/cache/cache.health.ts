import { Injectable, OnModuleInit } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { HealthIndicators } from '../health';
import { CacheService } from './cache.service';

/** `cache`: its mode. Memory-only is degraded, never down: the cache keeps answering without Redis. */
@Injectable()
export class CacheHealthIndicator implements OnModuleInit {
  constructor(
    private readonly cache: CacheService,
    private readonly indicator: HealthIndicatorService,
    private readonly registry: HealthIndicators,
  ) {}

  onModuleInit(): void {
    this.registry.register(() => this.check());
  }

  check(): HealthIndicatorResult {
    const session = this.indicator.check('cache');
    const details = { mode: this.cache.mode(), memory: this.cache.memoryStats() };
    return details.mode === 'redis+memory' ? session.up(details) : session.degraded(details);
  }
}
