import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RedisServer } from './redis-server';

/**
 * Redis's own record of what each client sent: MONITOR lines by client address and command name. Calls run
 * inside Lua scripts (source "lua") are skipped, as Upstash bills a script as one command. MONITOR omits
 * commands Redis rejects before running them and administrative ones (CONFIG, CLIENT KILL, ...).
 */
export class RedisMonitor {
  private readonly seen = new Map<string, Map<string, number>>();
  private readonly waiters = new Map<string, () => void>();

  private constructor(
    private readonly monitor: Redis,
    private readonly probe: Redis,
  ) {
    monitor.on('monitor', (_time: string, args: string[], source: string) => this.onCommand(args, source));
  }

  static async start(server: RedisServer): Promise<RedisMonitor> {
    const monitor = await new Redis(server.url(), { lazyConnect: true }).monitor();
    const probe = new Redis(server.url(), { connectionName: 'test-monitor-probe' });
    const started = new RedisMonitor(monitor, probe);
    await started.sync();
    return started;
  }

  /** Resolves once MONITOR has shown everything Redis ran before this call (a marker went through after it). */
  async sync(): Promise<void> {
    const marker = `monitor-sync-${randomBytes(6).toString('hex')}`;
    const seen = new Promise<void>((resolve) => this.waiters.set(marker, resolve));
    await this.probe.echo(marker);
    await seen;
  }

  /** Commands by name seen from the client at `address` (host:port, as CLIENT LIST's addr=). */
  countsFrom(address: string): Record<string, number> {
    return Object.fromEntries(this.seen.get(address) ?? []);
  }

  async stop(): Promise<void> {
    this.monitor.disconnect();
    await this.probe.quit();
  }

  private onCommand(args: string[], source: string): void {
    const [name, marker] = args;
    if (name?.toLowerCase() === 'echo' && marker !== undefined && this.waiters.has(marker)) {
      this.waiters.get(marker)?.();
      this.waiters.delete(marker);
      return;
    }
    if (source === 'lua' || name === undefined) return;
    const counts = this.seen.get(source) ?? new Map<string, number>();
    counts.set(name.toLowerCase(), (counts.get(name.toLowerCase()) ?? 0) + 1);
    this.seen.set(source, counts);
  }
}

/** CLIENT LIST as name -> addr (the address MONITOR shows), from Redis itself. */
export async function clientAddresses(server: RedisServer): Promise<Map<string, string>> {
  const output = await server.command('CLIENT', 'LIST');
  const addresses = new Map<string, string>();
  for (const line of output.split('\n')) {
    const addr = /(?:^| )addr=(\S+)/.exec(line)?.[1];
    const name = /(?:^| )name=(\S*)/.exec(line)?.[1];
    if (addr && name) addresses.set(name, addr);
  }
  return addresses;
}

/** `after - before` per name, without zeros. */
export function countsDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after)
      .map(([name, count]) => [name, count - (before[name] ?? 0)])
      .filter(([, count]) => count !== 0),
  );
}
