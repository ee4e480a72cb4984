import { DynamicModule, Module } from '@nestjs/common';
import type { DevelopmentRedis } from './development-redis';

/** The private Redis main.ts started for this run (REDIS_URL unset outside production), if any. */
export const DEVELOPMENT_REDIS = Symbol('DEVELOPMENT_REDIS');

/**
 * Hands that Redis to RedisConnections, which stops it once every connection is closed: the last step of Nest's
 * shutdown, so no client sees its server go away first.
 */
@Module({})
export class DevelopmentRedisModule {
  static forRoot(redis: DevelopmentRedis): DynamicModule {
    return { module: DevelopmentRedisModule, global: true, providers: [{ provide: DEVELOPMENT_REDIS, useValue: redis }], exports: [DEVELOPMENT_REDIS] };
  }
}
