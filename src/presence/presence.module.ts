import { Module } from '@nestjs/common';
import { AuthModule } from '../auth';
import { MetricsModule } from '../metrics';
import { RedisModule } from '../redis';
import { PresenceController } from './presence.controller';
import { PresenceGateway } from './presence.gateway';
import { PresenceHealthIndicator } from './presence.health';
import { PresenceMetrics } from './presence.metrics';
import { PresenceService } from './presence.service';
import { PresenceSockets } from './presence-sockets';

/**
 * Who is online per tenant over Socket.io (/presence) and GET /presence. Only for processes that
 * serve HTTP (APP_ROLE web or all); createApp installs RedisIoAdapter so rooms span instances.
 */
@Module({
  imports: [RedisModule, AuthModule, MetricsModule],
  controllers: [PresenceController],
  providers: [PresenceSockets, PresenceService, PresenceGateway, PresenceHealthIndicator, PresenceMetrics],
})
export class PresenceModule {}
