import { Module, Provider } from '@nestjs/common';
import { RedisConnections } from './redis-connections';
import { getRedisToken, REDIS_ROLES } from './redis.tokens';

const clientProviders: Provider[] = REDIS_ROLES.map((role) => ({
  provide: getRedisToken(role),
  useFactory: (connections: RedisConnections) => connections.client(role),
  inject: [RedisConnections],
}));

/** Import it to inject a client with @InjectRedis(role), or RedisConnections for connection state. */
@Module({
  providers: [RedisConnections, ...clientProviders],
  exports: [RedisConnections, ...clientProviders],
})
export class RedisModule {}
