import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, INestApplication, Module } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { CapturingLogger } from '../../test/support/capturing-logger';
import { RedisCluster } from '../../test/support/redis-cluster';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { until } from '../../test/support/until';
import { createApp } from '../bootstrap';
import { CacheService, tenantKey } from '../cache';
import { loadConfig } from '../config';
import { RedisConnections, RedisModule } from '../redis';
import { JobHandler, OnJobCompleted, OnJobFailed } from './job-handler.decorator';
import { JobProducer } from './job-producer.service';
import { QueueWorker } from './queue-worker.service';

let redis: RedisServer;
let app: INestApplication | undefined;
const logger = new CapturingLogger();
let jobCounter = 0;

/** What the test job kinds do: each test sets the function its jobs run. */
const behaviour: { run: (job: Job) => Promise<unknown> } = { run: async () => 'done' };

/** Job kinds of these tests, declared the way features declare theirs. */
@Injectable()
class TestJobs {
  @JobHandler('test:job')
  run(job: Job): Promise<unknown> {
    return behaviour.run(job);
  }
}

/** Completions heard through @OnJobCompleted, per job id. */
const completions = new Map<string, unknown[]>();

@Injectable()
class TestJobListeners {
  @OnJobCompleted('test:job')
  heard(job: Job, result: unknown): void {
    completions.set(String(job.id), [...(completions.get(String(job.id)) ?? []), result]);
  }
}

@Module({ providers: [TestJobs, TestJobListeners] })
class TestJobsModule {}

/** Two kinds that always fail, each under its own policy: the attempts each gets are counted. */
@Injectable()
class PolicyJobs {
  static readonly calls = new Map<string, number>();

  @JobHandler('test:two-attempts', { attempts: 2, backoff: { type: 'fixed', delay: 10 } })
  twice(job: Job): Promise<never> {
    return PolicyJobs.fail(job);
  }

  @JobHandler('test:four-attempts', { attempts: 4, backoff: { type: 'fixed', delay: 10 } })
  fourTimes(job: Job): Promise<never> {
    return PolicyJobs.fail(job);
  }

  static readonly failedForGood: string[] = [];

  @OnJobFailed('test:two-attempts')
  gaveUp(job: Job, error: Error): void {
    PolicyJobs.failedForGood.push(`${job.name} after ${job.attemptsMade}: ${error.message}`);
  }

  private static async fail(job: Job): Promise<never> {
    PolicyJobs.calls.set(job.name, (PolicyJobs.calls.get(job.name) ?? 0) + 1);
    throw new Error('always fails');
  }
}

@Module({ providers: [PolicyJobs] })
class PolicyJobsModule {}

/** One attempt only: the first run cuts the command connection under itself and fails, as a store would then. */
@Injectable()
class OneAttemptJobs {
  static runs = 0;
  /** Opened by the test once add() has answered: the handler must not cut the connection the add still uses. */
  static added: Promise<void>;

  constructor(private readonly connections: RedisConnections) {}

  @JobHandler('test:one-attempt', { attempts: 1 })
  async run(): Promise<string> {
    OneAttemptJobs.runs += 1;
    if (OneAttemptJobs.runs > 1) return 'stored';
    await OneAttemptJobs.added;
    (this.connections.client('command') as Redis).stream.destroy();
    await until(
      async () => this.connections.status('command').state,
      (state) => state !== 'ready',
      5_000,
      10,
    );
    throw new Error('not storing the result: Redis is unreachable');
  }
}

@Module({ imports: [RedisModule], providers: [OneAttemptJobs] })
class OneAttemptJobsModule {}

/** Stores a result in the cache of the tenant its data names, as a feature's job does (JobResults.store). */
@Injectable()
class TenantResultJobs {
  constructor(private readonly cache: CacheService) {}

  @JobHandler('test:tenant-result')
  async run(job: Job<{ tenantId: string }>): Promise<string> {
    await this.cache.setOrThrow(tenantKey(job.data.tenantId, 'test', String(job.id)), { stored: true }, { ttlMs: 60_000 });
    return 'stored';
  }
}

@Module({ providers: [TenantResultJobs] })
class TenantResultJobsModule {}

/** A second declaration of TestJobs' kind, as a careless feature would write it. */
@Injectable()
class ClashingJobs {
  @JobHandler('test:job')
  run(): Promise<void> {
    return Promise.resolve();
  }
}

@Module({ providers: [ClashingJobs] })
class ClashingJobsModule {}

async function startApp(env: Record<string, string> = {}, features: (new () => object)[] = [TestJobsModule]): Promise<INestApplication> {
  const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: redis.url(), APP_ROLE: 'all', ...env });
  app = await createApp(config, { logger }, features);
  await app.init();
  const connections = app.get(RedisConnections);
  await waitFor(() => (connections.statuses().every((status) => status.state === 'ready') ? true : undefined), 'Redis');
  return app;
}

