import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config';
import type { CommandCounter } from './command-counter';
import { RedisConnection, RedisConnectionHistory, RedisConnectionStatus } from './redis-connection';
import { clusterDiagnosis, isClusterNode, RedisErrorDiagnosis } from './redis-error';
import { redisUnavailability, RedisUnavailability } from './redis-refusal';
import { RedisRefusalEpisode, RefusalEpisodes } from './refusal-episodes';
import { REDIS_ROLES, RedisRole } from './redis.tokens';

/** A client a consumer made from a role's client with duplicate(), supervised like the roles' own. */
export interface RedisDuplicate {
  readonly client: Redis;
  status(): RedisConnectionStatus;
}

/**
 * Owns every Redis connection in the process: one per role, created once, closed last
 * (in onApplicationShutdown, after every consumer has stopped in its earlier hooks).
 */
@Injectable()
export class RedisConnections implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  private readonly connections: ReadonlyMap<RedisRole, RedisConnection>;
  private readonly refusalEpisodes: RefusalEpisodes;
  private refusal?: RedisErrorDiagnosis;

  constructor(config: AppConfig) {
    const endpoint = config.redis.endpoint;
    if (!endpoint) throw new Error('RedisModule needs config.redis.endpoint: the bootstrap sets it (REDIS_URL or a development Redis).');
    this.describeEndpoint(config);
    this.connections = new Map(REDIS_ROLES.map((role) => [role, new RedisConnection(role, endpoint, config.redis)]));
    const command = this.client('command');
    this.refusalEpisodes = new RefusalEpisodes(command);
    // A cluster node answers until the first multi-key command or the wrong slot: refuse it at connect, with one line.
    command.on('ready', () => {
      void command.info('cluster').then(
        (info) => {
          if (isClusterNode(info)) this.refuseServer(clusterDiagnosis(endpoint));
        },
        () => undefined,
      );
    });
  }

  /**
   * What a failed command means: Redis unreachable, refusing for a state (OOM, READONLY, LOADING...), or undefined
   * for neither (a bug, which must not become a 503). A refusal opens an episode: logged once, shown in /health.
   */
  unavailability(error: unknown): RedisUnavailability | undefined {
    const unavailable = redisUnavailability(error);
    if (unavailable && unavailable.kind !== 'unreachable') this.refusalEpisodes.note(unavailable);
    return unavailable;
  }

  /** Open refusal episodes: Redis answers, but refuses commands for a state it is in. */
  refusals(): RedisRefusalEpisode[] {
    return this.refusalEpisodes.episodes();
  }

  /** Why this process will not use the server at all (a Redis Cluster node), once decided. */
  serverRefusal(): RedisErrorDiagnosis | undefined {
    return this.refusal;
  }

  /** The newest open client made from the role's client with duplicate(), e.g. the blocking connection of a worker just created. */
  latestDuplicate(role: RedisRole): RedisDuplicate | undefined {
    return this.connection(role).openDuplicates().at(-1);
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
    this.refusalEpisodes.stop();
    await Promise.all([...this.connections.values()].map((connection) => connection.close()));
    this.logger.log(`closed ${this.connections.size} connections`);
  }

  private connection(role: RedisRole): RedisConnection {
    const connection = this.connections.get(role);
    if (!connection) throw new Error(`Unknown Redis role "${role}"`);
    return connection;
  }

  private refuseServer(diagnosis: RedisErrorDiagnosis): void {
    if (this.refusal) return;
    this.refusal = diagnosis;
    for (const connection of this.connections.values()) connection.refuse(diagnosis);
    this.logger.error(`refusing REDIS_URL: ${diagnosis.reason}. Fix: ${diagnosis.fix}.`);
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
