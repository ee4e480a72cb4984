import { Injectable } from '@nestjs/common';
import type { Namespace } from 'socket.io';

/**
 * The /presence namespace once the gateway has it, for the services that emit into it. Emitting to a room
 * reaches that room on every instance through the Redis adapter.
 */
@Injectable()
export class PresenceSockets {
  private namespace?: Namespace;
  private draining = false;

  attach(namespace: Namespace): void {
    this.namespace = namespace;
  }

  get attached(): boolean {
    return this.namespace !== undefined;
  }

  emit(room: string, event: string, payload: unknown): boolean {
    if (!this.namespace) return false;
    this.namespace.to(room).emit(event, payload);
    return true;
  }

  /** Sockets connected to this instance (not the whole cluster). */
  localCount(): number {
    return this.namespace?.sockets.size ?? 0;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Turns new connections away at the engine (the client retries with backoff, reaching another instance)
   * and closes the transports of this instance's sockets. Closing the transport rather than disconnecting
   * the socket matters: a client told "io server disconnect" does not reconnect by itself.
   */
  drain(): number {
    this.draining = true;
    if (!this.namespace) return 0;
    this.namespace.server.engine.opts.allowRequest = (_request, callback) => callback('server shutting down', false);
    const sockets = [...this.namespace.sockets.values()];
    for (const socket of sockets) socket.conn.close();
    return sockets.length;
  }
}
