export { PresenceModule } from './presence.module';
export { UserNotifier } from './user-notifier.service';
export { UserNotifierModule } from './user-notifier.module';
export { RedisIoAdapter } from './redis-io.adapter';
export { PRESENCE_EVENTS, PRESENCE_NAMESPACE } from './presence.constants';
export type { OfflineEvent, OnlineEvent, OnlineUser, PresenceSnapshot } from './presence.constants';
