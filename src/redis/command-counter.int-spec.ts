import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { clientAddresses, countsDelta, RedisMonitor } from '../../test/support/redis-monitor';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { CommandCounter, isBilledCommand } from './command-counter';

let server: RedisServer;
let monitor: RedisMonitor;
const clients: Redis[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
  monitor = await RedisMonitor.start(server);
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await monitor.stop();
  await stopAllRedisServers();
});

/** A counting client, as RedisConnection makes them. */
async function countedClient(name: string, options: { lazyConnect?: boolean } = {}): Promise<{ client: Redis; counter: CommandCounter }> {
  const counter = new CommandCounter();
  const client = counter.createClient({ host: '127.0.0.1', port: server.port, connectionName: name, lazyConnect: options.lazyConnect ?? false });
  clients.push(client);
  if (!options.lazyConnect) await once(client, 'ready');
  return { client, counter };
}

async function addressOf(name: string): Promise<string> {
  const address = (await clientAddresses(server)).get(name);
  if (!address) throw new Error(`no client named ${name} in CLIENT LIST`);
  return address;
}

describe('CommandCounter', () => {
  it('counts each command as Redis runs it: pipelines and MULTI one by one, a Lua script as one call', async () => {
    const { client, counter } = await countedClient('counter-mix');
    client.defineCommand('bump', { numberOfKeys: 1, lua: "return redis.call('incr', KEYS[1])" });
    const bump = (key: string) => (client as Redis & { bump(key: string): Promise<number> }).bump(key);
    await monitor.sync();
    const address = await addressOf('counter-mix');
    const seenBefore = monitor.countsFrom(address);
    const countedBefore = Object.fromEntries(counter.counts());

    await client.set('a', '1');
    await client.get('a');
    await client.pipeline().set('b', '1').get('b').incr('b').exec();
    await client.multi().set('c', '1').incr('c').exec();
    await bump('d');
    await bump('d');
    await client.ping();
    await monitor.sync();

    const counted = countsDelta(countedBefore, Object.fromEntries(counter.counts()));
    expect(counted).toEqual(countsDelta(seenBefore, monitor.countsFrom(address)));
    // What Redis saw, spelled out: the script is loaded by its first call (EVAL), then called by hash.
    expect(counted).toEqual({ set: 3, get: 2, incr: 2, multi: 1, exec: 1, eval: 1, evalsha: 1, ping: 1 });
  });

  it('counts a command queued while offline once, when it is written', async () => {
    const { client, counter } = await countedClient('counter-offline', { lazyConnect: true });
    // Sent before the connection exists: queued offline, written after the handshake.
    const written = client.set('offline', '1');
    await written;
    await monitor.sync();
    expect(counter.counts().get('set')).toBe(1);
    expect(monitor.countsFrom(await addressOf('counter-offline')).set).toBe(1);
  });

  it("counts a duplicate's commands apart from the original's", async () => {
    const { client, counter } = await countedClient('counter-original');
    const copy = client.duplicate({ connectionName: 'counter-copy' });
    clients.push(copy);
    await once(copy, 'ready');
    await copy.bzpopmin('nothing-here', 0.01);
    await monitor.sync();
    expect(counter.duplicateCounts().get('bzpopmin')).toBe(1);
    expect(counter.counts().get('bzpopmin')).toBeUndefined();
    expect(monitor.countsFrom(await addressOf('counter-copy')).bzpopmin).toBe(1);
  });

  it('patches no client instance: every client keeps the shape and the sendCommand of its class', async () => {
    // Per-instance patches made ioredis's hot paths polymorphic: with them (and a Proxy on the notifier's client),
    // the queue worker used about 4% more CPU per job.
    const { client } = await countedClient('counter-shape');
    const copy = client.duplicate({ connectionName: 'counter-shape-copy' });
    clients.push(copy);
    for (const instance of [client, copy]) {
      expect(instance).toBeInstanceOf(Redis);
      expect(Object.hasOwn(instance, 'sendCommand')).toBe(false);
      expect(Object.hasOwn(instance, 'duplicate')).toBe(false);
    }
    expect(Object.getPrototypeOf(copy)).toBe(Object.getPrototypeOf(client));
  });
});

describe('isBilledCommand', () => {
  it.each(['AUTH', 'hello', 'select', 'command', 'config', 'info', 'ping', 'reset', 'quit'])('%s is free on Upstash', (name) => {
    expect(isBilledCommand(name)).toBe(false);
  });

  it.each(['get', 'evalsha', 'bzpopmin', 'client', 'publish', 'exec'])('%s is billed', (name) => {
    expect(isBilledCommand(name)).toBe(true);
  });
});
