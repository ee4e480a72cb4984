import { Module, Provider } from '@nestjs/common';
import { MetricsModule } from '../metrics';
import { RedisConnections } from './redis-connections';
import { RedisMetrics } from './redis.metrics';
import { getRedisToken, REDIS_ROLES } from './redis.tokens';

const clientProviders: Provider[] = REDIS_ROLES.map((role) => ({
  provide: getRedisToken(role),
  useFactory: (connections: RedisConnections) => connections.client(role),
  inject: [RedisConnections],
}));

/** Import it to inject a client with @InjectRedis(role), or RedisConnections for connection state. */
@Module({
  imports: [MetricsModule],
  providers: [RedisConnections, RedisMetrics, ...clientProviders],
  exports: [RedisConnections, ...clientProviders],
})
export class RedisModule {}
