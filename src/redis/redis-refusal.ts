/**
 * "Which Redis error is this?" for a command that failed: Redis could not be reached, Redis answered but refused
 * because of a state it is in (full, a read-only replica, loading, a cluster...), or neither (a bug or a bad
 * request, which callers must not hide behind a 503). Callers: the job producer, the cache, the worker's guard.
 */
import type { RedisRole } from './redis.tokens';

export type RedisRefusalKind =
  | 'oom'
  | 'maxclients'
  | 'readonly'
  | 'loading'
  | 'clusterdown'
  | 'tryagain'
  | 'crossslot'
  | 'moved'
  | 'noscript'
  | 'busy'
  | 'misconf'
  | 'masterdown'
  | 'noperm'
  | 'unknown-command';

export interface RedisRefusal {
  readonly kind: RedisRefusalKind;
  /** For operators: what Redis said it is doing, without Redis's raw text (which may carry script hashes and keys). */
  readonly reason: string;
  /** For operators: what to do about it. */
  readonly fix: string;
  /** For API clients: what happened, in words a user understands. */
  readonly userMessage: string;
  /** How long a client should wait before trying again. */
  readonly retryAfterSeconds: number;
}

/** What a failed command means for whoever sent it. */
export type RedisUnavailability = { readonly kind: 'unreachable'; readonly userMessage: string; readonly retryAfterSeconds: number } | RedisRefusal;

/** Redis's reply to a connection over its maxclients; a cluster node counts its cluster bus links too, and says so. */
export const MAX_CLIENTS_REPLY = /max number of clients (\+ cluster connections )?reached/i;

interface RefusalRule {
  readonly kind: RedisRefusalKind;
  /** Matched at the start of Redis's error reply (the error code), or anywhere for the ones ioredis rewraps. */
  readonly pattern: RegExp;
  readonly reason: string;
  readonly fix: string;
  readonly userMessage: string;
  readonly retryAfterSeconds: number;
}

const TRY_AGAIN = 'Nothing was stored; try again shortly.';
const NOT_CLUSTER_FIX =
  'REDIS_URL points at a Redis Cluster without REDIS_CLUSTER=true: set it (README "Redis Cluster"), or use a single Redis (Upstash, Render Key Value, or redis-server without cluster-enabled)';
const FAILOVER_FIX = 'during a failover or resharding this passes by itself in seconds; if it lasts, check CLUSTER INFO (cluster_state, a master without a replica) on a node';

