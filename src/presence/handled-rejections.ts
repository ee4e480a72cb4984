import type { LoggerService } from '@nestjs/common';

/** Commands the adapter sends without handling their promise (publish on every broadcast, (un)subscribe). */
const UNAWAITED = new Set<PropertyKey>(['publish', 'subscribe', 'psubscribe', 'unsubscribe', 'punsubscribe']);

/**
 * The adapter fires these commands and forgets them. On the command client (no offline queue) a publish while
 * Redis is down rejects, and an unhandled rejection would end the process: the packet is lost either way
 * (FIELD-NOTES: no connection-state recovery with this adapter), so it is logged once per outage instead.
 */
export function withHandledRejections<T extends object>(client: T, logger: Pick<LoggerService, 'warn'>): T {
  let failing = false;
  return new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (!UNAWAITED.has(property)) return value.bind(target);
      return (...args: unknown[]) => {
        const result: unknown = Reflect.apply(value, target, args);
        if (result instanceof Promise) {
          result.then(
            () => (failing = false),
            (error: unknown) => {
              if (failing) return;
              failing = true;
              logger.warn(`socket.io ${String(property)} failed (${error instanceof Error ? error.message : String(error)}); events to other instances are lost until Redis is back`);
            },
          );
        }
        return result;
      };
    },
  });
}
