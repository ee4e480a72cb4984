import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { Redis } from 'ioredis';
import type { RedisClient } from './command-counter';
import { CapturingLogger } from '../../test/support/capturing-logger';
import { externalAddress } from '../../test/support/external-address';
import { freePort } from '../../test/support/free-port';
import { RedisCluster } from '../../test/support/redis-cluster';
import { until } from '../../test/support/until';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { TcpProxy } from '../../test/support/tcp-proxy';
import { generateTestCertificates, TestCertificates } from '../../test/support/tls-certificates';
import { loadConfig } from '../config';
import { RedisConnections } from './redis-connections';
import { RedisRoleError } from './redis-refusal';

const PASSWORD = 'tls-and-password-S3cret';
let certificates: TestCertificates;
let certificatesDir: string;
let tlsRedis: RedisServer;
const logger = CapturingLogger.install();
const open: RedisConnections[] = [];

function connect(env: Record<string, string>): RedisConnections {
  const connections = new RedisConnections(loadConfig({ NODE_ENV: 'test', ...env }));
  open.push(connections);
  return connections;
}

function nextEvent(client: RedisClient, event: 'ready' | 'error' | 'reconnecting'): Promise<unknown> {
  return new Promise((resolve) => client.once(event, resolve));
}

beforeAll(async () => {
  certificatesDir = await mkdtemp(join(tmpdir(), 'pharmacare-certs-'));
  certificates = await generateTestCertificates(certificatesDir);
  tlsRedis = await RedisServer.start({ tls: certificates, password: PASSWORD });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((connections) => connections.onApplicationShutdown()));
  logger.lines.length = 0;
});

afterAll(async () => {
  await stopAllRedisServers();
  await rm(certificatesDir, { recursive: true, force: true });
});

describe('TLS (the way Upstash behaves: TLS plus a password)', () => {
  it('connects and verifies the certificate with the CA from REDIS_TLS_CA_FILE', async () => {
    const connections = connect({ REDIS_URL: tlsRedis.url(), REDIS_TLS_CA_FILE: certificates.caFile });
    const client = connections.client('command');
    await Promise.all((['command', 'queue', 'subscriber'] as const).map((role) => nextEvent(connections.client(role), 'ready')));
    expect(await client.ping()).toBe('PONG');
    expect(connections.status('command').state).toBe('ready');
    expect(logger.text).toContain(`certificate verified against the CA in ${certificates.caFile}`);
  });

  it('refuses a server whose certificate no trusted CA signed, and says how to fix it', async () => {
    const connections = connect({ REDIS_URL: tlsRedis.url() });
    await nextEvent(connections.client('command'), 'error');
    const status = connections.status('command');
    expect(status.state).toBe('down');
    expect(status.lastError?.kind).toBe('tls');
    expect(logger.text).toMatch(/\[Redis:command\] cannot connect: TLS certificate of localhost rejected .*REDIS_TLS_CA_FILE/);
  });

  it('refuses the certificate when REDIS_TLS_CA_FILE holds another CA', async () => {
    const connections = connect({ REDIS_URL: tlsRedis.url(), REDIS_TLS_CA_FILE: certificates.otherCaFile });
    await nextEvent(connections.client('command'), 'error');
    expect(connections.status('command').lastError?.kind).toBe('tls');
  });

  it('accepts an unverifiable certificate only with REDIS_TLS_INSECURE=true, and warns about it', async () => {
    const connections = connect({ REDIS_URL: tlsRedis.url(), REDIS_TLS_INSECURE: 'true' });
    await nextEvent(connections.client('command'), 'ready');
    expect(logger.lines.filter((line) => line.startsWith('warn') && line.includes('REDIS_TLS_INSECURE=true'))).toHaveLength(1);
  });

  it('retries a certificate error slowly', async () => {
    const connections = connect({ REDIS_URL: tlsRedis.url() });
    const client = connections.client('queue');
    await nextEvent(client, 'error');
    const delay = (await nextEvent(client, 'reconnecting')) as number;
    expect(delay).toBeGreaterThanOrEqual(15_000);
  });
});

