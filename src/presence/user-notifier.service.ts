import { Injectable, Logger } from '@nestjs/common';
import { Emitter } from '@socket.io/redis-emitter';
import type { Principal } from '../auth';
import { AppConfig } from '../config';
import { RedisConnections } from '../redis';
import { publisherWithHandledRejections } from './handled-rejections';
import { adapterKey, PRESENCE_NAMESPACE, userRoom } from './presence.constants';

/**
 * Pushes an event to every socket of a user, on whichever instance it is connected, from any process: a
 * worker serves no sockets, so this publishes straight to the Socket.io Redis adapter's channel (one PUBLISH
 * on the command client) instead of going through a local server.
 */
@Injectable()
export class UserNotifier {
  private readonly emitter: Emitter;

  constructor(connections: RedisConnections, config: AppConfig) {
    const client = publisherWithHandledRejections(connections.client('command'), new Logger('UserNotifier'));
    this.emitter = new Emitter(client, { key: adapterKey(config.redis.keyPrefix) });
  }

  /**
   * To the sockets of this user of this pharmacy only. Fire and forget: a user with no socket open gets nothing
   * (no replay), nor does anyone while Redis is down.
   */
  notifyUser(user: Principal, event: string, payload: unknown): void {
    this.emitter.of(PRESENCE_NAMESPACE).to(userRoom(user.tenantId, user.userId)).emit(event, payload);
  }
}
