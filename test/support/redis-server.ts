import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './free-port';
import type { TestCertificates } from './tls-certificates';

export interface RedisServerOptions {
  /** requirepass, i.e. the password of user "default". */
  password?: string;
  /** An extra ACL user with full access. */
  aclUser?: { name: string; password: string };
  /** TLS only: no plaintext port, tls-port = port, client certificates not required. */
  tls?: TestCertificates;
  /** Reuse a given port; default freePort(). */
  port?: number;
  /** Append-only file fsynced on every write, kept across restart(): what a durable provider gives. */
  durable?: boolean;
  /** --maxclients: connections beyond it are refused ("max number of clients reached"), as on managed plans. */
  maxclients?: number;
  /** --maxmemory (e.g. '4mb'), with noeviction: writes are refused with OOM once it is reached. */
  maxmemory?: string;
  /** --cluster-enabled yes: a node for RedisCluster (test/support/redis-cluster.ts). */
  clusterNode?: boolean;
  /** --cluster-node-timeout of a cluster node, in ms (default 5000): how long a silent master goes before it counts as failed. */
  clusterNodeTimeoutMs?: number;
  /** Commands disabled (rename-command NAME ""), as some providers do. */
  disabledCommands?: string[];
  /**
   * A non-loopback address to listen on too. redis-server's protected mode (on by default) then refuses, with
   * "-DENIED", every connection from that address while the server has no password: a self-hosted Redis reached
   * from another machine.
   */
  alsoBind?: string;
}

export interface RedisUrlOptions {
  user?: string;
  password?: string;
  db?: number;
}

export interface RedisCliOptions {
  /** Authenticate as this user; its password defaults to the configured one. */
  user?: string;
  password?: string;
  /** Send no credentials at all, even if the server has a password. */
  noAuth?: boolean;
  /** Trust this CA instead of the server's (TLS servers only). */
  caFile?: string;
}

const SHARED_REDIS_PORT = 6379;
const READY_LINE = 'Ready to accept connections';
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const CLI_TIMEOUT_MS = 5_000;
const OUTPUT_LIMIT = 64 * 1024;
const PROBE_NAME = 'test-harness-probe';
const START_ATTEMPTS = 3;
const NOT_FOUND =
  'redis-server not found on PATH: install it (apt-get install redis-server). ' +
  'Unit specs (*.spec.ts) never find it (test/support/unit-project.cjs): name a spec that needs Redis *.int-spec.ts';

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
  dir: string;
}

const liveChildren = new Set<ChildProcess>();
const liveServers = new Set<RedisServer>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Inside Jest `process` is a sandbox copy whose 'exit' never fires; the
  // setpriv --pdeathsig wrapper is what covers that case.
  process.on('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}

async function findOnPath(command: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

let binaries: Promise<{ redisServer: string | undefined; setpriv: string | undefined }> | undefined;

function findBinaries(): Promise<{ redisServer: string | undefined; setpriv: string | undefined }> {
  binaries ??= Promise.all([findOnPath('redis-server'), findOnPath('setpriv')]).then(([redisServer, setpriv]) => ({ redisServer, setpriv }));
  return binaries;
}

function appendBounded(buffer: string, chunk: string): string {
  const joined = buffer + chunk;
  return joined.length > OUTPUT_LIMIT ? joined.slice(joined.length - OUTPUT_LIMIT) : joined;
}

function isAlive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function runRedisCli(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('redis-cli', args, { timeout: CLI_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) {
        const shown = args.map((arg, i) => (args[i - 1] === '--pass' ? '***' : arg)).join(' ');
        reject(new Error(`redis-cli ${shown} failed (${error.signal ?? `exit ${String(error.code)}`}): ${stderr.trim()}`));
        return;
      }
      resolve(stdout.trim());
    });
    child.stdin?.end(input);
  });
}

export class RedisServer {
  readonly port: number;
  readonly options: RedisServerOptions;
  private running: Running | undefined;
  private output = '';
  /** The directory crash() kept for relaunch(). */
  private crashedDir: string | undefined;

