import { setTimeout as delay } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';

const READ_EVERY_MS = 300;
const BATCH = 2_000;

/**
 * Counts job completions straight from Redis: BullMQ appends `event=completed jobId=<id>` to
 * `<prefix>:<queue>:events` in the same Lua script (moveToFinished) that moves the job to the completed set,
 * so one entry is one transition to completed. Two entries for one id would be a job completed twice; a job
 * merely processed twice (retried after a stall, its second attempt not committed twice) leaves one.
 * The stream is trimmed (about 10,000 entries), so it is read continuously from the start, on a connection
 * of its own that goes straight to Redis (not through the test's proxy). On a Redis Cluster (`cluster: true`, the URL
 * naming any node) that connection is a Cluster client, which follows the stream's slot through a failover.
 */
export class JobLedger {
  /** Completed events per job id. */
  readonly completed = new Map<string, number>();
  /** Final failures (attempts exhausted) per job id. */
  readonly failed = new Map<string, number>();
  /** Jobs found stalled (their worker died holding them) and put back to wait, per job id. */
  readonly stalled = new Map<string, number>();
  private lastId = '0';
  private running = true;
  private readonly loop: Promise<void>;
  private readonly redis: Redis | Cluster;

  constructor(
    redisUrl: string,
    private readonly streamKey: string,
    options: { cluster?: boolean } = {},
  ) {
    if (options.cluster) {
      const { hostname, port } = new URL(redisUrl);
      this.redis = new Cluster([{ host: hostname, port: Number(port) }], { clusterRetryStrategy: () => 200, redisOptions: { maxRetriesPerRequest: null } });
    } else {
      this.redis = new Redis(redisUrl, { maxRetriesPerRequest: null, retryStrategy: () => 200, lazyConnect: false });
    }
    this.redis.on('error', () => undefined);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.redis.disconnect();
  }

  /** Reads what is in the stream now; resolves once caught up. */
  async catchUp(): Promise<void> {
    while (await this.readBatch()) {
      // until a short batch
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.catchUp();
      } catch {
        // Redis restarting: try again next round
      }
      await delay(READ_EVERY_MS);
    }
  }

  /** True when the batch was full (more may be waiting). */
  private async readBatch(): Promise<boolean> {
    const reply = (await this.redis.xread('COUNT', BATCH, 'STREAMS', this.streamKey, this.lastId)) as Array<[string, Array<[string, string[]]>]> | null;
    const entries = reply?.[0]?.[1] ?? [];
    for (const [id, fields] of entries) {
      this.lastId = id;
      const event = fieldOf(fields, 'event');
      const jobId = fieldOf(fields, 'jobId');
      if (jobId === undefined) continue;
      if (event === 'completed') this.completed.set(jobId, (this.completed.get(jobId) ?? 0) + 1);
      else if (event === 'failed') this.failed.set(jobId, (this.failed.get(jobId) ?? 0) + 1);
      else if (event === 'stalled') this.stalled.set(jobId, (this.stalled.get(jobId) ?? 0) + 1);
    }
    return entries.length === BATCH;
  }
}

function fieldOf(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
