import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { Gauge, Histogram } from 'prom-client';
import { withDeadline } from '../common/with-deadline';
import { AppConfig } from '../config';
import { METRIC_PREFIX, MetricsRegistry } from '../metrics';
import { RedisConnections } from '../redis';
import { JOBS_QUEUE } from './queue.constants';

export type JobOutcome = 'completed' | 'failed';

const DEPTH_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed'] as const;
/** A scrape never waits longer than this on Redis for the depths. */
const DEPTH_READ_TIMEOUT_MS = 1_000;

interface DepthRead {
  readonly at: number;
  /** Undefined when the read failed: no samples until the next read is due. */
  readonly counts?: Record<string, number>;
}

/**
 * Job durations (observed by QueueWorker where jobs run) and queue depths. The depths are the only metric
 * that costs Redis: one script call (BullMQ's getCounts, a single EVALSHA) per read, and a scrape reuses a read
 * younger than METRICS_QUEUE_DEPTH_INTERVAL_SECONDS, so the bill does not follow the scrape rate.
 */
@Injectable()
export class QueueMetrics {
  private readonly logger = new Logger('QueueMetrics');
  private readonly durations: Histogram<'queue' | 'name' | 'outcome'>;
  private lastRead?: DepthRead;
  private reading?: Promise<void>;

  constructor(
    registry: MetricsRegistry,
    @InjectQueue(JOBS_QUEUE) private readonly queue: Queue,
    private readonly connections: RedisConnections,
    private readonly config: AppConfig,
  ) {
    this.durations = new Histogram({
      name: `${METRIC_PREFIX}queue_job_duration_seconds`,
      help: 'Time a job attempt ran in this worker process, by job name and outcome (failed: the attempt threw; it may be retried).',
      labelNames: ['queue', 'name', 'outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    });
    if (config.metrics.queueDepthIntervalMs > 0) this.registerDepths(registry);
  }

  observeJob(name: string, outcome: JobOutcome, seconds: number): void {
    this.durations.observe({ queue: JOBS_QUEUE, name, outcome }, seconds);
  }

  private registerDepths(registry: MetricsRegistry): void {
    const currentCounts = () => this.currentCounts();
    new Gauge({
      name: `${METRIC_PREFIX}queue_jobs`,
      help: `Jobs in the queue by state, cluster-wide (read at most once per METRICS_QUEUE_DEPTH_INTERVAL_SECONDS, ${this.config.metrics.queueDepthIntervalMs / 1000} s here).`,
      labelNames: ['queue', 'state'],
      registers: [registry],
      async collect() {
        const counts = await currentCounts();
        this.reset();
        for (const state of DEPTH_STATES) if (counts) this.set({ queue: JOBS_QUEUE, state }, counts[state] ?? 0);
      },
    });
  }

  private async currentCounts(): Promise<Record<string, number> | undefined> {
    const fresh = this.lastRead && Date.now() - this.lastRead.at < this.config.metrics.queueDepthIntervalMs;
    if (!fresh) {
      // Concurrent scrapes share one read.
      this.reading ??= this.read().finally(() => (this.reading = undefined));
      await this.reading;
    }
    return this.lastRead?.counts;
  }

  private async read(): Promise<void> {
    const at = Date.now();
    // The command client fails fast; while it is down the depths are unknown, not stale.
    if (this.connections.status('command').state !== 'ready') {
      this.lastRead = { at };
      return;
    }
    try {
      const counts = await withDeadline(this.queue.getJobCounts(...DEPTH_STATES), DEPTH_READ_TIMEOUT_MS, () => {
        throw new Error(`no answer within ${DEPTH_READ_TIMEOUT_MS} ms`);
      });
      this.lastRead = { at, counts };
    } catch (error) {
      this.lastRead = { at };
      this.logger.debug(`queue depths unavailable: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
