import { isIP } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, TLSSocket } from 'node:tls';
import { Redis } from 'ioredis';
import { withDeadline } from '../common/with-deadline';
import { CONFIG_VARIABLES, ConfigError, loadConfig, type RedisConfig, type RedisEndpoint } from '../config';
import { buildRedisOptions, closerDiagnosis, clusterDiagnosis, diagnoseRedisError, isClusterNode, type RedisErrorDiagnosis } from '../redis';
import type { CheckResult } from './doctor-report';

type Env = Record<string, string | undefined>;

export interface DoctorDeadlines {
  readonly connectMs: number;
  readonly commandMs: number;
}

/** Every step has its own deadline, so the whole run ends within about 20 s whatever the network does. */
export const DEFAULT_DEADLINES: DoctorDeadlines = { connectMs: 8_000, commandMs: 2_000 };

const PINGS = 5;
/** Same region (Render service next to its Redis) is a few ms; more means a round trip across regions per command. */
const SLOW_PING_MS = 25;
const CERTIFICATE_WARNING_DAYS = 14;
/** Used memory over this share of maxmemory warns: with noeviction, Redis refuses writes (new jobs) once it is full. */
const MEMORY_WARNING_RATIO = 0.8;
// BullMQ refuses Redis below 5.0.0 and recommends 6.2.0 (bullmq RedisConnection.minimumVersion).
const BULLMQ_MINIMUM = [5, 0, 0];
const BULLMQ_RECOMMENDED = [6, 2, 0];
const REDIS_SETTINGS = CONFIG_VARIABLES.filter((name) => name.startsWith('REDIS_'));

const ok = (name: string, detail: string): CheckResult => ({ name, status: 'ok', detail });
const warn = (name: string, detail: string, fix: string): CheckResult => ({ name, status: 'warn', detail, fix });
const fail = (name: string, detail: string, fix?: string): CheckResult => ({ name, status: 'fail', detail, fix });
const skip = (name: string, why: string): CheckResult => ({ name, status: 'skip', detail: `not checked: ${why}` });

/**
 * What one database holds, which decides the eviction policy it needs: BullMQ's jobs must never be evicted, the
 * cache's entries may be (and job results with them).
 */
type Holds = 'everything' | 'queue' | 'cache';

interface Database {
  readonly endpoint: RedisEndpoint;
  readonly holds: Holds;
  /** Before each check's name: '' for REDIS_URL, 'cache:' for REDIS_CACHE_URL. */
  readonly prefix: string;
}

const HOLDS: Record<Holds, string> = {
  everything: 'the queue, presence, Socket.io and the cache',
  queue: 'the queue, presence and Socket.io (the cache is on REDIS_CACHE_URL)',
  cache: 'the cache and job results',
};

/**
 * The checks of `npm run doctor`, on the same configuration the app reads: each database the app would use, checked
 * side by side so that two stay within the deadlines of one, reported one after the other.
 */
export async function runDoctor(env: Env, deadlines: DoctorDeadlines = DEFAULT_DEADLINES): Promise<CheckResult[]> {
  const { results, redis, databases } = checkConfiguration(env);
  if (!redis) return results;
  const checked = await Promise.all(databases.map((database) => checkDatabase(database, redis, deadlines)));
  databases.forEach((database, i) => results.push(...checked[i].map((check) => ({ ...check, name: `${database.prefix}${check.name}` }))));
  return results;
}

