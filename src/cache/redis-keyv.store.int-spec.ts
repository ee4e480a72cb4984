import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Redis } from 'ioredis';
import { Keyv } from 'keyv';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { until } from '../../test/support/until';
import { RedisKeyvStore } from './redis-keyv.store';

const PREFIX = 'pharmacare';
const SHORT_TTL_MS = 150;

let server: RedisServer;
/** Configured like RedisModule's 'command' role: fails fast instead of queueing. */
let client: Redis;
/** Inspects the server; its own commands never touch the store's socket. */
let admin: Redis;
let store: RedisKeyvStore;

function commandClient(port: number, lazyConnect = false): Redis {
  return new Redis(port, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2_000, lazyConnect });
}

async function commandCalls(): Promise<Map<string, number>> {
  const info = await admin.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) calls.set(match[1], Number(match[2]));
  return calls;
}

/** Commands the server ran, and socket writes the store's client made, while `action` ran (INFO itself left out). */
async function observe(action: () => Promise<unknown>): Promise<{ commands: Record<string, number>; writes: number }> {
  const before = await commandCalls();
  const write = jest.spyOn(client.stream, 'write');
  let writes: number;
  try {
    await action();
  } finally {
    // mockRestore() also forgets the recorded calls.
    writes = write.mock.calls.length;
    write.mockRestore();
  }
  const after = await commandCalls();
  const commands: Record<string, number> = {};
  for (const [name, count] of after) {
    const delta = count - (before.get(name) ?? 0);
    if (delta > 0 && name !== 'info') commands[name] = delta;
  }
  return { commands, writes };
}

async function serverKeys(): Promise<string[]> {
  return (await admin.keys('*')).sort();
}

beforeAll(async () => {
  server = await RedisServer.start();
  client = commandClient(server.port);
  admin = new Redis(server.port);
  await Promise.all([client, admin].map((connection) => new Promise((resolve) => connection.once('ready', resolve))));
  store = new RedisKeyvStore(client, { keyPrefix: PREFIX });
});

beforeEach(async () => {
  await admin.flushdb();
  store.namespace = undefined;
});

afterAll(async () => {
  client?.disconnect();
  admin?.disconnect();
  await stopAllRedisServers();
});

