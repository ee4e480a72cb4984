import type { Cluster } from './cluster';
import { Author, HttpLoad, JobStream, Recorder, Route, SocketSwarm, SwarmUser } from './load';
import { postReport, salesFor, settledReport, tokenFor } from './reports-client';

export interface WorkloadOptions {
  tenants: number;
  usersPerTenant: number;
  /** Users who post the reports (u0..u<authors-1>): never churned, so their notifications can be counted. */
  authors: number;
  /** Completed reports read on every instance first: what the cached route serves. */
  warmReports: number;
  httpLoops: number;
  httpPauseMs: number;
  jobIntervalMs: number;
  jobLines: number;
  deadlineMs: number;
  /** JWT lifetime: longer than the run. */
  tokenLifetime: `${number}m`;
}

/**
 * The steady load of the chaos suite and the soak, on a cluster: one socket per user (tenants × users), HTTP
 * load on a cached route (completed reports) and uncached ones (a recent report, presence, auth, health),
 * and a stream of report jobs posted by the authors.
 */
export class Workload {
  readonly recorder = new Recorder();
  readonly swarm: SocketSwarm;
  readonly load: HttpLoad;
  readonly jobs: JobStream;
  private nextUser = 0;
  private readonly tenantTokens = new Map<string, string>();

  private constructor(
    cluster: Cluster,
    private readonly options: WorkloadOptions,
    readonly warm: readonly string[],
  ) {
    for (let tenant = 0; tenant < options.tenants; tenant++) {
      this.tenantTokens.set(this.tenantOf(tenant), tokenFor(`observer-${tenant}`, this.tenantOf(tenant), options.tokenLifetime));
    }
    this.swarm = new SocketSwarm(cluster);
    const authors: Author[] = Array.from({ length: options.authors }, (_unused, n) => ({
      userId: `u${n}`,
      token: tokenFor(`u${n}`, this.tenantOf(n), options.tokenLifetime),
    }));
    this.jobs = new JobStream(cluster, authors, this.recorder, {
      intervalMs: options.jobIntervalMs,
      deadlineMs: options.deadlineMs,
      lines: options.jobLines,
      firstSeed: 100_000,
    });
    this.load = new HttpLoad(cluster, this.routes(), this.recorder, { concurrency: options.httpLoops, pauseMs: options.httpPauseMs, deadlineMs: options.deadlineMs });
  }

  /** Warms the cached route, connects every user, then starts the HTTP load and the job stream. */
  static async start(cluster: Cluster, options: WorkloadOptions): Promise<Workload> {
    const first = cluster.instances[0].app;
    const token = tokenFor('observer-0', 'pharmacy-0', options.tokenLifetime);
    const warm: string[] = [];
    for (let seed = 0; seed < options.warmReports; seed++) warm.push(((await postReport(first, token, salesFor(seed))).body as { id: string }).id);
    for (const id of warm) for (const instance of cluster.instances) await settledReport(instance.app, token, id);

    const workload = new Workload(cluster, options, warm);
    await workload.swarm.join(workload.newUsers(options.tenants * options.usersPerTenant));
    workload.load.start();
    workload.jobs.start();
    return workload;
  }

  tenantOf(n: number): string {
    return `pharmacy-${n % this.options.tenants}`;
  }

  /** A token of an observer of the tenant (not a swarm user): for GET /presence. */
  tokenOfTenant = (tenantId: string): string => this.tenantTokens.get(tenantId) as string;

  /** Users not seen before, spread over the tenants. */
  newUsers(count: number): SwarmUser[] {
    return Array.from({ length: count }, () => {
      const n = this.nextUser++;
      const userId = `u${n}`;
      const tenantId = this.tenantOf(n);
      return { userId, tenantId, token: tokenFor(userId, tenantId, this.options.tokenLifetime) };
    });
  }

  /** Some users leave for good and as many new ones join (never an author). */
  async churn(count: number): Promise<void> {
    const leaving = [...this.swarm.wantedByTenant().values()]
      .flatMap((users) => [...users])
      .filter((userId) => Number(userId.slice(1)) >= this.options.authors)
      .slice(0, count);
    this.swarm.leave(leaving);
    await this.swarm.join(this.newUsers(count), count);
  }

  /** Stops the HTTP load and the job stream (the sockets stay). */
  async stopTraffic(): Promise<void> {
    await Promise.all([this.load.stop(), this.jobs.stop()]);
  }

  async stop(): Promise<void> {
    await this.stopTraffic();
    this.swarm.close();
  }

  private routes(): Route[] {
    const warmToken = this.tokenOfTenant('pharmacy-0');
    let warmTurn = 0;
    return [
      {
        name: 'GET /reports/:id (cached)',
        cached: true,
        path: () => `/reports/${this.warm[warmTurn++ % this.warm.length]}`,
        headers: () => ({ authorization: `Bearer ${warmToken}` }),
      },
      {
        name: 'GET /reports/:id (recent, uncached)',
        cached: false,
        path: () => `/reports/${this.jobs.latest?.id ?? this.warm[0]}`,
        headers: () => ({ authorization: `Bearer ${this.jobs.latest?.author.token ?? warmToken}` }),
      },
      { name: 'GET /presence', cached: false, path: () => '/presence', headers: () => ({ authorization: `Bearer ${this.tokenOfTenant('pharmacy-1')}` }) },
      { name: 'GET /auth/me', cached: false, path: () => '/auth/me', headers: () => ({ authorization: `Bearer ${warmToken}` }) },
      { name: 'GET /health', cached: false, path: () => '/health', headers: () => ({}) },
    ];
  }
}
