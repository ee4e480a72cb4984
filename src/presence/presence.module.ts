import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AuthModule } from '../auth';
import { MetricsModule } from '../metrics';
import { RedisModule } from '../redis';
import { ClientEventRegistry } from './client-event-registry';
import { PresenceController } from './presence.controller';
import { PresenceGateway } from './presence.gateway';
import { PresenceHealthIndicator } from './presence.health';
import { PresenceMetrics } from './presence.metrics';
import { PresenceService } from './presence.service';

/**
 * Serves the realtime namespace (/presence: the handshake, the event guard) and who is online per tenant, over
 * Socket.io and GET /presence. Only for processes that serve HTTP (APP_ROLE web or all); createApp installs
 * RedisIoAdapter so rooms span instances. Needs RealtimeModule (global, imported in AppModule).
 */
@Module({
  imports: [RedisModule, AuthModule, MetricsModule, DiscoveryModule],
  controllers: [PresenceController],
  providers: [ClientEventRegistry, PresenceService, PresenceGateway, PresenceHealthIndicator, PresenceMetrics],
})
export class PresenceModule {}
