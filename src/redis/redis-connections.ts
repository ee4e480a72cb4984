import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config';
import type { CommandCounter } from './command-counter';
import { RedisConnection, RedisConnectionHistory, RedisConnectionStatus } from './redis-connection';
import { REDIS_ROLES, RedisRole } from './redis.tokens';

/**
 * Owns every Redis connection in the process: one per role, created once, closed last
 * (in onApplicationShutdown, after every consumer has stopped in its earlier hooks).
 */
@Injectable()
export class RedisConnections implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  private readonly connections: ReadonlyMap<RedisRole, RedisConnection>;

  constructor(config: AppConfig) {
    const endpoint = config.redis.endpoint;
    if (!endpoint) throw new Error('RedisModule needs config.redis.endpoint: the bootstrap sets it (REDIS_URL or a development Redis).');
    this.describeEndpoint(config);
    this.connections = new Map(REDIS_ROLES.map((role) => [role, new RedisConnection(role, endpoint, config.redis)]));
  }

  client(role: RedisRole): Redis {
    return this.connection(role).client;
  }

  status(role: RedisRole): RedisConnectionStatus {
    return this.connection(role).status();
  }

  statuses(): RedisConnectionStatus[] {
    return [...this.connections.values()].map((connection) => connection.status());
  }

  /** What the role's client (and its duplicates) sent to Redis, by command name. */
  commands(role: RedisRole): CommandCounter {
    return this.connection(role).commands;
  }

  history(role: RedisRole): RedisConnectionHistory {
    return this.connection(role).history();
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.connections.values()].map((connection) => connection.close()));
    this.logger.log(`closed ${this.connections.size} connections`);
  }

  private connection(role: RedisRole): RedisConnection {
    const connection = this.connections.get(role);
    if (!connection) throw new Error(`Unknown Redis role "${role}"`);
    return connection;
  }

  private describeEndpoint(config: AppConfig): void {
    const { endpoint, tlsInsecure, tlsCaFile } = config.redis;
    if (!endpoint) return;
    if (endpoint.tlsUpgraded) {
      this.logger.log(`${endpoint.host} (${endpoint.provider}) accepts only TLS: connecting with TLS although REDIS_URL says redis://`);
    }
    if (endpoint.tls && tlsInsecure) {
      this.logger.warn(
        'REDIS_TLS_INSECURE=true: the Redis server certificate is NOT verified, so anyone on the network path can read and change Redis traffic. Use REDIS_TLS_CA_FILE for a private CA instead.',
      );
    } else if (tlsInsecure) {
      this.logger.warn('REDIS_TLS_INSECURE=true has no effect: REDIS_URL does not use TLS.');
    } else if (endpoint.tls) {
      this.logger.log(`TLS on, certificate verified against ${tlsCaFile ? `the CA in ${tlsCaFile}` : "the system's trusted CAs"}`);
    }
  }
}
