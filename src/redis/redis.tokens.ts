import { Inject } from '@nestjs/common';

/**
 * One client per role, each tuned for how it is used:
 * - command: short request/response commands (cache, presence, health); fails fast while Redis is down.
 * - queue: BullMQ; waits out outages (maxRetriesPerRequest null) and carries blocking commands.
 * - subscriber: pub/sub only, since a subscribed connection can run nothing else.
 */
export const REDIS_ROLES = ['command', 'queue', 'subscriber'] as const;
export type RedisRole = (typeof REDIS_ROLES)[number];

export function getRedisToken(role: RedisRole): string {
  return `RedisClient:${role}`;
}

/** `constructor(@InjectRedis('command') private readonly redis: Redis)` */
export const InjectRedis = (role: RedisRole): ParameterDecorator => Inject(getRedisToken(role));
