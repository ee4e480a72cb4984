import type { Redis } from 'ioredis';

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
   * Counts every command `client` writes to its socket, and those of every client later made with
   * `client.duplicate()` (BullMQ's blocking connection: duplicates inherit no instance patch otherwise).
   */
  attach(client: Redis): void {
    countWrites(client, this.own);
    const duplicate = client.duplicate.bind(client);
    client.duplicate = ((override?: Parameters<Redis['duplicate']>[0]) => {
      const copy = duplicate(override);
      countWrites(copy, this.duplicates);
      return copy;
    }) as Redis['duplicate'];
  }

  /** By lower-case command name. */
  counts(): ReadonlyMap<string, number> {
    return this.own;
  }

  duplicateCounts(): ReadonlyMap<string, number> {
    return this.duplicates;
  }
}

/**
 * ioredis has no per-command event, so its sendCommand is wrapped. A command can pass through sendCommand
 * more than once (queued while offline, then flushed; resent after a reconnect): it is counted each time it is
 * actually written, which is when it joins the queue of commands awaiting a reply. Pipelined and MULTI commands
 * pass through one by one; a Lua script is its one EVALSHA (or EVAL), as Upstash bills it.
 */
function countWrites(client: Redis, counts: Map<string, number>): void {
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command, stream) => {
    const queued = client.commandQueue.length;
    const result = send(command, stream);
    if (client.commandQueue.length > queued) {
      const name = command.name.toLowerCase();
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    return result;
  };
}
