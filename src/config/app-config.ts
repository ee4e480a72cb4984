import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { parseRedisUrl, RedisEndpoint, RedisUrlError, RedisUrlVariable } from './redis-url';

export type NodeEnv = 'development' | 'production' | 'test';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'log' | 'debug' | 'verbose';
/** web serves HTTP and enqueues; worker runs job processors (and serves only /health); all does both. */
export type AppRole = 'web' | 'worker' | 'all';

/** The whole environment, validated once at boot. Inject it by class: `constructor(private readonly config: AppConfig)`. */
export abstract class AppConfig {
  abstract readonly nodeEnv: NodeEnv;
  abstract readonly port: number;
  abstract readonly host: string;
  abstract readonly logLevel: LogLevel;
  abstract readonly shutdownTimeoutMs: number;
  abstract readonly redis: RedisConfig;
  abstract readonly jwt: JwtConfig;
  abstract readonly health: HealthConfig;
  abstract readonly http: HttpConfig;
  abstract readonly appRole: AppRole;
  abstract readonly queue: QueueConfig;
  abstract readonly cache: CacheConfig;
  abstract readonly presence: PresenceConfig;
  abstract readonly metrics: MetricsConfig;
  /** Swagger UI at /docs and the OpenAPI document at /docs-json (API_DOCS; by default on outside production). */
  abstract readonly apiDocs: boolean;
  /** Basic-auth credentials of the queue dashboard; absent: the dashboard is not mounted (404). */
  abstract readonly admin?: { readonly user: string; readonly password: string };
}

export interface JwtConfig {
  readonly secret: string;
  readonly generated: boolean;
  /** Longest lifetime a token may have: `exp` at most this far from now (and from `iat`). */
  readonly maxAgeSeconds: number;
}

export interface HealthConfig {
  readonly redisGraceMs: number;
  /** Bearer token that unlocks /health's details (hosts, counts, errors); METRICS_TOKEN does too. */
  readonly token?: string;
}

export interface HttpConfig {
  /** Origins allowed by CORS on HTTP and Socket.io: '*' (any), or exact origins such as https://app.example.com. */
  readonly corsOrigins: '*' | readonly string[];
}

export interface CacheConfig {
  readonly memoryMaxEntries: number;
  readonly memoryMaxBytes: number;
  /** The memory tier keeps an entry at most this long, so instances converge even without invalidation. */
  readonly memoryTtlMs: number;
  readonly maxValueBytes: number;
  readonly reportTtlMs: number;
}

export interface PresenceConfig {
  /** An instance that stops refreshing its lease this long (a crash, SIGKILL) has its users released by another instance. */
  readonly ttlMs: number;
  /** How long a user's last socket may be gone before the user goes offline, so reconnects and deploys do not flap. */
  readonly offlineGraceMs: number;
}

export interface MetricsConfig {
  /** Bearer token GET /metrics requires; absent: /metrics is open (warned about in production). */
  readonly token?: string;
  /** Queue depths cost one Redis command per read: a scrape reuses a read younger than this. 0: never read. */
  readonly queueDepthIntervalMs: number;
}

export interface QueueConfig {
  readonly drainDelaySeconds: number;
  readonly stalledIntervalMs: number;
  readonly concurrency: number;
  readonly jobAttempts: number;
  readonly shutdownGraceMs: number;
  readonly wedgeTimeoutMs: number;
  /** Per tenant: jobs queued or running at once, and the bytes of their payloads. */
  readonly tenantMaxJobs: number;
  readonly tenantMaxPayloadBytes: number;
}

export interface RedisConfig {
  /** REDIS_URL. Absent when it is unset outside production: the bootstrap then starts a private development Redis. */
  readonly endpoint?: RedisEndpoint;
  /** REDIS_CACHE_URL: the cache's own database. Absent (unset, or the same database as REDIS_URL): the cache uses REDIS_URL's. */
  readonly cacheEndpoint?: RedisEndpoint;
  readonly tlsCa?: string;
  readonly tlsCaFile?: string;
  readonly tlsInsecure: boolean;
  readonly family: 0 | 4 | 6;
  readonly keyPrefix: string;
  /**
   * REDIS_CLUSTER: every Redis URL names a seed node of a Redis Cluster, and each role's client is an ioredis Cluster.
   * The prefixes below then carry a hash tag, so that what one script touches lives in one hash slot.
   */
  readonly cluster: boolean;
  /** BullMQ's prefix and the tenant quotas': `{pharmacare}` on a cluster (BullMQ's scripts touch a queue's keys together), else keyPrefix. */
  readonly queuePrefix: string;
  /** The root of the presence keys, `pharmacare:presence`; on a cluster they carry hash tags of their own (the registry's, each tenant's). */
  readonly presencePrefix: string;
  readonly commandTimeoutMs: number;
}

