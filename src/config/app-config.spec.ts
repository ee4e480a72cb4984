import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateTestCertificates, type TestCertificates } from '../../test/support/tls-certificates';
import { ConfigError, loadConfig } from './app-config';

type Env = Record<string, string | undefined>;

const JWT_SECRET = 'jwt-secret-Xk29Qm47Lp83Zr65Wt10Yv';
const REDIS_PASSWORD = 'Rp8Vq3RedisPassUnique';

/** Calls loadConfig expecting a ConfigError, and returns it. */
function configError(env: Env): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(Object.keys(env))}`);
}

/** Asserts one problem naming `variable` at its start, and returns it. */
function onlyProblem(error: ConfigError, variable: string): string {
  expect(error.problems).toHaveLength(1);
  const [problem] = error.problems;
  expect(problem.startsWith(`${variable} `)).toBe(true);
  expect(error.message).toContain(problem);
  return problem;
}

describe('loadConfig', () => {
  describe('defaults', () => {
    it('gives development defaults for an empty environment', () => {
      const config = loadConfig({});
      expect(config.nodeEnv).toBe('development');
      expect(config.port).toBe(3000);
      expect(config.host).toBe('0.0.0.0');
      expect(config.logLevel).toBe('log');
      expect(config.shutdownTimeoutMs).toBe(10_000);
      expect(config.health.redisGraceMs).toBe(20_000);
      expect(config.redis.endpoint).toBeUndefined();
      expect(config.redis.tlsCa).toBeUndefined();
      expect(config.redis.tlsCaFile).toBeUndefined();
      expect(config.redis.tlsInsecure).toBe(false);
      expect(config.redis.family).toBe(0);
      expect(config.redis.keyPrefix).toBe('pharmacare');
      expect(config.redis.commandTimeoutMs).toBe(1000);
      expect(config.jwt.generated).toBe(true);
      expect(config.jwt.secret.length).toBeGreaterThanOrEqual(32);
    });

    it('generates a different JWT secret on each load', () => {
      expect(loadConfig({}).jwt.secret).not.toBe(loadConfig({}).jwt.secret);
    });

    it('treats blank REDIS_URL and JWT_SECRET as unset', () => {
      const config = loadConfig({ REDIS_URL: '   ', JWT_SECRET: '' });
      expect(config.redis.endpoint).toBeUndefined();
      expect(config.jwt.generated).toBe(true);
    });
  });

  describe('explicit values', () => {
    it('reads every variable', () => {
      const config = loadConfig({
        NODE_ENV: 'production',
        PORT: '10000',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'debug',
        SHUTDOWN_TIMEOUT_SECONDS: '25',
        REDIS_URL: `rediss://default:${REDIS_PASSWORD}@eu1-fine-bird-12345.upstash.io:6379`,
        REDIS_TLS_INSECURE: 'true',
        REDIS_FAMILY: '6',
        REDIS_KEY_PREFIX: 'pharmacare:staging',
        REDIS_COMMAND_TIMEOUT_MS: '2500',
        JWT_SECRET,
        HEALTH_REDIS_GRACE_SECONDS: '45',
        HEALTH_TOKEN: 'health-token-0123456789',
        JWT_MAX_AGE_SECONDS: '3600',
        CORS_ORIGINS: 'https://app.pharmacare.example, http://localhost:5173',
        QUEUE_TENANT_MAX_JOBS: '5',
        QUEUE_TENANT_MAX_PAYLOAD_MB: '32',
      });
      expect(config.nodeEnv).toBe('production');
      expect(config.port).toBe(10_000);
      expect(config.host).toBe('127.0.0.1');
      expect(config.logLevel).toBe('debug');
      expect(config.shutdownTimeoutMs).toBe(25_000);
      expect(config.health.redisGraceMs).toBe(45_000);
      expect(config.redis.endpoint?.provider).toBe('upstash');
      expect(config.redis.endpoint?.password).toBe(REDIS_PASSWORD);
      expect(config.redis.tlsInsecure).toBe(true);
      expect(config.redis.family).toBe(6);
      expect(config.redis.keyPrefix).toBe('pharmacare:staging');
      expect(config.redis.commandTimeoutMs).toBe(2500);
      expect(config.jwt).toEqual({ secret: JWT_SECRET, generated: false, maxAgeSeconds: 3600 });
      expect(config.health.token).toBe('health-token-0123456789');
      expect(config.http.corsOrigins).toEqual(['https://app.pharmacare.example', 'http://localhost:5173']);
      expect(config.queue.tenantMaxJobs).toBe(5);
      expect(config.queue.tenantMaxPayloadBytes).toBe(32 * 1024 * 1024);
    });

    it.each([
      ['true', true],
      ['1', true],
      ['false', false],
      ['0', false],
    ] as const)('reads REDIS_TLS_INSECURE=%s as %s', (value, expected) => {
      expect(loadConfig({ REDIS_TLS_INSECURE: value }).redis.tlsInsecure).toBe(expected);
    });

    it('accepts REDIS_FAMILY 4', () => {
      expect(loadConfig({ REDIS_FAMILY: '4' }).redis.family).toBe(4);
    });
  });

  describe('production', () => {
    it('requires REDIS_URL, JWT_SECRET and CORS_ORIGINS, reporting them at once', () => {
      const error = configError({ NODE_ENV: 'production' });
      expect(error.problems).toHaveLength(3);
      expect(error.problems.filter((problem) => problem.startsWith('CORS_ORIGINS '))).toHaveLength(1);
      expect(error.problems.filter((problem) => problem.startsWith('REDIS_URL '))).toHaveLength(1);
      expect(error.problems.filter((problem) => problem.startsWith('JWT_SECRET '))).toHaveLength(1);
      expect(error.message).toContain('REDIS_URL');
      expect(error.message).toContain('JWT_SECRET');
    });

    it('requires JWT_SECRET even when REDIS_URL is set', () => {
      const error = configError({ NODE_ENV: 'production', CORS_ORIGINS: '*', REDIS_URL: `rediss://default:${REDIS_PASSWORD}@x.upstash.io:6379` });
      onlyProblem(error, 'JWT_SECRET');
      expect(error.message).not.toContain(REDIS_PASSWORD);
    });

    it('requires REDIS_URL even when JWT_SECRET is set', () => {
      const error = configError({ NODE_ENV: 'production', CORS_ORIGINS: '*', JWT_SECRET });
      onlyProblem(error, 'REDIS_URL');
      expect(error.message).not.toContain(JWT_SECRET);
    });

    it('does not require them outside production', () => {
      expect(loadConfig({ NODE_ENV: 'test' }).nodeEnv).toBe('test');
    });
  });

  describe('invalid values', () => {
    it.each(['abc', '0', '70000', '-1', '3.5'])('rejects PORT=%s', (port) => {
      onlyProblem(configError({ PORT: port }), 'PORT');
    });

    it('rejects REDIS_FAMILY=5', () => {
      onlyProblem(configError({ REDIS_FAMILY: '5' }), 'REDIS_FAMILY');
    });

    it.each(['a:', 'has space', ':lead', 'a::b'])('rejects REDIS_KEY_PREFIX=%s', (prefix) => {
      onlyProblem(configError({ REDIS_KEY_PREFIX: prefix }), 'REDIS_KEY_PREFIX');
    });

    it('rejects REDIS_TLS_INSECURE=yes', () => {
      const problem = onlyProblem(configError({ REDIS_TLS_INSECURE: 'yes' }), 'REDIS_TLS_INSECURE');
      expect(problem).toContain('true or false');
    });

    it('rejects an unknown NODE_ENV and LOG_LEVEL', () => {
      onlyProblem(configError({ NODE_ENV: 'staging' }), 'NODE_ENV');
      onlyProblem(configError({ LOG_LEVEL: 'info' }), 'LOG_LEVEL');
    });

    it('rejects out-of-range timeouts', () => {
      onlyProblem(configError({ REDIS_COMMAND_TIMEOUT_MS: '10' }), 'REDIS_COMMAND_TIMEOUT_MS');
      onlyProblem(configError({ SHUTDOWN_TIMEOUT_SECONDS: '0' }), 'SHUTDOWN_TIMEOUT_SECONDS');
      onlyProblem(configError({ HEALTH_REDIS_GRACE_SECONDS: '3601' }), 'HEALTH_REDIS_GRACE_SECONDS');
    });

    it('rejects a short JWT_SECRET without printing it', () => {
      const secret = 'shortSecretUnique';
      const error = configError({ JWT_SECRET: secret });
      const problem = onlyProblem(error, 'JWT_SECRET');
      expect(problem).toContain('32');
      expect(error.message).not.toContain(secret);
    });

    it('accepts a JWT_SECRET of exactly 32 characters', () => {
      const secret = 'a'.repeat(32);
      expect(loadConfig({ JWT_SECRET: secret }).jwt).toEqual({ secret, generated: false, maxAgeSeconds: 86_400 });
    });

    it('names REDIS_URL for an https:// URL without printing its password', () => {
      const error = configError({ REDIS_URL: `https://default:${REDIS_PASSWORD}@eu1-fine-bird-12345.upstash.io` });
      const problem = onlyProblem(error, 'REDIS_URL');
      expect(problem).toContain('rediss://');
      expect(error.message).not.toContain(REDIS_PASSWORD);
    });

    it('names REDIS_URL for a non-zero Upstash database without printing its password', () => {
      const error = configError({ REDIS_URL: `rediss://default:${REDIS_PASSWORD}@x.upstash.io:6379/1` });
      onlyProblem(error, 'REDIS_URL');
      expect(error.message).not.toContain(REDIS_PASSWORD);
    });

    it('reports REDIS_URL and JWT_SECRET problems together, without either secret', () => {
      const shortSecret = 'tooShortJwtSecretXYZ';
      const error = configError({
        NODE_ENV: 'production',
        CORS_ORIGINS: '*',
        REDIS_URL: `redis://default:${REDIS_PASSWORD}@cache.example.com:6379/notanumber`,
        JWT_SECRET: shortSecret,
      });
      expect(error.problems).toHaveLength(2);
      expect(error.problems.some((problem) => problem.startsWith('REDIS_URL '))).toBe(true);
      expect(error.problems.some((problem) => problem.startsWith('JWT_SECRET '))).toBe(true);
      expect(error.message).not.toContain(REDIS_PASSWORD);
      expect(error.message).not.toContain(shortSecret);
    });

    it('never includes a valid JWT_SECRET in an error about something else', () => {
      const error = configError({ JWT_SECRET, REDIS_KEY_PREFIX: 'a:' });
      onlyProblem(error, 'REDIS_KEY_PREFIX');
      expect(error.message).not.toContain(JWT_SECRET);
    });
  });

  describe('REDIS_TLS_CA_FILE', () => {
    let dir: string;
    let certificates: TestCertificates;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'pharmacare-config-'));
      certificates = await generateTestCertificates(join(dir, 'certs'));
    });

    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reports a missing file', () => {
      const missing = join(dir, 'does-not-exist.pem');
      const problem = onlyProblem(configError({ REDIS_TLS_CA_FILE: missing }), 'REDIS_TLS_CA_FILE');
      expect(problem).toContain(missing);
      expect(problem).toContain('ENOENT');
    });

    it('reports a file that holds no PEM certificate', async () => {
      const notPem = join(dir, 'not-a-cert.pem');
      await writeFile(notPem, 'this is not a certificate\n');
      const problem = onlyProblem(configError({ REDIS_TLS_CA_FILE: notPem }), 'REDIS_TLS_CA_FILE');
      expect(problem).toContain(notPem);
      expect(problem).toContain('BEGIN CERTIFICATE');
    });

    it('returns the content of a PEM file', () => {
      const config = loadConfig({ REDIS_TLS_CA_FILE: certificates.caFile });
      expect(config.redis.tlsCa).toBe(certificates.caPem);
      expect(config.redis.tlsCaFile).toBe(certificates.caFile);
    });

    it('reports a bad CA file in production together with the missing variables', () => {
      const missing = join(dir, 'missing-in-production.pem');
      const error = configError({ NODE_ENV: 'production', CORS_ORIGINS: '*', REDIS_TLS_CA_FILE: missing });
      expect(error.problems).toHaveLength(3);
      expect(error.problems.map((problem) => problem.split(' ')[0]).sort()).toEqual(['JWT_SECRET', 'REDIS_TLS_CA_FILE', 'REDIS_URL']);
    });
  });
});