describe('RedisKeyvStore used directly', () => {
  it('exposes opts and a settable namespace, as Keyv expects', () => {
    expect(store.opts).toEqual({ keyPrefix: PREFIX, cluster: false });
    expect(store.namespace).toBeUndefined();
  });

  it('stores the string as-is under <prefix>:cache:<key> and reads it back', async () => {
    await expect(store.set('ns:a', '{"value":"raw"}')).resolves.toBe(true);
    expect(await serverKeys()).toEqual(['pharmacare:cache:ns:a']);
    expect(await admin.get('pharmacare:cache:ns:a')).toBe('{"value":"raw"}');
    expect(await store.get('ns:a')).toBe('{"value":"raw"}');
  });

  it('JSON-encodes a value that is not a string, and refuses one JSON cannot encode', async () => {
    await store.set('obj', { a: 1 });
    expect(await admin.get('pharmacare:cache:obj')).toBe('{"a":1}');
    await expect(store.set('nothing', undefined)).rejects.toThrow(TypeError);
    expect(await admin.exists('pharmacare:cache:nothing')).toBe(0);
  });

  it('returns undefined for a missing key', async () => {
    expect(await store.get('missing')).toBeUndefined();
  });

  it('sets PX only for a positive ttl', async () => {
    await store.set('with-ttl', 'v', 10_000);
    await store.set('fractional-ttl', 'v', 1_500.2);
    await store.set('no-ttl', 'v');
    await store.set('zero-ttl', 'v', 0);
    await store.set('negative-ttl', 'v', -5);
    await store.set('infinite-ttl', 'v', Number.POSITIVE_INFINITY);
    const pttl = await admin.pttl('pharmacare:cache:with-ttl');
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(10_000);
    const fractional = await admin.pttl('pharmacare:cache:fractional-ttl');
    expect(fractional).toBeGreaterThan(1_000);
    expect(fractional).toBeLessThanOrEqual(1_501);
    for (const key of ['no-ttl', 'zero-ttl', 'negative-ttl', 'infinite-ttl']) {
      expect(await admin.pttl(`pharmacare:cache:${key}`)).toBe(-1);
    }
  });

  it('lets Redis expire an entry set with a ttl', async () => {
    await store.set('short', 'v', SHORT_TTL_MS);
    const pttl = await admin.pttl('pharmacare:cache:short');
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(SHORT_TTL_MS);
    await until(
      () => store.get('short'),
      (value) => value === undefined,
      2_000,
      25,
    );
    expect(await admin.exists('pharmacare:cache:short')).toBe(0);
  });

  it('delete returns true only when it removed the key', async () => {
    await store.set('d', 'v');
    const { commands } = await observe(async () => expect(await store.delete('d')).toBe(true));
    expect(commands).toEqual({ unlink: 1 });
    expect(await store.delete('d')).toBe(false);
    expect(await serverKeys()).toEqual([]);
  });

  it('has and hasMany', async () => {
    await store.set('h1', 'v');
    await store.set('h3', 'v');
    expect(await store.has('h1')).toBe(true);
    expect(await store.has('h2')).toBe(false);
    const { commands, writes } = await observe(async () => {
      expect(await store.hasMany(['h1', 'h2', 'h3'])).toEqual([true, false, true]);
    });
    expect(commands).toEqual({ exists: 3 });
    expect(writes).toBe(1);
    expect(await store.hasMany([])).toEqual([]);
  });

  it('getMany keeps the order and gives undefined for missing keys, in one MGET', async () => {
    await store.set('m1', 'one');
    await store.set('m3', 'three');
    const { commands, writes } = await observe(async () => {
      expect(await store.getMany(['m1', 'm2', 'm3', 'm4'])).toEqual(['one', undefined, 'three', undefined]);
    });
    expect(commands).toEqual({ mget: 1 });
    expect(writes).toBe(1);
    expect(await store.getMany([])).toEqual([]);
  });

  it('setMany writes every entry with its own ttl in one round trip', async () => {
    const { commands, writes } = await observe(() =>
      store.setMany([
        { key: 's1', value: 'one', ttl: 10_000 },
        { key: 's2', value: 'two' },
        { key: 's3', value: { three: 3 }, ttl: 5_000 },
      ]),
    );
    expect(commands).toEqual({ set: 3 });
    expect(writes).toBe(1);
    expect(await store.getMany(['s1', 's2', 's3'])).toEqual(['one', 'two', '{"three":3}']);
    const [pttl1, pttl2, pttl3] = await Promise.all(['s1', 's2', 's3'].map((key) => admin.pttl(`pharmacare:cache:${key}`)));
    expect(pttl1).toBeGreaterThan(5_000);
    expect(pttl1).toBeLessThanOrEqual(10_000);
    expect(pttl2).toBe(-1);
    expect(pttl3).toBeGreaterThan(0);
    expect(pttl3).toBeLessThanOrEqual(5_000);
    await store.setMany([]);
  });

  it('deleteMany removes all the keys with one UNLINK and says whether any was removed', async () => {
    await store.setMany([
      { key: 'x1', value: 'v' },
      { key: 'x2', value: 'v' },
      { key: 'keep', value: 'v' },
    ]);
    const { commands } = await observe(async () => expect(await store.deleteMany(['x1', 'x2', 'x3'])).toBe(true));
    expect(commands).toEqual({ unlink: 1 });
    expect(await store.deleteMany(['x1', 'x2'])).toBe(false);
    expect(await store.deleteMany([])).toBe(false);
    expect(await serverKeys()).toEqual(['pharmacare:cache:keep']);
  });

  it('clear without a namespace removes the whole cache of this prefix and nothing else', async () => {
    await store.setMany([
      { key: 'a:1', value: 'v' },
      { key: 'b:1', value: 'v' },
      { key: 'plain', value: 'v' },
    ]);
    await admin.mset('other:cache:x', 'v', 'pharmacare:jobs:x', 'v', 'pharmacare:cached:x', 'v', 'pharmacare:staging:cache:x', 'v');
    const { commands } = await observe(() => store.clear());
    expect(commands.keys).toBeUndefined();
    expect(commands.flushdb).toBeUndefined();
    expect(commands.flushall).toBeUndefined();
    expect(await serverKeys()).toEqual(['other:cache:x', 'pharmacare:cached:x', 'pharmacare:jobs:x', 'pharmacare:staging:cache:x']);
  });

  it('clear with a namespace removes only that namespace', async () => {
    await store.setMany([
      { key: 'mine:1', value: 'v' },
      { key: 'mine:2', value: 'v' },
      { key: 'theirs:1', value: 'v' },
      { key: 'mine2:1', value: 'v' },
    ]);
    store.namespace = 'mine';
    await store.clear();
    expect(await serverKeys()).toEqual(['pharmacare:cache:mine2:1', 'pharmacare:cache:theirs:1']);
  });

  it('clear matches glob characters in the prefix and namespace literally', async () => {
    store.namespace = 'a*[b]?\\';
    await store.set('a*[b]?\\:1', 'v');
    await store.set('axb:1', 'v');
    await store.set('a*[b]?\\x:1', 'v');
    await store.clear();
    expect(await serverKeys()).toEqual(['pharmacare:cache:a*[b]?\\x:1', 'pharmacare:cache:axb:1']);

    const odd = new RedisKeyvStore(client, { keyPrefix: 'ph?rm' });
    await odd.set('k', 'v');
    await admin.set('pharm:cache:k', 'v');
    await odd.clear();
    expect(await serverKeys()).toEqual(['pharm:cache:k', 'pharmacare:cache:a*[b]?\\x:1', 'pharmacare:cache:axb:1']);
  });

  it('clear removes more than 1000 keys, in several SCAN and UNLINK batches', async () => {
    const count = 2_500;
    await store.setMany(Array.from({ length: count }, (_, i) => ({ key: `bulk:${i}`, value: 'v' })));
    await admin.mset('other:cache:x', 'v', 'pharmacare:jobs:x', 'v');
    expect(await admin.dbsize()).toBe(count + 2);
    const { commands } = await observe(() => store.clear());
    expect(commands.scan).toBeGreaterThan(1);
    expect(commands.unlink).toBeGreaterThan(1);
    expect(commands.keys).toBeUndefined();
    expect(await serverKeys()).toEqual(['other:cache:x', 'pharmacare:jobs:x']);
  });

  it('disconnect leaves the shared client open', async () => {
    await store.disconnect();
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
  });

  it('lets connection errors reject and emits nothing', async () => {
    const closed = commandClient(server.port, true);
    closed.disconnect();
    const failing = new RedisKeyvStore(closed, { keyPrefix: PREFIX });
    const emitted: unknown[] = [];
    failing.on('error', (error: unknown) => emitted.push(error));
    await expect(failing.get('k')).rejects.toThrow('Connection is closed');
    await expect(failing.set('k', 'v', 1_000)).rejects.toThrow('Connection is closed');
    await expect(failing.setMany([{ key: 'k', value: 'v' }])).rejects.toThrow('Connection is closed');
    await expect(failing.getMany(['k'])).rejects.toThrow('Connection is closed');
    await expect(failing.hasMany(['k'])).rejects.toThrow('Connection is closed');
    await expect(failing.delete('k')).rejects.toThrow('Connection is closed');
    await expect(failing.clear()).rejects.toThrow('Connection is closed');
    expect(emitted).toEqual([]);
  });

  it('lets server errors reject, also from inside the setMany pipeline', async () => {
    const emitted: unknown[] = [];
    const onError = (error: unknown): void => void emitted.push(error);
    store.on('error', onError);
    // noeviction plus a 1-byte limit: Redis refuses every write with OOM.
    await admin.config('SET', 'maxmemory', '1');
    try {
      await expect(store.set('k', 'v')).rejects.toThrow(/OOM/);
      await expect(
        store.setMany([
          { key: 'a', value: 'v' },
          { key: 'b', value: 'v', ttl: 1_000 },
        ]),
      ).rejects.toThrow(/OOM/);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      store.off('error', onError);
    }
    expect(emitted).toEqual([]);
    expect(await serverKeys()).toEqual([]);
  });
});

