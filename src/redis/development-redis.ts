import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

export interface DevelopmentRedis {
  /** The server's, or on a cluster its first node's (the seed). */
  readonly url: string;
  /** One per server: a cluster has CLUSTER_NODES. */
  readonly pids: readonly number[];
  /** SIGTERM, and resolves once every server has exited (SIGKILL after a few seconds). */
  stop(): Promise<void>;
}

/** A development cluster: three masters, no replicas, the smallest cluster redis-cli creates. */
export const CLUSTER_NODES = 3;
const execFileAsync = promisify(execFile);

const READY_LINE = 'Ready to accept connections';
const NOT_INSTALLED =
  'REDIS_URL is unset, so a private development Redis would be started, but redis-server is not on PATH. ' +
  'Install Redis (apt-get install redis-server, brew install redis) or set REDIS_URL; in production set NODE_ENV=production and REDIS_URL.';

/** The private Redis could not be started: main.ts prints the message (no stack) and exits 1. */
export class DevelopmentRedisError extends Error {
  override readonly name = 'DevelopmentRedisError';
}
const SETPRIV = '/usr/bin/setpriv';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;

/**
 * A private redis-server for `npm run start:dev` without REDIS_URL: on a free loopback port, nothing on disk,
 * never the shared one on 6379. It lives as long as this process (the bootstrap stops it on shutdown). With
 * `cluster` (REDIS_CLUSTER=true), a private Redis Cluster of CLUSTER_NODES masters instead.
 */
export async function startDevelopmentRedis(workDir: string, options: { cluster?: boolean } = {}): Promise<DevelopmentRedis> {
  // Looked up first: under setpriv a missing binary is only setpriv's exit code 127, not a spawn ENOENT.
  const redisServer = findOnPath('redis-server');
  if (!redisServer) throw new DevelopmentRedisError(NOT_INSTALLED);
  if (!options.cluster) return startServer(redisServer, join(workDir, 'redis'), []);
  const nodes: DevelopmentRedis[] = [];
  // Each node writes its cluster state file: a directory of this process's, so no node remembers an old cluster.
  const clusterDir = join(workDir, 'redis-cluster', String(process.pid));
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    rmSync(clusterDir, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < CLUSTER_NODES; index++) {
      const dir = join(clusterDir, String(index));
      nodes.push(await startServer(redisServer, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')]));
    }
    await createCluster(nodes.map((node) => node.url));
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: nodes[0].url, pids: nodes.flatMap((node) => node.pids), stop };
}

/** redis-cli --cluster create, then waits until every node says cluster_state:ok. */
async function createCluster(urls: readonly string[]): Promise<void> {
  const redisCli = findOnPath('redis-cli');
  if (!redisCli)
    throw new DevelopmentRedisError('REDIS_CLUSTER=true with REDIS_URL unset starts a private Redis Cluster, which needs redis-cli on PATH (it comes with redis-server).');
  const addresses = urls.map((url) => url.replace('redis://', ''));
  try {
    await execFileAsync(redisCli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: START_TIMEOUT_MS });
  } catch (error) {
    throw new DevelopmentRedisError(`redis-cli --cluster create failed: ${(error as Error).message}`);
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (const address of addresses) {
    const [host, port] = address.split(':');
    while (!(await execFileAsync(redisCli, ['-h', host, '-p', port, 'CLUSTER', 'INFO'])).stdout.includes('cluster_state:ok')) {
      if (Date.now() > deadline) throw new DevelopmentRedisError(`the development Redis Cluster did not reach cluster_state:ok within ${START_TIMEOUT_MS / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function startServer(redisServer: string, dir: string, extraArgs: readonly string[]): Promise<DevelopmentRedis> {
  mkdirSync(dir, { recursive: true });
  const port = await freeLoopbackPort();
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs];
  // On Linux the kernel kills it if this process dies without cleaning up (SIGKILL, a crash under --watch).
  const tied = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', redisServer, ...args] : [redisServer, ...args];
  const child = spawn(tied[0], tied.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const running = () => child.exitCode === null && child.signalCode === null;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (!running()) return;
    child.kill('SIGTERM');
    const force = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(force);
  };
  process.once('exit', () => running() && child.kill('SIGKILL'));

  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new DevelopmentRedisError(`redis-server did not start within ${START_TIMEOUT_MS / 1000} s:\n${output}`)), START_TIMEOUT_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      void stop();
      reject(error);
    };
    const exitedEarly = (code: number | null) => fail(new DevelopmentRedisError(`redis-server exited with code ${code}:\n${output}`));
    child.once('error', (error) => fail(new DevelopmentRedisError(`cannot start redis-server: ${error.message}`)));
    child.once('exit', exitedEarly);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(READY_LINE)) {
        clearTimeout(timer);
        // Only this listener: removing them all took stop()'s too, so stop() never resolved.
        child.removeListener('exit', exitedEarly);
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
        resolve();
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  });
  return { url: `redis://127.0.0.1:${port}`, pids: [child.pid ?? 0], stop };
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