describe('loadConfig reports every problem at once', () => {
  it('lists schema problems together with REDIS_URL and JWT_SECRET problems', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'abc', JWT_SECRET: 'short', REDIS_URL: 'https://x.upstash.io' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(3);
    expect(problems.map((problem) => problem.split(' ')[0]).sort()).toEqual(['JWT_SECRET', 'PORT', 'REDIS_URL']);
  });
});

describe('loadConfig queue settings', () => {
  it('defaults to APP_ROLE all and the low-idle-cost queue knobs', () => {
    const config = loadConfig({});
    expect(config.appRole).toBe('all');
    expect(config.queue).toEqual({
      drainDelaySeconds: 600,
      stalledIntervalMs: 240_000,
      concurrency: 2,
      jobAttempts: 3,
      shutdownGraceMs: 8_000,
      wedgeTimeoutMs: 30_000,
      tenantMaxJobs: 20,
      tenantMaxPayloadBytes: 16 * 1024 * 1024,
    });
    expect(config.admin).toBeUndefined();
  });

  it('does not require JWT_SECRET of a production worker, which verifies no tokens', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', APP_ROLE: 'worker', REDIS_URL: 'redis://red-abc123:6379' })).not.toThrow();
  });

  it('rejects a worker grace period that does not fit in the shutdown deadline, and half-set admin credentials', () => {
    let error: unknown;
    try {
      loadConfig({ WORKER_SHUTDOWN_GRACE_SECONDS: '10', SHUTDOWN_TIMEOUT_SECONDS: '10', ADMIN_USER: 'ops', APP_ROLE: 'queue' });
    } catch (caught) {
      error = caught;
    }
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/^APP_ROLE must be web/m);
    expect(problems).toMatch(/^ADMIN_PASSWORD is missing/m);
  });

  it('rejects a worker grace period as long as the shutdown deadline', () => {
    expect(() => loadConfig({ WORKER_SHUTDOWN_GRACE_SECONDS: '10', SHUTDOWN_TIMEOUT_SECONDS: '10' })).toThrow(
      /WORKER_SHUTDOWN_GRACE_SECONDS \(10\) must be shorter than SHUTDOWN_TIMEOUT_SECONDS \(10\)/,
    );
  });
});