describe('authentication', () => {
  let passwordRedis: RedisServer;
  beforeAll(async () => {
    passwordRedis = await RedisServer.start({ password: PASSWORD, aclUser: { name: 'pharmacy-app', password: 'acl-user-pass-123' } });
  });

  it('reports WRONGPASS as an authentication failure with the fix, without printing the password, and retries slowly', async () => {
    const wrong = 'not-the-right-password-42';
    const connections = connect({ REDIS_URL: passwordRedis.url({ password: wrong }) });
    const client = connections.client('command');
    await nextEvent(client, 'error');
    expect(connections.status('command').lastError?.kind).toBe('auth');
    expect(logger.text).toMatch(/\[Redis:command\] cannot connect: authentication failed \(WRONGPASS\); the user or password in REDIS_URL is wrong/);
    const delay = (await nextEvent(client, 'reconnecting')) as number;
    expect(delay).toBeGreaterThanOrEqual(15_000);
    expect(logger.text).not.toContain(wrong);
    expect(logger.text).not.toContain(PASSWORD);
  });

  it('reports a missing password (NOAUTH) with the fix', async () => {
    const connections = connect({ REDIS_URL: `redis://127.0.0.1:${passwordRedis.port}` });
    await nextEvent(connections.client('command'), 'error');
    expect(connections.status('command').lastError?.kind).toBe('auth');
    expect(logger.text).toMatch(/requires a password but REDIS_URL has none/);
  });

  it('connects as an ACL user named in the URL', async () => {
    const connections = connect({ REDIS_URL: passwordRedis.url({ user: 'pharmacy-app' }) });
    await nextEvent(connections.client('command'), 'ready');
    expect(await connections.client('command').call('ACL', 'WHOAMI')).toBe('pharmacy-app');
  });
});

describe('a database the server does not have', () => {
  it('keeps the connection down instead of running on database 0, says which /db to fix, and retries slowly', async () => {
    const redis = await RedisServer.start();
    const connections = connect({ REDIS_URL: redis.url({ db: 99 }) });
    const client = connections.client('queue');
    // Queued before the handshake: ioredis would flush it onto database 0 once it went ready anyway.
    void client.set('misplaced', 'yes').catch(() => undefined);
    await nextEvent(client, 'error');
    const delay = (await nextEvent(client, 'reconnecting')) as number;
    expect(connections.status('queue')).toMatchObject({ state: 'down', lastError: { kind: 'database' } });
    expect(delay).toBeGreaterThanOrEqual(15_000);
    expect(logger.text).toMatch(/\[Redis:queue\] cannot connect: database 99 does not exist on this server .*change the \/db at the end of REDIS_URL/);
    expect(logger.text).not.toMatch(/\[Redis:queue\] ready in/);
    expect(await redis.command('EXISTS', 'misplaced')).toBe('0');
  });
});

