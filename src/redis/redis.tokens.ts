import { Inject } from '@nestjs/common';
import type { RedisUrlVariable } from '../config';

/**
 * One client per role, each tuned for how it is used:
 * - command: short request/response commands (enqueueing, presence, health); fails fast while Redis is down.
 * - queue: BullMQ; waits out outages (maxRetriesPerRequest null) and carries blocking commands.
 * - subscriber: pub/sub only, since a subscribed connection can run nothing else.
 * - cache, cache-subscriber: tuned like command and subscriber, on REDIS_CACHE_URL. Its database may evict and
 *   may fail without the rest failing, so its consumers must fail open.
 */
export const REDIS_ROLES = ['command', 'queue', 'subscriber', 'cache', 'cache-subscriber'] as const;
export type RedisRole = (typeof REDIS_ROLES)[number];

export type RedisTuning = 'command' | 'queue' | 'subscriber';

export interface RedisRoleSpec {
  /** Which URL its client connects to; REDIS_CACHE_URL unset, the cache roles share REDIS_URL's clients. */
  readonly endpoint: RedisUrlVariable;
  readonly tuning: RedisTuning;
  /** The process works without it (its consumers fail open): its outage is degraded in /health, never down. */
  readonly essential: boolean;
}

export const REDIS_ROLE_SPECS: Readonly<Record<RedisRole, RedisRoleSpec>> = {
  command: { endpoint: 'REDIS_URL', tuning: 'command', essential: true },
  queue: { endpoint: 'REDIS_URL', tuning: 'queue', essential: true },
  subscriber: { endpoint: 'REDIS_URL', tuning: 'subscriber', essential: true },
  cache: { endpoint: 'REDIS_CACHE_URL', tuning: 'command', essential: false },
  'cache-subscriber': { endpoint: 'REDIS_CACHE_URL', tuning: 'subscriber', essential: false },
};

export function getRedisToken(role: RedisRole): string {
  return `RedisClient:${role}`;
}

/** `constructor(@InjectRedis('command') private readonly redis: Redis)` */
export const InjectRedis = (role: RedisRole): ParameterDecorator => Inject(getRedisToken(role));
