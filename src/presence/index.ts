export { PresenceModule } from './presence.module';
export { RealtimeModule } from './realtime.module';
export { RealtimeService } from './realtime.service';
export { OnClientEvent, RealtimeGateway } from './realtime-gateway';
export { RedisIoAdapter } from './redis-io.adapter';
export { PRESENCE_EVENTS, PRESENCE_NAMESPACE } from './presence.constants';
export type { ErrorAck, OfflineEvent, OnlineEvent, OnlineUser, PresenceSnapshot } from './presence.constants';
export type { ClientEventName, ClientEvents, RealtimeSocket, ServerEventName, ServerEvents } from './realtime-events';
