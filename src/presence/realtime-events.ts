import type { DefaultEventsMap, Namespace, Socket } from 'socket.io';
import type { Principal } from '../auth';
import type { OfflineEvent, OnlineEvent, PresenceListRequest, PresenceSnapshot } from './presence.constants';

/**
 * Server-to-client events of the realtime namespace: name -> payload. RealtimeService.emitToTenant/emitToUser
 * accept exactly these. A feature adds its own by declaration merging, from its own folder:
 *
 *   declare module '../presence' {
 *     interface ServerEvents {
 *       'reorder:completed': { id: string };
 *     }
 *   }
 */
export interface ServerEvents {
  'presence:online': OnlineEvent;
  'presence:offline': OfflineEvent;
  'presence:snapshot': PresenceSnapshot;
}

/**
 * Client-to-server events: name -> the payload its handler receives, i.e. what its @MessageBody schema outputs
 * (declare it as `z.infer<typeof schema>`). Extended like ServerEvents; @OnClientEvent accepts only these names.
 */
export interface ClientEvents {
  'presence:list': PresenceListRequest;
}

export type ServerEventName = keyof ServerEvents & string;
export type ClientEventName = keyof ClientEvents & string;

/** The event maps in the listener form socket.io's generics take. */
export type ServerEventListeners = { [E in ServerEventName]: (payload: ServerEvents[E]) => void };
export type ClientEventListeners = { [E in ClientEventName]: (payload: ClientEvents[E], ack?: (reply: unknown) => void) => void };

export interface RealtimeSocketData {
  /** Set by the handshake check: every socket of the namespace is authenticated. */
  principal: Principal;
}

export type RealtimeSocket = Socket<ClientEventListeners, ServerEventListeners, DefaultEventsMap, RealtimeSocketData>;
export type RealtimeNamespace = Namespace<ClientEventListeners, ServerEventListeners, DefaultEventsMap, RealtimeSocketData>;
