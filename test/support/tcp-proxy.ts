import { createServer, Socket, type Server } from 'node:net';
import { freePort } from './free-port';

interface Pair {
  client: Socket;
  upstream: Socket;
}

/**
 * A TCP proxy on 127.0.0.1 between the apps and Redis, for the faults a process signal cannot make:
 * added latency (every chunk held for `latencyMs` in each direction, order kept) and a dropped connection
 * (`cutAll()` destroys every open connection at once, as a network blip or a provider's failover does).
 * New connections keep being accepted; one whose upstream cannot be reached is closed at once.
 */
export class TcpProxy {
  /** Delay added to each direction: a command's round trip grows by twice this. */
  latencyMs = 0;
  /**
   * While true, new connections are accepted and then ignored: nothing is forwarded and nothing answered, as a
   * wrong port behind a proxy or a firewall that accepts and drops does. Connections made before keep working.
   */
  blackHole = false;
  private readonly pairs = new Set<Pair>();
  private acceptedCount = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly targetPort: number,
  ) {
    server.on('connection', (client) => {
      this.acceptedCount += 1;
      this.accept(client);
    });
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const port = await freePort();
    const server = createServer();
    const proxy = new TcpProxy(server, port, targetPort);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve());
    });
    return proxy;
  }

  /** Connections accepted since start, black-holed or not. */
  get accepted(): number {
    return this.acceptedCount;
  }

  /** How many client connections are open now. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Drops every open connection (both sides), as when a link or a load balancer in between resets. */
  cutAll(): number {
    const cut = this.pairs.size;
    for (const pair of [...this.pairs]) this.drop(pair);
    return cut;
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.blackHole) {
      const held: Pair = { client, upstream: new Socket() };
      this.pairs.add(held);
      client.on('error', () => this.drop(held)).on('close', () => this.drop(held));
      return;
    }
    const upstream = new Socket();
    const pair: Pair = { client, upstream };
    this.pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const drop = () => this.drop(pair);
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    this.pipe(client, upstream);
    this.pipe(upstream, client);
    upstream.connect(this.targetPort, '127.0.0.1');
  }

  /**
   * Forwards with the current latency. Chunks wait in one queue per direction, so none overtakes another when
   * the latency changes; a destination that is not connected yet buffers (net.Socket does).
   */
  private pipe(from: Socket, to: Socket): void {
    const queue: Array<{ chunk: Buffer; due: number }> = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      timer = undefined;
      const now = Date.now();
      while (queue.length > 0 && queue[0].due <= now) {
        const { chunk } = queue.shift() as { chunk: Buffer };
        if (!to.destroyed) to.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(flush, queue[0].due - now);
    };
    from.on('data', (chunk: Buffer) => {
      if (this.latencyMs <= 0 && queue.length === 0) {
        if (!to.destroyed) to.write(chunk);
        return;
      }
      queue.push({ chunk, due: Date.now() + this.latencyMs });
      timer ??= setTimeout(flush, Math.max(0, queue[0].due - Date.now()));
    });
    from.on('close', () => clearTimeout(timer));
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream.destroy();
  }
}
