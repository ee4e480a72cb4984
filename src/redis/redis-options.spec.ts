import { describe, expect, it } from '@jest/globals';
import { parseRedisUrl, type RedisConfig, type RedisEndpoint } from '../config';
import { REDIS_ROLES } from './redis.tokens';
import { buildRedisOptions, reconnectDelay } from './redis-options';

const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n';

function redisConfig(overrides: Partial<RedisConfig> = {}): RedisConfig {
  return {
    tlsInsecure: false,
    family: 0,
    keyPrefix: 'pharmacare',
    cluster: false,
    queuePrefix: 'pharmacare',
    presencePrefix: 'pharmacare:presence',
    commandTimeoutMs: 1234,
    ...overrides,
  };
}

const retryStrategy = (attempt: number): number => attempt * 10;

const plain: RedisEndpoint = parseRedisUrl('redis://app:s3cret@cache.example.com:6380/2');
const upstash: RedisEndpoint = parseRedisUrl('rediss://default:pw@eu1-fine-bird-12345.upstash.io:6379');

describe('buildRedisOptions', () => {
  describe('connection', () => {
    it('passes host, port, credentials and db of the endpoint', () => {
      const options = buildRedisOptions('command', plain, redisConfig(), retryStrategy);
      expect(options.host).toBe('cache.example.com');
      expect(options.port).toBe(6380);
      expect(options.username).toBe('app');
      expect(options.password).toBe('s3cret');
      expect(options.db).toBe(2);
      expect(options.retryStrategy).toBe(retryStrategy);
    });

    it.each([0, 4, 6] as const)('passes family %s through', (family) => {
      expect(buildRedisOptions('queue', plain, redisConfig({ family }), retryStrategy).family).toBe(family);
    });

    it.each(REDIS_ROLES)('names the %s connection <keyPrefix>:<role>:<pid>', (role) => {
      const options = buildRedisOptions(role, plain, redisConfig({ keyPrefix: 'pharmacare:staging' }), retryStrategy);
      expect(options.connectionName).toBe(`pharmacare:staging:${role}:${process.pid}`);
    });

    it.each(REDIS_ROLES)('sets no ioredis keyPrefix on the %s connection', (role) => {
      expect(buildRedisOptions(role, plain, redisConfig(), retryStrategy).keyPrefix).toBeUndefined();
    });
  });

  describe('roles', () => {
    it('makes the command connection fail fast', () => {
      const options = buildRedisOptions('command', plain, redisConfig({ commandTimeoutMs: 1234 }), retryStrategy);
      expect(options.enableOfflineQueue).toBe(false);
      expect(typeof options.maxRetriesPerRequest).toBe('number');
      expect(options.maxRetriesPerRequest).toBeLessThanOrEqual(2);
      expect(options.commandTimeout).toBe(1234);
    });

    it('makes the queue connection wait out outages, without a command timeout', () => {
      const options = buildRedisOptions('queue', plain, redisConfig({ commandTimeoutMs: 1234 }), retryStrategy);
      expect(options.maxRetriesPerRequest).toBeNull();
      expect(options.commandTimeout).toBeUndefined();
      expect(options.keyPrefix).toBeUndefined();
      expect(options.enableOfflineQueue).not.toBe(false);
    });

    it('makes the subscriber connection wait out outages', () => {
      const options = buildRedisOptions('subscriber', plain, redisConfig({ commandTimeoutMs: 1234 }), retryStrategy);
      expect(options.maxRetriesPerRequest).toBeNull();
      expect(options.commandTimeout).toBeUndefined();
    });

    it('tunes the cache roles like command and subscriber, under names of their own', () => {
      const { connectionName: cacheName, ...cache } = buildRedisOptions('cache', plain, redisConfig(), retryStrategy);
      const { connectionName: commandName, ...command } = buildRedisOptions('command', plain, redisConfig(), retryStrategy);
      expect(cache).toEqual(command);
      expect(cacheName).not.toBe(commandName);
      const { connectionName: cacheSubscriberName, ...cacheSubscriber } = buildRedisOptions('cache-subscriber', plain, redisConfig(), retryStrategy);
      const { connectionName: subscriberName, ...subscriber } = buildRedisOptions('subscriber', plain, redisConfig(), retryStrategy);
      expect(cacheSubscriber).toEqual(subscriber);
      expect(cacheSubscriberName).not.toBe(subscriberName);
    });
  });

  describe('TLS', () => {
    it('verifies the certificate by default', () => {
      const options = buildRedisOptions('command', upstash, redisConfig(), retryStrategy);
      expect(options.tls).toBeDefined();
      expect(options.tls?.rejectUnauthorized).toBe(true);
      expect(options.tls?.servername).toBe('eu1-fine-bird-12345.upstash.io');
      expect(options.tls?.ca).toBeUndefined();
    });

    it('turns verification off only with tlsInsecure', () => {
      const options = buildRedisOptions('command', upstash, redisConfig({ tlsInsecure: true }), retryStrategy);
      expect(options.tls?.rejectUnauthorized).toBe(false);
    });

    it('passes the CA from the config', () => {
      const options = buildRedisOptions('queue', upstash, redisConfig({ tlsCa: CA_PEM }), retryStrategy);
      expect(options.tls?.ca).toBe(CA_PEM);
      expect(options.tls?.rejectUnauthorized).toBe(true);
    });

    it('uses TLS on a redis:// URL upgraded for its provider', () => {
      const upgraded = parseRedisUrl('redis://red-abc123:pw@oregon-keyvalue.render.com:6379');
      const options = buildRedisOptions('command', upgraded, redisConfig(), retryStrategy);
      expect(options.tls?.servername).toBe('oregon-keyvalue.render.com');
      expect(options.tls?.rejectUnauthorized).toBe(true);
    });

    it('sends no SNI server name for an IPv4 address', () => {
      const endpoint = parseRedisUrl('rediss://10.0.0.5:6379');
      const options = buildRedisOptions('command', endpoint, redisConfig(), retryStrategy);
      expect(options.tls).toBeDefined();
      expect(options.tls?.servername).toBeUndefined();
    });

    it('sends no SNI server name for an IPv6 address', () => {
      const endpoint = parseRedisUrl('rediss://[::1]:6379');
      const options = buildRedisOptions('command', endpoint, redisConfig(), retryStrategy);
      expect(options.host).toBe('::1');
      expect(options.tls).toBeDefined();
      expect(options.tls?.servername).toBeUndefined();
    });

    it('has no TLS options for a plain endpoint, even with a CA or tlsInsecure', () => {
      const options = buildRedisOptions('command', plain, redisConfig({ tlsCa: CA_PEM, tlsInsecure: true }), retryStrategy);
      expect(options.tls).toBeUndefined();
    });
  });
});

