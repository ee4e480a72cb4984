import type { Cluster } from 'ioredis';

/** The least time between two restarts of a Cluster's failed sharded subscribers. */
export const SHARDED_SUBSCRIBER_RESTART_INTERVAL_MS = 1_000;

/** What ioredis 6.0.0's ClusterSubscriberGroup (the Cluster's private `shardedSubscribers`) has that this uses. */
interface SubscriberGroup {
  reset(clusterSlots: string[][], clusterNodes: unknown[]): Promise<void>;
}

/**
 * With shardedSubscribers, ioredis 6.0.0 refreshes the slot map as soon as one of its sharded subscribers ends, and
 * every refresh (ClusterSubscriberGroup.reset) starts a new subscriber for each master that has none. A master that
 * takes no connection (killed, or at its maxclients) ends that one at once, which refreshes again: measured on a
 * 3-master cluster, a web instance sent the other masters ~125 CLUSTER SLOTS a second and used a whole core for as
 * long as one master was out, and a master at maxclients refused ~110 connections a second from it. The group's own
 * backoff (subscriberConnectFailed) is bypassed by that immediate refresh.
 *
 * This holds those restarts to one per interval: a reset with the slot map the last one had, less than `intervalMs`
 * after it, waits for the rest of it. A reset with a new slot map (the first one, a failover, a resharding) runs at
 * once: the group routes SSUBSCRIBE by its map. Returns false, changing nothing, when the Cluster has no subscriber
 * group of that shape (not sharded, or an ioredis that changed it).
 */
export function paceShardedSubscriberRestarts(cluster: Cluster, intervalMs = SHARDED_SUBSCRIBER_RESTART_INTERVAL_MS, now: () => number = Date.now): boolean {
  const group = (cluster as unknown as { shardedSubscribers?: Partial<SubscriberGroup> }).shardedSubscribers;
  if (typeof group?.reset !== 'function') return false;
  const reset = group.reset.bind(group);
  let last = Number.NEGATIVE_INFINITY;
  let lastMap: string | undefined;
  let held: { args: Parameters<SubscriberGroup['reset']>; map: string } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const run = (args: Parameters<SubscriberGroup['reset']>, map: string): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    held = undefined;
    last = now();
    lastMap = map;
    return reset(...args);
  };
  group.reset = (...args) => {
    const map = JSON.stringify(args[0]);
    if (map !== lastMap || (timer === undefined && now() - last >= intervalMs)) return run(args, map);
    held = { args, map };
    timer ??= setTimeout(
      () => {
        timer = undefined;
        const latest = held;
        // A Cluster closed meanwhile starts no subscriber; one that reconnects resets its group itself.
        if (latest && (cluster.status === 'ready' || cluster.status === 'connect')) run(latest.args, latest.map).catch(() => undefined);
      },
      Math.max(0, last + intervalMs - now()),
    );
    timer.unref();
    return Promise.resolve();
  };
  return true;
}