describe('the command client fails fast', () => {
  it('rejects a command at once while Redis is unreachable instead of queueing it', async () => {
    const redis = await RedisServer.start();
    const connections = connect({ REDIS_URL: redis.url() });
    const client = connections.client('command');
    await nextEvent(client, 'ready');
    await redis.kill();
    await nextEvent(client, 'reconnecting');
    await expect(client.get('anything')).rejects.toThrow(/enableOfflineQueue|Stream isn't writeable/);
  });

  it('times a command out when Redis is frozen', async () => {
    const redis = await RedisServer.start();
    const connections = connect({ REDIS_URL: redis.url(), REDIS_COMMAND_TIMEOUT_MS: '200' });
    const client = connections.client('command');
    await nextEvent(client, 'ready');
    redis.pause();
    try {
      await expect(client.get('anything')).rejects.toThrow(/Command timed out/);
    } finally {
      redis.resume();
    }
  });
});

describe('a client duplicated from a role (BullMQ blocking connection)', () => {
  it('is ready again after being ended and connected again, the way BullMQ resets its blocking wait', async () => {
    const plain = await RedisServer.start();
    const connections = connect({ REDIS_URL: plain.url() });
    await nextEvent(connections.client('queue'), 'ready');
    const blocking = (connections.client('queue') as Redis).duplicate();
    await nextEvent(blocking, 'ready');
    const supervised = connections.latestDuplicate('queue');
    expect(supervised?.status().state).toBe('ready');

    // BullMQ's resetBlockedConnection / whenCurrentJobsFinished: disconnect, wait for 'end', then connect().
    const ended = new Promise((resolve) => blocking.once('end', resolve));
    blocking.disconnect();
    await ended;
    await blocking.connect();
    expect(await blocking.ping()).toBe('PONG');
    expect(connections.latestDuplicate('queue')).toBe(supervised);
    expect(supervised?.status().state).toBe('ready');
    blocking.disconnect();
  });
});

describe('a Redis at its connection limit (maxclients)', () => {
  it('is named as such when reached through a proxy, where the refusal arrives whole and the connection just closes', async () => {
    const redis = await RedisServer.start();
    const proxy = await TcpProxy.start(redis.port);
    // Opened first and straight to Redis: the one slot left once maxclients is 1.
    const admin = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 });
    const connections = connect({ REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
    try {
      await admin.ping();
      await Promise.all(connections.clientRoles().map((role) => nextEvent(connections.client(role), 'ready')));
      await admin.config('SET', 'maxclients', '1');
      proxy.cutAll();
      const full = /^error \[Redis:(command|queue|subscriber)\] still down: Redis refused a connection: max number of clients reached \(maxclients\); .*run fewer instances/;
      const lines = await until(
        async () => logger.lines.filter((line) => full.test(line)),
        (found) => found.length === 3,
        10_000,
      );
      expect(new Set(lines.map((line) => full.exec(line)?.[1]))).toEqual(new Set(['command', 'queue', 'subscriber']));
      await admin.config('SET', 'maxclients', '10000');
      await until(
        async () => connections.statuses().map((status) => status.state),
        (states) => states.every((state) => state === 'ready'),
        10_000,
      );
    } finally {
      admin.disconnect();
      // Closed before the proxy, which waits for its connections to end.
      await connections.onApplicationShutdown();
      await proxy.close();
    }
  }, 30_000);
});

describe('a self-hosted Redis in protected mode (no password), reached from another machine', () => {
  // Without a non-loopback interface there is no "other machine" to connect from.
  (externalAddress ? it : it.skip)(
    'says protected mode refused it and to set a password, not "Redis may be restarting", once per role, retries slowly, and connects once the server lets it',
    async () => {
      const redis = await RedisServer.start({ alsoBind: externalAddress });
      const connections = connect({ REDIS_URL: `redis://${externalAddress}:${redis.port}` });
      const denied = /^error \[Redis:(command|queue|subscriber)\] cannot connect: .*refused the connection: Redis runs in protected mode/;
      const lines = await until(
        async () => logger.lines.filter((line) => denied.test(line)),
        (found) => found.length === 3,
        10_000,
      );
      for (const line of lines) expect(line).toMatch(/set a password .*in REDIS_URL .*Retrying every 30 s/);
      expect(new Set(lines.map((line) => denied.exec(line)?.[1]))).toEqual(new Set(['command', 'queue', 'subscriber']));
      expect(logger.lines.filter((line) => /\[Redis:\w+\] (cannot connect|still down)/.test(line))).toEqual(lines);
      expect(connections.status('command').lastError?.kind).toBe('denied');
      // The operator turns protected mode off on the server: the next slow retry connects, without a restart.
      await redis.command('CONFIG', 'SET', 'protected-mode', 'no');
      await until(
        async () => connections.statuses().map((status) => status.state),
        (states) => states.every((state) => state === 'ready'),
        45_000,
        500,
      );
    },
    60_000,
  );
});

describe('roles mapped to endpoints', () => {
  const OOM = "OOM command not allowed when used memory > 'maxmemory'.";

  it('shares the REDIS_URL clients with the cache roles while REDIS_CACHE_URL is unset: 3 connections, as ever', async () => {
    const redis = await RedisServer.start();
    const connections = connect({ REDIS_URL: redis.url() });
    expect(connections.client('cache')).toBe(connections.client('command'));
    expect(connections.client('cache-subscriber')).toBe(connections.client('subscriber'));
    expect(connections.clientRoles()).toEqual(['command', 'queue', 'subscriber']);
    await Promise.all(connections.clientRoles().map((role) => nextEvent(connections.client(role), 'ready')));
    expect((await redis.clientList()).map((name) => name.split(':')[1]).sort()).toEqual(['command', 'queue', 'subscriber']);
    connections.unavailability(new RedisRoleError('not storing r1', 'cache', { cause: new Error(OOM) }));
    expect(connections.refusals('command').map((episode) => [episode.endpoint, episode.kind])).toEqual([['REDIS_URL', 'oom']]);
  });

  it('gives the cache roles clients of their own on REDIS_CACHE_URL, and files each refusal under the database it came from', async () => {
    const [queue, cache] = await Promise.all([RedisServer.start(), RedisServer.start()]);
    const connections = connect({ REDIS_URL: queue.url(), REDIS_CACHE_URL: cache.url() });
    expect(connections.clientRoles()).toEqual(['command', 'queue', 'subscriber', 'cache', 'cache-subscriber']);
    expect(connections.status('cache')).toMatchObject({ role: 'cache', endpoint: 'REDIS_CACHE_URL' });
    expect(connections.status('command')).toMatchObject({ role: 'command', endpoint: 'REDIS_URL' });
    await Promise.all(connections.clientRoles().map((role) => nextEvent(connections.client(role), 'ready')));
    expect((await cache.clientList()).map((name) => name.split(':')[1]).sort()).toEqual(['cache', 'cache-subscriber']);
    expect((await queue.clientList()).map((name) => name.split(':')[1]).sort()).toEqual(['command', 'queue', 'subscriber']);

    const refused = connections.unavailability(new Error('job failed', { cause: new RedisRoleError('not storing r1', 'cache', { cause: new Error(OOM) }) }));
    expect(refused).toMatchObject({ kind: 'oom', reason: expect.stringMatching(/out of memory.*\(REDIS_CACHE_URL\)$/) });
    expect(connections.refusals('cache').map((episode) => [episode.endpoint, episode.kind])).toEqual([['REDIS_CACHE_URL', 'oom']]);
    expect(connections.refusals('command')).toEqual([]);
    expect(logger.lines.filter((line) => /Redis refuses commands/.test(line))).toEqual([expect.stringMatching(/\(REDIS_CACHE_URL\)\. Nothing needs it to answer/)]);
    // The advice names the database that refuses, too.
    const readOnly = connections.unavailability(new RedisRoleError('not storing r2', 'cache', { cause: new Error("READONLY You can't write against a read only replica.") }));
    expect(readOnly).toMatchObject({ kind: 'readonly', fix: expect.stringMatching(/^REDIS_CACHE_URL must point at the primary/) });
    expect(logger.lines.filter((line) => /read-only replica \(READONLY\) \(REDIS_CACHE_URL\)/.test(line))).toEqual([
      expect.stringMatching(/Fix: REDIS_CACHE_URL must point at the primary/),
    ]);
    // Unattributed (BullMQ's own errors): REDIS_URL's.
    connections.unavailability(new Error(OOM));
    expect(connections.refusals('queue').map((episode) => episode.endpoint)).toEqual(['REDIS_URL']);
  });
});

describe('REDIS_CLUSTER=true', () => {
  it('gives every role a Cluster client that reaches each master, and knows the masters for health checks', async () => {
    const cluster = await RedisCluster.start();
    try {
      const connections = connect({ REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true' });
      await Promise.all(connections.clientRoles().map((role) => nextEvent(connections.client(role), 'ready')));
      expect(connections.statuses().map((status) => status.state)).toEqual(['ready', 'ready', 'ready']);
      const masters = connections.masters('command').map((master) => master.node);
      expect(masters.sort()).toEqual(cluster.nodes.map((node) => `127.0.0.1:${node.port}`).sort());
      expect(await Promise.all(connections.masters('command').map((master) => master.client?.ping()))).toEqual(['PONG', 'PONG', 'PONG']);
      expect(logger.lines.filter((line) => /refusing/.test(line))).toEqual([]);

      // What ioredis emits when a sharded subscriber cannot connect during a failover: the Cluster stays ready and
      // retries it, so the role must too (marked down here, it never saw another 'ready' and /health stayed 503).
      for (let i = 0; i < 3; i++) connections.client('subscriber').emit('error', new Error('Connection is closed.'));
      expect(connections.status('subscriber').state).toBe('ready');
      // Which node it was, the error does not say; the seed's address there named a node that was fine.
      expect(logger.lines.filter((line) => /\[Redis:subscriber\] cluster sharded subscribers: /.test(line))).toEqual([
        expect.stringMatching(/cluster sharded subscribers: connection to a node closed \(Connection is closed\.\); the cluster client retries it/),
      ]);
    } finally {
      await cluster.stop();
    }
  }, 60_000);

  it('names a master at its maxclients as such (not "connection closed"), once per role however often it is tried', async () => {
    const cluster = await RedisCluster.start();
    const full = await cluster.masterFor('{pharmacare}');
    // Opened first: the test's own connection is the one the full master takes.
    const admin = new Redis({ host: '127.0.0.1', port: full.port, maxRetriesPerRequest: 1 });
    try {
      await admin.ping();
      const connections = connect({ REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true' });
      await Promise.all(connections.clientRoles().map((role) => nextEvent(connections.client(role), 'ready')));
      await admin.config('SET', 'maxclients', '1');
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      // It answers a connection with its error and closes: ioredis, mid-handshake, sees EPIPE or a closed connection.
      const aboutFull = new RegExp(`^warn \\[Redis:command\\] cluster node 127\\.0\\.0\\.1:${full.port}: `);
      const lines = await until(
        async () => {
          await connections
            .client('command')
            .get('{pharmacare}:probe')
            .catch(() => undefined);
          return logger.lines.filter((line) => aboutFull.test(line));
        },
        (found) => found.length > 0,
        10_000,
        200,
      );
      for (let attempt = 0; attempt < 5; attempt++)
        await connections
          .client('command')
          .get('{pharmacare}:probe')
          .catch(() => undefined);
      expect(logger.lines.filter((line) => aboutFull.test(line))).toEqual([lines[0]]);
      expect(lines[0]).toMatch(/Redis refused a connection: max number of clients reached \(maxclients\); .*run fewer instances/);
    } finally {
      admin.disconnect();
      await cluster.stop();
    }
  }, 60_000);

  it('refuses a single Redis named as a cluster with one line, and names a refused connection as such', async () => {
    const single = await RedisServer.start();
    const connections = connect({ REDIS_URL: single.url(), REDIS_CLUSTER: 'true' });
    await until(
      async () => connections.statuses().map((status) => status.state),
      (states) => states.every((state) => state === 'refused'),
    );
    expect(connections.status('command').lastError?.kind).toBe('cluster');
    expect(logger.lines.filter((line) => /REDIS_CLUSTER=true but 127\.0\.0\.1:\d+ is not a Redis Cluster node/.test(line))).toEqual([
      expect.stringMatching(/refusing REDIS_URL: .*Fix: unset REDIS_CLUSTER/),
    ]);

    // An ioredis Cluster reports a refused seed as "Connection is closed": the probe tells them apart.
    const nothing = connect({ REDIS_URL: `redis://127.0.0.1:${await freePort()}`, REDIS_CLUSTER: 'true' });
    await until(
      async () => nothing.status('command').lastError?.kind,
      (kind) => kind === 'refused',
    );
    expect(nothing.status('command').lastError?.reason).toMatch(/connection refused by 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  }, 30_000);
});

describe('REDIS_CLUSTER=true over TLS', () => {
  it("verifies every node's certificate against REDIS_TLS_CA_FILE, the nodes found from the seed included, and refuses them without it", async () => {
    const cluster = await RedisCluster.start({ tls: certificates });
    try {
      expect(cluster.url()).toMatch(/^rediss:\/\/localhost:\d+$/);
      const trusted = connect({ REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true', REDIS_TLS_CA_FILE: certificates.caFile });
      await nextEvent(trusted.client('command'), 'ready');
      const masters = trusted.masters('command');
      expect(masters).toHaveLength(3);
      // Each master's own connection, over TLS to the address the cluster announced for it.
      expect(await Promise.all(masters.map((master) => master.client?.ping()))).toEqual(['PONG', 'PONG', 'PONG']);
      expect(masters.every((master) => master.client?.stream instanceof TLSSocket && master.client.stream.authorized)).toBe(true);

      const untrusted = connect({ REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true' });
      await until(
        async () => untrusted.status('command').lastError?.kind,
        (kind) => kind === 'tls',
        10_000,
      );
      expect(untrusted.status('command').state).not.toBe('ready');
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});
