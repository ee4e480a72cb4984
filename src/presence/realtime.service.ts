import { Injectable, Logger } from '@nestjs/common';
import { Emitter } from '@socket.io/redis-emitter';
import { AppConfig } from '../config';
import { RedisConnections } from '../redis';
import { publisherWithHandledRejections } from './handled-rejections';
import { adapterKey, PRESENCE_NAMESPACE, tenantRoom, userRoom } from './presence.constants';
import { PresenceSockets } from './presence-sockets';
import type { ServerEventListeners, ServerEventName, ServerEvents } from './realtime-events';

/**
 * Sends server events to the sockets of a tenant or of one user, on whichever instance they are connected, from
 * any process. Where this process serves the namespace (web, all) it emits through it: local sockets get the
 * event even while Redis is down, and the Redis adapter publishes it to the other instances. A worker serves no
 * sockets, so it publishes to the adapter's channel itself (@socket.io/redis-emitter). One PUBLISH on the
 * command client either way, no connection of its own. Fire and forget: nothing is replayed to a socket that
 * connects later, and while Redis is down other instances get nothing (logged once per outage).
 */
@Injectable()
export class RealtimeService {
  private readonly emitter: Emitter<ServerEventListeners>;

  constructor(
    private readonly sockets: PresenceSockets,
    connections: RedisConnections,
    config: AppConfig,
  ) {
    const client = publisherWithHandledRejections(connections.client('command'), new Logger('Realtime'));
    this.emitter = new Emitter(client, { key: adapterKey(config.redis.keyPrefix) });
  }

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
    (this.emitter.of(PRESENCE_NAMESPACE).to(room).emit as (event: string, payload: unknown) => boolean)(event, payload);
  }
}
