import type { LoggerService } from '@nestjs/common';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import type { Namespace } from 'socket.io';
import type { AppConfig } from '../config';
import type { RedisConnections } from '../redis';
import { withHandledRejections } from './handled-rejections';
import { adapterKey } from './presence.constants';

/**
 * The Socket.io adapter between instances, on RedisModule's clients (publish on `command`, subscriptions on the
 * shared `subscriber`), under REDIS_KEY_PREFIX. On a single Redis the classic adapter (PUBLISH/SUBSCRIBE). On a
 * Cluster, where a PUBLISH is copied to every node, the sharded one (SPUBLISH/SSUBSCRIBE, Redis 7): each room
 * with a channel of its own (`dynamic`), so a tenant's traffic goes to one shard only.
 */
export function socketIoRedisAdapter(connections: RedisConnections, config: AppConfig, logger: Pick<LoggerService, 'warn'>): (namespace: Namespace) => unknown {
  const pub = withHandledRejections(connections.client('command'), logger);
  const sub = withHandledRejections(connections.client('subscriber'), logger);
  const key = adapterKey(config.redis.keyPrefix);
  return config.redis.cluster ? createShardedAdapter(pub, sub, { channelPrefix: key, subscriptionMode: 'dynamic' }) : createAdapter(pub, sub, { key });
}
