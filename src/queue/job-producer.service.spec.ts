import { describe, expect, it } from '@jest/globals';
import type { Job, JobsOptions, Queue } from 'bullmq';
import { redisUnavailability, type RedisConnections } from '../redis';
import type { JobHandlerRegistry, RegisteredJobHandler } from './job-handler.registry';
import { JobProducer, UnknownJobError } from './job-producer.service';
import { QueueUnavailableError } from './queue-unavailable.error';
import type { TenantWorkQuota } from './tenant-work-quota';

const ready = { status: () => ({ state: 'ready' }), unavailability: redisUnavailability } as unknown as RedisConnections;
/** Admits everything: TenantWorkQuota has its own spec, on real Redis. */
const quota = { admit: async () => undefined } as unknown as TenantWorkQuota;

/** A queue that records what add() was given. */
function recordingQueue(): { queue: Queue; added: { name: string; data: unknown; options: JobsOptions }[] } {
  const added: { name: string; data: unknown; options: JobsOptions }[] = [];
  const queue = {
    on: () => undefined,
    add: async (name: string, data: unknown, options: JobsOptions) => {
      added.push({ name, data, options });
      return { id: options.jobId, name, data } as unknown as Job;
    },
  } as unknown as Queue;
  return { queue, added };
}

function registryOf(...handlers: Pick<RegisteredJobHandler, 'name' | 'policy'>[]): JobHandlerRegistry {
  const byName = new Map(handlers.map((handler) => [handler.name, handler]));
  return { get: (name: string) => byName.get(name), names: () => [...byName.keys()] } as unknown as JobHandlerRegistry;
}

const reportPolicy = { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { age: 604800, count: 1000 } };

describe('JobProducer', () => {
  // A state read that timed out (Redis busy or frozen) surfaced as a 500, where every other Redis timeout is a 503.
  it('turns a job-state read that times out into QueueUnavailableError (503), like getJob', async () => {
    const queue = { ...recordingQueue().queue, getJobState: () => Promise.reject(new Error('Command timed out')) } as unknown as Queue;
    const producer = new JobProducer(queue, ready, registryOf(), quota);
    await expect(producer.getState('job-1')).rejects.toBeInstanceOf(QueueUnavailableError);
  });

  it("answers OOM with a message users understand and a longer Retry-After, never with Redis's own text", async () => {
    const producer = new JobProducer(recordingQueue().queue, ready, registryOf(), quota);
    const job = { retry: () => Promise.reject(new Error("OOM command not allowed when used memory > 'maxmemory'. script: 1e9b, on @user_script:119.")) } as unknown as Job;
    const refused = await producer.retry(job).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(QueueUnavailableError);
    expect((refused as QueueUnavailableError).message).toMatch(/Redis is full/);
    expect((refused as QueueUnavailableError).message).not.toMatch(/OOM|maxmemory|script/);
    expect((refused as QueueUnavailableError).retryAfterSeconds).toBe(30);
  });

  it('lets an error that is not about Redis through unchanged (a bug stays a 500)', async () => {
    const producer = new JobProducer(recordingQueue().queue, ready, registryOf(), quota);
    const bug = new TypeError('cannot read properties of undefined');
    const job = { retry: () => Promise.reject(bug) } as unknown as Job;
    await expect(producer.retry(job)).rejects.toBe(bug);
  });

  it('refuses at once while the command connection is down, without touching the job', async () => {
    const down = { status: () => ({ state: 'reconnecting' }) } as unknown as RedisConnections;
    const producer = new JobProducer(recordingQueue().queue, down, registryOf(), quota);
    let asked = false;
    const job = { retry: async () => void (asked = true) } as unknown as Job;
    await expect(producer.retry(job)).rejects.toBeInstanceOf(QueueUnavailableError);
    expect(asked).toBe(false);
  });

  it('adds a job under its kind policy, with jobId and delay from the call', async () => {
    const { queue, added } = recordingQueue();
    const producer = new JobProducer(queue, ready, registryOf({ name: 'report', policy: reportPolicy }), quota);
    await producer.add('report', { tenantId: 't1' }, { jobId: 'rpt_1', delay: 250 });
    expect(added).toEqual([{ name: 'report', data: { tenantId: 't1' }, options: { ...reportPolicy, jobId: 'rpt_1', delay: 250 } }]);
  });

  it('lets one call override single policy fields, and leaves the policy alone for fields given as undefined', async () => {
    const { queue, added } = recordingQueue();
    const producer = new JobProducer(queue, ready, registryOf({ name: 'report', policy: reportPolicy }), quota);
    await producer.add('report', {}, { attempts: 7, priority: 3, removeOnFail: undefined });
    // Without a jobId the job gets a random one: the tenant bound admits a job by its id before adding it.
    expect(added[0].options).toEqual({ ...reportPolicy, attempts: 7, priority: 3, jobId: expect.any(String) });
  });

  it('refuses a job name no @JobHandler declares before anything reaches Redis, naming the known ones', async () => {
    const { queue, added } = recordingQueue();
    const producer = new JobProducer(queue, ready, registryOf({ name: 'report', policy: {} }, { name: 'reorder', policy: {} }), quota);
    await expect(producer.add('repport', {})).rejects.toBeInstanceOf(UnknownJobError);
    await expect(producer.add('repport', {})).rejects.toThrow(`No @JobHandler('repport') is declared in this application (known: report, reorder); nothing was enqueued.`);
    expect(added).toHaveLength(0);
  });
});