async function checkDatabase({ endpoint, holds }: Database, redis: RedisConfig, deadlines: DoctorDeadlines): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const client = new Redis({
    ...buildRedisOptions('command', endpoint, redis, () => 0),
    // One attempt: the doctor reports what happened instead of retrying.
    retryStrategy: () => null,
    lazyConnect: true,
    connectionName: `${redis.keyPrefix}:doctor:${process.pid}`,
  });
  // The first error is the cause; later ones ("Connection is closed") are its consequences.
  let firstError: (Error & { code?: string }) | undefined;
  client.on('error', (error: Error) => (firstError ??= error));
  const started = performance.now();
  try {
    await withDeadline(client.connect(), deadlines.connectMs, () => {
      throw Object.assign(new Error(`timed out after ${deadlines.connectMs} ms`), { code: 'ETIMEDOUT' });
    });
  } catch (error) {
    // A reset or a TLS timeout may hide a full server or a plain-text one: the same raw look the app takes.
    const diagnosis = await closerDiagnosis(diagnoseRedisError(firstError ?? (error as Error), endpoint), endpoint, redis);
    results.push(...(await connectionFailure(diagnosis, endpoint, redis, deadlines)));
    close(client);
    return results;
  }
  const connectMs = Math.round(performance.now() - started);

  try {
    results.push(ok('connection', `reached ${endpoint.host}:${endpoint.port} and ready in ${connectMs} ms`));
    results.push(tlsResult(client, endpoint, redis));
    results.push(ok('auth', endpoint.password === undefined ? 'no password sent, and the server accepts that' : `accepted for user "${endpoint.username ?? 'default'}"`));
    results.push(database(endpoint, firstError));
    const command = <T>(work: Promise<T>): Promise<T> =>
      withDeadline(work, deadlines.commandMs, () => {
        throw new Error(`no answer within ${deadlines.commandMs} ms`);
      });
    results.push(await latency(client, command));
    results.push(await serverVersion(client, command));
    results.push(await clusterMode(client, endpoint, redis, holds, command));
    results.push(await memory(client, holds, command));
    results.push(await evictionPolicy(client, endpoint, holds, command));
  } finally {
    close(client);
  }
  return results;
}

/** The whole configuration as the app validates it, and the Redis settings alone so Redis can be checked even when something else is wrong. */
function checkConfiguration(env: Env): { results: CheckResult[]; redis?: RedisConfig; databases: Database[] } {
  let problems: string[] = [];
  let redis: RedisConfig | undefined;
  let summary = '';
  try {
    const config = loadConfig(env);
    redis = config.redis;
    summary = `valid (NODE_ENV=${config.nodeEnv}, APP_ROLE=${config.appRole})`;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems = error.problems;
    redis = redisSettingsAlone(env);
  }
  const redisProblems = problems.filter((problem) => problem.startsWith('REDIS_'));
  const otherProblems = problems.filter((problem) => !problem.startsWith('REDIS_'));
  const results = [
    otherProblems.length > 0
      ? fail('config', otherProblems.join(' '), 'the app refuses to start until these are fixed (see .env.example)')
      : ok('config', summary || 'valid apart from the Redis settings below'),
  ];

  if (redisProblems.length > 0) {
    results.push(fail('url', redisProblems.join(' ')));
    return { results, databases: [] };
  }
  const { endpoint, cacheEndpoint } = redis ?? {};
  const databases: Database[] = [];
  if (endpoint) {
    databases.push({ endpoint, holds: cacheEndpoint ? 'queue' : 'everything', prefix: '' });
  } else {
    results.push(warn('url', 'REDIS_URL is unset: the app starts a private development Redis, so there is nothing to check', 'set REDIS_URL to check your own Redis'));
  }
  if (cacheEndpoint) databases.push({ endpoint: cacheEndpoint, holds: 'cache', prefix: 'cache:' });
  for (const { endpoint: checked, holds, prefix } of databases) {
    // With one database, the line is what it always was; with two, it says which URL holds what.
    const where = `${holds === 'everything' ? '' : `${checked.variable} `}${checked.redacted} (provider ${checked.provider}, ${checked.tls ? 'TLS' : 'no TLS'})${holds === 'everything' ? '' : `: ${HOLDS[holds]}`}`;
    results.push(
      checked.tlsUpgraded
        ? warn(
            `${prefix}url`,
            `${where}${holds === 'everything' ? ':' : ';'} redis:// upgraded to TLS, since ${checked.provider} only accepts TLS`,
            `write rediss:// in ${checked.variable}`,
          )
        : ok(`${prefix}url`, where),
    );
  }
  return { results, redis, databases };
}

