import type { RedisClient } from '../redis';

/**
 * Redis layout (r = the presence root: `pharmacare:presence`, on a Cluster `{pharmacare:presence}`), all changed only
 * by the scripts below, one round trip per transition:
 * - r:instances          set of live instance ids
 * - r:lease:<instance>   string with a TTL, refreshed by the instance's heartbeat
 * - r:held:<instance>    set of JSON [tenantId, userId] the instance holds (JSON: ids may contain any character)
 * - r:holders:<tenant>   hash userId -> number of instances holding the user
 * - r:online:<tenant>    hash userId -> since (epoch ms); exactly the online users of the tenant
 *
 * The reaping scripts derive the keys of a dead instance's users from its held set, so they touch keys not
 * passed in KEYS. On a Cluster the root's hash tag keeps every presence key in one hash slot, where a script may
 * do so; the price is that presence does not spread over the shards (it is a few commands per user session).
 */

const RELEASE_ALL = `
local function releaseAll(root, instance, out)
  local heldKey = root .. ':held:' .. instance
  for _, member in ipairs(redis.call('SMEMBERS', heldKey)) do
    local ok, pair = pcall(cjson.decode, member)
    if ok and type(pair) == 'table' and type(pair[1]) == 'string' and type(pair[2]) == 'string' then
      local holders = root .. ':holders:' .. pair[1]
      if redis.call('HINCRBY', holders, pair[2], -1) <= 0 then
        redis.call('HDEL', holders, pair[2])
        redis.call('HDEL', root .. ':online:' .. pair[1], pair[2])
        out[#out + 1] = pair[1]
        out[#out + 1] = pair[2]
      end
    end
  end
  redis.call('DEL', heldKey)
end
`;

/**
 * KEYS: instances, lease, held, holders, online. ARGV: instance, ttlMs, member, userId, nowMs.
 * Returns [registered, wentOnline, sinceMs]: registered = 1 when this instance was not in the instances set
 * (first use, or reaped after a stall), so everything else it holds must be acquired again.
 */
const ACQUIRE = `
local registered = redis.call('SADD', KEYS[1], ARGV[1])
-- Always: an instance that sat idle (no heartbeat) let its lease lapse, and must not be reaped as dead now.
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[2])
local since = redis.call('HGET', KEYS[5], ARGV[4])
if redis.call('SADD', KEYS[3], ARGV[3]) == 1 then
  if redis.call('HINCRBY', KEYS[4], ARGV[4], 1) == 1 or not since then
    redis.call('HSET', KEYS[5], ARGV[4], ARGV[5])
    return {registered, 1, ARGV[5]}
  end
end
return {registered, 0, since or ARGV[5]}
`;

/** KEYS: held, holders, online. ARGV: member, userId. Returns 1 when no instance holds the user any more. */
const RELEASE = `
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
  return 1
end
return 0
`;

/**
 * KEYS: instances, lease. ARGV: instance, ttlMs, nowMs, root.
 * Refreshes this instance's lease, then reaps every instance whose lease has expired; being one script,
 * exactly one instance reaps each dead one. Returns [registered, tenant1, user1, tenant2, user2, ...]:
 * the users no instance holds any more.
 */
const HEARTBEAT = `${RELEASE_ALL}
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
local out = {redis.call('SADD', KEYS[1], ARGV[1])}
for _, other in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if other ~= ARGV[1] and redis.call('EXISTS', ARGV[4] .. ':lease:' .. other) == 0 then
    redis.call('SREM', KEYS[1], other)
    releaseAll(ARGV[4], other, out)
  end
end
return out
`;

/** KEYS: instances, lease. ARGV: instance, root. Releases everything this instance holds; returns [tenant1, user1, ...]. */
const LEAVE = `${RELEASE_ALL}
local out = {}
redis.call('SREM', KEYS[1], ARGV[1])
releaseAll(ARGV[2], ARGV[1], out)
redis.call('DEL', KEYS[2])
return out
`;

type Reply = Promise<unknown>;

/** The command client with the presence scripts defined on it (EVALSHA, falling back to EVAL once per script). */
export type PresenceRedis = RedisClient & {
  presenceAcquire(instances: string, lease: string, held: string, holders: string, online: string, ...argv: string[]): Reply;
  presenceRelease(held: string, holders: string, online: string, ...argv: string[]): Reply;
  presenceHeartbeat(instances: string, lease: string, ...argv: string[]): Reply;
  presenceLeave(instances: string, lease: string, ...argv: string[]): Reply;
};

export function definePresenceScripts(redis: RedisClient): PresenceRedis {
  const scripted = redis as PresenceRedis;
  // Defined on the shared client once; the names are namespaced so other modules can define their own.
  if (typeof scripted.presenceAcquire !== 'function') {
    redis.defineCommand('presenceAcquire', { numberOfKeys: 5, lua: ACQUIRE });
    redis.defineCommand('presenceRelease', { numberOfKeys: 3, lua: RELEASE });
    redis.defineCommand('presenceHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT });
    redis.defineCommand('presenceLeave', { numberOfKeys: 2, lua: LEAVE });
  }
  return scripted;
}

export class PresenceKeys {
  /** `root`: config.redis.presencePrefix. */
  constructor(
    readonly root: string,
    readonly instanceId: string,
  ) {}

  get instances(): string {
    return `${this.root}:instances`;
  }

  get lease(): string {
    return `${this.root}:lease:${this.instanceId}`;
  }

  get held(): string {
    return `${this.root}:held:${this.instanceId}`;
  }

  holders(tenantId: string): string {
    return `${this.root}:holders:${tenantId}`;
  }

  online(tenantId: string): string {
    return `${this.root}:online:${tenantId}`;
  }

  static member(tenantId: string, userId: string): string {
    return JSON.stringify([tenantId, userId]);
  }
}
