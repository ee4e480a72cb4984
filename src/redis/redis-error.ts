import type { RedisEndpoint } from '../config';
import type { ProbeFinding } from './redis-probe';
import { classifyRedisRefusal, MAX_CLIENTS_REPLY } from './redis-refusal';

export type RedisErrorKind =
  'auth' | 'tls' | 'plaintext' | 'database' | 'denied' | 'dns' | 'refused' | 'maxclients' | 'timeout' | 'handshake' | 'closed' | 'cluster' | 'other';

export interface RedisErrorDiagnosis {
  readonly kind: RedisErrorKind;
  /** What happened, without any secret (ioredis errors carry the AUTH arguments on .command: never print the error object). */
  readonly reason: string;
  /** What to do about it. */
  readonly fix: string;
}

const TLS_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** Set on the error RedisConnection raises when a connected server sends no handshake reply in time (a black hole). */
export const HANDSHAKE_TIMEOUT_CODE = 'EHANDSHAKETIMEOUT';

/** Turns an ioredis or socket error into what an operator needs at 3 a.m.: the kind, the reason and the fix. */
export function diagnoseRedisError(error: Error & { code?: string }, endpoint: RedisEndpoint): RedisErrorDiagnosis {
  // An ioredis Cluster that reached no node ("Failed to refresh slots cache"): the last node's error says why.
  const lastNodeError = (error as { lastNodeError?: unknown }).lastNodeError;
  if (lastNodeError instanceof Error) return diagnoseRedisError(lastNodeError, endpoint);
  if (/cluster support disabled/i.test(error.message ?? '')) return notClusterDiagnosis(endpoint);
  const code = error.code ?? '';
  const message = error.message ?? '';
  const address = `${endpoint.host}:${endpoint.port}`;

  if (/^(WRONGPASS|NOAUTH)|invalid password|invalid username-password/i.test(message)) {
    const noPassword = message.startsWith('NOAUTH') || endpoint.password === undefined;
    return {
      kind: 'auth',
      reason: `authentication failed (${message.split(' ')[0]})`,
      fix: noPassword
        ? `this Redis requires a password but ${endpoint.variable} has none: use redis://USER:PASSWORD@host:port (on Upstash the user is "default")`
        : `the user or password in ${endpoint.variable} is wrong: copy the URL again from your provider's console (the password may have been rotated)`,
    };
  }
  if (/DB index is out of range|SELECT is not allowed/i.test(message)) {
    return {
      kind: 'database',
      reason: `database ${endpoint.db} does not exist on this server (SELECT refused: ${message})`,
      fix: `change the /db at the end of ${endpoint.variable} to one the server has (Redis has 0 to 15 unless configured otherwise; Upstash only 0), or remove it to use 0`,
    };
  }
  if (MAX_CLIENTS_REPLY.test(message)) return maxClientsDiagnosis();
  if (/^DENIED\b.*protected mode/i.test(message)) {
    return {
      kind: 'denied',
      reason: `${address} refused the connection: Redis runs in protected mode (no password set, and this connection does not come from its own machine)`,
      fix: `set a password on that server (requirepass, or an ACL user) and put it in ${endpoint.variable} as redis://default:PASSWORD@host:port; turning protected mode off instead leaves a Redis without a password open to the network`,
    };
  }
  if (code === HANDSHAKE_TIMEOUT_CODE) {
    return {
      kind: 'handshake',
      reason: `${address} accepted the connection but sent no Redis reply (${message})`,
      fix: `something listens there that is not answering as Redis (another service, a proxy with nothing behind it, a server frozen or overloaded): check the host and port in ${endpoint.variable}`,
    };
  }
  if (TLS_CODES.has(code)) {
    return {
      kind: 'tls',
      reason: `TLS certificate of ${endpoint.host} rejected (${code})`,
      fix:
        code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? `the certificate is not valid for the host name "${endpoint.host}": use the host name your provider gives in ${endpoint.variable}`
          : 'if your Redis uses a private CA, set REDIS_TLS_CA_FILE to its PEM file; REDIS_TLS_INSECURE=true turns verification off (last resort)',
    };
  }
  if (/wrong version number|packet length too long|ERR_SSL/i.test(`${code} ${message}`)) {
    return {
      kind: 'tls',
      reason: `TLS handshake with ${address} failed (${code || message})`,
      fix: 'the server does not speak TLS on this port: use redis:// instead of rediss://, or the TLS port your provider gives',
    };
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return {
      kind: 'dns',
      reason: `host ${endpoint.host} not found (${code})`,
      fix: `check the host in ${endpoint.variable}; Render's internal Key Value host names resolve only for services in the same region`,
    };
  }
  if (code === 'ECONNREFUSED') {
    return {
      kind: 'refused',
      reason: `connection refused by ${address} (ECONNREFUSED)`,
      fix: `nothing listens there: is Redis running, and is ${endpoint.variable} right? (with REDIS_URL unset, development starts a private Redis)`,
    };
  }
  if (code === 'ETIMEDOUT' || /timed? ?out/i.test(message)) {
    return {
      kind: 'timeout',
      reason: `no answer from ${address} (${code || message})`,
      fix: endpoint.tls
        ? 'check the host and port, the firewall or ipAllowList, REDIS_FAMILY (0 tries IPv4 and IPv6), and that the server speaks TLS on this port (rediss://)'
        : 'check the host and port, the firewall or ipAllowList, and REDIS_FAMILY (0 tries IPv4 and IPv6)',
    };
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /Connection is closed/i.test(message)) {
    return {
      kind: 'closed',
      reason: `connection to ${address} closed (${code || message})`,
      fix: endpoint.tls ? 'Redis may be restarting; it reconnects by itself' : 'Redis may be restarting; if the server requires TLS, use rediss://',
    };
  }
  const refusal = classifyRedisRefusal(error);
  if (refusal) return { kind: 'other', reason: refusal.reason, fix: refusal.fix };
  // A server that refuses AUTH may echo its arguments: never let the password through.
  const reason = endpoint.password ? message.split(endpoint.password).join('***') : message;
  return { kind: 'other', reason: `${code ? `${code}: ` : ''}${reason}`, fix: 'see the Redis server logs and the configuration in README.md' };
}

