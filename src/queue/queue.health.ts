import { Injectable, OnModuleInit } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { HealthIndicators } from '../health';
import { QueueWorker } from './queue-worker.service';

/** `queue:worker`: running, its blocking connection ready, and not wedged. Only where this process runs a worker. */
@Injectable()
export class QueueHealthIndicator implements OnModuleInit {
  constructor(
    private readonly worker: QueueWorker,
    private readonly indicator: HealthIndicatorService,
    private readonly registry: HealthIndicators,
  ) {}

  onModuleInit(): void {
    if (this.worker.enabled) this.registry.register(() => this.check());
  }

  check(): HealthIndicatorResult {
    const session = this.indicator.check('queue:worker');
    const health = this.worker.health();
    // Not connected while Redis is down is the redis:queue indicator's story (with its grace period);
    // only a worker that is wedged or stopped with Redis up is this indicator's failure.
    if (health.wedged) return session.down({ ...health });
    return health.running ? session.up({ ...health }) : session.degraded({ ...health });
  }
}
