import type { LoggerService } from '@nestjs/common';

type Warner = Pick<LoggerService, 'warn'>;

/** Commands the adapters send without handling their promise (publish on every broadcast, (un)subscribe; the sharded adapter's S- forms). */
const UNAWAITED = new Set<PropertyKey>(['publish', 'subscribe', 'psubscribe', 'unsubscribe', 'punsubscribe', 'spublish', 'ssubscribe', 'sunsubscribe']);

/**
 * The adapter and the emitter fire these commands and forget them. On the command client (no offline queue) a
 * publish while Redis is down rejects, and an unhandled rejection would end the process: the packet is lost
 * either way (FIELD-NOTES: no connection-state recovery with this adapter), so it is logged once per outage instead.
 */
function outageWarning(logger: Warner): (command: string, result: unknown) => void {
  let failing = false;
  return (command, result) => {
    if (!(result instanceof Promise)) return;
    result.then(
      () => (failing = false),
      (error: unknown) => {
        if (failing) return;
        failing = true;
        logger.warn(`socket.io ${command} failed (${error instanceof Error ? error.message : String(error)}); events to other instances are lost until Redis is back`);
      },
    );
  };
}

/** The client, with the fire-and-forget commands of the Socket.io adapter handled. */
export function withHandledRejections<T extends object>(client: T, logger: Warner): T {
  const watch = outageWarning(logger);
  return new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (!UNAWAITED.has(property)) return value.bind(target);
      return (...args: unknown[]) => {
        const result: unknown = Reflect.apply(value, target, args);
        watch(String(property), result);
        return result;
      };
    },
  });
}

export interface Publisher {
  publish(channel: string, message: string | Buffer): Promise<number>;
}

/**
 * Only `publish` (all the Socket.io emitter calls), handled the same way. Not a Proxy: a worker publishes once
 * per job, and the Proxy built a bound function and a wrapper on every property read of the shared command client.
 */
export function publisherWithHandledRejections(client: Publisher, logger: Warner): Publisher {
  const watch = outageWarning(logger);
  return {
    publish: (channel, message) => {
      const result = client.publish(channel, message);
      watch('publish', result);
      return result;
    },
  };
}
