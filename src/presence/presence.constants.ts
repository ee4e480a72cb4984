import { z } from 'zod';

/** The one realtime namespace: presence and every feature's events, behind the handshake's JWT check. */
export const PRESENCE_NAMESPACE = '/presence';

/** Server-to-client events. */
export const PRESENCE_EVENTS = {
  online: 'presence:online',
  offline: 'presence:offline',
  snapshot: 'presence:snapshot',
} as const;

/** Client-to-server events of presence; an event no gateway handles is answered with an error ack. */
export const CLIENT_EVENTS = {
  list: 'presence:list',
} as const;

/** presence:list takes no payload (nothing, null or {}). */
const NO_PAYLOAD = `${CLIENT_EVENTS.list} takes no payload (or {})`;
export const presenceListRequest = z.union([z.undefined(), z.null(), z.strictObject({}, { error: NO_PAYLOAD })], { error: NO_PAYLOAD });
export type PresenceListRequest = z.infer<typeof presenceListRequest>;

export const MAX_EVENT_BYTES = 1024;
/** Per socket: a burst of this many events, refilled at this many a second. */
export const EVENT_BURST = 10;
export const EVENTS_PER_SECOND = 10;
/** Engine-level cap: a larger frame closes the connection; anything up to it gets a polite error ack instead. */
export const MAX_FRAME_BYTES = 16 * 1024;

export const tenantRoom = (tenantId: string): string => `tenant:${tenantId}`;
/**
 * A user's sockets, within their pharmacy: JWT `sub` is only unique per tenant, so the room carries both.
 * Each part is URI-encoded so that no tenant/user pair can spell another's room (`a:b` + `c` vs `a` + `b:c`).
 */
export const userRoom = (tenantId: string, userId: string): string => `user:${encodeURIComponent(tenantId)}:${encodeURIComponent(userId)}`;
/** The Socket.io Redis adapter's channel prefix, shared by the adapter and the emitter. */
export const adapterKey = (keyPrefix: string): string => `${keyPrefix}:socket.io`;

export interface OnlineUser {
  readonly userId: string;
  /** ISO date-time since when the user has been online without a break (longer than the offline grace). */
  readonly since: string;
}

export interface PresenceSnapshot {
  readonly users: OnlineUser[];
}

export interface OnlineEvent {
  readonly userId: string;
  readonly since: string;
}

export interface OfflineEvent {
  readonly userId: string;
  readonly lastSeen: string;
}

export interface ErrorAck {
  readonly error: string;
}