/** Every problem found in the environment, each naming the variable, what is wrong and how to fix it. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

const MIN_JWT_SECRET_LENGTH = 32;
const MIN_METRICS_TOKEN_LENGTH = 16;
/** Log lines are scrubbed of every secret; a shorter one could not be replaced without corrupting the lines. */
const MIN_REDIS_PASSWORD_LENGTH = 8;

const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { error: `must be a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `must be at least ${min}` })
        .max(max, { error: `must be at most ${max}` }),
    );

const integer = (min: number, max: number, fallback: number) => wholeNumber(min, max).default(fallback);

const flag = z
  .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
  .transform((value) => value === 'true' || value === '1')
  .default(false);

/** A bearer token read from the environment; blank counts as unset, like JWT_SECRET. */
const bearerToken = (unsetMeans: string) =>
  z.preprocess(
    (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
    z
      .string()
      .trim()
      .min(MIN_METRICS_TOKEN_LENGTH, { error: `must be at least ${MIN_METRICS_TOKEN_LENGTH} characters (for example: openssl rand -hex 32), or unset ${unsetMeans}` })
      .regex(/^\S+$/, { error: 'must not contain spaces (it is sent as "Authorization: Bearer <token>")' })
      .optional(),
  );

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test'], { error: 'must be development, production or test' }).default('development'),
  PORT: integer(1, 65535, 3000),
  HOST: z.string().trim().min(1, { error: 'must not be empty (0.0.0.0 listens on every interface)' }).default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'log', 'debug', 'verbose'], { error: 'must be one of fatal, error, warn, log, debug, verbose' }).default('log'),
  SHUTDOWN_TIMEOUT_SECONDS: integer(1, 300, 10),
  REDIS_TLS_INSECURE: flag,
  REDIS_FAMILY: z.enum(['0', '4', '6'], { error: 'must be 0 (IPv4 and IPv6, the default), 4 or 6' }).transform(Number).default(0),
  REDIS_KEY_PREFIX: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+)*$/, {
      error: 'must be letters, digits, - or _, in parts joined by ":" (for example pharmacare or pharmacare:staging), without a trailing ":"',
    })
    .default('pharmacare'),
  REDIS_CLUSTER: flag,
  REDIS_COMMAND_TIMEOUT_MS: integer(50, 60_000, 1000),
  HEALTH_REDIS_GRACE_SECONDS: integer(0, 3600, 20),
  APP_ROLE: z.enum(['web', 'worker', 'all'], { error: 'must be web (HTTP only), worker (job processors only) or all (both)' }).default('all'),
  // Idle cost per worker per day is about 2*86400/drainDelay + 86400/stalledInterval commands (README "Costs").
  QUEUE_DRAIN_DELAY_SECONDS: integer(1, 3600, 600),
  QUEUE_STALLED_INTERVAL_SECONDS: integer(5, 3600, 240),
  QUEUE_CONCURRENCY: integer(1, 100, 2),
  QUEUE_JOB_ATTEMPTS: integer(1, 20, 3),
  WORKER_SHUTDOWN_GRACE_SECONDS: wholeNumber(1, 300).optional(),
  QUEUE_WEDGE_TIMEOUT_SECONDS: integer(1, 600, 30),
  CACHE_MEMORY_MAX_ENTRIES: integer(0, 10_000_000, 10_000),
  CACHE_MEMORY_MAX_MB: integer(1, 4096, 64),
  CACHE_MEMORY_TTL_SECONDS: integer(1, 86_400, 300),
  CACHE_MAX_VALUE_KB: integer(1, 9 * 1024, 1024),
  REPORT_TTL_SECONDS: integer(60, 30 * 86_400, 86_400),
  // Each instance refreshes its lease every third of the TTL: 3*86400/PRESENCE_TTL_SECONDS commands a day.
  PRESENCE_TTL_SECONDS: integer(3, 3600, 45),
  PRESENCE_OFFLINE_GRACE_SECONDS: integer(0, 300, 5),
  METRICS_TOKEN: bearerToken('for an open /metrics'),
  HEALTH_TOKEN: bearerToken('(then only METRICS_TOKEN unlocks the details of /health)'),
  JWT_MAX_AGE_SECONDS: integer(60, 30 * 86_400, 86_400),
  // Defaults sized for a 256 MB Redis: one tenant's work in flight stays within 16 MB (README "Hostile input").
  QUEUE_TENANT_MAX_JOBS: integer(1, 1_000_000, 20),
  QUEUE_TENANT_MAX_PAYLOAD_MB: integer(1, 1024, 16),
  // One Redis command per read and per scraped instance: 1,440 a day at 60 s (README "Metrics").
  METRICS_QUEUE_DEPTH_INTERVAL_SECONDS: integer(0, 86_400, 60),
  // Unset: on outside production (loadConfig decides, since it depends on NODE_ENV).
  API_DOCS: z
    .enum(['true', 'false', '1', '0'], { error: 'must be true or false (unset: on outside production, off in production)' })
    .transform((value) => value === 'true' || value === '1')
    .optional(),
});

/** Read from the raw environment by loadConfig below (their checks depend on other variables). */
const RAW_VARIABLES = ['REDIS_URL', 'REDIS_CACHE_URL', 'REDIS_TLS_CA_FILE', 'JWT_SECRET', 'ADMIN_USER', 'ADMIN_PASSWORD', 'CORS_ORIGINS'] as const;

/** Every environment variable the configuration reads: .env.example and the Render Blueprints are checked against it. */
export const CONFIG_VARIABLES: readonly string[] = [...Object.keys(envSchema.shape), ...RAW_VARIABLES];

type Env = Record<string, string | undefined>;

/** Validates the environment. Throws ConfigError listing every problem; never returns a half-valid config. */
export function loadConfig(env: Env): AppConfig {
  const parsed = envSchema.safeParse(env);
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}.`);
  // The checks below read the raw strings, so they report their problems even when the schema found others.
  const production = env.NODE_ENV?.trim() === 'production';
  const redisUrl = env.REDIS_URL?.trim();
  const caFile = env.REDIS_TLS_CA_FILE?.trim();

  const endpoint = readRedisUrl('REDIS_URL', redisUrl, problems);
  const cacheEndpoint = readRedisUrl('REDIS_CACHE_URL', env.REDIS_CACHE_URL?.trim(), problems);
  if (!redisUrl && production) {
    problems.push(
      `REDIS_URL is required when NODE_ENV=production${cacheEndpoint ? ', also with REDIS_CACHE_URL set (that database holds only the cache; the queue and presence need REDIS_URL)' : ''}. Set it to your Redis connection string: the rediss:// URL from the Upstash console, or the Render Key Value connection string.`,
    );
  }
  if (parsed.success && parsed.data.REDIS_CLUSTER) checkClusterEndpoints([endpoint, cacheEndpoint], problems);
  const tlsCa = caFile ? readCaFile(caFile, problems) : undefined;
  const corsOrigins = readCorsOrigins(env.CORS_ORIGINS, production && env.APP_ROLE?.trim() !== 'worker', problems);

  let jwtSecret = env.JWT_SECRET?.trim() || undefined;
  if (jwtSecret && jwtSecret.length < MIN_JWT_SECRET_LENGTH) {
    problems.push(`JWT_SECRET is ${jwtSecret.length} characters long; use at least ${MIN_JWT_SECRET_LENGTH} (for example: openssl rand -base64 48).`);
  }
  // A worker verifies no tokens; everything that serves the API does.
  if (!jwtSecret && production && env.APP_ROLE?.trim() !== 'worker') {
    problems.push('JWT_SECRET is required when NODE_ENV=production. Generate one with: openssl rand -base64 48.');
  }
  const adminUser = env.ADMIN_USER?.trim() || undefined;
  const adminPassword = env.ADMIN_PASSWORD?.trim() || undefined;
  if (Boolean(adminUser) !== Boolean(adminPassword)) {
    problems.push(`${adminUser ? 'ADMIN_PASSWORD' : 'ADMIN_USER'} is missing: set both ADMIN_USER and ADMIN_PASSWORD to enable /admin/queues, or neither to disable it.`);
  }
  if (adminPassword && adminPassword.length < 12) {
    problems.push('ADMIN_PASSWORD must be at least 12 characters (for example: openssl rand -base64 18).');
  }
  if (parsed.success && workerGraceSeconds(parsed.data) >= parsed.data.SHUTDOWN_TIMEOUT_SECONDS) {
    problems.push(
      `WORKER_SHUTDOWN_GRACE_SECONDS (${workerGraceSeconds(parsed.data)}) must be shorter than SHUTDOWN_TIMEOUT_SECONDS (${parsed.data.SHUTDOWN_TIMEOUT_SECONDS}), so jobs in flight get their grace before the process deadline.`,
    );
  }

  const generated = !jwtSecret;
  jwtSecret ??= randomBytes(48).toString('base64');

  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const vars = parsed.data;

  return {
    nodeEnv: vars.NODE_ENV,
    port: vars.PORT,
    host: vars.HOST,
    logLevel: vars.LOG_LEVEL,
    shutdownTimeoutMs: vars.SHUTDOWN_TIMEOUT_SECONDS * 1000,
    redis: {
      endpoint,
      // The same database twice is one: its connections are shared, as with REDIS_CACHE_URL unset.
      cacheEndpoint: cacheEndpoint && !sameDatabase(cacheEndpoint, endpoint) ? cacheEndpoint : undefined,
      tlsCa,
      tlsCaFile: caFile,
      tlsInsecure: vars.REDIS_TLS_INSECURE,
      family: vars.REDIS_FAMILY as 0 | 4 | 6,
      keyPrefix: vars.REDIS_KEY_PREFIX,
      cluster: vars.REDIS_CLUSTER,
      queuePrefix: vars.REDIS_CLUSTER ? `{${vars.REDIS_KEY_PREFIX}}` : vars.REDIS_KEY_PREFIX,
      presencePrefix: `${vars.REDIS_KEY_PREFIX}:presence`,
      commandTimeoutMs: vars.REDIS_COMMAND_TIMEOUT_MS,
    },
    jwt: { secret: jwtSecret, generated, maxAgeSeconds: vars.JWT_MAX_AGE_SECONDS },
    health: { redisGraceMs: vars.HEALTH_REDIS_GRACE_SECONDS * 1000, token: vars.HEALTH_TOKEN },
    http: { corsOrigins },
    appRole: vars.APP_ROLE,
    queue: {
      drainDelaySeconds: vars.QUEUE_DRAIN_DELAY_SECONDS,
      stalledIntervalMs: vars.QUEUE_STALLED_INTERVAL_SECONDS * 1000,
      concurrency: vars.QUEUE_CONCURRENCY,
      jobAttempts: vars.QUEUE_JOB_ATTEMPTS,
      shutdownGraceMs: workerGraceSeconds(vars) * 1000,
      wedgeTimeoutMs: vars.QUEUE_WEDGE_TIMEOUT_SECONDS * 1000,
      tenantMaxJobs: vars.QUEUE_TENANT_MAX_JOBS,
      tenantMaxPayloadBytes: vars.QUEUE_TENANT_MAX_PAYLOAD_MB * 1024 * 1024,
    },
    cache: {
      memoryMaxEntries: vars.CACHE_MEMORY_MAX_ENTRIES,
      memoryMaxBytes: vars.CACHE_MEMORY_MAX_MB * 1024 * 1024,
      memoryTtlMs: vars.CACHE_MEMORY_TTL_SECONDS * 1000,
      maxValueBytes: vars.CACHE_MAX_VALUE_KB * 1024,
      reportTtlMs: vars.REPORT_TTL_SECONDS * 1000,
    },
    presence: {
      ttlMs: vars.PRESENCE_TTL_SECONDS * 1000,
      offlineGraceMs: vars.PRESENCE_OFFLINE_GRACE_SECONDS * 1000,
    },
    metrics: { token: vars.METRICS_TOKEN, queueDepthIntervalMs: vars.METRICS_QUEUE_DEPTH_INTERVAL_SECONDS * 1000 },
    apiDocs: vars.API_DOCS ?? vars.NODE_ENV !== 'production',
    admin: adminUser && adminPassword ? { user: adminUser, password: adminPassword } : undefined,
  };
}

