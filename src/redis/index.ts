export { RedisModule } from './redis.module';
export { RedisConnections } from './redis-connections';
export type { RedisConnectionHistory, RedisConnectionState, RedisConnectionStatus } from './redis-connection';
export type { RedisErrorDiagnosis, RedisErrorKind } from './redis-error';
export { getRedisToken, InjectRedis, REDIS_ROLES } from './redis.tokens';
export type { RedisRole } from './redis.tokens';
export { startDevelopmentRedis } from './development-redis';
export type { DevelopmentRedis } from './development-redis';
