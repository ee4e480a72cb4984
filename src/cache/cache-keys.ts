import calculateSlot from 'cluster-key-slot';

/**
 * Cache keys always start with the tenant, so no code path can serve one pharmacy's data to another.
 * Parts are percent-encoded so a ":" inside a part cannot forge another key.
 */
export function tenantKey(tenantId: string, ...parts: string[]): string {
  return ['t', tenantId, ...parts].map(encodeURIComponent).join(':');
}

export function tenantTag(tenantId: string, name: string): string {
  return `tenant:${encodeURIComponent(tenantId)}:${name}`;
}

/**
 * The hash tag of a cache key or tag on a Redis Cluster: its tenant's (`{t:<tenant>}`), so that an entry, its compute
 * lock and its tenant's tag indexes share a hash slot (the write script touches them together) while tenants spread
 * over the shards. Undefined for a key of no tenant (a public route): it hashes by itself, and carries no tags.
 */
export function tenantHashTag(keyOrTag: string): string | undefined {
  const match = /^(?:t|tenant):([^:]*)/.exec(keyOrTag);
  return match ? `{t:${match[1]}}` : undefined;
}

/**
 * `<root><key>`; on a Redis Cluster `<root>{t:<tenant>}:<key>`. A single Redis keeps the layout it always had, so
 * entries written before a deploy (job results among them) are still found.
 */
export function cacheRedisKey(root: string, key: string, cluster: boolean, tagOf: string = key): string {
  const tag = cluster ? tenantHashTag(tagOf) : undefined;
  return tag ? `${root}${tag}:${key}` : root + key;
}

/**
 * Redis keys grouped for multi-key commands, with each key's position in the given list: one group on a single
 * Redis, one per hash slot on a Cluster (which refuses a command over keys of several slots).
 */
export function groupBySlot(redisKeys: readonly string[], cluster: boolean): Array<Array<{ redisKey: string; index: number }>> {
  const groups = new Map<number, Array<{ redisKey: string; index: number }>>();
  redisKeys.forEach((redisKey, index) => {
    const slot = cluster ? calculateSlot(redisKey) : 0;
    const group = groups.get(slot) ?? [];
    group.push({ redisKey, index });
    groups.set(slot, group);
  });
  return [...groups.values()];
}