/** A cluster has one database (0). (REDIS_URL unset outside production: the development Redis is a cluster too.) */
function checkClusterEndpoints(endpoints: ReadonlyArray<RedisEndpoint | undefined>, problems: string[]): void {
  for (const endpoint of endpoints) {
    if (endpoint && endpoint.db !== 0) {
      problems.push(
        `${endpoint.variable} selects database ${endpoint.db}, but a Redis Cluster has only database 0 (REDIS_CLUSTER=true): remove the /${endpoint.db} from the URL.`,
      );
    }
  }
}

/** A Redis URL variable (REDIS_URL, REDIS_CACHE_URL), parsed and checked by the same rules; undefined when unset or invalid. */
function readRedisUrl(name: RedisUrlVariable, value: string | undefined, problems: string[]): RedisEndpoint | undefined {
  if (!value) return undefined;
  let endpoint: RedisEndpoint;
  try {
    endpoint = parseRedisUrl(value, name);
  } catch (error) {
    if (!(error instanceof RedisUrlError)) throw error;
    problems.push(`${name} ${error.message}`);
    return undefined;
  }
  if (endpoint.password !== undefined && endpoint.password.length < MIN_REDIS_PASSWORD_LENGTH) {
    problems.push(
      `${name} has a password of ${endpoint.password.length} characters; use at least ${MIN_REDIS_PASSWORD_LENGTH} (logs are scrubbed of it, and a shorter one cannot be told apart from ordinary text). Set a longer requirepass on your Redis, or use the URL your provider gives.`,
    );
  }
  return endpoint;
}

