import { afterAll, describe, expect, it } from '@jest/globals';
import calculateSlot from 'cluster-key-slot';
import { Redis, type Cluster } from 'ioredis';
import { setTimeout as delay } from 'node:timers/promises';
import { RedisCluster } from '../../test/support/redis-cluster';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { until } from '../../test/support/until';
import { loadConfig } from '../config';
import { RedisConnections } from './redis-connections';

let connections: RedisConnections | undefined;
let cluster: RedisCluster | undefined;

afterAll(async () => {
  await connections?.onApplicationShutdown();
  await cluster?.stop();
  await stopAllRedisServers();
});

/** CLUSTER SLOTS the nodes answered since they started (INFO commandstats). */
async function slotRefreshes(nodes: RedisServer[]): Promise<number> {
  const calls = await Promise.all(nodes.map(async (node) => Number(/cmdstat_cluster\|slots:calls=(\d+)/.exec(await node.command('INFO', 'commandstats'))?.[1] ?? 0)));
  return calls.reduce((sum, count) => sum + count, 0);
}

describe('sharded subscribers of a Cluster with a master that takes no connection', () => {
  it('restart about once a second instead of at once, and subscribe on that master again once it is back', async () => {
    cluster = await RedisCluster.start();
    connections = new RedisConnections(loadConfig({ NODE_ENV: 'test', REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true' }));
    const subscriber = connections.client('subscriber') as Cluster;
    await new Promise((resolve) => subscriber.once('ready', resolve));
    const owners = await cluster.topology();
    const victim = cluster.nodes[1];
    const others = cluster.nodes.filter((node) => node !== victim);
    // A channel in a slot of each master, so that the client keeps a sharded subscriber on every one.
    const channelOn = (node: RedisServer) => {
      const slots = owners.find((view) => view.port === node.port)?.slots ?? [];
      for (let index = 0; ; index++) {
        const slot = calculateSlot(`pacing-${index}`);
        if (slots.some(([from, to]) => slot >= from && slot <= to)) return `pacing-${index}`;
      }
    };
    for (const node of cluster.nodes) await subscriber.ssubscribe(channelOn(node));
    const received: string[] = [];
    subscriber.on('smessage', (channel: string, message: string) => received.push(`${channel} ${message}`));

    // No replica: its slots stay its own, so the client keeps trying to reach it. Unpaced, that was ~104 CLUSTER
    // SLOTS a second to the other masters (ioredis 6.0.0 refreshing at once on every failed subscriber).
    await victim.crash();
    await delay(1_000);
    const before = await slotRefreshes(others);
    await delay(3_000);
    const perSecond = ((await slotRefreshes(others)) - before) / 3;
    expect(perSecond).toBeGreaterThan(0);
    expect(perSecond).toBeLessThan(5);

    await victim.relaunch();
    const publisher = new Redis({ host: '127.0.0.1', port: victim.port, maxRetriesPerRequest: 1 });
    try {
      const channel = channelOn(victim);
      await until(
        async () => {
          await publisher.spublish(channel, 'back');
          return received;
        },
        (messages) => messages.includes(`${channel} back`),
        10_000,
        250,
      );
    } finally {
      publisher.disconnect();
    }
  }, 60_000);
});
