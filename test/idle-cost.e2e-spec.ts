import { afterAll, describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET, tokenFor } from './support/reports-client';
import { PresenceClient } from './support/socket-client';

/** Upstash bills every command but these. */
const NOT_BILLED = new Set(['auth', 'hello', 'select', 'command', 'config', 'info', 'ping', 'reset', 'quit']);

async function billableCalls(redis: RedisServer): Promise<Record<string, number>> {
  const info = await redis.command('INFO', 'commandstats');
  const calls: Record<string, number> = {};
  for (const [, name, count] of info.matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) {
    if (!NOT_BILLED.has(name.split('|')[0])) calls[name] = Number(count);
  }
  return calls;
}

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after)
      .map(([name, count]) => [name, count - (before[name] ?? 0)])
      .filter(([, count]) => Number(count) > 0),
  );
}

const apps: AppProcess[] = [];
afterAll(async () => {
  await Promise.all(apps.map((app) => app.stop()));
  await stopAllRedisServers();
});

describe('an idle deployment (web + worker)', () => {
  it('sends no billable command while nobody is connected; presence heartbeats only while someone is', async () => {
    const redis = await RedisServer.start();
    // A 6 s presence TTL heartbeats every 2 s, so a 7 s window would see at least three heartbeats.
    const env = { REDIS_URL: redis.url(), JWT_SECRET, PRESENCE_TTL_SECONDS: '6' };
    const [web, worker] = await Promise.all([AppProcess.start({ ...env, APP_ROLE: 'web' }), AppProcess.start({ ...env, APP_ROLE: 'worker' })]);
    apps.push(web, worker);
    await Promise.all([web.waitForLines(/ready in \d+ ms/, 3), worker.waitForLines(/ready in \d+ ms/, 3)]);
    await worker.waitForLine(/processing "jobs"/);

    // Idle is what this test is about: waiting is the behaviour, there is no event for "nothing happened".
    await delay(1_000);
    const idleStart = await billableCalls(redis);
    await delay(7_000);
    expect(delta(idleStart, await billableCalls(redis))).toEqual({});

    const client = await PresenceClient.connect(web, tokenFor('u1', 'pharmacy-1'));
    try {
      const busyStart = await billableCalls(redis);
      await delay(7_000);
      const busy = delta(busyStart, await billableCalls(redis));
      // Script calls (the first one loads the script with EVAL); commandstats also counts the calls inside them.
      expect((busy.evalsha ?? 0) + (busy.eval ?? 0)).toBeGreaterThanOrEqual(3);
    } finally {
      client.close();
    }
  }, 60_000);
});
