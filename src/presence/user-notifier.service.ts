import { Injectable } from '@nestjs/common';
import { userRoom } from './presence.constants';
import { PresenceSockets } from './presence-sockets';

/** Pushes an event to every socket of a user, on whichever instance it is connected. */
@Injectable()
export class UserNotifier {
  constructor(private readonly sockets: PresenceSockets) {}

  /**
   * Fire and forget: a user with no socket open gets nothing (there is no replay), and while Redis is down
   * only sockets on this instance get it. Returns false when this process serves no sockets (APP_ROLE=worker).
   */
  notifyUser(userId: string, event: string, payload: unknown): boolean {
    return this.sockets.emit(userRoom(userId), event, payload);
  }
}
