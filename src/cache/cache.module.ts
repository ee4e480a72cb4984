import { CacheModule as NestCacheModule } from '@nestjs/cache-manager';
import type { CacheManagerOptions } from '@nestjs/cache-manager';
import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config';
import { MetricsModule } from '../metrics';
import { RedisConnections, RedisModule } from '../redis';
import { CACHE_TIERS } from './cache.constants';
import { CacheHealthIndicator } from './cache.health';
import { CacheMetrics } from './cache.metrics';
import { CacheService } from './cache.service';
import { CacheTiers } from './cache-tiers';
import { HttpCacheInterceptor } from './http-cache.interceptor';
import { RedisKeyvStore } from './redis-keyv.store';

type CacheManagerStores = CacheManagerOptions['stores'];

const tiersProvider = {
  provide: CACHE_TIERS,
  inject: [RedisConnections, AppConfig],
  useFactory: (connections: RedisConnections, config: AppConfig): CacheTiers =>
    new CacheTiers(
      {
        maxEntries: config.cache.memoryMaxEntries,
        maxBytes: config.cache.memoryMaxBytes,
        maxEntryBytes: config.cache.maxValueBytes,
        maxTtlMs: config.cache.memoryTtlMs,
      },
      new RedisKeyvStore(connections.client('cache'), { keyPrefix: config.redis.keyPrefix, cluster: config.redis.cluster }),
    ),
};

/**
 * The one pair of tiers of the process. A module of its own so that CacheModule and the CACHE_MANAGER that
 * NestCacheModule builds both import it and get the same instance: providing the factory in each of them made
 * two memory tiers, and CACHE_MANAGER's was invisible to invalidateTags, the metrics and the memory bounds.
 */
@Module({ imports: [RedisModule], providers: [tiersProvider], exports: [CACHE_TIERS] })
class CacheTiersModule {}

/**
 * @nestjs/cache-manager (cache-manager 7) over two Keyv tiers: a bounded in-process LRU, then Redis through
 * RedisModule's cache client (the cache opens no connection). Inject CacheService for getOrSet, tags and
 * fail-open reads; CACHE_MANAGER works on the very same tiers, for code written against cache-manager.
 */
@Global()
@Module({
  imports: [
    RedisModule,
    MetricsModule,
    CacheTiersModule,
    NestCacheModule.registerAsync({
      imports: [CacheTiersModule],
      inject: [CACHE_TIERS],
      // The same Keyv class, typed once from its CommonJS and once from its ES module declarations.
      useFactory: (tiers: CacheTiers) => ({ stores: [tiers.memory, tiers.redis] as unknown as CacheManagerStores }),
    }),
  ],
  providers: [CacheService, CacheHealthIndicator, CacheMetrics, HttpCacheInterceptor],
  exports: [CacheService, HttpCacheInterceptor, NestCacheModule],
})
export class CacheModule {}
