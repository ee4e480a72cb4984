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
    const graceMs = this.config.health.redisGraceMs;
    // A blocking connection still making its first connect is starting, not failing, until it errs or the grace runs out.
    const disconnected = !health.connected && (health.connectionError !== undefined || (health.disconnectedForMs ?? 0) >= graceMs);
    const notTakingJobsForMs = health.paused ? health.pausedForMs : disconnected ? health.disconnectedForMs : undefined;
    if (notTakingJobsForMs !== undefined) return notTakingJobsForMs < graceMs ? session.degraded({ ...health }) : session.down({ ...health });
    return health.running ? session.up({ ...health }) : session.degraded({ ...health });
  }
}
