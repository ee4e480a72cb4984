import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { AppConfig, loadConfig } from '../config';
import { JOBS_QUEUE } from './queue.constants';
import { PENDING_ADD_GRACE_MS, TenantQuotaExceededError, TenantWorkQuota } from './tenant-work-quota';

/** A quota whose clock the test moves. */
class ClockedQuota extends TenantWorkQuota {
  clock = Date.now();
  protected override now(): number {
    return this.clock;
  }
}

let redis: RedisServer;
const clients: Redis[] = [];
const queues: Queue[] = [];
let prefixes = 0;

function client(options: { maxRetriesPerRequest?: null } = {}): Redis {
  const connection = new Redis(redis.url(), options);
  clients.push(connection);
  return connection;
}

/** A fresh key prefix per test, a quota on it (one per "web instance"), and the BullMQ queue the quota checks. */
function setUp(env: Record<string, string> = {}, instances = 1) {
  const config = loadConfig({ NODE_ENV: 'test', REDIS_KEY_PREFIX: `quota-spec-${++prefixes}`, QUEUE_TENANT_MAX_JOBS: '3', ...env });
  const queue = new Queue(JOBS_QUEUE, { connection: client(), prefix: config.redis.keyPrefix });
  queues.push(queue);
  const quotas = Array.from({ length: instances }, () => new ClockedQuota(client(), config as AppConfig));
  return { config, queue, quota: quotas[0], quotas };
}

/** What JobProducer.add does: admit, then add. */
async function enqueue(quota: TenantWorkQuota, queue: Queue, jobId: string, data: { tenantId: string; [key: string]: unknown }): Promise<void> {
  await quota.admit(jobId, data);
  await queue.add('work', data, { jobId });
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TenantQuotaExceededError);
    return (error as Error).message;
  }
  throw new Error('expected TenantQuotaExceededError');
}

beforeAll(async () => {
  redis = await RedisServer.start();
});

afterEach(async () => {
  await Promise.all(queues.splice(0).map((queue) => queue.close()));
});

afterAll(async () => {
  await Promise.all(clients.map((connection) => connection.quit().catch(() => undefined)));
  await stopAllRedisServers();
});

describe('TenantWorkQuota', () => {
  it('admits QUEUE_TENANT_MAX_JOBS jobs of a tenant, refuses the next with a message, and still admits other tenants', async () => {
    const { quota, queue } = setUp();
    for (const id of ['a1', 'a2', 'a3']) await enqueue(quota, queue, id, { tenantId: 'pharmacy-a' });
    expect(await refusal(quota.admit('a4', { tenantId: 'pharmacy-a' }))).toMatch(/3 jobs queued or running.*QUEUE_TENANT_MAX_JOBS 3.*Try again/);
    await expect(enqueue(quota, queue, 'b1', { tenantId: 'pharmacy-b' })).resolves.toBeUndefined();
  });

  it('bounds the bytes of payloads in flight', async () => {
    const { quota, queue } = setUp({ QUEUE_TENANT_MAX_JOBS: '100', QUEUE_TENANT_MAX_PAYLOAD_MB: '1' });
    const payload = 'x'.repeat(400 * 1024);
    await enqueue(quota, queue, 'p1', { tenantId: 't', payload });
    await enqueue(quota, queue, 'p2', { tenantId: 't', payload });
    expect(await refusal(quota.admit('p3', { tenantId: 't', payload }))).toMatch(
      /hold 0\.8 MB of data and this one adds 0\.4 MB, over the 1\.0 MB.*QUEUE_TENANT_MAX_PAYLOAD_MB/,
    );
    await expect(quota.admit('small', { tenantId: 't', note: 'tiny' })).resolves.toBeUndefined();
  });

  it('admits the same job again without counting it twice (a retried POST)', async () => {
    const { quota, queue } = setUp();
    await enqueue(quota, queue, 'same', { tenantId: 't' });
    for (let i = 0; i < 5; i += 1) await expect(quota.admit('same', { tenantId: 't' })).resolves.toBeUndefined();
    await enqueue(quota, queue, 'other-1', { tenantId: 't' });
    await enqueue(quota, queue, 'other-2', { tenantId: 't' });
    await expect(quota.admit('other-3', { tenantId: 't' })).rejects.toBeInstanceOf(TenantQuotaExceededError);
  });

  it('stops counting a job as soon as a worker completes it, or it fails for good', async () => {
    const { quota, queue, config } = setUp();
    const worker = new Worker(JOBS_QUEUE, async (job) => (job.data.fail ? Promise.reject(new Error('bad data')) : 'done'), {
      connection: client({ maxRetriesPerRequest: null }),
      prefix: config.redis.keyPrefix,
      autorun: false,
    });
    const finished = new Promise<void>((resolve) => {
      let count = 0;
      const onFinished = () => (++count === 3 ? resolve() : undefined);
      worker.on('completed', onFinished);
      worker.on('failed', onFinished);
    });
    await enqueue(quota, queue, 'c1', { tenantId: 't' });
    await enqueue(quota, queue, 'c2', { tenantId: 't' });
    await enqueue(quota, queue, 'f1', { tenantId: 't', fail: true });
    await expect(quota.admit('c4', { tenantId: 't' })).rejects.toBeInstanceOf(TenantQuotaExceededError);
    void worker.run();
    await finished;
    await worker.close();
    for (const id of ['n1', 'n2', 'n3']) await enqueue(quota, queue, id, { tenantId: 't' });
  });

  it('cannot leak: an admission whose job never reached Redis (a web instance crashed) counts only for the pending grace', async () => {
    const { quota, queue } = setUp();
    for (const id of ['lost-1', 'lost-2', 'lost-3']) await quota.admit(id, { tenantId: 't' });
    await expect(quota.admit('x', { tenantId: 't' })).rejects.toBeInstanceOf(TenantQuotaExceededError);
    (quota as ClockedQuota).clock += PENDING_ADD_GRACE_MS + 1;
    for (const id of ['x1', 'x2', 'x3']) await enqueue(quota, queue, id, { tenantId: 't' });
  });

  it('cannot leak when a job is removed (retention, an operator cleaning the queue in bull-board)', async () => {
    const { quota, queue } = setUp();
    for (const id of ['r1', 'r2', 'r3']) await enqueue(quota, queue, id, { tenantId: 't' });
    await queue.obliterate({ force: true });
    (quota as ClockedQuota).clock += PENDING_ADD_GRACE_MS + 1;
    for (const id of ['s1', 's2', 's3']) await enqueue(quota, queue, id, { tenantId: 't' });
  });

  it('holds across web instances: 40 concurrent admissions from two instances admit exactly 3', async () => {
    const { quotas } = setUp({}, 2);
    const outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_unused, i) => quotas[i % 2].admit(`race-${i}`, { tenantId: 't' })));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(3);
    for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(TenantQuotaExceededError);
  });

  it('leaves jobs without a tenant alone, and keys tenants so no id can spell another', async () => {
    const { quota } = setUp({ QUEUE_TENANT_MAX_JOBS: '1' });
    for (let i = 0; i < 3; i += 1) await expect(quota.admit(`no-tenant-${i}`, { kind: 'maintenance' })).resolves.toBeUndefined();
    await quota.admit('a', { tenantId: 'a:bytes' });
    await expect(quota.admit('b', { tenantId: 'a' })).resolves.toBeUndefined();
  });
});