/** A handler the test opens: the job stays in flight until release() is called. */
function gatedHandler(): { handler: (job: Job) => Promise<string>; started: Promise<Job>; release: () => void } {
  let release!: () => void;
  let markStarted!: (job: Job) => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const started = new Promise<Job>((resolve) => (markStarted = resolve));
  return {
    handler: async (job) => {
      markStarted(job);
      await gate;
      return 'done';
    },
    started,
    release,
  };
}

function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const tick = () => {
      const value = probe();
      if (value !== undefined) return resolve(value);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 50);
    };
    tick();
  });
}

/** Read from Redis directly: the app's own connections are closed once it has shut down. */
async function stateInRedis(jobId: string): Promise<'completed' | 'active' | 'other'> {
  if ((await redis.command('ZSCORE', 'pharmacare:jobs:completed', jobId)) !== '') return 'completed';
  if ((await redis.command('LPOS', 'pharmacare:jobs:active', jobId)) !== '') return 'active';
  return 'other';
}

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterEach(async () => {
  await app?.close();
  app = undefined;
  logger.lines.length = 0;
});
afterAll(stopAllRedisServers);

describe('QueueWorker shutdown', () => {
  it('stops taking jobs and lets the job in flight finish within the grace period', async () => {
    const nest = await startApp({ WORKER_SHUTDOWN_GRACE_SECONDS: '5' });
    const gated = gatedHandler();
    behaviour.run = gated.handler;
    const job = await nest.get(JobProducer, { strict: false }).add('test:job', {}, { jobId: `gated-${++jobCounter}` });
    await gated.started;

    const closing = nest.close();
    app = undefined;
    setTimeout(gated.release, 300);
    await closing;
    expect(await stateInRedis(String(job.id))).toBe('completed');
    expect(logger.text).toMatch(/waiting up to 5 s for 1 in flight/);
  });

  it('gives up after the grace period and leaves the job to stalled-job recovery', async () => {
    const nest = await startApp({ WORKER_SHUTDOWN_GRACE_SECONDS: '1' });
    const gated = gatedHandler();
    behaviour.run = gated.handler;
    const job = await nest.get(JobProducer, { strict: false }).add('test:job', {}, { jobId: `gated-${++jobCounter}` });
    await gated.started;

    const started = Date.now();
    await nest.close();
    app = undefined;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await stateInRedis(String(job.id))).toBe('active');
    expect(logger.text).toMatch(/grace period over/);
    gated.release();
  });
});

describe('QueueWorker failures', () => {
  it('retries with backoff and logs each failure once with the job id and reason', async () => {
    const nest = await startApp({ QUEUE_JOB_ATTEMPTS: '2' });
    const name = 'test:job';
    let calls = 0;
    behaviour.run = async () => {
      calls += 1;
      throw new Error(`pharmacy ledger unavailable #${calls}`);
    };
    const job = await nest.get(JobProducer, { strict: false }).add(name, {}, { jobId: `failing-${++jobCounter}` });
    await waitFor(() => (calls >= 2 && logger.text.includes('failed for good') ? true : undefined), 'the final failure');
    expect(logger.lines.filter((line) => line.includes(`job failing-${jobCounter} (${name}) attempt 1/2 failed, will retry: pharmacy ledger unavailable #1`))).toHaveLength(1);
    expect(
      logger.lines.filter((line) => line.includes(`job failing-${jobCounter} (${name}) failed for good after 2 attempt(s): pharmacy ledger unavailable #2`)),
    ).toHaveLength(1);
    expect(await job.getState()).toBe('failed');
  });
});

describe('Job kinds declared by features', () => {
  it('gives each kind the attempts of its own policy', async () => {
    const nest = await startApp({}, [TestJobsModule, PolicyJobsModule]);
    const producer = nest.get(JobProducer, { strict: false });
    const jobs = await Promise.all([producer.add('test:two-attempts', {}), producer.add('test:four-attempts', {})]);
    for (const job of jobs)
      await until(
        () => job.getState(),
        (state) => state === 'failed',
      );
    expect(Object.fromEntries(PolicyJobs.calls)).toEqual({ 'test:two-attempts': 2, 'test:four-attempts': 4 });
    // Told once, after the last attempt, not after the first.
    await until(
      async () => PolicyJobs.failedForGood.length,
      (told) => told > 0,
    );
    expect(PolicyJobs.failedForGood).toEqual(['test:two-attempts after 2: always fails']);
  });

  it('tells @OnJobCompleted listeners once, after the job is stored as completed, with its result', async () => {
    const nest = await startApp();
    behaviour.run = async () => 'counted 12 boxes';
    const job = await nest.get(JobProducer, { strict: false }).add('test:job', {}, { jobId: `heard-${++jobCounter}` });
    await until(
      async () => completions.get(String(job.id)),
      (heard) => heard !== undefined,
    );
    const stateWhenHeard = await job.getState();
    expect(completions.get(String(job.id))).toEqual(['counted 12 boxes']);
    expect(stateWhenHeard).toBe('completed');
  });

  it('puts back, without using an attempt, a job that failed while a connection of the process was down', async () => {
    const nest = await startApp({}, [TestJobsModule, OneAttemptJobsModule]);
    let markAdded!: () => void;
    OneAttemptJobs.added = new Promise((resolve) => (markAdded = resolve));
    const job = await nest.get(JobProducer, { strict: false }).add('test:one-attempt', {});
    markAdded();
    // The job's reads go through the command connection the handler cut: a read while it reconnects is not an answer.
    const settled = () => job.getState().catch(() => 'reconnecting');
    expect(await until(settled, (state) => state === 'completed' || state === 'failed', 20_000, 100)).toBe('completed');
    expect(OneAttemptJobs.runs).toBe(2);
    expect(logger.text).toMatch(
      new RegExp(`job ${job.id} \\(test:one-attempt\\) put back for 5 s without using an attempt: (Redis connection command is down|a Redis connection was lost during it)`),
    );
  });

  it('does not boot with two handlers for one job name, and says which two', async () => {
    const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: redis.url(), APP_ROLE: 'all' });
    const clashing = await createApp(config, { logger }, [TestJobsModule, ClashingJobsModule]);
    try {
      await expect(clashing.init()).rejects.toThrow(
        'Job "test:job" has two handlers, TestJobs.run and ClashingJobs.run: one process runs one handler per job name. Rename one of them.',
      );
    } finally {
      await clashing.close();
    }
  });
});