describe('RedisKeyvStore behind Keyv', () => {
  function keyvFor(namespace?: string): Keyv {
    const own = new RedisKeyvStore(client, { keyPrefix: PREFIX });
    return namespace === undefined ? new Keyv({ store: own }) : new Keyv({ store: own, namespace });
  }

  it('gets its namespace from Keyv', () => {
    expect(keyvFor('test').store.namespace).toBe('test');
    expect(keyvFor().store.namespace).toBe('keyv');
  });

  it('round-trips strings and objects, stored under <prefix>:cache:<namespace>:<key>', async () => {
    const keyv = keyvFor('test');
    expect(await keyv.set('greeting', 'hello')).toBe(true);
    expect(await keyv.set('order', { id: 7, items: ['aspirin'], paid: false })).toBe(true);
    expect(await keyv.get('greeting')).toBe('hello');
    expect(await keyv.get('order')).toEqual({ id: 7, items: ['aspirin'], paid: false });
    expect(await serverKeys()).toEqual(['pharmacare:cache:test:greeting', 'pharmacare:cache:test:order']);
    expect(JSON.parse((await admin.get('pharmacare:cache:test:greeting')) ?? 'null')).toEqual({ value: 'hello' });
  });

  it('returns undefined for a missing key', async () => {
    expect(await keyvFor('test').get('missing')).toBeUndefined();
  });

  it('passes the ttl down as PX, and Redis expires the entry', async () => {
    const keyv = keyvFor('test');
    await keyv.set('short', 'v', SHORT_TTL_MS);
    const pttl = await admin.pttl('pharmacare:cache:test:short');
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(SHORT_TTL_MS);
    await until(
      () => admin.exists('pharmacare:cache:test:short'),
      (exists) => exists === 0,
      2_000,
      25,
    );
    expect(await keyv.get('short')).toBeUndefined();
  });

  it('uses its default ttl', async () => {
    const keyv = new Keyv({ store: new RedisKeyvStore(client, { keyPrefix: PREFIX }), namespace: 'test', ttl: 60_000 });
    await keyv.set('k', 'v');
    const pttl = await admin.pttl('pharmacare:cache:test:k');
    expect(pttl).toBeGreaterThan(50_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it('delete, has and hasMany', async () => {
    const keyv = keyvFor('test');
    await keyv.set('k', 'v');
    expect(await keyv.has('k')).toBe(true);
    expect(await keyv.hasMany(['k', 'nope'])).toEqual([true, false]);
    expect(await keyv.delete('k')).toBe(true);
    expect(await keyv.delete('k')).toBe(false);
    expect(await keyv.has('k')).toBe(false);
  });

  it('getMany keeps the order with missing entries, in one MGET', async () => {
    const keyv = keyvFor('test');
    await keyv.set('a', 'A');
    await keyv.set('c', { c: true });
    const { commands, writes } = await observe(async () => {
      expect(await keyv.getMany(['a', 'b', 'c'])).toEqual(['A', undefined, { c: true }]);
    });
    expect(commands).toEqual({ mget: 1 });
    expect(writes).toBe(1);
  });

  it('setMany stores every entry with its ttl in one round trip', async () => {
    const keyv = keyvFor('test');
    const { commands, writes } = await observe(() =>
      keyv.setMany([
        { key: 'a', value: 'A', ttl: 10_000 },
        { key: 'b', value: { b: 2 } },
      ]),
    );
    expect(commands).toEqual({ set: 2 });
    expect(writes).toBe(1);
    expect(await keyv.getMany(['a', 'b'])).toEqual(['A', { b: 2 }]);
    const pttlA = await admin.pttl('pharmacare:cache:test:a');
    expect(pttlA).toBeGreaterThan(5_000);
    expect(pttlA).toBeLessThanOrEqual(10_000);
    expect(await admin.pttl('pharmacare:cache:test:b')).toBe(-1);
  });

  it('deleteMany', async () => {
    const keyv = keyvFor('test');
    await keyv.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
      { key: 'c', value: 3 },
    ]);
    expect(await keyv.deleteMany(['a', 'b'])).toBe(true);
    expect(await keyv.deleteMany(['a', 'b'])).toBe(false);
    expect(await serverKeys()).toEqual(['pharmacare:cache:test:c']);
  });

  it('clear removes its own namespace only, not another namespace, prefix or app data', async () => {
    const keyv = keyvFor('test');
    const other = keyvFor('other');
    await keyv.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ]);
    await other.set('a', 1);
    await admin.mset('other:cache:x', 'v', 'pharmacare:jobs:x', 'v');
    await keyv.clear();
    expect(await keyv.get('a')).toBeUndefined();
    expect(await other.get('a')).toBe(1);
    expect(await serverKeys()).toEqual(['other:cache:x', 'pharmacare:cache:other:a', 'pharmacare:jobs:x']);
  });

  it('clear removes more than 1000 entries', async () => {
    const keyv = keyvFor('test');
    await keyv.setMany(Array.from({ length: 1_200 }, (_, i) => ({ key: `k${i}`, value: i })));
    await admin.set('pharmacare:cache:other:a', 'v');
    await keyv.clear();
    expect(await serverKeys()).toEqual(['pharmacare:cache:other:a']);
  });
});

