import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RedisServer } from './redis-server';
import type { TestCertificates } from './tls-certificates';
import { until } from './until';

const execFileAsync = promisify(execFile);
const CLUSTER_OK_TIMEOUT_MS = 20_000;
/** Replicas copy their master's dataset (a full sync) before they count: longer on a loaded machine. */
const REPLICAS_UP_TIMEOUT_MS = 30_000;
const POLL_MS = 100;

export interface RedisClusterOptions {
  /** Replicas per master (redis-cli --cluster-replicas): 0 (default) for 3 nodes, 1 for 3 masters and 3 replicas. */
  replicas?: 0 | 1;
  /** --cluster-node-timeout of every node, in ms (default 5000): a shorter one makes a failover quicker. */
  nodeTimeoutMs?: number;
  /** TLS only on every node and on the cluster bus, with these certificates. */
  tls?: TestCertificates;
}

/** One line of CLUSTER NODES, as one node sees the cluster. */
export interface ClusterNodeView {
  readonly id: string;
  readonly port: number;
  readonly role: 'master' | 'replica';
  /** The id of its master, for a replica. */
  readonly masterId?: string;
  /** fail or fail? (pfail) among the flags: the viewing node holds it for dead, or suspects it. */
  readonly failing: boolean;
  readonly linkConnected: boolean;
  /** Slot ranges it serves, inclusive (a master). */
  readonly slots: ReadonlyArray<readonly [number, number]>;
}

export interface Failover {
  /** The killed master. */
  readonly killed: RedisServer;
  /** Its replica, now the master of its slots. */
  readonly promoted: RedisServer;
  /** From the SIGKILL until the replica was master and every live node said cluster_state:ok with it serving the slots. */
  readonly ms: number;
}

/** CLUSTER NODES, parsed: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
export function parseClusterNodes(text: string): ClusterNodeView[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [id, address, flagList, master, , , , link, ...slotFields] = line.split(' ');
      const flags = flagList.split(',');
      const port = Number(/:(\d+)@/.exec(address)?.[1]);
      const slots = slotFields
        .filter((field) => !field.startsWith('['))
        .map((field) => {
          const [from, to] = field.split('-').map(Number);
          return [from, to ?? from] as const;
        });
      return {
        id,
        port,
        role: flags.includes('slave') ? 'replica' : 'master',
        masterId: master === '-' ? undefined : master,
        failing: flags.includes('fail') || flags.includes('fail?'),
        linkConnected: link === 'connected',
        slots,
      };
    });
}

/**
 * A Redis Cluster on free ports: redis-server --cluster-enabled yes, joined with redis-cli --cluster create. Three
 * masters (what an operator gets when REDIS_URL names a cluster node), or three masters each with a replica, for
 * failovers: kill the master of a key's slot (failover()) and its replica takes over.
 */