describe('reconnectDelay', () => {
  const low = (): number => 0;
  const high = (): number => 1;

  it('starts small and grows exponentially until the cap', () => {
    const ceilings = [1, 2, 3, 4].map((attempt) => reconnectDelay(attempt, false, high));
    expect(ceilings[0]).toBeGreaterThan(0);
    expect(ceilings[0]).toBeLessThanOrEqual(1000);
    const ratio = ceilings[1] / ceilings[0];
    expect(ratio).toBeGreaterThan(1);
    for (let i = 1; i < ceilings.length; i++) {
      expect(ceilings[i] / ceilings[i - 1]).toBeCloseTo(ratio, 5);
    }
  });

  it('never exceeds 30000 ms', () => {
    for (let attempt = 1; attempt <= 2000; attempt++) {
      expect(reconnectDelay(attempt, false, high)).toBeLessThanOrEqual(30_000);
      expect(reconnectDelay(attempt, true, high)).toBeLessThanOrEqual(30_000);
    }
  });

  it('reaches the 2000 ms cap for errors that pass by themselves, so a role is ready within about 2 s of Redis coming back', () => {
    expect(reconnectDelay(5, false, high)).toBe(2_000);
    expect(reconnectDelay(100, false, high)).toBe(2_000);
    expect(reconnectDelay(100, false, low)).toBe(1_000);
  });

  it('has jitter between half the ceiling and the ceiling', () => {
    for (const attempt of [1, 3, 6, 50]) {
      const ceiling = reconnectDelay(attempt, false, high);
      const floor = reconnectDelay(attempt, false, low);
      const middle = reconnectDelay(attempt, false, () => 0.5);
      expect(floor).not.toBe(ceiling);
      expect(floor).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
      expect(floor).toBeLessThanOrEqual(Math.ceil(ceiling / 2));
      expect(middle).toBeGreaterThan(floor);
      expect(middle).toBeLessThan(ceiling);
    }
  });

  it('uses Math.random by default and stays within the same bounds', () => {
    const ceiling = reconnectDelay(4, false, high);
    const floor = reconnectDelay(4, false, low);
    for (let i = 0; i < 50; i++) {
      const delay = reconnectDelay(4, false);
      expect(delay).toBeGreaterThanOrEqual(floor);
      expect(delay).toBeLessThanOrEqual(ceiling);
    }
  });

  it('waits at least 15000 ms from the first attempt when retrying slowly', () => {
    for (const attempt of [1, 2, 5]) {
      expect(reconnectDelay(attempt, true, low)).toBeGreaterThanOrEqual(15_000);
      expect(reconnectDelay(attempt, true, high)).toBeLessThanOrEqual(30_000);
    }
    expect(reconnectDelay(1, true, low)).toBeGreaterThan(reconnectDelay(1, false, high));
  });
});