function maxClientsDiagnosis(): RedisErrorDiagnosis {
  const refusal = classifyRedisRefusal(new Error('max number of clients reached'));
  return { kind: 'maxclients', reason: refusal?.reason ?? 'max number of clients reached', fix: refusal?.fix ?? '' };
}

/** A closer diagnosis from a second, raw look at the server (see probeRedisEndpoint). */
export function diagnoseProbeFinding(finding: NonNullable<ProbeFinding>, endpoint: RedisEndpoint): RedisErrorDiagnosis {
  if (typeof finding === 'object' && 'reply' in finding) return diagnoseRedisError(new Error(finding.reply), endpoint);
  if (typeof finding === 'object') return diagnoseRedisError(Object.assign(new Error(finding.code), { code: finding.code }), endpoint);
  return {
    kind: 'plaintext',
    reason: `${endpoint.host}:${endpoint.port} speaks plain-text Redis, not TLS: the TLS handshake got no answer`,
    fix: `use redis:// instead of rediss:// in ${endpoint.variable}, or the TLS port your provider gives`,
  };
}

/** REDIS_CLUSTER=true, but the server is a single Redis: it answers CLUSTER SLOTS with an error. */
function notClusterDiagnosis(endpoint: RedisEndpoint): RedisErrorDiagnosis {
  return {
    kind: 'cluster',
    reason: `REDIS_CLUSTER=true but ${endpoint.host}:${endpoint.port} is not a Redis Cluster node (cluster support disabled)`,
    fix: `unset REDIS_CLUSTER to use it as a single Redis, or point ${endpoint.variable} at a node of your cluster. Not connecting until the configuration changes`,
  };
}

/** One message for a REDIS_URL that points at a Redis Cluster node, in the app and the doctor alike. */
export function clusterDiagnosis(endpoint: RedisEndpoint): RedisErrorDiagnosis {
  return {
    kind: 'cluster',
    reason: `${endpoint.host}:${endpoint.port} is a Redis Cluster node (INFO cluster says cluster_enabled:1), but REDIS_CLUSTER is not set: as a single Redis, BullMQ's scripts and the cache's multi-key commands would fail with CROSSSLOT or MOVED depending on the key`,
    fix: `set REDIS_CLUSTER=true to use it as a cluster (README "Redis Cluster"), or point ${endpoint.variable} at a single Redis (Upstash, Render Key Value, redis-server without cluster-enabled). Not connecting until the configuration changes`,
  };
}

/** INFO cluster's answer, parsed: true on a node of a Redis Cluster. */
export function isClusterNode(info: string): boolean {
  return /^cluster_enabled:1\s*$/m.test(info);
}
