import { Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { METRIC_PREFIX, MetricsRegistry } from '../metrics';
import { isBilledCommand } from './command-counter';
import { RedisConnections } from './redis-connections';

/**
 * Redis metrics, read at scrape time from what RedisConnections tracks anyway: commands by role and name
 * (so the Upstash bill shows before it arrives), connection state, reconnects. Scraping sends no command.
 * One series per client, `endpoint` naming its URL variable (REDIS_URL, REDIS_CACHE_URL): which bill, which database.
 */
@Injectable()
export class RedisMetrics {
  constructor(registry: MetricsRegistry, connections: RedisConnections) {
    new Counter({
      name: `${METRIC_PREFIX}redis_commands_total`,
      help: 'Commands written to Redis, by client role ("<role>-duplicate": clients duplicated from it, such as BullMQ\'s blocking connection), command and whether Upstash bills it.',
      labelNames: ['role', 'endpoint', 'command', 'billable'],
      registers: [registry],
      collect() {
        this.reset();
        for (const role of connections.clientRoles()) {
          const counter = connections.commands(role);
          const endpoint = connections.status(role).endpoint;
          for (const [client, counts] of [
            [role, counter.counts()],
            [`${role}-duplicate`, counter.duplicateCounts()],
          ] as const) {
            for (const [command, count] of counts) this.inc({ role: client, endpoint, command, billable: String(isBilledCommand(command)) }, count);
          }
        }
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}redis_connection_ready`,
      help: '1 while the client of this role is connected and ready, else 0.',
      labelNames: ['role', 'endpoint'],
      registers: [registry],
      collect() {
        for (const status of connections.statuses()) this.set({ role: status.role, endpoint: status.endpoint }, status.state === 'ready' ? 1 : 0);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}redis_reconnect_attempts_total`,
      help: 'Reconnect attempts of the client of this role since start.',
      labelNames: ['role', 'endpoint'],
      registers: [registry],
      collect() {
        this.reset();
        for (const role of connections.clientRoles()) this.inc({ role, endpoint: connections.status(role).endpoint }, connections.history(role).reconnectAttempts);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}redis_disconnects_total`,
      help: 'Times the ready connection of this role was lost since start.',
      labelNames: ['role', 'endpoint'],
      registers: [registry],
      collect() {
        this.reset();
        for (const role of connections.clientRoles()) this.inc({ role, endpoint: connections.status(role).endpoint }, connections.history(role).disconnects);
      },
    });
  }
}
