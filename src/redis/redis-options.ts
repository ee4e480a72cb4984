import { isIP } from 'node:net';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import type { RedisConfig, RedisEndpoint } from '../config';
import { REDIS_ROLE_SPECS, type RedisRole } from './redis.tokens';

const CONNECT_TIMEOUT_MS = 5_000;

/** How each role behaves while Redis is down; see REDIS_ROLES. */
function roleOptions(role: RedisRole, config: RedisConfig): RedisOptions {
  switch (REDIS_ROLE_SPECS[role].tuning) {
    case 'command':
      // No offline queue and a command timeout: a request never waits on a dead Redis.
      return { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: config.commandTimeoutMs };
    case 'queue':
      // BullMQ requires maxRetriesPerRequest null and blocks on this connection: no command timeout.
      return { maxRetriesPerRequest: null };
    case 'subscriber':
      // Subscriptions queue until connected and are renewed after every reconnect.
      return { maxRetriesPerRequest: null, autoResubscribe: true };
  }
}

/** Everything ioredis needs for one role, derived from the validated config. No key prefix: see README "Key namespace". */
export function buildRedisOptions(role: RedisRole, endpoint: RedisEndpoint, config: RedisConfig, retryStrategy: (attempt: number) => number): RedisOptions {
  return {
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.username,
    password: endpoint.password,
    db: endpoint.db,
    family: config.family,
    tls: endpoint.tls
      ? {
          // SNI takes a host name only; an IP address there is rejected by Node.
          servername: isIP(endpoint.host) ? undefined : endpoint.host,
          ca: config.tlsCa,
          rejectUnauthorized: !config.tlsInsecure,
        }
      : undefined,
    connectionName: `${config.keyPrefix}:${role}:${process.pid}`,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy,
    lazyConnect: false,
    ...roleOptions(role, config),
  };
}

/**
 * How each role rides out a cluster's own states. A failover or a resharding answers CLUSTERDOWN, TRYAGAIN or a closed
 * connection for a few seconds: the command role retries twice, briefly, and then fails (a request answers 503 rather
 * than wait), the others keep retrying (BullMQ and subscriptions wait out the failover).
 */
function clusterRoleOptions(role: RedisRole): ClusterOptions {
  if (REDIS_ROLE_SPECS[role].tuning === 'command') {
    return { enableOfflineQueue: false, maxRedirections: 4, retryDelayOnFailover: 100, retryDelayOnClusterDown: 100, retryDelayOnTryAgain: 100 };
  }
  const waitOut: ClusterOptions = { enableOfflineQueue: true, maxRedirections: 64, retryDelayOnFailover: 500, retryDelayOnClusterDown: 500, retryDelayOnTryAgain: 200 };
  // The sharded Socket.io adapter SSUBSCRIBEs, which needs a subscriber connection per master.
  return REDIS_ROLE_SPECS[role].tuning === 'subscriber' ? { ...waitOut, shardedSubscribers: true } : waitOut;
}

/**
 * The ioredis Cluster options of one role: its seed is the URL's host, each node connection is tuned like the role's
 * single client. TLS hosts are connected by name (dnsLookup passes the name through), so each node's certificate is
 * checked against the name the cluster announces for it, not against an IP address.
 */
export function buildClusterOptions(
  role: RedisRole,
  endpoint: RedisEndpoint,
  config: RedisConfig,
  retryStrategy: (attempt: number) => number,
): { seed: { host: string; port: number }; options: ClusterOptions } {
  const single = buildRedisOptions(role, endpoint, config, retryStrategy);
  const { host, port, lazyConnect } = single;
  // The Cluster itself retries (clusterRetryStrategy) and queues (enableOfflineQueue); it refuses these per node.
  const node: RedisOptions = { ...single };
  for (const clusterLevel of ['host', 'port', 'retryStrategy', 'enableOfflineQueue', 'lazyConnect'] as const) delete node[clusterLevel];
  if (node.tls) node.tls = { ...node.tls, servername: undefined };
  return {
    seed: { host: host ?? endpoint.host, port: port ?? endpoint.port },
    options: {
      ...clusterRoleOptions(role),
      clusterRetryStrategy: retryStrategy,
      lazyConnect,
      // Slot maps refresh on MOVED and on failover already; a periodic refresh costs a billed CLUSTER SLOTS per interval.
      slotsRefreshInterval: 0,
      slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
      dnsLookup: endpoint.tls ? (address, callback) => callback(null, address) : undefined,
      redisOptions: node,
    },
  };
}

export const RECONNECT_BASE_DELAY_MS = 250;
/**
 * Ceiling for errors that go away by themselves (Redis restarting, a network blip, a full connection table):
 * every role is ready within about 2 s of Redis accepting connections again. Refused connections cost the
 * server next to nothing, and the jitter keeps many instances from reconnecting in lockstep.
 */
export const RECONNECT_FAST_MAX_DELAY_MS = 2_000;
/** The pace for errors a retry cannot fix (a wrong password, a rejected certificate): slow, in case the server side is fixed. */
export const RECONNECT_MAX_DELAY_MS = 30_000;

/**
 * Capped exponential backoff with jitter (half fixed, half random) so that many instances restarting
 * together do not reconnect in lockstep. Errors a retry cannot fix go straight to the 30 s pace.
 */
export function reconnectDelay(attempt: number, retrySlowly: boolean, random: () => number = Math.random): number {
  const ceiling = retrySlowly ? RECONNECT_MAX_DELAY_MS : Math.min(RECONNECT_FAST_MAX_DELAY_MS, RECONNECT_BASE_DELAY_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
