import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { CapturingLogger } from '../../test/support/capturing-logger';
import { parsePrometheusText, total, type Sample } from '../../test/support/prometheus-text';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { loadConfig } from '../config';
import { MetricsRegistry } from '../metrics';
import { RedisConnections } from './redis-connections';
import { RedisMetrics } from './redis.metrics';
import type { RedisClient } from './command-counter';

/**
 * The next `event` of the client. Not events.once: that rejects on an 'error' first, and a client reconnecting to a
 * server not yet back emits ECONNREFUSED before its 'ready'.
 */
function next(client: RedisClient, event: 'ready' | 'reconnecting'): Promise<void> {
  return new Promise((resolve) => client.once(event, () => resolve()));
}

CapturingLogger.install();
/** The clients of the one-Redis layout (REDIS_CACHE_URL unset: the cache roles share them). */
const REDIS_ROLES = ['command', 'queue', 'subscriber'] as const;
const open: RedisConnections[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((connections) => connections.onApplicationShutdown()));
});
afterAll(() => stopAllRedisServers());

async function connected(redis: RedisServer): Promise<{ connections: RedisConnections; scrape: () => Promise<Sample[]> }> {
  const connections = new RedisConnections(loadConfig({ NODE_ENV: 'test', REDIS_URL: redis.url() }));
  open.push(connections);
  const registry = new MetricsRegistry();
  new RedisMetrics(registry, connections);
  await Promise.all(REDIS_ROLES.map((role) => next(connections.client(role), 'ready')));
  return { connections, scrape: async () => parsePrometheusText(await registry.metrics()) };
}

const perRole = (samples: Sample[], name: string) => Object.fromEntries(REDIS_ROLES.map((role) => [role, total(samples, name, { role })]));

describe('RedisMetrics', () => {
  it('shows each connection going down and back, with its reconnect attempts and losses', async () => {
    const redis = await RedisServer.start();
    const { connections, scrape } = await connected(redis);
    const up = await scrape();
    expect(perRole(up, 'pharmacare_redis_connection_ready')).toEqual({ command: 1, queue: 1, subscriber: 1 });
    expect(perRole(up, 'pharmacare_redis_reconnect_attempts_total')).toEqual({ command: 0, queue: 0, subscriber: 0 });
    expect(perRole(up, 'pharmacare_redis_disconnects_total')).toEqual({ command: 0, queue: 0, subscriber: 0 });
    // One series per client, none for the roles that share one.
    const readySeries = up.filter((sample) => sample.name === 'pharmacare_redis_connection_ready');
    expect(readySeries.map((sample) => sample.labels)).toEqual(REDIS_ROLES.map((role) => ({ role, endpoint: 'REDIS_URL' })));

    const reconnecting = REDIS_ROLES.map((role) => next(connections.client(role), 'reconnecting'));
    await redis.kill();
    await Promise.all(reconnecting);
    const down = await scrape();
    expect(perRole(down, 'pharmacare_redis_connection_ready')).toEqual({ command: 0, queue: 0, subscriber: 0 });
    expect(perRole(down, 'pharmacare_redis_disconnects_total')).toEqual({ command: 1, queue: 1, subscriber: 1 });
    for (const role of REDIS_ROLES) {
      expect(total(down, 'pharmacare_redis_reconnect_attempts_total', { role })).toBe(connections.history(role).reconnectAttempts);
      expect(total(down, 'pharmacare_redis_reconnect_attempts_total', { role })).toBeGreaterThanOrEqual(1);
    }

    const ready = REDIS_ROLES.map((role) => next(connections.client(role), 'ready'));
    await redis.restart();
    await Promise.all(ready);
    const back = await scrape();
    expect(perRole(back, 'pharmacare_redis_connection_ready')).toEqual({ command: 1, queue: 1, subscriber: 1 });
    // Totals since start: a recovery resets the attempts shown by /health, not these.
    for (const role of REDIS_ROLES) expect(total(back, 'pharmacare_redis_reconnect_attempts_total', { role })).toBeGreaterThanOrEqual(1);
  });

  it('labels each command with its role and whether Upstash bills it', async () => {
    const redis = await RedisServer.start();
    const { connections, scrape } = await connected(redis);
    await connections.client('command').ping();
    await connections.client('command').get('some-key');
    const samples = await scrape();
    expect(total(samples, 'pharmacare_redis_commands_total', { role: 'command', command: 'ping', billable: 'false' })).toBe(1);
    expect(total(samples, 'pharmacare_redis_commands_total', { role: 'command', command: 'get', billable: 'true' })).toBe(1);
    expect(total(samples, 'pharmacare_redis_commands_total', { role: 'queue', command: 'get' })).toBe(0);
  });
});