describe('RedisKeyvStore.setIndexed', () => {
  it('stores the entry with its ttl and lists it in each index, in one script call', async () => {
    const { commands, writes } = await observe(() =>
      store.setIndexed('v1:k', '{"value":1}', 60_000, { indexKeys: ['pharmacare:cache-tags:a', 'pharmacare:cache-tags:b'], member: 'k' }),
    );
    expect(writes).toBe(1);
    expect(Object.keys(commands).filter((name) => name.startsWith('eval'))).toHaveLength(1);
    expect(await admin.get('pharmacare:cache:v1:k')).toBe('{"value":1}');
    expect(await admin.pttl('pharmacare:cache:v1:k')).toBeGreaterThan(50_000);
    for (const index of ['pharmacare:cache-tags:a', 'pharmacare:cache-tags:b']) {
      expect(await admin.zrange(index, '0', '-1')).toEqual(['k']);
      expect(await admin.pttl(index)).toBeGreaterThan(50_000);
    }
  });

  it('releases the lock only while it still holds the given token', async () => {
    await admin.set('pharmacare:cache-lock:k', 'someone-else', 'PX', 10_000);
    await store.setIndexed('v1:k', 'v', 60_000, { indexKeys: [], member: 'k', lock: { key: 'pharmacare:cache-lock:k', token: 'mine' } });
    expect(await admin.get('pharmacare:cache-lock:k')).toBe('someone-else');
    await store.setIndexed('v1:k', 'v', 60_000, { indexKeys: [], member: 'k', lock: { key: 'pharmacare:cache-lock:k', token: 'someone-else' } });
    expect(await admin.exists('pharmacare:cache-lock:k')).toBe(0);
  });

  it('rejects, writing no entry, when an index cannot be written', async () => {
    await admin.set('pharmacare:cache-tags:broken', 'not a sorted set');
    await expect(store.setIndexed('v1:k', 'v', 60_000, { indexKeys: ['pharmacare:cache-tags:broken'], member: 'k' })).rejects.toThrow(/WRONGTYPE/);
    expect(await admin.exists('pharmacare:cache:v1:k')).toBe(0);
  });

  it('refuses a ttl that is not positive: an indexed entry must expire', async () => {
    await expect(store.setIndexed('v1:k', 'v', 0, { indexKeys: [], member: 'k' })).rejects.toThrow(RangeError);
  });
});
