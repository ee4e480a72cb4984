import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RedisServer } from './redis-server';

const execFileAsync = promisify(execFile);
const CLUSTER_OK_TIMEOUT_MS = 20_000;

/**
 * A Redis Cluster of three masters (no replicas) on free ports: redis-server --cluster-enabled yes, joined with
 * redis-cli --cluster create. What an operator gets when REDIS_URL names a cluster node.
 */
export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(): Promise<RedisCluster> {
    const nodes = await Promise.all([0, 1, 2].map(() => RedisServer.start({ clusterNode: true })));
    const cluster = new RedisCluster(nodes);
    try {
      await execFileAsync('redis-cli', ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
        timeout: CLUSTER_OK_TIMEOUT_MS,
      });
      const deadline = Date.now() + CLUSTER_OK_TIMEOUT_MS;
      while (!(await nodes[0].command('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error('Redis Cluster never reached cluster_state:ok');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** A REDIS_URL naming the first node, as a copied "cluster endpoint" would. */
  url(): string {
    return this.nodes[0].url();
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill()));
  }
}