describe('loadConfig worker grace default', () => {
  it('leaves 2 s of a shorter shutdown deadline for closing connections when WORKER_SHUTDOWN_GRACE_SECONDS is unset', () => {
    expect(loadConfig({ SHUTDOWN_TIMEOUT_SECONDS: '5' }).queue.shutdownGraceMs).toBe(3_000);
    expect(loadConfig({ SHUTDOWN_TIMEOUT_SECONDS: '2' }).queue.shutdownGraceMs).toBe(1_000);
  });
});

describe('loadConfig metrics settings', () => {
  const TOKEN = 'mtk-6f1c2e9a4b7d8e0f';

  it('leaves /metrics open and reads queue depths at most once a minute by default', () => {
    expect(loadConfig({}).metrics).toEqual({ token: undefined, queueDepthIntervalMs: 60_000 });
  });

  it('reads METRICS_TOKEN and METRICS_QUEUE_DEPTH_INTERVAL_SECONDS (0 turns the reads off)', () => {
    expect(loadConfig({ METRICS_TOKEN: ` ${TOKEN} `, METRICS_QUEUE_DEPTH_INTERVAL_SECONDS: '0' }).metrics).toEqual({ token: TOKEN, queueDepthIntervalMs: 0 });
  });

  it('treats a blank METRICS_TOKEN as unset', () => {
    expect(loadConfig({ METRICS_TOKEN: '  ' }).metrics.token).toBeUndefined();
  });

  it.each([
    ['short-token', /METRICS_TOKEN must be at least 16 characters/],
    ['has a space inside it', /METRICS_TOKEN must not contain spaces/],
  ])('rejects METRICS_TOKEN=%s without printing it', (token, message) => {
    const problem = onlyProblem(configError({ METRICS_TOKEN: token }), 'METRICS_TOKEN');
    expect(problem).toMatch(message);
    expect(problem).not.toContain(token);
  });

  it('rejects a negative METRICS_QUEUE_DEPTH_INTERVAL_SECONDS', () => {
    expect(onlyProblem(configError({ METRICS_QUEUE_DEPTH_INTERVAL_SECONDS: '-5' }), 'METRICS_QUEUE_DEPTH_INTERVAL_SECONDS')).toMatch(
      /METRICS_QUEUE_DEPTH_INTERVAL_SECONDS must be a whole number/,
    );
  });
});

