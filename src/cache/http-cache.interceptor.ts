import { applyDecorators, CallHandler, ExecutionContext, Injectable, NestInterceptor, SetMetadata, UseInterceptors } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { from, lastValueFrom, map, Observable } from 'rxjs';
import { tenantKey } from './cache-keys';
import { CacheService } from './cache.service';

export interface CachedResponseOptions {
  readonly ttlSeconds: number;
  /** Tags, given the caller's tenant id, e.g. (tenant) => [`tenant:${tenant}:inventory`]. Public responses get none: they expire by TTL. */
  readonly tags?: (tenantId: string) => string[];
}

const CACHED_RESPONSE = Symbol('CachedResponse');

/**
 * Caches a GET route's 200 responses per tenant + path + query and marks them `x-cache: hit|miss`.
 * Put it after the auth guard: the tenant comes from the verified token, so one pharmacy's cached response
 * can never reach another. Without a principal the route is cached as public, under keys no tenant can spell.
 */
export const CachedResponse = (options: CachedResponseOptions) => applyDecorators(SetMetadata(CACHED_RESPONSE, options), UseInterceptors(HttpCacheInterceptor));

@Injectable()
export class HttpCacheInterceptor implements NestInterceptor {
  constructor(
    private readonly cache: CacheService,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const options = this.reflector.get<CachedResponseOptions | undefined>(CACHED_RESPONSE, context.getHandler());
    const request = context.switchToHttp().getRequest<Request & { principal?: { tenantId: string } }>();
    const response = context.switchToHttp().getResponse<Response>();
    if (!options || request.method !== 'GET') return next.handle();

    const tenantId = request.principal?.tenantId;
    const route = ['http', request.path, canonicalQuery(request.originalUrl)];
    // Public responses live apart from every tenant's keys ("public:…" vs "t:…"), so no tenant id can spell them.
    const key = tenantId === undefined ? publicKey(...route) : tenantKey(tenantId, ...route);
    const lookup = this.cache.getOrSet(key, () => lastValueFrom(next.handle()), {
      ttlMs: options.ttlSeconds * 1000,
      tags: tenantId === undefined ? undefined : options.tags?.(tenantId),
      shouldCache: () => response.statusCode === 200,
    });
    return from(lookup).pipe(
      map(({ value, source }) => {
        response.setHeader('x-cache', source === 'loader' ? 'miss' : 'hit');
        return value;
      }),
    );
  }
}

function publicKey(...parts: string[]): string {
  return ['public', ...parts].map(encodeURIComponent).join(':');
}

/** The query string with its parameters sorted, so ?a=1&b=2 and ?b=2&a=1 share an entry. */
function canonicalQuery(url: string): string {
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const params = new URLSearchParams(query);
  params.sort();
  return params.toString();
}
