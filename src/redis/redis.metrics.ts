import { Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { METRIC_PREFIX, MetricsRegistry } from '../metrics';
import { isBilledCommand } from './command-counter';
import { RedisConnections } from './redis-connections';
import { REDIS_ROLES } from './redis.tokens';

/**
 * Redis metrics, read at scrape time from what RedisConnections tracks anyway: commands by role and name
 * (so the Upstash bill shows before it arrives), connection state, reconnects. Scraping sends no command.
 */
@Injectable()
export class RedisMetrics {
  constructor(registry: MetricsRegistry, connections: RedisConnections) {
    new Counter({
      name: `${METRIC_PREFIX}redis_commands_total`,
      help: 'Commands written to Redis, by client role ("<role>-duplicate": clients duplicated from it, such as BullMQ\'s blocking connection), command and whether Upstash bills it.',
      labelNames: ['role', 'command', 'billable'],
      registers: [registry],
      collect() {
        this.reset();
        for (const role of REDIS_ROLES) {
          const counter = connections.commands(role);
          for (const [client, counts] of [
            [role, counter.counts()],
            [`${role}-duplicate`, counter.duplicateCounts()],
          ] as const) {
            for (const [command, count] of counts) this.inc({ role: client, command, billable: String(isBilledCommand(command)) }, count);
          }
        }
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}redis_connection_ready`,
      help: '1 while the client of this role is connected and ready, else 0.',
      labelNames: ['role'],
      registers: [registry],
      collect() {
        for (const role of REDIS_ROLES) this.set({ role }, connections.status(role).state === 'ready' ? 1 : 0);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}redis_reconnect_attempts_total`,
      help: 'Reconnect attempts of the client of this role since start.',
      labelNames: ['role'],
      registers: [registry],
      collect() {
        this.reset();
        for (const role of REDIS_ROLES) this.inc({ role }, connections.history(role).reconnectAttempts);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}redis_disconnects_total`,
      help: 'Times the ready connection of this role was lost since start.',
      labelNames: ['role'],
      registers: [registry],
      collect() {
        this.reset();
        for (const role of REDIS_ROLES) this.inc({ role }, connections.history(role).disconnects);
      },
    });
  }
}
