import { describe, expect, it } from '@jest/globals';
import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { lastValueFrom, of } from 'rxjs';
import type { CacheService } from './cache.service';
import { CachedResponse, HttpCacheInterceptor } from './http-cache.interceptor';

class Routes {
  @CachedResponse({ ttlSeconds: 60, tags: (tenant) => [`tenant:${tenant}:catalog`] })
  catalog(): void {}
}

/** The key and tags one GET /catalog is cached under, for the given principal (none: a public call). */
async function cachedUnder(principal?: { tenantId: string }): Promise<{ key: string; tags?: string[] }> {
  let seen: { key: string; tags?: string[] } | undefined;
  const cache = {
    getOrSet: async (key: string, load: () => Promise<unknown>, options: { tags?: string[] }) => {
      seen = { key, tags: options.tags };
      return { value: await load(), source: 'loader' };
    },
  } as unknown as CacheService;
  const request = { method: 'GET', path: '/catalog', originalUrl: '/catalog?page=1', principal };
  const context = {
    getHandler: () => Routes.prototype.catalog,
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => ({ statusCode: 200, setHeader: () => undefined }) }),
  } as unknown as ExecutionContext;
  const next: CallHandler = { handle: () => of({ items: [] }) };
  await lastValueFrom(new HttpCacheInterceptor(cache, new Reflector()).intercept(context, next));
  if (!seen) throw new Error('nothing was cached');
  return seen;
}

describe('@CachedResponse keys', () => {
  it('keeps public responses apart from a tenant named "_public"', async () => {
    const publicCall = await cachedUnder();
    const tenantCall = await cachedUnder({ tenantId: '_public' });
    expect(publicCall.key).not.toBe(tenantCall.key);
    expect(publicCall.tags).toBeUndefined();
    expect(tenantCall.tags).toEqual(['tenant:_public:catalog']);
  });

  it('keys a public response under no tenant at all', async () => {
    expect((await cachedUnder()).key.startsWith('t:')).toBe(false);
  });
});
