import { Redis, type RedisOptions } from 'ioredis';

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