function redisSettingsAlone(env: Env): RedisConfig | undefined {
  const settings = Object.fromEntries(REDIS_SETTINGS.map((name) => [name, env[name]]));
  try {
    return loadConfig(settings).redis;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return undefined;
  }
}

async function connectionFailure(diagnosis: RedisErrorDiagnosis, endpoint: RedisEndpoint, redis: RedisConfig, deadlines: DoctorDeadlines): Promise<CheckResult[]> {
  const reached = ok('connection', `reached ${endpoint.host}:${endpoint.port}`);
  const later = (why: string) => ['latency', 'server', 'cluster', 'memory', 'eviction'].map((name) => skip(name, why));
  if (diagnosis.kind === 'tls' || diagnosis.kind === 'plaintext') {
    const presented = diagnosis.kind === 'tls' ? await presentedCertificate(endpoint, redis, deadlines.connectMs) : undefined;
    const fix =
      diagnosis.kind === 'tls' && redis.tlsCaFile && presented
        ? `REDIS_TLS_CA_FILE (${redis.tlsCaFile}) holds another CA than the one that signed the server's certificate: get the CA certificate of the issuer named above from your provider`
        : diagnosis.fix;
    return [
      reached,
      fail('tls', `${diagnosis.reason}${presented ? `; ${presented}` : ''}`, fix),
      skip('auth', 'no TLS session'),
      skip('database', 'no connection'),
      ...later('no TLS session'),
    ];
  }
  if (diagnosis.kind === 'auth') {
    return [reached, tlsSkippedOrOk(endpoint, redis), fail('auth', diagnosis.reason, diagnosis.fix), skip('database', 'not authenticated'), ...later('not authenticated')];
  }
  return [
    fail('connection', diagnosis.reason, diagnosis.fix),
    skip('tls', 'no connection'),
    skip('auth', 'no connection'),
    skip('database', 'no connection'),
    ...later('no connection'),
  ];
}

function tlsSkippedOrOk(endpoint: RedisEndpoint, redis: RedisConfig): CheckResult {
  return endpoint.tls ? ok('tls', `handshake completed (verification ${redis.tlsInsecure ? 'OFF' : 'on'})`) : plainTextResult(endpoint);
}

function tlsResult(client: Redis, endpoint: RedisEndpoint, redis: RedisConfig): CheckResult {
  if (!endpoint.tls) return plainTextResult(endpoint);
  const stream = client.stream;
  const session = stream instanceof TLSSocket ? stream : undefined;
  const certificate = session?.getPeerCertificate();
  const described = `${session?.getProtocol() ?? 'TLS'}, ${certificate ? describeCertificate(certificate) : 'no certificate details'}`;
  if (redis.tlsInsecure) {
    return warn(
      'tls',
      `${described}; certificate verification is OFF (REDIS_TLS_INSECURE=true)`,
      "set REDIS_TLS_CA_FILE to the PEM file of your Redis server's CA and remove REDIS_TLS_INSECURE",
    );
  }
  const trust = redis.tlsCaFile ? `verified with REDIS_TLS_CA_FILE (${redis.tlsCaFile})` : "verified with Node's trusted CAs";
  const daysLeft = certificate?.valid_to ? Math.floor((Date.parse(certificate.valid_to) - Date.now()) / 86_400_000) : undefined;
  if (daysLeft !== undefined && daysLeft < CERTIFICATE_WARNING_DAYS) {
    return warn('tls', `${described}; ${trust}; the certificate expires in ${daysLeft} days`, "renew the server's certificate (providers renew theirs automatically)");
  }
  return ok('tls', `${described}; ${trust}`);
}

function plainTextResult(endpoint: RedisEndpoint): CheckResult {
  const privateNetwork = endpoint.provider === 'local' || endpoint.provider === 'render' || endpoint.provider === 'railway';
  return privateNetwork
    ? ok('tls', `not used (${endpoint.provider} private network)`)
    : warn('tls', 'not used: the password and data cross the network in plain text', 'use rediss:// if your provider offers TLS');
}

