import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import { paceShardedSubscriberRestarts } from './sharded-subscriber-pacing';

/** A role's client: one connection to a single Redis, or an ioredis Cluster over every node (REDIS_CLUSTER=true). */
export type RedisClient = Redis | Cluster;

export function isClusterClient(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/** Upstash bills every command but these (upstash/docs, "Pricing"). */
const UNBILLED_COMMANDS: ReadonlySet<string> = new Set(['auth', 'hello', 'select', 'command', 'config', 'info', 'ping', 'reset', 'quit']);

export function isBilledCommand(name: string): boolean {
  return !UNBILLED_COMMANDS.has(name.toLowerCase());
}

/**
 * Commands written to Redis by one client (and, separately, by the clients duplicated from it), by command
 * name: what Redis executes and Upstash bills. Plain numbers on the hot path; metrics read them at scrape time.
 */
export class CommandCounter {
  private readonly own = new Map<string, number>();
  private readonly duplicates = new Map<string, number>();

  /**
   * A client that counts every command it writes here, and those of every client later made with `duplicate()`
   * (BullMQ's blocking connection) apart. `onDuplicate` sees each such client as it is made, before it connects.
   */
  createClient(options: RedisOptions, onDuplicate: (client: Redis) => void = () => undefined): Redis {
    return new CountingRedis({ ...options, replyMapping: 'legacy' }, this.own, this.duplicates, onDuplicate);
  }

  /** The Cluster counterpart of createClient: every command counted once, however many redirections it takes. */
  createCluster(seed: ClusterNode, options: ClusterOptions, onDuplicate: (client: Cluster) => void = () => undefined): Cluster {
    return new CountingCluster([seed], withLegacyReplies(options), this.own, this.duplicates, onDuplicate);
  }

  /** By lower-case command name. */
  counts(): ReadonlyMap<string, number> {
    return byLowerCase(this.own);
  }

  duplicateCounts(): ReadonlyMap<string, number> {
    return byLowerCase(this.duplicates);
  }
}

/** ioredis's default reply mapping, spelled out: the one our code and BullMQ are written for. */
type LegacyRedisOptions = RedisOptions & { replyMapping: 'legacy' };

function byLowerCase(counts: ReadonlyMap<string, number>): ReadonlyMap<string, number> {
  const folded = new Map<string, number>();
  for (const [name, count] of counts) {
    const lower = name.toLowerCase();
    folded.set(lower, (folded.get(lower) ?? 0) + count);
  }
  return folded;
}

/**
 * ioredis has no per-command event, so sendCommand is overridden. A subclass rather than a patched instance:
 * every client in the process keeps one shape and one sendCommand, which keeps ioredis's hot paths optimized
 * (per-instance patches cost the queue worker CPU on every job). A command can pass through sendCommand more than once (queued
 * while offline, then flushed; resent after a reconnect): it is counted each time it is actually written, which
 * is when it joins the queue of commands awaiting a reply. Pipelined and MULTI commands pass through one by one;
 * a Lua script is its one EVALSHA (or EVAL), as Upstash bills it.
 */
class CountingRedis extends Redis {
  constructor(
    options: LegacyRedisOptions,
    private readonly written: Map<string, number>,
    private readonly duplicatesWritten: Map<string, number>,
    private readonly onDuplicate: (client: Redis) => void,
  ) {
    super(options);
  }

  override sendCommand(...args: Parameters<Redis['sendCommand']>): ReturnType<Redis['sendCommand']> {
    const queued = this.commandQueue.length;
    const result = super.sendCommand(...args);
    if (this.commandQueue.length > queued) {
      const name = args[0].name;
      this.written.set(name, (this.written.get(name) ?? 0) + 1);
    }
    return result;
  }

  override duplicate(override?: Partial<RedisOptions>): Redis {
    const copy = new CountingRedis({ ...this.options, ...override, replyMapping: 'legacy' }, this.duplicatesWritten, this.duplicatesWritten, () => undefined);
    this.onDuplicate(copy);
    return copy;
  }
}

type LegacyClusterOptions = ClusterOptions & { redisOptions: NonNullable<ClusterOptions['redisOptions']> & { replyMapping: 'legacy' } };

function withLegacyReplies(options: ClusterOptions): LegacyClusterOptions {
  return { ...options, redisOptions: { ...options.redisOptions, replyMapping: 'legacy' } };
}

/**
 * The same counting for a Cluster. A command goes through the Cluster's sendCommand again for each redirection
 * (MOVED, ASK, a failover) and when the offline queue flushes: it is counted the first time only.
 */
class CountingCluster extends Cluster {
  private readonly seen = new WeakSet<object>();

  constructor(
    startupNodes: ClusterNode[],
    options: LegacyClusterOptions,
    private readonly written: Map<string, number>,
    private readonly duplicatesWritten: Map<string, number>,
    private readonly onDuplicate: (client: Cluster) => void,
  ) {
    super(startupNodes, options);
    // Without it, a master that takes no connection makes the sharded subscribers spin (see the function).
    if (options.shardedSubscribers) paceShardedSubscriberRestarts(this);
  }

  override sendCommand(...args: Parameters<Cluster['sendCommand']>): ReturnType<Cluster['sendCommand']> {
    const command = args[0];
    if (!this.seen.has(command)) {
      this.seen.add(command);
      this.written.set(command.name, (this.written.get(command.name) ?? 0) + 1);
    }
    return super.sendCommand(...args);
  }

  override duplicate(overrideStartupNodes?: ClusterNode[], overrideOptions?: ClusterOptions): Cluster {
    const nodes = overrideStartupNodes ?? (this as unknown as { startupNodes: ClusterNode[] }).startupNodes;
    const copy = new CountingCluster(nodes, withLegacyReplies({ ...this.options, ...overrideOptions }), this.duplicatesWritten, this.duplicatesWritten, () => undefined);
    this.onDuplicate(copy);
    return copy;
  }
}