const RULES: readonly RefusalRule[] = [
  {
    kind: 'oom',
    pattern: /^OOM\b/,
    reason: 'Redis is out of memory (OOM: used memory is over maxmemory, and the policy noeviction refuses writes)',
    fix: 'free memory or raise the limit: a bigger plan (Upstash, Render Key Value), or maxmemory in redis.conf; check for keys without expiry (redis-cli --bigkeys). Do not switch to an evicting policy: it would delete queued jobs',
    userMessage: `Redis is full, so the service cannot accept new work right now. ${TRY_AGAIN}`,
    retryAfterSeconds: 30,
  },
  {
    kind: 'maxclients',
    pattern: MAX_CLIENTS_REPLY,
    reason: 'Redis refused a connection: max number of clients reached (maxclients)',
    fix: "every instance holds 3 connections (4 with a worker) on REDIS_URL and 2 on REDIS_CACHE_URL when set, doubled while a deploy overlaps old and new instances (on a Redis Cluster, up to one per role on every master, see the README section Redis Cluster): raise the plan's connection limit, run fewer instances, or close other clients of this Redis (CLIENT LIST shows who holds them)",
    userMessage: `The service has no free connection to its database right now. ${TRY_AGAIN}`,
    retryAfterSeconds: 10,
  },
  {
    kind: 'readonly',
    pattern: /^READONLY\b/,
    reason: 'Redis refused a write: the server is a read-only replica (READONLY)',
    fix: "REDIS_URL must point at the primary: during a provider's failover this passes by itself; otherwise copy the primary's URL from the provider",
    userMessage: `The service's database accepts no writes right now (failover in progress). ${TRY_AGAIN}`,
    retryAfterSeconds: 5,
  },
  {
    kind: 'loading',
    pattern: /^LOADING\b/,
    reason: 'Redis is loading its dataset into memory after a restart (LOADING)',
    fix: 'nothing: it answers once the data is loaded',
    userMessage: `The service's database is starting up. ${TRY_AGAIN}`,
    retryAfterSeconds: 5,
  },
  {
    kind: 'clusterdown',
    pattern: /^CLUSTERDOWN\b/,
    reason: 'Redis Cluster is down or a hash slot has no master (CLUSTERDOWN)',
    fix: FAILOVER_FIX,
    userMessage: `The service's database is unavailable. ${TRY_AGAIN}`,
    retryAfterSeconds: 5,
  },
  {
    kind: 'tryagain',
    pattern: /^TRYAGAIN\b/,
    reason: 'Redis Cluster is moving a hash slot and asked to retry a multi-key command (TRYAGAIN)',
    fix: FAILOVER_FIX,
    userMessage: `The service's database is rebalancing. ${TRY_AGAIN}`,
    retryAfterSeconds: 2,
  },
  {
    kind: 'crossslot',
    pattern: /^CROSSSLOT\b/,
    reason: 'Redis refused a command over keys in different hash slots (CROSSSLOT): REDIS_URL points at a Redis Cluster, or a command mixes keys of two tenants',
    fix: `${NOT_CLUSTER_FIX}; with REDIS_CLUSTER=true it is a bug: report the command`,
    userMessage: `The service's database is misconfigured. ${TRY_AGAIN}`,
    retryAfterSeconds: 30,
  },
  {
    kind: 'moved',
    pattern: /^(MOVED|ASK)\b/,
    reason: 'Redis redirected a command to another node (MOVED/ASK): REDIS_URL points at a Redis Cluster',
    fix: NOT_CLUSTER_FIX,
    userMessage: `The service's database is misconfigured. ${TRY_AGAIN}`,
    retryAfterSeconds: 30,
  },
  {
    kind: 'noscript',
    pattern: /^NOSCRIPT\b/,
    reason: 'Redis does not know a Lua script it was asked to run (NOSCRIPT: SCRIPT FLUSH, or a restart without persistence)',
    fix: 'usually nothing (scripts are loaded again); if it persists, a proxy in front of Redis may be dropping EVAL: connect to Redis directly',
    userMessage: `The service's database refused a request. ${TRY_AGAIN}`,
    retryAfterSeconds: 5,
  },
  {
    kind: 'busy',
    pattern: /^BUSY\b/,
    reason: 'Redis is busy running a long Lua script (BUSY)',
    fix: 'find the long script (SLOWLOG GET) and stop it with SCRIPT KILL',
    userMessage: `The service's database is busy. ${TRY_AGAIN}`,
    retryAfterSeconds: 5,
  },
  {
    kind: 'misconf',
    pattern: /^MISCONF\b/,
    reason: 'Redis refuses writes because it cannot save its snapshot to disk (MISCONF)',
    fix: "check the Redis server's disk space and permissions (its log says why saving failed)",
    userMessage: `The service's database accepts no writes right now. ${TRY_AGAIN}`,
    retryAfterSeconds: 30,
  },
  {
    kind: 'masterdown',
    pattern: /^MASTERDOWN\b/,
    reason: 'the Redis replica lost its primary (MASTERDOWN)',
    fix: "REDIS_URL must point at the primary; during a provider's failover this passes by itself",
    userMessage: `The service's database is unavailable. ${TRY_AGAIN}`,
    retryAfterSeconds: 5,
  },
  {
    kind: 'noperm',
    pattern: /^NOPERM\b/,
    reason: 'the Redis user in REDIS_URL lacks a permission (NOPERM: the ACL refuses a command or key)',
    fix: 'give the user full access to the REDIS_KEY_PREFIX keys and the commands BullMQ needs (+@all ~<prefix>:* &<prefix>:*), or use the "default" user',
    userMessage: `The service's database refused a request. ${TRY_AGAIN}`,
    retryAfterSeconds: 30,
  },
  {
    kind: 'unknown-command',
    pattern: /^ERR unknown command/,
    reason: 'Redis does not know a command it was sent (renamed or disabled by the provider)',
    fix: 'use a Redis whose commands are not renamed (BullMQ needs EVALSHA, EVAL and the blocking commands)',
    userMessage: `The service's database refused a request. ${TRY_AGAIN}`,
    retryAfterSeconds: 30,
  },
];

/** Errors that mean Redis could not be reached in time (the command may or may not have run). */
/** The last three are an ioredis Cluster's: no node reached, or a failover still under way after the redirections allowed. */
const UNREACHABLE =
  /Command timed out|Connection is closed|Stream isn't writeable|ECONN|EPIPE|ETIMEDOUT|MaxRetriesPerRequest|enableOfflineQueue|Failed to refresh slots cache|Too many Cluster redirections|None of startup nodes is available/i;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : typeof error === 'string' ? error : '';
}

/** The error and the ones it wraps (`cause`), so a refusal reported through another layer is still recognised. */
function messagesOf(error: unknown): string[] {
  const messages: string[] = [];
  for (let current = error, depth = 0; current !== undefined && depth < 5; current = current instanceof Error ? current.cause : undefined, depth++) {
    messages.push(messageOf(current));
  }
  return messages;
}

/**
 * A consumer's error for a command of one role that failed (the Redis error as its cause), so that whoever meets
 * it later (the queue worker, for a job handler's error) knows which database refused.
 */
export class RedisRoleError extends Error {
  constructor(
    message: string,
    readonly redisRole: RedisRole,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The role a RedisRoleError in the error or its causes names. */
export function redisRoleOf(error: unknown): RedisRole | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof RedisRoleError) return current.redisRole;
  }
  return undefined;
}

/** Redis answered, but refused because of a state it is in; undefined for anything else. */
export function classifyRedisRefusal(error: unknown): RedisRefusal | undefined {
  const messages = messagesOf(error);
  const rule = RULES.find((candidate) => messages.some((message) => candidate.pattern.test(message)));
  if (!rule) return undefined;
  const { kind, reason, fix, userMessage, retryAfterSeconds } = rule;
  return { kind, reason, fix, userMessage, retryAfterSeconds };
}

/**
 * Whether a failed command means "Redis is unavailable" (unreachable, or refusing for a state), with what to tell
 * the client; undefined when it is neither, i.e. a bug or a bad request that must surface as such.
 */
export function redisUnavailability(error: unknown): RedisUnavailability | undefined {
  const refusal = classifyRedisRefusal(error);
  if (refusal) return refusal;
  if (messagesOf(error).some((message) => UNREACHABLE.test(message))) {
    return { kind: 'unreachable', userMessage: 'Redis is unreachable. Nothing was stored; try again shortly.', retryAfterSeconds: 5 };
  }
  return undefined;
}
