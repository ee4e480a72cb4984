import { Injectable, OnModuleInit } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { HealthIndicators } from '../health';
import { RedisConnections } from '../redis';
import { PresenceService } from './presence.service';
import { PresenceSockets } from './presence-sockets';

/**
 * `presence`: whether the Socket.io adapter receives from other instances (its subscriber connection is ready)
 * and how many sockets and users this instance holds. Degraded, never down: sockets on this instance keep working.
 */
@Injectable()
export class PresenceHealthIndicator implements OnModuleInit {
  constructor(
    private readonly connections: RedisConnections,
    private readonly presence: PresenceService,
    private readonly sockets: PresenceSockets,
    private readonly indicator: HealthIndicatorService,
    private readonly registry: HealthIndicators,
  ) {}

  onModuleInit(): void {
    this.registry.register(() => this.check());
  }

  check(): HealthIndicatorResult {
    const session = this.indicator.check('presence');
    const connected = this.connections.status('subscriber').state === 'ready';
    const details = {
      adapter: connected ? 'connected' : 'disconnected',
      sockets: this.sockets.localCount(),
      users: this.presence.localUsers(),
      instanceId: this.presence.instanceId,
    };
    return connected ? session.up(details) : session.degraded(details);
  }
}
