import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config';
import { RedisConnections } from '../redis';
import { tenantRoom, userRoom } from './presence.constants';
import { PresenceSockets } from './presence-sockets';
import { RemoteEmit, remoteEmitter } from './socket-io-redis-adapter';
import type { ServerEventName, ServerEvents } from './realtime-events';

/**
 * Sends server events to the sockets of a tenant or of one user, on whichever instance they are connected, from
 * any process. Where this process serves the namespace (web, all) it emits through it: local sockets get the
 * event even while Redis is down, and the Redis adapter publishes it to the other instances. A worker serves no
 * sockets, so it publishes to the adapter's channel itself (remoteEmitter: redis-emitter, or on a Cluster a
 * Socket.io server bound to no port). One PUBLISH (SPUBLISH) on the command client either way, no connection of
 * its own. Fire and forget: nothing is replayed to a socket that connects later, and while Redis is down other
 * instances get nothing (logged once per outage).
 */
@Injectable()
export class RealtimeService {
  private readonly logger = new Logger('Realtime');
  /** Made at the first emit of a process without sockets, so web processes never open one. */
  private remote?: RemoteEmit;

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
    this.remote ??= remoteEmitter(this.connections, this.config, this.logger);
    this.remote(room, event, payload);
  }
}