function describeCertificate(certificate: PeerCertificate): string {
  const subject = certificate.subject?.CN ?? 'unnamed';
  const issuer = certificate.issuer?.CN ?? 'unnamed issuer';
  const selfSigned = certificate.subject?.CN === certificate.issuer?.CN ? ', self-signed' : '';
  return `certificate for ${subject} issued by "${issuer}"${selfSigned}, valid until ${certificate.valid_to}`;
}

/** After a rejected certificate: what the server presented, read over a second, unverified handshake that sends nothing. */
function presentedCertificate(endpoint: RedisEndpoint, redis: RedisConfig, ms: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: endpoint.host,
      port: endpoint.port,
      servername: isIP(endpoint.host) ? undefined : endpoint.host,
      rejectUnauthorized: false,
    });
    const finish = (description: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(description);
    };
    const timer = setTimeout(() => finish(undefined), ms);
    socket.once('secureConnect', () => {
      const certificate = socket.getPeerCertificate();
      const signer = redis.tlsCaFile ? `the CA in REDIS_TLS_CA_FILE (${redis.tlsCaFile})` : 'any CA Node trusts';
      finish(certificate?.subject ? `the server presented a ${describeCertificate(certificate)}, which ${signer} did not sign` : undefined);
    });
    socket.once('error', () => finish(undefined));
  });
}

type Command = <T>(work: Promise<T>) => Promise<T>;

/** ioredis reports a refused SELECT as an error event and still becomes ready, on database 0. */
function database(endpoint: RedisEndpoint, connectError: Error | undefined): CheckResult {
  if (connectError && /DB index/i.test(connectError.message)) {
    return fail(
      'database',
      `SELECT ${endpoint.db} refused (${connectError.message}): the connection stayed on database 0`,
      'use a database the server has, or drop the /N suffix from REDIS_URL (most providers offer only database 0)',
    );
  }
  return ok('database', `db ${endpoint.db}${endpoint.provider === 'upstash' ? ' (Upstash has only database 0)' : ''}`);
}

async function latency(client: Redis, command: Command): Promise<CheckResult> {
  const times: number[] = [];
  try {
    for (let i = 0; i < PINGS; i++) {
      const sent = performance.now();
      await command(client.ping());
      times.push(performance.now() - sent);
    }
  } catch (error) {
    return fail(
      'latency',
      `PING ${times.length + 1} of ${PINGS} failed: ${(error as Error).message}`,
      'the server is overloaded or the network drops packets; try again, then check the provider status page',
    );
  }
  times.sort((a, b) => a - b);
  const p50 = times[Math.floor(times.length / 2)];
  const max = times[times.length - 1];
  const detail = `p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms over ${PINGS} PINGs`;
  return p50 > SLOW_PING_MS
    ? warn('latency', detail, 'every command pays this: run the service in the same region as Redis (on Render, the region of your Upstash database)')
    : ok('latency', detail);
}

async function serverVersion(client: Redis, command: Command): Promise<CheckResult> {
  let info: Record<string, string>;
  try {
    info = parseInfo(await command(client.info('server')));
  } catch (error) {
    return warn('server', `INFO server refused: ${(error as Error).message}`, 'nothing to do unless BullMQ complains about the version');
  }
  const version = info.redis_version;
  if (!version) return warn('server', 'INFO server reports no redis_version', 'nothing to do unless BullMQ complains about the version');
  const name = info.valkey_version ? `Valkey ${info.valkey_version} (redis_version ${version})` : `Redis ${version}`;
  if (olderThan(version, BULLMQ_MINIMUM)) return fail('server', `${name}: BullMQ needs Redis 5.0 or newer`, 'upgrade Redis, or use Upstash or Render Key Value');
  if (olderThan(version, BULLMQ_RECOMMENDED)) return warn('server', `${name}: BullMQ recommends 6.2 or newer`, 'upgrade Redis when you can');
  return ok('server', name);
}

