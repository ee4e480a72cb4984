import { Inject, Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig, type RedisEndpoint, type RedisUrlVariable } from '../config';
import { isClusterClient, type CommandCounter, type RedisClient } from './command-counter';
import type { DevelopmentRedis } from './development-redis';
import { DEVELOPMENT_REDIS } from './development-redis.module';
import { RedisConnection, RedisConnectionHistory, RedisConnectionStatus } from './redis-connection';
import { clusterDiagnosis, isClusterNode, RedisErrorDiagnosis } from './redis-error';
import { redisRoleOf, redisUnavailability, RedisUnavailability } from './redis-refusal';
import { RedisRefusalEpisode, RefusalEpisodes } from './refusal-episodes';
import { REDIS_ROLE_SPECS, REDIS_ROLES, RedisRole } from './redis.tokens';

/** A client a consumer made from a role's client with duplicate(), supervised like the roles' own. */
export interface RedisDuplicate {
  readonly client: RedisClient;
  status(): RedisConnectionStatus;
}

interface EndpointState {
  readonly endpoint: RedisEndpoint;
  readonly refusalEpisodes: RefusalEpisodes;
  refusal?: RedisErrorDiagnosis;
}

/**
 * Owns every Redis connection in the process: one per role, created once, closed last (in onApplicationShutdown,
 * after every consumer has stopped in its earlier hooks), and then the development Redis, when this run started one.
 * A role on a URL that is not set (REDIS_CACHE_URL unset)
 * shares the REDIS_URL client of its tuning, so that layout opens exactly the connections it always did.
 */
