import { Injectable } from '@nestjs/common';
import type { RealtimeNamespace, ServerEventName, ServerEvents } from './realtime-events';

/**
 * The realtime namespace once the presence gateway has it (APP_ROLE web or all), for RealtimeService. Emitting
 * to a room reaches that room on every instance through the Redis adapter.
 */
@Injectable()
export class PresenceSockets {
  private namespace?: RealtimeNamespace;
  private draining = false;

  attach(namespace: RealtimeNamespace): void {
    this.namespace = namespace;
  }

  /** False while no namespace is attached (a worker, or before the gateway's init): nothing was sent. */
  emit<E extends ServerEventName>(room: string, event: E, payload: ServerEvents[E]): boolean {
    if (!this.namespace) return false;
    // socket.io's typed emit cannot narrow a generic event name to its listener; the signature above checks it.
    (this.namespace.to(room).emit as (event: string, payload: unknown) => boolean)(event, payload);
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
