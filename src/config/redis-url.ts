import { isIPv4 } from 'node:net';

/**
 * The one place REDIS_URL is parsed. Everything downstream (ioredis options, logs, /health, doctor)
 * works from the RedisEndpoint this returns, so the rules below are the whole provider table.
 */
export type RedisProvider = 'upstash' | 'render' | 'railway' | 'local' | 'other';

/** The variables that hold a Redis URL: every message about an endpoint names the one it came from. */
export type RedisUrlVariable = 'REDIS_URL' | 'REDIS_CACHE_URL';

export interface RedisEndpoint {
  /** Where the URL came from. */
  readonly variable: RedisUrlVariable;
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  readonly db: number;
  readonly tls: boolean;
  readonly provider: RedisProvider;
  /** A redis:// URL whose provider only speaks TLS, so we connect with TLS anyway. */
  readonly tlsUpgraded: boolean;
  /** The URL with the password replaced by ***: the only form that may be printed. */
  readonly redacted: string;
}

export class RedisUrlError extends Error {}

const DEFAULT_PORT = 6379;

const PROVIDERS: ReadonlyArray<{ provider: RedisProvider; matches: (host: string) => boolean; tlsOnly: boolean }> = [
  { provider: 'upstash', matches: (host) => host.endsWith('.upstash.io'), tlsOnly: true },
  // Render Key Value: external hosts (oregon-keyvalue.render.com) are TLS-only; internal ones (red-xxxx) are plain.
  { provider: 'render', matches: (host) => host.endsWith('.render.com'), tlsOnly: true },
  { provider: 'render', matches: (host) => /^red-[a-z0-9]+$/.test(host), tlsOnly: false },
  { provider: 'railway', matches: (host) => host.endsWith('.railway.internal') || host.endsWith('.proxy.rlwy.net'), tlsOnly: false },
  {
    provider: 'local',
    matches: (host) => host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.')),
    tlsOnly: false,
  },
];

export function detectProvider(host: string): { provider: RedisProvider; tlsOnly: boolean } {
  const match = PROVIDERS.find((entry) => entry.matches(host.toLowerCase()));
  return match ? { provider: match.provider, tlsOnly: match.tlsOnly } : { provider: 'other', tlsOnly: false };
}

const FORM = 'Expected redis://[user:password@]host[:port][/db], or rediss://… for TLS.';

/** Parses REDIS_URL (or REDIS_CACHE_URL). Error messages never repeat the value: it may hold the password. */
export function parseRedisUrl(value: string, variable: RedisUrlVariable = 'REDIS_URL'): RedisEndpoint {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new RedisUrlError(`is not a valid URL. ${FORM}`);
  }

  if (url.protocol === 'https:' || url.protocol === 'http:') {
    throw new RedisUrlError(
      `is an ${url.protocol.slice(0, -1)}:// URL (host ${url.hostname}). That is a REST endpoint (Upstash's REST URL), ` +
        `not a Redis connection. In the Upstash console open your database and copy the URL that starts with rediss:// instead.`,
    );
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new RedisUrlError(`has the scheme ${url.protocol}// but must start with redis:// or rediss://. ${FORM}`);
  }
  // URL keeps IPv6 literals in brackets; sockets want them bare.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) {
    throw new RedisUrlError(`has no host. ${FORM}`);
  }

  const port = url.port ? Number(url.port) : DEFAULT_PORT;
  const db = parseDatabase(url.pathname);
  const { provider, tlsOnly } = detectProvider(host);
  if (provider === 'upstash' && db !== 0) {
    throw new RedisUrlError(`selects database ${db}, but Upstash has only database 0: remove "/${db}" from the URL.`);
  }

  const requestedTls = url.protocol === 'rediss:';
  const username = decodeCredential(url.username, 'user');
  const password = decodeCredential(url.password, 'password');
  const tls = requestedTls || tlsOnly;
  return {
    variable,
    host,
    port,
    username,
    password,
    db,
    tls,
    provider,
    tlsUpgraded: tls && !requestedTls,
    redacted: redactedUrl(tls, url.hostname, port, db, username, password !== undefined),
  };
}

function decodeCredential(encoded: string, what: 'user' | 'password'): string | undefined {
  if (!encoded) return undefined;
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new RedisUrlError(`has a ${what} with an invalid %-escape: write "%" as %25 and other special characters %-encoded.`);
  }
}

function parseDatabase(pathname: string): number {
  const segment = pathname.replace(/^\//, '');
  if (segment === '') return 0;
  if (!/^\d+$/.test(segment)) {
    throw new RedisUrlError(`has "/${segment}" as database; it must be a number such as /0. ${FORM}`);
  }
  return Number(segment);
}

function redactedUrl(tls: boolean, host: string, port: number, db: number, username: string | undefined, hasPassword: boolean): string {
  const credentials = username || hasPassword ? `${username ?? ''}${hasPassword ? ':***' : ''}@` : '';
  const database = db === 0 ? '' : `/${db}`;
  return `${tls ? 'rediss' : 'redis'}://${credentials}${host}:${port}${database}`;
}
