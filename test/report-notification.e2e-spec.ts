import { afterAll, describe, expect, it } from '@jest/globals';
import { AppProcess } from './support/app-process';
import { RedisCluster } from './support/redis-cluster';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { getReport, JWT_SECRET, postReport, salesFor, tokenFor } from './support/reports-client';
import { PresenceClient } from './support/socket-client';

const apps: AppProcess[] = [];
const clients: PresenceClient[] = [];
const clusters: RedisCluster[] = [];
afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all(apps.map((app) => app.stop()));
  await Promise.all(clusters.map((cluster) => cluster.stop()));
  await stopAllRedisServers();
});

/**
 * The Redis env of each layout. On a Cluster the web instances use the sharded adapter (SSUBSCRIBE), which does not
 * hear the PUBLISH of @socket.io/redis-emitter: the worker must reach them another way.
 */
const LAYOUTS: Array<[string, () => Promise<Record<string, string>>]> = [
  ['one Redis', async () => ({ REDIS_URL: (await RedisServer.start()).url() })],
  [
    'a Redis Cluster (REDIS_CLUSTER=true)',
    async () => {
      const cluster = await RedisCluster.start();
      clusters.push(cluster);
      return { REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true' };
    },
  ],
];

describe.each(LAYOUTS)('report:completed on %s', (_layout, redisEnv) => {
  it("reaches the author's sockets on another instance, sent by the worker once the report is completed, and no one else's, not even a namesake in another pharmacy", async () => {
    const env = { ...(await redisEnv()), JWT_SECRET };
    const [webA, webB, worker] = await Promise.all([
      AppProcess.start({ ...env, APP_ROLE: 'web' }),
      AppProcess.start({ ...env, APP_ROLE: 'web' }),
      AppProcess.start({ ...env, APP_ROLE: 'worker' }),
    ]);
    apps.push(webA, webB, worker);
    await Promise.all(apps.map((app) => app.waitForLines(/ready in \d+ ms/, 3)));

    const author = await PresenceClient.connect(webA, tokenFor('u1', 'pharmacy-1'));
    const colleague = await PresenceClient.connect(webA, tokenFor('u2', 'pharmacy-1'));
    // JWT `sub` is unique per pharmacy only: the same user id in another tenant is someone else.
    const namesake = await PresenceClient.connect(webA, tokenFor('u1', 'pharmacy-2'));
    clients.push(author, colleague, namesake);

    const token = tokenFor('u1', 'pharmacy-1');
    const posted = await postReport(webB, token, salesFor(42));
    const { id } = posted.body as { id: string };
    const event = await author.waitFor<{ id: string }>('report:completed', (payload) => payload.id === id, 20_000);
    expect(event).toEqual({ id });

    // Sent after completion: the report the event names is there to fetch.
    const fetched = await getReport(webB, token, id);
    expect(fetched.status).toBe(200);
    expect(fetched.body).toMatchObject({ id, status: 'completed' });
    // One broadcast reaches every socket of the room on webA at once; an acknowledged request on each socket
    // after it proves that anything sent to that socket has arrived.
    await Promise.all([colleague.request('presence:list'), namesake.request('presence:list')]);
    expect(colleague.all('report:completed')).toEqual([]);
    expect(namesake.all('report:completed')).toEqual([]);
  }, 60_000);
});