export class RedisCluster {
  private constructor(
    readonly nodes: RedisServer[],
    readonly options: Required<Omit<RedisClusterOptions, 'tls'>>,
  ) {}

  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const resolved = { replicas: options.replicas ?? 0, nodeTimeoutMs: options.nodeTimeoutMs ?? 5_000 };
    const count = 3 * (1 + resolved.replicas);
    const nodes = await Promise.all(
      Array.from({ length: count }, () => RedisServer.start({ clusterNode: true, clusterNodeTimeoutMs: resolved.nodeTimeoutMs, tls: options.tls })),
    );
    const cluster = new RedisCluster(nodes, resolved);
    const tls = options.tls ? ['--tls', '--cacert', options.tls.caFile] : [];
    try {
      await execFileAsync(
        'redis-cli',
        [...tls, '--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', String(resolved.replicas), '--cluster-yes'],
        { timeout: CLUSTER_OK_TIMEOUT_MS },
      );
      await cluster.waitUntilHealthy(resolved.replicas > 0 ? REPLICAS_UP_TIMEOUT_MS : CLUSTER_OK_TIMEOUT_MS);
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

  /** The nodes whose process is still running (not killed). */
  running(): RedisServer[] {
    return this.nodes.filter((node) => node.pid !== undefined);
  }

  /** The cluster as `from` (default: the first running node) sees it. */
  async topology(from: RedisServer = this.anyRunning()): Promise<ClusterNodeView[]> {
    return parseClusterNodes(await from.command('CLUSTER', 'NODES'));
  }

  /** The hash slot of a key (its hash tag's, if it has one), as the cluster computes it. */
  async keySlot(key: string): Promise<number> {
    return Number(await this.anyRunning().command('CLUSTER', 'KEYSLOT', key));
  }

  /** The master serving the slot of `key` right now. */
  async masterFor(key: string): Promise<RedisServer> {
    const slot = await this.keySlot(key);
    const owner = (await this.topology()).find((view) => view.role === 'master' && !view.failing && view.slots.some(([from, to]) => slot >= from && slot <= to));
    if (owner === undefined) throw new Error(`no live master serves slot ${slot} (key ${key})`);
    return this.serverOn(owner.port);
  }

  /** The (first) replica of a master. */
  async replicaOf(master: RedisServer): Promise<RedisServer> {
    const views = await this.topology();
    const masterId = views.find((view) => view.port === master.port)?.id;
    const replica = views.find((view) => view.role === 'replica' && view.masterId === masterId);
    if (replica === undefined) throw new Error(`master on port ${master.port} has no replica`);
    return this.serverOn(replica.port);
  }

  /**
   * SIGKILLs a master, then waits until its replica has been promoted and every running node says cluster_state:ok
   * with the promoted node serving the slots the killed one served. Resolves with how long that took.
   */
  async failover(master: RedisServer, timeoutMs = 4 * this.options.nodeTimeoutMs + 20_000): Promise<Failover> {
    const views = await this.topology(master);
    const self = views.find((view) => view.port === master.port);
    if (self?.role !== 'master' || self.slots.length === 0) throw new Error(`node on port ${master.port} is not a master serving slots`);
    const promoted = await this.replicaOf(master);
    const killedAt = Date.now();
    await master.kill();
    await until(
      async () => {
        if ((await promoted.command('ROLE')).split('\n')[0] !== 'master') return 'replica not promoted yet';
        return this.problems({ owner: { port: promoted.port, slots: self.slots }, replicas: false });
      },
      (problem) => problem === undefined,
      timeoutMs,
      POLL_MS,
    );
    return { killed: master, promoted, ms: Date.now() - killedAt };
  }

  /** cluster_state:ok on every running node, all of them agreeing on live masters; with replicas, each master's replica in sync. */
  async waitUntilHealthy(timeoutMs = CLUSTER_OK_TIMEOUT_MS): Promise<void> {
    await until(
      () => this.problems({ replicas: this.options.replicas > 0 }),
      (problem) => problem === undefined,
      timeoutMs,
      POLL_MS,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill()));
  }

  /** What keeps the cluster from being healthy, as every running node sees it; undefined when nothing does. */
  private async problems(want: { replicas: boolean; owner?: { port: number; slots: ClusterNodeView['slots'] } }): Promise<string | undefined> {
    for (const node of this.running()) {
      const info = await node.command('CLUSTER', 'INFO');
      if (!/^cluster_state:ok/m.test(info)) return `node ${node.port}: ${/^cluster_state:\w+/m.exec(info)?.[0] ?? 'no cluster_state'}`;
      const views = await this.topology(node);
      const servingMasters = views.filter((view) => view.role === 'master' && view.slots.length > 0);
      const failing = servingMasters.find((view) => view.failing);
      if (failing) return `node ${node.port} holds master ${failing.port} for failing`;
      if (want.owner) {
        const { port, slots } = want.owner;
        const owner = views.find((view) => view.port === port);
        const serves = slots.every(([from, to]) => owner?.role === 'master' && owner.slots.some(([a, b]) => a <= from && to <= b));
        if (!serves) return `node ${node.port} does not see ${port} as the master of its slots yet`;
      }
      if (want.replicas) {
        for (const master of servingMasters) {
          if (!views.some((view) => view.role === 'replica' && view.masterId === master.id && view.linkConnected && !view.failing)) {
            return `node ${node.port} sees no connected replica of master ${master.port}`;
          }
        }
      }
    }
    if (want.replicas) {
      for (const view of (await this.topology()).filter((candidate) => candidate.role === 'replica')) {
        const replication = await this.serverOn(view.port).command('INFO', 'replication');
        if (!/^master_link_status:up/m.test(replication)) return `replica ${view.port} not in sync with its master yet`;
      }
    }
    return undefined;
  }

  private anyRunning(): RedisServer {
    const node = this.running()[0];
    if (node === undefined) throw new Error('no node of the cluster is running');
    return node;
  }

  private serverOn(port: number): RedisServer {
    const server = this.nodes.find((node) => node.port === port);
    if (server === undefined) throw new Error(`no node of this cluster on port ${port}`);
    return server;
  }
}
