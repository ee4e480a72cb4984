import type { LoggerService } from '@nestjs/common';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { Emitter } from '@socket.io/redis-emitter';
import { type Namespace, Server } from 'socket.io';
import type { AppConfig } from '../config';
import type { RedisConnections } from '../redis';
import { publisherWithHandledRejections, withHandledRejections } from './handled-rejections';
import { adapterKey, PRESENCE_NAMESPACE } from './presence.constants';

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

/** Emits `event` to a room of the namespace on every instance, from a process that serves no sockets. */
export type RemoteEmit = (room: string, event: string, payload: unknown) => void;

/**
 * How a process without sockets (a worker) reaches the adapter above. On a single Redis, @socket.io/redis-emitter:
 * one PUBLISH on the adapter's channel, and no subscription. On a Cluster the sharded adapter does not hear that
 * PUBLISH, so a Socket.io server bound to no port, with the sharded adapter itself (an SPUBLISH to the room's channel).
 */
export function remoteEmitter(connections: RedisConnections, config: AppConfig, logger: Pick<LoggerService, 'warn'>): RemoteEmit {
  if (!config.redis.cluster) {
    const emitter = new Emitter(publisherWithHandledRejections(connections.client('command'), logger), { key: adapterKey(config.redis.keyPrefix) });
    return (room, event, payload) => void emitter.of(PRESENCE_NAMESPACE).to(room).emit(event, payload);
  }
  const server = new Server();
  server.adapter(socketIoRedisAdapter(connections, config, logger) as Parameters<Server['adapter']>[0]);
  return (room, event, payload) => void server.of(PRESENCE_NAMESPACE).to(room).emit(event, payload);
}
