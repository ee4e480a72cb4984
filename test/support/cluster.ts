import { readFile } from 'node:fs/promises';
import { AppProcess } from './app-process';
import type { Routing, Target } from './load';

const READY_LINE = /ready in \d+ ms/;
const READY_LINES = 3;
const BOOT_TIMEOUT_MS = 30_000;

/** One app process and whether the load balancer routes to it. */
export class Instance implements Target {
  routable = true;

  constructor(
    readonly name: string,
    readonly app: AppProcess,
  ) {}

  get baseUrl(): string {
    return this.app.baseUrl;
  }
}

export interface ProcessMemory {
  rssKiB: number;
}

/**
 * Several app processes on one Redis behind a round-robin "load balancer" (Routing). Stopping or killing an
 * instance takes it out of rotation first; its replacement joins once it is ready, as on Render.
 */
export class Cluster implements Routing {
  readonly instances: Instance[] = [];
  /** Every process ever started, so a test can search all their output. */
  readonly everyApp: AppProcess[] = [];
  private turn = 0;

  private constructor(private readonly env: Record<string, string>) {}

  static async start(count: number, env: Record<string, string>): Promise<Cluster> {
    const cluster = new Cluster(env);
    const started = await Promise.all(Array.from({ length: count }, (_unused, index) => cluster.boot(`app${index + 1}`)));
    cluster.instances.push(...started);
    return cluster;
  }

  next(): Target | undefined {
    const routable = this.instances.filter((instance) => instance.routable);
    if (routable.length === 0) return undefined;
    return routable[this.turn++ % routable.length];
  }

  /** SIGKILL (no shutdown at all), then a replacement process in its place; resolves once the replacement is routable. */
  async killAndReplace(index: number): Promise<Instance> {
    const victim = this.instances[index];
    victim.routable = false;
    victim.app.signal('SIGKILL');
    await victim.app.exited;
    const replacement = await this.boot(`${victim.name}'`);
    this.instances[index] = replacement;
    return replacement;
  }

  /** Every instance in turn: out of rotation, SIGTERM (graceful), a new process, back in rotation. */
  async rollingRestart(): Promise<void> {
    for (let index = 0; index < this.instances.length; index++) {
      const old = this.instances[index];
      old.routable = false;
      const exit = await old.app.stop();
      if (exit.code !== 0) throw new Error(`${old.name} exited with ${exit.code ?? exit.signal} on SIGTERM:\n${old.app.output.slice(-3000)}`);
      this.instances[index] = await this.boot(`${old.name}'`);
    }
  }

  /** Resident memory of each current process, from /proc (Linux). */
  async memory(): Promise<Array<ProcessMemory & { name: string }>> {
    return Promise.all(
      this.instances.map(async (instance) => {
        const status = await readFile(`/proc/${instance.app.pid}/status`, 'utf8');
        const rssKiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
        return { name: instance.name, rssKiB };
      }),
    );
  }

  async stop(): Promise<void> {
    for (const instance of this.instances) instance.routable = false;
    await Promise.all(this.everyApp.map((app) => app.stop()));
  }

  private async boot(name: string): Promise<Instance> {
    const app = await AppProcess.start(this.env);
    this.everyApp.push(app);
    await app.waitForLines(READY_LINE, READY_LINES, BOOT_TIMEOUT_MS);
    return new Instance(name, app);
  }
}