function sameDatabase(a: RedisEndpoint, b: RedisEndpoint | undefined): boolean {
  return b !== undefined && a.host === b.host && a.port === b.port && a.db === b.db && a.username === b.username && a.password === b.password && a.tls === b.tls;
}

/** Unset, the grace leaves 2 s of the shutdown deadline for closing connections: 8 s of the default 10. */
function workerGraceSeconds(vars: { WORKER_SHUTDOWN_GRACE_SECONDS?: number; SHUTDOWN_TIMEOUT_SECONDS: number }): number {
  return vars.WORKER_SHUTDOWN_GRACE_SECONDS ?? Math.max(1, vars.SHUTDOWN_TIMEOUT_SECONDS - 2);
}

/**
 * CORS_ORIGINS: `*`, or a comma-separated list of origins (scheme://host[:port]). Unset means `*` outside
 * production; in production a service that serves the API must say which, so opening it is a decision.
 */
function readCorsOrigins(raw: string | undefined, required: boolean, problems: string[]): '*' | string[] {
  const value = raw?.trim();
  if (!value) {
    if (required) {
      problems.push(
        'CORS_ORIGINS is required when NODE_ENV=production: the origins of your web app that may call this API, comma-separated (for example https://app.pharmacare.example), or * to allow any origin.',
      );
    }
    return '*';
  }
  if (value === '*') return '*';
  const origins: string[] = [];
  for (const entry of value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    let origin: string | undefined;
    try {
      const url = new URL(entry);
      const bare = url.pathname === '/' && !url.search && !url.hash && !url.username && !entry.endsWith('/');
      if ((url.protocol === 'https:' || url.protocol === 'http:') && bare) origin = url.origin;
    } catch {
      // reported below
    }
    if (origin === undefined) {
      problems.push(
        `CORS_ORIGINS has ${JSON.stringify(entry)}, which is not an origin: write scheme://host[:port] without a path (for example https://app.pharmacare.example), comma-separated, or * for any origin.`,
      );
    } else {
      origins.push(origin);
    }
  }
  return origins;
}

function readCaFile(path: string, problems: string[]): string | undefined {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    problems.push(`REDIS_TLS_CA_FILE points to ${path}, which cannot be read (${code}). Give the path of the PEM file of the CA that signed your Redis server's certificate.`);
    return undefined;
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    problems.push(`REDIS_TLS_CA_FILE points to ${path}, which holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line).`);
    return undefined;
  }
  return pem;
}
