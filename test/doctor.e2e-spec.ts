import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { externalAddress } from './support/external-address';
import { freePort } from './support/free-port';
import { Redis } from 'ioredis';
import { RedisCluster } from './support/redis-cluster';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { generateTestCertificates, type TestCertificates } from './support/tls-certificates';

// Jest runs from the repository root; ESM specs have no __dirname.
const DOCTOR = join(process.cwd(), 'dist', 'doctor.js');
const PASSWORD = 'Dq4DoctorCanaryPw81';
const WRONG_PASSWORD = 'Wz7NotThePasswordXy3';
const KILL_AFTER_MS = 40_000;

interface DoctorRun {
  code: number | null;
  output: string;
  ms: number;
}

/** dist/doctor.js (built by `npm test`'s pretest) as `node dist/doctor.js` runs it on a Render shell. */
function doctor(env: Record<string, string>): Promise<DoctorRun> {
  const started = Date.now();
  const child = spawn(process.execPath, [DOCTOR], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - started });
    }),
  );
}

/** The report line of one check, e.g. "fail  auth  authentication failed (WRONGPASS) -> fix: ...". */
function line(output: string, check: string): string {
  return output.split('\n').find((text) => new RegExp(`^(ok|warn|fail|skip) +${check} `).test(text)) ?? `(no ${check} line in:\n${output})`;
}

/**
 * How the server names itself in INFO server, read here rather than from the doctor: Valkey (Render Key Value)
 * keeps redis_version for compatibility and adds valkey_version, e.g. "Valkey 8.0.1 (redis_version 7.2.4)".
 */
async function serverName(server: RedisServer): Promise<string> {
  const info = await server.command('INFO', 'server');
  const field = (name: string): string | undefined => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
  const redisVersion = field('redis_version');
  const valkeyVersion = field('valkey_version');
  return valkeyVersion ? `Valkey ${valkeyVersion} (redis_version ${redisVersion})` : `Redis ${redisVersion}`;
}

afterAll(() => stopAllRedisServers());