describe('loadConfig hostile-input settings', () => {
  it('opens CORS outside production when CORS_ORIGINS is unset, and accepts an explicit * in production', () => {
    expect(loadConfig({}).http.corsOrigins).toBe('*');
    const production = { NODE_ENV: 'production', JWT_SECRET, REDIS_URL: 'redis://red-abc123:6379' };
    expect(loadConfig({ ...production, CORS_ORIGINS: '*' }).http.corsOrigins).toBe('*');
    expect(loadConfig({ ...production, APP_ROLE: 'worker' }).http.corsOrigins).toBe('*');
  });

  it.each(['app.pharmacare.example', 'https://app.pharmacare.example/path', 'https://app.pharmacare.example/', 'ftp://files.example', 'https://a.example, *'])(
    'names CORS_ORIGINS for %s, which is not an origin',
    (value) => {
      expect(onlyProblem(configError({ CORS_ORIGINS: value }), 'CORS_ORIGINS')).toMatch(/scheme:\/\/host\[:port\]/);
    },
  );

  it('refuses a REDIS_URL password shorter than 8 characters (it could not be scrubbed from logs), without printing it', () => {
    const error = configError({ REDIS_URL: 'redis://default:Ab3x9@127.0.0.1:6379' });
    expect(onlyProblem(error, 'REDIS_URL')).toMatch(/password of 5 characters; use at least 8/);
    expect(error.message).not.toContain('Ab3x9');
  });

  describe('REDIS_CACHE_URL', () => {
    const production = { NODE_ENV: 'production', JWT_SECRET, CORS_ORIGINS: '*' };

    it("is the cache's own database when set, named as such; unset, the cache uses REDIS_URL", () => {
      const config = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6380', REDIS_CACHE_URL: `rediss://default:${REDIS_PASSWORD}@cache-bird-12345.upstash.io:6379` });
      expect(config.redis.endpoint).toMatchObject({ variable: 'REDIS_URL', port: 6380 });
      expect(config.redis.cacheEndpoint).toMatchObject({ variable: 'REDIS_CACHE_URL', host: 'cache-bird-12345.upstash.io', tls: true, provider: 'upstash' });
      expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6380' }).redis.cacheEndpoint).toBeUndefined();
      expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6380', REDIS_CACHE_URL: '  ' }).redis.cacheEndpoint).toBeUndefined();
    });

    it('counts the same database as REDIS_URL as none of its own (its connections are shared), but another db of the same server as its own', () => {
      expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6380', REDIS_CACHE_URL: 'redis://127.0.0.1:6380/0' }).redis.cacheEndpoint).toBeUndefined();
      expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6380', REDIS_CACHE_URL: 'redis://127.0.0.1:6380/1' }).redis.cacheEndpoint).toMatchObject({ db: 1 });
    });

    it('is checked by the same rules as REDIS_URL, its problems naming REDIS_CACHE_URL, without printing its password', () => {
      const rest = configError({ REDIS_URL: 'redis://127.0.0.1:6380', REDIS_CACHE_URL: `https://default:${REDIS_PASSWORD}@eu1-fine-bird-12345.upstash.io` });
      expect(onlyProblem(rest, 'REDIS_CACHE_URL')).toContain('rediss://');
      expect(rest.message).not.toContain(REDIS_PASSWORD);
      const short = configError({ REDIS_URL: 'redis://127.0.0.1:6380', REDIS_CACHE_URL: 'redis://default:Ab3x9@127.0.0.1:6381' });
      expect(onlyProblem(short, 'REDIS_CACHE_URL')).toMatch(/password of 5 characters; use at least 8/);
      expect(short.message).not.toContain('Ab3x9');
    });

    it('does not stand in for REDIS_URL in production: the queue needs REDIS_URL', () => {
      const error = configError({ ...production, REDIS_CACHE_URL: 'redis://red-cache1:6379' });
      expect(onlyProblem(error, 'REDIS_URL')).toMatch(/^REDIS_URL is required when NODE_ENV=production, also with REDIS_CACHE_URL set/);
      expect(loadConfig({ ...production, REDIS_URL: 'redis://red-queue1:6379', REDIS_CACHE_URL: 'redis://red-cache1:6379' }).redis.cacheEndpoint?.host).toBe('red-cache1');
    });

    it('leaves REDIS_URL unset outside production to the development Redis, with the cache on REDIS_CACHE_URL', () => {
      const { redis } = loadConfig({ REDIS_CACHE_URL: 'redis://127.0.0.1:6381' });
      expect(redis.endpoint).toBeUndefined();
      expect(redis.cacheEndpoint).toMatchObject({ port: 6381 });
    });
  });

  it('bounds JWT_MAX_AGE_SECONDS, HEALTH_TOKEN and the tenant quotas', () => {
    expect(onlyProblem(configError({ JWT_MAX_AGE_SECONDS: '10' }), 'JWT_MAX_AGE_SECONDS')).toMatch(/at least 60/);
    expect(onlyProblem(configError({ HEALTH_TOKEN: 'short' }), 'HEALTH_TOKEN')).toMatch(/at least 16/);
    expect(onlyProblem(configError({ QUEUE_TENANT_MAX_JOBS: '0' }), 'QUEUE_TENANT_MAX_JOBS')).toMatch(/at least 1/);
    expect(onlyProblem(configError({ QUEUE_TENANT_MAX_PAYLOAD_MB: 'lots' }), 'QUEUE_TENANT_MAX_PAYLOAD_MB')).toMatch(/whole number/);
  });
});

