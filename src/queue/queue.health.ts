import { Injectable, OnModuleInit } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { AppConfig } from '../config';
import { HealthIndicators } from '../health';
import { QueueWorker } from './queue-worker.service';

/**
 * `queue:worker`: running, its blocking connection ready, not paused by its guard, and not wedged. Only where this
 * process runs a worker. A worker that cannot take jobs (no blocking connection, Redis refusing its commands) is
 * degraded for HEALTH_REDIS_GRACE_SECONDS, then down: past a blip, an instance that takes no jobs says so.
 */
@Injectable()
export class QueueHealthIndicator implements OnModuleInit {
  constructor(
    private readonly worker: QueueWorker,
    private readonly indicator: HealthIndicatorService,
    private readonly registry: HealthIndicators,
    private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    if (this.worker.enabled) this.registry.register(() => this.check());
  }

  check(): HealthIndicatorResult {
    const session = this.indicator.check('queue:worker');
    const health = this.worker.health();
    if (health.wedged || health.refused) return session.down({ ...health });
    const notTakingJobsForMs = health.paused ? health.pausedForMs : health.connected ? undefined : health.disconnectedForMs;
    if (notTakingJobsForMs !== undefined) {
      return notTakingJobsForMs < this.config.health.redisGraceMs ? session.degraded({ ...health }) : session.down({ ...health });
    }
    return health.running ? session.up({ ...health }) : session.degraded({ ...health });
  }
}
