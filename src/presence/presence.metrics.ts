import { Injectable } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { METRIC_PREFIX, MetricsRegistry } from '../metrics';
import { PresenceService } from './presence.service';
import { PresenceSockets } from './presence-sockets';

/** What this instance serves, read at scrape time from local state (no Redis command). */
@Injectable()
export class PresenceMetrics {
  constructor(registry: MetricsRegistry, sockets: PresenceSockets, presence: PresenceService) {
    new Gauge({
      name: `${METRIC_PREFIX}presence_sockets`,
      help: 'Socket.io sockets connected to this instance (/presence).',
      registers: [registry],
      collect() {
        this.set(sockets.localCount());
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}presence_users`,
      help: 'Users with at least one socket on this instance (sum over instances counts a user once per instance).',
      registers: [registry],
      collect() {
        this.set(presence.connectedUsers());
      },
    });
  }
}