describe('loadConfig REDIS_CLUSTER', () => {
  it('keeps the single-Redis key layout unless set; set, hash-tags the queue prefix (presence tags its keys itself)', () => {
    const single = loadConfig({ REDIS_URL: 'redis://127.0.0.1:7000' }).redis;
    expect(single).toMatchObject({ cluster: false, queuePrefix: 'pharmacare', presencePrefix: 'pharmacare:presence' });
    const cluster = loadConfig({ REDIS_URL: 'redis://127.0.0.1:7000', REDIS_CLUSTER: 'true', REDIS_KEY_PREFIX: 'pharmacare:staging' }).redis;
    expect(cluster).toMatchObject({ cluster: true, queuePrefix: '{pharmacare:staging}', presencePrefix: 'pharmacare:staging:presence' });
  });

  it('refuses a database number (a cluster has only 0), and wants REDIS_URL in production only (development starts a private cluster)', () => {
    const withDb = configError({ REDIS_URL: 'redis://127.0.0.1:7000/2', REDIS_CLUSTER: 'true' });
    expect(onlyProblem(withDb, 'REDIS_URL')).toMatch(/database 2, but a Redis Cluster has only database 0.*remove the \/2/);
    expect(loadConfig({ REDIS_CLUSTER: 'true' }).redis).toMatchObject({ endpoint: undefined, cluster: true });
    const production = configError({ NODE_ENV: 'production', JWT_SECRET, CORS_ORIGINS: '*', REDIS_CLUSTER: 'true' });
    expect(onlyProblem(production, 'REDIS_URL')).toMatch(/is required when NODE_ENV=production/);
    expect(onlyProblem(configError({ REDIS_URL: 'redis://127.0.0.1:7000', REDIS_CLUSTER: 'yes' }), 'REDIS_CLUSTER')).toMatch(/true or false/);
  });
});

describe('loadConfig API_DOCS', () => {
  const production = { NODE_ENV: 'production', REDIS_URL: 'redis://localhost:6379', JWT_SECRET, CORS_ORIGINS: '*' };

  it('serves the API docs outside production and not in production, by default', () => {
    expect(loadConfig({}).apiDocs).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test' }).apiDocs).toBe(true);
    expect(loadConfig(production).apiDocs).toBe(false);
  });

  it('follows API_DOCS where it is set', () => {
    expect(loadConfig({ ...production, API_DOCS: 'true' }).apiDocs).toBe(true);
    expect(loadConfig({ ...production, API_DOCS: '1' }).apiDocs).toBe(true);
    expect(loadConfig({ API_DOCS: 'false' }).apiDocs).toBe(false);
  });

  it('rejects a value that is not a flag, saying what the default is', () => {
    expect(onlyProblem(configError({ API_DOCS: 'yes' }), 'API_DOCS')).toMatch(/API_DOCS must be true or false \(unset: on outside production, off in production\)/);
  });
});
