import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './free-port';

// Jest runs from the repository root; ESM specs have no __dirname.
const MAIN = join(process.cwd(), 'dist', 'main.js');
const SETPRIV = '/usr/bin/setpriv';
const DEFAULT_WAIT_MS = 15_000;

export interface AppExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface AppResponse {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

interface LineWaiter {
  pattern: RegExp;
  resolve: (line: string) => void;
}

/**
 * The built app (dist/main.js, built by `npm test`'s pretest) as a real process, so tests can send it
 * signals, count its log lines and watch it exit. It dies with the test process (setpriv --pdeathsig).
 */
export class AppProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<AppExit>;
  private readonly waiters = new Set<LineWaiter>();
  private exit?: AppExit;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    let pending = '';
    const onData = (chunk: Buffer) => {
      pending += chunk.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) this.onLine(line);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        if (pending) this.onLine(pending);
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  /**
   * Starts the app with NODE_ENV=test on a free port; resolves once it listens (within `listenTimeoutMs`) unless
   * `waitForListening` is false. `nodeArgs` replaces the entry point (dist/main.js), e.g. with a benchmark's variant
   * of the app; `wrapper` is a command that runs node, e.g. valgrind and its options.
   */
  static async start(
    env: Record<string, string>,
    options: { waitForListening?: boolean; listenTimeoutMs?: number; nodeArgs?: string[]; wrapper?: string[] } = {},
  ): Promise<AppProcess> {
    const port = await freePort();
    const node = [...(options.wrapper ?? []), process.execPath, ...(options.nodeArgs ?? [MAIN])];
    const args = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...node] : node;
    const child = spawn(args[0], args.slice(1), {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', HOST: '127.0.0.1', PORT: String(port), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const app = new AppProcess(child, port);
    if (options.waitForListening !== false) {
      try {
        await app.waitForLine(/listening on http/, options.listenTimeoutMs);
      } catch (error) {
        // Nobody gets a handle to stop it: an app that did not come up goes now, not when the test process exits.
        app.signal('SIGKILL');
        throw error;
      }
    }
    return app;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get output(): string {
    return this.lines.join('\n');
  }

  /** Resolves with the first line (already printed or still to come) matching pattern; rejects on exit or timeout. */
  waitForLine(pattern: RegExp, timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    const seen = this.lines.find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    return this.nextLine(pattern, timeoutMs);
  }

  /** Like waitForLine but only for lines printed from now on. */
  nextLine(pattern: RegExp, timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    return new Promise((resolve, reject) => {
      const fail = (reason: string) => {
        this.waiters.delete(waiter);
        reject(new Error(`${reason} waiting for ${pattern}. Output so far:\n${this.output}`));
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      const waiter: LineWaiter = {
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(line);
        },
      };
      this.waiters.add(waiter);
      void this.exited.then((exit) => {
        if (this.waiters.has(waiter)) {
          clearTimeout(timer);
          fail(`app exited (${exit.code ?? exit.signal})`);
        }
      });
    });
  }

  /** Waits until `count` lines match pattern. */
  async waitForLines(pattern: RegExp, count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.matching(pattern).length < count) {
      await this.nextLine(pattern, Math.max(1, deadline - Date.now()));
    }
    return this.matching(pattern);
  }

  matching(pattern: RegExp): string[] {
    return this.lines.filter((line) => pattern.test(line));
  }

  async request(path: string, init: RequestInit = {}): Promise<AppResponse> {
    const response = await fetch(`${this.baseUrl}${path}`, { signal: AbortSignal.timeout(5_000), ...init });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body, text };
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Runs `work` with the process stopped (SIGSTOP), and continues it (SIGCONT) however `work` ends. */
  async whilePaused<T>(work: () => Promise<T>): Promise<T> {
    this.signal('SIGSTOP');
    try {
      return await work();
    } finally {
      this.signal('SIGCONT');
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited after timeoutMs. */
  async stop(timeoutMs = 15_000): Promise<AppExit> {
    if (this.exit) return this.exit;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  private onLine(line: string): void {
    this.lines.push(line);
    for (const waiter of [...this.waiters]) if (waiter.pattern.test(line)) waiter.resolve(line);
  }
}