/**
 * A cluster node answers PING and INFO like any Redis: without REDIS_CLUSTER the app refuses it at connect, so the
 * doctor fails it here. With REDIS_CLUSTER, the cluster as a whole: its state, slot coverage, and each master.
 */
async function clusterMode(client: Redis, endpoint: RedisEndpoint, redis: RedisConfig, holds: Holds, command: Command): Promise<CheckResult> {
  let info: string;
  try {
    info = await command(client.info('cluster'));
  } catch (error) {
    return warn('cluster', `INFO cluster refused: ${(error as Error).message}`, 'nothing to do unless the app refuses the server');
  }
  if (!isClusterNode(info)) {
    if (!redis.cluster) return ok('cluster', 'not a cluster node (cluster_enabled:0)');
    const diagnosis = diagnoseRedisError(new Error('ERR This instance has cluster support disabled'), endpoint);
    return fail('cluster', diagnosis.reason, diagnosis.fix);
  }
  if (!redis.cluster) {
    const diagnosis = clusterDiagnosis(endpoint);
    return fail('cluster', diagnosis.reason, diagnosis.fix);
  }
  return clusterHealth(client, endpoint, redis, holds, command);
}

interface ClusterMaster {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly replicas: number;
}

/** The masters in CLUSTER NODES (`<id> <ip:port@bus[,hostname]> <flags> <master id or -> ...`), with how many live replicas each has. */
function clusterMasters(nodes: string): ClusterMaster[] {
  const lines = nodes
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter((fields) => fields.length >= 8);
  const live = (flags: string) => !/fail|handshake|noaddr/.test(flags);
  return lines
    .filter(([, , flags]) => flags.includes('master') && live(flags))
    .map(([id, address]) => {
      const [hostPort, hostname] = address.split(',');
      const [ip, port] = hostPort.split('@')[0].split(/:(?=\d+$)/);
      const host = hostname || ip;
      const replicas = lines.filter(([, , flags, master]) => master === id && flags.includes('slave') && live(flags)).length;
      return { address: `${host}:${port}`, host, port: Number(port), replicas };
    });
}

async function clusterHealth(client: Redis, endpoint: RedisEndpoint, redis: RedisConfig, holds: Holds, command: Command): Promise<CheckResult> {
  let state: Record<string, string>;
  let masters: ClusterMaster[];
  try {
    state = parseInfo(String(await command(client.cluster('INFO'))));
    masters = clusterMasters(String(await command(client.cluster('NODES'))));
  } catch (error) {
    return fail(
      'cluster',
      `CLUSTER INFO/NODES refused: ${(error as Error).message}`,
      'the app reads the slot map with CLUSTER SLOTS: give the user access to the CLUSTER command',
    );
  }
  // Every master is asked its version and eviction policy: a node configured apart from the others evicts jobs alone.
  const perMaster = await Promise.all(masters.map((master) => describeMaster(master, endpoint, redis, command)));
  const problems: string[] = [];
  if (state.cluster_state !== 'ok') problems.push(`cluster_state:${state.cluster_state ?? 'unknown'}`);
  if (state.cluster_slots_ok !== '16384') problems.push(`${state.cluster_slots_ok ?? 0} of 16384 hash slots served`);
  const evicting = holds === 'cache' ? [] : perMaster.filter((master) => master.policy !== undefined && master.policy !== 'noeviction');
  if (evicting.length > 0) problems.push(`${evicting.map((master) => `${master.address} evicts (${master.policy})`).join(', ')}: BullMQ jobs may be deleted`);
  const unreachable = perMaster.filter((master) => master.error !== undefined);
  if (unreachable.length > 0) problems.push(unreachable.map((master) => `${master.address}: ${master.error}`).join(', '));
  const listed = perMaster
    .map((master) => `${master.address} ${master.version ?? '?'} ${master.policy ?? '?'}, ${master.replicas} replica${master.replicas === 1 ? '' : 's'}`)
    .join('; ');
  const detail = `cluster_state:${state.cluster_state}, ${state.cluster_slots_ok}/16384 slots, ${masters.length} masters (${listed})`;
  if (problems.length > 0) {
    return fail(
      'cluster',
      `${detail}: ${problems.join('; ')}`,
      'every slot needs a live master, and every master the queue may use must be noeviction; CLUSTER INFO and CLUSTER NODES on a node say more',
    );
  }
  if (perMaster.some((master) => master.replicas === 0)) {
    return warn(
      'cluster',
      `${detail}: a master without a replica loses its slots when it fails, until it comes back`,
      'give every master a replica (ElastiCache: replicas per shard; your own: redis-cli --cluster add-node --cluster-slave)',
    );
  }
  return ok('cluster', detail);
}

