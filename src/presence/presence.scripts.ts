import type { RedisClient } from '../redis';

/**
 * Redis layout. Every key a script touches is in its KEYS, and each script touches one hash slot: the registry's,
 * or one tenant's. r = the registry root: the presence root (`pharmacare:presence`), on a Cluster `{pharmacare:presence}`.
 *
 * Registry (one slot):
 * - r:live                set of live instance incarnations (an instance that was reaped while alive comes back as a new one)
 * - r:lease:<instance>    string with a TTL, refreshed by the instance's heartbeat
 * - r:tenants:<instance>  set of tenants in which the instance may hold users: what a reaper must visit
 * - r:orphans:<dead>      tenants of a dead instance still to be reaped
 * - r:reapers             hash dead instance -> the live instance reaping it
 *
 * Per tenant (its own slot on a Cluster, `…:{t:<tenant>}:…`, so tenants spread over the shards):
 * - holders               hash userId -> number of instances holding the user
 * - online                hash userId -> since (epoch ms); exactly the online users of the tenant
 * - held:<instance>       set of the tenant's users the instance holds
 * - reaped                set of instances reaped in this tenant: a late write of theirs is refused (a fence)
 *
 * Reaping a dead instance takes three steps, each idempotent: the heartbeat that finds its lease gone moves its
 * tenants to its orphans and claims them; the claimant reaps each tenant (one script there, which emits each
 * offline once: a second run finds nothing); then it strikes the tenants off. A claimant that dies mid-way is itself
 * reaped, and its claims pass to whoever reaps it.
 */

/** Registers `me` (or refuses: an incarnation that was reaped may not come back) and renews its lease. */
const REGISTER_FUNCTION = `
local function register(live, lease, me, leaseMs, now, fresh)
  if redis.call('SISMEMBER', live, me) == 0 then
    if fresh ~= '1' then return false end
    redis.call('SADD', live, me)
  end
  redis.call('SET', lease, now, 'PX', leaseMs)
  return true
end
`;

/** KEYS: live, lease, tenants. ARGV: me, leaseMs, nowMs, fresh, tenant. Returns 1, or 0 when `me` was reaped. */
const REGISTER = `${REGISTER_FUNCTION}
if not register(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('SADD', KEYS[3], ARGV[5])
return 1
`;

/**
 * KEYS: live, lease, tenants, reapers, then (lease, tenants, orphans) of each other instance this one knows of.
 * ARGV: me, leaseMs, nowMs, fresh, count of tenants to forget, those tenants, then the other instances.
 * Renews the lease, forgets tenants this instance no longer holds anyone in, and claims every known instance whose
 * lease ran out, and every claim of a claimant that is no longer live. Returns {0} when `me` was reaped, else
 * {1, live instances, dead instances this one is to reap}.
 */
const HEARTBEAT = `${REGISTER_FUNCTION}
local me = ARGV[1]
if not register(KEYS[1], KEYS[2], me, ARGV[2], ARGV[3], ARGV[4]) then return {0} end
local forget = tonumber(ARGV[5])
for i = 6, 5 + forget do redis.call('SREM', KEYS[3], ARGV[i]) end
for i = 6 + forget, #ARGV do
  local other = ARGV[i]
  local k = 5 + (i - 6 - forget) * 3
  if other ~= me and redis.call('SISMEMBER', KEYS[1], other) == 1 and redis.call('EXISTS', KEYS[k]) == 0 then
    redis.call('SREM', KEYS[1], other)
    if redis.call('SUNIONSTORE', KEYS[k + 2], KEYS[k + 2], KEYS[k + 1]) > 0 then redis.call('HSET', KEYS[4], other, me) end
    redis.call('DEL', KEYS[k + 1])
  end
end
local claims = redis.call('HGETALL', KEYS[4])
local mine = {}
for i = 1, #claims, 2 do
  local dead, reaper = claims[i], claims[i + 1]
  if reaper ~= me and redis.call('SISMEMBER', KEYS[1], reaper) == 0 then
    redis.call('HSET', KEYS[4], dead, me)
    reaper = me
  end
  if reaper == me then mine[#mine + 1] = dead end
end
return {1, redis.call('SMEMBERS', KEYS[1]), mine}
`;

/** KEYS: live, lease, tenants. ARGV: me. The end of a graceful leave, once every tenant has been released. */
const DEREGISTER = `
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
return 1
`;

/**
 * KEYS: held, holders, online, reaped (of one tenant). ARGV: me, userId, nowMs.
 * Returns {1, wentOnline, sinceMs}, or {0} when `me` was reaped in this tenant (its write came too late).
 */
const ACQUIRE = `
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then return {0} end
local since = redis.call('HGET', KEYS[3], ARGV[2])
if redis.call('SADD', KEYS[1], ARGV[2]) == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 or not since then
    redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
    return {1, 1, ARGV[3]}
  end
end
return {1, 0, since or ARGV[3]}
`;

/** KEYS: held, holders, online. ARGV: userId. Returns 1 when no instance holds the user any more. */
const RELEASE = `
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 1
end
return 0
`;

/**
 * KEYS: held, holders, online, reaped (of one tenant). ARGV: the instance released, fence TTL ms.
 * Releases everything the instance holds in the tenant and fences it out; returns the users that went offline.
 */
const REAP = `
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('PEXPIRE', KEYS[4], ARGV[2])
local out = {}
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
    redis.call('HDEL', KEYS[2], user)
    redis.call('HDEL', KEYS[3], user)
    out[#out + 1] = user
  end
end
redis.call('DEL', KEYS[1])
return out
`;

/** KEYS: orphans, reapers. ARGV: dead, me, reaped tenants. Strikes them off; the claim ends with the last one. */
const FINISH = `
for i = 3, #ARGV do redis.call('SREM', KEYS[1], ARGV[i]) end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[2], ARGV[1]) end
return 1
`;

