import { Injectable, Logger } from '@nestjs/common';
import { Emitter } from '@socket.io/redis-emitter';
import { Server } from 'socket.io';
import { AppConfig } from '../config';
import { RedisConnections } from '../redis';
import { publisherWithHandledRejections } from './handled-rejections';
import { adapterKey, PRESENCE_NAMESPACE, tenantRoom, userRoom } from './presence.constants';
import { PresenceSockets } from './presence-sockets';
import { socketIoRedisAdapter } from './socket-io-redis-adapter';
import type { ServerEventListeners, ServerEventName, ServerEvents } from './realtime-events';

/**
 * Sends server events to the sockets of a tenant or of one user, on whichever instance they are connected, from
 * any process. Where this process serves the namespace (web, all) it emits through it: local sockets get the
 * event even while Redis is down, and the Redis adapter publishes it to the other instances. A worker serves no
 * sockets, so it publishes to the adapter's channel itself (@socket.io/redis-emitter). One PUBLISH on the
 * command client either way, no connection of its own. Fire and forget: nothing is replayed to a socket that
 * connects later, and while Redis is down other instances get nothing (logged once per outage).
 *
 * On a Cluster the web instances use the sharded adapter, which does not hear the emitter's PUBLISH: a worker then
 * emits through a Socket.io server of its own, bound to no port, with the same sharded adapter (an SPUBLISH to
 * the room's channel), made at its first emit so that web processes never open one.
 */
@Injectable()
export class RealtimeService {
  private readonly logger = new Logger('Realtime');
  private emitter?: Emitter<ServerEventListeners>;
  private unboundServer?: Server;

  constructor(
    private readonly sockets: PresenceSockets,
    private readonly connections: RedisConnections,
    private readonly config: AppConfig,
  ) {}

  /** To every socket of the tenant (room `tenant:<tenant>`). */
  emitToTenant<E extends ServerEventName>(tenantId: string, event: E, payload: ServerEvents[E]): void {
    this.emit(tenantRoom(tenantId), event, payload);
  }

  /** To the sockets of this user of this tenant only: user ids are unique per pharmacy, not across them. */
  emitToUser<E extends ServerEventName>(tenantId: string, userId: string, event: E, payload: ServerEvents[E]): void {
    this.emit(userRoom(tenantId, userId), event, payload);
  }

  private emit<E extends ServerEventName>(room: string, event: E, payload: ServerEvents[E]): void {
    if (this.sockets.emit(room, event, payload)) return;
    // Typed emit cannot narrow a generic event name to its listener; the signatures above check it.
    if (!this.config.redis.cluster) {
      this.emitter ??= new Emitter(publisherWithHandledRejections(this.connections.client('command'), this.logger), { key: adapterKey(this.config.redis.keyPrefix) });
      (this.emitter.of(PRESENCE_NAMESPACE).to(room).emit as (event: string, payload: unknown) => boolean)(event, payload);
      return;
    }
    if (!this.unboundServer) {
      this.unboundServer = new Server();
      this.unboundServer.adapter(socketIoRedisAdapter(this.connections, this.config, this.logger) as Parameters<Server['adapter']>[0]);
    }
    (this.unboundServer.of(PRESENCE_NAMESPACE).to(room).emit as (event: string, payload: unknown) => boolean)(event, payload);
  }
}