describe('npm run doctor (dist/doctor.js)', () => {
  describe('a plain Redis with a password', () => {
    let server: RedisServer;
    beforeAll(async () => {
      server = await RedisServer.start({ password: PASSWORD });
    });
    afterAll(() => server.stop());

    it('passes every check, exit 0, without printing the password', async () => {
      const run = await doctor({ REDIS_URL: server.url() });
      expect(run.code).toBe(0);
      expect(line(run.output, 'url')).toMatch(/^ok +url +redis:\/\/default:\*\*\*@127\.0\.0\.1:\d+ \(provider local, no TLS\)$/);
      expect(line(run.output, 'connection')).toMatch(/^ok +connection +reached 127\.0\.0\.1:\d+ and ready in \d+ ms$/);
      expect(line(run.output, 'auth')).toMatch(/^ok +auth +accepted for user "default"$/);
      expect(line(run.output, 'database')).toMatch(/^ok +database +db 0$/);
      expect(line(run.output, 'latency')).toMatch(/^ok +latency +p50 \d+\.\d ms, max \d+\.\d ms over 5 PINGs$/);
      expect(line(run.output, 'server')).toMatch(/^ok +server +/);
      expect(line(run.output, 'server').replace(/^ok +server +/, '')).toBe(await serverName(server));
      expect(line(run.output, 'eviction')).toMatch(/^ok +eviction +noeviction \(CONFIG GET\)$/);
      expect(run.output).toMatch(/^doctor: all checks passed$/m);
      expect(run.output).not.toContain(PASSWORD);
    });

    it('fails on a wrong password, naming the authentication problem, exit 1, password absent', async () => {
      const run = await doctor({ REDIS_URL: server.url({ password: WRONG_PASSWORD }), JWT_SECRET: 'x'.repeat(40) });
      expect(run.code).toBe(1);
      expect(line(run.output, 'auth')).toMatch(/^fail +auth +authentication failed \(WRONGPASS\) -> fix: the user or password in REDIS_URL is wrong/);
      expect(line(run.output, 'latency')).toMatch(/^skip/);
      expect(run.output).toMatch(/^doctor: 1 failed, 0 warnings$/m);
      expect(run.output).not.toContain(WRONG_PASSWORD);
      expect(run.output).not.toContain(PASSWORD);
      expect(run.output).not.toContain('x'.repeat(40));
    });

    it('fails without a password in the URL (NOAUTH), saying to add one', async () => {
      const port = new URL(server.url()).port;
      const run = await doctor({ REDIS_URL: `redis://127.0.0.1:${port}` });
      expect(run.code).toBe(1);
      expect(line(run.output, 'auth')).toMatch(/^fail +auth +authentication failed \(NOAUTH\) -> fix: this Redis requires a password but REDIS_URL has none/);
    });

    it('fails on a database index the server does not have', async () => {
      const run = await doctor({ REDIS_URL: server.url({ db: 99 }) });
      expect(run.code).toBe(1);
      expect(line(run.output, 'database')).toMatch(
        /^fail +database +SELECT 99 refused \(ERR DB index is out of range\): the connection stayed on database 0 -> fix: use a database the server has/,
      );
    });

    it('reads the eviction policy from INFO memory when the server refuses CONFIG, as Upstash may', async () => {
      await server.command('ACL', 'SETUSER', 'default', '-config');
      try {
        const run = await doctor({ REDIS_URL: server.url() });
        expect(run.code).toBe(0);
        expect(line(run.output, 'eviction')).toMatch(/^ok +eviction +noeviction \(INFO memory\)$/);
      } finally {
        await server.command('ACL', 'SETUSER', 'default', '+config');
      }
    });
  });

  it('warns (exit 0) about maxmemory-policy allkeys-lru, which BullMQ cannot live with', async () => {
    const server = await RedisServer.start();
    try {
      await server.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
      const run = await doctor({ REDIS_URL: server.url() });
      expect(run.code).toBe(0);
      expect(line(run.output, 'eviction')).toMatch(/^warn +eviction +allkeys-lru \(CONFIG GET\): .*BullMQ jobs among them -> fix: set the policy to noeviction/);
      expect(run.output).toMatch(/^doctor: all checks passed with 1 warning$/m);
    } finally {
      await server.stop();
    }
  });

  describe('a TLS Redis whose certificate a private CA signed', () => {
    let dir: string;
    let certificates: TestCertificates;
    let server: RedisServer;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'pharmacare-doctor-tls-'));
      certificates = await generateTestCertificates(dir);
      server = await RedisServer.start({ tls: certificates, password: PASSWORD });
    });
    afterAll(async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    });

    // The test certificates live one day, so the expiry warning shows too (a warning: still exit 0).
    it('passes with REDIS_TLS_CA_FILE, verification on, warning that the certificate expires soon', async () => {
      const run = await doctor({ REDIS_URL: server.url(), REDIS_TLS_CA_FILE: certificates.caFile });
      expect(run.code).toBe(0);
      expect(line(run.output, 'url')).toMatch(/^ok +url +rediss:\/\/default:\*\*\*@localhost:\d+ \(provider local, TLS\)$/);
      expect(line(run.output, 'tls')).toMatch(
        /^warn +tls +TLSv1\.[23], certificate for localhost issued by "PharmaCare Test CA", valid until .+; verified with REDIS_TLS_CA_FILE \(.+ca\.crt\); the certificate expires in 0 days -> fix: renew/,
      );
      expect(line(run.output, 'auth')).toMatch(/^ok +auth /);
      expect(run.output).not.toContain(PASSWORD);
    });

    it('fails with a certificate message without it, naming who signed the certificate and REDIS_TLS_CA_FILE as the fix', async () => {
      const run = await doctor({ REDIS_URL: server.url() });
      expect(run.code).toBe(1);
      expect(line(run.output, 'connection')).toMatch(/^ok +connection +reached localhost:\d+$/);
      expect(line(run.output, 'tls')).toMatch(
        /^fail +tls +TLS certificate of localhost rejected \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\); the server presented a certificate for localhost issued by "PharmaCare Test CA".* -> fix: if your Redis uses a private CA, set REDIS_TLS_CA_FILE/,
      );
      expect(run.output).not.toContain(PASSWORD);
    });

    it('with the CA file of another CA, says that CA did not sign it (not "no trusted CA"), and that the file holds the wrong CA', async () => {
      const run = await doctor({ REDIS_URL: server.url(), REDIS_TLS_CA_FILE: certificates.otherCaFile });
      expect(run.code).toBe(1);
      expect(line(run.output, 'tls')).toMatch(/^fail +tls +TLS certificate of localhost rejected \(\w+\)/);
      expect(line(run.output, 'tls')).toMatch(
        /which the CA in REDIS_TLS_CA_FILE \(.+\) did not sign -> fix: REDIS_TLS_CA_FILE \(.+\) holds another CA than the one that signed/,
      );
      expect(run.output).not.toMatch(/no trusted CA/);
    });
  });

  describe('Redis in bad states', () => {
    it('fails on a Redis Cluster node with the message the app refuses it with; with REDIS_CLUSTER, checks every master', async () => {
      const cluster = await RedisCluster.start();
      try {
        const run = await doctor({ REDIS_URL: cluster.url() });
        expect(run.code).toBe(1);
        expect(line(run.output, 'cluster')).toMatch(
          /^fail +cluster +127\.0\.0\.1:\d+ is a Redis Cluster node \(INFO cluster says cluster_enabled:1\), but REDIS_CLUSTER is not set.* -> fix: set REDIS_CLUSTER=true to use it as a cluster.*or point REDIS_URL at a single Redis/,
        );

        const asCluster = await doctor({ REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true' });
        const summary = line(asCluster.output, 'cluster');
        expect(summary).toMatch(/^warn +cluster +cluster_state:ok, 16384\/16384 slots, 3 masters .*a master without a replica loses its slots/);
        for (const node of cluster.nodes) expect(summary).toContain(`127.0.0.1:${node.port} ${await serverName(node)} noeviction, 0 replicas`);
        expect(asCluster.code).toBe(0);

        // One master configured apart from the others would evict queued jobs on its own.
        await cluster.nodes[2].command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
        const evicting = await doctor({ REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true' });
        expect(evicting.code).toBe(1);
        expect(line(evicting.output, 'cluster')).toMatch(
          new RegExp(`^fail +cluster .*127\\.0\\.0\\.1:${cluster.nodes[2].port} evicts \\(allkeys-lru\\): BullMQ jobs may be deleted`),
        );
      } finally {
        await cluster.stop();
      }
    }, 90_000);

    it('fails a single Redis when REDIS_CLUSTER=true, naming the variable', async () => {
      const server = await RedisServer.start();
      const run = await doctor({ REDIS_URL: server.url(), REDIS_CLUSTER: 'true' });
      expect(run.code).toBe(1);
      expect(line(run.output, 'cluster')).toMatch(/^fail +cluster +REDIS_CLUSTER=true but 127\.0\.0\.1:\d+ is not a Redis Cluster node.* -> fix: unset REDIS_CLUSTER/);
    }, 60_000);

    it('warns above 80 % of maxmemory and fails when full', async () => {
      const server = await RedisServer.start({ maxmemory: '4mb' });
      try {
        const fresh = await doctor({ REDIS_URL: server.url() });
        expect(line(fresh.output, 'memory')).toMatch(/^ok +memory +\d+\.\d MiB used of 4\.0 MiB maxmemory \(\d+ %\)$/);
        const used = Number(/used_memory:(\d+)/.exec(await server.command('INFO', 'memory'))?.[1]);
        await server.command('CONFIG', 'SET', 'maxmemory', String(Math.floor(used / 0.9)));
        const high = await doctor({ REDIS_URL: server.url() });
        expect(high.code).toBe(0);
        expect(line(high.output, 'memory')).toMatch(/^warn +memory +.* \(9\d %\): over 80 %; once full, Redis refuses writes \(OOM\) -> fix: free memory or raise the limit/);
        await server.command('CONFIG', 'SET', 'maxmemory', '1');
        const full = await doctor({ REDIS_URL: server.url() });
        expect(full.code).toBe(1);
        expect(line(full.output, 'memory')).toMatch(/^fail +memory +.*: full, Redis refuses writes \(OOM\), so new jobs are answered 503 -> fix: /);
      } finally {
        await server.stop();
      }
    });

    it('names the connection limit when the server is full, instead of "Redis may be restarting"', async () => {
      const server = await RedisServer.start({ maxclients: 1 });
      const holder = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
      holder.on('error', () => undefined);
      await holder.connect();
      try {
        const run = await doctor({ REDIS_URL: server.url() });
        expect(run.code).toBe(1);
        expect(line(run.output, 'connection')).toMatch(
          /^fail +connection +Redis refused a connection: max number of clients reached \(maxclients\) -> fix: .*connection limit/,
        );
        expect(run.output).not.toMatch(/restarting/);
      } finally {
        holder.disconnect();
        await server.stop();
      }
    });

    // Without a non-loopback interface there is no "other machine" to connect from.
    (externalAddress ? it : it.skip)('names protected mode (a Redis without a password, reached from another machine), instead of "Redis may be restarting"', async () => {
      const server = await RedisServer.start({ alsoBind: externalAddress });
      try {
        const run = await doctor({ REDIS_URL: `redis://${externalAddress}:${server.port}` });
        expect(run.code).toBe(1);
        expect(line(run.output, 'connection')).toMatch(/^fail +connection +.*refused the connection: Redis runs in protected mode .* -> fix: set a password on that server/);
        expect(run.output).not.toMatch(/restarting/);
      } finally {
        await server.stop();
      }
    });

    it('says a rediss:// URL reaches a plain-text Redis, instead of "no answer; check the firewall"', async () => {
      const server = await RedisServer.start();
      try {
        const run = await doctor({ REDIS_URL: `rediss://127.0.0.1:${server.port}` });
        expect(run.code).toBe(1);
        expect(line(run.output, 'tls')).toMatch(/^fail +tls +127\.0\.0\.1:\d+ speaks plain-text Redis, not TLS.* -> fix: use redis:\/\/ instead of rediss:\/\//);
        expect(run.output).not.toMatch(/firewall/);
      } finally {
        await server.stop();
      }
    });
  });

  it('fails fast with connection refused when nothing listens', async () => {
    const run = await doctor({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    expect(run.code).toBe(1);
    expect(line(run.output, 'connection')).toMatch(/^fail +connection +connection refused by 127\.0\.0\.1:\d+ \(ECONNREFUSED\) -> fix: nothing listens there/);
    expect(run.ms).toBeLessThan(5_000);
  });

  it('gives up on a frozen server within its connect deadline instead of hanging', async () => {
    const server = await RedisServer.start();
    server.pause();
    try {
      const run = await doctor({ REDIS_URL: server.url() });
      expect(run.code).toBe(1);
      expect(line(run.output, 'connection')).toMatch(/^fail +connection +no answer from 127\.0\.0\.1:\d+/);
      expect(run.ms).toBeLessThan(15_000);
    } finally {
      server.resume();
      await server.stop();
    }
  });

  it('fails on the https:// REST URL with the hint to copy the rediss:// one, without connecting or printing the token', async () => {
    const run = await doctor({ REDIS_URL: 'https://default:RestTokenCanary55@eu1-fine-cat-12345.upstash.io' });
    expect(run.code).toBe(1);
    expect(line(run.output, 'url')).toMatch(/^fail +url +REDIS_URL is an https:\/\/ URL .*copy the URL that starts with rediss:\/\//);
    expect(run.output).not.toMatch(/^\w+ +connection /m);
    expect(run.output).not.toContain('RestTokenCanary55');
  });

  it('fails when REDIS_URL is unset in production, as the app would', async () => {
    const run = await doctor({ NODE_ENV: 'production', APP_ROLE: 'worker' });
    expect(run.code).toBe(1);
    expect(line(run.output, 'url')).toMatch(/^fail +url +REDIS_URL is required when NODE_ENV=production/);
  });

  describe('two databases: REDIS_URL for the queue, REDIS_CACHE_URL for the cache', () => {
    let queue: RedisServer;
    let cache: RedisServer;
    beforeAll(async () => {
      [queue, cache] = await Promise.all([RedisServer.start(), RedisServer.start({ password: PASSWORD })]);
    });
    afterAll(() => Promise.all([queue.stop(), cache.stop()]));

    it('checks each, saying which URL holds what; the cache evicting is fine and said to evict job results too, password absent', async () => {
      await cache.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
      const run = await doctor({ REDIS_URL: queue.url(), REDIS_CACHE_URL: cache.url() });
      expect(run.code).toBe(0);
      expect(line(run.output, 'url')).toMatch(/^ok +url +REDIS_URL redis:\/\/127\.0\.0\.1:\d+ \(provider local, no TLS\): the queue, presence and Socket\.io/);
      expect(line(run.output, 'cache:url')).toMatch(
        /^ok +cache:url +REDIS_CACHE_URL redis:\/\/default:\*\*\*@127\.0\.0\.1:\d+ \(provider local, no TLS\): the cache and job results$/,
      );
      expect(line(run.output, 'connection')).toMatch(new RegExp(`^ok +connection +reached 127\\.0\\.0\\.1:${queue.port} `));
      expect(line(run.output, 'cache:connection')).toMatch(new RegExp(`^ok +cache:connection +reached 127\\.0\\.0\\.1:${cache.port} `));
      expect(line(run.output, 'eviction')).toMatch(/^ok +eviction +noeviction \(CONFIG GET\)$/);
      expect(line(run.output, 'cache:eviction')).toMatch(
        /^ok +cache:eviction +allkeys-lru \(CONFIG GET\): .*job results are evicted too, possibly before REPORT_TTL_SECONDS: an evicted one answers 404/,
      );
      expect(run.output).toMatch(/^doctor: all checks passed$/m);
      expect(run.output).not.toContain(PASSWORD);
    });

    it('flags a queue database that evicts and a cache database that does not, each under its own name', async () => {
      await queue.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
      await cache.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      try {
        const run = await doctor({ REDIS_URL: queue.url(), REDIS_CACHE_URL: cache.url() });
        expect(run.code).toBe(0);
        expect(line(run.output, 'eviction')).toMatch(/^warn +eviction +allkeys-lru \(CONFIG GET\): .*BullMQ jobs among them -> fix: set the policy to noeviction/);
        expect(line(run.output, 'cache:eviction')).toMatch(
          /^warn +cache:eviction +noeviction \(CONFIG GET\): once full, Redis refuses cache writes.* -> fix: set maxmemory-policy allkeys-lru/,
        );
        expect(run.output).toMatch(/^doctor: all checks passed with 2 warnings$/m);
      } finally {
        await queue.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      }
    });

    it('names REDIS_CACHE_URL in what goes wrong with it', async () => {
      const run = await doctor({ REDIS_URL: queue.url(), REDIS_CACHE_URL: cache.url({ password: WRONG_PASSWORD }) });
      expect(run.code).toBe(1);
      expect(line(run.output, 'auth')).toMatch(/^ok +auth /);
      expect(line(run.output, 'cache:auth')).toMatch(/^fail +cache:auth +authentication failed \(WRONGPASS\) -> fix: the user or password in REDIS_CACHE_URL is wrong/);
      expect(run.output).not.toContain(WRONG_PASSWORD);
    });
  });
});