/**
 * KEYS: instances, the registry of releases before this layout (one Redis only). ARGV: root.
 * Reaps their dead instances as they did (deriving keys: harmless on one Redis, and no release before this one ran on
 * a Cluster), so a user held by an old instance killed during the rolling deploy does not stay online for ever.
 * Returns {0} once no instance of theirs is left, else {1, tenant1, user1, ...}. Remove once no such release runs.
 */
const REAP_PREVIOUS_RELEASE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local out = {1}
for _, other in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. ':lease:' .. other) == 0 then
    redis.call('SREM', KEYS[1], other)
    local heldKey = ARGV[1] .. ':held:' .. other
    for _, member in ipairs(redis.call('SMEMBERS', heldKey)) do
      local ok, pair = pcall(cjson.decode, member)
      if ok and type(pair) == 'table' and type(pair[1]) == 'string' and type(pair[2]) == 'string' then
        local holders = ARGV[1] .. ':holders:' .. pair[1]
        if redis.call('HINCRBY', holders, pair[2], -1) <= 0 then
          redis.call('HDEL', holders, pair[2])
          redis.call('HDEL', ARGV[1] .. ':online:' .. pair[1], pair[2])
          out[#out + 1] = pair[1]
          out[#out + 1] = pair[2]
        end
      end
    end
    redis.call('DEL', heldKey)
  end
end
return out
`;

type Reply = Promise<unknown>;

/** The command client with the presence scripts defined on it (EVALSHA, falling back to EVAL once per script). */
export type PresenceRedis = RedisClient & {
  presenceRegister(live: string, lease: string, tenants: string, ...argv: string[]): Reply;
  /** Variable keys: the first argument is their count. */
  presenceHeartbeat(numberOfKeys: number, ...keysAndArgv: string[]): Reply;
  presenceDeregister(live: string, lease: string, tenants: string, me: string): Reply;
  presenceAcquire(held: string, holders: string, online: string, reaped: string, ...argv: string[]): Reply;
  presenceRelease(held: string, holders: string, online: string, userId: string): Reply;
  presenceReap(held: string, holders: string, online: string, reaped: string, ...argv: string[]): Reply;
  presenceFinish(orphans: string, reapers: string, ...argv: string[]): Reply;
  presenceReapPreviousRelease(instances: string, root: string): Reply;
};

export function definePresenceScripts(redis: RedisClient): PresenceRedis {
  const scripted = redis as PresenceRedis;
  // Defined on the shared client once; the names are namespaced so other modules can define their own.
  if (typeof scripted.presenceRegister !== 'function') {
    redis.defineCommand('presenceRegister', { numberOfKeys: 3, lua: REGISTER });
    redis.defineCommand('presenceHeartbeat', { lua: HEARTBEAT });
    redis.defineCommand('presenceDeregister', { numberOfKeys: 3, lua: DEREGISTER });
    redis.defineCommand('presenceAcquire', { numberOfKeys: 4, lua: ACQUIRE });
    redis.defineCommand('presenceRelease', { numberOfKeys: 3, lua: RELEASE });
    redis.defineCommand('presenceReap', { numberOfKeys: 4, lua: REAP });
    redis.defineCommand('presenceFinish', { numberOfKeys: 2, lua: FINISH });
    redis.defineCommand('presenceReapPreviousRelease', { numberOfKeys: 1, lua: REAP_PREVIOUS_RELEASE });
  }
  return scripted;
}

/**
 * Key names. On one Redis the per-tenant hashes keep the names they always had (`<root>:online:<tenant>`), so a
 * rolling deploy counts holders consistently across versions; the registry's set is new (`live`), so each version
 * reaps only its own instances.
 */
export class PresenceKeys {
  private readonly registry: string;

  /** `root`: config.redis.presencePrefix. */
  constructor(
    readonly root: string,
    readonly cluster: boolean,
  ) {
    this.registry = cluster ? `{${root}}` : root;
  }

  get live(): string {
    return `${this.registry}:live`;
  }

  /** The registry of releases before this layout (one Redis only). */
  get previousReleaseInstances(): string {
    return `${this.root}:instances`;
  }

  get reapers(): string {
    return `${this.registry}:reapers`;
  }

  lease(instance: string): string {
    return `${this.registry}:lease:${instance}`;
  }

  tenants(instance: string): string {
    return `${this.registry}:tenants:${instance}`;
  }

  orphans(instance: string): string {
    return `${this.registry}:orphans:${instance}`;
  }

  holders(tenantId: string): string {
    return this.ofTenant(tenantId, 'holders');
  }

  online(tenantId: string): string {
    return this.ofTenant(tenantId, 'online');
  }

  reaped(tenantId: string): string {
    return this.ofTenant(tenantId, 'reaped');
  }

  held(instance: string, tenantId: string): string {
    return this.cluster ? `${this.tenantTag(tenantId)}:held:${instance}` : `${this.root}:held:${instance}:${encodeURIComponent(tenantId)}`;
  }

  /** held, holders, online, reaped: the KEYS of the acquire and reap scripts. */
  ofInstanceInTenant(instance: string, tenantId: string): [string, string, string, string] {
    return [this.held(instance, tenantId), this.holders(tenantId), this.online(tenantId), this.reaped(tenantId)];
  }

  private ofTenant(tenantId: string, name: string): string {
    return this.cluster ? `${this.tenantTag(tenantId)}:${name}` : `${this.root}:${name}:${tenantId}`;
  }

  /** Percent-encoded, so no tenant id can close the tag early or spell another tenant's. */
  private tenantTag(tenantId: string): string {
    return `${this.root}:{t:${encodeURIComponent(tenantId)}}`;
  }
}