async function describeMaster(
  master: ClusterMaster,
  endpoint: RedisEndpoint,
  redis: RedisConfig,
  command: Command,
): Promise<ClusterMaster & { version?: string; policy?: string; error?: string }> {
  const node = new Redis({
    ...buildRedisOptions('command', { ...endpoint, host: master.host, port: master.port }, redis, () => 0),
    retryStrategy: () => null,
    lazyConnect: true,
  });
  node.on('error', () => undefined);
  try {
    await command(node.connect());
    const version = parseInfo(await command(node.info('server'))).redis_version;
    const policy = parseInfo(await command(node.info('memory'))).maxmemory_policy;
    return { ...master, version: version ? `Redis ${version}` : undefined, policy };
  } catch (error) {
    return { ...master, error: (error as Error).message };
  } finally {
    close(node);
  }
}

/** With noeviction a full Redis refuses writes: new jobs get 503 and results cannot be stored. A cache database that evicts is meant to fill up. */
async function memory(client: Redis, holds: Holds, command: Command): Promise<CheckResult> {
  let fields: Record<string, string>;
  try {
    fields = parseInfo(await command(client.info('memory')));
  } catch (error) {
    return warn('memory', `INFO memory refused: ${(error as Error).message}`, "check the memory use in your provider's console");
  }
  const used = Number(fields.used_memory);
  const max = Number(fields.maxmemory);
  if (!Number.isFinite(used)) return warn('memory', 'INFO memory reports no used_memory', "check the memory use in your provider's console");
  const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;
  if (!Number.isFinite(max) || max === 0) return ok('memory', `${mib(used)} used, no maxmemory limit`);
  const detail = `${mib(used)} used of ${mib(max)} maxmemory (${Math.round((used / max) * 100)} %)`;
  if (holds === 'cache' && fields.maxmemory_policy !== 'noeviction') return ok('memory', `${detail}; once full, Redis evicts cache entries to make room`);
  const fix = 'free memory or raise the limit (a bigger plan, or maxmemory in redis.conf); look for keys without expiry with redis-cli --bigkeys';
  const refused =
    holds === 'cache'
      ? "Redis refuses writes (OOM): new cache entries stay in each instance's memory and jobs cannot store their results (they wait, put back)"
      : 'Redis refuses writes (OOM), so new jobs are answered 503';
  if (used >= max) return fail('memory', `${detail}: full, ${refused}`, fix);
  if (used > max * MEMORY_WARNING_RATIO) return warn('memory', `${detail}: over ${MEMORY_WARNING_RATIO * 100} %; once full, Redis refuses writes (OOM)`, fix);
  return ok('memory', detail);
}

async function evictionPolicy(client: Redis, endpoint: RedisEndpoint, holds: Holds, command: Command): Promise<CheckResult> {
  let policy: string | undefined;
  let source = 'CONFIG GET';
  try {
    const reply = await command(client.config('GET', 'maxmemory-policy'));
    policy = Array.isArray(reply) ? String(reply[1] ?? '') || undefined : undefined;
  } catch {
    // Upstash and managed services may refuse CONFIG; INFO memory often carries the same value.
  }
  if (!policy) {
    source = 'INFO memory';
    try {
      policy = parseInfo(await command(client.info('memory'))).maxmemory_policy;
    } catch {
      policy = undefined;
    }
  }
  return holds === 'cache' ? cacheEviction(policy, source, endpoint) : queueEviction(policy, source, endpoint);
}