describe('QueueWorker watchdog', () => {
  it('recreates a worker whose blocking connection is gone while Redis is fine, and the new one consumes', async () => {
    const nest = await startApp({ QUEUE_WEDGE_TIMEOUT_SECONDS: '1' });
    const worker = nest.get(QueueWorker, { strict: false });
    const blocking = await waitFor(() => (worker as unknown as { blocking?: { client: Redis } }).blocking?.client, 'the blocking client');
    await waitFor(() => (worker.health().connected ? true : undefined), 'the blocking connection');

    // What a connection reset left BullMQ workers in: a blocking connection that never comes back
    // (BullMQ reconnects a merely closed one, so its connect() is made to hang, as in that bug).
    blocking.connect = () => new Promise<void>(() => undefined);
    blocking.disconnect();
    await waitFor(() => (worker.health().recreated === 1 ? true : undefined), 'the worker to be recreated');
    expect(logger.text).toMatch(/worker wedged: .* recreating it/);

    behaviour.run = async () => 'consumed';
    const job = await nest.get(JobProducer, { strict: false }).add('test:job', {}, { jobId: `after-${++jobCounter}` });
    expect(
      await until(
        () => job.getState(),
        (state) => state === 'completed',
      ),
    ).toBe('completed');
    expect(worker.health()).toMatchObject({ running: true, connected: true, wedged: false, recreated: 1 });
  });
});

describe('QueueWorker on a Redis Cluster', () => {
  it("puts back the job of a tenant whose cache shard is full without pausing: other tenants' jobs run on", async () => {
    const cluster = await RedisCluster.start();
    try {
      const nest = await startApp({ REDIS_URL: cluster.url(), REDIS_CLUSTER: 'true' }, [TenantResultJobsModule]);
      const producer = nest.get(JobProducer, { strict: false });
      const queueMaster = await cluster.masterFor('{pharmacare}');
      const [fullMaster, otherMaster] = cluster.nodes.filter((node) => node !== queueMaster);
      const tenantOn = async (master: RedisServer, prefix: string) => {
        for (let index = 1; ; index++) if ((await cluster.masterFor(`{t:${prefix}-${index}}`)) === master) return `${prefix}-${index}`;
      };
      const [fullTenant, otherTenant] = await Promise.all([tenantOn(fullMaster, 'full'), tenantOn(otherMaster, 'other')]);
      expect(calculateSlot(`{t:${fullTenant}}`)).not.toBe(calculateSlot('{pharmacare}'));
      // Every write refused there (noeviction, the harness's policy): that tenant's results cannot be stored.
      await fullMaster.command('CONFIG', 'SET', 'maxmemory', '1');

      const stuck = await producer.add('test:tenant-result', { tenantId: fullTenant });
      await waitFor(
        () => logger.lines.find((line) => line.includes(`job ${stuck.id} (test:tenant-result) put back for 5 s without using an attempt: Redis is out of memory`)),
        'the put back',
      );
      const other = await producer.add('test:tenant-result', { tenantId: otherTenant });
      expect(
        await until(
          () => other.getState(),
          (state) => state === 'completed',
          3_000,
          50,
        ),
      ).toBe('completed');
      expect(logger.lines.filter((line) => /worker paused/.test(line))).toEqual([]);
      expect(nest.get(QueueWorker, { strict: false }).health()).toMatchObject({ paused: false });

      await fullMaster.command('CONFIG', 'SET', 'maxmemory', '0');
      expect(
        await until(
          () => stuck.getState(),
          (state) => state === 'completed' || state === 'failed',
          15_000,
          100,
        ),
      ).toBe('completed');
    } finally {
      await app?.close();
      app = undefined;
      await cluster.stop();
    }
  }, 60_000);
});