  private constructor(port: number, options: RedisServerOptions) {
    this.port = port;
    this.options = options;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    if (options.port === SHARED_REDIS_PORT) {
      throw new Error(`RedisServer: port ${SHARED_REDIS_PORT} belongs to the shared Redis; never use it in tests`);
    }
    // A port from freePort() can be taken by someone else before redis binds it.
    const attempts = options.port === undefined ? START_ATTEMPTS : 1;
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(options.port ?? (await freePort()), options);
      try {
        await server.launch();
        return server;
      } catch (error) {
        const retry = attempt < attempts && error instanceof Error && /Address already in use/.test(error.message);
        if (!retry) throw error;
      }
    }
  }

  get pid(): number | undefined {
    const child = this.running?.child;
    return child !== undefined && isAlive(child) ? child.pid : undefined;
  }

  /** Captured stdout/stderr of the current (or last) process, bounded to the last 64 KiB. */
  get log(): string {
    return this.output;
  }

  url(opts: RedisUrlOptions = {}): string {
    const scheme = this.options.tls ? 'rediss' : 'redis';
    // The certificate's SAN has DNS:localhost; the server binds only 127.0.0.1.
    const host = this.options.tls ? 'localhost' : '127.0.0.1';
    const user = opts.user ?? 'default';
    const password = opts.password ?? this.passwordFor(user);
    const auth = password === undefined ? '' : `${encodeURIComponent(user)}:${encodeURIComponent(password)}@`;
    const db = opts.db === undefined ? '' : `/${opts.db}`;
    return `${scheme}://${auth}${host}:${this.port}${db}`;
  }

  /** redis-cli arguments that reach this server (host, port, TLS, auth). */
  cliArgs(opts: RedisCliOptions = {}): string[] {
    const args = ['-h', '127.0.0.1', '-p', String(this.port)];
    if (this.options.tls) {
      args.push('--tls', '--cacert', opts.caFile ?? this.options.tls.caFile, '--sni', 'localhost');
    }
    if (!opts.noAuth) {
      const user = opts.user ?? 'default';
      const password = opts.password ?? this.passwordFor(user);
      if (opts.user !== undefined) args.push('--user', user);
      if (password !== undefined) args.push('--pass', password);
    }
    args.push('--no-auth-warning');
    return args;
  }

  command(...args: string[]): Promise<string> {
    return runRedisCli([...this.cliArgs(), ...args]);
  }

  /** Names (the CLIENT LIST `name=` field, '' when unnamed) of all clients except the harness's probe. */
  async clientList(): Promise<string[]> {
    // Commands on stdin share one connection, so the probe can name itself and be filtered out.
    const output = await runRedisCli(this.cliArgs(), `CLIENT SETNAME ${PROBE_NAME}\nCLIENT LIST\n`);
    const names: string[] = [];
    for (const line of output.split('\n')) {
      if (!line.startsWith('id=')) continue;
      const name = /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '';
      if (name !== PROBE_NAME) names.push(name);
    }
    return names;
  }

  /** SIGTERM and wait for exit; harmless if already stopped. */
  stop(): Promise<void> {
    return this.terminate('SIGTERM');
  }

  /** SIGKILL and wait for exit; harmless if already stopped. */
  kill(): Promise<void> {
    return this.terminate('SIGKILL');
  }

  /**
   * SIGKILL (no shutdown) keeping the data directory, for relaunch(): what survives is what is on disk, e.g. a cluster
   * node's nodes.conf (its node id, epoch and slots). Unlike restart(), the caller decides when it comes back.
   */
  async crash(): Promise<void> {
    const dir = this.running?.dir;
    await this.terminate('SIGKILL', true);
    this.crashedDir = dir;
  }

  /** Starts a crashed server again on its port and directory: a cluster node rejoins as itself, with its slots. */
  async relaunch(): Promise<void> {
    const dir = this.crashedDir;
    if (dir === undefined) throw new Error(`RedisServer on port ${this.port}: relaunch() without crash()`);
    this.crashedDir = undefined;
    await this.launch(dir);
  }

  pause(): void {
    this.signal('SIGSTOP');
  }

  resume(): void {
    this.signal('SIGCONT');
  }

  /**
   * Stops (SIGTERM, or SIGKILL: no shutdown, only what the AOF already holds survives) and starts again on
   * the same port after `downMs`; a durable server comes back with its data.
   */
  async restart(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', downMs = 0): Promise<void> {
    const dir = this.running?.dir;
    await this.terminate(signal, this.options.durable === true);
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.launch(this.options.durable ? dir : undefined);
  }

  private passwordFor(user: string): string | undefined {
    if (user === 'default') return this.options.password;
    if (user === this.options.aclUser?.name) return this.options.aclUser.password;
    return undefined;
  }

  private signal(signal: NodeJS.Signals): void {
    const child = this.running?.child;
    if (child === undefined || !isAlive(child)) throw new Error(`RedisServer on port ${this.port} is not running`);
    child.kill(signal);
  }

  private serverArgs(dir: string): string[] {
    const { tls, password, aclUser } = this.options;
    const args = ['--bind', '127.0.0.1', ...(this.options.alsoBind ? [this.options.alsoBind] : [])];
    if (tls) {
      args.push(
        '--port',
        '0',
        '--tls-port',
        String(this.port),
        '--tls-cert-file',
        tls.certFile,
        '--tls-key-file',
        tls.keyFile,
        '--tls-ca-cert-file',
        tls.caFile,
        '--tls-auth-clients',
        'no',
      );
    } else {
      args.push('--port', String(this.port));
    }
    args.push(
      '--save',
      '',
      '--appendonly',
      this.options.durable ? 'yes' : 'no',
      '--appendfsync',
      'always',
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--maxmemory-policy',
      'noeviction',
    );
    if (password !== undefined) args.push('--requirepass', password);
    if (this.options.maxclients !== undefined) args.push('--maxclients', String(this.options.maxclients));
    if (this.options.maxmemory !== undefined) args.push('--maxmemory', this.options.maxmemory);
    for (const name of this.options.disabledCommands ?? []) args.push('--rename-command', name, '');
    if (this.options.clusterNode)
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', String(this.options.clusterNodeTimeoutMs ?? 5_000));
    // The cluster bus between TLS nodes is TLS too, as on managed clusters with in-transit encryption.
    if (this.options.clusterNode && tls) args.push('--tls-cluster', 'yes');
    // Redis takes every following non "--" argument as another argument of the same directive.
    if (aclUser) args.push('--user', aclUser.name, 'on', `>${aclUser.password}`, '~*', '&*', '+@all');
    return args;
  }

  private async launch(reuseDir?: string): Promise<void> {
    if (this.running !== undefined) throw new Error(`RedisServer on port ${this.port} is already running`);
    const { redisServer, setpriv } = await findBinaries();
    if (redisServer === undefined) throw new Error(NOT_FOUND);
    installExitHook();

    const dir = reuseDir ?? (await mkdtemp(join(tmpdir(), 'pharmacare-redis-')));
    const args = this.serverArgs(dir);
    // --pdeathsig kills redis even when the test process dies without running any exit hook (SIGKILL, Jest).
    const child =
      setpriv === undefined
        ? spawn(redisServer, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(setpriv, ['--pdeathsig', 'KILL', '--', redisServer, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });

    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => {
        if (child.pid === undefined) resolve();
      });
    });
    const running: Running = { child, exited, dir };
    this.running = running;
    this.output = '';
    liveChildren.add(child);
    liveServers.add(this);
    void exited.then(() => liveChildren.delete(child));

    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    // Keep draining for the whole lifetime: a full pipe would block redis.
    const collect = (chunk: string): void => {
      this.output = appendBounded(this.output, chunk);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.on('error', (error) => collect(`[harness] ${error.message}\n`));

    try {
      await new Promise<void>((resolve, reject) => {
        const finish = (error?: Error): void => {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.off('exit', onExit);
          child.off('error', onError);
          if (error) reject(error);
          else resolve();
        };
        const onData = (): void => {
          if (this.output.includes(READY_LINE)) finish();
        };
        const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
          finish(new Error(`redis-server on port ${this.port} exited (code ${code}, signal ${signal}) before it was ready:\n${this.output}`));
        };
        const onError = (error: NodeJS.ErrnoException): void => {
          finish(error.code === 'ENOENT' ? new Error(NOT_FOUND) : error);
        };
        const timer = setTimeout(() => {
          finish(new Error(`redis-server on port ${this.port} not ready within ${READY_TIMEOUT_MS} ms:\n${this.output}`));
        }, READY_TIMEOUT_MS);
        // Registered after `collect`, so the chunk is already in this.output.
        child.stdout?.on('data', onData);
        child.once('exit', onExit);
        child.once('error', onError);
      });
    } catch (error) {
      await this.terminate('SIGKILL');
      throw error;
    }
  }

  private async terminate(signal: 'SIGTERM' | 'SIGKILL', keepDir = false): Promise<void> {
    const running = this.running;
    if (running === undefined) {
      // Crashed and never relaunched: the kept directory goes now.
      if (this.crashedDir !== undefined && !keepDir) {
        await rm(this.crashedDir, { recursive: true, force: true });
        this.crashedDir = undefined;
      }
      return;
    }
    const { child } = running;
    let timer: NodeJS.Timeout | undefined;
    if (isAlive(child)) {
      child.kill(signal);
      // A paused (SIGSTOPped) server acts on SIGTERM only once continued.
      if (signal === 'SIGTERM') child.kill('SIGCONT');
      timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    }
    await running.exited;
    clearTimeout(timer);
    if (this.running === running) {
      this.running = undefined;
      liveServers.delete(this);
    }
    if (!keepDir) await rm(running.dir, { recursive: true, force: true });
  }
}

/** SIGKILL every server this module started that is still running (afterAll safety net). */
export async function stopAllRedisServers(): Promise<void> {
  await Promise.all([...liveServers].map((server) => server.kill()));
}