@Injectable()
export class RedisConnections implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  /** Every role, the ones sharing a client included. */
  private readonly connections: ReadonlyMap<RedisRole, RedisConnection>;
  /** The roles that have a client of their own. */
  private readonly ownRoles: readonly RedisRole[];
  private readonly endpoints: ReadonlyMap<RedisUrlVariable, EndpointState>;

  constructor(
    config: AppConfig,
    @Optional() @Inject(DEVELOPMENT_REDIS) private readonly developmentRedis?: DevelopmentRedis,
  ) {
    const main = config.redis.endpoint;
    if (!main) throw new Error('RedisModule needs config.redis.endpoint: the bootstrap sets it (REDIS_URL or a development Redis).');
    const urls = new Map<RedisUrlVariable, RedisEndpoint>([['REDIS_URL', main]]);
    if (config.redis.cacheEndpoint) urls.set('REDIS_CACHE_URL', config.redis.cacheEndpoint);
    this.ownRoles = REDIS_ROLES.filter((role) => urls.has(REDIS_ROLE_SPECS[role].endpoint));
    const own = new Map(this.ownRoles.map((role) => [role, new RedisConnection(role, urls.get(REDIS_ROLE_SPECS[role].endpoint) ?? main, config.redis)]));
    this.connections = new Map(REDIS_ROLES.map((role) => [role, own.get(role) ?? this.sharedWith(role, own)]));

    const endpoints = new Map<RedisUrlVariable, EndpointState>();
    for (const [name, endpoint] of urls) {
      this.describeEndpoint(name, endpoint, config);
      // The endpoint's command-tuned client watches it: INFO for refusal episodes, and the cluster check.
      const watcher = this.ownRoles.find((role) => REDIS_ROLE_SPECS[role].endpoint === name && REDIS_ROLE_SPECS[role].tuning === 'command') ?? 'command';
      const client = this.client(watcher);
      const state: EndpointState = { endpoint, refusalEpisodes: new RefusalEpisodes(client, name, REDIS_ROLE_SPECS[watcher].essential) };
      endpoints.set(name, state);
      // A cluster node answers until the first multi-key command or the wrong slot: without REDIS_CLUSTER, refuse it
      // at connect, with one line. (With it, a single Redis fails the Cluster client's slot refresh, diagnosed there.)
      if (config.redis.cluster) continue;
      client.on('ready', () => {
        void client.info('cluster').then(
          (info) => {
            if (isClusterNode(info)) this.refuseServer(state, clusterDiagnosis(endpoint));
          },
          () => undefined,
        );
      });
    }
    this.endpoints = endpoints;
    // REDIS_CLUSTER=true on a single Redis: every slot refresh fails with "cluster support disabled", which no retry fixes.
    if (config.redis.cluster) {
      for (const role of this.ownRoles) this.connection(role).onServerUnusable = (diagnosis) => this.refuseServer(this.endpointOf(role), diagnosis);
    }
  }

  /**
   * What a failed command means: Redis unreachable, refusing for a state (OOM, READONLY, LOADING...), or undefined
   * for neither (a bug, which must not become a 503). A refusal opens an episode of the database it came from
   * (a RedisRoleError says which role's; otherwise REDIS_URL's): logged once, shown in /health.
   */
  unavailability(error: unknown): RedisUnavailability | undefined {
    const unavailable = redisUnavailability(error);
    if (!unavailable || unavailable.kind === 'unreachable') return unavailable;
    const endpoint = this.endpointOf(redisRoleOf(error) ?? 'command');
    const variable = endpoint.endpoint.variable;
    // The rules' advice is written for REDIS_URL; one that speaks of both URLs (maxclients) is left as it is.
    const fix = variable === 'REDIS_URL' || unavailable.fix.includes(variable) ? unavailable.fix : unavailable.fix.replaceAll('REDIS_URL', variable);
    endpoint.refusalEpisodes.note({ ...unavailable, fix });
    // The reason reaches operators (the worker's pause, /health): it names the database that refuses.
    return { ...unavailable, fix, reason: `${unavailable.reason} (${variable})` };
  }

  /** Open refusal episodes (Redis answers, but refuses commands for a state it is in): of the role's database, or of all. */
  refusals(role?: RedisRole): RedisRefusalEpisode[] {
    const endpoints = role ? [this.endpointOf(role)] : [...this.endpoints.values()];
    return endpoints.flatMap((endpoint) => endpoint.refusalEpisodes.episodes());
  }

  /** Why this process will not use the role's server at all (a Redis Cluster node), once decided. */
  serverRefusal(role: RedisRole): RedisErrorDiagnosis | undefined {
    return this.endpointOf(role).refusal;
  }

  /** The roles with a client of their own in this layout: the cache's only while REDIS_CACHE_URL names another database. */
  clientRoles(): readonly RedisRole[] {
    return this.ownRoles;
  }

  /** The newest open client made from the role's client with duplicate(), e.g. the blocking connection of a worker just created. */
  latestDuplicate(role: RedisRole): RedisDuplicate | undefined {
    return this.connection(role).openDuplicates().at(-1);
  }

  client(role: RedisRole): RedisClient {
    return this.connection(role).client;
  }

  /**
   * The connections a health check must reach to call the role's database reachable: the client itself on a single
   * Redis; on a Cluster, one per master (a shard down leaves the client ready, but a third of the keys unreachable).
   * A master the slot map still names but whose connection ended (killed: ioredis drops it from its pool, and no
   * replica took its slots) comes without a client: it is down.
   */
  masters(role: RedisRole): ReadonlyArray<{ readonly node: string; readonly client?: Redis }> {
    const client = this.client(role);
    if (!isClusterClient(client)) return [{ node: 'server', client }];
    const connected = client.nodes('master').map((node) => ({ node: `${node.options.host}:${node.options.port}`, client: node }));
    const known = new Set(connected.map(({ node }) => node));
    const lost = [...new Set(client.slots.map((owners) => owners?.[0]))].filter((node): node is string => node !== undefined && !known.has(node));
    return [...connected, ...lost.map((node) => ({ node }))];
  }

  /**
   * On a Cluster, reads the slot map again from a node that answers, which reconnects to every master in it: a lost
   * master (see masters()) is found again once it is back. Nothing on a single Redis.
   */
  refreshSlots(role: RedisRole): void {
    const client = this.client(role);
    if (isClusterClient(client)) client.refreshSlotsCache();
  }

  status(role: RedisRole): RedisConnectionStatus {
    return this.connection(role).status();
  }

  /** One per client (roles sharing one count once). */
  statuses(): RedisConnectionStatus[] {
    return this.ownRoles.map((role) => this.status(role));
  }

  /** What the role's client (and its duplicates) sent to Redis, by command name. */
  commands(role: RedisRole): CommandCounter {
    return this.connection(role).commands;
  }

  history(role: RedisRole): RedisConnectionHistory {
    return this.connection(role).history();
  }

  async onApplicationShutdown(): Promise<void> {
    for (const endpoint of this.endpoints.values()) endpoint.refusalEpisodes.stop();
    await Promise.all(this.ownRoles.map((role) => this.connection(role).close()));
    this.logger.log(`closed ${this.ownRoles.length} connections`);
    await this.developmentRedis?.stop();
  }

  private connection(role: RedisRole): RedisConnection {
    const connection = this.connections.get(role);
    if (!connection) throw new Error(`Unknown Redis role "${role}"`);
    return connection;
  }

  /** The REDIS_URL client tuned like the role, for a role whose own URL is not set. */
  private sharedWith(role: RedisRole, own: ReadonlyMap<RedisRole, RedisConnection>): RedisConnection {
    const tuning = REDIS_ROLE_SPECS[role].tuning;
    const shared = [...own].find(([candidate]) => REDIS_ROLE_SPECS[candidate].endpoint === 'REDIS_URL' && REDIS_ROLE_SPECS[candidate].tuning === tuning);
    if (!shared) throw new Error(`no REDIS_URL client tuned for ${tuning} to share with the ${role} role`);
    return shared[1];
  }

  private endpointOf(role: RedisRole): EndpointState {
    const endpoint = this.endpoints.get(this.connection(role).endpointName);
    if (!endpoint) throw new Error(`no endpoint for the Redis role "${role}"`);
    return endpoint;
  }

  private refuseServer(state: EndpointState, diagnosis: RedisErrorDiagnosis): void {
    if (state.refusal) return;
    state.refusal = diagnosis;
    for (const role of this.ownRoles) {
      const connection = this.connection(role);
      if (connection.endpointName === state.endpoint.variable) connection.refuse(diagnosis);
    }
    this.logger.error(`refusing ${state.endpoint.variable}: ${diagnosis.reason}. Fix: ${diagnosis.fix}.`);
  }

  private describeEndpoint(name: RedisUrlVariable, endpoint: RedisEndpoint, config: AppConfig): void {
    const { tlsInsecure, tlsCaFile } = config.redis;
    if (endpoint.tlsUpgraded) {
      this.logger.log(`${endpoint.host} (${endpoint.provider}) accepts only TLS: connecting with TLS although ${name} says redis://`);
    }
    if (endpoint.tls && tlsInsecure) {
      this.logger.warn(
        `REDIS_TLS_INSECURE=true: the Redis server certificate of ${name} is NOT verified, so anyone on the network path can read and change Redis traffic. Use REDIS_TLS_CA_FILE for a private CA instead.`,
      );
    } else if (tlsInsecure) {
      this.logger.warn(`REDIS_TLS_INSECURE=true has no effect: ${name} does not use TLS.`);
    } else if (endpoint.tls) {
      this.logger.log(`${name}: TLS on, certificate verified against ${tlsCaFile ? `the CA in ${tlsCaFile}` : "the system's trusted CAs"}`);
    }
  }
}