function queueEviction(policy: string | undefined, source: string, endpoint: RedisEndpoint): CheckResult {
  if (!policy) {
    return warn(
      'eviction',
      'the server reports no maxmemory-policy (CONFIG GET and INFO memory refused or silent)',
      endpoint.provider === 'upstash'
        ? 'in the Upstash console make sure Eviction is off (the default): BullMQ needs noeviction'
        : 'make sure the policy is noeviction: BullMQ needs it',
    );
  }
  if (policy === 'noeviction') return ok('eviction', `noeviction (${source})`);
  return warn(
    'eviction',
    `${policy} (${source}): when memory is full Redis deletes keys, BullMQ jobs among them`,
    'set the policy to noeviction (Render Key Value: maxmemoryPolicy: noeviction; Upstash: turn Eviction off; your own server: maxmemory-policy noeviction in redis.conf)',
  );
}

/**
 * The cache's database may evict, and should: a full one that does not refuses cache writes. What it evicts can be
 * a job result (reports keep theirs only there), which then answers 404 until the same request is posted again.
 */
function cacheEviction(policy: string | undefined, source: string, endpoint: RedisEndpoint): CheckResult {
  const evicted = 'job results are evicted too, possibly before REPORT_TTL_SECONDS: an evicted one answers 404 until the same report is posted again, which computes it anew';
  const toEvicting =
    endpoint.provider === 'upstash'
      ? 'turn Eviction on for this database in the Upstash console'
      : 'set maxmemory-policy allkeys-lru (Render Key Value: maxmemoryPolicy: allkeys-lru; your own server: redis.conf)';
  if (!policy) return warn('eviction', 'the server reports no maxmemory-policy (CONFIG GET and INFO memory refused or silent)', `make sure it may evict: ${toEvicting}`);
  if (policy === 'noeviction') {
    return warn(
      'eviction',
      `noeviction (${source}): once full, Redis refuses cache writes, so new entries stay in each instance's memory and jobs cannot store their results (they are put back and wait)`,
      `${toEvicting}; or keep noeviction and size maxmemory so results live out REPORT_TTL_SECONDS`,
    );
  }
  // allkeys-* and volatile-* alike: every key the cache writes has an expiry.
  return ok('eviction', `${policy} (${source}): when memory is full Redis evicts cache entries; ${evicted}`);
}

function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const separator = line.indexOf(':');
    if (separator > 0 && !line.startsWith('#')) fields[line.slice(0, separator)] = line.slice(separator + 1).trim();
  }
  return fields;
}

function olderThan(version: string, minimum: number[]): boolean {
  const parts = version.split('.').map(Number);
  for (let i = 0; i < minimum.length; i++) {
    const part = parts[i] ?? 0;
    if (part !== minimum[i]) return part < minimum[i];
  }
  return false;
}

function close(client: Redis): void {
  // A TLS socket cut mid-handshake can emit a second error after ioredis stopped listening (see RedisConnection.close).
  client.stream?.on('error', () => undefined);
  client.disconnect();
}

/** Values that must never be printed: the Redis password and the app's own secrets. */
export function secretsIn(env: Env): string[] {
  const secrets = [env.JWT_SECRET, env.ADMIN_PASSWORD, env.METRICS_TOKEN];
  for (const value of [env.REDIS_URL, env.REDIS_CACHE_URL]) {
    try {
      const url = new URL(value ?? '');
      secrets.push(url.password, safeDecode(url.password));
    } catch {
      // not a URL: loadConfig reported it, and the value itself is never printed
    }
  }
  return secrets.filter((secret): secret is string => Boolean(secret));
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
