export { CacheModule } from './cache.module';
export { CacheService, CacheWriteError } from './cache.service';
export type { CacheMode, CacheSource, CacheSetOptions, CacheGetOrSetOptions } from './cache.service';
export { CachedResponse, HttpCacheInterceptor } from './http-cache.interceptor';
export { tenantKey, tenantTag } from './cache-keys';
