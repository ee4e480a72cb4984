import { Logger } from '@nestjs/common';
import { ConnectedSocket, MessageBody, OnGatewayConnection, OnGatewayDisconnect, OnGatewayInit } from '@nestjs/websockets';
import { TokenVerifier } from '../auth';
import { ClientEventRegistry } from './client-event-registry';
import { checkClientEvent, TokenBucket } from './event-guard';
import { CLIENT_EVENTS, PRESENCE_EVENTS, presenceListRequest, tenantRoom, userRoom } from './presence.constants';
import type { ErrorAck, PresenceListRequest, PresenceSnapshot } from './presence.constants';
import { PresenceService } from './presence.service';
import { PresenceSockets } from './presence-sockets';
import type { RealtimeNamespace, RealtimeSocket } from './realtime-events';
import { OnClientEvent, RealtimeGateway } from './realtime-gateway';

/**
 * The realtime namespace (/presence). Clients connect with `io(url + '/presence', { auth: { token }, transports: ['websocket'] })`:
 * HTTP long-polling needs sticky sessions, which Render does not give. This gateway owns what every socket of
 * the namespace goes through, whichever gateway handles its events: the JWT check in the handshake, the rooms,
 * and the per-socket guard (unknown events, size, rate).
 */
@RealtimeGateway()
export class PresenceGateway implements OnGatewayInit<RealtimeNamespace>, OnGatewayConnection<RealtimeSocket>, OnGatewayDisconnect<RealtimeSocket> {
  private readonly logger = new Logger('Presence');

  constructor(
    private readonly verifier: TokenVerifier,
    private readonly presence: PresenceService,
    private readonly sockets: PresenceSockets,
    private readonly clientEvents: ClientEventRegistry,
  ) {}

  afterInit(namespace: RealtimeNamespace): void {
    this.sockets.attach(namespace);
    namespace.use((socket, next) => {
      if (this.sockets.isDraining) return next(new Error('server shutting down'));
      const token: unknown = socket.handshake.auth.token;
      try {
        socket.data.principal = this.verifier.verify(typeof token === 'string' ? token : undefined);
      } catch {
        return next(new Error('unauthorized'));
      }
      next();
    });
  }

  async handleConnection(socket: RealtimeSocket): Promise<void> {
    const { principal } = socket.data;
    void socket.join([tenantRoom(principal.tenantId), userRoom(principal.tenantId, principal.userId)]);
    const bucket = new TokenBucket();
    const known = this.clientEvents.events();
    socket.use((packet, next) => {
      const [event, ...rest] = packet as unknown[];
      const last = rest.at(-1);
      const ack = typeof last === 'function' ? (last as (reply: ErrorAck) => void) : undefined;
      const args = ack ? rest.slice(0, -1) : rest;
      const check = bucket.take() ? checkClientEvent(event, args, known) : ({ ok: false, error: 'rate limited' } as const);
      if (check.ok) return next();
      ack?.({ error: check.error });
    });
    // Counted synchronously before the first await, so a disconnect during it is never counted first.
    await this.presence.connect(principal);
    try {
      const snapshot: PresenceSnapshot = { users: await this.presence.snapshot(principal.tenantId) };
      if (socket.connected) socket.emit(PRESENCE_EVENTS.snapshot, snapshot);
    } catch (error) {
      this.logger.warn(`no presence snapshot for a new socket: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  handleDisconnect(socket: RealtimeSocket): void {
    this.presence.disconnect(socket.data.principal);
  }

  @OnClientEvent(CLIENT_EVENTS.list)
  async list(@MessageBody({ schema: presenceListRequest }) _request: PresenceListRequest, @ConnectedSocket() socket: RealtimeSocket): Promise<PresenceSnapshot | ErrorAck> {
    try {
      return { users: await this.presence.snapshot(socket.data.principal.tenantId) };
    } catch {
      return { error: 'presence is unavailable' };
    }
  }
}
